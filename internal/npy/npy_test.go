package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func TestWriteFloat32(t *testing.T) {
	var buf bytes.Buffer
	data := []float32{1, -2.5, float32(math.Pi), 0, 7, 8}
	if err := WriteFloat32(&buf, data, []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("bad magic %q", b[:8])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	header := string(b[10 : 10+hl])
	if (10+hl)%64 != 0 || !strings.HasSuffix(header, "\n") {
		t.Errorf("header not padded to 64 bytes: %d %q", 10+hl, header)
	}
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'shape': (1, 2, 3)") {
		t.Errorf("header %q", header)
	}
	body := b[10+hl:]
	if len(body) != 4*len(data) {
		t.Fatalf("body %d bytes", len(body))
	}
	for i, v := range data {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])); got != v {
			t.Errorf("value %d = %v, want %v", i, got, v)
		}
	}
	if err := WriteFloat32(&buf, data, []int{4}); err == nil {
		t.Error("shape mismatch accepted")
	}
	buf.Reset()
	WriteFloat32(&buf, []float32{1, 2}, []int{2})
	if !strings.Contains(buf.String(), "'shape': (2,)") {
		t.Errorf("1-d shape must be a Python 1-tuple: %q", buf.String()[:70])
	}
}
