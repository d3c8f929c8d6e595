/*
 * cluster_snap: snapshots of the replicated registry (see cluster_snap.h and docs/cluster.md,
 * "Compacting the registry stream"). A snapshot is every key and value of every database of the
 * router's LMDB environment, read in one read transaction (so it is the copy exactly as it stood
 * at the applied sequence S that the same transaction holds in meta), cut into chunks on
 * pp.snap.data and closed by a manifest on pp.snap.done (S, the snapshot's id, where its chunks
 * start, how many, their length and BLAKE2b-256). Only one router writes at a time: it first wins
 * a claim on pp.snap.claim (a publish that expects the subject's last sequence). The writer runs
 * in a thread of its own with its own read transaction, so the loop goes on serving meanwhile.
 * Trusts the streams it reads only as far as the manifest's length and hash vouch for a snapshot;
 * a record naming a database this router does not have fails the load. Holds the database table,
 * the writer thread and the newest snapshot sequence it knows.
 */
#include "cluster_snap.h"
#include "daemon.h"
#include "log.h"
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNAP_DBS 32
#define CHUNK_TARGET (256 * 1024) /* a chunk is cut once it would pass this */
#define CHUNK_CAP (900 * 1024)	  /* below the servers' default max_payload (1 MiB) */
#define CLAIM_STALE_S 600	  /* a claim older than this is a writer that died */
#define NS_PER_MS 1000000LL
#define SUBJ_DATA "pp.snap.data"
#define SUBJ_DONE "pp.snap.done"
#define SUBJ_CLAIM "pp.snap.claim"

struct manifest {
	uint64_t seq;	   /* the registry change the snapshot holds everything up to */
	uint64_t first;	   /* PP_REGSNAP sequence of its first chunk */
	uint64_t chunks, bytes;
	uint64_t msg_seq;  /* PP_REGSNAP sequence of the manifest itself */
	char id[33];	   /* 32 hex */
	char hash[65];	   /* BLAKE2b-256 of the chunks' bytes, hex */
};

static struct {
	char name[SNAP_DBS][64];
	MDB_dbi dbi[SNAP_DBS];
	int n;
	struct bus *b;
	struct store *s;
	pthread_t th;
	int running;		/* main thread only */
	int done;		/* set by the writer (atomic) */
	int ok;			/* the writer's outcome, read after done */
	uint64_t wseq;		/* the sequence it wrote */
	uint64_t known;		/* the newest snapshot's sequence this router knows of */
	uint64_t my_claim;	/* PP_REGSNAP sequence of this router's last winning claim */
	uint64_t every;		/* cluster.snapshot_changes, for the writer */
	uint64_t next_try_ms;
} SN;

static int is_none(natsStatus s, jsErrCode ec)
{
	return s == NATS_NOT_FOUND || ec == JSNoMessageFoundErr;
}

int snap_registry_state(struct bus *b, uint64_t *first, uint64_t *last, uint64_t *msgs)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	int ok = js_GetStreamInfo(&si, b->js, BUS_REGISTRY, NULL, &ec) == NATS_OK;

	if (ok) {
		*first = si->State.FirstSeq;
		*last = si->State.LastSeq;
		*msgs = si->State.Msgs;
	}
	jsStreamInfo_Destroy(si);
	return ok ? 0 : -1;
}

int snap_needed(struct bus *b, uint64_t applied)
{
	uint64_t first, last, msgs;

	if (snap_registry_state(b, &first, &last, &msgs) < 0)
		return -1;
	if (last <= applied)
		return 0;
	return msgs == 0 || first > applied + 1;
}

/* The newest manifest: 1, 0 when there is none, -1 when the stream did not answer. */
static int manifest_newest(struct bus *b, struct manifest *mf)
{
	natsMsg *m = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetLastMsg(&m, b->js, SNAP_STREAM, SUBJ_DONE, NULL, &ec);
	char text[512];
	int len, rc = -1;
	unsigned long long seq, first, chunks, bytes;

	memset(mf, 0, sizeof *mf);
	if (s != NATS_OK)
		return is_none(s, ec) ? 0 : -1;
	len = natsMsg_GetDataLength(m);
	if (len > 0 && len < (int)sizeof text) {
		memcpy(text, natsMsg_GetData(m), (size_t)len);
		text[len] = 0;
		if (sscanf(text, "pushpipe-snapshot 1 seq=%llu id=%32[0-9a-f] first=%llu chunks=%llu bytes=%llu hash=%64[0-9a-f]",
			   &seq, mf->id, &first, &chunks, &bytes, mf->hash) == 6 &&
		    strlen(mf->id) == 32 && strlen(mf->hash) == 64 && chunks > 0) {
			mf->seq = seq;
			mf->first = first;
			mf->chunks = chunks;
			mf->bytes = bytes;
			mf->msg_seq = natsMsg_GetSequence(m);
			rc = 1;
		}
	}
	if (rc < 0)
		log_error("cluster: the newest manifest on %s.%s is not one; ignored", SNAP_STREAM, SUBJ_DONE);
	natsMsg_Destroy(m);
	return rc < 0 ? 0 : rc;
}

int snap_setup(struct bus *b, struct store *s)
{
	const char *subjects[1] = {"pp.snap.>"};
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus st;
	struct manifest mf;
	MDB_txn *txn;
	MDB_dbi main;
	MDB_cursor *c;
	MDB_val k, v;

	SN.b = b;
	SN.s = s;
	if (SN.n == 0 && mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
		/* The main database's keys are the names of the others. */
		if (mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_cursor_open(txn, main, &c) == 0) {
			while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0 && SN.n < SNAP_DBS) {
				if (k.mv_size == 0 || k.mv_size >= sizeof SN.name[0])
					continue;
				memcpy(SN.name[SN.n], k.mv_data, k.mv_size);
				SN.name[SN.n][k.mv_size] = 0;
				if (mdb_dbi_open(txn, SN.name[SN.n], 0, &SN.dbi[SN.n]) == 0)
					SN.n++;
			}
			mdb_cursor_close(c);
		}
		mdb_txn_commit(txn);
	}
	if (SN.n == 0) {
		log_error("cluster: the registry's databases cannot be listed");
		return -1;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = SNAP_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_LimitsPolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = b->cfg->cluster.replicas;
	sc.Duplicates = 120000 * NS_PER_MS;
	st = js_AddStream(&si, b->js, &sc, NULL, &ec);
	if (st != NATS_OK) {
		jsStreamInfo_Destroy(si);
		si = NULL;
		st = js_UpdateStream(&si, b->js, &sc, NULL, &ec);
	}
	jsStreamInfo_Destroy(si);
	if (st != NATS_OK) {
		log_error("cluster: stream %s: %s (error %d)", SNAP_STREAM, natsStatus_GetText(st), (int)ec);
		return -1;
	}
	if (manifest_newest(b, &mf) < 0)
		return -1;
	SN.known = mf.seq;
	return 0;
}

/* Publishes m and waits for its PubAck, again and again with the same Nats-Msg-Id while the
 * servers do not answer (a leader election). The stream sequence, or 0 when it gave up. */
static uint64_t publish_sync(struct bus *b, natsMsg *m, jsPubOptions *po)
{
	for (int tries = 0; tries < 40 && !daemon_stop; tries++) {
		jsPubAck *pa = NULL;
		jsErrCode ec = 0;
		natsStatus s = js_PublishMsg(&pa, b->js, m, po, &ec);
		if (s == NATS_OK) {
			uint64_t seq = pa->Sequence;
			jsPubAck_Destroy(pa);
			if (seq > 0)
				return seq;
			usleep(250 * 1000); /* "duplicate" of an uncommitted proposal: not stored (bus_stored) */
			continue;
		}
		if (ec == JSStreamWrongLastSequenceErr)
			return 0; /* an expectation failed: no retry can change that */
		usleep(250 * 1000);
	}
	return 0;
}

static int purge(struct bus *b, const char *stream, const char *subject, uint64_t below, uint64_t keep)
{
	jsOptions o;
	jsErrCode ec = 0;
	natsStatus s;

	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	o.Stream.Purge.Sequence = below;
	o.Stream.Purge.Keep = keep;
	s = js_PurgeStream(b->js, stream, &o, &ec);
	if (s != NATS_OK)
		log_warn("cluster: purging %s%s%s: %s (error %d)", stream, subject ? " " : "", subject ? subject : "",
			 natsStatus_GetText(s), (int)ec);
	return s == NATS_OK ? 0 : -1;
}

struct chunker {
	uint8_t *buf;
	size_t len;
	uint64_t n, bytes, first;
	char id[33];
	crypto_generichash_state h;
};

static int chunk_flush(struct chunker *ck)
{
	char msgid[64], ix[24];
	natsMsg *m;
	jsPubOptions po;
	uint64_t seq = 0;

	snprintf(msgid, sizeof msgid, "c%s.%" PRIu64, ck->id, ck->n);
	snprintf(ix, sizeof ix, "%" PRIu64, ck->n);
	if ((m = bus_msg(SUBJ_DATA, ck->buf, ck->len, msgid)) == NULL)
		return -1;
	jsPubOptions_Init(&po);
	po.MaxWait = SN.b->wait_ms;
	if (natsMsgHeader_Set(m, "Pp-Snap", ck->id) == NATS_OK && natsMsgHeader_Set(m, "Pp-Chunk", ix) == NATS_OK)
		seq = publish_sync(SN.b, m, &po);
	natsMsg_Destroy(m);
	if (seq == 0)
		return -1;
	if (ck->n == 0)
		ck->first = seq;
	crypto_generichash_update(&ck->h, ck->buf, ck->len);
	ck->bytes += ck->len;
	ck->n++;
	ck->len = 0;
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every record of database i: name length (1 byte), name, key length, key, value length,
 * value (lengths 4 bytes, little-endian). */
static int dump_db(MDB_txn *txn, int i, struct chunker *ck)
{
	size_t nl = strlen(SN.name[i]);
	MDB_cursor *c;
	MDB_val k, v;
	int rc = 0;

	if (mdb_cursor_open(txn, SN.dbi[i], &c) != 0)
		return -1;
	while (rc == 0 && !daemon_stop && mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
		size_t need = 1 + nl + 4 + k.mv_size + 4 + v.mv_size;
		uint8_t *p;
		if (need > CHUNK_CAP) {
			log_error("cluster: a record of %s is too large for a snapshot chunk (%zu bytes)", SN.name[i], need);
			rc = -1;
			break;
		}
		if (ck->len > 0 && ck->len + need > CHUNK_TARGET && chunk_flush(ck) < 0) {
			rc = -1;
			break;
		}
		p = ck->buf + ck->len;
		*p++ = (uint8_t)nl;
		memcpy(p, SN.name[i], nl);
		p += nl;
		put32(p, (uint32_t)k.mv_size);
		memcpy(p + 4, k.mv_data, k.mv_size);
		p += 4 + k.mv_size;
		put32(p, (uint32_t)v.mv_size);
		memcpy(p + 4, v.mv_data, v.mv_size);
		ck->len += need;
	}
	mdb_cursor_close(c);
	return daemon_stop ? -1 : rc;
}

/* After a new snapshot at seq: PP_REGISTRY keeps the changes after the snapshot before it (prev)
 * or after seq - every, whichever is later (a router at least that far along replays; one further
 * behind loads the new snapshot, which holds everything up to seq); PP_REGSNAP keeps the chunks
 * from prev's on and the two newest manifests. */
static void compact(const struct manifest *prev, uint64_t seq, uint64_t every)
{
	uint64_t keep_after = prev->seq;

	if (every > 0 && seq > every && seq - every > keep_after)
		keep_after = seq - every;
	if (keep_after > 0)
		purge(SN.b, BUS_REGISTRY, NULL, keep_after + 1, 0);
	if (prev->seq > 0)
		purge(SN.b, SNAP_STREAM, SUBJ_DATA, prev->first, 0);
	purge(SN.b, SNAP_STREAM, SUBJ_DONE, 0, 2);
	purge(SN.b, SNAP_STREAM, SUBJ_CLAIM, 0, 1);
}

static void *writer_main(void *arg)
{
	struct chunker ck;
	struct manifest prev;
	unsigned char rnd[16], hash[32];
	char hx[65], text[512];
	MDB_txn *txn = NULL;
	uint64_t seq = 0;
	int ok = 0;

	(void)arg;
	memset(&ck, 0, sizeof ck);
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(ck.id, sizeof ck.id, rnd, sizeof rnd);
	crypto_generichash_init(&ck.h, NULL, 0, sizeof hash);
	if ((ck.buf = malloc(CHUNK_CAP)) == NULL || mdb_txn_begin(SN.s->env, NULL, MDB_RDONLY, &txn) != 0)
		goto out;
	seq = store_meta_get(txn, SN.s, SNAP_META_SEQ);
	for (int i = 0; i < SN.n; i++)
		if (dump_db(txn, i, &ck) < 0)
			goto out;
	if (chunk_flush(&ck) < 0)
		goto out;
	mdb_txn_abort(txn);
	txn = NULL;
	/* A newer snapshot came meanwhile (a claim that went stale): this one is not needed. */
	if (manifest_newest(SN.b, &prev) < 0 || prev.seq >= seq)
		goto out;
	crypto_generichash_final(&ck.h, hash, sizeof hash);
	sodium_bin2hex(hx, sizeof hx, hash, sizeof hash);
	snprintf(text, sizeof text, "pushpipe-snapshot 1 seq=%" PRIu64 " id=%s first=%" PRIu64 " chunks=%" PRIu64
		 " bytes=%" PRIu64 " hash=%s",
		 seq, ck.id, ck.first, ck.n, ck.bytes, hx);
	{
		char msgid[48];
		natsMsg *m;
		jsPubOptions po;
		snprintf(msgid, sizeof msgid, "d%s", ck.id);
		jsPubOptions_Init(&po);
		po.MaxWait = SN.b->wait_ms;
		if ((m = bus_msg(SUBJ_DONE, text, strlen(text), msgid)) == NULL)
			goto out;
		ok = publish_sync(SN.b, m, &po) != 0;
		natsMsg_Destroy(m);
	}
	if (ok) {
		log_info("cluster: registry snapshot at change %" PRIu64 " written (%" PRIu64 " chunks, %" PRIu64 " bytes)",
			 seq, ck.n, ck.bytes);
		compact(&prev, seq, SN.every);
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	free(ck.buf);
	if (!ok && !daemon_stop)
		log_warn("cluster: the registry snapshot at change %" PRIu64 " was not written", seq);
	SN.ok = ok;
	SN.wseq = seq;
	__atomic_store_n(&SN.done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One writer in the cluster: a claim published only if the claim subject is as this router last
 * saw it. 1 when this router won, 0 when another writes (or the servers did not answer). */
static int claim(uint64_t applied, const struct manifest *newest)
{
	natsMsg *m = NULL, *c;
	jsErrCode ec = 0;
	jsPubOptions po;
	natsStatus s = js_GetLastMsg(&m, SN.b->js, SNAP_STREAM, SUBJ_CLAIM, NULL, &ec);
	uint64_t last = 0, cseq;
	char text[64];
	int won;

	if (s != NATS_OK && !is_none(s, ec))
		return 0;
	if (s == NATS_OK) {
		int64_t age_s = (int64_t)time(NULL) - natsMsg_GetTime(m) / 1000000000LL;
		last = natsMsg_GetSequence(m);
		natsMsg_Destroy(m);
		if (last > newest->msg_seq && age_s < CLAIM_STALE_S && last != SN.my_claim)
			return 0; /* claimed after the newest snapshot: its writer is at work */
	}
	jsPubOptions_Init(&po);
	po.MaxWait = SN.b->wait_ms;
	if (last)
		po.ExpectLastSubjectSeq = last;
	else
		po.ExpectNoMessage = true;
	snprintf(text, sizeof text, "seq=%" PRIu64, applied);
	if ((c = bus_msg(SUBJ_CLAIM, text, strlen(text), NULL)) == NULL)
		return 0;
	cseq = publish_sync(SN.b, c, &po);
	if ((won = cseq != 0))
		SN.my_claim = cseq; /* should this writer fail, this router may claim again at once */
	natsMsg_Destroy(c);
	return won;
}

void snap_tick(struct bus *b, struct store *s, uint64_t applied, int caught_up, long every)
{
	struct manifest mf;
	uint64_t now = mono_ms();

	(void)b;
	(void)s;
	if (SN.running) {
		if (!__atomic_load_n(&SN.done, __ATOMIC_ACQUIRE))
			return;
		pthread_join(SN.th, NULL);
		SN.running = 0;
		if (SN.ok && SN.wseq > SN.known)
			SN.known = SN.wseq;
		SN.next_try_ms = now + 1000;
		return;
	}
	if (every <= 0 || !caught_up || daemon_stop || SN.b == NULL || applied < SN.known + (uint64_t)every ||
	    now < SN.next_try_ms)
		return;
	SN.next_try_ms = now + 2000;
	if (manifest_newest(SN.b, &mf) < 0)
		return;
	if (mf.seq > SN.known)
		SN.known = mf.seq;
	if (applied < SN.known + (uint64_t)every || !claim(applied, &mf))
		return;
	__atomic_store_n(&SN.done, 0, __ATOMIC_RELEASE);
	SN.every = (uint64_t)every;
	if (pthread_create(&SN.th, NULL, writer_main, NULL) != 0) {
		log_warn("cluster: cannot start the registry snapshot writer");
		return;
	}
	SN.running = 1;
}

void snap_stop(void)
{
	if (SN.running) {
		pthread_join(SN.th, NULL);
		SN.running = 0;
	}
}

static int db_index(const uint8_t *name, size_t len)
{
	for (int i = 0; i < SN.n; i++)
		if (strlen(SN.name[i]) == len && memcmp(SN.name[i], name, len) == 0)
			return i;
	return -1;
}

/* One chunk's records into txn. 0, or -1 (a damaged chunk or a store error). */
static int load_chunk(MDB_txn *txn, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t nl = p[off], kl, vl;
		int i;
		MDB_val k, v;
		if (off + 1 + nl + 4 > len || (i = db_index(p + off + 1, nl)) < 0)
			return -1;
		off += 1 + nl;
		kl = get32(p + off);
		if (kl > len - off - 4 || len - off - 4 - kl < 4)
			return -1;
		k.mv_size = kl;
		k.mv_data = (void *)(p + off + 4);
		off += 4 + kl;
		vl = get32(p + off);
		if (vl > len - off - 4)
			return -1;
		v.mv_size = vl;
		v.mv_data = (void *)(p + off + 4);
		off += 4 + vl;
		if (mdb_put(txn, SN.dbi[i], &k, &v, 0) != 0)
			return -1;
	}
	return 0;
}

/* Reads the manifest's chunks, in order, into txn, checking their length and hash. */
static int load_chunks(const struct manifest *mf, MDB_txn *txn)
{
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode ec = 0;
	crypto_generichash_state h;
	unsigned char hash[32];
	char hx[65];
	uint64_t n = 0, bytes = 0;
	int rc = -1;

	jsSubOptions_Init(&so);
	so.Stream = SNAP_STREAM;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = mf->first;
	if (js_SubscribeSync(&sub, SN.b->js, SUBJ_DATA, NULL, &so, &ec) != NATS_OK) {
		log_error("cluster: cannot read %s (error %d)", SNAP_STREAM, (int)ec);
		return -1;
	}
	crypto_generichash_init(&h, NULL, 0, sizeof hash);
	while (n < mf->chunks && !daemon_stop) {
		natsMsg *m = NULL;
		const char *id = NULL, *ix = NULL;
		uint64_t seq = 0;
		int bad = 0;

		if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK) {
			log_error("cluster: snapshot chunk %" PRIu64 " of %" PRIu64 " did not come (may this router's "
				  "NATS user publish to $JS.FC.%s.>? see docs/cluster.md, Credentials)",
				  n, mf->chunks, SNAP_STREAM);
			break;
		}
		if (bus_msg_meta(m, &seq, NULL, NULL) < 0 || (n == 0 && seq != mf->first)) {
			bad = 1; /* its first chunk is gone: a newer snapshot replaced it */
		} else if (natsMsgHeader_Get(m, "Pp-Snap", &id) == NATS_OK && strcmp(id, mf->id) == 0 &&
			   natsMsgHeader_Get(m, "Pp-Chunk", &ix) == NATS_OK && strtoull(ix, NULL, 10) == n) {
			const uint8_t *d = (const uint8_t *)natsMsg_GetData(m);
			size_t len = (size_t)natsMsg_GetDataLength(m);
			crypto_generichash_update(&h, d, len);
			bytes += len;
			bad = load_chunk(txn, d, len) < 0;
			n++;
		} /* else another snapshot's chunk, or a chunk stored twice: skipped */
		natsMsg_Destroy(m);
		if (bad) {
			log_error("cluster: snapshot %s is damaged or gone (chunk %" PRIu64 ")", mf->id, n);
			break;
		}
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	if (n == mf->chunks) {
		crypto_generichash_final(&h, hash, sizeof hash);
		sodium_bin2hex(hx, sizeof hx, hash, sizeof hash);
		if (bytes == mf->bytes && strcmp(hx, mf->hash) == 0)
			rc = 0;
		else
			log_error("cluster: snapshot %s does not match its manifest (length or hash)", mf->id);
	}
	return rc;
}

int snap_load(struct bus *b, struct store *s, uint64_t *seq)
{
	struct manifest mf;
	MDB_txn *txn;
	MDB_val k = {8, "hash_key"}, v;
	uint64_t first, last, msgs, got;
	int rc;

	(void)b;
	if (manifest_newest(SN.b, &mf) <= 0) {
		log_error("cluster: registry changes are gone from %s and no snapshot holds them", BUS_REGISTRY);
		return -1;
	}
	if (snap_registry_state(SN.b, &first, &last, &msgs) < 0)
		return -1;
	if (msgs > 0 && mf.seq + 1 < first) {
		log_error("cluster: the newest snapshot (change %" PRIu64 ") is older than %s's first change %" PRIu64,
			  mf.seq, BUS_REGISTRY, first);
		return -1;
	}
	log_info("cluster: loading the registry snapshot at change %" PRIu64 " (%" PRIu64 " chunks, %" PRIu64 " bytes)",
		 mf.seq, mf.chunks, mf.bytes);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		log_error("registry: cannot begin a write transaction: %s", mdb_strerror(rc));
		return -1;
	}
	for (int i = 0; i < SN.n; i++)
		if ((rc = mdb_drop(txn, SN.dbi[i], 0)) != 0) {
			log_error("registry: emptying %s: %s", SN.name[i], mdb_strerror(rc));
			mdb_txn_abort(txn);
			return -1;
		}
	if (load_chunks(&mf, txn) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if ((got = store_meta_get(txn, s, SNAP_META_SEQ)) != mf.seq) {
		log_error("cluster: snapshot %s holds change %" PRIu64 ", its manifest says %" PRIu64, mf.id, got, mf.seq);
		mdb_txn_abort(txn);
		return -1;
	}
	/* The token index is keyed with the writer's hash key, which came with meta. */
	if (mdb_get(txn, s->meta, &k, &v) != 0 || v.mv_size != sizeof s->hash_key) {
		log_error("cluster: snapshot %s has no hash key", mf.id);
		mdb_txn_abort(txn);
		return -1;
	}
	memcpy(s->hash_key, v.mv_data, sizeof s->hash_key);
	if ((rc = mdb_txn_commit(txn)) != 0) {
		log_error("registry: the commit of the snapshot failed: %s", mdb_strerror(rc));
		/* the copy is as it was, and so must its key be */
		if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
			if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == sizeof s->hash_key)
				memcpy(s->hash_key, v.mv_data, sizeof s->hash_key);
			mdb_txn_abort(txn);
		}
		return -1;
	}
	if (mf.seq > SN.known)
		SN.known = mf.seq;
	*seq = mf.seq;
	log_info("cluster: registry copy loaded from the snapshot at change %" PRIu64, mf.seq);
	return 0;
}
