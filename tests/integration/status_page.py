"""The status page as an operator sees it: statsd holds several windows of deliveries and
failures (the test clock moves it through them) and live gauges; headless Chromium renders
http://127.0.0.1:<port>/ to a PNG (kept as build/artifacts/status_page.png) which must be the
full size, far from blank and show the chart colours; its DOM must hold the SVG charts."""
import os, shutil, struct, subprocess, sys, tempfile, time, zlib
from lib.harness import TOP, Checks
from lib.metrics_util import Statsd, gauge_id, http_id, hist_id

t = Checks()
B = 1800000000 - 1800000000 % 43200
P = 60
GREEN, RED = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)
IOS_OK, ANDROID_OK, IOS_FAIL, ANDROID_FAIL, WNS_OK, WNS_FAIL, MSG, REQ = 5, 6, 7, 8, 23, 24, 1, 10


def png_pixels(path):
    """(width, height, set of RGB colours, share of the commonest colour) of an 8-bit RGB/RGBA PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unexpected PNG format {depth}/{ctype}"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    counts = {}
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = bytes(line[x:x + 3])
            counts[px] = counts.get(px, 0) + 1
        prev = line
    top = max(counts.values())
    return w, h, {tuple(k) for k in counts}, top / (w * h)


sd = Statsd(period_s=P, clock=B + 5, keep="-k" in sys.argv)
profile = tempfile.mkdtemp(prefix="pushpipe-chromium-")
try:
    sd.start()
    # Eight windows of traffic, a different mix in each.
    for i in range(8):
        sd.set_clock(B + i * P + 5)
        sd.send([(MSG, 40 + 10 * i), (REQ, 50 + 12 * i), (IOS_OK, 20 + 5 * i), (IOS_FAIL, i % 3), (ANDROID_OK, 15 + 3 * (i % 4)),
                 (ANDROID_FAIL, 1 + i % 2), (WNS_OK, 5 + i), (WNS_FAIL, (i * 7) % 4)])
        end = time.time() + 5
        while time.time() < end and not any(r[0] == B + i * P and r[2][MSG] == 40 + 10 * i for r in sd.rows()):
            time.sleep(0.05)
    t.check(len(sd.rows()) == 8, f"eight windows stored ({len(sd.rows())})")
    sd.send([(http_id(1, 200), 420), (http_id(1, 400), 3), (http_id(2, 401), 1), (hist_id(1, 2), 400), (hist_id(1, 4), 20),
             (hist_id(1, 0xFF), 400 * 2000 + 20 * 9000)])

    def live_gauges():
        sd.send([(gauge_id(1, 1), 7), (gauge_id(2, 2), 3), (gauge_id(2, 3), 2), (gauge_id(2, 4), 1),
                 (gauge_id(3, 2), 0), (gauge_id(3, 3), 1), (gauge_id(3, 4), 1), (gauge_id(4, 4), 0)])
        time.sleep(0.3)

    live_gauges()
    st, h, page = sd.get("/")
    t.check(st == 200 and h.get("Content-Type", "").startswith("text/html"), "GET / is HTML")
    t.check(b"<script" not in page and b"src=" not in page and b"<link" not in page and b"url(" not in page,
            "self-contained: no script, no external asset")
    t.check(all(f'id="chart-{c}"'.encode() in page for c in ("ios", "android", "wns", "messages")), "four charts in the HTML")
    t.check(b"<td>router</td>" in page and b"<td>apns-sender</td>" in page and b"<td>wns-sender</td>" in page,
            "the live gauges name the reporting daemons")
    t.check(b">7</div>" in page and b">2 / 3</div>" in page, "cards: 7 outbox jobs, 2 of 3 senders connected")

    url = f"http://127.0.0.1:{sd.port}/"
    art = os.path.join(TOP, "build", "artifacts")
    os.makedirs(art, exist_ok=True)
    shot = os.path.join(art, "status_page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={profile}", "--window-size=1200,900"]
    live_gauges()
    r = subprocess.run(base + [f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    t.check(os.path.exists(shot), f"screenshot written to build/artifacts/status_page.png (chromium exit {r.returncode})")
    if os.path.exists(shot):
        size = os.path.getsize(shot)
        t.check(size > 20000, f"the PNG is not trivial ({size} bytes)")
        w, hh, colours, top = png_pixels(shot)
        t.check((w, hh) == (1200, 900), f"1200×900 ({w}×{hh})")
        t.check(len(colours) > 50 and top < 0.9, f"not blank: {len(colours)} colours, the commonest covers {top:.0%}")
        t.check(GREEN in colours and RED in colours, "the delivered (green) and failed (red) bars are painted")
    live_gauges()
    r = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    dom = r.stdout
    t.check(r.returncode == 0 and dom.count("<svg") == 4, f"the rendered DOM holds four SVG charts ({dom.count('<svg')})")
    t.check(all(f'id="chart-{c}"' in dom for c in ("ios", "android", "wns", "messages")), "chart ids in the DOM")
    t.check(dom.count('class="bar delivered"') == 24 and dom.count('class="bar failed"') == 24,
            f"8 windows × 3 providers × (delivered, failed) bars ({dom.count('bar delivered')}, {dom.count('bar failed')})")
    t.check(dom.count("<polyline") == 2, "two lines in the messages chart")
    t.check("<title>55 delivered</title>" in dom, "the newest iOS bar carries its value (20 + 5 × 7 = 55)")
except Exception as e:
    t.check(False, f"exception: {e!r}")
    print(sd.p.logs())
finally:
    sd.close()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(t.done())
