package main

// The record layouts of rmq_native.h, encoded in one place. Every *_poll
// export hands its caller one library-allocated buffer of records built by
// these functions; src/rmq_native/_wire.py decodes them. Both sides are
// tested against the same byte fixtures (tests/wire_fixtures.json, written
// by `go test -run TestWire -update`). All integers are little-endian.

import (
	"encoding/binary"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// systemProperties are RocketMQ's own message properties; only the others
// are shown to the caller as user properties.
var systemProperties = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`KEYS TAGS WAIT DELAY RETRY_TOPIC REAL_TOPIC REAL_QID TRAN_MSG PGROUP
		MIN_OFFSET MAX_OFFSET BUYER_ID ORIGIN_MESSAGE_ID TRANSFER_FLAG CORRECTION_FLAG MQ2_FLAG
		RECONSUME_TIME MSG_REGION TRACE_ON UNIQ_KEY MAX_RECONSUME_TIMES CONSUME_START_TIME
		TRAN_PREPARED_QUEUE_OFFSET TRANSACTION_CHECK_TIMES CHECK_IMMUNITY_TIME_IN_SECONDS INSTANCE_ID
		CORRELATION_ID REPLY_TO_CLIENT TTL ARRIVE_TIME PUSH_REPLY_TIME CLUSTER MSG_TYPE SHARDING_KEY
		__transactionId__ __STARTDELIVERTIME TIMER_DELIVER_MS TIMER_DELAY_SEC TIMER_DELAY_MS
		TIMER_OUT_MS TIMER_ENQUEUE_MS TIMER_DEQUEUE_MS TIMER_ROLL_TIMES TIMER_DEL_UNIQKEY
		TIMER_DELAY_LEVEL INNER_NUM INNER_BASE INNER_MULTI_DISPATCH INNER_MULTI_QUEUE_OFFSET
		DLQ_ORIG_TOPIC DLQ_ORIG_MESSAGE_ID __SHARDINGKEY TRACE_CONTEXT POP_CK POP_CK_OFFSET
		1ST_POP_TIME __BORNHOST bname __SERVER_RECEIVE_TIME`) {
		systemProperties[k] = true
	}
}

func isSystemProperty(k string) bool { return systemProperties[k] }

// appendField appends a uint32 length and the bytes of s.
func appendField(buf []byte, s string) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// encodeMessageRecord appends one record in the layout of rmq_consumer_poll:
// the uint64 id (a delivery id, a transaction check id, or 0 for messages
// with nothing to settle), then the message.
func encodeMessageRecord(buf []byte, id uint64, m *primitive.MessageExt) []byte {
	return appendMessageRecord(buf, id, m, messageFields(m))
}

// messageHeadSize is the fixed part of a message record: id, queue,
// reconsume times, three int64s and eight lengths.
const messageHeadSize = 8 + 4 + 4 + 3*8 + 8*4

// messageFields are the record's text fields in their order. The tags, keys
// and user properties (key NUL value NUL ..., RocketMQ's own properties
// left out) come from one pass over the message's property map
// (withProperties).
func messageFields(m *primitive.MessageExt) [7]string {
	brokerName := ""
	if m.Queue != nil {
		brokerName = m.Queue.BrokerName
	}
	var tags, keys string
	var props []byte
	withProperties(&m.Message, func(all map[string]string) {
		for k, v := range all {
			switch {
			case k == primitive.PropertyTags:
				tags = v
			case k == primitive.PropertyKeys:
				keys = v
			case !isSystemProperty(k):
				props = append(append(append(append(props, k...), 0), v...), 0)
			}
		}
	})
	return [7]string{m.Topic, tags, keys, m.MsgId, m.OffsetMsgId, brokerName, string(props)}
}

// sdkProps locates the property map of the SDK's Message and the lock that
// guards it (unexported fields). The SDK offers no way to read the map in
// place: GetProperties copies it, each GetProperty takes the lock, and
// MarshallProperties builds a string of all of them (0.8 µs and 5
// allocations for the nine properties of a delivered message, against
// 0.14 µs and none in place: BenchmarkMessageFields). ok is false when
// the layout is not the one of v2.1.2 (TestMessagePropertiesFindsTheSDKsMap
// fails then) and withProperties falls back to GetProperties.
var sdkProps = func() (p struct {
	ok      bool
	mapOff  uintptr
	lockOff uintptr
}) {
	t := reflect.TypeOf(primitive.Message{})
	mf, ok1 := t.FieldByName("properties")
	lf, ok2 := t.FieldByName("mutex")
	p.ok = ok1 && ok2 && mf.Type == reflect.TypeOf(map[string]string(nil)) && lf.Type == reflect.TypeOf(sync.RWMutex{})
	p.mapOff, p.lockOff = mf.Offset, lf.Offset
	return p
}()

// withProperties calls f with the property map of m under its read lock
// (f must neither keep nor change the map).
func withProperties(m *primitive.Message, f func(map[string]string)) {
	if !sdkProps.ok {
		f(m.GetProperties())
		return
	}
	lock := (*sync.RWMutex)(unsafe.Add(unsafe.Pointer(m), sdkProps.lockOff))
	lock.RLock()
	defer lock.RUnlock()
	f(*(*map[string]string)(unsafe.Add(unsafe.Pointer(m), sdkProps.mapOff)))
}

// messageRecordSize is the size of the record appendMessageRecord appends.
func messageRecordSize(m *primitive.MessageExt, fields *[7]string) int {
	n := messageHeadSize + len(m.Body)
	for _, f := range fields {
		n += len(f)
	}
	return n
}

// appendMessageRecord is encodeMessageRecord with the text fields already
// taken from the message (see messageFields).
func appendMessageRecord(buf []byte, id uint64, m *primitive.MessageExt, fields [7]string) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, id)
	queueID := 0
	if m.Queue != nil {
		queueID = m.Queue.QueueId
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(queueID))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(m.ReconsumeTimes))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.QueueOffset))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.BornTimestamp))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.StoreTimestamp))
	for _, f := range fields {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(f)))
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(m.Body)))
	for _, f := range fields {
		buf = append(buf, f...)
	}
	return append(buf, m.Body...)
}

// encodeCompletion appends one record of rmq_producer_poll_completions: the
// outcome of the asynchronous send with token. code is RMQ_OK (r is the
// send's result) or an RMQ_ERR_* code with errText (r then carries only the
// msg_id the send had). The five text lengths come first, in the fixed
// part, so a reader finds every field (and the next record) from one read.
func encodeCompletion(buf []byte, token uint64, code int32, errText string, r *primitive.SendResult) []byte {
	if r == nil {
		r = &primitive.SendResult{}
	}
	queueID, brokerName := 0, ""
	if r.MessageQueue != nil {
		queueID, brokerName = r.MessageQueue.QueueId, r.MessageQueue.BrokerName
	}
	texts := [5]string{r.MsgID, r.OffsetMsgID, brokerName, r.TransactionID, errText}
	buf = binary.LittleEndian.AppendUint64(buf, token)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(code))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(queueID))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(r.QueueOffset))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.Status))
	for _, f := range texts {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(f)))
	}
	for _, f := range texts {
		buf = append(buf, f...)
	}
	return buf
}

// encodeReply appends one record of rmq_producer_poll_replies: the request's
// token, code (RMQ_OK or RMQ_ERR_*), the error text, and when reply is not
// nil the reply in the layout of rmq_consumer_poll (id 0).
func encodeReply(buf []byte, token uint64, code int32, errText string, reply *primitive.MessageExt) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, token)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(code))
	buf = appendField(buf, errText)
	if reply != nil {
		buf = encodeMessageRecord(buf, 0, reply)
	}
	return buf
}

// encodeLogRecord appends one record of rmq_log_poll: int32 level, then the
// text as a field.
func encodeLogRecord(buf []byte, level int32, text string) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(level))
	return appendField(buf, text)
}
