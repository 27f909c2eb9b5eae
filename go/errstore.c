// Thread-local storage for the last error message (see rmq_last_error in
// rmq_native.h). Exported Go functions run on the calling C thread, so the
// message set during a call is read back by the same thread.
#include <stdlib.h>
#include <string.h>
#include "errstore.h"

static __thread char *rmq_err_msg = NULL;
static __thread size_t rmq_err_len = 0;
static __thread size_t rmq_err_cap = 0;

void rmq_errstore_set(const char *msg, size_t len) {
    if (len + 1 > rmq_err_cap) {
        char *p = (char *)realloc(rmq_err_msg, len + 1);
        if (p == NULL) { rmq_err_len = 0; return; }
        rmq_err_msg = p;
        rmq_err_cap = len + 1;
    }
    memcpy(rmq_err_msg, msg, len);
    rmq_err_msg[len] = 0;
    rmq_err_len = len;
}

int32_t rmq_errstore_get(char *buf, int32_t cap) {
    if (buf != NULL && cap > 0) {
        size_t n = rmq_err_len < (size_t)(cap - 1) ? rmq_err_len : (size_t)(cap - 1);
        if (n > 0) memcpy(buf, rmq_err_msg, n);
        buf[n] = 0;
    }
    return (int32_t)rmq_err_len;
}
