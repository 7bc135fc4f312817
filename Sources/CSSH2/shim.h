#ifndef SYNCWRIGHT_CSSH2_SHIM_H
#define SYNCWRIGHT_CSSH2_SHIM_H
#include <libssh2.h>

/* libssh2_session_init is a macro over libssh2_session_init_ex, which Swift cannot import. */
static inline LIBSSH2_SESSION *syncwright_ssh2_session(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}
#endif
