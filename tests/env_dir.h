/*
 * env_dir.h — removing the scratch LMDB environment of a test, fuzzer or
 * benchmark: its two files, then the directory (a no-op for what is
 * already gone).  Header-only: each program compiles its own copy.
 */
#ifndef AGENDA_TESTS_ENV_DIR_H
#define AGENDA_TESTS_ENV_DIR_H

#include <stdio.h>
#include <unistd.h>

static inline void test_env_dir_remove(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

#endif /* AGENDA_TESTS_ENV_DIR_H */
