"""A relay request always comes back: a next-hop name of any valid length is carried in the
answer, a next hop that stalls is cut at relay_time_limit, and a network process that never
answers is given up by the queue. In every case the recipient is deferred and later
delivered once; no delivery slot stays taken. Next hops are ternlib.SinkServer instances
named by the test DNS server (tests/dns/zone.conf.in: longmx.test, stall.test)."""
import os
import re
import signal
import time

import pytest

from ternlib import free_port_on, make_message, parse_qid, scaled

SENDER = "alice@example.test"
LONG_HOST = "%s.%s.%s.longmx.test" % ("a" * 63, "b" * 63, "c" * 50)


@pytest.fixture
def port():
    return free_port_on(["127.0.0.14", "127.0.0.15"])


@pytest.fixture
def relay(tern_factory, dns_server, port):
    def make(**kw):
        kw.setdefault("relay_networks", "127.0.0.0/8")
        kw.setdefault("resolver", dns_server.address)
        kw.setdefault("relay_port", port)
        kw.setdefault("retry_min", "1s")
        kw.setdefault("retry_max", "2s")
        return tern_factory(**kw)

    return make


def send(server, rcpt, marker):
    with server.connect() as c:
        c.ehlo()
        r = c.mail(SENDER, [rcpt], make_message(marker, frm=SENDER, to=rcpt))
        assert r.code == 250, r
        return parse_qid(r)


def status_line(server, qid, rcpt, status, timeout=20, count=1):
    m = server.wait_log(r"%s: to=<%s>[^\n]*status=%s[^\n]*" % (re.escape(qid), re.escape(rcpt), status),
                        timeout=timeout, count=count)
    return m.group(0)


def smtp_pid(server):
    for pid in server.group_pids():
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "tern-smtpd":
                    return pid
        except OSError:
            pass
    raise AssertionError("no tern-smtpd process")


def test_long_mx_host_name_answer_applied(relay, sink_factory, port):
    """A 190-octet MX host name: the answer names "host[127.0.0.14]:port" (over 200 octets)
    and still reaches the queue, so the delivery is recorded (before the fix the queue
    dropped it as malformed and the message's slot stayed taken)."""
    sink = sink_factory("127.0.0.14", port)
    server = relay()
    rcpt = "user@longmx.test"
    marker = "long-mx-%d" % time.monotonic_ns()
    qid = send(server, rcpt, marker)
    assert len(sink.wait_find(marker, timeout=20)) == 1
    line = status_line(server, qid, rcpt, "sent")
    assert "relay=%s[127.0.0.14]:%d," % (LONG_HOST, port) in line, line
    server.wait_log(r"%s: removed" % qid)
    assert "malformed" not in server.log()
    # The message left the queue and the next one goes too.
    marker2 = "long-mx-2-%d" % time.monotonic_ns()
    qid2 = send(server, rcpt, marker2)
    assert len(sink.wait_find(marker2, timeout=20)) == 1
    status_line(server, qid2, rcpt, "sent")


def send_to_stalling_host(relay, sink_factory, port, what):
    """A tern with relay_time_limit = 2s sends one message to stall.test, whose host stops
    answering after MAIL. Returns (sink, server, rcpt, marker, qid)."""
    sink = sink_factory("127.0.0.15", port)
    sink.stall_at = "mail"
    sink.stall_seconds = scaled(120)
    server = relay(relay_time_limit="2s")
    rcpt = "user@stall.test"
    marker = "%s-%d" % (what, time.monotonic_ns())
    return sink, server, rcpt, marker, send(server, rcpt, marker)


def test_stalling_next_hop_cut_at_relay_time_limit(relay, sink_factory, port):
    """A next hop that stops answering after MAIL holds the transfer only for
    relay_time_limit (the client's own command timeout is 5 minutes); the recipient is
    deferred with 4.4.2, and once the host answers again the retry delivers it once."""
    sink, server, rcpt, marker, qid = send_to_stalling_host(relay, sink_factory, port, "stall")
    line = status_line(server, qid, rcpt, "deferred", timeout=60)
    assert "dsn=4.4.2" in line and "relay time limit (2s) exceeded" in line, line
    sink.stall_at = None
    status_line(server, qid, rcpt, "sent", timeout=60)
    server.wait_log(r"%s: removed" % qid)
    assert len(sink.find(marker)) == 1


def test_queue_gives_up_on_a_silent_network_process(relay, sink_factory, port):
    """The network process is stopped (SIGSTOP) while it holds a relay request: the queue
    defers the recipient once relay_time_limit and its grace have passed. After SIGCONT the
    late answer is ignored, and the retry delivers the message once."""
    sink, server, rcpt, marker, qid = send_to_stalling_host(relay, sink_factory, port, "silent")
    # The transfer is under way: the sink has the MAIL command.
    deadline = time.monotonic() + scaled(20)
    while not any("MAIL" in s.verbs() for s in sink.sessions):
        assert time.monotonic() < deadline, "the relay never reached the sink"
        time.sleep(0.05)
    pid = smtp_pid(server)
    os.kill(pid, signal.SIGSTOP)
    try:
        line = status_line(server, qid, rcpt, "deferred", timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "dsn=4.4.2" in line and "no answer from the relay transport" in line, line
    sink.stall_at = None
    status_line(server, qid, rcpt, "sent", timeout=60)
    server.wait_log(r"%s: removed" % qid)
    assert len(sink.find(marker)) == 1
