/*
 * bench/orders.sql: the application's order table, the same in the three
 * benchmark databases (bare, plpgsql reference, credit).
 */
CREATE TABLE public.orders (
	order_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	bigint NOT NULL,
	amount		numeric(14,2) NOT NULL,
	status		text NOT NULL DEFAULT 'open',
	created_at	timestamptz NOT NULL DEFAULT now()
);
