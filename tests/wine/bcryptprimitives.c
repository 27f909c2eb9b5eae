/*
 * bcryptprimitives.c -- a stand-in for Windows' bcryptprimitives.dll, for
 * running Go programs under Wine 8 only (never shipped).
 *
 * The Go runtime (1.22 and newer) takes its random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8 does not provide, so every Go binary
 * aborts at start. This DLL exports ProcessPrng and fills the buffer with
 * RtlGenRandom (exported by advapi32.dll as SystemFunction036), which Wine
 * implements. Build:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *       bcryptprimitives.c bcryptprimitives.def
 */
#include <windows.h>

typedef BOOLEAN(WINAPI *rtl_gen_random_fn)(PVOID buffer, ULONG length);

static rtl_gen_random_fn rtl_gen_random(void) {
    static rtl_gen_random_fn fn = NULL;
    if (fn == NULL) {
        HMODULE advapi = LoadLibraryA("advapi32.dll");
        if (advapi != NULL) {
            fn = (rtl_gen_random_fn)(void *)GetProcAddress(advapi, "SystemFunction036");
        }
    }
    return fn;
}

/* Fills data[0..size) with cryptographically random bytes. Windows'
 * ProcessPrng always returns TRUE; this one returns FALSE if RtlGenRandom is
 * missing or fails, which Go treats as fatal. RtlGenRandom takes a ULONG
 * length, so large requests are served in chunks. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size) {
    rtl_gen_random_fn fn = rtl_gen_random();
    if (fn == NULL) {
        return FALSE;
    }
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!fn(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
