"""Privileges: started as root, `tern serve` binds its ports and reads its keys as root, then
runs the SMTP process (chrooted) and the queue as `user` (tern) and local delivery as
`mail_user` (vmail). Every socket a peer talks to is held only by unprivileged processes."""
import os
import pwd
import socket
import subprocess
import time
import urllib.request

import pytest

from ternlib import MAIL_USER, RUN_USER, SANITIZED, TERN_BIN, free_port, make_message, scaled

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tern only changes user when started as root")


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def processes(server):
    """{name: [pid, ...]} of the server's processes, the supervisor as "supervisor"."""
    out = {"supervisor": [server.proc.pid]}
    for pid in server.descendants():
        try:
            out.setdefault(comm(pid), []).append(pid)
        except OSError:
            pass
    return out


def assert_runs_as(pid, user):
    pw = pwd.getpwnam(user)
    st = status(pid)
    assert st["Uid"].split() == [str(pw.pw_uid)] * 4, (pid, user, st["Uid"])
    assert st["Gid"].split() == [str(pw.pw_gid)] * 4, (pid, user, st["Gid"])
    assert st["Groups"] == "", (pid, user, st["Groups"])
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, (pid, st["CapEff"], st["CapPrm"])


def socket_holders(inode):
    """PIDs with a descriptor on the socket `inode`."""
    want = "socket:[%d]" % inode
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % d)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (d, fd)) == want:
                    pids.append(int(d))
                    break
            except OSError:
                pass
    return pids


def established_inode(local_port, peer_port):
    """The inode of the server side of an established IPv4 TCP connection."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if state == "01" and int(local.split(":")[1], 16) == local_port and \
                    int(remote.split(":")[1], 16) == peer_port:
                return inode
    return None


def test_each_process_runs_as_its_user(server):
    r, _ = server.send_one(make_message("privileges"))
    assert r.code == 250, r
    server.wait_delivered("alice", 1)
    procs = processes(server)
    for name in ("tern-smtpd", "tern-qmgr", "tern-local"):
        assert len(procs.get(name, [])) == 1, procs
    assert status(server.proc.pid)["Uid"].split()[1] == "0"  # the supervisor keeps root to reload keys
    assert_runs_as(procs["tern-smtpd"][0], RUN_USER)
    assert_runs_as(procs["tern-qmgr"][0], RUN_USER)
    assert_runs_as(procs["tern-local"][0], MAIL_USER)


@pytest.mark.skipif(SANITIZED, reason="sanitizer builds skip the chroot (LeakSanitizer reads /proc)")
def test_smtp_process_is_chrooted_to_an_empty_directory(server):
    pid = processes(server)["tern-smtpd"][0]
    root = os.readlink("/proc/%d/root" % pid)
    assert root != "/", root
    assert os.listdir("/proc/%d/root/" % pid) == []
    st = os.stat("/proc/%d/root/" % pid)
    assert st.st_uid == 0 and not st.st_mode & 0o222, oct(st.st_mode)


def test_smtp_session_is_held_only_by_the_unprivileged_smtp_process(server):
    with server.connect() as c:
        c.ehlo()
        peer_port = c.sock.getsockname()[1]
        inode = established_inode(server.port, peer_port)
        assert inode, "no established connection found in /proc/net/tcp"
        holders = socket_holders(inode)
        assert holders, "nobody holds the accepted socket"
        for pid in holders:
            assert comm(pid) == "tern-smtpd", (pid, comm(pid))
            assert_runs_as(pid, RUN_USER)
        c.cmd("QUIT")


def test_metrics_scrape_is_served_by_the_unprivileged_queue(tern_factory):
    mport = free_port()
    server = tern_factory(metrics_listen="127.0.0.1:%d" % mport)
    s = socket.create_connection(("127.0.0.1", mport), timeout=scaled(5))
    try:
        # The request is not sent yet: the connection stays open while we look at it.
        deadline = time.monotonic() + scaled(5)
        holders = []
        while time.monotonic() < deadline and not holders:
            inode = established_inode(mport, s.getsockname()[1])
            holders = socket_holders(inode) if inode else []
            time.sleep(0.05)
        assert holders, "no process holds the accepted metrics connection"
        for pid in holders:
            assert comm(pid) == "tern-qmgr", (pid, comm(pid))
            assert_runs_as(pid, RUN_USER)
    finally:
        s.close()
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=scaled(5)).read()
    assert b"tern_build_info" in body


def test_files_belong_to_their_users(server):
    r, _ = server.send_one(make_message("ownership"), rcpts=("alice@example.test", "carol@example.test"))
    assert r.code == 250, r
    server.wait_delivered("alice", 1)
    server.wait_delivered("carol", 1)
    tern, vmail = pwd.getpwnam(RUN_USER), pwd.getpwnam(MAIL_USER)
    n = 0
    for root, dirs, files in os.walk(server.mail_root):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            assert (st.st_uid, st.st_gid) == (vmail.pw_uid, vmail.pw_gid), os.path.join(root, name)
            n += 1
    assert n >= 10  # domain, user, Maildir, cur/new/tmp, two messages
    for root, dirs, files in os.walk(server.spool):
        if os.path.basename(root) == "empty":  # the smtp process's chroot: root's
            continue
        for name in dirs + files:
            path = os.path.join(root, name)
            if name == "empty":
                assert os.lstat(path).st_uid == 0
                continue
            assert os.lstat(path).st_uid == tern.pw_uid, path
    # Others may pass through the spool (to drop into pickup/, `tern sendmail`), not list it.
    st = os.stat(server.spool)
    assert st.st_uid == tern.pw_uid and st.st_mode & 0o777 == 0o711, oct(st.st_mode)
    st = os.stat(os.path.join(server.spool, "pickup"))
    assert st.st_uid == tern.pw_uid and st.st_mode & 0o7777 == 0o1733, oct(st.st_mode)
    ctl = os.stat(os.path.join(server.spool, "control"))
    assert ctl.st_uid == tern.pw_uid and ctl.st_mode & 0o777 == 0o660, oct(ctl.st_mode)


def test_spool_left_by_root_is_given_to_the_daemon_user(server, tmp_path):
    """A spool written by root (an older install, a restore from backup) keeps working; the
    walk that gives it to the daemon's user follows no link out of the spool."""
    server.stop()
    for root, dirs, files in os.walk(server.spool):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), 0, 0)
    os.chown(server.spool, 0, 0)
    stray = os.path.join(server.spool, "restored-by-root")
    with open(stray, "w") as f:
        f.write("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text("root's")
    os.symlink(outside, os.path.join(server.spool, "dir-link"))
    os.symlink(secret, os.path.join(server.spool, "file-link"))
    os.link(secret, os.path.join(server.spool, "hard-link"))
    server.start()
    tern = pwd.getpwnam(RUN_USER)
    assert os.stat(stray).st_uid == tern.pw_uid
    assert os.stat(server.spool).st_uid == tern.pw_uid
    for p in (outside, secret):
        assert os.stat(p).st_uid == 0, "%s was given away through a link" % p
    assert os.stat(os.path.join(server.spool, "empty")).st_uid == 0
    r, _ = server.send_one(make_message("after-chown"))
    assert r.code == 250, r
    server.wait_delivered("alice", 1)


@pytest.mark.parametrize("key,value", [("user", "no-such-user-tern"), ("mail_user", "no-such-user-vmail"),
                                       ("user", "root"), ("mail_user", "root")])
def test_missing_or_root_user_stops_start_with_a_clear_error(tern_factory, key, value):
    server = tern_factory(start=False, **{key: value})
    p = subprocess.run([TERN_BIN, "serve", "-c", server.config_path], cwd=server.base,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(20))
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "no unprivileged user '%s'" % value in err, err
    assert err.count("no unprivileged user") == 1, err  # refused once, not by restarting children


def test_delivery_process_killed_mid_delivery_delivers_once(tern_factory):
    """The delivery process dies while the queue waits for it: the message stays queued and,
    after the restart, is delivered exactly once."""
    import signal
    server = tern_factory(retry_min=1, retry_max=2)
    local = processes(server)["tern-local"][0]
    os.kill(local, signal.SIGSTOP)
    try:
        r, qid = server.send_one(make_message("killed-mid-delivery"))
        assert r.code == 250, r
        # The queue has handed it to the stopped process and waits for it.
        server.wait_queue_state(qid, "being delivered")
        assert server.maildir("alice") == []
    finally:
        os.kill(local, signal.SIGKILL)
    server.wait_log(r"restarting the smtp, queue and delivery processes", timeout=scaled(20))
    server.wait_delivered("alice", 1, timeout=20)
    server.wait_log(r"%s: removed" % qid)  # nothing is delivered after this
    assert len(server.maildir("alice")) == 1


def test_missing_mail_root_is_created_for_the_mail_user(tern_factory):
    server = tern_factory(start=False)
    root = os.path.join(server.base, "fresh", "vhosts")
    with open(server.config_path, "a") as f:
        f.write("maildir = %s/%%d/%%u/Maildir\n" % root)
    server.mail_root = root
    server.start()
    st = os.stat(root)
    vmail = pwd.getpwnam(MAIL_USER)
    assert (st.st_uid, st.st_mode & 0o777) == (vmail.pw_uid, 0o700), oct(st.st_mode)
    assert os.stat(os.path.dirname(root)).st_mode & 0o755 == 0o755  # its parent: reachable
    r, _ = server.send_one(make_message("fresh-root"))
    assert r.code == 250, r
    server.wait_delivered("alice", 1)


@pytest.mark.parametrize("what", ["spool", "mail root"])
def test_unreachable_directory_is_refused_with_advice(tern_factory, what):
    server = tern_factory(start=False)
    locked = os.path.join(server.base, "locked")
    os.mkdir(locked, 0o700)
    with open(server.config_path, "a") as f:
        if what == "spool":
            f.write("spool_dir = %s/spool\n" % locked)
        else:
            f.write("maildir = %s/mail/%%d/%%u/Maildir\n" % locked)
    p = subprocess.run([TERN_BIN, "serve", "-c", server.config_path], cwd=server.base,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(20))
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "the %s is out of reach of the user" % what in err, err
    assert "%s is not searchable" % locked in err and "chmod o+x" in err, err


def test_users_file_created_by_root_is_readable_by_the_daemon_group(tern_factory):
    import grp
    server = tern_factory(start=False)
    os.mkdir(os.path.join(server.base, "etc-tern"), 0o755)
    path = os.path.join(server.base, "etc-tern", "users")
    with open(server.config_path, "a") as f:
        f.write("users_file = %s\n" % path)
    p = subprocess.run([TERN_BIN, "user", "add", "zoe", "--stdin", "-c", server.config_path],
                       input=b"zoe-Pw-1x!\n", capture_output=True, timeout=scaled(20))
    assert p.returncode == 0, p.stderr
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, grp.getgrnam(RUN_USER).gr_gid, 0o640)
    # A second change keeps owner and group.
    p = subprocess.run([TERN_BIN, "user", "add", "yann", "--stdin", "-c", server.config_path],
                       input=b"yann-Pw-2y!\n", capture_output=True, timeout=scaled(20))
    assert p.returncode == 0, p.stderr
    assert os.stat(path).st_gid == grp.getgrnam(RUN_USER).gr_gid
