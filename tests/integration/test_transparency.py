"""Content transparency (RFC 5321 §4.5.2, RFC 6152): what the client meant is what the Maildir
holds, byte for byte after CRLF -> LF and after tern's trace lines."""
import random

import pytest

from ternlib import Delivered, crlf_to_lf, data_payload, make_message


def deliver_raw(server, raw_data, params="", rcpt="alice@example.test"):
    """Sends raw bytes after 354 (the caller does the stuffing and the final dot)."""
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>%s" % params, 250)
        c.expect("RCPT TO:<%s>" % rcpt, 250)
        c.expect("DATA", 354)
        c.send(raw_data)
        r = c.read_reply()
        assert r.code == 250 and r.enh == "2.0.0", r
        c.cmd("QUIT")
    user, domain = rcpt.split("@")
    (raw,) = server.wait_delivered(user, 1, domain=domain)
    return Delivered(raw)


def roundtrip(server, content, params=""):
    d = deliver_raw(server, data_payload(content), params)
    expected = crlf_to_lf(content)
    assert d.content == expected, "stored content differs:\n sent   %r\n stored %r" % (expected[:400], d.content[:400])
    return d


def test_dot_stuffed_lines(server):
    content = (b"Subject: dots\r\n\r\n"
               b".\r\n..\r\n...\r\n.x\r\n..x\r\n. space\r\nmiddle.dot\r\n.\r\n.end\r\n")
    roundtrip(server, content)


def test_lone_double_dot_line(server):
    # ".." on its own is a stuffed "." line, not the end of data
    d = deliver_raw(server, b"Subject: lone\r\n\r\nbefore\r\n..\r\nafter\r\n.\r\n")
    assert d.content == b"Subject: lone\n\nbefore\n.\nafter\n"


def test_dot_line_inside_via_stuffing_first_line(server):
    # the very first content line is "." (sent as "..")
    d = deliver_raw(server, b"..\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
    assert d.content == b".\nSubject: x\n\nbody\n"


def test_leading_dot_always_removed(server):
    """§4.5.2: a leading period is deleted even if the client forgot to double it."""
    d = deliver_raw(server, b"Subject: unstuff\r\n\r\n.y\r\n...x\r\n.\r\n")
    assert d.content == b"Subject: unstuff\n\ny\n..x\n"


def test_triple_dot_lines(server):
    d = deliver_raw(server, b"Subject: t\r\n\r\n...\r\n....\r\n.\r\n")
    assert d.content == b"Subject: t\n\n..\n...\n"


def test_8bit_content(server):
    body = bytes(range(0x80, 0x100)) + b"\r\n" + "gr\u00fc\u00dfe \u2603 \U0001F600\r\n".encode("utf-8")
    roundtrip(server, make_message("8bit", body), " BODY=8BITMIME")


def test_998_octet_lines(server):
    rnd = random.Random(998)
    line1 = b"x" * 998
    line2 = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(998))
    content = b"Subject: long lines\r\n\r\n" + line1 + b"\r\n" + line2 + b"\r\n" + line1 + b"\r\n"
    d = roundtrip(server, content)
    assert max(len(l) for l in d.content.split(b"\n")) == 998


def test_998_octet_header_line(server):
    content = b"Subject: " + b"h" * (998 - len("Subject: ")) + b"\r\n\r\nbody\r\n"
    roundtrip(server, content)


def test_binaryish_bytes_without_nul(server):
    ctl = bytes(b for b in range(1, 0x20) if b not in (0x0A, 0x0D)) + b"\x7f"
    body = ctl + b"\r\n" + bytes(range(0x20, 0x7f)) + b"\r\n" + bytes(range(0x80, 0x100)) + b"\r\n\t tab and space \t\r\n"
    roundtrip(server, make_message("binaryish", body), " BODY=8BITMIME")


def test_binaryish_bytes_with_nul(server):
    body = b"before\x00after\r\n\x00\r\n\x00\x00\x00x\r\n"
    roundtrip(server, make_message("nul", body), " BODY=8BITMIME")


def test_whitespace_preserved(server):
    content = b"Subject: ws\r\n\r\n  leading\r\ntrailing  \r\n\t\r\n\r\n\r\n \r\nend\r\n"
    roundtrip(server, content)


def test_no_header_section(server):
    content = b"just a body line without any header\r\nsecond\r\n"
    roundtrip(server, content)


def test_empty_message(server):
    d = deliver_raw(server, b".\r\n")
    assert d.content == b"", d.content
    assert d.received is not None


def test_only_empty_line(server):
    d = deliver_raw(server, b"\r\n.\r\n")
    assert d.content == b"\n"


def test_headers_preserved_exactly(server):
    content = (b"Received: from earlier.example by relay.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"From: \"Some One\" <some@example.org>\r\nTo: alice@example.test\r\n"
               b"Subject: folded\r\n header\r\n\tagain\r\nX-Weird:no-space\r\nX-Empty:\r\n\r\nbody\r\n")
    roundtrip(server, content)


def test_large_message_exact(server):
    rnd = random.Random(4242)
    lines = []
    for i in range(9000):
        n = rnd.randrange(0, 120)
        ln = bytes(rnd.choice(b"abcdefghij .,;:-_=+ABCXYZ0123456789") for _ in range(n))
        if i % 7 == 0:
            ln = b"." + ln
        lines.append(ln)
    content = b"Subject: large\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    assert len(content) > 300000
    roundtrip(server, content)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_segmentation(server, seed):
    """The same stuffed stream cut into random segments (with short pauses) decodes the
    same."""
    rnd = random.Random(seed)
    lines = []
    for i in range(400):
        kind = rnd.randrange(6)
        if kind == 0:
            lines.append(b"." * rnd.randrange(1, 4))
        elif kind == 1:
            lines.append(b"." + bytes(rnd.choice(b"abc.") for _ in range(rnd.randrange(1, 10))))
        elif kind == 2:
            lines.append(b"")
        else:
            lines.append(bytes(rnd.choice(b"xyz .\t") for _ in range(rnd.randrange(1, 80))))
    content = b"Subject: seg\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    stream = data_payload(content)
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        i = 0
        while i < len(stream):
            n = rnd.choice([1, 2, 3, 5, 64, 500, 1460])
            c.send(stream[i:i + n])
            i += n
            if rnd.random() < 0.05:
                c.wait_server_read()  # a pause: the server has read up to here
        r = c.read_reply()
        assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(content)
