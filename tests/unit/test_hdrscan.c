/* test_hdrscan: where a message's header section ends, fed whole and
 * octet by octet. A wrong end puts the added Date:/Message-ID:/From: in
 * the body, or body text in the header. */
#include <string.h>

#include "check.h"
#include "mail/hdrscan.h"

struct want {
    const char *text;
    int done, nosep;
    long end; /* -1: the offset of the marker "|" (removed from the text) */
    unsigned seen;
};

static void run_case(const struct want *w, int bytewise)
{
    char text[512];
    const char *bar = strchr(w->text, '|');
    size_t n = strlen(w->text), mark = bar ? (size_t)(bar - w->text) : 0;
    if (bar) {
        memcpy(text, w->text, mark);
        memcpy(text + mark, bar + 1, n - mark);
        n--;
    } else {
        memcpy(text, w->text, n);
    }
    text[n] = '\0';
    struct hdrscan h;
    hdrscan_init(&h);
    if (bytewise) {
        for (size_t i = 0; i < n; i++)
            hdrscan_feed(&h, text, i, i + 1);
    } else {
        hdrscan_feed(&h, text, 0, n);
    }
    CHECK_EQ_INT(h.done, w->done);
    CHECK_EQ_INT(h.nosep, w->nosep);
    if (w->done)
        CHECK_EQ_INT(h.end, w->end >= 0 ? (size_t)w->end : mark);
    CHECK_EQ_INT(h.seen, w->seen);
    if (check_failures)
        fprintf(stderr, "  in case %s (%s)\n", w->text, bytewise ? "bytewise" : "whole");
}

int main(void)
{
    static const struct want cases[] = {
        {"Subject: a\r\n|\r\nbody\r\n", 1, 0, -1, 0},
        {"Date: x\nFrom: a@b\n|\nbody\n", 1, 0, -1, HDRSCAN_DATE | HDRSCAN_FROM},
        /* No header at all (echo text | sendmail user): the body is everything. */
        {"|disk full\n", 1, 1, -1, 0},
        {"|disk full", 1, 1, -1, 0},
        /* A line with no colon ends the header; what follows is body. */
        {"Subject: x\r\n|some garbage\r\nDate: y\r\n\r\nb\r\n", 1, 1, -1, 0},
        {"Subject: x\n|From mbox line\n", 1, 1, -1, 0},
        /* The first line cannot be a continuation. */
        {"| folded first\nDate: x\n\n", 1, 1, -1, 0},
        /* A continuation after a field is header. */
        {"Subject: x\n continued\nDate: y\n|\n", 1, 0, -1, HDRSCAN_DATE},
        /* Obsolete white space before the colon (RFC 5322 §4.5.2). */
        {"Date : x\n|\nb\n", 1, 0, -1, HDRSCAN_DATE},
        /* A name longer than hdrscan keeps is still a field. */
        {"X-A-Very-Long-Field-Name-Indeed: v\nMessage-ID: <a@b>\n|\n", 1, 0, -1, HDRSCAN_MSGID},
        /* 8-bit octets or a control in a name: no field. */
        {"Date: x\n|Subj\xc3\xa9t: y\n\n", 1, 1, -1, HDRSCAN_DATE},
        {"|:no name\n", 1, 1, -1, 0},
        {"Date: x\n|Two words: y\n", 1, 1, -1, HDRSCAN_DATE},
        /* A bare CR at a line start: that line is no field and not empty. */
        {"Subject: a\n|\r\r\nb\n", 1, 1, -1, 0},
        {"Subject: a\n|\rX: y\n\n", 1, 1, -1, 0},
        {"Subject: a\n|\r\nb\n", 1, 0, -1, 0},
        /* Only header, no end seen yet. */
        {"From: a@b\r\nDate: x\r\n", 0, 0, 0, HDRSCAN_FROM | HDRSCAN_DATE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], 0);
        run_case(&cases[i], 1);
    }

    /* The content may start after what the caller put first (smtp_session
     * scans after its own Received: line): offsets stay absolute. */
    struct hdrscan h;
    const char *pre = "Received: by us\r\nSubject: a\r\n\r\nbody\r\n";
    size_t skip = strlen("Received: by us\r\n");
    hdrscan_init(&h);
    hdrscan_feed(&h, pre, skip, strlen(pre));
    CHECK_EQ_INT(h.done, 1);
    CHECK_EQ_INT(h.nosep, 0);
    CHECK_EQ_INT(h.end, skip + strlen("Subject: a\r\n"));
    CHECK_EQ_INT(h.received, 0);
    hdrscan_init(&h);
    pre = "Received: by us\r\nno header\r\n";
    hdrscan_feed(&h, pre, skip, strlen(pre));
    CHECK_EQ_INT(h.done, 1);
    CHECK_EQ_INT(h.nosep, 1);
    CHECK_EQ_INT(h.end, skip);

    /* The fixes end with the empty line when the body starts without one. */
    hdrscan_init(&h);
    const char *t = "disk full\n";
    hdrscan_feed(&h, t, 0, strlen(t));
    struct buf add = BUF_INIT;
    hdrscan_fixes(&h, "id", "mx.test", NULL, "root@mx.test", &add);
    CHECK(add.len > 5 && memcmp(add.data + add.len - 5, ">\r\n\r\n", 5) == 0);
    CHECK(strstr(add.data, "Date: ") == add.data);
    buf_free(&add);
    /* ... and not when the message had one. */
    hdrscan_init(&h);
    t = "Subject: s\n\nbody\n";
    hdrscan_feed(&h, t, 0, strlen(t));
    hdrscan_fixes(&h, "id", "mx.test", NULL, NULL, &add);
    CHECK(add.len > 2 && memcmp(add.data + add.len - 2, "\r\n", 2) == 0);
    CHECK(add.len < 4 || memcmp(add.data + add.len - 4, "\r\n\r\n", 4) != 0);
    buf_free(&add);
    /* Nothing to add: no empty line either. */
    hdrscan_init(&h);
    t = "Date: d\nMessage-ID: <x@y>\nno field\n";
    hdrscan_feed(&h, t, 0, strlen(t));
    hdrscan_fixes(&h, "id", "mx.test", NULL, NULL, &add);
    CHECK_EQ_INT(add.len, 0);
    buf_free(&add);
    return check_result("test_hdrscan");
}
