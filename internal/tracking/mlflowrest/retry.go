package mlflowrest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// policy says when a failed call may be sent again.
//
// A call is repeated only when the repeat cannot do anything twice:
//   - idempotent calls (every GET, runs/update, set-alias, params and tags
//     through log-batch, an artifact PUT, which replaces the file) on 429,
//     any 5xx and any connection error or timeout;
//   - the others (runs/create, model-versions/create, log-batch with
//     metrics, experiments/create) only when the server surely did not act:
//     a 429, or a connection that was never made. Any other failure of
//     these may have been applied; their callers look at the server's state
//     before trying again (see LogMetrics, CreateRun, CreateModelVersion).
type policy int

const (
	idempotent policy = iota
	once
)

// transportErr is a call that got no HTTP answer.
type transportErr struct {
	server, op string
	err        error
	sent       bool // the request may have reached the server
}

func (e *transportErr) Error() string {
	return fmt.Sprintf("mlflow server %s: %s: %v", e.server, e.op, e.err)
}
func (e *transportErr) Unwrap() error { return e.err }

// statusErr is a non-2xx answer.
type statusErr struct {
	api        *APIError
	retryAfter time.Duration
}

func (e *statusErr) Error() string { return e.api.Error() }
func (e *statusErr) Unwrap() error { return e.api }

// isTLSError reports a certificate the client refuses, or a TLS handshake
// that failed: trying again gets the same.
func isTLSError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record)
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// maybeApplied reports whether a call that failed transiently may have
// been carried out by the server (so a non-idempotent one must not simply be
// sent again).
func maybeApplied(err error) bool {
	var te *transportErr
	if errors.As(err, &te) {
		return te.sent
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	return false
}

// transient reports whether a failure may go away by itself: no answer, a
// timeout, 408, 429, 502, 503, 504, or a 500 that is not one of MLflow's
// own error answers. A 500 with MLflow's error_code is the server's
// deliberate answer (a param changed, on the file store; a missing
// artifact, on the proxy): sending it again gets the same.
func transient(err error) bool {
	var te *transportErr
	if errors.As(err, &te) {
		return !isTLSError(err)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch s := ae.Status; s {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		case http.StatusInternalServerError:
			return ae.Code == ""
		}
	}
	return false
}

// retryable reports whether err may be retried under p.
func retryable(err error, p policy) bool {
	if !transient(err) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		return true // refused before it was done
	}
	return p == idempotent || !maybeApplied(err)
}

// backoff is the wait before retry n (1, 2, ...): factor·2^(n-1), capped,
// plus jitter; a server's Retry-After wins when longer.
func (c *Client) backoff(n int, err error) time.Duration {
	d := c.opt.BackoffFactor << (n - 1)
	if d > c.opt.MaxBackoff || d <= 0 && c.opt.BackoffFactor > 0 {
		d = c.opt.MaxBackoff
	}
	if c.opt.BackoffJitter > 0 {
		d += rand.N(c.opt.BackoffJitter)
	}
	var se *statusErr
	if errors.As(err, &se) && se.retryAfter > d {
		d = min(se.retryAfter, c.opt.MaxBackoff)
	}
	return d
}

// retry runs attempt, again as r.policy allows, at most MaxRetries more
// times. Each JSON attempt has its own Timeout. A server never reached yet
// that refuses the connection is reported at once (it is not there), not
// retried for a minute.
func (c *Client) retry(r *request, attempt func(ctx context.Context) error) error {
	return c.retryPolicy(r.policy, attempt)
}

func (c *Client) retryPolicy(p policy, attempt func(ctx context.Context) error) error {
	var err error
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
		err = attempt(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if !c.reached.Load() && isDialError(err) {
			return c.unreachable(err)
		}
		if n >= c.opt.MaxRetries || !retryable(err, p) {
			break
		}
		time.Sleep(c.backoff(n+1, err))
	}
	if n := c.opt.MaxRetries; n > 0 && retryable(err, p) {
		return fmt.Errorf("%w (gave up after %d retries)", unwrapStatus(err), n)
	}
	return unwrapStatus(err)
}

// unwrapStatus gives callers the *APIError of a status error.
func unwrapStatus(err error) error {
	var se *statusErr
	if errors.As(err, &se) {
		return se.api
	}
	return err
}

func (c *Client) unreachable(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return fmt.Errorf("mlflow server %s is not reachable: %v", c.uri, err)
}
