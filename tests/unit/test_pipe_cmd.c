/* test_pipe_cmd: an alias's command template (mail/pipe_cmd): split on
 * white space, ${name} replaced inside its argument as plain bytes (what
 * a shell would read as syntax stays data, in one argument), and the
 * templates the aliases file must refuse. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mail/pipe_cmd.h"

/* The argument vector joined with '|' (none of the cases holds one). */
static const char *argv_of(const char *tmpl, const char *const *vals)
{
    static char out[4096];
    char **argv = NULL;
    if (pipe_cmd_expand(tmpl, vals, &argv) < 0)
        return "-1";
    out[0] = '\0';
    for (char **a = argv; *a; a++) {
        size_t l = strlen(out);
        snprintf(out + l, sizeof out - l, "%s[%s]", a == argv ? "" : " ", *a);
    }
    pipe_cmd_free(argv);
    return out;
}

static void test_expand(void)
{
    const char *vals[PIPE_VAR_N] = {"s@example.net", "lists+dev@example.org", "lists", "dev",
                                    "example.org"};
    CHECK_EQ_STR(argv_of("/usr/bin/procmail -a ${extension}", vals),
                 "[/usr/bin/procmail] [-a] [dev]");
    CHECK_EQ_STR(argv_of("/bin/x  \t-f${sender}  --to=${recipient},${user}@${domain} ", vals),
                 "[/bin/x] [-fs@example.net] [--to=lists+dev@example.org,lists@example.org]");
    /* "$" alone, "$x", "{" stay as they are. */
    CHECK_EQ_STR(argv_of("/bin/x $ $x {y} $}", vals), "[/bin/x] [$] [$x] [{y}] [$}]");
    /* An empty value leaves an empty argument, not none. */
    const char *none[PIPE_VAR_N] = {"", "a@b", "a", NULL, "b"};
    CHECK_EQ_STR(argv_of("/bin/x -a ${extension} -s ${sender}", none),
                 "[/bin/x] [-a] [] [-s] []");
    CHECK_EQ_STR(argv_of("/bin/x", NULL), "[/bin/x]");
    /* Shell syntax in a value is bytes in one argument: spaces, quotes,
     * $(...), backquotes, ';', '|', '&', '>', '*', a newline. */
    const char *evil[PIPE_VAR_N] = {"\"$(touch /tmp/pwn); `id` | a&b>c *\"@x",
                                    "'a'\"b\"@x", "u", "e\nf", "d"};
    CHECK_EQ_STR(argv_of("/bin/x ${sender} ${recipient} ${extension}", evil),
                 "[/bin/x] [\"$(touch /tmp/pwn); `id` | a&b>c *\"@x] ['a'\"b\"@x] [e\nf]");
    /* A value never makes a new variable: "${user}" as a value stays. */
    const char *self[PIPE_VAR_N] = {"${user}", "r", "u", "", "d"};
    CHECK_EQ_STR(argv_of("/bin/x ${sender}", self), "[/bin/x] [${user}]");
    /* 32 words are fine. */
    char many[1024] = "/bin/x";
    for (int i = 1; i < 32; i++)
        strcat(many, " a");
    char **argv = NULL;
    CHECK_EQ_INT(pipe_cmd_expand(many, vals, &argv), 0);
    size_t n = 0;
    while (argv && argv[n])
        n++;
    CHECK_EQ_INT(n, 32);
    pipe_cmd_free(argv);
    strcat(many, " a");
    CHECK_EQ_STR(argv_of(many, vals), "-1");
}

static void test_check(void)
{
    const char *why = NULL;
    CHECK_EQ_INT(pipe_cmd_check("/usr/bin/procmail -a ${extension}", &why), 0);
    static const struct {
        const char *tmpl, *why;
    } bad[] = {
        {"", "no command"},
        {"   ", "no command"},
        {"procmail", "the program must be an absolute path"},
        {"./procmail", "the program must be an absolute path"},
        {"${user}/x", "the program must be an absolute path"},
        {"/bin/${user}", "the program path cannot hold a ${name}"},
        {"/bin/x ${USER}", "unknown ${name}"},
        {"/bin/x ${user", "unknown ${name}"},
        {"/bin/x ${}", "unknown ${name}"},
        {"/bin/x ${user }", "unknown ${name}"},
        {"/bin/x \x01", "the command may only hold printable ASCII"},
        {"/bin/x \n", "the command may only hold printable ASCII"},
        {"/bin/x \xc3\xa9", "the command may only hold printable ASCII"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK_EQ_INT(pipe_cmd_check(bad[i].tmpl, &why), -EINVAL);
        CHECK(why != NULL && strstr(why, bad[i].why) != NULL);
        if (why == NULL || strstr(why, bad[i].why) == NULL)
            fprintf(stderr, "  case %zu: %s\n", i, why ? why : "(none)");
    }
    char longest[PIPE_CMD_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[0] = '/';
    longest[PIPE_CMD_MAX] = '\0';
    CHECK_EQ_INT(pipe_cmd_check(longest, &why), 0);
    longest[PIPE_CMD_MAX] = 'a';
    longest[PIPE_CMD_MAX + 1] = '\0';
    CHECK_EQ_INT(pipe_cmd_check(longest, &why), -EINVAL);
    CHECK_EQ_STR(pipe_cmd_env_name(PIPE_VAR_EXTENSION), "EXTENSION");
    CHECK_EQ_STR(pipe_cmd_var_name(PIPE_VAR_RECIPIENT), "recipient");
}

int main(void)
{
    test_expand();
    test_check();
    return check_result("test_pipe_cmd");
}
