package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/webhook"
)

// WebhookStore keeps webhook subscriptions.
type WebhookStore interface {
	// CreateWebhook stores the subscription (its TargetURL, OrderID and Secret) and
	// fills in its ID and CreatedAt. An unknown order gives a *order.FieldError for
	// order_id.
	CreateWebhook(ctx context.Context, sub *webhook.Subscription) error
	// FindWebhooks returns every subscription, oldest first, without secrets.
	FindWebhooks(ctx context.Context) ([]*webhook.Subscription, error)
	// DeleteWebhook deletes a subscription; an unknown one gives order.ErrNotFound.
	DeleteWebhook(ctx context.Context, id string) error
}

var errNoSuchWebhook = &apiError{status: http.StatusNotFound, code: "not_found",
	message: "no such webhook"}

// webhookRoutes serves the subscription API when a WebhookStore is configured.
func (s *Server) webhookRoutes() {
	if s.opts.Webhooks == nil {
		return
	}
	m := s.mux
	staff := func(h http.HandlerFunc) http.Handler { return s.requireStaff(apiRealm, h) }
	m.Handle("POST /api/webhooks", staff(s.handleWebhookCreate))
	m.Handle("GET /api/webhooks", staff(s.handleWebhookList))
	m.Handle("DELETE /api/webhooks/{id}", staff(s.handleWebhookDelete))
}

// webhookRequest is the body of POST /api/webhooks.
type webhookRequest struct {
	TargetURL string  `json:"target_url"`
	OrderID   *string `json:"order_id"`
}

// webhookView is a subscription as the API shows it.
type webhookView struct {
	ID        string  `json:"id"`
	TargetURL string  `json:"target_url"`
	OrderID   *string `json:"order_id"`
	CreatedAt string  `json:"created_at"`
	// Status is "active", or "ended" once deliveries stopped for good (EndedReason).
	Status      string  `json:"status"`
	EndedAt     *string `json:"ended_at"`
	EndedReason *string `json:"ended_reason"`
	// Secret appears only in the answer that creates the subscription.
	Secret string `json:"secret,omitempty"`
}

func viewWebhook(sub *webhook.Subscription) webhookView {
	v := webhookView{
		ID:          sub.ID,
		TargetURL:   sub.TargetURL,
		OrderID:     sub.OrderID,
		CreatedAt:   order.FormatTime(sub.CreatedAt),
		Status:      sub.State(),
		EndedReason: sub.EndedReason,
	}
	if sub.EndedAt != nil {
		at := order.FormatTime(*sub.EndedAt)
		v.EndedAt = &at
	}
	return v
}

// webhookList is the body of GET /api/webhooks.
type webhookList struct {
	Webhooks []webhookView `json:"webhooks"`
}

func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	var req webhookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.TargetURL == "" {
		s.writeError(w, r, invalidField("target_url", "is required"))
		return
	}
	err := webhook.CheckTarget(r.Context(), req.TargetURL, s.opts.AllowPrivateTargets)
	if target := (*webhook.TargetError)(nil); errors.As(err, &target) {
		s.writeError(w, r, invalidField("target_url", target.Reason))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}

	sub := &webhook.Subscription{
		TargetURL: req.TargetURL,
		OrderID:   req.OrderID,
		Secret:    webhook.NewSecret(),
	}
	if err := s.opts.Webhooks.CreateWebhook(r.Context(), sub); err != nil {
		s.writeError(w, r, err)
		return
	}

	scope := "all"
	if sub.OrderID != nil {
		scope = *sub.OrderID
	}
	s.logger.Info("Webhook subscribed", "webhook_id", sub.ID, "order_id", scope)
	v := viewWebhook(sub)
	v.Secret = sub.Secret
	w.Header().Set("Location", "/api/webhooks/"+sub.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	subs, err := s.opts.Webhooks.FindWebhooks(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list := webhookList{Webhooks: make([]webhookView, len(subs))}
	for i, sub := range subs {
		list.Webhooks[i] = viewWebhook(sub)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.opts.Webhooks.DeleteWebhook(r.Context(), id)
	if errors.Is(err, order.ErrNotFound) {
		s.writeError(w, r, errNoSuchWebhook)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("Webhook deleted", "webhook_id", id)
	w.WriteHeader(http.StatusNoContent)
}
