"""A next hop's LIMITS (RFC 9422): RCPTMAX is the most RCPT commands in one transaction,
MAILMAX the most transactions in one session. tern sends the rest of the recipients in
further transactions and, at MAILMAX, on a new connection; every recipient is delivered
once and gets its own result. The sinks (ternlib.SinkServer) enforce the limits they
announce (452 4.5.3 for a RCPT past RCPTMAX, 451 4.5.3 for a MAIL past MAILMAX) and record
every breach in sink.violations. Fixtures and helpers are those of test_relay_out.py."""
import time

from ternlib import make_message
from test_relay_out import (check_failed, port, relay, result_lines, send,  # noqa: F401 (fixtures)
                            wait_bounces, wait_status)

DOMAIN = "limits.example"


def route(port):
    return "%s 127.0.0.2:%d" % (DOMAIN, port)


def delivered(sink, marker):
    """recipient -> how many accepted messages with `marker` reached it."""
    counts = {}
    for m in sink.find(marker):
        for r in m.recipients:
            counts[r] = counts.get(r, 0) + 1
    return counts


def test_rcptmax_and_mailmax_split_one_message(relay, sink_factory, port):
    """Nine recipients, RCPTMAX=2 and MAILMAX=2: two transactions of two on the first
    connection, two more on a second, the last one on a third; each once."""
    sink = sink_factory("127.0.0.2", port, limits=(2, 2))
    server = relay(routes=[route(port)])
    marker = "limits-split-%d" % time.monotonic_ns()
    rcpts = ["u%d@%s" % (i, DOMAIN) for i in range(9)]
    qid = send(server, rcpts, make_message(marker, to=rcpts[0]))
    sink.wait_find(marker, n=5, timeout=20)
    for r in rcpts:
        line = wait_status(server, qid, r, "sent", timeout=20)
        assert "dsn=2.0.0" in line, line
    server.settle(1)
    assert sink.violations == [], sink.violations
    assert delivered(sink, marker) == {r: 1 for r in rcpts}
    sessions = [s for s in sink.sessions if s.messages]
    assert [[len(m.rcpt_lines) for m in s.messages] for s in sessions] == [[2, 2], [2, 2], [1]], \
        [[m.rcpt_lines for m in s.messages] for s in sessions]
    # A session at MAILMAX is ended at once (the last one stays idle for a while).
    sink.wait_for("QUIT at MAILMAX", lambda: all(s.commands[-1] == "QUIT" for s in sessions[:2]))
    assert all(len(result_lines(server, qid, r)) == 1 for r in rcpts)


def test_each_recipient_keeps_its_result(relay, sink_factory, port):
    """RCPTMAX=2: the refused recipient of the first transaction bounces, the deferred one
    of the second is retried and delivered, the others are sent once."""
    sink = sink_factory("127.0.0.2", port, limits=(2, None))
    rcpts = ["ok1@" + DOMAIN, "never@" + DOMAIN, "later@" + DOMAIN, "ok2@" + DOMAIN,
             "ok3@" + DOMAIN]
    sink.rcpt_replies = {"never@" + DOMAIN: "550 5.1.1 no such user",
                         "later@" + DOMAIN: "450 4.2.1 try later"}
    server = relay(routes=[route(port)])
    marker = "limits-results-%d" % time.monotonic_ns()
    qid = send(server, rcpts, make_message(marker, to=rcpts[0]))
    for r in ("ok1@", "ok2@", "ok3@"):
        wait_status(server, qid, r + DOMAIN, "sent", timeout=20)
    bounced = wait_status(server, qid, "never@" + DOMAIN, "bounced", timeout=20)
    assert "dsn=5.1.1" in bounced, bounced
    deferred = wait_status(server, qid, "later@" + DOMAIN, "deferred", timeout=20)
    assert "dsn=4.2.1" in deferred, deferred
    sink.rcpt_replies = {}
    wait_status(server, qid, "later@" + DOMAIN, "sent", timeout=20)
    check_failed(server, wait_bounces(server)[0], "never@" + DOMAIN, "5.1.1", marker)
    server.settle(2.5)  # longer than retry_max: nothing more is sent
    assert sink.violations == [], sink.violations
    assert delivered(sink, marker) == {r: 1 for r in rcpts if not r.startswith("never@")}
    first = sink.transactions()[:3]
    assert [len(t.rcpt_lines) for t in first] == [2, 2, 1], [t.rcpt_lines for t in first]


def test_mailmax_across_messages(relay, sink_factory, port):
    """One connection at a time to the next hop, MAILMAX=2: the reused connection carries
    two messages, then QUIT; the third message goes on a new connection."""
    sink = sink_factory("127.0.0.2", port, limits=(None, 2))
    server = relay(routes=[route(port)], connections_per_destination=1)
    marker = "limits-mailmax-%d" % time.monotonic_ns()
    with server.connect() as c:
        c.ehlo()
        for i in range(3):
            r = c.mail("alice@example.test", ["m%d@%s" % (i, DOMAIN)],
                       make_message("%s-%d" % (marker, i), to="m%d@%s" % (i, DOMAIN)))
            assert r.code == 250, r
    sink.wait_find(marker, n=3, timeout=20)
    server.settle(1)
    assert sink.violations == [], sink.violations
    assert all(len(s.messages) <= 2 for s in sink.sessions), [s.commands for s in sink.sessions]
    assert len(sink.find(marker)) == 3
