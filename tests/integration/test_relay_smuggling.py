"""SMTP smuggling on the way out (RFC 3030 §3, CVE-2023-51764 and kin). A message that came
in with BODY=BINARYMIME over BDAT may hold any octets: bare CR, bare LF, NUL, "\\r.\\r\\n".
Whatever tern relays must reach the next hop as one message that no receiver can end early:
with BDAT and BODY=BINARYMIME (byte for byte) only to a next hop that offers CHUNKING and
BINARYMIME; otherwise converted (binary parts to base64, text to quoted-printable) or bounced
with 5.6.3 -- and nothing sent with DATA ever holds a bare CR, a bare LF or a NUL.

The attack needs no authentication: an unauthenticated client on the MX port sends a
BINARYMIME message to a local alias that forwards to a remote domain (aonly.test, whose
implicit MX is 127.0.0.9 in the test DNS) where a ternlib.SinkServer listens; that sink also
stands in for a lenient receiver (its raw DATA bytes are checked for every would-be end of
data that such a receiver would accept). Postfix as the next hop: test_binarymime_to_postfix."""
import email
import email.policy
import re
import time

import pytest

from ternlib import PostfixPeer, scaled
from test_relay_out import (parse_report, port, postfix_next_to, send,  # noqa: F401 (fixture)
                            wait_bounces, wait_status)

NEXT_HOP = "127.0.0.9"  # aonly.test: no MX record, its A record is the implicit MX
ALIAS = "fwd@example.test"
FORWARD_TO = "victim@aonly.test"

# The smuggled transaction hides behind a dot after a bare CR ("\r.\r\n") and the
# content ends in a bare LF, so that a relay which adds ".\r\n" ends it with "\n.\r\n".
SMUGGLED = (b"hello\r.\r\nMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<" + FORWARD_TO.encode()
            + b">\r\nDATA\r\nFrom: <ceo@bank.test>\r\nSubject: smuggled\r\n\r\n"
            + b"wire the money\r\n.\r\nQUIT\r\nbye\n")


def binarymime_in(server, content, sender="attacker@evil.example"):
    """The attacker's session: no AUTH, BODY=BINARYMIME, one BDAT LAST to the alias.
    Returns the queue id."""
    return send(server, [ALIAS], content, sender=sender, mail_params=" BODY=BINARYMIME",
                bdat=True)


def variant_ends(raw):
    """Offsets of the dots in the DATA stream (the content as sent, its final ".\\r\\n"
    added back) at which a receiver that takes any of CR, LF or CRLF for a line end would
    see the end of data. A stream that nothing can end early has exactly one: the real one."""
    stream = b"\r\n" + raw + b".\r\n"  # the CRLF before the content is DATA's own
    return [i for i in range(2, len(stream) - 1)
            if stream[i] == ord(".") and stream[i - 1] in b"\r\n" and stream[i + 1] in b"\r\n"]


def assert_safe_data(m):
    """m (a SinkMessage) came with DATA: CRLF only, no NUL, one possible end."""
    assert m.bdat == [], m.bdat
    raw = m.raw_data
    assert b"\0" not in raw, "a NUL sent with DATA"
    assert not re.search(rb"\r(?!\n)", raw), "a bare CR sent with DATA: %r" % raw[-300:]
    assert not re.search(rb"(?<!\r)\n", raw), "a bare LF sent with DATA: %r" % raw[-300:]
    ends = variant_ends(raw)
    assert len(ends) == 1, "the DATA stream can be ended early at %r: %r" % (ends, raw)


def assert_safe(m):
    """Whatever the command: BODY=BINARYMIME only with BDAT to a BINARYMIME peer, and
    DATA content is safe; BDAT chunks add up to the content."""
    body = (m.mail_params.get("BODY") or "").upper()
    if m.bdat:
        assert sum(m.bdat) == len(m.data), (m.bdat, len(m.data))
    else:
        assert body != "BINARYMIME", m.mail
        assert_safe_data(m)
    if body != "BINARYMIME":
        assert b"\0" not in m.data
        assert not re.search(rb"\r(?!\n)|(?<!\r)\n", m.data), "bare CR or LF in %r" % m.data[-300:]


@pytest.fixture
def forwarder(tern_factory, dns_server, port):
    """A tern that relays for nobody (an MX for example.test): fwd@ forwards off-site."""
    return tern_factory(resolver=dns_server.address, relay_port=port, retry_min="1s",
                        retry_max="2s", aliases=["fwd: " + FORWARD_TO])


def the_message(sink, marker):
    """The first message with `marker` the sink accepted; it starts with tern's Received."""
    m = sink.wait_find(marker, timeout=20)[0]
    assert m.data.startswith(b"Received:"), m.data[:200]
    return m


# --------------------------------------------------------------------------- the attack


PEERS = {
    # name: sink capabilities, the command expected, BODY= expected
    "chunking-binarymime": (dict(chunking=True, binarymime=True), "BDAT", "BINARYMIME"),
    "chunking-only": (dict(chunking=True), "BDAT", None),
    "data-8bitmime": (dict(), "DATA", None),
    "data-7bit": (dict(eightbitmime=False), "DATA", None),
}


@pytest.mark.parametrize("peer", list(PEERS))
def test_binarymime_smuggling_through_alias(forwarder, sink_factory, port, peer):
    caps, command, body = PEERS[peer]
    sink = sink_factory(NEXT_HOP, port, **caps)
    marker = "smuggle-%s-%d" % (peer, time.monotonic_ns())
    content = (b"From: <attacker@evil.example>\r\nTo: <" + ALIAS.encode() + b">\r\nSubject: "
               + marker.encode() + b"\r\n\r\n" + SMUGGLED)
    qid = binarymime_in(forwarder, content)
    m = the_message(sink, marker)
    wait_status(forwarder, qid, FORWARD_TO, "sent", timeout=20)
    assert m.recipients == [FORWARD_TO], m.rcpt_lines
    assert_safe(m)
    assert (m.bdat != []) == (command == "BDAT"), (command, m.session.commands)
    assert (m.mail_params.get("BODY") or "").upper() == (body or ""), m.mail
    got = m.data
    if body == "BINARYMIME":
        # Byte for byte, after tern's Received header.
        assert got.endswith(content), got[-400:]
    else:
        # Converted: the body is quoted-printable and decodes to exactly what was sent
        # (with DATA, content ends in CRLF: RFC 5321 §4.1.1.4).
        msg = email.message_from_bytes(got, policy=email.policy.compat32)
        assert (msg["Content-Transfer-Encoding"] or "").strip().lower() == "quoted-printable", got[:600]
        want = SMUGGLED + (b"" if m.bdat else b"\r\n")
        assert msg.get_payload(decode=True) == want, msg.get_payload()
        assert all(b < 128 for b in got), "8-bit octets in a converted 7-bit message"
    # One message reached the next hop; the smuggled transaction never became one.
    forwarder.settle(scaled(1))
    mails = [t.mail for t in sink.transactions()]
    assert len(mails) == 1 and "ceo@bank.test" not in mails[0], mails
    assert sink.violations == [], sink.violations


def test_binary_attachment_converted_to_base64(forwarder, sink_factory, port):
    """A BINARYMIME multipart with an 8-bit text part and a binary part (NUL, bare CR and
    LF, a dot after a bare CR) to a next hop with 8BITMIME but no BINARYMIME: the binary
    part goes base64 and decodes to its exact octets, the 8-bit text part stays as it is."""
    sink = sink_factory(NEXT_HOP, port, chunking=True)
    marker = "smuggle-mime-%d" % time.monotonic_ns()
    blob = bytes(range(256)) + b"\r.\r\nMAIL FROM:<x@y>\r\n\n.\n\r\n.\r\n" + b"\0" * 10
    text = "Grüße, attached.\r\n".encode("utf-8")
    content = (b"From: <attacker@evil.example>\r\nTo: <" + ALIAS.encode() + b">\r\nSubject: "
               + marker.encode() + b"\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
               b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + b"\r\n"
               b"--b1\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n" + blob + b"\r\n--b1--\r\n")
    qid = binarymime_in(forwarder, content)
    m = the_message(sink, marker)
    wait_status(forwarder, qid, FORWARD_TO, "sent", timeout=20)
    assert_safe(m)
    assert m.bdat and (m.mail_params.get("BODY") or "").upper() == "8BITMIME", m.mail
    msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
    text_part, bin_part = msg.get_payload()
    assert (bin_part["Content-Transfer-Encoding"] or "").strip().lower() == "base64", bin_part
    assert bin_part.get_payload(decode=True) == blob
    assert (text_part["Content-Transfer-Encoding"] or "").strip().lower() == "8bit", text_part
    assert text_part.get_payload(decode=True) == text
    assert sink.violations == []


def test_unconvertible_binarymime_bounces_5_6_3(forwarder, sink_factory, port):
    """A bare CR in a header field cannot be encoded: bounced with 5.6.3, nothing sent."""
    sink = sink_factory(NEXT_HOP, port, chunking=True)
    marker = "smuggle-header-%d" % time.monotonic_ns()
    content = (b"From: <alice@example.test>\r\nSubject: " + marker.encode()
               + b"\r.\r\nMAIL FROM:<ceo@bank.test>\r\n\r\nbody\r\n")
    qid = binarymime_in(forwarder, content, sender="alice@example.test")
    line = wait_status(forwarder, qid, FORWARD_TO, "(?:bounced|sent)", timeout=20)
    assert "status=bounced" in line and "dsn=5.6.3" in line, line
    msg, human, per_msg, per_rcpt, returned = parse_report(wait_bounces(forwarder, timeout=20)[0])
    assert per_rcpt[0]["status"] == "5.6.3", per_rcpt
    assert all("MAIL" not in s.verbs() for s in sink.sessions), sink.sessions
    assert sink.messages == []


def test_binarymime_to_the_binarymime_peer_keeps_nul(forwarder, sink_factory, port):
    """BINARYMIME to a next hop that offers it: NUL and all, in BDAT chunks."""
    sink = sink_factory(NEXT_HOP, port, chunking=True, binarymime=True)
    marker = "smuggle-nul-%d" % time.monotonic_ns()
    content = (b"Subject: " + marker.encode() + b"\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
               b"\r\n" + bytes(range(256)) * 300)
    binarymime_in(forwarder, content)
    m = the_message(sink, marker)
    assert m.bdat and m.mail_params.get("BODY") == "BINARYMIME", m.mail
    assert m.data.endswith(content)
    assert sum(m.bdat) == len(m.data)


# --------------------------------------------------------------------------- 7BIT labels


@pytest.mark.parametrize("eightbitmime", [True, False])
def test_7bit_label_with_8bit_content(forwarder, sink_factory, port, eightbitmime):
    """BODY=7BIT (or none) but 8-bit octets in the body: labelled BODY=8BITMIME for a next
    hop with 8BITMIME, made quoted-printable for one without; never sent unlabelled."""
    sink = sink_factory(NEXT_HOP, port, eightbitmime=eightbitmime)
    marker = "7bit-label-%d" % time.monotonic_ns()
    body = "na\u00efve caf\u00e9\r\n".encode("utf-8")
    content = b"Subject: " + marker.encode() + b"\r\n\r\n" + body.rstrip(b"\r\n")
    qid = send(forwarder, [ALIAS], content, mail_params=" BODY=7BIT")
    m = the_message(sink, marker)
    wait_status(forwarder, qid, FORWARD_TO, "sent", timeout=20)
    assert_safe(m)
    if eightbitmime:
        assert (m.mail_params.get("BODY") or "").upper() == "8BITMIME", m.mail
        assert m.data.endswith(body), m.data[-200:]
    else:
        assert "BODY" not in m.mail_params, m.mail
        assert all(b < 128 for b in m.data), m.data[-200:]
        msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
        assert msg.get_payload(decode=True) == body


def test_7bit_label_with_nul_is_encoded(forwarder, sink_factory, port):
    """A NUL in a 7BIT message never reaches the next hop as a NUL, not even one that
    offers BINARYMIME: it goes quoted-printable (=00) and decodes back."""
    sink = sink_factory(NEXT_HOP, port, chunking=True, binarymime=True)
    marker = "7bit-nul-%d" % time.monotonic_ns()
    content = b"Subject: " + marker.encode() + b"\r\n\r\nbefore\0after"
    qid = send(forwarder, [ALIAS], content)
    m = the_message(sink, marker)
    wait_status(forwarder, qid, FORWARD_TO, "sent", timeout=20)
    assert_safe(m)
    assert b"\0" not in m.data and "BODY" not in m.mail_params, (m.mail, m.data[-200:])
    msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
    assert msg.get_payload(decode=True) == b"before\0after\r\n"


# --------------------------------------------------------------------------- Postfix


@pytest.fixture(scope="module")
def postfix_forwarder(module_factory):
    """(tern, postfix): tern's alias fwd@ forwards to victim@bench.test, which tern routes to
    Postfix (CHUNKING and 8BITMIME, no BINARYMIME); Postfix delivers into its Maildir."""
    yield from postfix_next_to(module_factory, aliases=["fwd: victim@" + PostfixPeer.DOMAIN])


def test_binarymime_to_postfix(postfix_forwarder):
    tern, pf = postfix_forwarder
    marker = "smuggle-postfix-%d" % time.monotonic_ns()
    smuggled = SMUGGLED.replace(FORWARD_TO.encode(), b"victim2@" + PostfixPeer.DOMAIN.encode())
    content = (b"From: <attacker@evil.example>\r\nTo: <" + ALIAS.encode() + b">\r\nSubject: "
               + marker.encode() + b"\r\n\r\n" + smuggled)
    rcpt = "victim@" + PostfixPeer.DOMAIN
    qid = binarymime_in(tern, content)
    line = wait_status(tern, qid, rcpt, "sent", timeout=30)
    assert "dsn=2.0.0" in line and "in reply to BDAT command" in line, line  # Postfix has CHUNKING
    (raw,) = pf.wait_find(marker)
    # Postfix's Maildir has LF line ends; the body decodes to what was sent, bare CR and
    # bare LF included (quoted-printable's =0D and =0A survive the line-end change).
    # Postfix ends a last line that has no line end with one.
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert (msg["Content-Transfer-Encoding"] or "").strip().lower() == "quoted-printable", raw[:800]
    want = smuggled.replace(b"\r\n", b"\n")
    assert msg.get_payload(decode=True) in (want, want + b"\n"), msg.get_payload()
    tern.settle(scaled(1))
    assert len(pf.wait_find(marker)) == 1
    assert pf.wait_find(b"wire the money") == [raw], "a second message at Postfix"
    assert "ceo@bank.test" not in pf.log(), pf.log()[-2000:]
