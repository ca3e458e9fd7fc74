/*
 * users.c — the accounts of the users shard: registration, profile reads
 * and updates, password changes, prefix listing, and the credential lookup
 * the edge uses for logins and token checks.
 *
 * Record (db->users, key: username 0):
 *   {"username","display_name","email","password_hash","role",
 *    "created","updated","token_version"}   (times in ms UTC)
 *
 * The password hash is computed at the edge (argon2id, PHC string): the
 * state machine never sees a password, and hands the hash back only to the
 * edge itself (user.auth, actor role system).  token_version is copied into
 * the tokens the edge issues; bumping it (user.password) revokes them all.
 *
 * Answers: a user is rendered as {"username","display_name"} for anyone,
 * plus "email","role","created","updated","token_version" for the user
 * themself, admins and the edge.
 */
#include "agenda.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "render.h"
#include "validate.h"

/* ---- records ----------------------------------------------------------- */

static MDB_val user_key(struct agenda_key *k, const char *name)
{
    agenda_key_reset(k);
    agenda_key_str(k, name);
    return agenda_key_val(k);
}

static bool is_str(const json_t *o, const char *key)
{
    return json_is_string(json_object_get(o, key));
}

static bool is_int(const json_t *o, const char *key)
{
    return json_is_integer(json_object_get(o, key));
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A stored record is checked before use: the disk is not trusted. */
static bool user_record_ok(const json_t *u)
{
    return json_is_object(u) && is_str(u, "username") &&
           is_str(u, "display_name") && is_str(u, "email") &&
           is_str(u, "password_hash") && is_str(u, "role") &&
           agenda_role_parse(str_of(u, "role")) != 0 &&
           is_int(u, "created") && is_int(u, "updated") &&
           is_int(u, "token_version");
}

static json_t *user_parse(const void *p, size_t n)
{
    json_t *u = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    if (u != NULL && !user_record_ok(u)) {
        json_decref(u);
        return NULL;
    }
    return u;
}

/* Returns 0 (*out new reference), MDB_NOTFOUND, MDB_CORRUPTED or another
 * LMDB error. */
static int user_load(struct agenda_ctx *c, const char *name, json_t **out)
{
    struct agenda_key k;
    MDB_val v;
    MDB_val key = user_key(&k, name);
    int rc = mdb_get(c->txn, c->db->users, &key, &v);
    if (rc != 0)
        return rc;
    *out = user_parse(v.mv_data, v.mv_size);
    return *out != NULL ? 0 : MDB_CORRUPTED;
}

static int user_store(struct agenda_ctx *c, const json_t *u)
{
    struct agenda_key k;
    return agenda_put_json(c, c->db->users,
                           user_key(&k, str_of(u, "username")), u);
}

/* The user as the API shows it; full adds what only the user themself,
 * admins and the edge see.  Returns a new reference or NULL (ENOMEM). */
static json_t *user_view(const json_t *u, bool full)
{
    json_t *o = json_pack("{s:s,s:s}", "username", str_of(u, "username"),
                          "display_name", str_of(u, "display_name"));
    if (o == NULL || !full)
        return o;
    if (json_object_set_new(o, "email", json_string(str_of(u, "email"))) ||
        json_object_set_new(o, "role", json_string(str_of(u, "role"))) ||
        json_object_set_new(o, "token_version",
                            json_integer(int_of(u, "token_version"))) ||
        agenda_render_time(o, "created", int_of(u, "created")) ||
        agenda_render_time(o, "updated", int_of(u, "updated"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- shared steps ------------------------------------------------------ */

static bool is_self(const struct agenda_ctx *c, const char *name)
{
    return c->actor.user[0] != '\0' && strcmp(c->actor.user, name) == 0;
}

/* Self or admin may change an account; answers 403 otherwise.  Accounts
 * are public (user.get, user.list), so refusing reveals nothing. */
static bool may_manage(struct agenda_ctx *c, const char *name)
{
    if (is_self(c, name) || agenda_actor_is_admin(c))
        return true;
    agenda_fail(c, 403, "forbidden", "only %s or an admin may %s this "
                "account", name, strcmp(c->op, "user.password") == 0
                                     ? "change the password of"
                                     : "change");
    return false;
}

static bool arg_email(struct agenda_ctx *c, bool required, const char **out)
{
    if (!agenda_arg_str(c, "email", required, out))
        return false;
    if (!agenda_email_valid(*out)) {
        agenda_fail(c, 400, "invalid_field", "'email' must be an e-mail "
                    "address like name@example.org (at most %d bytes)",
                    AGENDA_EMAIL_MAX);
        return false;
    }
    return true;
}

static bool arg_password_hash(struct agenda_ctx *c, const char **out)
{
    if (!agenda_arg_str(c, "password_hash", true, out))
        return false;
    if (!agenda_password_hash_valid(*out)) {
        agenda_fail(c, 400, "invalid_field", "'password_hash' must be an "
                    "argon2id or scrypt hash in PHC string format");
        return false;
    }
    return true;
}

/* Load the account named by the folded name or answer 404. */
static int load_or_404(struct agenda_ctx *c, const char *name, json_t **u)
{
    *u = NULL;
    int rc = user_load(c, name, u);
    if (rc == MDB_NOTFOUND) {
        agenda_fail(c, 404, "not_found", "there is no user '%s'", name);
        return 0;
    }
    return rc;
}

/* Store u, record the change for the user's own feed, answer with the
 * full view.  Consumes u. */
static int commit_user(struct agenda_ctx *c, json_t *u, int status,
                       const char *change)
{
    const char *name = str_of(u, "username");
    json_t *view = user_view(u, true);
    int rc = view == NULL ? ENOMEM : user_store(c, u);
    if (rc == 0) {
        char target[8 + AGENDA_USERNAME_MAX + 1];
        snprintf(target, sizeof(target), "user:%s", name);
        rc = agenda_feed_append(c, target, change, name, view);
    }
    if (rc == 0) {
        json_t *body = json_pack("{s:O}", "user", view);
        rc = agenda_reply_synced(c, status, body);
    }
    json_decref(view);
    json_decref(u);
    return rc;
}

static void set_audit(struct agenda_ctx *c, const char *name)
{
    snprintf(c->audit_object, sizeof(c->audit_object), "user:%s", name);
}

/* ---- commands ---------------------------------------------------------- */

/*
 * user.register {username, display_name, email, password_hash, role?}
 * → 201 {"user": full view, "sync_token"}.  Anyone, even anonymous, may
 * register an ordinary account; role "admin" needs an admin or the edge.
 * 409 username_taken.
 */
static int user_register(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "username", "display_name", "email", "password_hash", "role", NULL,
    };
    char name[AGENDA_USERNAME_MAX + 1];
    const char *display, *email, *hash, *role_s;
    enum agenda_role role = AGENDA_ROLE_USER;
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "username", name) ||
        !agenda_arg_text(c, "display_name", true, AGENDA_DISPLAY_NAME_MAX,
                         false, false, &display) ||
        !arg_email(c, true, &email) || !arg_password_hash(c, &hash))
        return 0;
    set_audit(c, name);
    if (agenda_arg_str(c, "role", false, &role_s)) {
        role = agenda_role_parse(role_s);
        if (role != AGENDA_ROLE_USER && role != AGENDA_ROLE_ADMIN)
            return agenda_fail(c, 400, "invalid_field",
                               "'role' must be user or admin");
    } else if (agenda_failed(c)) {
        return 0;
    }
    /* An anonymous actor's role is not an identity: it never grants. */
    bool may_grant = c->actor.role == AGENDA_ROLE_SYSTEM ||
                     (c->actor.role == AGENDA_ROLE_ADMIN &&
                      c->actor.user[0] != '\0');
    if (role == AGENDA_ROLE_ADMIN && !may_grant)
        return agenda_fail(c, 403, "forbidden",
                           "only an admin may create an admin account");

    json_t *old;
    int rc = user_load(c, name, &old);
    if (rc == 0) {
        json_decref(old);
        return agenda_fail(c, 409, "username_taken",
                           "the username '%s' is taken; choose another",
                           name);
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    json_t *u = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "username",
                          name, "display_name", display, "email", email,
                          "password_hash", hash, "role",
                          agenda_role_name(role), "created",
                          (json_int_t)c->now_ms, "updated",
                          (json_int_t)c->now_ms, "token_version",
                          (json_int_t)1);
    if (u == NULL)
        return ENOMEM;
    return commit_user(c, u, 201, "user.registered");
}

/*
 * user.update {username, display_name?, email?} → 200 {"user", "sync_token"}.
 * Self or admin; at least one field.
 */
static int user_update(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "username", "display_name", "email", NULL,
    };
    char name[AGENDA_USERNAME_MAX + 1];
    const char *display = NULL, *email = NULL;
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "username", name))
        return 0;
    set_audit(c, name);
    bool has_display = agenda_arg_text(c, "display_name", false,
                                       AGENDA_DISPLAY_NAME_MAX, false, false,
                                       &display);
    if (agenda_failed(c))
        return 0;
    bool has_email = arg_email(c, false, &email);
    if (agenda_failed(c))
        return 0;
    if (!has_display && !has_email)
        return agenda_fail(c, 400, "missing_field", "user.update needs "
                           "display_name or email (or both)");
    if (!may_manage(c, name))
        return 0;
    json_t *u;
    int rc = load_or_404(c, name, &u);
    if (rc != 0 || u == NULL)
        return rc;
    if ((has_display &&
         json_object_set_new(u, "display_name", json_string(display))) ||
        (has_email && json_object_set_new(u, "email", json_string(email))) ||
        json_object_set_new(u, "updated", json_integer(c->now_ms))) {
        json_decref(u);
        return ENOMEM;
    }
    return commit_user(c, u, 200, "user.updated");
}

/*
 * user.password {username, password_hash, expected_token_version?} → 200
 * {"user", "sync_token"} with the new token_version: every token issued
 * before is dead.  expected_token_version (the edge sends the version of
 * the token the change was asked with, whose holder proved the current
 * password): 409 password_changed when the account has moved on since,
 * so that of two changes checked against the same old password, the
 * second cannot undo the first with a token the first revoked.
 */
static int user_password(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"username", "password_hash",
                                          "expected_token_version", NULL};
    char name[AGENDA_USERNAME_MAX + 1];
    const char *hash;
    int64_t expected = -1;
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "username", name))
        return 0;
    set_audit(c, name);
    if (!arg_password_hash(c, &hash) || !may_manage(c, name))
        return 0;
    if (!agenda_arg_int(c, "expected_token_version", false, &expected) &&
        agenda_failed(c))
        return 0;
    json_t *u;
    int rc = load_or_404(c, name, &u);
    if (rc != 0 || u == NULL)
        return rc;
    int64_t tv = int_of(u, "token_version");
    if (tv < 0 || tv == INT64_MAX) {
        json_decref(u);
        return MDB_CORRUPTED;
    }
    if (expected != -1 && expected != tv) {
        json_decref(u);
        return agenda_fail(c, 409, "password_changed",
                           "the password of '%s' changed since this token "
                           "was issued; log in again", name);
    }
    if (json_object_set_new(u, "password_hash", json_string(hash)) ||
        json_object_set_new(u, "token_version", json_integer(tv + 1)) ||
        json_object_set_new(u, "updated", json_integer(c->now_ms))) {
        json_decref(u);
        return ENOMEM;
    }
    return commit_user(c, u, 200, "user.password_changed");
}

/* ---- queries ----------------------------------------------------------- */

/* user.get {username} → 200 {"user": view}; full for self/admin/edge. */
static int user_get(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"username", NULL};
    char name[AGENDA_USERNAME_MAX + 1];
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "username", name))
        return 0;
    json_t *u;
    int rc = load_or_404(c, name, &u);
    if (rc != 0 || u == NULL)
        return rc;
    json_t *view = user_view(u, is_self(c, name) || agenda_actor_is_admin(c));
    json_decref(u);
    if (view == NULL)
        return ENOMEM;
    json_t *body = json_pack("{s:o}", "user", view);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/*
 * user.auth {username} → 200 {"user": {username, password_hash, role,
 * token_version}}, for the edge only (actor role system): it checks
 * passwords at login and token versions on every request.
 */
static int user_auth(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"username", NULL};
    char name[AGENDA_USERNAME_MAX + 1];
    if (!agenda_args_only(c, allowed))
        return 0;
    if (c->actor.role != AGENDA_ROLE_SYSTEM)
        return agenda_fail(c, 403, "forbidden",
                           "user.auth is reserved to the edge");
    if (!agenda_arg_username(c, "username", name))
        return 0;
    json_t *u;
    int rc = load_or_404(c, name, &u);
    if (rc != 0 || u == NULL)
        return rc;
    json_t *body = json_pack("{s:{s:s,s:s,s:s,s:I}}", "user", "username",
                             name, "password_hash",
                             str_of(u, "password_hash"), "role",
                             str_of(u, "role"), "token_version",
                             (json_int_t)int_of(u, "token_version"));
    json_decref(u);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/* Fold a list prefix: 1..AGENDA_USERNAME_MAX characters of the username
 * alphabet, ASCII letters lowered.  Returns 0 or -1. */
static int prefix_fold(const char *in, char out[AGENDA_USERNAME_MAX + 1])
{
    size_t n = 0;
    for (; in[n] != '\0'; n++) {
        if (n == AGENDA_USERNAME_MAX)
            return -1;
        char ch = in[n];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return -1;
        out[n] = ch;
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/*
 * user.list {prefix, limit?} → 200 {"users": [{username, display_name}],
 * "more": bool}: accounts whose name starts with prefix, in name order,
 * at most min(limit, AGENDA_USER_LIST_MAX).  A positioned B+tree walk,
 * never a scan: cost is bounded by the limit.
 */
static int user_list(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"prefix", "limit", NULL};
    char prefix[AGENDA_USERNAME_MAX + 1];
    const char *p;
    int64_t limit = AGENDA_USER_LIST_MAX;
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_str(c, "prefix", true, &p))
        return 0;
    if (prefix_fold(p, prefix) != 0)
        return agenda_fail(c, 400, "invalid_field",
                           "'prefix' must be 1 to %d characters of a-z, "
                           "0-9, '_', '.' and '-'", AGENDA_USERNAME_MAX);
    if (!agenda_arg_int(c, "limit", false, &limit) && agenda_failed(c))
        return 0;
    if (limit < 1)
        return agenda_fail(c, 400, "invalid_field",
                           "'limit' must be at least 1");
    if (limit > AGENDA_USER_LIST_MAX)
        limit = AGENDA_USER_LIST_MAX;

    json_t *list = json_array();
    if (list == NULL)
        return ENOMEM;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, c->db->users, &cur);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    size_t plen = strlen(prefix);
    MDB_val k = {plen, prefix}, v;
    bool more = false;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (json_array_size(list) == (size_t)limit) {
            more = true;
            break;
        }
        json_t *u = user_parse(v.mv_data, v.mv_size);
        json_t *view = u != NULL ? user_view(u, false) : NULL;
        json_decref(u);
        if (u == NULL)
            rc = MDB_CORRUPTED;
        else if (view == NULL || json_array_append_new(list, view) != 0)
            rc = ENOMEM;
        else
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(list);
        return rc;
    }
    json_t *body = json_pack("{s:o,s:b}", "users", list, "more", more);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/*
 * user.missing {usernames: [name…]} → 200 {"missing": [name…]}: the names,
 * folded, each once, that no account holds, in the order given.  The edge asks it
 * before inviting anyone: an invitation stored under a free name would
 * show the event to whoever registers that name next.  Accounts are never
 * deleted, so a name found here stays taken.  Names are public anyway
 * (user.list), so anyone may ask.
 */
static int user_missing(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"usernames", NULL};
    if (!agenda_args_only(c, allowed))
        return 0;
    char names[AGENDA_PARTICIPANTS_MAX][AGENDA_USERNAME_MAX + 1];
    size_t n;
    if (!agenda_arg_usernames(c, "usernames", AGENDA_PARTICIPANTS_MAX, names,
                              &n))
        return 0;
    json_t *missing = json_array();
    if (missing == NULL)
        return ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct agenda_key k;
        MDB_val key = user_key(&k, names[i]), v;
        rc = mdb_get(c->txn, c->db->users, &key, &v);
        if (rc == MDB_NOTFOUND)
            rc = json_array_append_new(missing, json_string(names[i])) == 0
                     ? 0 : ENOMEM;
    }
    if (rc != 0) {
        json_decref(missing);
        return rc;
    }
    json_t *body = json_pack("{s:o}", "missing", missing);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

const struct agenda_op agenda_user_ops[] = {
    {"user.register", true, AGENDA_ON_USERS, user_register},
    {"user.update", true, AGENDA_ON_USERS, user_update},
    {"user.password", true, AGENDA_ON_USERS, user_password},
    {"user.get", false, AGENDA_ON_USERS, user_get},
    {"user.list", false, AGENDA_ON_USERS, user_list},
    {"user.auth", false, AGENDA_ON_USERS, user_auth},
    {"user.missing", false, AGENDA_ON_USERS, user_missing},
    {NULL, false, 0, NULL},
};
