/*
 * env_dir.h — removing the scratch LMDB environment of a test, fuzzer or
 * benchmark: its two files, then the directory (a no-op for what is
 * already gone); or a scratch directory with whatever it holds.
 * Header-only: each program compiles its own copy.
 */
#ifndef AGENDA_TESTS_ENV_DIR_H
#define AGENDA_TESTS_ENV_DIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
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

static inline int test_dir_remove_one(const char *p, const struct stat *sb,
                                      int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* dir and everything under it ("" : nothing). */
static inline void test_dir_remove_all(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, test_dir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* AGENDA_TESTS_ENV_DIR_H */
