package main

// Unit tests of the library's pure logic: error classification, argument
// checks, name-server parsing, takeBatch, the consumer's window and the
// operations parsers. No
// broker: everything here runs in `go test ./...`.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// headerCodes reads the status codes of rmq_native.h (test files cannot
// use cgo, so they cannot name C.RMQ_ERR_*).
func headerCodes(t *testing.T) map[string]int32 {
	t.Helper()
	h, err := os.ReadFile("rmq_native.h")
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int32{}
	for _, m := range regexp.MustCompile(`#define (RMQ_(?:OK|ERR_[A-Z_]+)) (\d+)`).FindAllSubmatch(h, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		codes[string(m[1])] = int32(n)
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d status codes in rmq_native.h", len(codes))
	}
	return codes
}

type fakeNetErr struct{ timeout bool }

func (e fakeNetErr) Error() string   { return "i/o" }
func (e fakeNetErr) Timeout() bool   { return e.timeout }
func (e fakeNetErr) Temporary() bool { return false }

var _ net.Error = fakeNetErr{}

func TestClassify(t *testing.T) {
	c := headerCodes(t)
	cases := []struct {
		err  error
		want string
	}{
		{errf(c["RMQ_ERR_CLOSED"], "closed"), "RMQ_ERR_CLOSED"},
		{fmt.Errorf("wrapped: %w", errf(c["RMQ_ERR_SEND_UNKNOWN"], "x")), "RMQ_ERR_SEND_UNKNOWN"},
		{primitive.MQBrokerErr{ResponseCode: 17, ErrorMessage: "topic[T] not exist"}, "RMQ_ERR_NO_ROUTE"},
		{&primitive.MQBrokerErr{ResponseCode: 16, ErrorMessage: "check signature failed"}, "RMQ_ERR_AUTH"},
		{errors.New("CODE: 13  DESC: the message is illegal"), "RMQ_ERR_REJECTED"},
		{errors.New("send failed, code: 2, busy"), "RMQ_ERR_BROKER"},
		{context.DeadlineExceeded, "RMQ_ERR_TIMEOUT"},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), "RMQ_ERR_TIMEOUT"},
		{fakeNetErr{timeout: true}, "RMQ_ERR_TIMEOUT"},
		{fakeNetErr{timeout: false}, "RMQ_ERR_UNREACHABLE"},
		{errors.New("request Timeout"), "RMQ_ERR_TIMEOUT"},
		{errors.New("topic route info not found"), "RMQ_ERR_NO_ROUTE"},
		{errors.New("dial tcp 127.0.0.1:1: connection refused"), "RMQ_ERR_UNREACHABLE"},
		{errors.New("write: broken pipe"), "RMQ_ERR_UNREACHABLE"},
		{errors.New("something else"), "RMQ_ERR_STATE"},
	}
	for _, tc := range cases {
		if got := classify(tc.err); got != c[tc.want] {
			t.Errorf("classify(%v) = %d, want %s (%d)", tc.err, got, tc.want, c[tc.want])
		}
	}
}

// Every code brokerCode returns is one of the header's, and the codes it
// does not list are the retriable RMQ_ERR_BROKER.
func TestBrokerCodesAreHeaderCodes(t *testing.T) {
	c := headerCodes(t)
	known := map[int32]bool{}
	for _, v := range c {
		known[v] = true
	}
	for code := 0; code < 300; code++ {
		for _, remark := range []string{"", "sending message is forbidden"} {
			if got := brokerCode(code, remark); !known[got] || got == c["RMQ_OK"] {
				t.Errorf("brokerCode(%d, %q) = %d, not an error code of rmq_native.h", code, remark, got)
			}
		}
	}
	if brokerCode(999, "") != c["RMQ_ERR_BROKER"] {
		t.Error("an unlisted broker code is not RMQ_ERR_BROKER")
	}
}

func TestErrfPrefixesMessages(t *testing.T) {
	if e := errf(1, "bad %s", "x"); e.Error() != "rmq_native: bad x" || e.code != 1 {
		t.Errorf("errf: %q %d", e.Error(), e.code)
	}
}

func TestNameServers(t *testing.T) {
	good := map[string][]string{
		"127.0.0.1:9876":             {"127.0.0.1:9876"},
		" a:1 ; b:2 ":                {"a:1", "b:2"},
		"a:1,b:2;":                   {"a:1", "b:2"},
		"[::1]:9876":                 {"[::1]:9876"},
		"namesrv.example.invalid:80": {"namesrv.example.invalid:80"},
	}
	for in, want := range good {
		got, err := nameServers(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("nameServers(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "  ", ";", "localhost", ":9876", "a:1;b", "host:"} {
		if _, err := nameServers(in); err == nil || classify(err) != 1 {
			t.Errorf("nameServers(%q) accepted (or not INVALID_ARGUMENT): %v", in, err)
		}
	}
}

func TestValidTopic(t *testing.T) {
	for _, ok := range []string{"a", "T_1-x", "%RETRY%g", "a|b", string(make127('t'))} {
		if err := validTopic(ok); err != nil {
			t.Errorf("validTopic(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", "caf\u00e9", "x\x00", "a\n", "a.b", string(make127('t')) + "t"} {
		if err := validTopic(bad); err == nil || classify(err) != 1 {
			t.Errorf("validTopic(%q) accepted", bad)
		}
	}
}

func make127(c byte) []byte {
	b := make([]byte, 127)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestValidText(t *testing.T) {
	for _, ok := range []string{"", "tag", "gr\u00fcn", "a b", "\x03\x7f"} {
		if err := validText("tags", ok); err != nil {
			t.Errorf("validText(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"\x00", "a\x01", "\x02b"} {
		err := validText("tags", bad)
		if err == nil || classify(err) != 1 {
			t.Errorf("validText(%q) accepted", bad)
		} else if !regexp.MustCompile(`^rmq_native: tags must not contain`).MatchString(err.Error()) {
			t.Errorf("validText message: %q", err.Error())
		}
	}
}

func TestUniqueInstance(t *testing.T) {
	a, _ := uniqueInstance("")
	b, _ := uniqueInstance("")
	if a == b || a == "" {
		t.Errorf("generated instance names %q and %q", a, b)
	}
	if got, err := uniqueInstance("mine"); got != "mine" || err != nil {
		t.Errorf("uniqueInstance(mine) = %q, %v", got, err)
	}
	for _, bad := range []string{"a b", "a:b", "a/b", `a\b`, "a*", "a?", `a"`, "a<", "a>", "a|", "a\x00"} {
		if _, err := uniqueInstance(bad); err == nil {
			t.Errorf("uniqueInstance(%q) accepted", bad)
		}
	}
}

func TestTakeBatch(t *testing.T) {
	ch := make(chan int, 10)
	done := make(chan struct{})
	if got := takeBatch(ch, 5, 0, done); len(got) != 0 {
		t.Errorf("empty channel, no wait: %v", got)
	}
	for i := 0; i < 7; i++ {
		ch <- i
	}
	if got := takeBatch(ch, 5, 0, done); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Errorf("at most max, in order: %v", got)
	}
	if got := takeBatch(ch, 5, time.Second, done); fmt.Sprint(got) != "[5 6]" {
		t.Errorf("what is there, without waiting for more: %v", got)
	}
	start := time.Now()
	if got := takeBatch(ch, 5, 50*time.Millisecond, done); len(got) != 0 || time.Since(start) < 40*time.Millisecond {
		t.Errorf("waits for the timeout: %v after %v", got, time.Since(start))
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		ch <- 9
	}()
	if got := takeBatch(ch, 5, 10*time.Second, done); fmt.Sprint(got) != "[9]" {
		t.Errorf("the first item that arrives: %v", got)
	}
	close(done)
	start = time.Now()
	if got := takeBatch(ch, 5, 10*time.Second, done); len(got) != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("done ends the wait: %v after %v", got, time.Since(start))
	}
}

// The window hands out room for several messages at once, serves waiters
// in order, and lets a waiter go when done is closed.
func TestWindow(t *testing.T) {
	done := make(chan struct{})
	w := &window{free: 4}
	if got := w.take(3, done); got != 3 {
		t.Fatalf("take(3) of 4 free = %d", got)
	}
	if got := w.take(3, done); got != 1 {
		t.Fatalf("take(3) of 1 free = %d, want the 1 there is", got)
	}
	first, second := make(chan int), make(chan int)
	go func() { first <- w.take(2, done) }()
	time.Sleep(20 * time.Millisecond) // first waits before second
	go func() { second <- w.take(5, done) }()
	time.Sleep(20 * time.Millisecond)
	w.give(4) // 2 to the first waiter, the 2 left to the second
	if a, b := <-first, <-second; a != 2 || b != 2 {
		t.Fatalf("give(4) to waiters of 2 and 5 = %d, %d; want 2, 2", a, b)
	}
	go func() { first <- w.take(1, done) }()
	time.Sleep(20 * time.Millisecond)
	close(done)
	if got := <-first; got != 0 {
		t.Fatalf("take after close = %d, want 0", got)
	}
}

func TestParseTable(t *testing.T) {
	body := []byte(`{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"maxOffset":10,"minOffset":2},` +
		`{"brokerName":"broker-b","queueId":0,"topic":"T"}:{"maxOffset":3,"minOffset":0}}}`)
	var got []string
	err := parseTable(body, func(k mqKey, v []byte) error {
		got = append(got, fmt.Sprintf("%s/%d/%s=%s", k.BrokerName, k.QueueID, k.Topic, v))
		return nil
	})
	want := `[broker-a/1/T={"maxOffset":10,"minOffset":2} broker-b/0/T={"maxOffset":3,"minOffset":0}]`
	if err != nil || fmt.Sprint(got) != want {
		t.Errorf("parseTable: %v %v", got, err)
	}
	stop := errors.New("stop")
	if err := parseTable(body, func(mqKey, []byte) error { return stop }); err != stop {
		t.Errorf("the callback's error is returned: %v", err)
	}
	if err := parseTable([]byte(`{"brokerName":"a","queueId":"x"}:{}`), func(mqKey, []byte) error { return nil }); err == nil {
		t.Error("a malformed key is an error")
	}
}

func TestBrokerMasters(t *testing.T) {
	body := []byte(`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"C"},` +
		`{"brokerAddrs":{"1":"127.0.0.1:10931"},"brokerName":"broker-s","cluster":"C"},` +
		`{"brokerAddrs":{"0":"127.0.0.1:10941"},"brokerName":"broker-b","cluster":"C"}]}`)
	got := brokerMasters(body)
	want := map[string]string{"broker-a": "127.0.0.1:10911", "broker-b": "127.0.0.1:10941"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("brokerMasters = %v, want %v (a broker without master 0 is left out)", got, want)
	}
}

func TestIsSystemTopic(t *testing.T) {
	brokers := map[string]string{"broker-a": "x"}
	clusters := map[string]bool{"DefaultCluster": true}
	for _, s := range []string{"TBW102", "SCHEDULE_TOPIC_XXXX", "broker-a", "DefaultCluster", "DefaultCluster_REPLY_TOPIC",
		"%RETRY%g", "%DLQ%g", "RMQ_SYS_TRACE_TOPIC", "rmq_sys_x"} {
		if !isSystemTopic(s, brokers, clusters) {
			t.Errorf("%q is a system topic", s)
		}
	}
	for _, u := range []string{"orders", "broker-b", "Other_REPLY_TOPIC", "RETRY"} {
		if isSystemTopic(u, brokers, clusters) {
			t.Errorf("%q is not a system topic", u)
		}
	}
}

func TestTagSet(t *testing.T) {
	for _, all := range []string{"", " ", "*", " * "} {
		if tagSet(all) != nil {
			t.Errorf("tagSet(%q) is not nil (every tag)", all)
		}
	}
	got := tagSet(" a || b||a ||")
	if len(got) != 2 || !got["a"] || !got["b"] {
		t.Errorf("tagSet = %v", got)
	}
}
