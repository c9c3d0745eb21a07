"""Reverse and forward paths (RFC 5321 §4.1.2, §4.5.1, §4.5.3.1, RFC 6531)."""
import os
import uuid

import pytest

from ternlib import Delivered, make_message


def send(c, sender, rcpt, marker):
    """One transaction on an EHLO'd client; returns the final reply."""
    c.expect("MAIL FROM:%s" % sender, 250, "2.1.0")
    c.expect("RCPT TO:%s" % rcpt, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(make_message(marker) + b".\r\n")
    return c.read_reply()


@pytest.mark.parametrize("sender", [
    '<"john doe"@example.org>',
    '<"a\\"b"@example.org>',
    '<"odd@local"@example.org>',
    "<user@[1.2.3.4]>",
    "<user@[IPv6:::1]>",
    "<user@[IPv6:2001:db8::1]>",
    "<>",
    "<@a.example,@b.example:user@c.example>",
    "<@a.example:user@c.example>",
    "<first.last+tag@example.org>",
    "<UPPER@EXAMPLE.ORG>",
    "<a@example-with-dash.org>",
    "<x@a.b.c.d.e.example>",
])
def test_sender_accepted(client, sender):
    client.ehlo()
    r = client.cmd("MAIL FROM:%s" % sender)
    assert r.code == 250 and r.enh == "2.1.0", "%s -> %s" % (sender, r)


@pytest.mark.parametrize("sender,expected_rp", [
    ('<"john doe"@example.org>', b'<"john doe"@example.org>'),
    ("<user@[1.2.3.4]>", b"<user@[1.2.3.4]>"),
    ("<user@[IPv6:::1]>", b"<user@[IPv6:::1]>"),
    ("<>", b"<>"),
])
def test_sender_delivered_return_path(shared_server, client, sender, expected_rp):
    marker = "path-rp-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, sender, "<alice@example.test>", marker)
    assert r.code == 250, r
    (path, raw), = shared_server.wait_find(marker)
    d = Delivered(raw)
    assert d.return_path == expected_rp, "Return-Path %r for MAIL FROM:%s" % (d.return_path, sender)


def test_source_route_sender_delivered(shared_server, client):
    marker = "path-srcroute-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, "<@a.example,@b.example:user@c.example>", "<alice@example.test>", marker)
    assert r.code == 250, r
    (path, raw), = shared_server.wait_find(marker)
    d = Delivered(raw)
    # RFC 5321 §4.1.1.2 / appendix C: the route is ignored; the mailbox remains.
    assert d.return_path is not None and b"user@c.example" in d.return_path, d.return_path


def test_source_route_recipient_delivered(shared_server, client):
    marker = "path-srcroute-rcpt-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, "<a@example.org>", "<@relay.example:alice@example.test>", marker)
    assert r.code == 250, r
    found = shared_server.wait_find(marker)
    assert len(found) == 1
    assert "/example.test/alice/Maildir/new/" in found[0][0], found[0][0]


def test_source_route_does_not_relay(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<@example.test:victim@example.org>")
    assert r.code == 554 and r.enh == "5.7.1", r


def test_mail_space_after_colon(client):
    client.ehlo()
    r = client.cmd("MAIL FROM: <a@example.org>")
    assert r.code == 250 and r.enh == "2.1.0", r


def test_rcpt_space_after_colon(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO: <alice@example.test>")
    assert r.code == 250 and r.enh == "2.1.5", r


def test_mail_space_after_colon_delivered(shared_server, client):
    marker = "path-space-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, " <spacey@example.org>", "<alice@example.test>", marker)
    assert r.code == 250, r
    (path, raw), = shared_server.wait_find(marker)
    assert Delivered(raw).return_path == b"<spacey@example.org>"


@pytest.mark.parametrize("keyword", ["FROM:", "from:", "From:"])
def test_from_keyword_case(client, keyword):
    client.ehlo()
    r = client.cmd("MAIL %s<a@example.org>" % keyword)
    assert r.code == 250, r


@pytest.mark.parametrize("rcpt", ["<postmaster>", "<Postmaster>", "<POSTMASTER>", "<postmaster@example.test>", "<postmaster@localhost>", "<PostMaster@Example.Test>"])
def test_postmaster_accepted(client, rcpt):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:%s" % rcpt)
    assert r.code == 250 and r.enh == "2.1.5", "%s -> %s" % (rcpt, r)


def test_postmaster_of_other_domain_is_relaying(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<postmaster@example.org>")
    assert r.code == 554 and r.enh == "5.7.1", r


def test_null_sender_to_postmaster_delivered(shared_server, client):
    marker = "path-pm-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, "<>", "<postmaster>", marker)
    assert r.code == 250, r
    shared_server.wait_find(marker)
    shared_server.wait_queue_idle()
    assert len(shared_server.find(marker)) == 1, "postmaster mail delivered %d times" % len(shared_server.find(marker))


@pytest.mark.parametrize("rcpt", ["<Alice@example.test>", "<ALICE@EXAMPLE.TEST>", "<alice@Example.Test>"])
def test_recipient_case_folded(shared_server, client, rcpt):
    marker = "path-case-%s" % uuid.uuid4().hex
    client.ehlo()
    r = send(client, "<a@example.org>", rcpt, marker)
    assert r.code == 250, r
    (path, raw), = shared_server.wait_find(marker)
    # %u is the lowercased local part
    assert path.startswith(shared_server.maildir_path("alice", "example.test") + "/new/"), path


def test_local_part_64_accepted_65_refused(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<%s@example.org>" % ("a" * 64))
    assert r.code == 250, r
    client.cmd("RSET")
    r = client.cmd("MAIL FROM:<%s@example.org>" % ("a" * 65))
    assert r.code == 501 and r.enh in ("5.1.7", "5.1.3"), r


def test_recipient_local_part_too_long(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<%s@example.test>" % ("a" * 65))
    assert r.code == 501 and r.enh == "5.1.3", r


def test_recipient_path_too_long(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    domain = ".".join(["d" * 60] * 4) + ".example.test"  # > 255 octets
    r = client.cmd("RCPT TO:<alice@%s>" % domain)
    assert r.code == 501 and r.enh == "5.1.3", r


def test_recipient_label_too_long(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<alice@%s.example>" % ("l" * 64))
    assert r.code == 501 and r.enh == "5.1.3", r


def test_sender_path_too_long(client):
    client.ehlo()
    domain = ".".join(["d" * 60] * 5) + ".example"
    r = client.cmd("MAIL FROM:<a@%s>" % domain)
    assert r.code == 501 and r.enh in ("5.1.7", "5.1.3"), r


@pytest.mark.parametrize("sender", ["<user@[1.2.3.999]>", "<user@[IPv6:not-an-ip]>", "<user@[1.2.3]>", "<user@[]>"])
def test_bad_address_literals(client, sender):
    client.ehlo()
    r = client.cmd("MAIL FROM:%s" % sender)
    assert r.code == 501 and r.enh == "5.1.7", "%s -> %s" % (sender, r)


@pytest.mark.parametrize("rcpt", ['<"a b"@example.test>', '<"alice"@localhost.invalid>'])
def test_quoted_recipient_not_a_user(client, rcpt):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:%s" % rcpt)
    assert r.code in (550, 554), r


@pytest.mark.parametrize("local", ['"../../../../tmp/x"', '"a/b"', '"..\\"x"', "..", '"."'])
def test_path_traversal_local_parts(server, local):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("RCPT TO:<%s@example.test>" % local)
        assert r.code != 250, "RCPT TO:<%s@example.test> accepted: %s" % (local, r)
    base = os.path.dirname(server.mail_root)
    assert not os.path.exists(os.path.join(base, "x")) and not os.path.exists("/tmp/x/new")


def test_sender_utf8_with_smtputf8_delivered(shared_server, client):
    marker = "path-utf8-%s" % uuid.uuid4().hex
    client.ehlo()
    client.expect("MAIL FROM:<j\u00fcrgen@b\u00fccher.example> SMTPUTF8", 250, "2.1.0")
    client.expect("RCPT TO:<alice@example.test>", 250)
    client.expect("DATA", 354)
    client.send(make_message(marker) + b".\r\n")
    assert client.read_reply().code == 250
    (path, raw), = shared_server.wait_find(marker)
    assert Delivered(raw).return_path == "<j\u00fcrgen@b\u00fccher.example>".encode("utf-8")
