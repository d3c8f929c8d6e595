#!/usr/bin/python3
"""mkcluster.py DIR HTTP_PORT HTTP2_PORT NATS_CLIENT_PORTS

Writes one configuration file per daemon of the local cluster (make run-cluster,
docs/cluster.md) as DIR/conf/<name>.json, from the single-machine configuration DIR/pushpipe.json
that scripts/mkconfig.sh wrote (keys, mock provider, statistics password). Every file gets a
"cluster" section: the three local nats-server nodes (NATS_CLIENT_PORTS, comma-separated),
replicas 3, and the credential file of the daemon's own NATS user in DIR/nats (mknats.py).

  ingress-onion-1, -2   listen on 127.0.0.1:HTTP_PORT and :HTTP2_PORT, one server key
  router-1, -2          each its own database DIR/db/router-N and state directory DIR/run/router-N
                        (a router listens on router.sock there); the statistics sockets of
                        DIR/run are linked into it, as on a host of their own with its statsd
  everything else       state directory DIR/run, where statsd listens
Prints the names written, one a line.
"""
import copy
import json
import os
import sys

d, http, http2, nats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = os.path.abspath(d)
with open(os.path.join(d, "pushpipe.json")) as f:
    base = json.load(f)
servers = ["nats://127.0.0.1:%s" % p for p in nats.split(",")]
run = os.path.join(d, "run")
os.makedirs(os.path.join(d, "conf"), exist_ok=True)


def cluster(user):
    return {"servers": servers, "replicas": 3,
            "credentials": os.path.join(d, "nats", user + ".cred")}


daemons = [
    ("ingress-onion-1", "ingress", {"ingress_onion": {"listen": "127.0.0.1:%d" % http}}),
    ("ingress-onion-2", "ingress", {"ingress_onion": {"listen": "127.0.0.1:%d" % http2}}),
    ("ingress-uwpx", "ingress", {}),
    ("ingress-xmpp", "ingress", {}),
    ("statsd", "statsd", {}),
]
for n in (1, 2):
    daemons.append(("router-%d" % n, "router", {
        "state_dir": os.path.join(run, "router-%d" % n),
        "router": {"db_path": os.path.join(d, "db", "router-%d" % n)}}))
# hms-sender (Huawei) runs when the base configuration has its section (docs/senders.md).
for plat in ("apns", "fcm", "wns") + (("hms",) if "hms_sender" in base else ()):
    for n in (1, 2):
        daemons.append(("%s-sender-%d" % (plat, n), "sender-%s-default" % plat, {}))

for name, user, over in daemons:
    c = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict):
            c.setdefault(k, {}).update(v)
        else:
            c[k] = v
    c["cluster"] = cluster(user)
    sd = c.get("state_dir", run)
    os.makedirs(sd, exist_ok=True)
    if sd != run:
        for s in ("statsd.sock", "statsd-query.sock"):
            link = os.path.join(sd, s)
            if not os.path.lexists(link):
                os.symlink(os.path.join(run, s), link)
    p = os.path.join(d, "conf", name + ".json")
    with open(p + ".tmp", "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    os.rename(p + ".tmp", p)
    print(name)
