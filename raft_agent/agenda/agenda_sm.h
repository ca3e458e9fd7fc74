/*
 * agenda_sm.h — the agenda state machine (sm.h) of users, groups, events
 * and invitations; one instance per replica, configured with its shard.
 */
#ifndef AGENDA_AGENDA_SM_H
#define AGENDA_AGENDA_SM_H

#include "agenda.h"

struct agenda_sm {
    struct agenda_db db;
    struct agenda_shard_info shard; /* strings borrowed for its lifetime */
};

extern const struct sm_ops agenda_sm_ops;

/* The largest operation (its JSON text) a replica applies: the HTTP API
 * refuses bigger ones before proposing them, the apply as well (413). */
#define AGENDA_OP_BODY_MAX (256 * 1024)

/*
 * What every replica answers an operation before its handler runs, as far
 * as its size (len) and its name (NULL: the size only) tell: 0 when it may
 * go on (*op, when op is not NULL, its table entry), else the status, with
 * *code and the message in msg.  Shared by the apply (agenda_sm.c) and the
 * HTTP API (http_agenda.c), which refuses before proposing what the
 * replicas would refuse.
 */
int agenda_op_refusal(const char *name, size_t len, bool want_command,
                      const struct agenda_op **op, const char **code,
                      char *msg, size_t msg_size);

/* The handler table entry for an op name, or NULL. */
const struct agenda_op *agenda_op_find(const char *name);

#endif /* AGENDA_AGENDA_SM_H */
