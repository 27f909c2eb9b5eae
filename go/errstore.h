// Internal helpers of the library (not part of the ABI).
#ifndef RMQ_ERRSTORE_H
#define RMQ_ERRSTORE_H
#include <stddef.h>
#include <stdint.h>
void rmq_errstore_set(const char *msg, size_t len);
int32_t rmq_errstore_get(char *buf, int32_t cap);
#endif
