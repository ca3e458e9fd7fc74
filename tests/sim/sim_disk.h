/*
 * sim_disk.h — one node's durable storage, in memory.
 *
 * Everything in a struct sim_disk survives a simulated crash; everything
 * else about a node (its struct raft, pending client work) does not.  The
 * node changes its disk only while handling a ready batch, one atomic unit
 * at a time (snapshot install; entries + hard state; each applied entry with
 * the KV map and the applied index, as one LMDB transaction would), so a
 * crash between two units loses exactly the units not yet written.
 *
 * The log holds entries snap.index + 1 .. snap.index + n_ents; the snapshot
 * (meta + a copy of the KV map at meta.index) covers everything before.
 * The disk implements struct raft_storage through sim_disk_storage, with
 * the struct sim_disk itself as the storage context.
 */
#ifndef SIM_DISK_H
#define SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "sim_kv.h"

struct sim_entry {
    raft_term term;
    raft_index index;
    uint8_t type;
    uint32_t len;
    uint8_t *data;  /* owned, len bytes (NULL when len is 0) */
    uint64_t hash;  /* sim_hash_bytes(data, len), mixed with the type */
};

struct sim_disk {
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    struct sim_kv snap_kv;         /* the map as of snap.index */
    struct sim_entry *ents;
    size_t n_ents;
    size_t cap_ents;
    struct sim_kv kv;              /* the state machine, as of applied */
    raft_index applied;
    raft_term applied_term;
};

enum sim_disk_err {
    SIM_DISK_OK = 0,
    SIM_DISK_NOMEM,
    SIM_DISK_BELOW_SNAPSHOT,  /* first entry at or below the snapshot */
    SIM_DISK_GAP,             /* first entry beyond last_index + 1 */
    SIM_DISK_NOT_CONSECUTIVE  /* indexes in the batch are not i, i+1, ... */
};

const char *sim_disk_strerror(enum sim_disk_err err);

/* Read-only storage callbacks for the core; ctx is a struct sim_disk *. */
extern const struct raft_storage sim_disk_storage;

/* An empty disk: no log, no snapshot, term 0. */
void sim_disk_init(struct sim_disk *d);

/* Release the entries; the disk is then empty again. */
void sim_disk_free(struct sim_disk *d);

raft_index sim_disk_first_index(const struct sim_disk *d);
raft_index sim_disk_last_index(const struct sim_disk *d);

/* The stored entry at index i, or NULL if i is outside the log.  Borrowed
 * until the next change to the disk. */
const struct sim_entry *sim_disk_entry(const struct sim_disk *d, raft_index i);

/* Term at i for snap.index <= i <= last_index; false outside that range. */
bool sim_disk_term(const struct sim_disk *d, raft_index i, raft_term *out);

/* Hash identifying an entry's content (type and data). */
uint64_t sim_entry_hash(uint8_t type, const uint8_t *data, uint32_t len);

/* Durably append n entries (copied), deleting every stored entry with an
 * index >= e[0].index first.  On error nothing changes. */
enum sim_disk_err sim_disk_append(struct sim_disk *d,
                                  const struct raft_entry *e, size_t n);

/* Install a snapshot received from a leader: the KV map becomes *kv at
 * meta->index, the whole log is dropped (the core resets its log to the
 * snapshot), applied becomes meta->index. */
void sim_disk_install(struct sim_disk *d,
                      const struct raft_snapshot_meta *meta,
                      const struct sim_kv *kv);

/* Take a local snapshot at the applied index and drop the entries it
 * covers.  Requires applied to be inside the log or equal to snap.index. */
void sim_disk_compact(struct sim_disk *d);

#endif /* SIM_DISK_H */
