package main

import (
	"testing"

	"github.com/apache/rocketmq-client-go/v2/producer"
)

// The dispatcher corks the connections it finds in the SDK's internals
// (cork.go): an SDK whose layout differs silently loses the corking, so
// this test says when it does.
func TestBrokerConnsFindsTheSDKsTable(t *testing.T) {
	p, err := producer.NewDefaultProducer(producer.WithNameServer([]string{"127.0.0.1:1"}),
		producer.WithInstanceName("cork_test"))
	if err != nil {
		t.Fatal(err)
	}
	if sdkConnTable(p) == nil {
		t.Fatal("the SDK producer's connection table was not found")
	}
	if sdkConnTable(struct{}{}) != nil || sdkConnTable(nil) != nil {
		t.Fatal("found a connection table where there is none")
	}
	var c corker
	c.cork() // no table: nothing happens
	c.uncork()
}
