package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxTargetLength is the longest target URL accepted, in bytes.
const MaxTargetLength = 2048

// resolveTimeout bounds the DNS lookup of a new subscription's host.
const resolveTimeout = 5 * time.Second

// ErrForbiddenAddress is what dialing an internal address fails with when private
// targets are not allowed.
var ErrForbiddenAddress = errors.New("address is loopback, private or otherwise internal")

// TargetError says why a target URL was refused. Its message is meant for the person
// who submitted the URL.
type TargetError struct {
	Reason string
}

// Error implements error.
func (e *TargetError) Error() string { return e.Reason }

// CheckTarget accepts a subscription's target URL: an absolute http or https URL with
// a host and without user information, at most MaxTargetLength bytes. Unless
// allowPrivate is set, the host must also resolve, and to public addresses only (see
// Forbidden). A refused URL gives a *TargetError.
//
// The check guards the moment of subscription only: a name can resolve elsewhere
// later, so the Dispatcher checks every address again as it connects.
func CheckTarget(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := parseTarget(raw)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}

	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		return checkAddr(addr)
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &TargetError{Reason: "must not point at this machine (localhost)"}
	}

	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return &TargetError{Reason: fmt.Sprintf("host %q cannot be resolved", host)}
	}
	for _, addr := range addrs {
		if err := checkAddr(addr); err != nil {
			return err
		}
	}
	return nil
}

// parseTarget checks the form of a target URL.
func parseTarget(raw string) (*url.URL, error) {
	if len(raw) > MaxTargetLength {
		return nil, &TargetError{
			Reason: fmt.Sprintf("must be at most %d characters", MaxTargetLength),
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &TargetError{Reason: "must be a valid URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &TargetError{Reason: "must be an absolute http or https URL"}
	case u.User != nil:
		return nil, &TargetError{Reason: "must not contain a user name or password"}
	case u.Hostname() == "":
		return nil, &TargetError{Reason: "must name a host"}
	}
	return u, nil
}

func checkAddr(addr netip.Addr) error {
	if Forbidden(addr) {
		return &TargetError{Reason: fmt.Sprintf(
			"must not point at a loopback, private or otherwise internal address (%s)", addr)}
	}
	return nil
}

// internalPrefixes are ranges outside the public internet that Forbidden refuses on top
// of what netip.Addr classifies (loopback, private, link-local, multicast, unspecified).
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// embeddingPrefixes are IPv6 ranges that carry an IPv4 address in their last 32 bits
// (NAT64) and reach whatever that address reaches.
var embeddingPrefixes = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// Forbidden reports whether addr is no place for a webhook: loopback, private (RFC 1918,
// unique-local IPv6), link-local, multicast, unspecified, carrier-grade NAT, reserved or
// documentation ranges, or an IPv4-mapped or NAT64 address of any of those.
func Forbidden(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		for _, p := range embeddingPrefixes {
			if p.Contains(addr) {
				b := addr.As16()
				return Forbidden(netip.AddrFrom4([4]byte(b[12:])))
			}
		}
	}
	switch {
	case !addr.IsValid(),
		addr.IsLoopback(),
		addr.IsPrivate(),
		addr.IsLinkLocalUnicast(),
		addr.IsLinkLocalMulticast(),
		addr.IsInterfaceLocalMulticast(),
		addr.IsMulticast(),
		addr.IsUnspecified():
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// dialControl returns a net.Dialer Control function that refuses to connect to a
// Forbidden address unless allowPrivate is set. It runs for every address a connection
// is attempted to, after DNS resolution, so neither a name that now resolves elsewhere
// nor anything else between the check at subscription and the delivery can reach an
// internal address.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", address, ErrForbiddenAddress)
		}
		if Forbidden(ap.Addr()) {
			return fmt.Errorf("connect to %s: %w", ap.Addr(), ErrForbiddenAddress)
		}
		return nil
	}
}
