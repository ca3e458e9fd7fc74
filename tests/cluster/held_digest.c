/*
 * held_digest.c — LD_PRELOAD shim for cluster tests: while the file named
 * by AGENDA_HOLD_DIGEST exists, a thread other than the process's first
 * one that finishes a digest (EVP_DigestFinal_ex) waits, having created
 * "<that file>.held" to say so.  The agent hashes off its event loop only
 * in /digest's thread (node_digest.c), so a test can hold a digest in
 * progress for as long as it likes and look at the replica meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "shim_real.h"

typedef int (*final_fn)(EVP_MD_CTX *, unsigned char *, unsigned int *);

static void hold(void)
{
    const char *flag = getenv("AGENDA_HOLD_DIGEST");
    if (flag == NULL || gettid() == getpid() || access(flag, F_OK) != 0)
        return;
    char held[4096];
    snprintf(held, sizeof(held), "%s.held", flag);
    int fd = open(held, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    struct timespec ts = {0, 10 * 1000000L};
    while (access(flag, F_OK) == 0)
        nanosleep(&ts, NULL);
}

int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)
{
    static final_fn real;
    int saved = errno;
    hold();
    errno = saved;
    if (shim_real("EVP_DigestFinal_ex", &real) == NULL)
        return 0;
    return real(ctx, md, s);
}
