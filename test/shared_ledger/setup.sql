-- test/shared_ledger/setup.sql: five accounts with limit 5000, an attached
-- order table, sl.place() (an order; a CR001 refusal is counted, not raised)
-- and the table of in-transaction samples.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION credit;
CREATE SCHEMA sl;
CREATE TABLE sl.orders (order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
						customer_id bigint NOT NULL, amount numeric(14,2) NOT NULL,
						status text NOT NULL DEFAULT 'open');
INSERT INTO credit.accounts (customer_key, credit_limit)
SELECT g::text, 5000 FROM generate_series(1, 5) g;
SELECT credit.attach_orders('sl.orders', 'customer_id', 'amount', 'status', '{open}');
CREATE TABLE sl.refusals (at timestamptz DEFAULT clock_timestamp());
CREATE TABLE sl.samples (customer_key text, exposure numeric, credit_limit numeric);
CREATE FUNCTION sl.place(c bigint, a numeric) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sl.orders (customer_id, amount) VALUES (c, a);
EXCEPTION WHEN SQLSTATE 'CR001' THEN
	INSERT INTO sl.refusals DEFAULT VALUES;
END $$;
