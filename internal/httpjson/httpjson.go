// Package httpjson is the one home of the HTTP API's answer format: JSON
// bodies, and errors as {"error": ..., "detail": ...} with their status.
// The server (package serve) and the web page's endpoints (package web)
// both answer this way.
package httpjson

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error is an answer to a request that failed, with its HTTP status.
type Error struct {
	Status int
	Msg    string // short: what kind of error ("not an image")
	Detail string // what exactly
	Cause  error  // logged for server errors, never sent
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Msg
	}
	return e.Msg + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf makes an Error whose detail is formatted.
func Errorf(status int, msg, format string, args ...any) *Error {
	return &Error{Status: status, Msg: msg, Detail: fmt.Sprintf(format, args...)}
}

// Write answers v as JSON with the status. A value that cannot be encoded
// is a 500 with an error body instead.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","detail":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// body is the JSON form of an Error.
type body struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// WriteError answers e as {"error", "detail"} with its status; a 503 also
// says when to retry.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	Write(w, e.Status, body{e.Msg, e.Detail})
}

// Bearer reports whether r carries token as its bearer token
// (Authorization: Bearer TOKEN), compared in constant time. An empty token
// never matches: an endpoint without a configured token is closed.
func Bearer(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}
