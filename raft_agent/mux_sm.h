/*
 * mux_sm.h — the state machine every agent runs: the agenda (users, groups,
 * events, according to the shard) plus the diagnostic key-value store that
 * tests and benchmarks of the replicated log use.
 */
#ifndef AGENDA_MUX_SM_H
#define AGENDA_MUX_SM_H

#include "agenda_sm.h"
#include "kv_sm.h"

struct agenda_mux_sm {
    struct agenda_kv_sm kv;
    struct agenda_sm agenda;
};

extern const struct sm_ops agenda_mux_sm_ops;

#endif /* AGENDA_MUX_SM_H */
