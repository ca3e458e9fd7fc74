/*
 * fuzz_shard_identity.c — libFuzzer target for the identity a leader puts
 * in its no-op (raft_agent/shard_identity.h): peer data, untrusted.
 *
 * Arbitrary bytes are compared with an events shard's identity.  The
 * comparison is symmetric (what is the same or different one way is so
 * the other way), and a difference comes with a NUL-terminated
 * description.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct agenda_buf mine;
    if (mine.len == 0 &&
        agenda_shard_identity_encode(&mine, "events", "", "n") != 0)
        abort();
    char why[64];
    memset(why, 'x', sizeof(why));
    enum agenda_identity_match m = agenda_shard_identity_compare(
        data, size, mine.data, mine.len, why, sizeof(why));
    switch (m) {
    case AGENDA_IDENTITY_SAME:
    case AGENDA_IDENTITY_DIFFERENT:
        if (agenda_shard_identity_compare(mine.data, mine.len, data, size,
                                          NULL, 0) != m)
            abort();
        if (m == AGENDA_IDENTITY_DIFFERENT &&
            memchr(why, '\0', sizeof(why)) == NULL)
            abort();
        break;
    case AGENDA_IDENTITY_UNKNOWN:
        break;
    default:
        abort();
    }
    return 0;
}
