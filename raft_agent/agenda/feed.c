/*
 * feed.c — the change feed of a shard: every mutation appends changes with
 * a shard-local sequence number, and clients sync incrementally with
 * "what changed on this target since token T".
 *
 * Layout (agenda.h):
 *
 *   meta "feed_seq"    8B BE   the last sequence number handed out (head)
 *   meta "feed_floor"  8B BE   tokens T >= floor are valid: every change
 *                              with seq > floor is still stored
 *   feed               seq (8B BE) -> {"seq","time","target","type","id",
 *                                      "actor","data"?}
 *   feed_by_target     target 0 seq (8B BE) -> ""
 *
 * Everything lives in the replicated LMDB databases, so tokens survive
 * snapshots, restarts and leader changes.  At most feed_keep changes, and
 * a slack of a 128th more, are kept: once in slack + 1 appends, one
 * deletes the oldest ones down to feed_keep.  Deleting one change per
 * append rewrote the first pages of both databases in every commit (6-7%
 * of the creations a shard could make once its feed was full); deleting a
 * slack's worth at once rewrites them once per slack.  The number deleted
 * by one append is bounded, so the cost of a command never depends on the
 * size of the feed.
 */
#include "agenda.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_scan.h"
#include "json_text.h"
#include "render.h"
#include "validate.h"

#define FEED_TARGET_MAX 100
#define FEED_TYPE_MAX 64
#define FEED_ID_MAX 200
/* The slack is feed_keep / FEED_SLACK_DIV changes, at most FEED_SLACK_MAX
 * (781 with the default limit, deleted by one append in 782). */
#define FEED_SLACK_DIV 128
#define FEED_SLACK_MAX 1024
/* Oldest changes removed by one append beyond the slack: above 1 so the
 * feed shrinks back to its limit even when commands append several
 * changes each, or the limit is lowered. */
#define FEED_TRIM_PER_APPEND 4

static const char meta_seq[] = "feed_seq";
static const char meta_floor[] = "feed_floor";

static int handle_list(struct agenda_ctx *c);
static int handle_head(struct agenda_ctx *c);

const struct agenda_op agenda_feed_ops[] = {
    {"changes.list", false, AGENDA_ON_ALL, handle_list},
    {"changes.head", false, AGENDA_ON_ALL, handle_head},
    {NULL, false, 0, NULL},
};

/* ---- meta counters ---------------------------------------------------- */

/* Read an 8-byte counter from meta; absent is 0. */
static int meta_get_u64(struct agenda_ctx *c, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)(uintptr_t)name};
    MDB_val v;
    int rc = mdb_get(c->txn, c->db->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    *out = agenda_key_u64_decode(v.mv_data);
    return 0;
}

static int meta_put_u64(struct agenda_ctx *c, const char *name, uint64_t val)
{
    uint8_t b[8];
    agenda_key_u64(b, val);
    MDB_val k = {strlen(name), (void *)(uintptr_t)name};
    MDB_val v = {sizeof(b), b};
    return mdb_put(c->txn, c->db->meta, &k, &v, 0);
}

int agenda_feed_head(struct agenda_ctx *c, uint64_t *seq)
{
    return meta_get_u64(c, meta_seq, seq);
}

/* ---- append ----------------------------------------------------------- */

/* Printable ASCII without spaces, 1..max bytes: what targets, types and
 * object ids are made of (usernames, hex ids, fixed words). */
static bool feed_word_valid(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (n >= max || (unsigned char)s[n] <= 0x20 ||
            (unsigned char)s[n] >= 0x7f)
            return false;
    return n > 0;
}

static void key_target_seq(struct agenda_key *k, const char *target,
                           uint64_t seq)
{
    uint8_t b[8];
    agenda_key_u64(b, seq);
    agenda_key_reset(k);
    agenda_key_str(k, target);
    agenda_key_raw(k, b, sizeof(b));
}

/*
 * The target of a stored change (a feed word, see agenda_feed_append_text)
 * into out: scanned for (json_scan.h), parsed when the scan cannot tell.
 * Returns 0, or MDB_CORRUPTED when the record has no valid target.  A
 * record damaged elsewhere than around its target is trimmed like any
 * other (it is among the oldest, on its way out); every replica decides
 * the same, as it runs the same scan on the same bytes.
 */
static int change_target(const char *text, size_t len,
                         char out[FEED_TARGET_MAX + 1])
{
    const char *t;
    size_t n;
    json_t *change = NULL;
    if (agenda_json_scan_string(text, len, "target", &t, &n) != 1) {
        json_error_t jerr;
        change = json_loadb(text, len, 0, &jerr);
        json_t *target = json_object_get(change, "target");
        t = json_string_value(target);
        n = json_string_length(target);
    }
    int rc = MDB_CORRUPTED;
    if (t != NULL && n <= FEED_TARGET_MAX && memchr(t, '\0', n) == NULL) {
        memcpy(out, t, n);
        out[n] = '\0';
        rc = feed_word_valid(out, FEED_TARGET_MAX) ? 0 : MDB_CORRUPTED;
    }
    json_decref(change);
    return rc;
}

/*
 * When the head is a multiple of slack + 1, or more than the shard's limit
 * and its slack are kept, delete the oldest changes down to the limit (at
 * most the slack and FEED_TRIM_PER_APPEND of them) and raise the floor
 * past them.  Trimming at heads every replica reaches, not only when a
 * replica's own count passes the slack, brings replicas whose floors
 * differ back together: those that ran an older agent, which trimmed at
 * every append, during a rolling upgrade.
 */
static int feed_trim(struct agenda_ctx *c, uint64_t head)
{
    uint64_t keep = c->shard->feed_keep != 0 ? c->shard->feed_keep
                                             : AGENDA_FEED_KEEP;
    uint64_t slack = keep / FEED_SLACK_DIV < FEED_SLACK_MAX
                         ? keep / FEED_SLACK_DIV : FEED_SLACK_MAX;
    uint64_t floor;
    int rc = meta_get_u64(c, meta_floor, &floor);
    if (rc != 0 || head - floor <= keep ||
        (head % (slack + 1) != 0 && head - floor <= keep + slack))
        return rc;
    uint64_t old_floor = floor;
    MDB_cursor *cur;
    rc = mdb_cursor_open(c->txn, c->db->feed, &cur);
    if (rc != 0)
        return rc;
    /* from the first row on; after a delete the cursor stands on the row
     * that followed, which MDB_NEXT then returns (no new descent) */
    MDB_cursor_op op = MDB_FIRST;
    for (uint64_t i = 0;
         i < slack + FEED_TRIM_PER_APPEND && head - floor > keep; i++) {
        MDB_val k, v;
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc != 0)
            break;
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t seq = agenda_key_u64_decode(k.mv_data);
        char target[FEED_TARGET_MAX + 1];
        if (change_target(v.mv_data, v.mv_size, target) != 0 ||
            seq <= floor || seq > head) {
            rc = MDB_CORRUPTED;
            break;
        }
        struct agenda_key tk;
        key_target_seq(&tk, target, seq);
        MDB_val tv = agenda_key_val(&tk);
        rc = tk.bad ? MDB_CORRUPTED : mdb_del(c->txn, c->db->feed_by_target,
                                              &tv, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc == 0)
            rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        floor = seq;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) /* fewer stored than counted: nothing older */
        rc = 0;
    if (rc == 0 && floor != old_floor)
        rc = meta_put_u64(c, meta_floor, floor);
    return rc;
}

/*
 * The text of a change, written directly (json_text.h): exactly what
 * json_dumps(AGENDA_JSON_FLAGS) makes of {"seq","time","target","type",
 * "id"?,"actor","data"?} — keys in sorted order, the time as RFC 3339 when
 * it can be rendered, else the raw milliseconds (a leader clock gone mad
 * must not stop the shard).  data_text is JSON already (or NULL).
 */
static int change_text(struct agenda_buf *b, const struct agenda_ctx *c,
                       const char *actor, uint64_t seq, const char *target,
                       const char *type, const char *object_id,
                       const char *data_text)
{
    bool ok =
        agenda_buf_append(b, "{", 1) == 0 &&
        agenda_json_text_key(b, "actor") == 0 &&
        agenda_json_text_str(b, actor) == 0 &&
        (data_text == NULL ||
         (agenda_buf_append(b, ",", 1) == 0 &&
          agenda_json_text_key(b, "data") == 0 &&
          agenda_buf_append(b, data_text, strlen(data_text)) == 0)) &&
        (object_id == NULL ||
         (agenda_buf_append(b, ",", 1) == 0 &&
          agenda_json_text_key(b, "id") == 0 &&
          agenda_json_text_str(b, object_id) == 0)) &&
        agenda_buf_append(b, ",", 1) == 0 &&
        agenda_json_text_key(b, "seq") == 0 &&
        agenda_json_text_int(b, (int64_t)seq) == 0 &&
        agenda_buf_append(b, ",", 1) == 0 &&
        agenda_json_text_key(b, "target") == 0 &&
        agenda_json_text_str(b, target) == 0 &&
        agenda_buf_append(b, ",", 1) == 0 &&
        agenda_json_text_key(b, "time") == 0 &&
        agenda_render_time_text(b, c->now_ms) == 0 &&
        agenda_buf_append(b, ",", 1) == 0 &&
        agenda_json_text_key(b, "type") == 0 &&
        agenda_json_text_str(b, type) == 0 &&
        agenda_buf_append(b, "}", 1) == 0;
    return ok ? 0 : ENOMEM;
}

int agenda_feed_append(struct agenda_ctx *c, const char *target,
                       const char *type, const char *object_id,
                       const json_t *data)
{
    if (data != NULL && !json_is_object(data) && !json_is_array(data))
        return EINVAL;
    struct agenda_buf text = {0};
    if (data != NULL && (agenda_json_text_value(&text, data, true) != 0 ||
                         agenda_buf_append(&text, "", 1) != 0)) {
        agenda_buf_free(&text);
        return ENOMEM;
    }
    int rc = agenda_feed_append_text(c, target, type, object_id,
                                     (const char *)text.data);
    agenda_buf_free(&text);
    return rc;
}

/*
 * Append one change (see agenda.h).  The arguments come from handlers, not
 * clients; a malformed one is a bug in the caller, answered with EINVAL so
 * that nothing of the command is kept.
 */
int agenda_feed_append_text(struct agenda_ctx *c, const char *target,
                            const char *type, const char *object_id,
                            const char *data_text)
{
    return agenda_feed_append_text_as(c, c->actor.user, target, type,
                                      object_id, data_text);
}

int agenda_feed_append_text_as(struct agenda_ctx *c, const char *actor,
                               const char *target, const char *type,
                               const char *object_id, const char *data_text)
{
    if (!c->is_command || !feed_word_valid(target, FEED_TARGET_MAX) ||
        !feed_word_valid(type, FEED_TYPE_MAX) ||
        (object_id != NULL && !feed_word_valid(object_id, FEED_ID_MAX)) ||
        (data_text != NULL && data_text[0] != '{' && data_text[0] != '['))
        return EINVAL;
    uint64_t seq;
    int rc = agenda_feed_head(c, &seq);
    if (rc != 0)
        return rc;
    seq++;
    struct agenda_buf text = {0};
    rc = change_text(&text, c, actor, seq, target, type, object_id,
                     data_text);
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {sizeof(kb), kb};
    MDB_val v = {text.len, text.data};
    if (rc == 0)
        rc = agenda_put_last(c->txn, c->db->feed, &k, &v);
    agenda_buf_free(&text);
    if (rc != 0)
        return rc;
    struct agenda_key tk;
    key_target_seq(&tk, target, seq);
    MDB_val tv = agenda_key_val(&tk);
    MDB_val empty = {0, (void *)(uintptr_t)""};
    rc = mdb_put(c->txn, c->db->feed_by_target, &tv, &empty, 0);
    if (rc == 0)
        rc = meta_put_u64(c, meta_seq, seq);
    if (rc == 0)
        rc = feed_trim(c, seq);
    return rc;
}

/* ---- queries ----------------------------------------------------------- */

/*
 * Who may read a target's changes: "user:<name>" and "calendar:<name>" the
 * user and admins; "calendar:g:<id>" and "group:<id>" members and leaders
 * of the group (actor.calendar_role, established by the edge) and admins.
 * The edge itself (role system) reads everything.  On success the target is
 * rewritten in canonical form (folded username) into out.  Returns 0, or
 * the HTTP status of the refusal with the answer already set.
 */
static int feed_target_check(struct agenda_ctx *c, const char *target,
                             char out[FEED_TARGET_MAX + 1])
{
    bool privileged = c->actor.role == AGENDA_ROLE_ADMIN ||
                      c->actor.role == AGENDA_ROLE_SYSTEM;
    bool member = c->actor.cal_role == AGENDA_CAL_MEMBER ||
                  c->actor.cal_role == AGENDA_CAL_LEADER;
    char name[AGENDA_USERNAME_MAX + 1];
    bool allowed;
    if (strncmp(target, "user:", 5) == 0 &&
        agenda_username_fold(target + 5, name) == 0) {
        snprintf(out, FEED_TARGET_MAX + 1, "user:%s", name);
        allowed = privileged || strcmp(name, c->actor.user) == 0;
    } else if (strncmp(target, "calendar:", 9) == 0 &&
               agenda_calendar_is_group(target + 9) &&
               agenda_calendar_valid(target + 9)) {
        snprintf(out, FEED_TARGET_MAX + 1, "%s", target);
        allowed = privileged || member;
    } else if (strncmp(target, "calendar:", 9) == 0 &&
               agenda_username_fold(target + 9, name) == 0) {
        snprintf(out, FEED_TARGET_MAX + 1, "calendar:%s", name);
        allowed = privileged || strcmp(name, c->actor.user) == 0;
    } else if (strncmp(target, "group:", 6) == 0 &&
               agenda_hex_id_valid(target + 6, AGENDA_GROUP_ID_LEN)) {
        snprintf(out, FEED_TARGET_MAX + 1, "%s", target);
        allowed = privileged || member;
    } else {
        agenda_fail(c, 400, "invalid_target",
                    "target must be user:<name>, calendar:<calendar id> or "
                    "group:<group id>");
        return 400;
    }
    if (!allowed) {
        agenda_fail(c, 403, "forbidden",
                    "you may not read the changes of '%.100s'", out);
        return 403;
    }
    return 0;
}

/* Render a stored change for the API (it is stored as answered). */
static int feed_load(struct agenda_ctx *c, uint64_t seq, json_t **out)
{
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {sizeof(kb), kb};
    int rc = agenda_get_json(c, c->db->feed, k, out);
    return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc; /* index without record */
}

/*
 * changes.list {target, since, limit?}
 *   -> {"changes": [...], "sync_token": T, "more": bool}
 * Changes of target with seq > since, oldest first, at most limit
 * (default AGENDA_PAGE_DEFAULT).  sync_token is what to send next time:
 * the last change returned when more follow, else the head of the shard's
 * feed (nothing on this target lies between them).
 * Errors: 400 invalid_target / invalid_sync_token (since < 0 or beyond the
 * head) / invalid_field, 403 forbidden, 410 sync_token_expired.
 */
static int handle_list(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"target", "since", "limit", NULL};
    const char *target = NULL;
    int64_t since = 0, limit = AGENDA_PAGE_DEFAULT;
    char canon[FEED_TARGET_MAX + 1];
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_str(c, "target", true, &target) ||
        !agenda_arg_int(c, "since", true, &since))
        return 0;
    agenda_arg_int(c, "limit", false, &limit);
    if (agenda_failed(c))
        return 0;
    if (limit < 1 || limit > AGENDA_PAGE_MAX)
        return agenda_fail(c, 400, "invalid_field",
                           "limit must be between 1 and %d", AGENDA_PAGE_MAX);
    if (strlen(target) > FEED_TARGET_MAX) {
        return agenda_fail(c, 400, "invalid_target",
                           "target is at most %d bytes", FEED_TARGET_MAX);
    }
    if (feed_target_check(c, target, canon) != 0)
        return 0;
    uint64_t head, floor;
    int rc = agenda_feed_head(c, &head);
    if (rc == 0)
        rc = meta_get_u64(c, meta_floor, &floor);
    if (rc != 0)
        return rc;
    if (since < 0 || (uint64_t)since > head)
        return agenda_fail(c, 400, "invalid_sync_token",
                           "sync token %lld was never issued by this shard "
                           "(its latest is %llu); do a full sync and start "
                           "from the token it returns", (long long)since,
                           (unsigned long long)head);
    if ((uint64_t)since < floor)
        return agenda_fail(c, 410, "sync_token_expired",
                           "sync token %lld is too old: changes before %llu "
                           "are no longer kept; do a full sync and start "
                           "from the token it returns", (long long)since,
                           (unsigned long long)floor);

    json_t *changes = json_array();
    if (changes == NULL)
        return ENOMEM;
    struct agenda_key start;
    key_target_seq(&start, canon, (uint64_t)since + 1);
    size_t prefix = strlen(canon) + 1;
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(c->txn, c->db->feed_by_target, &cur);
    MDB_val k = agenda_key_val(&start), v;
    MDB_cursor_op op = MDB_SET_RANGE;
    uint64_t last = 0;
    bool more = false;
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != prefix + 8 ||
            memcmp(k.mv_data, start.b, prefix) != 0)
            break;
        if ((int64_t)json_array_size(changes) == limit) {
            more = true;
            break;
        }
        last = agenda_key_u64_decode((const uint8_t *)k.mv_data + prefix);
        json_t *change;
        rc = feed_load(c, last, &change);
        if (rc == 0 && json_array_append_new(changes, change) != 0)
            rc = ENOMEM;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(changes);
        return rc;
    }
    json_t *body = json_pack("{s:o,s:I,s:b}", "changes", changes,
                             "sync_token",
                             (json_int_t)(more ? last : head), "more", more);
    return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
}

/* changes.head {} -> {"sync_token": head}: where a client that has just
 * done a full sync starts from.  Any authenticated actor. */
static int handle_head(struct agenda_ctx *c)
{
    static const char *const allowed[] = {NULL};
    if (!agenda_args_only(c, allowed))
        return 0;
    if (c->actor.user[0] == '\0' && c->actor.role != AGENDA_ROLE_SYSTEM)
        return agenda_fail(c, 401, "unauthenticated",
                           "changes.head needs an authenticated actor");
    uint64_t head;
    int rc = agenda_feed_head(c, &head);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:I}", "sync_token", (json_int_t)head);
    return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
}
