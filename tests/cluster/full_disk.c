/*
 * full_disk.c — LD_PRELOAD shim for tests: while the file named by
 * AGENDA_FULL_DISK_FLAG exists, every fdatasync() and fsync() of the
 * process fails with ENOSPC, as a full disk reports it when dirty pages
 * cannot be written back.  LMDB commits through these two calls, so a
 * replica started with this shim behaves as one whose disk filled up,
 * and recovers once the file is removed.  One process per flag file, so
 * a test can fill the disk of one replica of a shard alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim_real.h"

static int full_now(void)
{
    const char *flag = getenv("AGENDA_FULL_DISK_FLAG");
    if (flag == NULL || flag[0] == '\0')
        return 0;
    int saved = errno;
    int full = access(flag, F_OK) == 0;
    errno = saved;
    return full;
}

/* Fail while full, else call the real `name`. */
static int sync_or_full(const char *name, sync_fn *real, int fd)
{
    if (full_now()) {
        errno = ENOSPC;
        return -1;
    }
    return shim_call_real(name, real, fd);
}

int fdatasync(int fd)
{
    static sync_fn real;
    return sync_or_full("fdatasync", &real, fd);
}

int fsync(int fd)
{
    static sync_fn real;
    return sync_or_full("fsync", &real, fd);
}
