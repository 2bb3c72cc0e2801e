/*
 * metrics.sql: pgTAP suite for the built-in metrics (credit.customer_metrics,
 * sql/metrics.sql).
 *
 * Every built-in metric, hand-computed, at its edges, as of 2026-06-30 with
 * a 6-month window (2025-12-30, 2026-06-30] and a 12-month overdue window
 * (2025-06-30, 2026-06-30]:
 *   WIN  an invoice exactly 6 months before as_of is outside the sales
 *        window, one a day later inside; an allocation on the window's first
 *        excluded day is left out of avg_days_to_pay; an invoice after
 *        as_of does not exist yet; one day earlier the boundary moves
 *   PAY  amount-weighted avg_days_to_pay over partial payments; an
 *        allocation after as_of is ignored, so the invoice is open (and
 *        overdue) as of the date, and settled late a few days later
 *   LATE max_days_overdue from items settled late, in and out of the window
 *   OVD  max_days_overdue and current_days_overdue from open items;
 *        overdue_count and overdue_amount at the edges of their window
 *        (due on its first excluded day, due on as_of itself), paid late,
 *        paid on time, partly paid
 *   SAL  avg_monthly_sales and sales_variation with months without sales
 *        counting 0 (population standard deviation / mean)
 *   R*   relationship_years from the profile's customer_since, else the
 *        first invoice, else the account's creation
 *   U*   utilization with a temporary limit in force, with one expired, and
 *        NULL with a zero limit; registered_capital from the profile
 *   NONE a customer without receivables (and NOTYET, whose only invoice is
 *        after as_of): the documented NULLs and zeros
 * The customer filter gives each customer the same row as the full run.
 * Every date is explicit (account creation included); allocations are
 * inserted directly with their allocated_on.  One transaction, rolled back.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(61);

CREATE FUNCTION pg_temp.inv(k text, inv text, amount numeric, invoiced date, due date)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
	VALUES (k, inv, amount, invoiced, due)
$$;
/* a payment received on the day, allocated to the invoice that day */
CREATE FUNCTION pg_temp.paid(k text, inv text, amt numeric, on_date date)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
	VALUES (k, format('PAY-%s-%s-%s', inv, on_date, amt), amt, on_date);
	INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
	SELECT p.payment_id, r.receivable_id, amt, on_date
	  FROM credit.payments p, credit.receivables r
	 WHERE p.customer_key = k AND p.payment_key = format('PAY-%s-%s-%s', inv, on_date, amt)
	   AND r.customer_key = k AND r.invoice_key = inv;
$$;
/* one customer's row from the full run */
CREATE FUNCTION pg_temp.m(k text, as_of date DEFAULT '2026-06-30', w integer DEFAULT 6,
						  n integer DEFAULT 12)
RETURNS SETOF record LANGUAGE sql AS $$
	SELECT m FROM credit.customer_metrics(as_of, w, n) m WHERE m.customer_key = k
$$;
CREATE FUNCTION pg_temp.metric(k text, metric text, as_of date DEFAULT '2026-06-30',
							   w integer DEFAULT 6, n integer DEFAULT 12)
RETURNS text LANGUAGE sql AS $$
	SELECT to_jsonb(m) ->> metric FROM credit.customer_metrics(as_of, w, n) m
	 WHERE m.customer_key = k
$$;

INSERT INTO credit.accounts (customer_key, credit_limit, created_at) VALUES
	('WIN', 0, '2020-01-01 00:00+00'), ('PAY', 10000, '2020-01-01 00:00+00'),
	('LATE', 0, '2020-01-01 00:00+00'), ('OVD', 0, '2020-01-01 00:00+00'),
	('SAL', 0, '2020-01-01 00:00+00'), ('RPROF', 0, '2020-01-01 00:00+00'),
	('RINV', 0, '2020-01-01 00:00+00'), ('NONE', 0, '2025-12-31 00:00+00'),
	('NOTYET', 0, '2025-12-31 00:00+00'), ('UCAP', 0, '2020-01-01 00:00+00'),
	('UEXP', 1000, '2020-01-01 00:00+00'), ('UZERO', 0, '2020-01-01 00:00+00');
INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_from,
							 temp_limit_until, created_at)
VALUES ('UTMP', 1000, 500, NULL, 'infinity', '2020-01-01 00:00+00');
UPDATE credit.accounts SET temp_limit = 500, temp_limit_from = '1999-01-01 00:00+00',
						   temp_limit_until = '2000-01-01 00:00+00'
 WHERE customer_key = 'UEXP';

/* ---------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------- */

SELECT throws_ok($$SELECT * FROM credit.customer_metrics(NULL)$$, '22023',
				 'metrics need a finite as-of date', 'a NULL as_of is refused');
SELECT throws_ok($$SELECT * FROM credit.customer_metrics('infinity')$$, '22023',
				 'metrics need a finite as-of date', 'an infinite as_of is refused');
SELECT throws_ok($$SELECT * FROM credit.customer_metrics('2026-06-30', 0, 12)$$, '22023',
				 'metric windows must be 1 to 120 months, not 0 and 12', 'a window of 0 months is refused');
SELECT throws_ok($$SELECT * FROM credit.customer_metrics('2026-06-30', 6, 121)$$, '22023',
				 'metric windows must be 1 to 120 months, not 6 and 121',
				 'an overdue window over 120 months is refused');

/* ---------------------------------------------------------------------
 * WIN: the window's edges
 * ------------------------------------------------------------------- */

SELECT pg_temp.inv('WIN', 'edge', 600, '2025-12-30', '2026-01-29');	/* = as_of - 6 months */
SELECT pg_temp.inv('WIN', 'in', 1200, '2025-12-31', '2026-01-30');		/* one day later */
SELECT pg_temp.inv('WIN', 'future', 5000, '2026-07-01', '2026-07-31');	/* after as_of */
SELECT pg_temp.paid('WIN', 'edge', 600, '2025-12-30');		/* 0 days, on the excluded day */
SELECT pg_temp.paid('WIN', 'in', 1200, '2026-01-10');		/* 10 days */

SELECT is(pg_temp.metric('WIN', 'avg_monthly_sales'), '200.00',
		  'sales window: the invoice exactly 6 months before as_of is outside, one a day later inside (1200 / 6)');
SELECT is(pg_temp.metric('WIN', 'avg_monthly_sales', '2026-06-29'), '300.00',
		  'as of one day earlier both invoices are inside ((600 + 1200) / 6)');
SELECT is(pg_temp.metric('WIN', 'avg_monthly_sales', '2026-07-01'), '833.33',
		  'as of one day later both are out, and the invoice dated that day is in (5000 / 6)');
SELECT is(pg_temp.metric('WIN', 'avg_days_to_pay'), '10.00',
		  'avg_days_to_pay: an allocation on the window''s excluded first day (as_of - 6 months) is left out');
SELECT is(pg_temp.metric('WIN', 'avg_days_to_pay', '2026-06-29'), '6.67',
		  'one day earlier it is in: (600 x 0 + 1200 x 10) / 1800');
SELECT is(pg_temp.metric('WIN', 'sales_variation'), '2.2361',
		  'sales_variation of one month with sales and five without: sqrt(5)');
SELECT is(pg_temp.metric('WIN', 'max_days_overdue'), '0',
		  'max_days_overdue: 0 when everything was paid on time (and the invoice after as_of does not exist yet)');
SELECT is(pg_temp.metric('WIN', 'overdue_count') || '/' || pg_temp.metric('WIN', 'overdue_amount'), '0/0',
		  'overdue_count and overdue_amount: 0, not NULL, for a customer with receivables and nothing late');
SELECT is(pg_temp.metric('WIN', 'relationship_years'), '0.50',
		  'relationship_years from the first invoice on or before as_of: 182 days / 365.25');

/* ---------------------------------------------------------------------
 * PAY: partial payments, allocations after as_of
 * ------------------------------------------------------------------- */

SELECT pg_temp.inv('PAY', 'P0', 100, '2025-11-30', '2025-12-30');
SELECT pg_temp.inv('PAY', 'P00', 200, '2025-12-01', '2025-12-31');
SELECT pg_temp.inv('PAY', 'P1', 1000, '2026-03-01', '2026-03-31');
SELECT pg_temp.inv('PAY', 'P2', 500, '2026-04-01', '2026-05-01');
SELECT pg_temp.inv('PAY', 'P3', 300, '2026-05-01', '2026-05-31');
SELECT pg_temp.paid('PAY', 'P0', 100, '2025-12-30');	/* 30 days, out of the window */
SELECT pg_temp.paid('PAY', 'P00', 200, '2025-12-31');	/* 30 days, first day in */
SELECT pg_temp.paid('PAY', 'P1', 400, '2026-03-11');	/* 10 days */
SELECT pg_temp.paid('PAY', 'P1', 600, '2026-04-10');	/* 40 days, 10 days late */
SELECT pg_temp.paid('PAY', 'P2', 500, '2026-04-21');	/* 20 days, on time */
SELECT pg_temp.paid('PAY', 'P3', 300, '2026-07-05');	/* after as_of: 35 days late */

SELECT is((SELECT open_amount FROM credit.receivables WHERE invoice_key = 'P3'), 0::numeric,
		  'fixture: P3 is paid in the ledger today');
SELECT is(pg_temp.metric('PAY', 'avg_days_to_pay'), '25.88',
		  'avg_days_to_pay weighted by amount over partial payments: (200x30 + 400x10 + 600x40 + 500x20) / 1700');
SELECT is(pg_temp.metric('PAY', 'current_days_overdue'), '30',
		  'an allocation after as_of is ignored: P3 is open and 30 days overdue as of the date');
SELECT is(pg_temp.metric('PAY', 'max_days_overdue'), '30',
		  'max_days_overdue: the open item (30) beats the item settled 10 days late');
SELECT is(pg_temp.metric('PAY', 'overdue_count') || '/' || pg_temp.metric('PAY', 'overdue_amount'), '2/1300',
		  'overdue_count/amount: the item paid late (P1) and the one open as of the date (P3)');
SELECT is(pg_temp.metric('PAY', 'avg_monthly_sales'), '300.00',
		  'avg_monthly_sales: (1000 + 500 + 300) / 6');
SELECT is(pg_temp.metric('PAY', 'sales_variation'), '1.2172',
		  'sales_variation of 0, 300, 500, 1000, 0, 0');
SELECT is(pg_temp.metric('PAY', 'relationship_years'), '0.58',
		  'relationship_years from the first invoice: 212 days / 365.25');
SELECT is(pg_temp.metric('PAY', 'utilization'), '0.0000',
		  'utilization: nothing open now out of 10000');
SELECT is(pg_temp.metric('PAY', 'max_days_overdue', '2026-07-05') || '/'
		  || pg_temp.metric('PAY', 'current_days_overdue', '2026-07-05'), '35/0',
		  'as of the day P3 was paid: settled 35 days late, nothing open overdue');
SELECT is(pg_temp.metric('PAY', 'avg_days_to_pay', '2026-07-05'), '31.94',
		  'as of that day its payment counts: (400x10 + 600x40 + 500x20 + 300x65) / 1800');

/* ---------------------------------------------------------------------
 * LATE: items settled late, in and out of the window
 * ------------------------------------------------------------------- */

SELECT pg_temp.inv('LATE', 'L1', 100, '2026-01-02', '2026-02-01');
SELECT pg_temp.inv('LATE', 'L2', 100, '2025-09-01', '2025-10-01');
SELECT pg_temp.paid('LATE', 'L1', 100, '2026-03-15');	/* 42 days late */
SELECT pg_temp.paid('LATE', 'L2', 100, '2025-12-30');	/* 90 days late, on the excluded day */

SELECT is(pg_temp.metric('LATE', 'max_days_overdue'), '42',
		  'max_days_overdue from an item settled late in the window; one settled on the excluded first day is out');
SELECT is(pg_temp.metric('LATE', 'max_days_overdue', '2026-06-29'), '90',
		  'one day earlier the item settled 90 days late is in the window');
SELECT is(pg_temp.metric('LATE', 'current_days_overdue'), '0',
		  'current_days_overdue: 0 with nothing open');
SELECT is(pg_temp.metric('LATE', 'overdue_count') || '/' || pg_temp.metric('LATE', 'overdue_amount'), '2/200',
		  'both were paid late and fell due within the overdue window');

/* ---------------------------------------------------------------------
 * OVD: open items and the overdue window
 * ------------------------------------------------------------------- */

SELECT pg_temp.inv('OVD', 'O1', 100, '2025-05-31', '2025-06-30');	/* due on o_start: outside */
SELECT pg_temp.inv('OVD', 'O2', 200, '2025-06-01', '2025-07-01');	/* a day later: inside */
SELECT pg_temp.inv('OVD', 'O3', 400, '2026-05-31', '2026-06-30');	/* due on as_of: not overdue */
SELECT pg_temp.inv('OVD', 'O4', 800, '2026-01-01', '2026-01-31');
SELECT pg_temp.inv('OVD', 'O5', 1600, '2026-02-01', '2026-03-03');
SELECT pg_temp.inv('OVD', 'O6', 1000, '2026-04-01', '2026-05-01');
SELECT pg_temp.paid('OVD', 'O2', 200, '2025-07-11');	/* 10 days late, before the window */
SELECT pg_temp.paid('OVD', 'O4', 800, '2026-01-31');	/* on its due date */
SELECT pg_temp.paid('OVD', 'O5', 1600, '2026-04-02');	/* 30 days late */
SELECT pg_temp.paid('OVD', 'O6', 999, '2026-04-15');	/* 1 stays open, 60 days overdue */

SELECT is(pg_temp.metric('OVD', 'max_days_overdue'), '365',
		  'max_days_overdue from the oldest open item (due 2025-06-30): 365');
SELECT is(pg_temp.metric('OVD', 'current_days_overdue'), '365',
		  'current_days_overdue: as_of - the oldest due date of the open overdue items');
SELECT is(pg_temp.metric('OVD', 'overdue_count'), '3',
		  'overdue_count: paid late (O2, O5) or partly open (O6); not due on the excluded first day, not due on as_of, not paid on time');
SELECT is(pg_temp.metric('OVD', 'overdue_amount'), '2800',
		  'overdue_amount: their full amounts, 200 + 1600 + 1000');
SELECT is(pg_temp.metric('OVD', 'overdue_count', '2026-06-30', 6, 11) || '/'
		  || pg_temp.metric('OVD', 'overdue_amount', '2026-06-30', 6, 11), '2/2600',
		  'an overdue window of 11 months leaves out O2, due 2025-07-01 (the window starts 2025-07-30)');
SELECT is(pg_temp.metric('OVD', 'current_days_overdue', '2026-07-01'), '366',
		  'a day later O3 is overdue too, and the oldest still counts');
SELECT is(pg_temp.metric('OVD', 'avg_days_to_pay'), '39.42',
		  'avg_days_to_pay: (800x30 + 1600x60 + 999x14) / 3399; the payment before the window is out');
SELECT is(pg_temp.metric('OVD', 'avg_monthly_sales'), '633.33',
		  'avg_monthly_sales: (400 + 800 + 1600 + 1000) / 6, rounded to 2 decimals');
SELECT is(pg_temp.metric('OVD', 'sales_variation'), '0.9009',
		  'sales_variation of 400, 0, 1000, 0, 1600, 800 (months back from as_of)');
SELECT is(pg_temp.metric('OVD', 'relationship_years'), '1.08',
		  'relationship_years: 395 days / 365.25');

/* ---------------------------------------------------------------------
 * SAL: months without sales count 0
 * ------------------------------------------------------------------- */

SELECT pg_temp.inv('SAL', 'S1', 300, '2026-06-15', '2026-07-15');
SELECT pg_temp.inv('SAL', 'S2', 100, '2026-06-20', '2026-07-20');
SELECT pg_temp.inv('SAL', 'S3', 200, '2026-05-15', '2026-06-15');
SELECT pg_temp.inv('SAL', 'S4', 600, '2026-03-15', '2026-04-15');
SELECT pg_temp.inv('SAL', 'S5', 900, '2025-12-15', '2026-01-15');	/* before the window */

SELECT is(pg_temp.metric('SAL', 'avg_monthly_sales'), '200.00',
		  'avg_monthly_sales divides by the 6 months of the window, not the 3 with sales');
SELECT is(pg_temp.metric('SAL', 'sales_variation'), '1.1547',
		  'sales_variation of monthly totals 400, 200, 0, 600, 0, 0: sqrt(53333.33) / 200');
SELECT is(pg_temp.metric('SAL', 'sales_variation', '2026-06-30', 3), '0.8165',
		  'with a 3-month window: 400, 200, 0 give sqrt(26666.67) / 200');
SELECT is(pg_temp.metric('SAL', 'avg_days_to_pay'), NULL,
		  'avg_days_to_pay is NULL without payments in the window');
SELECT is(pg_temp.metric('SAL', 'sales_variation', '2026-12-31'), NULL,
		  'sales_variation is NULL when nothing was invoiced in the window');
SELECT is(pg_temp.metric('SAL', 'avg_monthly_sales', '2026-12-31'), '0.00',
		  'avg_monthly_sales is 0 when a customer with receivables invoiced nothing in the window');

/* ---------------------------------------------------------------------
 * Relationship, utilization, registered capital
 * ------------------------------------------------------------------- */

INSERT INTO credit.profiles (customer_key, customer_since) VALUES ('RPROF', '2021-01-01');
INSERT INTO credit.profiles (customer_key, registered_capital) VALUES ('RINV', NULL);
INSERT INTO credit.profiles (customer_key, uscc, registered_capital)
VALUES ('UCAP', '91350100M000100Y43', 5000000);
SELECT pg_temp.inv('RPROF', 'R1', 100, '2023-03-01', '2023-03-31');
SELECT pg_temp.inv('RINV', 'R1', 100, '2024-01-01', '2024-01-31');
SELECT pg_temp.inv('NOTYET', 'N1', 100, '2026-07-01', '2026-07-31');
SELECT pg_temp.inv('UTMP', 'U1', 600, '2026-06-01', '2026-07-01');
SELECT pg_temp.inv('UEXP', 'U1', 600, '2026-06-01', '2026-07-01');
SELECT pg_temp.inv('UZERO', 'U1', 600, '2026-06-01', '2026-07-01');

SELECT is(pg_temp.metric('RPROF', 'relationship_years'), '5.49',
		  'relationship_years from the profile''s customer_since (2021-01-01), not the first invoice');
SELECT is(pg_temp.metric('RINV', 'relationship_years'), '2.49',
		  'a profile without customer_since: from the first invoice (2024-01-01)');
SELECT is(pg_temp.metric('NONE', 'relationship_years'), '0.50',
		  'no receivables: from the account''s creation (2025-12-31)');
SELECT is(pg_temp.metric('NOTYET', 'relationship_years'), '0.50',
		  'an invoice after as_of is not a first invoice: from the account''s creation');
SELECT is(pg_temp.metric('UTMP', 'utilization'), '0.4000',
		  'utilization with a temporary limit in force: 600 / (1000 + 500)');
SELECT is(pg_temp.metric('UEXP', 'utilization'), '0.6000',
		  'an expired temporary limit does not count: 600 / 1000');
SELECT is(pg_temp.metric('UTMP', 'utilization', '2026-01-01'), '0.4000',
		  'utilization is now, whatever the as_of date (exposure has no history)');
SELECT is(pg_temp.metric('UZERO', 'utilization'), NULL,
		  'utilization is NULL with a zero effective limit');
SELECT is(pg_temp.metric('UCAP', 'registered_capital'), '5000000',
		  'registered_capital from the profile');
SELECT is(pg_temp.metric('RINV', 'registered_capital'), NULL,
		  'registered_capital is NULL when the profile has none');
SELECT is(pg_temp.metric('WIN', 'registered_capital'), NULL,
		  'registered_capital is NULL without a profile');

/* ---------------------------------------------------------------------
 * No receivables: the documented NULLs and zeros
 * ------------------------------------------------------------------- */

SELECT is((SELECT m::text FROM credit.customer_metrics('2026-06-30', 6, 12) m
			WHERE m.customer_key = 'NONE'),
		  '(NONE,,,0,,,0.50,,,,)',
		  'no receivables: avg_days_to_pay, max_days_overdue, overdue_count/amount, sales and variation NULL; current_days_overdue 0');
SELECT is((SELECT m::text FROM credit.customer_metrics('2026-06-30', 6, 12) m
			WHERE m.customer_key = 'NOTYET'),
		  '(NOTYET,,,0,,,0.50,,,,)',
		  'receivables only after as_of count as none');

/* ---------------------------------------------------------------------
 * The customer filter
 * ------------------------------------------------------------------- */

SELECT is((SELECT count(*) FROM credit.customer_metrics('2026-06-30', 6, 12)),
		  (SELECT count(*) FROM credit.accounts), 'the full run has a row per account');
SELECT results_eq($$SELECT m.* FROM credit.accounts a,
						   credit.customer_metrics('2026-06-30', 6, 12, a.customer_key) m
					 ORDER BY 1$$,
				  $$SELECT * FROM credit.customer_metrics('2026-06-30', 6, 12) ORDER BY 1$$,
				  'every customer''s filtered row equals its row in the full run');
SELECT results_eq($$SELECT m.* FROM credit.accounts a,
						   credit.customer_metrics('2026-07-05', 3, 5, a.customer_key) m
					 ORDER BY 1$$,
				  $$SELECT * FROM credit.customer_metrics('2026-07-05', 3, 5) ORDER BY 1$$,
				  'the same with other windows and another date');
SELECT is((SELECT count(*) FROM credit.customer_metrics('2026-06-30', 6, 12, 'nobody')), 0::bigint,
		  'an unknown customer gives no row');

SELECT * FROM finish();
ROLLBACK;
