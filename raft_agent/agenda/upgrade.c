/*
 * upgrade.c — the on-disk format of the agenda state machine, and the
 * upgrade of databases written by older agents.
 *
 *   meta "format"  8B BE  AGENDA_FORMAT; absent means format 1
 *
 * Format 1: empty values in ev_by_cal / ev_by_part, the audit head as
 * JSON (or already binary: agents between the two wrote format 2's values
 * before the format key existed; upgrading them again changes nothing).
 * Format 2: index values carry end, flags and the participant's
 * response (event_index.h), binary audit head (audit.c).
 * Format 3: nothing of the agenda's own tables changes; the agent keeps the
 * request ids it remembers in the time-ordered "sessions_log" (session.c
 * moves them there when it opens).  The number moves so that an agent of
 * format 2, which would find no remembered ids and apply retries again,
 * refuses this state instead of diverging from its shard.
 *
 * The upgrade runs when the state machine is opened (start, snapshot
 * install), in the opening write transaction, so it is all or nothing.
 * It is a pure function of the stored state: every replica (and every
 * snapshot) of the same state upgrades to the same bytes, and digests
 * keep agreeing.  Without it an agent started on older data meets the old
 * values as corruption and stops.
 */
#include "agenda.h"

#include "event_index.h"

#define AGENDA_FORMAT 3

static const char meta_format[] = "format";

int agenda_format_upgrade(MDB_txn *txn, const struct agenda_db *db)
{
    MDB_val k = {sizeof(meta_format) - 1, (void *)(uintptr_t)meta_format};
    MDB_val v;
    uint64_t format = 1;
    int rc = mdb_get(txn, db->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8)
            return MDB_CORRUPTED;
        format = agenda_key_u64_decode(v.mv_data);
        /* written by a newer agent: refuse rather than misread it */
        if (format == 0 || format > AGENDA_FORMAT)
            return MDB_VERSION_MISMATCH;
        if (format == AGENDA_FORMAT)
            return 0;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (format == 1) {
        rc = agenda_ev_index_rewrite_values(txn, db);
        if (rc == 0)
            rc = agenda_audit_upgrade_head(txn, db);
        if (rc != 0)
            return rc;
    }
    uint8_t b[8];
    agenda_key_u64(b, AGENDA_FORMAT);
    MDB_val nv = {sizeof(b), b};
    return mdb_put(txn, db->meta, &k, &nv, 0);
}
