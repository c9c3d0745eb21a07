"""SIGHUP reloads configuration, tables and certificates without dropping a session or a
message; SIGTERM stops gracefully: no new sessions, transactions in progress finish,
sessions between transactions hear 421 4.3.2, and every message that got its 250 is delivered
exactly once. Both tested under load (client threads, bounded in count and time)."""
import os
import re
import signal
import socket
import threading
import time

from ternlib import SMTPClient, free_port, make_message, parse_qid, scaled


def hup(server):
    os.kill(server.proc.pid, signal.SIGHUP)


def term(server):
    os.kill(server.proc.pid, signal.SIGTERM)


def begin_data(c, rcpt="alice@example.test", subject="in-flight"):
    """A transaction stopped in the middle of its content."""
    c.ehlo()
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: " + subject.encode() + b"\r\nFrom: sender@example.org\r\n\r\nfirst part\r\n")


def end_data(c):
    c.send(b"second part\r\n.\r\n")
    return c.read_reply()


def test_reload_applies_new_users_aliases_and_settings(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<s@example.org>", 250)
        r = c.cmd("RCPT TO:<newbie@example.test>")
        assert r.code == 550
    with open(server.users_path, "a") as f:
        f.write("newbie\n")
    with open(server.aliases_path, "a") as f:
        f.write("crew: newbie, dave\n")
    hup(server)
    server.wait_log(r"reload: configuration, tables and certificates loaded")
    server.wait_log(r"reload: configuration, aliases and users read again")
    marker = "reloaded-%d" % time.monotonic_ns()
    with server.connect() as c:
        c.ehlo()
        r = c.mail("s@example.org", ["crew@example.test"], make_message(subject=marker))
        assert r.code == 250, r
    server.wait_delivered("newbie", 1)
    server.wait_delivered("dave", 1)
    assert len(server.find(marker)) == 2


def test_reload_with_a_broken_config_changes_nothing(server):
    with open(server.config_path, "a") as f:
        f.write("this line is not a setting\n")
    hup(server)
    server.wait_log(r"reload: configuration errors, nothing changed")
    assert server.alive()
    server.send_one(make_message(subject="still-here"))
    server.wait_delivered("alice", 1)


def test_reload_keeps_restart_only_settings_and_says_so(server, tmp_path):
    with open(server.config_path, "a") as f:
        f.write("spool_dir = %s\n" % (tmp_path / "elsewhere"))
    hup(server)
    server.wait_log(r"reload: spool_dir changed; that takes a restart")
    server.send_one(make_message(subject="same-spool"))
    server.wait_delivered("alice", 1)
    assert not (tmp_path / "elsewhere").exists()


def test_reload_lets_a_session_in_the_middle_of_data_finish_and_go_on(server):
    c = SMTPClient(server.host, server.port)
    begin_data(c, subject="across-reload")
    hup(server)
    server.wait_log(r"replaced by a reload")
    # The old smtp process still serves this client: the message completes...
    r = end_data(c)
    assert r.code == 250, r
    # ... and the session may go on with another transaction.
    r = c.mail("sender@example.org", ["carol@example.test"], make_message(subject="second-in-session"))
    assert r.code == 250, r
    r = c.cmd("QUIT")
    assert r.code == 221
    c.close()
    server.wait_log(r"the old smtp process \d+ has finished draining")
    server.wait_find("across-reload")
    server.wait_find("second-in-session")
    # New connections went to the new process all along.
    server.send_one(make_message(subject="after-reload"))
    server.wait_find("after-reload")


def test_reload_lets_a_relay_in_flight_finish_once(tern_factory, sink_factory):
    """An outbound transfer running in the replaced smtp process completes there: the message
    reaches the next hop once, is not retried, and the old process exits only after it."""
    port = free_port()
    server = tern_factory(relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
                          extra_lines=["route = remote.example 127.0.0.1:%d" % port])
    sink = sink_factory("127.0.0.1", port)
    # The sink holds its reply to the final dot until the old process has begun to drain.
    sink.delay_at, sink.delay_seconds = "dot", scaled(60)
    r, qid = server.send_one(make_message(subject="relay-across-reload", to="bob@remote.example"),
                             rcpts=("bob@remote.example",))
    assert r.code == 250, r
    assert sink.delaying.wait(scaled(10)), "the relay never reached the final dot"
    hup(server)
    m = server.wait_log(r"replaced by a reload: \d+ sessions and (\d+) deliveries")
    assert m.group(1) == "1", m.group(0)
    sink.release.set()
    server.wait_log(r"%s: to=<bob@remote\.example>, relay=.*status=sent" % qid, timeout=scaled(15))
    server.wait_log(r"%s: removed" % qid)
    server.wait_log(r"the old smtp process \d+ has finished draining")
    log = server.log()
    # Had the old process left before its relay ended, the queue would have deferred it.
    assert "status=deferred" not in log, log[-3000:]
    assert len(sink.messages) == 1


def test_reload_drain_is_bounded_by_shutdown_timeout(tern_factory):
    server = tern_factory(shutdown_timeout="2s")
    c = SMTPClient(server.host, server.port)
    c.ehlo()
    hup(server)
    server.wait_log(r"replaced by a reload")
    # Idle past the timeout: the old process says so and closes it at its next command.
    server.wait_log(r"reload: 1 sessions still open after shutdown_timeout")
    r = c.cmd("NOOP")
    assert r.code == 421 and r.enh == "4.3.2", r
    server.wait_log(r"the old smtp process \d+ has finished draining", timeout=10)
    c.close()


def _load(server, stop, results, per_session, nmsg, tag, deadline_s=60):
    """One client thread: at most nmsg messages, per_session of them in each session, until
    `stop` is set (or nmsg are sent, or deadline_s passes). Appends to `results`."""
    sent = 0
    deadline = time.monotonic() + scaled(deadline_s)
    while sent < nmsg and not stop.is_set() and time.monotonic() < deadline:
        try:
            c = SMTPClient(server.host, server.port, timeout=scaled(30))
        except OSError as e:
            results.append(("connect", tag, repr(e)))
            time.sleep(0.05)
            continue
        try:
            c.ehlo()
            for _ in range(per_session):
                if sent >= nmsg or stop.is_set():
                    break
                marker = "%s-%d" % (tag, sent)
                r = c.mail("sender@example.org", ["alice@example.test"], make_message(subject=marker))
                results.append(("reply", marker, r.code, getattr(r, "enh", None)))
                sent += 1
                if r.code != 250:
                    break
            c.cmd("QUIT")
        except (OSError, AssertionError) as e:
            results.append(("error", tag, repr(e)))
        finally:
            c.close()
    results.append(("end", tag, "stopped" if stop.is_set() else "bound reached after %d" % sent))


def _sent_by(results, tag):
    return sum(1 for r in list(results) if r[0] == "reply" and r[1].startswith(tag + "-"))


def _wait_each_sends_more(results, tags, since, what):
    """Waits until every load thread has had a reply more than it had in `since`."""
    deadline = time.monotonic() + scaled(30)
    while True:
        behind = [t for t in tags if _sent_by(results, t) <= since[t]]
        if not behind:
            return
        assert time.monotonic() < deadline, "%s: no reply for %s within %ss" % (what, behind, scaled(30))
        time.sleep(0.02)


def test_reload_under_load_loses_nothing_and_refuses_nobody(tern_factory):
    """Three reloads, each while the load runs: the test sends SIGHUP, waits for that reload's
    log line and for every client to get a reply after it, then the next. The load goes on
    until the reloads are done, however fast or slow the machine (bounded in count and time)."""
    # The replaced process lets its sessions run on for shutdown_timeout: long enough that
    # the long sessions outlive every reload on any machine.
    server = tern_factory(shutdown_timeout="10m")
    stop = threading.Event()
    results = []
    threads = []
    nthreads, nmsg, nreloads = 6, 5000, 3
    tags = ["load%d" % i for i in range(nthreads)]
    for i, tag in enumerate(tags):
        # Half keep one session across every reload; half connect for each message.
        per_session = nmsg if i % 2 == 0 else 1
        t = threading.Thread(target=_load, args=(server, stop, results, per_session, nmsg, tag, 120))
        t.start()
        threads.append(t)
    try:
        none = {t: 0 for t in tags}
        _wait_each_sends_more(results, tags, none, "before the reloads")
        for k in range(1, nreloads + 1):
            hup(server)
            server.wait_log(r"reload: configuration, tables and certificates loaded", count=k, timeout=30)
            # Sessions in the old process and new connections to the new one both go on.
            since = {t: _sent_by(results, t) for t in tags}
            _wait_each_sends_more(results, tags, since, "after reload %d" % k)
        ended = [r for r in results if r[0] == "end"]
        assert ended == [], "the load ended before the reloads were done: %r" % ended
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=scaled(60))
    assert not any(t.is_alive() for t in threads)
    problems = [r for r in results if r[0] not in ("reply", "end") or (r[0] == "reply" and r[2] != 250)]
    assert problems == [], problems[:10]
    accepted = [r[1] for r in results if r[0] == "reply"]
    # No signal was sent while a reload ran, so none coalesced: exactly one reload each.
    log = server.log()
    assert len(re.findall(r"reload: configuration, tables and certificates loaded", log)) == nreloads
    # The first reload replaced a process that had the long sessions open.
    assert re.search(r"replaced by a reload: [1-9]\d* sessions", log), server.log_tail()
    server.wait_delivered("alice", len(accepted), timeout=120)
    server.wait_queue_idle()
    bodies = server.maildir("alice")
    assert len(bodies) == len(accepted)
    for marker in accepted:
        n = sum(1 for b in bodies if ("Subject: %s\n" % marker).encode() in b)
        assert n == 1, (marker, n)
    assert server.alive()


def test_sigterm_lets_a_transaction_finish_then_refuses_politely(tern_factory):
    server = tern_factory(shutdown_timeout="20s")
    busy = SMTPClient(server.host, server.port)
    begin_data(busy, subject="finished-during-stop")
    idle = SMTPClient(server.host, server.port)
    idle.ehlo()
    term(server)
    # The idle session hears 421 4.3.2 at once (RFC 5321 3.8).
    r = idle.read_reply(timeout=scaled(5))
    assert r.code == 421 and r.enh == "4.3.2", r
    idle.close()
    # No new sessions: the smtp process has closed its listeners when it says it stops.
    server.wait_log(r"stopping: \d+ sessions")
    try:
        s = socket.create_connection((server.host, server.port), timeout=2)
        greeting = s.recv(100)
        s.close()
        assert not greeting.startswith(b"220"), greeting
    except OSError:
        pass
    # The transaction in progress completes; its next command is refused.
    r = end_data(busy)
    assert r.code == 250, r
    qid = parse_qid(r)
    r = busy.cmd("MAIL FROM:<sender@example.org>")
    assert r.code == 421 and r.enh == "4.3.2", r
    busy.close()
    rc = server.proc.wait(timeout=scaled(30))
    assert rc == 0, server.log_tail()
    assert re.search(r"%s: (to=<alice@example.test>.*status=sent|from=)" % qid, server.log())
    server.start()
    server.wait_find("finished-during-stop")
    server.wait_queue_idle()
    assert len(server.find("finished-during-stop")) == 1


def test_sigterm_cuts_a_stalled_transaction_after_shutdown_timeout(tern_factory):
    server = tern_factory(shutdown_timeout="2s")
    c = SMTPClient(server.host, server.port)
    begin_data(c, subject="never-finished")
    t0 = time.monotonic()
    term(server)
    rc = server.proc.wait(timeout=scaled(20))
    assert time.monotonic() - t0 < scaled(10)
    assert rc == 0
    c.close()
    server.start()
    server.wait_queue_idle()
    assert server.find("never-finished") == []


def test_sigterm_under_load_every_250_is_delivered_once(tern_factory):
    server = tern_factory(shutdown_timeout="10s")
    stop = threading.Event()
    results = []
    # Each client sends until the stop (at most 2000 messages).
    threads = [threading.Thread(target=_load, args=(server, stop, results, 5, 2000, "term%d" % i))
               for i in range(6)]
    for t in threads:
        t.start()
    # Every client has had a message accepted: the stop comes in the middle of the load.
    deadline = time.monotonic() + scaled(30)
    while len({r[1].rsplit("-", 1)[0] for r in list(results) if r[0] == "reply"}) < len(threads):
        assert time.monotonic() < deadline, results[:10]
        time.sleep(0.02)
    term(server)
    rc = server.proc.wait(timeout=scaled(40))
    stop.set()
    for t in threads:
        t.join(timeout=scaled(60))
    assert rc == 0, server.log_tail()
    ended = [r for r in results if r[0] == "end"]
    assert all(r[2] == "stopped" for r in ended), ended
    accepted = [r[1] for r in results if r[0] == "reply" and r[2] == 250]
    refused = [r for r in results if r[0] == "reply" and r[2] != 250]
    # A refusal during the stop is a polite 421 4.3.2 between transactions, never a 5xx.
    assert all(r[2] == 421 and r[3] == "4.3.2" for r in refused), refused[:5]
    assert accepted, "nothing was accepted before the stop"
    server.start()
    server.wait_delivered("alice", len(accepted), timeout=60)
    server.wait_queue_idle()
    bodies = server.maildir("alice")
    assert len(bodies) == len(accepted)
    for marker in accepted:
        n = sum(1 for b in bodies if ("Subject: %s\n" % marker).encode() in b)
        assert n == 1, (marker, n)
