#!/usr/bin/env python3
"""python-kv: a Trellis capability provider in Python, standard library only.

Serves wasi:keyvalue/store and wasi:keyvalue/atomics @0.2.0-draft from memory, one set of buckets per link
(keyed by source id and link name). Written from docs/protocol.md alone: "Provider contract" (host data, subjects,
link rules, health, shutdown, remote mode, conformance trace) and "Invocation protocol v1" (subjects, headers,
replies, value encoding). It speaks the NATS client protocol over a plain socket (CONNECT, SUB, PUB/HPUB,
MSG/HMSG, PING/PONG).

Started by a host:  trellis start provider /path/to/provider.py kv
Started by hand:    provider.py --provider-id kv --lattice default --nats-url nats://127.0.0.1:4222
Credentials and TLS (docs/security.md): from host data (`lattice_rpc_user_jwt` + `lattice_rpc_user_seed`, the seed
alone for an nkey user, and the Trellis extensions `lattice_rpc_user`/`_password`, `_token`, `_tls_ca`, `_tls_cert`,
`_tls_key`), or by hand with --nats-creds, --nats-nkey, --nats-user/--nats-password, --nats-token, --nats-tls-ca,
--nats-tls-cert/--nats-tls-key (env TRELLIS_NATS_* twins) and tls:// URLs. TLS uses the ssl module. Nkey and JWT
users need an Ed25519 signature, which the standard library does not offer: it is made with the system OpenSSL's
libcrypto (the library the ssl module links) through ctypes; without it only user/password, token and TLS work.
Limits: one NATS server URL (the first of a list), no chunked bodies (values up to about max_payload - 8 KiB), binary
value encoding only (no JSON form).
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from urllib.parse import unquote, urlparse

# ---- NATS client (just enough of the protocol) ---------------------------------------------------------------


class Msg:
    def __init__(self, subject, reply, headers, data):
        self.subject, self.reply, self.headers, self.data = subject, reply, headers, data


# ---- credentials: nkeys (Ed25519 through the system libcrypto) ------------------------------------------------


def _crc16(data):
    """CRC-16/XMODEM, as nkeys uses it."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _libcrypto():
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("crypto")
    if not name:
        raise RuntimeError("nkey/JWT authentication needs OpenSSL's libcrypto (not found); use a user/password or token")
    lib = ctypes.CDLL(name)
    lib.EVP_PKEY_new_raw_private_key.restype = ctypes.c_void_p
    lib.EVP_PKEY_new_raw_private_key.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.EVP_PKEY_get_raw_public_key.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    lib.EVP_MD_CTX_new.restype = ctypes.c_void_p
    lib.EVP_DigestSignInit.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.EVP_DigestSign.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t]
    lib.EVP_MD_CTX_free.argtypes = [ctypes.c_void_p]
    lib.EVP_PKEY_free.argtypes = [ctypes.c_void_p]
    return ctypes, lib


def nkey_sign(seed, nonce):
    """(public key "U...", base64url signature of nonce) for a user nkey seed "SU..."."""
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    if len(raw) != 36 or _crc16(raw[:34]) != int.from_bytes(raw[34:], "little") or seed[:2] != "SU":
        raise ValueError("not a user nkey seed")
    ctypes, lib = _libcrypto()
    pkey = lib.EVP_PKEY_new_raw_private_key(1087, None, raw[2:34], 32)  # EVP_PKEY_ED25519
    if not pkey:
        raise RuntimeError("libcrypto refused the Ed25519 key")
    ctx = lib.EVP_MD_CTX_new()
    try:
        pub = ctypes.create_string_buffer(32)
        n = ctypes.c_size_t(32)
        lib.EVP_PKEY_get_raw_public_key(pkey, pub, ctypes.byref(n))
        sig = ctypes.create_string_buffer(64)
        slen = ctypes.c_size_t(64)
        msg = nonce.encode()
        if lib.EVP_DigestSignInit(ctx, None, None, None, pkey) != 1 or lib.EVP_DigestSign(ctx, sig, ctypes.byref(slen), msg, len(msg)) != 1:
            raise RuntimeError("Ed25519 signing failed")
    finally:
        lib.EVP_MD_CTX_free(ctx)
        lib.EVP_PKEY_free(pkey)
    body = bytes([20 << 3]) + pub.raw
    public = base64.b32encode(body + _crc16(body).to_bytes(2, "little")).decode().rstrip("=")
    return public, base64.urlsafe_b64encode(sig.raw[:slen.value]).decode().rstrip("=")


def auth_from_host_data(hd):
    """The connection settings of host data (secrets stay in this dict; never log it)."""
    keys = ["user_jwt", "user_seed", "user", "password", "token", "tls_ca", "tls_cert", "tls_key"]
    return {k: hd.get("lattice_rpc_" + k) or "" for k in keys}


def read_file(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        sys.exit(f"cannot read {what} {path}: {e.strerror}")


def auth_from_args(args):
    """Remote mode: --nats-* flags / TRELLIS_NATS_* variables -> the host data connection fields."""
    a = {"user_jwt": "", "user_seed": "", "user": args.nats_user or "", "password": args.nats_password or "",
         "token": args.nats_token or "", "tls_ca": "", "tls_cert": "", "tls_key": ""}
    given = [n for n in ("nats_creds", "nats_nkey", "nats_user", "nats_token") if getattr(args, n)]
    if len(given) > 1:
        sys.exit("give one way to authenticate, not " + " and ".join("--" + g.replace("_", "-") for g in given))
    if bool(args.nats_user) != bool(args.nats_password):
        sys.exit("--nats-user and --nats-password go together")
    if args.nats_creds:
        blocks = [ln.strip() for ln in read_file(args.nats_creds, "--nats-creds").splitlines()]
        vals = [blocks[i + 1] for i, ln in enumerate(blocks[:-1]) if ln.startswith("-----BEGIN")]
        if len(vals) < 2 or not vals[1].startswith("SU"):
            sys.exit("--nats-creds is not a NATS .creds file")
        a["user_jwt"], a["user_seed"] = vals[0], vals[1]
    if args.nats_nkey:
        seeds = [w for w in read_file(args.nats_nkey, "--nats-nkey").split() if w.startswith("SU")]
        if not seeds:
            sys.exit("--nats-nkey holds no user nkey seed (a line starting with SU)")
        a["user_seed"] = seeds[0]
    for k, flag in (("tls_ca", "nats_tls_ca"), ("tls_cert", "nats_tls_cert"), ("tls_key", "nats_tls_key")):
        if getattr(args, flag):
            a[k] = read_file(getattr(args, flag), "--" + flag.replace("_", "-"))
    return a


class Nats:
    """A minimal synchronous NATS client: one socket, one reader, messages handed out one at a time."""

    def __init__(self, url, name, auth=None):
        auth = dict(auth or {})
        u = urlparse(url.split(",")[0].strip())
        if u.username is not None:                      # credentials in the URL
            if u.password is not None:
                auth["user"], auth["password"] = unquote(u.username), unquote(u.password)
            else:
                auth["token"] = unquote(u.username)
        host = u.hostname or "127.0.0.1"
        self.sock = socket.create_connection((host, u.port or 4222), timeout=5)
        self.buf = bytearray()
        self.pending = []
        self.sid = 0
        self.pongs = 0
        self.closed = False
        line = self._line(block=True)
        self.info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
        want_tls = u.scheme == "tls" or bool(auth.get("tls_ca")) or bool(auth.get("tls_cert"))
        if self.info.get("tls_required") or want_tls:
            if want_tls and not (self.info.get("tls_required") or self.info.get("tls_available")):
                raise ConnectionError("TLS was asked for but the NATS server does not offer it")
            self.sock = self._tls(host, auth)
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "lang": "python-stdlib", "version": "0.1.0", "name": name}
        nonce = self.info.get("nonce")
        if auth.get("user_seed") and nonce:
            public, sig = nkey_sign(auth["user_seed"], nonce)
            connect["sig"] = sig
            if auth.get("user_jwt"):
                connect["jwt"] = auth["user_jwt"]
            else:
                connect["nkey"] = public
        elif auth.get("user"):
            connect["user"], connect["pass"] = auth["user"], auth.get("password", "")
        elif auth.get("token"):
            connect["auth_token"] = auth["token"]
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self.flush()
        self.sock.settimeout(0.5)

    def _tls(self, host, auth):
        """Upgrades the socket after INFO: the CA of host data (or the system's), a client certificate when given."""
        ctx = ssl.create_default_context(cadata=auth["tls_ca"]) if auth.get("tls_ca") else ssl.create_default_context()
        if auth.get("tls_cert") and auth.get("tls_key"):
            # load_cert_chain takes files only: a private temporary directory, removed at once
            with tempfile.TemporaryDirectory() as d:
                cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
                for path, text in ((cert, auth["tls_cert"]), (key, auth["tls_key"])):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(text)
                ctx.load_cert_chain(cert, key)
        return ctx.wrap_socket(self.sock, server_hostname=host)

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS connection closed")
        self.buf += chunk

    def _line(self, block):
        while b"\r\n" not in self.buf:
            if not block:
                return None
            self._recv()
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _parse(self):
        """One complete protocol item from the buffer, or None. Returns a Msg, or "PONG"/"OTHER"."""
        i = self.buf.find(b"\r\n")
        if i < 0:
            return None
        parts = bytes(self.buf[:i]).split()
        op = parts[0].upper() if parts else b""
        if op in (b"MSG", b"HMSG"):
            hdr_len = int(parts[-2]) if op == b"HMSG" else 0
            total = int(parts[-1])
            if len(self.buf) < i + 2 + total + 2:
                return None
            body = bytes(self.buf[i + 2:i + 2 + total])
            del self.buf[:i + 2 + total + 2]
            reply = parts[3].decode() if len(parts) == (6 if op == b"HMSG" else 5) else None
            headers = {}
            if hdr_len:
                lines = body[:hdr_len].decode("utf-8", "replace").split("\r\n")
                status = lines[0].split()
                if len(status) > 1:                       # "NATS/1.0 503" (no responders), "NATS/1.0 408"…
                    headers["status"] = status[1]
                for h in lines[1:]:
                    if ":" in h:
                        k, v = h.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
            return Msg(parts[1].decode(), reply, headers, body[hdr_len:])
        del self.buf[:i + 2]
        if op == b"PING":
            self.sock.sendall(b"PONG\r\n")
        elif op == b"PONG":
            return "PONG"
        elif op == b"-ERR":
            log("warn", "NATS server error", error=b" ".join(parts[1:]).decode())
        elif op == b"INFO":
            self.info.update(json.loads(bytes(parts[1]) if len(parts) > 1 else b"{}"))
        return "OTHER"

    def next(self):
        """The next message, or None after about 0.5 s without one."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            item = self._parse()
            if isinstance(item, Msg):
                return item
            if item == "PONG":
                self.pongs += 1
            if item is None:
                try:
                    self._recv()
                except socket.timeout:
                    return None

    def flush(self):
        """PING, then read (keeping messages for later) until the PONG: the server has everything sent before."""
        want = self.pongs + 1
        self.sock.sendall(b"PING\r\n")
        while self.pongs < want:
            item = self._parse()
            if isinstance(item, Msg):
                self.pending.append(item)
            elif item == "PONG":
                self.pongs += 1
            elif item is None:
                try:
                    self._recv()
                except socket.timeout:
                    pass

    def subscribe(self, subject, queue=None):
        self.sid += 1
        self.sock.sendall(f"SUB {subject} {queue + ' ' if queue else ''}{self.sid}\r\n".encode())
        return self.sid

    def publish(self, subject, data, reply=None, headers=None):
        r = f" {reply}" if reply else ""
        if headers:
            hdr = ("NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
            self.sock.sendall(f"HPUB {subject}{r} {len(hdr)} {len(hdr) + len(data)}\r\n".encode() + hdr + data + b"\r\n")
        else:
            self.sock.sendall(f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n")

    def request(self, subject, data, timeout):
        """Request/reply through a private inbox; other messages are kept for later."""
        inbox = "_INBOX." + uuid.uuid4().hex
        sid = self.subscribe(inbox)
        self.publish(subject, data, reply=inbox)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                item = self._parse()
                if isinstance(item, Msg):
                    if item.subject == inbox:
                        if "status" in item.headers and not item.data:
                            return None                       # no responders: nobody answered
                        return item
                    self.pending.append(item)
                elif item == "PONG":
                    self.pongs += 1
                elif item is None:
                    try:
                        self._recv()
                    except socket.timeout:
                        pass
            return None
        finally:
            self.sock.sendall(f"UNSUB {sid}\r\n".encode())

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
            self.sock.close()
        except OSError:
            pass


# ---- logging and the conformance trace -------------------------------------------------------------------------

LOG_LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50}
LOG = {"level": 30, "provider_id": ""}


def log(level, msg, **fields):
    if LOG_LEVELS.get(level, 30) >= LOG["level"]:
        rec = {"level": level, "msg": msg, "provider_id": LOG["provider_id"], **fields}
        sys.stderr.write(json.dumps(rec) + "\n")
        sys.stderr.flush()


def trace(settings, event, /, **fields):
    if settings.get("trellis_conformance_trace") == "stdout":
        sys.stdout.write("TRELLIS_TRACE " + json.dumps({"event": event, **fields, "t": time.time() * 1000}) + "\n")
        sys.stdout.flush()


# ---- value encoding (docs/protocol.md §5) -------------------------------------------------------------------------


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        if self.pos >= len(self.data):
            raise ValueError("truncated value")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self, max_bits=64):
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= max_bits + 7:
                raise ValueError("LEB128 too long")
        if result >= 1 << max_bits:
            raise ValueError("integer out of range")
        return result

    def raw(self):
        n = self.uleb(32)
        if self.pos + n > len(self.data):
            raise ValueError("truncated value")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def string(self):
        return self.raw().decode("utf-8")

    def option(self, read):
        tag = self.byte()
        if tag > 1:
            raise ValueError("bad option byte")
        return read() if tag else None

    def end(self):
        if self.pos != len(self.data):
            raise ValueError("trailing bytes after the params")


def uleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def enc_bytes(b):
    return uleb(len(b)) + b


def enc_string(s):
    return enc_bytes(s.encode("utf-8"))


def ok(payload=b""):
    return b"\x00" + payload            # result::ok (+ payload)


def err_other(message):
    return b"\x01" + uleb(2) + enc_string(message)   # result::err(error::other(message)); case 2 of the variant


U64_MAX = (1 << 64) - 1

# ---- xkey open: sealed link secrets (docs/protocol.md §P5, reference §6.3) ------------------------------------
# nkeys "seal" = "xkv1" + 24-byte nonce + NaCl box (X25519, XSalsa20-Poly1305). Standard library only, so the three
# primitives are written out (RFC 7748 X25519, Salsa20/HSalsa20, Poly1305). Only opening is needed.

_P25519 = 2 ** 255 - 19
_M32 = 0xFFFFFFFF
_SIGMA = [int.from_bytes(b"expand 32-byte k"[i:i + 4], "little") for i in range(0, 16, 4)]


def _x25519(k, u):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        if swap ^ kt:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % _P25519, (x2 - z2) % _P25519
        aa, bb = a * a % _P25519, b * b % _P25519
        e = (aa - bb) % _P25519
        c, d = (x3 + z3) % _P25519, (x3 - z3) % _P25519
        da, cb = d * a % _P25519, c * b % _P25519
        x3, z3 = (da + cb) ** 2 % _P25519, x1 * (da - cb) ** 2 % _P25519
        x2, z2 = aa * bb % _P25519, e * (aa + 121665 * e) % _P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P25519 - 2, _P25519) % _P25519).to_bytes(32, "little")


def _salsa_rounds(x):
    def rotl(v, c):
        return ((v << c) & _M32) | (v >> (32 - c))
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                           (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= rotl((x[a] + x[d]) & _M32, 7)
            x[c] ^= rotl((x[b] + x[a]) & _M32, 9)
            x[d] ^= rotl((x[c] + x[b]) & _M32, 13)
            x[a] ^= rotl((x[d] + x[c]) & _M32, 18)
    return x


def _salsa_state(key, inp):
    k = [int.from_bytes(key[i:i + 4], "little") for i in range(0, 32, 4)]
    n = [int.from_bytes(inp[i:i + 4], "little") for i in range(0, 16, 4)]
    return [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]


def _hsalsa20(key, inp):
    z = _salsa_rounds(_salsa_state(key, inp))
    return b"".join(z[i].to_bytes(4, "little") for i in (0, 5, 10, 15, 6, 7, 8, 9))


def _xsalsa20_stream(key, nonce, length):
    sub = _hsalsa20(key, nonce[:16])
    out = bytearray()
    counter = 0
    while len(out) < length:
        st = _salsa_state(sub, nonce[16:24] + counter.to_bytes(8, "little"))
        z = _salsa_rounds(list(st))
        out += b"".join(((z[i] + st[i]) & _M32).to_bytes(4, "little") for i in range(16))
        counter += 1
    return bytes(out[:length])


def _poly1305(msg, key):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + int.from_bytes(key[16:32], "little")) & ((1 << 128) - 1)).to_bytes(16, "little")


def _nkey_raw(key, skip):
    raw = base64.b32decode(key + "=" * (-len(key) % 8))
    return raw[skip:skip + 32]


def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def xkey_public(seed):
    """The public key ("X...") of an xkey seed ("SX...")."""
    pub = _x25519(_nkey_raw(seed, 2), (9).to_bytes(32, "little"))
    raw = bytes([23 << 3]) + pub
    crc = _crc16(raw)
    return base64.b32encode(raw + bytes([crc & 0xFF, crc >> 8])).decode().rstrip("=")


def xkey_open(sealed, seed, sender):
    """Opens what `sender` ("X...") sealed to the key of `seed`; raises ValueError when it does not verify."""
    sealed = bytes(sealed)
    if sealed[:4] != b"xkv1" or len(sealed) < 4 + 24 + 16:
        raise ValueError("not an xkv1 sealed message")
    nonce, box = sealed[4:28], sealed[28:]
    k = _hsalsa20(_x25519(_nkey_raw(seed, 2), _nkey_raw(sender, 1)), bytes(16))
    stream = _xsalsa20_stream(k, nonce, 32 + len(box) - 16)
    if _poly1305(box[16:], stream[:32]) != box[:16]:
        raise ValueError("sealed message does not verify (wrong keys or changed in transit)")
    return bytes(a ^ b for a, b in zip(box[16:], stream[32:]))


# ---- tracing (docs/protocol.md "Trace context" and "Explain", ADR 0025) --------------------------------------

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Tracing:
    """Reads the caller's W3C trace context; records the call's span when the trace is explained (published on
    NATS) or when host data's otel_config names a traces endpoint (posted as OTLP/JSON from a background thread)."""

    def __init__(self, hd, nc):
        o = hd.get("otel_config") or {}
        self.enabled = o.get("trellis_tracing") is not False
        on = o.get("enable_traces") or o.get("enable_observability")
        self.url = o.get("traces_endpoint") if on and isinstance(o.get("traces_endpoint"), str) else None
        self.service = o.get("service_name") or hd["provider_key"]
        self.nc, self.lattice = nc, hd["lattice_rpc_prefix"]
        self.attrs = {"trellis.host_id": hd.get("host_id", ""), "trellis.provider.id": hd["provider_key"],
                      "trellis.provider.instance_id": hd.get("instance_id", "")}
        self.batch, self.lock = [], threading.Lock()

    def server(self, headers, iface_fn, source, link_name):
        """A span dict for an arriving call, or None when nothing is recorded."""
        if not self.enabled:
            return None
        m = _TRACEPARENT.match((headers.get("traceparent") or "").strip())
        state = (headers.get("tracestate") or "").strip()
        explain = any(e.strip() == "trellis=e" for e in state.split(",")) if state else False
        if not (explain or self.url):
            return None
        iface, _, fn = iface_fn.partition(".")
        return {"trace_id": m.group(1) if m else os.urandom(16).hex(), "span_id": os.urandom(8).hex(),
                "parent": m.group(2) if m else None, "explain": explain, "name": iface_fn, "start": time.time() * 1000,
                "attributes": {**self.attrs, "trellis.source_id": source or "", "trellis.target": self.attrs["trellis.provider.id"],
                               "trellis.wit.interface": iface, "trellis.function": fn, "trellis.link_name": link_name}}

    def end(self, span, error):
        out = {"trace_id": span["trace_id"], "span_id": span["span_id"], "name": span["name"], "kind": "server",
               "service": self.service, "start_ms": span["start"], "end_ms": time.time() * 1000,
               "attributes": span["attributes"], "status": "error" if error else "ok"}
        if span["parent"]:
            out["parent_span_id"] = span["parent"]
        if error:
            out["error"] = {"code": error[0], "message": error[1]}
            out["attributes"]["trellis.error.code"] = error[0]
        if span["explain"]:
            self.nc.publish(f"trellis.explain.v1.{self.lattice}.span.{span['trace_id']}", json.dumps(out).encode())
        if self.url:
            with self.lock:
                self.batch.append(out)
                if len(self.batch) == 1:
                    t = threading.Timer(0.5, self.flush)
                    t.daemon = True
                    t.start()

    def flush(self):
        with self.lock:
            spans, self.batch = self.batch, []
        if not spans or not self.url:
            return

        def kv(k, v):
            return {"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"doubleValue": v}}
        body = {"resourceSpans": [{"resource": {"attributes": [kv("service.name", self.service)]},
                                   "scopeSpans": [{"scope": {"name": "trellis-python-kv"}, "spans": [
                                       {"traceId": s["trace_id"], "spanId": s["span_id"],
                                        **({"parentSpanId": s["parent_span_id"]} if "parent_span_id" in s else {}),
                                        "name": s["name"], "kind": 2,
                                        "startTimeUnixNano": str(int(s["start_ms"] * 1e6)),
                                        "endTimeUnixNano": str(int(s["end_ms"] * 1e6)),
                                        "attributes": [kv(k, v) for k, v in s["attributes"].items()],
                                        "status": {"code": 2 if s["status"] == "error" else 1}} for s in spans]}]}]}
        try:
            req = urllib.request.Request(self.url, json.dumps(body).encode(), {"content-type": "application/json"})
            urllib.request.urlopen(req, timeout=5).read()
        except Exception:  # noqa: BLE001 - the collector is away: these spans are lost
            pass


# ---- the provider --------------------------------------------------------------------------------------------


class Provider:
    def __init__(self, hd, mode):
        self.hd, self.mode = hd, mode
        self.id = hd["provider_key"]
        self.lattice = hd["lattice_rpc_prefix"]
        self.config = dict(hd.get("config") or {})
        self.links = {}       # identity -> link definition
        self.stores = {}      # (source id, link name, "ns:pkg") -> {bucket: {key: bytes}}
        self.stopping = False
        self.rpc = f"wasmbus.rpc.{self.lattice}.{self.id}"
        self.inv = f"trellis.inv.v1.{self.lattice}.{self.id}"
        self.nc = Nats(hd.get("lattice_rpc_url") or "nats://127.0.0.1:4222", f"trellis-provider-{self.id}",
                       auth_from_host_data(hd))
        self.live_seen = set() if mode == "remote" else None
        # links with secrets arrive sealed to this instance's xkey, on its own subject (§P5)
        self.xkey_seed = hd.get("provider_xkey_private_key") or ""
        self.host_xkey = hd.get("host_xkey_public_key") or ""
        self.xrpc = f"wasmbus.rpc.{self.lattice}.{xkey_public(self.xkey_seed)}" if self.xkey_seed and self.host_xkey else None
        self.secrets = {}     # identity -> this side's opened secrets {name: {"kind", "value"}}; never logged
        self.tracing = Tracing(hd, self.nc)

    def open_secrets(self, d, role):
        sealed = d.get("source_secrets" if role == "source" else "target_secrets")
        if not sealed or not self.xrpc:
            return {}
        return json.loads(xkey_open(sealed, self.xkey_seed, self.host_xkey))

    # -- links (Provider contract §P5) --

    @staticmethod
    def identity(d):
        return (d["source_id"], d["target"], d["wit_namespace"], d["wit_package"], d.get("name") or "default")

    def role(self, d):
        return "source" if d["source_id"] == self.id else "target" if d["target"] == self.id else None

    def link_put(self, d):
        role = self.role(d)
        if role is None:
            return
        key = self.identity(d)
        old = self.links.get(key)
        same = old is not None and sorted(old["interfaces"]) == sorted(d["interfaces"]) \
            and old.get("source_config", {}) == d.get("source_config", {}) \
            and old.get("target_config", {}) == d.get("target_config", {})
        if same:
            return                                   # rule 2: duplicate
        try:
            secrets = self.open_secrets(d, role)
        except ValueError as e:
            log("error", "ignoring a link put whose secrets cannot be opened", source_id=d["source_id"], target=d["target"], error=str(e))
            return
        if old is not None:
            self.link_del(old)                        # rule 3: changed -> delete, then put
        self.links[key] = d
        self.secrets[key] = secrets
        if role == "target":
            self.stores[(d["source_id"], key[4], f'{d["wit_namespace"]}:{d["wit_package"]}')] = {}
        config = d.get("source_config" if role == "source" else "target_config") or {}
        trace(self.config, "link_put", role=role, source_id=d["source_id"], target=d["target"], name=key[4],
              wit_namespace=d["wit_namespace"], wit_package=d["wit_package"], interfaces=sorted(d["interfaces"]),
              config=config, secret_names=sorted(secrets))
        log("info", "link added", role=role, source_id=d["source_id"], target=d["target"], link_name=key[4])

    def link_del(self, d):
        key = self.identity(d)
        old = self.links.pop(key, None)
        self.secrets.pop(key, None)
        if old is None:
            return                                   # rule 5: unknown delete
        role = self.role(old)
        self.stores.pop((old["source_id"], key[4], f'{old["wit_namespace"]}:{old["wit_package"]}'), None)
        trace(self.config, "link_del", role=role, source_id=old["source_id"], target=old["target"], name=key[4],
              wit_namespace=old["wit_namespace"], wit_package=old["wit_package"])
        log("info", "link removed", role=role, source_id=old["source_id"], target=old["target"], link_name=key[4])

    # -- control requests (remote mode, §P10) --

    def ctl(self, verb):
        delay = 0.25
        while not self.stopping:
            m = self.nc.request(f"wasmbus.ctl.v1.{self.lattice}.{verb}", b"", 2.0)
            if m is not None:
                r = json.loads(m.data)
                if not r.get("success"):
                    raise RuntimeError(r.get("message"))
                return r.get("response")
            log("warn", "no host answered; retrying", request=verb)
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    def resolve(self, names):
        out = {}
        for n in names or []:
            out.update(self.ctl(f"config.get.{n}") or {})
        return out

    # -- startup and the message loop --

    def run(self, remote_configs):
        for s in ("linkdefs.put", "linkdefs.del", "config.update", "health", "default.shutdown"):
            self.nc.subscribe(f"{self.rpc}.{s}")
        if self.xrpc:
            self.nc.subscribe(f"{self.xrpc}.linkdefs.put")
        # Calls may be subscribed now: this loop is single-threaded, so none is handled before the links below.
        self.nc.subscribe(f"{self.inv}.>", queue=self.inv)
        self.nc.flush()
        if self.mode == "remote":
            self.config = self.resolve(remote_configs)
        trace(self.config, "init", pid=os.getpid(), instance_id=self.hd["instance_id"], mode=self.mode)
        for d in self.hd.get("link_definitions") or []:
            self.link_put(d)
        if self.mode == "remote":
            for l in self.ctl("link.get") or []:
                if self.id in (l["source_id"], l["target"]) and self.identity(l) not in self.live_seen:
                    self.link_put({**l, "source_config": self.resolve(l.get("source_config")),
                                   "target_config": self.resolve(l.get("target_config"))})
            self.live_seen = None
        log("info", "provider started", mode=self.mode, instance_id=self.hd["instance_id"], links=len(self.links))
        parent = os.getppid()
        while not self.stopping:
            m = self.nc.next()
            if m is not None:
                self.dispatch(m)
            elif self.mode == "spawned" and os.getppid() != parent:
                self.shutdown(None, "the host process exited")

    def dispatch(self, m):
        try:
            if m.subject.startswith(self.inv + "."):
                self.invocation(m)
            elif m.subject in (f"{self.rpc}.linkdefs.put", f"{self.rpc}.linkdefs.del", f"{self.xrpc}.linkdefs.put"):
                d = json.loads(m.data)
                if self.live_seen is not None:
                    self.live_seen.add(self.identity(d))
                (self.link_put if m.subject.endswith(".put") else self.link_del)(d)
            elif m.subject == f"{self.rpc}.config.update":
                self.config = {k: v for k, v in json.loads(m.data).items() if isinstance(v, str)}
                trace(self.config, "config_update", config=self.config)
            elif m.subject == f"{self.rpc}.health":
                req = json.loads(m.data) if m.data else {}
                if req.get("instance_id") in (None, "", self.hd["instance_id"]) and m.reply:
                    self.nc.publish(m.reply, json.dumps({"healthy": True}).encode())
            elif m.subject == f"{self.rpc}.default.shutdown":
                req = json.loads(m.data) if m.data else {}
                if self.mode == "spawned" and req.get("host_id") == self.hd["host_id"] \
                        and req.get("instance_id") in (None, "", self.hd["instance_id"]):
                    self.shutdown(m.reply, "shutdown request from the host")
        except Exception as e:  # one bad message must not stop the provider
            log("error", "message handling failed", subject=m.subject, error=repr(e))

    def shutdown(self, reply, reason):
        self.stopping = True
        trace(self.config, "shutdown", reason=reason)
        log("info", "provider shutting down", reason=reason)
        if reply:
            self.nc.publish(reply, b"shutting down")
        self.nc.close()

    # -- invocations (Invocation protocol v1) --

    def invocation(self, m):
        # W3C trace context (docs/protocol.md §T1, ADR 0025): the call's span is a child of the caller's
        span = self.tracing.server(m.headers, m.subject[len(self.inv) + 1:], m.headers.get("source-id"),
                                   m.headers.get("link-name") or "default")
        error, result = self._invocation(m)
        if span:  # ended (and published, when explained) before the reply, as the protocol asks
            self.tracing.end(span, error)
        if not m.reply or (error is None and result is None):
            return
        if error:
            self.nc.publish(m.reply, b"\x01" + json.dumps({"code": error[0], "message": error[1]}).encode())
        else:
            self.nc.publish(m.reply, b"\x00" + result)

    def _invocation(self, m):
        """Serves one call; returns ((code, message), None) for an error, (None, result bytes), or (None, None)."""
        iface, _, fn = m.subject[len(self.inv) + 1:].partition(".")
        if "trellis-body-length" in m.headers:
            return ("PAYLOAD_TOO_LARGE", "python-kv does not accept chunked requests"), None
        if m.headers.get("content-type") == "application/json":
            return ("INVALID_ARGUMENT", "python-kv speaks only the binary value encoding"), None
        handler = HANDLERS.get((iface, fn))
        if handler is None:
            if fn.startswith("[resource-drop]"):
                return None, None
            return ("NOT_FOUND", f"{self.id} does not export {iface}.{fn}"), None
        source, link_name = m.headers.get("source-id"), m.headers.get("link-name") or "default"
        store = self.stores.get((source, link_name, "wasi:keyvalue"))
        if store is None:
            return ("LINK_NOT_FOUND",
                    f"no link from {source} named {link_name} for wasi:keyvalue to provider {self.id}"), None
        try:
            r = Reader(m.data)
            result = handler(store, r)
        except (ValueError, UnicodeDecodeError) as e:
            return ("INVALID_ARGUMENT", f"cannot decode params of {iface}.{fn}: {e}"), None
        return None, result


def _bucket(store, r):
    return store.setdefault(r.raw().decode("utf-8"), {})


def _open(store, r):
    name = r.string()
    r.end()
    store.setdefault(name, {})
    return ok(enc_string(name))                         # own<bucket>: the handle is the bucket name


def _get(store, r):
    b, key = _bucket(store, r), r.string()
    r.end()
    v = b.get(key)
    return ok(b"\x00" if v is None else b"\x01" + enc_bytes(v))


def _set(store, r):
    b, key, value = _bucket(store, r), r.string(), r.raw()
    r.end()
    b[key] = bytes(value)
    return ok()


def _delete(store, r):
    b, key = _bucket(store, r), r.string()
    r.end()
    b.pop(key, None)
    return ok()


def _exists(store, r):
    b, key = _bucket(store, r), r.string()
    r.end()
    return ok(b"\x01" if key in b else b"\x00")


def _list_keys(store, r):
    b = _bucket(store, r)
    r.option(r.uleb)
    r.end()
    keys = sorted(b)
    return ok(uleb(len(keys)) + b"".join(enc_string(k) for k in keys) + b"\x00")


def _increment(store, r):
    b, key, delta = _bucket(store, r), r.string(), r.uleb(64)
    r.end()
    cur = b.get(key, b"0").decode("utf-8", "replace")
    if not cur.isdigit():
        return err_other(f"value of {key} is not a number")
    n = int(cur) + delta
    if n > U64_MAX:
        return err_other(f"increment of {key} overflows u64")
    b[key] = str(n).encode()
    return ok(uleb(n))


HANDLERS = {
    ("wasi:keyvalue/store", "open"): _open,
    ("wasi:keyvalue/store", "[method]bucket.get"): _get,
    ("wasi:keyvalue/store", "[method]bucket.set"): _set,
    ("wasi:keyvalue/store", "[method]bucket.delete"): _delete,
    ("wasi:keyvalue/store", "[method]bucket.exists"): _exists,
    ("wasi:keyvalue/store", "[method]bucket.list-keys"): _list_keys,
    ("wasi:keyvalue/atomics", "increment"): _increment,
}

# ---- main ----------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider-id", default=os.environ.get("TRELLIS_PROVIDER_ID"))
    ap.add_argument("--nats-url", default=os.environ.get("TRELLIS_NATS_URL", "nats://127.0.0.1:4222"))
    ap.add_argument("--lattice", default=os.environ.get("TRELLIS_LATTICE", "default"))
    ap.add_argument("--config", action="append",
                    default=[c for c in os.environ.get("TRELLIS_PROVIDER_CONFIG", "").split(",") if c])
    ap.add_argument("--log-level", default=os.environ.get("TRELLIS_LOG_LEVEL", "info"))
    for flag in ("creds", "nkey", "user", "password", "token", "tls-ca", "tls-cert", "tls-key"):
        ap.add_argument(f"--nats-{flag}", default=os.environ.get("TRELLIS_NATS_" + flag.upper().replace("-", "_")) or None)
    args = ap.parse_args()
    if args.provider_id:
        mode = "remote"
        hd = {"host_id": "", "lattice_rpc_prefix": args.lattice, "lattice_rpc_url": args.nats_url,
              "provider_key": args.provider_id, "instance_id": str(uuid.uuid4()), "link_definitions": [],
              "config": {}, "log_level": args.log_level}
        hd.update({"lattice_rpc_" + k: v for k, v in auth_from_args(args).items()})
    else:
        mode = "spawned"
        if sys.stdin.isatty():
            sys.exit("no host data on stdin; to run by hand give --provider-id (and --nats-url, --lattice)")
        hd = json.loads(base64.b64decode(sys.stdin.readline().strip()))
    LOG["level"] = LOG_LEVELS.get(hd.get("log_level", "info"), 30)
    LOG["provider_id"] = hd["provider_key"]
    p = Provider(hd, mode)
    signal.signal(signal.SIGTERM, lambda *_: setattr(p, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(p, "stopping", True))
    try:
        p.run(args.config)
    except ConnectionError as e:
        if not p.stopping:
            log("error", "lost the NATS connection", error=str(e))
            sys.exit(1)
    if not p.nc.closed:
        p.shutdown(None, "signal")


if __name__ == "__main__":
    main()
