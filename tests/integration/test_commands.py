"""Every command and its reply (RFC 5321 §4.1, §4.2, §4.3.2; RFC 2034 enhanced codes)."""
import re

import pytest

from ternlib import HOSTNAME, make_message, parse_qid

EHLO_KEYWORDS = ["SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "BINARYMIME", "DSN", "LIMITS"]


def ehlo_keywords(reply):
    return {line.split(" ", 1)[0].upper(): line for line in reply.lines[1:]}


def test_greeting(client):
    g = client.greeting
    assert g.code == 220
    assert str(g) == "220 %s ESMTP tern" % HOSTNAME


def test_ehlo_reply(client):
    r = client.cmd("EHLO client.test")
    assert r.code == 250
    assert r.lines[0] == HOSTNAME, r
    kw = ehlo_keywords(r)
    for k in EHLO_KEYWORDS:
        assert k in kw, "EHLO lacks %s: %s" % (k, r)
    assert kw["SIZE"] == "SIZE 1048576", r
    assert kw["LIMITS"] == "LIMITS RCPTMAX=100", r
    # No certificate here: no STARTTLS; the mx role never offers AUTH.
    for k in ("STARTTLS", "AUTH"):
        assert k not in kw, "EHLO advertises %s without it being usable: %s" % (k, r)
    # no enhanced code inside the EHLO reply
    assert all(not re.match(r"^\d\.\d", line) for line in r.lines), r


def test_helo_reply(client):
    r = client.cmd("HELO client.test")
    assert str(r) == "250 %s" % HOSTNAME


@pytest.mark.parametrize("verb", ["ehlo", "Ehlo", "eHlO"])
def test_ehlo_case_insensitive(client, verb):
    r = client.cmd(verb + " client.test")
    assert r.code == 250 and r.lines[0] == HOSTNAME


def test_ehlo_without_argument(client):
    r = client.cmd("EHLO")
    assert r.code == 501 and r.enh == "5.5.4", r


def test_helo_without_argument(client):
    r = client.cmd("HELO")
    assert r.code == 501 and r.enh == "5.5.4", r


def test_mail_rcpt_data_replies(shared_server, client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<sender@example.org>")
    assert r.code == 250 and r.enh == "2.1.0", r
    r = client.cmd("RCPT TO:<alice@example.test>")
    assert r.code == 250 and r.enh == "2.1.5", r
    r = client.cmd("DATA")
    assert r.code == 354, r
    assert r.enh is None, "354 carries no enhanced code: %s" % r
    client.send(b"Subject: replies-marker-1\r\n\r\nx\r\n.\r\n")
    r = client.read_reply()
    assert r.code == 250 and r.enh == "2.0.0", r
    assert re.match(r"^2\.0\.0 Ok: queued as [0-9A-Za-z]+$", r.lines[0]), r
    shared_server.wait_find(b"replies-marker-1")


@pytest.mark.parametrize("mail,rcpt,data", [
    ("mail from:<s@example.org>", "rcpt to:<alice@example.test>", "data"),
    ("Mail From:<s@example.org>", "Rcpt To:<alice@example.test>", "Data"),
    ("mAiL fRoM:<s@example.org>", "rCpT tO:<alice@example.test>", "DaTa"),
])
def test_verbs_case_insensitive(shared_server, client, mail, rcpt, data):
    client.cmd("ehlo client.test")
    client.expect(mail, 250, "2.1.0")
    client.expect(rcpt, 250, "2.1.5")
    client.expect(data, 354)
    marker = "case-marker-%s" % mail[:4]
    client.send(b"Subject: " + marker.encode() + b"\r\n\r\nx\r\n.\r\n")
    assert client.read_reply().code == 250
    shared_server.wait_find(marker)


@pytest.mark.parametrize("verb", ["RSET", "rset", "NOOP", "noop", "NoOp"])
def test_rset_noop(client, verb):
    r = client.cmd(verb)
    assert r.code == 250 and r.enh == "2.0.0", r


def test_noop_with_argument(client):
    r = client.cmd("NOOP anything at all")
    assert r.code == 250 and r.enh == "2.0.0", r


def test_quit(client):
    r = client.cmd("QUIT")
    assert r.code == 221 and r.enh == "2.0.0", r
    assert client.wait_closed(), "connection still open after QUIT"


def test_quit_lowercase(client):
    r = client.cmd("quit")
    assert r.code == 221 and r.enh == "2.0.0", r
    assert client.wait_closed()


@pytest.mark.parametrize("arg", ["alice", "alice@example.test", "nosuchuser@example.test", "<root>", "x"])
def test_vrfy_does_not_disclose(client, arg):
    r = client.cmd("VRFY " + arg)
    assert r.code == 252 and r.enh == "2.0.0", r


def test_vrfy_same_reply_for_existing_and_unknown(client):
    a = client.cmd("VRFY alice@example.test")
    b = client.cmd("VRFY nosuchuser@example.test")
    assert a.raw == b.raw, "VRFY answers differ: %r vs %r" % (a.raw, b.raw)


def test_vrfy_lowercase(client):
    r = client.cmd("vrfy alice")
    assert r.code == 252 and r.enh == "2.0.0", r


@pytest.mark.parametrize("line", ["EXPN team", "expn alice", "EXPN team@example.test"])
def test_expn_refused(client, line):
    r = client.cmd(line)
    assert r.code == 502 and r.enh == "5.5.1", r


@pytest.mark.parametrize("line", ["HELP", "help", "HELP MAIL"])
def test_help(client, line):
    r = client.cmd(line)
    assert r.code == 214 and r.enh == "2.0.0", r


@pytest.mark.parametrize("line", ["FOO", "XYZZY bar", "MAILFROM:<a@b>", "EHLOX client", "RCPTTO:<a@b>", "DATAX"])
def test_unknown_command(client, line):
    r = client.cmd(line)
    assert r.code == 500 and r.enh == "5.5.2", r
    assert client.cmd("NOOP").code == 250


def test_empty_line(client):
    r = client.cmd("")
    assert r.code == 500 and r.enh == "5.5.2", r
    assert client.cmd("NOOP").code == 250


@pytest.mark.parametrize("line", ["STARTTLS", "AUTH PLAIN AGFsaWNlAHg="])
def test_not_implemented_extensions(client, line):
    # Not advertised, so a client must not use them; whatever the code, not success.
    client.ehlo()
    r = client.cmd(line)
    assert r.code >= 500, r
    assert r.enh is not None and r.enh.startswith("5."), r


def test_command_line_512_accepted(client):
    line = "NOOP " + "x" * (512 - len("NOOP ") - 2)
    assert len(line) + 2 == 512
    r = client.cmd(line)
    assert r.code == 250, r


def test_command_line_too_long_session_continues(client):
    r = client.cmd("NOOP " + "x" * 600)
    assert r.code == 500 and r.enh == "5.5.2", r
    # The rest of the long line was dropped, not read as commands; the session goes on.
    r = client.cmd("NOOP")
    assert r.code == 250 and r.enh == "2.0.0", r
    client.ehlo()


def test_command_line_too_long_tail_not_executed(client):
    client.ehlo()
    # The tail of an overlong line must not run as a command of its own.
    r = client.cmd("NOOP " + "x" * 600 + " MAIL FROM:<a@example.org>")
    assert r.code == 500 and r.enh == "5.5.2", r
    r = client.cmd("RCPT TO:<alice@example.test>")
    assert r.code == 503 and r.enh == "5.5.1", "a MAIL in the tail of an overlong line was executed: %s" % r


def test_very_long_line_huge(client):
    client.send(b"NOOP " + b"y" * 200000 + b"\r\n")
    r = client.read_reply()
    assert r.code == 500 and r.enh == "5.5.2", r
    assert client.cmd("NOOP").code == 250


@pytest.mark.parametrize("line", ["MAIL FROM:<a@example.org>", "RCPT TO:<alice@example.test>", "DATA"])
def test_before_helo(client, line):
    r = client.cmd(line)
    assert r.code == 503 and r.enh == "5.5.1", r


def test_bdat_before_helo(client):
    client.send(b"BDAT 4\r\nRSET")
    r = client.read_reply()
    assert r.code == 503 and r.enh == "5.5.1", r
    # the 4 octets were the chunk, not a command
    r = client.cmd("NOOP")
    assert r.code == 250 and r.enh == "2.0.0", r


def test_rcpt_before_mail(client):
    client.ehlo()
    r = client.cmd("RCPT TO:<alice@example.test>")
    assert r.code == 503 and r.enh == "5.5.1", r


def test_data_before_mail(client):
    client.ehlo()
    r = client.cmd("DATA")
    assert r.code == 503 and r.enh == "5.5.1", r


def test_data_before_rcpt(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("DATA")
    assert r.code == 503 and r.enh == "5.5.1", r


def test_nested_mail(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("MAIL FROM:<b@example.org>")
    assert r.code == 503 and r.enh == "5.5.1", r


def test_rset_clears_transaction(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    client.expect("RCPT TO:<alice@example.test>", 250)
    client.expect("RSET", 250, "2.0.0")
    r = client.cmd("RCPT TO:<alice@example.test>")
    assert r.code == 503 and r.enh == "5.5.1", r
    client.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")


def test_ehlo_resets_transaction(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    client.ehlo()
    # RFC 5321 §4.1.4: EHLO implies RSET, so a new MAIL is not nested
    client.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")


@pytest.mark.parametrize("line,enh", [
    ("MAIL <a@example.org>", "5.5.4"),
    ("MAIL TO:<a@example.org>", "5.5.4"),
    ("MAIL", "5.5.4"),
    ("MAIL FROM:<a@@example.org>", "5.1.7"),
    ("MAIL FROM:<a b@example.org>", "5.1.7"),
    ("MAIL FROM:<a@example..org>", "5.1.7"),
    ("MAIL FROM:<a@example.org", "5.1.7"),
    ("MAIL FROM:<@example.org>", "5.1.7"),
])
def test_mail_syntax_errors(client, line, enh):
    client.ehlo()
    r = client.cmd(line)
    assert r.code == 501 and r.enh == enh, "%r -> %s" % (line, r)
    # nothing started: a MAIL now is not nested
    client.expect("MAIL FROM:<a@example.org>", 250)


@pytest.mark.parametrize("line,enh", [
    ("RCPT <alice@example.test>", "5.5.4"),
    ("RCPT FROM:<alice@example.test>", "5.5.4"),
    ("RCPT", "5.5.4"),
    ("RCPT TO:<alice@@example.test>", "5.1.3"),
    ("RCPT TO:<>", "5.1.3"),
    ("RCPT TO:<alice@example.test", "5.1.3"),
    ("RCPT TO:<a lice@example.test>", "5.1.3"),
])
def test_rcpt_syntax_errors(client, line, enh):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd(line)
    assert r.code == 501 and r.enh == enh, "%r -> %s" % (line, r)


def test_mail_unknown_parameter(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<a@example.org> FOO=bar")
    assert r.code == 555 and r.enh == "5.5.4", r


def test_rcpt_unknown_parameter(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<alice@example.test> FOO=bar")
    assert r.code == 555 and r.enh == "5.5.4", r


def test_dsn_parameters(client):
    # DSN (RFC 3461) is advertised: its parameters are accepted and checked.
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org> RET=HDRS ENVID=abc+2Bdef", 250, "2.1.0")
    client.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
                  "ORCPT=rfc822;alice+40example.test", 250, "2.1.5")
    client.expect("RCPT TO:<carol@example.test> NOTIFY=NEVER", 250, "2.1.5")
    r = client.cmd("RCPT TO:<dave@example.test> NOTIFY=NEVER,SUCCESS")
    assert r.code == 501 and r.enh == "5.5.4", r
    r = client.cmd("RCPT TO:<dave@example.test> NOTIFY=SOMETIMES")
    assert r.code == 501 and r.enh == "5.5.4", r
    client.expect("RSET", 250)
    r = client.cmd("MAIL FROM:<a@example.org> RET=MAYBE")
    assert r.code == 501 and r.enh == "5.5.4", r
    r = client.cmd("MAIL FROM:<a@example.org> ENVID=bad+zz")
    assert r.code == 501 and r.enh == "5.5.4", r


@pytest.mark.parametrize("body", ["7BIT", "8BITMIME", "BINARYMIME", "8bitmime"])
def test_body_parameter_accepted(client, body):
    client.ehlo()
    r = client.cmd("MAIL FROM:<a@example.org> BODY=" + body)
    assert r.code == 250 and r.enh == "2.1.0", r


@pytest.mark.parametrize("body", ["9BIT", "BINARY", "QUOTED"])
def test_body_parameter_other(client, body):
    client.ehlo()
    r = client.cmd("MAIL FROM:<a@example.org> BODY=" + body)
    assert r.code == 504 and r.enh == "5.5.4", r


def test_non_ascii_sender_without_smtputf8(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<j\u00fcrgen@example.org>")
    assert r.code == 553 and r.enh == "5.6.7", r


def test_non_ascii_sender_with_smtputf8(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<j\u00fcrgen@example.org> SMTPUTF8")
    assert r.code == 250 and r.enh == "2.1.0", r


def test_non_ascii_recipient_without_smtputf8(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<j\u00fcrgen@example.test>")
    assert r.code == 553 and r.enh == "5.6.7", r


def test_non_ascii_domain_without_smtputf8(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<a@b\u00fccher.example>")
    assert r.code == 553 and r.enh == "5.6.7", r


def test_unknown_local_user(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<nosuchuser@example.test>")
    assert r.code == 550 and r.enh == "5.1.1", r


def test_user_restricted_to_its_domain(client):
    # "bob@example.test" in the users file exists only in that domain
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    client.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
    r = client.cmd("RCPT TO:<bob@localhost>")
    assert r.code == 550 and r.enh == "5.1.1", r


def test_unqualified_user_in_every_local_domain(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    client.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    client.expect("RCPT TO:<alice@localhost>", 250, "2.1.5")


@pytest.mark.parametrize("rcpt", ["someone@example.org", "alice@example.test.evil.example", "alice@sub.example.test", "alice@[127.0.0.1]"])
def test_relay_denied(client, rcpt):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<%s>" % rcpt)
    assert r.code == 554 and r.enh == "5.7.1", r


def test_relay_denied_with_percent_hack(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    r = client.cmd("RCPT TO:<victim%example.org@example.test>")
    # A local part with '%' is not a user of ours: never relayed, never a 250.
    assert r.code in (550, 554), r


def test_data_with_all_recipients_refused(client):
    client.ehlo()
    client.expect("MAIL FROM:<a@example.org>", 250)
    assert client.cmd("RCPT TO:<nosuchuser@example.test>").code == 550
    assert client.cmd("RCPT TO:<x@example.org>").code == 554
    r = client.cmd("DATA")
    assert r.code == 503 and r.enh == "5.5.1", r
    # still in the transaction: a good RCPT now makes DATA possible
    client.expect("RCPT TO:<alice@example.test>", 250)
    client.expect("DATA", 354)
    client.send(b"Subject: after-refused\r\n\r\nx\r\n.\r\n")
    assert client.read_reply().code == 250


def test_every_non_greeting_reply_has_enhanced_code(client):
    """ENHANCEDSTATUSCODES: every reply but 220, the EHLO/HELO 250 and 354 carries one."""
    lines = ["NOOP", "RSET", "VRFY alice", "HELP", "EXPN x", "FOO", "MAIL FROM:<a@example.org>"]
    for line in lines:
        r = client.cmd(line)
        assert r.enh is not None, "%r -> %s has no enhanced status code" % (line, r)
        assert r.enh[0] == str(r.code)[0], "%r -> %s: enhanced class differs from the code" % (line, r)
    client.ehlo()
    for line in ["MAIL FROM:<a@example.org>", "RCPT TO:<nosuch@example.test>", "RCPT TO:<x@example.org>",
                 "RCPT TO:<alice@example.test>", "MAIL FROM:<a@example.org>", "RSET", "QUIT"]:
        r = client.cmd(line)
        assert r.enh is not None, "%r -> %s has no enhanced status code" % (line, r)
        assert r.enh[0] == str(r.code)[0], "%r -> %s" % (line, r)


def test_multiple_transactions_one_session(shared_server, client):
    client.ehlo()
    qids = []
    for i in range(3):
        r = client.mail("a@example.org", ["alice@example.test"], make_message("multi-session-marker-%d" % i))
        assert r.code == 250, r
        qids.append(parse_qid(r))
    assert len(set(qids)) == 3, "queue ids repeat: %s" % qids
    for i in range(3):
        shared_server.wait_find("multi-session-marker-%d" % i)


def test_duplicate_recipient_delivered_once(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<ALICE@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: dup\r\n\r\nx\r\n.\r\n")
        assert c.read_reply().code == 250
    server.wait_delivered("alice", 1)
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1, "one mailbox got the message more than once"


def test_helo_protocol_without_esmtp_params(client):
    # After HELO (not EHLO), ESMTP parameters are not available (RFC 5321 §4.1.1.11 / RFC 1869)
    client.helo()
    r = client.cmd("MAIL FROM:<a@example.org> SIZE=10")
    assert r.code in (501, 555), r


@pytest.mark.parametrize("line", [b"NOOP\x00", b"NO\x00OP", b"MAIL FROM:<a\x00b@example.org>", b"\x00"])
def test_nul_in_command(client, line):
    client.send(line + b"\r\n")
    r = client.read_reply()
    assert r.code in (500, 501) and r.enh in ("5.5.2", "5.5.4", "5.1.7"), r
    assert client.cmd("NOOP").code == 250


def test_non_ascii_verb(client):
    r = client.cmd("N\u00d6OP")
    assert r.code == 500 and r.enh == "5.5.2", r


def test_quit_mid_transaction_delivers_nothing(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("QUIT", 221, "2.0.0")
    server.wait_queue_idle()
    assert server.all_messages() == []


def test_close_without_quit_after_250_delivers_once(server):
    c = server.connect()
    c.ehlo()
    r = c.mail("a@example.org", ["alice@example.test"], make_message("no-quit"))
    assert r.code == 250, r
    c.close()
    server.wait_delivered("alice", 1)
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1
