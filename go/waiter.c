// A one-shot event for a synchronous send's answer (send.go): the calling
// thread waits for a 32-bit word to become nonzero and the goroutine that
// gets the answer sets the word and wakes it. Waiting here, outside the Go
// scheduler, the answer reaches the thread without a goroutine locked to it
// being readied and its P handed over (benchmarks/PROFILE.md 6.20).
//
// The thread spins first when recent answers came fast: a broker on this
// host or a near one answers in well under a scheduler wake-up's worth of
// time more than the spin costs, and a thread that sleeps adds one more
// wake-up in series to every send. It spins while the running average of
// the waits is at most half of RMQ_NATIVE_WAIT_SPIN_US (default 200 µs;
// 0: never spin), for at most twice that average, then sleeps in the kernel
// (futex on Linux, WaitOnAddress on Windows). Only a thread that waits
// alone spins: threads that send at the same time keep the CPUs busy
// anyway, and a spinning one would take a CPU from the others (sends from
// 8 threads on 2 cores lost an eighth of their rate when one of them spun).
#include <stdlib.h>
#include "waiter.h"

#if defined(__x86_64__) || defined(__i386__)
#define RMQ_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define RMQ_PAUSE() __asm__ __volatile__("yield")
#else
#define RMQ_PAUSE() ((void)0)
#endif

#ifdef _WIN32
#include <windows.h>

// WaitOnAddress and WakeByAddressAll (Windows 8 and later) are looked up
// when first needed rather than imported: the DLL then imports nothing
// beyond kernel32 and the C runtime, and the toolchains need no import
// library for them. Without them the wait polls every millisecond.
typedef BOOL(WINAPI *rmq_wait_on_address_fn)(volatile VOID *, PVOID, SIZE_T, DWORD);
typedef VOID(WINAPI *rmq_wake_by_address_fn)(PVOID);
static rmq_wait_on_address_fn rmq_wait_on_address;
static rmq_wake_by_address_fn rmq_wake_by_address_all;
static INIT_ONCE rmq_synch_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK rmq_synch_init(PINIT_ONCE once, void *param, void **ctx) {
    (void)once; (void)param; (void)ctx;
    HMODULE m = LoadLibraryW(L"api-ms-win-core-synch-l1-2-0.dll");
    if (m != NULL) {
        rmq_wait_on_address_fn wait = (rmq_wait_on_address_fn)(void (*)(void))GetProcAddress(m, "WaitOnAddress");
        rmq_wake_by_address_fn wake = (rmq_wake_by_address_fn)(void (*)(void))GetProcAddress(m, "WakeByAddressAll");
        if (wait != NULL && wake != NULL) {
            rmq_wait_on_address = wait;
            rmq_wake_by_address_all = wake;
        }
    }
    return TRUE;
}

static void rmq_sleep(int32_t *word, int32_t ms) {
    InitOnceExecuteOnce(&rmq_synch_once, rmq_synch_init, NULL, NULL);
    if (rmq_wait_on_address != NULL) {
        int32_t zero = 0;
        rmq_wait_on_address(word, &zero, sizeof zero, (DWORD)ms);
    } else {
        Sleep(1);
    }
}

static void rmq_wake_all(int32_t *word) {
    InitOnceExecuteOnce(&rmq_synch_once, rmq_synch_init, NULL, NULL);
    if (rmq_wake_by_address_all != NULL) rmq_wake_by_address_all(word);
}

static int64_t rmq_now_us(void) {
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (int64_t)(now.QuadPart / freq.QuadPart * 1000000 + now.QuadPart % freq.QuadPart * 1000000 / freq.QuadPart);
}

#else
#include <time.h>

static int64_t rmq_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static void rmq_sleep(int32_t *word, int32_t ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
}

static void rmq_wake_all(int32_t *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0); }
#else
static void rmq_sleep(int32_t *word, int32_t ms) {
    (void)word; (void)ms;
    struct timespec ts = {0, 50000}; // no address wait here: poll
    nanosleep(&ts, NULL);
}

static void rmq_wake_all(int32_t *word) { (void)word; }
#endif
#endif

static int32_t rmq_load(int32_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

// The spin's bound (µs), read once: -1 until then.
static int32_t rmq_spin_max_us = -1;
// Threads waiting now, and the running average of the waits (µs).
static int32_t rmq_waiters;
static int64_t rmq_wait_avg_us;

// rmq_waiter_spin_max_us returns the spin's bound in µs, read from
// RMQ_NATIVE_WAIT_SPIN_US on the first call: a whole number, clamped to
// 0..10000; unset or anything else, 200.
int32_t rmq_waiter_spin_max_us(void) {
    int32_t max = __atomic_load_n(&rmq_spin_max_us, __ATOMIC_ACQUIRE);
    if (max >= 0) return max;
    const char *e = getenv("RMQ_NATIVE_WAIT_SPIN_US");
    max = 200;
    if (e != NULL && *e != 0) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0) max = v < 0 ? 0 : v > 10000 ? 10000 : (int32_t)v;
    }
    __atomic_store_n(&rmq_wait_avg_us, (int64_t)max / 2, __ATOMIC_RELAXED);
    __atomic_store_n(&rmq_spin_max_us, max, __ATOMIC_RELEASE);
    return max;
}

// rmq_spin spins until *word is nonzero (returns 1) or until (returns 0).
static int rmq_spin(int32_t *word, int64_t until) {
    do {
        for (int i = 0; i < 64; i++) {
            if (rmq_load(word) != 0) return 1;
            RMQ_PAUSE();
        }
    } while (rmq_now_us() < until);
    return 0;
}

// rmq_waiter_wait waits until *word is nonzero or timeout_ms milliseconds
// have passed, and returns *word (0: the time ran out).
int32_t rmq_waiter_wait(int32_t *word, int32_t timeout_ms) {
    int32_t spin_max = rmq_waiter_spin_max_us();
    int64_t start = rmq_now_us();
    int64_t avg = __atomic_load_n(&rmq_wait_avg_us, __ATOMIC_RELAXED);
    int done = rmq_load(word) != 0;
    int alone = __atomic_add_fetch(&rmq_waiters, 1, __ATOMIC_ACQ_REL) == 1;
    if (!done && alone && avg * 2 <= spin_max) {
        done = rmq_spin(word, start + avg * 2);
    }
    int64_t deadline = start + (int64_t)timeout_ms * 1000;
    while (!done) {
        int64_t left = deadline - rmq_now_us();
        if (left <= 0) break;
        rmq_sleep(word, (int32_t)((left + 999) / 1000));
        done = rmq_load(word) != 0;
    }
    __atomic_sub_fetch(&rmq_waiters, 1, __ATOMIC_ACQ_REL);
    if (!done) return 0;
    int64_t waited = rmq_now_us() - start;
    __atomic_store_n(&rmq_wait_avg_us, avg + (waited - avg) / 8, __ATOMIC_RELAXED);
    return rmq_load(word);
}

// rmq_waiter_wake sets *word to 1 and wakes the thread waiting for it.
void rmq_waiter_wake(int32_t *word) {
    __atomic_store_n(word, 1, __ATOMIC_RELEASE);
    rmq_wake_all(word);
}
