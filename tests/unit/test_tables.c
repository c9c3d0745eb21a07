/* test_tables: the users and aliases tables, alias expansion, RCPT
 * classification, accept_any_user, a large table, and the Maildir path
 * template. */
#include "config_fixture.h"

static void test_users(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    put("users", "# the users\n"
                 "alice\n"
                 "Bob@Example.ORG : $6$salt$hash#notacomment   # a comment\n"
                 "carol@example.net\n"
                 "\n"
                 "dave:\n");
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org example.net\nusers_file = users\n"),
                 0);
    if (err.len)
        fprintf(stderr, "%s", err.data);
    CHECK_EQ_INT(rcpt(&cfg, "alice", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "ALICE", "EXAMPLE.NET"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "bob", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "bOB", "Example.Org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "bob", "example.net"), CONF_RCPT_UNKNOWN);
    CHECK_EQ_INT(rcpt(&cfg, "carol", "example.net"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "carol", "example.org"), CONF_RCPT_UNKNOWN);
    CHECK_EQ_INT(rcpt(&cfg, "dave", "example.net"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "erin", "example.org"), CONF_RCPT_UNKNOWN);
    CHECK_EQ_INT(rcpt(&cfg, "alice", "localhost"), CONF_RCPT_REMOTE);
    CHECK_EQ_INT(rcpt(&cfg, "alice", "remote.test"), CONF_RCPT_REMOTE);
    /* postmaster is always local, alias or not (RFC 5321 §4.5.1). */
    CHECK_EQ_INT(rcpt(&cfg, "postmaster", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "PostMaster", "example.net"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "postmaster", "remote.test"), CONF_RCPT_REMOTE);
    struct mailaddr pm;
    memset(&pm, 0, sizeof pm);
    pm.flags = MAILADDR_F_POSTMASTER;
    strcpy(pm.local, "postmaster");
    strcpy(pm.text, "postmaster");
    CHECK_EQ_INT(config_rcpt_check(&cfg, &pm), CONF_RCPT_LOCAL);
    /* Without an alias, all postmaster mail goes to one mailbox. */
    CHECK_EQ_STR(expand(&cfg, "postmaster"), "postmaster@example.org");
    CHECK_EQ_STR(expand(&cfg, "POSTMASTER@example.net"), "postmaster@example.org");
    /* The hash is kept for AUTH. */
    const struct conf_entry *e = conf_table_get(cfg.users, "bob@example.org");
    CHECK(e != NULL && e->nvals == 1);
    if (e && e->nvals == 1)
        CHECK_EQ_STR(e->vals[0], "$6$salt$hash#notacomment");
    e = conf_table_get(cfg.users, "dave");
    CHECK(e != NULL && e->nvals == 0);
    CHECK_EQ_STR(expand(&cfg, "Alice@Example.NET"), "alice@example.net");
    CHECK_EQ_STR(expand(&cfg, "erin@example.org"), "-1");
    CHECK_EQ_STR(expand(&cfg, "alice@remote.test"), "-1");
    CHECK_EQ_STR(expand(&cfg, "alice"), "-1"); /* only postmaster may come bare */
    config_free(&cfg);

    /* Errors, each at its line, all of them. */
    put("users", "ok\n"                  /* 1 */
                 "../x\n"                /* 2 */
                 "a/b\n"                 /* 3 */
                 ".hidden\n"             /* 4 */
                 "two words\n"           /* 5 */
                 "eve@elsewhere.test\n"  /* 6 */
                 "OK\n"                  /* 7: duplicate of line 1 */
                 ":hashonly\n"           /* 8 */
                 "x\xc3\xa9\n"           /* 9 */
                 /* 10: 65 octets */
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    CHECK_EQ_INT(load(&cfg, &err, "users_file = users\n"), -EINVAL);
    CHECK(has_at(&err, "users", 2, "user '../x': a local part may only hold"));
    CHECK(has_at(&err, "users", 3, "user 'a/b'"));
    CHECK(has_at(&err, "users", 4, "user '.hidden'"));
    CHECK(has_at(&err, "users", 5, "expected 'name' or 'name@domain'"));
    CHECK(has_at(&err, "users", 6, "user 'eve@elsewhere.test': the domain is not in"));
    CHECK(has_at(&err, "users", 7, "duplicate user 'ok' (first on line 1)"));
    CHECK(has_at(&err, "users", 8, "expected 'name'"));
    CHECK(has_at(&err, "users", 9, "user 'x\\xc3\\xa9'"));
    CHECK(has_at(&err, "users", 10, "user 'aaaa"));
    CHECK_EQ_INT(count_lines(&err), 9);
    config_free(&cfg);
    buf_free(&err);
}

static void test_aliases(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    put("users", "alice\nbob@example.org\ncarol@example.net\ndave\n");
    struct buf al = BUF_INIT;
    buf_puts(&al, "team: alice, bob@example.org carol\n"
                  "dup: alice, team, Alice@Example.org, bob\n"
                  "Info@Example.ORG: alice\n"
                  "loop1: loop2\n"
                  "loop2: loop1\n"
                  "loopu: loopv\n"
                  "loopv: loopu, alice\n"
                  "dave: dave, alice\n"
                  "ghost: nobody, alice\n"
                  "abuse: postmaster\n"
                  "diamond: d1 d2 d3\n"
                  "d1: e1 e2 e3\n"
                  "d2: e1 e2 e3\n"
                  "d3: e1 e2 e3\n"
                  "e1: alice\ne2: alice\ne3: bob\n");
    for (int i = 0; i < 16; i++) {
        if (i == 15)
            buf_printf(&al, "c%d: alice\n", i);
        else
            buf_printf(&al, "c%d: c%d\n", i, i + 1);
    }
    /* x0 -> ... -> x16 -> alice: 17 levels, too deep. */
    for (int i = 0; i < 17; i++) {
        if (i == 16)
            buf_printf(&al, "x%d: alice\n", i);
        else
            buf_printf(&al, "x%d: x%d\n", i, i + 1);
    }
    put("aliases", al.data);
    buf_free(&al);
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org, example.net\n"
                                  "users_file = users\naliases_file = aliases\n"),
                 0);
    if (err.len)
        fprintf(stderr, "%s", err.data);

    /* carol is a user only at example.net: skipped for team@example.org. */
    CHECK_EQ_STR(expand(&cfg, "team@example.org"), "alice@example.org bob@example.org");
    CHECK_EQ_STR(expand(&cfg, "TEAM@example.net"),
                 "alice@example.net bob@example.org carol@example.net");
    /* Each mailbox once. */
    CHECK_EQ_STR(expand(&cfg, "dup@example.org"), "alice@example.org bob@example.org");
    /* A domain-specific alias. */
    CHECK_EQ_STR(expand(&cfg, "info@example.org"), "alice@example.org");
    CHECK_EQ_STR(expand(&cfg, "info@example.net"), "-1");
    CHECK_EQ_INT(rcpt(&cfg, "info", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "info", "example.net"), CONF_RCPT_UNKNOWN);
    /* Loops end their branch: nothing at all here, so refused at RCPT. */
    CHECK_EQ_STR(expand(&cfg, "loop1@example.org"), "-1");
    CHECK_EQ_INT(rcpt(&cfg, "loop1", "example.org"), CONF_RCPT_UNKNOWN);
    CHECK_EQ_STR(expand(&cfg, "loopu@example.org"), "alice@example.org");
    CHECK_EQ_INT(rcpt(&cfg, "loopu", "example.org"), CONF_RCPT_LOCAL);
    /* A user aliased to himself plus someone keeps his own mailbox. */
    CHECK_EQ_STR(expand(&cfg, "dave@example.org"), "dave@example.org alice@example.org");
    /* Unknown targets are skipped. */
    CHECK_EQ_STR(expand(&cfg, "ghost@example.org"), "alice@example.org");
    /* postmaster as a target, without an alias of its own. */
    CHECK_EQ_STR(expand(&cfg, "abuse@example.net"), "postmaster@example.org");
    /* Many paths to the same aliases. */
    CHECK_EQ_STR(expand(&cfg, "diamond@example.org"), "alice@example.org bob@example.org");
    /* Depth. */
    CHECK_EQ_STR(expand(&cfg, "c0@example.org"), "alice@example.org");
    CHECK_EQ_STR(expand(&cfg, "c1@example.org"), "alice@example.org");
    CHECK_EQ_STR(expand(&cfg, "x0@example.org"), "-1");
    CHECK_EQ_STR(expand(&cfg, "x1@example.org"), "alice@example.org");

    /* Results are appended to what the caller already has. */
    struct conf_mailbox *mb = NULL;
    size_t n = 0;
    CHECK_EQ_INT(config_expand(&cfg, "alice@example.org", &mb, &n), 0);
    CHECK_EQ_INT(config_expand(&cfg, "team@example.org", &mb, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(config_expand(&cfg, "loop1@example.org", &mb, &n), -ENOENT);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_STR(mb[0].user, "alice");
        CHECK_EQ_STR(mb[2].user, "bob");
        CHECK_EQ_STR(mb[2].domain, "example.org");
    }
    free(mb);

    /* config_check warns about the unknown target and the postmaster. */
    buf_reset(&err);
    config_check(&cfg, &err);
    CHECK(has(&err, "warning: "));
    CHECK(has(&err, ":9: alias target 'nobody' is neither a user nor an alias"));
    CHECK(has(&err, "postmaster@example.org is neither an alias nor a user"));
    config_free(&cfg);

    /* With a postmaster alias. */
    put("aliases", "postmaster: dave, alice\n");
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org, example.net\n"
                                  "users_file = users\naliases_file = aliases\n"),
                 0);
    CHECK_EQ_STR(expand(&cfg, "postmaster"), "dave@example.org alice@example.org");
    CHECK_EQ_STR(expand(&cfg, "Postmaster@example.net"), "dave@example.net alice@example.net");
    config_free(&cfg);

    /* Errors. */
    put("aliases", "ok: alice\n"                         /* 1 */
                   "fwd: alice, bob@remote.example\n"    /* 2 */
                   "no colon here\n"                     /* 3 */
                   "empty:\n"                            /* 4 */
                   "pipe: |/bin/sh\n"                    /* 5 */
                   "OK: bob\n"                           /* 6 */
                   "../x: alice\n"                       /* 7 */
                   "x@remote.example: alice\n"           /* 8 */
                   "two words: alice\n"                  /* 9 */
                   "file: /etc/passwd\n");               /* 10 */
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org\n"
                                  "users_file = users\naliases_file = aliases\n"),
                 -EINVAL);
    /* Line 2 is fine: a target in another domain is relayed to. */
    CHECK(!has(&err, "aliases:2:"));
    CHECK(has_at(&err, "aliases", 3, "missing ':'"));
    CHECK(has_at(&err, "aliases", 4, "alias 'empty' has no targets"));
    CHECK(has_at(&err, "aliases", 5, "alias target '|/bin/sh'"));
    CHECK(has_at(&err, "aliases", 6, "duplicate alias 'ok' (first on line 1)"));
    CHECK(has_at(&err, "aliases", 7, "alias '../x'"));
    CHECK(has_at(&err, "aliases", 8, "alias 'x@remote.example': the domain is not in"));
    CHECK(has_at(&err, "aliases", 9, "expected 'alias: target, ...'"));
    CHECK(has_at(&err, "aliases", 10, "alias target '/etc/passwd'"));
    /* The users file has carol@example.net, not a local domain here. */
    CHECK(has_at(&err, "users", 3, "user 'carol@example.net': the domain is not in"));
    CHECK_EQ_INT(count_lines(&err), 9);
    config_free(&cfg);

    /* A remote target is expanded as it is, next to the local ones. */
    put("aliases", "fwd: alice, Bob@Remote.Example\nchain: fwd, carol@remote.example\n");
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org\n"
                                  "users_file = users\naliases_file = aliases\n"),
                 -EINVAL); /* the users file still names example.net */
    config_free(&cfg);
    put("users", "alice\n");
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org\n"
                                  "users_file = users\naliases_file = aliases\n"),
                 0);
    CHECK_EQ_STR(expand(&cfg, "fwd@example.org"), "alice@example.org bob@remote.example");
    CHECK_EQ_STR(expand(&cfg, "chain@example.org"),
                 "alice@example.org bob@remote.example carol@remote.example");
    config_free(&cfg);
    buf_free(&err);
}

static void test_accept_any_user(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    put("aliases", "sales: bob\n");
    CHECK_EQ_INT(load(&cfg, &err, "accept_any_user = yes\nlocal_domains = example.org\n"
                                  "aliases_file = aliases\n"),
                 0);
    CHECK_EQ_INT(rcpt(&cfg, "John.Doe", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_INT(rcpt(&cfg, "a+tag_x-y", "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_STR(expand(&cfg, "John.Doe@EXAMPLE.org"), "john.doe@example.org");
    CHECK_EQ_STR(expand(&cfg, "sales@example.org"), "bob@example.org");
    char l64[65], l65[66];
    memset(l64, 'a', 64);
    l64[64] = '\0';
    memset(l65, 'a', 65);
    l65[65] = '\0';
    CHECK_EQ_INT(rcpt(&cfg, l64, "example.org"), CONF_RCPT_LOCAL);
    CHECK_EQ_STR(expand(&cfg, l65), "-1");
    /* Nothing that could climb out of the mail directory. */
    static const char *const bad[] = {"../x", "..", ".", ".x", "a/b", "a\\b", "a b", "a\"b",
                                      "x\xc3\xa9", "a:b", "a%b", "a*", "", "a\tb", "~root"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(rcpt(&cfg, bad[i], "example.org"), CONF_RCPT_UNKNOWN);
        char a[128];
        snprintf(a, sizeof a, "%s@example.org", bad[i]);
        CHECK_EQ_STR(expand(&cfg, a), "-1");
    }
    CHECK_EQ_STR(expand(&cfg, "../../etc@example.org"), "-1");
    config_free(&cfg);
    buf_free(&err);
}

static void test_maildir_path(void)
{
    struct config cfg;
    struct buf err = BUF_INIT;
    CHECK_EQ_INT(load(&cfg, &err, "maildir = /srv/100%%/%d/%u/Maildir\n"
                                  "local_domains = example.org\n"),
                 0);
    char path[256];
    struct conf_mailbox mb = {"Alice", "Example.ORG"};
    CHECK_EQ_INT(config_maildir_path(&cfg, &mb, path, sizeof path), 0);
    CHECK_EQ_STR(path, "/srv/100%/example.org/alice/Maildir");
    /* Exactly fitting, and one byte short. */
    size_t need = strlen("/srv/100%/example.org/alice/Maildir") + 1;
    CHECK_EQ_INT(config_maildir_path(&cfg, &mb, path, need), 0);
    CHECK_EQ_INT(config_maildir_path(&cfg, &mb, path, need - 1), -ENAMETOOLONG);
    /* Unsafe names never make a path, even if a caller passes one. */
    struct conf_mailbox evil = {"../root", "example.org"};
    CHECK_EQ_INT(config_maildir_path(&cfg, &evil, path, sizeof path), -EINVAL);
    struct conf_mailbox evil2 = {"x", "../.."};
    CHECK_EQ_INT(config_maildir_path(&cfg, &evil2, path, sizeof path), -EINVAL);
    struct conf_mailbox evil3 = {"x", "a/b"};
    CHECK_EQ_INT(config_maildir_path(&cfg, &evil3, path, sizeof path), -EINVAL);
    config_free(&cfg);

    /* The default of a loaded file: next to it, by domain. */
    CHECK_EQ_INT(load(&cfg, &err, "local_domains = example.org\n"), 0);
    struct conf_mailbox bob = {"bob", "example.org"};
    CHECK_EQ_INT(config_maildir_path(&cfg, &bob, path, sizeof path), 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/var/mail/example.org/bob/Maildir", tmpdir);
    CHECK_EQ_STR(path, want);
    config_free(&cfg);
    buf_free(&err);
}

/* Many users: the table grows and every lookup still finds its entry. */
static void test_big_table(void)
{
    struct buf u = BUF_INIT;
    for (int i = 0; i < 5000; i++)
        buf_printf(&u, "user%d\n", i);
    put("users", u.data);
    buf_free(&u);
    struct config cfg;
    struct buf err = BUF_INIT;
    CHECK_EQ_INT(load(&cfg, &err, "users_file = users\n"), 0);
    int found = 0;
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "USER%d", i);
        found += rcpt(&cfg, name, "localhost") == CONF_RCPT_LOCAL;
    }
    CHECK_EQ_INT(found, 5000);
    CHECK_EQ_INT(rcpt(&cfg, "user5000", "localhost"), CONF_RCPT_UNKNOWN);
    config_free(&cfg);
    buf_free(&err);
}

/* The TLS, AUTH and relay keys of issue 3. */

int main(void)
{
    make_tmpdir();
    test_users();
    test_aliases();
    test_accept_any_user();
    test_maildir_path();
    test_big_table();
    return check_result("test_tables");
}
