package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/pkg/webhook"
)

// verifySignature checks a delivery's signature the way a receiver following the
// Standard Webhooks specification would, without any code of package webhook.
func verifySignature(secret string, header http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(header.Get("webhook-id") + "." + header.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))

	// The header may carry several space-separated signatures.
	for _, sig := range strings.Fields(header.Get("webhook-signature")) {
		version, value, _ := strings.Cut(sig, ",")
		if version == "v1" && hmac.Equal([]byte(value), []byte(want)) {
			return true
		}
	}
	return false
}

func TestSignReferenceVector(t *testing.T) {
	t.Parallel()
	// The example of the Standard Webhooks specification.
	got, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestSignVerifies(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	body := []byte(`{"type":"order.status"}`)
	sig, err := webhook.Sign(secret, "msg_1", 1700000000, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", "1700000000")
	h.Set("webhook-signature", sig)
	if !verifySignature(secret, h, body) {
		t.Errorf("signature %q does not verify", sig)
	}
	if verifySignature(webhook.NewSecret(), h, body) {
		t.Error("signature verifies with another secret")
	}
	h.Set("webhook-timestamp", "1700000001")
	if verifySignature(secret, h, body) {
		t.Error("signature verifies with another timestamp")
	}
}

func TestSignBadSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"", "whsec_", "whsec_not base64!"} {
		if _, err := webhook.Sign(secret, "msg_1", 1, nil); !errors.Is(err, webhook.ErrBadSecret) {
			t.Errorf("Sign with secret %q: err = %v, want ErrBadSecret", secret, err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	raw, ok := strings.CutPrefix(a, "whsec_")
	if !ok {
		t.Fatalf("secret %q lacks the whsec_ prefix", a)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != 32 {
		t.Errorf("secret %q: %d bytes, err %v; want 32 bytes of standard base64", a, len(key), err)
	}
}
