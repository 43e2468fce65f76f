-- Orders, their lines and the history of their statuses.

-- +goose Up
CREATE TABLE orders (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_name text NOT NULL,
    phone         text NOT NULL,
    fulfillment   text NOT NULL CHECK (fulfillment IN ('delivery', 'pickup')),
    address       text,
    total_cents   bigint NOT NULL CHECK (total_cents >= 0),
    status        text NOT NULL DEFAULT 'placed' CHECK (status IN (
        'placed', 'preparing', 'baking', 'ready', 'out_for_delivery', 'delivered', 'cancelled'
    )),
    -- Starts at 1 and grows by one per transition; equals the version of the
    -- order's latest event.
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- clock_timestamp rather than now: orders created in one transaction still
    -- sort in the order they were made.
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT orders_delivery_address CHECK (fulfillment <> 'delivery' OR address IS NOT NULL)
);

-- Listings, newest first, all orders or one status at a time.
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
-- The staff board: orders still in the kitchen or on the road.
CREATE INDEX orders_open_idx ON orders (created_at, id)
    WHERE status NOT IN ('delivered', 'cancelled');

CREATE TABLE order_items (
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line             integer NOT NULL CHECK (line >= 1),
    pizza_id         text NOT NULL REFERENCES pizzas (id),
    size             text NOT NULL CHECK (size IN ('small', 'medium', 'large')),
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 20),
    -- The price when the order was placed: later menu changes leave it alone.
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
    PRIMARY KEY (order_id, line)
);

CREATE TABLE order_events (
    id              bigserial PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    version         bigint NOT NULL CHECK (version >= 1),
    status          text NOT NULL CHECK (status IN (
        'placed', 'preparing', 'baking', 'ready', 'out_for_delivery', 'delivered', 'cancelled'
    )),
    previous_status text CHECK (previous_status IN (
        'placed', 'preparing', 'baking', 'ready', 'out_for_delivery', 'delivered', 'cancelled'
    )),
    note            text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Also the index that reads an order's events in version order.
    UNIQUE (order_id, version),
    -- Only the first event, placed, has no previous status.
    CONSTRAINT order_events_first CHECK ((version = 1) = (previous_status IS NULL))
);

-- +goose Down
DROP TABLE order_events;
DROP TABLE order_items;
DROP TABLE orders;
