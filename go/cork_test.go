package main

import (
	"testing"

	"github.com/apache/rocketmq-client-go/v2/producer"
)

// The library corks the connections it finds in the SDK's internals, with
// an interceptor it installs there (cork.go): an SDK whose layout differs
// silently loses the corking, so this test says when it does.
func TestSDKConnsFindsTheSDKsInternals(t *testing.T) {
	p, err := producer.NewDefaultProducer(producer.WithNameServer([]string{"127.0.0.1:1"}),
		producer.WithInstanceName("cork_test"))
	if err != nil {
		t.Fatal(err)
	}
	if newSDKConns(p) == nil {
		t.Fatal("the SDK producer's connection table was not found")
	}
	if corkSupported {
		c, _ := sdkClientOf(p)
		f, ok := sdkField(c, "remoteClient", "interceptor")
		if !ok || f.IsNil() {
			t.Fatal("the corking interceptor was not installed")
		}
	}
	if newSDKConns(struct{}{}) != nil || newSDKConns(nil) != nil {
		t.Fatal("found a connection table where there is none")
	}
	var c corker
	c.cork() // no table: nothing happens
	c.uncork()
}
