#!/usr/bin/python3
"""tern vs Postfix: acceptance and delivery rates under smtp-source load.

Starts a private Postfix instance (Debian's postfix binaries, its own config,
queue, data and mail directories in a temporary directory, a loopback port;
the system instance is never touched) and a tern daemon, both with durable
queues and both delivering into a Maildir (Postfix through virtual(8)). Drives
each with Postfix's smtp-source at several session counts and message sizes,
interleaving the two servers so that machine load affects both alike, and
prints the median messages/s of acceptance and of delivery for each, and the
ratio tern/Postfix. See bench/README.md.

Every wait is bounded in time; every loop is bounded in count.
"""

import argparse
import json
import os
import platform
import pwd
import grp
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZES = {"4K": 4096, "100K": 102400}
SENDER = "sender@bench.test"
RECIPIENT = "user@bench.test"
MAILBOX_USER = "user"
HELO_NAME = "client.bench.test"
POLL_S = 0.05
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 30.0
# The goal: tern accepts >= 2x Postfix's rate at 16 sessions, 4 KB.
GOAL = ("4K", 16, 2.0)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def free_ports(n):
    """Picks n distinct free loopback ports by binding port 0; the sockets
    are held until all are picked so the same port is not returned twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, timeout, alive=None):
    """Waits until 127.0.0.1:port accepts a connection; alive() (optional)
    returning False ends the wait early (the server died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_accepts(port):
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.1)
    return False


def run_checked(argv, timeout, what, stdin_text=None):
    """Runs argv (stdin_text, if any, on its standard input); returns its
    output, or raises BenchError when it fails or times out."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, input=stdin_text)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what}: timed out after {timeout}s: {shlex.join(argv)}") from e
    if p.returncode != 0:
        raise BenchError(f"{what} failed ({p.returncode}): {shlex.join(argv)}\n{p.stdout}")
    return p.stdout


def count_files(path, limit=10_000_000):
    """Regular files (any depth) under path; 0 if it does not exist."""
    n = 0
    for _root, _dirs, files in os.walk(path):
        n += len(files)
        if n >= limit:
            break
    return n


def count_entries(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def empty_maildir(maildir):
    """Removes every message of a Maildir, keeping its directories."""
    for sub in ("new", "cur", "tmp"):
        d = os.path.join(maildir, sub)
        try:
            with os.scandir(d) as it:
                names = [e.name for e in it]
        except FileNotFoundError:
            continue
        for name in names:
            os.unlink(os.path.join(d, name))


def tail(path, nlines=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-nlines:])


def spawn_daemon(name, argv, port, cwd, log_path, err_path=None):
    """Starts a daemon in a session of its own (stop it with stop_group),
    its output appended to log_path (stderr to err_path, if given), and
    waits until 127.0.0.1:port accepts. Returns its Popen; raises
    BenchError with the end of its output when it exits or never listens."""
    with open(log_path, "ab") as out, open(err_path or log_path, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, cwd=cwd)
    if not wait_port(port, START_TIMEOUT_S, lambda: proc.poll() is None):
        stop_group(proc, name)
        raise BenchError(f"{name}: port {port} not accepting (exit status {proc.poll()})\n"
                         f"{tail(err_path or log_path)}")
    return proc


def stop_group(proc, what):
    """Stops a process started with start_new_session=True: SIGTERM to its
    process group (if it still runs), SIGKILL after STOP_TIMEOUT_S, and
    then SIGKILL to what is left in the group (its children)."""
    steps = [(signal.SIGKILL, "still not reaped")]
    if proc.poll() is None:
        steps.insert(0, (signal.SIGTERM, f"ignored SIGTERM for {STOP_TIMEOUT_S}s: SIGKILL"))
    for sig, late in steps:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"warning: {what} {proc.pid} {late}")


class Postfix:
    """A private Postfix instance: config, queue, data, mail and log all
    under `base`; smtpd on 127.0.0.1:port only."""

    name = "postfix"
    relayhost = ""  # main.cf's relayhost; bench/relay_bench.py sets it

    def __init__(self, base, port, in_flow_delay):
        self.base = base
        self.port = port
        self.in_flow_delay = in_flow_delay
        self.etc = os.path.join(base, "etc")
        self.queue = os.path.join(base, "queue")
        self.data = os.path.join(base, "data")
        self.mail = os.path.join(base, "mail")
        self.maillog = os.path.join(base, "maillog")
        self.maildir = os.path.join(self.mail, MAILBOX_USER, "Maildir")
        self.started = False

    def _postfix(self, *args, timeout=60):
        return run_checked(["postfix", "-c", self.etc, *args], timeout,
                           f"postfix {' '.join(args)}")

    def setup(self):
        try:
            pw = pwd.getpwnam("postfix")
            grp.getgrnam("postdrop")
        except KeyError as e:
            raise BenchError("user 'postfix' or group 'postdrop' missing: "
                             "install Debian's postfix (scripts/deps.sh)") from e
        uid, gid = pw.pw_uid, pw.pw_gid
        for d in (self.etc, self.queue, self.data, self.mail):
            os.makedirs(d, exist_ok=True)
        # Postfix wants the queue directory owned by root; its daemons,
        # running as mail_owner, chdir into it.
        os.chmod(self.queue, 0o755)
        os.chown(self.data, uid, gid)
        os.chmod(self.data, 0o700)
        # virtual(8) creates user/Maildir/{new,cur,tmp} as virtual_uid_maps.
        os.chown(self.mail, uid, gid)
        # postlogd runs unprivileged: give it the file up front.
        with open(self.maillog, "a"):
            pass
        os.chown(self.maillog, uid, gid)
        os.chmod(self.maillog, 0o644)

        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(self.main_cf(uid, gid))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(self.master_cf())
        # `check` creates the queue's subdirectories with their owners.
        self._postfix("check")

    def main_cf(self, uid, gid):
        """main.cf's text; subclasses append their settings."""
        return f"""# Written by tern's bench/bench.py: a private benchmark instance.
compatibility_level = 3.6
config_directory = {self.etc}
queue_directory = {self.queue}
data_directory = {self.data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = $myhostname
mydestination =
local_transport = error:5.1.1 no local delivery in this instance
local_recipient_maps =
alias_maps =
alias_database =
relayhost = {self.relayhost}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no

# Delivery: every recipient at bench.test into one Maildir (trailing slash),
# through virtual(8), as the postfix user.
virtual_mailbox_domains = bench.test
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = static:{MAILBOX_USER}/Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_transport = virtual

# Nothing that would skew the measurement: no restrictions beyond the relay
# check, no DNS or reverse lookups, no per-client rate or connection limits,
# no delays.
smtpd_banner = $myhostname ESMTP
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_recipient_restrictions =
smtpd_data_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_dns_support_level = disabled
default_process_limit = 200
# in_flow_delay pauses smtpd when mail arrives faster than it is
# delivered; 0 lets Postfix accept at its full rate (see bench/README.md).
in_flow_delay = {self.in_flow_delay}

# Log into a file of our own (postlogd), never the system log.
maillog_file = {self.maillog}
maillog_file_prefixes = {self.base}
"""

    def master_cf(self):
        """master.cf's text; subclasses append their services. chroot is
        off (column 5 = n): nothing to copy into the queue directory."""
        return f"""# Written by tern's bench/bench.py: a private benchmark instance.
127.0.0.1:{self.port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

    def start_argv(self):
        """The command that starts the instance; bench/mailauth_bench.py
        runs it in a mount namespace of its own (a private resolv.conf)."""
        return ["postfix", "-c", self.etc, "start"]

    def start(self):
        run_checked(self.start_argv(), 60, "postfix start")
        self.started = True
        if not wait_port(self.port, START_TIMEOUT_S):
            raise BenchError(f"postfix: port {self.port} not accepting after "
                             f"{START_TIMEOUT_S}s\n{tail(self.maillog)}")

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        try:
            self._postfix("stop", timeout=STOP_TIMEOUT_S)
        except BenchError as e:
            log(f"warning: {e}")
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        log(f"warning: postfix master {pid} still running; `postfix abort`")
        try:
            self._postfix("abort", timeout=STOP_TIMEOUT_S)
        except BenchError as e:
            log(f"warning: {e}")

    def queued(self):
        return sum(count_files(os.path.join(self.queue, d))
                   for d in ("maildrop", "incoming", "active", "deferred", "hold"))

    def drain(self, timeout):
        """Waits until the queue is empty; past the timeout, deletes what
        is left so that the next run starts clean."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queued() == 0:
                return True
            time.sleep(POLL_S)
        log(f"warning: postfix queue not empty after {timeout}s "
            f"({self.queued()} files): postsuper -d ALL")
        run_checked(["postsuper", "-c", self.etc, "-d", "ALL"], 60, "postsuper")
        return False

    def describe(self):
        return run_checked(["postconf", "-d", "-h", "mail_version"], 10, "postconf").strip()


class Tern:
    """The tern daemon under test, with its config, spool and Maildirs
    under `base`."""

    name = "tern"

    def __init__(self, base, port, binary):
        self.base = base
        self.port = port
        self.binary = binary
        self.conf = os.path.join(base, "tern.conf")
        self.mail = os.path.join(base, "mail")
        self.spool = os.path.join(base, "spool")
        self.logfile = os.path.join(base, "tern.log")
        self.maildir = os.path.join(self.mail, MAILBOX_USER, "Maildir")
        self.proc = None

    def setup(self):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise BenchError(f"tern binary not found or not executable: {self.binary} "
                             "(build it, pass --tern PATH, or use --only postfix)")
        os.makedirs(self.base, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        run_checked([self.binary, "check-config", "-c", self.conf], 30, "tern check-config")

    def config_text(self):
        """The config file's text; subclasses append their settings."""
        return f"""hostname = bench.test
listen = 127.0.0.1:{self.port} mx
local_domains = bench.test
accept_any_user = yes
maildir = {self.mail}/%u/Maildir
spool_dir = {self.spool}
log = stderr
# As for Postfix (smtpd_client_connection_count_limit = 0): all the load
# comes from 127.0.0.1, whose 64 sessions must not meet a per-client limit.
sessions_per_ip = 1000
"""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        # Its own session: SIGTERM/SIGKILL at the end reach the daemon's
        # whole process group, which is ours, by its id.
        self.proc = spawn_daemon(self.name, [self.binary, "serve", "-c", self.conf], self.port,
                                 self.base, self.logfile)

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_group(proc, self.name)

    def queued(self):
        return count_files(self.spool)

    def drain(self, timeout):
        """tern's spool layout is its own business: wait until the number
        of files in it has stopped changing for 0.25 s."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"tern exited during the benchmark (status {self.proc.poll()}); "
                                 f"end of {self.logfile}:\n{tail(self.logfile, 10)}")
            n = self.queued()
            now = time.monotonic()
            if n != last:
                last, since = n, now
            elif now - since >= 0.25:
                return True
            time.sleep(POLL_S)
        log(f"warning: tern spool still changing after {timeout}s")
        return False

    def describe(self):
        for args in (["version"], ["--version"]):
            try:
                p = subprocess.run([self.binary, *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip().splitlines()[0]
        return "unknown"


def smtp_source_argv(port, sessions, count, size, rcpt=RECIPIENT, reuse=False,
                     sender=SENDER, helo=HELO_NAME, msg_file=None):
    """One message per session, or with reuse (-d) all of a session's
    messages over one connection. The message is smtp-source's own (a few
    headers and `size` bytes of body), or with msg_file (-F) that file as it
    is, header and body (bench/mailauth_bench.py: DKIM-signed mail)."""
    content = ["-F", msg_file] if msg_file is not None else ["-l", str(size)]
    return ["smtp-source", "-c", *(["-d"] if reuse else []), "-s", str(sessions),
            "-m", str(count), *content, "-M", helo, "-f", sender, "-t", rcpt,
            f"127.0.0.1:{port}"]


def last_counter(out):
    """smtp-source -c prints a running count of completed DATA commands."""
    for tok in reversed(out.replace("\r", " ").split()):
        if tok.isdigit():
            return int(tok)
    return 0


def run_load(argv, limit):
    """Runs a load generator for at most `limit` seconds. Returns
    (exit status or None when it was killed at the limit, stdout, stderr,
    monotonic start time, seconds it ran)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=STOP_TIMEOUT_S)
        return None, out, err, t0, time.monotonic() - t0
    except BaseException:
        # Interrupted: leave no load generator behind.
        p.kill()
        p.wait(timeout=STOP_TIMEOUT_S)
        raise
    return p.returncode, out, err, t0, time.monotonic() - t0


def clear_maildir(server):
    """Before a run: the server's Maildir empty, and the last run's dirty
    pages written back now rather than during this run."""
    empty_maildir(server.maildir)
    os.sync()


def wait_count(counter, count, t0, deadline, what, unit, stall=None):
    """Polls counter() until it reaches count. Returns (seconds since t0,
    None), or (None, error) at the deadline, or when the count has not
    moved for `stall` seconds (if given); the error names `what` and how
    many `unit` there were."""
    last, since = None, time.monotonic()
    while True:
        n = counter()
        now = time.monotonic()
        if n >= count:
            return now - t0, None
        if n != last:
            last, since = n, now
        if now >= deadline:
            return None, f"{what} timed out after {now - t0:.0f}s ({n}/{count} {unit})"
        if stall is not None and now - since >= stall:
            return None, (f"{what} stalled: none for {now - since:.0f}s, "
                          f"{now - t0:.0f}s after the start ({n}/{count} {unit})")
        time.sleep(POLL_S)


def wait_delivered(server, count, t0, deadline):
    """Polls until the server's Maildir new/ holds count messages. Returns
    (seconds since t0, None), or (None, error) at the deadline."""
    new_dir = os.path.join(server.maildir, "new")
    return wait_count(lambda: count_entries(new_dir), count, t0, deadline,
                      "delivery", "in new/")


def run_accept(server, size, sessions, count, limit, rcpt=RECIPIENT, reuse=False, **load):
    """The acceptance half of a run: smtp-source sends count messages to
    rcpt through the server. Returns (the run's dict, smtp-source's start
    on the monotonic clock); the dict has accept_s and accept_rate (count /
    wall time of smtp-source), or its error, and `accepted`, the messages
    the server took responsibility for (all, unless smtp-source failed).
    reuse: smtp-source sends a session's messages over one connection;
    load: smtp_source_argv's sender, helo and msg_file."""
    res = {"server": server.name, "size": size, "sessions": sessions, "count": count,
           "ok": False, "accepted": 0, "accept_s": None, "accept_rate": None, "error": None}
    rc, out, err, t0, t_accept = run_load(
        smtp_source_argv(server.port, sessions, count, size, rcpt, reuse, **load), limit)
    if rc is None:
        res["accepted"] = last_counter(out)
        res["error"] = f"smtp-source timed out after {limit}s ({res['accepted']}/{count} accepted)"
    elif rc != 0:
        res["accepted"] = last_counter(out)
        res["error"] = (f"smtp-source exited {rc} after {res['accepted']}/{count}: "
                        f"{err.strip()[-500:]}")
    else:
        res.update(accepted=count, accept_s=t_accept, accept_rate=count / t_accept)
    return res, t0


def complete_run(res, key, seconds, error):
    """Fills a run's second figure, KEY_s and KEY_rate (count / seconds),
    or its error; the run is ok without an error."""
    res[f"{key}_s"] = seconds
    res[f"{key}_rate"] = res["count"] / seconds if seconds else None
    res["error"] = error
    res["ok"] = error is None
    return res


def run_one(server, size, sessions, count, limit, check=None, **load):
    """One measured run. Acceptance: count / wall time of smtp-source.
    Delivery: count / time from smtp-source's start until the Maildir's new/
    holds count messages. check(server, run), if given, then looks at what
    was delivered and returns an error or None; load: smtp_source_argv's
    sender, helo and msg_file."""
    clear_maildir(server)
    res, t0 = run_accept(server, size, sessions, count, limit, **load)
    if res["error"] is not None:
        return complete_run(res, "deliver", None, res["error"])
    t, err = wait_delivered(server, count, t0, t0 + limit)
    if err is None and check is not None:
        err = check(server, res)
    return complete_run(res, "deliver", t, err)


def median_rate(runs, key):
    vals = [r[key] for r in runs if r["ok"] and r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt_rate(v):
    return f"{v:9.1f}" if v is not None else f"{'n/a':>9}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return f"{'n/a':>6}"
    return f"{a / b:6.2f}"


def ratio(a, b):
    return a / b if a is not None and b is not None and b != 0 else None


def add_common_args(ap, rounds, time_limit):
    """The options every tern-vs-Postfix benchmark has."""
    ap.add_argument("--tern", default=os.path.join(REPO, "build", "tern"),
                    help="tern binary (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=rounds,
                    help="rounds; the median is reported (default: %(default)s)")
    ap.add_argument("--time-limit", type=float, default=time_limit, metavar="SECONDS",
                    help="limit per run (default: %(default)s)")
    ap.add_argument("--only", choices=("both", "postfix", "tern"), default="both",
                    help="run one server only (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (configs, logs, Maildirs)")


def check_common_args(ap, args):
    if not 1 <= args.rounds <= 100:
        ap.error("--rounds: between 1 and 100")
    if args.time_limit <= 0:
        ap.error("--time-limit must be positive")
    args.tern = os.path.abspath(args.tern)


def parse_grid_args(argv, prog, description, sessions="1,16,64", sizes="4K,100K",
                    more_args=None):
    """The options of the smtp-source benchmarks (this one, relay_bench.py,
    mailauth_bench.py): the common ones and the grid of sizes and sessions
    (defaults: `sessions`, `sizes`); more_args(parser) adds a benchmark's
    own."""
    ap = argparse.ArgumentParser(prog=os.environ.get("BENCH_ENTRY", prog),
                                 description=description)
    add_common_args(ap, rounds=3, time_limit=300.0)
    if more_args is not None:
        more_args(ap)
    ap.add_argument("--count-4k", type=int, default=2000, metavar="N",
                    help="messages per run at 4 KB (default: %(default)s)")
    ap.add_argument("--count-100k", type=int, default=300, metavar="N",
                    help="messages per run at 100 KB (default: %(default)s)")
    ap.add_argument("--sessions", default=sessions,
                    help="comma-separated concurrent session counts (default: %(default)s)")
    ap.add_argument("--sizes", default=sizes,
                    help="comma-separated message sizes among 4K,100K (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=200, metavar="N",
                    help="unmeasured 4 KB messages sent to each server first (default: %(default)s)")
    ap.add_argument("--postfix-in-flow-delay", default="0s", metavar="TIME",
                    help="Postfix's in_flow_delay (default: %(default)s; Postfix's own default is 1s)")
    args = ap.parse_args(argv)
    check_common_args(ap, args)
    try:
        args.session_list = [int(s) for s in args.sessions.split(",") if s.strip()]
    except ValueError:
        ap.error("--sessions: comma-separated integers")
    args.size_list = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    for s in args.size_list:
        if s not in SIZES:
            ap.error(f"--sizes: unknown size {s!r} (choose among {', '.join(SIZES)})")
    if not args.session_list or any(s < 1 or s > 1000 for s in args.session_list):
        ap.error("--sessions: between 1 and 1000")
    if args.count_4k < 1 or args.count_100k < 1:
        ap.error("message counts must be positive")
    return args


def count_for(args, size_label):
    return args.count_4k if size_label == "4K" else args.count_100k


def check_environment():
    if os.geteuid() != 0:
        raise BenchError("run as root: Postfix's master must start as root (try sudo)")
    for tool in ("postfix", "postconf", "postsuper", "smtp-source"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found: install Debian's postfix (scripts/deps.sh)")


def command_line(argv):
    """The command as typed; BENCH_ENTRY (set by run.sh) is its start,
    e.g. `./bench/run.sh --tls`."""
    entry = os.environ.get("BENCH_ENTRY") or shlex.quote(sys.argv[0])
    return " ".join([entry, *map(shlex.quote, argv)])


def make_workdir():
    base = tempfile.mkdtemp(prefix="tern-bench-")
    os.chmod(base, 0o755)  # Postfix's daemons run as the postfix user
    return base


def with_servers(servers, base, keep, measure):
    """Sets up and starts every server, returns measure()'s result, and
    stops them all and removes `base` (unless keep) whatever happens."""
    try:
        for s in servers:
            s.setup()
        for s in servers:
            s.start()
            log(f"{s.name}: listening on 127.0.0.1:{s.port}")
        return measure()
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log(f"warning: stopping {s.name}: {e}")
        if keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def base_meta(command, base, servers, args):
    return {
        "command": command,
        "workdir": base,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "versions": {s.name: s.describe() for s in servers},
        "rounds": args.rounds,
        "time_limit_s": args.time_limit,
    }


def run_rounds(servers, rounds, cases, run_case, label, describe):
    """Every round goes through every case and runs each server on it back
    to back; run_case(server, case) returns a run's dict (with "ok" and
    "error"); the progress line is label(case) and describe(run). Returns
    all runs."""
    runs = []
    for rnd in range(rounds):
        for ci, case in enumerate(cases):
            # Alternate who goes first so that neither always runs on
            # the other's leftovers (dirty pages, warm caches).
            order = servers if (rnd + ci) % 2 == 0 else list(reversed(servers))
            for s in order:
                r = run_case(s, case)
                r["round"] = rnd + 1
                runs.append(r)
                text = describe(r) if r["ok"] else f"FAILED: {r['error']}"
                log(f"[round {rnd + 1}] {s.name:<12} {label(case)} {text}")
                s.drain(DRAIN_TIMEOUT_S)
    return runs


# The servers of a table and its ratios (column title -> (numerator,
# denominator)); a metric's first ratio is its `METRIC_ratio`, the others
# `METRIC_TITLE` (bench/mailauth_bench.py has three servers).
NAMES = ("postfix", "tern")
RATIOS = {"ratio": ("tern", "postfix")}


def ratio_key(metric, title, ratios):
    return f"{metric}_ratio" if title == next(iter(ratios)) else f"{metric}_{title}"


def summary_row(row, runs, select, metrics, names=NAMES, ratios=RATIOS):
    """Fills row with, for each server of `names`, the median of each metric
    (name -> run key) over its successful runs that select(run) picks, its
    failed runs, and each metric's ratios (by default tern / Postfix)."""
    for name in names:
        sel = [r for r in runs if r["server"] == name and select(r)]
        for metric, key in metrics.items():
            row[f"{name}_{metric}"] = median_rate(sel, key)
        row[f"{name}_failed"] = sum(1 for r in sel if not r["ok"])
    for metric in metrics:
        for title, (num, den) in ratios.items():
            row[ratio_key(metric, title, ratios)] = ratio(row[f"{num}_{metric}"],
                                                          row[f"{den}_{metric}"])
    return row


def print_table(label_header, label, rows, metrics, names=NAMES, ratios=RATIOS):
    """One line per row: label(row) (as wide as label_header), then for
    each (title, metric) every server's figure and the ratios, then failed
    runs."""
    pad = " " * len(label_header)
    widths = [max(9, len(n)) for n in names]
    rwidths = [max(6, len(t)) for t in ratios]
    span = sum(w + 1 for w in widths) + sum(w + 1 for w in rwidths) + 1
    print(f"{label_header} | " + "".join(f"{title:^{span}} | " for title, _ in metrics).rstrip())
    print(f"{pad} | " + "".join(" ".join(f"{n:>{w}}" for n, w in zip(names, widths)) + " " +
                                 " ".join(f"{t:>{w}}" for t, w in zip(ratios, rwidths)) + "   | "
                                 for _ in metrics) + "failed runs")
    for row in rows:
        failed = ""
        if any(row[f"{n}_failed"] for n in names):
            failed = ", ".join(f"{n} {row[f'{n}_failed']}" for n in names)
        cols = "".join(" ".join(f"{fmt_rate(row[f'{n}_{m}']):>{w}}"
                                for n, w in zip(names, widths)) + " " +
                       " ".join(f"{fmt_ratio(row[f'{a}_{m}'], row[f'{b}_{m}']):>{w}}"
                                for (a, b), w in zip(ratios.values(), rwidths)) + "   | "
                       for _, m in metrics)
        print(f"{label(row)} | {cols}{failed}".rstrip())


def check_goal(summary, where, metric, target, text, key=None):
    """The goal on the summary row whose fields match `where`: prints
    `goal: TEXT: ratio R, met` and returns its JSON (None when that row
    has no ratio). key: the row's ratio to check [METRIC_ratio]."""
    key = key or f"{metric}_ratio"
    for row in summary:
        r = row.get(key)
        if all(row[k] == v for k, v in where.items()) and r is not None:
            print()
            print(f"goal: {text}: ratio {r:.2f}, " + ("met" if r >= target else "NOT met"))
            return {**where, "target_ratio": target, key: r, "met": r >= target}
    return None


def finish(args, meta, summary, goal, runs):
    """Writes the JSON (--json) and returns the exit status: 1 when some
    run failed."""
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "summary": summary, "goal": goal, "runs": runs},
                      f, indent=2)
            f.write("\n")
    return 1 if any(not r["ok"] for r in runs) else 0


def run_grid(args, servers, run_one_fn, key, word):
    """The warm-up (unmeasured: 4K messages at the highest session count),
    then the rounds over every (size, sessions) pair. run_one_fn(server,
    size, sessions, count, limit) returns a run with accept_* and a second
    figure KEY_s/KEY_rate, called WORD in the progress lines. Returns all
    runs, each with its size_label."""
    if args.warmup > 0:
        for s in servers:
            r = run_one_fn(s, SIZES["4K"], max(args.session_list), args.warmup, args.time_limit)
            log(f"warm-up {s.name}: " + ("ok" if r["ok"] else r["error"]))
            s.drain(DRAIN_TIMEOUT_S)

    def run_case(server, case):
        zlabel, sessions = case
        r = run_one_fn(server, SIZES[zlabel], sessions, count_for(args, zlabel), args.time_limit)
        r["size_label"] = zlabel
        return r

    def label(case):
        return f"{case[0]:>4} x{case[1]:<3}"

    def describe(r):
        return (f"accept {r['count']} in {r['accept_s']:.2f}s = "
                f"{r['accept_rate']:.1f}/s, {word} in {r[f'{key}_s']:.2f}s = "
                f"{r[f'{key}_rate']:.1f}/s")

    cases = [(z, n) for z in args.size_list for n in args.session_list]
    return run_rounds(servers, args.rounds, cases, run_case, label, describe)


def grid_summary(args, runs, key, names=NAMES, ratios=RATIOS):
    """One row per (size, sessions): medians and ratios of accept and KEY."""
    metrics = {"accept": "accept_rate", key: f"{key}_rate"}
    return [summary_row({"size": z, "sessions": n}, runs,
                        lambda r, z=z, n=n: r["size_label"] == z and r["sessions"] == n,
                        metrics, names, ratios)
            for z in args.size_list for n in args.session_list]


def print_grid(command, meta, args, summary, key, title, notes=()):
    """The header (command, load, versions, notes: one line each) and the
    table of accept and KEY (headed TITLE) by size and sessions."""
    print(f"command: {command}")
    print(f"load:    {meta.get('smtp_source', '')}")
    print(f"versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    for line in notes:
        print(line)
    print(f"median of {args.rounds} round(s), messages/s; "
          f"Postfix in_flow_delay = {args.postfix_in_flow_delay}")
    print()
    print_grid_table(summary, key, title)


def print_grid_table(summary, key, title, names=NAMES, ratios=RATIOS):
    """The table of accept and KEY (headed TITLE) by size and sessions."""
    print_table(f"{'size':>5} {'sess':>4}", lambda row: f"{row['size']:>5} {row['sessions']:>4}",
                summary, [("accept", "accept"), (title, key)], names, ratios)


def grid_meta(command, base, servers, args, rcpt=RECIPIENT):
    meta = base_meta(command, base, servers, args)
    meta["smtp_source"] = shlex.join(smtp_source_argv("PORT", "SESSIONS", "COUNT", "SIZE", rcpt))
    meta["postfix_in_flow_delay"] = args.postfix_in_flow_delay
    return meta


def main(argv):
    args = parse_grid_args(argv, "bench.py", "Benchmark tern against a private Postfix "
                           "instance with smtp-source.")
    check_environment()
    command = command_line(argv)
    base = make_workdir()
    pf_port, tern_port = free_ports(2)
    servers = []
    if args.only in ("both", "postfix"):
        servers.append(Postfix(os.path.join(base, "postfix"), pf_port, args.postfix_in_flow_delay))
    if args.only in ("both", "tern"):
        servers.append(Tern(os.path.join(base, "tern"), tern_port, args.tern))
    meta = {}

    def measure():
        meta.update(grid_meta(command, base, servers, args))
        runs = run_grid(args, servers, run_one, "deliver", "delivered")
        meta["loadavg_end"] = os.getloadavg()
        return runs

    runs = with_servers(servers, base, args.keep, measure)
    summary = grid_summary(args, runs, "deliver")
    print_grid(command, meta, args, summary, "deliver", "delivered")
    goal = check_goal(summary, {"size": GOAL[0], "sessions": GOAL[1]}, "accept", GOAL[2],
                      f"tern accepts >= {GOAL[2]:.0f}x Postfix at {GOAL[1]} sessions, {GOAL[0]}")
    return finish(args, meta, summary, goal, runs)


def _on_signal(signum, _frame):
    # Unwind through main()'s finally so both servers are stopped.
    raise KeyboardInterrupt(f"signal {signum}")


def cli(main_fn):
    """Runs main_fn(argv) as the program: exit 2 on a set-up error, 130 when
    interrupted (SIGINT, SIGTERM, SIGHUP), after every server is stopped."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        sys.exit(main_fn(sys.argv[1:]))
    except BenchError as e:
        log(f"bench: {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("bench: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    cli(main)
