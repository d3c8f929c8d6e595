"""statsd's query socket (issue "front doors" item 13): a client sends many period queries
without reading, so statsd's replies fill the socket and queue inside statsd; once the client
reads, every reply arrives — without the client sending anything more (before, the queued
replies waited for the next reply statsd sent); statsd then still answers a new client."""
import sys
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import socket, struct, time

from lib import frames
from lib.harness import Checks
from lib.metrics_util import STATS_QUERY, STATS_ROWS, TAG_START, Statsd

t = Checks()
sd = Statsd(keep="-k" in sys.argv)
try:
    sd.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(sd.qsock)
    s.settimeout(2)
    sent = 0
    q = [frames.encode(STATS_QUERY, i + 1, [(TAG_START, struct.pack("<Q", 0))]) for i in range(3000)]
    try:
        for m in q:
            s.send(m)
            sent += 1
    except socket.timeout:
        pass
    time.sleep(1.0)  # statsd reads them all and queues what the socket does not take
    got, ids = 0, set()
    s.settimeout(3)
    try:
        while got < sent:
            ftype, fid, _ = frames.decode(s.recv(1 << 20))
            if ftype == STATS_ROWS:
                got += 1
                ids.add(fid)
    except socket.timeout:
        pass
    t.check(sent >= 1000, f"the client sent {sent} queries without reading a reply (the replies overflow its socket)")
    t.check(got == sent and len(ids) == sent,
            f"every reply arrives once the client reads, with no further query: {got} of {sent}")
    s.close()
    st = sd.rows()
    t.check(isinstance(st, list), "statsd still answers a new query client")
    t.check(sd.proc.poll() is None, "statsd still running")
except Exception as e:  # a harness failure is a test failure
    import traceback
    traceback.print_exc()
    t.check(False, f"statsd query test raised {e!r}")
finally:
    if t.failed:
        print(sd.p.logs()[-3000:])
    sd.close()
sys.exit(t.done())
