"""Trace information (RFC 5321 §4.4): tern's Received header, Return-Path and Delivered-To."""
import datetime
import email.utils
import os
import re

import pytest

from ternlib import HOSTNAME, Delivered, crlf_to_lf, make_message, parse_qid

# "Received: from HELO (NAME [IP]) by mx.test [comment] with PROTO id QID [for <rcpt>]; date",
# whitespace (folding) anywhere between the clauses.
RECEIVED_RE = re.compile(
    r"^Received: from (?P<helo>\S+) \((?P<name>[^ \[]+) \[(?P<ip>[^\]]+)\]\)"
    r"\s+by (?P<by>\S+)(?:\s+\([^)]*\))?"
    r"\s+with (?P<proto>\S+)"
    r"\s+id (?P<id>[^\s;]+)"
    r"(?:\s+for <(?P<for>[^>]*)>)?"
    r"\s*;\s*(?P<date>.+)$")


def deliver(server, helo_line=b"EHLO client.test", sender="a@example.org", rcpts=("alice@example.test",), content=None):
    content = content or make_message("trace")
    with server.connect() as c:
        r = c.cmd(helo_line)
        assert r.code == 250, r
        r = c.mail(sender, list(rcpts), content)
        assert r.code == 250, r
        qid = parse_qid(r)
    return qid, content


def test_received_header_fields(server):
    qid, content = deliver(server)
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.received is not None, "no Received header at the top of the message: %r" % raw[:300]
    m = RECEIVED_RE.match(d.received)
    assert m, "Received header not in the expected form: %r" % d.received
    assert m.group("helo") == "client.test"
    assert m.group("ip") == "127.0.0.1"
    assert m.group("name") in ("unknown", "localhost", "localhost.localdomain"), m.group("name")
    assert m.group("by") == HOSTNAME
    assert m.group("proto") == "ESMTP"
    assert m.group("id") == qid, "Received id %s differs from the 250 reply's %s" % (m.group("id"), qid)
    assert m.group("for") == "alice@example.test"
    when = email.utils.parsedate_to_datetime(m.group("date").strip())
    assert when.tzinfo is not None, "date without a zone: %r" % m.group("date")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 300, "date %s is not now" % when
    # the message itself is untouched below it
    assert d.content == crlf_to_lf(content)


def test_received_names_client_address(server):
    with server.connect(source="127.0.0.2") as c:
        c.ehlo("other.client.test")
        assert c.mail("a@example.org", ["alice@example.test"], make_message("from-127-0-0-2")).code == 250
    (raw,) = server.wait_delivered("alice", 1)
    m = RECEIVED_RE.match(Delivered(raw).received or "")
    assert m and m.group("ip") == "127.0.0.2" and m.group("helo") == "other.client.test", Delivered(raw).received


def test_received_proto_smtp_after_helo(server):
    deliver(server, helo_line=b"HELO old.client.test")
    (raw,) = server.wait_delivered("alice", 1)
    m = RECEIVED_RE.match(Delivered(raw).received or "")
    assert m, Delivered(raw).received
    assert m.group("helo") == "old.client.test"
    assert m.group("proto") == "SMTP"


def test_log_lines_for_a_delivery(server):
    qid, _ = deliver(server)
    server.wait_delivered("alice", 1)
    server.wait_queue_idle()
    log = server.log()
    q = re.escape(qid)
    assert re.search(r"connect from \S+\[127\.0\.0\.1\]", log), log[-2000:]
    assert re.search(q + r": from=<a@example\.org>, size=\d+, nrcpt=1 \(queue active\)", log), log[-2000:]
    assert re.search(q + r": to=<alice@example\.test>, relay=local, delay=[\d.]+, .*dsn=2\.0\.0, status=sent", log), log[-2000:]
    assert re.search(q + r": removed", log), log[-2000:]


def test_received_for_never_names_another_recipient(server):
    deliver(server, rcpts=("alice@example.test", "carol@example.test"))
    for user in ("alice", "carol"):
        (raw,) = server.wait_delivered(user, 1)
        m = RECEIVED_RE.match(Delivered(raw).received or "")
        assert m, Delivered(raw).received
        # naming another recipient would disclose it (Bcc)
        assert m.group("for") in (None, "%s@example.test" % user), (user, m.group("for"))


def test_return_path_and_delivered_to(server):
    deliver(server, sender="Sender.Name@Example.ORG")
    (raw,) = server.wait_delivered("alice", 1)
    lines = raw.split(b"\n")
    assert lines[0] == b"Return-Path: <Sender.Name@Example.ORG>", lines[0]
    assert lines[1] == b"Delivered-To: alice@example.test", lines[1]
    assert lines[2].startswith(b"Received: from "), lines[2]


def test_return_path_null_sender(server):
    deliver(server, sender="")
    (raw,) = server.wait_delivered("alice", 1)
    assert raw.split(b"\n")[0] == b"Return-Path: <>"


def test_delivered_to_per_recipient(server):
    deliver(server, rcpts=("alice@example.test", "carol@example.test"))
    (a,) = server.wait_delivered("alice", 1)
    (c,) = server.wait_delivered("carol", 1)
    assert Delivered(a).delivered_to == b"alice@example.test"
    assert Delivered(c).delivered_to == b"carol@example.test"


def test_maildir_lf_line_ends(server):
    deliver(server, content=b"Subject: crlf\r\n\r\na\r\nb\r\n")
    (raw,) = server.wait_delivered("alice", 1)
    assert b"\r" not in raw


def test_maildir_layout(server):
    deliver(server)
    server.wait_delivered("alice", 1)
    md = server.maildir_path("alice")
    for sub in ("new", "cur", "tmp"):
        assert os.path.isdir(os.path.join(md, sub)), sub
    assert os.listdir(os.path.join(md, "tmp")) == []
    names = os.listdir(os.path.join(md, "new"))
    assert len(names) == 1 and ":" not in names[0], names


# HELO arguments that try to add a header line or smuggle controls into the trace header.
INJECTIONS = [
    b"HELO evil\rX-Injected: yes",
    b"HELO evil\nX-Injected: yes",
    b"EHLO evil\x0bX-Injected: yes",
    b"EHLO evil\x00X-Injected: yes",
    b"EHLO evil\x1b[31mX-Injected: yes",
    b"EHLO evil\xc2\x85X-Injected: yes",
    b"EHLO evil\xe2\x80\xa8X-Injected: yes",
    b"EHLO evil\tX-Injected: yes",
    b"EHLO evil)\r\nX-Injected: yes",
    b"EHLO " + b"h" * 400 + b"X-Injected: yes",
    b"EHLO evil (spoofed [10.0.0.1]) by trusted.example",
]


@pytest.mark.parametrize("helo", INJECTIONS, ids=range(len(INJECTIONS)))
def test_helo_injection(server, helo):
    msg = make_message("inject")
    with server.connect() as c:
        # A bare LF or CRLF inside splits the line: the tail is a command of its own. The
        # NOOP's reply comes after every reply to the line.
        c.send(helo + b"\r\nNOOP\r\n")
        replies = [c.read_reply()]
        for _ in range(10):
            r = c.read_reply()
            if r.code == 250 and r.enh == "2.0.0" and len(r.lines) == 1:
                break
            replies.append(r)
        else:
            raise AssertionError("no reply to NOOP: %r" % replies)
        if replies[0].code != 250:
            # refused: greet properly so the transaction still runs
            c.ehlo("fallback.client.test")
        r = c.mail("a@example.org", ["alice@example.test"], msg)
        assert r.code == 250, r
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.received is not None
    # the trace header is one header field: folded lines only, printable ASCII only
    assert d.received_raw.startswith(b"Received: "), d.received_raw
    for line in d.received_raw.split(b"\n")[1:]:
        assert line[:1] in (b" ", b"\t"), "Received header gained a line of its own: %r" % d.received_raw
    assert all(0x20 <= b < 0x7f or b in (0x09, 0x0a) for b in d.received_raw), "control or 8-bit octet in Received: %r" % d.received_raw
    assert b"X-Injected" not in raw.split(b"\n\n", 1)[0].replace(d.received_raw, b""), "injected header line: %r" % raw[:600]
    # nothing but the trace was added
    assert d.content == crlf_to_lf(msg)


def test_helo_with_bracketed_ip_literal(server):
    deliver(server, helo_line=b"EHLO [127.0.0.1]")
    (raw,) = server.wait_delivered("alice", 1)
    m = RECEIVED_RE.match(Delivered(raw).received or "")
    assert m and m.group("helo") == "[127.0.0.1]", Delivered(raw).received


def test_client_headers_kept_below_trace(server):
    content = (b"Return-Path: <forged@example.org>\r\nDelivered-To: someone@example.org\r\n"
               b"Received: from forged.example by fake.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"Subject: forged\r\n\r\nbody\r\n")
    deliver(server, content=content)
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.return_path == b"<a@example.org>"
    assert raw.split(b"\n")[0] == b"Return-Path: <a@example.org>"
    assert d.received and "fake.example" not in d.received
    assert d.content == crlf_to_lf(content)


# --------------------------------------------------------------------------- HELO in Received

def received_parse(value):
    """Reads a Received field value the RFC 5322 way (§3.6.7, §3.2.2): returns (tokens,
    comments, date), where tokens are the words, angle-addrs and quoted strings before the
    ';', comments the text of each top-level comment (quoted-pairs resolved) and date what
    follows the ';'."""
    tokens, comments, i, n = [], [], 0, len(value)
    while i < n:
        ch = value[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "(":
            depth, i, text = 1, i + 1, ""
            while depth:
                assert i < n, "unterminated comment in %r" % value
                c = value[i]
                if c == "\\":
                    text, i = text + value[i + 1], i + 2
                    continue
                depth += {"(": 1, ")": -1}.get(c, 0)
                if depth:
                    text += c
                i += 1
            comments.append(text)
        elif ch == '"':
            j = i + 1
            while j < n and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            assert j < n, "unterminated quoted string in %r" % value
            tokens.append(value[i:j + 1])
            i = j + 1
        elif ch == "<":
            j = value.index(">", i)
            tokens.append(value[i:j + 1])
            i = j + 1
        elif ch == ";":
            return tokens, comments, value[i + 1:].strip()
        elif ch == ")":
            raise AssertionError("')' outside a comment in %r" % value)
        else:
            j = i
            while j < n and value[j] not in " \t\r\n()\"<;":
                j += 1
            tokens.append(value[i:j])
            i = j
    raise AssertionError("no ';' before the date in %r" % value)


def percent_decode(s):
    return re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), s.encode())


# HELO names tern accepts (any word) that are neither a Domain nor an address literal: each
# could open or close a comment, end the clauses early, fake an address or a quoted string.
BAD_HELOS = [b"a(b)c;d<e>", b"x)(by", b"evil.example)", b"[10.0.0.1]x", b"trusted.example;",
             b'"quoted"', b"back\\slash", b"a\\(b", b"host.example.", b"under_score",
             b"h\xc3\xb6st", b"[192.0.2.256]", b"[x:a)(b]", b"100%", b"<a@b>", b"a,b=c"]


@pytest.mark.parametrize("helo", BAD_HELOS, ids=range(len(BAD_HELOS)))
def test_received_helo_not_a_domain(server, helo):
    """RFC 5321 §4.4: the From-domain is a Domain or an address literal. A HELO name that is
    neither is not written there: the From-domain is the client's address literal, and the
    name is in the comment, percent-encoded, so it cannot end or open anything."""
    qid, _ = deliver(server, helo_line=b"EHLO " + helo)
    (raw,) = server.wait_delivered("alice", 1)
    value = Delivered(raw).received[len("Received:"):]
    tokens, comments, date = received_parse(value)
    assert tokens == ["from", "[127.0.0.1]", "by", HOSTNAME, "with", "ESMTP", "id", qid,
                      "for", "<alice@example.test>"], (value, tokens)
    assert comments[0].startswith("unknown [127.0.0.1] helo="), (value, comments)
    encoded = comments[0][len("unknown [127.0.0.1] helo="):]
    assert re.fullmatch(r"[A-Za-z0-9._:%-]+", encoded), encoded
    assert percent_decode(encoded) == helo, (encoded, helo)
    assert email.utils.parsedate_to_datetime(date).tzinfo is not None, date


GOOD_HELOS = [b"client.test", b"Mixed-Case.Example", b"[127.0.0.1]", b"[IPv6:::1]", b"localhost"]


@pytest.mark.parametrize("helo", GOOD_HELOS, ids=range(len(GOOD_HELOS)))
def test_received_helo_domain_verbatim(server, helo):
    qid, _ = deliver(server, helo_line=b"EHLO " + helo)
    (raw,) = server.wait_delivered("alice", 1)
    value = Delivered(raw).received[len("Received:"):]
    tokens, comments, _ = received_parse(value)
    assert tokens[:2] == ["from", helo.decode()], (value, tokens)
    assert tokens[2:] == ["by", HOSTNAME, "with", "ESMTP", "id", qid, "for", "<alice@example.test>"], tokens
    assert comments[0] == "unknown [127.0.0.1]", comments
