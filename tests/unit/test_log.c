/* test_log: base/logjson (the JSON encoder of log_format = json, with
 * hostile text), strutil_escape_word, and base/log's two output formats
 * read back from a redirected stderr. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/logjson.h"
#include "base/strutil.h"
#include "check.h"
#include "mail/hdrscan.h"
#include "json_valid.h"

/* The JSON string literal logjson_string makes of s[0..n). */
static char *jstr(const char *s, size_t n, struct buf *b)
{
    buf_reset(b);
    logjson_string(b, s, n);
    return b->data;
}

static void test_string_escapes(void)
{
    struct buf b = BUF_INIT;
    CHECK_EQ_STR(jstr("plain", 5, &b), "\"plain\"");
    CHECK_EQ_STR(jstr("", 0, &b), "\"\"");
    CHECK_EQ_STR(jstr("a\"b\\c", 5, &b), "\"a\\\"b\\\\c\"");
    CHECK_EQ_STR(jstr("\r\n\t\x1b\x7f", 5, &b), "\"\\u000d\\u000a\\u0009\\u001b\\u007f\"");
    /* NUL inside the text: escaped, not an end. */
    CHECK_EQ_STR(jstr("a\0b", 3, &b), "\"a\\u0000b\"");
    /* Well-formed UTF-8 passes; a lone Latin-1 byte, a truncated sequence,
     * an overlong form and a surrogate do not. */
    CHECK_EQ_STR(jstr("caf\xc3\xa9", 5, &b), "\"caf\xc3\xa9\"");
    CHECK_EQ_STR(jstr("caf\xe9", 4, &b), "\"caf\\u00e9\"");
    CHECK_EQ_STR(jstr("\xe2\x82", 2, &b), "\"\\u00e2\\u0082\"");
    CHECK_EQ_STR(jstr("\xc0\xaf", 2, &b), "\"\\u00c0\\u00af\"");
    CHECK_EQ_STR(jstr("\xed\xa0\x80", 3, &b), "\"\\u00ed\\u00a0\\u0080\"");
    CHECK_EQ_STR(jstr("\xf0\x9f\x98\x80", 4, &b), "\"\xf0\x9f\x98\x80\"");
    CHECK_EQ_STR(jstr("\xff\xfe", 2, &b), "\"\\u00ff\\u00fe\"");
    /* Every single byte value makes a valid string that decodes to the
     * byte (ASCII) or to the code point of the same value. */
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        jstr(&in, 1, &b);
        struct buf obj = BUF_INIT, got = BUF_INIT;
        buf_printf(&obj, "{\"s\":%s}", b.data);
        int found = 0;
        CHECK(json_valid_object(obj.data, obj.len, "s", &got, &found));
        CHECK(found);
        if (c < 0x80)
            CHECK(got.len == 1 && (unsigned char)got.data[0] == c);
        else
            CHECK(got.len == 2);
        buf_free(&obj);
        buf_free(&got);
    }
    buf_free(&b);
}

static void test_qid(void)
{
    CHECK_EQ_INT(logjson_qid_len("61AD7B0398000000: removed", 25), 16);
    CHECK_EQ_INT(logjson_qid_len("NOQUEUE: reject: RCPT", 21), 0);
    CHECK_EQ_INT(logjson_qid_len("warning: x", 10), 0);
    CHECK_EQ_INT(logjson_qid_len("spool: recovered", 16), 0);
    CHECK_EQ_INT(logjson_qid_len("ABCDEFGH: x", 11), 0);  /* no digit */
    CHECK_EQ_INT(logjson_qid_len("1234567: x", 10), 0);   /* too short */
    CHECK_EQ_INT(logjson_qid_len("61AD7B0398000000", 16), 0);
    CHECK_EQ_INT(logjson_qid_len("61AD7B0398000000:x", 18), 0);
    CHECK_EQ_INT(logjson_qid_len("1234567890123456789012345: x", 28), 0); /* 25 */
}

/* Encodes msg and checks the result is one valid object; returns it. */
static const char *enc(const char *msg, size_t n, struct buf *b)
{
    buf_reset(b);
    struct logjson_event ev = {"2026-12-02T21:39:41.123Z", "mx.test", "tern/local", 42, "info",
                               msg, n};
    logjson_encode(b, &ev);
    CHECK(json_valid_object(b->data, b->len, NULL, NULL, NULL));
    CHECK(b->len > 0 && b->data[b->len - 1] == '\n');
    CHECK(memchr(b->data, '\n', b->len) == b->data + b->len - 1);
    return b->data;
}

/* The decoded string member `key` of a line, "" when absent. */
static const char *member(const struct buf *line, const char *key, struct buf *out)
{
    buf_reset(out);
    int found = 0;
    CHECK(json_valid_object(line->data, line->len, key, out, &found));
    if (!found)
        return "(absent)";
    return out->data ? out->data : "";
}

static void test_encode_fields(void)
{
    struct buf b = BUF_INIT, v = BUF_INIT;
    const char *dl = "61AD7B0398000000: to=<alice@example.test>, orig_to=<team@example.test>, "
                     "relay=local, delay=0.023, delays=0/0/0/0.016, dsn=2.0.0, status=sent "
                     "(delivered to maildir as 1.M2P3Q4.vm; to=<x@y>)";
    enc(dl, strlen(dl), &b);
    CHECK(strstr(b.data, "{\"ts\":\"2026-12-02T21:39:41.123Z\",\"host\":\"mx.test\","
                         "\"prog\":\"tern/local\",\"pid\":42,\"level\":\"info\",\"msg\":") == b.data);
    CHECK_EQ_STR(member(&b, "msg", &v), dl);
    CHECK_EQ_STR(member(&b, "qid", &v), "61AD7B0398000000");
    CHECK_EQ_STR(member(&b, "to", &v), "alice@example.test");
    CHECK_EQ_STR(member(&b, "orig_to", &v), "team@example.test");
    CHECK_EQ_STR(member(&b, "relay", &v), "local");
    CHECK_EQ_STR(member(&b, "delay", &v), "0.023");
    CHECK_EQ_STR(member(&b, "delays", &v), "0/0/0/0.016");
    CHECK_EQ_STR(member(&b, "dsn", &v), "2.0.0");
    CHECK_EQ_STR(member(&b, "status", &v), "sent");

    const char *fl = "61AD7B0398000000: from=<>, size=151, nrcpt=2 (queue active)";
    enc(fl, strlen(fl), &b);
    CHECK_EQ_STR(member(&b, "from", &v), "");
    CHECK(strstr(b.data, ",\"size\":151,\"nrcpt\":2}") != NULL);

    const char *cl = "61AD7B03D2DC0001: client=unknown[127.0.0.1], sasl_method=PLAIN, "
                     "sasl_username=alice";
    enc(cl, strlen(cl), &b);
    CHECK_EQ_STR(member(&b, "client", &v), "unknown[127.0.0.1]");
    CHECK_EQ_STR(member(&b, "sasl_username", &v), "alice");

    const char *rj = "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 "
                     "<no@example.test>: Recipient address rejected: User unknown; "
                     "from=<s@example.org> to=<no@example.test> proto=ESMTP helo=<client.test>";
    enc(rj, strlen(rj), &b);
    CHECK_EQ_STR(member(&b, "qid", &v), "(absent)");
    CHECK_EQ_STR(member(&b, "from", &v), "s@example.org");
    CHECK_EQ_STR(member(&b, "to", &v), "no@example.test");
    CHECK_EQ_STR(member(&b, "proto", &v), "ESMTP");
    CHECK_EQ_STR(member(&b, "helo", &v), "client.test");

    /* A remote reply quoted in a line that is not a field line is never
     * read as fields. */
    const char *rm = "61AD7B03D2DC0001: host mx[192.0.2.1] said: 451 to=<evil@x> status=sent; "
                     "trying the next host";
    enc(rm, strlen(rm), &b);
    CHECK_EQ_STR(member(&b, "to", &v), "(absent)");
    CHECK_EQ_STR(member(&b, "status", &v), "(absent)");

    /* A size that is not a plain number stays a string; a repeated key is
     * written once. */
    const char *odd = "61AD7B0398000000: from=<a@b>, size=0x10, from=<c@d>, nrcpt=007";
    enc(odd, strlen(odd), &b);
    CHECK_EQ_STR(member(&b, "from", &v), "a@b");
    CHECK_EQ_STR(member(&b, "size", &v), "0x10");
    CHECK_EQ_STR(member(&b, "nrcpt", &v), "007");

    /* Unterminated address: no field from it, still valid. */
    const char *un = "61AD7B0398000000: to=<alice@example.test, relay=local";
    enc(un, strlen(un), &b);
    CHECK_EQ_STR(member(&b, "to", &v), "(absent)");
    CHECK_EQ_STR(member(&b, "relay", &v), "(absent)");

    buf_free(&b);
    buf_free(&v);
}

/* What a peer can put into a log line, through tern's own escaping (as
 * the call sites do) and then straight in (as a careless one would): the
 * JSON stays valid and the message round-trips when it is ASCII. */
static void test_encode_hostile(void)
{
    static const char *const hostile[] = {
        "\"quoted\\\"\"@x.test", "a\\b\\\\c", "ctl\r\nInjected: line\x01\x1f\x7f",
        "8bit\xe9\xff\xc3(\xa0\xa1", "utf8-\xc3\xa9\xe2\x82\xac", "</script>{\"to\":1}",
        "\"x>, size=9, to=<evil\"@y", "", "\\u0000", "\x80\x80\x80\x80",
    };
    struct buf b = BUF_INIT, v = BUF_INIT, w = BUF_INIT, msg = BUF_INIT;
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        const char *h = hostile[i];
        buf_reset(&w);
        strutil_escape_word(&w, h, strlen(h));
        const char *esc = w.data ? w.data : "";
        /* Escaped words are printable ASCII with no space, '<', '>'. */
        for (const char *p = esc; *p; p++)
            CHECK(*p > 0x20 && *p < 0x7f && *p != '<' && *p != '>' && *p != ',' && *p != ';');
        buf_reset(&msg);
        buf_printf(&msg, "61AD7B0398000000: from=<%s>, size=12, nrcpt=1 (queue active)", esc);
        enc(msg.data, msg.len, &b);
        CHECK_EQ_STR(member(&b, "msg", &v), msg.data);
        CHECK_EQ_STR(member(&b, "from", &v), esc);
        CHECK(strstr(b.data, "\"size\":12") != NULL);
        buf_reset(&msg);
        buf_printf(&msg, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <%s>: "
                         "Recipient address rejected: User unknown; from=<%s> to=<%s> "
                         "proto=ESMTP helo=<%s>", esc, esc, esc, esc);
        enc(msg.data, msg.len, &b);
        CHECK_EQ_STR(member(&b, "to", &v), esc);
        CHECK_EQ_STR(member(&b, "helo", &v), esc);
        /* Unescaped, raw bytes and all. */
        buf_reset(&msg);
        buf_printf(&msg, "61AD7B0398000000: to=<%s>, relay=local, status=sent (%s)", h, h);
        enc(msg.data, msg.len, &b);
    }
    /* Every prefix of a long hostile message (cuts inside UTF-8 too). */
    const char *all = "61AD7B0398000000: to=<\"a\xc3\xa9\\\"\x01>, relay=r, status=bounced "
                      "(\xe2\x82\xac\xff\" said: 550)";
    for (size_t n = 0; n <= strlen(all); n++)
        enc(all, n, &b);
    buf_free(&b);
    buf_free(&v);
    buf_free(&w);
    buf_free(&msg);
}

static void test_escape_word(void)
{
    struct buf b = BUF_INIT;
    const char in[] = "\"a b\"<x>,y;z\\\x01\xe9";
    strutil_escape_word(&b, in, sizeof in - 1);
    CHECK_EQ_STR(b.data, "\"a\\x20b\"\\x3cx\\x3e\\x2cy\\x3bz\\\\\\x01\\xe9");
    buf_reset(&b);
    strutil_escape(&b, in, sizeof in - 1); /* the header escaper is unchanged */
    CHECK_EQ_STR(b.data, "\"a b\"<x>,y;z\\\\\\x01\\xe9");
    /* ... and escaping that again for a log word doubles nothing. */
    struct buf w = BUF_INIT;
    strutil_escape_word_again(&w, b.data);
    CHECK_EQ_STR(w.data, "\"a\\x20b\"\\x3cx\\x3e\\x2cy\\x3bz\\\\\\x01\\xe9");
    buf_reset(&w);
    strutil_escape_word_again(&w, "");
    CHECK_EQ_STR(w.data, "");
    buf_free(&w);
    buf_free(&b);
}

/* Runs fn with stderr going to a file; returns what it wrote. */
static void capture_stderr(void (*fn)(void), struct buf *out)
{
    char path[] = "/tmp/tern-test-log.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    char tmp[4096];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        buf_append(out, tmp, (size_t)r);
    close(fd);
}

static void emit_lines(void)
{
    log_info("61AD7B0398000000: removed");
    log_msg_as("tern/local", LOGL_INFO, "61AD7B0398000000: to=<a@b>, relay=local, delay=0, "
                                        "delays=0/0/0/0, dsn=2.0.0, status=sent (ok)");
    log_warn("spool: %s", "odd \"file\"\x1b");
    log_debug("not shown");
}

static void test_log_output(void)
{
    log_open(LOG_TO_STDERR, "mx.test");
    log_set_ident("tern/qmgr");
    log_set_format(LOG_FORMAT_LINE);
    struct buf out = BUF_INIT;
    capture_stderr(emit_lines, &out);
    char pid[32];
    snprintf(pid, sizeof pid, "[%ld]: ", (long)getpid());
    struct buf want = BUF_INIT;
    buf_printf(&want, " mx.test tern/qmgr%s61AD7B0398000000: removed\n", pid);
    CHECK(out.data && strstr(out.data, want.data) != NULL);
    buf_reset(&want);
    buf_printf(&want, " mx.test tern/local%s61AD7B0398000000: to=<a@b>, relay=local", pid);
    CHECK(out.data && strstr(out.data, want.data) != NULL);
    buf_reset(&want);
    buf_printf(&want, " mx.test tern/qmgr%swarning: spool: odd", pid);
    CHECK(out.data && strstr(out.data, want.data) != NULL);
    CHECK(out.data && strstr(out.data, "not shown") == NULL);

    log_set_format(LOG_FORMAT_JSON);
    buf_reset(&out);
    capture_stderr(emit_lines, &out);
    log_set_format(LOG_FORMAT_LINE);
    int lines = 0;
    struct buf v = BUF_INIT;
    for (const char *p = out.data; p && *p; lines++) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        if (nl == NULL)
            break;
        struct buf line = BUF_INIT;
        buf_append(&line, p, (size_t)(nl - p + 1));
        CHECK(json_valid_object(line.data, line.len, NULL, NULL, NULL));
        CHECK_EQ_STR(member(&line, "host", &v), "mx.test");
        const char *ts = member(&line, "ts", &v);
        CHECK(strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
        if (lines == 0) {
            CHECK_EQ_STR(member(&line, "prog", &v), "tern/qmgr");
            CHECK_EQ_STR(member(&line, "qid", &v), "61AD7B0398000000");
            CHECK_EQ_STR(member(&line, "level", &v), "info");
        } else if (lines == 1) {
            CHECK_EQ_STR(member(&line, "prog", &v), "tern/local");
            CHECK_EQ_STR(member(&line, "status", &v), "sent");
        } else {
            CHECK_EQ_STR(member(&line, "level", &v), "warning");
            CHECK_EQ_STR(member(&line, "msg", &v), "spool: odd \"file\"\x1b");
        }
        buf_free(&line);
        p = nl + 1;
    }
    CHECK_EQ_INT(lines, 3);
    buf_free(&v);
    buf_free(&out);
    buf_free(&want);
}

/* The identifier hdrscan keeps for "QID: message-id=<...>". */
static const char *msgid_of(const char *content, const char *added, struct buf *out)
{
    struct hdrscan h;
    hdrscan_init(&h);
    /* Fed in two pieces: a field may be split between calls. */
    size_t n = strlen(content), half = n / 2;
    hdrscan_feed(&h, content, 0, half);
    hdrscan_feed(&h, content, half, n);
    buf_reset(out);
    struct buf a = BUF_INIT;
    if (added)
        buf_puts(&a, added);
    int rc = hdrscan_message_id(&h, added ? &a : NULL, out);
    buf_free(&a);
    if (rc < 0)
        return "(none)";
    return out->data ? out->data : "";
}

static void test_message_id(void)
{
    struct buf b = BUF_INIT;
    CHECK_EQ_STR(msgid_of("Subject: x\r\nMessage-ID: <abc@example.org>\r\n\r\nbody\r\n", NULL, &b),
                 "abc@example.org");
    CHECK_EQ_STR(msgid_of("message-id:\r\n  <folded@x>\r\nTo: y\r\n\r\n", NULL, &b), "folded@x");
    CHECK_EQ_STR(msgid_of("Message-Id:  bare-id  \r\n\r\n", NULL, &b), "bare-id");
    CHECK_EQ_STR(msgid_of("Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n", NULL, &b),
                 "first@x");
    CHECK_EQ_STR(msgid_of("Subject: no id\r\n\r\nMessage-ID: <in-body@x>\r\n", NULL, &b),
                 "(none)");
    CHECK_EQ_STR(msgid_of("Message-ID:\r\n\r\n", NULL, &b), "(none)");
    CHECK_EQ_STR(msgid_of("Subject: s\r\n\r\n", "Date: now\r\nMessage-ID: <q.1@mx.test>\r\n", &b),
                 "q.1@mx.test");
    /* A value longer than the kept part: cut, never overrun. */
    struct buf big = BUF_INIT;
    buf_puts(&big, "Message-ID: <");
    for (int i = 0; i < 1000; i++)
        buf_putc(&big, 'a');
    buf_puts(&big, ">\r\n\r\n");
    const char *id = msgid_of(big.data, NULL, &b);
    CHECK(strlen(id) > 200 && strlen(id) < 256);
    buf_free(&big);
    buf_free(&b);
}

int main(void)
{
    test_string_escapes();
    test_qid();
    test_encode_fields();
    test_encode_hostile();
    test_escape_word();
    test_log_output();
    test_message_id();
    return check_result("test_log");
}
