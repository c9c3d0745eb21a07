#!/usr/bin/python3
"""CPU that tern's SMTP process spends to open (and close) many sessions.

Starts tern (limits high enough that nobody is refused), opens SESSIONS
connections from ADDRS loopback source addresses (127.0.1.1, 127.0.1.2 ...;
Linux routes all of 127/8 to lo), reads every greeting and keeps the
connections open, then closes them all and waits until tern's log has a
disconnect line for each. Reports the user+system CPU time of the tern-smtpd
process (/proc/PID/stat utime+stime) for the opening and for the closing.

This is a measurement, not a test: the figures depend on the machine. The
hardening issue asks for 10,000 sessions opened with under 0.5 s of CPU.

    bench/session_flood.py [--tern build/tern] [--sessions 10000] [--addrs 100]

Every wait is bounded in time; every loop is bounded in count.
"""

import argparse
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared set-up: Tern, free_ports, make_workdir)

# Connections waiting for their greeting at one time: below tern's listen
# backlog (1024), so the kernel never drops a SYN and the client's retry
# timer never enters the measurement.
IN_FLIGHT = 256
TIMEOUT_S = 120.0


class FloodTern(bench.Tern):
    def __init__(self, base, port, binary, sessions):
        super().__init__(base, port, binary)
        self.sessions = sessions

    def config_text(self):
        return super().config_text().replace("sessions_per_ip = 1000\n", "") + (
            f"sessions_max = {self.sessions + 100}\n"
            f"sessions_per_ip = {self.sessions + 100}\n")


def smtpd_pid(parent_pid, timeout):
    """The tern-smtpd child of the supervisor."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            if comm == "tern-smtpd" and int(fields[1]) == parent_pid:
                return int(d)
        time.sleep(bench.POLL_S)
    raise bench.BenchError("no tern-smtpd process found")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    # fields[0] is field 3 (state) of proc(5): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_sessions(port, n, addrs):
    """n connections, each with its greeting read; returns the sockets."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], {}, 0
    deadline = time.monotonic() + TIMEOUT_S
    while len(done) < n:
        if time.monotonic() > deadline:
            raise bench.BenchError(f"only {len(done)} of {n} greetings within {TIMEOUT_S}s")
        while started < n and len(pending) < IN_FLIGHT:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((f"127.0.1.{1 + started % addrs}", 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
            started += 1
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            if not chunk:
                raise bench.BenchError(f"connection closed before its greeting ({len(done)} open)")
            pending[s] += chunk
            if b"\n" in pending[s]:
                if not pending[s].startswith(b"220"):
                    raise bench.BenchError(f"refused: {pending[s]!r}")
                sel.unregister(s)
                del pending[s]
                done.append(s)
    sel.close()
    return done


def wait_log_count(path, needle, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if f.read().count(needle) >= n:
                return
        time.sleep(bench.POLL_S)
    raise bench.BenchError(f"fewer than {n} {needle!r} lines in {path} within {timeout}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", default=os.path.join(bench.REPO, "build", "tern"))
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--addrs", type=int, default=100, help="source addresses, at most 254")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.addrs <= 254:
        ap.error("--addrs: 1 to 254")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.sessions + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"RLIMIT_NOFILE hard limit {hard} < {need}", file=sys.stderr)
        return 2
    # tern inherits this limit too.
    resource.setrlimit(resource.RLIMIT_NOFILE, (need if soft < need else soft, hard))

    base = bench.make_workdir()
    (port,) = bench.free_ports(1)
    tern = FloodTern(base, port, os.path.abspath(args.tern), args.sessions)

    def measure():
        pid = smtpd_pid(tern.proc.pid, bench.START_TIMEOUT_S)
        logpath = tern.logfile
        with open(logpath, "rb") as f:
            disconnects0 = f.read().count(b"disconnect from")
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        socks = open_sessions(port, args.sessions, args.addrs)
        t1, c1 = time.monotonic(), cpu_seconds(pid)
        for s in socks:
            s.close()
        wait_log_count(logpath, b"disconnect from", disconnects0 + len(socks), TIMEOUT_S)
        t2, c2 = time.monotonic(), cpu_seconds(pid)
        print(f"sessions {args.sessions} from {args.addrs} addresses ({tern.describe()})")
        print(f"open:  tern-smtpd CPU {c1 - c0:.2f} s (wall {t1 - t0:.2f} s)")
        print(f"close: tern-smtpd CPU {c2 - c1:.2f} s (wall {t2 - t1:.2f} s)")
        return 0

    try:
        return bench.with_servers([tern], base, args.keep, measure)
    except bench.BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
