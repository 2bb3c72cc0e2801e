/*
 * bench/scorecard_data.sql: data and configuration for the scorecard part
 * of `make bench` (bench/scorecard.sh), loaded set-based through the
 * extension's own tables, so every row passes the ledger triggers as an
 * application's would.  Deterministic: "random" figures come from hashint8
 * of the customer (and invoice) number, so two runs load the same rows;
 * dates are relative to the as_of given to the loaders.
 *
 *   bench.load_accounts(customers)
 *       customers 1..n, limits 50,000 .. 2,040,000, term 30 days (60 for
 *       1 in 5), created 3 years before the run
 *   bench.load_profiles(customers, as_of)
 *       a profile for 9 in 10: registered capital 0.1 .. 50 million, and
 *       for 6 in 10 of those a customer_since 0.5 .. 14 years back
 *   bench.load_ledger(lo, hi, as_of)
 *       customers lo..hi: 1 in 50 has no receivables, the others 2 .. 10
 *       (about 6) invoiced over the last 12 months, due after the account's
 *       term; amounts scale with the customer's size.  Each customer has a
 *       payer type: prompt (55%: -15 .. +4 days around the due date), slow
 *       (25%: 5 .. 44 days late), late (13%: 20 .. 119 days late) or bad
 *       (7%: 60 .. 359 days late).  An invoice whose payment date is after
 *       as_of is still open (so open overdue items are the late payers'
 *       recent ones); 1 in 6 is paid in two parts, 40% up to 20 days
 *       earlier, so some are partly paid.  Each part is a payment received
 *       and allocated to the invoice on its own date (allocated_on).
 *   bench.plan(lo, hi, as_of)
 *       the invoices of customers lo..hi with their planned payment date
 *       (load_ledger's source, computed twice instead of stored)
 *   bench.load_bureau_scores(customers, as_of)
 *       user metric bureau_score (300 .. 899) for 17 in 20 customers: a value
 *       about 200 days old, and for 7 in 10 of them a newer one (0 .. 59
 *       days old) that scoring as of a recent date uses instead
 *   bench.create_scorecard()
 *       the 6-factor scorecard "bench", activated; returns its id
 */
CREATE SCHEMA bench;

/* a non-negative pseudo-random integer for (key, salt) */
CREATE FUNCTION bench.h(g bigint, salt integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashint8(g * 64 + salt)::bigint & 2147483647;

CREATE FUNCTION bench.load_accounts(customers integer)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, currency,
								 owner, payment_term_days, created_at)
	SELECT 'C' || lpad(g::text, 6, '0'), 'Customer ' || g || ' Ltd.',
		   10000 * (5 + bench.h(g, 1) % 200), 'CNY', 'sales' || (g % 40),
		   CASE WHEN bench.h(g, 2) % 5 = 0 THEN 60 ELSE 30 END,
		   now() - interval '3 years'
	  FROM generate_series(1, customers) g;
	SELECT count(*) FROM credit.accounts;
END;

CREATE FUNCTION bench.load_profiles(customers integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.profiles (customer_key, legal_name, registered_capital, industry,
								 customer_source, customer_since)
	SELECT 'C' || lpad(g::text, 6, '0'), 'Customer ' || g || ' Co., Ltd.',
		   100000 * (1 + bench.h(g, 3) % 500),
		   (ARRAY['manufacturing', 'wholesale', 'retail', 'construction',
				  'logistics', 'electronics'])[1 + bench.h(g, 4) % 6],
		   (ARRAY['referral', 'tender', 'exhibition', 'direct'])[1 + bench.h(g, 5) % 4],
		   CASE WHEN bench.h(g, 6) % 10 < 6 THEN as_of - (180 + bench.h(g, 7) % 4900)::integer END
	  FROM generate_series(1, customers) g
	 WHERE bench.h(g, 8) % 10 <> 0;
	SELECT count(*) FROM credit.profiles;
END;

/* the invoices of customers lo..hi, with their planned payment date */
CREATE FUNCTION bench.plan(lo integer, hi integer, as_of date)
RETURNS TABLE (customer_key text, invoice_key text, amount numeric, invoice_date date,
			   due_date date, pay_on date, split boolean)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT x.customer_key, x.invoice_key, x.amount, x.invoice_date,
		   x.invoice_date + x.term, x.invoice_date + x.term + x.delay, x.split
	  FROM (SELECT 'C' || lpad(c::text, 6, '0') AS customer_key,
				   'INV-' || c || '-' || k AS invoice_key,
				   round((1 + bench.h(c, 9) % 20) * (500 + bench.h(c * 16 + k, 10) % 9500)
						 + (bench.h(c * 16 + k, 11) % 100) / 100.0, 2) AS amount,
				   as_of - (bench.h(c * 16 + k, 12) % 365)::integer AS invoice_date,
				   CASE WHEN bench.h(c, 2) % 5 = 0 THEN 60 ELSE 30 END AS term,
				   (CASE WHEN bench.h(c, 13) % 100 < 55 THEN -15 + bench.h(c * 16 + k, 14) % 20
						 WHEN bench.h(c, 13) % 100 < 80 THEN 5 + bench.h(c * 16 + k, 14) % 40
						 WHEN bench.h(c, 13) % 100 < 93 THEN 20 + bench.h(c * 16 + k, 14) % 100
						 ELSE 60 + bench.h(c * 16 + k, 14) % 300 END)::integer AS delay,
				   bench.h(c * 16 + k, 15) % 6 = 0 AS split
			  FROM generate_series(lo, hi) c,
				   generate_series(1, CASE WHEN bench.h(c, 16) % 50 = 0 THEN 0
										   ELSE 2 + bench.h(c, 17) % 9 END) k) x;
END;

CREATE FUNCTION bench.load_ledger(lo integer, hi integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency,
									invoice_date, due_date, order_ref)
	SELECT p.customer_key, p.invoice_key, p.amount, 'CNY', p.invoice_date, p.due_date,
		   'SO-' || substr(p.invoice_key, 5)
	  FROM bench.plan(lo, hi, as_of) p;
	/* the payments: one per part, received on the day it is allocated */
	INSERT INTO credit.payments (customer_key, payment_key, amount, currency, received_on,
								 reference)
	SELECT p.customer_key, 'PAY-' || substr(p.invoice_key, 5) || '-' || x.part, x.amount, 'CNY',
		   x.paid_on, p.invoice_key
	  FROM bench.plan(lo, hi, as_of) p,
		   LATERAL (VALUES (1, CASE WHEN p.split THEN round(p.amount * 0.4, 2) ELSE p.amount END,
							CASE WHEN p.split THEN greatest(p.invoice_date, p.pay_on - 20)
								 ELSE p.pay_on END),
						   (2, p.amount - round(p.amount * 0.4, 2), p.pay_on)) x(part, amount, paid_on)
	 WHERE (x.part = 1 OR p.split)
	   AND x.paid_on <= as_of;
	INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
	SELECT y.payment_id, r.receivable_id, y.amount, y.received_on
	  FROM credit.payments y
	  JOIN credit.receivables r
		ON r.customer_key = y.customer_key AND r.invoice_key = y.reference
	 WHERE y.customer_key BETWEEN 'C' || lpad(lo::text, 6, '0') AND 'C' || lpad(hi::text, 6, '0')
	 ORDER BY y.payment_id;
	SELECT count(*) FROM credit.receivables;
END;

CREATE FUNCTION bench.load_bureau_scores(customers integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.metrics (metric, source, description, unit)
	VALUES ('bureau_score', 'user', 'Score of the external credit bureau report', 'points');
	INSERT INTO credit.metric_values (customer_key, metric, as_of, value, source_note)
	SELECT 'C' || lpad(g::text, 6, '0'), 'bureau_score', x.as_of, x.value, 'bench'
	  FROM generate_series(1, customers) g,
		   LATERAL (VALUES (as_of - (190 + bench.h(g, 18) % 20)::integer,
							(300 + bench.h(g, 19) % 600)::numeric),
						   (as_of - (bench.h(g, 20) % 60)::integer,
							(300 + bench.h(g, 21) % 600)::numeric)) x(as_of, value)
	 WHERE bench.h(g, 22) % 20 < 17
	   AND (x.as_of < as_of - 100 OR bench.h(g, 23) % 10 < 7);
	SELECT count(*) FROM credit.metric_values;
END;

/*
 * The scorecard: 6 factors worth 100 points, grades A-D whose recommended
 * limit is a multiple of avg_monthly_sales, and one rule: anything more
 * than 60 days overdue now costs one grade.  C and D lower limits at once
 * (auto_apply decrease), A and B raise requests for approval.
 */
CREATE FUNCTION bench.create_scorecard()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO credit.scorecards (name, description, window_months, overdue_months)
	VALUES ('bench', '6-factor benchmark scorecard', 6, 12)
	RETURNING scorecard_id INTO id;
	SET CONSTRAINTS credit.scorecard_bins_valid, credit.scorecard_factors_valid,
		credit.scorecard_grades_valid DEFERRED;
	INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight,
										  method, intercept, slope, missing_points,
										  reason_code, reason_text)
	VALUES (id, 'payment speed', 1, 'avg_days_to_pay', 25, 'bins', NULL, NULL, 50,
			'P01', 'Slow payment'),
		   (id, 'worst lateness', 2, 'max_days_overdue', 20, 'bins', NULL, NULL, 50,
			'P02', 'Items paid or open well past due'),
		   (id, 'overdue items', 3, 'overdue_count', 15, 'bins', NULL, NULL, 50,
			'P03', 'Many overdue items in the last 12 months'),
		   (id, 'relationship', 4, 'relationship_years', 15, 'linear', 20, 10, 0,
			'R01', 'Short relationship'),
		   (id, 'stability', 5, 'sales_variation', 10, 'bins', NULL, NULL, 0,
			'S01', 'Irregular purchases'),
		   (id, 'bureau', 6, 'bureau_score', 15, 'bins', NULL, NULL, 40,
			'B01', 'Weak or missing bureau score');
	INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
	VALUES (id, 'payment speed', NULL, 30, 100), (id, 'payment speed', 30, 40, 85),
		   (id, 'payment speed', 40, 55, 65), (id, 'payment speed', 55, 80, 40),
		   (id, 'payment speed', 80, 120, 15), (id, 'payment speed', 120, NULL, 0),
		   (id, 'worst lateness', NULL, 1, 100), (id, 'worst lateness', 1, 10, 90),
		   (id, 'worst lateness', 10, 30, 70), (id, 'worst lateness', 30, 60, 40),
		   (id, 'worst lateness', 60, 120, 15), (id, 'worst lateness', 120, NULL, 0),
		   (id, 'overdue items', NULL, 1, 100), (id, 'overdue items', 1, 3, 80),
		   (id, 'overdue items', 3, 5, 55), (id, 'overdue items', 5, 8, 25),
		   (id, 'overdue items', 8, NULL, 0),
		   (id, 'stability', NULL, 0.8, 100), (id, 'stability', 0.8, 1.2, 75),
		   (id, 'stability', 1.2, 1.6, 50), (id, 'stability', 1.6, 2.2, 25),
		   (id, 'stability', 2.2, NULL, 0),
		   (id, 'bureau', NULL, 500, 0), (id, 'bureau', 500, 600, 30),
		   (id, 'bureau', 600, 700, 60), (id, 'bureau', 700, 800, 85),
		   (id, 'bureau', 800, NULL, 100);
	INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_base,
										 limit_metric, limit_multiplier, limit_floor,
										 limit_cap, limit_round, term_days, auto_apply)
	VALUES (id, 'A', 75, 50000, 'avg_monthly_sales', 3, 100000, 5000000, 10000, 60, 'never'),
		   (id, 'B', 60, 20000, 'avg_monthly_sales', 2, 50000, 2000000, 10000, 45, 'never'),
		   (id, 'C', 40, 0, 'avg_monthly_sales', 1, 20000, 500000, 5000, 30, 'decrease'),
		   (id, 'D', 0, 0, NULL, 0, 0, 0, 1000, 0, 'decrease');
	INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold,
										downgrade_steps, description)
	VALUES (id, 1, 'current_days_overdue', '>', 60, 1,
			'One grade down while anything is more than 60 days overdue');
	SET CONSTRAINTS credit.scorecard_bins_valid, credit.scorecard_factors_valid,
		credit.scorecard_grades_valid IMMEDIATE;
	PERFORM credit.activate_scorecard(id);
	RETURN id;
END;
$$;
