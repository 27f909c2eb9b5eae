package bench;

import com.alibaba.fastjson.JSON;
import com.alibaba.fastjson.JSONObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/** Benchmark driver on the Java remoting client (same CLI/JSON protocol as the other drivers). */
public final class Driver {
    static JSONObject spec;

    static int i(String k, int d) { return spec.containsKey(k) ? spec.getIntValue(k) : d; }
    static double f(String k, double d) { return spec.containsKey(k) ? spec.getDoubleValue(k) : d; }
    static String s(String k) { return spec.getString(k); }

    static byte[] body(int size) {
        byte[] b = new byte[size];
        for (int j = 0; j < size; j++) b[j] = (byte) ('a' + j % 26);
        return b;
    }

    static long deadline() {
        double mt = f("max_time", 3600);
        return System.nanoTime() + (long) (mt * 1e9);
    }

    static DefaultMQProducer producer() throws Exception {
        DefaultMQProducer p = new DefaultMQProducer("bench_java_producer");
        p.setNamesrvAddr(s("ns"));
        p.setInstanceName("bench-java-" + ProcessHandle.current().pid());
        p.setSendMsgTimeout(3000);
        p.setRetryTimesWhenSendFailed(2);
        p.setCompressMsgBodyOverHowmuch(4096);
        p.start();
        return p;
    }

    static void warm(DefaultMQProducer p, String topic, byte[] b) {
        for (int j = 0; j < 20; j++) {
            try { p.send(new Message(topic, b)); } catch (Exception e) { /* warm-up only */ }
        }
    }

    static Map<String, Object> result(long n, double el, long errs, Map<String, Double> metrics) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ok", true);
        r.put("n", n);
        r.put("elapsed", el);
        r.put("errors", errs);
        r.put("metrics", metrics);
        return r;
    }

    static Map<String, Double> rate(long n, double el) {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("rate", n / el);
        return m;
    }

    static Map<String, Object> sendSync(int threads) throws Exception {
        DefaultMQProducer p = producer();
        String topic = s("topic");
        byte[] b = body(i("size", 1024));
        warm(p, topic, b);
        long count = i("count", Integer.MAX_VALUE);
        long dl = deadline();
        AtomicLong n = new AtomicLong(), errs = new AtomicLong();
        long t0 = System.nanoTime();
        Thread[] ts = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            ts[t] = new Thread(() -> {
                while (true) {
                    if (n.incrementAndGet() > count || System.nanoTime() > dl) { n.decrementAndGet(); return; }
                    try { p.send(new Message(topic, b)); } catch (Exception e) { errs.incrementAndGet(); }
                }
            });
            ts[t].start();
        }
        for (Thread t : ts) t.join();
        double el = (System.nanoTime() - t0) / 1e9;
        p.shutdown();
        long ok = n.get() - errs.get();
        return result(ok, el, errs.get(), rate(ok, el));
    }

    static Map<String, Object> sendAsync() throws Exception {
        DefaultMQProducer p = producer();
        String topic = s("topic");
        byte[] b = body(i("size", 1024));
        warm(p, topic, b);
        int inflight = i("inflight", 1000);
        long count = i("count", Integer.MAX_VALUE);
        long dl = deadline();
        Semaphore sem = new Semaphore(inflight);
        AtomicLong done = new AtomicLong(), errs = new AtomicLong();
        long t0 = System.nanoTime();
        long sent = 0;
        while (sent < count && System.nanoTime() < dl) {
            sem.acquire();
            try {
                p.send(new Message(topic, b), new SendCallback() {
                    public void onSuccess(SendResult r) { done.incrementAndGet(); sem.release(); }
                    public void onException(Throwable e) { errs.incrementAndGet(); sem.release(); }
                });
            } catch (Exception e) {
                errs.incrementAndGet();
                sem.release();
            }
            sent++;
        }
        sem.acquire(inflight);
        double el = (System.nanoTime() - t0) / 1e9;
        p.shutdown();
        return result(done.get(), el, errs.get(), rate(done.get(), el));
    }

    static Map<String, Object> sendBatch() throws Exception {
        DefaultMQProducer p = producer();
        String topic = s("topic");
        byte[] b = body(i("size", 1024));
        warm(p, topic, b);
        int batch = i("batch", 32);
        long count = i("count", Integer.MAX_VALUE);
        long dl = deadline();
        long n = 0, errs = 0;
        long t0 = System.nanoTime();
        while (n < count && System.nanoTime() < dl) {
            List<Message> msgs = new ArrayList<>(batch);
            for (int j = 0; j < batch; j++) msgs.add(new Message(topic, b));
            try { p.send(msgs); n += batch; } catch (Exception e) { errs++; }
        }
        double el = (System.nanoTime() - t0) / 1e9;
        p.shutdown();
        return result(n, el, errs, rate(n, el));
    }

    static DefaultMQPushConsumer consumer(ConsumeFromWhere from) throws Exception {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(s("group"));
        c.setNamesrvAddr(s("ns"));
        c.setInstanceName("bench-java-c-" + ProcessHandle.current().pid());
        c.setConsumeFromWhere(from);
        c.subscribe(s("topic"), "*");
        return c;
    }

    static Map<String, Object> drain() throws Exception {
        long count = i("count", 100000);
        DefaultMQPushConsumer c = consumer(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        AtomicLong n = new AtomicLong(), first = new AtomicLong(), last = new AtomicLong();
        CountDownLatch done = new CountDownLatch(1);
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            long now = System.nanoTime();
            first.compareAndSet(0, now);
            if (n.addAndGet(msgs.size()) >= count) {
                last.compareAndSet(0, now);
                done.countDown();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        long t0 = System.nanoTime();
        c.start();
        done.await((long) (f("max_time", 3600) * 1000), TimeUnit.MILLISECONDS);
        long end = last.get() == 0 ? System.nanoTime() : last.get();
        long got = n.get();
        c.shutdown();
        if (first.get() == 0) return error("no message received");
        double el = (end - first.get()) / 1e9;
        Map<String, Double> m = rate(got, el);
        m.put("first_ms", (first.get() - t0) / 1e6);
        return result(got, el, 0, m);
    }

    static Map<String, Object> latency() throws Exception {
        // from the first offset: with "last", a new group fixes each queue's start
        // at its first pull and skips what was stored on that queue just before
        DefaultMQPushConsumer c = consumer(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        List<Double> lats = new ArrayList<>();
        AtomicBoolean warmSeen = new AtomicBoolean();
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            long now = wallNanos();
            for (MessageExt m : msgs) {
                byte[] mb = m.getBody();
                if (mb[0] == 'W') { warmSeen.set(true); continue; }
                long sent = Long.parseLong(new String(mb, 1, 19, StandardCharsets.US_ASCII));
                synchronized (lats) { lats.add((now - sent) / 1e6); }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        DefaultMQProducer p = producer();
        String topic = s("topic");
        byte[] b = body(i("size", 1024));
        long wdl = System.nanoTime() + 30_000_000_000L;
        while (!warmSeen.get() && System.nanoTime() < wdl) {
            byte[] w = b.clone();
            w[0] = 'W';
            try { p.send(new Message(topic, w)); } catch (Exception e) { /* retry */ }
            Thread.sleep(50);
        }
        if (!warmSeen.get()) return error("consumer received nothing within 30 s");
        int rateHz = i("rate", 1000);
        int total = (int) (rateHz * f("duration", 10));
        long interval = 1_000_000_000L / rateHz;
        AtomicLong errs = new AtomicLong();
        long t0 = System.nanoTime();
        for (int k = 0; k < total; k++) {
            long due = t0 + k * interval;
            long d = due - System.nanoTime();
            if (d > 0) TimeUnit.NANOSECONDS.sleep(d);
            byte[] m = b.clone();
            byte[] ts = String.format("T%019d", wallNanos()).getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(ts, 0, m, 0, ts.length);
            try {
                p.send(new Message(topic, m), new SendCallback() {
                    public void onSuccess(SendResult r) { }
                    public void onException(Throwable e) { errs.incrementAndGet(); }
                });
            } catch (Exception e) { errs.incrementAndGet(); }
        }
        double sendEl = (System.nanoTime() - t0) / 1e9;
        long wait = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < wait) {
            synchronized (lats) { if (lats.size() + errs.get() >= total) break; }
            Thread.sleep(50);
        }
        p.shutdown();
        c.shutdown();
        double[] a;
        synchronized (lats) { a = lats.stream().mapToDouble(Double::doubleValue).toArray(); }
        if (a.length == 0) return error("no latency samples");
        Arrays.sort(a);
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("p50", a[(int) (0.50 * (a.length - 1))]);
        m.put("p99", a[(int) (0.99 * (a.length - 1))]);
        m.put("max", a[a.length - 1]);
        m.put("lost", (double) (total - a.length));
        m.put("achieved_rate", total / sendEl);
        return result(a.length, sendEl, errs.get(), m);
    }

    // wall clock in ns (ms resolution from currentTimeMillis, sub-ms from nanoTime offsets)
    static final long BASE_WALL = System.currentTimeMillis() * 1_000_000L;
    static final long BASE_NANO = System.nanoTime();
    static long wallNanos() { return BASE_WALL + (System.nanoTime() - BASE_NANO); }

    static Map<String, Object> error(String msg) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ok", false);
        r.put("error", msg);
        return r;
    }

    /** This process's own peak RSS in KiB (VmHWM; 0 where there is none): the
     *  orchestrator's wait4 figure would include the pages its fork copied. */
    static long peakRssKib() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception e) {
            // not Linux
        }
        return 0;
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("rocketmq.client.logUseSlf4j", "false");
        spec = JSON.parseObject(args[0]);
        Map<String, Object> r;
        try {
            switch (s("workload")) {
                case "sync1": r = sendSync(1); break;
                case "sync8": r = sendSync(i("threads", 8)); break;
                case "async": r = sendAsync(); break;
                case "batch": r = sendBatch(); break;
                case "drain": r = drain(); break;
                case "latency": r = latency(); break;
                default: r = error("unknown workload " + s("workload"));
            }
        } catch (Exception e) {
            r = error(e.toString());
        }
        r.put("peak_rss_kib", peakRssKib());
        System.out.println(JSON.toJSONString(r));
        System.out.flush();
        System.exit(Boolean.TRUE.equals(r.get("ok")) ? 0 : 1);
    }
}
