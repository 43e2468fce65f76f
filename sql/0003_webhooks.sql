-- Webhook subscriptions and the queue of their deliveries, filled by a trigger on
-- order_events so that an event and its deliveries commit together.

-- +goose Up
CREATE TABLE webhooks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    target_url   text NOT NULL CHECK (target_url <> ''),
    -- NULL subscribes to every order.
    order_id     uuid REFERENCES orders (id) ON DELETE CASCADE,
    -- "whsec_" and base64; it signs deliveries and is shown only on creation.
    secret       text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set when deliveries stopped for good, such as after a 410 Gone.
    ended_at     timestamptz,
    ended_reason text,
    CONSTRAINT webhooks_ended CHECK ((ended_at IS NULL) = (ended_reason IS NULL))
);

CREATE INDEX webhooks_created_idx ON webhooks (created_at, id);
-- The trigger's lookup: active subscriptions to one order, or to all (order_id NULL).
CREATE INDEX webhooks_active_order_idx ON webhooks (order_id) WHERE ended_at IS NULL;

CREATE TABLE webhook_deliveries (
    -- Sent as the webhook-id header, the same on every attempt.
    id               text PRIMARY KEY
                     DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES order_events (id) ON DELETE CASCADE,
    -- Copied from the event, for keeping each order's deliveries in version order.
    order_id         uuid NOT NULL,
    version          bigint NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A dispatcher that claimed the delivery holds it until then; the HTTP request
    -- happens outside any transaction.
    locked_until     timestamptz,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    last_error       text,
    last_status_code integer,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, event_id)
);

-- The dispatchers' claim: pending deliveries by due time...
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- ...and whether an older one of the same subscription and order is still pending.
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (webhook_id, order_id, version)
    WHERE status = 'pending';
-- Deleting an event (with its order) finds its deliveries.
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- +goose StatementBegin
CREATE FUNCTION enqueue_webhook_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- FOR SHARE waits for a concurrent delete or end of a matching subscription and
    -- then skips it, rather than queueing a delivery that would fail the event's
    -- transaction on the foreign key, or that nobody would ever send.
    INSERT INTO webhook_deliveries (webhook_id, event_id, order_id, version)
    SELECT w.id, NEW.id, NEW.order_id, NEW.version
    FROM webhooks w
    WHERE w.ended_at IS NULL AND (w.order_id IS NULL OR w.order_id = NEW.order_id)
    FOR SHARE OF w;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER order_events_enqueue_webhooks
    AFTER INSERT ON order_events
    FOR EACH ROW EXECUTE FUNCTION enqueue_webhook_deliveries();

-- +goose Down
DROP TRIGGER order_events_enqueue_webhooks ON order_events;
DROP FUNCTION enqueue_webhook_deliveries();
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
