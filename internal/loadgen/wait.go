package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitReady polls healthURL with GET every poll until it answers 200, and
// returns the time from the call to that answer. It gives up when ctx is
// done (give it a deadline), with an error saying what the last attempt got
// and, for a context cancelled with a cause, why.
func WaitReady(ctx context.Context, healthURL string, poll time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := CheckLoopback(healthURL); err != nil {
		return 0, err
	}
	if poll <= 0 {
		poll = 10 * time.Millisecond
	}
	client := NewClient(1, 2*time.Second)
	defer client.CloseIdleConnections()
	last := "no attempt"
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		status, err := probe(ctx, client, healthURL)
		if err == nil && status == http.StatusOK {
			return time.Since(start), nil
		}
		if ctx.Err() == nil { // an attempt cut short by ctx says nothing
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("status %d", status)
			}
		}
		select {
		case <-ctx.Done():
			err := context.Cause(ctx)
			return time.Since(start), fmt.Errorf("%s not ready after %v (last attempt: %s): %w",
				healthURL, time.Since(start).Round(time.Millisecond), last, err)
		case <-tick.C:
		}
	}
}

// probe sends one GET and reads the whole answer.
func probe(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
