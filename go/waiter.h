// Internal helpers of the library (not part of the ABI): a one-shot event
// that a thread waits for outside the Go scheduler (waiter.c).
#ifndef RMQ_WAITER_H
#define RMQ_WAITER_H
#include <stdint.h>
int32_t rmq_waiter_wait(int32_t *word, int32_t timeout_ms);
void rmq_waiter_wake(int32_t *word);
int32_t rmq_waiter_spin_max_us(void);
#endif
