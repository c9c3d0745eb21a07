"""End to end with swaks and curl, the tools the README shows."""
import shutil
import subprocess

import pytest

from ternlib import Delivered, scaled

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


def swaks(server, *args):
    cmd = ["swaks", "--server", "%s:%d" % (server.host, server.port), "--helo", "swaks.client.test",
           "--timeout", str(int(scaled(20)))] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(60))
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def test_swaks_basic(server):
    rc, out = swaks(server, "--from", "me@example.org", "--to", "alice@example.test",
                    "--header", "Subject: swaks-basic", "--body", "hello from swaks")
    assert rc == 0, out
    assert "250 2.0.0" in out and "queued as" in out, out
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.header("Subject") == "swaks-basic"
    assert b"hello from swaks" in d.content
    assert d.return_path == b"<me@example.org>"


def test_swaks_pipeline(server):
    rc, out = swaks(server, "--pipeline", "--from", "me@example.org", "--to", "alice@example.test,carol@example.test",
                    "--header", "Subject: swaks-pipeline")
    assert rc == 0, out
    server.wait_delivered("alice", 1)
    server.wait_delivered("carol", 1)
    server.wait_queue_idle()
    assert len(server.all_messages()) == 2


def test_swaks_data_file(server, tmp_path):
    # no final newline: swaks adds one CRLF of its own before the final dot
    data = ("From: me@example.org\nTo: alice@example.test\nSubject: swaks-data-file\n\n"
            "first line\n.leading dot\n..two dots\n.\nlast line")
    f = tmp_path / "msg.txt"
    f.write_text(data)
    rc, out = swaks(server, "--from", "me@example.org", "--to", "alice@example.test", "--data", "@" + str(f))
    assert rc == 0, out
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == data.encode() + b"\n"


def test_swaks_refused_recipient(server):
    rc, out = swaks(server, "--from", "me@example.org", "--to", "nosuch@example.test")
    assert rc != 0, out
    assert "550 5.1.1" in out, out
    server.wait_queue_idle()
    assert server.all_messages() == []


def test_swaks_relay_refused(server):
    rc, out = swaks(server, "--from", "me@example.org", "--to", "someone@example.org")
    assert rc != 0, out
    assert "554 5.7.1" in out, out


def test_swaks_quit_after_rcpt_delivers_nothing(server):
    rc, out = swaks(server, "--from", "me@example.org", "--to", "alice@example.test", "--quit-after", "RCPT")
    assert rc == 0, out
    server.wait_queue_idle()
    assert server.all_messages() == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_upload(server, tmp_path):
    f = tmp_path / "m.txt"
    f.write_bytes(b"Subject: curl-upload\r\n\r\nHello from curl.\r\n.dot line\r\n")
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(scaled(30))), "smtp://%s:%d" % (server.host, server.port),
                        "--mail-from", "me@example.org", "--mail-rcpt", "alice@example.test", "-T", str(f)],
                       capture_output=True, timeout=scaled(60))
    assert p.returncode == 0, p.stderr
    (raw,) = server.wait_delivered("alice", 1)
    assert Delivered(raw).content == b"Subject: curl-upload\n\nHello from curl.\n.dot line\n"
