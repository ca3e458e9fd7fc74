/* codec.c — peer frame encoding and checked decoding; see codec.h. */
#include "codec.h"

#include <string.h>

#include "crc32c.h"

/* --- little-endian byte access ------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * A bounds-checked cursor over untrusted bytes.  A read past the end sets
 * `bad` and yields zeros instead of touching memory, so decoders can read a
 * whole structure and check `bad` once at the end.
 */
struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *rd_take(struct reader *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

static uint8_t rd_u8(struct reader *r)
{
    const uint8_t *at = rd_take(r, 1);
    return at ? at[0] : 0;
}

static bool rd_bool(struct reader *r)
{
    uint8_t v = rd_u8(r);
    if (v > 1)
        r->bad = true; /* only 0 and 1 keep the encoding canonical */
    return v == 1;
}

static uint32_t rd_u32(struct reader *r)
{
    const uint8_t *at = rd_take(r, 4);
    return at ? get_u32(at) : 0;
}

static uint64_t rd_u64(struct reader *r)
{
    const uint8_t *at = rd_take(r, 8);
    return at ? get_u64(at) : 0;
}

/* A writer over space already reserved: lengths are computed up front, so
 * writes cannot overflow. */
struct writer {
    uint8_t *p;
};

static void wr_u8(struct writer *w, uint8_t v)
{
    *w->p++ = v;
}

static void wr_u32(struct writer *w, uint32_t v)
{
    put_u32(w->p, v);
    w->p += 4;
}

static void wr_u64(struct writer *w, uint64_t v)
{
    put_u64(w->p, v);
    w->p += 8;
}

static void wr_bytes(struct writer *w, const void *src, size_t n)
{
    if (n > 0)
        memcpy(w->p, src, n);
    w->p += n;
}

/* --- errors and names --------------------------------------------------- */

static const char *const codec_errors[AGENDA_CODEC_ERR__COUNT] = {
    [AGENDA_CODEC_OK] = "success",
    [AGENDA_CODEC_NEED_MORE] = "frame incomplete, more bytes needed",
    [AGENDA_CODEC_ERR_MAGIC] =
        "bad frame magic: the peer does not speak the agenda peer protocol",
    [AGENDA_CODEC_ERR_VERSION] =
        "unsupported peer protocol version: upgrade the older agent",
    [AGENDA_CODEC_ERR_TYPE] = "unknown frame type",
    [AGENDA_CODEC_ERR_TOO_BIG] =
        "frame payload larger than the configured maximum",
    [AGENDA_CODEC_ERR_CRC] = "frame checksum mismatch: data corrupted",
    [AGENDA_CODEC_ERR_PAYLOAD] = "malformed frame payload",
    [AGENDA_CODEC_ERR_TOO_MANY] =
        "message carries more entries than the receiver has room for",
    [AGENDA_CODEC_ERR_INVALID] = "value cannot be encoded in a frame",
    [AGENDA_CODEC_ERR_NOMEM] = "out of memory while encoding a frame",
};

const char *agenda_codec_strerror(int err)
{
    if (err < 0 || err >= AGENDA_CODEC_ERR__COUNT)
        return "unknown codec error";
    return codec_errors[err];
}

const char *agenda_frame_type_name(uint8_t type)
{
    switch (type) {
    case AGENDA_FRAME_HELLO:
        return "HELLO";
    case AGENDA_FRAME_RAFT_MSG:
        return "RAFT_MSG";
    case AGENDA_FRAME_SNAP_CHUNK:
        return "SNAP_CHUNK";
    case AGENDA_FRAME_SNAP_ACK:
        return "SNAP_ACK";
    default:
        return "unknown";
    }
}

size_t agenda_frame_header_size(void)
{
    return AGENDA_FRAME_HEADER_SIZE;
}

static bool frame_type_known(uint8_t type)
{
    return type >= AGENDA_FRAME_HELLO && type <= AGENDA_FRAME_SNAP_ACK;
}

/* --- framing ------------------------------------------------------------ */

static uint32_t frame_crc(const uint8_t *header, const uint8_t *payload,
                          size_t len)
{
    uint32_t crc = agenda_crc32c(0, header, 8);
    return agenda_crc32c(crc, payload, len);
}

int agenda_frame_parse(const uint8_t *p, size_t avail, size_t max_payload,
                       struct agenda_frame *out, size_t *frame_len)
{
    *frame_len = AGENDA_FRAME_HEADER_SIZE;

    /* Check each header byte as soon as it is there, so garbage is refused
     * at once rather than after waiting for a "length" worth of bytes. */
    if (avail >= 1 && p[0] != (AGENDA_FRAME_MAGIC & 0xffu))
        return AGENDA_CODEC_ERR_MAGIC;
    if (avail >= 2 && get_u16(p) != AGENDA_FRAME_MAGIC)
        return AGENDA_CODEC_ERR_MAGIC;
    if (avail >= 3 && p[2] != AGENDA_FRAME_VERSION)
        return AGENDA_CODEC_ERR_VERSION;
    if (avail >= 4 && !frame_type_known(p[3]))
        return AGENDA_CODEC_ERR_TYPE;
    if (avail < 8)
        return AGENDA_CODEC_NEED_MORE;

    uint32_t len = get_u32(p + 4);
    if (len > max_payload)
        return AGENDA_CODEC_ERR_TOO_BIG;
    size_t total = AGENDA_FRAME_HEADER_SIZE + (size_t)len;
    if (avail < total) {
        *frame_len = total;
        return AGENDA_CODEC_NEED_MORE;
    }

    const uint8_t *payload = p + AGENDA_FRAME_HEADER_SIZE;
    if (frame_crc(p, payload, len) != get_u32(p + 8))
        return AGENDA_CODEC_ERR_CRC;

    out->type = p[3];
    out->len = len;
    out->payload = payload;
    *frame_len = total;
    return AGENDA_CODEC_OK;
}

/*
 * Reserve room for a frame with a payload of `len` bytes at the end of out
 * and return a writer positioned at the payload, or NULL.  frame_finish()
 * then fills in the header; until it does, out->len is unchanged, so a
 * failed encoder leaves the buffer as it was.
 */
static uint8_t *frame_begin(struct agenda_buf *out, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    if (agenda_buf_reserve(out, AGENDA_FRAME_HEADER_SIZE + len) != 0)
        return NULL;
    return out->data + out->len + AGENDA_FRAME_HEADER_SIZE;
}

static void frame_finish(struct agenda_buf *out, uint8_t type, size_t len)
{
    uint8_t *h = out->data + out->len;
    put_u16(h, AGENDA_FRAME_MAGIC);
    h[2] = AGENDA_FRAME_VERSION;
    h[3] = type;
    put_u32(h + 4, (uint32_t)len);
    put_u32(h + 8, frame_crc(h, h + AGENDA_FRAME_HEADER_SIZE, len));
    out->len += AGENDA_FRAME_HEADER_SIZE + len;
}

/* --- HELLO -------------------------------------------------------------- */

static bool name_valid(const char *s, size_t n)
{
    if (n == 0 || n > AGENDA_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

int agenda_codec_encode_hello(struct agenda_buf *out,
                              const struct agenda_hello *h)
{
    size_t nc = strnlen(h->cluster, sizeof h->cluster);
    size_t ns = strnlen(h->shard, sizeof h->shard);
    if (!name_valid(h->cluster, nc) || !name_valid(h->shard, ns) ||
        h->node_id == RAFT_NONE)
        return AGENDA_CODEC_ERR_INVALID;

    size_t len = 1 + nc + 1 + ns + 4;
    uint8_t *p = frame_begin(out, len);
    if (p == NULL)
        return AGENDA_CODEC_ERR_NOMEM;
    struct writer w = {p};
    wr_u8(&w, (uint8_t)nc);
    wr_bytes(&w, h->cluster, nc);
    wr_u8(&w, (uint8_t)ns);
    wr_bytes(&w, h->shard, ns);
    wr_u32(&w, h->node_id);
    frame_finish(out, AGENDA_FRAME_HELLO, len);
    return AGENDA_CODEC_OK;
}

static void rd_name(struct reader *r, char dst[AGENDA_NAME_MAX + 1])
{
    uint8_t n = rd_u8(r);
    const uint8_t *at = rd_take(r, n);
    if (at == NULL || !name_valid((const char *)at, n)) {
        r->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, at, n);
    dst[n] = '\0';
}

int agenda_codec_decode_hello(const uint8_t *payload, size_t len,
                              struct agenda_hello *h)
{
    struct reader r = {payload, len, false};
    rd_name(&r, h->cluster);
    rd_name(&r, h->shard);
    h->node_id = rd_u32(&r);
    if (r.bad || r.left != 0 || h->node_id == RAFT_NONE)
        return AGENDA_CODEC_ERR_PAYLOAD;
    return AGENDA_CODEC_OK;
}

/* --- RAFT_MSG ----------------------------------------------------------- */

static bool msg_type_valid(uint8_t type)
{
    return type >= RAFT_MSG_APPEND && type < RAFT_MSG__COUNT;
}

static bool entry_type_valid(uint8_t type)
{
    return type == RAFT_ENTRY_NORMAL || type == RAFT_ENTRY_NOOP;
}

/* Entry i of an APPEND must sit right after the previous one, the first
 * right after (index, log_term).  Index 0 does not exist in a Raft log; it
 * is also what the sum gives on wrap-around, so this check refuses both. */
static bool entry_index_valid(const struct raft_msg *m, uint32_t i,
                              raft_index idx)
{
    return idx != 0 && idx == m->index + 1 + (uint64_t)i;
}

static bool msg_header_valid(const struct raft_msg *m)
{
    if (!msg_type_valid(m->type) || m->from == RAFT_NONE ||
        m->to == RAFT_NONE)
        return false;
    return m->n_entries == 0 || m->type == RAFT_MSG_APPEND;
}

bool agenda_codec_msg_valid(const struct raft_msg *m)
{
    if (!msg_header_valid(m))
        return false;
    if (m->n_entries > 0 && m->entries == NULL)
        return false;
    uint64_t size = AGENDA_CODEC_MSG_FIXED_SIZE;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (!entry_type_valid(e->type) || !entry_index_valid(m, i, e->index))
            return false;
        if (e->len > 0 && e->data == NULL)
            return false;
        size += AGENDA_CODEC_ENTRY_HEADER_SIZE + (uint64_t)e->len;
        if (size > UINT32_MAX)
            return false;
    }
    return true;
}

static size_t msg_payload_size(const struct raft_msg *m)
{
    size_t size = AGENDA_CODEC_MSG_FIXED_SIZE;
    for (uint32_t i = 0; i < m->n_entries; i++)
        size += AGENDA_CODEC_ENTRY_HEADER_SIZE + (size_t)m->entries[i].len;
    return size;
}

int agenda_codec_encode_msg(struct agenda_buf *out, const struct raft_msg *m)
{
    if (!agenda_codec_msg_valid(m))
        return AGENDA_CODEC_ERR_INVALID;

    size_t len = msg_payload_size(m);
    uint8_t *p = frame_begin(out, len);
    if (p == NULL)
        return AGENDA_CODEC_ERR_NOMEM;
    struct writer w = {p};
    wr_u8(&w, m->type);
    wr_u32(&w, m->from);
    wr_u32(&w, m->to);
    wr_u64(&w, m->term);
    wr_u64(&w, m->index);
    wr_u64(&w, m->log_term);
    wr_u64(&w, m->commit);
    wr_u64(&w, m->context);
    wr_u8(&w, m->reject ? 1 : 0);
    wr_u64(&w, m->reject_hint);
    wr_u64(&w, m->hint_term);
    wr_u64(&w, m->snapshot.index);
    wr_u64(&w, m->snapshot.term);
    wr_u32(&w, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        wr_u64(&w, e->term);
        wr_u64(&w, e->index);
        wr_u8(&w, e->type);
        wr_u32(&w, e->len);
        wr_bytes(&w, e->data, e->len);
    }
    frame_finish(out, AGENDA_FRAME_RAFT_MSG, len);
    return AGENDA_CODEC_OK;
}

/* Read the fixed part of a message, up to and including n_entries, and
 * check the count against what the remaining bytes could hold. */
static void rd_msg_fixed(struct reader *r, struct raft_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = rd_u8(r);
    m->from = rd_u32(r);
    m->to = rd_u32(r);
    m->term = rd_u64(r);
    m->index = rd_u64(r);
    m->log_term = rd_u64(r);
    m->commit = rd_u64(r);
    m->context = rd_u64(r);
    m->reject = rd_bool(r);
    m->reject_hint = rd_u64(r);
    m->hint_term = rd_u64(r);
    m->snapshot.index = rd_u64(r);
    m->snapshot.term = rd_u64(r);
    m->n_entries = rd_u32(r);
    if (r->bad || !msg_header_valid(m) ||
        m->n_entries > r->left / AGENDA_CODEC_ENTRY_HEADER_SIZE)
        r->bad = true;
}

int agenda_codec_msg_n_entries(const uint8_t *payload, size_t len,
                               uint32_t *n)
{
    struct reader r = {payload, len, false};
    struct raft_msg m;
    rd_msg_fixed(&r, &m);
    if (r.bad)
        return AGENDA_CODEC_ERR_PAYLOAD;
    *n = m.n_entries;
    return AGENDA_CODEC_OK;
}

int agenda_codec_decode_msg(const uint8_t *payload, size_t len,
                            struct raft_msg *m, struct raft_entry *ents,
                            size_t max_ents)
{
    struct reader r = {payload, len, false};
    rd_msg_fixed(&r, m);
    if (r.bad)
        return AGENDA_CODEC_ERR_PAYLOAD;
    if (m->n_entries > max_ents)
        return AGENDA_CODEC_ERR_TOO_MANY;

    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct raft_entry *e = &ents[i];
        e->term = rd_u64(&r);
        e->index = rd_u64(&r);
        e->type = rd_u8(&r);
        e->len = rd_u32(&r);
        e->data = rd_take(&r, e->len);
        if (r.bad || !entry_type_valid(e->type) ||
            !entry_index_valid(m, i, e->index))
            return AGENDA_CODEC_ERR_PAYLOAD;
        if (e->len == 0)
            e->data = NULL; /* nothing to point at; matches a fresh entry */
    }
    if (r.left != 0)
        return AGENDA_CODEC_ERR_PAYLOAD;
    m->entries = m->n_entries > 0 ? ents : NULL;
    return AGENDA_CODEC_OK;
}

/* --- SNAP_CHUNK and SNAP_ACK -------------------------------------------- */

static bool chunk_valid(const struct agenda_snap_chunk *c)
{
    if (c->offset > c->total_size || c->len > c->total_size - c->offset)
        return false;
    bool reaches_end = c->len == c->total_size - c->offset;
    if (c->last != reaches_end)
        return false;
    return c->last || c->len > 0;
}

int agenda_codec_encode_snap_chunk(struct agenda_buf *out,
                                   const struct agenda_snap_chunk *c)
{
    if (!chunk_valid(c) || (c->len > 0 && c->data == NULL))
        return AGENDA_CODEC_ERR_INVALID;
    size_t len = AGENDA_CODEC_SNAP_CHUNK_FIXED_SIZE + (size_t)c->len;
    uint8_t *p = frame_begin(out, len);
    if (p == NULL)
        return len > UINT32_MAX ? AGENDA_CODEC_ERR_INVALID
                                : AGENDA_CODEC_ERR_NOMEM;
    struct writer w = {p};
    wr_u64(&w, c->index);
    wr_u64(&w, c->term);
    wr_u64(&w, c->total_size);
    wr_u64(&w, c->offset);
    wr_u32(&w, c->file_crc);
    wr_u8(&w, c->last ? 1 : 0);
    wr_bytes(&w, c->data, c->len);
    frame_finish(out, AGENDA_FRAME_SNAP_CHUNK, len);
    return AGENDA_CODEC_OK;
}

int agenda_codec_decode_snap_chunk(const uint8_t *payload, size_t len,
                                   struct agenda_snap_chunk *c)
{
    struct reader r = {payload, len, false};
    c->index = rd_u64(&r);
    c->term = rd_u64(&r);
    c->total_size = rd_u64(&r);
    c->offset = rd_u64(&r);
    c->file_crc = rd_u32(&r);
    c->last = rd_bool(&r);
    if (r.bad || r.left > UINT32_MAX)
        return AGENDA_CODEC_ERR_PAYLOAD;
    c->len = (uint32_t)r.left;
    c->data = c->len > 0 ? r.p : NULL;
    if (!chunk_valid(c))
        return AGENDA_CODEC_ERR_PAYLOAD;
    return AGENDA_CODEC_OK;
}

static bool snap_status_valid(uint8_t s)
{
    return s <= AGENDA_SNAP_FAILED;
}

int agenda_codec_encode_snap_ack(struct agenda_buf *out,
                                 const struct agenda_snap_ack *a)
{
    if (!snap_status_valid(a->status))
        return AGENDA_CODEC_ERR_INVALID;
    uint8_t *p = frame_begin(out, AGENDA_CODEC_SNAP_ACK_SIZE);
    if (p == NULL)
        return AGENDA_CODEC_ERR_NOMEM;
    struct writer w = {p};
    wr_u64(&w, a->index);
    wr_u64(&w, a->next_offset);
    wr_u8(&w, a->status);
    frame_finish(out, AGENDA_FRAME_SNAP_ACK, AGENDA_CODEC_SNAP_ACK_SIZE);
    return AGENDA_CODEC_OK;
}

int agenda_codec_decode_snap_ack(const uint8_t *payload, size_t len,
                                 struct agenda_snap_ack *a)
{
    struct reader r = {payload, len, false};
    a->index = rd_u64(&r);
    a->next_offset = rd_u64(&r);
    a->status = rd_u8(&r);
    if (r.bad || r.left != 0 || !snap_status_valid(a->status))
        return AGENDA_CODEC_ERR_PAYLOAD;
    return AGENDA_CODEC_OK;
}
