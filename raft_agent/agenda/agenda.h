/*
 * agenda.h — what every command and query handler of the agenda state
 * machine shares: the databases, the context of one operation, the op
 * tables, and the helpers that build answers.
 *
 * One operation arrives as JSON (see API.md):
 *
 *   {"op": "event.create",
 *    "actor": {"user": "alice", "role": "user", "calendar_role": "none"},
 *    "args": {...}}
 *
 * Commands (mutations) run inside the apply transaction on every replica:
 * deterministic, no clock (c->now_ms is the leader's stamp), no randomness
 * (ids are minted by the leader into args before proposing).  Queries run
 * in a read-only transaction on one replica.  The dispatcher (agenda_sm.c)
 * decodes the operation, checks that it belongs to this shard's kind, finds
 * the handler in the op tables and, for commands, appends the audit record
 * in the same transaction.
 *
 * Handler contract: return 0 once the answer is in c->res (success or a
 * client error made with agenda_fail()); return an LMDB error code
 * (MDB_MAP_FULL, ENOMEM, MDB_CORRUPTED, ...) only when the transaction must
 * be abandoned — for a command that aborts and retries the whole batch (a
 * full map, a corrupt record on this replica's disk).  EINVAL means a
 * handler bug (e.g. a bad argument to agenda_feed_append): the dispatcher
 * turns it into a 500 answer and rolls the command back, since retrying
 * could never succeed and would stall the shard.
 *
 * A command that fails with a client error must change nothing (its audit
 * record aside): validate everything before the first write.
 */
#ifndef AGENDA_AGENDA_H
#define AGENDA_AGENDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "model.h"
#include "sm.h"

/* ---- databases ------------------------------------------------------------ */

/*
 * Keys are byte strings; parts are joined with a 0 byte (names and ids never
 * contain one) and instants are 8 bytes big-endian of (ms + 2^63), so that
 * LMDB's byte order is time order (agenda_key_time()).
 */
struct agenda_db {
    MDB_dbi users;          /* username -> user JSON */
    MDB_dbi groups;         /* group id -> group JSON */
    MDB_dbi group_members;  /* username 0 group id -> role name */
    MDB_dbi events;         /* calendar 0 event id -> event JSON */
    MDB_dbi ev_by_cal;      /* calendar 0 start 0 event id -> "" */
    MDB_dbi ev_by_part;     /* user 0 start 0 calendar 0 event id -> "" */
    MDB_dbi cal_meta;       /* calendar -> {"max_duration": ms} */
    MDB_dbi feed;           /* seq (8B BE) -> change JSON */
    MDB_dbi feed_by_target; /* target 0 seq (8B BE) -> "" */
    MDB_dbi audit;          /* seq (8B BE) -> audit record JSON */
    MDB_dbi meta;           /* "feed_seq", "feed_floor", "audit_head" */
};

/* Open or create every database in txn (start, and after a snapshot). */
int agenda_db_open(struct agenda_db *db, MDB_txn *txn);

/* Append the 8-byte big-endian order-preserving encoding of ms. */
void agenda_key_time(uint8_t out[8], int64_t ms);
int64_t agenda_key_time_decode(const uint8_t in[8]);
void agenda_key_u64(uint8_t out[8], uint64_t v);
uint64_t agenda_key_u64_decode(const uint8_t in[8]);

/* A key under construction (parts joined by 0 bytes).  Overflow (beyond
 * AGENDA_KEY_MAX, well under LMDB's 511-byte limit) sets `bad`. */
#define AGENDA_KEY_MAX 400
struct agenda_key {
    uint8_t b[AGENDA_KEY_MAX];
    size_t len;
    bool bad;
};
void agenda_key_reset(struct agenda_key *k);
void agenda_key_str(struct agenda_key *k, const char *s); /* adds a 0 after */
void agenda_key_raw(struct agenda_key *k, const void *p, size_t n);
MDB_val agenda_key_val(const struct agenda_key *k);

/* ---- one operation ------------------------------------------------------------ */

struct agenda_actor {
    char user[AGENDA_USERNAME_MAX + 1]; /* "" only for anonymous register */
    enum agenda_role role;
    enum agenda_cal_role cal_role;      /* on the calendar named in args */
};

/* This replica's shard: which operations it serves and which calendars. */
struct agenda_shard_info {
    int kind;                 /* enum agenda_shard_kind of router/topology.h */
    const char *range_from;   /* events shards: calendars in [from, to) */
    const char *range_to;     /* "" = unbounded */
    uint64_t feed_keep;       /* changes kept; 0 = AGENDA_FEED_KEEP (tests
                               * lower it; equal on every replica) */
};

struct agenda_ctx {
    const struct agenda_db *db;
    const struct agenda_shard_info *shard;
    MDB_txn *txn;
    bool is_command;          /* apply (write txn) vs query (read txn) */
    uint64_t index;           /* commands: the log index */
    int64_t now_ms;           /* commands: the leader's time stamp */
    const char *request_id;   /* commands: the exactly-once id */
    const char *op;
    struct agenda_actor actor;
    json_t *args;             /* borrowed, an object */
    struct sm_result *res;    /* the answer */
    /* set by command handlers for the audit record, e.g. "event:alice/<id>" */
    char audit_object[200];
};

typedef int (*agenda_handler)(struct agenda_ctx *c);

/* Which shard kinds serve an op (bit per enum agenda_shard_kind). */
#define AGENDA_ON_EVENTS (1u << 1)
#define AGENDA_ON_GROUPS (1u << 2)
#define AGENDA_ON_USERS (1u << 3)
#define AGENDA_ON_ALL (AGENDA_ON_EVENTS | AGENDA_ON_GROUPS | AGENDA_ON_USERS)

struct agenda_op {
    const char *name;         /* "event.create"; NULL ends a table */
    bool is_command;
    unsigned shards;          /* AGENDA_ON_* */
    agenda_handler handler;
};

/* The op tables, one per module, each ended by an entry with name NULL. */
extern const struct agenda_op agenda_user_ops[];
extern const struct agenda_op agenda_group_ops[];
extern const struct agenda_op agenda_event_ops[];
extern const struct agenda_op agenda_feed_ops[];
extern const struct agenda_op agenda_audit_ops[];

/* ---- answers --------------------------------------------------------------------- */

/* Set the answer to status and body (stolen; NULL means {}), serialised
 * as canonical JSON.  Returns 0, or ENOMEM. */
int agenda_reply(struct agenda_ctx *c, int status, json_t *body);
/* Set an error answer {"error":{"code","message"}} and return 0.  The
 * message says what was wrong and what to do. */
int agenda_fail(struct agenda_ctx *c, int status, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- arguments ----------------------------------------------------------------- */

/*
 * Check c->args against the allowed keys (NULL-terminated): an unknown key
 * is a 400 "unknown_field" naming it.  Returns true when the args are
 * acceptable; on false the answer is already set.
 */
bool agenda_args_only(struct agenda_ctx *c, const char *const *allowed);

/* Fetch a string argument.  required: absent is 400 "missing_field".
 * Wrong type is 400 "invalid_field".  Returns true when present and a
 * string (*out borrowed from args), false when absent (and not required)
 * or on error — tell them apart with c->res->status (0 = no error yet). */
bool agenda_arg_str(struct agenda_ctx *c, const char *key, bool required,
                    const char **out);
/* Same for integers and booleans. */
bool agenda_arg_int(struct agenda_ctx *c, const char *key, bool required,
                    int64_t *out);
bool agenda_arg_bool(struct agenda_ctx *c, const char *key, bool required,
                     bool *out);
/* Any argument as it is (borrowed), or NULL when absent or null. */
json_t *agenda_arg_json(struct agenda_ctx *c, const char *key);
/* True when an error answer is already set. */
bool agenda_failed(const struct agenda_ctx *c);

/* ---- records ----------------------------------------------------------------------- */

/* Read and parse the JSON record at key.  Returns 0 (*out new reference),
 * MDB_NOTFOUND, MDB_CORRUPTED (unparsable record: never trust the disk)
 * or another LMDB error. */
int agenda_get_json(struct agenda_ctx *c, MDB_dbi dbi, MDB_val key,
                    json_t **out);
/* Store v (borrowed) as canonical JSON at key.  Returns 0 or an LMDB
 * error (ENOMEM when it cannot be serialised). */
int agenda_put_json(struct agenda_ctx *c, MDB_dbi dbi, MDB_val key,
                    const json_t *v);
/* mdb_put for a key expected to sort after every key of dbi (sequence
 * numbers): appended with MDB_APPEND, which fills pages instead of
 * splitting them in half — half the pages to write and to keep.  A key
 * that does not sort last is put the ordinary way, with the same result. */
int agenda_put_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val);

/* ---- change feed and audit (feed.c, audit.c) ------------------------------------- */

/*
 * Record a change for clients that sync incrementally.  target is
 * "calendar:<id>", "user:<name>" or "group:<id>"; type is what the
 * notification says ("event.created", "invitation.responded", ...);
 * data (borrowed, may be NULL) is included in the change.  The change gets
 * the next sequence number of this shard, which is the sync token.
 * Returns 0 or an LMDB error.
 */
int agenda_feed_append(struct agenda_ctx *c, const char *target,
                       const char *type, const char *object_id,
                       const json_t *data);
/* The same with data as JSON text already in the canonical serialisation
 * (json_text.h; NULL: none), for callers that write it directly. */
int agenda_feed_append_text(struct agenda_ctx *c, const char *target,
                            const char *type, const char *object_id,
                            const char *data_text);
/* The same with another actor than the command's ("": none named), for a
 * change whose readers may not learn who made it. */
int agenda_feed_append_text_as(struct agenda_ctx *c, const char *actor,
                               const char *target, const char *type,
                               const char *object_id, const char *data_text);
/* The sequence number of the last change (the token a fresh client starts
 * from). */
int agenda_feed_head(struct agenda_ctx *c, uint64_t *seq);

/* Append one audit record (dispatcher only): actor, op, object, outcome,
 * chained to the previous record by SHA-256.  Returns 0 or LMDB error. */
int agenda_audit_append(struct agenda_ctx *c, const char *outcome);

/* Rewrite a format-1 audit head (JSON) in today's binary form; no head is
 * fine.  Returns 0 or an LMDB error (MDB_CORRUPTED for a bad head). */
int agenda_audit_upgrade_head(MDB_txn *txn, const struct agenda_db *db);

/* Bring the databases written by an older agent to the current format,
 * in txn (a write transaction), when the state machine is opened: at
 * start and after a snapshot install.  See upgrade.c. */
int agenda_format_upgrade(MDB_txn *txn, const struct agenda_db *db);

#endif /* AGENDA_AGENDA_H */
