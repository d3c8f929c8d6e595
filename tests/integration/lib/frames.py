"""frames: a second, independent implementation of pushpipe's frame format (common/frame.h)
in Python, for tests that play a sender or an ingress against the real router."""
import socket, struct

MAGIC, VERSION, HEADER = 0x5070, 8, 16
BATCH, TAG_FRAME = 2, 5
HELLO, REGISTER, UNREGISTER, SUBSCRIBE, UNSUBSCRIBE, NOTIFY, REPLY, COUNTS_QUERY, COUNTS = 1, 10, 11, 12, 13, 14, 15, 16, 17
PUSH, RESULT = 20, 21
TAG_ROLE, TAG_INSTANCE, TAG_PID, TAG_PLATFORM = 1, 2, 3, 4
TAG_ID, TAG_TOKEN, TAG_DEVICE, TAG_FLAGS, TAG_GROUP, TAG_DATA = 10, 11, 12, 13, 14, 15
TAG_STATUS, TAG_OUTCOME, TAG_RETRY_AFTER, TAG_TIMESTAMP, TAG_REASON, TAG_ATTEMPT, TAG_KIND = 20, 21, 22, 23, 24, 25, 26
TAG_COUNT_IOS, TAG_COUNT_ANDROID, TAG_COUNT_IDS = 30, 31, 32
ROLE_INGRESS, ROLE_SENDER = 1, 3
IOS, ANDROID = 1, 2
DELIVERED, TOKEN_DEAD, RETRY, MESSAGE_FAILED, CREDENTIALS, TOKEN_SUSPECT = 1, 2, 3, 4, 5, 6
UWPX_CHANNEL, UWPX_ACCOUNTS, UWPX_TEST, NODES, XMPP_PUBLISH, XMPP_REGISTER, XMPP_UNREGISTER = 40, 41, 42, 43, 44, 45, 46
TAG_DEVICE_ID, TAG_URI, TAG_ACCOUNT, TAG_NODE, TAG_SECRET, TAG_DOMAIN = 50, 51, 52, 53, 54, 55
TAG_VERSION, TAG_MSG_COUNT, TAG_PENDING_COUNT, TAG_IDENTITY, TAG_CHANNEL = 56, 57, 58, 59, 60
WNS, KIND_BCHAT, KIND_WNS, KIND_XMPP = 4, 1, 2, 3
OK, NOT_FOUND, BUSY, ERROR, FORBIDDEN, UNAVAILABLE, FAILED = 0, 1, 2, 3, 4, 5, 6
F_HIGH = 2
U32 = {TAG_ROLE, TAG_PID, TAG_PLATFORM, TAG_DEVICE, TAG_FLAGS, TAG_STATUS, TAG_OUTCOME, TAG_ATTEMPT, TAG_KIND,
       TAG_VERSION, TAG_MSG_COUNT, TAG_PENDING_COUNT}
U64 = {TAG_RETRY_AFTER, TAG_TIMESTAMP, TAG_COUNT_IOS, TAG_COUNT_ANDROID, TAG_COUNT_IDS}


def encode(ftype, fid, fields):
    """fields: list of (tag, value); ints are packed by tag kind, bytes/str as is."""
    payload = b""
    for tag, v in fields:
        if tag in U32:
            v = struct.pack("<I", v)
        elif tag in U64:
            v = struct.pack("<Q", v)
        elif isinstance(v, str):
            v = v.encode()
        payload += struct.pack("<HI", tag, len(v)) + v
    return struct.pack("<HBBIQ", MAGIC, VERSION, ftype, len(payload), fid) + payload


def decode(buf):
    magic, ver, ftype, plen, fid = struct.unpack_from("<HBBIQ", buf)
    assert magic == MAGIC and ver == VERSION and plen == len(buf) - HEADER, "bad frame"
    fields, pos = [], HEADER
    while pos < len(buf):
        tag, flen = struct.unpack_from("<HI", buf, pos)
        v = buf[pos + 6:pos + 6 + flen]
        if tag in U32:
            v = struct.unpack("<I", v)[0]
        elif tag in U64:
            v = struct.unpack("<Q", v)[0]
        fields.append((tag, v))
        pos += 6 + flen
    return ftype, fid, fields


def encode_batch(frames):
    """One FRAME_BATCH message carrying these encoded frames, in order."""
    return encode(BATCH, 0, [(TAG_FRAME, f) for f in frames])


def decode_all(buf):
    """The frames of one message: the frame itself, or each frame of a batch."""
    ftype, fid, fields = decode(buf)
    if ftype != BATCH:
        return [(ftype, fid, fields)]
    return [decode(v) for t, v in fields if t == TAG_FRAME]


def field(fields, tag, default=None):
    for t, v in fields:
        if t == tag:
            return v
    return default


def connect(path, role, platform=0, instance=""):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    f = [(TAG_ROLE, role), (TAG_PID, 0)]
    if platform:
        f.append((TAG_PLATFORM, platform))
    if instance:
        f.append((TAG_INSTANCE, instance))
    s.send(encode(HELLO, 0, f))
    return s


def xmpp_publish(path, node, secret, domain="example.org", count=1, pending=0):
    """One FRAME_XMPP_PUBLISH to the router socket at path, as ingress-xmpp sends it; the
    answer's status."""
    s = connect(path, ROLE_INGRESS, instance="test-xmpp")
    s.settimeout(10)
    s.send(encode(XMPP_PUBLISH, 7, [(TAG_NODE, node), (TAG_SECRET, secret), (TAG_DOMAIN, domain),
                                    (TAG_MSG_COUNT, count), (TAG_PENDING_COUNT, pending)]))
    _, _, fl = decode(s.recv(65536))
    s.close()
    return field(fl, TAG_STATUS)
