package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every signing secret, as in the Standard Webhooks scheme.
const SecretPrefix = "whsec_"

// secretBytes is the number of random bytes in a secret.
const secretBytes = 32

// The headers of a delivery, per the Standard Webhooks scheme.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// ErrBadSecret is returned by Sign for a secret that is not "whsec_" and base64.
var ErrBadSecret = errors.New("webhook: malformed signing secret")

// NewSecret returns a new signing secret: "whsec_" and the standard base64 of 32
// random bytes.
func NewSecret() string {
	// crypto/rand.Read never fails, and crashes the program if the system cannot
	// supply randomness.
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the webhook-signature header of a delivery: "v1," and the standard
// base64 of the HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed with the secret's
// base64 part decoded.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return "", ErrBadSecret
	}

	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, strconv.FormatInt(timestamp, 10))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
