"""Durability: `250` after DATA means the message survives a crash; nothing the client did
not finish is ever delivered; nothing is delivered twice or in part."""
import collections
import random
import re
import threading
import time

import pytest

from ternlib import Delivered, SMTPClient, crlf_to_lf, data_payload, dot_stuff, make_message, parse_qid, scaled


def open_data(server, rcpt="alice@example.test"):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)
    return c


def sync_message(server):
    r, _ = server.send_one(make_message("sync-message", to="carol@example.test"), rcpts=("carol@example.test",))
    assert r.code == 250, r
    server.wait_delivered("carol", 1)
    server.wait_queue_idle()


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("tail", [b"", b"\r\n", b"\r\n.", b"\r\n.\r", b"\r\n..\r\n"])
def test_disconnect_mid_data_delivers_nothing(server, how, tail):
    c = open_data(server)
    c.send(b"Subject: abandoned\r\n\r\n" + b"partial content\r\n" * 100 + b"no end" + tail)
    c.wait_server_read()  # the server has it all before the connection ends
    if how == "rst":
        c.abort()
    else:
        c.close()
    sync_message(server)
    assert server.maildir("alice") == [], "a message whose DATA never ended was delivered"
    assert server.alive()


def test_disconnect_mid_bdat_delivers_nothing(server):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.send(b"BDAT 20\r\nSubject: x\r\n\r\nbody\r\n")
    assert c.read_reply().code == 250
    c.send(b"BDAT 100 LAST\r\nonly part of the last chunk")
    c.wait_server_read()
    c.abort()
    sync_message(server)
    assert server.maildir("alice") == []


def test_disconnect_after_final_dot(server):
    """The client sent the final dot and vanished before the reply: the message may be
    delivered (the commit was in flight) but only whole and only once."""
    msg = make_message("vanished-after-dot", "x\r\n" * 100)
    c = open_data(server)
    c.send(data_payload(msg))
    c.abort()
    sync_message(server)
    got = server.maildir("alice")
    assert len(got) <= 1
    if got:
        assert Delivered(got[0]).content == crlf_to_lf(msg)


def test_kill9_after_250_then_restart(server):
    """Messages acknowledged just before a crash are delivered after the restart, once each."""
    msgs = [make_message("ack-then-crash-%d" % i, ("line %d\r\n" % i) * 30, msgid="<ack-crash-%d@client.test>" % i) for i in range(20)]
    with server.connect() as c:
        c.ehlo()
        payload = b"".join(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" + data_payload(m) for m in msgs)
        c.send(payload)
        rs = c.read_replies(80)
        assert [r.code for r in rs] == [250, 250, 354, 250] * 20, rs
        server.kill9()
    server.start()
    server.wait_delivered("alice", 20, timeout=30)
    server.wait_queue_idle()
    got = server.maildir("alice")
    ids = collections.Counter(Delivered(m).header("Message-ID") for m in got)
    assert len(got) == 20 and all(v == 1 for v in ids.values()), ids
    by_id = {Delivered(m).header("Message-ID"): Delivered(m).content for m in got}
    for i, m in enumerate(msgs):
        assert by_id["<ack-crash-%d@client.test>" % i] == crlf_to_lf(m)


def test_restart_with_sigterm_keeps_queue(server):
    """A clean stop right after acceptance loses nothing either."""
    msgs = [make_message("term-%d" % i, msgid="<term-%d@client.test>" % i) for i in range(10)]
    with server.connect() as c:
        c.ehlo()
        for m in msgs:
            assert c.mail("a@example.org", ["alice@example.test"], m).code == 250
    server.stop()
    server.start()
    server.wait_delivered("alice", 10, timeout=30)
    server.wait_queue_idle()
    ids = collections.Counter(Delivered(m).header("Message-ID") for m in server.maildir("alice"))
    assert sorted(ids) == sorted("<term-%d@client.test>" % i for i in range(10)) and set(ids.values()) == {1}, ids


class Record:
    __slots__ = ("num", "content", "dot_sent", "got250", "abandoned", "qid")

    def __init__(self, num, content):
        self.num, self.content = num, content
        self.dot_sent = self.got250 = self.abandoned = False
        self.qid = None


def body_for(num, rnd):
    size = rnd.choice([1, 3, 10, 40, 800])  # 800 lines ~ 80 KB: crosses buffer boundaries
    line = ("msg %08d " % num) + "z" * 80
    return "".join("%s %d\r\n" % (line, k) for k in range(size))


def client_thread(server, tid, rnd_seed, records, lock, stop, base):
    rnd = random.Random(rnd_seed)
    k = 0
    while not stop.is_set():
        try:
            c = SMTPClient(server.host, server.port, timeout=scaled(20))
        except OSError:
            return
        try:
            if c.greeting.code != 220:
                return
            c.ehlo("t%d.client.test" % tid)
            for _ in range(rnd.randrange(1, 6)):
                if stop.is_set():
                    return
                num = base + tid * 10000 + k
                k += 1
                content = make_message("crash-%08d" % num, body_for(num, rnd), msgid="<crash-%08d@client.test>" % num)
                rec = Record(num, content)
                with lock:
                    records[num] = rec
                if c.cmd("MAIL FROM:<t%d@example.org>" % tid).code != 250:
                    return
                if c.cmd("RCPT TO:<alice@example.test>").code != 250:
                    return
                if c.cmd("DATA").code != 354:
                    return
                stuffed = dot_stuff(content)
                cut = rnd.randrange(len(stuffed))
                c.send(stuffed[:cut])
                if rnd.random() < 0.1:
                    # the client gives up in the middle: this message must never appear
                    rec.abandoned = True
                    c.abort()
                    break
                c.send(stuffed[cut:])
                rec.dot_sent = True  # from here on the server may have the whole message
                c.send(b".\r\n")
                r = c.read_reply()
                if r.code == 250:
                    rec.qid = parse_qid(r)
                    rec.got250 = True
                else:
                    return
        except (OSError, Exception):
            return
        finally:
            c.close()


def test_kill9_under_load(server):
    rounds = 3
    records = {}
    lock = threading.Lock()
    in_flight_total = 0
    for rnd_no in range(rounds):
        stop = threading.Event()
        threads = [threading.Thread(target=client_thread, args=(server, t, rnd_no * 100 + t, records, lock, stop, (rnd_no + 1) * 1000000), daemon=True)
                   for t in range(8)]
        for t in threads:
            t.start()
        # let some messages be acknowledged, then crash at a random moment
        deadline = time.monotonic() + scaled(30)
        while sum(r.got250 for r in list(records.values())) < 10 * (rnd_no + 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(random.uniform(0.05, 1.0) * (2 if rnd_no else 1))
        server.kill9()
        stop.set()
        for t in threads:
            t.join(scaled(30))
        assert not any(t.is_alive() for t in threads), "client threads hung after the crash"
        server.start()

        acked = {n for n, r in records.items() if r.got250}
        assert acked, "no message was acknowledged before the crash in round %d" % rnd_no
        # wait until every acknowledged message is delivered (the queue drains), bounded
        deadline = time.monotonic() + scaled(60)
        while True:
            got = [Delivered(m) for m in server.maildir("alice")]
            nums = {int(re.search(r"crash-(\d+)", d.header("Subject") or "crash-0").group(1)) for d in got}
            if acked <= nums:
                break
            if time.monotonic() > deadline:
                missing = sorted(acked - nums)
                raise AssertionError("round %d: %d acknowledged message(s) never delivered after restart, e.g. %s (queue ids %s); log tail:\n%s" % (
                    rnd_no, len(missing), missing[:5], [records[n].qid for n in missing[:5]], server.log_tail()))
            time.sleep(0.1)
        server.wait_queue_idle()  # duplicates from a redelivery would show up now

        got = [Delivered(m) for m in server.maildir("alice")]
        counts = collections.Counter()
        qids_of = collections.defaultdict(set)
        for d in got:
            subj = d.header("Subject") or ""
            m = re.match(r"crash-(\d+)$", subj)
            assert m, "delivered message with no known subject: %r" % d.content[:200]
            num = int(m.group(1))
            counts[num] += 1
            q = re.search(r" id (\S+)", d.received or "")
            if q:
                qids_of[num].add(q.group(1).rstrip(";"))
            rec = records.get(num)
            assert rec is not None, "delivered message %d was never sent" % num
            assert d.content == crlf_to_lf(rec.content), "message %d delivered damaged or partial (%d of %d octets)" % (num, len(d.content), len(crlf_to_lf(rec.content)))
            assert not rec.abandoned, "message %d was abandoned mid-DATA but delivered" % num
            assert rec.dot_sent, "message %d delivered although its final dot was never sent" % num
        dups = {n: c for n, c in counts.items() if c > 1}
        if dups:
            log = server.log().splitlines()
            detail = []
            for n in sorted(dups, key=lambda n: not records[n].got250)[:3]:
                rec = records[n]
                detail.append("message %d x%d (got 250: %s, queue id(s) %s); log:\n  %s" % (
                    n, dups[n], rec.got250, sorted(qids_of[n]),
                    "\n  ".join(l for l in log if any(q in l for q in qids_of[n]))))
            acked_dups = [n for n in dups if records[n].got250]
            raise AssertionError("round %d: %d message(s) delivered more than once (%d of them acknowledged with 250, %d in-flight commits): %s\n%s" % (
                rnd_no, len(dups), len(acked_dups), len(dups) - len(acked_dups), dups, "\n".join(detail)))
        in_flight = [n for n in counts if not records[n].got250]
        in_flight_total += len(in_flight)
        print("round %d: %d acknowledged, %d delivered in total, %d in-flight commits delivered without a 250" % (
            rnd_no, len(acked), len(counts), len(in_flight)))
    print("in-flight (dot sent, no 250, delivered): %d over %d rounds" % (in_flight_total, rounds))


def test_kill9_idle_restart_no_spurious_delivery(server):
    """A crash with nothing queued delivers nothing after restart."""
    r, _ = server.send_one(make_message("before-idle-crash"))
    assert r.code == 250
    server.wait_delivered("alice", 1)
    server.wait_queue_idle()
    server.kill9()
    server.start()
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1
    assert len(server.all_messages()) == 1
