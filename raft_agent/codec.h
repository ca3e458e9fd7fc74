/*
 * codec.h — the peer wire format of raft_agent.
 *
 * Everything two agents say to each other travels in frames:
 *
 *   offset size  field
 *        0    2  magic 0xA6E1            (all integers little-endian)
 *        2    1  version, 1
 *        3    1  frame type (enum agenda_frame_type)
 *        4    4  payload length
 *        8    4  CRC-32C of header bytes 0..7 followed by the payload
 *       12    n  payload
 *
 * The checksum covers the type and length as well as the payload, so a
 * corrupted type byte cannot turn a valid payload of one kind into a valid
 * frame of another.  Every field is encoded byte by byte; no struct is ever
 * cast onto wire bytes.
 *
 * Payloads (u8/u16/u32/u64 little-endian, "bool" a u8 that is 0 or 1):
 *
 *   HELLO       u8 len + cluster name, u8 len + shard name, u32 node id
 *   RAFT_MSG    u8 type, u32 from, u32 to, u64 term, u64 index,
 *               u64 log_term, u64 commit, u64 context, bool reject,
 *               u64 reject_hint, u64 hint_term, u64 snapshot index,
 *               u64 snapshot term, u32 n_entries, then n_entries times:
 *               u64 term, u64 index, u8 type, u32 len, len bytes of data
 *   SNAP_CHUNK  u64 snapshot index, u64 term, u64 total size, u64 offset,
 *               u32 CRC-32C of the whole file (meaningful when last),
 *               bool last, then the data up to the end of the payload
 *   SNAP_ACK    u64 snapshot index, u64 next offset, u8 status
 *
 * All input is untrusted: the parser and the decoders check every field and
 * every length against the bytes actually present and never read outside
 * them.  Encoders refuse values that the decoders would reject, so whatever
 * encodes also decodes, to the same value, and the encoding is canonical.
 *
 * The codec is pure: no I/O, no globals, no allocation except by growing the
 * caller's output buffer.
 */
#ifndef AGENDA_CODEC_H
#define AGENDA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "raft.h"

#define AGENDA_FRAME_MAGIC 0xA6E1u
#define AGENDA_FRAME_VERSION 1u
#define AGENDA_FRAME_HEADER_SIZE 12u

/* Default largest payload: a 4 MiB batch of entries or snapshot chunk plus
 * room for the message fields and entry headers around it. */
#define AGENDA_CODEC_DEFAULT_MAX_PAYLOAD ((size_t)4 * 1024 * 1024 + 64 * 1024)

/* Longest cluster or shard name in a HELLO, in bytes. */
#define AGENDA_NAME_MAX 64u

/* Fixed sizes, so callers can plan chunk sizes and bound entry counts. */
#define AGENDA_CODEC_MSG_FIXED_SIZE 86u    /* RAFT_MSG without entries */
#define AGENDA_CODEC_ENTRY_HEADER_SIZE 21u /* per entry, before its data */
#define AGENDA_CODEC_SNAP_CHUNK_FIXED_SIZE 37u /* SNAP_CHUNK without data */
#define AGENDA_CODEC_SNAP_ACK_SIZE 17u

enum agenda_frame_type {
    AGENDA_FRAME_HELLO = 1,
    AGENDA_FRAME_RAFT_MSG = 2,
    AGENDA_FRAME_SNAP_CHUNK = 3,
    AGENDA_FRAME_SNAP_ACK = 4
};

/* Results of the codec.  agenda_codec_strerror() gives a sentence each. */
enum agenda_codec_err {
    AGENDA_CODEC_OK = 0,
    AGENDA_CODEC_NEED_MORE,      /* not an error: the frame is incomplete */
    AGENDA_CODEC_ERR_MAGIC,      /* stream does not start with the magic */
    AGENDA_CODEC_ERR_VERSION,    /* a protocol version we do not speak */
    AGENDA_CODEC_ERR_TYPE,       /* unknown frame type */
    AGENDA_CODEC_ERR_TOO_BIG,    /* payload length above the limit */
    AGENDA_CODEC_ERR_CRC,        /* checksum mismatch: corrupted frame */
    AGENDA_CODEC_ERR_PAYLOAD,    /* payload malformed for its frame type */
    AGENDA_CODEC_ERR_TOO_MANY,   /* more entries than the caller has room */
    AGENDA_CODEC_ERR_INVALID,    /* encoder: value cannot be encoded */
    AGENDA_CODEC_ERR_NOMEM,      /* encoder: output buffer cannot grow */
    AGENDA_CODEC_ERR__COUNT
};

/* A sentence describing err; never NULL, also for out-of-range values. */
const char *agenda_codec_strerror(int err);

/* Name of a frame type ("HELLO", ...) or "unknown". */
const char *agenda_frame_type_name(uint8_t type);

/* A parsed frame: payload points into the parser's input and is valid as
 * long as that input is. */
struct agenda_frame {
    uint8_t type;           /* enum agenda_frame_type */
    uint32_t len;
    const uint8_t *payload; /* len bytes */
};

struct agenda_hello {
    /* NUL-terminated, 1..AGENDA_NAME_MAX printable ASCII characters
     * without spaces (0x21..0x7e), so they can be logged as they are. */
    char cluster[AGENDA_NAME_MAX + 1];
    char shard[AGENDA_NAME_MAX + 1];
    raft_id node_id;                   /* nonzero */
};

struct agenda_snap_chunk {
    raft_index index;     /* the snapshot this chunk belongs to */
    raft_term term;
    uint64_t total_size;  /* size of the whole snapshot file */
    uint64_t offset;      /* where data goes in the file */
    uint32_t file_crc;    /* CRC-32C of the whole file; valid when last */
    bool last;            /* offset + len == total_size */
    uint32_t len;
    const uint8_t *data;  /* len bytes; see the decoder for lifetime */
};

enum agenda_snap_status {
    AGENDA_SNAP_CONTINUE = 0, /* received up to next_offset, send more */
    AGENDA_SNAP_DONE = 1,     /* whole file received and verified */
    AGENDA_SNAP_FAILED = 2    /* failed: restart from next_offset (0) */
};

struct agenda_snap_ack {
    raft_index index;
    uint64_t next_offset;
    uint8_t status; /* enum agenda_snap_status */
};

/* The header size, AGENDA_FRAME_HEADER_SIZE, for callers that prefer a
 * function. */
size_t agenda_frame_header_size(void);

/*
 * Look for one frame at the start of p[0..avail).
 *
 * Returns AGENDA_CODEC_OK and fills *out, with *frame_len set to the number
 * of bytes the frame occupies (header + payload) so the caller can drop
 * them.  Returns AGENDA_CODEC_NEED_MORE when the bytes so far are a valid
 * beginning of a frame; *frame_len is then the total the caller must have
 * before calling again (the header size, or the whole frame once the header
 * is known).  Any other value is an error: the stream is not a valid frame
 * stream and must be abandoned; header errors are reported as soon as the
 * offending byte is present, before the rest arrives.  max_payload bounds
 * the payload length (values above UINT32_MAX act as UINT32_MAX).  Only the
 * frame structure is checked here; the payload is checked by the decoder
 * of its type.  p may be NULL when avail is 0.
 */
int agenda_frame_parse(const uint8_t *p, size_t avail, size_t max_payload,
                       struct agenda_frame *out, size_t *frame_len);

/*
 * Encoders: append one complete frame to out.  On success return
 * AGENDA_CODEC_OK; on failure return AGENDA_CODEC_ERR_INVALID (a value the
 * format cannot carry or the decoder would reject) or AGENDA_CODEC_ERR_NOMEM,
 * and out is left as it was.  Inputs are borrowed for the call.  Encoders do
 * not know the receiver's payload limit: callers compare the frame size
 * against it.
 */
int agenda_codec_encode_hello(struct agenda_buf *out,
                              const struct agenda_hello *h);
/* m must pass agenda_codec_msg_valid() below.  The entries' data is
 * copied into out. */
int agenda_codec_encode_msg(struct agenda_buf *out, const struct raft_msg *m);
int agenda_codec_encode_snap_chunk(struct agenda_buf *out,
                                   const struct agenda_snap_chunk *c);
int agenda_codec_encode_snap_ack(struct agenda_buf *out,
                                 const struct agenda_snap_ack *a);

/* Whether the wire format accepts m: type in range, from and to nonzero,
 * entries only on APPEND, entry types NORMAL or NOOP, entry indexes
 * m->index + 1, + 2, ... without wrapping, and the payload fitting in a
 * u32 length. */
bool agenda_codec_msg_valid(const struct raft_msg *m);

/*
 * Decoders: check a payload of the given frame type and decode it.  They
 * return AGENDA_CODEC_OK or AGENDA_CODEC_ERR_PAYLOAD (and for messages
 * AGENDA_CODEC_ERR_TOO_MANY); on error the outputs are unspecified.
 * A payload with trailing bytes is malformed.
 */
int agenda_codec_decode_hello(const uint8_t *payload, size_t len,
                              struct agenda_hello *h);

/*
 * The entry count of a RAFT_MSG payload, already checked against the bytes
 * present (each entry needs at least AGENDA_CODEC_ENTRY_HEADER_SIZE), so an
 * array of *n entries can be allocated safely: *n <= len / 21.
 * Returns AGENDA_CODEC_OK or AGENDA_CODEC_ERR_PAYLOAD.
 */
int agenda_codec_msg_n_entries(const uint8_t *payload, size_t len,
                               uint32_t *n);

/*
 * Decode a RAFT_MSG payload into *m, using ents[0..max_ents) for its
 * entries (m->entries = ents when there are any, NULL otherwise).  Zero
 * copy: each entry's data points into payload, so m is valid only while
 * payload is.  Returns AGENDA_CODEC_ERR_TOO_MANY when the message has more
 * than max_ents entries (agenda_codec_msg_n_entries() tells how many), and
 * AGENDA_CODEC_ERR_PAYLOAD for anything agenda_codec_msg_valid() would
 * refuse, a bool byte other than 0 or 1, or a length that disagrees with
 * the bytes present.  ents may be NULL when max_ents is 0.
 */
int agenda_codec_decode_msg(const uint8_t *payload, size_t len,
                            struct raft_msg *m, struct raft_entry *ents,
                            size_t max_ents);

/* Decode a SNAP_CHUNK payload; c->data points into payload (valid while it
 * is).  The chunk must fit the file: offset + len <= total_size without
 * overflow; last is 1 exactly when the chunk reaches total_size; a chunk
 * that is not the last carries at least one byte.  The encoder enforces
 * the same rules. */
int agenda_codec_decode_snap_chunk(const uint8_t *payload, size_t len,
                                   struct agenda_snap_chunk *c);

/* Decode a SNAP_ACK payload; status must be one of enum agenda_snap_status. */
int agenda_codec_decode_snap_ack(const uint8_t *payload, size_t len,
                                 struct agenda_snap_ack *a);

#endif /* AGENDA_CODEC_H */
