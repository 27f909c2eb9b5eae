package main

// The remoting protocol of RocketMQ, spoken directly by the admin client,
// the inspection and pull operations and the consumer's checked send-back:
// one request per connection, a JSON header, optionally a body, signed when
// the client has credentials.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sort"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Request codes (RocketMQ's RequestCode) the library sends.
const (
	reqPullMessage          = 11
	reqQueryMessage         = 12
	reqUpdateConsumerOffset = 15
	reqCreateTopic          = 17
	reqGetBrokerConfig      = 26
	reqSearchOffsetByTime   = 29
	reqViewMessageByID      = 33
	reqConsumerSendMsgBack  = 36
	reqGetConsumerList      = 38
	reqCheckClientConfig    = 46
	reqGetRouteInfo         = 105
	reqGetClusterInfo       = 106
	reqGetTopicStats        = 202
	reqGetAllTopicList      = 206
	reqGetConsumeStats      = 208
	reqDeleteTopicInBroker  = 215
	reqDeleteTopicInNamesrv = 216
)

// Response codes (RocketMQ's ResponseCode) the library looks at.
const (
	respRequestNotSupported = 3
	respMessageIllegal      = 13
	respVersionNotSupported = 15
	respNoPermission        = 16
	respTopicNotExist       = 17
	respPullNotFound        = 19
	respPullRetry           = 20
	respPullOffsetMoved     = 21
	respQueryNotFound       = 22
	respNoGroup             = 26 // SUBSCRIPTION_GROUP_NOT_EXIST
)

// uniqueKeyFlag marks a message query by client message id.
const uniqueKeyFlag = "_UNIQUE_KEY_QUERY"

// maxResponse bounds the size of a response frame.
const maxResponse = 256 << 20

// response is a broker's or name server's answer.
type response struct {
	code   int
	remark string
	ext    map[string]string
	body   []byte
}

// refusal is the error of a refused request (code != 0): who ("broker
// a:1") refused what ("the commit"), with the code and remark it answered.
func (r *response) refusal(who, what string) error {
	return errf(brokerCode(r.code, r.remark), "%s refused %s: CODE %d %s", who, what, r.code, r.remark)
}

// opaque numbers the requests.
var opaque int32

// remotingRequest sends one request to the role ("broker", "name server")
// at addr, signed with cr unless cr is empty, and returns the answer; a
// refusal (code != 0) is not an error here.
func remotingRequest(role, addr string, code int, ext map[string]string, body []byte, cr primitive.Credentials, timeout time.Duration) (*response, error) {
	if !cr.IsEmpty() {
		sign(ext, body, cr)
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, errf(C.RMQ_ERR_UNREACHABLE, "%s %s unreachable: %v", role, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	header, _ := json.Marshal(map[string]interface{}{
		"code": code, "language": "GO", "version": 317, "opaque": atomic.AddInt32(&opaque, 1),
		"flag": 0, "extFields": ext,
	})
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(header)))
	frame = append(frame, header...)
	frame = append(frame, body...)
	if _, err := conn.Write(frame); err != nil {
		return nil, errf(C.RMQ_ERR_UNREACHABLE, "write to %s %s: %v", role, addr, err)
	}
	var lens [8]byte
	if _, err := io.ReadFull(conn, lens[:]); err != nil {
		return nil, errf(readCode(err), "read from %s %s: %v", role, addr, err)
	}
	total := binary.BigEndian.Uint32(lens[:4])
	hlen := binary.BigEndian.Uint32(lens[4:]) & 0xFFFFFF
	if total < 4+hlen || total > maxResponse {
		return nil, errf(C.RMQ_ERR_BROKER, "malformed response from %s %s", role, addr)
	}
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return nil, errf(readCode(err), "read from %s %s: %v", role, addr, err)
	}
	var resp struct {
		Code      int               `json:"code"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(rest[:hlen], &resp); err != nil {
		return nil, errf(C.RMQ_ERR_BROKER, "malformed response header from %s %s: %v", role, addr, err)
	}
	return &response{code: resp.Code, remark: resp.Remark, ext: resp.ExtFields, body: rest[hlen:]}, nil
}

// readCode is the status of a failed read: the deadline passed
// (RMQ_ERR_TIMEOUT) or the peer went away (RMQ_ERR_UNREACHABLE).
func readCode(err error) int32 {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return C.RMQ_ERR_TIMEOUT
	}
	return C.RMQ_ERR_UNREACHABLE
}

// sign adds the ACL signature of a request, as the SDK's ACL interceptor
// does: HMAC-SHA1 over the values of the sorted header fields (AccessKey
// included), then the body. The unique-key flag of a message query stays
// out of the signature: brokers leave it out for clients up to version
// 4.9.3 (this one says 317).
func sign(ext map[string]string, body []byte, cr primitive.Credentials) {
	flag, hasFlag := ext[uniqueKeyFlag]
	delete(ext, uniqueKeyFlag)
	ext["AccessKey"] = cr.AccessKey
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(cr.SecretKey))
	for _, k := range keys {
		mac.Write([]byte(ext[k]))
	}
	mac.Write(body)
	ext["Signature"] = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if hasFlag {
		ext[uniqueKeyFlag] = flag
	}
}
