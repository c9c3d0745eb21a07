/* libFuzzer target: an aliases file (conf/table_load: names, catch-alls
 * "@domain", targets, "|command" targets checked by mail/pipe_cmd), then
 * what tern does with an accepted one: every alias, and addresses with
 * extensions, expanded (conf/expand, recipient_delimiter "+-"), each
 * resulting local mailbox written as the queue stores it and read back by
 * config_mailbox_of to the same user, extension and command, and every
 * command expanded with hostile values into an argument vector whose
 * program is the absolute path the file named. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "conf/config.h"
#include "conf/config_priv.h"
#include "conf/table.h"
#include "mail/pipe_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_domains[] = {"example.org", "example.net"};

/* Expands addr and checks every local mailbox against its stored form. */
static void fuzz_expand(const struct config *cfg, const char *addr)
{
    struct conf_mailbox *mb = NULL;
    size_t n = 0;
    if (config_expand(cfg, addr, &mb, &n) < 0) {
        if (n != 0)
            abort();
        free(mb);
        return;
    }
    char stored[512];
    for (size_t i = 0; i < n; i++) {
        if (!config_is_local_domain(cfg, mb[i].domain))
            continue; /* relayed */
        snprintf(stored, sizeof stored, "%s%s@%s", mb[i].user, mb[i].ext, mb[i].domain);
        struct conf_mailbox back;
        if (config_mailbox_of(cfg, stored, &back) < 0 || strcmp(back.user, mb[i].user) ||
            strcmp(back.ext, mb[i].ext) || back.pipe != mb[i].pipe)
            abort();
        if ((mb[i].pipe != NULL) != (mb[i].user[0] == '|'))
            abort();
        if (mb[i].pipe) {
            static const char *const vals[PIPE_VAR_N] = {"\"$(x) `y`;|\"@a", "r@b", "u", "e\n",
                                                         "d"};
            char **argv = NULL;
            const char *prog = mb[i].pipe + 1 + strspn(mb[i].pipe + 1, " \t");
            if (mb[i].pipe[0] != '|' || pipe_cmd_expand(mb[i].pipe + 1, vals, &argv) < 0 ||
                argv == NULL || argv[0] == NULL || argv[0][0] != '/' ||
                strncmp(argv[0], prog, strlen(argv[0])) != 0)
                abort();
            pipe_cmd_free(argv);
        }
    }
    free(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    int fd = memfd_create("aliases", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct config cfg;
    config_default(&cfg);
    free(cfg.local_domains[0]);
    free(cfg.local_domains);
    cfg.local_domains = calloc(2, sizeof *cfg.local_domains);
    for (size_t i = 0; i < 2; i++)
        cfg.local_domains[i] = strdup(fuzz_domains[i]);
    cfg.nlocal_domains = 2;
    cfg.accept_any_user = 0;
    cfg.recipient_delimiter = strdup("+-");
    struct buf err = BUF_INIT;
    int oserr = 0;
    int rc = conf_aliases_load(&cfg, path, &err, &oserr);
    close(fd);
    if (rc == 0) {
        if (err.len)
            abort(); /* accepted, yet an error said */
        size_t it = 0;
        const struct conf_entry *e;
        char addr[512];
        while ((e = conf_table_next(cfg.aliases, &it)) != NULL) {
            for (size_t d = 0; d < 2; d++) {
                const char *key = e->key[0] == '@' ? "anyone" : e->key;
                if (strchr(key, '@'))
                    snprintf(addr, sizeof addr, "%s", key);
                else
                    snprintf(addr, sizeof addr, "%s@%s", key, fuzz_domains[d]);
                fuzz_expand(&cfg, addr);
                char *at = strchr(addr, '@');
                if (at && (size_t)(at - addr) < 60) {
                    memmove(at + 4, at, strlen(at) + 1);
                    memcpy(at, "+x-y", 4);
                    fuzz_expand(&cfg, addr);
                }
            }
        }
        fuzz_expand(&cfg, "postmaster");
        fuzz_expand(&cfg, "nobody+ext@example.org");
    } else if (rc != CONF_ELINES || err.len == 0) {
        abort(); /* refused without saying why (or unreadable) */
    }
    buf_free(&err);
    config_free(&cfg);
    return 0;
}
