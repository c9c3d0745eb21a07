/* test_config: defaults, every key, every error with its file:line,
 * relative paths, `tern check-config`'s checks, roles and the TLS and AUTH
 * keys. The users and aliases tables: test_tables. */
#include "config_fixture.h"

static void test_defaults(void)
{
    struct config cfg;
    config_default(&cfg);
    CHECK(cfg.path == NULL);
    CHECK(cfg.hostname && cfg.hostname[0]);
    /* mx, submission and smtps on loopback, with a self-signed certificate. */
    CHECK_EQ_INT(cfg.nlisteners, 3);
    CHECK_EQ_STR(cfg.listeners[0].addr, "127.0.0.1");
    CHECK_EQ_INT(cfg.listeners[0].port, 2525);
    CHECK_EQ_INT(cfg.listeners[0].role, CONF_ROLE_MX);
    CHECK_EQ_INT(cfg.listeners[1].port, 2587);
    CHECK_EQ_INT(cfg.listeners[1].role, CONF_ROLE_SUBMISSION);
    CHECK_EQ_INT(cfg.listeners[2].port, 2465);
    CHECK_EQ_INT(cfg.listeners[2].role, CONF_ROLE_SMTPS);
    CHECK(cfg.tls_selfsigned);
    CHECK_EQ_STR(cfg.tls_cert, "var/tls/cert.pem");
    CHECK_EQ_INT(cfg.nlocal_domains, 1);
    CHECK_EQ_STR(cfg.local_domains[0], "localhost");
    CHECK_EQ_STR(cfg.users_file, "var/users");
    CHECK(cfg.aliases_file == NULL);
    CHECK(cfg.users == NULL && cfg.aliases == NULL);
    CHECK_EQ_INT(cfg.accept_any_user, 1);
    CHECK_EQ_STR(cfg.maildir, "var/mail/%u/Maildir");
    CHECK_EQ_STR(cfg.spool_dir, "var/spool");
    CHECK_EQ_INT(cfg.log, CONF_LOG_STDERR);
    CHECK_EQ_INT(cfg.log_format, CONF_LOG_LINE);
    CHECK_EQ_INT(cfg.debug, 0);
    CHECK_EQ_INT(cfg.cmd_line_max, 512);
    CHECK_EQ_INT(cfg.text_line_max, 1000);
    CHECK_EQ_INT(cfg.message_size_max, 36700160);
    CHECK_EQ_INT(cfg.rcpt_max, 100);
    CHECK_EQ_INT(cfg.bad_commands_max, 20);
    CHECK_EQ_INT(cfg.rcpt_refused_max, 100);
    CHECK_EQ_INT(cfg.sessions_max, 2000);
    CHECK_EQ_INT(cfg.sessions_per_ip, 50);
    CHECK_EQ_INT(cfg.received_max, 100);
    CHECK_EQ_INT(cfg.bare_lf, CONF_BARE_NORMALIZE);
    CHECK_EQ_INT(cfg.timeout_command, 300);
    CHECK_EQ_INT(cfg.timeout_data, 180);
    CHECK_EQ_INT(cfg.delivery_threads, 8);
    CHECK_EQ_INT(cfg.retry_min, 300);
    CHECK_EQ_INT(cfg.retry_max, 4000);
    CHECK_EQ_INT(cfg.queue_lifetime, 432000);
    CHECK_EQ_INT(cfg.auth_failure_delay_max, 8);
    CHECK_EQ_INT(cfg.timeout_command_line, 300);
    CHECK_EQ_INT(cfg.data_rate_min, 256);
    CHECK_EQ_INT(cfg.data_rate_window, 30);
    CHECK_EQ_INT(cfg.stress_threshold, 80);
    CHECK_EQ_INT(cfg.timeout_stress, 10);

    /* The embedded default: any safe local part at localhost. */
    CHECK_EQ_INT(rcpt(&cfg, "Anyone", "LOCALHOST"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "x", "example.org"), CONF_RCPT_REMOTE);
    CHECK_EQ_STR(expand(&cfg, "Someone@localhost"), "someone@localhost");
    struct conf_mailbox mb = {"someone", "localhost"};
    char path[256];
    CHECK_EQ_INT(config_maildir_path(&cfg, &mb, path, sizeof path), 0);
    CHECK_EQ_STR(path, "var/mail/someone/Maildir");
    config_free(&cfg);
    CHECK(cfg.hostname == NULL && cfg.local_domains == NULL);
}

static void test_load_empty(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    CHECK_EQ_INT(load(&cfg, &err, "# nothing but comments\n\n   \n\t# indented\n"), 0);
    CHECK_EQ_INT(err.len, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/tern.conf", tmpdir);
    CHECK_EQ_STR(cfg.path, want);
    /* With a file: explicit users, and mail next to the file by domain. */
    CHECK_EQ_INT(cfg.accept_any_user, 0);
    snprintf(want, sizeof want, "%s/var/mail/%%d/%%u/Maildir", tmpdir);
    CHECK_EQ_STR(cfg.maildir, want);
    CHECK_EQ_STR(cfg.spool_dir, "var/spool");
    CHECK_EQ_INT(cfg.nlisteners, 1);
    CHECK_EQ_INT(cfg.listeners[0].port, 2525);
    CHECK_EQ_STR(cfg.local_domains[0], "localhost");
    CHECK_EQ_INT(cfg.rcpt_max, 100);
    CHECK_EQ_INT(rcpt(&cfg, "anyone", "localhost"), CONF_RCPT_UNKNOWN);
    CHECK_EQ_INT(rcpt(&cfg, "postmaster", "localhost"), CONF_RCPT_LOCAL);
    config_free(&cfg);

    /* A zeroed struct gets the defaults too. */
    memset(&cfg, 0, sizeof cfg);
    buf_reset(&err);
    CHECK_EQ_INT(config_load(&cfg, put("tern.conf", "debug = yes\n"), &err), 0);
    CHECK_EQ_INT(cfg.debug, 1);
    CHECK_EQ_INT(cfg.cmd_line_max, 512);
    config_free(&cfg);

    /* A missing file is an error naming it. */
    config_default(&cfg);
    buf_reset(&err);
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/nope.conf", tmpdir);
    CHECK_EQ_INT(config_load(&cfg, missing, &err), -EINVAL);
    CHECK(has(&err, missing));
    CHECK(has(&err, "cannot read"));
    config_free(&cfg);
    buf_free(&err);
}

static void test_every_key(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    put("u.txt", "alice\n");
    put("a.txt", "postmaster: alice\n");
    int rc = load(&cfg, &err,
                  "hostname = mx.Example.org\n"
                  "listen = 127.0.0.1:25 mx\n"
                  "listen = [::1]:587 submission   # trailing comment\n"
                  "listen = 0.0.0.0:465 smtps\n"
                  "listen=10.0.0.1:2526\n"
                  "local_domains = Example.ORG, localhost  example.net,,\n"
                  "local_domains = example.com example.org\n"
                  "users_file = u.txt\n"
                  "aliases_file = a.txt\n"
                  "accept_any_user = On\n"
                  "maildir = /srv/mail/%d/%u/Maildir\n"
                  "spool_dir = /var/spool/tern\n"
                  "log = syslog\n"
                  "log_format = json\n"
                  "debug = TRUE\r\n"
                  "cmd_line_max = 2048\n"
                  "text_line_max = 0\n"
                  "message_size_max = 10M\n"
                  "rcpt_max = 1000\n"
                  "bad_commands_max = 5\n"
                  "rcpt_refused_max = 7\n"
                  "sessions_max = 10\n"
                  "sessions_per_ip = 3\n"
                  "received_max = 30\n"
                  "bare_lf = reject\n"
                  "timeout_command = 5m\n"
                  "timeout_data = 90s\n"
                  "delivery_threads = 64\n"
                  "retry_min = 1m\n"
                  "retry_max = 2h\n"
                  "queue_lifetime = 7d\n");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(err.len, 0);
    if (err.len)
        fprintf(stderr, "%s", err.data);
    CHECK_EQ_STR(cfg.hostname, "mx.Example.org");
    CHECK_EQ_INT(cfg.nlisteners, 4);
    CHECK_EQ_STR(cfg.listeners[0].addr, "127.0.0.1");
    CHECK_EQ_INT(cfg.listeners[0].port, 25);
    CHECK_EQ_INT(cfg.listeners[0].role, CONF_ROLE_MX);
    CHECK_EQ_STR(cfg.listeners[1].addr, "::1");
    CHECK_EQ_INT(cfg.listeners[1].port, 587);
    CHECK_EQ_INT(cfg.listeners[1].role, CONF_ROLE_SUBMISSION);
    CHECK_EQ_STR(cfg.listeners[2].addr, "0.0.0.0");
    CHECK_EQ_INT(cfg.listeners[2].role, CONF_ROLE_SMTPS);
    CHECK_EQ_STR(cfg.listeners[3].addr, "10.0.0.1");
    CHECK_EQ_INT(cfg.listeners[3].role, CONF_ROLE_MX); /* role defaults to mx */
    CHECK_EQ_INT(cfg.nlocal_domains, 4);
    if (cfg.nlocal_domains == 4) {
        CHECK_EQ_STR(cfg.local_domains[0], "example.org");
        CHECK_EQ_STR(cfg.local_domains[1], "localhost");
        CHECK_EQ_STR(cfg.local_domains[2], "example.net");
        CHECK_EQ_STR(cfg.local_domains[3], "example.com");
    }
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/u.txt", tmpdir);
    CHECK_EQ_STR(cfg.users_file, want);
    snprintf(want, sizeof want, "%s/a.txt", tmpdir);
    CHECK_EQ_STR(cfg.aliases_file, want);
    CHECK(cfg.users != NULL && cfg.aliases != NULL);
    CHECK_EQ_INT(cfg.accept_any_user, 1);
    CHECK_EQ_STR(cfg.maildir, "/srv/mail/%d/%u/Maildir");
    CHECK_EQ_STR(cfg.spool_dir, "/var/spool/tern");
    CHECK_EQ_INT(cfg.log, CONF_LOG_SYSLOG);
    CHECK_EQ_INT(cfg.log_format, CONF_LOG_JSON);
    CHECK_EQ_INT(cfg.debug, 1);
    CHECK_EQ_INT(cfg.cmd_line_max, 2048);
    CHECK_EQ_INT(cfg.text_line_max, 0);
    CHECK_EQ_INT(cfg.message_size_max, 10485760);
    CHECK_EQ_INT(cfg.rcpt_max, 1000);
    CHECK_EQ_INT(cfg.bad_commands_max, 5);
    CHECK_EQ_INT(cfg.rcpt_refused_max, 7);
    CHECK_EQ_INT(cfg.sessions_max, 10);
    CHECK_EQ_INT(cfg.sessions_per_ip, 3);
    CHECK_EQ_INT(cfg.received_max, 30);
    CHECK_EQ_INT(cfg.bare_lf, CONF_BARE_REJECT);
    CHECK_EQ_INT(cfg.timeout_command, 300);
    CHECK_EQ_INT(cfg.timeout_data, 90);
    CHECK_EQ_INT(cfg.delivery_threads, 64);
    CHECK_EQ_INT(cfg.retry_min, 60);
    CHECK_EQ_INT(cfg.retry_max, 7200);
    CHECK_EQ_INT(cfg.queue_lifetime, 604800);
    CHECK(config_is_local_domain(&cfg, "EXAMPLE.net"));
    CHECK(!config_is_local_domain(&cfg, "example.nett"));
    CHECK(!config_is_local_domain(&cfg, "sub.example.org"));
    config_free(&cfg);

    /* The last value of a key wins; booleans in every spelling. */
    static const char *const yes[] = {"yes", "YES", "true", "on", "1"};
    static const char *const no[] = {"no", "No", "false", "off", "0"};
    for (size_t i = 0; i < 5; i++) {
        char text[128];
        snprintf(text, sizeof text, "debug = %s\naccept_any_user = %s\nbare_lf = reject\n"
                 "bare_lf = normalize\n", yes[i], no[i]);
        CHECK_EQ_INT(load(&cfg, &err, text), 0);
        CHECK_EQ_INT(cfg.debug, 1);
        CHECK_EQ_INT(cfg.accept_any_user, 0);
        CHECK_EQ_INT(cfg.bare_lf, CONF_BARE_NORMALIZE);
        config_free(&cfg);
    }
    buf_free(&err);
}

static void test_suffixes(void)
{
    static const struct {
        const char *v;
        unsigned long long bytes;
    } sizes[] = {{"0", 0},           {"123456", 123456},   {"10k", 10240},
                 {"10K", 10240},     {"2m", 2097152},      {"35M", 36700160},
                 {"1g", 1073741824}, {"3G", 3221225472ull}};
    struct config cfg;
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "message_size_max = %s\n", sizes[i].v);
        CHECK_EQ_INT(load(&cfg, &err, text), 0);
        CHECK_EQ_INT(cfg.message_size_max, sizes[i].bytes);
        config_free(&cfg);
    }
    static const struct {
        const char *v;
        unsigned secs;
    } durs[] = {{"30", 30}, {"30s", 30}, {"2m", 120}, {"1h", 3600}, {"1d", 86400}, {"66m", 3960}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "timeout_data = %s\nretry_min = 1\nretry_max = %s\n",
                 durs[i].v, durs[i].v);
        CHECK_EQ_INT(load(&cfg, &err, text), 0);
        CHECK_EQ_INT(cfg.timeout_data, durs[i].secs);
        CHECK_EQ_INT(cfg.retry_max, durs[i].secs);
        config_free(&cfg);
    }
    /* Bounds that the RFC sets are accepted exactly at the minimum. */
    CHECK_EQ_INT(load(&cfg, &err, "cmd_line_max = 512\ntext_line_max = 1000\nrcpt_max = 100\n"
                                  "delivery_threads = 1\n"),
                 0);
    config_free(&cfg);
    buf_free(&err);
}

static void test_errors(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    const char *text = "hostname = mx.example.org\n"        /* 1 ok */
                       "no_such_key = 1\n"                  /* 2 */
                       "just some words\n"                  /* 3 */
                       "debug = maybe\n"                    /* 4 */
                       "cmd_line_max = 511\n"               /* 5 */
                       "text_line_max = 999\n"              /* 6 */
                       "rcpt_max = 99\n"                    /* 7 */
                       "delivery_threads = 0\n"             /* 8 */
                       "delivery_threads = 65\n"            /* 9 */
                       "message_size_max = 35X\n"           /* 10 */
                       "timeout_command = 5w\n"             /* 11 */
                       "listen = localhost:25\n"            /* 12 */
                       "listen = 127.0.0.1\n"               /* 13 */
                       "listen = 127.0.0.1:25 relay\n"      /* 14 */
                       "listen = ::1:25\n"                  /* 15 */
                       "listen = 127.0.0.1:0\n"             /* 16 */
                       "listen = 127.0.0.1:65536\n"         /* 17 */
                       "log = file\n"                       /* 18 */
                       "bare_lf = accept\n"                 /* 19 */
                       "maildir = var/mail/%d/Maildir\n"    /* 20 */
                       "maildir = var/mail/%x/%u\n"         /* 21 */
                       "hostname = bad_host!\n"             /* 22 */
                       "local_domains = ok.example, bad..example\n" /* 23 */
                       "spool_dir =\n"                      /* 24 */
                       "= value\n"                          /* 25 */
                       "message_size_max = 99999999999999999999\n" /* 26 */
                       "timeout_command = 0\n"              /* 27 */
                       "retry_min = 2h\n"                   /* 28 */
                       "retry_max = 1h\n"                   /* 29 */
                       "bad_commands_max = -1\n"            /* 30 */
                       "listen = [::1]:25 mx extra\n"       /* 31 */
                       "sessions_max = 12abc\n"             /* 32 */
                       "log_format = xml\n";                /* 33 */
    CHECK_EQ_INT(load(&cfg, &err, text), -EINVAL);
    CHECK(has_at(&err, "tern.conf", 2, "unknown key 'no_such_key'"));
    CHECK(has_at(&err, "tern.conf", 3, "missing '='"));
    CHECK(has_at(&err, "tern.conf", 4, "debug: "));
    CHECK(has_at(&err, "tern.conf", 5, "cmd_line_max: 511 is below the minimum 512"));
    CHECK(has_at(&err, "tern.conf", 6, "text_line_max: 999 is below the minimum 1000"));
    CHECK(has_at(&err, "tern.conf", 7, "rcpt_max: 99 is below the minimum 100"));
    CHECK(has_at(&err, "tern.conf", 8, "delivery_threads: 0 is below"));
    CHECK(has_at(&err, "tern.conf", 9, "delivery_threads: 65 is above the maximum 64"));
    CHECK(has_at(&err, "tern.conf", 10, "message_size_max: '35X' is not a size"));
    CHECK(has_at(&err, "tern.conf", 11, "timeout_command: '5w' is not a duration"));
    CHECK(has_at(&err, "tern.conf", 12, "listen: 'localhost:25': not a numeric IP address"));
    CHECK(has_at(&err, "tern.conf", 13, "listen: '127.0.0.1': expected ADDRESS:PORT"));
    CHECK(has_at(&err, "tern.conf", 14, "listen: unknown role 'relay'"));
    CHECK(has_at(&err, "tern.conf", 15, "listen: '::1:25': an IPv6 address needs brackets"));
    CHECK(has_at(&err, "tern.conf", 16, "listen: '127.0.0.1:0': the port must be"));
    CHECK(has_at(&err, "tern.conf", 17, "listen: '127.0.0.1:65536': the port must be"));
    CHECK(has_at(&err, "tern.conf", 18, "log: 'file' is not stderr or syslog"));
    CHECK(has_at(&err, "tern.conf", 33, "log_format: 'xml' is not line or json"));
    CHECK(has_at(&err, "tern.conf", 19, "bare_lf: 'accept' is not normalize or reject"));
    CHECK(has_at(&err, "tern.conf", 20, "maildir: the template must contain %u"));
    CHECK(has_at(&err, "tern.conf", 21, "maildir: unknown '%x'"));
    CHECK(has_at(&err, "tern.conf", 22, "hostname: 'bad_host!' is not a valid host name"));
    CHECK(has_at(&err, "tern.conf", 23, "local_domains: 'bad..example' is not a valid domain"));
    CHECK(has_at(&err, "tern.conf", 24, "spool_dir: missing value"));
    CHECK(has_at(&err, "tern.conf", 25, "missing key before '='"));
    CHECK(has_at(&err, "tern.conf", 26, "message_size_max: '99999999999999999999' is not"));
    CHECK(has_at(&err, "tern.conf", 27, "timeout_command: 0 is below the minimum 1"));
    CHECK(has_at(&err, "tern.conf", 29, "retry_max (3600s) is less than retry_min (7200s)"));
    CHECK(has_at(&err, "tern.conf", 30, "bad_commands_max: '-1' is not a number"));
    CHECK(has_at(&err, "tern.conf", 31, "listen: unexpected 'extra'"));
    CHECK(has_at(&err, "tern.conf", 32, "sessions_max: '12abc' is not a number"));
    /* One line per error, none for the good lines: 31 bad lines above. */
    CHECK_EQ_INT(count_lines(&err), 31);
    /* "ok.example" on the same line as the bad domain was still taken. */
    CHECK(config_is_local_domain(&cfg, "ok.example"));
    config_free(&cfg);

    /* Too many listeners. */
    struct buf text2 = BUF_INIT;
    for (int i = 0; i < CONF_MAX_LISTENERS + 1; i++)
        buf_printf(&text2, "listen = 127.0.0.1:%d\n", 3000 + i);
    CHECK_EQ_INT(load(&cfg, &err, text2.data), -EINVAL);
    CHECK(has_at(&err, "tern.conf", CONF_MAX_LISTENERS + 1, "listen: too many listeners"));
    CHECK_EQ_INT(cfg.nlisteners, CONF_MAX_LISTENERS);
    config_free(&cfg);
    buf_free(&text2);

    /* A NUL byte is reported, not silently cut. */
    char *p = (char *)put("tern.conf", "");
    FILE *f = fopen(p, "w");
    fwrite("debug = yes\nlog = std\0err\n", 1, 26, f);
    fclose(f);
    config_default(&cfg);
    buf_reset(&err);
    CHECK_EQ_INT(config_load(&cfg, p, &err), -EINVAL);
    CHECK(has_at(&err, "tern.conf", 2, "NUL byte"));
    config_free(&cfg);

    /* Unreadable users and aliases files name the config line. */
    CHECK_EQ_INT(load(&cfg, &err,
                      "debug = no\nusers_file = none-such\naliases_file = /nonexistent/a\n"),
                 -EINVAL);
    CHECK(has_at(&err, "tern.conf", 2, "users_file: cannot read"));
    CHECK(has_at(&err, "tern.conf", 3, "aliases_file: cannot read /nonexistent/a"));
    config_free(&cfg);
    buf_free(&err);
}

static void test_relative_paths(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    mkdir(sub, 0700);
    put("sub/users", "alice\n");
    put("sub/t.conf", "users_file = users\n"
                                         "aliases_file = /nonexistent/aliases\n"
                                         "spool_dir = spool/q\n"
                                         "maildir = mail/%d/%u\n");
    config_default(&cfg);
    /* Loaded through a path with "..": the directory is made absolute. */
    char viadots[PATH_MAX + 32];
    snprintf(viadots, sizeof viadots, "%s/sub/../sub/t.conf", tmpdir);
    CHECK_EQ_INT(config_load(&cfg, viadots, &err), -EINVAL); /* only the aliases file is missing */
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/sub/users", tmpdir);
    CHECK_EQ_STR(cfg.users_file, want);
    CHECK_EQ_STR(cfg.aliases_file, "/nonexistent/aliases");
    snprintf(want, sizeof want, "%s/sub/spool/q", tmpdir);
    CHECK_EQ_STR(cfg.spool_dir, want);
    snprintf(want, sizeof want, "%s/sub/mail/%%d/%%u", tmpdir);
    CHECK_EQ_STR(cfg.maildir, want);
    CHECK(cfg.users != NULL);
    CHECK_EQ_INT(count_lines(&err), 1);
    config_free(&cfg);
    buf_free(&err);
}

static void test_check(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    char text[PATH_MAX * 2];

    /* A good configuration passes, with only the postmaster warning. */
    put("users", "alice\n");
    snprintf(text, sizeof text,
             "listen = 127.0.0.1:2525\nlisten = [::1]:2525\nlisten = 0.0.0.0:2526\n"
             "listen = [::]:2526\nspool_dir = %s/spool/deep/er\nusers_file = users\n"
             "local_domains = example.org\n",
             tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), 0);
    CHECK(has(&err, "warning: "));
    CHECK(has(&err, "postmaster@example.org is neither an alias nor a user"));
    CHECK_EQ_INT(count_lines(&err), 1);
    /* Nothing was created by the check. */
    char spool[PATH_MAX + 32];
    snprintf(spool, sizeof spool, "%s/spool", tmpdir);
    struct stat st;
    CHECK(stat(spool, &st) < 0);

    /* Programmatic damage is found too. */
    free(cfg.maildir);
    cfg.maildir = strdup("/srv/mail/%d");
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "the template must contain %u"));
    config_free(&cfg);

    /* With a postmaster alias (or any user accepted): no warning. */
    put("aliases", "postmaster: alice\n");
    snprintf(text, sizeof text, "spool_dir = %s/spool\nusers_file = users\n"
                                "aliases_file = aliases\nlocal_domains = example.org\n",
             tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), 0);
    CHECK_EQ_INT(err.len, 0);
    /* A file that vanished since the load. */
    char users[PATH_MAX + 16];
    snprintf(users, sizeof users, "%s/users", tmpdir);
    unlink(users);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "users_file "));
    config_free(&cfg);
    put("users", "alice\n");

    /* Listeners twice, or a wildcard over a specific address. */
    snprintf(text, sizeof text,
             "listen = 127.0.0.1:2525\nlisten = 127.0.0.1:2525 submission\n"
             "listen = 0.0.0.0:2600\nlisten = 127.0.0.2:2600\nlisten = [::1]:2600\n"
             "listen = [0:0::1]:2600\nspool_dir = %s/spool\n",
             tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "listen 127.0.0.1:2525: given twice"));
    CHECK(has(&err, "listen 127.0.0.2:2600 overlaps listen 0.0.0.0:2600"));
    CHECK(has(&err, "listen [0:0::1]:2600: given twice"));
    CHECK(!has(&err, "listen [::1]:2600 overlaps"));
    config_free(&cfg);

    /* A spool under a plain file cannot be created. */
    put("plain", "x");
    snprintf(text, sizeof text, "spool_dir = %s/plain/spool\n", tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "spool_dir "));
    CHECK(has(&err, "is not a directory"));
    config_free(&cfg);
    snprintf(text, sizeof text, "spool_dir = %s/plain\n", tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "not a directory"));
    config_free(&cfg);

    /* The embedded default passes in a writable working directory and has
     * no postmaster warning (any user is accepted). */
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        config_default(&cfg);
        buf_reset(&err);
        CHECK_EQ_INT(config_check(&cfg, &err), 0);
        CHECK_EQ_INT(err.len, 0);
        config_free(&cfg);
        CHECK_EQ_INT(chdir(cwd), 0);
    }
    buf_free(&err);
}

static void test_roles(void)
{
    CHECK_EQ_STR(config_role_name(CONF_ROLE_MX), "mx");
    CHECK_EQ_STR(config_role_name(CONF_ROLE_SUBMISSION), "submission");
    CHECK_EQ_STR(config_role_name(CONF_ROLE_SMTPS), "smtps");
}

static void test_tls_auth_keys(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    CHECK_EQ_INT(load(&cfg, &err,
                      "listen = 127.0.0.1:2587 submission cert=c.pem key=k.pem\n"
                      "listen = 127.0.0.1:2465 smtps\n"
                      "tls_cert = /etc/tls/full.pem\ntls_key = /etc/tls/priv.pem\n"
                      "tls_sni = *.Example.ORG /a/c.pem /a/k.pem\n"
                      "tls_min_version = TLSv1.3\ntimeout_tls = 2s\n"
                      "relay_networks = 127.0.0.0/8, ::1/128 192.0.2.7\n"
                      "sender_check = domain\nauth_failures_max = 3\n"
                      "auth_failure_window = 1m\nauth_plaintext_loopback = yes\n"
                      "auth_failure_delay_max = 0\n"),
                 0);
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/c.pem", tmpdir);
    CHECK_EQ_STR(config_listener_cert(&cfg, &cfg.listeners[0]), want);
    CHECK_EQ_STR(config_listener_cert(&cfg, &cfg.listeners[1]), "/etc/tls/full.pem");
    CHECK_EQ_STR(config_listener_key(&cfg, &cfg.listeners[1]), "/etc/tls/priv.pem");
    CHECK_EQ_INT(cfg.ntls_sni, 1);
    CHECK_EQ_STR(cfg.tls_sni[0].name, "*.example.org");
    CHECK_EQ_INT(cfg.tls_min_version, 13);
    CHECK_EQ_INT(cfg.timeout_tls, 2);
    CHECK_EQ_INT(cfg.sender_check, CONF_SENDER_DOMAIN);
    CHECK_EQ_INT(cfg.auth_failures_max, 3);
    CHECK_EQ_INT(cfg.auth_failure_window, 60);
    CHECK_EQ_INT(cfg.auth_failure_delay_max, 0);
    CHECK_EQ_INT(cfg.auth_plaintext_loopback, 1);
    CHECK_EQ_INT(cfg.nrelay_networks, 3);
    CHECK(config_relay_allowed(&cfg, "127.1.2.3"));
    CHECK(config_relay_allowed(&cfg, "::ffff:127.0.0.1"));
    CHECK(config_relay_allowed(&cfg, "::1"));
    CHECK(config_relay_allowed(&cfg, "192.0.2.7"));
    CHECK(!config_relay_allowed(&cfg, "192.0.2.8"));
    CHECK(!config_relay_allowed(&cfg, "128.0.0.1"));
    CHECK(!config_relay_allowed(&cfg, "::2"));
    CHECK(!config_relay_allowed(&cfg, "garbage"));
    CHECK(config_ip_is_loopback("127.9.9.9") && config_ip_is_loopback("::1"));
    CHECK(!config_ip_is_loopback("10.0.0.1") && !config_ip_is_loopback("::2"));
    config_free(&cfg);

    CHECK_EQ_INT(load(&cfg, &err,
                      "relay_networks = 10.0.0.0/33 nonsense\n"      /* 1 */
                      "sender_check = everyone\n"                    /* 2 */
                      "tls_min_version = SSLv3\n"                    /* 3 */
                      "tls_sni = host.example /only-cert.pem\n"      /* 4 */
                      "listen = 127.0.0.1:25 mx cert=/c.pem\n"       /* 5 */
                      "tls_sni = bad_name! /c.pem /k.pem\n"),        /* 6 */
                 -EINVAL);
    CHECK(has_at(&err, "tern.conf", 1, "relay_networks: '10.0.0.0/33' is not ADDRESS/PREFIX"));
    CHECK(has_at(&err, "tern.conf", 1, "relay_networks: 'nonsense' is not ADDRESS/PREFIX"));
    CHECK(has_at(&err, "tern.conf", 2, "sender_check: 'everyone' is not own, domain or any"));
    CHECK(has_at(&err, "tern.conf", 3, "tls_min_version: 'SSLv3' is not TLSv1.2 or TLSv1.3"));
    CHECK(has_at(&err, "tern.conf", 4, "tls_sni: expected HOSTNAME CERTFILE KEYFILE"));
    CHECK(has_at(&err, "tern.conf", 5, "listen: cert= and key= go together"));
    CHECK(has_at(&err, "tern.conf", 6, "tls_sni: 'bad_name!' is not a host name"));
    config_free(&cfg);

    /* route = DOMAIN local adds a local domain, before or after local_domains. */
    CHECK_EQ_INT(load(&cfg, &err, "route = Other.Example local\nlocal_domains = example.org\n"
                                  "route = example.com [192.0.2.1]:2525 tls=verify\n"),
                 0);
    CHECK(config_is_local_domain(&cfg, "other.example"));
    CHECK(config_is_local_domain(&cfg, "example.org"));
    CHECK(!config_is_local_domain(&cfg, "example.com"));
    CHECK_EQ_INT(config_route(&cfg, "example.com")->tls, CONF_TLS_VERIFY);
    CHECK_EQ_INT(config_route(&cfg, "example.com")->port, 2525);
    CHECK(config_route(&cfg, "example.net") == NULL);
    config_free(&cfg);
    CHECK_EQ_INT(load(&cfg, &err, "route = * local\nroute = x.test mx auth=u:p\n"
                                  "route = y.test mx bogus=1\n"),
                 -EINVAL);
    CHECK(has_at(&err, "tern.conf", 1, "route: '* local' is not allowed"));
    CHECK(has_at(&err, "tern.conf", 3, "route: unknown option 'bogus=1'"));
    config_free(&cfg);
    /* tls=none: never STARTTLS; never with a password, which would go in the clear. */
    CHECK_EQ_INT(load(&cfg, &err, "route = broken.example mx tls=none\n"), 0);
    CHECK_EQ_INT(config_route(&cfg, "broken.example")->tls, CONF_TLS_NONE);
    config_free(&cfg);
    buf_reset(&err);
    CHECK_EQ_INT(load(&cfg, &err, "route = x.test [192.0.2.1]:587 auth=u:p tls=none\n"), -EINVAL);
    CHECK(has_at(&err, "tern.conf", 1, "route: auth= with tls=none"));
    config_free(&cfg);

    /* A submission listener without a certificate cannot work. */
    char text[PATH_MAX + 128];
    snprintf(text, sizeof text, "listen = 127.0.0.1:2587 submission\nspool_dir = %s/spool\n",
             tmpdir);
    CHECK_EQ_INT(load(&cfg, &err, text), 0);
    buf_reset(&err);
    CHECK_EQ_INT(config_check(&cfg, &err), -EINVAL);
    CHECK(has(&err, "needs a certificate"));
    config_free(&cfg);
    buf_free(&err);
}

/* The limits on slow and idle clients (hardening issue, item 6). */
static void test_slow_client_keys(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    CHECK_EQ_INT(load(&cfg, &err,
                      "timeout_command_line = 2m\ndata_rate_min = 1k\ndata_rate_window = 1m\n"
                      "stress_threshold = 0\ntimeout_stress = 5s\n"),
                 0);
    CHECK_EQ_INT(cfg.timeout_command_line, 120);
    CHECK_EQ_INT(cfg.data_rate_min, 1024);
    CHECK_EQ_INT(cfg.data_rate_window, 60);
    CHECK_EQ_INT(cfg.stress_threshold, 0);
    CHECK_EQ_INT(cfg.timeout_stress, 5);
    config_free(&cfg);
    CHECK_EQ_INT(load(&cfg, &err,
                      "timeout_command_line = 0\n"      /* 1 */
                      "data_rate_window = 2h\n"         /* 2 */
                      "stress_threshold = 101\n"        /* 3 */
                      "timeout_stress = 0\n"            /* 4 */
                      "data_rate_min = 2g\n"            /* 5 */
                      "auth_failure_delay_max = 6m\n"), /* 6 */
                 -EINVAL);
    CHECK(has_at(&err, "tern.conf", 1, "timeout_command_line: 0 is below the minimum 1"));
    CHECK(has_at(&err, "tern.conf", 2, "data_rate_window: 2h is above the maximum 3600"));
    CHECK(has_at(&err, "tern.conf", 3, "stress_threshold: 101 is above the maximum 100"));
    CHECK(has_at(&err, "tern.conf", 4, "timeout_stress: 0 is below the minimum 1"));
    CHECK(has_at(&err, "tern.conf", 5, "data_rate_min: 2g is above the maximum"));
    CHECK(has_at(&err, "tern.conf", 6, "auth_failure_delay_max: 6m is above the maximum 300"));
    config_free(&cfg);
    buf_free(&err);
}

int main(void)
{
    make_tmpdir();
    test_defaults();
    test_tls_auth_keys();
    test_load_empty();
    test_every_key();
    test_suffixes();
    test_errors();
    test_relative_paths();
    test_check();
    test_roles();
    test_slow_client_keys();
    return check_result("test_config");
}
