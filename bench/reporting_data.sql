/*
 * bench/reporting_data.sql: data generators for the reporting part of
 * `make bench` (bench/reporting.sh), set-based INSERT ... SELECT through
 * the extension's own tables, so every ledger row passes the ledger
 * triggers as an application's would.  Deterministic: "random" figures come
 * from hashint8 of the row number, so two runs load the same rows.
 *
 *   bench.load_accounts(customers, as_of)
 *       customers C000001.., 40 salespeople (owner sales0..sales39), 6
 *       regions, limits 50,000 .. 2,040,000 (1 in 50 without a limit), a
 *       temporary limit in force for 1 in 25; a credit profile for 9 in 10
 *   bench.load_grades(customers, as_of)
 *       scorecard "bench" (one linear factor, grades A..E), activated;
 *       a current grade A..D for 19 in 20 customers (E has none), written
 *       into credit.customer_grades as credit.rescore would
 *   bench.load_ledger(lo, hi, as_of)
 *       customers lo..hi: 0 .. 20 invoices each (exactly 10 on average),
 *       invoiced 0..399 days before as_of, due 30 days later, amount
 *       100.00 .. 99999.99, disputed 1 in 50, dunning level 0..5 by age;
 *       45 in 100 paid in full around the due date, 8 in 100 half paid, by
 *       payments allocated on the day they are received (see there)
 *   bench.load_snapshots(as_of)
 *       29 days of exposure snapshots before as_of, a synthetic history:
 *       exposure moving by -1 % .. +2 % of today's per day towards today's
 *       (bench/reporting.sh then times credit.snapshot_exposure(as_of),
 *       which adds today's and fits the trends)
 *   bench.load_applications(n, as_of)
 *       n pending applications with their pending step, deadlines from 3
 *       days ago to 3 days ahead
 */
CREATE SCHEMA bench;

/* a non-negative pseudo-random integer for (row, salt) */
CREATE FUNCTION bench.h(g bigint, salt integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashint8(g * 16 + salt)::bigint & 2147483647;

CREATE FUNCTION bench.ckey(g bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'C' || lpad(g::text, 6, '0');

CREATE FUNCTION bench.load_accounts(customers integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, temp_limit,
								 temp_limit_from, temp_limit_until, currency, owner, region,
								 payment_term_days, created_at)
	SELECT bench.ckey(g), 'Customer ' || g || ' Ltd.',
		   CASE WHEN bench.h(g, 1) % 50 = 0 THEN 0 ELSE 10000 * (5 + bench.h(g, 2) % 200) END,
		   CASE WHEN bench.h(g, 3) % 25 = 0 THEN 100000 ELSE 0 END,
		   CASE WHEN bench.h(g, 3) % 25 = 0 THEN now() - interval '10 days' END,
		   CASE WHEN bench.h(g, 3) % 25 = 0 THEN now() + interval '20 days' END,
		   'CNY', 'sales' || (g % 40),
		   (ARRAY['north', 'south', 'east', 'west', 'central', 'export'])[1 + bench.h(g, 4) % 6],
		   30, now() - interval '3 years'
	  FROM generate_series(1, customers) g;
	INSERT INTO credit.profiles (customer_key, legal_name, registered_capital, industry,
								 customer_source, established_on, customer_since)
	SELECT bench.ckey(g), 'Customer ' || g || ' Co., Ltd.', 100000 * (1 + bench.h(g, 5) % 500),
		   (ARRAY['manufacturing', 'wholesale', 'retail', 'construction', 'logistics'])[1 + bench.h(g, 6) % 5],
		   (ARRAY['referral', 'tender', 'exhibition', 'direct'])[1 + bench.h(g, 7) % 4],
		   as_of - (1000 + bench.h(g, 8) % 9000)::integer,
		   as_of - (180 + bench.h(g, 9) % 3000)::integer
	  FROM generate_series(1, customers) g
	 WHERE bench.h(g, 10) % 10 <> 0;
	SELECT count(*) FROM credit.accounts;
END;

CREATE FUNCTION bench.load_grades(customers integer, as_of date)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO credit.scorecards (name, description) VALUES ('bench', 'reporting bench')
	RETURNING scorecard_id INTO id;
	INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
										  intercept, slope, reason_code)
	VALUES (id, 'overdue', 1, 'current_days_overdue', 100, 'linear', 100, -1, 'OVERDUE');
	INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_base, limit_cap,
										 term_days)
	VALUES (id, 'A', 80, 1000000, 1000000, 60), (id, 'B', 60, 500000, 500000, 45),
		   (id, 'C', 40, 200000, 200000, 30), (id, 'D', 20, 50000, 50000, 30),
		   (id, 'E', 0, 0, 0, 0);
	PERFORM credit.activate_scorecard(id);
	INSERT INTO credit.customer_grades (customer_key, scorecard_id, grade, score, computed_grade,
										grade_since, recommended_limit, recommended_term,
										reasons, scored_on)
	SELECT bench.ckey(g), id, x.grade, x.score, x.grade, as_of - 30,
		   CASE x.grade WHEN 'A' THEN 1000000 WHEN 'B' THEN 500000 WHEN 'C' THEN 200000 ELSE 50000 END,
		   30, CASE WHEN x.score < 60 THEN '{OVERDUE}'::text[] ELSE '{}'::text[] END, as_of
	  FROM generate_series(1, customers) g,
		   LATERAL (SELECT (20 + bench.h(g, 11) % 80)::numeric AS score) s,
		   LATERAL (SELECT s.score,
						   CASE WHEN s.score >= 80 THEN 'A' WHEN s.score >= 60 THEN 'B'
								WHEN s.score >= 40 THEN 'C' ELSE 'D' END AS grade) x
	 WHERE bench.h(g, 12) % 20 <> 0;
	RETURN (SELECT count(*) FROM credit.customer_grades);
END;
$$;

/*
 * the invoices of customers lo..hi: customers 2p-1 and 2p get 10 + d and
 * 10 - d invoices (d = 0..10), so 0 .. 20 each and exactly 10 on average
 */
CREATE FUNCTION bench.invoices(lo integer, hi integer, as_of date)
RETURNS TABLE (customer_key text, invoice_key text, amount numeric, invoice_date date,
			   due_date date, disputed boolean, dunning_level integer, g bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT bench.ckey(c), 'INV-' || c || '-' || k,
		   100 + (bench.h(c * 32 + k, 2) % 9990000) / 100.0,
		   as_of - (bench.h(c * 32 + k, 3) % 400)::integer,
		   as_of - (bench.h(c * 32 + k, 3) % 400)::integer + 30,
		   bench.h(c * 32 + k, 4) % 50 = 0,
		   CASE WHEN bench.h(c * 32 + k, 3) % 400 > 30
				THEN least(5, (bench.h(c * 32 + k, 3) % 400 - 30) / 10)::integer ELSE 0 END,
		   c * 32 + k
	  FROM generate_series(lo, hi) c,
		   LATERAL generate_series(1, 10 + CASE WHEN c % 2 = 1 THEN 1 ELSE -1 END
										 * (bench.h((c + 1) / 2, 20) % 11)::integer) k;
END;

/*
 * The ledger of customers lo..hi: their invoices; then, of the undisputed
 * ones, 45 in 100 paid in full on due_date - 15 .. due_date + 44 and 8 in
 * 100 half paid 10 days after invoicing, each only if that day is not
 * after as_of (otherwise still open); one payment per paid invoice,
 * received and allocated on that day; 1 in 40 of the full payments is a
 * credit note instead.  Customers of one call are disjoint from another's,
 * so parallel loaders never wait for each other's accounts.
 */
CREATE FUNCTION bench.load_ledger(lo integer, hi integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency,
									invoice_date, due_date, disputed, order_ref, dunning_level)
	SELECT i.customer_key, i.invoice_key, i.amount, 'CNY', i.invoice_date, i.due_date,
		   i.disputed, 'SO-' || i.g, i.dunning_level
	  FROM bench.invoices(lo, hi, as_of) i;
	INSERT INTO credit.payments (customer_key, payment_key, kind, amount, currency, received_on,
								 reference)
	SELECT r.customer_key, 'PAY-' || r.invoice_key,
		   CASE WHEN bench.h(r.receivable_id, 7) % 40 = 0 AND x.amount = r.amount
				THEN 'credit_note' ELSE 'payment' END,
		   x.amount, 'CNY', x.paid_on, r.receivable_id::text
	  FROM credit.receivables r,
		   LATERAL (SELECT CASE WHEN bench.h(r.receivable_id, 5) % 100 < 45 THEN r.amount
								WHEN bench.h(r.receivable_id, 5) % 100 < 53 THEN round(r.amount / 2, 2) END
							   AS amount,
						   CASE WHEN bench.h(r.receivable_id, 5) % 100 < 45
								THEN r.due_date + (bench.h(r.receivable_id, 6) % 60)::integer - 15
								ELSE r.invoice_date + 10 END AS paid_on) x
	 WHERE r.customer_key BETWEEN bench.ckey(lo) AND bench.ckey(hi)
	   AND NOT r.disputed
	   AND x.amount IS NOT NULL
	   AND x.paid_on <= as_of;
	INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
	SELECT y.payment_id, y.reference::bigint, y.amount, y.received_on
	  FROM credit.payments y
	 WHERE y.customer_key BETWEEN bench.ckey(lo) AND bench.ckey(hi)
	 ORDER BY y.payment_id;
	SELECT count(*) FROM credit.receivables r
	 WHERE r.customer_key BETWEEN bench.ckey(lo) AND bench.ckey(hi);
END;

CREATE FUNCTION bench.load_snapshots(as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.exposure_snapshots (snapshot_on, customer_key, currency, exposure,
										   effective_limit, status)
	SELECT as_of - d, a.customer_key, a.currency,
		   round(a.exposure * (1 - d * ((bench.h(substr(a.customer_key, 2)::bigint, 13) % 300) - 100) / 10000.0), 2),
		   credit.effective_limit(a), a.status
	  FROM credit.accounts a, generate_series(1, 29) d;
	SELECT count(*) FROM credit.exposure_snapshots;
END;

CREATE FUNCTION bench.load_applications(n integer, customers integer)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.positions (position, description)
	VALUES ('finance_review', 'bench'), ('credit_manager', 'bench');
	INSERT INTO credit.applications (kind, customer_key, requested_limit, reason, requester,
									 state, route_amount, submitted_at)
	SELECT 'limit_change', bench.ckey(1 + bench.h(g, 14) % customers), 100000 * (1 + g % 20),
		   'bench', 'postgres', 'pending', 100000 * (1 + g % 20), now() - interval '4 days'
	  FROM generate_series(1, n) g;
	INSERT INTO credit.application_steps (application_id, step_no, position, first_position,
										  escalate_to, deadline_interval, state, deadline)
	SELECT a.application_id, 1,
		   CASE WHEN a.application_id % 2 = 0 THEN 'finance_review' ELSE 'credit_manager' END,
		   'finance_review', 'credit_manager', interval '2 days', 'pending',
		   now() + (bench.h(a.application_id, 15) % 144 - 72) * interval '1 hour'
	  FROM credit.applications a;
	SELECT count(*) FROM credit.application_steps;
END;
