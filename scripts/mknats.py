#!/usr/bin/python3
"""mknats.py DIR PERMISSIONS_JSON CLIENT_PORTS CLUSTER_PORTS HTTP_PORTS [PLATFORM-APP ...]

Writes the configuration of a local three-node (or N-node) nats-server cluster for cluster mode
(docs/cluster.md, "Operating a cluster"):

  DIR/nats-N.conf       one per node: own server_name (nats-N), the shared cluster name
                        "pushpipe", own JetStream store DIR/store-N, client, route and monitoring
                        ports on 127.0.0.1, routes to every other node, and the authorization block
  DIR/authorization.conf  the users and their permissions (an "authorization" block, mode 0600),
                        included by every node's file; on real hosts, the same file is included
                        by each server's own configuration (deploy/nats/nats-server.conf)
  DIR/<user>.cred       one per NATS user, mode 0600, a single line USER:PASSWORD
  DIR/users.txt         the user names, one a line

The users and their subject permissions come from PERMISSIONS_JSON (deploy/nats/permissions.json):
one user per role (ingress, router, statsd, admin) and one per sender (platform, app), named
sender-PLATFORM-APP, whose subjects have PLATFORM and APP replaced. PLATFORM-APP arguments default
to apns-default fcm-default wns-default hms-default. Passwords are random (24 bytes of urandom, base64url);
an existing credential file is kept, so re-running keeps the users' passwords. The ports are
comma-separated lists, one port per node. Trusts its arguments (an operator's or a script's).

USER in any role's subjects is replaced by the user's name: each connection's inbox prefix is
_INBOX_<user>, and a user may subscribe to its own inboxes only (docs/cluster.md, "Credentials").
"""
import base64
import json
import os
import sys


def die(msg):
    sys.stderr.write("mknats.py: %s\n" % msg)
    sys.exit(1)


def conf_str(s):
    # nats-server configuration strings: double-quoted, so "$JS..." is not read as a variable.
    if '"' in s or "\\" in s or "\n" in s:
        die("refusing a subject or password with a quote, backslash or newline: %r" % s)
    return '"%s"' % s


def password(path):
    if os.path.exists(path):
        with open(path) as f:
            line = f.readline().strip()
        if ":" in line:
            return line.split(":", 1)[1]
    return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


def write_secret(path, text):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o600)
    os.rename(path + ".tmp", path)


def users_from(perms, senders):
    users = []
    for role in ("ingress", "router", "statsd", "admin"):
        if role not in perms:
            die("permissions: no role %r" % role)
        users.append((role, {k: [x.replace("USER", role) for x in perms[role].get(k, [])]
                             for k in ("publish", "subscribe")}))
    if "sender" not in perms:
        die("permissions: no role 'sender'")
    for pa in senders:
        if pa.count("-") != 1:
            die("sender %r: expected PLATFORM-APP" % pa)
        platform, app = pa.split("-")

        name = "sender-%s-%s" % (platform, app)

        def sub(lst):
            return [s.replace("USER", name).replace("PLATFORM", platform).replace("APP", app) for s in lst]

        users.append((name,
                      {"publish": sub(perms["sender"].get("publish", [])),
                       "subscribe": sub(perms["sender"].get("subscribe", []))}))
    return users


def authorization(users, pw):
    out = ["authorization {", "  users: ["]
    for name, p in users:
        pub = ", ".join(conf_str(s) for s in p.get("publish", []))
        sub = ", ".join(conf_str(s) for s in p.get("subscribe", []))
        out.append("    {user: %s, password: %s, permissions: {" % (conf_str(name), conf_str(pw[name])))
        out.append("      publish: {allow: [%s]}," % pub)
        out.append("      subscribe: {allow: [%s]}" % sub)
        out.append("    }}")
    out += ["  ]", "}"]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 6:
        die(__doc__.strip().splitlines()[0])
    d, perm_file = sys.argv[1], sys.argv[2]
    try:
        client, route, http = ([int(x) for x in a.split(",")] for a in sys.argv[3:6])
    except ValueError:
        die("ports: comma-separated integers expected")
    if not len(client) == len(route) == len(http) or len(client) < 1:
        die("as many client, cluster and monitoring ports as nodes")
    senders = sys.argv[6:] or ["apns-default", "fcm-default", "wns-default", "hms-default"]
    with open(perm_file) as f:
        perms = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    users = users_from(perms, senders)
    pw = {}
    for name, _ in users:
        cred = os.path.join(d, name + ".cred")
        pw[name] = password(cred)
        write_secret(cred, "%s:%s\n" % (name, pw[name]))
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write("".join(n + "\n" for n, _ in users))
    write_secret(os.path.join(d, "authorization.conf"),
                 "# pushpipe's NATS users, from deploy/nats/permissions.json (scripts/mknats.py).\n"
                 + authorization(users, pw))
    n = len(client)
    for i in range(n):
        store = os.path.join(d, "store-%d" % (i + 1))
        os.makedirs(store, exist_ok=True)
        routes = ", ".join("nats-route://127.0.0.1:%d" % route[j] for j in range(n) if j != i)
        text = (
            "# nats-%d of a local %d-node cluster, written by scripts/mknats.py (docs/cluster.md).\n"
            "server_name: nats-%d\n"
            "listen: 127.0.0.1:%d\n"
            "http: 127.0.0.1:%d\n"
            "jetstream {\n  store_dir: %s\n}\n"
            "cluster {\n  name: pushpipe\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n"
            "include ./authorization.conf\n"
            % (i + 1, n, i + 1, client[i], http[i], conf_str(store), route[i], routes)
        )
        with open(os.path.join(d, "nats-%d.conf" % (i + 1)), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
