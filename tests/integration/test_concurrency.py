"""Many sessions at once: every message delivered exactly once, in bounded time."""
import collections
import threading
import time

from ternlib import Delivered, SMTPClient, data_payload, make_message, parse_qid, scaled

USERS = ["alice", "carol", "dave", "erin", "frank"]


def run_threads(n, target):
    errors = []
    results = [None] * n

    def wrap(i):
        try:
            results[i] = target(i)
        except BaseException as e:  # collected and reported by the test
            errors.append("session %d: %r" % (i, e))

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + scaled(120)
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    return results, errors, alive


def test_200_concurrent_sessions(tern_factory):
    n = 200
    server = tern_factory(sessions_per_ip=400, sessions_max=2000)
    barrier = threading.Barrier(n, timeout=scaled(60))

    def session(i):
        c = SMTPClient(server.host, server.port, timeout=scaled(60))
        try:
            assert c.greeting.code == 220, c.greeting
            c.ehlo("c%d.client.test" % i)
            # all 200 sessions are open at the same time before any sends its message
            barrier.wait()
            user = USERS[i % len(USERS)]
            msg = make_message("concurrent-%03d" % i, ("payload %d\r\n" % i) * 50, msgid="<concurrent-%03d@client.test>" % i)
            r = c.mail("s%d@example.org" % i, ["%s@example.test" % user], msg)
            assert r.code == 250, r
            c.cmd("QUIT")
            return parse_qid(r)
        finally:
            c.close()

    t0 = time.monotonic()
    qids, errors, alive = run_threads(n, session)
    elapsed = time.monotonic() - t0
    assert alive == 0, "%d sessions still running after %.0fs" % (alive, elapsed)
    assert not errors, "%d sessions failed: %s" % (len(errors), errors[:5])
    assert len(set(qids)) == n, "queue ids are not unique"

    msgs = server.wait_total(n, timeout=60)
    server.wait_queue_idle()
    msgs = server.all_messages()
    ids = collections.Counter(Delivered(raw).header("Message-ID") for _, raw in msgs)
    dups = [k for k, v in ids.items() if v > 1]
    assert not dups, "delivered more than once: %s" % dups[:10]
    assert len(msgs) == n, "%d messages delivered, expected %d" % (len(msgs), n)
    for i in range(n):
        assert ids["<concurrent-%03d@client.test>" % i] == 1, i
    for path, raw in msgs:
        d = Delivered(raw)
        i = int(d.header("Subject").split("-")[1])
        assert "/%s/Maildir/new/" % USERS[i % len(USERS)] in path, (i, path)
        assert d.content.endswith(("payload %d\n" % i).encode() * 50), "message %d body damaged" % i
    assert elapsed < scaled(90), "200 sessions took %.1fs" % elapsed


def test_concurrent_sessions_each_several_messages(tern_factory):
    n, per = 40, 5
    server = tern_factory(sessions_per_ip=400)

    def session(i):
        with SMTPClient(server.host, server.port, timeout=scaled(60)) as c:
            c.ehlo()
            payload = b""
            for k in range(per):
                payload += (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" +
                            data_payload(make_message("multi-%d-%d" % (i, k), msgid="<multi-%d-%d@client.test>" % (i, k))))
            c.send(payload)
            rs = c.read_replies(4 * per)
            assert [r.code for r in rs] == [250, 250, 354, 250] * per, rs
        return True

    results, errors, alive = run_threads(n, session)
    assert alive == 0 and not errors, errors[:5]
    server.wait_delivered("alice", n * per, timeout=60)
    server.wait_queue_idle()
    msgs = server.maildir("alice")
    ids = collections.Counter(Delivered(m).header("Message-ID") for m in msgs)
    assert len(msgs) == n * per and len(ids) == n * per, "%d delivered, %d distinct" % (len(msgs), len(ids))


def test_idle_sessions_do_not_block_work(tern_factory):
    """100 idle connections open; a real session still gets through promptly."""
    server = tern_factory(sessions_per_ip=400)
    idle = []
    try:
        for _ in range(100):
            idle.append(SMTPClient(server.host, server.port, timeout=scaled(30)))
        t0 = time.monotonic()
        r, _ = server.send_one(make_message("through-the-crowd"))
        assert r.code == 250, r
        assert time.monotonic() - t0 < scaled(10)
        server.wait_delivered("alice", 1)
        for c in idle[:10]:
            assert c.cmd("NOOP").code == 250
    finally:
        for c in idle:
            c.close()


def test_slow_client_does_not_block_others(tern_factory):
    """A client trickling DATA one octet at a time does not hold up other sessions."""
    server = tern_factory()
    stop = threading.Event()
    slow = server.connect()
    slow.ehlo()
    slow.expect("MAIL FROM:<slow@example.org>", 250)
    slow.expect("RCPT TO:<carol@example.test>", 250)
    slow.expect("DATA", 354)

    def trickle():
        # One octet every 10 ms until the fast sessions are done (at most 30000 octets, a
        # line end every 500 keeps the lines legal).
        slow.send(b"Subject: slow\r\n\r\n")
        for i in range(30000):
            if stop.is_set():
                return
            slow.send(b"\r\n" if i % 500 == 499 else b"s")
            time.sleep(0.01)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        for i in range(5):
            r, _ = server.send_one(make_message("fast-%d" % i))
            assert r.code == 250
        server.wait_delivered("alice", 5)
        assert t.is_alive(), "the slow client finished before the others were done"
    finally:
        stop.set()
        t.join(5)
        slow.send(b"\r\n.\r\n")
        assert slow.read_reply().code == 250
        slow.close()
    server.wait_delivered("carol", 1)


def _open_from(server, source, n):
    """n sessions from `source`, each greeted with 220."""
    out = []
    for _ in range(n):
        c = SMTPClient(server.host, server.port, source=source, timeout=scaled(15))
        out.append(c)
        assert c.greeting.code == 220, "%s: %s" % (source, c.greeting)
    return out


def _refused(server, source, text):
    with SMTPClient(server.host, server.port, source=source, timeout=scaled(15)) as c:
        assert c.greeting.code == 421 and c.greeting.enh == "4.7.0", c.greeting
        assert text in c.greeting.text, c.greeting
        assert c.wait_closed()


def test_session_counts_per_address_exact_and_released(tern_factory):
    """The per-address count (a hash map since the flood fix) is exact: the limit admits
    exactly sessions_per_ip from one address, other addresses are counted apart, and a
    closed session (also a refused one) gives its place back, round after round."""
    server = tern_factory(sessions_per_ip=5, sessions_max=12)
    per_ip = "too many connections from your address"
    disconnects = 0
    for rnd in range(3):
        a = _open_from(server, "127.0.0.2", 5)
        _refused(server, "127.0.0.2", per_ip)
        b = _open_from(server, "127.0.0.3", 5)
        _refused(server, "127.0.0.3", per_ip)
        # 10 open: two more from a third address, then sessions_max refuses.
        c = _open_from(server, "127.0.0.4", 2)
        _refused(server, "127.0.0.4", "too many connections")
        for s in a + b + c:
            s.close()
        # 12 sessions plus the 3 refused ones end; only then is the count read again.
        disconnects += 15
        server.wait_log(r"disconnect from unknown\[127\.0\.0\.[234]\]", timeout=20, count=disconnects)
    # Back to nothing: an address may open its full share again.
    for s in _open_from(server, "127.0.0.2", 5):
        s.close()
