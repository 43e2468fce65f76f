package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// Defaults of Options.
const (
	DefaultWorkers      = 4
	DefaultTimeout      = 10 * time.Second
	DefaultPollInterval = time.Second
)

const (
	// leaseSlack is how much longer than the attempt timeout a claimed delivery stays
	// leased: time to record the result before another replica may take it over.
	leaseSlack = 30 * time.Second
	// recordTimeout bounds storing an attempt's result, which goes ahead when Run's
	// context is cancelled so that a finished attempt is not sent again.
	recordTimeout = 10 * time.Second
	// maxClaimBackoff caps the wait between claims while the database fails.
	maxClaimBackoff = 30 * time.Second
	// drainLimit is how much of a response body is read, so that the connection can
	// be used again; the body itself is of no interest.
	drainLimit = 64 << 10
)

// UserAgent is the User-Agent of every delivery.
const UserAgent = "orderstream-webhooks"

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	// Workers is how many deliveries this replica sends at once (DefaultWorkers).
	Workers int
	// Timeout bounds one attempt, from connecting to reading the answer
	// (DefaultTimeout).
	Timeout time.Duration
	// AllowPrivateTargets lets deliveries reach loopback and private addresses.
	AllowPrivateTargets bool
	// PollInterval is how often the queue is checked for due deliveries when nothing
	// prompts it sooner (DefaultPollInterval). New events are therefore sent within
	// about this long, or at once after a call to Poke.
	PollInterval time.Duration
	// Schedule is when a failing delivery is tried again, as offsets from its first
	// attempt (DefaultSchedule).
	Schedule []time.Duration
	// Now is the clock (time.Now). Due times, leases, the schedule and the
	// webhook-timestamp header all follow it.
	Now func() time.Time
}

// Dispatcher sends queued deliveries to their targets, on as many workers as
// Options.Workers allows, and records each attempt. Several Dispatchers, on one replica
// or many, can share a queue: a delivery is leased to one of them at a time.
type Dispatcher struct {
	store    Store
	opts     Options
	logger   *slog.Logger
	observer Observer
	client   *http.Client
	poke     chan struct{}
}

// NewDispatcher returns a Dispatcher that works from store. The logger may be nil
// (slog.Default), as may the observer.
func NewDispatcher(store Store, opts Options, logger *slog.Logger, observer Observer) *Dispatcher {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if len(opts.Schedule) == 0 {
		opts.Schedule = DefaultSchedule
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Dispatcher{
		store:    store,
		opts:     opts,
		logger:   logger,
		observer: observer,
		client:   newClient(opts.Timeout, opts.AllowPrivateTargets),
		poke:     make(chan struct{}, 1),
	}
}

// newClient returns the HTTP client of deliveries. It uses no proxy (a proxy would be
// the only address the dialer checks), follows no redirect (a 3xx is a failed attempt,
// so a redirect cannot lead anywhere the target check would refuse), and checks every
// address it connects to.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control:   dialControl(allowPrivate),
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Poke makes the Dispatcher look for due deliveries now rather than at its next poll,
// for instance when an event was just committed. It never blocks.
func (d *Dispatcher) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// Run claims due deliveries and sends them until ctx is cancelled, then waits for the
// attempts under way and returns nil. Cancelling ctx cancels those attempts too; an
// attempt cut short is not recorded, and is made again once its lease runs out.
// Failures to reach the database are logged and retried with a growing delay.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()

	// busy holds one token per delivery being sent.
	busy := make(chan struct{}, d.opts.Workers)
	backoff := d.opts.PollInterval
	for {
		wait := d.opts.PollInterval
		if free := cap(busy) - len(busy); free > 0 {
			batch, err := d.claim(ctx, free)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				d.logger.Error("Cannot claim webhook deliveries",
					slog.Duration("retry_in", backoff), slog.Any("error", err))
				wait, backoff = backoff, min(2*backoff, maxClaimBackoff)
			default:
				backoff = d.opts.PollInterval
			}

			for _, dl := range batch {
				busy <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-busy
						d.Poke()
					}()
					d.deliver(ctx, dl)
				})
			}
			if err == nil && len(batch) == free {
				// The queue may hold more; claim again once a worker is free.
				continue
			}
		}

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-d.poke:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// claim leases up to limit due deliveries for one attempt each.
func (d *Dispatcher) claim(ctx context.Context, limit int) ([]*Delivery, error) {
	now := d.opts.Now()
	lease := now.Add(d.opts.Timeout + leaseSlack)
	batch, err := d.store.ClaimDeliveries(ctx, now, limit, lease)
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return batch, nil
}

// deliver makes one attempt at dl and records it.
func (d *Dispatcher) deliver(ctx context.Context, dl *Delivery) {
	a := d.attempt(ctx, dl)
	if ctx.Err() != nil && a.Outcome != OutcomeSuccess {
		// Shutting down: the attempt was cut short, or its failure may have been.
		return
	}

	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := d.store.RecordAttempt(recordCtx, a); err != nil {
		d.logger.Error("Cannot record webhook attempt",
			slog.String("delivery_id", dl.ID), slog.Any("error", err))
		return
	}
	if d.observer != nil {
		d.observer.WebhookAttempt(string(a.Outcome))
	}
	d.logAttempt(dl, a)
}

// attempt sends dl once and says how that went.
func (d *Dispatcher) attempt(ctx context.Context, dl *Delivery) *Attempt {
	a := &Attempt{DeliveryID: dl.ID, WebhookID: dl.WebhookID, StartedAt: d.opts.Now()}
	code, err := d.send(ctx, dl, a.StartedAt)
	a.FinishedAt = d.opts.Now()
	a.StatusCode = code

	switch {
	case err != nil:
		a.Error = err.Error()
	case code >= 200 && code < 300:
		a.Outcome = OutcomeSuccess
		return a
	case code == http.StatusGone:
		a.Outcome = OutcomeGone
		a.Error = "target answered 410 Gone; the subscription ended"
		return a
	case code >= 300 && code < 400:
		a.Error = fmt.Sprintf("target answered %d %s; redirects are not followed",
			code, http.StatusText(code))
	default:
		a.Error = fmt.Sprintf("target answered %d %s", code, http.StatusText(code))
	}

	first := a.StartedAt
	if dl.FirstAttemptAt != nil {
		first = *dl.FirstAttemptAt
	}
	if next, ok := NextAttempt(d.opts.Schedule, first, a.FinishedAt); ok {
		a.Outcome, a.NextAttemptAt = OutcomeFailure, next
	} else {
		a.Outcome = OutcomeGivenUp
	}
	return a
}

// payload is the body of a delivery.
type payload struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Body returns the body delivered for ev: its type, its time and the event as the SSE
// streams carry it.
func Body(ev order.Event) ([]byte, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s/%d: %w", ev.OrderID, ev.Version, err)
	}
	body, err := json.Marshal(payload{
		Type:      "order.status",
		Timestamp: order.FormatTime(ev.At),
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode delivery of event %s/%d: %w", ev.OrderID, ev.Version, err)
	}
	return body, nil
}

// send POSTs dl, signed as of now, and returns the answer's status code. The error is
// fit to store and show: it holds neither the URL nor the secret.
func (d *Dispatcher) send(ctx context.Context, dl *Delivery, now time.Time) (int, error) {
	body, err := Body(dl.Event)
	if err != nil {
		return 0, err
	}
	ts := now.Unix()
	sig, err := Sign(dl.Secret, dl.ID, ts, body)
	if err != nil {
		return 0, err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.TargetURL,
		bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("target URL cannot be used")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, dl.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)

	resp, err := d.client.Do(req)
	if err != nil {
		return 0, describeSendError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return resp.StatusCode, nil
}

// describeSendError turns a failed request into a message without the URL, which
// url.Error carries and which may hold credentials in its query.
func describeSendError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return errors.New("target resolves to a loopback, private or otherwise internal " +
			"address, which is not allowed")
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return errors.New("no answer before the timeout")
	}
	return fmt.Errorf("request failed: %w", err)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// logAttempt logs a failed attempt as a warning and a given-up delivery as an error.
func (d *Dispatcher) logAttempt(dl *Delivery, a *Attempt) {
	attrs := []any{
		slog.String("delivery_id", dl.ID),
		slog.String("webhook_id", dl.WebhookID),
		slog.String("order_id", dl.Event.OrderID),
		slog.Int64("version", dl.Event.Version),
		slog.Int("attempt", dl.Attempts+1),
		slog.Int("status_code", a.StatusCode),
	}
	switch a.Outcome {
	case OutcomeSuccess:
		d.logger.Debug("Delivered webhook", attrs...)
	case OutcomeFailure:
		attrs = append(attrs, slog.Time("next_attempt_at", a.NextAttemptAt),
			slog.String("error", a.Error))
		d.logger.Warn("Webhook attempt failed", attrs...)
	case OutcomeGone:
		d.logger.Warn("Webhook target is gone; subscription ended", attrs...)
	case OutcomeGivenUp:
		attrs = append(attrs, slog.String("error", a.Error))
		d.logger.Error("Gave up on webhook delivery", attrs...)
	}
}
