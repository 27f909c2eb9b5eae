/*
 * rmq_native.h -- the C ABI of the rmq_native shared library.
 *
 * This hand-written header is the contract between the Go library
 * (librmq_native / rmq_native.dll) and every caller (the Python package
 * loads it with cffi in ABI mode; the Windows test harness is a C program).
 * The Go code includes it, so the compiler rejects an export whose
 * signature differs; a test also compares it with the header cgo generates.
 *
 * General rules
 * -------------
 * Status codes: every function returns an int32_t status, RMQ_OK (0) on
 *   success, or one of the RMQ_ERR_* codes below. After a non-zero status,
 *   rmq_last_error() on the SAME thread returns a human-readable message
 *   (prefixed "rmq_native:"). No function ever terminates the process: Go
 *   panics are recovered and reported as RMQ_ERR_INTERNAL.
 * Handles: clients are identified by opaque uint64_t handles (never 0).
 *   No pointer to Go memory ever crosses this boundary. A closed or unknown
 *   handle gives RMQ_ERR_CLOSED. close functions are idempotent.
 * Strings and bytes: every input string is passed as (pointer, length) in
 *   UTF-8, need not be NUL-terminated and is only read during the call (the
 *   library copies what it keeps). Pointers are read-only for the library
 *   unless documented as outputs. A NULL pointer with length 0 is an empty
 *   string. A length must be 0 .. 2^31-1 (RMQ_ERR_INVALID_ARGUMENT else).
 * Ownership: memory returned through a uint8_t** output is allocated by the
 *   library and MUST be released with rmq_free() -- never with the caller's
 *   own free() (on Windows the C runtimes differ). Caller-provided structs and
 *   buffers stay owned by the caller.
 * Threads: every function may be called from any thread. Blocking calls
 *   block at most the timeout given, so callers wait in short slices.
 */
#ifndef RMQ_NATIVE_H
#define RMQ_NATIVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------- */
#define RMQ_OK 0
#define RMQ_ERR_INVALID_ARGUMENT 1 /* bad argument: never retried */
#define RMQ_ERR_CLOSED 2           /* handle closed or unknown */
#define RMQ_ERR_TIMEOUT 3          /* the operation did not finish in time */
#define RMQ_ERR_UNREACHABLE 4      /* name server or broker unreachable */
#define RMQ_ERR_BROKER 5           /* the broker answered with an error */
#define RMQ_ERR_INTERNAL 6         /* bug or recovered panic in the library */
#define RMQ_ERR_NO_ROUTE 7         /* the topic has no route (not created?) */
#define RMQ_ERR_STATE 8            /* client could not start / wrong state */
#define RMQ_ERR_AUTH 9             /* credentials refused by the broker (ACL) */
#define RMQ_ERR_FORBIDDEN 10       /* the broker does not take the request now (code 16
                                      "... is forbidden": read-only broker or topic) */
#define RMQ_ERR_REJECTED 11        /* the broker refused the request for good (e.g. code 13,
                                      message illegal): repeating it fails again */
#define RMQ_ERR_SEND_UNKNOWN 12    /* a send's outcome is unknown (written, no answer in
                                      time): the message may be stored; the error names
                                      its "msg_id <id>", and a retry may duplicate it */

/* ---- send status (rmq_send_result.status) ---------------------------- */
#define RMQ_SEND_OK 0
#define RMQ_SEND_FLUSH_DISK_TIMEOUT 1
#define RMQ_SEND_FLUSH_SLAVE_TIMEOUT 2
#define RMQ_SEND_SLAVE_NOT_AVAILABLE 3

/* ---- acknowledgement kinds (rmq_consumer_ack) ------------------------- */
#define RMQ_ACK 0  /* processed: commit it */
#define RMQ_NACK 1 /* redeliver later (reconsume_times + 1) */

/* A message to send. All (pointer, length) pairs follow the string rules.
 * properties: NUL-separated key/value pairs "k1\0v1\0k2\0v2\0" (every key
 * and value NUL-terminated, so properties_len counts the NULs).
 * keys: the message keys separated by single spaces.
 * delay_level: 0 = none, 1..18 = the broker's delay levels.
 * deliver_at_ms: 0 = now, else the delivery time in ms since the epoch
 *   (RocketMQ 5 timer messages); not together with delay_level.
 * sharding_key: messages with the same non-empty key go to the same queue
 *   (ordered sending). */
typedef struct rmq_message {
    const char *topic;
    int64_t topic_len;
    const char *body;
    int64_t body_len;
    const char *tags;
    int64_t tags_len;
    const char *keys;
    int64_t keys_len;
    const char *properties;
    int64_t properties_len;
    const char *sharding_key;
    int64_t sharding_key_len;
    int64_t deliver_at_ms;
    int32_t delay_level;
    int32_t reserved; /* must be 0 */
} rmq_message;

/* The outcome of a successful send; filled by the library, owned by the
 * caller. Every char array is NUL-terminated (truncated if needed). */
typedef struct rmq_send_result {
    int32_t status;          /* RMQ_SEND_* */
    int32_t queue_id;
    int64_t queue_offset;
    char msg_id[64];         /* the client-side unique message id */
    char offset_msg_id[64];  /* the broker-side (offset) message id */
    char broker_name[128];
    char transaction_id[64];
} rmq_send_result;

/* ---- library --------------------------------------------------------- */

/* Writes the library version ("MAJOR.MINOR.PATCH") into buf (NUL-terminated,
 * truncated to cap). Returns RMQ_OK. */
int32_t rmq_version(char *buf, int32_t cap);

/* Copies the last error message of the calling thread into buf
 * (NUL-terminated, truncated to cap) and returns its full length in bytes
 * (without the NUL); 0 if there is none. Call again with a larger buffer
 * when the result is >= cap. The message stays until the next failing call
 * on this thread. This function returns a length, not a status. */
int32_t rmq_last_error(char *buf, int32_t cap);

/* Releases memory the library returned through a uint8_t** output.
 * NULL is accepted. */
void rmq_free(void *p);

/* Writes a JSON object of internal counters ({"handles": n,
 * "producers": n, "consumers": n, "admins": n, "goroutines": n,
 * "consumers_closed": n, "shared_producers": n, "heap_bytes": n,
 * "stack_bytes": n, "procs": n, "gogc": n, "wait_spin_us": n}) to *out
 * (release with rmq_free), its length to *out_len. goroutines counts every
 * goroutine of the process (runtime.NumGoroutine); consumers_closed the
 * consumers closed since the library was loaded; shared_producers the SDK
 * producers that plain producers share (open, or waiting out their grace
 * period); heap_bytes the live Go heap after a garbage collection (the call
 * runs one); stack_bytes the goroutine stacks; procs the Go runtime's
 * GOMAXPROCS (the library raises it while more threads wait in synchronous
 * sends than it has Ps); gogc the garbage collector's GOGC (unless GOGC is
 * in the environment, the library sets it after every collection so that
 * the heap's goal is at least 12 MiB: 300 while the live heap is small, 100
 * at 6 MiB; beyond 12 MiB the goal is the live heap plus 4 MiB, 33 at 12
 * MiB live, back to 100 from 20 MiB); wait_spin_us the bound of the spin
 * of a thread that waits alone for a synchronous send's answer (see
 * rmq_producer_send; RMQ_NATIVE_WAIT_SPIN_US in the environment, 200 unless
 * set). For leak tests and diagnostics. */
int32_t rmq_debug_stats(uint8_t **out, int64_t *out_len);

/* Test hook: panics inside the library; the panic is recovered and the call
 * returns RMQ_ERR_INTERNAL. Proves that a Go panic never kills the caller. */
int32_t rmq_debug_panic(void);

/* Sets the folder (an absolute path) where the library keeps its files:
 * broadcasting consumers' offsets go to <dir>/offsets/<group>/<client id>/.
 * Call it before creating consumers; it never depends on HOME. */
int32_t rmq_set_state_dir(char *dir, int64_t dir_len);

/* ---- logging ---------------------------------------------------------- */

/* Sets the minimum level of the RocketMQ SDK log records the library keeps
 * (Python logging numbers: 10 debug, 20 info, 30 warning, 40 error,
 * 50 critical; > 50 keeps none). Nothing is ever written to stdout/stderr. */
int32_t rmq_set_log_level(int32_t level);

/* Waits up to timeout_ms (0 = do not wait) for log records. On return *out
 * holds *out_count records (release with rmq_free; NULL when 0), each:
 *   int32 level | uint32 len + UTF-8 text      (little-endian)
 * The library keeps at most a few thousand records; older ones are dropped
 * (and a record saying so is produced) when nobody reads them. */
int32_t rmq_log_poll(int32_t timeout_ms, uint8_t **out, int64_t *out_len,
                     int32_t *out_count);

/* ---- producer --------------------------------------------------------- */

/* Creates and starts a producer. config: a JSON object (UTF-8) with keys
 *   "name_server" (string, required, "host:port[;host:port]"),
 *   "group" (string), "instance_name" (string, default unique per producer),
 *   "send_timeout_ms" (int), "retries" (int), "namespace" (string),
 *   "access_key"/"secret_key" (strings), "compress_over" (int bytes: bodies
 *   at least this large are zlib-compressed when that makes them smaller;
 *   default 4096, 0 = never), "compress_level" (int 1..9, default 5),
 *   "max_message_size" (int bytes, default 4 MiB: larger bodies are
 *   rejected before sending).
 * Unknown keys are an RMQ_ERR_INVALID_ARGUMENT. On success *out_handle
 * receives the handle. */
int32_t rmq_producer_new(char *config, int64_t config_len,
                         uint64_t *out_handle);

/* Sends one message synchronously; waits at most timeout_ms (<= 0: the
 * producer's send timeout). Fills *out on success.
 * Sends (also batches and asynchronous sends) are retried by the library
 * up to "retries" times, each attempt with the same message id, and no
 * attempt starts after the deadline. RMQ_ERR_TIMEOUT: not sent (no attempt
 * reached the broker); RMQ_ERR_SEND_UNKNOWN: an attempt was written but not
 * answered in time, so the message may be stored (the error names its
 * msg_id; a new send may duplicate it).
 * The calling thread waits for the answer: in the Go scheduler when other
 * threads wait in synchronous sends too (or did in the last 100 ms);
 * otherwise outside it, spinning for at most twice the recent average wait
 * while that average is at most half of RMQ_NATIVE_WAIT_SPIN_US
 * (environment, µs, 0..10000, default 200; 0: never spin), then sleeping
 * in the kernel. */
int32_t rmq_producer_send(uint64_t producer, rmq_message *msg,
                          int32_t timeout_ms, rmq_send_result *out);

/* Sends count messages of one topic as one batch, in one round trip
 * (no delay, deliver_at or sharding key). On success *out receives the
 * result of the batch (its msg_id is the first message's) and *out_ids
 * (release with rmq_free) every message id, comma-separated. */
int32_t rmq_producer_send_batch(uint64_t producer, rmq_message *msgs,
                                int32_t count, int32_t timeout_ms,
                                rmq_send_result *out, uint8_t **out_ids,
                                int64_t *out_ids_len);

/* Sends one message without waiting for the broker (fire and forget); only
 * validation and connection errors are reported. */
int32_t rmq_producer_send_oneway(uint64_t producer, rmq_message *msg);

/* Starts sending one message in the background and returns at once. The
 * outcome is reported, with the caller's token, by
 * rmq_producer_poll_completions. The send gets timeout_ms (<= 0: the
 * producer's send timeout) and the producer's retries. */
int32_t rmq_producer_send_async(uint64_t producer, rmq_message *msg,
                                int32_t timeout_ms, uint64_t token);

/* Takes up to max_completions finished asynchronous sends, waiting at most
 * timeout_ms for the first. *out (release with rmq_free; NULL when 0) holds
 * *out_count records, each (little-endian):
 *   uint64 token | int32 status (RMQ_OK or RMQ_ERR_*) | int32 queue_id |
 *   int64 queue_offset | int32 send_status | 5 x uint32 len | then the 5
 *   fields' bytes, back to back: msg_id, offset_msg_id, broker_name,
 *   transaction_id, error. */
int32_t rmq_producer_poll_completions(uint64_t producer,
                                      int32_t max_completions,
                                      int32_t timeout_ms, uint8_t **out,
                                      int64_t *out_len, int32_t *out_count);

/* Shuts the producer down. Asynchronous sends still queued (not started)
 * complete with RMQ_ERR_CLOSED (not sent); sends already running are waited
 * for (each at most its timeout) and complete with their real outcome.
 * Outcomes not yet taken stay available to rmq_producer_poll_completions
 * until taken; the handle is released once none is left (the poll then
 * returns RMQ_ERR_CLOSED). Idempotent. Works for transaction producers too. */
int32_t rmq_producer_close(uint64_t producer);

/* ---- transactions -------------------------------------------------------- */

/* Transaction states (rmq_tx_end, rmq_tx_check_reply). */
#define RMQ_TX_COMMIT 0
#define RMQ_TX_ROLLBACK 1
#define RMQ_TX_UNKNOWN 2

/* Creates and starts a transaction producer; config as rmq_producer_new.
 * Close it with rmq_producer_close. */
int32_t rmq_tx_producer_new(char *config, int64_t config_len,
                            uint64_t *out_handle);

/* Sends the half message of a transaction and returns once the broker
 * stored it. *out_tx receives a transaction token and out->msg_id /
 * out->transaction_id are set. The caller then runs its local transaction
 * and MUST call rmq_tx_end with the token (until then the library waits;
 * closing the producer ends waiting transactions as UNKNOWN). */
int32_t rmq_tx_send(uint64_t producer, rmq_message *msg, int32_t timeout_ms,
                    rmq_send_result *out, uint64_t *out_tx);

/* Ends a transaction begun by rmq_tx_send with RMQ_TX_COMMIT,
 * RMQ_TX_ROLLBACK or RMQ_TX_UNKNOWN (the broker will ask later through a
 * check), and fills *out with the half message's full send result. */
int32_t rmq_tx_end(uint64_t producer, uint64_t tx, int32_t state,
                   rmq_send_result *out);

/* Takes up to max_checks pending broker checks of transactions left
 * UNKNOWN, waiting at most timeout_ms for the first. Records in *out
 * (release with rmq_free) are: uint64 check_id, then the message in the
 * layout of rmq_consumer_poll (without its delivery id). Every check must be
 * answered with rmq_tx_check_reply (unanswered checks count as UNKNOWN after
 * 30 s). */
int32_t rmq_tx_poll_checks(uint64_t producer, int32_t max_checks,
                           int32_t timeout_ms, uint8_t **out,
                           int64_t *out_len, int32_t *out_count);

/* Answers a check with a transaction state. Unknown ids are ignored. */
int32_t rmq_tx_check_reply(uint64_t producer, uint64_t check_id,
                           int32_t state);

/* ---- consumer --------------------------------------------------------- */

/* Creates and starts a push consumer whose messages wait in a bounded
 * library-side buffer until rmq_consumer_poll takes them. config: JSON with
 *   "name_server" (required), "group" (required),
 *   "subscriptions": [{"topic": t, "type": "tag"|"sql92",
 *                      "expression": e}, ...] (required, non-empty),
 *   "instance_name", "model" ("clustering"|"broadcasting"),
 *   "from_where" ("last"|"first"|"timestamp"), "timestamp" (yyyyMMddHHmmss),
 *   "max_reconsume_times", "max_inflight" (default 1024: messages waiting
 *   for or handed to the caller and not yet settled, all topics together),
 *   "pull_batch_size", "max_prefetch_mib" (1..1024, default 8: MiB of
 *   message bodies pulled ahead per queue and not yet committed; at most
 *   768 messages per queue either way), "namespace",
 *   "access_key", "secret_key", "orderly" (bool).
 * Every "sql92" subscription is compiled by a master broker first
 * (CHECK_CLIENT_CONFIG): a bad expression, or a broker without SQL92
 * filtering, is an RMQ_ERR_INVALID_ARGUMENT. A topic without a route is an
 * RMQ_ERR_NO_ROUTE. A broadcasting consumer keeps its offsets in
 * <state dir>/offsets/<group>/<client ip>@<instance_name>/offset.json, so its
 * group must be a file name on every platform (none of < > : " / \ | ? *;
 * else RMQ_ERR_INVALID_ARGUMENT); before starting, the library restores the
 * newest intact copy of that file (offset.json, .tmp, .bak) atomically.
 * On success *out_handle receives the handle. */
int32_t rmq_consumer_new(char *config, int64_t config_len,
                         uint64_t *out_handle);

/* Takes up to max_messages messages, waiting at most timeout_ms for the
 * first one (0 = do not wait). RMQ_OK with *out_count == 0 means none
 * arrived in time. *out (release with rmq_free; NULL when 0) holds
 * *out_count records, each (little-endian):
 *   uint64 delivery_id | int32 queue_id | int32 reconsume_times |
 *   int64 queue_offset | int64 born_timestamp_ms | int64 store_timestamp_ms |
 *   8 x uint32 lengths, then the 8 fields' bytes back to back: topic, tags,
 *   keys (space separated), msg_id, offset_msg_id, broker_name, properties
 *   ("k\0v\0..." user properties only), body.
 * Every message taken must later be settled with rmq_consumer_ack.
 * Persistent pull problems, which the SDK only logs, are reported here once
 * they lasted 10 s (checked every 2 s), whenever no message is waiting, and
 * until they clear: RMQ_ERR_NO_ROUTE (a subscribed topic has no route and
 * no broker creates topics automatically) or RMQ_ERR_BROKER (no queue of a
 * subscribed topic is readable, e.g. a write-only broker). */
int32_t rmq_consumer_poll(uint64_t consumer, int32_t max_messages,
                          int32_t timeout_ms, uint8_t **out, int64_t *out_len,
                          int32_t *out_count);

/* Settles count deliveries (ids from rmq_consumer_poll) with kind RMQ_ACK,
 * RMQ_NACK (delay_level 0 = the broker's schedule, 1..18 = that level).
 * Unknown ids (already settled, or handed back when the
 * consumer lost the queue) are skipped; *out_settled tells how many were
 * settled. An ack commits the message. A nack never loses it:
 *  - clustering, concurrent: the library sends it back (CONSUMER_SEND_MSG_BACK
 *    to the broker that stored it, same fields as the Java client) and
 *    commits it only when the broker confirmed; the broker redelivers it from
 *    %RETRY%<group> (or moves it to %DLQ%<group> after max_reconsume_times).
 *  - clustering, orderly: the queue pauses and the message comes back
 *    locally after the delay (delay_level's time, default 1 s); once its
 *    reconsume_times reached max_reconsume_times (-1: never) a nack sends it
 *    to %DLQ%<group> (confirmed by the broker) and the queue moves on.
 *  - broadcasting: it comes back locally after the delay (delay_level's
 *    time, default the broker's schedule: level 3 + reconsume_times) until
 *    its reconsume_times reached max_reconsume_times (-1: 16); the next nack
 *    drops it with a warning on the log (rmq_log_poll); its offset moves on.
 * A send-back that fails (refused by the broker, e.g. read-only, or
 * unreachable) leaves the message unsettled, its offset pinned, and it comes
 * back locally after the delay (level 0: the broker's schedule) with
 * reconsume_times + 1, like the Java client's "consume later"; every failure
 * is logged. A message handed out stays with the caller until settled or
 * until close (no consume timeout sends it back meanwhile). */
int32_t rmq_consumer_ack(uint64_t consumer, uint64_t *delivery_ids,
                         int32_t count, int32_t kind, int32_t delay_level,
                         int32_t *out_settled);

/* Stops the consumer: unsettled messages are handed back for redelivery,
 * offsets of settled ones are committed, the handle is released. It waits
 * at least 200 ms, and until every SDK callback whose messages were settled
 * has returned (at most 5 s); then a clustering consumer sends the offsets
 * of the queues it delivered from and waits for each broker's answer (at
 * most 3 s in all; a failure is logged); then it shuts the SDK consumer
 * down. Idempotent. */
int32_t rmq_consumer_close(uint64_t consumer);

/* ---- admin ------------------------------------------------------------ */

/* Creates an admin client. config: JSON with "name_server" (required),
 * "namespace", "access_key", "secret_key", "timeout_ms". */
int32_t rmq_admin_new(char *config, int64_t config_len, uint64_t *out_handle);

/* Creates (or updates) a topic with `queues` read and write queues on every
 * master broker of the cluster (cluster_len 0 = every cluster). */
int32_t rmq_admin_create_topic(uint64_t admin, char *topic, int64_t topic_len,
                               int32_t queues, char *cluster,
                               int64_t cluster_len);

/* Deletes a topic from every master broker and from the name servers. */
int32_t rmq_admin_delete_topic(uint64_t admin, char *topic, int64_t topic_len);

/* Releases the admin client. Idempotent. */
int32_t rmq_admin_close(uint64_t admin);

/* ---- operations: inspection, lag, offsets, lookup, replay (admin) ------ */
/* All of these speak to the name servers and the master brokers through an
 * admin client (rmq_admin_new); names are given without the namespace (the
 * admin's namespace is added and removed). JSON results are UTF-8 and
 * released with rmq_free. A topic that does not exist gives
 * RMQ_ERR_NO_ROUTE; a group without offsets RMQ_ERR_INVALID_ARGUMENT. */

/* Writes a JSON array of topic names (sorted) to *out. include_system != 0
 * also lists the broker's own topics (TBW102, rmq_sys_*, %RETRY%*, %DLQ%*,
 * cluster and broker names, ...). */
int32_t rmq_admin_list_topics(uint64_t admin, int32_t include_system,
                              uint8_t **out, int64_t *out_len);

/* Writes a JSON array with one object per queue of the topic on every
 * broker: {"broker_name", "queue_id", "min_offset", "max_offset",
 * "last_update_ms"} (the store time of the queue's last message, 0 when
 * none). */
int32_t rmq_admin_topic_stats(uint64_t admin, char *topic, int64_t topic_len,
                              uint8_t **out, int64_t *out_len);

/* Writes a JSON array with, for every queue, {"broker_name", "queue_id",
 * "offset"}: the offset of the first message stored at or after
 * timestamp_ms (ms since the epoch) as the broker's time index finds it. */
int32_t rmq_admin_offsets_at(uint64_t admin, char *topic, int64_t topic_len,
                             int64_t timestamp_ms, uint8_t **out,
                             int64_t *out_len);

/* Writes a JSON array with, for every queue the group has offsets on (of
 * topic; topic_len 0 = every topic of the group except its retry topic),
 * {"topic", "broker_name", "queue_id", "broker_offset" (the queue's end),
 * "consumer_offset" (the group's committed offset), "last_timestamp_ms"}.
 * A group with no offsets (unknown, or never consumed the topic) gives
 * RMQ_ERR_INVALID_ARGUMENT. */
int32_t rmq_admin_consumer_lag(uint64_t admin, char *group, int64_t group_len,
                               char *topic, int64_t topic_len, uint8_t **out,
                               int64_t *out_len);

/* Reset targets of rmq_admin_reset_offset. */
#define RMQ_RESET_FIRST 0 /* each queue's first stored message */
#define RMQ_RESET_LAST 1  /* each queue's end: only new messages */
#define RMQ_RESET_TIME 2  /* first message stored at or after timestamp_ms */

/* Moves the group's offsets of topic on every broker to `to`
 * (RMQ_RESET_*; timestamp_ms is used by RMQ_RESET_TIME) and writes the new
 * offsets as JSON [{"broker_name", "queue_id", "offset"}, ...]. The offsets
 * are committed at the brokers: the group's consumers start there next
 * time. While a consumer of the group is online nothing is changed and
 * RMQ_ERR_STATE is returned (a running consumer would commit its own
 * position over the reset). A group unknown to a broker gives
 * RMQ_ERR_INVALID_ARGUMENT. */
int32_t rmq_admin_reset_offset(uint64_t admin, char *group, int64_t group_len,
                               char *topic, int64_t topic_len, int32_t to,
                               int64_t timestamp_ms, uint8_t **out,
                               int64_t *out_len);

/* Looks messages of topic up: by key (key_len > 0; through the brokers'
 * index) or by message id (id_len > 0; the client-side id of a send
 * result, or the broker-side offset id), exactly one of them. Only
 * messages stored between begin_ms and end_ms (ms since the epoch; end_ms
 * <= 0 = now) are searched, at most limit (1..65536) returned, oldest
 * first. *out holds *out_count records in the layout of rmq_consumer_poll
 * (delivery id 0; nothing to acknowledge). None found: RMQ_OK, count 0. */
int32_t rmq_admin_find_messages(uint64_t admin, char *topic, int64_t topic_len,
                                char *key, int64_t key_len, char *msg_id,
                                int64_t msg_id_len, int64_t begin_ms,
                                int64_t end_ms, int32_t limit, uint8_t **out,
                                int64_t *out_len, int32_t *out_count);

/* Reads up to max_messages (1..1024) messages of one queue (broker_name,
 * queue_id) of topic, from offset on, without committing anything (the
 * request names the group "rmq_native_reader", which the broker may create;
 * with ACL the account needs SUB permission on it). selector "tag" (or
 * empty) or "sql92" with its expression (empty = "*"); messages whose tags
 * do not match are left out. *out holds *out_count records in the layout
 * of rmq_consumer_poll (delivery id 0); *out_next is the offset to read
 * next (past filtered messages; the queue's first offset when `offset` was
 * already deleted). *out_count 0 with *out_next == offset: nothing new. */
int32_t rmq_admin_pull(uint64_t admin, char *topic, int64_t topic_len,
                       char *broker_name, int64_t broker_name_len,
                       int32_t queue_id, int64_t offset, int32_t max_messages,
                       char *selector, int64_t selector_len, char *expression,
                       int64_t expression_len, uint8_t **out, int64_t *out_len,
                       int32_t *out_count, int64_t *out_next);

/* ---- end of operations -------------------------------------------------- */

/* ---- observability and request/reply (issue 16) ------------------------ */

/* Message trace: rmq_producer_new, rmq_tx_producer_new and rmq_consumer_new
 * also accept "trace" (bool: record sends / deliveries in the trace topic the
 * way the Java client does, RocketMQ RIP-6) and "trace_topic" (string,
 * default RMQ_SYS_TRACE_TOPIC, which the broker creates when started with
 * traceTopicEnable=true; another topic must exist). */

/* Sends msg as a request (request/reply) and returns at once; a consumer
 * answers it with rmq_consumer_reply. The reply, or the error (RMQ_ERR_TIMEOUT
 * when none came within timeout_ms; <= 0: the producer's send timeout), is
 * reported with the caller's token by rmq_producer_poll_replies. No delay,
 * delivery time or sharding key. Not on a producer with "trace" on. */
int32_t rmq_producer_request(uint64_t producer, rmq_message *msg,
                             int32_t timeout_ms, uint64_t token);

/* Takes up to max_replies finished requests, waiting at most timeout_ms for
 * the first. *out (release with rmq_free; NULL when 0) holds *out_count
 * records, each (little-endian):
 *   uint64 token | int32 status (RMQ_OK or RMQ_ERR_*) | uint32 len + error
 *   text | when status is RMQ_OK: the reply in the record layout of
 *   rmq_consumer_poll (its delivery id is 0). */
int32_t rmq_producer_poll_replies(uint64_t producer, int32_t max_replies,
                                  int32_t timeout_ms, uint8_t **out,
                                  int64_t *out_len, int32_t *out_count);

/* Sends reply (body, tags, keys, properties; its topic is ignored) as the
 * answer to the request delivered to consumer with delivery_id, through
 * producer: to the request's "<CLUSTER>_REPLY_TOPIC" with its
 * CORRELATION_ID, REPLY_TO_CLIENT and TTL, as the Java client's
 * MessageUtil.createReplyMessage. The delivery must not be settled yet
 * (RMQ_ERR_STATE); a message that is not a request is an
 * RMQ_ERR_INVALID_ARGUMENT. Fills *out on success. */
int32_t rmq_consumer_reply(uint64_t consumer, uint64_t delivery_id,
                           uint64_t producer, rmq_message *reply,
                           int32_t timeout_ms, rmq_send_result *out);

#ifdef __cplusplus
}
#endif

#endif /* RMQ_NATIVE_H */
