package httpjson

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	cause := errors.New("disk on fire")
	for _, tt := range []struct {
		e          *Error
		retryAfter string
	}{
		{Errorf(http.StatusUnsupportedMediaType, "not an image", "got %d bytes of %s", 12, "text"), ""},
		{&Error{Status: http.StatusServiceUnavailable, Msg: "overloaded"}, "1"},
		{&Error{Status: 500, Msg: "cannot read", Detail: "x", Cause: cause}, ""},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, tt.e)
		var b map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tt.e.Status || b["error"] != tt.e.Msg || b["detail"] != tt.e.Detail ||
			rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Retry-After") != tt.retryAfter {
			t.Errorf("%+v: %d %v %v", tt.e, rec.Code, b, rec.Header())
		}
		if _, leaked := b["cause"]; leaked {
			t.Error("the cause was sent")
		}
	}
	e := &Error{Status: 500, Msg: "m", Cause: cause}
	if !errors.Is(e, cause) || e.Error() != "m" {
		t.Errorf("%v", e)
	}
}

func TestWriteUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 200, math.NaN())
	if rec.Code != 500 || !json.Valid(rec.Body.Bytes()) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestBearer(t *testing.T) {
	for _, c := range []struct {
		header, token string
		want          bool
	}{
		{"Bearer tok", "tok", true},
		{"Bearer  tok ", "tok", true},
		{"Bearer tok", "", false}, // no token configured: closed
		{"", "", false},
		{"Bearer", "tok", false},
		{"bearer tok", "tok", false},
		{"Basic tok", "tok", false},
		{"Bearer tok2", "tok", false},
		{"Bearer to", "tok", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if got := Bearer(r, c.token); got != c.want {
			t.Errorf("Bearer(%q, %q) = %v, want %v", c.header, c.token, got, c.want)
		}
	}
}
