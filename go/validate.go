package main

// Checks of values the caller gives: resource names, text fields,
// credentials, name-server addresses and instance names.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// validTopic checks a topic name the way the broker does: 1 to 127
// characters from letters, digits, '%', '|', '_' and '-' (a loop, not a
// regular expression: it runs for every message sent).
func validTopic(t string) error {
	ok := len(t) >= 1 && len(t) <= 127
	for i := 0; ok && i < len(t); i++ {
		c := t[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '_' || c == '-'
	}
	if !ok {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT,
			"invalid topic name %q: 1 to 127 characters from letters, digits, '%%', '|', '_' and '-'", t)
	}
	return nil
}

// validText rejects characters that corrupt RocketMQ's property encoding.
func validText(what, s string) error {
	if strings.ContainsAny(s, "\x00\x01\x02") {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "%s must not contain the control characters \\x00, \\x01 or \\x02: %q", what, s)
	}
	return nil
}

// credentials checks that an access key and a secret key come together.
func credentials(ak, sk string) (primitive.Credentials, error) {
	if (ak == "") != (sk == "") {
		return primitive.Credentials{}, errf(C.RMQ_ERR_INVALID_ARGUMENT, "access_key and secret_key must be given together")
	}
	return primitive.Credentials{AccessKey: ak, SecretKey: sk}, nil
}

// nameServers parses "host:port[;host:port]" and validates each address.
func nameServers(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "name_server is required (\"host:port\")")
	}
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid name server address %q (expected host:port)", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "name_server is required (\"host:port\")")
	}
	return out, nil
}

// instanceNo numbers the instance names uniqueInstance makes.
var instanceNo uint64

// uniqueInstance gives every client its own SDK instance name: the SDK
// shares one client per ClientIP@InstanceName in a process.
func uniqueInstance(given string) (string, error) {
	if given != "" {
		// it becomes part of file paths (broadcasting offsets), also on Windows
		if strings.ContainsAny(given, "\x00\x01\x02:\\/*?\"<>| ") {
			return "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "instance_name %q must not contain spaces or any of : \\ / * ? \" < > |", given)
		}
		return given, nil
	}
	return fmt.Sprintf("rmq_native-%d-%d-%d", pid, atomic.AddUint64(&instanceNo, 1), time.Now().UnixNano()%1000000), nil
}
