#!/usr/bin/python3
"""Self-check of the independent Python client (bchat_client.py) against
bchat-onion-vectors.json (docs/protocol.md §6.10): from the fixed secrets and IVs it must rebuild every
request body and every reply byte for byte, and read them back. No server involved.
Vectors: $PUSHPIPE_VECTORS, else tests/vectors/bchat-onion-vectors.json."""
import sys
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import base64, hashlib, json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bchat_client as bc  # noqa: E402

TOP = os.path.abspath(os.path.join(HERE, "..", ".."))


def vectors_path():
    p = os.environ.get("PUSHPIPE_VECTORS")
    return p if p else os.path.join(TOP, "tests", "vectors", "bchat-onion-vectors.json")


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        sys.stdout.flush()
        if cond:
            self.passed += 1
        else:
            self.failed += 1
        return cond

    def raises(self, fn, what):
        try:
            fn()
        except Exception:
            return self.check(True, what)
        return self.check(False, what + " (did not raise)")

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


REQ_IV_GCM = bytes.fromhex("000102030405060708090a0b")
REP_IV_GCM = b"defghijklmno"
REQ_NONCE = bytes(range(0x00, 0x18))
REP_NONCE = bytes(range(0xc8, 0xe0))
V4_OBJECTS = [("v4_aesgcm_LOKI(stock pyonionreq)", bc.AES_GCM, "LOKI"),
              ("v4_aesgcm_BELDEX(if server patched)", bc.AES_GCM, "BELDEX"),
              ("v4_xchacha20", bc.XCHACHA20, None)]
RESP_KEY = "response_body_hex(raw bytes, no base64)"


def main():
    t = Checks()
    with open(vectors_path()) as f:
        v = json.load(f)
    H = bytes.fromhex

    # 1. derivations
    ssk = hashlib.sha256(b"bchat-pn-test-server-key").digest()
    csk = hashlib.sha256(b"bchat-pn-test-client-ephemeral").digest()
    t.check(ssk == H(v["server_x25519_priv"]), "server secret = SHA-256('bchat-pn-test-server-key')")
    t.check(csk == H(v["client_ephemeral_priv"]), "client secret = SHA-256('bchat-pn-test-client-ephemeral')")
    spk, cpk = bc.x25519_public(ssk), bc.x25519_public(csk)
    t.check(spk == H(v["server_x25519_pub"]), "server public key")
    t.check(cpk == H(v["client_ephemeral_pub"]), "client ephemeral public key")
    shared = bc.x25519(csk, spk)
    t.check(shared == H(v["x25519_shared"]), "x25519_shared (client side)")
    t.check(bc.x25519(ssk, cpk) == shared, "x25519_shared (server side) agrees")
    kb, kl = bc.key_aesgcm(shared, "BELDEX"), bc.key_aesgcm(shared, "LOKI")
    kx = bc.key_xchacha(shared, cpk, spk)
    t.check(kb == H(v["key_aesgcm_BELDEX"]), "key_aesgcm_BELDEX = HMAC-SHA256(key='BELDEX', msg=shared)")
    t.check(kl == H(v["key_aesgcm_LOKI"]), "key_aesgcm_LOKI = HMAC-SHA256(key='LOKI', msg=shared)")
    t.check(kx == H(v["key_xchacha20"]), "key_xchacha20 = BLAKE2b-256(shared || client || server)")
    t.check(bc.key_xchacha(shared, spk, cpk) != kx, "BLAKE2b input order matters (client before server)")
    t.raises(lambda: bc.x25519(ssk, bytes(32)), "all-zero public key: X25519 result rejected")

    # 2. v2
    v2 = v["v2"]
    pt = v2["inner_plaintext"].encode()
    inner = json.loads(pt)
    args = json.loads(inner["body"])
    t.check(inner["endpoint"] == "notify" and args == {"data": "ZXhhbXBsZSB3cmFwcGVkIGVudmVsb3BlIGJ5dGVz",
                                                      "send_to": "bd" + "1" * 64},
            "v2 inner plaintext is a notify to bd111…1 (body is a JSON string)")
    t.check(base64.b64decode(args["data"]) == b"example wrapped envelope bytes", "v2 notify data decodes")
    t.check(bc.v2_plaintext("notify", args) == pt, "v2 inner plaintext rebuilt byte for byte (plain style)")
    req = bc.Request(spk, pt, "/beldex/v2/lsrpc", bc.AES_GCM, "BELDEX", eph_sk=csk, iv=REQ_IV_GCM)
    body = H(v2["request_body_hex"])
    t.check(len(body) == 462 and struct.unpack("<I", body[:4])[0] == 259 and len(body) - 4 - 259 == 199,
            "v2 request body: 462 bytes, N = 259, 199-byte trailer")
    t.check(len(req.trailer) == 199, "v2 trailer rebuilt: 199 bytes")
    t.check(req.body == body, "v2 request body rebuilt byte for byte")
    ct, tr = bc.split_body(body)
    t.check(tr["ephemeral_key"] == v["client_ephemeral_pub"] and "enc_type" not in tr,
            "v2 trailer: ephemeral_key = client pub, no enc_type")
    t.check(bc.open_sealed(bc.AES_GCM, bc.key_aesgcm(bc.x25519(ssk, bytes.fromhex(tr["ephemeral_key"])), "BELDEX"), ct) == pt,
            "v2 request decrypts (server view) to the inner plaintext")
    t.raises(lambda: bc.open_sealed(bc.AES_GCM, kl, ct), "v2 request does not decrypt with the LOKI key")
    rp = v2["response_plaintext"].encode()
    t.check(rp == bc.inner_v2(200, 1, "Success") and len(rp) == 58, "v2 response plaintext = exact Success bytes (58)")
    sealed = bc.seal(bc.AES_GCM, kb, rp, REP_IV_GCM)
    http_body = bc.v2_http_body(sealed)
    t.check(len(sealed) == 86, "v2 reply: 86 sealed bytes")
    t.check(http_body == v2["response_http_body"].encode() and len(http_body) == 130,
            "v2 reply HTTP body rebuilt byte for byte (130 chars)")
    t.check(req.open_reply(v2["response_http_body"].encode()) == rp, "v2 reply parsed and decrypted by the client")
    t.check(req.reply_iv == REP_IV_GCM, "v2 reply IV is the injected one")
    t.raises(lambda: bc.parse_v2_http_body(http_body[:-1]), "v2 reply without trailing newline rejected by the strict parser")
    t.raises(lambda: bc.parse_v2_http_body(http_body.replace(b'":"', b'": "')), "v2 reply with a space rejected")
    t.raises(lambda: bc.parse_v2_http_body(http_body.replace(b"=", b"")), "v2 reply without padding rejected")

    # 3. v4
    v4pt = v["v4_plaintext"].encode()
    t.check(len(v4pt) == 223, "v4 plaintext: 223 bytes")
    t.check(bc.v4_plaintext("notify", args) == v4pt, "v4 plaintext rebuilt byte for byte")
    items = bc.bencode_parse_list(v4pt)
    t.check(len(items) == 2 and json.loads(items[0])["endpoint"] == "/notify" and json.loads(items[1]) == args,
            "v4 plaintext parses: meta endpoint /notify, body = notify args")
    v4rp = v["v4_response_plaintext"].encode()
    t.check(v4rp == bc.inner_v4(200, 1, "Success") and len(v4rp) == 103, "v4 response plaintext = exact Success bytes (103)")
    ri = bc.bencode_parse_list(v4rp)
    t.check(json.loads(ri[0]) == {"code": 200, "headers": {"content-type": "application/json"}}
            and json.loads(ri[1]) == {"code": 1, "message": "Success"}, "v4 response: meta code 200, body code 1")
    keys = {"LOKI": kl, "BELDEX": kb}
    for name, cipher, salt in V4_OBJECTS:
        o = v[name]
        body = H(o["request_body_hex"])
        xc = cipher == bc.XCHACHA20
        n, trl = (263, 222) if xc else (251, 199)
        t.check(len(body) == (489 if xc else 454) and struct.unpack("<I", body[:4])[0] == n and len(body) - 4 - n == trl,
                f"{name}: body {len(body)} bytes, N = {n}, trailer {trl}")
        req = bc.Request(spk, v4pt, "/beldex/v4/lsrpc", cipher, salt or "BELDEX", eph_sk=csk,
                         iv=REQ_NONCE if xc else REQ_IV_GCM)
        t.check(req.body == body, f"{name}: request body rebuilt byte for byte")
        key = kx if xc else keys[salt]
        ct, tr = bc.split_body(body)
        t.check(tr.get("enc_type") == ("xchacha20" if xc else None), f"{name}: trailer enc_type")
        t.check(bc.open_sealed(cipher, key, ct) == v4pt, f"{name}: request decrypts to the v4 plaintext")
        if not xc:
            other = kb if salt == "LOKI" else kl
            t.raises(lambda: bc.open_sealed(cipher, other, ct), f"{name}: does not decrypt with the other salt's key")
        resp = H(o[RESP_KEY])
        t.check(len(resp) == (143 if xc else 131), f"{name}: reply {len(resp)} raw bytes")
        t.check(bc.seal(cipher, key, v4rp, REP_NONCE if xc else REP_IV_GCM) == resp, f"{name}: reply rebuilt byte for byte")
        t.check(req.open_reply(resp) == v4rp, f"{name}: reply decrypted by the client")

    # 4. cross-route expectations (docs/protocol.md §6.10) at the crypto level: v2 tries only BELDEX
    loki = bc.split_body(H(v["v4_aesgcm_LOKI(stock pyonionreq)"]["request_body_hex"]))[0]
    bel = bc.split_body(H(v["v4_aesgcm_BELDEX(if server patched)"]["request_body_hex"]))[0]
    t.raises(lambda: bc.open_sealed(bc.AES_GCM, kb, loki), "v4 LOKI request under the v2 salt list [BELDEX]: no decryption")
    t.raises(lambda: json.loads(bc.open_sealed(bc.AES_GCM, kb, bel)), "v4 BELDEX request decrypts with BELDEX but is not JSON")

    # 5. encodings and the styles of v2 requests round-trip through the client's own parsers
    t.check(bc.zbase32(bytes(32)) == "y" * 52, "z-base-32 of 32 zero bytes is 52 'y'")
    a = {"token": "a1" * 32, "pubKey": "bd" + "2" * 64, "data": "x/y+z="}
    for style in ("plain", "android", "desktop", "ios", "unicode", "object"):
        o = json.loads(bc.v2_plaintext("register", a, style))
        b = o["body"] if isinstance(o["body"], dict) else json.loads(o["body"])
        t.check(o["endpoint"] == "register" and b == a, f"v2 style {style}: parses back to the same request")
    ios = bc.v2_plaintext("register", a, "ios")
    t.check(b'\\/' in ios and b'application\\/json' in ios and b'x\\\\\\/y' in ios,
            "iOS style escapes '/' at both levels")
    t.check(b"\\u0072\\u0065" in bc.v2_plaintext("register", a, "unicode"), "unicode style escapes the endpoint")
    # fresh randomness
    r1 = bc.Request(spk, pt)
    r2 = bc.Request(spk, pt)
    t.check(r1.eph_pk != r2.eph_pk and r1.request_iv != r2.request_iv, "fresh ephemeral key and IV per request")
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
