/*
 * raft_arena.h — a bump allocator for one ready batch (internal).
 *
 * Memory handed out stays at a fixed address until raft_arena_reset(), which
 * the core calls in raft_advance(); so messages and entry copies placed in
 * the arena live exactly as long as the ready batch that refers to them.
 */
#ifndef RAFT_ARENA_H
#define RAFT_ARENA_H

#include <stddef.h>

struct raft_arena_block;

struct raft_arena {
    struct raft_arena_block *head; /* block being filled */
    struct raft_arena_block *free; /* blocks kept for reuse */
};

/* Returns NULL when memory cannot be had.  Alignment is max_align_t. */
void *raft_arena_alloc(struct raft_arena *a, size_t n);
void *raft_arena_dup(struct raft_arena *a, const void *p, size_t n);
void raft_arena_reset(struct raft_arena *a);
void raft_arena_free(struct raft_arena *a);

#endif /* RAFT_ARENA_H */
