package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// sign signs the values of the sorted header fields (AccessKey included)
// and the body, leaving the unique-key flag of a message query out of the
// signature but in the request.
func TestSignLeavesTheUniqueKeyFlagOut(t *testing.T) {
	ext := map[string]string{"topic": "T", "key": "k", uniqueKeyFlag: "true"}
	sign(ext, []byte("body"), primitive.Credentials{AccessKey: "AK", SecretKey: "SK"})
	// sorted keys: AccessKey, key, topic
	mac := hmac.New(sha1.New, []byte("SK"))
	for _, v := range []string{"AK", "k", "T", "body"} {
		mac.Write([]byte(v))
	}
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if ext["Signature"] != want || ext["AccessKey"] != "AK" || ext[uniqueKeyFlag] != "true" {
		t.Fatalf("signed header %v, want Signature %s, AccessKey AK and the flag kept", ext, want)
	}
}
