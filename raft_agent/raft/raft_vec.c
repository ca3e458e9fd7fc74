/* raft_vec.c — a growable array of fixed-size elements (core internal). */
#include "raft_internal.h"

#include <stdlib.h>

/* Returns a pointer to a new, uninitialised last element, or NULL when
 * memory cannot be had (the vector is then unchanged).  Pointers into the
 * vector are invalidated by the next push. */
void *raft_vec_push(struct raft_vec *v, size_t elem)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *p = realloc(v->p, cap * elem);
        if (p == NULL)
            return NULL;
        v->p = p;
        v->cap = cap;
    }
    return (char *)v->p + elem * v->n++;
}

void raft_vec_free(struct raft_vec *v)
{
    free(v->p);
    v->p = NULL;
    v->n = 0;
    v->cap = 0;
}
