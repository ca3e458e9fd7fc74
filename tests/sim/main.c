/*
 * main.c — raft_sim, the deterministic simulation test of the Raft core.
 *
 *   raft_sim --seeds N [--first-seed S] [--nodes 3|5]
 *       N seeded runs per node count (both 3 and 5 when --nodes is not
 *       given); one summary line per node count, then "P passed, F failed";
 *       each failing seed is printed with the command that replays it.
 *   raft_sim --seed S [--nodes K] [--trace]
 *       one run, optionally with the full event trace.
 *   raft_sim --scenario figure8 [--trace]
 *       the scripted figure-8 scenario of the Raft paper.
 *
 * Exit status: 0 when everything passed, 1 when something failed, 2 on a
 * usage error.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_figure8.h"
#include "sim_run.h"

struct options {
    uint64_t seeds;
    uint64_t first_seed;
    bool have_seed;
    uint64_t seed;
    unsigned nodes; /* 0: both 3 and 5 */
    bool trace;
    const char *scenario;
};

static int usage(void);
static bool parse_u64(const char *s, uint64_t *out);
static int parse(int argc, char **argv, struct options *o);
static int run_batch(const struct options *o, unsigned nodes,
                     uint64_t *passed, uint64_t *failed);

static int usage(void)
{
    fprintf(stderr,
            "usage: raft_sim --seeds N [--first-seed S] [--nodes 3|5]\n"
            "       raft_sim --seed S [--nodes K] [--trace]\n"
            "       raft_sim --scenario figure8 [--trace]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->first_seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(a, "--trace") == 0) {
            o->trace = true;
            continue;
        }
        if (strcmp(a, "--scenario") == 0 && v != NULL) {
            o->scenario = v;
        } else if (strcmp(a, "--seeds") == 0 && parse_u64(v, &n) && n > 0) {
            o->seeds = n;
        } else if (strcmp(a, "--first-seed") == 0 && parse_u64(v, &n)) {
            o->first_seed = n;
        } else if (strcmp(a, "--seed") == 0 && parse_u64(v, &n)) {
            o->have_seed = true;
            o->seed = n;
        } else if (strcmp(a, "--nodes") == 0 && parse_u64(v, &n) &&
                   n >= 1 && n <= RAFT_MAX_NODES) {
            o->nodes = (unsigned)n;
        } else {
            fprintf(stderr, "raft_sim: bad or incomplete option '%s'\n", a);
            return -1;
        }
        i++;
    }
    int modes = (o->seeds > 0) + o->have_seed + (o->scenario != NULL);
    if (modes != 1) {
        fprintf(stderr, "raft_sim: give exactly one of --seeds, --seed, "
                        "--scenario\n");
        return -1;
    }
    return 0;
}

static int run_batch(const struct options *o, unsigned nodes,
                     uint64_t *passed, uint64_t *failed)
{
    struct sim_stats sum;
    memset(&sum, 0, sizeof(sum));
    uint64_t max_recover = 0, bad = 0;
    for (uint64_t k = 0; k < o->seeds; k++) {
        uint64_t seed = o->first_seed + k;
        struct sim_stats st;
        char msg[1400];
        if (sim_run(seed, nodes, false, &st, msg, sizeof(msg)) != 0) {
            bad++;
            printf("FAIL seed %" PRIu64 " (%u nodes): %s\n"
                   "  replay: raft_sim --seed %" PRIu64
                   " --nodes %u --trace\n",
                   seed, nodes, msg, seed, nodes);
            fflush(stdout);
        }
        sum.ops += st.ops;
        sum.ops_checked += st.ops_checked;
        sum.elections += st.elections;
        sum.snapshots_sent += st.snapshots_sent;
        sum.crashes += st.crashes;
        sum.steps += st.steps;
        if (st.recover_ticks > max_recover)
            max_recover = st.recover_ticks;
    }
    printf("nodes=%u: %" PRIu64 " seeds, %" PRIu64 " client ops, %" PRIu64
           " ops checked, %" PRIu64 " elections, %" PRIu64
           " snapshots sent, %" PRIu64 " crashes, %" PRIu64
           " events, max %" PRIu64 " ticks to recover after heal\n",
           nodes, o->seeds, sum.ops, sum.ops_checked, sum.elections,
           sum.snapshots_sent, sum.crashes, sum.steps, max_recover);
    *passed += o->seeds - bad;
    *failed += bad;
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse(argc, argv, &o) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (o.scenario != NULL) {
        if (strcmp(o.scenario, "figure8") != 0) {
            fprintf(stderr, "raft_sim: unknown scenario '%s' (known: "
                            "figure8)\n", o.scenario);
            return 2;
        }
        return scenario_figure8(o.trace) == 0 ? 0 : 1;
    }
    if (o.have_seed) {
        unsigned nodes = o.nodes ? o.nodes : 3;
        struct sim_stats st;
        char msg[1400];
        int rc = sim_run(o.seed, nodes, o.trace, &st, msg, sizeof(msg));
        if (rc != 0)
            printf("FAIL seed %" PRIu64 " (%u nodes): %s\n", o.seed, nodes,
                   msg);
        printf("%d passed, %d failed\n", rc == 0, rc != 0);
        return rc == 0 ? 0 : 1;
    }
    uint64_t passed = 0, failed = 0;
    if (o.nodes != 0) {
        run_batch(&o, o.nodes, &passed, &failed);
    } else {
        run_batch(&o, 3, &passed, &failed);
        run_batch(&o, 5, &passed, &failed);
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}
