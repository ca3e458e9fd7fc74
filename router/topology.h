/*
 * topology.h — the cluster topology: servers, shards, replicas, Raft timing.
 *
 * The topology file (config/topology.json, format in config/README.md) is
 * the single source of truth for where every replica lives.  This module
 * parses and validates it; route.h maps keys to shards with the result.
 * It has no nginx, libevent or Raft-core dependency so that the agent, the
 * nginx module, the tools and the tests all read the file the same way.
 *
 * Input is untrusted: every field is checked and any violation is reported
 * as one message that starts with the JSON path of the offending value, e.g.
 * "shards[1].replicas[2].raft_port: must be 1..65535".
 *
 * Ownership: a loaded struct agenda_topology owns everything it points to.
 * All pointers handed out by this module and by route.h (shards, replicas,
 * servers, strings) are borrowed from it and stay valid until
 * agenda_topology_free().  A loaded topology is never modified, so it may be
 * read from several threads at once.
 */
#ifndef AGENDA_TOPOLOGY_H
#define AGENDA_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

/* Limits.  Strings are stored in fixed arrays of LEN_MAX + 1 bytes. */
#define AGENDA_TOPO_MAX_REPLICAS 7   /* equals RAFT_MAX_NODES in raft.h */
#define AGENDA_TOPO_MAX_SHARDS 256
#define AGENDA_TOPO_MAX_SERVERS 256
#define AGENDA_TOPO_NAME_LEN_MAX 63  /* server, shard, replica, cluster */
#define AGENDA_TOPO_HOST_LEN_MAX 253 /* a DNS name or an IP literal */
#define AGENDA_TOPO_KEY_LEN_MAX 255  /* a range bound */
#define AGENDA_TOPO_PATH_LEN_MAX 1023 /* data_dir */
#define AGENDA_TOPO_FILE_MAX (1024 * 1024) /* bytes read by _load() */

/* The only format version this code understands. */
#define AGENDA_TOPO_VERSION 1

enum agenda_shard_kind {
    AGENDA_SHARD_EVENTS = 1, /* calendars, split by owner-name ranges */
    AGENDA_SHARD_GROUPS,     /* every group; exactly one such shard */
    AGENDA_SHARD_USERS       /* every user; exactly one such shard */
};

struct agenda_server {
    char name[AGENDA_TOPO_NAME_LEN_MAX + 1];
    char host[AGENDA_TOPO_HOST_LEN_MAX + 1];
};

struct agenda_replica {
    uint32_t id;            /* Raft id, 1..AGENDA_TOPO_MAX_REPLICAS */
    char name[AGENDA_TOPO_NAME_LEN_MAX + 1];
    const struct agenda_server *server;  /* where it runs */
    const char *host;       /* == server->host */
    uint16_t http_port;     /* internal HTTP API */
    uint16_t raft_port;     /* Raft peer traffic */
};

/*
 * A shard is one Raft group.  For events shards the range is the half-open
 * interval [range_from, range_to) of case-folded owner names, compared
 * bytewise; an empty range_to means "no upper bound".  Other kinds cover
 * the whole key space (both bounds empty).
 */
struct agenda_shard {
    char name[AGENDA_TOPO_NAME_LEN_MAX + 1];
    enum agenda_shard_kind kind;
    char range_from[AGENDA_TOPO_KEY_LEN_MAX + 1];
    char range_to[AGENDA_TOPO_KEY_LEN_MAX + 1];
    size_t n_replicas;                 /* 1..AGENDA_TOPO_MAX_REPLICAS */
    struct agenda_replica replicas[AGENDA_TOPO_MAX_REPLICAS]; /* file order */
    size_t index;                      /* position in topology->shards */
};

/* Raft timing and storage sizing shared by every replica. */
struct agenda_raft_timing {
    uint32_t tick_ms;            /* length of one logical tick */
    uint32_t election_ticks;     /* base election timeout, in ticks */
    uint32_t heartbeat_ticks;    /* leader heartbeat interval, in ticks */
    uint64_t snapshot_threshold; /* applied entries between snapshots */
    uint32_t map_size_mb;        /* LMDB map size per replica */
};

struct agenda_topology {
    uint32_t version;                 /* AGENDA_TOPO_VERSION */
    char cluster[AGENDA_TOPO_NAME_LEN_MAX + 1]; /* "" if not given */
    struct agenda_raft_timing raft;
    char data_dir[AGENDA_TOPO_PATH_LEN_MAX + 1]; /* relative to the cwd */
    /* "internal_tls": {"dir": ...}: every internal link (agent <-> agent,
     * edge -> agent) is mutually authenticated TLS with the certificates
     * of that directory (raft_agent/tls.h); "" when links are plain. */
    char internal_tls_dir[AGENDA_TOPO_PATH_LEN_MAX + 1];
    size_t n_servers;
    struct agenda_server *servers;    /* file order */
    size_t n_shards;
    struct agenda_shard *shards;      /* file order */
    size_t n_events;                  /* >= 1 */
    const struct agenda_shard **events; /* events shards by range, ascending */
};

/*
 * Parses and validates a topology from len bytes of JSON (need not be
 * NUL-terminated).  On success returns 0 and stores a new topology in *out,
 * which the caller releases with agenda_topology_free().  On failure returns
 * -1, leaves *out NULL and, when err is not NULL and errlen > 0, writes a
 * NUL-terminated message (truncated to errlen) that starts with the JSON
 * path of the first problem found; allocation failure is reported as
 * "out of memory".
 */
int agenda_topology_parse(const char *json, size_t len,
                          struct agenda_topology **out,
                          char *err, size_t errlen);

/*
 * Reads the file at path (at most AGENDA_TOPO_FILE_MAX bytes) and parses it
 * as agenda_topology_parse() does.  I/O errors are reported as
 * "<path>: <strerror>"; validation errors are prefixed with "<path>: ".
 */
int agenda_topology_load(const char *path, struct agenda_topology **out,
                         char *err, size_t errlen);

/* Releases a topology and everything it owns.  NULL is accepted. */
void agenda_topology_free(struct agenda_topology *topo);

/*
 * Returns the shard called name (exact, case-sensitive match), or NULL if
 * there is none or an argument is NULL.  The result is borrowed from topo.
 */
const struct agenda_shard *agenda_topology_shard(
    const struct agenda_topology *topo, const char *name);

/*
 * Returns the replica of shard with Raft id id, or NULL if there is none or
 * shard is NULL.  The result is borrowed from the shard's topology.
 */
const struct agenda_replica *agenda_topology_replica(
    const struct agenda_shard *shard, uint32_t id);

/*
 * Returns the kind's name as written in the file ("events", "groups",
 * "users"), or "unknown".  The string is static.
 */
const char *agenda_shard_kind_name(enum agenda_shard_kind kind);

#endif /* AGENDA_TOPOLOGY_H */
