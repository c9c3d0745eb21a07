"""ternlib: the integration harness for tern (server control, raw SMTP client, Maildir reading).
The fixtures that use it are in conftest.py.

Every server gets its own directory (config, users, aliases, Maildirs, spool, log) and a free
port on 127.0.0.1. The log (the daemon's stderr) is checked for sanitizer reports at teardown.

Environment:
  TERN_BIN        the binary (default /work/main/build/tern)
  TERN_SANITIZED  "1"/"ON"/"true" when the binary is built with ASan+UBSan (timeouts are scaled)
"""
import base64
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

TERN_BIN = os.environ.get("TERN_BIN", "/work/main/build/tern")
SANITIZED = os.environ.get("TERN_SANITIZED", "").strip().lower() in ("1", "on", "true", "yes")
# Everything that waits on the daemon is scaled when it runs under the sanitizers.
SLOW = 3.0 if SANITIZED else 1.0

HOSTNAME = "mx.test"
DEFAULT_USERS = ["alice", "bob@example.test", "carol", "dave", "erin", "frank"]
DEFAULT_ALIASES = ["team: alice, carol"]
# Users given a password by the TLS fixtures (the other default users have no hash).
PASSWORDS = {"alice": "alice-Pw-7c1e!", "bob@example.test": "bob-Pw-93fa%"}
# A leak report says "SUMMARY: AddressSanitizer: ... leaked"; "LeakSanitizer has encountered a
# fatal error" alone is LSan failing to run (e.g. in the chrooted net process), not a finding.
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:")


def scaled(seconds):
    return seconds * SLOW


# --------------------------------------------------------------------------- SMTP client


class ConnectionClosed(ConnectionError):
    """The server closed the connection before a complete reply."""


class Reply:
    """One (possibly multi-line) SMTP reply."""

    ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines  # texts after "NNN-" / "NNN "
        self.raw = raw  # bytes as received, CRLFs included

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        """The enhanced status code of the first line, or None."""
        m = self.ENH_RE.match(self.lines[0]) if self.lines else None
        return m.group(0).strip() if m else None

    def __repr__(self):
        return "Reply(%r)" % self.raw

    def __str__(self):
        return self.raw.decode("latin-1").rstrip("\r\n")


def parse_qid(reply):
    m = re.search(r"queued as (\S+)", reply.text)
    assert m, "no queue id in %r" % reply
    return m.group(1)


class SMTPClient:
    """A raw-socket SMTP client: sends exactly the bytes it is given and reads replies,
    multi-line aware, with timeouts."""

    def __init__(self, host, port, timeout=None, read_greeting=True, nodelay=True, source=None,
                 tls=None, server_hostname=HOSTNAME):
        """`tls`: an ssl.SSLContext for implicit TLS (smtps): the handshake comes before the
        greeting."""
        self.timeout = timeout if timeout is not None else scaled(15)
        self.sock = socket.create_connection((host, port), timeout=self.timeout,
                                             source_address=(source, 0) if source else None)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        if tls is not None:
            self.wrap(tls, server_hostname)
        self.greeting = self.read_reply() if read_greeting else None

    # -- TLS
    def wrap(self, context=None, server_hostname=HOSTNAME):
        """The TLS handshake on the open connection (raises ssl.SSLError / OSError on failure).
        Bytes already read and not consumed stay in the buffer: a caller checks it is empty."""
        self.sock = (context or client_context()).wrap_socket(self.sock, server_hostname=server_hostname)
        return self

    def starttls(self, context=None, server_hostname=HOSTNAME):
        """STARTTLS, 220 expected, nothing else may have arrived, then the handshake."""
        r = self.cmd("STARTTLS")
        assert r.code == 220 and r.enh == "2.0.0", "STARTTLS -> %s" % r
        assert self.buf == b"", "bytes after the 220 before the handshake: %r" % self.buf
        return self.wrap(context, server_hostname)

    @property
    def tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def peer_cert_der(self):
        return self.sock.getpeercert(binary_form=True)

    # -- raw I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def read_line(self, timeout=None):
        """One reply line including its line end."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            if self.eof:
                raise ConnectionClosed("connection closed; pending %r" % self.buf)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply line within timeout; pending %r" % self.buf)
            self._fill(left)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_reply(self, timeout=None):
        timeout = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + timeout
        lines, raw, code = [], b"", None
        while True:
            line = self.read_line(max(0.01, deadline - time.monotonic()))
            raw += line
            assert line.endswith(b"\r\n"), "reply line not ended by CRLF: %r" % line
            s = line[:-2].decode("utf-8", "replace")
            assert re.match(r"^\d{3}([ -]|$)", s), "malformed reply line %r" % line
            c = int(s[:3])
            assert code is None or c == code, "reply code changed inside a reply: %r" % raw
            code = c
            lines.append(s[4:])
            if len(s) == 3 or s[3] == " ":
                return Reply(code, lines, raw)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def auth_plain(self, user, password, initial=True):
        """AUTH PLAIN with the credentials as initial response or after the 334; returns the
        final reply."""
        cred = b64(b"\0" + user.encode() + b"\0" + password.encode())
        if initial:
            return self.cmd("AUTH PLAIN " + cred)
        r = self.cmd("AUTH PLAIN")
        assert r.code == 334 and r.lines == [""], "AUTH PLAIN -> %s (expected '334 ')" % r
        return self.cmd(cred)

    def auth_login(self, user, password, initial=False):
        if initial:
            r = self.cmd("AUTH LOGIN " + b64(user))
        else:
            r = self.cmd("AUTH LOGIN")
            assert r.code == 334 and r.lines == ["VXNlcm5hbWU6"], "AUTH LOGIN -> %s" % r
            r = self.cmd(b64(user))
        assert r.code == 334 and r.lines == ["UGFzc3dvcmQ6"], "AUTH LOGIN user -> %s" % r
        return self.cmd(b64(password))

    def wait_closed(self, timeout=None):
        """True when the server closes the connection within the timeout (pending data is
        discarded), False otherwise."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except socket.timeout:
                return False
            except OSError:
                return True
        return True

    def wait_server_read(self, timeout=None):
        """Waits until the server has read everything sent so far: our send queue is empty
        (all acknowledged) and the server's socket has nothing left unread (/proc/net/tcp).
        What a test waits for instead of a pause that lets the server catch up."""
        wait_peer_read(self.sock, timeout if timeout is not None else self.timeout)

    def no_reply_within(self, seconds):
        """True if nothing at all arrives within `seconds`."""
        if self.buf:
            return False
        try:
            self._fill(seconds)
        except socket.timeout:
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP RST (SO_LINGER 0): an abrupt disconnect."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- conveniences
    def ehlo(self, name="client.test"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, "EHLO refused: %s" % r
        return r

    def helo(self, name="client.test"):
        r = self.cmd("HELO " + name)
        assert r.code == 250, "HELO refused: %s" % r
        return r

    def expect(self, line, code, enh=None):
        r = self.cmd(line)
        assert r.code == code, "%r -> %s (expected %d)" % (line, r, code)
        if enh is not None:
            assert r.enh == enh, "%r -> %s (expected enhanced code %s)" % (line, r, enh)
        return r

    def mail(self, sender, rcpts, content, params=""):
        """A whole DATA transaction, one command at a time; `content` is raw message bytes
        with CRLF line ends (dot-stuffed here). Returns the final reply."""
        self.expect("MAIL FROM:<%s>%s" % (sender, params), 250, "2.1.0")
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250, "2.1.5")
        self.expect("DATA", 354)
        self.send(data_payload(content))
        return self.read_reply()


def tcp_queues(local, remote):
    """(send queue, receive queue) in octets of the IPv4 TCP socket from `local` to `remote`
    ((address, port) pairs), from /proc/net/tcp; None when there is no such socket."""
    def hexaddr(addr):
        return "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(addr[0]))[0], addr[1])
    want = (hexaddr(local), hexaddr(remote))
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def poll(probe, ok, timeout, describe, interval=0.05):
    """Calls probe() until ok(its value) holds and returns the value; after `timeout` seconds
    (scaled) raises AssertionError(describe(the last value))."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = probe()
        if ok(v):
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(describe(v))
        time.sleep(interval)


def wait_peer_read(sock, timeout=10):
    """Waits until the peer of the connected TCP socket `sock` (on this machine) has read
    everything sent to it: nothing unacknowledged on our side, nothing unread on its side."""
    mine, theirs = sock.getsockname()[:2], sock.getpeername()[:2]
    poll(lambda: (tcp_queues(mine, theirs), tcp_queues(theirs, mine)),
         lambda q: None not in q and q[0][0] == 0 and q[1][1] == 0, timeout,
         lambda q: "the peer has not read what was sent: (send, receive queue) ours %r, the peer's %r" % q,
         interval=0.01)


def read_maildir_folder(d):
    """The files (bytes) of one Maildir folder (new/ or cur/), oldest name first; a folder or a
    file that is not (or no longer) there is skipped."""
    try:
        names = sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for n in names:
        try:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        except FileNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- messages


def dot_stuff(content):
    """RFC 5321 §4.5.2: a leading '.' on a line is doubled."""
    out = []
    for line in content.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


def data_payload(content):
    """Content (CRLF line ends) as sent after 354, with the final dot."""
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return dot_stuff(content) + b".\r\n"


def make_message(subject="test", body="hello\r\n", msgid=None, extra_headers=(), frm="sender@example.org", to="alice@example.test"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    msgid = msgid or "<%s.%d@client.test>" % (re.sub(r"[^A-Za-z0-9]", "", subject)[:30], time.monotonic_ns())
    hdr = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n" % (frm, to, subject, msgid)
    for h in extra_headers:
        hdr += h + "\r\n"
    return hdr.encode("utf-8") + b"\r\n" + body


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def ehlo_keywords(reply):
    """{KEYWORD: parameters} of an EHLO reply (the first line is the greeting)."""
    out = {}
    for line in reply.lines[1:]:
        kw, _, params = line.partition(" ")
        out[kw.upper()] = params
    return out


def crlf_to_lf(b):
    return b.replace(b"\r\n", b"\n")


class Delivered:
    """A delivered Maildir file split into tern's prefix lines and the stored message."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw.split(b"\n")
        self.prefix = []  # Return-Path / Delivered-To lines, in file order
        i = 0
        while i < len(lines) and (lines[i].startswith(b"Return-Path:") or lines[i].startswith(b"Delivered-To:")):
            self.prefix.append(lines[i])
            i += 1
        self.return_path = next((l[len(b"Return-Path:"):].strip() for l in self.prefix if l.startswith(b"Return-Path:")), None)
        self.delivered_to = next((l[len(b"Delivered-To:"):].strip() for l in self.prefix if l.startswith(b"Delivered-To:")), None)
        # tern's own Received header: the first header of the message, with its folded lines.
        self.received_raw = None
        if i < len(lines) and lines[i].startswith(b"Received:"):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                j += 1
            self.received_raw = b"\n".join(lines[i:j])
            i = j
        self.received = (re.sub(rb"\n[ \t]+", b" ", self.received_raw).decode("latin-1") if self.received_raw is not None else None)
        self.content = b"\n".join(lines[i:])  # the message as the client sent it (LF line ends)

    def header(self, name):
        """Unfolded value of the first header `name` in the stored content, or None."""
        head = self.content.split(b"\n\n", 1)[0]
        m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*(.*(?:\n[ \t].*)*)", head)
        return re.sub(rb"\n[ \t]+", b" ", m.group(1)).decode("latin-1") if m else None


# --------------------------------------------------------------------------- TLS and users


def make_cert(directory, cn, name=None, sans=None):
    """A self-signed ECDSA P-256 certificate for `cn` (subjectAltName DNS:cn, or `sans`);
    returns (cert path, key path)."""
    name = name or cn.replace("*", "star")
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    san = ",".join("DNS:" + n for n in (sans or [cn]))
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "3650", "-subj", "/CN=" + cn,
                        "-addext", "subjectAltName=" + san],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    return cert, key


def cert_der(path):
    """DER bytes of the first certificate of a PEM file (compare with peer_cert_der())."""
    with open(path) as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def client_context(min_version=None, max_version=None, ciphers=None):
    """A client context that does not verify the (self-signed) certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def sha512_crypt(password):
    """A $6$ (SHA-512-crypt) hash made without tern."""
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode() + b"\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


# --------------------------------------------------------------------------- the server


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# Started as root, tern runs as `tern` (spool, queue) and delivers as `vmail` (Maildirs),
# the defaults of `user` and `mail_user`; scripts/deps.sh creates both users.
RUN_USER, MAIL_USER = "tern", "vmail"


def prepare_for_unprivileged(base, mail_root, users_path):
    """Root only: lets tern's unprivileged processes reach a test directory, as an operator's
    install does: the path traversable, the Maildir root the mail user's, the users file
    readable by the daemon's group (0640 root:tern, as the Debian package makes it)."""
    if os.geteuid() != 0:
        return
    import grp
    import pwd
    d = os.path.abspath(base)
    while d != "/":
        st = os.stat(d)
        if not st.st_mode & 0o001:
            os.chmod(d, (st.st_mode & 0o7777) | 0o011)
        d = os.path.dirname(d)
    mail = pwd.getpwnam(MAIL_USER)
    os.makedirs(mail_root, exist_ok=True)
    os.chown(mail_root, mail.pw_uid, mail.pw_gid)
    os.chmod(users_path, 0o640)
    os.chown(users_path, 0, grp.getgrnam(RUN_USER).gr_gid)


class TernServer:
    """One `tern serve` instance in its own directory."""

    def __init__(self, base, overrides=None, users=None, aliases=None, extra_lines=(), listeners=None,
                 passwords=None):
        """listeners: {name: "ROLE [cert=FILE key=FILE]"} added to the mx listener (name "mx",
        self.port), each on its own free port (self.ports[name]). passwords: {user: password},
        users added with `tern user add --stdin` (yescrypt hashes)."""
        self.base = str(base)
        os.makedirs(self.base, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.mail_root = os.path.join(self.base, "mail")
        self.spool = os.path.join(self.base, "spool")
        self.users_path = os.path.join(self.base, "users")
        self.aliases_path = os.path.join(self.base, "aliases")
        self.config_path = os.path.join(self.base, "tern.conf")
        self.log_path = os.path.join(self.base, "tern.log")
        self.proc = None
        self.starts = 0
        passwords = dict(passwords or {})
        users = [u for u in (DEFAULT_USERS if users is None else users) if u.split(":")[0].strip() not in passwords]
        with open(self.users_path, "w") as f:
            f.write("".join(u + "\n" for u in users))
        with open(self.aliases_path, "w") as f:
            f.write("".join(a + "\n" for a in (DEFAULT_ALIASES if aliases is None else aliases)))
        prepare_for_unprivileged(self.base, self.mail_root, self.users_path)
        settings = {
            "hostname": HOSTNAME,
            "listen": "127.0.0.1:%d mx" % self.port,
            "local_domains": "example.test, localhost",
            "users_file": self.users_path,
            "aliases_file": self.aliases_path,
            "maildir": self.mail_root + "/%d/%u/Maildir",
            "spool_dir": self.spool,
            "message_size_max": "1M",
            "rcpt_max": "100",
            "bad_commands_max": "20",
            "sessions_max": "2000",
            "sessions_per_ip": "50",
            "text_line_max": "1000",
            "bare_lf": "normalize",
            "timeout_command": "300",
            "timeout_data": "180",
            # Hermetic: no DNS query ever leaves the machine (nothing answers
            # on port 9, so remote mail is deferred); relay tests point this
            # at their own unbound.
            "resolver": "127.0.0.1:9",
            # SPF and DMARC ask DNS for every judged message: the tests that
            # look at them turn them on with the test DNS server.
            "mail_auth_checks": "no",
        }
        settings.update({k: str(v) for k, v in (overrides or {}).items()})
        with open(self.config_path, "w") as f:
            f.write("# written by tests/integration/conftest.py\n")
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))
            for line in extra_lines:
                f.write(line + "\n")
        self.settings = settings
        self.ports = {"mx": self.port}
        self.roles = {"mx": "mx"}
        with open(self.config_path, "a") as f:
            for name, spec in (listeners or {}).items():
                self.ports[name] = free_port()
                self.roles[name] = spec.split()[0]
                f.write("listen = 127.0.0.1:%d %s\n" % (self.ports[name], spec))
        for name, pw in passwords.items():
            self.add_user(name, pw)

    def add_user(self, name, password):
        p = subprocess.run([TERN_BIN, "user", "add", name, "--stdin", "-c", self.config_path],
                           input=password.encode() + b"\n", capture_output=True, timeout=scaled(60))
        assert p.returncode == 0, "tern user add %s: exit %d: %r" % (name, p.returncode, p.stdout + p.stderr)

    # -- life cycle
    def start(self, timeout=None):
        assert os.path.exists(TERN_BIN), "no tern binary at %s (set TERN_BIN)" % TERN_BIN
        self.starts += 1
        for attempt in range(3):
            before = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [TERN_BIN, "serve", "-c", self.config_path],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=self.base,
                start_new_session=True)
            logf.close()
            try:
                self.wait_ready(timeout if timeout is not None else scaled(15))
                return self
            except AssertionError:
                # free_port() only finds a port free for a moment: another test's
                # process may take it before tern binds it. Then: other ports.
                with open(self.log_path, "rb") as f:
                    f.seek(before)
                    lost_race = b"Address already in use" in f.read()
                if attempt == 2 or self.proc.poll() is None or not lost_race:
                    raise
                self._new_ports()

    def _new_ports(self):
        """Moves every listener to a new free port (after losing a race for one)."""
        with open(self.config_path) as f:
            text = f.read()
        for name, old in list(self.ports.items()):
            new = free_port()
            text = text.replace("127.0.0.1:%d " % old, "127.0.0.1:%d " % new)
            self.ports[name] = new
        self.port = self.ports["mx"]
        self.settings["listen"] = "127.0.0.1:%d mx" % self.port
        with open(self.config_path, "w") as f:
            f.write(text)

    def wait_ready(self, timeout):
        """Ready when the port accepts a connection and the greeting arrives."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("tern exited with %s during start-up; log:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.settimeout(max(0.5, deadline - time.monotonic()))
                    data = b""
                    while b"\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data.startswith(b"220"):
                        try:
                            s.sendall(b"QUIT\r\n")
                            s.recv(4096)
                        except OSError:
                            pass
                        return
                    last = data
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("tern not ready within %.0fs on port %d (last: %r); log:\n%s" % (timeout, self.port, last, self.log_tail()))

    def _signal_group(self, sig):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the group holds the parent and its children
        except ProcessLookupError:
            pass

    def kill9(self):
        """Crash: SIGKILL to the whole process group (parent and children at once)."""
        self._kill_all()
        if self.proc is not None:
            self.proc.wait(timeout=10)
        # Children reparented elsewhere would keep the port: wait until it is free.
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline and not self._group_gone():
            time.sleep(0.05)

    def group_pids(self):
        """Live (non-zombie) processes of the server's process group."""
        if self.proc is None:
            return []
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                out.append(int(d))
        return out

    def descendants(self):
        """PIDs of every live process below the server's parent (by PPID), in case a child
        left the process group."""
        if self.proc is None:
            return []
        ppid = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if fields[0] != "Z":
                ppid[int(d)] = int(fields[1])
        out, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in ppid.items() if pp == p]
            out.extend(kids)
            todo.extend(kids)
        return out

    def _kill_all(self):
        """SIGKILL to the group and to every descendant found by PPID."""
        pids = self.descendants()
        self._signal_group(signal.SIGKILL)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _group_gone(self):
        return not self.group_pids()

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status (None if killed)."""
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                rc = self.proc.wait(timeout=timeout if timeout is not None else scaled(10))
            except subprocess.TimeoutExpired:
                rc = None
        else:
            rc = self.proc.returncode
        # Whatever is left of the group (a stuck parent, orphaned children) goes now; children
        # of a parent that exited get a moment to follow it.
        deadline = time.monotonic() + (scaled(5) if self.proc.poll() is not None else 0)
        while not self._group_gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._group_gone() or self.proc.poll() is None:
            self._kill_all()
            self.proc.wait(timeout=10)
        return rc

    def restart(self, timeout=None):
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- observation
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern, timeout=10, count=1):
        """Waits until the log has `count` matches of the regex `pattern`; returns the last."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = list(re.finditer(pattern, self.log()))
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() >= deadline:
                raise AssertionError("%d log line(s) matching %r within %ss, expected %d; log tail:\n%s" % (
                    len(found), pattern, timeout, count, self.log_tail()))
            time.sleep(0.05)

    def sessions_open(self):
        """Inbound sessions the log shows opened and not yet closed ("connect from" lines less
        "disconnect from" lines): tern logs the disconnect once a session is gone."""
        log = self.log()
        return len(re.findall(r"(?<!dis)connect from ", log)) - len(re.findall(r"disconnect from ", log))

    def wait_sessions_open(self, n=0, timeout=10):
        """Waits until exactly n inbound sessions are left (see sessions_open): e.g. the
        readiness probe's session, or one a test closed, is gone from the server's count."""
        poll(self.sessions_open, lambda k: k == n, timeout,
             lambda k: "%d sessions open, expected %d within %ss; log tail:\n%s" % (k, n, timeout, self.log_tail()),
             interval=0.02)

    def sanitizer_report(self):
        text = self.log()
        for m in SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                return text[max(0, i - 2000):i + 4000]
        return None

    def maildir_path(self, user, domain="example.test"):
        return os.path.join(self.mail_root, domain, user, "Maildir")

    def maildir(self, user, domain="example.test"):
        """Delivered messages (bytes) in <maildir>/new, oldest name first."""
        return read_maildir_folder(os.path.join(self.maildir_path(user, domain), "new"))

    def all_messages(self):
        """(path, bytes) of every delivered file under the mail root (any user, any domain)."""
        out = []
        for root, dirs, files in os.walk(self.mail_root):
            if os.path.basename(root) != "new":
                continue
            for n in sorted(files):
                p = os.path.join(root, n)
                try:
                    with open(p, "rb") as f:
                        out.append((p, f.read()))
                except FileNotFoundError:
                    pass
        return out

    def wait_delivered(self, user, n, timeout=10, domain="example.test"):
        """Waits until `user` has at least n messages; returns them."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            msgs = self.maildir(user, domain)
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise AssertionError("%s@%s has %d message(s), expected %d within %ss; files under mail root: %s; log tail:\n%s" % (
                    user, domain, len(msgs), n, timeout, [p for p, _ in self.all_messages()], self.log_tail()))
            time.sleep(0.05)

    def wait_total(self, n, timeout=10):
        """Waits until at least n messages exist under the mail root; returns (path, bytes)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            msgs = self.all_messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise AssertionError("%d message(s) delivered, expected %d within %ss; log tail:\n%s" % (len(msgs), n, timeout, self.log_tail()))
            time.sleep(0.05)

    def find(self, marker):
        """Delivered files containing the bytes `marker`."""
        if isinstance(marker, str):
            marker = marker.encode()
        return [(p, m) for p, m in self.all_messages() if marker in m]

    def wait_find(self, marker, n=1, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = self.find(marker)
            if len(found) >= n:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError("%d delivered message(s) contain %r, expected %d; log tail:\n%s" % (len(found), marker, n, self.log_tail()))
            time.sleep(0.05)

    def queue_list(self):
        """`tern queue list` of this server: (exit status, output)."""
        p = subprocess.run([TERN_BIN, "queue", "list", "-c", self.config_path], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=scaled(30))
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def queue_ids(self):
        """The queue ids `tern queue list` shows, in its order."""
        rc, text = self.queue_list()
        assert rc == 0, "tern queue list -> %d: %s" % (rc, text)
        return re.findall(r"(?m)^([0-9A-F]{16})[ *!]", text)

    def pickup_pending(self):
        """Files `tern sendmail` left in the pickup directory that the daemon has not taken."""
        try:
            return sorted(os.listdir(os.path.join(self.spool, "pickup")))
        except FileNotFoundError:
            return []

    def wait_queue_idle(self, timeout=30):
        """Waits until the daemon's queue is empty (`tern queue list`) and nothing waits in the
        pickup directory: nothing is left that could still be delivered, or delivered again.
        The condition before asserting that something was not delivered, or delivered only
        once: a message is in the queue before its client hears 250, and nothing is delivered
        once it has left. Not for a test that leaves mail queued on purpose (deferred, held):
        such a test waits for a later log line of its own message."""
        poll(lambda: (self.queue_list(), self.pickup_pending()),
             lambda v: v[0][0] == 0 and v[0][1].strip() == "Mail queue is empty" and not v[1], timeout,
             lambda v: "queue not idle after %ss: tern queue list -> %d:\n%s\npickup: %s\nlog tail:\n%s" % (
                 timeout, v[0][0], v[0][1], v[1], self.log_tail()), interval=0.1)

    def queue_show(self, qid):
        """`tern queue show QID`: its text, or None when the message is not (or no longer) in
        the queue."""
        p = subprocess.run([TERN_BIN, "queue", "show", qid, "-c", self.config_path], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=scaled(30))
        return p.stdout.decode("utf-8", "replace") if p.returncode == 0 else None

    def wait_queue_state(self, qid, state, timeout=30):
        """Waits until `tern queue show QID` gives a "state:" matching the regex `state`
        ("waiting$", "waiting for a paused destination", "on hold"); returns the text."""
        def current():
            text = self.queue_show(qid)
            m = re.search(r"(?m)^state:\s+(.*)$", text or "")
            return text, m.group(1) if m else None
        return poll(current, lambda v: v[1] is not None and re.search(state, v[1]), timeout,
                    lambda v: "%s: state %r, expected %r within %ss:\n%s\nlog tail:\n%s" % (
                        qid, v[1], state, timeout, v[0], self.log_tail()), interval=0.1)[0]

    def recipient_states(self, qid):
        """{recipient address: status} of a queued message (`tern queue show`), {} once it has
        left the queue."""
        text = self.queue_show(qid)
        if text is None:
            return {}
        return {m.group(1): m.group(2) for m in re.finditer(r"(?m)^recipient:\s+<([^>]*)>\n(?:  .*\n)*?  status:\s+(\S+)", text)}

    def wait_recipient_done(self, qid, rcpt, timeout=30):
        """Waits until the queue has recorded the end of `rcpt`'s delivery (status other than
        pending), or the message has left the queue: it is not tried again."""
        st = poll(lambda: self.recipient_states(qid), lambda st: st.get(rcpt, "gone") != "pending", timeout,
                  lambda st: "%s: %s still pending after %ss: %r; log tail:\n%s" % (qid, rcpt, timeout, st, self.log_tail()),
                  interval=0.1)
        return st.get(rcpt, "gone")

    def settle(self, seconds=None):
        """Before asserting an absence: waits until the queue is idle (wait_queue_idle), never
        a fixed time. `seconds` is ignored (it was a sleep once)."""
        self.wait_queue_idle()

    # -- clients
    def connect(self, listener="mx", **kw):
        """A client of one listener; an smtps listener gets the TLS handshake first."""
        if self.roles[listener] == "smtps" and "tls" not in kw:
            kw["tls"] = client_context()
        return SMTPClient(self.host, self.ports[listener], **kw)

    def send_one(self, content, sender="sender@example.org", rcpts=("alice@example.test",), ehlo="client.test"):
        """Sends one message over a fresh session; returns (final reply, queue id or None)."""
        with self.connect() as c:
            c.ehlo(ehlo)
            r = c.mail(sender, list(rcpts), content)
            qid = parse_qid(r) if r.code == 250 else None
            c.cmd("QUIT")
        return r, qid


# --------------------------------------------------------------------------- relay peers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port_on(hosts, udp=False, tries=50):
    """A port free for TCP (and UDP when `udp`) on every address of `hosts` (all 127.0.0.x)."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for _ in range(tries):
        port = free_port()
        socks = []
        try:
            for h in hosts:
                for kind in kinds:
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no port free on %s after %d tries" % (hosts, tries))


class DNSServer:
    """The test DNS server: tests/dns/start-unbound.sh (Debian's unbound serving the zone
    "test." of tests/dns/zone.conf.in) on 127.0.0.1:self.port, its files in `directory`."""

    SCRIPT = os.path.join(REPO, "tests", "dns", "start-unbound.sh")

    def __init__(self, directory):
        self.dir = str(directory)
        self.port = None
        self.pid = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.port = free_port_on(["127.0.0.1"], udp=True)
        # With our pid, the script stops the server when this process ends (a crashed run).
        p = subprocess.run(["sh", self.SCRIPT, str(self.port), self.dir, str(os.getpid())],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert p.returncode == 0, "start-unbound.sh failed (%d): %s" % (
            p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace"))
        with open(os.path.join(self.dir, "unbound.pid")) as f:
            self.pid = int(f.read().strip())
        return self

    def stop(self):
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)


def parse_path_params(line):
    """(address, {PARAM: value or None}) of a "MAIL FROM:<a> P=V" / "RCPT TO:<a> P" line."""
    m = re.match(r"(?i)^(?:MAIL FROM|RCPT TO):\s*<([^>]*)>(.*)$", line)
    assert m, "not a MAIL/RCPT line: %r" % line
    params = {}
    for tok in m.group(2).split():
        k, eq, v = tok.partition("=")
        params[k.upper()] = v if eq else None
    return m.group(1), params


class SinkMessage:
    """One transaction a sink saw: the MAIL line, the RCPT lines, and the content
    (dot-unstuffed, CRLF line ends, final dot excluded)."""

    def __init__(self, session, mail):
        self.session = session
        self.mail = mail
        self.rcpt_lines = []      # every RCPT line of the transaction, in order
        self.rcpt_replies = []    # the sink's reply to each
        self.accepted = []        # RCPT lines answered 2xx
        self.pipelined = None     # lines that had arrived when MAIL was answered (MAIL first)
        self.raw_data = b""       # as received (dot-stuffed), final dot excluded; BDAT: the chunks
        self.data = b""           # unstuffed (BDAT: the chunks' octets as they came)
        self.bdat = []            # sizes of the BDAT chunks (empty: the content came with DATA)
        self.complete = False     # the final dot arrived
        self.final_reply = None   # the sink's reply to the final dot

    @property
    def sender(self):
        return parse_path_params(self.mail)[0]

    @property
    def mail_params(self):
        return parse_path_params(self.mail)[1]

    @property
    def recipients(self):
        return [parse_path_params(line)[0] for line in self.accepted]

    def rcpt_params(self, addr):
        for line in self.rcpt_lines:
            a, p = parse_path_params(line)
            if a.lower() == addr.lower():
                return p
        raise KeyError(addr)

    @property
    def tls(self):
        return self.session.tls

    def __repr__(self):
        return "SinkMessage(%r, %r, %d bytes)" % (self.mail, self.accepted, len(self.data))


class SinkSession:
    """One connection to a sink: everything said both ways, in order."""

    def __init__(self, peer):
        self.peer = peer
        # ("C", command) ("S", reply) ("TLS", version) ("DATA", octets) ("END", why)
        self.events = []
        self.tls = False
        self.tls_version = None
        self.messages = []    # SinkMessage of this session, complete or not
        self.plaintext_after_starttls = b""
        self.auth = []        # AUTH PLAIN attempts: (base64, authzid, user, password)
        self.ended = False

    @property
    def commands(self):
        return [t for k, t in self.events if k == "C"]

    def verbs(self):
        return [c.split(" ", 1)[0].split(":", 1)[0].upper() for c in self.commands]

    def __repr__(self):
        return "SinkSession(%s, tls=%s, %r)" % (self.peer, self.tls, self.events)


class _SinkStop(Exception):
    """The sink is stopping, the session's time is up, or the client closed."""


class _SinkConn:
    def __init__(self, sink, sock, deadline):
        self.sink = sink
        self.sock = sock
        self.buf = b""
        self.deadline = deadline

    def fill(self, until=None):
        """Reads more input; socket.timeout at `until`, _SinkStop at EOF or the session's end."""
        until = self.deadline if until is None else min(until, self.deadline)
        while True:
            if self.sink.stopping:
                raise _SinkStop("sink stopping")
            left = until - time.monotonic()
            if left <= 0:
                if until >= self.deadline:
                    raise _SinkStop("session time limit")
                raise socket.timeout("no input")
            self.sock.settimeout(min(0.2, left))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                raise _SinkStop("client closed")
            self.buf += chunk
            return

    def readline(self, until=None):
        while b"\n" not in self.buf:
            self.fill(until)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def send(self, data):
        self.sock.settimeout(10)
        self.sock.sendall(data)


class SinkServer:
    """A scriptable SMTP server on host:port (127.0.0.x) for the relay tests. Every session
    runs in its own thread, lasts at most `session_max` seconds, and is recorded
    (self.sessions); complete transactions answered 2xx are in self.messages.

    Capabilities (constructor): starttls=(cert, key) or None, size=N or None, pipelining,
    eightbitmime, dsn, smtputf8, enhanced (ENHANCEDSTATUSCODES), auth={user: password} or
    None (AUTH PLAIN, offered after STARTTLS only; 235 for a listed pair, 535 otherwise;
    every attempt is recorded in SinkSession.auth), chunking (CHUNKING, RFC 3030: BDAT),
    binarymime (BINARYMIME; BODY=BINARYMIME is refused without it), limits=(rcptmax,
    mailmax) or None (LIMITS RCPTMAX= MAILMAX=, RFC 9422, either may be None; a RCPT past
    RCPTMAX gets 452 4.5.3 and a MAIL past MAILMAX 451 4.5.3, both recorded in
    self.violations).
    Behaviour (attributes, may change while it runs):
      greeting         the greeting line ("220 ..."; "421 ..." refuses the session)
      ehlo_reply       None (the keyword list) or a refusal such as "502 5.5.2 no EHLO"
      mail_reply       reply to MAIL
      rcpt_replies     {address (any case): reply}; others get default_rcpt_reply
      data_reply       reply to DATA ("354 ...")
      dot_reply        reply to the final dot
      drop_at          None or when the sink closes the connection without a word:
                       "connect" (before the greeting), "mail", "rcpt", "data" (after the
                       first line of content), "dot" (after the final dot, before the reply)
      stall_at         the same moments: the sink stops answering (for stall_seconds at
                       most, then closes)
      fail_sessions    None (always) or how many more sessions drop_at/stall_at applies to
      delay_at         the same moments: the sink waits delay_seconds (or until the test sets
                       self.release), then goes on as usual; self.delaying is set when a wait
                       begins (a transfer is in flight)
      pipeline_wait    after MAIL, how long to wait for the rest of a pipelined group
                       (until a DATA line) before answering: SinkMessage.pipelined
    """

    def __init__(self, host, port, name=None, starttls=None, size=None, pipelining=True,
                 eightbitmime=True, dsn=True, smtputf8=True, enhanced=True, auth=None,
                 chunking=False, binarymime=False, limits=None):
        self.host, self.port = host, port
        self.name = name or "sink-%s" % host
        self.tls_context = None
        if starttls is not None:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(*starttls)
        self.size, self.pipelining, self.eightbitmime = size, pipelining, eightbitmime
        self.dsn, self.smtputf8, self.enhanced = dsn, smtputf8, enhanced
        self.auth = dict(auth) if auth is not None else None
        self.chunking, self.binarymime, self.limits = chunking, binarymime, limits
        self.violations = []  # what a client did against the LIMITS or BODY= offered
        self.greeting = "220 %s ESMTP sink" % self.name
        self.ehlo_reply = None
        self.mail_reply = "250 2.1.0 sender ok"
        self.rcpt_replies = {}
        self.default_rcpt_reply = "250 2.1.5 recipient ok"
        self.data_reply = "354 end with <CRLF>.<CRLF>"
        self.dot_reply = "250 2.0.0 ok: queued"
        self.drop_at = None
        self.stall_at = None
        self.fail_sessions = None
        self.stall_seconds = scaled(30)
        self.delay_at = None
        self.delay_seconds = scaled(3)
        self.delaying = threading.Event()
        self.release = threading.Event()
        self.pipeline_wait = scaled(2) if pipelining else 0
        self.session_max = scaled(120)
        self.sessions = []
        self.messages = []
        self.lock = threading.Lock()
        self.stopping = False
        self.listener = None
        self.threads = []
        self.socks = []

    # -- life cycle
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.2)
        self.listener = s
        self.stopping = False
        t = threading.Thread(target=self._accept_loop, args=(s,), name="sink-%s" % self.host,
                             daemon=True)
        self.threads.append(t)
        t.start()
        return self

    def stop(self):
        """Closes the listener and every session; the sink can be started again."""
        self.stopping = True
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        for t in list(self.threads):
            t.join(max(0.1, deadline - time.monotonic()))
        self.threads = [t for t in self.threads if t.is_alive()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self, listener):
        for _ in range(100000):  # bounded: at most this many connections
            if self.stopping:
                return
            try:
                sock, peer = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.socks.append(sock)
            t = threading.Thread(target=self._session, args=(sock, peer), daemon=True)
            self.threads.append(t)
            t.start()

    # -- observation
    def wait_for(self, what, predicate, timeout=10):
        """Polls predicate() (under the lock) until it returns something true; returns it."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            with self.lock:
                v = predicate()
            if v:
                return v
            if time.monotonic() >= deadline:
                with self.lock:
                    raise AssertionError("%s: %s not seen within %ss; sessions: %r" % (
                        self.name, what, timeout, self.sessions))
            time.sleep(0.05)

    def find(self, marker):
        """Accepted messages whose content holds `marker`."""
        if isinstance(marker, str):
            marker = marker.encode()
        with self.lock:
            return [m for m in self.messages if marker in m.data]

    def wait_find(self, marker, n=1, timeout=10):
        """Waits until n accepted messages contain `marker`; returns them."""
        if isinstance(marker, str):
            marker = marker.encode()

        def found():
            f = [m for m in self.messages if marker in m.data]
            return f if len(f) >= n else None
        return self.wait_for("%d message(s) with %r" % (n, marker), found, timeout)

    def wait_sessions(self, n, timeout=10):
        """Waits until n sessions have ended; returns all sessions."""
        def ended():
            return list(self.sessions) if sum(1 for s in self.sessions if s.ended) >= n else None
        return self.wait_for("%d ended session(s)" % n, ended, timeout)

    def transactions(self):
        """Every MAIL of every session (complete or not)."""
        with self.lock:
            return [m for s in self.sessions for m in s.messages]

    # -- the session
    def _failing(self, attr, moment):
        if getattr(self, attr) != moment:
            return False
        with self.lock:
            if self.fail_sessions is None:
                return True
            if self.fail_sessions <= 0:
                return False
            self.fail_sessions -= 1
            return True

    def _maybe_fail(self, sess, conn, moment):
        """True when the session ends here (dropped, or stalled then closed)."""
        if self.delay_at == moment:
            sess.events.append(("DELAY", moment))
            self.delaying.set()
            self.release.wait(min(self.delay_seconds, max(0.0, conn.deadline - time.monotonic())))
        if self._failing("drop_at", moment):
            sess.events.append(("END", "dropped at " + moment))
            return True
        if self._failing("stall_at", moment):
            sess.events.append(("END", "stalled at " + moment))
            until = min(conn.deadline, time.monotonic() + self.stall_seconds)
            for _ in range(1000000):  # input is read and ignored until `until`
                try:
                    conn.fill(until)
                except (socket.timeout, _SinkStop):
                    break
            return True
        return False

    def _reply(self, sess, conn, text):
        sess.events.append(("S", text))
        conn.send(text.encode("utf-8") + b"\r\n")

    def _keywords(self, sess):
        kws = []
        if self.pipelining:
            kws.append("PIPELINING")
        if self.size is not None:
            kws.append("SIZE %d" % self.size)
        if self.eightbitmime:
            kws.append("8BITMIME")
        if self.dsn:
            kws.append("DSN")
        if self.smtputf8:
            kws.append("SMTPUTF8")
        if self.enhanced:
            kws.append("ENHANCEDSTATUSCODES")
        if self.tls_context is not None and not sess.tls:
            kws.append("STARTTLS")
        if self.auth is not None and sess.tls:
            kws.append("AUTH PLAIN")
        if self.chunking:
            kws.append("CHUNKING")
        if self.binarymime:
            kws.append("BINARYMIME")
        if self.limits is not None:
            rcptmax, mailmax = self.limits
            kws.append(" ".join(["LIMITS"] + (["RCPTMAX=%d" % rcptmax] if rcptmax else [])
                                + (["MAILMAX=%d" % mailmax] if mailmax else [])))
        return kws

    def _auth(self, sess, conn, line):
        """AUTH PLAIN [initial-response] (RFC 4954, RFC 4616): records (base64, authzid,
        user, password) in sess.auth and answers 235 or 535."""
        words = line.split()
        if self.auth is None or not sess.tls or len(words) < 2 or words[1].upper() != "PLAIN":
            self._reply(sess, conn, "504 5.5.4 mechanism not supported")
            return
        if len(words) > 2:
            resp = words[2]
        else:
            self._reply(sess, conn, "334 ")
            resp = conn.readline().rstrip(b"\r\n").decode("ascii", "replace")
            sess.events.append(("C", resp))
        try:
            authzid, user, password = base64.b64decode(resp, validate=True).decode("utf-8").split("\0")
        except (ValueError, UnicodeDecodeError):
            sess.auth.append((resp, None, None, None))
            self._reply(sess, conn, "501 5.5.2 bad AUTH PLAIN response")
            return
        sess.auth.append((resp, authzid, user, password))
        if self.auth.get(user) == password:
            self._reply(sess, conn, "235 2.7.0 authenticated")
        else:
            self._reply(sess, conn, "535 5.7.8 authentication credentials invalid")

    def _session(self, sock, peer):
        sess = SinkSession(peer)
        with self.lock:
            self.sessions.append(sess)
        conn = _SinkConn(self, sock, time.monotonic() + self.session_max)
        try:
            self._run(sess, conn)
        except _SinkStop as e:
            sess.events.append(("END", str(e)))
        except (OSError, ssl.SSLError) as e:
            sess.events.append(("END", "error: %s" % e))
        finally:
            for s in {sock, conn.sock}:
                try:
                    s.close()
                except OSError:
                    pass
            with self.lock:
                if sock in self.socks:
                    self.socks.remove(sock)
                sess.ended = True

    def _run(self, sess, conn):
        if self._maybe_fail(sess, conn, "connect"):
            return
        self._reply(sess, conn, self.greeting)
        if not self.greeting.startswith("2"):
            return
        msg = None
        for _ in range(100000):  # bounded: commands per session
            raw = conn.readline()
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            sess.events.append(("C", line))
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "EHLO":
                msg = None
                if self.ehlo_reply:
                    self._reply(sess, conn, self.ehlo_reply)
                    continue
                lines = [self.name] + self._keywords(sess)
                self._reply(sess, conn, "\r\n".join(
                    "250%s%s" % ("-" if i < len(lines) - 1 else " ", text)
                    for i, text in enumerate(lines)))
            elif verb == "HELO":
                msg = None
                self._reply(sess, conn, "250 %s" % self.name)
            elif verb == "STARTTLS":
                if self.tls_context is None or sess.tls:
                    self._reply(sess, conn, "502 5.5.1 no STARTTLS here")
                    continue
                self._reply(sess, conn, "220 2.0.0 ready to start TLS")
                sess.plaintext_after_starttls = conn.buf
                conn.buf = b""
                conn.sock.settimeout(10)
                conn.sock = self.tls_context.wrap_socket(conn.sock, server_side=True)
                sess.tls = True
                sess.tls_version = conn.sock.version()
                sess.events.append(("TLS", sess.tls_version))
                msg = None
            elif verb == "AUTH":
                self._auth(sess, conn, line)
            elif verb == "MAIL":
                mailmax = self.limits[1] if self.limits else None
                if mailmax and len(sess.messages) >= mailmax:
                    self.violations.append("MAIL past MAILMAX=%d: %s" % (mailmax, line))
                    self._reply(sess, conn, "451 4.5.3 too many transactions in this session")
                    continue
                body = parse_path_params(line)[1].get("BODY", "")
                if (body or "").upper() == "BINARYMIME" and not self.binarymime:
                    self.violations.append("BODY=BINARYMIME not offered: %s" % line)
                    self._reply(sess, conn, "555 5.5.4 BODY=BINARYMIME not supported")
                    continue
                msg = SinkMessage(sess, line)
                sess.messages.append(msg)
                if self.pipeline_wait:
                    # What else of the group arrives before MAIL is answered.
                    until = time.monotonic() + self.pipeline_wait
                    while not re.search(rb"(?im)^(DATA|BDAT)\b", conn.buf):
                        try:
                            conn.fill(until)
                        except socket.timeout:
                            break
                msg.pipelined = [line] + [x.decode("utf-8", "replace")
                                          for x in conn.buf.split(b"\r\n") if x]
                if self._maybe_fail(sess, conn, "mail"):
                    return
                self._reply(sess, conn, self.mail_reply)
                if not self.mail_reply.startswith("2"):
                    msg = None
            elif verb == "RCPT":
                if msg is None:
                    self._reply(sess, conn, "503 5.5.1 MAIL first")
                    continue
                if self._maybe_fail(sess, conn, "rcpt"):
                    return
                addr = parse_path_params(line)[0].lower()
                replies = {k.lower(): v for k, v in self.rcpt_replies.items()}
                reply = replies.get(addr, self.default_rcpt_reply)
                rcptmax = self.limits[0] if self.limits else None
                if rcptmax and len(msg.rcpt_lines) >= rcptmax:
                    self.violations.append("RCPT past RCPTMAX=%d: %s" % (rcptmax, line))
                    reply = "452 4.5.3 too many recipients"
                msg.rcpt_lines.append(line)
                msg.rcpt_replies.append(reply)
                if reply.startswith("2"):
                    msg.accepted.append(line)
                self._reply(sess, conn, reply)
            elif verb == "DATA":
                if msg is not None and (msg.mail_params.get("BODY") or "").upper() == "BINARYMIME":
                    self.violations.append("DATA after BODY=BINARYMIME: %s" % msg.mail)
                    self._reply(sess, conn, "503 5.5.1 BODY=BINARYMIME requires BDAT")
                    continue
                if msg is None or not msg.accepted:
                    self._reply(sess, conn, "554 5.5.1 no valid recipients")
                    continue
                self._reply(sess, conn, self.data_reply)
                if not self.data_reply.startswith("3"):
                    msg = None
                    continue
                if not self._data(sess, conn, msg) or not self._content_end(sess, conn, msg):
                    return
                msg = None
            elif verb == "BDAT" and self.chunking:
                m = re.match(r"(?i)^BDAT (\d{1,10})( LAST)?$", line)
                if m is None:
                    self._reply(sess, conn, "501 5.5.4 syntax: BDAT size [LAST]")
                    return  # the chunk's length is unknown: the session cannot go on
                size, last = int(m.group(1)), m.group(2) is not None
                chunk = self._chunk(conn, size)
                if msg is None or not msg.accepted:
                    self._reply(sess, conn, "554 5.5.1 no valid recipients")
                    msg = None
                    continue
                msg.bdat.append(size)
                msg.raw_data += chunk
                msg.data += chunk
                if not last:
                    self._reply(sess, conn, "250 2.0.0 %d octets received" % size)
                    continue
                msg.complete = True
                sess.events.append(("DATA", len(msg.data)))
                if not self._content_end(sess, conn, msg):
                    return
                msg = None
            elif verb == "RSET":
                msg = None
                self._reply(sess, conn, "250 2.0.0 reset")
            elif verb == "NOOP":
                self._reply(sess, conn, "250 2.0.0 ok")
            elif verb == "QUIT":
                self._reply(sess, conn, "221 2.0.0 bye")
                sess.events.append(("END", "quit"))
                return
            else:
                self._reply(sess, conn, "502 5.5.2 command not recognized")

    def _content_end(self, sess, conn, msg):
        """The reply to the final dot or BDAT LAST; False when the session ends instead."""
        if self._maybe_fail(sess, conn, "dot"):
            return False
        msg.final_reply = self.dot_reply
        self._reply(sess, conn, self.dot_reply)
        if self.dot_reply.startswith("2"):
            with self.lock:
                self.messages.append(msg)
        return True

    def _chunk(self, conn, size):
        """The `size` octets of a BDAT chunk, exactly (RFC 3030 §2)."""
        for _ in range(10000000):  # bounded: reads per chunk
            if len(conn.buf) >= size:
                break
            conn.fill()
        chunk, conn.buf = conn.buf[:size], conn.buf[size:]
        return chunk

    def _data(self, sess, conn, msg):
        """Reads the content up to the final dot; False when the session ends inside it."""
        raw, data = [], []
        for _ in range(10000000):  # bounded: lines per message
            line = conn.readline()
            if line == b".\r\n":
                break
            raw.append(line)
            data.append(line[1:] if line.startswith(b".") else line)
            if len(raw) == 1 and self._maybe_fail(sess, conn, "data"):
                msg.raw_data, msg.data = b"".join(raw), b"".join(data)
                return False
        msg.raw_data, msg.data = b"".join(raw), b"".join(data)
        msg.complete = True
        sess.events.append(("DATA", len(msg.data)))
        return True


class PostfixPeer:
    """A private Postfix instance as a relay peer: bench/bench.py's Postfix (the one place
    that knows how to run Postfix unchrooted in a directory of its own), with smtpd on
    127.0.0.1:self.port, every recipient at `bench.test` delivered through virtual(8) into
    one Maildir (self.maildir), and everything else relayed to `relayhost` (e.g.
    "[127.0.0.1]:PORT"). Needs root (Postfix's master starts as root) and Debian's postfix
    (scripts/deps.sh). The directory is made world-searchable: Postfix's daemons run as the
    postfix user."""

    DOMAIN = "bench.test"

    def __init__(self, relayhost="", port=None):
        import sys
        import tempfile
        bench_dir = os.path.join(REPO, "bench")
        if bench_dir not in sys.path:
            sys.path.insert(0, bench_dir)
        import bench  # bench/bench.py
        self.bench = bench
        self.base = tempfile.mkdtemp(prefix="tern-postfix-")
        os.chmod(self.base, 0o755)
        self.port = port or free_port()
        self.pf = bench.Postfix(self.base, self.port, "0s")
        self.pf.relayhost = relayhost

    @property
    def maildir(self):
        return self.pf.maildir

    @property
    def maillog(self):
        return self.pf.maillog

    def start(self):
        self.pf.setup()
        self.pf.start()
        return self

    def stop(self):
        import shutil
        try:
            self.pf.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        try:
            with open(self.pf.maillog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def messages(self):
        """Delivered messages (bytes) in the Maildir's new/ and cur/, oldest name first."""
        return [m for sub in ("new", "cur") for m in read_maildir_folder(os.path.join(self.maildir, sub))]

    def wait_find(self, marker, n=1, timeout=20):
        if isinstance(marker, str):
            marker = marker.encode()
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = [m for m in self.messages() if marker in m]
            if len(found) >= n:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError("postfix: %d message(s) with %r, expected %d; maillog tail:\n%s" % (
                    len(found), marker, n, "\n".join(self.log().splitlines()[-30:])))
            time.sleep(0.05)
