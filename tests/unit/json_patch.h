/*
 * json_patch.h — edit a JSON document at a path, for table-driven tests of
 * the strict config parsers (test_topology.c, test_agent_config.c): each
 * bad case patches a known-good document at one or more paths.
 *
 * Include after <cmocka.h>, <jansson.h> and <stdio.h>.
 */
#ifndef AGENDA_TEST_JSON_PATCH_H
#define AGENDA_TEST_JSON_PATCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sets (value != NULL, JSON text) or deletes (value == NULL) the element at
 * a path such as "shards[1].replicas[2].raft_port" in root.  An array index
 * equal to the array's size appends.  Fails the test on a bad path.
 */
static void json_patch(json_t *root, const char *path, const char *value)
{
    json_t *cur = root;
    const char *p = path;
    json_t *v = NULL;

    if (value != NULL) {
        json_error_t jerr;

        v = json_loads(value, JSON_DECODE_ANY, &jerr);
        if (v == NULL) {
            fail_msg("bad patch value for %s: %s", path, jerr.text);
        }
    }
    for (;;) {
        char key[64];
        size_t n = strcspn(p, ".[");
        int last;

        if (n > 0) {
            assert_true(n < sizeof(key));
            memcpy(key, p, n);
            key[n] = '\0';
            p += n;
            last = (*p == '\0');
            assert_true(json_is_object(cur));
            if (last) {
                if (v == NULL) {
                    assert_int_equal(json_object_del(cur, key), 0);
                } else {
                    assert_int_equal(json_object_set_new(cur, key, v), 0);
                }
                return;
            }
            cur = json_object_get(cur, key);
            assert_non_null(cur);
        }
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end;
            size_t i = (size_t)strtoul(p + 1, &end, 10);

            assert_true(*end == ']');
            p = end + 1;
            assert_true(json_is_array(cur));
            if (*p == '\0') {
                if (v == NULL) {
                    assert_int_equal(json_array_remove(cur, i), 0);
                } else if (i == json_array_size(cur)) {
                    assert_int_equal(json_array_append_new(cur, v), 0);
                } else {
                    assert_int_equal(json_array_set_new(cur, i, v), 0);
                }
                return;
            }
            cur = json_array_get(cur, i);
            assert_non_null(cur);
            continue;
        }
        fail_msg("bad patch path %s", path);
    }
}

/* One invalid document: a known-good one with patches applied. */
struct json_bad_case {
    const char *what;
    const char *path[3];  /* patches applied in order; NULL ends */
    const char *value[3]; /* JSON text; NULL deletes */
    const char *want;     /* substring of the error */
};

/* base (JSON text) with up to n patches applied, as text (free() it). */
static char *json_patched(const char *base, const char *const *path,
                          const char *const *value, size_t n)
{
    json_t *root = json_loads(base, 0, NULL);
    char *text;

    assert_non_null(root);
    for (size_t k = 0; k < n && path[k] != NULL; k++) {
        json_patch(root, path[k], value[k]);
    }
    text = json_dumps(root, 0);
    json_decref(root);
    assert_non_null(text);
    return text;
}

/* Fails the test unless case c's error (err, or NULL when the document
 * was accepted) contains what the case wants. */
static void json_bad_case_check(const struct json_bad_case *c, bool accepted,
                                const char *err)
{
    if (accepted) {
        fail_msg("case \"%s\": accepted, want error \"%s\"", c->what,
                 c->want);
    }
    if (strstr(err, c->want) == NULL) {
        fail_msg("case \"%s\":\n  want \"%s\"\n  got  \"%s\"", c->what,
                 c->want, err);
    }
}

/* Writes text into the file at path; path may be a mkstemp() template,
 * which is filled in (the file is then new). */
static void json_write_file(char *path, const char *text)
{
    FILE *f;

    if (strstr(path, "XXXXXX") != NULL) {
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        f = fdopen(fd, "w");
    } else {
        f = fopen(path, "w");
    }
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

#endif /* AGENDA_TEST_JSON_PATCH_H */
