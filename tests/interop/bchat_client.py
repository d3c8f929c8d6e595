"""bchat_client: an independent Python implementation of the *app* side of the Bchat / Session
onion push protocol (docs/protocol.md §6.1-§6.5), for interoperability tests against the C
server. It shares no code with the C implementation: X25519 comes from python3-cryptography,
AES-256-GCM from cryptography's AESGCM, XChaCha20-Poly1305 from python3-nacl (libsodium
bindings), HMAC-SHA256 and BLAKE2b from the Python standard library.

Run it with Debian's /usr/bin/python3 (it has python3-cryptography and python3-nacl).

Building blocks (all bytes in, bytes out):
  x25519_public(sk), x25519(sk, pk)                 key agreement (raises on an all-zero result)
  key_aesgcm(shared, salt), key_xchacha(shared, client_pk, server_pk)
  seal(cipher, key, pt, iv=None), open_sealed(cipher, key, blob)
  onion_body(ciphertext, trailer)                    u32le N || ciphertext || trailer
  trailer_bytes(eph_pk, target, enc_type=None)       the app's trailer JSON (vector layout)
  v2_plaintext(endpoint, args, style)                v2/v3 JSON request in the apps' styles
  v4_plaintext(endpoint, args)                       v4 bencoded request
  bencode_list(items), bencode_parse_list(buf)
  parse_v2_http_body(body)                           {"result":"<b64>"}\\n -> sealed bytes (strict)
  Request(server_pk, ...)                            one onion request: .body, .open_reply(...)
  http_post(port, path, body, ...)                   plain HTTP/1.1 POST to 127.0.0.1
"""
import base64, hashlib, hmac, http.client, json, os, re, struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization
from nacl.bindings import (crypto_aead_xchacha20poly1305_ietf_decrypt,
                           crypto_aead_xchacha20poly1305_ietf_encrypt)

AES_GCM = "aes-gcm"
XCHACHA20 = "xchacha20"
IV_LEN = {AES_GCM: 12, XCHACHA20: 24}
TAG_LEN = 16
HOST = "pushnotificationv1.rpcnode.stream"


# ---------------------------------------------------------------- key agreement and keys

def x25519_public(sk: bytes) -> bytes:
    k = X25519PrivateKey.from_private_bytes(sk)
    return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519(sk: bytes, pk: bytes) -> bytes:
    """X25519(sk, pk); cryptography raises ValueError when the result is all zero."""
    k = X25519PrivateKey.from_private_bytes(sk)
    return k.exchange(X25519PublicKey.from_public_bytes(pk))


def new_keypair():
    sk = os.urandom(32)
    return sk, x25519_public(sk)


def key_aesgcm(shared: bytes, salt) -> bytes:
    """HMAC-SHA256 with the salt as the HMAC *key* and the shared secret as the message."""
    if isinstance(salt, str):
        salt = salt.encode("ascii")
    return hmac.new(salt, shared, hashlib.sha256).digest()


def key_xchacha(shared: bytes, client_pk: bytes, server_pk: bytes) -> bytes:
    """Unkeyed BLAKE2b-256 over shared || client_pk || server_pk."""
    return hashlib.blake2b(shared + client_pk + server_pk, digest_size=32).digest()


# ---------------------------------------------------------------- symmetric layer

def seal(cipher: str, key: bytes, pt: bytes, iv: bytes = None) -> bytes:
    """IV || ct || tag (fresh random IV unless one is given)."""
    if iv is None:
        iv = os.urandom(IV_LEN[cipher])
    assert len(iv) == IV_LEN[cipher]
    if cipher == AES_GCM:
        return iv + AESGCM(key).encrypt(iv, pt, None)
    if cipher == XCHACHA20:
        return iv + crypto_aead_xchacha20poly1305_ietf_encrypt(pt, None, iv, key)
    raise ValueError("unknown cipher " + cipher)


def open_sealed(cipher: str, key: bytes, blob: bytes) -> bytes:
    """Inverse of seal(); raises on a short blob or a failed tag."""
    n = IV_LEN[cipher]
    if len(blob) < n + TAG_LEN:
        raise ValueError("sealed blob too short")
    iv, rest = blob[:n], blob[n:]
    if cipher == AES_GCM:
        return AESGCM(key).decrypt(iv, rest, None)
    return crypto_aead_xchacha20poly1305_ietf_decrypt(rest, None, iv, key)


# ---------------------------------------------------------------- framing

def trailer_bytes(eph_pk, target="/beldex/v2/lsrpc", enc_type=None, encoding="hex") -> bytes:
    """The trailer the apps write for the last relay, in the vectors' key order."""
    if isinstance(eph_pk, (bytes, bytearray)):
        if encoding == "hex":
            eph_pk = eph_pk.hex()
        elif encoding == "HEX":
            eph_pk = eph_pk.hex().upper()
        elif encoding == "b64":
            eph_pk = base64.b64encode(eph_pk).decode()
        elif encoding == "b64-unpadded":
            eph_pk = base64.b64encode(eph_pk).decode().rstrip("=")
        elif encoding == "b64url":
            eph_pk = base64.urlsafe_b64encode(eph_pk).decode().rstrip("=")
        elif encoding == "zb32":
            eph_pk = zbase32(eph_pk)
        else:
            raise ValueError(encoding)
    t = {"host": HOST, "target": target, "method": "POST", "protocol": "http", "port": 80,
         "ephemeral_key": eph_pk}
    if enc_type is not None:
        t["enc_type"] = enc_type
    return json.dumps(t, separators=(",", ":")).encode()


def onion_body(ciphertext: bytes, trailer: bytes, n=None) -> bytes:
    """u32le N || ciphertext || trailer (N = len(ciphertext) unless overridden)."""
    return struct.pack("<I", len(ciphertext) if n is None else n) + ciphertext + trailer


def split_body(body: bytes):
    """Server-side view, for self-checks: (ciphertext, trailer dict)."""
    if len(body) < 4:
        raise ValueError("short body")
    n = struct.unpack("<I", body[:4])[0]
    if 4 + n > len(body):
        raise ValueError("length prefix beyond the body")
    return body[4:4 + n], json.loads(body[4 + n:].decode("utf-8"))


ZB32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32(b: bytes) -> str:
    bits = "".join(f"{x:08b}" for x in b)
    bits += "0" * (-len(bits) % 5)
    return "".join(ZB32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


# ---------------------------------------------------------------- requests (plaintexts)

def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def v2_plaintext(endpoint, args, style="plain") -> bytes:
    """The v2/v3 request JSON. `body` is a JSON *string* holding JSON, as every app sends it.
    styles: plain (the vectors' layout), android (insertion order, lowercase header with
    charset), desktop ("method":"post", its key order), ios (other key order, `\\/` escapes at
    every level), unicode (non-ASCII escaped as \\uXXXX), object (body as a JSON object)."""
    body = compact(args) if not isinstance(args, (str, bytes)) else args
    if isinstance(body, bytes):
        body = body.decode()
    if style == "plain":
        o = {"body": body, "endpoint": endpoint, "method": "POST",
             "headers": {"Content-Type": "application/json"}}
        return compact(o).encode()
    if style == "android":
        o = {"body": body, "endpoint": endpoint, "method": "POST",
             "headers": {"content-type": "application/json; charset=utf-8"}}
        return compact(o).encode()
    if style == "desktop":
        o = {"method": "post", "body": body, "endpoint": endpoint,
             "headers": {"Content-Type": "application/json"}}
        return compact(o).encode()
    if style == "ios":
        inner = body.replace("/", "\\/")
        o = {"endpoint": endpoint, "headers": {"Content-Type": "application/json"}, "method": "POST",
             "body": inner}
        return compact(o).replace("/", "\\/").encode()
    if style == "unicode":
        o = {"endpoint": endpoint, "body": json.dumps(json.loads(body), ensure_ascii=True),
             "method": "POST"}
        s = compact(o)
        # escape every letter of the endpoint name as \\u00XX: the server must unescape
        s = s.replace('"endpoint":"%s"' % endpoint,
                      '"endpoint":"%s"' % "".join("\\u%04x" % ord(c) for c in endpoint))
        return s.encode()
    if style == "object":
        o = {"endpoint": endpoint, "body": json.loads(body), "method": "POST"}
        return compact(o).encode()
    raise ValueError(style)


def bencode_list(items) -> bytes:
    out = b"l"
    for it in items:
        if isinstance(it, str):
            it = it.encode()
        out += str(len(it)).encode() + b":" + it
    return out + b"e"


def bencode_parse_list(buf: bytes):
    """Strict parser of a list of byte strings; raises ValueError on anything else."""
    if len(buf) < 2 or buf[0:1] != b"l":
        raise ValueError("not a list")
    pos, items = 1, []
    while pos < len(buf) and buf[pos:pos + 1] != b"e":
        m = re.match(rb"(0|[1-9][0-9]*):", buf[pos:])
        if not m:
            raise ValueError("bad length at %d" % pos)
        n = int(m.group(1))
        pos += m.end()
        if pos + n > len(buf):
            raise ValueError("string overruns the buffer")
        items.append(buf[pos:pos + n])
        pos += n
    if pos != len(buf) - 1:
        raise ValueError("no final e, or bytes after it")
    return items


def v4_meta(endpoint, slash=True) -> bytes:
    return compact({"endpoint": ("/" if slash else "") + endpoint, "method": "POST",
                    "headers": {"Content-Type": "application/json"}}).encode()


def v4_plaintext(endpoint, args, slash=True) -> bytes:
    body = compact(args).encode() if not isinstance(args, (bytes, str)) else args
    return bencode_list([v4_meta(endpoint, slash), body])


# ---------------------------------------------------------------- replies

V2_RESULT = re.compile(rb'\A\{"result":"([A-Za-z0-9+/]*={0,2})"\}\n\Z')


def parse_v2_http_body(body: bytes) -> bytes:
    """Strict: exactly {"result":"<padded standard base64>"}\\n; returns the sealed bytes."""
    m = V2_RESULT.match(body)
    if not m:
        raise ValueError("v2 reply body is not exactly {\"result\":\"<b64>\"}\\n: %r" % body[:200])
    b64 = m.group(1)
    if len(b64) % 4 != 0:
        raise ValueError("base64 not padded")
    raw = base64.b64decode(b64, validate=True)
    if base64.b64encode(raw) != b64:
        raise ValueError("base64 not canonical")
    return raw


def v2_http_body(sealed: bytes) -> bytes:
    """What the server must send (for the self-check against the vectors)."""
    return b'{"result":"' + base64.b64encode(sealed) + b'"}\n'


def inner_v2(status, code, message) -> bytes:
    """The exact inner v2 reply bytes of docs/protocol.md §6.5."""
    return ('{"status": %d, "body": {"code": %d, "message": %s}}' % (status, code, json.dumps(message))).encode()


def inner_v4(status, code, message) -> bytes:
    """The exact inner v4 reply bytes of docs/protocol.md §6.5."""
    meta = '{"code": %d, "headers": {"content-type": "application/json"}}' % status
    body = '{"code": %d, "message": %s}' % (code, json.dumps(message))
    return bencode_list([meta, body])


# ---------------------------------------------------------------- one request

class Request:
    """One onion request as an app builds it: a fresh ephemeral key (unless given), the key
    derived for the chosen cipher and salt, and the body for `target`."""

    def __init__(self, server_pk: bytes, plaintext: bytes, target="/beldex/v2/lsrpc",
                 cipher=AES_GCM, salt="BELDEX", eph_sk=None, iv=None, enc_type=None,
                 send_enc_type=True, key_encoding="hex"):
        self.server_pk = server_pk
        self.eph_sk = eph_sk if eph_sk is not None else os.urandom(32)
        self.eph_pk = x25519_public(self.eph_sk)
        self.shared = x25519(self.eph_sk, server_pk)
        self.cipher = cipher
        if cipher == AES_GCM:
            self.key = key_aesgcm(self.shared, salt)
        else:
            self.key = key_xchacha(self.shared, self.eph_pk, server_pk)
        if enc_type is None and cipher == XCHACHA20 and send_enc_type:
            enc_type = "xchacha20"
        self.plaintext = plaintext
        self.sealed = seal(cipher, self.key, plaintext, iv)
        self.request_iv = self.sealed[:IV_LEN[cipher]]
        self.trailer = trailer_bytes(self.eph_pk, target, enc_type, key_encoding)
        self.body = onion_body(self.sealed, self.trailer)
        self.v4 = "/v4/" in target

    def open_reply(self, http_body: bytes, v4=None) -> bytes:
        """The decrypted inner reply (v2: via the strict {"result":…} wrapper; v4: raw)."""
        v4 = self.v4 if v4 is None else v4
        sealed = http_body if v4 else parse_v2_http_body(http_body)
        self.reply_iv = sealed[:IV_LEN[self.cipher]]
        return open_sealed(self.cipher, self.key, sealed)

    def secrets(self):
        """Every secret this request involves, for log scans."""
        return [self.eph_sk, self.shared, self.key]


# ---------------------------------------------------------------- HTTP

class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:80])


def http_post(port, path, body: bytes, headers=None, chunked=False, method="POST", timeout=20):
    """POST (or another method) to 127.0.0.1:port; returns Reply. Content-Type as a relay sends."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/octet-stream", "User-Agent": "Beldex Storage Server/interop"}
        if headers:
            h.update(headers)
        if chunked:
            def chunks():
                for i in range(0, len(body), 97):
                    yield body[i:i + 97]
            h["Transfer-Encoding"] = "chunked"
            c.request(method, path, body=chunks(), headers=h, encode_chunked=True)
        else:
            c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Reply(r.status, r.getheaders(), r.read())
    finally:
        c.close()
