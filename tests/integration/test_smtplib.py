"""End to end with Python's smtplib, a real third-party client."""
import email
import email.message
import email.policy
import smtplib

import pytest

from ternlib import Delivered, crlf_to_lf, make_message, scaled


def smtp(server):
    return smtplib.SMTP(server.host, server.port, local_hostname="client.test", timeout=scaled(20))


def test_sendmail_end_to_end(server):
    msg = make_message("smtplib-one", "Hello Alice.\r\n")
    with smtp(server) as s:
        refused = s.sendmail("sender@example.org", ["alice@example.test"], msg)
        assert refused == {}
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.content == crlf_to_lf(msg)
    assert d.return_path == b"<sender@example.org>"
    assert d.delivered_to == b"alice@example.test"


def test_ehlo_features_seen_by_smtplib(server):
    with smtp(server) as s:
        code, _ = s.ehlo()
        assert code == 250
        for k in ("size", "pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "binarymime"):
            assert s.has_extn(k), k
        assert not s.has_extn("starttls") and not s.has_extn("auth")
        assert s.esmtp_features["size"] == "1048576"


def test_multiple_recipients(server):
    msg = make_message("smtplib-multi")
    with smtp(server) as s:
        refused = s.sendmail("sender@example.org", ["alice@example.test", "carol@example.test", "bob@example.test", "dave@localhost"], msg)
        assert refused == {}
    for user, dom in (("alice", "example.test"), ("carol", "example.test"), ("bob", "example.test"), ("dave", "localhost")):
        (raw,) = server.wait_delivered(user, 1, domain=dom)
        assert Delivered(raw).content == crlf_to_lf(msg)
    server.wait_queue_idle()
    assert len(server.all_messages()) == 4


def test_partial_refusal(server):
    msg = make_message("smtplib-partial")
    with smtp(server) as s:
        refused = s.sendmail("sender@example.org", ["alice@example.test", "nosuch@example.test", "x@example.org"], msg)
        assert set(refused) == {"nosuch@example.test", "x@example.org"}
        assert refused["nosuch@example.test"][0] == 550
        assert refused["x@example.org"][0] == 554
    server.wait_delivered("alice", 1)
    server.wait_queue_idle()
    assert len(server.all_messages()) == 1


def test_all_refused(server):
    with smtp(server) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("sender@example.org", ["nosuch@example.test"], make_message("nobody"))
    server.wait_queue_idle()
    assert server.all_messages() == []


def test_alias_fan_out(server):
    """team: alice, carol -- each member gets the message once."""
    msg = make_message("smtplib-alias", to="team@example.test")
    with smtp(server) as s:
        assert s.sendmail("sender@example.org", ["team@example.test"], msg) == {}
    server.wait_total(2)
    server.wait_queue_idle()
    found = server.all_messages()
    paths = sorted(p for p, _ in found)
    assert len(found) == 2, paths
    assert any("/alice/Maildir/new/" in p for p in paths) and any("/carol/Maildir/new/" in p for p in paths), paths
    for _, raw in found:
        assert Delivered(raw).content == crlf_to_lf(msg)


def test_alias_and_member_together_delivered_once(server):
    """team (alice, carol) plus alice directly: alice still gets one copy."""
    msg = make_message("smtplib-alias-dup")
    with smtp(server) as s:
        assert s.sendmail("sender@example.org", ["team@example.test", "alice@example.test"], msg) == {}
    server.wait_total(2)
    server.wait_queue_idle()
    paths = sorted(p for p, _ in server.all_messages())
    assert len([p for p in paths if "/alice/" in p]) == 1, paths
    assert len([p for p in paths if "/carol/" in p]) == 1, paths


def test_alias_recursive(tern_factory):
    """An alias naming another alias expands recursively."""
    s = tern_factory(aliases=["sales: dave", "chain: sales, erin"])
    with smtp(s) as c:
        assert c.sendmail("a@example.org", ["chain@example.test"], make_message("chain")) == {}
    s.wait_total(2)
    s.wait_queue_idle()
    paths = sorted(p for p, _ in s.all_messages())
    assert len(paths) == 2, paths
    assert sum("/dave/" in p for p in paths) == 1 and sum("/erin/" in p for p in paths) == 1, paths


def test_postmaster_without_alias(server):
    msg = make_message("smtplib-postmaster")
    with smtp(server) as s:
        assert s.sendmail("", ["postmaster"], msg) == {}
    found = server.wait_find(b"smtplib-postmaster")
    server.wait_queue_idle()
    assert len(server.find(b"smtplib-postmaster")) == 1
    assert Delivered(found[0][1]).return_path == b"<>"


def test_postmaster_alias(tern_factory):
    s = tern_factory(aliases=["postmaster: alice"])
    with smtp(s) as c:
        assert c.sendmail("a@example.org", ["postmaster@example.test"], make_message("pm-alias")) == {}
        assert c.sendmail("a@example.org", ["postmaster"], make_message("pm-alias-bare")) == {}
    msgs = s.wait_delivered("alice", 2)
    assert len(msgs) == 2


def test_send_message_8bit_utf8(server):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "sender@example.org"
    m["To"] = "alice@example.test"
    m["Subject"] = "gr\u00fc\u00dfe"
    m.set_content("K\u00e4se und Br\u00f6tchen \u2603\n", cte="8bit")
    with smtp(server) as s:
        assert s.send_message(m) == {}
    (raw,) = server.wait_delivered("alice", 1)
    parsed = email.message_from_bytes(Delivered(raw).content, policy=email.policy.default)
    assert parsed.get_content() == "K\u00e4se und Br\u00f6tchen \u2603\n"
    assert str(parsed["Subject"]) == "gr\u00fc\u00dfe"


def test_smtputf8_sender(server):
    msg = make_message("smtplib-utf8")
    with smtp(server) as s:
        s.ehlo()
        assert s.sendmail("j\u00fcrgen@example.org", ["alice@example.test"], msg, mail_options=["SMTPUTF8"]) == {}
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).return_path == "<j\u00fcrgen@example.org>".encode()


def test_many_messages_one_connection(server):
    with smtp(server) as s:
        for i in range(25):
            assert s.sendmail("a@example.org", ["alice@example.test"], make_message("conn-reuse-%d" % i)) == {}
    msgs = server.wait_delivered("alice", 25)
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 25
    subjects = sorted(Delivered(m).header("Subject") for m in msgs)
    assert subjects == sorted("conn-reuse-%d" % i for i in range(25))


def test_helo_client(server):
    msg = make_message("smtplib-helo")
    s = smtp(server)
    try:
        code, _ = s.helo("old.client.test")
        assert code == 250
        assert s.sendmail("a@example.org", ["alice@example.test"], msg) == {}
    finally:
        s.quit()
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_verify_and_noop(server):
    with smtp(server) as s:
        code, _ = s.verify("alice")
        assert code == 252
        code, _ = s.noop()
        assert code == 250
        code, _ = s.rset()
        assert code == 250


def test_smtplib_oversize_refused(tern_factory):
    s = tern_factory(message_size_max=2000)
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("a@example.org", ["alice@example.test"], make_message("big", "x" * 80 + "\r\n") + (b"y" * 70 + b"\r\n") * 40)
        assert e.value.smtp_code == 552
