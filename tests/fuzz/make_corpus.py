#!/usr/bin/python3
"""Writes the seed corpora tests/fuzz/corpus/<target>/ (small files): the test vectors' (docs/protocol.md §6.10)
request bodies and plaintexts, the apps' request styles for every action, and one valid frame
of each type. Built with the independent Python client (tests/interop/bchat_client.py); the
onion bodies are encrypted for the vector server key, the one fuzz_onion_body uses.
Re-running rewrites the same seeds (except for fresh random ephemeral keys)."""
import sys
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "interop"))
import bchat_client as bc  # noqa: E402

V = json.load(open(os.environ.get("PUSHPIPE_VECTORS") or os.path.join(TOP, "tests", "vectors", "bchat-onion-vectors.json")))
ID, GROUP, TOKEN = "bd" + "1" * 64, "bd" + "2" * 64, "a1" * 32


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


ACTIONS = [("register", {"token": TOKEN, "pubKey": ID}),
           ("register_legacy_groups_only", {"token": "fcm:APA91b-x_y", "pubKey": ID, "device": "android",
                                            "legacyGroupPublicKeys": [GROUP, ID]}),
           ("unregister", {"token": TOKEN}),
           ("subscribe_closed_group", {"closedGroupPublicKey": GROUP, "pubKey": ID}),
           ("unsubscribe_closed_group", {"closedGroupPublicKey": GROUP, "pubKey": ID}),
           ("notify", {"data": "ZXhhbXBsZQ==", "send_to": ID})]

# fuzz_onion_body: complete HTTP request bodies
put("fuzz_onion_body", "v2_vector", bytes.fromhex(V["v2"]["request_body_hex"]))
for key, name in (("v4_aesgcm_LOKI(stock pyonionreq)", "v4_loki"), ("v4_aesgcm_BELDEX(if server patched)", "v4_beldex"),
                  ("v4_xchacha20", "v4_xchacha20")):
    put("fuzz_onion_body", name, bytes.fromhex(V[key]["request_body_hex"]))
spk = bytes.fromhex(V["server_x25519_pub"])
r = bc.Request(spk, bc.v2_plaintext("register", ACTIONS[0][1], "ios"), key_encoding="b64")
put("fuzz_onion_body", "v2_b64_key", r.body)
r = bc.Request(spk, bc.v4_plaintext("unregister", ACTIONS[2][1]), "/beldex/v4/lsrpc", bc.XCHACHA20, key_encoding="zb32")
put("fuzz_onion_body", "v4_zb32_key_xchacha", r.body)
put("fuzz_onion_body", "short", b"\x1c\x00\x00\x00")

# fuzz_bchat_v2: decrypted v2 plaintexts
put("fuzz_bchat_v2", "vector_notify", V["v2"]["inner_plaintext"])
for i, (ep, args) in enumerate(ACTIONS):
    style = ["ios", "android", "desktop", "plain", "unicode", "object"][i]
    put("fuzz_bchat_v2", f"{ep}_{style}", bc.v2_plaintext(ep, args, style))
put("fuzz_bchat_v2", "missing_body", b'{"endpoint":"/register"}')
put("fuzz_bchat_v2", "bad_endpoint", b'{"endpoint":"foo","body":"{}"}')

# fuzz_bencode: v4 plaintexts
put("fuzz_bencode", "vector_notify", V["v4_plaintext"])
put("fuzz_bencode", "vector_reply", V["v4_response_plaintext"])
for ep, args in ACTIONS:
    put("fuzz_bencode", ep, bc.v4_plaintext(ep, args))
put("fuzz_bencode", "meta_only", bc.bencode_list([bc.v4_meta("register")]))

# fuzz_frame: one valid frame of each kind (common/frame.h)
def frame(ftype, fields, fid=1):
    payload = b"".join(struct.pack("<HI", t, len(v)) + v for t, v in fields)
    return struct.pack("<HBBIQ", 0x5070, 8, ftype, len(payload), fid) + payload


u32 = lambda v: struct.pack("<I", v)  # noqa: E731
u64 = lambda v: struct.pack("<Q", v)  # noqa: E731
put("fuzz_frame", "hello", frame(1, [(1, u32(3)), (2, b"apns-1"), (3, u32(1234)), (4, u32(1))]))
put("fuzz_frame", "register", frame(10, [(10, ID.encode()), (11, TOKEN.encode()), (12, u32(1)), (13, u32(1)),
                                        (14, GROUP.encode()), (14, ID.encode())]))
put("fuzz_frame", "unregister", frame(11, [(11, TOKEN.encode())]))
put("fuzz_frame", "subscribe", frame(12, [(14, GROUP.encode()), (10, ID.encode())]))
put("fuzz_frame", "notify", frame(14, [(10, ID.encode()), (15, b"ZXhhbXBsZQ==")]))
put("fuzz_frame", "reply", frame(15, [(20, u32(1))]))
put("fuzz_frame", "counts", frame(17, [(30, u64(4)), (31, u64(5)), (32, u64(6))]))
put("fuzz_frame", "push", frame(20, [(4, u32(1)), (26, u32(1)), (11, TOKEN.encode()), (15, b"ZXhh"), (25, u32(2))]))
put("fuzz_frame", "result", frame(21, [(21, u32(3)), (22, u64(1500)), (23, u64(1700000000000)), (24, b"TooManyRequests"), (20, u32(429))]))
put("fuzz_frame", "counter", frame(30, [(40, u32(1)), (41, u64(3)), (40, u32(5)), (41, u64(1))], 0))
put("fuzz_frame", "stats_query", frame(31, [(42, u64(0)), (43, u64(1800000000))]))
put("fuzz_frame", "counts_query", frame(16, []))
put("fuzz_frame", "senders_query", frame(18, []))
put("fuzz_frame", "senders", frame(19, [(62, b"apns-sender"), (62, b"fcm-sender:2"), (63, b"hms-sender")]))
put("fuzz_frame", "batch", frame(2, [(5, frame(14, [(10, ID.encode()), (15, b"ZXhh")], 7)),
                                     (5, frame(16, [], 8)), (5, frame(11, [(11, TOKEN.encode())], 9))], 0))
put("fuzz_frame", "batch_replies", frame(2, [(5, frame(15, [(20, u32(0))], 7)), (5, frame(15, [(20, u32(2))], 9))], 0))
put("fuzz_frame", "uwpx_import", frame(47, [(50, b"b" * 64), (52, b"f" * 64), (53, b"ImpNode01"), (54, b"ImpSecret01")]))
# fuzz_uwpx_nodes: one byte (accounts asked), then the router's NODES answer (ingress/uwpx/uwpx_server.c)
def nodes_entries(n, status=0):
    acc = lambda i: ("%064x" % (i + 1)).encode()  # noqa: E731
    return [f for i in range(n) for f in ((52, acc(i)), (53, b"Node%d" % i), (54, b"Secret%d" % i), (20, u32(status)))]


put("fuzz_uwpx_nodes", "nodes_exact_3", bytes([3]) + frame(43, nodes_entries(3)))
put("fuzz_uwpx_nodes", "nodes_one_extra", bytes([2]) + frame(43, nodes_entries(3)))
put("fuzz_uwpx_nodes", "nodes_cap_plus_one", bytes([64]) + frame(43, nodes_entries(65)))
put("fuzz_uwpx_nodes", "nodes_missing", bytes([4]) + frame(43, nodes_entries(3)))
put("fuzz_uwpx_nodes", "nodes_not_stored", bytes([1]) + frame(43, [(52, b"%064x" % 1), (53, b""), (54, b""), (20, u32(3))]))
put("fuzz_uwpx_nodes", "nodes_plain_ok", bytes([0]) + frame(15, [(20, u32(0))]))
print("corpus written under", os.path.join(HERE, "corpus"))
