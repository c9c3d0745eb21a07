#!/usr/bin/python3
"""tern vs Postfix over TLS: handshakes and authenticated submissions per second.

The same private Postfix instance and tern daemon as bench.py (whose helpers
this uses), each with a submission listener (STARTTLS, AUTH PLAIN) and an
smtps listener (implicit TLS) on loopback ports, both with one ECDSA P-256
self-signed certificate made for the run, and one user with one password
(Postfix: Cyrus SASL with a sasldb2 file; tern: its users_file, written by
`tern user add`). Drives both with bench/submit_load.c, compiled for the run,
interleaving the two servers, and prints the median rates and the ratio
tern/Postfix. See bench/README.md.

Every wait is bounded in time; every loop is bounded in count.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import pwd
import secrets
import shlex
import shutil
import time

import bench
from bench import BenchError, log

LOADGEN_SRC = os.path.join(bench.REPO, "bench", "submit_load.c")
USER = bench.MAILBOX_USER  # delivers into the Maildir bench.py watches
SENDER = f"{USER}@bench.test"  # an address the user owns (tern's sender_check)
BODY_SIZE = 4096
IO_TIMEOUT_S = 30
MODES = ("handshake", "implicit", "submit")
DEFAULT_CASES = "handshake:1,handshake:16,implicit:16,submit:1,submit:16"
# The goal: tern >= 2x Postfix's rate of full submissions at 16 sessions.
GOAL = ("submit", 16, 2.0)


def make_cert(base):
    """One self-signed ECDSA P-256 certificate and key for both servers."""
    cert, key = os.path.join(base, "cert.pem"), os.path.join(base, "key.pem")
    bench.run_checked(["openssl", "req", "-x509", "-newkey", "ec",
                       "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", cert, "-days", "30",
                       "-subj", "/CN=bench.test",
                       "-addext", "subjectAltName=DNS:bench.test"], 30, "openssl req")
    os.chmod(key, 0o600)
    return cert, key


def build_loadgen(base):
    out = os.path.join(base, "submit_load")
    cc = os.environ.get("CC", "cc")
    bench.run_checked([cc, "-O2", "-Wall", "-Wextra", "-o", out, LOADGEN_SRC,
                       "-lssl", "-lcrypto", "-lpthread"], 120, "building submit_load")
    return out


class Credentials:
    def __init__(self, user, password):
        self.user = user
        self.password = password


class TlsPostfix(bench.Postfix):
    """bench.Postfix plus a submission service (STARTTLS required, then
    AUTH through Cyrus SASL's sasldb) and an smtps service (implicit TLS),
    with the shared certificate."""

    def __init__(self, base, port, in_flow_delay, tls_ports, cert, key, creds):
        super().__init__(base, port, in_flow_delay)
        self.tls_ports = tls_ports  # {"submission": port, "smtps": port}
        self.cert, self.key = cert, key
        self.creds = creds
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf whatever
        # cyrus_sasl_config_path says; other builds honour the latter.
        self.sasl_dir = os.path.join(self.etc, "sasl")
        self.sasldb = os.path.join(self.sasl_dir, "sasldb2")

    def setup(self):
        if shutil.which("saslpasswd2") is None:
            raise BenchError("saslpasswd2 not found: install Debian's sasl2-bin "
                             "(bench/run.sh --tls does)")
        pw = pwd.getpwnam("postfix")
        os.makedirs(self.sasl_dir, exist_ok=True)
        with open(os.path.join(self.sasl_dir, "smtpd.conf"), "w") as f:
            f.write(f"pwcheck_method: auxprop\n"
                    f"auxprop_plugin: sasldb\n"
                    f"sasldb_path: {self.sasldb}\n"
                    f"mech_list: PLAIN LOGIN\n")
        # The realm is smtpd_sasl_local_domain: the client logs in as "user".
        bench.run_checked(["saslpasswd2", "-p", "-c", "-f", self.sasldb, "-u", "bench.test",
                           self.creds.user], 30, "saslpasswd2", self.creds.password + "\n")
        # smtpd runs as the postfix user and opens the database itself.
        os.chown(self.sasldb, pw.pw_uid, pw.pw_gid)
        os.chmod(self.sasldb, 0o600)
        super().setup()

    def main_cf(self, uid, gid):
        return super().main_cf(uid, gid) + f"""
# TLS and SASL (bench/tls_bench.py). STARTTLS offered on port 25's
# listener, required on submission; AUTH only after TLS.
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 0
# tern records the protocol and cipher in Received: (RFC 3848); same work.
smtpd_tls_received_header = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {self.sasl_dir}
smtpd_sasl_local_domain = bench.test
smtpd_sasl_security_options = noanonymous
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = yes
"""

    def master_cf(self):
        opts = """  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
"""
        return super().master_cf() + f"""
127.0.0.1:{self.tls_ports['submission']} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
{opts}127.0.0.1:{self.tls_ports['smtps']} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
{opts}tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""

    def start(self):
        super().start()
        for port in self.tls_ports.values():
            if not bench.wait_port(port, bench.START_TIMEOUT_S):
                raise BenchError(f"postfix: port {port} not accepting\n"
                                 f"{bench.tail(self.maillog)}")


class TlsTern(bench.Tern):
    """bench.Tern plus a submission and an smtps listener with the shared
    certificate, and a users_file with the one user."""

    def __init__(self, base, port, binary, tls_ports, cert, key, creds):
        super().__init__(base, port, binary)
        self.tls_ports = tls_ports
        self.cert, self.key = cert, key
        self.creds = creds
        self.users = os.path.join(base, "users")

    def config_text(self):
        return super().config_text() + f"""# TLS and AUTH (bench/tls_bench.py)
listen = 127.0.0.1:{self.tls_ports['submission']} submission
listen = 127.0.0.1:{self.tls_ports['smtps']} smtps
tls_cert = {self.cert}
tls_key = {self.key}
users_file = {self.users}
"""

    def setup(self):
        os.makedirs(self.base, exist_ok=True)
        with open(self.users, "w"):
            pass
        os.chmod(self.users, 0o640)
        super().setup()
        bench.run_checked([self.binary, "user", "add", self.creds.user, "--stdin",
                           "-c", self.conf], 60, "tern user add", self.creds.password + "\n")

    def start(self):
        super().start()
        for port in self.tls_ports.values():
            if not bench.wait_port(port, bench.START_TIMEOUT_S, self.alive):
                raise BenchError(f"tern: port {port} not accepting\n"
                                 f"{bench.tail(self.logfile)}")

    def password_hash(self):
        with open(self.users) as f:
            for line in f:
                name, sep, h = line.partition(":")
                if sep and name.strip() == self.creds.user:
                    return h.strip()
        return None


def hash_verify_ms(password, hashed):
    """CPU time of one crypt(3) check of the password against tern's hash,
    in ms: the cost tern pays per AUTH (sasldb compares plain text)."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    t0 = time.process_time()
    out = lib.crypt(password.encode(), hashed.encode())
    spent = (time.process_time() - t0) * 1000
    return spent if out == hashed.encode() else None


def loadgen_argv(binary, mode, port, sessions, count, limit, creds, quickack):
    argv = [binary, "-m", mode, "-p", str(port), "-s", str(sessions), "-n", str(count),
            "-t", f"{limit:g}", "-T", str(IO_TIMEOUT_S), "-e", bench.HELO_NAME]
    if quickack:
        argv.append("-Q")
    if mode == "submit":
        argv += ["-u", creds.user, "-w", creds.password, "-f", SENDER,
                 "-r", bench.RECIPIENT, "-l", str(BODY_SIZE)]
    return argv


def parse_report(out):
    """submit_load's last JSON line, or None."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def run_tls_case(server, loadgen, creds, mode, sessions, count, limit, quickack):
    """One measured run of submit_load. rate: sessions completed per second
    (submit_load's own clock); for submit also delivered: count / time from
    submit_load's start until the Maildir's new/ holds count messages."""
    port = server.tls_ports["smtps" if mode == "implicit" else "submission"]
    res = {"server": server.name, "mode": mode, "sessions": sessions, "count": count,
           "ok": False, "seconds": None, "rate": None, "deliver_s": None,
           "deliver_rate": None, "latency_ms": None, "tls": None, "error": None}
    if mode == "submit":
        bench.clear_maildir(server)
    argv = loadgen_argv(loadgen, mode, port, sessions, count, limit, creds, quickack)
    # submit_load stops by itself at the limit, plus one reply's timeout.
    rc, out, err, t0, _ = bench.run_load(argv, limit + IO_TIMEOUT_S + 10)
    rep = parse_report(out)
    if rc is None or rep is None:
        res["error"] = (f"submit_load killed after {limit + IO_TIMEOUT_S + 10:g}s"
                        if rc is None else f"submit_load exited {rc}: {err.strip()[-500:]}")
        return res
    res.update(seconds=rep["seconds"], latency_ms=rep["latency_ms"], tls=rep["tls"])
    if rep["ok"] != count:
        res["error"] = (f"{rep['ok']}/{count} ok, {rep['failed']} failed, "
                        f"{rep['cut_off']} cut off by the {limit:g}s limit; "
                        f"first failure: {rep['first_error']}")
        return res
    res["rate"] = rep["rate"]
    if mode == "submit":
        t_deliver, res["error"] = bench.wait_delivered(server, count, t0, t0 + limit)
        if t_deliver is None:
            return res
        res["deliver_s"] = t_deliver
        res["deliver_rate"] = count / t_deliver
    res["ok"] = True
    return res


def parse_cases(ap, text):
    cases = []
    for item in text.split(","):
        mode, sep, n = item.strip().partition(":")
        if mode not in MODES or not sep or not n.isdigit() or not 1 <= int(n) <= 1000:
            ap.error(f"--cases: {item!r}: expected MODE:SESSIONS, MODE among "
                     f"{', '.join(MODES)}, SESSIONS 1..1000")
        cases.append((mode, int(n)))
    return cases


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=os.environ.get("BENCH_ENTRY", "tls_bench.py"),
        description="Benchmark tern against a private Postfix instance over TLS: "
                    "handshakes and STARTTLS+AUTH submissions per second.")
    bench.add_common_args(ap, rounds=3, time_limit=120.0)
    ap.add_argument("--cases", default=DEFAULT_CASES, metavar="MODE:SESSIONS,...",
                    help="the runs of a round, modes handshake, implicit, submit "
                         "(default: %(default)s)")
    ap.add_argument("--count-handshake", type=int, default=1000, metavar="N",
                    help="sessions per handshake or implicit run (default: %(default)s)")
    ap.add_argument("--count-submit", type=int, default=500, metavar="N",
                    help="messages per submit run (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=100, metavar="N",
                    help="unmeasured submissions, then as many implicit-TLS handshakes, "
                         "to each server first, at 16 sessions (default: %(default)s)")
    ap.add_argument("--postfix-in-flow-delay", default="0s", metavar="TIME",
                    help="Postfix's in_flow_delay (default: %(default)s)")
    ap.add_argument("--client-quickack", action="store_true",
                    help="the load generator ACKs every segment at once (TCP_QUICKACK) "
                         "rather than as a client's kernel does (see bench/README.md)")
    args = ap.parse_args(argv)
    bench.check_common_args(ap, args)
    args.case_list = parse_cases(ap, args.cases)
    if not 1 <= args.count_handshake <= 1_000_000 or not 1 <= args.count_submit <= 1_000_000:
        ap.error("counts: between 1 and 1000000")
    if args.warmup < 0:
        ap.error("--warmup: 0 or more")
    return args


def main(argv):
    args = parse_args(argv)
    bench.check_environment()
    command = bench.command_line(argv)
    base = bench.make_workdir()
    creds = Credentials(USER, secrets.token_urlsafe(18))
    pf_port, pf_sub, pf_smtps, t_port, t_sub, t_smtps = bench.free_ports(6)
    servers = []
    meta = {}

    def count_for(mode):
        return args.count_submit if mode == "submit" else args.count_handshake

    def run_case(server, case):
        mode, sessions = case
        return run_tls_case(server, loadgen, creds, mode, sessions, count_for(mode),
                            args.time_limit, args.client_quickack)

    def label(case):
        return f"{case[0]:>9} x{case[1]:<3}"

    def describe(r):
        text = (f"{r['count']} in {r['seconds']:.2f}s = "
                f"{r['rate']:.1f}/s, p50 {r['latency_ms']['p50']:.1f} ms")
        if r["deliver_s"] is not None:
            text += f", delivered in {r['deliver_s']:.2f}s = {r['deliver_rate']:.1f}/s"
        return text

    def measure():
        meta.update(bench.base_meta(command, base, servers, args))
        meta["loadgen"] = shlex.join(loadgen_argv("submit_load", "submit", "PORT", "SESSIONS",
                                                  "COUNT", args.time_limit,
                                                  Credentials(USER, "PASSWORD"),
                                                  args.client_quickack))
        meta["certificate"] = "self-signed ECDSA P-256, the same file for both"
        meta["postfix_in_flow_delay"] = args.postfix_in_flow_delay
        for s in servers:
            if isinstance(s, TlsTern):
                h = s.password_hash()
                meta["tern_password_hash"] = h.rsplit("$", 1)[0] + "$..." if h else None
                meta["tern_hash_verify_ms"] = hash_verify_ms(creds.password, h) if h else None
        if args.warmup > 0:
            # Both listeners: Postfix has a pool of smtpd processes per service.
            for s in servers:
                for mode in ("submit", "implicit"):
                    r = run_tls_case(s, loadgen, creds, mode, 16, args.warmup, args.time_limit,
                                     args.client_quickack)
                    log(f"warm-up {s.name} {mode}: " + ("ok" if r["ok"] else r["error"]))
                s.drain(bench.DRAIN_TIMEOUT_S)
        runs = bench.run_rounds(servers, args.rounds, args.case_list, run_case, label,
                                describe)
        meta["loadavg_end"] = os.getloadavg()
        return runs

    try:
        cert, key = make_cert(base)
        loadgen = build_loadgen(base)
        if args.only in ("both", "postfix"):
            servers.append(TlsPostfix(os.path.join(base, "postfix"), pf_port,
                                      args.postfix_in_flow_delay,
                                      {"submission": pf_sub, "smtps": pf_smtps},
                                      cert, key, creds))
        if args.only in ("both", "tern"):
            servers.append(TlsTern(os.path.join(base, "tern"), t_port, args.tern,
                                   {"submission": t_sub, "smtps": t_smtps}, cert, key, creds))
    except BaseException:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        raise
    runs = bench.with_servers(servers, base, args.keep, measure)

    metrics = {"rate": "rate", "deliver": "deliver_rate"}
    summary = [bench.summary_row({"mode": m, "sessions": n}, runs,
                                 lambda r, m=m, n=n: r["mode"] == m and r["sessions"] == n,
                                 metrics)
               for m, n in args.case_list]
    tls = sorted({f"{r['server']}: {r['tls']}" for r in runs if r.get("tls")})

    print(f"command: {command}")
    print(f"load:    {meta.get('loadgen', '')}")
    print(f"versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    print(f"tls:     {'; '.join(tls) or 'n/a'}; {meta.get('certificate', '')}")
    if meta.get("tern_password_hash"):
        print(f"auth:    tern {meta['tern_password_hash']} "
              f"({meta['tern_hash_verify_ms'] or 0:.1f} ms CPU per check), "
              f"Postfix Cyrus sasldb (plain text)")
    print(f"median of {args.rounds} round(s), sessions/s (submit: messages/s, one per session)")
    print()
    bench.print_table(f"{'mode':>9} {'sess':>4}",
                      lambda row: f"{row['mode']:>9} {row['sessions']:>4}",
                      summary, [("rate", "rate"), ("delivered", "deliver")])

    goal = bench.check_goal(summary, {"mode": GOAL[0], "sessions": GOAL[1]}, "rate", GOAL[2],
                            f"tern >= {GOAL[2]:.0f}x Postfix on submissions (STARTTLS + AUTH "
                            f"+ 4 KB message) at {GOAL[1]} sessions")
    return bench.finish(args, meta, summary, goal, runs)


if __name__ == "__main__":
    bench.cli(main)
