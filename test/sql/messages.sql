--
-- messages: the full text of every error a user of credit can meet.
--
-- psql's verbose error display ends with a LOCATION line that carries C
-- line numbers, which change with every edit of the sources; so each error
-- is caught by show_error(), which prints its SQLSTATE, message, detail,
-- hint and the schema, table and column it names.  Context lines (PL/pgSQL
-- line numbers) are hidden for the same reason.
--
CREATE EXTENSION credit;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION show_error(stmt text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text; sch text; tbl text; col text;
BEGIN
	EXECUTE stmt;
	RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT,
		sch = SCHEMA_NAME, tbl = TABLE_NAME, col = COLUMN_NAME;
	RAISE NOTICE '%', concat_ws(E'\n',
		'SQLSTATE ' || st,
		'MESSAGE: ' || msg,
		'DETAIL: ' || nullif(det, ''),
		'HINT: ' || nullif(hnt, ''),
		'SCHEMA NAME: ' || nullif(sch, ''),
		'TABLE NAME: ' || nullif(tbl, ''),
		'COLUMN NAME: ' || nullif(col, ''));
END $$;

CREATE SCHEMA sales;
CREATE TABLE sales.orders (
	id		int PRIMARY KEY,
	cust_id	bigint,
	total	numeric,
	state	text,
	weight	float8
);
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
VALUES ('1001', 'Acme Trading', 50000, 'alice'),
	   ('1002', 'Beta Ltd', 10000, 'bob');
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, temp_limit,
							 temp_limit_from, temp_limit_until)
VALUES ('1003', 'Gamma Co', 10000, 5000, now() - interval '1 day', now() + interval '1 day');
INSERT INTO credit.accounts (customer_key, customer_name, status)
VALUES ('1004', 'Delta Big', 'none');
SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');
INSERT INTO sales.orders (id, cust_id, total, state)
VALUES (1, 1001, 45000.00, 'open'), (2, 1003, 12000, 'open');

-- CR001: as psql shows it, then every field
INSERT INTO sales.orders (id, cust_id, total, state) VALUES (3, 1001, 5000.01, 'open');
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (3, 1001, 5000.01, 'open')$$);
-- CR001 on an amount increase, with a temporary limit in force
SELECT show_error($$UPDATE sales.orders SET total = 15000.01 WHERE id = 2$$);
-- CR002
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = '1002';
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (4, 1002, 1, 'open')$$);
-- CR003
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (5, 4711, 10, 'open')$$);
-- 23502
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (6, NULL, 10, 'open')$$);
-- 22023: negative, NaN, infinite
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (7, 1001, -5, 'open')$$);
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (7, 1001, 'NaN', 'open')$$);
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (7, 1001, 'Infinity', 'open')$$);
-- 22003: the amount, then the resulting exposure
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (8, 1004, 1e15, 'open')$$);
INSERT INTO sales.orders (id, cust_id, total, state) VALUES (8, 1004, 900000000000000, 'open');
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (9, 1004, 100000000000000, 'open')$$);

-- attach and detach
CREATE TABLE sales.quotes (id int, cust_id bigint, total numeric, weight float8, state jsonb);
CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE total > 1000;
SELECT show_error($$SELECT credit.attach_orders('sales.quotes', 'customer', 'total')$$);
SELECT show_error($$SELECT credit.attach_orders('sales.quotes', 'cust_id', 'weight')$$);
SELECT show_error($$SELECT credit.attach_orders('sales.quotes', 'cust_id', 'total', 'state', '{open}')$$);
SELECT show_error($$SELECT credit.attach_orders('sales.quotes', 'cust_id', 'total', 'id')$$);
SELECT show_error($$SELECT credit.attach_orders('sales.big_orders', 'cust_id', 'total')$$);
DROP VIEW sales.big_orders;
SELECT show_error($$SELECT credit.attach_orders('sales.orders', 'cust_id', 'total')$$);
SELECT show_error($$SELECT credit.detach_orders('sales.quotes')$$);
INSERT INTO sales.quotes VALUES (1, 4711, 10, 0, NULL);
SELECT show_error($$SELECT credit.attach_orders('sales.quotes', 'cust_id', 'total')$$);

-- the trigger, after the attached columns were changed under it
ALTER TABLE sales.orders RENAME COLUMN total TO amount;
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, amount, state) VALUES (10, 1001, 1, 'open')$$);
ALTER TABLE sales.orders RENAME COLUMN amount TO total;
ALTER TABLE sales.orders ALTER COLUMN total TYPE float8;
SELECT show_error($$INSERT INTO sales.orders (id, cust_id, total, state) VALUES (10, 1001, 1, 'open')$$);
ALTER TABLE sales.orders ALTER COLUMN total TYPE numeric;

-- 55000: the credit trigger on a table that is not attached
CREATE TABLE sales.stray (cust_id bigint, total numeric);
CREATE TRIGGER credit_enforce AFTER INSERT ON sales.stray
	FOR EACH ROW EXECUTE FUNCTION credit.enforce_orders();
SELECT show_error($$INSERT INTO sales.stray VALUES (1001, 1)$$);

-- what the refusals left: nothing
SELECT customer_key, status, credit_limit, temp_limit_in_force, effective_limit,
	   exposure, available_credit
  FROM credit.account_balances ORDER BY customer_key;
SELECT * FROM credit.reconcile();

DROP EXTENSION credit CASCADE;
DROP SCHEMA sales CASCADE;
DROP FUNCTION show_error(text);
