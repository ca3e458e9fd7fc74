/* sim_queue.c — binary min-heap of events; see sim_queue.h. */
#include "sim_queue.h"

#include <stdlib.h>
#include <string.h>

static bool before(const struct sim_event *a, const struct sim_event *b);

static bool before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->time != b->time)
        return a->time < b->time;
    return a->seq < b->seq;
}

void sim_queue_init(struct sim_queue *q)
{
    memset(q, 0, sizeof(*q));
}

int sim_queue_push(struct sim_queue *q, const struct sim_event *ev)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        struct sim_event *h = realloc(q->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        q->heap = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    struct sim_event e = *ev;
    e.seq = q->next_seq++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = e;
    return 0;
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
    if (q->n == 0)
        return false;
    *out = q->heap[0];
    struct sim_event last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < q->n && before(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->n && before(&q->heap[r], best))
            m = r;
        if (m == i)
            break;
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->n > 0)
        q->heap[i] = last;
    return true;
}

uint64_t sim_queue_peek_time(const struct sim_queue *q)
{
    return q->n ? q->heap[0].time : UINT64_MAX;
}

void sim_queue_free(struct sim_queue *q, void (*drop)(struct sim_event *ev))
{
    if (drop != NULL)
        for (size_t i = 0; i < q->n; i++)
            drop(&q->heap[i]);
    free(q->heap);
    sim_queue_init(q);
}
