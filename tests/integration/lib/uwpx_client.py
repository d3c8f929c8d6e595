"""uwpx_client: one UWPX exchange as the Windows client makes it (TLS 1.2, pretty-printed JSON
and a NUL out, the reply up to its NUL back), for tests that run the real ingress-uwpx."""
import json, os, socket, ssl


def uwpx(port, ca_file, msg, timeout=10):
    """Sends msg (a dict) and returns the decoded reply, or {} when none came."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca_file)
    ctx.check_hostname = False
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(json.dumps(msg, indent=2).encode() + b"\0")
        buf = b""
        while not buf.endswith(b"\0"):
            d = s.recv(4096)
            if not d:
                break
            buf += d
    return json.loads(buf[:-1]) if buf.endswith(b"\0") else {}


def pipeline_uwpx(p):
    """uwpx() bound to a harness Pipeline's port and test CA."""
    return lambda msg: uwpx(p.uwpx_port, os.path.join(p.dir, "mock", "ca.pem"), msg)
