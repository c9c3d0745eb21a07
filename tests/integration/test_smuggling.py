"""SMTP smuggling (2023): only <CRLF>.<CRLF> ends DATA. A would-be end of data made of bare CR
or LF, followed by a would-be second transaction, must never produce a second message."""

import pytest

from ternlib import Delivered, data_payload, make_message

VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
    "crlf-dot-lf": b"\r\n.\n",
}

OUTER = b"From: <a@example.org>\r\nTo: <alice@example.test>\r\nSubject: outer-message\r\n\r\nouter body"
SMUGGLED = (b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"From: <ceo@example.test>\r\nSubject: smuggled-message\r\n\r\nsmuggled body\r\n")
REAL_END = b".\r\n"  # SMUGGLED ends with CRLF, so this completes <CRLF>.<CRLF>


def sync_message(server):
    """Sends a clean message to carol and waits for it: once it is delivered, anything the
    server would have made of the earlier bytes would have been delivered too."""
    r, _ = server.send_one(make_message("sync-message", to="carol@example.test"), rcpts=("carol@example.test",))
    assert r.code == 250, r
    server.wait_delivered("carol", 1)
    server.wait_queue_idle()


def open_data(server):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    return c


def check_outcome(server, mode, first_reply, quit_reply):
    """The common assertions once the real end of data and QUIT were sent."""
    assert quit_reply.code == 221, "a reply other than 221 after the real end of data: the would-be second transaction was read as commands (%s)" % quit_reply
    if mode == "normalize":
        assert first_reply.code == 250 and first_reply.enh == "2.0.0", first_reply
    else:
        assert first_reply.code == 554 and first_reply.enh == "5.6.0", first_reply
    sync_message(server)
    assert server.maildir("bob") == [], "the smuggled message reached bob"
    assert [m for _, m in server.find(b"evil@example.org") if Delivered(m).return_path == b"<evil@example.org>"] == [], "a message with the smuggled envelope was delivered"
    alice = server.maildir("alice")
    total = len(server.all_messages())
    if mode == "normalize":
        assert len(alice) == 1, "alice has %d messages, expected exactly the outer one" % len(alice)
        assert total == 2, "expected the outer message and the sync message, found %d" % total
        d = Delivered(alice[0])
        assert b"outer body" in d.content
        # the would-be second transaction is content of the first message
        assert b"MAIL FROM:<evil@example.org>" in d.content and b"smuggled body" in d.content
        assert b"\r" not in alice[0], "a bare CR survived into the Maildir: %r" % alice[0]
        assert d.return_path == b"<a@example.org>"
    else:
        assert alice == [], "bare_lf=reject delivered %d message(s)" % len(alice)
        assert total == 1, "only the sync message may exist, found %d" % total


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_smuggling_variant(tern_factory, mode, variant):
    server = tern_factory(bare_lf=mode)
    c = open_data(server)
    c.send(OUTER + VARIANTS[variant] + SMUGGLED)
    # The server has read all of it before the real end comes. Had it taken the variant for
    # an end of data, its replies to the smuggled commands would come before QUIT's 221.
    c.wait_server_read()
    c.send(REAL_END + b"QUIT\r\n")
    first = c.read_reply()
    quit_reply = c.read_reply()
    c.close()
    check_outcome(server, mode, first, quit_reply)


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_smuggling_variant_one_write(tern_factory, mode, variant):
    """The whole attack in one write, pipelined the way a sending relay would forward it."""
    server = tern_factory(bare_lf=mode)
    c = open_data(server)
    c.send(OUTER + VARIANTS[variant] + SMUGGLED + REAL_END + b"QUIT\r\n")
    first = c.read_reply()
    quit_reply = c.read_reply()
    c.close()
    check_outcome(server, mode, first, quit_reply)


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_smuggling_variant_split_segments(tern_factory, mode, variant):
    """Every octet of the would-be end of data in its own TCP segment, each read by the
    server before the next is sent."""
    server = tern_factory(bare_lf=mode)
    c = open_data(server)
    c.send(OUTER)
    c.wait_server_read()
    for b in VARIANTS[variant]:
        c.send(bytes([b]))
        c.wait_server_read()
    for piece in (b"MAIL FROM:<evil@exa", b"mple.org>\r", b"\n", SMUGGLED[len(b"MAIL FROM:<evil@example.org>\r\n"):]):
        c.send(piece)
        c.wait_server_read()
    for b in REAL_END:
        c.send(bytes([b]))
        c.wait_server_read()
    first = c.read_reply()
    quit_reply = c.cmd("QUIT")
    c.close()
    check_outcome(server, mode, first, quit_reply)


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("start", [b".\n", b".\r", b".\rX\r\n", b"\n.\n"])
def test_smuggling_at_start_of_data(tern_factory, mode, start):
    """Right after 354 the previous CRLF is the DATA command's: ".\\n" there is no end either."""
    server = tern_factory(bare_lf=mode)
    c = open_data(server)
    c.send(start + SMUGGLED)
    c.wait_server_read()
    c.send(REAL_END + b"QUIT\r\n")
    first = c.read_reply()
    quit_reply = c.read_reply()
    c.close()
    # An early end of data would have put the replies to the smuggled commands before 221.
    assert quit_reply.code == 221, (first, quit_reply)
    assert quit_reply.code == 221, quit_reply
    if mode == "normalize":
        assert first.code == 250, first
    else:
        assert first.code == 554 and first.enh == "5.6.0", first
    sync_message(server)
    assert server.maildir("bob") == []
    assert len(server.maildir("alice")) == (1 if mode == "normalize" else 0)


def test_real_end_split_across_segments(server):
    """<CR><LF>.<CR><LF> cut into single octets, each read by the server before the next,
    still ends the data once."""
    c = open_data(server)
    c.send(b"Subject: split-end\r\n\r\nbody")
    for b in b"\r\n.\r\n":
        c.wait_server_read()
        c.send(bytes([b]))
    r = c.read_reply()
    assert r.code == 250, r
    assert c.cmd("NOOP").code == 250
    c.close()
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b"Subject: split-end\n\nbody\n"


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_real_end_cut_in_two(server, cut):
    c = open_data(server)
    tail = b"\r\n.\r\n"
    c.send(b"Subject: cut\r\n\r\nbody" + tail[:cut])
    c.wait_server_read()
    c.send(tail[cut:])
    assert c.read_reply().code == 250
    # Had the first part ended the data, the rest would have been a command: NOOP would
    # get that command's reply, not its own.
    r = c.cmd("NOOP")
    assert r.code == 250 and c.buf == b"", "reply before the end of data was complete: %r %r" % (r, c.buf)
    c.close()
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b"Subject: cut\n\nbody\n"


@pytest.mark.parametrize("mode", ["normalize", "reject"])
def test_bare_lf_normalized_or_rejected(tern_factory, mode):
    server = tern_factory(bare_lf=mode)
    c = open_data(server)
    c.send(b"Subject: bare\r\n\r\nline one\nline two\rline three\r\n.\r\n")
    r = c.read_reply()
    if mode == "normalize":
        assert r.code == 250, r
        (raw,) = server.wait_delivered("alice", 1)
        assert Delivered(raw).content == b"Subject: bare\n\nline one\nline two\nline three\n"
    else:
        assert r.code == 554 and r.enh == "5.6.0", r
        # the session goes on after the refusal
        assert c.cmd("NOOP").code == 250
        sync_message(server)
        assert server.maildir("alice") == []
    c.close()


def test_reject_mode_accepts_clean_message(tern_factory):
    server = tern_factory(bare_lf="reject")
    msg = make_message("clean-in-reject-mode", "one\r\ntwo\r\n")
    r, _ = server.send_one(msg)
    assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == msg.replace(b"\r\n", b"\n")


def test_normalized_message_on_the_wire_form(tern_factory):
    """With bare_lf=normalize a bare LF becomes a line end, so no later hop can see a
    different message: stored text has lines, not stray CR/LF."""
    server = tern_factory(bare_lf="normalize")
    c = open_data(server)
    c.send(data_payload(b"Subject: n\r\n\r\na\nb\r\n"))
    assert c.read_reply().code == 250
    c.close()
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b"Subject: n\n\na\nb\n"


# --------------------------------------------------------------------------- bare LF in commands

def test_bare_lf_command_line_normalized(tern_factory):
    """bare_lf = normalize (the default): a bare LF ends a command line as CRLF would, as
    Postfix's smtpd_forbid_bare_newline = normalize reads it. "EHLO x<LF>X-Injected: 1" is two
    lines: the name is "x" and the second line is answered as a command of its own."""
    server = tern_factory(bare_lf="normalize")
    with server.connect() as c:
        c.send(b"EHLO x\nX-Injected: 1\r\nMAIL FROM:<a@example.org>\nRCPT TO:<alice@example.test>\nDATA\n")
        rs = c.read_replies(5)
        assert [r.code for r in rs] == [250, 500, 250, 250, 354], rs
        assert rs[1].enh == "5.5.2", rs[1]
        c.send(data_payload(make_message("normalized-commands")))
        assert c.read_reply().code == 250
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).received.startswith("Received: from x (unknown [127.0.0.1])"), Delivered(raw).received


def refused_whole(c, line, probe):
    """`line` (with a bare LF) gets 500 5.5.2; `probe`, which needs the command before the bare
    LF to have been taken, then gets 503: no part of the line was a command."""
    c.send(line)
    r = c.read_reply()
    assert r.code == 500 and r.enh == "5.5.2", r
    r = c.cmd(probe)
    assert r.code == 503, r


def test_bare_lf_command_line_rejected(tern_factory):
    """bare_lf = reject: only CRLF ends a command line; one that holds a bare LF gets 500 5.5.2
    and is dropped whole, up to its CRLF, so no part of it is a command (a CRLF-only reader
    before tern sees one line there)."""
    server = tern_factory(bare_lf="reject")
    with server.connect() as c:
        # neither the EHLO nor the MAIL after the bare LF is taken
        refused_whole(c, b"EHLO x\nMAIL FROM:<evil@example.org>\r\n", "MAIL FROM:<a@example.org>")
        c.ehlo()
        refused_whole(c, b"MAIL FROM:<a@example.org>\nRCPT TO:<bob@example.test>\r\n",
                      "RCPT TO:<alice@example.test>")
        # a bare LF right before the CRLF, and the CRLF in a later segment
        c.send(b"NOOP\n")
        assert c.no_reply_within(0.3), "a reply before the CRLF: %r" % c.buf
        c.send(b"\r\n")
        r = c.read_reply()
        assert r.code == 500 and r.enh == "5.5.2", r
        # clean lines work as ever
        r = c.mail("a@example.org", ["alice@example.test"], make_message("after-bare-lf-commands"))
        assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).return_path == b"<a@example.org>"
    server.settle(0.5)
    assert server.maildir("bob") == []
    assert len(server.all_messages()) == 1
    assert "bare LF in a command line from" in server.log(), server.log_tail()
