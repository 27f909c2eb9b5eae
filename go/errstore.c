// Thread-local storage for the last error message (see rmq_last_error in
// rmq_native.h). Exported Go functions run on the calling C thread, so the
// message set during a call is read back by the same thread.
//
// On Windows the slot comes from the system's fiber-local storage API
// (FlsAlloc, kernel32), not from the compiler's __thread: MinGW-w64 with the
// posix thread model implements __thread with emutls over winpthreads, and
// the DLL would then import libwinpthread-1.dll, which no Windows machine
// has. FlsAlloc's destructor frees a thread's message when the thread ends.
// Elsewhere __thread is native TLS in every supported libc.
#include <stdlib.h>
#include <string.h>
#include "errstore.h"

typedef struct rmq_err {
    char *msg;
    size_t len;
    size_t cap;
} rmq_err;

#ifdef _WIN32
#include <windows.h>

static DWORD rmq_err_slot = FLS_OUT_OF_INDEXES;
static INIT_ONCE rmq_err_once = INIT_ONCE_STATIC_INIT;

static void WINAPI rmq_err_free(void *p) {
    rmq_err *e = (rmq_err *)p;
    if (e != NULL) {
        free(e->msg);
        free(e);
    }
}

static BOOL CALLBACK rmq_err_init(PINIT_ONCE once, void *param, void **ctx) {
    (void)once; (void)param; (void)ctx;
    rmq_err_slot = FlsAlloc(rmq_err_free);
    return TRUE;
}

// The calling thread's record; created when create is set (NULL on failure).
static rmq_err *rmq_err_get(int create) {
    InitOnceExecuteOnce(&rmq_err_once, rmq_err_init, NULL, NULL);
    if (rmq_err_slot == FLS_OUT_OF_INDEXES) return NULL;
    rmq_err *e = (rmq_err *)FlsGetValue(rmq_err_slot);
    if (e == NULL && create) {
        e = (rmq_err *)calloc(1, sizeof *e);
        if (e != NULL && !FlsSetValue(rmq_err_slot, e)) {
            free(e);
            e = NULL;
        }
    }
    return e;
}
#else
static __thread rmq_err rmq_err_tls = {NULL, 0, 0};

static rmq_err *rmq_err_get(int create) {
    (void)create;
    return &rmq_err_tls;
}
#endif

void rmq_errstore_set(const char *msg, size_t len) {
    rmq_err *e = rmq_err_get(1);
    if (e == NULL) return;
    if (len + 1 > e->cap) {
        char *p = (char *)realloc(e->msg, len + 1);
        if (p == NULL) { e->len = 0; return; }
        e->msg = p;
        e->cap = len + 1;
    }
    memcpy(e->msg, msg, len);
    e->msg[len] = 0;
    e->len = len;
}

int32_t rmq_errstore_get(char *buf, int32_t cap) {
    rmq_err *e = rmq_err_get(0);
    size_t len = e != NULL ? e->len : 0;
    if (buf != NULL && cap > 0) {
        size_t n = len < (size_t)(cap - 1) ? len : (size_t)(cap - 1);
        if (n > 0) memcpy(buf, e->msg, n);
        buf[n] = 0;
    }
    return (int32_t)len;
}
