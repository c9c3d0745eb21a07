"""Submission (RFC 6409) after AUTH: which envelope senders a user may use (sender_check),
Date: and Message-ID: added when missing, local delivery and remote recipients."""
import email.utils
import re

import pytest

from ternlib import DEFAULT_ALIASES, PASSWORDS, Delivered, crlf_to_lf, parse_qid

ALIASES = DEFAULT_ALIASES + ["a.smith: alice", "postmaster: carol"]


@pytest.fixture(scope="module")
def servers(module_tls_factory):
    """One server per sender_check value."""
    return {check: module_tls_factory(aliases=ALIASES, sender_check=check) for check in ("own", "domain", "any")}


def login(server, user, listener="submission"):
    c = server.connect(listener)
    if not c.tls:
        c.ehlo()
        c.starttls()
    c.ehlo()
    r = c.auth_plain(user, PASSWORDS[user])
    assert r.code == 235, r
    return c


SENDERS = [
    # (sender_check, user, MAIL FROM, allowed)
    ("own", "alice", "alice@example.test", True),
    ("own", "alice", "alice@localhost", True),  # a user without domain owns every local domain
    ("own", "alice", "a.smith@example.test", True),  # an alias that expands to alice
    ("own", "alice", "", True),
    ("own", "alice", "carol@example.test", False),
    ("own", "alice", "postmaster@example.test", False),  # an alias, but not alice's
    ("own", "alice", "bob@example.test", False),
    ("own", "alice", "alice@example.org", False),
    ("own", "alice", "nosuch@example.test", False),
    ("own", "bob@example.test", "bob@example.test", True),
    ("own", "bob@example.test", "bob@localhost", False),  # bob is a user of example.test only
    ("own", "bob@example.test", "", True),
    ("domain", "alice", "carol@example.test", True),
    ("domain", "alice", "anything@localhost", True),
    ("domain", "alice", "alice@example.org", False),
    ("domain", "bob@example.test", "whoever@example.test", True),
    ("domain", "bob@example.test", "bob@localhost", False),
    ("domain", "alice", "", True),
    ("any", "alice", "someone@example.org", True),
    ("any", "alice", "carol@example.test", True),
    ("any", "bob@example.test", "x@example.net", True),
]


@pytest.mark.parametrize("check, user, sender, allowed", SENDERS)
def test_sender_ownership(servers, check, user, sender, allowed):
    with login(servers[check], user) as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if allowed:
            assert r.code == 250 and r.enh == "2.1.0", r
            c.expect("RCPT TO:<carol@example.test>", 250, "2.1.5")
        else:
            assert r.code == 553 and r.enh == "5.7.1", r
            assert r.text.endswith("Sender address not owned by user %s" % user), r
            c.expect("RCPT TO:<carol@example.test>", 503)  # no transaction
            c.expect("MAIL FROM:<%s>" % ("alice@example.test" if user == "alice" else user), 250)


def test_sender_refused_on_smtps_too(servers):
    with login(servers["own"], "alice", "smtps") as c:
        c.expect("MAIL FROM:<carol@example.test>", 553, "5.7.1")


# --------------------------------------------------------------------------- header fixes


def submit(server, content, user="alice", sender="alice@example.test", rcpts=("carol@example.test",), listener="submission"):
    with login(server, user, listener) as c:
        r = c.mail(sender, list(rcpts), content)
        assert r.code == 250 and r.enh == "2.0.0", r
        c.cmd("QUIT")


def headers(d):
    """(name lowercased, raw line) of every header field of the stored message, unfolded."""
    head = d.content.split(b"\n\n", 1)[0].decode("latin-1")
    fields = re.split(r"\n(?![ \t])", head)
    return [(f.split(":", 1)[0].strip().lower(), f) for f in fields if f]


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_date_and_message_id_added_when_missing(tls_factory, listener):
    server = tls_factory()
    body = b"Subject: no-date-no-id\r\nFrom: <alice@example.test>\r\nTo: <carol@example.test>\r\n\r\nbody line\r\n"
    submit(server, body, listener=listener)
    (raw,) = server.wait_delivered("carol", 1)
    d = Delivered(raw)
    names = [n for n, _ in headers(d)]
    assert names.count("date") == 1 and names.count("message-id") == 1, names
    for n in ("subject", "from", "to"):
        assert names.count(n) == 1, names
    assert email.utils.parsedate_to_datetime(d.header("Date")) is not None, d.header("Date")
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", d.header("Message-ID").strip()), d.header("Message-ID")
    assert d.header("Subject") == "no-date-no-id"
    assert d.content.split(b"\n\n", 1)[1] == b"body line\n"  # the body untouched


def test_message_ids_are_unique(tls_factory):
    server = tls_factory()
    for i in range(3):
        submit(server, b"Subject: id-%d\r\n\r\nx\r\n" % i)
    ids = {Delivered(m).header("Message-ID") for m in server.wait_delivered("carol", 3)}
    assert len(ids) == 3 and None not in ids, ids


def test_date_and_message_id_kept_when_present(tls_factory):
    server = tls_factory()
    content = (b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <kept.1@client.test>\r\n"
               b"Subject: has-both\r\n\r\nbody\r\n")
    submit(server, content)
    (raw,) = server.wait_delivered("carol", 1)
    d = Delivered(raw)
    assert d.content == crlf_to_lf(content)  # nothing added, nothing changed


@pytest.mark.parametrize("present, added", [("date", "message-id"), ("message-id", "date")])
def test_only_missing_field_added(tls_factory, present, added):
    server = tls_factory()
    field = {"date": b"dAtE: Tue, 2 Jan 2024 11:00:00 +0100", "message-id": b"message-ID: <only.one@client.test>"}[present]
    submit(server, field + b"\r\nSubject: one-of-two\r\n\r\nbody\r\n")
    (raw,) = server.wait_delivered("carol", 1)
    d = Delivered(raw)
    names = [n for n, _ in headers(d)]
    assert names.count(present) == 1 and names.count(added) == 1, names
    assert field.decode() in d.content.decode("latin-1")


# --------------------------------------------------------------------------- recipients


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_local_delivery_after_auth(tls_factory, listener):
    server = tls_factory()
    content = (b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <local.%s@client.test>\r\n"
               b"Subject: local-after-auth\r\n\r\nHello Carol.\r\n" % listener.encode())
    submit(server, content, rcpts=("carol@example.test", "team@example.test"), listener=listener)
    (raw,) = server.wait_delivered("alice", 1)  # by way of team
    msgs = server.wait_delivered("carol", 1)
    server.wait_queue_idle()
    assert len(server.maildir("carol")) == 1  # carol once, although named twice (directly, team)
    for m in (raw, msgs[0]):
        d = Delivered(m)
        assert d.content == crlf_to_lf(content)
        assert d.return_path == b"<alice@example.test>"


def test_remote_recipient_accepted_after_auth(servers):
    with login(servers["own"], "alice") as c:
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<someone@example.org>", 250, "2.1.5")
        c.expect("RCPT TO:<Other@Remote.Example.NET>", 250, "2.1.5")
        c.expect("RCPT TO:<carol@example.test>", 250, "2.1.5")
        c.expect("RCPT TO:<nosuch@example.test>", 550, "5.1.1")  # local users are still checked
        c.expect("DATA", 354)
        c.send(b"Subject: remote-after-auth\r\n\r\nx\r\n.\r\n")
        r = c.read_reply()
        assert r.code == 250, r
    servers["own"].wait_find("remote-after-auth")
    # The remote copies stay queued (no DNS answers here); carol is done with.
    assert servers["own"].wait_recipient_done(parse_qid(r), "carol@example.test") == "delivered"
    found = servers["own"].find("remote-after-auth")
    assert len(found) == 1 and "/carol/" in found[0][0], [p for p, _ in found]  # the remote copies are queued


def test_unknown_local_user_550_after_auth(servers):
    with login(servers["any"], "alice") as c:
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<nosuch@example.test>", 550, "5.1.1")
        c.expect("RCPT TO:<nosuch@localhost>", 550, "5.1.1")

