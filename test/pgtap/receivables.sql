/*
 * receivables.sql: pgTAP suite for the receivables ledger.
 *
 * Invoices (credit.receivables) count as exposure and are never refused,
 * even past the limit or on a stopped account; payments and credit notes
 * (credit.payments) lower exposure while unallocated; allocations move an
 * amount from a payment to an invoice and leave exposure unchanged.  An
 * application that invoices an order in one transaction sees its total
 * exposure unchanged, whichever statement comes first.  Every refused
 * statement names its SQLSTATE and changes nothing.  Corrections, DELETE
 * and TRUNCATE keep exposure exact; credit.reconcile() agrees throughout
 * and sees a manual drift.  An application's own invoice table attached
 * with credit.attach_receivables counts the same way.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(173);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.rid(k text, inv text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT receivable_id FROM credit.receivables WHERE customer_key = k AND invoice_key = inv
$$;
CREATE FUNCTION pg_temp.pid(k text, pay text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT payment_id FROM credit.payments WHERE customer_key = k AND payment_key = pay
$$;
CREATE FUNCTION pg_temp.open_amount(k text, inv text) RETURNS numeric
LANGUAGE sql AS $$
	SELECT open_amount FROM credit.receivables WHERE customer_key = k AND invoice_key = inv
$$;
CREATE FUNCTION pg_temp.unallocated(k text, pay text) RETURNS numeric
LANGUAGE sql AS $$
	SELECT unallocated FROM credit.payments WHERE customer_key = k AND payment_key = pay
$$;
CREATE FUNCTION pg_temp.reconcile_diffs() RETURNS bigint
LANGUAGE sql AS $$ SELECT count(*) FROM credit.reconcile() $$;
/* everything a refused statement must leave as it was */
CREATE FUNCTION pg_temp.ledger_state() RETURNS text
LANGUAGE sql AS $$
SELECT concat_ws(E'\n',
	(SELECT string_agg(format('%s=%s/%s', customer_key, credit.live_exposure(customer_key, exposure), status),
					   ',' ORDER BY customer_key)
	   FROM credit.accounts),
	(SELECT string_agg(format('%s:%s:%s:%s-%s:%s:%s:%s', receivable_id, customer_key, invoice_key,
							  amount, allocated, currency, invoice_date, due_date),
					   ',' ORDER BY receivable_id)
	   FROM credit.receivables),
	(SELECT string_agg(format('%s:%s:%s:%s:%s-%s:%s', payment_id, customer_key, payment_key, kind,
							  amount, allocated, currency),
					   ',' ORDER BY payment_id)
	   FROM credit.payments),
	(SELECT string_agg(format('%s:%s:%s:%s', allocation_id, payment_id, receivable_id, amount),
					   ',' ORDER BY allocation_id)
	   FROM credit.allocations),
	(SELECT count(*)::text FROM credit.status_changes))
$$;
CREATE TEMP TABLE saved_state (s text);
CREATE FUNCTION pg_temp.save_state() RETURNS void
LANGUAGE sql AS $$
	DELETE FROM saved_state;
	INSERT INTO saved_state SELECT pg_temp.ledger_state();
$$;
CREATE FUNCTION pg_temp.saved_state() RETURNS text
LANGUAGE sql AS $$ SELECT s FROM saved_state $$;

CREATE SCHEMA shop;
CREATE TABLE shop.orders (
	id		int PRIMARY KEY,
	cust	text,
	amount	numeric,
	state	text NOT NULL DEFAULT 'open'
);
SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}');

INSERT INTO credit.accounts (customer_key, credit_limit, payment_term_days)
VALUES ('A', 1000, 45);
INSERT INTO credit.accounts (customer_key, credit_limit)
VALUES ('B', 1000), ('O', 1000), ('S', 1000);
INSERT INTO credit.accounts (customer_key, credit_limit, currency)
VALUES ('E', 1000, 'EUR');

/* ---------------------------------------------------------------------
 * Posting invoices: counted, never refused; defaults from the account
 * ------------------------------------------------------------------- */

SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('A', 'INV-1', 400, '2026-03-01')$$,
				'post an invoice');
SELECT is(pg_temp.exposure('A'), 400::numeric, 'an invoice raises exposure by its amount');
SELECT is((SELECT due_date FROM credit.receivables WHERE invoice_key = 'INV-1'), '2026-04-15'::date,
		  'due_date defaults to invoice_date + the account''s payment_term_days (45)');
SELECT is((SELECT currency FROM credit.receivables WHERE invoice_key = 'INV-1'), 'CNY',
		  'currency defaults to the account''s');
SELECT is(pg_temp.open_amount('A', 'INV-1'), 400::numeric, 'a new invoice is open in full');
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency,
												 invoice_date, due_date)
				  VALUES ('A', 'INV-2', 600, 'CNY', '2026-03-01', '2026-03-01')$$,
				'an explicit due date on the invoice date and the account''s currency are accepted');
SELECT is((SELECT due_date FROM credit.receivables WHERE invoice_key = 'INV-2'), '2026-03-01'::date,
		  'an explicit due date is kept');
SELECT is(pg_temp.exposure('A'), 1000::numeric, 'exposure at the limit');
SELECT is(pg_temp.status('A'), 'watch', 'status watch at the limit');
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('A', 'INV-3', 250, '2026-03-02')$$,
				'an invoice past the limit is never refused');
SELECT is(pg_temp.exposure('A'), 1250::numeric, 'it counts in full');
SELECT is(pg_temp.status('A'), 'hold', 'the account goes on hold');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (100, 'A', 1)$$,
				 'CR001', NULL, 'an order is refused while invoices fill the limit');

/* the default payment term (30 days) and another currency */
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('E', 'E-1', 300, '2026-01-31')$$,
				'post an invoice on a EUR account without a currency');
SELECT row_eq($$SELECT currency, due_date FROM credit.receivables WHERE invoice_key = 'E-1'$$,
			  ROW('EUR'::text, '2026-03-02'::date),
			  'currency EUR from the account, due 30 days (the default term) later');

/* a stopped account */
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'S';
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (101, 'S', 1)$$,
				 'CR002', NULL, 'an order on a stopped account is refused');
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('S', 'S-1', 1500, '2026-03-01')$$,
				'an invoice on a stopped account, past its limit, is never refused');
SELECT is(pg_temp.exposure('S'), 1500::numeric, 'it counts');
SELECT is(pg_temp.status('S'), 'stop', 'the account stays stopped');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after posting invoices');

/* ---------------------------------------------------------------------
 * Invoicing an order in one transaction: total exposure unchanged
 * ------------------------------------------------------------------- */

INSERT INTO shop.orders (id, cust, amount) VALUES (1, 'O', 500), (2, 'O', 300), (3, 'O', 200);
SELECT is(pg_temp.exposure('O'), 1000::numeric, 'three open orders fill the limit');

/* the order leaves its open status first, then the invoice is posted */
SELECT lives_ok($$UPDATE shop.orders SET state = 'invoiced' WHERE id = 1$$, 'order 1 is invoiced');
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, order_ref)
				  VALUES ('O', 'O-1', 500, CURRENT_DATE, '1')$$,
				'then its invoice is posted');
SELECT is(pg_temp.exposure('O'), 1000::numeric, 'order first, invoice second: exposure unchanged');

/* the invoice first (past the limit for a moment), then the order */
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, order_ref)
				  VALUES ('O', 'O-2', 300, CURRENT_DATE, '2')$$,
				'the invoice of order 2 is posted while the order is still open (at the limit)');
SELECT is(pg_temp.exposure('O'), 1300::numeric, 'for a moment both count');
SELECT lives_ok($$UPDATE shop.orders SET state = 'invoiced' WHERE id = 2$$,
				'then order 2 leaves its open status');
SELECT is(pg_temp.exposure('O'), 1000::numeric, 'invoice first, order second: exposure unchanged');
SELECT is(pg_temp.status('O'), 'watch', 'the status is derived again (watch)');

/* both in one statement */
SELECT lives_ok($$WITH o AS (UPDATE shop.orders SET state = 'invoiced' WHERE id = 3
							  RETURNING cust, id, amount)
				  INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, order_ref)
				  SELECT cust, 'O-3', amount, CURRENT_DATE, id::text FROM o$$,
				'order 3 invoiced and its invoice posted in one statement');
SELECT is(pg_temp.exposure('O'), 1000::numeric, 'one statement: exposure unchanged');
SELECT is((SELECT count(*) FROM shop.orders WHERE cust = 'O' AND state = 'open'), 0::bigint,
		  'no order of O is open any more');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (4, 'O', 0.01)$$,
				 'CR001', NULL, 'the invoices still count against new orders');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after invoicing orders');

/* ---------------------------------------------------------------------
 * Payments and allocations
 * ------------------------------------------------------------------- */

/* A: INV-1 400, INV-2 600, INV-3 250; exposure 1250, hold */
SELECT lives_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount)
				  VALUES ('A', 'P-1', 500)$$,
				'record a payment');
SELECT is(pg_temp.exposure('A'), 750::numeric, 'an unallocated payment lowers exposure by its amount');
SELECT is(pg_temp.status('A'), 'ok', 'the hold is lifted by the payment');
SELECT row_eq($$SELECT kind, currency, received_on, unallocated FROM credit.payments WHERE payment_key = 'P-1'$$,
			  ROW('payment'::text, 'CNY'::text, CURRENT_DATE, 500::numeric),
			  'a payment defaults to kind payment, the account''s currency, received today');

SELECT lives_ok($$INSERT INTO credit.allocations (payment_id, receivable_id, amount)
				  VALUES (pg_temp.pid('A', 'P-1'), pg_temp.rid('A', 'INV-1'), 150)$$,
				'allocate 150 of the payment to INV-1 by INSERT');
SELECT is(pg_temp.exposure('A'), 750::numeric, 'an allocation leaves exposure unchanged');
SELECT is(pg_temp.open_amount('A', 'INV-1'), 250::numeric, 'the invoice''s open amount goes down');
SELECT is(pg_temp.unallocated('A', 'P-1'), 350::numeric, 'the payment''s unallocated amount goes down');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile agrees after an allocation');

SELECT lives_ok($$DELETE FROM credit.allocations WHERE payment_id = pg_temp.pid('A', 'P-1')$$,
				'delete the allocation');
SELECT is(pg_temp.exposure('A'), 750::numeric, 'reversing leaves exposure unchanged');
SELECT is(pg_temp.open_amount('A', 'INV-1'), 400::numeric, 'the invoice is open in full again');
SELECT is(pg_temp.unallocated('A', 'P-1'), 500::numeric, 'the payment is unallocated in full again');

SELECT is((SELECT amount FROM credit.allocate(pg_temp.pid('A', 'P-1'), 'INV-1', 100)), 100::numeric,
		  'credit.allocate by invoice number with an amount');
SELECT is(pg_temp.open_amount('A', 'INV-1'), 300::numeric, 'the invoice has 300 open');
SELECT is((SELECT amount FROM credit.allocate(pg_temp.pid('A', 'P-1'), 'INV-1')), 300::numeric,
		  'credit.allocate without an amount: the invoice''s open amount (less than the payment''s 400)');
SELECT is(pg_temp.open_amount('A', 'INV-1'), 0::numeric, 'the invoice is paid');
SELECT is(pg_temp.unallocated('A', 'P-1'), 100::numeric, 'the payment has 100 left');
SELECT is((SELECT amount FROM credit.allocate(pg_temp.pid('A', 'P-1'), 'INV-2')), 100::numeric,
		  'credit.allocate without an amount: the payment''s unallocated amount (less than the invoice''s 600)');
SELECT is(pg_temp.unallocated('A', 'P-1'), 0::numeric, 'the payment is allocated in full');
SELECT is(pg_temp.open_amount('A', 'INV-2'), 500::numeric, 'INV-2 has 500 open');
SELECT is(pg_temp.exposure('A'), 750::numeric, 'allocations by credit.allocate leave exposure unchanged');
SELECT is((SELECT sum(amount) FROM credit.allocations WHERE payment_id = pg_temp.pid('A', 'P-1')),
		  500::numeric, 'the allocations add up to the payment');

SELECT pg_temp.save_state();
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-1'), 'INV-3')$$,
				 'CR005', NULL,
				 'credit.allocate without an amount from a fully allocated payment: nothing to allocate');
SELECT is(pg_temp.ledger_state(), pg_temp.saved_state(), 'and nothing changed');

/* credit notes */
SELECT lives_ok($$INSERT INTO credit.payments (customer_key, payment_key, kind, amount)
				  VALUES ('A', 'CN-1', 'credit_note', 200)$$,
				'issue a credit note (a positive amount)');
SELECT is(pg_temp.exposure('A'), 550::numeric, 'a credit note lowers exposure like a payment');
SELECT is((SELECT amount FROM credit.allocate(pg_temp.pid('A', 'CN-1'), 'INV-2')), 200::numeric,
		  'a credit note is allocated to an invoice like a payment');
SELECT is(pg_temp.exposure('A'), 550::numeric, 'its allocation leaves exposure unchanged');
SELECT is(pg_temp.open_amount('A', 'INV-2'), 300::numeric, 'INV-2 has 300 open');

SELECT pg_temp.save_state();
SELECT throws_ok($$INSERT INTO credit.payments (customer_key, payment_key, kind, amount)
				   VALUES ('A', 'CN-2', 'credit_note', -50)$$,
				 '23514', NULL, 'a negative credit note is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				   VALUES ('A', 'NEG-1', -50, '2026-03-01')$$,
				 '23514', NULL, 'a negative invoice is refused (issue a credit note instead)');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				   VALUES ('A', 'ZERO-1', 0, '2026-03-01')$$,
				 '23514', NULL, 'an invoice of 0 is refused');
SELECT throws_ok($$INSERT INTO credit.payments (customer_key, payment_key, kind, amount)
				   VALUES ('A', 'R-1', 'refund', 50)$$,
				 '23514', NULL, 'an unknown payment kind is refused');
SELECT is(pg_temp.ledger_state(), pg_temp.saved_state(), 'the refused documents changed nothing');

/* stopped account: payments pass */
SELECT lives_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount) VALUES ('S', 'SP-1', 700)$$,
				'a payment on a stopped account passes');
SELECT is(pg_temp.exposure('S'), 800::numeric, 'and lowers its exposure');
SELECT is(pg_temp.status('S'), 'stop', 'the account stays stopped');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after payments and allocations');

/* ---------------------------------------------------------------------
 * Refused statements: SQLSTATE, and nothing changed
 * ------------------------------------------------------------------- */

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
VALUES ('B', 'B-1', 100, '2026-03-01');
INSERT INTO credit.payments (customer_key, payment_key, amount)
VALUES ('A', 'P-2', 1000), ('A', 'P-3', 50), ('B', 'BP-1', 10);
INSERT INTO credit.payments (customer_key, payment_key, amount) VALUES ('E', 'EP-0', 50);
SELECT credit.allocate(pg_temp.pid('E', 'EP-0'), 'E-1', 50);
/* an account with exposure keeps its currency (1.3) */
SELECT throws_ok($$UPDATE credit.accounts SET currency = 'USD' WHERE customer_key = 'E'$$,
				 '55000', NULL, 'the currency of an account with exposure cannot change');
/* a database from before 1.3 may hold such a change: a USD payment still cannot pay its EUR invoice */
ALTER TABLE credit.accounts DISABLE TRIGGER accounts_currency_update;
UPDATE credit.accounts SET currency = 'USD' WHERE customer_key = 'E';
ALTER TABLE credit.accounts ENABLE TRIGGER accounts_currency_update;
INSERT INTO credit.payments (customer_key, payment_key, amount) VALUES ('E', 'EP-1', 100);
SELECT is((SELECT currency FROM credit.payments WHERE payment_key = 'EP-1'), 'USD',
		  'a payment takes the account''s new currency');
SELECT pg_temp.save_state();

SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
				   VALUES ('A', 'BAD-1', 100, '2026-03-10', '2026-03-09')$$,
				 '22007', NULL, 'an invoice due before its invoice date is refused');
SELECT throws_ok($$UPDATE credit.receivables SET due_date = '2026-02-28' WHERE invoice_key = 'INV-3'$$,
				 '22007', NULL, 'moving a due date before the invoice date is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency, invoice_date)
				   VALUES ('A', 'BAD-2', 100, 'USD', '2026-03-10')$$,
				 'CR004', NULL, 'an invoice in another currency than the account''s is refused');
SELECT throws_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount, currency)
				   VALUES ('A', 'BAD-3', 100, 'EUR')$$,
				 'CR004', NULL, 'a payment in another currency than the account''s is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('E', 'EP-1'), 'E-1', 50)$$,
				 'CR004', NULL, 'allocating a USD payment to a EUR invoice is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-2'), 'INV-3', 250.01)$$,
				 'CR005', NULL, 'an allocation beyond the invoice''s open amount (250) is refused');
SELECT throws_ok($$INSERT INTO credit.allocations (payment_id, receivable_id, amount)
				   VALUES (pg_temp.pid('A', 'P-2'), pg_temp.rid('A', 'INV-1'), 0.01)$$,
				 'CR005', NULL, 'an allocation to a paid invoice is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-3'), 'INV-3', 60)$$,
				 'CR005', NULL, 'an allocation beyond the payment''s unallocated amount (50) is refused');
SELECT throws_ok($$INSERT INTO credit.allocations (payment_id, receivable_id, amount)
				   VALUES (pg_temp.pid('A', 'P-2'), pg_temp.rid('B', 'B-1'), 10)$$,
				 'CR006', NULL, 'an allocation to another customer''s invoice is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-2'), 'B-1', 10)$$,
				 '23503', NULL, 'credit.allocate finds no invoice B-1 among the payment customer''s invoices');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-2'), 'NO-SUCH-INVOICE', 10)$$,
				 '23503', NULL, 'credit.allocate to an unknown invoice is refused');
SELECT throws_ok($$INSERT INTO credit.allocations (payment_id, receivable_id, amount)
				   VALUES (pg_temp.pid('A', 'P-2'), -1, 10)$$,
				 '23503', NULL, 'an allocation with an unknown receivable_id is refused');
SELECT throws_ok($$SELECT credit.allocate(-1, 'INV-3', 10)$$,
				 '23503', NULL, 'credit.allocate of an unknown payment is refused');
SELECT throws_ok($$INSERT INTO credit.allocations (payment_id, receivable_id, amount)
				   VALUES (-1, pg_temp.rid('A', 'INV-3'), 10)$$,
				 '23503', NULL, 'an allocation with an unknown payment_id is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-2'), 'INV-3', 0)$$,
				 '23514', NULL, 'an allocation of 0 is refused');
SELECT throws_ok($$SELECT credit.allocate(pg_temp.pid('A', 'P-2'), 'INV-3', -10)$$,
				 '23514', NULL, 'a negative allocation is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				   VALUES ('NOACC', 'N-1', 100, '2026-03-10')$$,
				 'CR003', NULL, 'an invoice of a customer without an account is refused');
SELECT throws_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount)
				   VALUES ('NOACC', 'NP-1', 100)$$,
				 'CR003', NULL, 'a payment of a customer without an account is refused');
SELECT throws_ok($$UPDATE credit.receivables SET customer_key = 'NOACC' WHERE invoice_key = 'INV-3'$$,
				 'CR003', NULL, 'moving an invoice to a customer without an account is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				   VALUES ('A', 'INV-1', 100, '2026-03-10')$$,
				 '23505', NULL, 'a duplicate invoice number of the same customer is refused');
SELECT throws_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount)
				   VALUES ('A', 'P-1', 100)$$,
				 '23505', NULL, 'a duplicate payment number of the same customer is refused');
SELECT throws_ok($$UPDATE credit.allocations SET amount = amount
				   WHERE payment_id = pg_temp.pid('A', 'P-1')$$,
				 '55000', NULL, 'an allocation cannot be updated');
SELECT throws_ok($$UPDATE credit.allocations SET allocated_on = allocated_on - 1$$,
				 '55000', NULL, 'not even its date');
SELECT throws_ok($$UPDATE credit.receivables SET customer_key = 'B' WHERE invoice_key = 'INV-1'$$,
				 '55000', NULL, 'the customer of an allocated invoice cannot change');
SELECT throws_ok($$UPDATE credit.payments SET customer_key = 'B' WHERE payment_key = 'P-1'$$,
				 '55000', NULL, 'the customer of an allocated payment cannot change');
SELECT throws_ok($$UPDATE credit.receivables SET amount = 99 WHERE invoice_key = 'INV-1'$$,
				 '23514', NULL, 'an invoice cannot be corrected below its allocated amount');
SELECT throws_ok($$DELETE FROM credit.receivables WHERE invoice_key = 'INV-1'$$,
				 '23503', NULL, 'an allocated invoice cannot be deleted');
SELECT throws_ok($$DELETE FROM credit.payments WHERE payment_key = 'P-1'$$,
				 '23503', NULL, 'an allocated payment cannot be deleted');
SELECT throws_ok($$SELECT credit.detach_orders('credit.receivables')$$,
				 '55000', NULL, 'credit.receivables cannot be detached');
SELECT throws_ok($$SELECT credit.detach_orders('credit.payments')$$,
				 '55000', NULL, 'credit.payments cannot be detached');
SELECT is(pg_temp.ledger_state(), pg_temp.saved_state(), 'none of the refused statements changed anything');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after the refusals');

/* documents posted before the account changed its currency stay manageable */
SELECT lives_ok($$UPDATE credit.receivables SET disputed = true WHERE invoice_key = 'E-1'$$,
				'an invoice posted before the account changed currency can be marked disputed');
SELECT lives_ok($$DELETE FROM credit.allocations WHERE payment_id = pg_temp.pid('E', 'EP-0')$$,
				'an allocation made before the account changed currency can be reversed');

SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('B', 'INV-1', 100, '2026-03-10')$$,
				'the same invoice number for another customer is accepted');
SELECT is(pg_temp.exposure('B'), 190::numeric, 'and counts for that customer');

/* ---------------------------------------------------------------------
 * Corrections and deletions
 * ------------------------------------------------------------------- */

/* A: INV-1 400 (paid), INV-2 600 (300 open), INV-3 250 (open);
 * P-1 500 and CN-1 200 allocated, P-2 1000 and P-3 50 unallocated: exposure -500 */
SELECT is(pg_temp.exposure('A'), -500::numeric, 'A: 550 open minus 1050 unallocated');
SELECT lives_ok($$UPDATE credit.receivables SET amount = 300 WHERE invoice_key = 'INV-3' AND customer_key = 'A'$$,
				'raise an invoice''s amount');
SELECT is(pg_temp.exposure('A'), -450::numeric, 'exposure moves up by the difference');
SELECT lives_ok($$UPDATE credit.receivables SET amount = 200.00 WHERE invoice_key = 'INV-3' AND customer_key = 'A'$$,
				'lower it');
SELECT is(pg_temp.exposure('A'), -550::numeric, 'exposure moves down by the difference');
SELECT lives_ok($$UPDATE credit.receivables SET amount = 650 WHERE invoice_key = 'INV-2'$$,
				'correct a partly allocated invoice');
SELECT is(pg_temp.open_amount('A', 'INV-2'), 350::numeric, 'its open amount moves by the difference');
SELECT is(pg_temp.exposure('A'), -500::numeric, 'and so does exposure');
SELECT lives_ok($$UPDATE credit.receivables SET disputed = true, due_date = due_date + 10
				  WHERE invoice_key = 'INV-2'$$,
				'an update of other columns of an invoice');
SELECT is(pg_temp.exposure('A'), -500::numeric, 'changes nothing');
SELECT lives_ok($$DELETE FROM credit.receivables WHERE invoice_key = 'INV-3' AND customer_key = 'A'$$,
				'delete an unallocated invoice');
SELECT is(pg_temp.exposure('A'), -700::numeric, 'its open amount is released');
SELECT lives_ok($$UPDATE credit.payments SET amount = 900 WHERE payment_key = 'P-2'$$,
				'correct a payment''s amount');
SELECT is(pg_temp.exposure('A'), -600::numeric, 'exposure moves against the difference');
SELECT lives_ok($$DELETE FROM credit.payments WHERE payment_key = 'P-3'$$,
				'delete an unallocated payment');
SELECT is(pg_temp.exposure('A'), -550::numeric, 'its unallocated amount counts no more');
SELECT lives_ok($$UPDATE credit.receivables SET customer_key = 'A' WHERE customer_key = 'B' AND invoice_key = 'B-1'$$,
				'move an unallocated invoice to another customer');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('A', 'B') ORDER BY customer_key$$,
				  $$VALUES ('A', -450::numeric), ('B', 90::numeric)$$,
				  'its open amount moves from one customer to the other');

/* the stopped account: an invoice raised, a payment taken back */
SELECT lives_ok($$UPDATE credit.receivables SET amount = 1600 WHERE invoice_key = 'S-1'$$,
				'raising an invoice on a stopped account is never refused');
SELECT lives_ok($$DELETE FROM credit.payments WHERE payment_key = 'SP-1'$$,
				'deleting a payment entered by mistake on a stopped account passes');
SELECT is(pg_temp.exposure('S'), 1600::numeric, 'exposure follows both');
SELECT is(pg_temp.status('S'), 'stop', 'the account stays stopped');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after corrections');

/* ---------------------------------------------------------------------
 * reconcile detects a manual drift
 * ------------------------------------------------------------------- */

/*
 * the serving ledger's figure drifted by hand: the shared-memory ledger's
 * (credit.adjust_shared_exposure; it serves no account without the preload)
 * and the stored column, the row ledger's figure (a copy of the live figure
 * when the shared-memory ledger serves)
 */
SELECT NULL FROM credit.adjust_shared_exposure(ARRAY['A'], ARRAY[7]::numeric[]);
UPDATE credit.accounts SET exposure = exposure + 7 WHERE customer_key = 'A';
SELECT results_eq($$SELECT customer_key COLLATE "default", stored_exposure, computed_exposure, difference
					 FROM credit.reconcile()$$,
				  $$VALUES ('A', -443::numeric, -450::numeric, 7::numeric)$$,
				  'reconcile reports a manual drift of exposure');
SELECT lives_ok($$SELECT * FROM credit.reconcile(repair => true)$$, 'repair it');
SELECT is(pg_temp.exposure('A'), -450::numeric, 'the ledger figure is restored');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after the repair');

/* ---------------------------------------------------------------------
 * TRUNCATE of the whole ledger leaves the orders' part
 * ------------------------------------------------------------------- */

INSERT INTO shop.orders (id, cust, amount) VALUES (10, 'A', 150), (11, 'B', 25), (12, 'E', 40);
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
VALUES ('A', 'INV-9', 80, '2026-03-01');
SELECT is(pg_temp.exposure('A'), -220::numeric, 'A: orders, invoices and payments together');
SELECT lives_ok($$TRUNCATE credit.allocations, credit.payments, credit.receivables$$,
				'truncate the ledger in one statement');
SELECT results_eq($$SELECT a.customer_key COLLATE "default", credit.live_exposure(a.customer_key, a.exposure)
					  FROM credit.accounts a ORDER BY 1$$,
				  $$SELECT a.customer_key COLLATE "default",
						   COALESCE((SELECT sum(o.amount) FROM shop.orders o
									  WHERE o.cust = a.customer_key AND o.state = 'open'), 0)
					  FROM credit.accounts a ORDER BY 1$$,
				  'every account''s exposure is exactly its open orders');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('A', 'B', 'E', 'O', 'S') ORDER BY 1$$,
				  $$VALUES ('A', 150::numeric), ('B', 25::numeric), ('E', 40::numeric),
						   ('O', 0::numeric), ('S', 0::numeric)$$,
				  'A 150, B 25, E 40, O 0, S 0');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences after TRUNCATE');

/* ---------------------------------------------------------------------
 * An application's own invoice table: credit.attach_receivables
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('X', 500);
CREATE SCHEMA app;
CREATE TABLE app.invoices (
	id			int PRIMARY KEY,
	cust		text,
	open_amt	numeric,
	state		text NOT NULL DEFAULT 'posted'
);
INSERT INTO app.invoices VALUES (1, 'X', 100, 'posted'), (2, 'X', 999, 'paid');
SELECT lives_ok($$SELECT credit.attach_receivables('app.invoices', 'cust', 'open_amt', 'state', '{posted}')$$,
				'attach an application''s invoice table');
SELECT is((SELECT role FROM credit.attachments WHERE orders = 'app.invoices'::regclass), 'receivables',
		  'in the receivables role');
SELECT is(pg_temp.exposure('X'), 100::numeric, 'its open invoices already there count');
SELECT lives_ok($$INSERT INTO app.invoices (id, cust, open_amt) VALUES (3, 'X', 600)$$,
				'an invoice past the limit is never refused');
SELECT is(pg_temp.exposure('X'), 700::numeric, 'it counts');
SELECT is(pg_temp.status('X'), 'hold', 'the account goes on hold');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (20, 'X', 1)$$,
				 'CR001', NULL, 'an order is refused meanwhile');
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'X';
SELECT lives_ok($$UPDATE app.invoices SET open_amt = 650 WHERE id = 3$$,
				'raising an open amount on a stopped account is never refused');
SELECT lives_ok($$INSERT INTO app.invoices (id, cust, open_amt) VALUES (4, 'X', 50)$$,
				'nor a new invoice');
SELECT is(pg_temp.exposure('X'), 800::numeric, 'both count');
SELECT is(pg_temp.status('X'), 'stop', 'the account stays stopped');
SELECT lives_ok($$UPDATE app.invoices SET open_amt = 250 WHERE id = 3$$, 'a part payment in the application');
SELECT lives_ok($$UPDATE app.invoices SET state = 'paid' WHERE id = 1$$, 'an invoice paid in the application');
SELECT is(pg_temp.exposure('X'), 300::numeric, 'open amounts follow');
SELECT lives_ok($$UPDATE app.invoices SET state = 'posted' WHERE id = 2$$, 'a paid invoice reopened');
SELECT is(pg_temp.exposure('X'), 1299::numeric, 'counts again, never refused');
SELECT throws_ok($$INSERT INTO app.invoices (id, cust, open_amt) VALUES (5, 'NOACC', 10)$$,
				 'CR003', NULL, 'an invoice of a customer without an account is refused');
SELECT throws_ok($$INSERT INTO app.invoices (id, cust, open_amt) VALUES (5, 'X', -10)$$,
				 '22023', NULL, 'a negative open amount is refused');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile covers the application''s invoice table');

/* a row written behind the trigger's back is found */
ALTER TABLE app.invoices DISABLE TRIGGER credit_enforce;
INSERT INTO app.invoices (id, cust, open_amt) VALUES (6, 'X', 11);
ALTER TABLE app.invoices ENABLE TRIGGER credit_enforce;
SELECT results_eq($$SELECT customer_key COLLATE "default", stored_exposure, computed_exposure, difference
					 FROM credit.reconcile()$$,
				  $$VALUES ('X', 1299::numeric, 1310::numeric, -11::numeric)$$,
				  'reconcile counts the application''s invoices');
SELECT lives_ok($$SELECT * FROM credit.reconcile(repair => true)$$, 'repair');
SELECT is(pg_temp.exposure('X'), 1310::numeric, 'the repair counts them');
SELECT lives_ok($$SELECT credit.detach_orders('app.invoices')$$,
				'an application''s invoice table can be detached');
SELECT is(pg_temp.exposure('X'), 0::numeric, 'detaching releases its open amounts');
SELECT is(pg_temp.reconcile_diffs(), 0::bigint, 'reconcile: no differences at the end');

/* allocated is kept by credit.allocations alone; dates must be finite */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('GUARD', 1000);
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
VALUES ('GUARD', 'G-1', 100, '2026-03-01');
CREATE TEMP TABLE guard_before AS SELECT pg_temp.ledger_state() AS state;
SELECT throws_ok($$UPDATE credit.receivables SET allocated = 100 WHERE invoice_key = 'G-1'$$,
				 '55000', NULL, 'writing allocated directly is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, allocated, invoice_date)
				   VALUES ('GUARD', 'G-2', 100, 40, '2026-03-01')$$,
				 '55000', NULL, 'posting an invoice with something already allocated is refused');
SELECT throws_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
				   VALUES ('GUARD', 'G-3', 100, '2026-03-01', 'infinity')$$,
				 '23514', NULL, 'an infinite due date is refused');
SELECT is(pg_temp.ledger_state(), (SELECT state FROM guard_before),
		  'the refused statements changed nothing');
SELECT is(pg_temp.exposure('GUARD'), 100::numeric, 'the guarded invoice still counts in full');

SELECT * FROM finish();
ROLLBACK;
