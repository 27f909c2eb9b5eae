package main

import (
	"bytes"
	"compress/zlib"
	"io"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func alphabet(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// TestCompressRoundTrip: a compressed body inflates to the original, also
// when pooled writers are reused across levels and sizes.
func TestCompressRoundTrip(t *testing.T) {
	for _, level := range []int{1, 5, 9, 5} {
		for _, n := range []int{4096, 65536, 1 << 20} {
			st := &producerState{compressAt: 4096, level: level}
			body := alphabet(n)
			msg := &primitive.Message{Body: body}
			st.compress(msg)
			if !msg.Compress || len(msg.CompressedBody) >= n {
				t.Fatalf("level %d, %d bytes: not compressed", level, n)
			}
			r, err := zlib.NewReader(bytes.NewReader(msg.CompressedBody))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("level %d, %d bytes: round trip differs (%v)", level, n, err)
			}
		}
	}
}

// BenchmarkCompress64K is the library's compression of one 64 KiB body.
func BenchmarkCompress64K(b *testing.B) {
	st := &producerState{compressAt: 4096, level: 5}
	body := alphabet(65536)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		st.compress(&primitive.Message{Body: body})
	}
}
