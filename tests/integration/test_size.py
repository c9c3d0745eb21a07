"""SIZE (RFC 1870) and message_size_max: advertised, declared at MAIL, enforced on content."""
import pytest

from ternlib import Delivered, crlf_to_lf, data_payload, make_message

LIMIT = 5000


def content_of_size(n, subject="size"):
    """Message content (CRLF line ends) of exactly n octets, lines well under 1000."""
    head = ("Subject: %s\r\n\r\n" % subject).encode()
    assert n >= len(head) + 2
    body_len = n - len(head)
    lines = []
    while body_len > 0:
        take = min(100, body_len)  # a line of take-2 'x' plus CRLF
        if body_len - take == 1:
            take -= 1
        if take < 2:
            take = 2
        lines.append(b"x" * (take - 2) + b"\r\n")
        body_len -= take
    c = head + b"".join(lines)
    assert len(c) == n, (len(c), n)
    return c


@pytest.fixture
def small(tern_factory):
    return tern_factory(message_size_max=LIMIT)


def ehlo_size(server):
    with server.connect() as c:
        r = c.ehlo()
    sizes = [l for l in r.lines[1:] if l.upper().startswith("SIZE")]
    assert len(sizes) == 1, r
    return sizes[0]


def test_size_advertised(small):
    assert ehlo_size(small) == "SIZE %d" % LIMIT


def test_size_default_1m_advertised(server):
    # message_size_max = 1M in the default test config; binary multiple assumed
    assert ehlo_size(server) == "SIZE 1048576"


@pytest.mark.parametrize("value,expected", [("10k", 10240), ("10K", 10240), ("2m", 2097152), ("123456", 123456)])
def test_size_suffixes(tern_factory, value, expected):
    s = tern_factory(message_size_max=value)
    assert ehlo_size(s) == "SIZE %d" % expected


def test_content_at_limit_accepted(small):
    content = content_of_size(LIMIT)
    r, qid = small.send_one(content)
    assert r.code == 250 and r.enh == "2.0.0", r
    (raw,) = small.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(content)


def test_content_over_limit_refused(small):
    with small.connect() as c:
        c.ehlo()
        r = c.mail("a@example.org", ["alice@example.test"], content_of_size(LIMIT + 1))
        assert r.code == 552 and r.enh == "5.3.4", r
        # the session continues with a new transaction
        assert c.cmd("NOOP").code == 250
        r = c.mail("a@example.org", ["carol@example.test"], make_message("after-too-big"))
        assert r.code == 250, r
    small.wait_delivered("carol", 1)
    small.wait_queue_idle()
    assert small.maildir("alice") == [], "an over-limit message was delivered"


def test_dot_stuffing_not_counted(small):
    """The limit applies to the content, not to the stuffed transmission (RFC 1870 §5)."""
    head = b"Subject: dots\r\n\r\n"
    line = b"." + b"d" * 97 + b"\r\n"  # 100 octets of content, 101 on the wire
    n = (LIMIT - len(head)) // 100
    content = head + line * n
    content += b"p" * (LIMIT - len(content) - 2) + b"\r\n"
    assert len(content) == LIMIT
    assert len(data_payload(content)) > LIMIT + 40
    r, _ = small.send_one(content)
    assert r.code == 250, r
    (raw,) = small.wait_delivered("alice", 1)
    assert Delivered(raw).content == crlf_to_lf(content)


def test_far_over_limit_consumed_no_desync(small):
    """Content far over the limit is read to its end: none of it is taken as commands."""
    inner = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nevil\r\n"
    content = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 1000 + inner + (b"z" * 78 + b"\r\n") * 100
    with small.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(data_payload(content) + b"NOOP\r\n")
        r = c.read_reply()
        assert r.code == 552 and r.enh == "5.3.4", r
        r = c.read_reply()
        assert r.code == 250 and r.enh == "2.0.0", "the reply after 552 should be NOOP's: %s" % r
    small.wait_queue_idle()
    assert small.all_messages() == []


def test_mail_size_at_limit(small):
    with small.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=%d" % LIMIT)
        assert r.code == 250 and r.enh == "2.1.0", r


def test_mail_size_over_limit(small):
    with small.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=%d" % (LIMIT + 1))
        assert r.code == 552 and r.enh == "5.3.4", r
        # no transaction was started
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 503, r


@pytest.mark.parametrize("value", ["0", "1", "00005000"])
def test_mail_size_small_values(small, value):
    with small.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.org> SIZE=" + value).code == 250


def test_mail_size_huge_value(small):
    with small.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=99999999999999999999999999")
        assert r.code in (501, 552), r


@pytest.mark.parametrize("value", ["abc", "-1", "", "1e3"])
def test_mail_size_malformed(small, value):
    with small.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=" + value)
        assert r.code == 501 and r.enh == "5.5.4", r


def test_mail_size_lies_small(small):
    """A declared SIZE does not raise the limit: content over it is refused at the end."""
    with small.connect() as c:
        c.ehlo()
        r = c.mail("a@example.org", ["alice@example.test"], content_of_size(LIMIT + 500), params=" SIZE=100")
        assert r.code == 552 and r.enh == "5.3.4", r
    small.wait_queue_idle()
    assert small.maildir("alice") == []


def test_one_megabyte_exactly(server):
    content = content_of_size(1048576, "one-mebibyte")
    r, _ = server.send_one(content)
    assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1, timeout=20)
    assert Delivered(raw).content == crlf_to_lf(content)


def test_one_megabyte_plus_one(server):
    with server.connect() as c:
        c.ehlo()
        r = c.mail("a@example.org", ["alice@example.test"], content_of_size(1048577))
        assert r.code == 552 and r.enh == "5.3.4", r
