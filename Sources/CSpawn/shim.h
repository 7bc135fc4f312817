#ifndef SYNCWRIGHT_CSPAWN_SHIM_H
#define SYNCWRIGHT_CSPAWN_SHIM_H
#include <spawn.h>
#include <stdlib.h>

// glibc (2.34 and later) has these, but declares them only for _GNU_SOURCE, which Swift's
// Glibc module is not built with. A child that inherits nothing but what it is given needs all
// three: pipes and a temporary file that are close-on-exec from the start (so no child spawned
// meanwhile by another thread gets them), and "close every other descriptor" as a spawn action.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int mkostemp(char *name_template, int flags);
extern int pipe2(int fds[2], int flags);

static inline int sw_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
static inline int sw_mkostemp(char *name_template, int flags) {
    return mkostemp(name_template, flags);
}
static inline int sw_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}
#endif
