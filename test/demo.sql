-- test/demo.sql: what `make demo` shows, in a throwaway cluster.
-- A small company: its order-entry application has its own table
-- sales.orders; credit is attached to it without changing the application.
\set ON_ERROR_STOP 1
\pset footer off

CREATE EXTENSION credit;

-- the application's own schema, as it was before credit existed
CREATE SCHEMA sales;
CREATE TABLE sales.customers (
	cust_id		bigint PRIMARY KEY,
	name		text NOT NULL,
	salesperson	text
);
CREATE TABLE sales.orders (
	order_no	bigserial PRIMARY KEY,
	cust_id		bigint NOT NULL REFERENCES sales.customers,
	total		numeric(14,2) NOT NULL,
	state		text NOT NULL DEFAULT 'open',
	placed_at	timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sales.customers VALUES
	(1001, 'Acme Trading Co.', 'alice'),
	(1002, 'Beijing Hardware Ltd.', 'bob'),
	(1003, 'Shenzhen Parts Factory', 'alice');

-- an open order placed before credit management started
INSERT INTO sales.orders (cust_id, total) VALUES (1001, 12000.00);

\echo '== credit accounts: one per customer, from the application''s customers'
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
SELECT c.cust_id::text, c.name, lim.credit_limit, c.salesperson
  FROM sales.customers c
  JOIN (VALUES (1001, 50000), (1002, 20000), (1003, 8000)) lim(cust_id, credit_limit)
	ON lim.cust_id = c.cust_id;
-- a temporary limit for a big project, valid for the next 30 days
UPDATE credit.accounts
   SET temp_limit = 10000, temp_limit_from = now() - interval '1 day',
	   temp_limit_until = now() + interval '30 days'
 WHERE customer_key = '1003';

\echo '== attach enforcement to sales.orders (the existing open order counts at once)'
SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');

\echo '== orders that pass'
INSERT INTO sales.orders (cust_id, total) VALUES (1001, 30000.00);
INSERT INTO sales.orders (cust_id, total, state) VALUES (1002, 18500.00, 'confirmed');
INSERT INTO sales.orders (cust_id, total) VALUES (1003, 16000.00);	-- fits thanks to the temporary limit
UPDATE sales.orders SET state = 'shipped' WHERE cust_id = 1001 AND total = 12000.00;	-- releases 12,000

\echo '== an order that is rejected: Beijing Hardware has 1,500 of credit left'
\set ON_ERROR_STOP 0
\set VERBOSITY default
INSERT INTO sales.orders (cust_id, total) VALUES (1002, 4000.00);
\set ON_ERROR_STOP 1

\echo '== each customer''s limit, exposure and available credit'
SELECT customer_key, customer_name, status, credit_limit, temp_limit_in_force,
	   exposure, available_credit
  FROM credit.account_balances
 ORDER BY customer_key;

\echo '== status changes recorded (and announced on NOTIFY channel credit_events)'
SELECT customer_key, old_status, new_status, exposure, effective_limit
  FROM credit.status_changes ORDER BY change_id;

\echo '== finance posts invoices from its ERP; Acme''s order is invoiced (exposure unchanged)'
BEGIN;
UPDATE sales.orders SET state = 'invoiced' WHERE cust_id = 1001 AND total = 30000.00;
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, order_ref)
VALUES ('1001', 'INV-2026-0042', 30000.00, DATE '2026-09-15', 'SO-2');
COMMIT;
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('1003', 'INV-2026-0051', 1500.00, DATE '2026-10-20', DATE '2026-11-19');
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('1001', 'BANK-7781', 10000.00, DATE '2026-11-02');
SELECT a.amount AS allocated_to_inv_2026_0042
  FROM credit.payments p, credit.allocate(p.payment_id, 'INV-2026-0042') a
 WHERE p.payment_key = 'BANK-7781';

\echo '== aging as of 2026-11-30 (Acme''s invoice was due 2026-10-15: 46 days past due)'
SELECT customer_key, bucket, band, amount, items
  FROM credit.aging(DATE '2026-11-30') ORDER BY customer_key, bucket_no;

\echo '== the daily dunning run on 2026-11-30 queues reminders'
SELECT * FROM credit.run_dunning(DATE '2026-11-30');
SELECT customer_key, invoice_key, level_no, channel, recipient, message
  FROM credit.dunning_queue ORDER BY queue_id;

\echo '== a mail worker claims the reminders and reports delivery'
SELECT queue_id, channel, invoice_key FROM credit.claim_dunning(10) ORDER BY queue_id;
SELECT count(*) AS delivered
  FROM credit.dunning_queue q, credit.complete_dunning(q.queue_id, true) c
 WHERE q.status = 'claimed';

\echo '== reconcile: stored exposure agrees with orders, invoices and payments (no rows)'
SELECT * FROM credit.reconcile();
