/*
 * scenario_figure8.h — the Raft paper's figure 8, scripted exactly.
 *
 * Five nodes, every message delivered or dropped by the script.  S1 leads
 * a term and replicates an entry at index 2 to S2 only, then crashes; S5
 * wins the next term with votes from S3 and S4, appends its own index 2
 * and crashes; S1 restarts, wins a later term and brings its old entry to
 * S3, a majority, while its own no-op stays unreplicated.  The core must
 * not count that old-term entry committed.  Then two endings:
 *   A: S1's current-term no-op reaches a majority: index 2 (S1's old-term
 *      entry) is committed together with it;
 *   B: S1 crashes instead, S5 wins again and overwrites index 2 with its
 *      own entry on every node — allowed only because it was never
 *      committed, which the invariant checker verifies.
 */
#ifndef SCENARIO_FIGURE8_H
#define SCENARIO_FIGURE8_H

#include <stdbool.h>

/* Run both endings.  Returns 0 when every assertion held; otherwise prints
 * what failed and returns -1.  trace prints every event. */
int scenario_figure8(bool trace);

#endif /* SCENARIO_FIGURE8_H */
