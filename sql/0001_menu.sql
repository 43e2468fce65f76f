-- The menu: pizzas, their price in each size, and the delivery fee.

-- +goose Up
CREATE TABLE pizzas (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]*$'),
    name        text NOT NULL CHECK (name <> ''),
    description text NOT NULL DEFAULT '',
    -- Where the pizza appears on the menu, smallest first.
    position    integer NOT NULL UNIQUE
);

CREATE TABLE pizza_prices (
    pizza_id    text NOT NULL REFERENCES pizzas (id) ON DELETE CASCADE,
    size        text NOT NULL CHECK (size IN ('small', 'medium', 'large')),
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    PRIMARY KEY (pizza_id, size)
);

-- One row only: the primary key can hold nothing but true.
CREATE TABLE menu_settings (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    delivery_fee_cents bigint NOT NULL CHECK (delivery_fee_cents >= 0)
);

INSERT INTO menu_settings (delivery_fee_cents) VALUES (300);

INSERT INTO pizzas (id, name, description, position) VALUES
    ('margherita', 'Margherita',
     'San Marzano tomato, fior di latte, fresh basil and extra virgin olive oil.', 1),
    ('marinara', 'Marinara',
     'Tomato, garlic, oregano and olive oil. No cheese, all flavour.', 2),
    ('diavola', 'Diavola',
     'Tomato, mozzarella and spicy salami, finished with chilli oil.', 3),
    ('quattro_formaggi', 'Quattro Formaggi',
     'Mozzarella, gorgonzola, fontina and parmigiano on a white base.', 4),
    ('funghi', 'Funghi',
     'Tomato, mozzarella, roasted mushrooms, garlic and parsley.', 5),
    ('capricciosa', 'Capricciosa',
     'Tomato, mozzarella, cooked ham, mushrooms, artichokes and black olives.', 6);

INSERT INTO pizza_prices (pizza_id, size, price_cents) VALUES
    ('margherita', 'small', 900),
    ('margherita', 'medium', 1200),
    ('margherita', 'large', 1500),
    ('marinara', 'small', 800),
    ('marinara', 'medium', 1100),
    ('marinara', 'large', 1400),
    ('diavola', 'small', 1000),
    ('diavola', 'medium', 1300),
    ('diavola', 'large', 1600),
    ('quattro_formaggi', 'small', 1100),
    ('quattro_formaggi', 'medium', 1400),
    ('quattro_formaggi', 'large', 1700),
    ('funghi', 'small', 950),
    ('funghi', 'medium', 1250),
    ('funghi', 'large', 1550),
    ('capricciosa', 'small', 1100),
    ('capricciosa', 'medium', 1450),
    ('capricciosa', 'large', 1800);

-- +goose Down
DROP TABLE menu_settings;
DROP TABLE pizza_prices;
DROP TABLE pizzas;
