/*
 * slow_sync.c — LD_PRELOAD shim for cluster tests: every fdatasync() and
 * fsync() of the process first sleeps AGENDA_SLOW_SYNC_MS milliseconds
 * (unset or 0: no delay), so that a test can tell apart what waits for a
 * sync from what does not by whole multiples of that delay.  LMDB syncs
 * through these two calls (mdb_env_sync, the commit of a transaction).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "shim_real.h"

static void sleep_first(void)
{
    const char *s = getenv("AGENDA_SLOW_SYNC_MS");
    long ms = s != NULL ? strtol(s, NULL, 10) : 0;
    if (ms <= 0 || ms > 60000)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    int saved = errno;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    errno = saved;
}

/* Sleep, then call the real function `name`. */
static int slow(const char *name, sync_fn *real, int fd)
{
    sleep_first();
    return shim_call_real(name, real, fd);
}

int fdatasync(int fd)
{
    static sync_fn real;
    return slow("fdatasync", &real, fd);
}

int fsync(int fd)
{
    static sync_fn real;
    return slow("fsync", &real, fd);
}
