"""Limits: recipients (RFC 5321 §4.5.3.1.8/10, LIMITS RCPTMAX), bad commands, sessions per
IP and in total, text line length, timeouts."""
import re
import smtplib
import subprocess
import time

import pytest

from ternlib import DEFAULT_USERS, TERN_BIN, SMTPClient, data_payload, make_message, scaled

MANY_USERS = DEFAULT_USERS + ["u%03d" % i for i in range(120)]


@pytest.fixture
def many(tern_factory):
    return tern_factory(users=MANY_USERS)


def over_limit_then_data(c, rcpts, subject):
    """RCPTs past the limit each get 452 4.5.3; DATA then delivers to the ones accepted."""
    for rcpt in rcpts:
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert r.code == 452 and r.enh == "4.5.3", (rcpt, r)
    c.expect("DATA", 354)
    c.send(data_payload(make_message(subject)))
    r = c.read_reply()
    assert r.code == 250, r


def test_limits_rcptmax_advertised(tern_factory):
    s = tern_factory(rcpt_max=150)
    with s.connect() as c:
        r = c.ehlo()
    assert "LIMITS RCPTMAX=150" in r.lines, r


def test_100_recipients_accepted_101st_refused(many):
    with many.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for i in range(100):
            r = c.cmd("RCPT TO:<u%03d@example.test>" % i)
            assert r.code == 250 and r.enh == "2.1.5", "recipient %d: %s" % (i + 1, r)
        # still 452 (not an error that ends anything) and DATA proceeds for the first 100
        over_limit_then_data(c, ["u100@example.test", "u101@example.test"], "hundred")
    for i in range(100):
        msgs = many.wait_delivered("u%03d" % i, 1, timeout=20)
        assert len(msgs) == 1
    many.wait_queue_idle()
    assert many.maildir("u100") == [] and many.maildir("u101") == []
    assert len(many.all_messages()) == 100


def test_rcpt_max_configured(tern_factory):
    s = tern_factory(rcpt_max=110, users=MANY_USERS)
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for i in range(110):
            c.expect("RCPT TO:<u%03d@example.test>" % i, 250, "2.1.5")
        r = c.cmd("RCPT TO:<u110@example.test>")
        assert r.code == 452 and r.enh == "4.5.3", r


def test_recipient_limit_resets_per_transaction(many):
    with many.connect() as c:
        c.ehlo()
        for _ in range(2):
            c.expect("MAIL FROM:<a@example.org>", 250)
            for i in range(100):
                c.expect("RCPT TO:<u%03d@example.test>" % i, 250)
            assert c.cmd("RCPT TO:<u100@example.test>").code == 452
            c.expect("RSET", 250)


def test_rcptmax_counts_repeated_recipients(many):
    """RFC 9422 RCPTMAX is a number of RCPT commands: an address given again uses one up (it is
    stored, and delivered, once); the 101st identical RCPT gets 452 4.5.3."""
    with many.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for i in range(99):
            c.expect("RCPT TO:<u%03d@example.test>" % i, 250)
        c.expect("RCPT TO:<u000@example.test>", 250)
        over_limit_then_data(c, ["u000@example.test", "u099@example.test"], "repeated")
    many.wait_delivered("u098", 1)
    many.settle(0.5)
    assert len(many.maildir("u000")) == 1 and many.maildir("u099") == []
    assert len(many.all_messages()) == 99


def test_refused_rcpts_count_toward_rcptmax(many):
    """Refused RCPT commands are RCPT commands too: after 100 of any kind, 452."""
    with many.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        for i in range(10):
            assert c.cmd("RCPT TO:<nosuch%d@example.test>" % i).code == 550
        for i in range(90):
            c.expect("RCPT TO:<u%03d@example.test>" % i, 250)
        r = c.cmd("RCPT TO:<u090@example.test>")
        assert r.code == 452 and r.enh == "4.5.3", r


def test_smtplib_sends_the_rest_in_later_transactions(tern_factory):
    """A real client doing what RFC 5321 §4.5.3.1.10 expects: smtplib's sendmail() returns the
    recipients refused with 452 and the caller sends them again in the next transaction of the
    same session. 250 recipients take 3 transactions; every one gets the message once."""
    users = ["u%03d" % i for i in range(250)]
    s = tern_factory(users=DEFAULT_USERS + users)
    msg = make_message("smtplib-in-rounds")
    left = ["%s@example.test" % u for u in users]
    rounds = 0
    with smtplib.SMTP(s.host, s.port, local_hostname="client.test", timeout=scaled(30)) as cl:
        while left:
            rounds += 1
            assert rounds <= 5, "still %d recipients left after 5 transactions" % len(left)
            refused = cl.sendmail("sender@example.org", left, msg)
            assert all(code == 452 for code, _ in refused.values()), refused
            assert len(left) - len(refused) == min(100, len(left)), (len(left), len(refused))
            left = [r for r in left if r in refused]
        assert cl.noop()[0] == 250
    assert rounds == 3
    for u in users:
        assert len(s.wait_delivered(u, 1, timeout=30)) == 1
    s.settle(0.5)
    assert len(s.all_messages()) == 250


def test_refused_recipients_have_their_own_limit(tern_factory):
    """Unknown users are not protocol errors (bad_commands_max = 3 is not reached), but a flood
    of them is a directory-harvest probe: rcpt_refused_max ends the session with 421 4.7.0."""
    s = tern_factory(bad_commands_max=3, rcpt_refused_max=30)
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        refused = [c.cmd("RCPT TO:<nosuch%d@example.test>" % i) for i in range(29)]
        assert [(r.code, r.enh) for r in refused] == [(550, "5.1.1")] * 29, refused
        c.expect("RCPT TO:<alice@example.test>", 250)
        r = c.cmd("RCPT TO:<nosuch29@example.test>")
        assert r.code == 550, r
        r = c.read_reply()
        assert r.code == 421 and r.enh == "4.7.0" and "refused recipients" in r.text, r
        assert c.wait_closed(5)
    assert re.search(r"too many refused recipients after rcpt from \S+\[127\.0\.0\.1\]", s.log()), s.log_tail()


def test_accepted_message_forgives_errors(tern_factory):
    """As Postfix's smtpd: the errors before an accepted message are forgiven, so a long
    session with a few errors per transaction goes on."""
    s = tern_factory(bad_commands_max=3)
    with s.connect() as c:
        c.ehlo()
        for i in range(5):
            assert c.cmd("FOO").code == 500
            assert c.cmd("BAR").code == 500
            r = c.mail("a@example.org", ["alice@example.test"], make_message("forgiven-%d" % i))
            assert r.code == 250, r
        assert c.cmd("FOO").code == 500
        assert c.cmd("BAR").code == 500
        r = c.cmd("BAZ")
        assert r.code == 500, r
        assert c.read_reply().code == 421
    s.wait_delivered("alice", 5)


def bad_commands_until_421(c, line, most):
    """Sends `line` (a bad command) followed by a NOOP, up to `most` times: the NOOP's 250
    says the session goes on, a 421 in its place (or in place of the 500) that it ends.
    Returns (the number of bad commands sent, the 421)."""
    for i in range(1, most + 1):
        c.send(line.encode() + b"\r\nNOOP\r\n")
        r = c.read_reply()
        if r.code == 421:
            return i, r
        assert r.code == 500 and r.enh == "5.5.2", "bad command %d: %s" % (i, r)
        r = c.read_reply()
        if r.code == 421:
            return i, r
        assert r.code == 250, "NOOP after bad command %d: %s" % (i, r)
    raise AssertionError("no 421 after %d bad commands" % most)


def test_bad_commands_close_connection(server):
    """bad_commands_max = 20: the connection is closed with 421 4.7.0 once the limit is
    reached (at the 20th error, or at the 21st if the limit counts the errors allowed)."""
    with server.connect() as c:
        got421, r = bad_commands_until_421(c, "BOGUS", 25)
        assert got421 in (20, 21), "421 came after bad command %s (limit 20)" % got421
        assert r.enh == "4.7.0", r
        assert c.wait_closed(), "connection still open after 421"


def test_bad_commands_small_limit(tern_factory):
    s = tern_factory(bad_commands_max=3)
    with s.connect() as c:
        c.ehlo()
        i, r = bad_commands_until_421(c, "FOO", 5)
        assert r.code == 421 and r.enh == "4.7.0", r
        assert i in (3, 4), "closed after %d bad commands (limit 3)" % i
        assert c.wait_closed()


def test_good_commands_do_not_count(tern_factory):
    s = tern_factory(bad_commands_max=3)
    with s.connect() as c:
        c.ehlo()
        assert c.cmd("FOO").code == 500
        for _ in range(50):
            assert c.cmd("NOOP").code == 250
        assert c.cmd("FOO").code == 500
        assert c.cmd("NOOP").code == 250


def _try_connect(server, source=None):
    c = SMTPClient(server.host, server.port, read_greeting=False, source=source)
    r = c.read_reply()
    return c, r


def test_sessions_per_ip_limit(tern_factory):
    s = tern_factory(sessions_per_ip=3)
    s.wait_sessions_open(0)  # the readiness probe's session is gone
    held = []
    try:
        for _ in range(3):
            c, r = _try_connect(s)
            held.append(c)
            assert r.code == 220, r
        c, r = _try_connect(s)
        held.append(c)
        assert r.code == 421 and r.enh == "4.7.0", r
        assert c.wait_closed(), "refused session not closed"
        # the held sessions still work
        for h in held[:3]:
            assert h.cmd("NOOP").code == 250
        # once one has left (and the refused one), a new session is accepted
        held[0].cmd("QUIT")
        held[0].close()
        s.wait_sessions_open(2)
        c, r = _try_connect(s)
        held.append(c)
        assert r.code == 220, "no session accepted after one closed: %s" % r
    finally:
        for h in held:
            h.close()


def test_sessions_per_ip_counts_each_address(tern_factory):
    """The per-IP limit is per client address: 127.0.0.2 is not 127.0.0.1."""
    s = tern_factory(sessions_per_ip=2)
    s.wait_sessions_open(0)
    held = []
    try:
        for _ in range(2):
            c, r = _try_connect(s)
            held.append(c)
            assert r.code == 220, r
        c, r = _try_connect(s)
        held.append(c)
        assert r.code == 421, r
        for _ in range(2):
            c, r = _try_connect(s, source="127.0.0.2")
            held.append(c)
            assert r.code == 220, "a session from 127.0.0.2 refused because of 127.0.0.1's: %s" % r
        c, r = _try_connect(s, source="127.0.0.2")
        held.append(c)
        assert r.code == 421 and r.enh == "4.7.0", r
    finally:
        for h in held:
            h.close()


def test_sessions_max_limit(tern_factory):
    s = tern_factory(sessions_max=4, sessions_per_ip=50)
    s.wait_sessions_open(0)
    held = []
    try:
        for _ in range(4):
            c, r = _try_connect(s)
            held.append(c)
            assert r.code == 220, r
        c, r = _try_connect(s)
        held.append(c)
        assert r.code == 421 and r.enh == "4.7.0", r
        assert c.wait_closed()
    finally:
        for h in held:
            h.close()


def test_sessions_limit_released_after_abrupt_close(tern_factory):
    s = tern_factory(sessions_per_ip=2)
    s.wait_sessions_open(0)
    for _ in range(5):
        a, r = _try_connect(s)
        assert r.code == 220, r
        a.abort()
        s.wait_sessions_open(0)  # the reset session is gone
    held = []
    try:
        for _ in range(2):
            c, r = _try_connect(s)
            held.append(c)
            assert r.code == 220, "sessions leaked: %s" % r
    finally:
        for h in held:
            h.close()


def test_text_line_limit(server):
    with server.connect() as c:
        c.ehlo()
        content = b"Subject: long\r\n\r\n" + b"x" * 1500 + b"\r\nend\r\n"
        r = c.mail("a@example.org", ["alice@example.test"], content)
        assert r.code == 554 and r.enh == "5.6.0", r
        # the session continues
        assert c.cmd("NOOP").code == 250
    server.wait_queue_idle()
    assert server.maildir("alice") == []


def test_text_line_999_octets_refused(server):
    """RFC 5321 §4.5.3.1.6: 1000 octets including CRLF; 999 + CRLF is over."""
    with server.connect() as c:
        c.ehlo()
        r = c.mail("a@example.org", ["alice@example.test"], b"Subject: l\r\n\r\n" + b"x" * 999 + b"\r\n")
        assert r.code == 554 and r.enh == "5.6.0", r


def test_text_line_limit_configurable(tern_factory):
    s = tern_factory(text_line_max=2000)
    with s.connect() as c:
        c.ehlo()
        r = c.mail("a@example.org", ["alice@example.test"], b"Subject: l\r\n\r\n" + b"x" * 1998 + b"\r\n")
        assert r.code == 250, r
        r = c.mail("a@example.org", ["alice@example.test"], b"Subject: l\r\n\r\n" + b"x" * 2500 + b"\r\n")
        assert r.code == 554 and r.enh == "5.6.0", r


def test_huge_line_without_newline_in_data(server):
    """A single line of 2 MB: refused at the end, memory bounded, session usable."""
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        chunk = b"q" * 65536
        for _ in range(32):
            c.send(chunk)
        c.send(b"\r\n.\r\n")
        r = c.read_reply(timeout=scaled(30))
        assert r.code in (552, 554), r
        assert c.cmd("NOOP").code == 250


def test_command_timeout(tern_factory):
    s = tern_factory(timeout_command=2)
    with s.connect() as c:
        t0 = time.monotonic()
        r = c.read_reply(timeout=scaled(10))
        elapsed = time.monotonic() - t0
        assert r.code == 421, r
        assert r.enh is not None and r.enh.startswith("4."), r
        assert 1.0 <= elapsed <= scaled(8), "timeout after %.1fs (timeout_command=2)" % elapsed
        assert c.wait_closed()


def test_command_timeout_reset_by_activity(tern_factory):
    s = tern_factory(timeout_command=2)
    with s.connect() as c:
        for _ in range(4):
            time.sleep(1.0)
            assert c.cmd("NOOP").code == 250
        r = c.read_reply(timeout=scaled(10))
        assert r.code == 421, r


def test_command_timeout_minutes_syntax(tern_factory, tmp_path):
    """"5m" is five minutes: shown without waiting for it by the setting's upper bound, one
    day: 1440m is accepted and 1441m refused (as seconds or milliseconds both would pass)."""
    for value, ok in (("1440m", True), ("1441m", False), ("24h", True), ("86401s", False)):
        conf = tmp_path / ("t-%s.conf" % value)
        conf.write_text("timeout_command = %s\n" % value)
        p = subprocess.run([TERN_BIN, "check-config", "-c", str(conf)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=scaled(30))
        assert (p.returncode == 0) == ok, (value, p.returncode, p.stdout + p.stderr)
    s = tern_factory(timeout_command="5m")
    with s.connect() as c:
        assert c.cmd("NOOP").code == 250


def test_data_timeout(tern_factory):
    s = tern_factory(timeout_data=2, timeout_command=300)
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\npartial")
        t0 = time.monotonic()
        r = c.read_reply(timeout=scaled(10))
        assert r.code == 421, r
        assert time.monotonic() - t0 <= scaled(8)
        assert c.wait_closed()
    s.wait_queue_idle()
    assert s.maildir("alice") == []


def test_data_timeout_is_per_pause_not_total(tern_factory):
    """timeout_data bounds the wait for the next block (RFC 5321 §4.5.3.2.6), not the whole
    transfer: content arriving steadily for longer than the timeout is accepted."""
    s = tern_factory(timeout_data=2)
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: steady\r\n\r\n")
        for i in range(10):  # about 5 s in all, never 2 s without data
            time.sleep(0.5)
            c.send(b"line %d\r\n" % i)
        c.send(b".\r\n")
        r = c.read_reply()
        assert r.code == 250, r
    s.wait_delivered("alice", 1)


def test_timeout_does_not_block_other_sessions(tern_factory):
    s = tern_factory(timeout_command=3)
    idle = s.connect()
    try:
        r, _ = s.send_one(make_message("while-idle"))
        assert r.code == 250
        s.wait_delivered("alice", 1)
    finally:
        idle.close()
