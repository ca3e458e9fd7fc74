/*
 * test_agent_config.c — an agent's own config (router/agent_config.h): the
 * topology narrowed to one shard, plus "agent".
 *
 * Invalid configs are a table, as in test_topology.c: each row patches a
 * known-good config and names the error it must produce, which starts with
 * the JSON path of the offending value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_config.h"
#include "topology.h"

#include "json_patch.h"

/* What config/gen-agents writes for events_nz's second replica. */
static const char good_json[] =
    "{\"version\": 1, \"cluster\": \"t\","
    " \"raft\": {\"tick_ms\": 20, \"election_ticks\": 9,"
    "  \"heartbeat_ticks\": 3, \"snapshot_threshold\": 500,"
    "  \"map_size_mb\": 64},"
    " \"servers\": [{\"name\": \"server1\", \"host\": \"10.0.0.1\"},"
    "  {\"name\": \"server2\", \"host\": \"db2.example\"}],"
    " \"shard\": {\"name\": \"events_nz\", \"kind\": \"events\","
    "   \"range\": {\"from\": \"n\", \"to\": \"\"}, \"replicas\": ["
    "   {\"id\": 1, \"name\": \"node1\", \"server\": \"server2\","
    "    \"http_port\": 7110, \"raft_port\": 7210},"
    "   {\"id\": 2, \"name\": \"node4\", \"server\": \"server1\","
    "    \"http_port\": 7111, \"raft_port\": 7211},"
    "   {\"id\": 3, \"name\": \"node7\", \"server\": \"server1\","
    "    \"http_port\": 7112, \"raft_port\": 7212}]},"
    " \"agent\": {\"node\": 2, \"data_dir\": \"/srv/agenda/events_nz/node4\","
    "  \"listen\": \"0.0.0.0\", \"log_level\": \"warn\"}}";

/* Parses text; returns the config or NULL with the message in err. */
static struct agenda_agent_config *parse_text(const char *text, char *err,
                                              size_t errlen)
{
    struct agenda_agent_config *c = (struct agenda_agent_config *)1;
    int rc = agenda_agent_config_parse(text, strlen(text), &c, err, errlen);

    if (rc != 0) {
        assert_null(c);
        assert_int_equal(rc, -1);
        return NULL;
    }
    assert_non_null(c);
    return c;
}

/* good_json with the patches applied, parsed. */
static struct agenda_agent_config *parse_patched(const char *const *path,
                                                 const char *const *value,
                                                 size_t n, char *err,
                                                 size_t errlen)
{
    char *text = json_patched(good_json, path, value, n);
    struct agenda_agent_config *c = parse_text(text, err, errlen);

    free(text);
    return c;
}

static void test_good_config_names_the_replica_and_its_peers(void **state)
{
    char err[512];
    struct agenda_agent_config *c = parse_text(good_json, err, sizeof(err));
    const struct agenda_topology *t;

    (void)state;
    if (c == NULL) {
        fail_msg("good config refused: %s", err);
    }
    t = c->topology;
    assert_string_equal(t->cluster, "t");
    assert_int_equal(t->raft.tick_ms, 20);
    assert_int_equal(t->raft.election_ticks, 9);
    assert_int_equal(t->raft.heartbeat_ticks, 3);
    assert_int_equal(t->raft.snapshot_threshold, 500);
    assert_int_equal(t->raft.map_size_mb, 64);
    assert_int_equal(t->n_shards, 1);
    assert_ptr_equal(c->shard, &t->shards[0]);
    assert_string_equal(c->shard->name, "events_nz");
    assert_int_equal(c->shard->kind, AGENDA_SHARD_EVENTS);
    /* a part of the cluster: its range need not cover every key */
    assert_string_equal(c->shard->range_from, "n");
    assert_string_equal(c->shard->range_to, "");
    assert_int_equal(c->shard->n_replicas, 3);
    assert_ptr_equal(c->self, agenda_topology_replica(c->shard, 2));
    assert_string_equal(c->self->name, "node4");
    assert_string_equal(c->self->host, "10.0.0.1");
    assert_int_equal(c->self->http_port, 7111);
    assert_int_equal(c->self->raft_port, 7211);
    assert_string_equal(agenda_topology_replica(c->shard, 1)->host,
                        "db2.example");
    assert_string_equal(c->data_dir, "/srv/agenda/events_nz/node4");
    assert_string_equal(c->listen, "0.0.0.0");
    assert_string_equal(c->log_level, "warn");
    assert_string_equal(t->data_dir, "");
    agenda_agent_config_free(c);
}

static void test_optional_agent_fields_and_other_kinds(void **state)
{
    static const char *const path[] = {
        "agent.listen", "agent.log_level", "shard.kind", "shard.range",
        "raft"
    };
    static const char *const value[] = {
        NULL, NULL, "\"groups\"", NULL, NULL
    };
    char err[512];
    struct agenda_agent_config *c;

    (void)state;
    c = parse_patched(path, value, 5, err, sizeof(err));
    if (c == NULL) {
        fail_msg("config refused: %s", err);
    }
    assert_string_equal(c->listen, "");
    assert_string_equal(c->log_level, "");
    assert_int_equal(c->shard->kind, AGENDA_SHARD_GROUPS);
    assert_int_equal(c->topology->n_events, 0);
    /* the topology's defaults */
    assert_int_equal(c->topology->raft.tick_ms, 25);
    assert_int_equal(c->topology->raft.election_ticks, 8);
    agenda_agent_config_free(c);
}

static const struct json_bad_case bad_cases[] = {
    { "no agent", { "agent" }, { NULL }, "agent: missing (required)" },
    { "agent not an object", { "agent" }, { "[2]" },
      "agent: must be a JSON object" },
    { "node not in the shard", { "agent.node" }, { "5" },
      "agent.node: shard \"events_nz\" has no replica with id 5" },
    { "node zero", { "agent.node" }, { "0" }, "agent.node: must be 1..7" },
    { "node as string", { "agent.node" }, { "\"2\"" },
      "agent.node: must be an integer" },
    { "node missing", { "agent.node" }, { NULL },
      "agent.node: missing (required)" },
    { "data_dir missing", { "agent.data_dir" }, { NULL },
      "agent.data_dir: missing (required)" },
    { "data_dir empty", { "agent.data_dir" }, { "\"\"" },
      "agent.data_dir: must not be empty" },
    { "data_dir with a newline", { "agent.data_dir" }, { "\"/srv\\nx\"" },
      "agent.data_dir: must not contain control characters" },
    { "listen not a host", { "agent.listen" }, { "\"0.0.0.0/0\"" },
      "agent.listen: \"0.0.0.0/0\" is not a host name" },
    { "listen empty", { "agent.listen" }, { "\"\"" },
      "agent.listen: \"\" is not a host name" },
    { "unknown log level", { "agent.log_level" }, { "\"verbose\"" },
      "agent.log_level: \"verbose\" is not a log level" },
    { "log level too long", { "agent.log_level" }, { "\"debugging\"" },
      "agent.log_level: too long" },
    { "misspelt agent key", { "agent.data-dir" }, { "\"/x\"" },
      "agent.data-dir: unknown key (allowed: node, data_dir, listen, "
      "log_level)" },
    { "whole-topology key", { "shards" }, { "[]" },
      "shards: unknown key (allowed: version, cluster, raft, internal_tls, "
      "servers, shard, agent)" },
    { "top-level data_dir", { "data_dir" }, { "\"var/data\"" },
      "data_dir: unknown key" },
    { "no shard", { "shard" }, { NULL }, "shard: missing (required)" },
    { "shard not an object", { "shard" }, { "[]" },
      "shard: must be a JSON object" },
    { "events shard without range", { "shard.range" }, { NULL },
      "shard.range: missing (required for events shards)" },
    { "empty range", { "shard.range.to" }, { "\"n\"" },
      "shard.range: from \"n\" must sort before to \"n\"" },
    { "unknown server", { "shard.replicas[0].server" }, { "\"server3\"" },
      "shard.replicas[0].server: unknown server \"server3\"" },
    { "endpoint reused", { "shard.replicas[2].raft_port" }, { "7211" },
      "shard.replicas[2].raft_port: 10.0.0.1:7211 is already used by "
      "shard.replicas[1].raft_port" },
    { "duplicate replica id", { "shard.replicas[2].id" }, { "2" },
      "shard.replicas[2].id: duplicate replica id 2" },
    { "no replicas", { "shard.replicas" }, { "[]" },
      "shard.replicas: must list 1..7 replicas, got 0" },
    { "bad raft timing", { "raft.election_ticks" }, { "3" },
      "raft.election_ticks: must be greater than raft.heartbeat_ticks" },
    { "future version", { "version" }, { "2" },
      "version: unsupported version 2" },
    { "no servers", { "servers" }, { NULL }, "servers: missing (required)" },
};

static void test_invalid_configs_name_their_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct json_bad_case *c = &bad_cases[i];
        char err[512];
        struct agenda_agent_config *cfg =
            parse_patched(c->path, c->value, 3, err, sizeof(err));

        bool accepted = cfg != NULL;

        agenda_agent_config_free(cfg);
        json_bad_case_check(c, accepted, err);
    }
}

/* A whole topology is not an agent config, and the reverse. */
static void test_the_two_documents_are_not_interchangeable(void **state)
{
    struct agenda_topology *t = (struct agenda_topology *)1;
    char err[512];

    (void)state;
    assert_int_equal(agenda_topology_parse(good_json, strlen(good_json), &t,
                                           err, sizeof(err)), -1);
    assert_null(t);
    assert_non_null(strstr(err, "shard: unknown key"));
    assert_null(parse_text("{\"version\": 1, \"servers\": [], "
                           "\"shards\": []}", err, sizeof(err)));
    assert_non_null(strstr(err, "shards: unknown key"));
}

static void test_malformed_input(void **state)
{
    static const char *const inputs[] = {
        "", "[]", "null", "{", "{\"version\": 1,}", "\"agent\"",
        "{\"version\": 1, \"version\": 1}",
    };
    struct agenda_agent_config *c = (struct agenda_agent_config *)1;
    char err[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_null(parse_text(inputs[i], err, sizeof(err)));
        assert_non_null(strchr(err, ':'));
    }
    assert_int_equal(agenda_agent_config_parse(NULL, 0, &c, err,
                                               sizeof(err)), -1);
    assert_null(c);
    /* the length given is the input: a prefix of a good config is not
     * one, and a NUL inside is not the end of it */
    assert_int_equal(agenda_agent_config_parse(good_json, 10, &c, NULL, 0),
                     -1);
    char *with_nul = malloc(sizeof(good_json) + 1);
    assert_non_null(with_nul);
    memcpy(with_nul, good_json, sizeof(good_json)); /* its NUL too */
    with_nul[sizeof(good_json)] = ' ';
    assert_int_equal(agenda_agent_config_parse(with_nul,
                                               sizeof(good_json) + 1, &c,
                                               err, sizeof(err)), -1);
    assert_null(c);
    free(with_nul);
    agenda_agent_config_free(NULL);
}

static void test_load_reports_file_errors(void **state)
{
    struct agenda_agent_config *c = (struct agenda_agent_config *)1;
    char path[] = "/tmp/agenda_agent_XXXXXX";
    char err[512];

    (void)state;
    assert_int_equal(agenda_agent_config_load("/nonexistent/a.json", &c,
                                              err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/a.json: No such file or "
                        "directory");

    json_write_file(path, good_json);
    assert_int_equal(agenda_agent_config_load(path, &c, err, sizeof(err)),
                     0);
    assert_string_equal(c->self->name, "node4");
    agenda_agent_config_free(c);

    json_write_file(path, "{\"version\": 1, \"servers\": 3}");
    assert_int_equal(agenda_agent_config_load(path, &c, err, sizeof(err)),
                     -1);
    assert_null(c);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, ": servers: must be an array"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config_names_the_replica_and_its_peers),
        cmocka_unit_test(test_optional_agent_fields_and_other_kinds),
        cmocka_unit_test(test_invalid_configs_name_their_path),
        cmocka_unit_test(test_the_two_documents_are_not_interchangeable),
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_load_reports_file_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
