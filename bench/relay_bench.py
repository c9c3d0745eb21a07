#!/usr/bin/python3
"""tern vs Postfix as relays: smtp-source -> MTA -> smtp-sink.

The same private Postfix instance and tern daemon as bench.py (whose helpers
this uses), both accepting mail for a remote domain from the loopback
network and relaying it, Postfix by its relayhost and tern by a route, to
Postfix's smtp-sink on a loopback port. Drives each with smtp-source at
several session counts and message sizes, interleaving the two servers, and
prints the median messages/s of acceptance and of relaying (until the sink
has counted every message) for each, and the ratio tern/Postfix; also the
sink's own ceiling (smtp-source straight into smtp-sink). See
bench/README.md.

Every wait is bounded in time; every loop is bounded in count.
"""

import os
import re
import shlex
import shutil
import statistics
import time

import bench
from bench import BenchError, log

RELAY_DOMAIN = "relay.bench"
RELAY_RCPT = f"user@{RELAY_DOMAIN}"
SINK_HOST = "sink.relay.bench"
# smtp-sink's limit of connections it serves at once, and its listen
# backlog: far above what either MTA opens, so that the sink is never the
# limit (checked by the ceiling runs).
SINK_CONCURRENCY = 1000
SINK_BACKLOG = 1000
# The goal of issue 4: tern relays >= 2x Postfix's rate at 16 sessions, 4 KB.
GOAL = ("4K", 16, 2.0)
# A relay figure above this share of the sink's ceiling may be the sink's.
CEILING_SHARE = 0.5
# A relay run or drain in which no message reaches the sink for this long
# has stalled: it fails then rather than at --time-limit.
STALL_S = 15.0

# smtp-sink -c writes "sess=N quit=N mesg=N\r" whenever a session ends, a
# QUIT is executed or a message's final "." is received.
_COUNTERS = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)\r")


class Sink:
    """Postfix's smtp-sink on 127.0.0.1:port: accepts every message (it
    offers PIPELINING, 8BITMIME and DSN, as by default; no XCLIENT or
    XFORWARD) and throws it away. Its running counters (-c) go to a file of
    their own; counters() reads the last line."""

    def __init__(self, base, name, port):
        self.name = f"sink-{name}"
        self.base = base
        self.port = port
        self.out = os.path.join(base, f"{self.name}.out")
        self.err = os.path.join(base, f"{self.name}.err")
        self.proc = None

    def argv(self):
        # -u: smtp-sink drops root after binding its socket.
        return ["smtp-sink", "-c", "-C", "-F", "-h", SINK_HOST, "-m", str(SINK_CONCURRENCY),
                "-u", "postfix", f"127.0.0.1:{self.port}", str(SINK_BACKLOG)]

    def setup(self):
        os.makedirs(self.base, exist_ok=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        self.proc = bench.spawn_daemon(self.name, self.argv(), self.port, self.base, self.out,
                                       self.err)

    def stop(self):
        if self.proc is not None:
            proc, self.proc = self.proc, None
            bench.stop_group(proc, self.name)

    def counters(self):
        """(sessions ended, messages received) so far."""
        if self.proc is not None and not self.alive():
            raise BenchError(f"{self.name} exited (status {self.proc.poll()}):\n"
                             f"{bench.tail(self.err)}")
        try:
            with open(self.out, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 256))
                data = f.read()
        except FileNotFoundError:
            return 0, 0
        last = None
        for last in _COUNTERS.finditer(data):
            pass
        return (int(last.group(1)), int(last.group(2))) if last else (0, 0)

    def messages(self):
        return self.counters()[1]

    def cpu(self):
        """CPU seconds (user + system) the sink has used so far."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except (OSError, AttributeError):
            return 0.0
        # utime and stime: fields 14 and 15 of proc(5), 12 and 13 after ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def drain(self, timeout):
        return True


class Relaying:
    """What the relaying servers add to bench.py's: their sink, and the
    number of messages they have accepted for it (`expected`); drain()
    first waits until the sink has them all."""

    def init_relay(self, sink):
        self.sink = sink
        self.expected = 0

    def drain(self, timeout):
        t0 = time.monotonic()
        _, err = bench.wait_count(self.sink.messages, self.expected, t0, t0 + timeout,
                                  f"{self.name}: relaying the rest", "at the sink", STALL_S)
        if err is not None:
            log(f"warning: {err}")
        return super().drain(max(1.0, timeout - (time.monotonic() - t0))) and err is None


class RelayPostfix(Relaying, bench.Postfix):
    """bench.Postfix relaying everything not its own to the sink by its
    relayhost, through its smtp(8) client with Postfix's defaults:
    connection caching on demand, 20 connections per destination."""

    def __init__(self, base, port, in_flow_delay, sink):
        super().__init__(base, port, in_flow_delay)
        self.init_relay(sink)
        self.relayhost = f"[127.0.0.1]:{sink.port}"


class RelayTern(Relaying, bench.Tern):
    """bench.Tern relaying mail from the loopback network to any other
    domain to the sink by a route."""

    def __init__(self, base, port, binary, sink):
        super().__init__(base, port, binary)
        self.init_relay(sink)

    def config_text(self):
        return super().config_text() + f"""# Relaying (bench/relay_bench.py): the loopback network may relay, and
# every remote domain goes to the sink.
relay_networks = 127.0.0.0/8
route = * 127.0.0.1:{self.sink.port}
"""


def run_relay(server, size, sessions, count, limit, **load):
    """One measured run. Acceptance: count / wall time of smtp-source.
    Relaying: count / time from smtp-source's start until the server's sink
    has received count more messages. load: bench.smtp_source_argv's
    sender, helo and msg_file."""
    os.sync()  # the last run's dirty pages written back now
    sink = server.sink
    mesg0, cpu0 = sink.messages(), sink.cpu()
    # Messages of an earlier run not yet relayed (after a failed run);
    # should they arrive now, they count for this run.
    outstanding = server.expected - mesg0
    if outstanding > 0:
        log(f"warning: {server.name}: {outstanding} earlier messages not at the sink yet; "
            "should they arrive now, they count for this run")
    elif outstanding < 0:
        log(f"warning: {server.name}: its sink has {-outstanding} messages more than it "
            "accepted")
    res, t0 = bench.run_accept(server, size, sessions, count, limit, RELAY_RCPT, **load)
    server.expected += res["accepted"]
    t, err = None, res["error"]
    if err is None:
        t, err = bench.wait_count(lambda: sink.messages() - mesg0, count, t0, t0 + limit,
                                  "relaying", "at the sink", STALL_S)
    res.update(outstanding_before=outstanding, sink_messages=sink.messages() - mesg0,
               sink_cpu_s=sink.cpu() - cpu0)
    return bench.complete_run(res, "relay", t, err)


def run_ceiling(args, sink):
    """smtp-source straight into the sink, for every (size, sessions), one
    message per connection and then (-d) a connection per session, the
    median over --rounds runs: what the sink takes at the most, with the
    load generator on the same cores."""
    rows = []
    for z in args.size_list:
        for n in args.session_list:
            for reuse in (False, True):
                count = bench.count_for(args, z)
                runs = []
                for _ in range(args.rounds):
                    mesg0, cpu0 = sink.messages(), sink.cpu()
                    res, t0 = bench.run_accept(sink, bench.SIZES[z], n, count, args.time_limit,
                                               RELAY_RCPT, reuse)
                    t, err = None, res["error"]
                    if err is None:
                        t, err = bench.wait_count(lambda: sink.messages() - mesg0, count, t0,
                                                  t0 + args.time_limit, "sink", "counted")
                    res["sink_cpu_s"] = sink.cpu() - cpu0
                    runs.append(bench.complete_run(res, "sink", t, err))
                ok = [r for r in runs if r["ok"]]
                row = {"size": z, "sessions": n, "reuse": reuse, "count": count,
                       "rate": statistics.median(r["sink_rate"] for r in ok) if ok else None,
                       "cpu_ms_per_message": (statistics.median(1000 * r["sink_cpu_s"] / count
                                                                for r in ok) if ok else None),
                       "failed": len(runs) - len(ok),
                       "errors": [r["error"] for r in runs if not r["ok"]]}
                log(f"sink alone {z:>4} x{n:<3} {'reused' if reuse else 'new   '} " +
                    (f"{row['rate']:.1f}/s, {row['cpu_ms_per_message']:.3f} ms CPU/message"
                     if ok else f"FAILED: {row['errors'][0]}"))
                rows.append(row)
    return rows


def sink_notes(ceiling, summary, runs, check):
    """The header lines on the sink: its ceiling per case, the connections
    each MTA made to it, how busy it was during the MTAs' runs; a warning
    where it may have been the limit."""
    def cell(c):
        return (f"{c['rate']:.0f}/s {c['cpu_ms_per_message']:.2f} ms" if c["rate"] is not None
                else "n/a")

    notes = [f"sink:    {' '.join(Sink('', '', 'PORT').argv()[:-2])} ...",
             "sink alone (smtp-source straight in; a connection per message | per session; "
             "sink CPU per message):"]
    notes += [f"         {new['size']:>4} x{new['sessions']:<3} {cell(new)} | {cell(reused)}"
              for new, reused in zip(ceiling[::2], ceiling[1::2])]
    notes.append("check:   " + "; ".join(
        f"{name} accepted {c['accepted']}, its sink received {c['received']} over "
        f"{c['connections']} connections" +
        ("" if c["accepted"] == c["received"] else " (MISMATCH)")
        for name, c in check.items()))
    busy = {}
    for r in runs:
        if r["ok"] and r["relay_s"]:
            busy[r["server"]] = max(busy.get(r["server"], 0.0), r["sink_cpu_s"] / r["relay_s"])
    if busy:
        notes.append("sink busy during the MTAs' runs, at most: " + ", ".join(
            f"{name} {share:.0%} of a core" for name, share in busy.items()))
    top = {}
    for c in ceiling:
        key = (c["size"], c["sessions"])
        top[key] = max(top.get(key) or 0.0, c["rate"] or 0.0) or None
    for row in summary:
        best = top.get((row["size"], row["sessions"]))
        for name in ("postfix", "tern"):
            v = row[f"{name}_relay"]
            if best and v and v >= CEILING_SHARE * best:
                notes.append(f"warning: {name} relays {row['size']} x{row['sessions']} at "
                             f"{v:.0f}/s, {v / best:.0%} of the sink's ceiling: the sink may "
                             "be the limit")
    for name, share in busy.items():
        if share >= CEILING_SHARE:
            notes.append(f"warning: the sink was busy {share:.0%} of a core in a {name} run: "
                         "it may be the limit")
    return notes


def sink_check(servers):
    """Per server, once it has stopped (its cached connections closed):
    messages accepted (all runs, warm-up included) against messages its
    sink received, and over how many connections."""
    time.sleep(0.5)  # the sinks see the last connections end
    return {s.name: {"accepted": s.expected, "received": s.sink.messages(),
                     # the sink's first session was bench.wait_port's probe
                     "connections": s.sink.counters()[0] - 1}
            for s in servers}


def main(argv):
    args = bench.parse_grid_args(argv, "relay_bench.py",
                                 "Benchmark tern against a private Postfix instance as "
                                 "relays: smtp-source -> MTA -> smtp-sink.")
    bench.check_environment()
    if shutil.which("smtp-sink") is None:
        raise BenchError("smtp-sink not found: install Debian's postfix (scripts/deps.sh)")
    command = bench.command_line(argv)
    base = bench.make_workdir()
    pf_port, tern_port, pf_sink, tern_sink, top_sink = bench.free_ports(5)
    sinks = [Sink(base, "alone", top_sink)]
    servers = []
    if args.only in ("both", "postfix"):
        sinks.append(Sink(base, "postfix", pf_sink))
        servers.append(RelayPostfix(os.path.join(base, "postfix"), pf_port,
                                    args.postfix_in_flow_delay, sinks[-1]))
    if args.only in ("both", "tern"):
        sinks.append(Sink(base, "tern", tern_sink))
        servers.append(RelayTern(os.path.join(base, "tern"), tern_port, args.tern, sinks[-1]))
    meta = {}

    def measure():
        meta.update(bench.grid_meta(command, base, servers, args, RELAY_RCPT))
        meta["smtp_sink"] = shlex.join(Sink("", "", "PORT").argv())
        meta["sink_ceiling"] = run_ceiling(args, sinks[0])
        runs = bench.run_grid(args, servers, run_relay, "relay", "relayed")
        # run_rounds drained each server after its last run.
        for s in servers:
            s.stop()  # with_servers' own stop is then a no-op
        meta["sink_check"] = sink_check(servers)
        meta["loadavg_end"] = os.getloadavg()
        return runs

    runs = bench.with_servers(sinks + servers, base, args.keep, measure)
    summary = bench.grid_summary(args, runs, "relay")
    notes = [f"relay:   to {RELAY_RCPT}; Postfix relayhost = [127.0.0.1]:SINK, "
             f"tern route = * 127.0.0.1:SINK; one sink each"]
    check = meta["sink_check"]
    notes += sink_notes(meta["sink_ceiling"], summary, runs, check)
    bench.print_grid(command, meta, args, summary, "relay", "relayed to sink", notes)
    goal = bench.check_goal(summary, {"size": GOAL[0], "sessions": GOAL[1]}, "relay", GOAL[2],
                            f"tern relays >= {GOAL[2]:.0f}x Postfix (smtp-source -> MTA -> "
                            f"smtp-sink) at {GOAL[1]} sessions, {GOAL[0]}")
    status = bench.finish(args, meta, summary, goal, runs)
    if any(c["accepted"] != c["received"] for c in check.values()):
        status = 1
    return status


if __name__ == "__main__":
    bench.cli(main)
