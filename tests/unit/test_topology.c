/*
 * test_topology.c — topology parsing, validation and routing (router/).
 *
 * Invalid topologies are a table: each row patches a known-good topology at
 * one or more JSON paths and names the error text it must produce, which
 * always starts with the path of the offending value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "raft.h"
#include "route.h"
#include "topology.h"

#include "json_patch.h"

_Static_assert(AGENDA_TOPO_MAX_REPLICAS == RAFT_MAX_NODES,
               "a shard's replica limit must match the Raft core's");

#define REAL_TOPOLOGY "config/topology.json"

/* Good topology: same shape as config/topology.json, independent of it. */
static const char base_json[] =
    "{\"version\": 1, \"cluster\": \"t\","
    " \"raft\": {\"tick_ms\": 25, \"election_ticks\": 8,"
    "  \"heartbeat_ticks\": 2, \"snapshot_threshold\": 10000,"
    "  \"map_size_mb\": 64},"
    " \"data_dir\": \"var/data\","
    " \"servers\": [{\"name\": \"server1\", \"host\": \"127.0.0.1\"},"
    "  {\"name\": \"server2\", \"host\": \"127.0.0.1\"},"
    "  {\"name\": \"server3\", \"host\": \"127.0.0.1\"}],"
    " \"shards\": ["
    "  {\"name\": \"events_am\", \"kind\": \"events\","
    "   \"range\": {\"from\": \"\", \"to\": \"n\"}, \"replicas\": ["
    "   {\"id\": 1, \"name\": \"node1\", \"server\": \"server1\","
    "    \"http_port\": 7100, \"raft_port\": 7200},"
    "   {\"id\": 2, \"name\": \"node4\", \"server\": \"server2\","
    "    \"http_port\": 7101, \"raft_port\": 7201},"
    "   {\"id\": 3, \"name\": \"node7\", \"server\": \"server3\","
    "    \"http_port\": 7102, \"raft_port\": 7202}]},"
    "  {\"name\": \"events_nz\", \"kind\": \"events\","
    "   \"range\": {\"from\": \"n\", \"to\": \"\"}, \"replicas\": ["
    "   {\"id\": 1, \"name\": \"node1\", \"server\": \"server2\","
    "    \"http_port\": 7110, \"raft_port\": 7210},"
    "   {\"id\": 2, \"name\": \"node4\", \"server\": \"server1\","
    "    \"http_port\": 7111, \"raft_port\": 7211},"
    "   {\"id\": 3, \"name\": \"node7\", \"server\": \"server3\","
    "    \"http_port\": 7112, \"raft_port\": 7212}]},"
    "  {\"name\": \"groups\", \"kind\": \"groups\","
    "   \"range\": {\"from\": \"\", \"to\": \"\"}, \"replicas\": ["
    "   {\"id\": 1, \"name\": \"node1\", \"server\": \"server3\","
    "    \"http_port\": 7120, \"raft_port\": 7220},"
    "   {\"id\": 2, \"name\": \"node4\", \"server\": \"server2\","
    "    \"http_port\": 7121, \"raft_port\": 7221},"
    "   {\"id\": 3, \"name\": \"node7\", \"server\": \"server1\","
    "    \"http_port\": 7122, \"raft_port\": 7222}]},"
    "  {\"name\": \"users\", \"kind\": \"users\", \"replicas\": ["
    "   {\"id\": 1, \"name\": \"node1\", \"server\": \"server1\","
    "    \"http_port\": 7130, \"raft_port\": 7230}]}"
    " ]}";

/* Eight replicas, one more than a Raft group may have. */
static const char eight_replicas[] =
    "[{\"id\": 1, \"name\": \"a\", \"server\": \"server1\","
    "  \"http_port\": 8001, \"raft_port\": 9001},"
    " {\"id\": 2, \"name\": \"b\", \"server\": \"server1\","
    "  \"http_port\": 8002, \"raft_port\": 9002},"
    " {\"id\": 3, \"name\": \"c\", \"server\": \"server1\","
    "  \"http_port\": 8003, \"raft_port\": 9003},"
    " {\"id\": 4, \"name\": \"d\", \"server\": \"server1\","
    "  \"http_port\": 8004, \"raft_port\": 9004},"
    " {\"id\": 5, \"name\": \"e\", \"server\": \"server1\","
    "  \"http_port\": 8005, \"raft_port\": 9005},"
    " {\"id\": 6, \"name\": \"f\", \"server\": \"server1\","
    "  \"http_port\": 8006, \"raft_port\": 9006},"
    " {\"id\": 7, \"name\": \"g\", \"server\": \"server1\","
    "  \"http_port\": 8007, \"raft_port\": 9007},"
    " {\"id\": 7, \"name\": \"h\", \"server\": \"server1\","
    "  \"http_port\": 8008, \"raft_port\": 9008}]";

/* Seven replicas: the most a shard may have. */
static const char seven_replicas[] =
    "[{\"id\": 7, \"name\": \"a\", \"server\": \"server1\","
    "  \"http_port\": 8001, \"raft_port\": 9001},"
    " {\"id\": 6, \"name\": \"b\", \"server\": \"server2\","
    "  \"http_port\": 8002, \"raft_port\": 9002},"
    " {\"id\": 5, \"name\": \"c\", \"server\": \"server3\","
    "  \"http_port\": 8003, \"raft_port\": 9003},"
    " {\"id\": 4, \"name\": \"d\", \"server\": \"server1\","
    "  \"http_port\": 8004, \"raft_port\": 9004},"
    " {\"id\": 3, \"name\": \"e\", \"server\": \"server2\","
    "  \"http_port\": 8005, \"raft_port\": 9005},"
    " {\"id\": 2, \"name\": \"f\", \"server\": \"server3\","
    "  \"http_port\": 8006, \"raft_port\": 9006},"
    " {\"id\": 1, \"name\": \"g\", \"server\": \"server1\","
    "  \"http_port\": 8007, \"raft_port\": 9007}]";

/* --- helpers ------------------------------------------------------------ */

/* Parses text; returns the topology or NULL with the message in err. */
static struct agenda_topology *parse_text(const char *text, char *err,
                                          size_t errlen)
{
    struct agenda_topology *t = (struct agenda_topology *)1;
    int rc = agenda_topology_parse(text, strlen(text), &t, err, errlen);

    if (rc != 0) {
        assert_null(t);
        assert_int_equal(rc, -1);
        return NULL;
    }
    assert_non_null(t);
    return t;
}

static struct agenda_topology *parse_ok(const char *text)
{
    char err[512];
    struct agenda_topology *t = parse_text(text, err, sizeof(err));

    if (t == NULL) {
        fail_msg("expected a valid topology, got: %s", err);
    }
    return t;
}

static const char *route_name(const struct agenda_topology *t,
                              const char *key)
{
    const struct agenda_shard *s = agenda_route_calendar(t, key);

    return s != NULL ? s->name : "(null)";
}

/* --- the real configuration --------------------------------------------- */

static void test_real_topology_loads(void **state)
{
    struct agenda_topology *t = NULL;
    const struct agenda_shard *s;
    const struct agenda_replica *r;
    char err[512];
    size_t i, j;

    (void)state;
    if (agenda_topology_load(REAL_TOPOLOGY, &t, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(t->version, 1);
    assert_int_equal(t->n_shards, 4);
    assert_int_equal(t->n_events, 2);
    assert_string_equal(t->events[0]->name, "events_am");
    assert_string_equal(t->events[1]->name, "events_nz");
    assert_true(t->raft.election_ticks > t->raft.heartbeat_ticks);

    /* The fixed port rule: replica r of shard s listens on
     * 7100 + 10s + r (HTTP) and 7200 + 10s + r (Raft). */
    for (i = 0; i < t->n_shards; i++) {
        s = &t->shards[i];
        assert_int_equal(s->index, i);
        assert_int_equal(s->n_replicas, 3);
        for (j = 0; j < s->n_replicas; j++) {
            r = &s->replicas[j];
            assert_int_equal(r->http_port, 7100 + 10 * i + j);
            assert_int_equal(r->raft_port, 7200 + 10 * i + j);
            assert_int_equal(r->id, j + 1);
            assert_ptr_equal(r->host, r->server->host);
            assert_ptr_equal(agenda_topology_replica(s, r->id), r);
        }
    }

    s = agenda_topology_shard(t, "events_nz");
    assert_non_null(s);
    assert_int_equal(s->kind, AGENDA_SHARD_EVENTS);
    assert_string_equal(s->range_from, "n");
    assert_string_equal(s->range_to, "");
    r = agenda_topology_replica(s, 2);
    assert_non_null(r);
    assert_int_equal(r->http_port, 7111);
    /* Table 3 of the seed: shard 2's node4 runs on server 1. */
    assert_string_equal(r->server->name, "server1");
    assert_null(agenda_topology_replica(s, 4));
    assert_null(agenda_topology_replica(s, 0));
    assert_null(agenda_topology_shard(t, "events"));
    assert_null(agenda_topology_shard(t, "Users"));
    assert_null(agenda_topology_shard(t, NULL));
    assert_null(agenda_topology_replica(NULL, 1));
    agenda_topology_free(t);
}

static void test_real_topology_routes_by_owner_initial(void **state)
{
    struct agenda_topology *t = NULL;
    char err[512];

    (void)state;
    if (agenda_topology_load(REAL_TOPOLOGY, &t, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_string_equal(route_name(t, "alice"), "events_am");
    /* The seed's table 2 sends bob to N-Z, contradicting its own a-m rule;
     * the rule wins (config/README.md). */
    assert_string_equal(route_name(t, "bob"), "events_am");
    assert_string_equal(route_name(t, "Mallory"), "events_am");
    assert_string_equal(route_name(t, "mzzzzz"), "events_am");
    assert_string_equal(route_name(t, "0day"), "events_am");
    assert_string_equal(route_name(t, ""), "events_am");
    assert_string_equal(route_name(t, "n"), "events_nz");
    assert_string_equal(route_name(t, "N"), "events_nz");
    assert_string_equal(route_name(t, "nadia"), "events_nz");
    assert_string_equal(route_name(t, "Zed"), "events_nz");
    assert_string_equal(route_name(t, "~tilde"), "events_nz");
    /* Non-ASCII bytes are not folded and sort above ASCII. */
    assert_string_equal(route_name(t, "\xc3\x81lvaro"), "events_nz");

    assert_string_equal(agenda_route_kind(t, AGENDA_SHARD_USERS)->name,
                        "users");
    assert_string_equal(agenda_route_kind(t, AGENDA_SHARD_GROUPS)->name,
                        "groups");
    assert_null(agenda_route_kind(t, AGENDA_SHARD_EVENTS));
    assert_null(agenda_route_calendar(t, NULL));
    assert_null(agenda_route_calendar(NULL, "alice"));
    agenda_topology_free(t);
}

/* --- routing ------------------------------------------------------------ */

static void test_route_key_reads_only_len_bytes(void **state)
{
    struct agenda_topology *t = parse_ok(base_json);
    const char buf[] = { 'm', 'N', 'o', 'p' }; /* not NUL-terminated */

    (void)state;
    assert_string_equal(agenda_route_key(t, buf, 1)->name, "events_am");
    assert_string_equal(agenda_route_key(t, buf + 1, 3)->name, "events_nz");
    assert_string_equal(agenda_route_key(t, buf, 0)->name, "events_am");
    /* An embedded NUL is just a byte below every letter. */
    assert_string_equal(agenda_route_key(t, "n\0", 2)->name, "events_nz");
    assert_string_equal(agenda_route_key(t, "\0z", 2)->name, "events_am");
    agenda_topology_free(t);
}

static void test_five_shards_three_ranges_route(void **state)
{
    json_t *root = json_loads(base_json, 0, NULL);
    struct agenda_topology *t;
    char *text;
    static const struct {
        const char *key;
        const char *shard;
    } cases[] = {
        { "", "ev_ag" }, { "alice", "ev_ag" }, { "Gzzz", "ev_ag" },
        { "h", "ev_hp" }, { "Hank", "ev_hp" }, { "pzzz", "ev_hp" },
        { "q", "ev_qz" }, { "QUINN", "ev_qz" }, { "zoe", "ev_qz" },
        { "g", "ev_ag" }, { "p", "ev_hp" }, { "{", "ev_qz" },
    };
    size_t i;

    (void)state;
    assert_non_null(root);
    /* Listed out of order on purpose: routing must sort the ranges. */
    json_patch(root, "shards[0].name", "\"ev_qz\"");
    json_patch(root, "shards[0].range", "{\"from\": \"q\", \"to\": \"\"}");
    json_patch(root, "shards[1].name", "\"ev_ag\"");
    json_patch(root, "shards[1].range", "{\"from\": \"\", \"to\": \"h\"}");
    json_patch(root, "shards[4]",
          "{\"name\": \"ev_hp\", \"kind\": \"events\","
          " \"range\": {\"from\": \"h\", \"to\": \"q\"},"
          " \"replicas\": [{\"id\": 1, \"name\": \"n1\","
          " \"server\": \"server2\", \"http_port\": 7140,"
          " \"raft_port\": 7240}]}");
    text = json_dumps(root, 0);
    json_decref(root);
    assert_non_null(text);
    t = parse_ok(text);
    free(text);

    assert_int_equal(t->n_shards, 5);
    assert_int_equal(t->n_events, 3);
    assert_string_equal(t->events[0]->name, "ev_ag");
    assert_string_equal(t->events[1]->name, "ev_hp");
    assert_string_equal(t->events[2]->name, "ev_qz");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = route_name(t, cases[i].key);

        if (strcmp(got, cases[i].shard) != 0) {
            fail_msg("key \"%s\": want %s, got %s", cases[i].key,
                     cases[i].shard, got);
        }
    }
    assert_string_equal(agenda_route_kind(t, AGENDA_SHARD_USERS)->name,
                        "users");
    agenda_topology_free(t);
}

static void test_single_events_shard_takes_every_key(void **state)
{
    json_t *root = json_loads(base_json, 0, NULL);
    struct agenda_topology *t;
    char *text;

    (void)state;
    json_patch(root, "shards[1]", NULL);
    json_patch(root, "shards[0].range.to", "\"\"");
    text = json_dumps(root, 0);
    json_decref(root);
    t = parse_ok(text);
    free(text);
    assert_int_equal(t->n_events, 1);
    assert_string_equal(route_name(t, "alice"), "events_am");
    assert_string_equal(route_name(t, "zed"), "events_am");
    agenda_topology_free(t);
}

/* --- defaults and limits that are allowed -------------------------------- */

static void test_optional_fields_take_defaults(void **state)
{
    json_t *root = json_loads(base_json, 0, NULL);
    struct agenda_topology *t;
    char *text;

    (void)state;
    json_patch(root, "raft", NULL);
    json_patch(root, "data_dir", NULL);
    json_patch(root, "cluster", NULL);
    json_patch(root, "shards[2].range", NULL);
    text = json_dumps(root, 0);
    json_decref(root);
    t = parse_ok(text);
    free(text);
    assert_int_equal(t->raft.tick_ms, 25);
    assert_int_equal(t->raft.election_ticks, 8);
    assert_int_equal(t->raft.heartbeat_ticks, 2);
    assert_int_equal(t->raft.snapshot_threshold, 10000);
    assert_int_equal(t->raft.map_size_mb, 1024);
    assert_string_equal(t->data_dir, "var/data");
    assert_string_equal(t->internal_tls_dir, "");   /* plain links */
    assert_string_equal(t->cluster, "");
    assert_string_equal(t->shards[2].range_from, "");
    assert_string_equal(t->shards[2].range_to, "");
    agenda_topology_free(t);
}

static void test_internal_tls_dir_is_read(void **state)
{
    json_t *root = json_loads(base_json, 0, NULL);
    struct agenda_topology *t;
    char *text;

    (void)state;
    json_patch(root, "internal_tls", "{\"dir\": \"var/tls/internal\"}");
    text = json_dumps(root, 0);
    json_decref(root);
    t = parse_ok(text);
    free(text);
    assert_string_equal(t->internal_tls_dir, "var/tls/internal");
    agenda_topology_free(t);
}

static void test_seven_replicas_allowed(void **state)
{
    json_t *root = json_loads(base_json, 0, NULL);
    struct agenda_topology *t;
    char *text;

    (void)state;
    json_patch(root, "shards[3].replicas", seven_replicas);
    json_patch(root, "raft.map_size_mb", "1048576");
    text = json_dumps(root, 0);
    json_decref(root);
    t = parse_ok(text);
    free(text);
    assert_int_equal(t->shards[3].n_replicas, 7);
    assert_string_equal(agenda_topology_replica(&t->shards[3], 7)->name, "a");
    assert_string_equal(agenda_topology_replica(&t->shards[3], 1)->name, "g");
    assert_int_equal(t->raft.map_size_mb, 1048576);
    agenda_topology_free(t);
}

/* --- invalid topologies --------------------------------------------------- */

static const struct json_bad_case bad_cases[] = {
    { "raft port zero", { "shards[1].replicas[2].raft_port" }, { "0" },
      "shards[1].replicas[2].raft_port: must be 1..65535" },
    { "raft port too big", { "shards[1].replicas[2].raft_port" },
      { "65536" }, "shards[1].replicas[2].raft_port: must be 1..65535" },
    { "port as string", { "shards[0].replicas[0].http_port" },
      { "\"7100\"" }, "shards[0].replicas[0].http_port: must be an integer" },
    { "port as real", { "shards[0].replicas[0].http_port" }, { "7100.0" },
      "shards[0].replicas[0].http_port: must be an integer" },
    { "port missing", { "shards[0].replicas[1].http_port" }, { NULL },
      "shards[0].replicas[1].http_port: missing" },
    { "unknown top-level key", { "colour" }, { "1" },
      "colour: unknown key" },
    { "misspelt replica key", { "shards[0].replicas[1].raft_prot" },
      { "7300" }, "shards[0].replicas[1].raft_prot: unknown key" },
    { "unknown range key", { "shards[1].range.until" }, { "\"z\"" },
      "shards[1].range.until: unknown key" },
    { "duplicate shard name", { "shards[1].name" }, { "\"events_am\"" },
      "shards[1].name: duplicate shard name \"events_am\" (also shards[0])" },
    /* nginx's upstream names and certificate names ignore case */
    { "shard name differing in case", { "shards[1].name" },
      { "\"Events_AM\"" },
      "shards[1].name: duplicate shard name \"Events_AM\" (also "
      "shards[0])" },
    { "replica name differing in case", { "shards[0].replicas[1].name" },
      { "\"NODE1\"" }, "shards[0].replicas[1].name: duplicate replica name" },
    { "duplicate replica id", { "shards[2].replicas[2].id" }, { "1" },
      "shards[2].replicas[2].id: duplicate replica id 1 in shard "
      "\"groups\" (also replicas[0])" },
    { "duplicate replica name", { "shards[0].replicas[1].name" },
      { "\"node1\"" }, "shards[0].replicas[1].name: duplicate replica name" },
    { "replica id zero", { "shards[0].replicas[0].id" }, { "0" },
      "shards[0].replicas[0].id: must be 1..7" },
    { "replica id eight", { "shards[0].replicas[0].id" }, { "8" },
      "shards[0].replicas[0].id: must be 1..7" },
    { "replica id negative", { "shards[0].replicas[0].id" }, { "-1" },
      "shards[0].replicas[0].id: must be 1..7" },
    { "endpoint reused across shards", { "shards[3].replicas[0].http_port" },
      { "7100" }, "shards[3].replicas[0].http_port: 127.0.0.1:7100 is "
      "already used by shards[0].replicas[0].http_port" },
    { "http and raft port equal", { "shards[0].replicas[0].raft_port" },
      { "7100" }, "shards[0].replicas[0].raft_port: 127.0.0.1:7100 is "
      "already used by shards[0].replicas[0].http_port" },
    { "endpoint host differs only in case",
      { "servers[0].host", "servers[1].host",
        "shards[1].replicas[0].raft_port" },
      { "\"Agenda.local\"", "\"agenda.LOCAL\"", "7200" },
      "shards[1].replicas[0].raft_port: agenda.LOCAL:7200 is already used "
      "by shards[0].replicas[0].raft_port" },
    { "unknown server", { "shards[1].replicas[0].server" },
      { "\"server9\"" },
      "shards[1].replicas[0].server: unknown server \"server9\"" },
    { "no replicas", { "shards[0].replicas" }, { "[]" },
      "shards[0].replicas: must list 1..7 replicas, got 0" },
    { "eight replicas", { "shards[3].replicas" }, { eight_replicas },
      "shards[3].replicas: must list 1..7 replicas, got 8" },
    { "replica not an object", { "shards[0].replicas[1]" }, { "5" },
      "shards[0].replicas[1]: must be a JSON object" },
    { "gap between ranges", { "shards[1].range.from" }, { "\"o\"" },
      "shards[1].range.from: gap: keys from \"n\"" },
    { "overlapping ranges", { "shards[1].range.from" }, { "\"m\"" },
      "shards[1].range: [\"m\", \"\") overlaps shards[0]" },
    { "two unbounded ranges", { "shards[0].range.to" }, { "\"\"" },
      "shards[1].range: [\"n\", \"\") overlaps shards[0]" },
    { "first range not at start", { "shards[0].range.from" }, { "\"a\"" },
      "shards[0].range.from: the lowest events range starts at \"a\"" },
    { "last range bounded", { "shards[1].range.to" }, { "\"x\"" },
      "shards[1].range.to: the highest events range ends at \"x\"" },
    { "empty range", { "shards[1].range" },
      { "{\"from\": \"n\", \"to\": \"n\"}" },
      "shards[1].range: from \"n\" must sort before to \"n\"" },
    { "upper-case bound", { "shards[1].range.from", "shards[0].range.to" },
      { "\"N\"", "\"N\"" },
      "shards[0].range.to: \"N\" has upper-case letters" },
    { "range on groups shard", { "shards[2].range.from" }, { "\"a\"" },
      "shards[2].range: a groups shard holds every key" },
    { "events shard without range", { "shards[0].range" }, { NULL },
      "shards[0].range: missing (required for events shards)" },
    { "range bound not a string", { "shards[0].range.to" }, { "110" },
      "shards[0].range.to: must be a string" },
    { "two users shards", { "shards[2].kind" }, { "\"users\"" },
      "shards[3].kind: a second shard of kind \"users\" (shards[2] is one "
      "already)" },
    { "no groups shard", { "shards[2]" }, { NULL },
      "shards: no shard of kind \"groups\"" },
    { "no events shard", { "shards[0]", "shards[0]" }, { NULL, NULL },
      "shards: no shard of kind \"events\"" },
    { "unknown kind", { "shards[0].kind" }, { "\"calendar\"" },
      "shards[0].kind: \"calendar\" is not a shard kind" },
    { "no shards", { "shards" }, { "[]" },
      "shards: must list 1..256 shards, got 0" },
    { "shards not an array", { "shards" }, { "{}" },
      "shards: must be an array" },
    { "election not above heartbeat", { "raft.election_ticks" }, { "2" },
      "raft.election_ticks: must be greater than raft.heartbeat_ticks (2)" },
    { "heartbeat zero", { "raft.heartbeat_ticks" }, { "0" },
      "raft.heartbeat_ticks: must be 1..100000" },
    { "tick zero", { "raft.tick_ms" }, { "0" },
      "raft.tick_ms: must be 1..10000" },
    { "map size too big", { "raft.map_size_mb" }, { "1048577" },
      "raft.map_size_mb: must be 1..1048576" },
    { "snapshot threshold zero", { "raft.snapshot_threshold" }, { "0" },
      "raft.snapshot_threshold: must be 1..1000000000" },
    { "unknown raft key", { "raft.tick" }, { "25" },
      "raft.tick: unknown key" },
    { "raft not an object", { "raft" }, { "[]" },
      "raft: must be a JSON object" },
    { "future version", { "version" }, { "2" },
      "version: unsupported version 2" },
    { "version missing", { "version" }, { NULL },
      "version: missing (required)" },
    { "servers missing", { "servers" }, { NULL },
      "servers: missing (required)" },
    { "duplicate server name", { "servers[1].name" }, { "\"server1\"" },
      "servers[1].name: duplicate server name \"server1\" (also "
      "servers[0])" },
    { "bad host", { "servers[0].host" }, { "\"127.0.0.1/8\"" },
      "servers[0].host: \"127.0.0.1/8\" is not a host name" },
    { "empty host", { "servers[2].host" }, { "\"\"" },
      "servers[2].host: \"\" is not a host name" },
    { "shard name with space", { "shards[0].name" }, { "\"events am\"" },
      "shards[0].name: \"events am\" is not a valid name" },
    { "shard name with slash", { "shards[0].name" }, { "\"../etc\"" },
      "shards[0].name: \"../etc\" is not a valid name" },
    { "replica name too long", { "shards[0].replicas[0].name" },
      { "\"n123456789012345678901234567890123456789012345678901234567890"
        "123\"" },
      "shards[0].replicas[0].name: too long (64 bytes, at most 63)" },
    { "control character in data_dir", { "data_dir" }, { "\"var\\u0001\"" },
      "data_dir: must not contain control characters" },
    { "empty data_dir", { "data_dir" }, { "\"\"" },
      "data_dir: must not be empty" },
    { "cluster not a name", { "cluster" }, { "\"a b\"" },
      "cluster: \"a b\" is not a valid name" },
    { "internal_tls not an object", { "internal_tls" }, { "true" },
      "internal_tls: must be a JSON object" },
    { "internal_tls without dir", { "internal_tls" }, { "{}" },
      "internal_tls.dir: missing (required)" },
    { "internal_tls empty dir", { "internal_tls" }, { "{\"dir\": \"\"}" },
      "internal_tls.dir: must not be empty" },
    { "internal_tls dir not a string", { "internal_tls" },
      { "{\"dir\": 1}" }, "internal_tls.dir: must be a string" },
    { "internal_tls unknown key", { "internal_tls" },
      { "{\"dir\": \"t\", \"verify\": false}" },
      "internal_tls.verify: unknown key" },
};

static void test_invalid_topologies_name_their_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct json_bad_case *c = &bad_cases[i];
        char *text = json_patched(base_json, c->path, c->value, 3);
        char err[512];
        struct agenda_topology *t = parse_text(text, err, sizeof(err));

        bool accepted = t != NULL;

        free(text);
        agenda_topology_free(t);
        json_bad_case_check(c, accepted, err);
    }
}

/* Inputs that are not a topology object at all. */
static void test_malformed_json_is_rejected(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        { "", "line 1 column 0: invalid JSON" },
        { "{\"version\": 1,", "invalid JSON" },
        { "[]", "(top level): must be a JSON object" },
        { "42", "invalid JSON: '[' or '{' expected" },
        { "{\"version\": 1, \"version\": 1}", "duplicate object key" },
        { "{\"version\": 1, \"cluster\": \"a\\u0000b\"}", "invalid JSON" },
        { "{\"version\": 99999999999999999999999}", "invalid JSON" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512];

        assert_null(parse_text(cases[i].text, err, sizeof(err)));
        if (strstr(err, cases[i].want) == NULL) {
            fail_msg("input %s: want \"%s\", got \"%s\"", cases[i].text,
                     cases[i].want, err);
        }
    }
}

static void test_error_buffer_is_bounded(void **state)
{
    struct agenda_topology *t = NULL;
    char err[16];

    (void)state;
    memset(err, 'x', sizeof(err));
    assert_int_equal(agenda_topology_parse("[]", 2, &t, err, 8), -1);
    assert_null(t);
    assert_int_equal(strlen(err), 7);
    assert_memory_equal(err, "(top le", 7);
    assert_int_equal(err[8], 'x'); /* nothing written past errlen */
    /* No buffer at all is fine too. */
    assert_int_equal(agenda_topology_parse("[]", 2, &t, NULL, 0), -1);
    assert_int_equal(agenda_topology_parse(NULL, 0, &t, NULL, 0), -1);
}

static void test_load_reports_file_errors(void **state)
{
    struct agenda_topology *t = (struct agenda_topology *)1;
    char path[] = "/tmp/agenda_topo_XXXXXX";
    char err[512];

    (void)state;
    assert_int_equal(agenda_topology_load("/nonexistent/topology.json", &t,
                                          err, sizeof(err)), -1);
    assert_null(t);
    assert_string_equal(err, "/nonexistent/topology.json: No such file or "
                        "directory");

    json_write_file(path, "{\"version\": 3}");
    assert_int_equal(agenda_topology_load(path, &t, err, sizeof(err)), -1);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, ": version: unsupported version 3"));
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_topology_loads),
        cmocka_unit_test(test_real_topology_routes_by_owner_initial),
        cmocka_unit_test(test_route_key_reads_only_len_bytes),
        cmocka_unit_test(test_five_shards_three_ranges_route),
        cmocka_unit_test(test_single_events_shard_takes_every_key),
        cmocka_unit_test(test_optional_fields_take_defaults),
        cmocka_unit_test(test_internal_tls_dir_is_read),
        cmocka_unit_test(test_seven_replicas_allowed),
        cmocka_unit_test(test_invalid_topologies_name_their_path),
        cmocka_unit_test(test_malformed_json_is_rejected),
        cmocka_unit_test(test_error_buffer_is_bounded),
        cmocka_unit_test(test_load_reports_file_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
