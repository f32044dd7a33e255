package ab

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"

	"petbreed/internal/httpjson"
)

// MaxFeedbackBody is the largest feedback body read.
const MaxFeedbackBody = 4 << 10

type feedback struct {
	RequestID string `json:"request_id"`
	Label     string `json:"label"`
}

// FeedbackHandler answers POST /api/feedback {"request_id", "label"}: the
// true label of a request the log knows (404 otherwise). A second feedback
// for the same request replaces the first in the report.
func (l *Log) FeedbackHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpjson.WriteError(w, httpjson.Errorf(http.StatusMethodNotAllowed, "method not allowed", "%s; use POST", r.Method))
			return
		}
		fb, herr := readFeedback(w, r)
		if herr != nil {
			httpjson.WriteError(w, herr)
			return
		}
		if !l.ids.has(fb.RequestID) {
			httpjson.WriteError(w, httpjson.Errorf(http.StatusNotFound, "unknown request", "the prediction log has no request %q", fb.RequestID))
			return
		}
		e := entry{Kind: kindFeedback, RequestID: fb.RequestID, Time: time.Now().UTC(), Label: fb.Label}
		line, err := json.Marshal(e)
		if err != nil || !l.send(line, e.kept()) {
			httpjson.WriteError(w, &httpjson.Error{Status: http.StatusServiceUnavailable, Msg: "prediction log busy", Detail: "the feedback was not recorded; retry"})
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"request_id": fb.RequestID, "label": fb.Label})
	})
}

// readFeedback reads and checks a feedback body.
func readFeedback(w http.ResponseWriter, r *http.Request) (feedback, *httpjson.Error) {
	var fb feedback
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fb, httpjson.Errorf(http.StatusUnsupportedMediaType, "unsupported media type", "Content-Type %q; send application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFeedbackBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fb, httpjson.Errorf(http.StatusRequestEntityTooLarge, "body too large", "a feedback body is at most %d bytes", MaxFeedbackBody)
	}
	if err != nil {
		return fb, httpjson.Errorf(http.StatusBadRequest, "cannot read the body", "%v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fb); err != nil {
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid JSON", "%v; send {\"request_id\": ..., \"label\": ...}", err)
	}
	if dec.More() {
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid JSON", "more than one JSON value")
	}
	switch {
	case fb.RequestID == "":
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid feedback", "request_id is missing")
	case len(fb.RequestID) > MaxField:
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid feedback", "request_id is over %d bytes", MaxField)
	case strings.TrimSpace(fb.Label) == "":
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid feedback", "label is missing")
	case len(fb.Label) > MaxLabel:
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid feedback", "label is over %d bytes", MaxLabel)
	case strings.ContainsFunc(fb.Label, unicode.IsControl):
		return fb, httpjson.Errorf(http.StatusBadRequest, "invalid feedback", "label has control characters")
	}
	return fb, nil
}

// ReportHandler answers GET /api/ab: the comparison of the logged versions
// (Report) as JSON; ?champion=VERSION names the champion.
func (l *Log) ReportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpjson.WriteError(w, httpjson.Errorf(http.StatusMethodNotAllowed, "method not allowed", "%s; use GET", r.Method))
			return
		}
		rep, herr := l.Report(r.URL.Query().Get("champion"))
		if herr != nil {
			httpjson.WriteError(w, herr)
			return
		}
		httpjson.Write(w, http.StatusOK, rep)
	})
}

// reportWait is how long a report waits for the writer to catch up.
const reportWait = 2 * time.Second

// Report compares the versions in the live log, everything recorded before
// the call included. The last report is kept until a line is written.
func (l *Log) Report(champion string) (*Report, *httpjson.Error) {
	if err := l.Flush(reportWait); err != nil {
		return nil, &httpjson.Error{Status: http.StatusServiceUnavailable, Msg: "prediction log busy", Detail: err.Error()}
	}
	l.cacheMu.Lock()
	defer l.cacheMu.Unlock()
	written := l.written.Load()
	if l.cache != nil && l.cacheKey == (reportKey{written, champion}) {
		rep := *l.cache
		rep.Dropped = l.dropped.Load()
		return &rep, nil
	}
	rep, err := l.snapshot().Compare(champion)
	if err != nil {
		return nil, &httpjson.Error{Status: http.StatusBadRequest, Msg: "unknown champion", Detail: err.Error()}
	}
	l.cache, l.cacheKey = rep, reportKey{written, champion}
	out := *rep
	out.Dropped = l.dropped.Load()
	return &out, nil
}

// reportKey identifies a cached report: the lines written when it was made
// and the champion asked for.
type reportKey struct {
	written  uint64
	champion string
}
