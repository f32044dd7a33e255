package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrNotLoopback is wrapped by the errors of CheckLoopback and of the
// client's dialer.
var ErrNotLoopback = errors.New("only loopback addresses are allowed (127.0.0.0/8, ::1, localhost): this workplace forbids traffic elsewhere")

// CheckLoopback accepts an http or https URL whose host is a loopback
// address: an IPv4 address in 127.0.0.0/8, ::1 (or IPv4-mapped 127/8), or
// the name localhost. It resolves nothing and connects nowhere. Anything
// else, including other names and odd IP spellings (127.1, 2130706433,
// 0x7f.0.0.1) and the unspecified address 0.0.0.0, is refused.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("invalid URL %q (want http://HOST:PORT/PATH): %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid URL %q: want http://HOST:PORT/PATH", rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("invalid URL %q: no host", rawURL)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("refusing %q: host %q is not loopback: %w", rawURL, host, ErrNotLoopback)
	}
	return nil
}

// isLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback IP literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// loopbackControl is the dialer's last check, on the resolved address it is
// about to connect to: whatever a name resolves to, only loopback is dialled.
func loopbackControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", network, address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.WithZone("").Unmap().IsLoopback() {
		return fmt.Errorf("dial %s %s: %w", network, address, ErrNotLoopback)
	}
	return nil
}
