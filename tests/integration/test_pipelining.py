"""PIPELINING (RFC 2920): commands sent in one write are answered in order."""

from ternlib import DEFAULT_USERS, Delivered, data_payload, make_message, parse_qid


def test_whole_transaction_in_one_send(server):
    msg = make_message("pipelined-one")
    with server.connect() as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
               b"DATA\r\n" + data_payload(msg) + b"QUIT\r\n")
        rs = c.read_replies(6)
        assert [r.code for r in rs] == [250, 250, 250, 354, 250, 221], rs
        assert rs[0].lines[0] == "mx.test"
        assert rs[1].enh == "2.1.0" and rs[2].enh == "2.1.5"
        assert "queued as" in rs[4].text
        assert c.wait_closed()
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == msg.replace(b"\r\n", b"\n")


def test_two_messages_pipelined(server):
    m1 = make_message("pipelined-first", "first body\r\n")
    m2 = make_message("pipelined-second", "second body\r\n")
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" + data_payload(m1) +
               b"MAIL FROM:<b@example.org>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n" + data_payload(m2) +
               b"QUIT\r\n")
        rs = c.read_replies(9)
        assert [r.code for r in rs] == [250, 250, 354, 250, 250, 250, 354, 250, 221], rs
        q1, q2 = parse_qid(rs[3]), parse_qid(rs[7])
        assert q1 != q2
    (a,) = server.wait_delivered("alice", 1)
    (b,) = server.wait_delivered("carol", 1)
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1 and len(server.maildir("carol")) == 1
    assert Delivered(a).content == m1.replace(b"\r\n", b"\n")
    assert Delivered(b).content == m2.replace(b"\r\n", b"\n")
    assert Delivered(a).return_path == b"<a@example.org>"
    assert Delivered(b).return_path == b"<b@example.org>"


def test_pipelined_with_refused_recipient(server):
    """A refused RCPT in the middle of a pipelined group: its reply is in place and the
    message goes to the accepted recipients only."""
    msg = make_message("pipelined-mixed")
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nosuch@example.test>\r\n"
               b"RCPT TO:<x@example.org>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n" + data_payload(msg) + b"QUIT\r\n")
        rs = c.read_replies(8)
        assert [r.code for r in rs] == [250, 250, 550, 554, 250, 354, 250, 221], rs
        assert rs[2].enh == "5.1.1" and rs[3].enh == "5.7.1"
    server.wait_delivered("alice", 1)
    server.wait_delivered("carol", 1)


def test_pipelined_data_with_no_valid_recipient_then_rset(server):
    """DATA refused (503) when every RCPT failed; the following pipelined RSET/NOOP are still
    answered in order."""
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nosuch@example.test>\r\nDATA\r\nRSET\r\nNOOP\r\n")
        rs = c.read_replies(5)
        assert [r.code for r in rs] == [250, 550, 503, 250, 250], rs
        assert rs[2].enh == "5.5.1"


def test_many_commands_in_one_send(server):
    with server.connect() as c:
        c.ehlo()
        c.send(b"NOOP\r\n" * 200)
        rs = c.read_replies(200)
        assert all(r.code == 250 for r in rs)
        assert c.cmd("NOOP").code == 250


def test_ten_messages_pipelined(server):
    payload = b""
    for i in range(10):
        payload += (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" +
                    data_payload(make_message("pipelined-batch-%d" % i)))
    with server.connect() as c:
        c.ehlo()
        c.send(payload + b"QUIT\r\n")
        rs = c.read_replies(41)
        codes = [r.code for r in rs]
        assert codes == [250, 250, 354, 250] * 10 + [221], codes
    msgs = server.wait_delivered("alice", 10)
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 10
    subjects = sorted(Delivered(m).header("Subject") for m in msgs)
    assert subjects == sorted("pipelined-batch-%d" % i for i in range(10))


def test_pipelined_commands_split_across_writes(server):
    """Commands cut at arbitrary points across TCP segments are reassembled."""
    msg = make_message("pipelined-split")
    stream = (b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" +
              data_payload(msg) + b"QUIT\r\n")
    with server.connect() as c:
        for i in range(0, len(stream), 7):
            c.send(stream[i:i + 7])
            c.wait_server_read()  # read by the server before the next piece is sent
        rs = c.read_replies(6)
        assert [r.code for r in rs] == [250, 250, 250, 354, 250, 221], rs
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == msg.replace(b"\r\n", b"\n")


def test_pipelined_after_data_end_in_same_segment(server):
    """The commands right after the final dot, in the same segment, are commands."""
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: seg\r\n\r\nbody\r\n.\r\nNOOP\r\nVRFY x\r\n")
        rs = c.read_replies(3)
        assert [r.code for r in rs] == [250, 250, 252], rs


def test_thousand_pipelined_rcpts_keep_the_transaction(tern_factory):
    """1,000 RCPTs in one write, RCPTMAX=100: 100 × 250, then 900 × 452 4.5.3, which are not
    errors (RFC 5321 §4.5.3.1.10 tells the client to send the rest later): DATA delivers to the
    first 100, the session goes on, and the next transaction takes the next 100."""
    users = ["u%03d" % i for i in range(200)]
    s = tern_factory(users=DEFAULT_USERS + users)
    rcpts = ["%s@example.test" % u for u in users] + ["x%03d@example.test" % i for i in range(800)]
    with s.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\n" + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts) +
               b"DATA\r\n")
        rs = c.read_replies(1002)
        assert rs[0].code == 250, rs[0]
        assert [(r.code, r.enh) for r in rs[1:101]] == [(250, "2.1.5")] * 100, rs[1:101]
        assert [(r.code, r.enh) for r in rs[101:1001]] == [(452, "4.5.3")] * 900, [r for r in rs[101:1001] if r.code != 452][:3]
        assert rs[1001].code == 354, rs[1001]
        c.send(data_payload(make_message("first-hundred")))
        r = c.read_reply()
        assert r.code == 250, r
        # the client sends the next 100 in a second transaction of the same session
        c.send(b"MAIL FROM:<a@example.org>\r\n" + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts[100:200]) +
               b"DATA\r\n")
        rs = c.read_replies(102)
        assert [r.code for r in rs] == [250] * 101 + [354], [r for r in rs if r.code not in (250, 354)][:3]
        c.send(data_payload(make_message("second-hundred")))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    for i, u in enumerate(users):
        (raw,) = s.wait_delivered(u, 1, timeout=30)
        assert Delivered(raw).header("Subject") == ("first-hundred" if i < 100 else "second-hundred"), u
    s.settle(0.5)
    assert len(s.all_messages()) == 200
