"""Slow and idle clients: the deadline for a whole command line, the minimum rate of message
content, stress mode under 5,000 idle connections, and the cap of the AUTH failure delay
(hardening issue, item 6)."""
import os
import re
import resource
import selectors
import socket
import time
import urllib.request

import pytest

import ternlib
from ternlib import SMTPClient, b64, free_port, make_message, scaled


def metric(port, sample):
    """The value of one sample line (name{labels}) of the server's /metrics, or None."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=scaled(10)) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\d+)$" % re.escape(sample), text, re.M)
    return int(m.group(1)) if m else None

# --------------------------------------------------------------------------- AUTH delay


def test_auth_failure_delay_capped(tls_factory):
    """auth_failure_delay_max caps the growing delay: with 2 s the fifth failure, which used
    to wait 16 s, is answered after 2 s, inside the 12 s this client waits for a reply."""
    server = tls_factory(auth_failures_max=10, auth_failure_delay_max="2s")
    want = [1, 2, 2, 2, 2, 2]
    with server.connect("smtps") as c:
        c.ehlo()
        for i, low in enumerate(want):
            t0 = time.monotonic()
            # Not scaled: it stands for a client that gives up after 12 s, and what the
            # sanitizers slow down (the password hash) takes a fraction of a second.
            r = c.cmd("AUTH PLAIN " + b64(b"\0alice\0guess-%d" % i), timeout=12)
            waited = time.monotonic() - t0
            assert r.code == 535 and r.enh == "5.7.8", (i, r)
            # Waiting is never shorter than asked: the delay is really there.
            assert waited >= low - 0.1, (i, waited)
    server.wait_log(r"SASL PLAIN authentication failed", count=len(want))


# --------------------------------------------------------------------------- trickling


def trickle_until_reply(c, data, pause):
    """Sends `data` one octet at a time, `pause` seconds apart, until the server answers;
    returns (reply or None if all was sent without one, seconds from the first octet)."""
    t0 = time.monotonic()
    for i in range(len(data)):
        try:
            c.send(data[i:i + 1])
        except OSError:  # closed already: what it said is in the buffer
            break
        if not c.no_reply_within(pause):
            break
    else:
        return None, time.monotonic() - t0
    return c.read_reply(timeout=scaled(10)), time.monotonic() - t0


def test_command_line_trickled_is_cut(tern_factory):
    """One octet a second re-arms any idle timer for ever; the whole line must arrive within
    timeout_command_line of the previous reply all the same: 421 4.4.2, then the close."""
    mport = free_port()
    server = tern_factory(timeout_command_line="3s", metrics_listen="127.0.0.1:%d" % mport)
    c = server.connect()
    c.ehlo()
    # 200 octets at one a second would take 200 s: the deadline is 3 s.
    r, took = trickle_until_reply(c, b"NOOP " + b"x" * 195, 1.0)
    assert r is not None, "a trickled command line was never cut"
    assert r.code == 421 and r.enh == "4.4.2", r
    assert took >= 3 - 1.1, took  # never before the deadline (measured from the EHLO reply)
    assert c.wait_closed(scaled(10))
    server.wait_log(r"timeout after command from unknown\[127\.0\.0\.1\]: no complete command "
                    r"line within 3s")
    assert metric(mport, 'tern_smtp_timeouts_total{limit="command_line"}') == 1
    assert metric(mport, 'tern_smtp_timeouts_total{limit="idle"}') == 0
    assert metric(mport, "tern_smtp_stress") == 0
    # Lines that come whole are not affected, however many.
    with server.connect() as ok:
        ok.ehlo()
        for _ in range(5):
            assert ok.cmd("NOOP").code == 250


def start_data(server, bdat_size=None):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<slow@example.org>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    if bdat_size is None:
        c.expect("DATA", 354)
    else:
        c.send("BDAT %d LAST\r\n" % bdat_size)
    return c


def test_data_below_rate_is_cut(tern_factory):
    """Message content trickled below data_rate_min over a whole window (after the first,
    the grace) is cut with 421 4.4.2, Postfix's "timeout after DATA"; nothing is delivered."""
    mport = free_port()
    server = tern_factory(data_rate_min=100, data_rate_window="2s",
                          metrics_listen="127.0.0.1:%d" % mport)
    c = start_data(server)
    # 5 octets/s against 100: cut after the grace window and one more (about 4 s); 300
    # octets would take a minute.
    body = b"Subject: trickle\r\n\r\n" + b"t" * 280
    r, took = trickle_until_reply(c, body, 0.2)
    assert r is not None, "content trickled below data_rate_min was never cut"
    assert r.code == 421 and r.enh == "4.4.2", r
    assert took >= 4 - 1.1, took  # the grace window, then a whole slow one
    assert c.wait_closed(scaled(10))
    server.wait_log(r"timeout after DATA from unknown\[127\.0\.0\.1\]: \d+ octets/s, below "
                    r"data_rate_min 100")
    assert metric(mport, 'tern_smtp_timeouts_total{limit="data_rate"}') == 1
    server.settle(1)
    assert server.maildir("alice") == []


def test_bdat_below_rate_is_cut(tern_factory):
    server = tern_factory(data_rate_min=100, data_rate_window="2s")
    c = start_data(server, bdat_size=300)
    r, took = trickle_until_reply(c, b"Subject: trickle\r\n\r\n" + b"t" * 280, 0.2)
    assert r is not None and r.code == 421 and r.enh == "4.4.2", r
    assert took >= 4 - 1.1, took
    server.wait_log(r"timeout after DATA from unknown\[127\.0\.0\.1\]: \d+ octets/s")


def test_slow_honest_client_above_rate_is_not_cut(tern_factory):
    """A client well above data_rate_min, for several windows, is served: 1000 octets/s
    against 100, over about 8 windows of 1 s."""
    server = tern_factory(data_rate_min=100, data_rate_window="1s")
    c = start_data(server)
    content = make_message("slow-but-honest", "h" * 78 + "\r\n") + b"".join(
        (b"%04d " % i) + b"s" * 243 + b"\r\n" for i in range(32))
    for i in range(0, len(content), 250):
        c.send(content[i:i + 250])
        assert c.no_reply_within(0.25), "cut although above the rate: %r" % c.buf
    c.send(b".\r\n")
    r = c.read_reply()
    assert r.code == 250, r
    c.cmd("QUIT")
    msgs = server.wait_delivered("alice", 1)
    assert b"0031 " + b"s" * 243 in msgs[0]


# --------------------------------------------------------------------------- stress mode


def _raise_nofile(need):
    """Raises this process's descriptor limit to `need` (tern inherits it); False if the hard
    limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        return False
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return True


def _open_idle(server, n, addrs, deadline):
    """n connections from 127.0.0.1 .. 127.0.0.<addrs>, each greeted with 220 and then left
    idle; a bounded number waits for its greeting at a time (below the listen backlog)."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], {}, 0
    try:
        while len(done) < n:
            assert time.monotonic() < deadline, "%d of %d idle sessions open in time" % (len(done), n)
            while started < n and len(pending) < 200:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.%d" % (1 + started % addrs), 0))
                s.setblocking(False)
                s.connect_ex((server.host, server.port))
                pending[s] = b""
                sel.register(s, selectors.EVENT_READ)
                started += 1
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                chunk = s.recv(4096)
                assert chunk, "closed before the greeting (%d open)" % len(done)
                pending[s] += chunk
                if b"\n" in pending[s]:
                    assert pending[s].startswith(b"220"), pending[s]
                    sel.unregister(s)
                    del pending[s]
                    done.append(s)
    except BaseException:
        for s in list(pending) + done:
            s.close()
        raise
    finally:
        sel.close()
    return done


def test_stress_mode_serves_a_client_past_5000_idle_sessions(tern_factory):
    """5,000 idle connections from 100 addresses fill sessions_max; every new client is
    refused. Stress mode (80 % of sessions_max) cuts idle sessions after timeout_stress
    (10 s) instead of timeout_command (5 min), so a real client gets through and delivers."""
    n, addrs = 5000, 100
    if not _raise_nofile(n + 500):
        pytest.skip("RLIMIT_NOFILE hard limit below %d" % (n + 500))
    # Longer than filling the server takes (the first idle sessions must not be cut before
    # the last one is open), far below timeout_command's 5 minutes.
    stress_s = int(scaled(20))
    mport = free_port()
    server = tern_factory(sessions_max=n, sessions_per_ip=n // addrs,
                          timeout_stress="%ds" % stress_s, metrics_listen="127.0.0.1:%d" % mport)
    idle = _open_idle(server, n, addrs, time.monotonic() + scaled(120))
    try:
        # Full: the next client is refused (this is where everyone was stuck for 5 minutes).
        with SMTPClient(server.host, server.port, source="127.0.0.200") as c:
            assert c.greeting.code == 421 and "too many connections" in c.greeting.text, c.greeting
        stressed = time.monotonic() + scaled(10)
        while metric(mport, "tern_smtp_stress") != 1:
            assert time.monotonic() < stressed, "not in stress mode with sessions_max open"
            time.sleep(0.1)
        # A real client retries until it is served, then delivers; bounded, and well below the
        # 5 minutes the idle sessions would otherwise hold every place.
        deadline = time.monotonic() + stress_s + scaled(60)
        tries = 0
        while True:
            tries += 1
            with SMTPClient(server.host, server.port, source="127.0.0.200") as c:
                if c.greeting.code == 220:
                    c.ehlo()
                    r = c.mail("real@example.org", ["alice@example.test"],
                               make_message("through-the-stress", msgid="<stress@client.test>"))
                    assert r.code == 250, r
                    c.cmd("QUIT")
                    break
                assert c.greeting.code == 421, c.greeting
            assert time.monotonic() < deadline and tries < 2000, \
                "no place for a real client after %d tries; log:\n%s" % (tries, server.log_tail())
            time.sleep(0.1)
        server.wait_delivered("alice", 1, timeout=30)
        server.wait_log(r"entering stress mode: \d+ of sessions_max 5000 sessions open")
        assert metric(mport, 'tern_smtp_timeouts_total{limit="idle"}') >= 1
        # The idle ones were told why.
        some = idle[:20]
        for s in some:
            s.setblocking(True)
            s.settimeout(scaled(30))
            assert s.recv(4096).startswith(b"421 4.4.2"), "an idle session was not timed out"
        server.wait_log(r"timeout after command from unknown\[127\.0\.0\.\d+\]: stress mode")
        server.wait_log(r"leaving stress mode", timeout=60)
        assert metric(mport, "tern_smtp_stress") == 0
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------- descriptors


def smtpd_pid(server):
    """The pid of the server's tern-smtpd process (the child of the supervisor)."""
    for pid in server.group_pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        if st[st.index("(") + 1:st.rindex(")")] == "tern-smtpd":
            return pid
    raise AssertionError("no tern-smtpd process")


def nofile_limits(pid):
    """(soft, hard) of RLIMIT_NOFILE of any process, from /proc (prlimit(2) on another user's
    process needs CAP_SYS_RESOURCE)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open files limit for %d" % pid)


def test_soft_descriptor_limit_raised_to_hard(tern_factory):
    """A soft limit of 1024 (the usual default) would cap the 2000 sessions of sessions_max at
    about 1000: tern's SMTP process raises it to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip("needs a finite hard limit above 256, have %r" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        server = tern_factory()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert nofile_limits(smtpd_pid(server)) == (hard, hard)


def test_out_of_descriptors_waits_instead_of_spinning(tern_factory, tmp_path, monkeypatch):
    """At EMFILE the connection stays in the kernel's queue and the listener readable: tern
    rests its listeners (one warning, not one per try at full speed, which is what it did) and
    accepts the waiting clients once sessions end."""
    limit = 128
    # tern under a hard limit of its own (the test process keeps its own limits).
    wrapper = tmp_path / "tern-limited"
    wrapper.write_text("#!/bin/sh\nulimit -n %d || exit 1\nexec %s \"$@\"\n" % (limit, ternlib.TERN_BIN))
    wrapper.chmod(0o755)
    monkeypatch.setattr(ternlib, "TERN_BIN", str(wrapper))
    server = tern_factory(sessions_max=300, sessions_per_ip=300)
    server.wait_log(r"the file descriptor limit %d is below the 864 that sessions_max 300" % limit)
    greeted, waiting = [], []
    try:
        # Fill the SMTP process's descriptors: connections beyond them get no greeting.
        for _ in range(limit):
            c = SMTPClient(server.host, server.port, read_greeting=False)
            if c.no_reply_within(0.5 if greeted else scaled(5)):
                waiting.append(c)
                if len(waiting) == 3:
                    break
            else:
                assert c.read_reply().code == 220
                greeted.append(c)
        assert len(waiting) == 3 and 50 < len(greeted) < limit, (len(greeted), len(waiting))
        server.wait_log(r"accept: Too many open files \(\d+ times since the last warning\) "
                        r"with %d sessions open: not accepting for 100 ms" % len(greeted))
        # Seconds of refused accepts: still that one warning, not a flood of them.
        server.settle(2)
        assert server.log().count("Too many open files") == 1, server.log_tail()
        for c in greeted[:10]:
            c.close()
        for w in waiting:
            r = w.read_reply(timeout=scaled(15))
            assert r.code == 220, r
            w.ehlo()
    finally:
        for c in greeted + waiting:
            c.close()
