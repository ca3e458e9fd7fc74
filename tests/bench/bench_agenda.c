/*
 * bench_agenda.c — the agenda state machine at the agent, without the
 * network: load N events (default 1,000,000: 1,000 calendars x 1,000 events
 * over a year) through the real apply path, then time month-view range
 * queries (event.list) and report the LMDB size per million events.
 *
 *   bench_agenda [--events N] [--calendars C] [--queries Q] [--dir DIR]
 *
 * Prints "bench <name> <value> <unit>" lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "agenda_sm.h"
#include "topology.h"

#include "../env_dir.h"

#define BATCH 200 /* commands per transaction, like a ready batch */
#define YEAR_START_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS (24LL * 3600 * 1000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_agenda: %s: %s\n", what, mdb_strerror(rc));
    exit(1);
}

static void fmt_time(int64_t ms, char *out)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n_events = 1000000, n_queries = 10000, calendars = 1000;
    char dir[256] = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--events") == 0)
            n_events = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--calendars") == 0)
            calendars = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--queries") == 0)
            n_queries = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            snprintf(dir, sizeof(dir), "%s", argv[i + 1]);
    }
    if (dir[0] == '\0') {
        strcpy(dir, "/tmp/agenda-bench-sm-XXXXXX");
        if (mkdtemp(dir) == NULL)
            return 1;
    }
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 32);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, (size_t)16 << 30);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOSYNC, 0600);
    if (rc != 0)
        die("open", rc);
    struct agenda_sm sm = {.shard = {.kind = AGENDA_SHARD_EVENTS,
                                     .range_from = "", .range_to = ""}};
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (rc = agenda_sm_ops.open(&sm, txn)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0)
        die("open dbs", rc);

    /* Load: each event 30-90 minutes on a random day of the year. */
    srand(42);
    double t0 = now_s();
    struct sm_result res = {0};
    char cmd[1024], s1[32], s2[32], req[32];
    for (long i = 0; i < n_events;) {
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
            die("txn", rc);
        for (long b = 0; b < BATCH && i < n_events; b++, i++) {
            int64_t start = YEAR_START_MS + (rand() % 365) * DAY_MS +
                            (rand() % 48) * 30LL * 60000;
            int64_t end = start + (30 + rand() % 61) * 60000LL;
            fmt_time(start, s1);
            fmt_time(end, s2);
            int cal = (int)(i % (int)calendars);
            snprintf(cmd, sizeof(cmd),
                     "{\"op\":\"event.create\",\"actor\":{\"user\":"
                     "\"user%04d\",\"role\":\"user\"},\"args\":{\"calendar\":"
                     "\"user%04d\",\"id\":\"%032lx\",\"title\":\"Meeting %ld\","
                     "\"start\":\"%s\",\"end\":\"%s\",\"time_zone\":"
                     "\"Europe/Madrid\",\"participants\":[\"user%04d\"]}}",
                     cal, cal, i, i, s1, s2, (cal + 1) % (int)calendars);
            snprintf(req, sizeof(req), "load-%ld", i);
            struct sm_apply_info info = {.index = (uint64_t)i + 1,
                                         .time_ms = 1795000000000ull,
                                         .request_id = req};
            rc = agenda_sm_ops.apply(&sm, txn, &info, (const uint8_t *)cmd,
                                     strlen(cmd), &res);
            if (rc != 0)
                die("apply", rc);
            if (res.status != 201) {
                fprintf(stderr, "bench_agenda: create answered %d: %.*s\n",
                        res.status, (int)res.body.len,
                        (const char *)res.body.data);
                return 1;
            }
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            die("commit", rc);
    }
    double load = now_s() - t0;
    printf("bench agenda_sm_apply_rate %.0f events/s\n",
           (double)n_events / load);

    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    double bytes = (double)(info.me_last_pgno + 1) * st.ms_psize;
    printf("bench agenda_lmdb_bytes_per_1m_events %.0f MiB\n",
           bytes / (1 << 20) * (1e6 / (double)n_events));

    /* Month views: a random calendar and a random month of the year. */
    double *lat = malloc(sizeof(double) * (size_t)n_queries);
    long total_events = 0;
    for (long q = 0; q < n_queries; q++) {
        int cal = rand() % (int)calendars;
        int month = rand() % 11;
        int64_t from = YEAR_START_MS + month * 30LL * DAY_MS;
        fmt_time(from, s1);
        fmt_time(from + 31 * DAY_MS, s2);
        snprintf(cmd, sizeof(cmd),
                 "{\"op\":\"event.list\",\"actor\":{\"user\":\"user%04d\","
                 "\"role\":\"user\"},\"args\":{\"calendar\":\"user%04d\","
                 "\"from\":\"%s\",\"to\":\"%s\",\"limit\":500}}",
                 cal, cal, s1, s2);
        struct sm_query qq = {.method = "POST", .path = "v1/queries",
                              .body = (const uint8_t *)cmd,
                              .body_len = strlen(cmd)};
        double a = now_s();
        if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
            die("read txn", rc);
        rc = agenda_sm_ops.query(&sm, txn, &qq, &res);
        mdb_txn_abort(txn);
        lat[q] = (now_s() - a) * 1000.0;
        if (rc != 0 || res.status != 200) {
            fprintf(stderr, "bench_agenda: list answered %d\n", res.status);
            return 1;
        }
        const char *p = (const char *)res.body.data;
        for (size_t k = 0; k + 4 < res.body.len; k++)
            if (memcmp(p + k, "\"id\"", 4) == 0)
                total_events++;
    }
    qsort(lat, (size_t)n_queries, sizeof(double), cmp_double);
    printf("bench agenda_month_view_p50 %.3f ms\n", lat[n_queries / 2]);
    printf("bench agenda_month_view_p99 %.3f ms\n",
           lat[(n_queries * 99) / 100]);
    printf("bench agenda_month_view_events_avg %.1f events\n",
           (double)total_events / (double)n_queries);
    free(lat);
    agenda_buf_free(&res.body);
    mdb_env_close(env);
    test_env_dir_remove(dir);
    return 0;
}
