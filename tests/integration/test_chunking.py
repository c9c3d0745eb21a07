"""CHUNKING and BINARYMIME (RFC 3030)."""
import re

import pytest

from ternlib import ConnectionClosed, Delivered, crlf_to_lf, make_message, parse_qid


def bdat(chunk, last=False):
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


def start(c, params=""):
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>%s" % params, 250)
    c.expect("RCPT TO:<alice@example.test>", 250)


def test_bdat_single_last(server):
    msg = make_message("bdat-single")
    with server.connect() as c:
        start(c)
        c.send(bdat(msg, last=True))
        r = c.read_reply()
        assert r.code == 250 and r.enh == "2.0.0", r
        assert re.search(r"queued as \S+", r.text), r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_bdat_multiple_chunks(server):
    msg = make_message("bdat-multi", "".join("line %d\r\n" % i for i in range(200)))
    pieces = [msg[i:i + 333] for i in range(0, len(msg), 333)]
    with server.connect() as c:
        start(c)
        for p in pieces[:-1]:
            c.send(bdat(p))
            r = c.read_reply()
            assert r.code == 250 and r.enh == "2.0.0", r
            assert "queued" not in r.text, r
        c.send(bdat(pieces[-1], last=True))
        r = c.read_reply()
        assert r.code == 250 and "queued as" in r.text, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_bdat_chunk_boundary_inside_crlf(server):
    """A chunk may end between CR and LF; the line end is still one CRLF."""
    msg = b"Subject: split-crlf\r\n\r\nabc\r\ndef\r\n"
    i = msg.index(b"abc\r") + 4
    with server.connect() as c:
        start(c)
        c.send(bdat(msg[:i]))
        assert c.read_reply().code == 250
        c.send(bdat(msg[i:], last=True))
        assert c.read_reply().code == 250
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_bdat_zero_last_after_chunks(server):
    msg = make_message("bdat-zero-last")
    with server.connect() as c:
        start(c)
        c.send(bdat(msg))
        assert c.read_reply().code == 250
        c.send(b"BDAT 0 LAST\r\n")
        r = c.read_reply()
        assert r.code == 250 and r.enh == "2.0.0" and "queued as" in r.text, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_bdat_zero_last_empty_message(server):
    with server.connect() as c:
        start(c)
        r = c.cmd("BDAT 0 LAST")
        assert r.code == 250 and "queued as" in r.text, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b""


def test_bdat_no_dot_stuffing(server):
    """BDAT content is not dot-stuffed: '.' lines, '..' lines and CRLF.CRLF are content."""
    msg = b"Subject: bdat-dots\r\n\r\n.\r\n..\r\nbefore\r\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
    with server.connect() as c:
        start(c)
        c.send(bdat(msg, last=True) + b"NOOP\r\n")
        r = c.read_reply()
        assert r.code == 250 and "queued as" in r.text, r
        assert c.read_reply().code == 250  # NOOP, not something from inside the chunk
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)
    server.wait_queue_idle()
    assert server.maildir("bob") == []


def test_bdat_pipelined(server):
    m1 = make_message("bdat-pipe-1")
    m2 = make_message("bdat-pipe-2")
    stream = (b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\n" +
              bdat(m1[:50]) + bdat(m1[50:]) + b"BDAT 0 LAST\r\n" +
              b"MAIL FROM:<b@example.org>\r\nRCPT TO:<carol@example.test>\r\n" + bdat(m2, last=True) + b"QUIT\r\n")
    with server.connect() as c:
        c.send(stream)
        rs = c.read_replies(10)
        assert [r.code for r in rs] == [250, 250, 250, 250, 250, 250, 250, 250, 250, 221], rs
        assert "queued as" in rs[5].text and "queued as" in rs[8].text
        assert parse_qid(rs[5]) != parse_qid(rs[8])
    (a,) = server.wait_delivered("alice", 1)
    (b,) = server.wait_delivered("carol", 1)
    assert Delivered(a).content == crlf_to_lf(m1)
    assert Delivered(b).content == crlf_to_lf(m2)


def test_binarymime(server):
    body = bytes(b for b in range(256) if b not in (0x0A, 0x0D)) * 4
    msg = b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n" + body + b"\r\n" + body + b"\r\n"
    with server.connect() as c:
        start(c, " BODY=BINARYMIME")
        c.send(bdat(msg[:700]) + bdat(msg[700:], last=True))
        rs = c.read_replies(2)
        assert rs[0].code == 250 and rs[1].code == 250 and "queued as" in rs[1].text, rs
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(msg)


def test_binarymime_requires_bdat(server):
    with server.connect() as c:
        start(c, " BODY=BINARYMIME")
        r = c.cmd("DATA")
        assert r.code == 503 and r.enh == "5.5.1", r


def test_data_after_bdat(server):
    with server.connect() as c:
        start(c)
        c.send(bdat(b"Subject: x\r\n"))
        assert c.read_reply().code == 250
        r = c.cmd("DATA")
        assert r.code == 503 and r.enh == "5.5.1", r
        # the transaction goes on with BDAT
        c.send(bdat(b"\r\nbody\r\n", last=True))
        r = c.read_reply()
        assert r.code == 250 and "queued as" in r.text, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b"Subject: x\n\nbody\n"


def test_bdat_without_mail_consumes_chunk(server):
    with server.connect() as c:
        c.ehlo()
        c.send(b"BDAT 6\r\nQUIT\r\n")
        r = c.read_reply()
        assert r.code == 503 and r.enh == "5.5.1", r
        # "QUIT\r\n" was the chunk, not a command
        r = c.cmd("NOOP")
        assert r.code == 250, r


def test_bdat_without_rcpt_consumes_chunk(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.send(b"BDAT 6\r\nRSET\r\n")
        r = c.read_reply()
        assert r.code == 503 and r.enh == "5.5.1", r
        # the chunk was not executed as RSET: a MAIL now is nested
        r = c.cmd("MAIL FROM:<a@example.org>")
        assert r.code == 503, r


@pytest.mark.parametrize("line", ["BDAT", "BDAT x", "BDAT -1", "BDAT 10 FIRST"])
def test_bdat_bad_syntax(server, line):
    with server.connect() as c:
        start(c)
        r = c.cmd(line)
        assert r.code == 501 and r.enh == "5.5.4", r
        # Without a valid size the chunk cannot be skipped: the server may close (421)
        # but must never read the following bytes as commands in the transaction.
        # QUIT after them: its 221 (or the end of the session) comes after every reply.
        c.send(b"Subject: x\r\n\r\nbody\r\nQUIT\r\n")
        rest = []
        for _ in range(10):
            try:
                r = c.read_reply()
            except ConnectionClosed:
                break
            rest.append(r)
            if r.code in (221, 421):
                break
        assert not rest or rest[-1].code in (221, 421), rest
        assert all(r.code != 250 for r in rest), rest
    server.wait_queue_idle()
    assert server.maildir("alice") == []


def test_bdat_over_size_limit(tern_factory):
    s = tern_factory(message_size_max=1000)
    with s.connect() as c:
        start(c)
        c.send(bdat(b"a" * 600 + b"\r\n"))
        assert c.read_reply().code == 250
        c.send(bdat(b"b" * 600 + b"\r\n", last=True))
        r = c.read_reply()
        assert r.code == 552 and r.enh == "5.3.4", r
        assert c.cmd("NOOP").code == 250
    s.wait_queue_idle()
    assert s.maildir("alice") == []


def test_bdat_large_chunk(server):
    body = b"".join(b"%06d " % i + b"z" * 90 + b"\r\n" for i in range(5000))
    msg = b"Subject: big-bdat\r\n\r\n" + body
    with server.connect() as c:
        start(c)
        c.send(bdat(msg, last=True))
        r = c.read_reply(timeout=30)
        assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1, timeout=20)
    assert Delivered(raw).content == crlf_to_lf(msg)


@pytest.mark.parametrize("mode", ["normalize", "reject"])
def test_bdat_bare_lf(tern_factory, mode):
    s = tern_factory(bare_lf=mode)
    with s.connect() as c:
        start(c)
        c.send(bdat(b"Subject: bare\r\n\r\na\nb\rc\r\n", last=True))
        r = c.read_reply()
        if mode == "normalize":
            assert r.code == 250, r
            (raw,) = s.wait_delivered("alice", 1)
            assert Delivered(raw).content == b"Subject: bare\n\na\nb\nc\n"
        else:
            assert r.code == 554 and r.enh == "5.6.0", r


def test_bdat_lowercase(server):
    msg = make_message("bdat-lower")
    with server.connect() as c:
        start(c)
        c.send(b"bdat %d last\r\n" % len(msg) + msg)
        r = c.read_reply()
        assert r.code == 250 and "queued as" in r.text, r
    server.wait_delivered("alice", 1)


def test_bdat_pipelined_after_refused_recipients(server):
    """All RCPTs refused: the pipelined BDAT gets 503 and its chunk is skipped, not run."""
    with server.connect() as c:
        c.ehlo()
        chunk = b"NOOP\r\nQUIT\r\n"
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nosuch@example.test>\r\n" + bdat(chunk, last=True) + b"RSET\r\n")
        rs = c.read_replies(4)
        assert [r.code for r in rs] == [250, 550, 503, 250], rs
        assert rs[2].enh == "5.5.1"
        assert c.cmd("NOOP").code == 250
    server.wait_queue_idle()
    assert server.all_messages() == []
