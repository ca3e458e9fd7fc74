/*
 * json_check.h — field readers for the strict JSON documents of config/:
 * the topology (topology.h) and an agent's own configuration.
 *
 * Internal to router/.  Every reader checks one field and, on failure,
 * writes one message into a struct jc_err that starts with the JSON path of
 * the offending value ("shards[1].replicas[2].raft_port: must be ..."), so
 * both documents report problems the same way.  Unknown keys are errors:
 * a typo must not be silently ignored.
 */
#ifndef AGENDA_JSON_CHECK_H
#define AGENDA_JSON_CHECK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The readers are not exported from a shared object (the nginx module is
 * loaded with RTLD_GLOBAL, and these short names must not meet another
 * module's). */
#pragma GCC visibility push(hidden)

/* Room for a JSON path such as "shards[12].replicas[3].http_port". */
#define JC_PATH_LEN 128

/* Where a message goes: buf of len bytes (nothing written if NULL or 0). */
struct jc_err {
    char *buf;
    size_t len;
};

/* Writes "<path>: <message>" into e. */
void jc_fail(struct jc_err *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* out (JC_PATH_LEN bytes) = "parent.key", or "key" when parent is "". */
void jc_join(char *out, const char *parent, const char *key);

/* out (JC_PATH_LEN bytes) = "parent[i]". */
void jc_join_index(char *out, const char *parent, size_t i);

/* -1 (and a message) when obj has a key in neither allowed nor more
 * (NULL-terminated lists; more may be NULL). */
int jc_check_keys(json_t *obj, const char *path, const char *const *allowed,
                  const char *const *more, struct jc_err *e);

/* -1 (and a message) when obj is not a JSON object. */
int jc_want_object(json_t *obj, const char *path, struct jc_err *e);

/*
 * Copies the string member key of obj into dst (capacity max + 1).
 * Returns 1 when copied, 0 when absent and not required, -1 on error.
 * Control characters are refused: these strings end up in file names, logs
 * and configuration files.
 */
int jc_get_string(json_t *obj, const char *path, const char *key,
                  int required, char *dst, size_t max, struct jc_err *e);

/* Reads the integer member key of obj into *out, checking min..max.
 * Returns 1 when read, 0 when absent and not required, -1 on error. */
int jc_get_uint(json_t *obj, const char *path, const char *key,
                int required, uint64_t min, uint64_t max, uint64_t *out,
                struct jc_err *e);

/* A name (server, shard, replica, cluster): a letter, then letters,
 * digits, '_' or '-'.  They become directory and nginx upstream names. */
int jc_check_name(const char *s, const char *path, const char *key,
                  struct jc_err *e);

/* A DNS name, an IPv4 literal or a bare IPv6 literal (member key). */
int jc_check_host(const char *s, const char *path, const char *key,
                  struct jc_err *e);

/* Parses len bytes of JSON (duplicate keys refused) that must be an object;
 * NULL and a message naming the line and column otherwise. */
json_t *jc_load(const char *json, size_t len, struct jc_err *e);

/* A parser of len bytes of JSON into *out, as agenda_topology_parse(). */
typedef int (*jc_parse_fn)(const char *json, size_t len, void *out,
                           char *err, size_t errlen);

/*
 * Reads the file at path (at most AGENDA_TOPO_FILE_MAX bytes) and parses it
 * with parse.  Messages: "no <what> file given" for a NULL path,
 * "<path>: <reason>" when it cannot be read, and the parser's prefixed
 * with "<path>: ".
 */
int jc_load_file(const char *path, const char *what, jc_parse_fn parse,
                 void *out, char *err, size_t errlen);

#pragma GCC visibility pop

#endif /* AGENDA_JSON_CHECK_H */
