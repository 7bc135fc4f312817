#ifndef SYNCWRIGHT_CCURL_SHIM_H
#define SYNCWRIGHT_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
// wrapper per kind of argument.
static inline CURLcode sw_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode sw_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode sw_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode sw_curl_set_list(CURL *curl, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(curl, option, value);
}
typedef size_t (*sw_curl_io)(char *buffer, size_t size, size_t count, void *context);
static inline CURLcode sw_curl_set_function(CURL *curl, CURLoption option, sw_curl_io value) {
    return curl_easy_setopt(curl, option, value);
}
typedef int (*sw_curl_debug)(CURL *curl, curl_infotype type, char *data, size_t size, void *context);
static inline CURLcode sw_curl_set_debug(CURL *curl, sw_curl_debug value) {
    return curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, value);
}
static inline CURLcode sw_curl_response_code(CURL *curl, long *code) {
    return curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
}
#endif
