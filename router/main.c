/*
 * router: the only process that opens the registry. Ingresses send requests, senders
 * connect for jobs, over SEQPACKET sockets in the state directory, one per role class
 * ("router.sock" for ingresses, "router-sender.sock", "router-tool.sock"); the first frame of a
 * connection says who it is, and must name its socket's role. On the event loop (common/loop.c):
 * the listeners and the peers, whose frames a turn gathers; at the end of the turn they are
 * committed as one batch (group commit) and answered, and jobs are dispatched; timers for the
 * outbox rescan, the hello deadlines, the map and the device expiry sweep.
 * Trusts no peer: every frame is parsed before use, and a peer that sends a bad frame is
 * dropped with a log line. Holds no network sockets, no provider credentials.
 */
#include "counters.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "outbox.h"
#include "registry.h"
#include "router.h"
#include "sandbox.h"
#include "sock.h"
#include "uwpx_xmpp_reg.h"
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH_MAX 4096

/* One socket per role class (docs/operations.md, "Security model"): each belongs to its class's
 * user (users.<class>, else `user`) with mode 0600, so no other user can connect, and a hello
 * must claim the role of the socket it came in on. */
static const struct {
	const char *name;
	uint32_t role;
} LISTENERS[] = {{"router.sock", ROLE_INGRESS}, {"router-sender.sock", ROLE_SENDER}, {"router-tool.sock", ROLE_TOOL}};
#define NLISTEN (sizeof LISTENERS / sizeof LISTENERS[0])

static struct router R;
static int lfds[NLISTEN];

/* Watches a peer for writes too while it has frames queued. */
static void want_write(struct router_peer *p)
{
	if (peer_has_queued(&p->p))
		loop_mod(R.lp, p->h, EPOLLIN | EPOLLOUT);
}

static const char *role_name(uint32_t role)
{
	return role == ROLE_SENDER ? "sender" : role == ROLE_INGRESS ? "ingress" : role == ROLE_TOOL ? "tool" : "peer";
}

/* Closes a peer without a log line of its own (connections without a hello: see
 * check_hello_deadlines, which logs them in summary). */
static void drop_quiet(struct router *r, int slot)
{
	struct router_peer *p = &r->peers[slot];
	if (!p->in_use)
		return;
	if (p->p.role == ROLE_SENDER && p->p.hello_done)
		router_sender_gone(r, slot);
	xtest_peer_gone(r, slot);
	if (!p->p.hello_done && r->nunauth > 0)
		r->nunauth--;
	loop_del(r->lp, p->h);
	p->h = NULL;
	peer_close(&p->p);
	p->in_use = 0;
}

void router_drop_peer(struct router *r, int slot, const char *why)
{
	struct router_peer *p = &r->peers[slot];
	if (!p->in_use)
		return;
	log_info("%s%s%s (pid %u, uid %u) dropped: %s", p->p.hello_done ? role_name(p->p.role) : "peer",
		 p->p.instance[0] ? " " : "", p->p.instance, p->p.has_cred ? p->p.cred_pid : p->p.pid, p->p.uid, why);
	drop_quiet(r, slot);
}

int router_send_frame(struct router *r, int slot, uint64_t gen, const uint8_t *buf, size_t len)
{
	struct router_peer *p = &r->peers[slot];

	if (!p->in_use || p->gen != gen)
		return -1; /* the ingress went away; it will not acknowledge the client either */
	if (peer_send(&p->p, buf, len) < 0) {
		router_drop_peer(r, slot, "reply queue full");
		return -1;
	}
	want_write(p);
	return 0;
}

static void reply_counts(struct router *r, int slot, uint64_t id)
{
	uint8_t buf[128];
	struct frame_writer w;
	uint64_t ios = 0, android = 0, ids = 0;
	MDB_txn *txn;
	long n;

	if (mdb_txn_begin(r->store.env, NULL, MDB_RDONLY, &txn) == 0) {
		registry_counts(txn, &r->store, &ios, &android, &ids);
		mdb_txn_abort(txn);
	}
	frame_begin(&w, buf, FRAME_COUNTS, id);
	frame_put_u64(&w, TAG_COUNT_IOS, ios);
	frame_put_u64(&w, TAG_COUNT_ANDROID, android);
	frame_put_u64(&w, TAG_COUNT_IDS, ids);
	n = frame_end(&w);
	if (n > 0 && peer_send(&r->peers[slot].p, buf, (size_t)n) < 0)
		router_drop_peer(r, slot, "reply queue full");
}

static void on_peer(void *arg, uint32_t events);
static void read_peer(int slot);

/* The oldest connection that has not said hello yet, or -1. */
static int oldest_unauth(void)
{
	int best = -1;
	for (int i = 0; i < ROUTER_PEERS; i++)
		if (R.peers[i].in_use && !R.peers[i].p.hello_done &&
		    (best < 0 || R.peers[i].accepted_ms < R.peers[best].accepted_ms))
			best = i;
	return best;
}

/* Connections that have not said hello are few (router.max_unauthenticated; a new one pushes
 * out the oldest) and short-lived (router.hello_timeout_ms), so they cannot keep real peers
 * out. A real peer sends its hello right after connect(), so it is usually read at once. */
static void accept_peers(int lfd, uint32_t sock_role)
{
	int fd;
	while ((fd = sock_accept(lfd)) >= 0) {
		int slot;
		if (R.nunauth >= (uint32_t)R.cfg->router.max_unauthenticated && (slot = oldest_unauth()) >= 0) {
			drop_quiet(&R, slot);
			R.unauth_closed++;
		}
		for (slot = 0; slot < ROUTER_PEERS && R.peers[slot].in_use; slot++)
			;
		if (slot == ROUTER_PEERS) {
			log_warn("too many peers; connection refused");
			close(fd);
			continue;
		}
		peer_init(&R.peers[slot].p, fd);
		if (peer_init_cred(&R.peers[slot].p) < 0) {
			log_warn("a peer's credentials cannot be read (%s); connection refused", strerror(errno));
			peer_close(&R.peers[slot].p);
			continue;
		}
		R.peers[slot].in_use = 1;
		R.peers[slot].sock_role = sock_role;
		R.peers[slot].gen = ++R.next_gen;
		R.peers[slot].in_flight = 0;
		R.peers[slot].forged_logged = 0;
		R.peers[slot].accepted_ms = mono_ms();
		R.nunauth++;
		if ((R.peers[slot].h = loop_add(R.lp, fd, EPOLLIN, on_peer, &R.peers[slot])) == NULL) {
			log_warn_errno("a peer cannot be watched; connection refused");
			drop_quiet(&R, slot);
			continue;
		}
		read_peer(slot);
	}
}

static void on_listen(void *arg, uint32_t events)
{
	int i = (int)((int *)arg - lfds);

	(void)events;
	accept_peers(lfds[i], LISTENERS[i].role);
}

/* A peer's socket: queued frames go out once it takes them, then what it sent is read. */
static void on_peer(void *arg, uint32_t events)
{
	struct router_peer *p = arg;
	int slot = (int)(p - R.peers);

	if (events & EPOLLOUT) {
		if (peer_flush(&p->p) < 0) {
			router_drop_peer(&R, slot, "send failed");
			return;
		}
		if (!peer_has_queued(&p->p))
			loop_mod(R.lp, p->h, EPOLLIN);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_peer(slot);
}

/* On every tenth tick (every second), on every tick (100 ms) once within 10 points of the warning:
 * the map's use as gauges; a loud line past router.map_warn_percent and past
 * router.map_full_percent, where registrations stop (handle.c) so that the rest stays for the
 * outbox. The lines come again only after the use has dropped below. */
static void check_map(void)
{
	uint64_t used, size;
	unsigned pct;

	if (R.map_skip > 0) {
		R.map_skip--;
		return;
	}
	if (store_map_use(&R.store, &used, &size) < 0 || size == 0)
		return;
	gauge_set(GAUGE_MAP_USED_BYTES, used);
	gauge_set(GAUGE_MAP_SIZE_BYTES, size);
	pct = (unsigned)(used * 100 / size);
	R.map_skip = pct + 10 < (unsigned)R.cfg->router.map_warn_percent ? 9 : 0;
	if (pct >= (unsigned)R.cfg->router.map_warn_percent && !R.map_warned)
		log_error("REGISTRY MAP %u%% FULL (%llu of %llu bytes): raise router.map_size_mb; at %ld%% new "
			  "registrations are refused",
			  pct, (unsigned long long)used, (unsigned long long)size, R.cfg->router.map_full_percent);
	R.map_warned = pct >= (unsigned)R.cfg->router.map_warn_percent;
	if (pct >= (unsigned)R.cfg->router.map_full_percent && !R.map_full)
		log_error("REGISTRY MAP %u%% FULL: new registrations and subscriptions are refused until there is room "
			  "(router.map_size_mb); notifies and results go on",
			  pct);
	else if (pct < (unsigned)R.cfg->router.map_full_percent && R.map_full)
		log_warn("registry map %u%% full: registrations accepted again", pct);
	R.map_full = pct >= (unsigned)R.cfg->router.map_full_percent;
}

/* On every tick: closes connections past their hello deadline; one summary line at most every
 * 10 s. */
static void check_hello_deadlines(uint64_t now)
{
	for (int i = 0; R.nunauth > 0 && i < ROUTER_PEERS; i++)
		if (R.peers[i].in_use && !R.peers[i].p.hello_done &&
		    now - R.peers[i].accepted_ms >= (uint64_t)R.cfg->router.hello_timeout_ms) {
			drop_quiet(&R, i);
			R.unauth_closed++;
		}
	if (R.unauth_closed > 0 && now >= R.next_unauth_log_ms) {
		log_warn("%llu connections closed without a hello (router.hello_timeout_ms %ld, "
			 "router.max_unauthenticated %ld)",
			 (unsigned long long)R.unauth_closed, R.cfg->router.hello_timeout_ms,
			 R.cfg->router.max_unauthenticated);
		R.unauth_closed = 0;
		R.next_unauth_log_ms = now + 10000;
	}
}

/* May this peer take the role its hello claims? Only the role's uid (users.<role>, else
 * `user`, else the router's own) or root; 0 when not. */
static int role_allowed(const struct peer *p)
{
	if (p->role != ROLE_INGRESS && p->role != ROLE_SENDER && p->role != ROLE_TOOL)
		return 0;
	return p->has_cred && (p->uid == 0 || p->uid == R.role_uid[p->role]);
}

/* Resolves each role's user before privileges drop (the user database may be out of reach
 * afterwards); roles without one are filled in with the router's own uid by role_uids_finish. */
static int role_users[ROLE_TOOL + 1];
static uint32_t role_gid[ROLE_TOOL + 1];
static void role_uids_resolve(const struct config *c)
{
	static const struct {
		uint32_t role;
		const char *name;
	} roles[] = {{ROLE_INGRESS, "ingress"}, {ROLE_SENDER, "sender"}, {ROLE_TOOL, "tool"}};
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		const char *u = config_user_for(c, roles[i].name);
		struct passwd *pw;
		if (u[0] == '\0')
			continue;
		if ((pw = getpwnam(u)) == NULL)
			fatal("user %s (for the %s role): no such user", u, roles[i].name);
		R.role_uid[roles[i].role] = (uint32_t)pw->pw_uid;
		role_gid[roles[i].role] = (uint32_t)pw->pw_gid;
		role_users[roles[i].role] = 1;
	}
}

static void role_uids_finish(void)
{
	for (uint32_t r = 0; r <= ROLE_TOOL; r++)
		if (!role_users[r])
			R.role_uid[r] = (uint32_t)geteuid();
	log_info("peers may take a role only as root or as uid ingress %u, sender %u, tool %u",
		 R.role_uid[ROLE_INGRESS], R.role_uid[ROLE_SENDER], R.role_uid[ROLE_TOOL]);
}

static int batch_add(int slot, const uint8_t *buf, size_t len)
{
	struct pending *p;
	if (R.nbatch == R.batch_cap) {
		size_t nc = R.batch_cap ? R.batch_cap * 2 : 256;
		struct pending *b = realloc(R.batch, nc * sizeof *b);
		if (b == NULL)
			return -1;
		R.batch = b;
		R.batch_cap = nc;
	}
	p = &R.batch[R.nbatch];
	memset(p, 0, sizeof *p);
	if ((p->buf = malloc(len)) == NULL)
		return -1;
	memcpy(p->buf, buf, len);
	p->len = len;
	p->slot = slot;
	p->gen = R.peers[slot].gen;
	p->platform = R.peers[slot].p.platform;
	p->lane = R.peers[slot].p.role == ROLE_SENDER ? R.peers[slot].lane : 0;
	R.nbatch++;
	return 0;
}

/* Takes one frame from a peer that has said hello; -1 when its type is not allowed for it. */
static int take_frame(int slot, const uint8_t *buf, size_t n, const struct frame *f, const char **why)
{
	struct router_peer *p = &R.peers[slot];

	switch (f->type) {
	case FRAME_REGISTER:
	case FRAME_UNREGISTER:
	case FRAME_SUBSCRIBE:
	case FRAME_UNSUBSCRIBE:
	case FRAME_NOTIFY:
	case FRAME_UWPX_CHANNEL:
	case FRAME_UWPX_ACCOUNTS:
	case FRAME_UWPX_TEST:
	case FRAME_XMPP_PUBLISH:
	case FRAME_XMPP_REGISTER:
	case FRAME_XMPP_UNREGISTER:
		if (p->p.role == ROLE_SENDER)
			return *why = "frame type not allowed for this peer", -1;
		if (batch_add(slot, buf, n) < 0)
			router_reply(&R, slot, p->gen, f->id, STATUS_BUSY);
		return 0;
	case FRAME_UWPX_IMPORT: /* nodes and secrets from outside: the operator's tool only */
		if (p->p.role != ROLE_TOOL)
			return *why = "frame type not allowed for this peer", -1;
		if (batch_add(slot, buf, n) < 0)
			router_reply(&R, slot, p->gen, f->id, STATUS_BUSY);
		return 0;
	case FRAME_RESULT: {
		if (p->p.role != ROLE_SENDER)
			return *why = "frame type not allowed for this peer", -1;
		/* Only for a job in flight on this very connection (router_result_held). */
		if (router_result_held(&R, slot, f->id) && batch_add(slot, buf, n) < 0)
			R.spilled = 1;
		return 0;
	}
	case FRAME_COUNTS_QUERY:
		reply_counts(&R, slot, f->id);
		return 0;
	case FRAME_SENDERS_QUERY: /* an ingress's health answer (senders.c) */
		router_reply_senders(&R, slot, f->id);
		return 0;
	default:
		return *why = "frame type not allowed for this peer", -1;
	}
}

/* Takes every frame of a batch, in order; a bad one drops the peer (which cannot then have
 * meant the rest). Replies to a peer that batches go back in batches (peer_batch_flush). */
static int take_batch(int slot, const struct frame *f, const char **why)
{
	struct frame_field item;
	struct frame inner;
	size_t pos = 0;
	int r;

	R.peers[slot].p.batches = 1;
	while ((r = frame_batch_next(f, &pos, &item, &inner, why)) == 1)
		if (take_frame(slot, item.val, item.len, &inner, why) < 0)
			return -1;
	return r;
}

static const char *provider_name(uint32_t platform)
{
	static const char *const names[] = {"unknown", "apns", "fcm", "huawei", "wns"};
	return platform < sizeof names / sizeof names[0] ? names[platform] : "unknown";
}

/* A sender serves one app (its hello's TAG_APP, "default" when absent) and gets only that app's
 * jobs (its lane, apps.c); a sender of an app this router's configuration does not have for its
 * platform is refused rather than left waiting for jobs that never come. */
static int sender_app_ok(int slot)
{
	struct router_peer *p = &R.peers[slot];
	const char *conf = router_platform_conf(p->p.platform);

	p->lane = -1;
	if (conf == NULL)
		return 1; /* an unknown platform gets no jobs anyway */
	p->lane = router_lane(&R, p->p.platform, p->p.app, strlen(p->p.app));
	if (p->lane >= 0)
		return 1;
	log_error("sender %s instance \"%s\" (pid %u) refused: it serves app \"%s\", which is no %s app of this "
		  "router's configuration (its default %s app is \"%s\"; docs/config.md, section apps)",
		  provider_name(p->p.platform), p->p.instance, p->p.cred_pid, p->p.app, conf, conf,
		  config_app_of(R.cfg, conf));
	router_drop_peer(&R, slot, "sender of another app");
	return 0;
}

/* One connected sender per platform, app and instance name: a second process with the same name is
 * refused (its jobs would be split between two configurations); the same process reconnecting
 * replaces its old connection, which the router may not have seen close yet. */
static int sender_name_free(int slot)
{
	struct router_peer *p = &R.peers[slot];

	for (int i = 0; i < ROUTER_PEERS; i++) {
		struct router_peer *o = &R.peers[i];
		if (i == slot || !o->in_use || !o->p.hello_done || o->p.role != ROLE_SENDER ||
		    o->p.platform != p->p.platform || strcmp(o->p.app, p->p.app) != 0 ||
		    strcmp(o->p.instance, p->p.instance) != 0)
			continue;
		if (o->p.cred_pid == p->p.cred_pid) {
			router_drop_peer(&R, i, "replaced by a new connection of the same process");
			continue;
		}
		log_error("sender %s instance \"%s\" (pid %u) refused: that name is already connected (pid %u); "
			  "give each sender its own -i NAME",
			  provider_name(p->p.platform), p->p.instance, p->p.cred_pid, o->p.cred_pid);
		router_drop_peer(&R, slot, "duplicate sender instance name");
		return 0;
	}
	return 1;
}

/* Reads what one peer has sent (bounded per round, so one busy peer cannot starve others). */
static void read_peer(int slot)
{
	static uint8_t buf[FRAME_MAX];
	struct router_peer *p = &R.peers[slot];

	for (int k = 0; k < 256 && p->in_use && R.nbatch < BATCH_MAX; k++) {
		const char *why = NULL;
		struct frame f;
		ssize_t n = sock_recv(p->p.fd, buf);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			router_drop_peer(&R, slot, n == 0 ? "disconnected" : strerror(errno));
			return;
		}
		if (!p->p.hello_done) {
			if (mono_ms() - p->accepted_ms >= (uint64_t)R.cfg->router.hello_timeout_ms) {
				drop_quiet(&R, slot);
				R.unauth_closed++;
				return;
			}
			if (peer_hello(&p->p, buf, (size_t)n, &why) < 0) {
				p->p.hello_done = 0;
				router_drop_peer(&R, slot, why);
				return;
			}
			R.nunauth--;
			if (p->p.role != ROLE_INGRESS && p->p.role != ROLE_SENDER && p->p.role != ROLE_TOOL) {
				router_drop_peer(&R, slot, "unexpected role");
				return;
			}
			if (p->p.role != p->sock_role) {
				log_warn("a peer with uid %u (pid %u) claimed the %s role on the %s socket: dropped",
					 p->p.uid, p->p.cred_pid, role_name(p->p.role), role_name(p->sock_role));
				router_drop_peer(&R, slot, "role does not belong to its socket");
				return;
			}
			if (!role_allowed(&p->p)) {
				log_warn("a peer with uid %u (pid %u) claimed the %s role, which is uid %u's: dropped",
					 p->p.uid, p->p.cred_pid, role_name(p->p.role), R.role_uid[p->p.role]);
				router_drop_peer(&R, slot, "role not allowed for its uid");
				return;
			}
			if (p->p.role == ROLE_SENDER && (!sender_app_ok(slot) || !sender_name_free(slot)))
				return;
			if (p->p.role == ROLE_SENDER)
				log_info("sender %s instance \"%s\" connected (pid %u, uid %u, app %s)", provider_name(p->p.platform),
					 p->p.instance, p->p.cred_pid, p->p.uid, p->p.app);
			else
				log_info("%s%s%s connected (pid %u, uid %u)", role_name(p->p.role), p->p.instance[0] ? " " : "",
					 p->p.instance, p->p.cred_pid, p->p.uid);
			continue;
		}
		if (frame_parse(buf, (size_t)n, &f, &why) < 0 ||
		    (f.type == FRAME_BATCH ? take_batch(slot, &f, &why) : take_frame(slot, buf, (size_t)n, &f, &why)) < 0) {
			router_drop_peer(&R, slot, why);
			return;
		}
	}
}

/* Rescans the outbox for jobs the ready rings do not hold: those whose retry time came, and
 * those a full ring spilled (handle.c, dispatch.c). */
static void rescan(void)
{
	router_rescan(&R);
	R.last_scan_ms = mono_ms();
}

/* Every second: the outbox, for jobs whose retry time came. */
static void outbox_tick(void *arg)
{
	(void)arg;
	rescan();
}

/* Every 100 ms: the hello deadlines, the map, the UWPX test pushes nobody answered. */
static void tick(void *arg)
{
	uint64_t now = mono_ms();

	(void)arg;
	check_hello_deadlines(now);
	check_map();
	xtest_expire(&R, now);
}

/* Every minute (the first after 5 s): device expiry, bounded work per pass. */
static void sweep_tick(void *arg)
{
	(void)arg;
	router_sweep_devices(&R, now_ms());
}

/* The end of every turn: what the turn read is committed as one batch and answered, jobs go to
 * the senders, and what each peer was sent during the turn leaves as one batch. */
static void end_turn(void *arg)
{
	(void)arg;
	router_commit_batch(&R);
	/* A spilled queue is refilled soon, but not on every turn. */
	if (R.spilled && mono_ms() >= R.last_scan_ms + 50)
		rescan();
	router_dispatch(&R);
	for (int i = 0; i < ROUTER_PEERS; i++) {
		if (R.peers[i].in_use && peer_batch_flush(&R.peers[i].p) < 0)
			router_drop_peer(&R, i, "reply queue full");
		if (R.peers[i].in_use)
			want_write(&R.peers[i]);
	}
	gauge_set(GAUGE_OUTBOX_JOBS, R.outbox_jobs);
	counters_flush();
}

/* The router's policy: its listeners are bound before; it reads and writes its own LMDB
 * directory only. One machine: a single thread, so no new threads or processes at all. */
static void enter_sandbox(const struct config *c)
{
	struct sandbox_policy p;

	daemon_policy(&p, c);
	p.may_listen = 1;
	p.nofile = 512; /* 256 peers, LMDB, epoll, signalfd, listeners */
	p.single_thread = !config_cluster(c);
	sandbox_allow_write(&p, c->router.db_path);
	sandbox_enter(&p);
}

/* Cluster mode: the bus instead of the sockets (docs/cluster.md). */
static void run_cluster(struct config *cfg)
{
	char path[256];

	counters_init(config_socket(cfg, "statsd.sock", path, sizeof path) ? path : "");
	if (router_cluster_prepare(&R) < 0)
		fatal("cluster: cannot start");
	daemon_privdrop(cfg);
	enter_sandbox(cfg);
	if (router_cluster_start(&R) < 0) /* connects: libnats' threads start inside the sandbox */
		return;
	loop_run(R.lp);
	router_cluster_stop(&R);
}

/* Binds the three sockets; as root, each goes to its class's user, otherwise to the router's. */
static void listen_all(struct config *cfg)
{
	char path[256];

	for (size_t i = 0; i < NLISTEN; i++) {
		int own = geteuid() == 0 && role_users[LISTENERS[i].role];
		uid_t uid = own ? (uid_t)R.role_uid[LISTENERS[i].role] : (uid_t)-1;
		gid_t gid = own ? (gid_t)role_gid[LISTENERS[i].role] : (gid_t)-1;
		if (config_socket(cfg, LISTENERS[i].name, path, sizeof path) == NULL ||
		    (lfds[i] = sock_listen_as(path, SOCK_SEQPACKET, 0600, uid, gid)) < 0)
			fatal_errno("listening on %s/%s", cfg->state_dir, LISTENERS[i].name);
	}
}

static void log_started(void)
{
	MDB_txn *txn;
	uint64_t ios, android, ids, ndev, nlink, nnode, nident;

	if (mdb_txn_begin(R.store.env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	R.outbox_jobs = outbox_count(txn, &R.store);
	registry_counts(txn, &R.store, &ios, &android, &ids);
	log_info("started: %llu ids, %llu ios and %llu android tokens, %llu jobs in the outbox", (unsigned long long)ids,
		 (unsigned long long)ios, (unsigned long long)android, (unsigned long long)R.outbox_jobs);
	xreg_counts(txn, &R.store, &ndev, &nlink, &nnode, &nident);
	log_info("XMPP: %llu UWPX devices with %llu accounts, %llu push nodes, %llu ad-hoc registrations",
		 (unsigned long long)ndev, (unsigned long long)nlink, (unsigned long long)nnode,
		 (unsigned long long)nident);
	mdb_txn_abort(txn);
}

/* One machine: the sockets, their peers and the timers on the loop. */
static void run_sockets(struct config *cfg)
{
	char path[256];

	role_uids_resolve(cfg);
	listen_all(cfg);
	counters_init(config_socket(cfg, "statsd.sock", path, sizeof path) ? path : "");
	daemon_privdrop(cfg);
	role_uids_finish();
	for (size_t i = 0; i < NLISTEN; i++)
		if (loop_add(R.lp, lfds[i], EPOLLIN, on_listen, &lfds[i]) == NULL)
			fatal_errno("event loop");
	if (loop_timer(R.lp, 0, 1000, outbox_tick, NULL) == NULL || loop_timer(R.lp, 0, 100, tick, NULL) == NULL ||
	    loop_timer(R.lp, 5000, 60000, sweep_tick, NULL) == NULL || loop_on_turn(R.lp, end_turn, NULL) < 0)
		fatal_errno("event loop");
	enter_sandbox(cfg);
	log_started();
	loop_run(R.lp);
	log_info("stopping");
	for (int i = 0; i < ROUTER_PEERS; i++)
		if (R.peers[i].in_use)
			peer_close(&R.peers[i].p);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct daemon_opts opts;
	char err[512];

	daemon_start("router", argc, argv, &cfg, &opts);
	R.cfg = &cfg;
	/* Signals are read from the loop's signalfd; set up before libnats starts its threads. */
	if ((R.lp = loop_new()) == NULL || loop_daemon_signals(R.lp) < 0)
		fatal("event loop: cannot set up");
	uwpx_uri_rules_from_config(&R.uri_rules, &cfg);
	if (store_open(&R.store, cfg.router.db_path, (size_t)cfg.router.map_size_mb, 0, err, sizeof err) < 0)
		fatal("registry: %s", err);
	R.store.max_tokens = (uint64_t)cfg.router.max_tokens_per_id;
	R.store.max_groups = (uint64_t)cfg.router.max_groups_per_id;
	R.store.max_members = (uint64_t)cfg.router.max_group_members;
	daemon_give_dir(&cfg, cfg.router.db_path);
	if (config_cluster(&cfg))
		run_cluster(&cfg);
	else
		run_sockets(&cfg);
	loop_free(R.lp);
	store_close(&R.store);
	held_free(&R.held);
	free(R.batch);
	free(R.fresh);
	free(R.fresh_platform);
	config_free(&cfg);
	return 0;
}
