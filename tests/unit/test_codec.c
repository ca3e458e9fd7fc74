/*
 * test_codec.c — the peer wire codec and CRC-32C.
 *
 * With AGENDA_WRITE_CORPUS=<dir> in the environment the run also writes
 * the valid encodings it builds into <dir>, which is how the seed corpus
 * of tests/fuzz/fuzz_codec.c was made.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "codec.h"
#include "crc32c.h"

/* --- helpers ------------------------------------------------------------ */

static void corpus_write(const char *name, const uint8_t *p, size_t n)
{
    const char *dir = getenv("AGENDA_WRITE_CORPUS");
    if (dir == NULL)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Parse a buffer that must hold exactly one valid frame. */
static struct agenda_frame parse_one(const struct agenda_buf *b)
{
    struct agenda_frame f;
    size_t used = 0;
    assert_int_equal(agenda_frame_parse(b->data, b->len,
                                        AGENDA_CODEC_DEFAULT_MAX_PAYLOAD, &f,
                                        &used),
                     AGENDA_CODEC_OK);
    assert_int_equal(used, b->len);
    assert_int_equal(f.len + AGENDA_FRAME_HEADER_SIZE, b->len);
    return f;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static const uint8_t data_a[] = "first entry";
static const uint8_t data_c[] = {0x00, 0xff, 0xa6, 0xe1};

/* An APPEND with three entries, one of them empty, and extreme values. */
static void sample_append(struct raft_msg *m, struct raft_entry ents[3])
{
    memset(m, 0, sizeof *m);
    m->type = RAFT_MSG_APPEND;
    m->from = 1;
    m->to = 2;
    m->term = UINT64_MAX;
    m->index = 41;
    m->log_term = 7;
    m->commit = 40;
    m->context = 0x0102030405060708u;
    m->snapshot.index = 3;
    m->snapshot.term = 2;
    ents[0] = (struct raft_entry){9, 42, RAFT_ENTRY_NORMAL,
                                  sizeof data_a, data_a};
    ents[1] = (struct raft_entry){9, 43, RAFT_ENTRY_NOOP, 0, NULL};
    ents[2] = (struct raft_entry){UINT64_MAX, 44, RAFT_ENTRY_NORMAL,
                                  sizeof data_c, data_c};
    m->n_entries = 3;
    m->entries = ents;
}

static void assert_msg_equal(const struct raft_msg *a,
                             const struct raft_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_true(a->term == b->term);
    assert_true(a->index == b->index);
    assert_true(a->log_term == b->log_term);
    assert_true(a->commit == b->commit);
    assert_true(a->context == b->context);
    assert_int_equal(a->reject, b->reject);
    assert_true(a->reject_hint == b->reject_hint);
    assert_true(a->hint_term == b->hint_term);
    assert_true(a->snapshot.index == b->snapshot.index);
    assert_true(a->snapshot.term == b->snapshot.term);
    assert_int_equal(a->n_entries, b->n_entries);
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        assert_true(x->term == y->term);
        assert_true(x->index == y->index);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->len, y->len);
        if (x->len > 0)
            assert_memory_equal(x->data, y->data, x->len);
    }
}

/* Encode m, parse and decode it, and compare. */
static void roundtrip_msg(const struct raft_msg *m, const char *corpus)
{
    struct agenda_buf b = {0};
    assert_int_equal(agenda_codec_encode_msg(&b, m), AGENDA_CODEC_OK);
    struct agenda_frame f = parse_one(&b);
    assert_int_equal(f.type, AGENDA_FRAME_RAFT_MSG);

    uint32_t n = 99;
    assert_int_equal(agenda_codec_msg_n_entries(f.payload, f.len, &n),
                     AGENDA_CODEC_OK);
    assert_int_equal(n, m->n_entries);

    struct raft_entry ents[8];
    struct raft_msg d;
    assert_int_equal(agenda_codec_decode_msg(f.payload, f.len, &d, ents, 8),
                     AGENDA_CODEC_OK);
    assert_msg_equal(m, &d);
    /* Zero copy: entry data lies inside the payload. */
    for (uint32_t i = 0; i < d.n_entries; i++)
        if (d.entries[i].len > 0) {
            assert_true(d.entries[i].data >= f.payload);
            assert_true(d.entries[i].data + d.entries[i].len <=
                        f.payload + f.len);
        }
    if (corpus != NULL)
        corpus_write(corpus, b.data, b.len);
    agenda_buf_free(&b);
}

/* Encoders for the sample frames the structural tests run over. */
static void encode_samples(struct agenda_buf out[4])
{
    struct raft_msg m;
    struct raft_entry ents[3];
    sample_append(&m, ents);
    struct agenda_hello h = {"agenda", "events_am", 3};
    static const uint8_t chunk_data[] = "snapshot bytes";
    struct agenda_snap_chunk c = {5, 2, 100, 100 - sizeof chunk_data,
                                  0xdeadbeef, true, sizeof chunk_data,
                                  chunk_data};
    struct agenda_snap_ack a = {5, 100, AGENDA_SNAP_DONE};

    memset(out, 0, 4 * sizeof *out);
    assert_int_equal(agenda_codec_encode_hello(&out[0], &h), 0);
    assert_int_equal(agenda_codec_encode_msg(&out[1], &m), 0);
    assert_int_equal(agenda_codec_encode_snap_chunk(&out[2], &c), 0);
    assert_int_equal(agenda_codec_encode_snap_ack(&out[3], &a), 0);
}

static void free_samples(struct agenda_buf b[4])
{
    for (int i = 0; i < 4; i++)
        agenda_buf_free(&b[i]);
}

/* Decode a frame with the decoder of its type; true when it decodes. */
static bool decodes(const struct agenda_frame *f)
{
    struct raft_entry ents[8];
    struct raft_msg m;
    struct agenda_hello h;
    struct agenda_snap_chunk c;
    struct agenda_snap_ack a;
    switch (f->type) {
    case AGENDA_FRAME_HELLO:
        return agenda_codec_decode_hello(f->payload, f->len, &h) == 0;
    case AGENDA_FRAME_RAFT_MSG:
        return agenda_codec_decode_msg(f->payload, f->len, &m, ents, 8) == 0;
    case AGENDA_FRAME_SNAP_CHUNK:
        return agenda_codec_decode_snap_chunk(f->payload, f->len, &c) == 0;
    case AGENDA_FRAME_SNAP_ACK:
        return agenda_codec_decode_snap_ack(f->payload, f->len, &a) == 0;
    default:
        return false;
    }
}

/* --- CRC-32C -------------------------------------------------------------- */

static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static void crc32c_matches_check_value_and_bitwise_definition(void **state)
{
    (void)state;
    assert_int_equal(agenda_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(agenda_crc32c(0, NULL, 0), 0);

    /* Every table entry is exercised by the 256 single-byte inputs. */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        assert_int_equal(agenda_crc32c(0, &b, 1), crc_bitwise(&b, 1));
    }
    uint8_t buf[1000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    uint32_t whole = agenda_crc32c(0, buf, sizeof buf);
    assert_int_equal(whole, crc_bitwise(buf, sizeof buf));
    /* Chaining equals feeding the whole buffer. */
    for (size_t cut = 0; cut <= sizeof buf; cut += 137)
        assert_int_equal(
            agenda_crc32c(agenda_crc32c(0, buf, cut), buf + cut,
                          sizeof buf - cut),
            whole);
}

/* --- round trips ---------------------------------------------------------- */

static void header_size_is_twelve(void **state)
{
    (void)state;
    assert_int_equal(agenda_frame_header_size(), 12);
}

static void append_with_entries_round_trips(void **state)
{
    (void)state;
    struct raft_msg m;
    struct raft_entry ents[3];
    sample_append(&m, ents);
    roundtrip_msg(&m, "append_3_entries");

    /* Highest indexes that do not wrap. */
    m.index = UINT64_MAX - 3;
    ents[0].index = UINT64_MAX - 2;
    ents[1].index = UINT64_MAX - 1;
    ents[2].index = UINT64_MAX;
    roundtrip_msg(&m, NULL);
}

static void every_message_type_round_trips(void **state)
{
    (void)state;
    for (uint8_t type = RAFT_MSG_APPEND; type < RAFT_MSG__COUNT; type++) {
        struct raft_msg m;
        memset(&m, 0, sizeof m);
        m.type = type;
        m.from = UINT32_MAX - type;
        m.to = 1000u + type;
        m.term = (uint64_t)type << 40;
        m.index = UINT64_MAX - type;
        m.log_term = 1;
        m.commit = 0;
        m.context = type == RAFT_MSG_HEARTBEAT ? UINT64_MAX : 0;
        m.reject = type % 2 == 0;
        m.reject_hint = 17;
        m.hint_term = UINT64_MAX;
        m.snapshot.index = UINT64_MAX;
        m.snapshot.term = 1;
        char name[32];
        snprintf(name, sizeof name, "msg_type_%u", (unsigned)type);
        roundtrip_msg(&m, name);
    }
}

static void hello_round_trips_with_longest_names(void **state)
{
    (void)state;
    struct agenda_hello h, d;
    memset(&h, 0, sizeof h);
    memset(h.cluster, 'c', AGENDA_NAME_MAX);
    memset(h.shard, '~', AGENDA_NAME_MAX);
    h.node_id = UINT32_MAX;

    struct agenda_buf b = {0};
    assert_int_equal(agenda_codec_encode_hello(&b, &h), AGENDA_CODEC_OK);
    struct agenda_frame f = parse_one(&b);
    assert_int_equal(f.type, AGENDA_FRAME_HELLO);
    assert_int_equal(agenda_codec_decode_hello(f.payload, f.len, &d), 0);
    assert_string_equal(d.cluster, h.cluster);
    assert_string_equal(d.shard, h.shard);
    assert_int_equal(d.node_id, UINT32_MAX);

    struct agenda_hello small = {"agenda", "users", 1};
    agenda_buf_reset(&b);
    assert_int_equal(agenda_codec_encode_hello(&b, &small), 0);
    corpus_write("hello", b.data, b.len);
    agenda_buf_free(&b);
}

static void snap_chunks_and_acks_round_trip(void **state)
{
    (void)state;
    static const uint8_t data[] = {1, 2, 3, 4, 5};
    const struct agenda_snap_chunk chunks[] = {
        {7, 3, 10, 0, 0, false, 5, data},           /* first */
        {7, 3, 10, 5, 0xabcdef01u, true, 5, data},  /* last, full */
        {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX, true,
         0, NULL},                                  /* empty last */
        {1, 1, 0, 0, 0, true, 0, NULL},             /* empty file */
    };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct agenda_buf b = {0};
        assert_int_equal(agenda_codec_encode_snap_chunk(&b, &chunks[i]), 0);
        struct agenda_frame f = parse_one(&b);
        assert_int_equal(f.type, AGENDA_FRAME_SNAP_CHUNK);
        struct agenda_snap_chunk d;
        assert_int_equal(
            agenda_codec_decode_snap_chunk(f.payload, f.len, &d), 0);
        assert_true(d.index == chunks[i].index);
        assert_true(d.term == chunks[i].term);
        assert_true(d.total_size == chunks[i].total_size);
        assert_true(d.offset == chunks[i].offset);
        assert_int_equal(d.file_crc, chunks[i].file_crc);
        assert_int_equal(d.last, chunks[i].last);
        assert_int_equal(d.len, chunks[i].len);
        if (d.len > 0)
            assert_memory_equal(d.data, chunks[i].data, d.len);
        char name[32];
        snprintf(name, sizeof name, "snap_chunk_%zu", i);
        corpus_write(name, b.data, b.len);
        agenda_buf_free(&b);
    }

    for (uint8_t s = 0; s <= AGENDA_SNAP_FAILED; s++) {
        struct agenda_snap_ack a = {UINT64_MAX, 12345, s}, d;
        struct agenda_buf b = {0};
        assert_int_equal(agenda_codec_encode_snap_ack(&b, &a), 0);
        struct agenda_frame f = parse_one(&b);
        assert_int_equal(f.type, AGENDA_FRAME_SNAP_ACK);
        assert_int_equal(agenda_codec_decode_snap_ack(f.payload, f.len, &d),
                         0);
        assert_true(d.index == a.index);
        assert_true(d.next_offset == a.next_offset);
        assert_int_equal(d.status, s);
        char name[32];
        snprintf(name, sizeof name, "snap_ack_%u", (unsigned)s);
        corpus_write(name, b.data, b.len);
        agenda_buf_free(&b);
    }
}

static void frames_concatenate_into_a_stream(void **state)
{
    (void)state;
    struct agenda_buf s[4], all = {0};
    encode_samples(s);
    for (int i = 0; i < 4; i++)
        assert_int_equal(agenda_buf_append(&all, s[i].data, s[i].len), 0);
    corpus_write("stream_all_types", all.data, all.len);

    size_t off = 0;
    static const uint8_t types[] = {AGENDA_FRAME_HELLO, AGENDA_FRAME_RAFT_MSG,
                                    AGENDA_FRAME_SNAP_CHUNK,
                                    AGENDA_FRAME_SNAP_ACK};
    for (int i = 0; i < 4; i++) {
        struct agenda_frame f;
        size_t used;
        assert_int_equal(agenda_frame_parse(all.data + off, all.len - off,
                                            1 << 20, &f, &used),
                         AGENDA_CODEC_OK);
        assert_int_equal(f.type, types[i]);
        assert_int_equal(used, s[i].len);
        assert_true(decodes(&f));
        off += used;
    }
    assert_int_equal(off, all.len);
    agenda_buf_free(&all);
    free_samples(s);
}

/* --- frame structure ------------------------------------------------------ */

static void header_errors_are_reported(void **state)
{
    (void)state;
    struct agenda_buf s[4];
    encode_samples(s);
    struct agenda_buf *b = &s[3];
    struct agenda_frame f;
    size_t used;
    uint8_t save;

    /* Each header error shows as soon as its byte is present. */
    save = b->data[0];
    b->data[0] = 0xe2;
    assert_int_equal(agenda_frame_parse(b->data, 1, 100, &f, &used),
                     AGENDA_CODEC_ERR_MAGIC);
    b->data[0] = save;
    save = b->data[1];
    b->data[1] = 0xa7;
    assert_int_equal(agenda_frame_parse(b->data, 2, 100, &f, &used),
                     AGENDA_CODEC_ERR_MAGIC);
    b->data[1] = save;
    b->data[2] = 2;
    assert_int_equal(agenda_frame_parse(b->data, 3, 100, &f, &used),
                     AGENDA_CODEC_ERR_VERSION);
    b->data[2] = 1;
    b->data[3] = 0;
    assert_int_equal(agenda_frame_parse(b->data, 4, 100, &f, &used),
                     AGENDA_CODEC_ERR_TYPE);
    b->data[3] = 5;
    assert_int_equal(agenda_frame_parse(b->data, b->len, 100, &f, &used),
                     AGENDA_CODEC_ERR_TYPE);
    b->data[3] = AGENDA_FRAME_SNAP_ACK;

    /* Length limit: exactly the payload passes, one less is too big. */
    assert_int_equal(agenda_frame_parse(b->data, b->len,
                                        AGENDA_CODEC_SNAP_ACK_SIZE, &f,
                                        &used),
                     AGENDA_CODEC_OK);
    assert_int_equal(agenda_frame_parse(b->data, 8,
                                        AGENDA_CODEC_SNAP_ACK_SIZE - 1, &f,
                                        &used),
                     AGENDA_CODEC_ERR_TOO_BIG);
    /* A length of 4 GiB - 1 is refused by the limit, not waited for. */
    put32(b->data + 4, UINT32_MAX);
    assert_int_equal(agenda_frame_parse(b->data, b->len,
                                        AGENDA_CODEC_DEFAULT_MAX_PAYLOAD, &f,
                                        &used),
                     AGENDA_CODEC_ERR_TOO_BIG);
    put32(b->data + 4, AGENDA_CODEC_SNAP_ACK_SIZE);

    b->data[8] ^= 1;
    assert_int_equal(agenda_frame_parse(b->data, b->len, 100, &f, &used),
                     AGENDA_CODEC_ERR_CRC);
    free_samples(s);
}

static void every_truncation_needs_more(void **state)
{
    (void)state;
    struct agenda_buf s[4];
    encode_samples(s);
    for (int i = 0; i < 4; i++) {
        for (size_t n = 0; n < s[i].len; n++) {
            struct agenda_frame f;
            size_t need = 0;
            /* A copy of exactly n bytes, so ASan catches any overread. */
            uint8_t *p = malloc(n > 0 ? n : 1);
            assert_non_null(p);
            memcpy(p, s[i].data, n);
            assert_int_equal(agenda_frame_parse(p, n, 1 << 20, &f, &need),
                             AGENDA_CODEC_NEED_MORE);
            assert_true(need > n);
            assert_true(need <= s[i].len);
            free(p);
        }
    }
    free_samples(s);
}

static void every_flipped_bit_is_detected(void **state)
{
    (void)state;
    struct agenda_buf s[4];
    encode_samples(s);
    for (int i = 0; i < 4; i++) {
        struct agenda_buf *b = &s[i];
        for (size_t bit = 0; bit < b->len * 8; bit++) {
            b->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            struct agenda_frame f;
            size_t need;
            int rc = agenda_frame_parse(b->data, b->len, 1 << 20, &f, &need);
            assert_int_not_equal(rc, AGENDA_CODEC_OK);
            if (rc == AGENDA_CODEC_NEED_MORE) {
                /* Only a length that grew waits for more; once the bytes
                 * are there the checksum must fail. */
                assert_true(bit / 8 >= 4 && bit / 8 < 8);
                uint8_t *p = calloc(1, need);
                assert_non_null(p);
                memcpy(p, b->data, b->len);
                rc = agenda_frame_parse(p, need, 1 << 20, &f, &need);
                assert_int_equal(rc, AGENDA_CODEC_ERR_CRC);
                free(p);
            }
            b->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* And the untouched frame still parses. */
        (void)parse_one(b);
    }
    free_samples(s);
}

/* --- payload validation --------------------------------------------------- */

/* Offsets inside a RAFT_MSG payload (see codec.h). */
enum {
    OFF_TYPE = 0,
    OFF_FROM = 1,
    OFF_TO = 5,
    OFF_REJECT = 49,
    OFF_NENT = 82,
    OFF_ENT0 = 86,
    ENT_INDEX = 8,
    ENT_TYPE = 16,
    ENT_LEN = 17
};

/* A RAFT_MSG payload (sample APPEND) the tests may damage. */
static struct agenda_buf append_payload(void)
{
    struct raft_msg m;
    struct raft_entry ents[3];
    sample_append(&m, ents);
    struct agenda_buf f = {0}, p = {0};
    assert_int_equal(agenda_codec_encode_msg(&f, &m), 0);
    assert_int_equal(agenda_buf_append(&p, f.data + AGENDA_FRAME_HEADER_SIZE,
                                       f.len - AGENDA_FRAME_HEADER_SIZE),
                     0);
    agenda_buf_free(&f);
    return p;
}

static int decode_payload(const struct agenda_buf *p)
{
    struct raft_entry ents[8];
    struct raft_msg m;
    return agenda_codec_decode_msg(p->data, p->len, &m, ents, 8);
}

struct damage {
    const char *what;
    size_t off;
    uint8_t value;
};

static void malformed_messages_are_rejected(void **state)
{
    (void)state;
    const size_t e1 = OFF_ENT0 + AGENDA_CODEC_ENTRY_HEADER_SIZE +
                      sizeof data_a;
    const struct damage cases[] = {
        {"type 0", OFF_TYPE, 0},
        {"type past the last", OFF_TYPE, RAFT_MSG__COUNT},
        {"entries on a VOTE", OFF_TYPE, RAFT_MSG_VOTE},
        {"from none", OFF_FROM, 0},
        {"to none", OFF_TO, 0},
        {"bool 2", OFF_REJECT, 2},
        {"bool 0xff", OFF_REJECT, 0xff},
        {"entry type 0", OFF_ENT0 + ENT_TYPE, 0},
        {"entry type 3", OFF_ENT0 + ENT_TYPE, 3},
        {"entry index gap", OFF_ENT0 + ENT_INDEX, 43},
        {"second entry index repeats", e1 + ENT_INDEX, 42},
        {"entry length past the end", OFF_ENT0 + ENT_LEN + 3, 0x01},
        {"one entry less than present", OFF_NENT, 2},
        {"one entry more than present", OFF_NENT, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct agenda_buf p = append_payload();
        assert_int_equal(decode_payload(&p), AGENDA_CODEC_OK);
        p.data[cases[i].off] = cases[i].value;
        if (decode_payload(&p) != AGENDA_CODEC_ERR_PAYLOAD)
            fail_msg("case \"%s\" was not rejected", cases[i].what);
        agenda_buf_free(&p);
    }

    /* Trailing byte, and every shortened payload. */
    struct agenda_buf p = append_payload();
    uint8_t zero = 0;
    assert_int_equal(agenda_buf_append(&p, &zero, 1), 0);
    assert_int_equal(decode_payload(&p), AGENDA_CODEC_ERR_PAYLOAD);
    p.len--;
    while (p.len-- > 0)
        assert_int_not_equal(decode_payload(&p), AGENDA_CODEC_OK);
    agenda_buf_free(&p);
}

static void entry_count_is_checked_against_bytes(void **state)
{
    (void)state;
    struct agenda_buf p = append_payload();
    uint32_t n;
    struct raft_entry ents[4];
    struct raft_msg m;

    /* 2^32 - 1 entries in a payload of ~130 bytes: refused before any
     * entry is touched, even when the caller offers unlimited room. */
    put32(p.data + OFF_NENT, UINT32_MAX);
    assert_int_equal(agenda_codec_msg_n_entries(p.data, p.len, &n),
                     AGENDA_CODEC_ERR_PAYLOAD);
    assert_int_equal(agenda_codec_decode_msg(p.data, p.len, &m, ents,
                                             SIZE_MAX),
                     AGENDA_CODEC_ERR_PAYLOAD);

    /* The largest count the bytes could hold passes the count check... */
    size_t rest = p.len - OFF_ENT0;
    uint32_t most = (uint32_t)(rest / AGENDA_CODEC_ENTRY_HEADER_SIZE);
    put32(p.data + OFF_NENT, most);
    assert_int_equal(agenda_codec_msg_n_entries(p.data, p.len, &n), 0);
    assert_int_equal(n, most);
    /* ...and one more does not. */
    put32(p.data + OFF_NENT, most + 1);
    assert_int_equal(agenda_codec_msg_n_entries(p.data, p.len, &n),
                     AGENDA_CODEC_ERR_PAYLOAD);

    /* Too little room in the caller's array is its own error. */
    put32(p.data + OFF_NENT, 3);
    assert_int_equal(agenda_codec_decode_msg(p.data, p.len, &m, ents, 2),
                     AGENDA_CODEC_ERR_TOO_MANY);
    assert_int_equal(agenda_codec_decode_msg(p.data, p.len, &m, ents, 3),
                     AGENDA_CODEC_OK);
    agenda_buf_free(&p);
}

static void malformed_hellos_are_rejected(void **state)
{
    (void)state;
    struct agenda_hello h;
    /* {len, name} {len, name} id */
    static const uint8_t ok[] = {2, 'a', 'b', 1, 's', 7, 0, 0, 0};
    assert_int_equal(agenda_codec_decode_hello(ok, sizeof ok, &h), 0);
    assert_string_equal(h.cluster, "ab");
    assert_string_equal(h.shard, "s");
    assert_int_equal(h.node_id, 7);

    static const uint8_t empty_name[] = {0, 1, 's', 7, 0, 0, 0};
    static const uint8_t space[] = {2, 'a', ' ', 1, 's', 7, 0, 0, 0};
    static const uint8_t nul[] = {2, 'a', 0, 1, 's', 7, 0, 0, 0};
    static const uint8_t high[] = {2, 'a', 0xc3, 1, 's', 7, 0, 0, 0};
    static const uint8_t id0[] = {2, 'a', 'b', 1, 's', 0, 0, 0, 0};
    static const uint8_t trailing[] = {2, 'a', 'b', 1, 's', 7, 0, 0, 0, 0};
    static const uint8_t past_end[] = {200, 'a', 'b', 1, 's', 7, 0, 0, 0};
    static const uint8_t *const bad[] = {empty_name, space, nul, high, id0,
                                         trailing, past_end};
    static const size_t bad_len[] = {sizeof empty_name, sizeof space,
                                     sizeof nul, sizeof high, sizeof id0,
                                     sizeof trailing, sizeof past_end};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(agenda_codec_decode_hello(bad[i], bad_len[i], &h),
                         AGENDA_CODEC_ERR_PAYLOAD);

    uint8_t too_long[2 + 65 + 5] = {65};
    memset(too_long + 1, 'x', 65);
    too_long[66] = 1;
    too_long[67] = 's';
    too_long[68] = 1;
    assert_int_equal(agenda_codec_decode_hello(too_long, sizeof too_long,
                                               &h),
                     AGENDA_CODEC_ERR_PAYLOAD);
}

static void malformed_snapshot_frames_are_rejected(void **state)
{
    (void)state;
    static const uint8_t data[] = {1, 2, 3};
    const struct agenda_snap_chunk bad[] = {
        {1, 1, 10, 0, 0, true, 3, data},          /* last but short */
        {1, 1, 3, 0, 0, false, 3, data},          /* reaches end, not last */
        {1, 1, 10, 11, 0, true, 0, NULL},         /* offset past total */
        {1, 1, 10, 8, 0, true, 3, data},          /* data past total */
        {1, 1, UINT64_MAX, UINT64_MAX - 1, 0, false, 3, data}, /* wraps */
        {1, 1, 10, 0, 0, false, 0, NULL},         /* no progress */
        {1, 1, 10, 0, 0, false, 3, NULL},         /* data missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct agenda_buf b = {0};
        assert_int_equal(agenda_codec_encode_snap_chunk(&b, &bad[i]),
                         AGENDA_CODEC_ERR_INVALID);
        assert_int_equal(b.len, 0);
        agenda_buf_free(&b);
    }

    /* The decoder applies the same rules to bytes from the wire: take a
     * valid chunk and change its last flag, then its bool to 2. */
    struct agenda_snap_chunk good = {1, 1, 10, 7, 0, true, 3, data}, d;
    struct agenda_buf b = {0};
    assert_int_equal(agenda_codec_encode_snap_chunk(&b, &good), 0);
    uint8_t *pl = b.data + AGENDA_FRAME_HEADER_SIZE;
    size_t n = b.len - AGENDA_FRAME_HEADER_SIZE;
    assert_int_equal(agenda_codec_decode_snap_chunk(pl, n, &d), 0);
    pl[36] = 0;
    assert_int_equal(agenda_codec_decode_snap_chunk(pl, n, &d),
                     AGENDA_CODEC_ERR_PAYLOAD);
    pl[36] = 2;
    assert_int_equal(agenda_codec_decode_snap_chunk(pl, n, &d),
                     AGENDA_CODEC_ERR_PAYLOAD);
    pl[36] = 1;
    assert_int_equal(agenda_codec_decode_snap_chunk(pl, 36, &d),
                     AGENDA_CODEC_ERR_PAYLOAD);
    agenda_buf_free(&b);

    struct agenda_snap_ack a = {1, 2, 3}, da;
    assert_int_equal(agenda_codec_encode_snap_ack(&b, &a),
                     AGENDA_CODEC_ERR_INVALID);
    a.status = AGENDA_SNAP_CONTINUE;
    assert_int_equal(agenda_codec_encode_snap_ack(&b, &a), 0);
    pl = b.data + AGENDA_FRAME_HEADER_SIZE;
    pl[16] = 3;
    assert_int_equal(agenda_codec_decode_snap_ack(pl, 17, &da),
                     AGENDA_CODEC_ERR_PAYLOAD);
    pl[16] = 0;
    assert_int_equal(agenda_codec_decode_snap_ack(pl, 16, &da),
                     AGENDA_CODEC_ERR_PAYLOAD);
    uint8_t longer[18] = {0};
    assert_int_equal(agenda_codec_decode_snap_ack(longer, 18, &da),
                     AGENDA_CODEC_ERR_PAYLOAD);
    agenda_buf_free(&b);
}

static void encoders_refuse_what_decoders_reject(void **state)
{
    (void)state;
    struct raft_msg m;
    struct raft_entry ents[3];
    struct agenda_buf b = {0};
    uint8_t keep = 0x5a;
    assert_int_equal(agenda_buf_append(&b, &keep, 1), 0);

    sample_append(&m, ents);
    m.type = RAFT_MSG__COUNT;
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);
    sample_append(&m, ents);
    m.from = RAFT_NONE;
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);
    sample_append(&m, ents);
    m.type = RAFT_MSG_HEARTBEAT; /* entries on a heartbeat */
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);
    sample_append(&m, ents);
    ents[1].index = 44;
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);
    sample_append(&m, ents);
    ents[2].type = 0;
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);
    sample_append(&m, ents);
    m.index = UINT64_MAX; /* the first entry would be index 0 */
    ents[0].index = 0;
    assert_int_equal(agenda_codec_encode_msg(&b, &m),
                     AGENDA_CODEC_ERR_INVALID);

    struct agenda_hello h = {"bad name", "s", 1};
    assert_int_equal(agenda_codec_encode_hello(&b, &h),
                     AGENDA_CODEC_ERR_INVALID);
    struct agenda_hello h0 = {"c", "s", 0};
    assert_int_equal(agenda_codec_encode_hello(&b, &h0),
                     AGENDA_CODEC_ERR_INVALID);

    /* Failed encoders leave the buffer as it was. */
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 0x5a);
    agenda_buf_free(&b);
}

static void every_error_has_a_distinct_message(void **state)
{
    (void)state;
    for (int i = 0; i < AGENDA_CODEC_ERR__COUNT; i++) {
        const char *s = agenda_codec_strerror(i);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s, agenda_codec_strerror(j));
    }
    assert_string_equal(agenda_codec_strerror(-1), "unknown codec error");
    assert_string_equal(agenda_codec_strerror(AGENDA_CODEC_ERR__COUNT),
                        "unknown codec error");
    assert_string_equal(agenda_frame_type_name(AGENDA_FRAME_SNAP_ACK),
                        "SNAP_ACK");
    assert_string_equal(agenda_frame_type_name(0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_check_value_and_bitwise_definition),
        cmocka_unit_test(header_size_is_twelve),
        cmocka_unit_test(append_with_entries_round_trips),
        cmocka_unit_test(every_message_type_round_trips),
        cmocka_unit_test(hello_round_trips_with_longest_names),
        cmocka_unit_test(snap_chunks_and_acks_round_trip),
        cmocka_unit_test(frames_concatenate_into_a_stream),
        cmocka_unit_test(header_errors_are_reported),
        cmocka_unit_test(every_truncation_needs_more),
        cmocka_unit_test(every_flipped_bit_is_detected),
        cmocka_unit_test(malformed_messages_are_rejected),
        cmocka_unit_test(entry_count_is_checked_against_bytes),
        cmocka_unit_test(malformed_hellos_are_rejected),
        cmocka_unit_test(malformed_snapshot_frames_are_rejected),
        cmocka_unit_test(encoders_refuse_what_decoders_reject),
        cmocka_unit_test(every_error_has_a_distinct_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
