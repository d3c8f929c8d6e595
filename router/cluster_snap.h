/*
 * cluster_snap: snapshots of the replicated registry in cluster mode (docs/cluster.md,
 * "Compacting the registry stream"). A router that has applied snapshot_changes changes past the
 * newest snapshot writes its LMDB copy, as it stood at one applied sequence S, to the stream
 * PP_REGSNAP, then drops from PP_REGISTRY the changes up to the snapshot before it, or up to
 * S - snapshot_changes if that is later. A router whose next change is no longer in PP_REGISTRY loads the newest snapshot
 * (in one LMDB transaction, which also stores S) and replays the changes after S.
 */
#ifndef CLUSTER_SNAP_H
#define CLUSTER_SNAP_H
#include "bus.h"
#include "store.h"
#include <stdint.h>

#define SNAP_STREAM "PP_REGSNAP"
#define SNAP_META_SEQ "cluster_reg_seq" /* the last applied registry change, in meta */

/* Creates or updates PP_REGSNAP and learns the names of the LMDB databases (main thread, once,
 * after the store is open). 0, or -1. */
int snap_setup(struct bus *b, struct store *s);
/* The registry stream's first and last sequences and its message count. 0, or -1. */
int snap_registry_state(struct bus *b, uint64_t *first, uint64_t *last, uint64_t *msgs);
/* 1 when the changes after applied are no longer all in PP_REGISTRY (a snapshot must be loaded),
 * 0 when they are, -1 when the stream did not answer. */
int snap_needed(struct bus *b, uint64_t applied);
/* Replaces the copy with the newest snapshot, in one transaction that also stores its sequence
 * (returned in *seq). 0, or -1 (the copy is unchanged). */
int snap_load(struct bus *b, struct store *s, uint64_t *seq);
/* Called about once a second from the loop with the copy's applied sequence and whether it has
 * caught up with the stream: starts writing a snapshot when one is due and this router won the
 * claim for it, and reaps a finished writer. every: cluster.snapshot_changes (0 = never). */
void snap_tick(struct bus *b, struct store *s, uint64_t applied, int caught_up, long every);
/* Waits for a writer still running (it stops early once daemon_stop is set). */
void snap_stop(void);
#endif
