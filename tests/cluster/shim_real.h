/*
 * shim_real.h — for the LD_PRELOAD shims of the tests: the real libc
 * function a shim stands in front of.
 */
#ifndef AGENDA_SHIM_REAL_H
#define AGENDA_SHIM_REAL_H

#include <dlfcn.h>
#include <errno.h>

typedef int (*sync_fn)(int);

/* Calls the next definition of `name` (looked up once in *real). */
static inline int shim_call_real(const char *name, sync_fn *real, int fd)
{
    if (*real == NULL) {
        void *sym = dlsym(RTLD_NEXT, name);
        /* POSIX's way of turning dlsym's object pointer into a function */
        *(void **)real = sym;
        if (*real == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    return (*real)(fd);
}

#endif
