"""Logs: the line format is Postfix's, so Debian's pflogsumm (--syslog-name=tern) summarises
a tern log correctly; log_format = json writes one valid JSON object per line, with the
fields of each event, whatever a peer put into the text.

The relay side is hermetic: `route = x.test 127.0.0.2:PORT` points at a ternlib.SinkServer
that answers 550 for one recipient (a bounce), 451 for another (a deferral) and 250 for
the rest."""
import json
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from ternlib import free_port_on, scaled

PFLOGSUMM = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"


@pytest.fixture
def port():
    return free_port_on(["127.0.0.2"])


def make_sink(sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    sink.rcpt_replies = {"gone@x.test": "550 5.1.1 <gone@x.test>: no such user here",
                         "later@x.test": "451 4.3.0 try again later"}
    return sink


def make_tern(tern_factory, port, **kw):
    # retry_min 1h: the deferred message is tried exactly once during the test.
    return tern_factory(relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
                        extra_lines=["route = x.test 127.0.0.2:%d" % port], **kw)


def content(subject, body="hello\r\n"):
    return ("From: someone@example.org\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n%s"
            % (subject, subject, body)).encode()


def wait_lines(server, pattern, n, timeout=15):
    """Waits until `pattern` matches at least n times in the log."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        found = re.findall(pattern, server.log(), re.M)
        if len(found) >= n:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError("%d of %d lines matching %r; log tail:\n%s"
                                 % (len(found), n, pattern, server.log_tail()))
        time.sleep(0.05)


# --------------------------------------------------------------------------- pflogsumm


def grand_totals(text):
    """pflogsumm's Grand Totals as {label: number} ("received": 6, "bytes received": 900...)."""
    totals = {}
    section = text.split("Grand Totals", 1)[1].split("Per-Hour", 1)[0]
    for m in re.finditer(r"^\s*(\d+)([km]?)\s+([a-z][a-z /]*?)(?:\s+\(.*\))?\s*$", section, re.M):
        n = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2)]
        totals[m.group(3).strip()] = n
    return totals


def test_pflogsumm_counts_what_was_sent(tern_factory, sink_factory, port):
    assert os.path.exists(PFLOGSUMM), "pflogsumm is not installed (scripts/deps.sh)"
    make_sink(sink_factory, port)
    server = make_tern(tern_factory, port)
    # (sender, recipients accepted, recipients refused 550, content); `team` is an alias of
    # alice and carol (ternlib.DEFAULT_ALIASES).
    sent = [
        ("one@example.org", ["alice@example.test", "bob@example.test"],
         ["nobody@example.test", "ghost@example.test"], content("m1")),
        ("two@example.org", ["carol@example.test"], [], content("m2", ("x" * 70 + "\r\n") * 40)),
        ("one@example.org", ["team@example.test"], ["nobody@example.test"], content("m3")),
        ("alice@example.test", ["gone@x.test"], [], content("m4-bounces")),
        ("alice@example.test", ["later@x.test"], [], content("m5-deferred")),
        ("three@example.net", ["ok@x.test"], [], content("m6-relayed")),
    ]
    with smtplib.SMTP(server.host, server.port, timeout=scaled(30)) as s:
        for sender, ok, refused, data in sent:
            result = s.sendmail(sender, ok + refused, data)
            assert sorted(result) == sorted(refused), result
            assert all(code == 550 for code, _ in result.values()), result
    # Every outcome is in the log: 7 sent (5 local recipients, 1 relayed, the bounce
    # notification to alice), 1 bounced, 1 deferred.
    wait_lines(server, r"status=sent ", 7)
    wait_lines(server, r"status=bounced ", 1)
    wait_lines(server, r"status=deferred ", 1)
    # m1 m2 m3 m4 m6 and the notification are done; m5 waits an hour for its retry, so
    # nothing else can happen before the log is read.
    wait_lines(server, r": removed$", 6)
    log = server.log()

    p = subprocess.run([PFLOGSUMM, "--syslog-name=tern", server.log_path], capture_output=True,
                       timeout=scaled(60))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, p.stderr
    totals = grand_totals(out)
    delivered_rcpts = {"alice@example.test", "bob@example.test", "carol@example.test", "ok@x.test"}
    senders = {s for s, *_ in sent}
    rejected = sum(len(r) for _, _, r, _ in sent)
    expect = {
        "received": len(sent),
        # 2 + 1 + 2 (the alias) + 1 relayed + the non-delivery notification to alice
        "delivered": 7,
        "forwarded": 0,
        "deferred": 1,
        "bounced": 1,
        "rejected": rejected,
        "senders": len(senders),
        "sending hosts/domains": len({s.split("@")[1] for s in senders}),
        "recipients": len(delivered_rcpts),
        "recipient hosts/domains": 2,
    }
    got = {k: totals.get(k) for k in expect}
    assert got == expect, "pflogsumm:\n%s\nlog:\n%s" % (out, log)
    assert re.search(r"\(1 +deferrals\)", out), out
    # Bytes received: each message's size as spooled, i.e. what was sent plus tern's
    # Received: header (a few hundred bytes).
    sent_bytes = sum(len(d) for *_, d in sent)
    assert sent_bytes <= totals["bytes received"] <= sent_bytes + 500 * len(sent), (sent_bytes, out)
    # The reject and bounce details name the right addresses and reasons.
    assert re.search(r"RCPT\s*\n\s*Recipient address rejected: User unknown \(total: 3\)", out), out
    assert "nobody@example.test" in out and "ghost@example.test" in out, out
    assert re.search(r"message bounce detail.*\n.*127\.0\.0\.2.*\n.*no such user here", out,
                     re.S), out
    assert re.search(r"message deferral detail.*\n\s*smtp \(total: 1\)\s*\n.*try again later",
                     out, re.S), out


def test_line_shapes(tern_factory, sink_factory, port):
    """The lines an operator greps for, in Postfix's words (one of each kind)."""
    make_sink(sink_factory, port)
    server = make_tern(tern_factory, port)
    with smtplib.SMTP(server.host, server.port, timeout=scaled(30)) as s:
        s.ehlo("client.test")
        s.sendmail("one@example.org", ["team@example.test", "nobody@example.test"], content("a"))
        s.sendmail("alice@example.test", ["gone@x.test"], content("b"))
    wait_lines(server, r"status=sent ", 3)  # alice, carol, the notification
    log = server.log()
    pid = r"\[\d+\]: "
    stamp = r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx\.test "
    q = r"[0-9A-F]{16}"
    for pat in [
        stamp + r"tern/smtpd" + pid + r"connect from unknown\[127\.0\.0\.1\]$",
        stamp + r"tern/smtpd" + pid + q + r": client=unknown\[127\.0\.0\.1\]$",
        stamp + r"tern/cleanup" + pid + q + r": message-id=<a@client\.test>$",
        stamp + r"tern/qmgr" + pid + q + r": from=<one@example\.org>, size=\d+, nrcpt=2 \(queue active\)$",
        stamp + r"tern/local" + pid + q + r": to=<alice@example\.test>, orig_to=<team@example\.test>, "
        r"relay=local, delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(.+\)$",
        stamp + r"tern/qmgr" + pid + q + r": removed$",
        stamp + r"tern/smtpd" + pid + r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 "
        r"<nobody@example\.test>: Recipient address rejected: User unknown; from=<one@example\.org> "
        r"to=<nobody@example\.test> proto=ESMTP helo=<client\.test>$",
        stamp + r"tern/smtp" + pid + q + r": to=<gone@x\.test>, relay=127\.0\.0\.2\[127\.0\.0\.2\]:\d+, "
        r"delay=[\d.]+, delays=[\d./]+, dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.2\[127\.0\.0\.2\]:\d+ "
        r"said: 550 5\.1\.1 <gone@x\.test>: no such user here \(in reply to RCPT TO command\)\)$",
        stamp + r"tern/bounce" + pid + q + r": sender non-delivery notification: " + q + "$",
        stamp + r"tern/smtpd" + pid + r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=2 rcpt=2/3 "
        r"data=2 quit=1 commands=8/9$",
    ]:
        wait_lines(server, pat, 1)
    assert "warning:" not in log, log


# --------------------------------------------------------------------------- JSON


def json_lines(server):
    out = []
    for n, raw in enumerate(server.log().splitlines()):
        try:
            out.append(json.loads(raw))
        except ValueError as e:
            raise AssertionError("log line %d is not JSON (%s): %r" % (n + 1, e, raw))
    return out


def wait_json(server, pred, timeout=15):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        found = [o for o in json_lines(server) if pred(o)]
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError("no JSON log line as expected; log tail:\n%s" % server.log_tail())
        time.sleep(0.05)


def test_json_lines_and_fields(tern_factory, sink_factory, port):
    make_sink(sink_factory, port)
    server = make_tern(tern_factory, port, log_format="json")
    with smtplib.SMTP(server.host, server.port, timeout=scaled(30)) as s:
        s.ehlo("client.test")
        code, text = s.docmd("MAIL FROM:<one@example.org>")
        assert code == 250
        assert s.docmd("RCPT TO:<alice@example.test>")[0] == 250
        assert s.docmd("RCPT TO:<nobody@example.test>")[0] == 550
        code, text = s.data(content("json-1"))
        assert code == 250, text
        qid = re.search(r"queued as (\S+)", text.decode()).group(1)
    sent = wait_json(server, lambda o: o.get("qid") == qid and o.get("status") == "sent")[0]
    assert sent["to"] == "alice@example.test" and sent["relay"] == "local", sent
    assert sent["dsn"] == "2.0.0" and sent["prog"] == "tern/local" and sent["level"] == "info", sent
    assert sent["msg"].startswith(qid + ": to=<alice@example.test>, relay=local, "), sent
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", sent["ts"]), sent
    assert sent["host"] == "mx.test" and isinstance(sent["pid"], int), sent
    lines = json_lines(server)
    queued = [o for o in lines if o.get("qid") == qid and "nrcpt" in o]
    assert len(queued) == 1, lines
    assert queued[0]["from"] == "one@example.org" and queued[0]["nrcpt"] == 1, queued
    assert isinstance(queued[0]["size"], int) and queued[0]["size"] > len(content("json-1")), queued
    assert queued[0]["prog"] == "tern/qmgr", queued
    msgid = [o for o in lines if o.get("qid") == qid and "message-id" in o]
    assert len(msgid) == 1 and msgid[0]["message-id"] == "json-1@client.test", msgid
    assert msgid[0]["prog"] == "tern/cleanup", msgid
    client = [o for o in lines if o.get("qid") == qid and "client" in o]
    assert client and client[0]["client"] == "unknown[127.0.0.1]" and client[0]["prog"] == "tern/smtpd"
    reject = [o for o in lines if o["msg"].startswith("NOQUEUE: reject: RCPT")]
    assert len(reject) == 1 and "qid" not in reject[0], reject
    assert reject[0]["to"] == "nobody@example.test" and reject[0]["from"] == "one@example.org", reject
    assert reject[0]["helo"] == "client.test" and reject[0]["proto"] == "ESMTP", reject
    wait_json(server, lambda o: o.get("qid") == qid and o["msg"] == qid + ": removed")
    assert any(o["prog"] == "tern/master" and "daemon started" in o["msg"] for o in lines), lines


def test_json_hostile_peer_text(tern_factory, sink_factory, port):
    """Quotes, backslashes, control characters and 8-bit bytes from a peer (HELO, MAIL FROM,
    RCPT TO, AUTH-less junk) leave every line valid JSON with the right fields."""
    make_sink(sink_factory, port)
    server = make_tern(tern_factory, port, log_format="json")
    helo = 'we"ird\\helo<x>,y;z'
    sender = '"q\\"uo te\\\\d"@example.org'  # a quoted local part: " and \ and a space
    with server.connect() as c:
        c.ehlo(helo)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        r = c.cmd('RCPT TO:<"no\\"body, x=<y>"@example.test>')
        assert r.code == 550, r
        c.send(b"RCPT TO:<\x01\x1b[31m\xff\xfe\xc3\xa9@example.test>\r\n")
        c.read_reply()
        c.send(b"MAIL FROM:<\"\x7f\x80\"@x>\r\nNOOP \x00\xff\x1b\r\n")
        c.read_reply()
        c.read_reply()
        c.cmd("RSET")
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b'Subject: hostile\r\nMessage-ID: <"q t"\\,;\x01\xe9\x1b@x>\r\n\r\n\x00\x1b\xff\r\n.\r\n')
        r = c.read_reply()
        assert r.code == 250, r
        qid = re.search(r"queued as (\S+)", r.text).group(1)
        c.cmd("QUIT")
    with server.connect() as c:
        c.send(b'HELO \x1b]0;title\x07"\\\xe9\r\n')
        c.read_reply()
        c.cmd("QUIT")
    wait_json(server, lambda o: o.get("qid") == qid and o.get("status") == "sent")
    wait_lines(server, r"disconnect from", 2)
    lines = json_lines(server)  # every line parses, or this fails
    for o in lines:
        assert {"ts", "host", "prog", "pid", "level", "msg"} <= set(o), o
        assert not re.search(r"[\x00-\x1f\x7f]", o["msg"]), o  # controls never reach the text
    reject = [o for o in lines if o["msg"].startswith("NOQUEUE: reject: RCPT")]
    assert reject, lines
    r0 = reject[0]
    # Peer words are escaped (\xHH for space, <, >, ',', ';'), so each field is whole.
    assert r0["helo"] == 'we"ird\\\\helo\\x3cx\\x3e\\x2cy\\x3bz', r0
    assert r0["from"] == '"q\\\\"uo\\x20te\\\\\\\\d"@example.org', r0
    assert r0["to"] == '"no\\\\"body\\x2c\\x20x=\\x3cy\\x3e"@example.test', r0
    assert r0["proto"] == "ESMTP", r0
    queued = [o for o in lines if o.get("qid") == qid and "nrcpt" in o]
    assert queued and queued[0]["from"] == r0["from"] and queued[0]["nrcpt"] == 1, queued
    msgid = [o for o in lines if o.get("qid") == qid and "message-id" in o]
    assert msgid and msgid[0]["message-id"] == '"q\\x20t"\\\\\\x2c\\x3b\\x01\\xe9\\x1b@x', msgid
