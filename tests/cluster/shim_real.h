/*
 * shim_real.h — for the LD_PRELOAD shims of the tests: the real library
 * function a shim stands in front of.
 */
#ifndef AGENDA_SHIM_REAL_H
#define AGENDA_SHIM_REAL_H

#include <dlfcn.h>
#include <errno.h>

/* The next definition of `name`, looked up once into *cache (the pointer
 * to the caller's static function pointer); NULL if there is none. */
static inline void *shim_real(const char *name, void *cache)
{
    void **slot = cache;
    if (*slot == NULL)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}

typedef int (*sync_fn)(int);

/* Calls the next definition of `name` (looked up once in *real). */
static inline int shim_call_real(const char *name, sync_fn *real, int fd)
{
    if (shim_real(name, real) == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return (*real)(fd);
}

#endif
