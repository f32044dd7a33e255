package serve

import (
	"net/http"
	"testing"
)

func TestAnswerEncoding(t *testing.T) {
	for _, tt := range []struct{ accept, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"deflate", "deflate"},
		{"gzip, deflate", "gzip"},
		{"deflate, gzip", "gzip"},
		{"deflate;q=1, gzip;q=0.8", "deflate"},
		{"GZIP", "gzip"},
		{"gzip;q=0", ""},
		{"gzip;q=0, deflate;q=0.1", "deflate"},
		{"*", "gzip"},
		{"br", ""},
		{"identity", ""},
		{"gzip;q=lots", ""},
		{" deflate ; q=0.5 ", "deflate"},
	} {
		r := &http.Request{Header: http.Header{"Accept-Encoding": {tt.accept}}}
		if got := answerEncoding(r); got != tt.want {
			t.Errorf("Accept-Encoding %q: %q, want %q", tt.accept, got, tt.want)
		}
	}
}
