"""Relay out: tern as an SMTP client. Next hops are ternlib.SinkServer instances on
127.0.0.x:PORT (relay_port = PORT for every MX host), names come from the test DNS server
(tests/dns/zone.conf.in, fixture dns_server). Senders are local users of the relaying
tern, so its bounces and notices land in their Maildirs and are parsed with `email`."""
import email
import email.policy
import re
import threading
import time

import pytest

from ternlib import PostfixPeer, data_payload, free_port, free_port_on, make_message, scaled

SENDER = "alice@example.test"  # a local user of the relaying tern: bounces come back here
# Every 127.0.0.x used as a next hop in this file (a port free on all of them is chosen).
HOSTS = ["127.0.0.%d" % i for i in range(2, 14)]


@pytest.fixture
def port():
    return free_port_on(HOSTS)


@pytest.fixture
def relay(tern_factory, dns_server, port):
    """relay(routes=[...], **settings) -> a started tern that relays for 127.0.0.0/8, asks
    the test DNS server, uses `port` for every MX host and retries after 1 s, 2 s, 2 s ..."""

    def make(routes=(), extra_lines=(), **kw):
        kw.setdefault("relay_networks", "127.0.0.0/8")
        kw.setdefault("resolver", dns_server.address)
        kw.setdefault("relay_port", port)
        kw.setdefault("retry_min", "1s")
        kw.setdefault("retry_max", "2s")
        lines = ["route = %s" % r for r in routes] + list(extra_lines)
        return tern_factory(extra_lines=lines, **kw)

    return make


def send(server, rcpts, content, sender=SENDER, mail_params="", rcpt_params=None, bdat=False):
    """One transaction; every RCPT must be accepted. The content goes with DATA, or with
    bdat=True as one BDAT LAST chunk, octet for octet. Returns the queue id."""
    rcpt_params = rcpt_params or {}
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250)
        for r in rcpts:
            c.expect("RCPT TO:<%s>%s" % (r, rcpt_params.get(r, "")), 250)
        if bdat:
            c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        else:
            c.expect("DATA", 354)
            c.send(data_payload(content))
        reply = c.read_reply()
        assert reply.code == 250, reply
        c.cmd("QUIT")
    m = re.search(r"queued as (\S+)", reply.text)
    assert m, reply
    return m.group(1)


def result_lines(server, qid, rcpt=None):
    """The per-recipient log lines of a queue id (optionally of one recipient)."""
    pat = r"%s: to=<%s>[^\n]*status=\w+[^\n]*" % (re.escape(qid), re.escape(rcpt) if rcpt else "[^>]*")
    return re.findall(pat, server.log())


def wait_status(server, qid, rcpt, status, timeout=15, count=1):
    """Waits for the `count`th "QID: to=<rcpt>, ... status=STATUS" log line; returns it."""
    m = server.wait_log(r"%s: to=<%s>[^\n]*status=%s[^\n]*" % (re.escape(qid), re.escape(rcpt), status),
                        timeout=timeout, count=count)
    return m.group(0)


# --------------------------------------------------------------------------- (a) fixed route


def test_fixed_route_delivers_intact(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, size=10 * 1024 * 1024)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "fixed-route-%d" % time.monotonic_ns()
    body = (b"first line\r\n.leading dot\r\n..two dots\r\n.\r\n" + b"x" * 900 + b"\r\n"
            + marker.encode() + b"\r\n")
    content = make_message(marker, body=body, to="rcpt@fixed.example")
    qid = send(server, ["rcpt@fixed.example"], content)

    msgs = sink.wait_find(marker, timeout=15)
    assert len(msgs) == 1
    m = msgs[0]
    # The content arrives intact after tern's own Received header (dot lines unstuffed).
    assert m.data.endswith(content), m.data[-400:]
    head = m.data[:len(m.data) - len(content)]
    assert head.startswith(b"Received:"), head
    assert b"mx.test" in head and qid.encode() in head, head
    assert m.sender == SENDER and m.recipients == ["rcpt@fixed.example"]
    # EHLO first, MAIL with SIZE declared (RFC 1870) at least the content's size.
    verbs = m.session.verbs()
    assert verbs[0] == "EHLO", verbs
    assert "SIZE" in m.mail_params, m.mail
    assert int(m.mail_params["SIZE"]) >= len(content), m.mail
    line = wait_status(server, qid, "rcpt@fixed.example", "sent")
    assert "relay=127.0.0.2[127.0.0.2]:%d," % port in line, line
    assert "dsn=2.0.0" in line, line


# --------------------------------------------------------------------------- (b) (c) MX


def relay_via(server, sink, rcpt, what):
    """Sends one message to `rcpt`; `sink` must get it; returns tern's "sent" log line."""
    marker = "%s-%d" % (what, time.monotonic_ns())
    qid = send(server, [rcpt], make_message(marker, to=rcpt))
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.recipients == [rcpt], m.rcpt_lines
    line = wait_status(server, qid, rcpt, "sent")
    assert "dsn=2.0.0" in line, line
    server.wait_queue_idle()
    assert len(sink.find(marker)) == 1
    return line


def test_mx_next_host_when_first_not_listening(relay, sink_factory, port):
    """multi.test: mx1 (127.0.0.2, preference 10) has nothing listening; mx2 (127.0.0.3, 20)
    gets the message; mx3 (127.0.0.4, 30) is never needed."""
    mx2 = sink_factory("127.0.0.3", port)
    mx3 = sink_factory("127.0.0.4", port)
    line = relay_via(relay(), mx2, "user@multi.test", "multi-mx")
    assert "relay=mx2.multi.test[127.0.0.3]:%d," % port in line, line
    assert mx3.sessions == [], mx3.sessions


def test_mx_preference_order(relay, sink_factory, port):
    """All three MX hosts listen: only mx1 (the lowest preference value) is used."""
    sinks = [sink_factory("127.0.0.%d" % i, port) for i in (2, 3, 4)]
    line = relay_via(relay(), sinks[0], "user@multi.test", "mx-pref")
    assert "relay=mx1.multi.test[127.0.0.2]:%d," % port in line, line
    assert sinks[1].sessions == [] and sinks[2].sessions == []


def test_mx_next_host_on_temporary_session_failure(relay, sink_factory, port):
    """mx1 greets with 421 (the whole session fails temporarily): mx2 gets the message."""
    mx1 = sink_factory("127.0.0.2", port)
    mx1.greeting = "421 4.3.2 mx1 busy"
    mx2 = sink_factory("127.0.0.3", port)
    line = relay_via(relay(), mx2, "user@multi.test", "multi-421")
    assert "relay=mx2.multi.test[127.0.0.3]:%d," % port in line, line
    assert len(mx1.sessions) >= 1


@pytest.mark.parametrize("domain, ip, relay_name", [
    ("aonly.test", "127.0.0.9", "aonly.test"),          # no MX: its A is the implicit MX
    ("cname.test", "127.0.0.12", "mx.real.test"),       # a CNAME to a domain with an MX
    ("partial.test", "127.0.0.13", "ok.partial.test"),  # the best MX host does not exist
])
def test_mx_implicit_cname_and_missing_host(relay, sink_factory, port, domain, ip, relay_name):
    sink = sink_factory(ip, port)
    line = relay_via(relay(), sink, "user@" + domain, "mx-" + domain)
    assert "relay=%s[%s]:%d," % (relay_name, ip, port) in line, line


# --------------------------------------------------------------------------- bounces


def parse_report(raw, report_types=("delivery-status",)):
    """A delivered bounce (tern's prefix lines included) -> (message, human text,
    per-message fields, [per-recipient fields], returned part). report_types: the
    report-type values allowed (RFC 6533's "global-delivery-status" for SMTPUTF8 mail)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    report_type = msg.get_param("report-type")
    assert report_type in report_types, msg["Content-Type"]
    parts = msg.get_payload()
    assert len(parts) >= 2, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain", parts[0].get_content_type()
    human = parts[0].get_payload(decode=True).decode("utf-8", "replace")
    assert parts[1].get_content_type() == "message/" + report_type, parts[1].get_content_type()
    # message/delivery-status: blocks of fields separated by blank lines (RFC 3464 §2.1).
    body = parts[1].get_payload()
    if report_type != "delivery-status":  # compat32 parses other message/* as one message
        body = parts[1].as_string().replace("\r\n", "\n").split("\n\n", 1)[1]
    if isinstance(body, list):  # compat32 parses the blocks as header-only messages
        blocks = [dict((k.lower(), v) for k, v in b.items()) for b in body]
    else:
        blocks = []
        for chunk in re.split(r"\r?\n\r?\n", body.strip()):
            fields = {}
            for line in re.sub(r"\r?\n[ \t]+", " ", chunk).splitlines():
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            blocks.append(fields)
    blocks = [b for b in blocks if b]
    per_msg, per_rcpt = blocks[0], blocks[1:]
    returned = parts[2] if len(parts) > 2 else None
    return msg, human, per_msg, per_rcpt, returned


def wait_bounces(server, n=1, timeout=15, user="alice"):
    return server.wait_delivered(user, n, timeout=timeout)


def check_failed(server, raw, rcpt, status, marker):
    msg, human, per_msg, per_rcpt, returned = parse_report(raw)
    assert "mailer-daemon@mx.test" in (msg["From"] or "").lower(), msg["From"]
    assert SENDER in msg["To"], msg["To"]
    assert rcpt in human, human
    assert per_msg.get("reporting-mta", "").lower() == "dns; mx.test", per_msg
    assert len(per_rcpt) == 1, per_rcpt
    r = per_rcpt[0]
    assert r["final-recipient"].lower() == "rfc822; " + rcpt, r
    assert r["action"].lower() == "failed", r
    assert r["status"] == status, r
    assert returned is not None and marker.encode() in returned.as_bytes(), "original headers missing"
    return r


def test_null_mx_bounces(relay):
    server = relay()
    marker = "nullmx-%d" % time.monotonic_ns()
    qid = send(server, ["user@nullmx.test"], make_message(marker, to="user@nullmx.test"))
    line = wait_status(server, qid, "user@nullmx.test", "bounced")
    assert "dsn=5.1.10" in line, line
    raw = wait_bounces(server)[0]
    # The Return-Path of a bounce is the null sender.
    assert raw.startswith(b"Return-Path: <>"), raw[:200]
    r = check_failed(server, raw, "user@nullmx.test", "5.1.10", marker)
    assert "556" in r.get("diagnostic-code", "") or "556" in raw.decode("latin-1"), r


def test_nxdomain_bounces(relay):
    server = relay()
    marker = "nxdomain-%d" % time.monotonic_ns()
    rcpt = "user@no-such-domain.test"
    qid = send(server, [rcpt], make_message(marker, to=rcpt))
    line = wait_status(server, qid, rcpt, "bounced")
    assert "dsn=5.1.2" in line, line
    raw = wait_bounces(server)[0]
    check_failed(server, raw, rcpt, "5.1.2", marker)


def test_servfail_defers(relay):
    server = relay()
    marker = "servfail-%d" % time.monotonic_ns()
    rcpt = "user@servfail.test"
    qid = send(server, [rcpt], make_message(marker, to=rcpt))
    line = wait_status(server, qid, rcpt, "deferred", timeout=20)
    assert re.search(r"dsn=4\.", line), line
    # Retried (retry_min 1 s) and deferred again; no notice queued or delivered.
    wait_status(server, qid, rcpt, "deferred", timeout=20, count=2)
    assert server.queue_ids() == [qid]
    assert server.maildir("alice") == [], "a temporary DNS failure bounced"
    assert not result_lines(server, qid, rcpt) or all("status=bounced" not in l for l in result_lines(server, qid, rcpt))


# --------------------------------------------------------------------------- (e) per recipient


def test_per_recipient_results(relay, sink_factory, port):
    """One transaction for three recipients answered 250 / 450 / 550: the 550 is bounced at
    once, the 450 retried (retry_min 1 s) and delivered once the sink takes it, the 250 sent
    once; one bounce names only the 550 recipient."""
    sink = sink_factory("127.0.0.2", port)
    sink.rcpt_replies = {"later@fixed.example": "450 4.2.1 try later",
                         "never@fixed.example": "550 5.1.1 no such user"}
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "per-rcpt-%d" % time.monotonic_ns()
    rcpts = ["ok@fixed.example", "later@fixed.example", "never@fixed.example"]
    qid = send(server, rcpts, make_message(marker, to="ok@fixed.example"))

    first = sink.wait_find(marker, timeout=15)[0]
    assert [l.split(":", 1)[1].split()[0] for l in first.rcpt_lines] == ["<%s>" % r for r in rcpts], first.rcpt_lines
    assert first.recipients == ["ok@fixed.example"]
    wait_status(server, qid, "ok@fixed.example", "sent")
    deferred = wait_status(server, qid, "later@fixed.example", "deferred")
    assert "dsn=4.2.1" in deferred and "450 4.2.1" in deferred, deferred
    bounced = wait_status(server, qid, "never@fixed.example", "bounced")
    assert "dsn=5.1.1" in bounced and "550 5.1.1" in bounced, bounced

    sink.rcpt_replies = {}
    second = sink.wait_find(marker, n=2, timeout=20)[1]
    assert second.recipients == ["later@fixed.example"], second.rcpt_lines
    assert second.rcpt_lines == second.accepted, "only the deferred recipient is retried"
    wait_status(server, qid, "later@fixed.example", "sent")

    raw = wait_bounces(server)[0]
    r = check_failed(server, raw, "never@fixed.example", "5.1.1", marker)
    assert "550 5.1.1" in r.get("diagnostic-code", ""), r
    assert r["diagnostic-code"].lower().startswith("smtp;"), r
    server.wait_queue_idle()  # longer than retry_max: no further attempt, no second bounce
    assert len(sink.find(marker)) == 2
    assert [m.recipients for m in sink.find(marker)] == [["ok@fixed.example"], ["later@fixed.example"]]
    assert len(server.maildir("alice")) == 1
    assert len(result_lines(server, qid, "ok@fixed.example")) == 1


def test_queue_lifetime_expiry_bounces(relay, sink_factory, port):
    """A recipient answered 450 on every attempt bounces once queue_lifetime (3 s) is
    over: Action failed, one bounce, and no attempt after it."""
    sink = sink_factory("127.0.0.2", port)
    sink.default_rcpt_reply = "450 4.2.1 mailbox busy"
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port], queue_lifetime="3s")
    marker = "expiry-%d" % time.monotonic_ns()
    rcpt = "busy@fixed.example"
    qid = send(server, [rcpt], make_message(marker, to=rcpt))
    wait_status(server, qid, rcpt, "deferred")
    line = wait_status(server, qid, rcpt, "expired", timeout=20)
    assert "dsn=4.2.1" in line and "queue_lifetime" in line, line
    raw = wait_bounces(server, timeout=20)[0]
    msg, human, per_msg, per_rcpt, returned = parse_report(raw)
    assert len(per_rcpt) == 1 and per_rcpt[0]["action"].lower() == "failed", per_rcpt
    assert per_rcpt[0]["final-recipient"].lower() == "rfc822; " + rcpt, per_rcpt
    assert re.match(r"[45]\.\d+\.\d+$", per_rcpt[0]["status"]), per_rcpt
    assert "450 4.2.1" in per_rcpt[0].get("diagnostic-code", ""), per_rcpt
    attempts = len(sink.transactions())
    assert attempts >= 2, attempts  # retried before it expired
    server.wait_queue_idle()
    assert len(sink.transactions()) == attempts, "attempts after the bounce"
    assert len(server.maildir("alice")) == 1


def test_bounce_diagnostic_code_is_the_remote_reply(relay, sink_factory, port):
    """RFC 3464 §2.3.6: Diagnostic-Code carries the code the remote MTA issued; for smtp,
    its reply ("550 5.1.1 no such user"), not tern's description of the attempt."""
    sink = sink_factory("127.0.0.2", port)
    sink.rcpt_replies = {"never@fixed.example": "550 5.1.1 no such user"}
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "diag-%d" % time.monotonic_ns()
    send(server, ["never@fixed.example"], make_message(marker, to="never@fixed.example"))
    r = check_failed(server, wait_bounces(server)[0], "never@fixed.example", "5.1.1", marker)
    assert re.sub(r"\s+", " ", r["diagnostic-code"]) == "smtp; 550 5.1.1 no such user", r
    assert r.get("remote-mta", "").lower() == "dns; 127.0.0.2", r


# --------------------------------------------------------------------------- (f) dropped


@pytest.mark.parametrize("moment", ["data", "dot"])
def test_connection_dropped_then_delivered_once(relay, sink_factory, port, moment):
    """The sink closes the connection in the middle of DATA (or after the final dot, before
    its reply) once: the message is deferred, retried, and delivered exactly once. (After
    the dot without a reply the outcome is unknown to tern: a second copy is what RFC 5321
    §6.1 accepts; the sink counts only transactions it answered 250, so one is expected.)"""
    sink = sink_factory("127.0.0.2", port)
    sink.drop_at = moment
    sink.fail_sessions = 1
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "dropped-%s-%d" % (moment, time.monotonic_ns())
    body = "".join("line %d of a longer body\r\n" % i for i in range(2000)) + marker + "\r\n"
    qid = send(server, ["user@fixed.example"], make_message(marker, body=body, to="user@fixed.example"))
    line = wait_status(server, qid, "user@fixed.example", "deferred")
    assert re.search(r"dsn=4\.", line), line
    msgs = sink.wait_find(marker, timeout=20)
    wait_status(server, qid, "user@fixed.example", "sent")
    server.wait_queue_idle()
    assert len(sink.find(marker)) == 1, sink.find(marker)
    assert msgs[0].data.endswith(marker.encode() + b"\r\n")
    assert len(result_lines(server, qid, "user@fixed.example")) == 2  # deferred, then sent
    assert server.maildir("alice") == []


# --------------------------------------------------------------------------- (g) SIZE


def test_size_too_big_bounced_without_sending(relay, sink_factory, port):
    """The sink declares SIZE 2000; a 5000-byte message bounces with 552 5.3.4 and the sink
    never sees MAIL."""
    sink = sink_factory("127.0.0.2", port, size=2000)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "too-big-%d" % time.monotonic_ns()
    qid = send(server, ["user@fixed.example"], make_message(marker, body=("y" * 70 + "\r\n") * 70, to="user@fixed.example"))
    line = wait_status(server, qid, "user@fixed.example", "bounced")
    assert "dsn=5.3.4" in line, line
    r = check_failed(server, wait_bounces(server)[0], "user@fixed.example", "5.3.4", marker)
    assert "552 5.3.4" in r.get("diagnostic-code", ""), r
    server.wait_queue_idle()
    assert sink.transactions() == [], sink.transactions()
    assert all("MAIL" not in s.verbs() for s in sink.sessions), sink.sessions


def test_size_small_enough_is_sent(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, size=20000)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "fits-%d" % time.monotonic_ns()
    content = make_message(marker, body=("y" * 70 + "\r\n") * 70, to="user@fixed.example")
    send(server, ["user@fixed.example"], content)
    m = sink.wait_find(marker, timeout=15)[0]
    assert len(content) <= int(m.mail_params["SIZE"]) <= 20000, m.mail


# --------------------------------------------------------------------------- (h) STARTTLS


def test_starttls_used_when_offered(relay, sink_factory, port, certs):
    sink = sink_factory("127.0.0.2", port, starttls=certs["mx.test"])
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "starttls-%d" % time.monotonic_ns()
    send(server, ["user@fixed.example"], make_message(marker, to="user@fixed.example"))
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.tls and m.session.tls_version in ("TLSv1.2", "TLSv1.3"), m.session
    verbs = m.session.verbs()
    assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], verbs  # EHLO again after the handshake
    assert m.session.plaintext_after_starttls == b"", "bytes pipelined after STARTTLS"
    assert verbs.index("MAIL") > verbs.index("STARTTLS")


def test_pipelining_used_when_offered(relay, sink_factory, port):
    """With PIPELINING, MAIL, the RCPTs and DATA arrive as one group (RFC 2920)."""
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "pipelined-%d" % time.monotonic_ns()
    rcpts = ["a@fixed.example", "b@fixed.example"]
    send(server, rcpts, make_message(marker, to=rcpts[0]))
    m = sink.wait_find(marker, timeout=15)[0]
    verbs = [l.split(" ", 1)[0].split(":", 1)[0].upper() for l in m.pipelined]
    assert verbs == ["MAIL", "RCPT", "RCPT", "DATA"], m.pipelined


def test_no_pipelining_without_the_keyword(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, pipelining=False)
    sink.pipeline_wait = scaled(1)  # look for early commands all the same
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "lockstep-%d" % time.monotonic_ns()
    send(server, ["a@fixed.example", "b@fixed.example"], make_message(marker, to="a@fixed.example"))
    m = sink.wait_find(marker, timeout=15)[0]
    assert len(m.pipelined) == 1, "commands sent before MAIL was answered: %r" % m.pipelined


# --------------------------------------------------------------------------- (i) DSN


def test_dsn_parameters_passed_to_dsn_peer(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, dsn=True)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "dsn-pass-%d" % time.monotonic_ns()
    rcpt = "user@fixed.example"
    send(server, [rcpt, "other@fixed.example"], make_message(marker, to=rcpt),
         mail_params=" RET=HDRS ENVID=env+2Bid-42",
         rcpt_params={rcpt: " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Buser@example.net"})
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.mail_params.get("RET") == "HDRS", m.mail
    assert m.mail_params.get("ENVID") == "env+2Bid-42", m.mail
    p = m.rcpt_params(rcpt)
    assert p.get("NOTIFY", "").upper() == "SUCCESS,FAILURE", m.rcpt_lines
    assert p.get("ORCPT", "").lower() == "rfc822;orig+2buser@example.net", m.rcpt_lines
    # A recipient without DSN parameters gets none it did not ask for, except perhaps ORCPT.
    assert "NOTIFY" not in m.rcpt_params("other@fixed.example"), m.rcpt_lines
    # The DSN-capable next hop takes over the duty: no "relayed" notice (RFC 3461 §5.2.2).
    server.wait_queue_idle()
    assert server.maildir("alice") == []


def test_dsn_ret_full_passed_to_dsn_peer(relay, sink_factory, port):
    """RET=FULL reaches a DSN-capable next hop as it was given (RFC 3461 §4.3)."""
    sink = sink_factory("127.0.0.2", port, dsn=True)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "dsn-ret-full-%d" % time.monotonic_ns()
    send(server, ["user@fixed.example"], make_message(marker, to="user@fixed.example"),
         mail_params=" RET=FULL")
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.mail_params.get("RET") == "FULL", m.mail


def test_dsn_parameters_not_sent_without_dsn(relay, sink_factory, port):
    """A next hop without DSN gets no DSN parameters, and NOTIFY=SUCCESS gets a
    "relayed" notice (RFC 3461 §5.2.2)."""
    sink = sink_factory("127.0.0.2", port, dsn=False)
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "dsn-none-%d" % time.monotonic_ns()
    rcpt = "user@fixed.example"
    send(server, [rcpt], make_message(marker, to=rcpt), mail_params=" RET=FULL ENVID=env-43",
         rcpt_params={rcpt: " NOTIFY=SUCCESS ORCPT=rfc822;user@fixed.example"})
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.mail_params.keys() <= {"SIZE", "BODY", "SMTPUTF8"}, m.mail
    assert m.rcpt_params(rcpt) == {}, m.rcpt_lines
    raw = wait_bounces(server)[0]
    msg, human, per_msg, per_rcpt, returned = parse_report(raw)
    assert per_msg.get("original-envelope-id") == "env-43", per_msg
    assert len(per_rcpt) == 1 and per_rcpt[0]["action"].lower() == "relayed", per_rcpt
    assert per_rcpt[0]["status"].startswith("2."), per_rcpt
    assert per_rcpt[0]["final-recipient"].lower() == "rfc822; " + rcpt, per_rcpt


def test_notify_never_and_failure(relay, sink_factory, port):
    """NOTIFY=NEVER: a 550 bounces silently."""
    sink = sink_factory("127.0.0.2", port)
    sink.rcpt_replies = {"never@fixed.example": "550 5.1.1 no such user"}
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "notify-never-%d" % time.monotonic_ns()
    qid = send(server, ["never@fixed.example"], make_message(marker, to="never@fixed.example"),
               rcpt_params={"never@fixed.example": " NOTIFY=NEVER"})
    wait_status(server, qid, "never@fixed.example", "bounced")
    server.wait_queue_idle()
    assert server.all_messages() == []


# --------------------------------------------------------------------------- (j) (k) (l)


def test_route_discard(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=["x.test discard", "* 127.0.0.2:%d" % port])
    marker = "discard-%d" % time.monotonic_ns()
    qid = send(server, ["user@x.test", "user@y.test"], make_message(marker, to="user@x.test"))
    line = wait_status(server, qid, "user@x.test", "sent")
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.recipients == ["user@y.test"], m.rcpt_lines  # the * route; x.test never leaves
    server.wait_queue_idle()
    assert all("x.test" not in l for t in sink.transactions() for l in t.rcpt_lines)
    assert server.all_messages() == []
    assert "discard" in line.lower(), line


def test_relay_refused_outside_relay_networks(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=["* 127.0.0.2:%d" % port], relay_networks="127.0.0.5/32")
    with server.connect(source="127.0.0.6") as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<user@fixed.example>", 554, "5.7.1")
        c.expect("RCPT TO:<bob@example.test>", 250)  # local mail is fine
    with server.connect(source="127.0.0.5") as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<user@fixed.example>", 250)
    server.wait_queue_idle()
    assert sink.sessions == []


def test_null_sender_failure_not_bounced(relay, sink_factory, port):
    """A message from <> that fails permanently is dropped: nothing goes to <>, no
    bounce anywhere, no retries."""
    sink = sink_factory("127.0.0.2", port)
    sink.rcpt_replies = {"never@fixed.example": "550 5.1.1 no such user"}
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "null-sender-%d" % time.monotonic_ns()
    qid = send(server, ["never@fixed.example"], make_message(marker, to="never@fixed.example"), sender="")
    line = wait_status(server, qid, "never@fixed.example", "bounced")
    assert "dsn=5.1.1" in line, line
    server.wait_queue_idle()
    assert server.all_messages() == []
    assert len([t for t in sink.transactions()]) == 1, sink.transactions()
    assert sink.transactions()[0].sender == ""
    # No other message was queued after it (a bounce would have a queue id of its own).
    assert len(re.findall(r": from=<", server.log())) == 1, server.log()


def test_null_sender_to_null_mx_not_bounced(relay):
    server = relay()
    marker = "null-sender-nullmx-%d" % time.monotonic_ns()
    qid = send(server, ["user@nullmx.test"], make_message(marker, to="user@nullmx.test"), sender="")
    wait_status(server, qid, "user@nullmx.test", "bounced")
    server.wait_queue_idle()
    assert server.all_messages() == []
    assert len(re.findall(r": from=<", server.log())) == 1


# --------------------------------------------------------------------------- (m) restart


def test_deferred_survives_restart(relay, sink_factory, port):
    """Nothing listens at the next hop: deferred. tern restarts; the sink comes up; the
    message is delivered exactly once."""
    server = relay(routes=["fixed.example 127.0.0.2:%d" % port])
    marker = "restart-%d" % time.monotonic_ns()
    qid = send(server, ["user@fixed.example", "user2@fixed.example"], make_message(marker, to="user@fixed.example"))
    wait_status(server, qid, "user@fixed.example", "deferred")
    server.restart()
    # The restarted tern has the message and tries it again (still nobody there).
    wait_status(server, qid, "user@fixed.example", "deferred", count=2, timeout=20)
    sink = sink_factory("127.0.0.2", port)
    m = sink.wait_find(marker, timeout=20)[0]
    assert sorted(m.recipients) == ["user2@fixed.example", "user@fixed.example"]
    wait_status(server, qid, "user@fixed.example", "sent")
    wait_status(server, qid, "user2@fixed.example", "sent")
    server.wait_queue_idle()
    assert len(sink.find(marker)) == 1
    assert server.all_messages() == []
    # Once more: nothing is sent again after a second restart.
    server.restart()
    server.wait_queue_idle()
    assert len(sink.find(marker)) == 1


# --------------------------------------------------------------------------- Postfix


def assert_same_content(got, sent):
    """`got` (CRLF) carries every header line of `sent` and exactly its body."""
    got_head, _, got_body = got.partition(b"\r\n\r\n")
    sent_head, _, sent_body = sent.partition(b"\r\n\r\n")
    assert got_body == sent_body, (got_body[-300:], sent_body[-300:])
    lines = got_head.split(b"\r\n")
    for h in sent_head.split(b"\r\n"):
        assert h in lines, (h, got_head)


def postfix_next_to(module_factory, **settings):
    """Yields (tern, postfix): tern (with `settings`) routes bench.test to Postfix (which
    delivers into a Maildir); Postfix relays everything else to tern (relayhost =
    [127.0.0.1]:TERN_PORT). For a module-scoped fixture: `yield from`."""
    pf_port = free_port()
    tern = module_factory(retry_min="1s", retry_max="2s",
                          extra_lines=["route = %s 127.0.0.1:%d" % (PostfixPeer.DOMAIN, pf_port)],
                          **settings)
    pf = PostfixPeer(relayhost="[127.0.0.1]:%d" % tern.port, port=pf_port)
    try:
        pf.start()
        yield tern, pf
    finally:
        pf.stop()


@pytest.fixture(scope="module")
def postfix_pair(module_factory):
    yield from postfix_next_to(module_factory, relay_networks="127.0.0.0/8")


def test_tern_to_postfix(postfix_pair):
    tern, pf = postfix_pair
    marker = "to-postfix-%d" % time.monotonic_ns()
    rcpt = "someone@" + PostfixPeer.DOMAIN
    body = ".dot line\r\n..two dots\r\nend " + marker + "\r\n"
    content = make_message(marker, body=body, to=rcpt)
    qid = send(tern, [rcpt, "other@" + PostfixPeer.DOMAIN], content)
    line = wait_status(tern, qid, rcpt, "sent", timeout=20)
    assert "relay=127.0.0.1[127.0.0.1]:%d," % pf.port in line and "dsn=2.0.0" in line, line
    found = pf.wait_find(marker, n=2)  # one file per recipient, both in the one Maildir
    assert sorted(email.message_from_bytes(m)["X-Original-To"] for m in found) == [
        "other@" + PostfixPeer.DOMAIN, rcpt]
    raw = found[0]
    msg = email.message_from_bytes(raw)
    assert msg["Return-Path"] == "<%s>" % SENDER, msg["Return-Path"]
    received = msg.get_all("Received")
    assert "postfix.bench.test" in received[0] and "mx.test" in received[0], received[0]
    assert qid in received[1] and "by mx.test" in received[1], received[1]
    # Postfix's Maildir has LF line ends (and Postfix adds a Date header): the headers
    # and the body (dot lines unstuffed) are tern's input.
    assert_same_content(raw.replace(b"\n", b"\r\n"), content)
    tern.wait_queue_idle()
    assert len(pf.wait_find(marker, n=2)) == 2, "delivered more than once"
    assert len(result_lines(tern, qid)) == 2


def test_postfix_to_tern(postfix_pair):
    tern, pf = postfix_pair
    from ternlib import SMTPClient, Delivered
    marker = "from-postfix-%d" % time.monotonic_ns()
    body = ".dot line\r\nend " + marker + "\r\n"
    content = make_message(marker, body=body, to="carol@example.test")
    with SMTPClient("127.0.0.1", pf.port) as c:
        c.ehlo()
        r = c.mail("someone@elsewhere.test", ["carol@example.test"], content)
        assert r.code == 250, r
        c.cmd("QUIT")
    msgs = tern.wait_delivered("carol", 1, timeout=30)
    found = [m for m in msgs if marker.encode() in m]
    assert len(found) == 1, len(found)
    d = Delivered(found[0])
    assert d.return_path == b"<someone@elsewhere.test>", d.return_path
    assert "from postfix.bench.test" in d.received, d.received
    assert_same_content(d.content.replace(b"\n", b"\r\n"), content)
    assert d.header("Received") and "client.test" in d.header("Received")  # Postfix's own
    tern.wait_queue_idle()
    assert len([m for m in tern.maildir("carol") if marker.encode() in m]) == 1
    assert re.search(r"postfix/smtp\[\d+\]: \w+: to=<carol@example.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,.*status=sent" % tern.port, pf.log()), pf.log()[-2000:]


def test_burst_larger_than_the_delivery_slots_all_leaves(relay, sink_factory, port):
    # More messages at once than the queue runs in parallel (delivery_threads x 4 = 32), with
    # one connection to the sink so relaying is slower than accepting: each finished relay
    # must start the next due message, without waiting for new mail to arrive.
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=["* 127.0.0.2:%d" % port], connections_per_destination=1)
    marker = "burst-%d" % time.monotonic_ns()
    per, nthreads = 15, 6
    errors = []

    def client(t):
        try:
            with server.connect() as c:
                c.ehlo()
                for i in range(per):
                    rcpt = "u%d-%d@burst.example" % (t, i)
                    r = c.mail(SENDER, [rcpt], make_message("%s-%d-%d" % (marker, t, i), to=rcpt))
                    if r.code != 250:
                        errors.append(str(r))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(scaled(60))
    assert not errors, errors
    n = per * nthreads
    msgs = sink.wait_find(marker, n=n, timeout=scaled(40))
    assert len(msgs) == n, "only %d of %d relayed" % (len(msgs), n)
