package webhook_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/pkg/webhook"
)

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	const (
		ok       = iota // accepted always
		internal        // refused unless private targets are allowed
		bad             // refused always
	)
	tests := []struct {
		url  string
		want int
	}{
		{"https://93.184.216.34/hook", ok},
		{"http://8.8.8.8:8080/x?token=1", ok},
		{"https://[2606:4700:4700::1111]/hook", ok},

		{"http://127.0.0.1/hook", internal},
		{"http://127.1.2.3:9000/", internal},
		{"http://10.0.0.1/", internal},
		{"http://172.16.5.4/", internal},
		{"http://192.168.1.1:8080/x", internal},
		{"http://[::1]/", internal},
		{"http://[::1]:8080/", internal},
		{"http://169.254.169.254/latest/meta-data", internal},
		{"http://[fe80::1]/", internal},
		{"http://[fd00::1]/", internal},
		{"http://100.64.0.1/", internal},
		{"http://0.0.0.0/", internal},
		{"http://[::]/", internal},
		{"http://224.0.0.1/", internal},
		{"http://255.255.255.255/", internal},
		{"http://198.18.0.1/", internal},
		{"http://[::ffff:127.0.0.1]/", internal},
		{"http://[64:ff9b::a00:1]/", internal},
		{"http://localhost/", internal},
		{"http://localhost:8080/hook", internal},
		{"http://LOCALHOST./", internal},
		{"http://api.localhost/", internal},

		{"ftp://example.com/hook", bad},
		{"file:///etc/passwd", bad},
		{"javascript:alert(1)", bad},
		{"http://user:pw@example.com/", bad},
		{"http://user@127.0.0.1/", bad},
		{"//example.com/hook", bad},
		{"/hook", bad},
		{"http://", bad},
		{"https:///path", bad},
		{"http://exa mple.com/", bad},
		{"http://example.com/" + strings.Repeat("a", webhook.MaxTargetLength), bad},
	}
	for _, tt := range tests {
		for _, allow := range []bool{false, true} {
			err := webhook.CheckTarget(t.Context(), tt.url, allow)
			wantOK := tt.want == ok || (tt.want == internal && allow)
			var target *webhook.TargetError
			switch {
			case wantOK && err != nil:
				t.Errorf("CheckTarget(%q, allow=%t) = %v, want nil", tt.url, allow, err)
			case !wantOK && !errors.As(err, &target):
				t.Errorf("CheckTarget(%q, allow=%t) = %v, want a *TargetError",
					tt.url, allow, err)
			}
		}
	}
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"93.184.216.34", false},
		{"8.8.8.8", false},
		{"2606:4700:4700::1111", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"127.0.0.1", true},
		{"10.255.255.255", true},
		{"172.31.0.1", true},
		{"192.168.0.1", true},
		{"169.254.1.1", true},
		{"100.127.255.255", true},
		{"100.128.0.0", false},
		{"0.1.2.3", true},
		{"192.0.2.1", true},
		{"240.0.0.1", true},
		{"::1", true},
		{"::", true},
		{"fe80::1%eth0", true},
		{"fc00::1", true},
		{"ff02::1", true},
		{"2001:db8::1", true},
		{"::ffff:10.0.0.1", true},
		{"64:ff9b::7f00:1", true}, // NAT64 of 127.0.0.1
	}
	for _, tt := range tests {
		if got := webhook.Forbidden(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Forbidden(%s) = %t, want %t", tt.addr, got, tt.want)
		}
	}
}
