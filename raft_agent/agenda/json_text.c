/*
 * json_text.c — JSON string literals as jansson writes them (json_text.h).
 */
#include "json_text.h"

#include <stdio.h>
#include <string.h>

int agenda_json_text_str(struct agenda_buf *b, const char *s)
{
    if (agenda_buf_append(b, "\"", 1) != 0)
        return -1;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        /* flush the plain run before p */
        if (p > run && agenda_buf_append(b, run, (size_t)(p - run)) != 0)
            return -1;
        if (ch == '\0')
            break;
        char esc[8];
        const char *e = esc;
        switch (ch) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default: snprintf(esc, sizeof(esc), "\\u%04X", ch); break;
        }
        if (agenda_buf_append(b, e, strlen(e)) != 0)
            return -1;
        run = p + 1;
    }
    return agenda_buf_append(b, "\"", 1);
}

int agenda_json_text_key(struct agenda_buf *b, const char *name)
{
    if (agenda_buf_append(b, "\"", 1) != 0 ||
        agenda_buf_append(b, name, strlen(name)) != 0)
        return -1;
    return agenda_buf_append(b, "\":", 2);
}
