/* serve.c: `tern serve [-c FILE]`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/sizes.h"
#include "cmd/cmds.h"
#include "conf/config.h"
#include "proc/parent.h"
#include "proc/tls_material.h"

int cmd_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int cmd_parse_config_opt(int argc, char **argv, const char **path)
{
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help(argv[i])) {
            printf("usage: tern %s [-c FILE]\n", argv[0]);
            return 1;
        } else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            *path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            *path = argv[i] + 9;
        } else {
            fprintf(stderr, "tern %s: unknown option '%s'\n", argv[0], argv[i]);
            return -EINVAL;
        }
    }
    return 0;
}

/* Tells a developer running `make run` what they got and where mail goes. */
static void serve_print_default(const struct config *cfg)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        strcpy(cwd, ".");
    printf("tern: no configuration file: running the embedded local-development default\n");
    for (size_t i = 0; i < cfg->nlisteners; i++)
        printf("tern: listening on %s:%d (%s)\n", cfg->listeners[i].addr, cfg->listeners[i].port,
               config_role_name(cfg->listeners[i].role));
    printf("tern: mail to any <user>@localhost is delivered to %s/var/mail/<user>/Maildir/\n",
           cwd);
    printf("tern: spool in %s/%s\n", cwd, cfg->spool_dir);
    printf("tern: try: swaks --server 127.0.0.1:%d --to you@localhost\n",
           cfg->nlisteners ? cfg->listeners[0].port : 2525);
    printf("tern: TLS certificate %s/%s (self-signed; for a real one, write a config file "
           "with tls_cert = .../fullchain.pem and tls_key = .../privkey.pem)\n",
           cwd, cfg->tls_cert);
    printf("tern: submission needs a user: ./build/tern user add NAME (kept in %s/%s)\n", cwd,
           cfg->users_file);
    fflush(stdout);
}

int cmd_serve(int argc, char **argv)
{
    const char *path;
    int opt = cmd_parse_config_opt(argc, argv, &path);
    if (opt != 0)
        return opt > 0 ? 0 : 64;
    struct config cfg;
    config_default(&cfg);
    if (path) {
        struct buf err = BUF_INIT;
        if (config_load(&cfg, path, &err) < 0) {
            fprintf(stderr, "%s", err.data ? err.data : "configuration error\n");
            buf_free(&err);
            config_free(&cfg);
            return 78; /* EX_CONFIG */
        }
        buf_free(&err);
    } else {
        struct buf err = BUF_INIT;
        if (config_load_default_tables(&cfg, &err) < 0) {
            fprintf(stderr, "%s", err.data ? err.data : "configuration error\n");
            buf_free(&err);
            config_free(&cfg);
            return 78;
        }
        buf_free(&err);
    }
    struct buf terr = BUF_INIT;
    int made = tls_material_prepare(&cfg, &terr);
    if (made < 0) {
        fprintf(stderr, "tern: %s", terr.data ? terr.data : "cannot create a certificate\n");
        buf_free(&terr);
        config_free(&cfg);
        return 73; /* EX_CANTCREAT */
    }
    buf_free(&terr);
    if (made > 0)
        printf("tern: created a self-signed certificate for %s in %s\n", cfg.hostname,
               cfg.tls_cert);
    log_open(cfg.log == CONF_LOG_SYSLOG ? LOG_TO_SYSLOG : LOG_TO_STDERR, cfg.hostname);
    log_set_debug(cfg.debug);
    log_set_format(cfg.log_format == CONF_LOG_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_LINE);
    if (path == NULL)
        serve_print_default(&cfg);
    int rc = parent_serve(&cfg);
    config_free(&cfg);
    return rc;
}
