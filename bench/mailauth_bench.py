#!/usr/bin/python3
"""tern vs Postfix with mail authentication (issue 11): inbound checking and
outbound DKIM signing.

Inbound: every message DKIM-signed (by dkimpy, beforehand) by a domain whose
SPF passes for 127.0.0.1 and whose DMARC record exists, all in a test DNS
(Debian's unbound, tests/dns/start-unbound.sh). Three servers in one
interleaved run: Postfix with the milters operators use for the job
(OpenDKIM verifying, OpenDMARC, postfix-policyd-spf-python as the policy
service), tern with its checks on and tern with them off. Every run checks
every delivered message for the verdicts (or, checks off, their absence).

Outbound: submissions from the relay network to a sink, signed by tern
(`dkim_sign`) and by Postfix + OpenDKIM (signing), and tern unsigned; each
sink keeps every message (smtp-sink -d, in /dev/shm) and after every run
each of them must carry a signature that dkimpy verifies (tern unsigned:
none).

Every run also takes the CPU time of each server's processes (milters and
policy service included; not the test DNS, the sinks or the load).

Uses bench.py's and relay_bench.py's servers and helpers; see
bench/README.md. Every wait is bounded in time; every loop in count.
"""

import email.parser
import email.utils
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import dkim
import dns.exception
import dns.resolver

import bench
import relay_bench
from bench import BenchError, log

# Not below "test.": libunbound (OpenDKIM's resolver) answers for that
# RFC 6761 name itself (NXDOMAIN) unless a config file says otherwise.
DOMAIN = "mailauth.bench"
SELECTOR = "bench"
SENDER = f"sender@{DOMAIN}"
HELO = f"client.{DOMAIN}"
DNS_DIR = os.path.join(bench.REPO, "tests", "dns")
START_UNBOUND = os.path.join(DNS_DIR, "start-unbound.sh")
# The test DNS's RSA-2048 key (tests/dns/dkim/), published for DOMAIN too.
KEY_FILE = os.path.join(DNS_DIR, "dkim", "rsa.key")
KEY_RECORD = os.path.join(DNS_DIR, "dkim", "rsa.dns")
# OpenDMARC and policyd-spf read /etc/resolv.conf, which names a server
# without a port: they run in a mount namespace whose resolv.conf names one
# of these addresses, on which the test DNS also listens at port 53.
RESOLV_ADDRS = ("127.0.53.53", "127.0.53.54", "127.0.53.55", "127.0.53.56")
# An address no client has (RFC 5737): the "local hosts" the milters and
# policyd-spf would otherwise skip (127.0.0.1 by default) are none.
NO_CLIENT = "192.0.2.1"
PF_AUTHSERV = "postfix.bench.test"  # bench.Postfix's myhostname
TERN_AUTHSERV = "bench.test"  # bench.Tern's hostname
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"
# Issue 11's goals at 16 sessions, 4 KB.
GOAL_AT = ("4K", 16)
GOAL_INBOUND = 3.0  # tern checking >= 3x Postfix + milters (acceptance)
GOAL_KEPT = 0.75  # tern checking >= 75% of tern not checking (acceptance)
GOAL_SIGN = 3.0  # tern signing >= 3x Postfix + OpenDKIM (relayed to sink)
# After a signing run: how long the sink's dumps may take to be all there.
DUMP_TIMEOUT_S = 30.0
# Where the sinks keep their dumps: memory, so that creating thousands of
# files a second adds no journal commits to the disk the MTAs fsync to.
DUMP_ROOT = "/dev/shm"

INBOUND_NAMES = ("postfix", "tern", "tern-nocheck")
INBOUND_RATIOS = {"ratio": ("tern", "postfix"), "kept": ("tern", "tern-nocheck")}
SIGN_NAMES = ("postfix", "tern", "tern-nosign")
SIGN_RATIOS = {"ratio": ("tern", "postfix"), "kept": ("tern", "tern-nosign")}


def in_namespace(argv, resolv_conf):
    """argv in a mount namespace of its own in which /etc/resolv.conf is
    resolv_conf (a bind mount, private: the system's file is untouched);
    the command's children inherit it."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv_conf, *argv]


def key_record():
    with open(KEY_RECORD) as f:
        return f.read().strip()


def zone_text(resolv_addr):
    """What the test zone (tests/dns/zone.conf.in) gets for this benchmark:
    a zone for DOMAIN with its SPF (the client's address), DMARC (p=reject)
    and DKIM key records, the HELO name's SPF, and a listener on
    resolv_addr port 53."""
    key = key_record()
    chunks = " ".join(f'"{key[i:i + 255]}"' for i in range(0, len(key), 255))
    spf = '"v=spf1 ip4:127.0.0.1 -all"'
    return "\n".join([
        "", "# Added by bench/mailauth_bench.py.", "server:",
        f'    local-zone: "{DOMAIN}." static',
        f"    interface: {resolv_addr}@53",
        f"    local-data: '{DOMAIN}. 300 IN TXT {spf}'",
        f"    local-data: '{HELO}. 300 IN TXT {spf}'",
        f"    local-data: '_dmarc.{DOMAIN}. 300 IN TXT \"v=DMARC1; p=reject\"'",
        f"    local-data: '{SELECTOR}._domainkey.{DOMAIN}. 300 IN TXT {chunks}'", ""])


def free_resolv_addr():
    """The first of RESOLV_ADDRS whose port 53 is free (UDP and TCP)."""
    for addr in RESOLV_ADDRS:
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((addr, 53))
        except OSError:
            continue
        return addr
    raise BenchError(f"port 53 taken on all of {', '.join(RESOLV_ADDRS)}")


class Dns:
    """The test DNS: tests/dns/start-unbound.sh run from a directory of its
    own, beside the test zone plus zone_text(), on 127.0.0.1:port and
    resolv_addr:53; resolv_conf names resolv_addr."""

    name = "dns"

    def __init__(self, base, port, resolv_addr):
        self.base = base
        self.port = port
        self.resolv_addr = resolv_addr
        self.resolv_conf = os.path.join(base, "resolv.conf")
        self.script = os.path.join(base, "start-unbound.sh")

    def setup(self):
        os.makedirs(self.base, exist_ok=True)
        with open(os.path.join(DNS_DIR, "zone.conf.in")) as f:
            zone = f.read()
        # start-unbound.sh reads the zone.conf.in beside it: a symlink to
        # the script here reads ours.
        with open(os.path.join(self.base, "zone.conf.in"), "w") as f:
            f.write(zone + zone_text(self.resolv_addr))
        if not os.path.lexists(self.script):
            os.symlink(START_UNBOUND, self.script)
        with open(self.resolv_conf, "w") as f:
            f.write(f"# bench/mailauth_bench.py: the test DNS\nnameserver {self.resolv_addr}\n")
        os.chmod(self.resolv_conf, 0o644)

    def start(self):
        bench.run_checked([self.script, str(self.port), self.base, str(os.getpid())], 30,
                          "tests/dns/start-unbound.sh")
        for addr, port in (("127.0.0.1", self.port), (self.resolv_addr, 53)):
            txt = self.query(addr, port, DOMAIN)
            if "v=spf1" not in txt:
                raise BenchError(f"test DNS at {addr}:{port}: TXT {DOMAIN} is {txt!r}")

    @staticmethod
    def query(addr, port, name):
        r = dns.resolver.Resolver(configure=False)
        r.nameservers, r.port, r.lifetime = [addr], port, 5.0
        try:
            return " ".join(b"".join(rr.strings).decode() for rr in r.resolve(name, "TXT"))
        except dns.exception.DNSException as e:
            raise BenchError(f"test DNS at {addr}:{port}: TXT {name}: {e}") from e

    def pid(self):
        try:
            with open(os.path.join(self.base, "unbound.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.pid()
        if pid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + bench.STOP_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)
        log(f"warning: unbound {pid} still running")

    def describe(self):
        out = subprocess.run(["unbound", "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=10).stdout
        return out.splitlines()[0].replace("Version ", "") if out else "unknown"


class Milter:
    """A milter daemon (OpenDKIM, OpenDMARC) in the foreground on
    127.0.0.1:port with a config file of its own, optionally in a mount
    namespace with the test DNS's resolv.conf."""

    def __init__(self, base, name, port, program, conf_flag, conf_text, resolv_conf=None):
        self.base = base
        self.name = name
        self.port = port
        self.program = program
        self.conf_flag = conf_flag
        self.conf_text = conf_text
        self.resolv_conf = resolv_conf
        self.conf = os.path.join(base, f"{name}.conf")
        self.logfile = os.path.join(base, f"{name}.log")
        self.proc = None

    def setup(self):
        os.makedirs(self.base, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(f"# Written by tern's bench/mailauth_bench.py.\n{self.conf_text}")
        os.chmod(self.conf, 0o644)

    def start(self):
        argv = [self.program, "-f", self.conf_flag, self.conf]
        if self.resolv_conf is not None:
            argv = in_namespace(argv, self.resolv_conf)
        self.proc = bench.spawn_daemon(self.name, argv, self.port, self.base, self.logfile)

    def stop(self):
        if self.proc is not None:
            proc, self.proc = self.proc, None
            bench.stop_group(proc, self.name)

    def describe(self):
        out = subprocess.run([self.program, "-V"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=10).stdout
        return out.splitlines()[0].split(": ", 1)[-1] if out else "unknown"


def write_list(path, *lines):
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))
    os.chmod(path, 0o644)


def opendkim_verifier(base, port, dns_port):
    """OpenDKIM verifying, its resolver (libunbound) told by Nameservers to
    forward every question to the test DNS (libunbound takes ADDRESS@PORT).
    Not ResolverConfiguration (a libunbound config file): under load its
    threads failed now and then on parse errors of that file (libunbound's
    config parser is not thread-safe), and milter_default_action = tempfail
    turned those into 451s."""
    hosts = os.path.join(base, "opendkim-internal-hosts")
    write_list(hosts, "# no client: mail from 127.0.0.1 is verified too", NO_CLIENT)
    return Milter(base, "opendkim-verify", port, "/usr/sbin/opendkim", "-x", f"""Mode v
Socket inet:{port}@127.0.0.1
AuthservID {PF_AUTHSERV}
InternalHosts file:{hosts}
Nameservers 127.0.0.1@{dns_port}
UserID opendkim:opendkim
Syslog no
""")


def opendmarc(base, port, resolv_conf):
    """OpenDMARC with the SPF verdict of policyd-spf (Received-SPF) and the
    DKIM verdict of OpenDKIM (Authentication-Results of our authserv-id);
    it refuses failures under p=reject, like tern's dmarc_policy = enforce,
    and records every message in its HistoryFile (what its aggregate
    reports are made from, as tern records a row per judged message). Its
    DNS is libresolv's: /etc/resolv.conf, so a mount namespace."""
    history = os.path.join(base, "opendmarc-history")
    with open(history, "w"):
        pass
    pw = pwd.getpwnam("opendmarc")
    os.chown(history, pw.pw_uid, pw.pw_gid)
    hosts = os.path.join(base, "opendmarc-ignore-hosts")
    write_list(hosts, "# no client: mail from 127.0.0.1 is judged too", NO_CLIENT)
    return Milter(base, "opendmarc", port, "/usr/sbin/opendmarc", "-c", f"""Socket inet:{port}@127.0.0.1
AuthservID {PF_AUTHSERV}
TrustedAuthservIDs {PF_AUTHSERV}
IgnoreHosts {hosts}
PublicSuffixList {PSL}
SPFSelfValidate false
SPFIgnoreResults false
RejectFailures true
HistoryFile {history}
UserID opendmarc:opendmarc
Syslog false
""", resolv_conf)


def opendkim_signer(base, port):
    """OpenDKIM signing mail from 127.0.0.0/8 with From at DOMAIN, the same
    key as tern, relaxed/relaxed, From over-signed."""
    key = os.path.join(base, "opendkim-sign.key")
    shutil.copyfile(KEY_FILE, key)
    pw = pwd.getpwnam("opendkim")
    os.chown(key, pw.pw_uid, pw.pw_gid)
    os.chmod(key, 0o600)
    return Milter(base, "opendkim-sign", port, "/usr/sbin/opendkim", "-x", f"""Mode s
Socket inet:{port}@127.0.0.1
Domain {DOMAIN}
Selector {SELECTOR}
KeyFile {key}
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
OversignHeaders From
InternalHosts 127.0.0.0/8
# The key lies below /tmp (world-writable, sticky): opendkim would refuse
# it. Read once at start-up, so no cost either way.
RequireSafeKeys false
UserID opendkim:opendkim
Syslog no
""")


def results_of(msg, authserv):
    """The text of every Authentication-Results field of `authserv`."""
    out = []
    for v in msg.get_all("Authentication-Results") or []:
        v = " ".join(str(v).split())
        if v.split(";", 1)[0].strip().lower() == authserv:
            out.append(v)
    return out


def find_verdicts(text, methods):
    """Of methods, those whose result in text is not pass."""
    return [m for m in methods if not re.search(rf"(^|[;\s]){m}=pass\b", text)]


def check_delivered(server, run):
    """After an inbound run: every message of the server's Maildir new/
    (the run's, at least run["count"]) passes server.judge(header section),
    which returns an error or None and keeps the last one as the sample."""
    new = os.path.join(server.maildir, "new")
    with os.scandir(new) as it:
        paths = sorted(e.path for e in it)
    if len(paths) < run["count"]:
        return f"{len(paths)} messages in new/, {run['count']} delivered before"
    parser = email.parser.BytesHeaderParser()
    for path in paths:
        with open(path, "rb") as f:
            err = server.judge(parser.parse(f))
        if err is not None:
            return f"new/{os.path.basename(path)}: {err}"
    return None


def tree_cpu(roots):
    """CPU seconds (user + system) used so far by the processes `roots`
    and all their descendants, alive or reaped (a reaped child's time is
    in its parent's cutime/cstime, proc(5)). One pass over /proc."""
    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile: its time is in its parent's now
        # After the ")": state, ppid, ... utime, stime, cutime, cstime are
        # fields 14-17 of proc(5), 11-14 here (0-based).
        stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [r for r in roots if r in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def with_cpu(server, fn):
    """fn()'s run with `cpu_s` (the CPU seconds of server.cpu_roots()
    during fn) and `cpu_ms_per_message`."""
    roots = server.cpu_roots()
    cpu0 = tree_cpu(roots)
    r = fn()
    r["cpu_s"] = tree_cpu(roots) - cpu0
    r["cpu_ms_per_message"] = 1000 * r["cpu_s"] / r["count"] if r["count"] else None
    return r


class CheckingPostfix(bench.Postfix):
    """bench.Postfix with the inbound checks operators add: OpenDKIM
    (verifying) and OpenDMARC as milters, postfix-policyd-spf-python as the
    policy service for every recipient (spawned by master, one process per
    smtpd). The whole instance starts in the test DNS's mount namespace,
    so the policy service's dnspython reads its resolv.conf."""

    def __init__(self, base, port, in_flow_delay, milters, resolv_conf):
        super().__init__(base, port, in_flow_delay)
        self.milters = milters
        self.resolv_conf = resolv_conf
        self.policy_conf = os.path.join(base, "policyd-spf.conf")

    def setup(self):
        os.makedirs(self.base, exist_ok=True)
        # Debian's policyd-spf.conf, except skip_addresses: its default
        # (127.0.0.0/8) would skip every message of this benchmark.
        write_list(self.policy_conf, "debugLevel = 1", "TestOnly = 1", "HELO_reject = Fail",
                   "Mail_From_reject = Fail", "PermError_reject = False",
                   "TempError_Defer = False", f"skip_addresses = {NO_CLIENT}/32")
        super().setup()

    def main_cf(self, uid, gid):
        milters = ", ".join(f"inet:127.0.0.1:{m.port}" for m in self.milters)
        return super().main_cf(uid, gid) + f"""
# Inbound checks (bench/mailauth_bench.py): SPF by the policy service,
# DKIM and DMARC by milters; a milter that fails answers 4xx (a failed run),
# never lets mail through unchecked.
smtpd_recipient_restrictions = check_policy_service unix:private/policyd-spf
policyd-spf_time_limit = 3600
smtpd_milters = {milters}
milter_default_action = tempfail
"""

    def master_cf(self):
        return super().master_cf() + (
            "policyd-spf unix -    n       n       -       0       spawn\n"
            f"  user=policyd-spf argv=/usr/bin/policyd-spf {self.policy_conf}\n")

    def start_argv(self):
        return in_namespace(super().start_argv(), self.resolv_conf)

    def cpu_roots(self):
        return [self.master_pid()] + [m.proc.pid for m in self.milters]

    def judge(self, msg):
        ar = " ".join(results_of(msg, PF_AUTHSERV))
        spf = " ".join(" ".join(str(v).split()) for v in msg.get_all("Received-SPF") or [])
        missing = find_verdicts(ar, ("dkim", "dmarc"))
        if not spf.lower().startswith("pass"):
            missing.insert(0, "spf")
        if missing:
            return (f"the checks did not all pass ({', '.join(missing)}): "
                    f"Received-SPF: {spf or '(none)'}; Authentication-Results: {ar or '(none)'}")
        self.sample = {"Received-SPF": spf, "Authentication-Results": results_of(msg, PF_AUTHSERV)}
        return None


class CheckingTern(bench.Tern):
    """bench.Tern with its checks on (checks=True, the default of
    mail_auth_checks) or off, asking the test DNS."""

    def __init__(self, base, port, binary, dns_port, checks):
        super().__init__(base, port, binary)
        self.name = "tern" if checks else "tern-nocheck"
        self.dns_port = dns_port
        self.checks = checks

    def config_text(self):
        return super().config_text() + f"""# Inbound checks (bench/mailauth_bench.py).
mail_auth_checks = {"yes" if self.checks else "no"}
resolver = 127.0.0.1:{self.dns_port}
"""

    def cpu_roots(self):
        return [self.proc.pid]

    def judge(self, msg):
        fields = msg.get_all("Authentication-Results") or []
        if not self.checks:
            if fields:
                return f"checks off, but it has Authentication-Results: {fields}"
            self.sample = {"Authentication-Results": []}
            return None
        ar = " ".join(results_of(msg, TERN_AUTHSERV))
        missing = find_verdicts(ar, ("spf", "dkim", "dmarc"))
        if missing:
            return (f"the checks did not all pass ({', '.join(missing)}): "
                    f"Authentication-Results: {ar or '(none)'}")
        self.sample = {"Authentication-Results": results_of(msg, TERN_AUTHSERV)}
        return None


class DumpSink(relay_bench.Sink):
    """relay_bench's sink that also writes every message into a file of its
    own (smtp-sink -d) in `dumps`, a directory in DUMP_ROOT: what the
    signing runs' checks read, and remove once read."""

    def __init__(self, base, name, port):
        super().__init__(base, name, port)
        self.dumps = None

    def argv(self):
        argv = super().argv()
        return argv[:-2] + ["-d", os.path.join(self.dumps, "%H%M%S.")] + argv[-2:]

    def setup(self):
        super().setup()
        root = DUMP_ROOT if os.path.isdir(DUMP_ROOT) else self.base
        self.dumps = tempfile.mkdtemp(prefix=f"tern-bench-{self.name}-", dir=root)
        pw = pwd.getpwnam("postfix")  # smtp-sink -u postfix writes them
        os.chown(self.dumps, pw.pw_uid, pw.pw_gid)

    def dump_names(self):
        with os.scandir(self.dumps) as it:
            return sorted(e.name for e in it)

    def remove_dumps(self, keep):
        if self.dumps is None:
            return
        if keep:
            log(f"kept {self.dumps}")
        else:
            shutil.rmtree(self.dumps, ignore_errors=True)


def dkim_dns(name, timeout=5):
    """dkimpy's DNS for the checks: the key record of SELECTOR at DOMAIN."""
    want = f"{SELECTOR}._domainkey.{DOMAIN}."
    got = name.decode() if isinstance(name, bytes) else name
    return key_record().encode() if got.rstrip(".") + "." == want else None


def signature_tags(msg_bytes):
    """The tags of every DKIM-Signature field of a message, in order."""
    msg = email.parser.BytesHeaderParser().parsebytes(msg_bytes)
    out = []
    for sig in msg.get_all("DKIM-Signature") or []:
        tags = {}
        for part in "".join(str(sig).split()).split(";"):
            k, _, v = part.partition("=")
            if k:
                tags[k] = v
        out.append(tags)
    return out


class Signing:
    """What the signing servers add to relay_bench's: after every run, each
    message at the sink (all of the run's, and any late one of an earlier
    run) must carry one DKIM-Signature of d=DOMAIN that dkimpy verifies, or
    none when the server does not sign; the dumps are removed then."""

    signs = True
    sample = None

    def check_dumps(self, count):
        """None, or what is wrong with the sink's dumps (at least `count`)."""
        sink = self.sink
        t0 = time.monotonic()
        _, err = bench.wait_count(lambda: len(sink.dump_names()), count, t0,
                                  t0 + DUMP_TIMEOUT_S, "dumps", "in the sink's directory")
        if err is not None:
            return err
        names = sink.dump_names()
        try:
            for name in names:
                with open(os.path.join(sink.dumps, name), "rb") as f:
                    data = f.read()
                err = self.judge_dump(data)
                if err is not None:
                    return f"{name}: {err}"
        finally:
            for name in names:
                os.unlink(os.path.join(sink.dumps, name))
        return None

    def judge_dump(self, data):
        sigs = signature_tags(data)
        # d, s, a, c of each: enough to tell them apart in an error.
        brief = [{k: t.get(k) for k in ("d", "s", "a", "c")} for t in sigs]
        if not self.signs:
            self.sample = {"signed": bool(sigs), "checked": "every message"}
            return None if not sigs else f"signed, but should not be: {brief}"
        if len(sigs) != 1:
            return f"{len(sigs)} DKIM-Signature fields, 1 expected: {brief}"
        tags = sigs[0]
        if tags.get("d") != DOMAIN or tags.get("s") != SELECTOR:
            return f"signed by d={tags.get('d')} s={tags.get('s')}, not {DOMAIN} {SELECTOR}"
        if not dkim.verify(data, dnsfunc=dkim_dns):
            return f"DKIM-Signature does not verify (dkimpy): {brief[0]}"
        self.sample = {"d": tags.get("d"), "s": tags.get("s"), "a": tags.get("a"),
                       "c": tags.get("c"), "h": tags.get("h"),
                       "checked": "every message verified by dkimpy"}
        return None


class SigningPostfix(Signing, relay_bench.RelayPostfix):
    """relay_bench's Postfix with OpenDKIM signing as its milter."""

    def __init__(self, base, port, in_flow_delay, sink, milter):
        super().__init__(base, port, in_flow_delay, sink)
        self.milter = milter

    def main_cf(self, uid, gid):
        return super().main_cf(uid, gid) + f"""
# Outbound signing (bench/mailauth_bench.py): OpenDKIM as the milter.
smtpd_milters = inet:127.0.0.1:{self.milter.port}
milter_default_action = tempfail
"""

    def cpu_roots(self):
        return [self.master_pid(), self.milter.proc.pid]


class SigningTern(Signing, relay_bench.RelayTern):
    """relay_bench's tern signing with dkim_sign (key_file set) or not."""

    def __init__(self, base, port, binary, sink, dns_port, key_file):
        super().__init__(base, port, binary, sink)
        self.dns_port = dns_port
        self.key_file = key_file
        self.signs = key_file is not None
        self.name = "tern" if self.signs else "tern-nosign"

    def config_text(self):
        text = super().config_text() + f"resolver = 127.0.0.1:{self.dns_port}\n"
        if self.signs:
            text += ("# Outbound signing (bench/mailauth_bench.py).\n"
                     f"dkim_sign = {DOMAIN} {SELECTOR} {self.key_file}\n")
        return text

    def cpu_roots(self):
        return [self.proc.pid]


def tern_key(base):
    """tern's copy of the key: root's, 0600 (the parent reads it)."""
    os.makedirs(base, exist_ok=True)
    key = os.path.join(base, "dkim-sign.key")
    shutil.copyfile(KEY_FILE, key)
    os.chmod(key, 0o600)
    return key


def signed_message(path, body_size):
    """A message of body_size bytes of body from SENDER to bench's
    recipient, DKIM-signed by dkimpy (RSA-2048, relaxed/relaxed), written
    with LF line ends (smtp-source -F sends each line with CRLF)."""
    headers = [f"From: Sender <{SENDER}>", f"To: <{bench.RECIPIENT}>",
               "Subject: mail authentication benchmark",
               f"Date: {email.utils.formatdate()}",
               f"Message-ID: <{os.urandom(8).hex()}@{DOMAIN}>",
               "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    line = "x" * 74 + "\r\n"
    body = line * (body_size // len(line))
    body += "y" * max(0, body_size - len(body) - 2) + "\r\n"
    msg = ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
    with open(KEY_FILE, "rb") as f:
        key = f.read()
    signed = dkim.sign(msg, SELECTOR.encode(), DOMAIN.encode(), key,
                       canonicalize=(b"relaxed", b"relaxed")) + msg
    if not dkim.verify(signed, dnsfunc=dkim_dns):
        raise BenchError("dkimpy does not verify the message it signed")
    with open(path, "wb") as f:
        f.write(signed.replace(b"\r\n", b"\n"))
    return path


def count_lines(paths, prefix=b""):
    """Lines (that start with prefix) of the files."""
    n = 0
    for path in paths:
        with open(path, "rb") as f:
            n += sum(1 for line in f if line.startswith(prefix))
    return n


def report_records(inbound):
    """What each checking side recorded for DMARC aggregate reports over
    the inbound runs (warm-up included), against the messages it accepted:
    OpenDMARC's HistoryFile (a record of several lines per message, each
    starting with a `job` line), tern's rows (<spool>/dmarc/*.rows, a line
    per message and policy domain)."""
    out = {}
    for s in inbound:
        if isinstance(s, CheckingPostfix):
            recs = count_lines([os.path.join(m.base, "opendmarc-history") for m in s.milters
                                if m.name == "opendmarc"], b"job ")
        elif s.checks:
            rows = os.path.join(s.spool, "dmarc")
            recs = (count_lines(os.path.join(rows, n) for n in os.listdir(rows)
                                if n.endswith(".rows")) if os.path.isdir(rows) else 0)
        else:
            continue
        out[s.name] = {"records": recs, "accepted": s.accepted}
    return out


def package_version(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=10)
    return p.stdout.strip() or "unknown"


def more_args(ap):
    ap.add_argument("--part", choices=("both", "inbound", "sign"), default="both",
                    help="inbound checking, outbound signing, or both (default: %(default)s)")
    # Issue 11 asks for at least 5 interleaved rounds.
    ap.set_defaults(rounds=5)


def check_tools():
    for tool in ("unshare", "mount", "/usr/sbin/opendkim", "/usr/sbin/opendmarc",
                 "/usr/bin/policyd-spf", "smtp-sink", "unbound"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found: bench/run.sh --mailauth installs the packages "
                             "(opendkim opendmarc postfix-policyd-spf-python)")
    for user in ("opendkim", "opendmarc", "policyd-spf"):
        try:
            pwd.getpwnam(user)
        except KeyError as e:
            raise BenchError(f"user {user!r} missing (its Debian package makes it)") from e


def sample_note(servers):
    notes = []
    for s in servers:
        if s.sample is None:
            continue
        text = "; ".join(f"{k}: {' | '.join(v) or '(none)' if isinstance(v, list) else v}"
                         for k, v in s.sample.items()) or "-"
        notes.append(f"         {s.name}: {text}")
    return notes


def print_cpu(args, runs, names, ratios, key):
    """Per (size, sessions): each server's median CPU time per message, and
    each ratio of the table round by round (the two runs of one round, back
    to back, for KEY: the rate of acceptance or the second figure), which
    shows how much the medians' ratio swung."""
    print()
    print("CPU per message, ms (median; the server's processes with their milters and "
          "policy service, not the DNS, sinks or load), and the ratios round by round:")
    for z in args.size_list:
        for n in args.session_list:
            sel = [r for r in runs if r["size_label"] == z and r["sessions"] == n]
            cells = []
            for name in names:
                v = bench.median_rate([r for r in sel if r["server"] == name],
                                      "cpu_ms_per_message")
                cells.append(f"{name} {v:.2f}" if v is not None else f"{name} n/a")
            print(f"{z:>5} {n:>4} | " + ", ".join(cells))
            for title, (num, den) in ratios.items():
                for metric in ("accept", key):
                    by = {(r["server"], r["round"]): r[f"{metric}_rate"] for r in sel if r["ok"]}
                    per = [bench.fmt_ratio(by.get((num, k)), by.get((den, k))).strip()
                           for k in range(1, args.rounds + 1)]
                    print(f"{'':>10} | {title} ({metric}) per round: {' '.join(per)}")


def main(argv):
    args = bench.parse_grid_args(argv, "mailauth_bench.py",
                                 "Benchmark tern against Postfix with OpenDKIM, OpenDMARC and "
                                 "policyd-spf: inbound checks and outbound signing.",
                                 sessions="16", sizes="4K", more_args=more_args)
    bench.check_environment()
    check_tools()
    command = bench.command_line(argv)
    base = bench.make_workdir()
    try:
        (dns_port, pf_in, t_in, t_off, dkim_v, dmarc_p, pf_out, t_out, t_nosign, dkim_s,
         pf_sink, t_sink, n_sink) = bench.free_ports(13)
        dns_srv = Dns(os.path.join(base, "dns"), dns_port, free_resolv_addr())
        milters_dir = os.path.join(base, "milters")
        os.makedirs(milters_dir)
        want_pf = args.only in ("both", "postfix")
        want_tern = args.only in ("both", "tern")
        inbound, signing, daemons = [], [], [dns_srv]
        if args.part in ("both", "inbound"):
            if want_pf:
                milters = [opendkim_verifier(milters_dir, dkim_v, dns_port),
                           opendmarc(milters_dir, dmarc_p, dns_srv.resolv_conf)]
                daemons += milters
                inbound.append(CheckingPostfix(os.path.join(base, "postfix-in"), pf_in,
                                               args.postfix_in_flow_delay, milters,
                                               dns_srv.resolv_conf))
            if want_tern:
                inbound += [CheckingTern(os.path.join(base, "tern-in"), t_in, args.tern,
                                         dns_port, True),
                            CheckingTern(os.path.join(base, "tern-nocheck"), t_off, args.tern,
                                         dns_port, False)]
        sinks = []
        if args.part in ("both", "sign"):
            if want_pf:
                signer = opendkim_signer(milters_dir, dkim_s)
                daemons.append(signer)
                sinks.append(DumpSink(base, "postfix", pf_sink))
                signing.append(SigningPostfix(os.path.join(base, "postfix-out"), pf_out,
                                              args.postfix_in_flow_delay, sinks[-1], signer))
            if want_tern:
                key = tern_key(os.path.join(base, "tern-out"))
                sinks.append(DumpSink(base, "tern", t_sink))
                signing.append(SigningTern(os.path.join(base, "tern-out"), t_out, args.tern,
                                           sinks[-1], dns_port, key))
                sinks.append(DumpSink(base, "tern-nosign", n_sink))
                signing.append(SigningTern(os.path.join(base, "tern-nosign"), t_nosign,
                                           args.tern, sinks[-1], dns_port, None))
        # The messages of the inbound runs, by size in bytes.
        files = {bench.SIZES[z]: signed_message(os.path.join(base, f"signed-{z}.eml"),
                                                bench.SIZES[z])
                 for z in args.size_list}
    except BaseException:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        raise
    meta = {}
    parts = {}

    def run_inbound(server, size, sessions, count, limit):
        r = with_cpu(server, lambda: bench.run_one(server, size, sessions, count, limit,
                                                   check_delivered, sender=SENDER, helo=HELO,
                                                   msg_file=files[size]))
        server.accepted += r["accepted"]
        return r

    def run_signing(server, size, sessions, count, limit):
        r = with_cpu(server, lambda: relay_bench.run_relay(server, size, sessions, count, limit,
                                                           sender=SENDER))
        # Every message at the sink checked, also after a failed run (its
        # dumps must not be left for the next).
        err = server.check_dumps(count if r["ok"] else 0)
        if r["ok"] and err is not None:
            r.update(ok=False, error=f"at the sink: {err}")
        return r

    def measure():
        mtas = inbound + signing
        meta.update(bench.grid_meta(command, base, [], args))
        for s in mtas:
            meta["versions"].setdefault("postfix" if s.name == "postfix" else "tern",
                                        s.describe())
        meta["versions"].update({
            "opendkim": package_version("opendkim"),
            "opendmarc": package_version("opendmarc"),
            "postfix-policyd-spf-python": package_version("postfix-policyd-spf-python"),
            "unbound": dns_srv.describe(),
        })
        meta["smtp_source_inbound"] = shlex.join(bench.smtp_source_argv(
            "PORT", "SESSIONS", "COUNT", "SIZE", sender=SENDER, helo=HELO,
            msg_file="signed-SIZE.eml"))
        meta["smtp_source_sign"] = shlex.join(bench.smtp_source_argv(
            "PORT", "SESSIONS", "COUNT", "SIZE", relay_bench.RELAY_RCPT, sender=SENDER))
        meta["resolv_addr"] = dns_srv.resolv_addr
        for s in mtas:
            s.sample = None
            s.accepted = 0
        if inbound:
            log("inbound: " + ", ".join(s.name for s in inbound))
            parts["inbound"] = bench.run_grid(args, inbound, run_inbound, "deliver", "delivered")
            meta["report_records"] = report_records(inbound)
        if signing:
            log("signing: " + ", ".join(s.name for s in signing))
            parts["sign"] = bench.run_grid(args, signing, run_signing, "relay", "relayed")
            for s in signing:
                s.stop()  # cached connections closed: the sinks' counts are final
            meta["sink_check"] = relay_bench.sink_check(signing)
        meta["samples"] = {f"{part}/{s.name}": s.sample for part, servers in
                           (("inbound", inbound), ("sign", signing)) for s in servers}
        meta["loadavg_end"] = os.getloadavg()
        return parts

    try:
        bench.with_servers(daemons + sinks + inbound + signing, base, args.keep, measure)
    finally:
        for sink in sinks:
            sink.remove_dumps(args.keep)
    return report(args, command, meta, parts, inbound, signing)


def report(args, command, meta, parts, inbound, signing):
    v = meta["versions"]
    print(f"command: {command}")
    # With --only, one of postfix and tern is not there.
    print("versions: " + ", ".join(v[k] if k == "tern" else f"{k} {v[k]}" for k in
                                   ("postfix", "tern", "opendkim", "opendmarc",
                                    "postfix-policyd-spf-python", "unbound") if k in v))
    print(f"dns:     tests/dns/start-unbound.sh + {DOMAIN} (SPF ip4:127.0.0.1, DMARC p=reject, "
          f"DKIM {SELECTOR}: RSA-2048); tern resolver and OpenDKIM Nameservers: "
          f"127.0.0.1:PORT; OpenDMARC and policyd-spf: resolv.conf -> "
          f"{meta['resolv_addr']}:53 in a mount namespace")
    print(f"median of {args.rounds} round(s), messages/s; "
          f"Postfix in_flow_delay = {args.postfix_in_flow_delay}")
    goals = []
    summary = {}
    at = {"size": GOAL_AT[0], "sessions": GOAL_AT[1]}
    if "inbound" in parts:
        summary["inbound"] = bench.grid_summary(args, parts["inbound"], "deliver",
                                                INBOUND_NAMES, INBOUND_RATIOS)
        print()
        print("inbound, checking (DKIM-signed mail, SPF pass, DMARC p=reject):")
        print(f"load:    {meta['smtp_source_inbound']}")
        rec = meta.get("report_records", {})
        if rec:
            what = {"postfix": "OpenDMARC HistoryFile records"}
            print("reports: DMARC report data recorded, warm-up included: " + "; ".join(
                f"{name} {c['records']} {what.get(name, 'rows')} for {c['accepted']} messages"
                for name, c in rec.items()))
        print("checked: every delivered message of every run; the last one of each:")
        for line in sample_note(inbound):
            print(line)
        print()
        bench.print_grid_table(summary["inbound"], "deliver", "delivered", INBOUND_NAMES,
                               INBOUND_RATIOS)
        print_cpu(args, parts["inbound"], INBOUND_NAMES, INBOUND_RATIOS, "deliver")
        goals.append(bench.check_goal(summary["inbound"], at, "accept", GOAL_INBOUND,
                                      f"tern checking accepts >= {GOAL_INBOUND:.0f}x Postfix + "
                                      f"OpenDKIM + OpenDMARC + policyd-spf at {GOAL_AT[1]} "
                                      f"sessions, {GOAL_AT[0]}"))
        goals.append(bench.check_goal(summary["inbound"], at, "accept", GOAL_KEPT,
                                      f"tern checking keeps >= {GOAL_KEPT:.0%} of its rate "
                                      f"not checking (accept) at {GOAL_AT[1]} sessions, "
                                      f"{GOAL_AT[0]}", key="accept_kept"))
    if "sign" in parts:
        summary["sign"] = bench.grid_summary(args, parts["sign"], "relay", SIGN_NAMES,
                                             SIGN_RATIOS)
        print()
        print("outbound, signing (from the relay network to a sink):")
        print(f"load:    {meta['smtp_source_sign']}")
        print("check:   " + "; ".join(
            f"{name} accepted {c['accepted']}, its sink received {c['received']}" +
            ("" if c["accepted"] == c["received"] else " (MISMATCH)")
            for name, c in meta["sink_check"].items()))
        print("checked: every message at the sinks after every run, its signature verified "
              "by dkimpy; the last one of each:")
        for line in sample_note(signing):
            print(line)
        print()
        bench.print_grid_table(summary["sign"], "relay", "relayed to sink", SIGN_NAMES,
                               SIGN_RATIOS)
        print_cpu(args, parts["sign"], SIGN_NAMES, SIGN_RATIOS, "relay")
        goals.append(bench.check_goal(summary["sign"], at, "relay", GOAL_SIGN,
                                      f"tern signing relays >= {GOAL_SIGN:.0f}x Postfix + "
                                      f"OpenDKIM at {GOAL_AT[1]} sessions, {GOAL_AT[0]}"))
    runs = [{**r, "part": part} for part, rs in parts.items() for r in rs]
    status = bench.finish(args, meta, summary, goals, runs)
    if any(c["accepted"] != c["received"] for c in meta.get("sink_check", {}).values()):
        status = 1
    return status


if __name__ == "__main__":
    bench.cli(main)
