/*
 * command.h — the envelope of every command proposed to a shard's log.
 *
 * A NORMAL log entry is an envelope around a state-machine command: the
 * request id that makes the command exactly-once (architecture §2.3) and the
 * time the leader stamped on it (apply must not read a clock).  Layout, all
 * integers little-endian:
 *
 *   u8  version (1 .. AGENDA_COMMAND_VERSION)
 *   u8  request id length n (1..AGENDA_REQUEST_ID_MAX)
 *   n   request id bytes ([A-Za-z0-9._:-])
 *   u64 leader time, milliseconds since the Unix epoch
 *   ... state-machine command (may be empty)
 *
 * Entries come from peers and from disk: decode validates everything.
 *
 * The version also names the rules the command was written under.  A
 * replica applies a logged command as its own code reads it, and replicas
 * of one shard run different versions during a rolling upgrade: an older
 * one that refused what a newer leader logged (an argument it does not
 * know) would answer an error and keep a state its peers do not have.
 * So AGENDA_COMMAND_VERSION is raised whenever the state machines may be
 * sent commands an older agent would apply differently, the leader writes
 * it into every entry, and a replica meeting a version above its own
 * stops at that entry (AGENDA_COMMAND_NEWER; the agent exits, and again
 * after each restart, until it is upgraded) rather than apply it.  Entries
 * of older versions stay in the log and are applied by newer code: a new
 * argument is simply absent from them, and a changed rule must read the
 * entry's version (sm_apply_info.command_version) to apply them as before.
 */
#ifndef AGENDA_COMMAND_H
#define AGENDA_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define AGENDA_COMMAND_VERSION 1
#define AGENDA_REQUEST_ID_MAX 64

struct agenda_command {
    unsigned version; /* 1 .. AGENDA_COMMAND_VERSION */
    char request_id[AGENDA_REQUEST_ID_MAX + 1]; /* NUL-terminated */
    size_t request_id_len;
    uint64_t time_ms;
    const uint8_t *payload; /* points into the decoded buffer */
    size_t payload_len;
};

/* True when id (len bytes) is an acceptable request id. */
bool agenda_request_id_valid(const char *id, size_t len);

/* Append an envelope to out.  Returns 0, or -1 on a bad request id or when
 * memory cannot be had (out is then unchanged in length). */
int agenda_command_encode(struct agenda_buf *out, const char *request_id,
                          uint64_t time_ms, const void *payload, size_t len);

/* An envelope of a newer agent's version: see above. */
#define AGENDA_COMMAND_NEWER (-2)

/* Decode p[0..len).  On success returns 0 and *cmd borrows p for payload.
 * Returns AGENDA_COMMAND_NEWER for a version above AGENDA_COMMAND_VERSION
 * (nothing else of the entry is read), -1 on any malformed input. */
int agenda_command_decode(const uint8_t *p, size_t len,
                          struct agenda_command *cmd);

#endif /* AGENDA_COMMAND_H */
