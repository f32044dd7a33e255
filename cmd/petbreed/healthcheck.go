package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is the container's health probe: an image without curl
// or a shell runs the binary itself (HEALTHCHECK CMD ["petbreed", "healthcheck"]).
func newHealthcheckCmd() *cobra.Command {
	var (
		rawURL  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL] [--timeout 2s]",
		Short: "Probe a running server's /api/health: exit 0 if it answers 200, else 1",
		Long: `healthcheck makes one GET request to a running petbreed serve and exits 0 if
it answers 200 OK within --timeout, else 1 (the status or error on stderr).
Without --url it probes http://HOST:PORT/api/health for the server's own
address, $PETBREED_ADDR (default 127.0.0.1:8000); a wildcard host (0.0.0.0,
::, empty) is probed on loopback.`,
		Example: `  PETBREED_ADDR=0.0.0.0:8080 petbreed healthcheck     # GET http://127.0.0.1:8080/api/health
  petbreed healthcheck --url http://127.0.0.1:8000/v2/health/ready`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usagef("--timeout %v: must be positive", timeout)
			}
			target := rawURL
			if target == "" {
				addr := os.Getenv("PETBREED_ADDR")
				if addr == "" {
					addr = "127.0.0.1:8000"
				}
				u, err := healthURL(addr)
				if err != nil {
					return usagef("$PETBREED_ADDR=%q: %v", addr, err)
				}
				target = u
			} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("--url %q: want an http:// or https:// URL", target)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return usagef("--url %q: %v", target, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", target, err)
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %s", target, resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", "", "URL to probe (default: /api/health at $PETBREED_ADDR)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "longest wait for the answer")
	return cmd
}

// healthURL is the /api/health URL of a server listening on addr (HOST:PORT),
// on loopback when the host is a wildcard.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port == "" {
		return "", fmt.Errorf("no port")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/api/health"}).String(), nil
}
