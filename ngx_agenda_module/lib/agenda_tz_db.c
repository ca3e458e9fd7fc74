/*
 * agenda_tz_db.c — the rules of every time zone name the replicas accept
 * (tz_names.h), read from a zoneinfo directory; see agenda_tz.h.
 *
 * The edge loads them once, when nginx reads its configuration (a reload
 * picks up a new tzdata), so that no request ever waits for a disk.
 * About 600 files of a few KiB each.
 */
#include "agenda_tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz_names.h"
#include "validate.h"

/* Far above any real zone file (a few KiB); bounds what a file can cost. */
#define TZ_FILE_MAX (256 * 1024)

struct agenda_tz_db {
    /* zones[i] is the zone called agenda_tz_names[i], or NULL */
    struct agenda_tz *zones[1];
};

/* The zone in file name below dirfd, or NULL (no such file, unreadable,
 * not a TZif file) with *oom set when memory ran out. */
static struct agenda_tz *load_zone(int dirfd, const char *name, bool *oom)
{
    struct agenda_tz *z = NULL;
    struct stat st;
    uint8_t *data;
    size_t got = 0;
    /* non-blocking: a FIFO in place of a zone file must not hang nginx */
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY |
                                     O_NONBLOCK);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > TZ_FILE_MAX) {
        close(fd);
        return NULL;
    }
    data = malloc((size_t)st.st_size);
    if (data == NULL) {
        *oom = true;
        close(fd);
        return NULL;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got == (size_t)st.st_size &&
        agenda_tz_parse(data, got, &z) == ENOMEM)
        *oom = true;
    free(data);
    return z;
}

int agenda_tz_db_load(const char *dir, struct agenda_tz_db **out,
                      size_t *missing, char *err, size_t errlen)
{
    struct agenda_tz_db *db;
    size_t none = 0;
    bool oom = false;
    int dirfd, rc;

    *out = NULL;
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rc = errno;
        snprintf(err, errlen, "cannot open the zoneinfo directory %s: %s",
                 dir, strerror(rc));
        return rc;
    }
    db = calloc(1, sizeof(*db) +
                       agenda_tz_names_count * sizeof(db->zones[0]));
    if (db == NULL) {
        close(dirfd);
        return ENOMEM;
    }
    for (size_t i = 0; i < agenda_tz_names_count && !oom; i++) {
        db->zones[i] = load_zone(dirfd, agenda_tz_names[i], &oom);
        none += db->zones[i] == NULL;
    }
    close(dirfd);
    if (oom) {
        agenda_tz_db_free(db);
        return ENOMEM;
    }
    if (missing != NULL)
        *missing = none;
    *out = db;
    return 0;
}

void agenda_tz_db_free(struct agenda_tz_db *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < agenda_tz_names_count; i++)
        agenda_tz_free(db->zones[i]);
    free(db);
}

const struct agenda_tz *agenda_tz_db_find(const struct agenda_tz_db *db,
                                          const char *name)
{
    long i = agenda_tz_index(name);

    return db != NULL && i >= 0 ? db->zones[i] : NULL;
}
