#ifndef SYNCWRIGHT_CGIT2_SHIM_H
#define SYNCWRIGHT_CGIT2_SHIM_H
#include <git2.h>
#include <git2/sys/transport.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option we set. */
static inline int syncwright_git_set_cache_max_size(size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}
/* Trusted CAs for HTTPS remotes (a PEM file); process-wide in libgit2. */
static inline int syncwright_git_set_ssl_cert_file(const char *file) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, NULL);
}
#endif
