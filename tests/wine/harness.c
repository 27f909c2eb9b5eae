/*
 * harness.c -- drives rmq_native-windows-amd64.dll through its C ABI
 * (go/rmq_native.h) against a real broker, the way the Python layer does
 * (the same functions, in the same order, with the same buffers).
 * Built with mingw-w64 and run under Wine by tests/test_wine.py:
 *
 *   harness.exe <dll path> <name server host:port> <scenario> <topic> <group> [state dir]
 *
 * Scenarios: roundtrip, async, batch, nack, orderly, broadcast1 and
 * broadcast2 (two processes: offsets reloaded from the state dir), tx,
 * unreachable, close (under traffic), ctrlc. Arguments are read as Unicode
 * (paths may be non-ASCII) and the DLL is loaded with LoadLibraryW, as
 * cffi's dlopen does for a str path; every function is looked up with
 * GetProcAddress (typed from the header's own declarations). Every scenario
 * starts like _ffi._load: rmq_version, rmq_set_state_dir (default
 * %LOCALAPPDATA%\rmq_native), rmq_set_log_level.
 *
 * roundtrip: error reporting on bad calls (rmq_last_error),
 * a recovered panic, rmq_admin_new + rmq_admin_create_topic, rmq_producer_new +
 * rmq_producer_send of 50 messages (tags, keys, properties, binary and
 * compressed bodies), rmq_consumer_new + rmq_consumer_poll (records decoded
 * per the header) + rmq_consumer_ack, then the same with a broadcasting
 * consumer (whose offsets the library keeps in the state dir), rmq_debug_stats, closes (twice:
 * idempotent), rmq_free. Exit status 0 only if every message sent came back
 * intact; 1 on a failed check, 2 when the DLL cannot be loaded.
 */
#include <windows.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmq_native.h"

#define API(X)                                                                 \
    X(rmq_version) X(rmq_last_error) X(rmq_free) X(rmq_debug_stats)            \
    X(rmq_debug_panic) X(rmq_set_state_dir) X(rmq_set_log_level) X(rmq_log_poll) X(rmq_admin_new)   \
    X(rmq_admin_create_topic) X(rmq_admin_delete_topic) X(rmq_admin_close)     \
    X(rmq_producer_new) X(rmq_producer_send) X(rmq_producer_close)             \
    X(rmq_consumer_new) X(rmq_consumer_poll) X(rmq_consumer_ack)               \
    X(rmq_consumer_close) X(rmq_producer_send_batch) X(rmq_producer_send_async)  \
    X(rmq_producer_poll_completions) X(rmq_tx_producer_new) X(rmq_tx_send)     \
    X(rmq_tx_end) X(rmq_tx_poll_checks) X(rmq_tx_check_reply)

#define DECLARE(f) static __typeof__(&f) p_##f;
API(DECLARE)

#define MAX_MESSAGES 1000

typedef struct sent_message {
    char *body;
    int64_t body_len;
    char tags[32];
    char keys[64];
    char props[128];
    int64_t props_len;
    int received; /* times it came back */
} sent_message;

static sent_message sent[MAX_MESSAGES];
static int failures = 0;
static DWORD started;

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("harness [%5.1fs] ", (GetTickCount() - started) / 1000.0);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static void dump_logs(void) {
    uint8_t *out = NULL;
    int64_t len = 0;
    int32_t count = 0;
    if (p_rmq_log_poll(0, &out, &len, &count) != RMQ_OK) return;
    const uint8_t *p = out, *end = out + len;
    for (int32_t i = 0; i < count && p + 8 <= end; i++) {
        int32_t level;
        uint32_t n;
        memcpy(&level, p, 4);
        memcpy(&n, p + 4, 4);
        p += 8;
        if (p + n > end) break;
        printf("  sdk log %d: %.*s\n", level, (int)n, (const char *)p);
        p += n;
    }
    p_rmq_free(out);
}

static void fail(const char *what, int32_t rc) {
    char buf[1024];
    p_rmq_last_error(buf, sizeof buf);
    say("FAIL %s: status %d: %s", what, rc, buf);
    failures++;
}

static void check(int ok, const char *what) {
    if (!ok) {
        say("FAIL %s", what);
        failures++;
    }
}

static int plain_name(const char *s) {
    if (*s == 0) return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '%'))
            return 0;
    }
    return 1;
}

/* ---- decoding the rmq_consumer_poll records (little-endian) ------------ */

typedef struct reader {
    const uint8_t *p, *end;
    int bad;
} reader;

static uint64_t rd(reader *r, int size) {
    uint64_t v = 0;
    if (r->p + size > r->end) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < size; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += size;
    return v;
}

typedef struct field {
    const char *data;
    uint32_t len;
} field;

static field rd_data(reader *r, uint32_t len) {
    field f = {NULL, 0};
    if (r->bad || r->p + len > r->end) {
        r->bad = 1;
        return f;
    }
    f.data = (const char *)r->p;
    f.len = len;
    r->p += len;
    return f;
}

static int field_is(field f, const char *want, int64_t want_len) {
    return f.len == (uint64_t)want_len && (want_len == 0 || memcmp(f.data, want, (size_t)want_len) == 0);
}

/* Whether two "k\0v\0..." property lists hold the same pairs, in any order
 * (the library keeps properties in a map). */
static int same_properties(field got, const char *want, int64_t want_len) {
    if (got.len != (uint64_t)want_len) return 0;
    int pairs = 0;
    for (const char *w = want; w < want + want_len; pairs++) {
        const char *k = w, *v = k + strlen(k) + 1;
        size_t kl = strlen(k) + 1, vl = strlen(v) + 1;
        int found = 0;
        for (const char *g = got.data; g < got.data + got.len;) {
            const char *gk = g, *ge = got.data + got.len;
            const char *gv = memchr(gk, 0, (size_t)(ge - gk));
            if (gv == NULL) return 0;
            gv++;
            const char *gn = memchr(gv, 0, (size_t)(ge - gv));
            if (gn == NULL) return 0;
            gn++;
            if ((size_t)(gv - gk) == kl && memcmp(gk, k, kl) == 0 && (size_t)(gn - gv) == vl && memcmp(gv, v, vl) == 0)
                found = 1;
            g = gn;
        }
        if (!found) return 0;
        w = v + vl;
    }
    return pairs > 0;
}

/* The message of `f` (a body), or -1. Bodies are unique. */
static int find_sent(field body, int count) {
    for (int i = 0; i < count; i++)
        if (field_is(body, sent[i].body, sent[i].body_len)) return i;
    return -1;
}

/* Consumes the `count` messages sent with a new consumer of `group` in
 * `model`, checking each record; returns -1 when the consumer cannot start. */
static int consume(const char *ns, const char *topic, const char *group, const char *model, int count) {
    char cfg[1024];
    int32_t rc;
    uint64_t consumer = 0;
    for (int i = 0; i < count; i++) sent[i].received = 0;
    snprintf(cfg, sizeof cfg,
             "{\"name_server\": \"%s\", \"group\": \"%s\", \"from_where\": \"first\", \"model\": \"%s\", "
             "\"subscriptions\": [{\"topic\": \"%s\", \"type\": \"tag\", \"expression\": \"*\"}]}",
             ns, group, model, topic);
    rc = p_rmq_consumer_new(cfg, (int64_t)strlen(cfg), &consumer);
    if (rc != RMQ_OK) {
        fail("rmq_consumer_new", rc);
        dump_logs();
        return -1;
    }
    say("%s consumer started (group %s)", model, group);
    int distinct = 0, duplicates = 0, records = 0;
    DWORD deadline = GetTickCount() + 90000;
    while (distinct < count && (int32_t)(deadline - GetTickCount()) > 0) {
        uint8_t *out = NULL;
        int64_t out_len = 0;
        int32_t n = 0;
        rc = p_rmq_consumer_poll(consumer, 32, 1000, &out, &out_len, &n);
        if (rc != RMQ_OK) {
            fail("rmq_consumer_poll", rc);
            break;
        }
        if (n == 0) {
            check(out == NULL, "no records: *out is NULL");
            continue;
        }
        uint64_t ids[32];
        reader r = {out, out + out_len, 0};
        for (int32_t k = 0; k < n; k++) {
            ids[k] = rd(&r, 8);
            int32_t queue_id = (int32_t)rd(&r, 4);
            int32_t reconsume = (int32_t)rd(&r, 4);
            int64_t queue_offset = (int64_t)rd(&r, 8);
            int64_t born = (int64_t)rd(&r, 8), store = (int64_t)rd(&r, 8);
            /* eight lengths, then the eight fields back to back */
            uint32_t lens[8];
            for (int j = 0; j < 8; j++) lens[j] = (uint32_t)rd(&r, 4);
            field fs[8];
            for (int j = 0; j < 8; j++) fs[j] = rd_data(&r, lens[j]);
            field f_topic = fs[0], f_tags = fs[1], f_keys = fs[2], f_msg_id = fs[3], f_off_id = fs[4],
                  f_broker = fs[5], f_props = fs[6], f_body = fs[7];
            if (r.bad) {
                check(0, "poll records decode within out_len");
                break;
            }
            records++;
            int i = find_sent(f_body, count);
            if (i < 0) {
                say("FAIL a received body (%u bytes) matches no message sent", f_body.len);
                failures++;
                continue;
            }
            sent_message *m = &sent[i];
            int intact = field_is(f_topic, topic, (int64_t)strlen(topic)) &&
                         field_is(f_tags, m->tags, (int64_t)strlen(m->tags)) &&
                         field_is(f_keys, m->keys, (int64_t)strlen(m->keys)) &&
                         same_properties(f_props, m->props, m->props_len) && f_msg_id.len > 0 && f_off_id.len > 0 &&
                         f_broker.len > 0 && queue_id >= 0 && queue_id < 4 && queue_offset >= 0 && reconsume == 0 &&
                         born > 0 && store >= born - 60000;
            if (!intact) {
                say("FAIL message %d came back altered (topic %.*s tags %.*s keys %.*s props %u bytes)", i,
                    (int)f_topic.len, f_topic.data, (int)f_tags.len, f_tags.data, (int)f_keys.len, f_keys.data,
                    f_props.len);
                failures++;
            }
            if (m->received++ == 0)
                distinct++;
            else
                duplicates++;
        }
        check(r.p == r.end, "poll records fill exactly out_len");
        p_rmq_free(out);
        int32_t settled = -1;
        rc = p_rmq_consumer_ack(consumer, ids, n, RMQ_ACK, 0, &settled);
        if (rc != RMQ_OK) fail("rmq_consumer_ack", rc);
        check(settled == n, "rmq_consumer_ack settles every delivery");
    }
    say("%s: received %d of %d messages (%d records, %d duplicates)", model, distinct, count, records, duplicates);
    for (int i = 0; i < count; i++)
        if (sent[i].received == 0) {
            say("FAIL message %d never arrived (%s)", i, model);
            failures++;
        }

    check(p_rmq_consumer_close(consumer) == RMQ_OK, "rmq_consumer_close");
    check(p_rmq_consumer_close(consumer) == RMQ_OK, "rmq_consumer_close again (idempotent)");
    return 0;
}

static int other_thread_had_none = 0;
static char other_thread_msg[1024];

static DWORD WINAPI other_thread_error(void *arg) {
    (void)arg;
    other_thread_had_none = p_rmq_last_error(other_thread_msg, sizeof other_thread_msg) == 0;
    p_rmq_debug_panic();
    p_rmq_last_error(other_thread_msg, sizeof other_thread_msg);
    return 0;
}

/* The original round trip: library checks, admin, `count` sends with every
 * message field, a clustering and a broadcasting consumer. */
static int scenario_roundtrip(const char *ns, const char *topic, const char *group, int count) {
    int32_t rc;
    char buf[4096];

    /* ---- library: version, errors, panic recovery ---------------------- */
    rc = p_rmq_version(buf, sizeof buf);
    check(rc == RMQ_OK && strlen(buf) >= 5, "rmq_version");
    say("rmq_version: %s", buf);


    char cfg[1024];
    uint64_t bad = 0;
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"no_such_option\": 1}", ns);
    rc = p_rmq_producer_new(cfg, (int64_t)strlen(cfg), &bad);
    check(rc == RMQ_ERR_INVALID_ARGUMENT, "producer_new with an unknown key gives RMQ_ERR_INVALID_ARGUMENT");
    char small[8];
    int32_t full = p_rmq_last_error(small, sizeof small);
    int32_t got = p_rmq_last_error(buf, sizeof buf);
    check(full > 8 && full == got && (int32_t)strlen(buf) == full && strlen(small) == 7,
          "rmq_last_error truncates and reports the full length");
    check(strncmp(buf, "rmq_native:", 11) == 0 && strstr(buf, "no_such_option") != NULL,
          "rmq_last_error names the bad key");
    say("bad config: status %d, last error (%d bytes): %s", rc, full, buf);

    /* the last error is per thread (go/errstore.c: FlsAlloc on Windows):
     * another thread's failure leaves this thread's message alone, and a
     * new thread starts with none */
    HANDLE other = CreateThread(NULL, 0, other_thread_error, NULL, 0, NULL);
    WaitForSingleObject(other, 30000);
    CloseHandle(other);
    check(other_thread_had_none && strstr(other_thread_msg, "panic") != NULL,
          "another thread has its own last error");
    p_rmq_last_error(buf, sizeof buf);
    check(strstr(buf, "no_such_option") != NULL, "this thread's last error is untouched by another thread's");
    say("other thread's last error: %s", other_thread_msg);

    rmq_message none;
    memset(&none, 0, sizeof none);
    rmq_send_result res;
    rc = p_rmq_producer_send(0xdeadbeefULL, &none, 1000, &res);
    check(rc == RMQ_ERR_CLOSED, "send on an unknown handle gives RMQ_ERR_CLOSED");
    p_rmq_last_error(buf, sizeof buf);
    say("unknown handle: status %d: %s", rc, buf);

    rc = p_rmq_debug_panic();
    check(rc == RMQ_ERR_INTERNAL, "a Go panic is recovered as RMQ_ERR_INTERNAL");
    p_rmq_last_error(buf, sizeof buf);
    say("recovered panic: status %d: %s", rc, buf);

    /* ---- admin: create the topic ------------------------------------------ */
    uint64_t admin = 0;
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"timeout_ms\": 10000}", ns);
    rc = p_rmq_admin_new(cfg, (int64_t)strlen(cfg), &admin);
    if (rc != RMQ_OK) {
        fail("rmq_admin_new", rc);
        dump_logs();
        return 1;
    }
    rc = p_rmq_admin_create_topic(admin, (char *)topic, (int64_t)strlen(topic), 4, NULL, 0);
    if (rc != RMQ_OK) {
        fail("rmq_admin_create_topic", rc);
        dump_logs();
        return 1;
    }
    say("created topic %s", topic);

    /* ---- producer: send ---------------------------------------------------- */
    uint64_t producer = 0;
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"group\": \"%s_P\", \"send_timeout_ms\": 10000}", ns,
             group);
    rc = p_rmq_producer_new(cfg, (int64_t)strlen(cfg), &producer);
    if (rc != RMQ_OK) {
        fail("rmq_producer_new", rc);
        dump_logs();
        return 1;
    }
    srand((unsigned)GetTickCount() ^ (unsigned)GetCurrentProcessId());
    static const char unicode[] = "\xc3\xa7\xc3\xb8\x64\xc3\xa9 \xe2\x9c\x93"; /* "çødé ✓" */
    for (int i = 0; i < count; i++) {
        sent_message *m = &sent[i];
        /* message 1 is 64 KiB (compressed on the wire); every body holds
         * bytes 0x00 and 0xff and UTF-8 */
        int64_t len = i == 1 ? 65536 : 48;
        m->body = malloc((size_t)len);
        int n = snprintf(m->body, (size_t)len, "wine-%d-%08x%s", i, (unsigned)rand() * 2654435761u, unicode);
        for (int64_t j = n; j < len; j++) m->body[j] = (char)(j % 7 == 0 ? 0 : j % 11 == 0 ? 0xff : 'a' + j % 26);
        m->body_len = len;
        snprintf(m->tags, sizeof m->tags, "tag%d", i % 3);
        snprintf(m->keys, sizeof m->keys, "k%d common", i);
        int pn = snprintf(m->props, sizeof m->props, "index%c%d%cunicode%c%s%c", 0, i, 0, 0, unicode, 0);
        m->props_len = pn;

        rmq_message msg;
        memset(&msg, 0, sizeof msg);
        msg.topic = topic;
        msg.topic_len = (int64_t)strlen(topic);
        msg.body = m->body;
        msg.body_len = m->body_len;
        msg.tags = m->tags;
        msg.tags_len = (int64_t)strlen(m->tags);
        msg.keys = m->keys;
        msg.keys_len = (int64_t)strlen(m->keys);
        msg.properties = m->props;
        msg.properties_len = m->props_len;
        DWORD until = GetTickCount() + 30000;
        for (;;) {
            memset(&res, 0, sizeof res);
            rc = p_rmq_producer_send(producer, &msg, 10000, &res);
            /* a just-created topic may need a moment to get its route */
            if ((rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) && (int32_t)(until - GetTickCount()) > 0) {
                Sleep(500);
                continue;
            }
            break;
        }
        if (rc != RMQ_OK) {
            fail("rmq_producer_send", rc);
            dump_logs();
            return 1;
        }
        check(res.status == RMQ_SEND_OK && res.msg_id[0] != 0 && res.offset_msg_id[0] != 0 && res.broker_name[0] != 0,
              "send result has status SEND_OK, ids and the broker name");
        if (i == 0) say("first send: msg_id %s queue %d offset %lld broker %s", res.msg_id, res.queue_id,
                        (long long)res.queue_offset, res.broker_name);
    }
    say("sent %d messages", count);
    rc = p_rmq_producer_close(producer);
    check(rc == RMQ_OK, "rmq_producer_close");
    check(p_rmq_producer_close(producer) == RMQ_OK, "rmq_producer_close again (idempotent)");
    check(p_rmq_producer_send(producer, &none, 1000, &res) == RMQ_ERR_CLOSED, "send after close gives RMQ_ERR_CLOSED");

    /* ---- consumers: poll, decode, ack ------------------------------------ */
    if (consume(ns, topic, group, "clustering", count) != 0) return 1;
    char bgroup[256];
    snprintf(bgroup, sizeof bgroup, "%s_B", group);
    if (consume(ns, topic, bgroup, "broadcasting", count) != 0) return 1;

    uint8_t *stats = NULL;
    int64_t stats_len = 0;
    rc = p_rmq_debug_stats(&stats, &stats_len);
    check(rc == RMQ_OK && stats != NULL && stats_len > 2 && stats[0] == '{', "rmq_debug_stats");
    if (stats != NULL) say("debug stats: %.*s", (int)stats_len, (const char *)stats);
    p_rmq_free(stats);
    p_rmq_free(NULL);

    rc = p_rmq_admin_delete_topic(admin, (char *)topic, (int64_t)strlen(topic));
    if (rc != RMQ_OK) fail("rmq_admin_delete_topic", rc);
    check(p_rmq_admin_close(admin) == RMQ_OK, "rmq_admin_close");
    check(p_rmq_admin_close(admin) == RMQ_OK, "rmq_admin_close again (idempotent)");
    for (int i = 0; i < count; i++) free(sent[i].body);

    if (failures) return 1;
    say("OK: %d messages sent and received intact", count);
    return 0;
}


/* ---- helpers of the scenarios (each mirrors what the Python layer does) -- */

static uint64_t admin_h = 0;

/* Admin.create_topic: rmq_admin_new, then rmq_admin_create_topic. */
static int setup_topic(const char *ns, const char *topic, int queues) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"timeout_ms\": 10000}", ns);
    int32_t rc = p_rmq_admin_new(cfg, (int64_t)strlen(cfg), &admin_h);
    if (rc != RMQ_OK) {
        fail("rmq_admin_new", rc);
        return -1;
    }
    rc = p_rmq_admin_create_topic(admin_h, (char *)topic, (int64_t)strlen(topic), queues, NULL, 0);
    if (rc != RMQ_OK) {
        fail("rmq_admin_create_topic", rc);
        return -1;
    }
    return 0;
}

static void teardown_topic(const char *topic) {
    if (topic != NULL) {
        int32_t rc = p_rmq_admin_delete_topic(admin_h, (char *)topic, (int64_t)strlen(topic));
        if (rc != RMQ_OK) fail("rmq_admin_delete_topic", rc);
    }
    check(p_rmq_admin_close(admin_h) == RMQ_OK, "rmq_admin_close");
}

/* NativeClient.__init__: rmq_*_new(config JSON, len, &handle). */
static uint64_t new_client(int32_t (*fn)(char *, int64_t, uint64_t *), const char *what, const char *cfg) {
    uint64_t h = 0;
    int32_t rc = fn((char *)cfg, (int64_t)strlen(cfg), &h);
    if (rc != RMQ_OK) {
        fail(what, rc);
        dump_logs();
        return 0;
    }
    return h;
}

static uint64_t new_producer(const char *ns, const char *group) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"group\": \"%s_P\", \"send_timeout_ms\": 10000}", ns, group);
    return new_client(p_rmq_producer_new, "rmq_producer_new", cfg);
}

/* Consumer.__init__ with one tag subscription "*"; extra: more JSON members. */
static uint64_t new_consumer(const char *ns, const char *topic, const char *group, const char *extra) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"name_server\": \"%s\", \"group\": \"%s\", \"from_where\": \"first\"%s, "
             "\"subscriptions\": [{\"topic\": \"%s\", \"type\": \"tag\", \"expression\": \"*\"}]}",
             ns, group, extra, topic);
    return new_client(p_rmq_consumer_new, "rmq_consumer_new", cfg);
}

/* Producer._fill: every field given as (pointer, length). */
static void fill(rmq_message *m, const char *topic, const char *body, const char *shard) {
    memset(m, 0, sizeof *m);
    m->topic = topic;
    m->topic_len = (int64_t)strlen(topic);
    m->body = body;
    m->body_len = (int64_t)strlen(body);
    m->tags = "";
    m->keys = "";
    m->properties = "";
    m->sharding_key = shard ? shard : "";
    m->sharding_key_len = shard ? (int64_t)strlen(shard) : 0;
}

/* Producer.send (a just-created topic may need a moment to get its route). */
static int32_t send_sync(uint64_t p, rmq_message *m, rmq_send_result *res) {
    DWORD until = GetTickCount() + 30000;
    for (;;) {
        memset(res, 0, sizeof *res);
        int32_t rc = p_rmq_producer_send(p, m, 10000, res);
        if ((rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) && (int32_t)(until - GetTickCount()) > 0) {
            Sleep(500);
            continue;
        }
        return rc;
    }
}

typedef struct delivery {
    uint64_t id;
    int32_t queue_id, reconsume;
    int64_t queue_offset;
    char body[256];
} delivery;

/* Decodes `n` records of rmq_consumer_poll, or of rmq_tx_poll_checks (the
 * same layout with the check id in place of the delivery id). */
static int decode(const uint8_t *out, int64_t out_len, int32_t n, delivery *d, int max) {
    reader r = {out, out + out_len, 0};
    int k;
    for (k = 0; k < n && k < max; k++) {
        d[k].id = rd(&r, 8);
        d[k].queue_id = (int32_t)rd(&r, 4);
        d[k].reconsume = (int32_t)rd(&r, 4);
        d[k].queue_offset = (int64_t)rd(&r, 8);
        rd(&r, 8);
        rd(&r, 8);
        uint32_t lens[8];
        for (int j = 0; j < 8; j++) lens[j] = (uint32_t)rd(&r, 4);
        field fs[8];
        for (int j = 0; j < 8; j++) fs[j] = rd_data(&r, lens[j]);
        if (r.bad) break;
        snprintf(d[k].body, sizeof d[k].body, "%.*s", (int)fs[7].len, fs[7].data);
    }
    check(!r.bad && r.p == r.end, "records fill exactly out_len");
    return r.bad ? -1 : k;
}

/* Consumer._fetch: one rmq_consumer_poll of up to 32 messages in a 200 ms
 * slice; the buffer is copied and released at once (take_buffer). */
static int poll_once(uint64_t c, delivery *d, int max) {
    uint8_t *out = NULL;
    int64_t out_len = 0;
    int32_t n = 0;
    int32_t rc = p_rmq_consumer_poll(c, max < 32 ? max : 32, 200, &out, &out_len, &n);
    if (rc != RMQ_OK) {
        if (rc != RMQ_ERR_CLOSED) fail("rmq_consumer_poll", rc);
        return -1;
    }
    int k = n ? decode(out, out_len, n, d, max) : 0;
    p_rmq_free(out);
    return k;
}

/* Consumer._send_settle: a uint64_t[] of delivery ids. */
static int settle(uint64_t c, delivery *d, int n, int32_t kind, int32_t delay_level) {
    uint64_t ids[64];
    int32_t settled = -1;
    for (int i = 0; i < n; i++) ids[i] = d[i].id;
    int32_t rc = p_rmq_consumer_ack(c, ids, n, kind, delay_level, &settled);
    if (rc != RMQ_OK) fail("rmq_consumer_ack", rc);
    return settled;
}

/* The index i of a body "<prefix>-<i>-..." or -1. */
static int body_index(const char *body, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(body, prefix, n) != 0 || body[n] != '-') return -1;
    return atoi(body + n + 1);
}

/* Receives `want` distinct messages "<prefix>-<i>-..." (0 <= i < want),
 * acknowledging every batch; counts[i] says how often i came. */
static int receive_all(uint64_t c, const char *prefix, int want, int *counts, int seconds) {
    int distinct = 0;
    DWORD deadline = GetTickCount() + (DWORD)seconds * 1000;
    while (distinct < want && (int32_t)(deadline - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        if (n < 0) return -1;
        for (int k = 0; k < n; k++) {
            int i = body_index(d[k].body, prefix);
            if (i < 0 || i >= want) {
                say("FAIL unexpected message %s", d[k].body);
                failures++;
                continue;
            }
            if (counts[i]++ == 0) distinct++;
        }
        if (n > 0) check(settle(c, d, n, RMQ_ACK, 0) == n, "every delivery settled");
    }
    if (distinct < want) say("FAIL received %d of %d %s messages", distinct, want, prefix);
    failures += distinct < want;
    return distinct;
}

static void nonce(char *buf, size_t cap) {
    snprintf(buf, cap, "%08lx%08lx", (unsigned long)GetTickCount(), (unsigned long)GetCurrentProcessId());
}

/* ---- the scenarios ------------------------------------------------------ */

/* Producer.send_async + the completion thread (rmq_producer_poll_completions
 * in 200 ms slices, 512 records at most), then a clustering consumer. */
static int scenario_async(const char *ns, const char *topic, const char *group) {
    enum { N = 40 };
    if (setup_topic(ns, topic, 4) != 0) return 1;
    uint64_t p = new_producer(ns, group);
    if (!p) return 1;
    char n8[32], bodies[N][64];
    nonce(n8, sizeof n8);
    rmq_message m;
    rmq_send_result res;
    /* the first send makes sure the route exists, as the sync tests do */
    snprintf(bodies[0], sizeof bodies[0], "async-0-%s", n8);
    fill(&m, topic, bodies[0], NULL);
    int32_t rc = send_sync(p, &m, &res);
    if (rc != RMQ_OK) return fail("rmq_producer_send", rc), 1;
    int done[N] = {1};
    for (int i = 1; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "async-%d-%s", i, n8);
        fill(&m, topic, bodies[i], NULL);
        rc = p_rmq_producer_send_async(p, &m, 10000, 1000 + (uint64_t)i);
        if (rc != RMQ_OK) fail("rmq_producer_send_async", rc);
    }
    int completed = 1;
    DWORD deadline = GetTickCount() + 60000;
    while (completed < N && (int32_t)(deadline - GetTickCount()) > 0) {
        uint8_t *out = NULL;
        int64_t out_len = 0;
        int32_t n = 0;
        if (p_rmq_producer_poll_completions(p, 512, 200, &out, &out_len, &n) != RMQ_OK || n == 0) continue;
        reader r = {out, out + out_len, 0};
        for (int32_t k = 0; k < n; k++) {
            uint64_t token = rd(&r, 8);
            int32_t status = (int32_t)rd(&r, 4);
            rd(&r, 4);
            rd(&r, 8);
            int32_t send_status = (int32_t)rd(&r, 4);
            field fs[5];
            uint32_t lens[5]; /* the five text lengths come first, then their bytes */
            for (int j = 0; j < 5; j++) lens[j] = (uint32_t)rd(&r, 4);
            for (int j = 0; j < 5; j++) fs[j] = rd_data(&r, lens[j]);
            if (r.bad) break;
            int i = (int)(token - 1000);
            if (i < 1 || i >= N || done[i]++) {
                say("FAIL unknown or repeated completion token %llu", (unsigned long long)token);
                failures++;
                continue;
            }
            completed++;
            if (status != RMQ_OK || send_status != RMQ_SEND_OK || fs[0].len == 0) {
                say("FAIL async send %d: status %d send status %d error %.*s", i, status, send_status,
                    (int)fs[4].len, fs[4].data);
                failures++;
            }
        }
        check(!r.bad && r.p == r.end, "completion records fill exactly out_len");
        p_rmq_free(out);
    }
    say("async: %d of %d sends completed", completed, N);
    check(completed == N, "every asynchronous send completed");
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close");
    uint64_t c = new_consumer(ns, topic, group, "");
    if (!c) return 1;
    int counts[N] = {0};
    char prefix[64];
    snprintf(prefix, sizeof prefix, "async");
    receive_all(c, prefix, N, counts, 90);
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* Producer.send_batch: an rmq_message[] and the comma-separated ids. */
static int scenario_batch(const char *ns, const char *topic, const char *group) {
    enum { N = 16 };
    if (setup_topic(ns, topic, 4) != 0) return 1;
    uint64_t p = new_producer(ns, group);
    if (!p) return 1;
    char n8[32], bodies[N][64];
    nonce(n8, sizeof n8);
    rmq_message msgs[N];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "batch-%d-%s", i, n8);
        fill(&msgs[i], topic, bodies[i], NULL);
    }
    rmq_send_result res;
    uint8_t *ids = NULL;
    int64_t ids_len = 0;
    int32_t rc;
    DWORD until = GetTickCount() + 30000;
    do {
        memset(&res, 0, sizeof res);
        rc = p_rmq_producer_send_batch(p, msgs, N, 10000, &res, &ids, &ids_len);
        if (rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) Sleep(500);
    } while ((rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) && (int32_t)(until - GetTickCount()) > 0);
    if (rc != RMQ_OK) return fail("rmq_producer_send_batch", rc), 1;
    int commas = 0;
    for (int64_t i = 0; i < ids_len; i++) commas += ids[i] == ',';
    check(ids != NULL && commas == N - 1, "the batch reports one id per message");
    check(ids != NULL && res.msg_id[0] != 0 && strncmp((const char *)ids, res.msg_id, strlen(res.msg_id)) == 0,
          "the batch's msg_id is its first message's");
    say("batch sent: %d ids (%.*s...)", commas + 1, 40, ids ? (const char *)ids : "");
    p_rmq_free(ids);
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close");
    uint64_t c = new_consumer(ns, topic, group, "");
    if (!c) return 1;
    int counts[N] = {0};
    receive_all(c, "batch", N, counts, 90);
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* Message.nack(delay_level=1) on the first delivery, ack on the redelivery. */
static int scenario_nack(const char *ns, const char *topic, const char *group) {
    enum { N = 4 };
    if (setup_topic(ns, topic, 4) != 0) return 1;
    uint64_t p = new_producer(ns, group);
    if (!p) return 1;
    char n8[32], body[64];
    nonce(n8, sizeof n8);
    rmq_message m;
    rmq_send_result res;
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body, "nack-%d-%s", i, n8);
        fill(&m, topic, body, NULL);
        int32_t rc = send_sync(p, &m, &res);
        if (rc != RMQ_OK) return fail("rmq_producer_send", rc), 1;
    }
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close");
    uint64_t c = new_consumer(ns, topic, group, ", \"max_reconsume_times\": 3");
    if (!c) return 1;
    int nacked[N] = {0}, acked[N] = {0}, done = 0;
    DWORD deadline = GetTickCount() + 120000;
    while (done < N && (int32_t)(deadline - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        if (n < 0) break;
        for (int k = 0; k < n; k++) {
            int i = body_index(d[k].body, "nack");
            if (i < 0 || i >= N) {
                say("FAIL unexpected message %s", d[k].body);
                failures++;
                continue;
            }
            /* one message at a time, as Message.ack()/nack() settle */
            if (d[k].reconsume == 0 && !nacked[i]) {
                nacked[i] = 1;
                check(settle(c, &d[k], 1, RMQ_NACK, 1) == 1, "nack settles the delivery");
                check(settle(c, &d[k], 1, RMQ_ACK, 0) == 0, "a settled delivery is not settled again");
            } else {
                check(d[k].reconsume >= 1, "a redelivery counts its reconsume times");
                if (!acked[i]++) done++;
                check(settle(c, &d[k], 1, RMQ_ACK, 0) == 1, "ack settles the redelivery");
            }
        }
    }
    say("nack: %d of %d messages redelivered after a nack and acknowledged", done, N);
    check(done == N, "every nacked message was redelivered");
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* An orderly consumer gets each sharding key's messages in send order. */
static int scenario_orderly(const char *ns, const char *topic, const char *group) {
    enum { N = 30 };
    if (setup_topic(ns, topic, 4) != 0) return 1;
    uint64_t p = new_producer(ns, group);
    if (!p) return 1;
    char n8[32], body[64];
    nonce(n8, sizeof n8);
    rmq_message m;
    rmq_send_result res;
    int queue_of[2] = {-1, -1};
    for (int i = 0; i < N; i++) {
        const char *key = i % 2 ? "key-b" : "key-a";
        snprintf(body, sizeof body, "orderly-%d-%s", i, n8);
        fill(&m, topic, body, key);
        int32_t rc = send_sync(p, &m, &res);
        if (rc != RMQ_OK) return fail("rmq_producer_send", rc), 1;
        if (queue_of[i % 2] < 0) queue_of[i % 2] = res.queue_id;
        check(res.queue_id == queue_of[i % 2], "one sharding key, one queue");
    }
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close");
    uint64_t c = new_consumer(ns, topic, group, ", \"orderly\": true");
    if (!c) return 1;
    int last[2] = {-1, -1}, got = 0;
    DWORD deadline = GetTickCount() + 90000;
    while (got < N && (int32_t)(deadline - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        if (n < 0) break;
        for (int k = 0; k < n; k++) {
            int i = body_index(d[k].body, "orderly");
            if (i < 0 || i >= N) continue;
            if (i <= last[i % 2]) {
                say("FAIL orderly: message %d after %d", i, last[i % 2]);
                failures++;
            }
            last[i % 2] = i;
            got++;
        }
        if (n > 0) settle(c, d, n, RMQ_ACK, 0);
    }
    say("orderly: %d of %d messages, in order per sharding key", got, N);
    check(got == N, "every orderly message arrived");
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* A broadcasting consumer with a fixed instance name: phase 1 consumes the
 * first messages; phase 2 (a new process) must see only the new ones, its
 * offsets being reloaded from the state dir. */
static int scenario_broadcast(const char *ns, const char *topic, const char *group, int phase) {
    enum { N = 5 };
    if (setup_topic(ns, topic, 2) != 0) return 1; /* phase 2: the topic exists; this updates it */
    uint64_t p = new_producer(ns, group);
    if (!p) return 1;
    char n8[32], body[64], prefix[16];
    nonce(n8, sizeof n8);
    snprintf(prefix, sizeof prefix, "bcast%d", phase);
    rmq_message m;
    rmq_send_result res;
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body, "%s-%d-%s", prefix, i, n8);
        fill(&m, topic, body, NULL);
        int32_t rc = send_sync(p, &m, &res);
        if (rc != RMQ_OK) return fail("rmq_producer_send", rc), 1;
    }
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close");
    uint64_t c = new_consumer(ns, topic, group, ", \"model\": \"broadcasting\", \"instance_name\": \"wine_bcast\"");
    if (!c) return 1;
    int counts[N] = {0};
    receive_all(c, prefix, N, counts, 90);
    /* nothing else may come: phase 2 must not see phase 1's messages again */
    DWORD quiet = GetTickCount() + 3000;
    while ((int32_t)(quiet - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        if (n < 0) break;
        for (int k = 0; k < n; k++) {
            say("FAIL broadcast phase %d: unexpected %s (reconsume %d)", phase, d[k].body, d[k].reconsume);
            failures++;
        }
        if (n > 0) settle(c, d, n, RMQ_ACK, 0);
    }
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    say("broadcast phase %d: received exactly the %d new messages", phase, N);
    teardown_topic(phase == 2 ? topic : NULL);
    return failures ? 1 : 0;
}

/* TransactionProducer: A committed, B left UNKNOWN and committed by the
 * check (the application's own record says it is done), C rolled back.
 * Checks are answered on a second thread, like the producer's pump thread. */
static char tx_nonce[32];
static volatile LONG tx_checks_answered = 0;
static volatile LONG tx_stop = 0;
static uint64_t tx_producer = 0;

static DWORD WINAPI tx_check_thread(void *arg) {
    (void)arg;
    while (!tx_stop) {
        uint8_t *out = NULL;
        int64_t out_len = 0;
        int32_t n = 0;
        if (p_rmq_tx_poll_checks(tx_producer, 64, 200, &out, &out_len, &n) != RMQ_OK || n == 0) continue;
        delivery d[64];
        int k = decode(out, out_len, n, d, 64);
        p_rmq_free(out);
        for (int i = 0; i < k; i++) {
            /* the application's state: B committed, A committed, C rolled back */
            int32_t state = strncmp(d[i].body, "tx-C", 4) == 0 ? RMQ_TX_ROLLBACK : RMQ_TX_COMMIT;
            say("transaction check for %s: answering %s", d[i].body, state == RMQ_TX_COMMIT ? "COMMIT" : "ROLLBACK");
            p_rmq_tx_check_reply(tx_producer, d[i].id, state);
            if (strncmp(d[i].body, "tx-B", 4) == 0) InterlockedIncrement(&tx_checks_answered);
        }
    }
    return 0;
}

static int scenario_tx(const char *ns, const char *topic, const char *group) {
    if (setup_topic(ns, topic, 4) != 0) return 1;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"name_server\": \"%s\", \"group\": \"%s_TX\", \"send_timeout_ms\": 10000}", ns, group);
    tx_producer = new_client(p_rmq_tx_producer_new, "rmq_tx_producer_new", cfg);
    if (!tx_producer) return 1;
    HANDLE th = CreateThread(NULL, 0, tx_check_thread, NULL, 0, NULL);
    nonce(tx_nonce, sizeof tx_nonce);
    static const char names[3] = {'A', 'B', 'C'};
    static const int32_t ends[3] = {RMQ_TX_COMMIT, RMQ_TX_UNKNOWN, RMQ_TX_ROLLBACK};
    for (int i = 0; i < 3; i++) {
        char body[64];
        snprintf(body, sizeof body, "tx-%c-%s", names[i], tx_nonce);
        rmq_message m;
        fill(&m, topic, body, NULL);
        rmq_send_result res;
        uint64_t tx = 0;
        int32_t rc;
        DWORD until = GetTickCount() + 30000;
        do {
            memset(&res, 0, sizeof res);
            rc = p_rmq_tx_send(tx_producer, &m, 10000, &res, &tx);
            if (rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) Sleep(500);
        } while ((rc == RMQ_ERR_NO_ROUTE || rc == RMQ_ERR_TIMEOUT) && (int32_t)(until - GetTickCount()) > 0);
        if (rc != RMQ_OK) return fail("rmq_tx_send", rc), 1;
        check(res.msg_id[0] != 0 && tx != 0, "rmq_tx_send gives a message id and a token");
        memset(&res, 0, sizeof res);
        rc = p_rmq_tx_end(tx_producer, tx, ends[i], &res);
        if (rc != RMQ_OK) fail("rmq_tx_end", rc);
        check(res.transaction_id[0] != 0, "rmq_tx_end fills the transaction id");
    }
    uint64_t c = new_consumer(ns, topic, group, "");
    if (!c) return 1;
    int seen_a = 0, seen_b = 0;
    DWORD deadline = GetTickCount() + 90000;
    while (!(seen_a && seen_b) && (int32_t)(deadline - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        if (n < 0) break;
        for (int k = 0; k < n; k++) {
            if (strstr(d[k].body, tx_nonce) == NULL) continue;
            seen_a += strncmp(d[k].body, "tx-A", 4) == 0;
            seen_b += strncmp(d[k].body, "tx-B", 4) == 0;
            if (strncmp(d[k].body, "tx-C", 4) == 0) {
                say("FAIL the rolled back message was delivered");
                failures++;
            }
        }
        if (n > 0) settle(c, d, n, RMQ_ACK, 0);
    }
    /* a rolled-back message must not turn up a little later either */
    DWORD quiet = GetTickCount() + 3000;
    while ((int32_t)(quiet - GetTickCount()) > 0) {
        delivery d[32];
        int n = poll_once(c, d, 32);
        for (int k = 0; k < n; k++)
            if (strncmp(d[k].body, "tx-C", 4) == 0) {
                say("FAIL the rolled back message was delivered");
                failures++;
            }
        if (n > 0) settle(c, d, n, RMQ_ACK, 0);
    }
    say("tx: committed delivered %d, checked-then-committed delivered %d, checks for B answered %ld", seen_a, seen_b,
        (long)tx_checks_answered);
    check(seen_a && seen_b, "the committed and the checked transactions were delivered");
    check(tx_checks_answered > 0, "the broker's check of the UNKNOWN transaction was answered");
    check(p_rmq_consumer_close(c) == RMQ_OK, "rmq_consumer_close");
    check(p_rmq_producer_close(tx_producer) == RMQ_OK, "rmq_producer_close (transaction producer)");
    tx_stop = 1;
    WaitForSingleObject(th, 10000);
    CloseHandle(th);
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* A wrong name server: RMQ_ERR_UNREACHABLE naming the address, quickly. */
static int scenario_unreachable(void) {
    const char *cfgs[2] = {
        "{\"name_server\": \"127.0.0.1:1\", \"group\": \"wine_unreachable\", \"send_timeout_ms\": 2000}",
        "{\"name_server\": \"127.0.0.1:1\", \"group\": \"wine_unreachable\", \"subscriptions\": "
        "[{\"topic\": \"t\", \"type\": \"tag\", \"expression\": \"*\"}]}",
    };
    int32_t (*fns[2])(char *, int64_t, uint64_t *) = {p_rmq_producer_new, p_rmq_consumer_new};
    for (int i = 0; i < 2; i++) {
        uint64_t h = 0;
        DWORD t0 = GetTickCount();
        int32_t rc = fns[i]((char *)cfgs[i], (int64_t)strlen(cfgs[i]), &h);
        DWORD took = GetTickCount() - t0;
        char buf[1024];
        p_rmq_last_error(buf, sizeof buf);
        say("%s with a wrong name server: status %d after %lu ms: %s", i ? "consumer" : "producer", rc,
            (unsigned long)took, buf);
        check(rc == RMQ_ERR_UNREACHABLE, "a wrong name server gives RMQ_ERR_UNREACHABLE");
        check(strstr(buf, "127.0.0.1:1") != NULL, "the error names the name server");
        check(took < 10000, "the unreachable error comes within the timeout");
    }
    return failures ? 1 : 0;
}

/* Closing a producer and a consumer while other threads send and poll. */
static volatile LONG traffic_stop = 0;
static volatile LONG traffic_sent = 0, traffic_received = 0, traffic_closed = 0;
static uint64_t traffic_p = 0, traffic_c = 0;
static const char *traffic_topic;

static DWORD WINAPI sender_thread(void *arg) {
    char body[64];
    rmq_message m;
    rmq_send_result res;
    for (int i = 0; !traffic_stop; i++) {
        snprintf(body, sizeof body, "traffic-%d-%lu", i, (unsigned long)(uintptr_t)arg);
        fill(&m, traffic_topic, body, NULL);
        int32_t rc = arg ? p_rmq_producer_send_async(traffic_p, &m, 10000, (uint64_t)i + 1)
                         : p_rmq_producer_send(traffic_p, &m, 10000, &res);
        if (rc == RMQ_OK) {
            InterlockedIncrement(&traffic_sent);
        } else if (rc == RMQ_ERR_CLOSED) {
            InterlockedIncrement(&traffic_closed);
            return 0;
        } else if (rc != RMQ_ERR_NO_ROUTE && rc != RMQ_ERR_TIMEOUT) {
            fail("send under traffic", rc);
            return 1;
        }
        if (arg) Sleep(2);
        if (arg && i % 64 == 63) { /* drain completions like the pump thread */
            uint8_t *out = NULL;
            int64_t out_len = 0;
            int32_t n = 0;
            if (p_rmq_producer_poll_completions(traffic_p, 512, 0, &out, &out_len, &n) == RMQ_OK) p_rmq_free(out);
        }
    }
    return 0;
}

static DWORD WINAPI poller_thread(void *arg) {
    (void)arg;
    while (!traffic_stop) {
        delivery d[32];
        int n = poll_once(traffic_c, d, 32);
        if (n < 0) {
            InterlockedIncrement(&traffic_closed);
            return 0;
        }
        InterlockedExchangeAdd(&traffic_received, n);
        if (n > 0) {
            uint64_t ids[32];
            int32_t settled = 0;
            for (int k = 0; k < n; k++) ids[k] = d[k].id;
            int32_t rc = p_rmq_consumer_ack(traffic_c, ids, n, RMQ_ACK, 0, &settled);
            if (rc == RMQ_ERR_CLOSED) {
                InterlockedIncrement(&traffic_closed);
                return 0;
            }
        }
    }
    return 0;
}

/* A counter of rmq_debug_stats' JSON object (absent: 0). */
static long stat_of(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : 0;
}

static int scenario_close(const char *ns, const char *topic, const char *group) {
    if (setup_topic(ns, topic, 4) != 0) return 1;
    traffic_topic = topic;
    traffic_p = new_producer(ns, group);
    if (!traffic_p) return 1;
    rmq_message m;
    rmq_send_result res;
    fill(&m, topic, "warm-up", NULL);
    int32_t rc = send_sync(traffic_p, &m, &res);
    if (rc != RMQ_OK) return fail("rmq_producer_send", rc), 1;
    traffic_c = new_consumer(ns, topic, group, "");
    if (!traffic_c) return 1;
    HANDLE th[3] = {CreateThread(NULL, 0, sender_thread, NULL, 0, NULL),
                    CreateThread(NULL, 0, sender_thread, (void *)1, 0, NULL),
                    CreateThread(NULL, 0, poller_thread, NULL, 0, NULL)};
    DWORD deadline = GetTickCount() + 60000;
    while ((traffic_sent < 50 || traffic_received < 20) && (int32_t)(deadline - GetTickCount()) > 0) Sleep(100);
    say("under traffic: %ld sent, %ld received; closing", (long)traffic_sent, (long)traffic_received);
    check(traffic_received > 0, "messages flowed before the close");
    DWORD t0 = GetTickCount();
    check(p_rmq_consumer_close(traffic_c) == RMQ_OK, "rmq_consumer_close under traffic");
    check(p_rmq_producer_close(traffic_p) == RMQ_OK, "rmq_producer_close under traffic");
    /* as producer.py's close: take the outcomes left until the library
       releases the handle (the poll then answers RMQ_ERR_CLOSED) */
    for (;;) {
        uint8_t *left = NULL;
        int64_t left_len = 0;
        int32_t left_n = 0;
        if (p_rmq_producer_poll_completions(traffic_p, 512, 0, &left, &left_len, &left_n) != RMQ_OK) break;
        if (left) p_rmq_free(left);
    }
    say("closed in %lu ms", (unsigned long)(GetTickCount() - t0));
    DWORD w = WaitForMultipleObjects(3, th, TRUE, 30000);
    check(w != WAIT_TIMEOUT, "every thread saw the close (RMQ_ERR_CLOSED) and ended");
    traffic_stop = 1;
    for (int i = 0; i < 3; i++) CloseHandle(th[i]);
    check(traffic_closed == 3, "every thread got RMQ_ERR_CLOSED");
    uint8_t *stats = NULL;
    int64_t stats_len = 0;
    if (p_rmq_debug_stats(&stats, &stats_len) == RMQ_OK && stats != NULL) {
        say("debug stats: %.*s", (int)stats_len, (const char *)stats);
        check(stat_of((const char *)stats, "producers") == 0 && stat_of((const char *)stats, "consumers") == 0 &&
                  stat_of((const char *)stats, "handles") == 1,
              "no producer or consumer is left after the close (the admin only)");
        p_rmq_free(stats);
    }
    teardown_topic(topic);
    return failures ? 1 : 0;
}

/* Ctrl+C: a console control handler registered before the library (as
 * Python's is) still gets CTRL_C_EVENT; the Go runtime passes it on. */
static volatile LONG ctrl_c_seen = 0;

static BOOL WINAPI on_ctrl(DWORD type) {
    if (type == CTRL_C_EVENT) {
        InterlockedIncrement(&ctrl_c_seen);
        return TRUE;
    }
    return FALSE;
}

static int scenario_ctrlc(const char *ns, const char *group) {
    uint64_t p = new_producer(ns, group); /* the Go runtime is busy */
    if (!p) return 1;
    /* Ctrl+C events need a console; a program started without one (Wine
     * with its output piped, a service) gets a new one */
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) {
        say("no console (error %lu): allocating one", (unsigned long)GetLastError());
        check(AllocConsole(), "AllocConsole");
        SetConsoleCtrlHandler(NULL, FALSE); /* a new console may start with Ctrl+C ignored */
        check(GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0), "GenerateConsoleCtrlEvent");
    }
    DWORD deadline = GetTickCount() + 10000;
    while (!ctrl_c_seen && (int32_t)(deadline - GetTickCount()) > 0) Sleep(50);
    say("Ctrl+C reached the application's handler: %s", ctrl_c_seen ? "yes" : "no");
    check(ctrl_c_seen > 0, "Ctrl+C reaches the handler registered before the library");
    check(p_rmq_producer_close(p) == RMQ_OK, "rmq_producer_close after Ctrl+C");
    return failures ? 1 : 0;
}

/* ---- main ----------------------------------------------------------------- */

static char *utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc((size_t)n);
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    started = GetTickCount();
    /* the arguments as Unicode (paths may be non-ASCII), used as UTF-8 */
    int argc = 0;
    wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (argc < 6) {
        fprintf(stderr, "usage: harness <dll> <namesrv> <scenario> <topic> <group> [state dir]\n");
        return 2;
    }
    char *argv[8] = {0};
    for (int i = 0; i < argc && i < 8; i++) argv[i] = utf8(wargv[i]);
    const char *ns = argv[2], *scenario = argv[3], *topic = argv[4], *group = argv[5];
    if (!plain_name(topic) || !plain_name(group)) {
        fprintf(stderr, "harness: bad topic or group\n");
        return 2;
    }
    if (strcmp(scenario, "ctrlc") == 0) SetConsoleCtrlHandler(on_ctrl, TRUE); /* before the library */

    /* cffi's ffi.dlopen(str) loads with LoadLibraryW */
    HMODULE h = LoadLibraryW(wargv[1]);
    if (h == NULL) {
        say("FAIL LoadLibraryW(%s): error %lu", argv[1], (unsigned long)GetLastError());
        return 2;
    }
#define LOAD(f)                                                                       \
    p_##f = (__typeof__(&f))(void *)GetProcAddress(h, #f);                            \
    if (p_##f == NULL) {                                                              \
        say("FAIL GetProcAddress(%s): error %lu", #f, (unsigned long)GetLastError()); \
        return 2;                                                                     \
    }
    API(LOAD)
    say("loaded %s", argv[1]);

    /* _ffi._load: version, then the state dir (UTF-8 of the resolved path) */
    char buf[256];
    check(p_rmq_version(buf, sizeof buf) == RMQ_OK && strlen(buf) >= 5, "rmq_version");
    say("rmq_version: %s", buf);
    char state[MAX_PATH * 4];
    if (argc > 6) {
        snprintf(state, sizeof state, "%s", argv[6]);
    } else {
        const char *local = getenv("LOCALAPPDATA");
        snprintf(state, sizeof state, "%s\\rmq_native", local ? local : "C:");
    }
    int32_t rc = p_rmq_set_state_dir(state, (int64_t)strlen(state));
    if (rc != RMQ_OK) fail("rmq_set_state_dir", rc);
    check(p_rmq_set_state_dir((char *)"relative", 8) == RMQ_ERR_INVALID_ARGUMENT,
          "rmq_set_state_dir rejects a relative path");
    rc = p_rmq_set_state_dir(state, (int64_t)strlen(state));
    say("state dir: %s", state);
    p_rmq_set_log_level(30); /* rmq_native._logging */

    int result;
    if (strcmp(scenario, "roundtrip") == 0) result = scenario_roundtrip(ns, topic, group, 50);
    else if (strcmp(scenario, "async") == 0) result = scenario_async(ns, topic, group);
    else if (strcmp(scenario, "batch") == 0) result = scenario_batch(ns, topic, group);
    else if (strcmp(scenario, "nack") == 0) result = scenario_nack(ns, topic, group);
    else if (strcmp(scenario, "orderly") == 0) result = scenario_orderly(ns, topic, group);
    else if (strcmp(scenario, "broadcast1") == 0) result = scenario_broadcast(ns, topic, group, 1);
    else if (strcmp(scenario, "broadcast2") == 0) result = scenario_broadcast(ns, topic, group, 2);
    else if (strcmp(scenario, "tx") == 0) result = scenario_tx(ns, topic, group);
    else if (strcmp(scenario, "unreachable") == 0) result = scenario_unreachable();
    else if (strcmp(scenario, "close") == 0) result = scenario_close(ns, topic, group);
    else if (strcmp(scenario, "ctrlc") == 0) result = scenario_ctrlc(ns, group);
    else {
        fprintf(stderr, "harness: unknown scenario %s\n", scenario);
        return 2;
    }
    if (result != 0 || failures) {
        dump_logs();
        say("FAILED: %s: %d failed checks", scenario, failures);
        return 1;
    }
    say("OK: %s", scenario);
    return 0;
}
