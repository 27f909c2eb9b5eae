/*
 * harness.c -- drives rmq_native-windows-amd64.dll through its C ABI
 * (go/rmq_native.h) against a real broker, the way the Python layer does.
 * Built with mingw-w64 and run under Wine by tests/test_wine.py:
 *
 *   harness.exe <dll path> <name server host:port> <topic> <group> [count [state dir]]
 *
 * The DLL is loaded with LoadLibrary and every function is looked up with
 * GetProcAddress (typed from the header's own declarations). Sequence:
 * rmq_version, rmq_set_state_dir (like the Python loader; default
 * %LOCALAPPDATA%\rmq_native), error reporting on bad calls (rmq_last_error),
 * a recovered panic, rmq_admin_new + rmq_admin_create_topic, rmq_producer_new +
 * rmq_producer_send of `count` messages (tags, keys, properties, binary and
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
    X(rmq_consumer_close)

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

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    started = GetTickCount();
    if (argc < 5) {
        fprintf(stderr, "usage: harness <dll> <namesrv host:port> <topic> <group> [count]\n");
        return 2;
    }
    const char *dll = argv[1], *ns = argv[2], *topic = argv[3], *group = argv[4];
    int count = argc > 5 ? atoi(argv[5]) : 20;
    if (count < 2 || count > MAX_MESSAGES || !plain_name(topic) || !plain_name(group)) {
        fprintf(stderr, "harness: bad count, topic or group\n");
        return 2;
    }

    HMODULE h = LoadLibraryA(dll);
    if (h == NULL) {
        say("FAIL LoadLibrary(%s): error %lu", dll, (unsigned long)GetLastError());
        return 2;
    }
#define LOAD(f)                                                          \
    p_##f = (__typeof__(&f))(void *)GetProcAddress(h, #f);               \
    if (p_##f == NULL) {                                                 \
        say("FAIL GetProcAddress(%s): error %lu", #f, (unsigned long)GetLastError()); \
        return 2;                                                        \
    }
    API(LOAD)
    say("loaded %s", dll);

    int32_t rc;
    char buf[4096];

    /* ---- library: version, errors, panic recovery ---------------------- */
    rc = p_rmq_version(buf, sizeof buf);
    check(rc == RMQ_OK && strlen(buf) >= 5, "rmq_version");
    say("rmq_version: %s", buf);
    p_rmq_set_log_level(30);

    char state[MAX_PATH * 2];
    if (argc > 6) {
        snprintf(state, sizeof state, "%s", argv[6]);
    } else {
        const char *local = getenv("LOCALAPPDATA");
        snprintf(state, sizeof state, "%s\\rmq_native", local ? local : "C:");
    }
    rc = p_rmq_set_state_dir(state, (int64_t)strlen(state));
    if (rc != RMQ_OK) fail("rmq_set_state_dir", rc);
    check(p_rmq_set_state_dir((char *)"relative", 8) == RMQ_ERR_INVALID_ARGUMENT, "rmq_set_state_dir rejects a relative path");
    say("state dir: %s", state);

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

    if (failures) {
        dump_logs();
        say("FAILED: %d failed checks", failures);
        return 1;
    }
    say("OK: %d messages sent and received intact", count);
    return 0;
}
