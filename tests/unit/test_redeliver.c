/* test_redeliver: finding a delivery that a crash interrupted. A wrong
 * "found" loses mail, so every near miss must answer "not found". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "deliver/redeliver.h"

static char md[4096];

static void put(const char *sub, const char *name, const char *text)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/%s", md, sub, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *const msg =
    "Return-Path: <s@example.org>\n"
    "Delivered-To: lena@localhost\n"
    "Received: from x (unknown [127.0.0.1])\n"
    "\tby mx (tern) with ESMTP id 60E8ABCDEF010203\n"
    "\tfor <lena@localhost>; Mon, 23 Nov 2026 01:54:44 +0000\n"
    "Subject: hi\n"
    "\n"
    "body mentions 60E8ABCDEF010204 too\n";

int main(void)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(md, sizeof md, "%s/test_redeliver.XXXXXX", base);
    if (mkdtemp(md) == NULL)
        return 1;
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/new", md);
    mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/cur", md);
    mkdir(sub, 0700);
    char found[256] = "";
    const char *qid = "60E8ABCDEF010203";

    /* Nothing there yet. */
    CHECK_EQ_INT(redeliver_find(md, qid, "lena@localhost", 1795400000, 4242, found, sizeof found), 0);
    /* Files that are not the attempt's: another process, too early, too
     * late, another recipient, the id only in the body, an id that merely
     * starts with ours. */
    put("new", "1795400000.M1P4243Q1.host", msg);
    put("new", "1795399990.M1P4242Q2.host", msg);
    put("new", "1795409000.M1P4242Q3.host", msg);
    put("new", "1795400001.M1P4242Q4.host",
        "Delivered-To: other@localhost\nReceived: by mx with ESMTP id 60E8ABCDEF010203;\n\nx\n");
    put("new", "1795400001.M1P4242Q5.host",
        "Delivered-To: lena@localhost\nSubject: x\n\nid 60E8ABCDEF010203\n");
    put("new", "1795400001.M1P4242Q6.host",
        "Delivered-To: lena@localhost\nReceived: by mx with ESMTP id 60E8ABCDEF0102030;\n\nx\n");
    put("new", "garbage-name", msg);
    CHECK_EQ_INT(redeliver_find(md, qid, "lena@localhost", 1795400000, 4242, found, sizeof found), 0);
    /* The attempt's own file, already moved to cur/ with flags by a
     * reader: found, whatever the case of the address. */
    put("cur", "1795400002.M77P4242Q9.host:2,S", msg);
    CHECK_EQ_INT(redeliver_find(md, qid, "Lena@Localhost", 1795400000, 4242, found, sizeof found),
                 1);
    CHECK_EQ_STR(found, "1795400002.M77P4242Q9.host:2,S");
    /* Another queue id of the same process is not this one. */
    CHECK_EQ_INT(
        redeliver_find(md, "60E8ABCDEF010204", "lena@localhost", 1795400000, 4242, found, sizeof found),
        0);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", md);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", md);
    return check_result("test_redeliver");
}
