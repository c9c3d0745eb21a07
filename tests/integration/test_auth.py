"""AUTH (RFC 4954) on the submission and smtps roles: PLAIN and LOGIN inside TLS only, the
reply codes, throttled failures, credentials kept out of the log, the users file's hashes."""
import itertools
import re
import time

import pytest

from ternlib import PASSWORDS, SLOW, Delivered, b64, ehlo_keywords, make_message, scaled, sha512_crypt

ALICE_PW = PASSWORDS["alice"]
_sources = itertools.count(10)


def fresh_source():
    """A loopback address of its own, so that failures counted per client address in one test
    do not slow down or lock out the next one (the servers here serve a whole module)."""
    return "127.0.1.%d" % next(_sources)


def session(server, listener="submission", source=None):
    """A client inside TLS that has said EHLO."""
    c = server.connect(listener, source=source)
    if not c.tls:
        c.ehlo()
        c.starttls()
    c.ehlo()
    return c


def authed(server, listener="submission", user="alice", password=ALICE_PW):
    c = session(server, listener)
    r = c.auth_plain(user, password)
    assert r.code == 235, r
    return c


def assert_authenticated(c, sender="alice@example.test"):
    c.expect("MAIL FROM:<%s>" % sender, 250, "2.1.0")
    c.expect("RSET", 250)


# --------------------------------------------------------------------------- before TLS


@pytest.mark.parametrize("command", ["AUTH PLAIN " + b64("\0alice\0" + ALICE_PW), "AUTH PLAIN", "AUTH LOGIN"])
def test_auth_before_tls_538(tls_server, command):
    with tls_server.connect("submission", source=fresh_source()) as c:
        assert "AUTH" not in ehlo_keywords(c.ehlo())
        c.expect(command, 538, "5.7.11")
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")


def test_mail_before_auth_530(tls_server):
    for listener in ("submission", "smtps"):
        with session(tls_server, listener) as c:
            c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
            c.expect("RCPT TO:<carol@example.test>", 503)  # no transaction began
            assert c.auth_plain("alice", ALICE_PW).code == 235
            assert_authenticated(c)


def test_auth_on_mx_502(tls_server):
    with tls_server.connect("mx") as c:
        c.ehlo()
        c.expect("AUTH PLAIN " + b64("\0alice\0" + ALICE_PW), 502, "5.5.1")
        c.starttls()
        c.ehlo()
        c.expect("AUTH PLAIN " + b64("\0alice\0" + ALICE_PW), 502, "5.5.1")
        c.expect("AUTH LOGIN", 502, "5.5.1")
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<x@example.org>", 554, "5.7.1")  # no relaying by way of AUTH on mx


# --------------------------------------------------------------------------- mechanisms


@pytest.mark.parametrize("listener", ["submission", "smtps"])
@pytest.mark.parametrize("how", ["plain-initial", "plain-334", "login", "login-initial"])
def test_auth_success(tls_server, listener, how):
    with session(tls_server, listener) as c:
        if how.startswith("plain"):
            r = c.auth_plain("alice", ALICE_PW, initial=(how == "plain-initial"))
        else:
            r = c.auth_login("alice", ALICE_PW, initial=(how == "login-initial"))
        assert r.code == 235 and r.enh == "2.7.0", r
        assert_authenticated(c)


def test_auth_login_name_with_domain_case_insensitive(tls_server):
    with session(tls_server) as c:
        r = c.auth_plain("BOB@Example.TEST", PASSWORDS["bob@example.test"])
        assert r.code == 235, r
        assert_authenticated(c, "bob@example.test")


def test_auth_plain_with_own_authzid(tls_server):
    with session(tls_server) as c:
        r = c.cmd("AUTH PLAIN " + b64("alice\0alice\0" + ALICE_PW))
        assert r.code == 235, r


def test_auth_login_empty_initial_response(tls_server):
    """'=' is an empty initial response: the user name is empty, the password is asked."""
    with session(tls_server, source=fresh_source()) as c:
        r = c.cmd("AUTH LOGIN =")
        assert r.code == 334 and r.lines == ["UGFzc3dvcmQ6"], r
        r = c.cmd(b64("whatever"))
        assert r.code == 535 and r.enh == "5.7.8", r


def test_bad_credentials_identical_replies(tls_factory):
    """Wrong password, unknown user, user without a hash: one reply, so the client learns
    nothing about which part was wrong. (Each from its own address: no growing delay.)"""
    server = tls_factory()
    replies = []
    for i, (user, pw) in enumerate([("alice", "wrong-password"), ("nosuchuser", ALICE_PW), ("carol", ALICE_PW),
                                    ("alice@example.org", ALICE_PW)]):
        with session(server, source="127.0.0.%d" % (31 + i)) as c:
            r = c.auth_plain(user, pw)
            assert r.code == 535 and r.enh == "5.7.8", (user, r)
            replies.append(r.raw)
            c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")  # still not authenticated
    assert len(set(replies)) == 1, replies
    assert replies[0] == b"535 5.7.8 Authentication credentials invalid\r\n"
    with session(server, source="127.0.0.41") as c:
        r = c.auth_login("bob@example.test", "wrong-password")  # bob: no growing per-user delay
        assert r.raw == replies[0], r


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_cancelled(tls_server, mech):
    with session(tls_server, source=fresh_source()) as c:
        r = c.cmd("AUTH " + mech)
        assert r.code == 334, r
        c.expect("*", 501, "5.0.0")
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
        assert c.auth_plain("alice", ALICE_PW).code == 235  # cancelling is not an AUTH


def test_auth_login_cancel_at_password(tls_server):
    with session(tls_server, source=fresh_source()) as c:
        assert c.cmd("AUTH LOGIN " + b64("alice")).lines == ["UGFzc3dvcmQ6"]
        c.expect("*", 501, "5.0.0")
        assert c.auth_login("alice", ALICE_PW).code == 235


@pytest.mark.parametrize("line", [
    "AUTH PLAIN !!!not-base64!!!",
    "AUTH PLAIN " + b64("alice" + ALICE_PW),  # no NULs: not a PLAIN message
    "AUTH PLAIN " + b64("\0alice"),  # one NUL
    "AUTH LOGIN %%%",
])
def test_auth_bad_base64_or_malformed_501(tls_server, line):
    with session(tls_server, source=fresh_source()) as c:
        c.expect(line, 501, "5.5.2")
        assert c.auth_plain("alice", ALICE_PW).code == 235


def test_auth_bad_base64_in_continuation_501(tls_server):
    with session(tls_server, source=fresh_source()) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        c.expect("not base64 ???", 501, "5.5.2")
        assert c.auth_plain("alice", ALICE_PW).code == 235


@pytest.mark.parametrize("mech", ["CRAM-MD5", "GSSAPI", "XOAUTH2", "SCRAM-SHA-256", "PLAINX"])
def test_unknown_mechanism_504(tls_server, mech):
    with session(tls_server, source=fresh_source()) as c:
        c.expect("AUTH " + mech, 504, "5.5.4")
        assert c.auth_plain("alice", ALICE_PW).code == 235


def test_auth_twice_503(tls_server):
    with authed(tls_server) as c:
        r = c.auth_plain("alice", ALICE_PW)
        assert r.code == 503 and r.enh == "5.5.1", r
        c.expect("AUTH LOGIN", 503, "5.5.1")
        assert_authenticated(c)


def test_auth_before_ehlo_503(tls_server):
    with tls_server.connect("smtps") as c:
        r = c.auth_plain("alice", ALICE_PW)
        assert r.code == 503 and r.enh == "5.5.1", r


@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "after-334"])
def test_auth_line_limit_is_12288(tls_server, initial):
    """RFC 4954 §4: AUTH lines (the command with its initial response, or a response after
    334) up to 12288 octets are accepted; longer ones get 500 5.5.6."""
    with session(tls_server, source=fresh_source()) as c:
        # longer than a command line (512), within the AUTH limit and within RFC 4616's 255
        # octets per field: an ordinary failure
        r = c.auth_plain("u" * 250, "x" * 255, initial=initial)
        assert r.code == 535 and r.enh == "5.7.8", r
        if initial:
            c.expect("AUTH PLAIN " + "A" * 12300, 500, "5.5.6")
        else:
            assert c.cmd("AUTH PLAIN").code == 334
            c.expect("A" * 12300, 500, "5.5.6")
        assert c.auth_plain("alice", ALICE_PW).code == 235


@pytest.mark.parametrize("param", [" AUTH=<>", " AUTH=alice+40example.test", " AUTH=<> BODY=8BITMIME"])
def test_mail_auth_parameter_accepted(tls_factory, param):
    server = tls_factory()
    with authed(server) as c:
        r = c.mail("alice@example.test", ["carol@example.test"], make_message("auth-param"), params=param)
        assert r.code == 250, r
    (raw,) = server.wait_delivered("carol", 1)
    assert Delivered(raw).header("Subject") == "auth-param"


# --------------------------------------------------------------------------- Received, log


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_received_esmtpsa_without_user_name(tls_factory, listener):
    server = tls_factory()
    with authed(server, listener) as c:
        r = c.mail("alice@example.test", ["carol@example.test"], make_message("esmtpsa"))
        assert r.code == 250, r
    (raw,) = server.wait_delivered("carol", 1)
    received = Delivered(raw).received
    assert re.search(r"\bwith ESMTPSA\b", received) and re.search(r"\(using TLSv1\.3 with cipher TLS_\w+\b", received), received
    assert "alice" not in received, received


def test_log_names_user_never_password(tls_factory):
    server = tls_factory()
    wrong = "Wrong-Guess-5e8d1"
    with authed(server) as c:
        c.cmd("QUIT")
    with session(server, source="127.0.0.51") as c:
        assert c.auth_plain("alice", wrong).code == 535
    with session(server, source="127.0.0.52") as c:
        assert c.auth_login("alice", wrong).code == 535
    server.wait_log(r"authentication failed", count=2)
    log = server.log()
    assert re.search(r"sasl_method=PLAIN, sasl_username=alice\b", log), log
    failed = [l for l in log.splitlines() if "SASL PLAIN authentication failed" in l]
    assert failed and "127.0.0.51" in failed[0], log
    assert any("SASL LOGIN authentication failed" in l and "127.0.0.52" in l for l in log.splitlines()), log
    for secret in (ALICE_PW, wrong):
        for form in (secret, b64(secret), b64("\0alice\0" + secret)):
            assert form not in log, "credential %r in the log" % form


# --------------------------------------------------------------------------- throttle


def auth_refused(server, source, user):
    """Whether a client from `source` with the right password is refused: at connect (421 or
    closed) or at AUTH."""
    try:
        c = server.connect("smtps", source=source)
    except (OSError, ConnectionError):
        return True
    with c:
        if c.greeting.code != 220:
            assert c.greeting.code == 421, c.greeting
            return True
        c.ehlo()
        r = c.auth_plain(user, PASSWORDS[user])
        assert r.code in (235, 421, 454, 535), r
        return r.code != 235


def test_failures_throttled_then_421(tls_factory):
    # The failure window must outlast the failures (1 + 2 + 4 s of server-side delay) and
    # the checks that follow on any machine: they are checked to have run inside it. The
    # test then waits for the window to pass after the last failure.
    window = int(15 + 5 * (SLOW - 1))
    server = tls_factory(auth_failures_max=3, auth_failure_window="%ds" % window)
    delays, codes = [], []
    first_failure = None
    c = session(server, "smtps")
    with c:
        for i in range(6):  # 3 allowed failures, then 421: never more than a few rounds
            t0 = time.monotonic()
            r = c.auth_plain("alice", "guess-%d" % i)
            delays.append(time.monotonic() - t0)
            first_failure = first_failure or t0
            codes.append(r.code)
            if r.code != 535:
                break
        assert codes[-1] == 421 and codes[:-1] == [535] * (len(codes) - 1), codes
        assert 2 <= len(codes) - 1 <= 3, codes  # the limit is 3 failures
        assert r.enh == "4.7.0", r
        assert c.wait_closed(scaled(5)), "not closed after 421"
    # Failures get slower: 1 s, 2 s, (4 s) -- not answered at line rate. Lower bounds only
    # (the server waits at least this long; a busy machine only adds to it).
    assert delays[0] >= 0.9, delays
    assert delays[1] >= 1.8, delays
    if len(delays) > 3:
        assert delays[2] >= 3.6, delays

    assert auth_refused(server, "127.0.0.1", "alice"), "the throttled address may still AUTH"
    # Another address and another user: not affected.
    with session(server, "smtps", source="127.0.0.61") as c2:
        assert c2.auth_plain("bob@example.test", PASSWORDS["bob@example.test"]).code == 235
    # The guessed-at user from another address: slowed down per user name, but never locked
    # out (a lockout by user name would let anyone shut its owner out on purpose).
    with session(server, "smtps", source="127.0.0.62") as c3:
        t0 = time.monotonic()
        r = c3.auth_plain("alice", "one-more-guess")
        assert r.code == 535, r
        last_failure = time.monotonic()
        assert last_failure - t0 >= 3.5, "per-user failures must slow guesses down"
        assert t0 - first_failure < window, "the checks above began after the window had passed"
        r = c3.auth_plain("alice", ALICE_PW)
        assert r.code == 235, r
    # When the window has passed (counted from the last failure), the right password works
    # again: here the passing of time is the condition.
    time.sleep(max(0.0, last_failure + window + 1 - time.monotonic()))
    with session(server, "smtps") as c4:
        r = c4.auth_plain("alice", ALICE_PW)
        assert r.code == 235, r
    assert server.alive()


# --------------------------------------------------------------------------- users file


def test_sha512_crypt_hash_accepted(tls_factory):
    server = tls_factory(users=["carol", "dave: " + sha512_crypt("dave-Pw-1"), "erin"], passwords={})
    with session(server) as c:
        assert c.auth_plain("dave", "dave-Pw-1").code == 235
        assert_authenticated(c, "dave@example.test")
    with session(server, source="127.0.0.71") as c:
        assert c.auth_plain("dave", "dave-Pw-2").code == 535


def test_user_add_writes_yescrypt(tls_factory):
    server = tls_factory(start=False)
    with open(server.users_path) as f:
        lines = [l.rstrip("\n") for l in f]
    alice = [l for l in lines if l.split(":")[0].strip() == "alice"]
    assert len(alice) == 1 and re.match(r"^alice:\s*\$y\$", alice[0]), lines
    assert ALICE_PW not in "".join(lines)
    server.start()
    with authed(server) as c:
        assert_authenticated(c)


def test_plaintext_auth_on_loopback_when_allowed(tls_factory):
    server = tls_factory(auth_plaintext_loopback="yes")
    with server.connect("submission") as c:
        kw = ehlo_keywords(c.ehlo())
        assert {"PLAIN", "LOGIN"} <= set(kw.get("AUTH", "").split()), kw
        r = c.auth_plain("alice", ALICE_PW)
        assert r.code == 235, r
        r = c.mail("alice@example.test", ["carol@example.test"], make_message("plaintext-loopback"))
        assert r.code == 250, r
    (raw,) = server.wait_delivered("carol", 1)
    received = Delivered(raw).received
    assert re.search(r"\bwith ESMTPA\b", received) and "using TLS" not in received, received
