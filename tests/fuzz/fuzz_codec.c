/*
 * fuzz_codec.c — libFuzzer target for the peer wire codec.
 *
 * The input is used twice: as a byte stream of frames (parsed one after
 * the other, each decoded by the decoder of its type), and as a bare
 * payload handed to every decoder, since random bytes rarely carry a
 * valid checksum.  Every value that decodes is encoded again, and the new
 * frame must parse, decode to the same value and carry the very same
 * payload bytes (the encoding is canonical).  Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTS 4096

static struct raft_entry ents_a[MAX_ENTS];
static struct raft_entry ents_b[MAX_ENTS];

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Parse the frame in b, which must be exactly one valid frame of the
 * given type with the given payload. */
static struct agenda_frame reparse(const struct agenda_buf *b, uint8_t type,
                                   const uint8_t *payload, size_t len)
{
    struct agenda_frame f;
    size_t used = 0;
    CHECK(agenda_frame_parse(b->data, b->len, UINT32_MAX, &f, &used) ==
          AGENDA_CODEC_OK);
    CHECK(used == b->len);
    CHECK(f.type == type);
    CHECK(f.len == len);
    CHECK(len == 0 || memcmp(f.payload, payload, len) == 0);
    return f;
}

static void check_msg(const uint8_t *p, size_t len)
{
    uint32_t n;
    struct raft_msg a, b;
    int rc = agenda_codec_decode_msg(p, len, &a, ents_a, MAX_ENTS);
    if (agenda_codec_msg_n_entries(p, len, &n) == AGENDA_CODEC_OK)
        CHECK(n <= len / AGENDA_CODEC_ENTRY_HEADER_SIZE);
    else
        CHECK(rc != AGENDA_CODEC_OK);
    if (rc != AGENDA_CODEC_OK)
        return;
    CHECK(a.n_entries == n);
    for (uint32_t i = 0; i < a.n_entries; i++) {
        const struct raft_entry *e = &a.entries[i];
        CHECK(e->len == 0 ||
              (e->data >= p && e->data + e->len <= p + len));
    }

    struct agenda_buf out = {0};
    CHECK(agenda_codec_encode_msg(&out, &a) == AGENDA_CODEC_OK);
    struct agenda_frame f = reparse(&out, AGENDA_FRAME_RAFT_MSG, p, len);
    CHECK(agenda_codec_decode_msg(f.payload, f.len, &b, ents_b, MAX_ENTS) ==
          AGENDA_CODEC_OK);
    CHECK(a.type == b.type && a.from == b.from && a.to == b.to);
    CHECK(a.term == b.term && a.index == b.index);
    CHECK(a.log_term == b.log_term && a.commit == b.commit);
    CHECK(a.context == b.context && a.reject == b.reject);
    CHECK(a.reject_hint == b.reject_hint && a.hint_term == b.hint_term);
    CHECK(a.snapshot.index == b.snapshot.index);
    CHECK(a.snapshot.term == b.snapshot.term);
    CHECK(a.n_entries == b.n_entries);
    for (uint32_t i = 0; i < a.n_entries; i++) {
        const struct raft_entry *x = &a.entries[i], *y = &b.entries[i];
        CHECK(x->term == y->term && x->index == y->index);
        CHECK(x->type == y->type && x->len == y->len);
        CHECK(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    agenda_buf_free(&out);
}

static void check_hello(const uint8_t *p, size_t len)
{
    struct agenda_hello a, b;
    if (agenda_codec_decode_hello(p, len, &a) != AGENDA_CODEC_OK)
        return;
    struct agenda_buf out = {0};
    CHECK(agenda_codec_encode_hello(&out, &a) == AGENDA_CODEC_OK);
    struct agenda_frame f = reparse(&out, AGENDA_FRAME_HELLO, p, len);
    CHECK(agenda_codec_decode_hello(f.payload, f.len, &b) ==
          AGENDA_CODEC_OK);
    CHECK(strcmp(a.cluster, b.cluster) == 0);
    CHECK(strcmp(a.shard, b.shard) == 0);
    CHECK(a.node_id == b.node_id);
    agenda_buf_free(&out);
}

static void check_chunk(const uint8_t *p, size_t len)
{
    struct agenda_snap_chunk a, b;
    if (agenda_codec_decode_snap_chunk(p, len, &a) != AGENDA_CODEC_OK)
        return;
    CHECK(a.offset + a.len <= a.total_size);
    CHECK(a.last == (a.offset + a.len == a.total_size));
    struct agenda_buf out = {0};
    CHECK(agenda_codec_encode_snap_chunk(&out, &a) == AGENDA_CODEC_OK);
    struct agenda_frame f = reparse(&out, AGENDA_FRAME_SNAP_CHUNK, p, len);
    CHECK(agenda_codec_decode_snap_chunk(f.payload, f.len, &b) ==
          AGENDA_CODEC_OK);
    CHECK(a.index == b.index && a.term == b.term);
    CHECK(a.total_size == b.total_size && a.offset == b.offset);
    CHECK(a.file_crc == b.file_crc && a.last == b.last && a.len == b.len);
    CHECK(a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
    agenda_buf_free(&out);
}

static void check_ack(const uint8_t *p, size_t len)
{
    struct agenda_snap_ack a, b;
    if (agenda_codec_decode_snap_ack(p, len, &a) != AGENDA_CODEC_OK)
        return;
    struct agenda_buf out = {0};
    CHECK(agenda_codec_encode_snap_ack(&out, &a) == AGENDA_CODEC_OK);
    struct agenda_frame f = reparse(&out, AGENDA_FRAME_SNAP_ACK, p, len);
    CHECK(agenda_codec_decode_snap_ack(f.payload, f.len, &b) ==
          AGENDA_CODEC_OK);
    CHECK(a.index == b.index && a.next_offset == b.next_offset &&
          a.status == b.status);
    agenda_buf_free(&out);
}

static void check_payload(uint8_t type, const uint8_t *p, size_t len)
{
    switch (type) {
    case AGENDA_FRAME_HELLO:
        check_hello(p, len);
        break;
    case AGENDA_FRAME_RAFT_MSG:
        check_msg(p, len);
        break;
    case AGENDA_FRAME_SNAP_CHUNK:
        check_chunk(p, len);
        break;
    case AGENDA_FRAME_SNAP_ACK:
        check_ack(p, len);
        break;
    default:
        CHECK(!"frame_parse returned an unknown type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so ASan sees the exact extent of the input. */
    uint8_t *p = malloc(size > 0 ? size : 1);
    if (p == NULL)
        return 0;
    if (size > 0)
        memcpy(p, data, size);

    size_t off = 0;
    for (;;) {
        struct agenda_frame f;
        size_t used = 0;
        int rc = agenda_frame_parse(p + off, size - off,
                                    AGENDA_CODEC_DEFAULT_MAX_PAYLOAD, &f,
                                    &used);
        if (rc == AGENDA_CODEC_NEED_MORE) {
            CHECK(used > size - off);
            break;
        }
        if (rc != AGENDA_CODEC_OK)
            break;
        CHECK(used == AGENDA_FRAME_HEADER_SIZE + f.len);
        CHECK(used <= size - off);
        CHECK(f.payload == p + off + AGENDA_FRAME_HEADER_SIZE);
        check_payload(f.type, f.payload, f.len);
        off += used;
    }

    for (uint8_t t = AGENDA_FRAME_HELLO; t <= AGENDA_FRAME_SNAP_ACK; t++)
        check_payload(t, p, size);
    free(p);
    return 0;
}
