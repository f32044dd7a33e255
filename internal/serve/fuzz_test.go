package serve

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"testing"

	"petbreed/internal/imaging"
)

// Fuzz targets for the request readers: whatever the bytes, they never
// panic, fail only with a client error (4xx) and hand back the whole
// budget; what they accept satisfies the invariants the handlers rely on.

const fuzzBudget = 64 << 20

// clientError fails unless err is an *apiError with a 4xx status.
func clientError(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		if ae.Status < 400 || ae.Status > 499 {
			t.Fatalf("status %d: %v", ae.Status, err)
		}
	default:
		t.Fatalf("%T is not a client error: %v", err, err)
	}
}

// checkImageBody checks an accepted image body: a sniffed image (or
// empty), within the charge, all of which is returned.
func checkImageBody(t *testing.T, b *budget, ch *charge, buf *bytes.Buffer, err error) {
	t.Helper()
	if err != nil {
		clientError(t, err)
		if ch.held != 0 {
			t.Fatalf("failed, and still holds %d bytes", ch.held)
		}
	} else {
		if buf.Len() > 0 {
			if _, err := imaging.Sniff(buf.Bytes()); err != nil {
				t.Fatalf("accepted a body that is not an image: %q", buf.Bytes()[:min(buf.Len(), 16)])
			}
		}
		if ch.held < int64(buf.Len()) {
			t.Fatalf("holds %d bytes of the budget for a %d-byte body", ch.held, buf.Len())
		}
		putBody(buf)
	}
	ch.release()
	if b.inUse() != 0 {
		t.Fatalf("%d bytes of the budget in use after release", b.inUse())
	}
}

func smallPNG(t testing.TB) []byte { return pngOf(t, 3, 2) }

func FuzzReadRawImage(f *testing.F) {
	f.Add(smallPNG(f), true)
	f.Add([]byte("\xff\xd8\xff\xe0garbage"), false)
	f.Add([]byte("GIF89a"), true)
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), true)
	f.Add([]byte("BM"), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, body []byte, declared bool) {
		b := newBudget(fuzzBudget, 0)
		ch := b.newCharge(context.Background())
		size := int64(-1)
		if declared {
			size = int64(len(body))
		}
		buf, err := readRawImage(bytes.NewReader(body), size, ch)
		if err == nil && !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("read %d bytes of a %d-byte body", buf.Len(), len(body))
		}
		checkImageBody(t, b, ch, buf, err)
	})
}

func FuzzReadMultipart(f *testing.F) {
	form := func(field string, data []byte) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary("BOUNDARY")
		mw.WriteField("note", "x")
		w, _ := mw.CreateFormFile(field, "a.png")
		w.Write(data)
		mw.Close()
		return b.Bytes()
	}
	f.Add(form("file", smallPNG(f)), "BOUNDARY")
	f.Add(form("file", []byte("not an image")), "BOUNDARY")
	f.Add(form("other", smallPNG(f)), "BOUNDARY")
	f.Add(form("file", nil), "BOUNDARY")
	f.Add([]byte("--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\x89PNG"), "BOUNDARY")
	f.Add([]byte("--B\r\n\r\n--B--"), "")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		b := newBudget(fuzzBudget, 0)
		ch := b.newCharge(context.Background())
		buf, _, err := readMultipartImage(bytes.NewReader(body), boundary, int64(len(body)), ch)
		checkImageBody(t, b, ch, buf, err)
	})
}

// TestReadBodyCharges: a body is charged what its buffer holds: its
// declared length at once (one allocation, no doubling), else its capacity
// as it grows; over the budget it is 413 before anything is read.
func TestReadBodyCharges(t *testing.T) {
	body := bytes.Repeat([]byte{0xAB}, 300<<10)
	for _, tt := range []struct {
		name     string
		size     int64
		limit    int64
		status   int   // 0: accepted
		maxHeld  int64 // most bytes held once read
		readLeft bool  // the body must not have been read
	}{
		{"declared", int64(len(body)), 1 << 20, 0, int64(len(body)) + 8<<10, false}, // + the allocator's rounding
		{"chunked", -1, 1 << 20, 0, 2*int64(len(body)) + 2*minRead, false},
		{"declared over the budget", int64(len(body)), 200 << 10, 413, 0, true},
		{"chunked over the budget", -1, 200 << 10, 413, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBudget(tt.limit, 0)
			ch := b.newCharge(context.Background())
			r := bytes.NewReader(body)
			buf, err := readBody(r, nil, tt.size, ch)
			if tt.status != 0 {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status != tt.status {
					t.Fatalf("err %v, want %d", err, tt.status)
				}
				if tt.readLeft && r.Len() != len(body) {
					t.Errorf("%d bytes read before refusing", len(body)-r.Len())
				}
			} else {
				if err != nil || !bytes.Equal(buf.Bytes(), body) {
					t.Fatalf("err %v", err)
				}
				// The buffer may come from the pool, bigger than needed: it is
				// charged for what it holds, and not grown beyond that.
				if ch.held != int64(buf.Cap()) || (ch.held > tt.maxHeld && buf.Cap() > maxPooledBody) {
					t.Errorf("holds %d bytes for %d (capacity %d)", ch.held, buf.Len(), buf.Cap())
				}
				putBody(buf)
			}
			ch.release()
			if b.inUse() != 0 {
				t.Errorf("%d in use after release", b.inUse())
			}
		})
	}
}
