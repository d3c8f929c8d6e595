"""Slowloris against ingress-onion (docs/protocol.md §4.6, rows http.slow_source and
http.slow_body): clients that trickle a request head one byte every 0.4 s from one source
address are closed within head_timeout_s of their accept however often they send, those over
the per-source cap (max_connections / 4 when not configured) are accepted and closed at once,
and a client that trickles a body below min_body_rate is closed; meanwhile a client from
another source address is served throughout.
Configuration: max_connections 8 (so the per-source cap is 2), head_timeout_s 3,
body_timeout_s 6, min_body_rate 200, and timeout_s 30 so that libmicrohttpd's idle timeout,
which every byte resets, is not what closes anybody."""
import sys
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import os, socket, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.harness import raw_exchange  # noqa: E402
from lib.onion_env import V2, Checks, OnionEnv  # noqa: E402
from lib.onion_env import bc  # noqa: E402

HEAD_S, BODY_S, RATE, MAXC = 3, 6, 200, 8
TRICKLERS = 10  # more than max_connections: without the per-source cap they would hold every slot


def configure(c):
    c["ingress_onion"].update(max_connections=MAXC, head_timeout_s=HEAD_S, body_timeout_s=BODY_S,
                              min_body_rate=RATE, timeout_s=30)


t = Checks()
env = OnionEnv(edit=configure, keep="-k" in sys.argv)


def trickle(source, first, byte, results, i, limit=HEAD_S + 6):
    """Connects from `source`, sends `first`, then `byte` every 0.4 s until the server closes
    (or `limit` seconds pass); results[i] = seconds from connect to close, or None."""
    try:
        s = socket.create_connection(("127.0.0.1", env.port), timeout=limit, source_address=(source, 0))
    except OSError as e:
        results[i] = ("connect failed", repr(e))
        return
    start = time.time()
    s.setblocking(False)
    try:
        s.sendall(first)
        while time.time() - start < limit:
            try:
                if s.recv(4096) == b"":
                    results[i] = time.time() - start
                    return
            except BlockingIOError:
                pass
            except OSError:
                results[i] = time.time() - start
                return
            try:
                s.send(byte)
            except BlockingIOError:
                pass
            except OSError:
                results[i] = time.time() - start
                return
            time.sleep(0.4)
        results[i] = None
    finally:
        s.close()


def valid_requests(until, out):
    while time.time() < until:
        q = env.request(bc.v2_plaintext("unregister", {"token": "slow-" + os.urandom(6).hex()}), V2)
        try:
            r = bc.http_post(env.port, V2, q.body, timeout=10)
            out.append(r.status == 200 and q.open_reply(r.body) is not None)
        except OSError as e:
            out.append(repr(e))
        time.sleep(0.25)


try:
    env.start()
    head = b"POST /beldex/v2/lsrpc HTTP/1.1\r\nHost: x\r\nX-Slow: "
    heads = [None] * TRICKLERS
    th = [threading.Thread(target=trickle, args=("127.0.0.2", head, b"a", heads, i)) for i in range(TRICKLERS)]
    bodies = [None]
    # A whole head, then a body of 1000 bytes at 2.5 bytes/s (min_body_rate is 200).
    body_head = b"POST /beldex/v2/lsrpc HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    th.append(threading.Thread(target=trickle, args=("127.0.0.3", body_head, b"b", bodies, 0)))
    served = []
    started = time.time()
    for x in th:
        x.start()
    valid_requests(started + HEAD_S + 2, served)
    for x in th:
        x.join(HEAD_S + 10)
    good = sum(1 for x in served if x is True)
    t.check(len(served) >= 5 and good == len(served),
            f"[http.slow_source] a client from 127.0.0.1 is served throughout while 127.0.0.2 trickles: {good}/{len(served)} Success")
    closed = [x for x in heads if isinstance(x, float)]
    t.check(len(closed) == TRICKLERS,
            f"[http.slow_source] every trickling client from 127.0.0.2 is closed, none left open or in the backlog ({heads})")
    cap = MAXC // 4
    at_once = [x for x in closed if x < 1.0]
    t.check(len(at_once) >= TRICKLERS - cap,
            f"[http.slow_source] the {TRICKLERS - cap} over the per-source cap of {cap} are accepted and closed at once "
            f"({len(at_once)} closed within 1 s)")
    t.check(all(x < HEAD_S + 1.0 for x in closed),
            f"[http.slow_source] trickling one byte every 0.4 s does not keep a head alive past head_timeout_s {HEAD_S} "
            f"(closed after {sorted(round(x, 1) for x in closed)} s)")
    t.check(any(x >= HEAD_S - 0.5 for x in closed),
            f"[http.slow_source] the ones within the cap are kept until the head deadline, not cut early ({sorted(round(x, 1) for x in closed)})")
    b = bodies[0]
    t.check(isinstance(b, float) and 1.8 <= b < 3.5,
            f"[http.slow_body] a body trickled at 2.5 bytes/s is closed once its first 2 s show it below min_body_rate {RATE} ({b})")
    q = env.request(bc.v2_plaintext("unregister", {"token": "after-" + os.urandom(6).hex()}), V2)
    out, _ = raw_exchange(env.port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" %
                          (V2.encode(), len(q.body)) + q.body, source="127.0.0.2")
    t.check(out.startswith(b"HTTP/1.1 200"), f"[http.slow_source] once its tricklers are gone, 127.0.0.2 is served again ({out[:20]!r})")
    t.check(env.alive(), "[final] ingress-onion still running")
except Exception as e:  # a harness failure is a test failure
    import traceback
    traceback.print_exc()
    t.check(False, f"slowloris test raised {e!r}")
finally:
    if t.failed:
        print(env.logs()[-4000:])
    env.stop()
sys.exit(t.done())
