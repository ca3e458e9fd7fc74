/* raft_arena.c — bump allocator for ready batches; see raft_arena.h. */
#include "raft_arena.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN (64 * 1024)

struct raft_arena_block {
    struct raft_arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char mem[];
};

static size_t align_up(size_t n)
{
    size_t a = alignof(max_align_t);
    return (n + a - 1) & ~(a - 1);
}

void *raft_arena_alloc(struct raft_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    n = align_up(n);
    struct raft_arena_block *b = a->head;
    if (b == NULL || b->size - b->used < n) {
        /* Reuse a free block when it is big enough; otherwise allocate. */
        struct raft_arena_block **pp = &a->free;
        while (*pp != NULL && (*pp)->size < n)
            pp = &(*pp)->next;
        if (*pp != NULL) {
            b = *pp;
            *pp = b->next;
        } else {
            size_t size = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
            b = malloc(sizeof(*b) + size);
            if (b == NULL)
                return NULL;
            b->size = size;
        }
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    return p;
}

void *raft_arena_dup(struct raft_arena *a, const void *p, size_t n)
{
    void *q = raft_arena_alloc(a, n);
    if (q != NULL && n > 0)
        memcpy(q, p, n);
    return q;
}

void raft_arena_reset(struct raft_arena *a)
{
    /* Keep at most a few blocks so one huge batch does not pin memory. */
    unsigned kept = 0;
    struct raft_arena_block *b = a->free;
    while (b != NULL) {
        kept++;
        b = b->next;
    }
    while (a->head != NULL) {
        b = a->head;
        a->head = b->next;
        if (kept < 4 && b->size == ARENA_BLOCK_MIN) {
            b->next = a->free;
            a->free = b;
            kept++;
        } else {
            free(b);
        }
    }
}

void raft_arena_free(struct raft_arena *a)
{
    raft_arena_reset(a);
    while (a->free != NULL) {
        struct raft_arena_block *b = a->free;
        a->free = b->next;
        free(b);
    }
}
