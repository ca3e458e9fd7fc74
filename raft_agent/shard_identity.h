/*
 * shard_identity.h — what a shard is, as every replica of it must agree.
 *
 * A replica applies commands by the kind and key range in its own config
 * (router/agent_config.h): replicas of one shard whose files disagreed
 * would accept different calendars and diverge without a word.  So
 * (node.c):
 *   - a new leader puts its identity in the no-op entry it appends
 *     (raft_config.noop_data), and a replica receiving a no-op that says
 *     otherwise appends and answers nothing of that leader's term: the
 *     odd one out never helps commit anything, whether it follows (the
 *     others go on without it) or leads (it hears from no quorum and
 *     steps down);
 *   - applying a no-op that agrees records the identity with the state,
 *     so that snapshots carry it, and opening the state (at start, after
 *     installing a snapshot) refuses one recorded as another shard's:
 *     a config edited between runs, or a replica that catches up by a
 *     snapshot and never sees the no-op.
 *
 * The encoding is "agenda-shard-identity/1 " followed by compact JSON
 * {"kind","from","to"} with sorted keys, so equal identities are equal
 * bytes.  The shard's name is not part of it: the peer HELLO checks names,
 * and an identity must not change when nothing about the data does.
 * Agents before this one append empty no-ops and ignore their data, so
 * versions can be mixed during an upgrade: an empty no-op, or one in a
 * format this build does not know, is not compared.
 *
 * A no-op's data comes from a peer: it is parsed as untrusted input.
 */
#ifndef AGENDA_SHARD_IDENTITY_H
#define AGENDA_SHARD_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Writes the identity of a shard of kind ("events", "groups", "users")
 * holding keys [from, to) into out (replacing its contents).  0, or -1
 * when out cannot grow. */
int agenda_shard_identity_encode(struct agenda_buf *out, const char *kind,
                                 const char *from, const char *to);

/* Room for compare's description of an identity (two range bounds of at
 * most 256 bytes, escaped). */
#define AGENDA_SHARD_IDENTITY_WHY_MAX 1200

enum agenda_identity_match {
    AGENDA_IDENTITY_SAME = 0,
    AGENDA_IDENTITY_DIFFERENT,  /* a readable identity that is not ours */
    AGENDA_IDENTITY_UNKNOWN     /* empty, another format, or unreadable */
};

/* Compares a no-op's data with our own encoded identity.  For DIFFERENT,
 * why (when not NULL) says what the leader's is, e.g. "kind events,
 * range [\"\", \"m\")", truncated to whylen
 * (AGENDA_SHARD_IDENTITY_WHY_MAX holds any the topology allows). */
enum agenda_identity_match agenda_shard_identity_compare(
    const uint8_t *data, size_t len, const uint8_t *mine, size_t mine_len,
    char *why, size_t whylen);

#endif /* AGENDA_SHARD_IDENTITY_H */
