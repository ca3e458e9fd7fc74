/* command.c — the command envelope; see command.h. */
#include "command.h"

#include <string.h>

bool agenda_request_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > AGENDA_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int agenda_command_encode(struct agenda_buf *out, const char *request_id,
                          uint64_t time_ms, const void *payload, size_t len)
{
    size_t idlen = strlen(request_id);
    if (!agenda_request_id_valid(request_id, idlen))
        return -1;
    if (agenda_buf_reserve(out, 2 + idlen + 8 + len) != 0)
        return -1;
    uint8_t hdr[2] = {AGENDA_COMMAND_VERSION, (uint8_t)idlen};
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(time_ms >> (8 * i));
    /* Cannot fail after the reserve above. */
    agenda_buf_append(out, hdr, 2);
    agenda_buf_append(out, request_id, idlen);
    agenda_buf_append(out, t, 8);
    agenda_buf_append(out, payload, len);
    return 0;
}

int agenda_command_decode(const uint8_t *p, size_t len,
                          struct agenda_command *cmd)
{
    if (len >= 1 && p[0] > AGENDA_COMMAND_VERSION)
        return AGENDA_COMMAND_NEWER;
    if (len < 2 || p[0] == 0)
        return -1;
    size_t idlen = p[1];
    if (len < 2 + idlen + 8 ||
        !agenda_request_id_valid((const char *)p + 2, idlen))
        return -1;
    cmd->version = p[0];
    memcpy(cmd->request_id, p + 2, idlen);
    cmd->request_id[idlen] = '\0';
    cmd->request_id_len = idlen;
    const uint8_t *t = p + 2 + idlen;
    cmd->time_ms = 0;
    for (int i = 0; i < 8; i++)
        cmd->time_ms |= (uint64_t)t[i] << (8 * i);
    cmd->payload = t + 8;
    cmd->payload_len = len - (2 + idlen + 8);
    return 0;
}
