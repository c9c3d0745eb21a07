"""No open relay: on the mx role only relay_networks may relay; the classic address tricks
never relay; on submission nothing happens before AUTH."""
import pytest

from ternlib import data_payload, make_message

# Local domains of the test server: example.test, localhost. Remote: example.org.
TRICKS = [
    "alice%example.org@example.test",  # percent hack
    "\"alice@example.org\"@example.test",  # quoted local part with an @
    "@example.test:alice@example.org",  # source route
    "@example.test,@mx.test:alice@example.org",  # source route with two hops
    "alice@[127.0.0.1]",  # address literal
    "alice@[IPv6:::1]",
    "alice@example.org.",  # trailing dot
    "alice@EXAMPLE.ORG",  # mixed case
    "alice@Example.Org",
    "example.org!alice@example.test",  # bang path
    "example.org!alice",
    "alice@example.org",  # plain
    "alice@example.org@example.test",
    "alice@sub.example.test",  # a subdomain of a local domain is not local
    "alice@example.test.example.org",
    "alice%example.org",
    "\"alice%example.org\"@example.test",
]
REFUSALS = (550, 553, 554, 501, 555)


@pytest.mark.parametrize("rcpt", TRICKS)
def test_relay_trick_refused_on_mx(shared_server, rcpt):
    with shared_server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert r.code in REFUSALS, "RCPT TO:<%s> -> %s" % (rcpt, r)
        if r.code == 554:
            assert r.enh == "5.7.1", r
        c.expect("DATA", 503, "5.5.1")  # no valid recipient
        c.expect("RCPT TO:<ALICE@Example.Test>", 250, "2.1.5")  # the session is sane: local mixed case works


def test_relay_tricks_deliver_nothing(shared_server):
    """All the tricks in one transaction next to a local recipient: only the local copy."""
    marker = "relay-tricks-all"
    with shared_server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250)
        for rcpt in TRICKS:
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            assert r.code in REFUSALS, "RCPT TO:<%s> -> %s" % (rcpt, r)
        c.expect("RCPT TO:<carol@example.test>", 250)
        c.expect("DATA", 354)
        c.send(data_payload(make_message(marker, to="carol@example.test")))
        assert c.read_reply().code == 250
    shared_server.wait_find(marker)
    shared_server.wait_queue_idle()
    found = shared_server.find(marker)
    assert len(found) == 1 and "/carol/" in found[0][0], [p for p, _ in found]


def test_relay_networks_allow_remote_on_mx(tern_factory):
    server = tern_factory(relay_networks="10.0.0.0/8, 127.0.0.0/8")
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<script@localhost>", 250)
        c.expect("RCPT TO:<someone@example.org>", 250, "2.1.5")
        c.expect("RCPT TO:<nosuch@example.test>", 550, "5.1.1")  # local users are still checked


@pytest.mark.parametrize("source, allowed", [("127.0.0.2", True), ("127.0.0.1", False), ("127.0.0.3", False)])
def test_relay_networks_match_the_client_address(tern_factory, source, allowed):
    server = tern_factory(relay_networks="127.0.0.2/32, ::1/128")
    with server.connect(source=source) as c:
        c.ehlo()
        c.expect("MAIL FROM:<script@localhost>", 250)
        r = c.cmd("RCPT TO:<someone@example.org>")
        if allowed:
            assert r.code == 250, r
        else:
            assert r.code == 554 and r.enh == "5.7.1", r


def test_relay_networks_prefix(tern_factory):
    server = tern_factory(relay_networks="127.0.0.0/30")
    for source, allowed in (("127.0.0.3", True), ("127.0.0.4", False)):
        with server.connect(source=source) as c:
            c.ehlo()
            c.expect("MAIL FROM:<script@localhost>", 250)
            assert (c.cmd("RCPT TO:<someone@example.org>").code == 250) == allowed, source


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_submission_before_auth_refuses_mail(tls_server, listener):
    with tls_server.connect(listener) as c:
        c.ehlo()
        if not c.tls:
            c.expect("MAIL FROM:<sender@example.org>", 530, "5.7.0")  # before TLS
            c.starttls()
            c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 530, "5.7.0")
        for rcpt in ("alice@example.test", "alice@example.org", "alice%example.org@example.test"):
            assert c.cmd("RCPT TO:<%s>" % rcpt).code == 503  # no transaction: nothing to relay into
