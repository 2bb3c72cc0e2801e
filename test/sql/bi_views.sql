--
-- bi_views: the credit.report_* views on a small ledger whose every figure
-- is computed by hand below, and credit.snapshot_exposure.
--
-- The views read CURRENT_DATE, so every date here is relative to it: t(n)
-- is today + n days, m(k, n) the first day of the month k months from this
-- one, + n days.  Data that depends on the day of the month (collections
-- "this month", the monthly overdue trend) uses month-relative dates, and
-- is kept apart from the data aged by days (aging buckets, days overdue),
-- so every printed figure is the same on any day of the year: the CNY
-- customers carry the day-relative ledger, the USD customer the
-- month-relative one.  Allocations are dated today (always this month) or
-- on the last day of last month (m(0, -1), always before today and after
-- every CNY due date it pays); no absolute date is printed.
--
CREATE EXTENSION credit;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION t(n integer) RETURNS date
LANGUAGE sql STABLE RETURN current_date + n;
CREATE FUNCTION m(k integer, n integer) RETURNS date
LANGUAGE sql STABLE RETURN (date_trunc('month', current_date::timestamp) + k * interval '1 month')::date + n;

-- runs a statement; prints ok or its SQLSTATE and message
CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN 'SQLSTATE ' || SQLSTATE || ': ' || SQLERRM;
END $$;

--------------------------------------------------------------------------
-- The interface: every report view is security_invoker, every column has
-- a comment, and the names and types are pinned here.
--------------------------------------------------------------------------
SELECT c.relname, c.reloptions
  FROM pg_class c
 WHERE c.relnamespace = 'credit'::regnamespace AND c.relname LIKE 'report\_%'
 ORDER BY 1;
SELECT c.relname, a.attname AS column_without_comment
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'credit'::regnamespace
   AND (c.relname LIKE 'report\_%' OR c.relname = 'exposure_snapshots')
   AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL);
SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
							 ORDER BY a.attnum) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'credit'::regnamespace AND c.relname LIKE 'report\_%'
 GROUP BY 1 ORDER BY 1;

-- an empty ledger: one row per account currency (none yet), no errors
SELECT count(*) FROM credit.report_receivables_health;
SELECT count(*) FROM credit.report_customer_360;

--------------------------------------------------------------------------
-- The customers.
-- (owners are regress_alice, regress_bob, regress_carol: role names)
--   A  Alpha   alice / north   CNY  limit 10,000, watch ratio 0.5   grade A (80)
--   B  Beta    alice / south   CNY  limit 20,000 + temporary 5,000 in force
--                                   (effective 25,000), watch ratio 0.3  grade B (50)
--   C  Gamma   bob / north     CNY  no limit (0)                      ungraded
--   E  Empty   bob / north     CNY  limit 5,000, no documents at all  grade A (90)
--   U  US Corp carol / export  USD  limit 1,000                       grade B (45)
-- The active scorecard has grades A (from 70), B (from 40) and C (from 0):
-- nobody holds C.
--------------------------------------------------------------------------
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, temp_limit,
							 temp_limit_from, temp_limit_until, currency, owner, region, watch_ratio)
VALUES ('A', 'Alpha', 10000, 0, NULL, NULL, 'CNY', 'regress_alice', 'north', 0.5),
	   ('B', 'Beta', 20000, 5000, now() - interval '1 day', now() + interval '1 day', 'CNY', 'regress_alice', 'south', 0.3),
	   ('C', 'Gamma', 0, 0, NULL, NULL, 'CNY', 'regress_bob', 'north', 0.9),
	   ('E', 'Empty', 5000, 0, NULL, NULL, 'CNY', 'regress_bob', 'north', 0.9),
	   ('U', 'US Corp', 1000, 0, NULL, NULL, 'USD', 'regress_carol', 'export', 0.9);
INSERT INTO credit.profiles (customer_key, legal_name, industry, registered_capital)
VALUES ('A', 'Alpha Trading Co., Ltd.', 'wholesale', 5000000);

INSERT INTO credit.scorecards (name) VALUES ('bi');
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, reason_code)
SELECT scorecard_id, 'overdue', 1, 'current_days_overdue', 100, 'linear', 100, -1, 'OVERDUE'
  FROM credit.scorecards;
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
SELECT scorecard_id, g, s, 100000, 30
  FROM credit.scorecards, (VALUES ('A', 70), ('B', 40), ('C', 0)) x(g, s);
SELECT count(credit.activate_scorecard(scorecard_id)) FROM credit.scorecards;
SELECT name, state FROM credit.scorecards;
INSERT INTO credit.customer_grades (customer_key, scorecard_id, grade, score, computed_grade,
									grade_since, recommended_limit, recommended_term, reasons,
									scored_on)
SELECT k, scorecard_id, g, s, g, t(-10), 10000, 30, r, t(0)
  FROM credit.scorecards,
	   (VALUES ('A', 'A', 80, '{}'::text[]), ('E', 'A', 90, '{}'), ('B', 'B', 50, '{OVERDUE}'),
			   ('U', 'B', 45, '{OVERDUE}')) x(k, g, s, r);

--------------------------------------------------------------------------
-- The CNY ledger, by days from today (invoice date 30 days before the due
-- date unless said otherwise):
--   A1  A  1,000  due today (age 0: not due)                    open 1,000
--   A2  A  2,000  due t-10 (age 10)                              open 2,000
--   A3  A  3,000  invoiced t-20, due t+5; 1,200 paid today       open 1,800
--   B1  B  5,000  due t-45 (age 45), disputed                    open 5,000
--   B2  B  4,000  due t-100 (age 100), dunning level 3;
--                 1,000 paid on the last day of last month       open 3,000
--   B3  B    600  invoiced t-20, due t+10; settled today by a credit note
--   C1  C    700  due t-10                                       open   700
--   C2  C    300  invoiced t+3 (after today: not aged), due t+33 open   300
-- Payments: PA1 (A, 1,200, today) -> A3; PA2 (A, 250, today) unallocated;
-- PB1 (B, 1,000, last day of last month) -> B2; CN-B (B, credit note 600,
-- today) -> B3.
--
-- The USD ledger of U, by months (k = months from this one), all paid:
--   U-a  800  due m(-2)+9: 300 paid m(-2)+5 (by the due date), 500 m(-1)+2
--   U-b  400  due m(0)-1 (the last day of last month): 400 paid today
--   U-c  250  due m(-1): paid on its due date
--   U-d  999  due m(-12)+20 (falls overdue 12 months ago, outside the
--             report's 12 months): paid m(-12)+25
--------------------------------------------------------------------------
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date, disputed)
VALUES ('A', 'A1', 1000, t(-30), t(0), false),
	   ('A', 'A2', 2000, t(-40), t(-10), false),
	   ('A', 'A3', 3000, t(-20), t(5), false),
	   ('B', 'B1', 5000, t(-75), t(-45), true),
	   ('B', 'B2', 4000, t(-130), t(-100), false),
	   ('B', 'B3', 600, t(-20), t(10), false),
	   ('C', 'C1', 700, t(-40), t(-10), false),
	   ('C', 'C2', 300, t(3), t(33), false),
	   ('U', 'U-a', 800, m(-2, 9) - 30, m(-2, 9), false),
	   ('U', 'U-b', 400, m(0, -1) - 30, m(0, -1), false),
	   ('U', 'U-c', 250, m(-1, 0) - 30, m(-1, 0), false),
	   ('U', 'U-d', 999, m(-12, 20) - 30, m(-12, 20), false);
UPDATE credit.receivables SET dunning_level = 3 WHERE invoice_key = 'B2';
INSERT INTO credit.payments (customer_key, payment_key, kind, amount, received_on)
VALUES ('A', 'PA1', 'payment', 1200, t(0)),
	   ('A', 'PA2', 'payment', 250, t(0)),
	   ('B', 'PB1', 'payment', 1000, m(0, -1)),
	   ('B', 'CN-B', 'credit_note', 600, t(0)),
	   ('U', 'UP1', 'payment', 300, m(-2, 5)),
	   ('U', 'UP2', 'payment', 500, m(-1, 2)),
	   ('U', 'UP3', 'payment', 400, t(0)),
	   ('U', 'UP4', 'payment', 250, m(-1, 0)),
	   ('U', 'UP5', 'payment', 999, m(-12, 25));
INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
SELECT p.payment_id, r.receivable_id, x.amount, p.received_on
  FROM (VALUES ('PA1', 'A3', 1200), ('PB1', 'B2', 1000), ('CN-B', 'B3', 600),
			   ('UP1', 'U-a', 300), ('UP2', 'U-a', 500), ('UP3', 'U-b', 400),
			   ('UP4', 'U-c', 250), ('UP5', 'U-d', 999)) x(pay, inv, amount)
  JOIN credit.payments p ON p.payment_key = x.pay
  JOIN credit.receivables r ON r.invoice_key = x.inv
 ORDER BY p.payment_id;

-- exposure = open receivables - unallocated payments:
--   A 1,000 + 2,000 + 1,800 - 250 = 4,550   (< 0.5 x 10,000: ok)
--   B 5,000 + 3,000 = 8,000                 (>= 0.3 x 25,000 = 7,500: watch)
--   C 700 + 300 = 1,000                     (> its limit 0: hold)
--   E 0, U 0 (everything paid)
SELECT customer_key, exposure, status FROM credit.account_balances ORDER BY 1;

--------------------------------------------------------------------------
-- 1. Receivables health.
-- CNY: open A1 1,000 + A2 2,000 + A3 1,800 + B1 5,000 + B2 3,000 + C1 700
--   + C2 300 = 13,800 in 7 items of 3 customers; overdue (due < today)
--   A2 + B1 + B2 + C1 = 10,700 in 4 items of 3 customers; share
--   10,700 / 13,800 = 0.77536 -> 0.7754; disputed B1 5,000; collected this
--   month PA1 1,200 (PB1 was last month; CN-B is a credit note: credited
--   600); received this month PA1 + PA2 = 1,450; unallocated PA2 250;
--   collection rate 1,200 / (1,200 + 13,800) = 0.0800.
-- USD: nothing open (share NULL); collected this month UP3 400 (today),
--   received 400; rate 400 / (400 + 0) = 1.0000.
--------------------------------------------------------------------------
SELECT currency, as_of = current_date AS today, month_start = m(0, 0) AS this_month,
	   customers_open, open_items, open_amount, customers_overdue, overdue_items, overdue_amount,
	   overdue_share, disputed_amount, collected_this_month, credited_this_month,
	   received_this_month, unallocated_payments, collection_rate
  FROM credit.report_receivables_health ORDER BY currency;

--------------------------------------------------------------------------
-- 2. Aging (by due date): ages A1 0, A3 -5 -> not due 2,800 (2 items,
-- customer A); A2 10, C1 10 -> 1-30 2,700 (2 items, A and C); B1 45 ->
-- 31-60 5,000 (disputed); 61-90 empty; B2 100 -> >90 3,000.  C2 is
-- invoiced after today: not aged.  Total 13,500: shares 2,800 / 13,500 =
-- 0.2074, 0.2000, 0.3704, 0, 0.2222.  USD: every bucket 0, share NULL.
--------------------------------------------------------------------------
SELECT currency, aging_basis, bucket_no, bucket, band, min_days, max_days, amount, items,
	   customers, disputed_amount, share
  FROM credit.report_aging ORDER BY currency, bucket_no;
-- the same as credit.aging summed over customers
SELECT bucket_no, sum(amount) AS amount, sum(items) AS items, count(*) AS customers
  FROM credit.aging() GROUP BY 1 ORDER BY 1;

-- by invoice date: ages A1 30, A3 20 -> 1-30 2,800; A2 40, C1 40 -> 31-60
-- 2,700; B1 75 -> 61-90 5,000; B2 130 -> >90 3,000; nothing not due
UPDATE credit.settings SET aging_basis = 'invoice_date';
SELECT aging_basis, bucket, amount, items, customers, share
  FROM credit.report_aging WHERE currency = 'CNY' ORDER BY bucket_no;
UPDATE credit.settings SET aging_basis = 'due_date';

-- invalid buckets (a gap, inside a deferred edit) are refused, not misreported
BEGIN;
SET CONSTRAINTS credit.aging_buckets_valid DEFERRED;
DELETE FROM credit.aging_buckets WHERE bucket_no = 2;
SELECT try('SELECT * FROM credit.report_aging') AS aging_with_a_gap;
ROLLBACK;

--------------------------------------------------------------------------
-- 3. Top overdue: B 5,000 + 3,000 = 8,000 (2 items, open 8,000, oldest
-- due t-100: 100 days, disputed 5,000, dunning level 3) rank 1; A 2,000
-- (open 1,000 + 2,000 + 1,800 = 4,800, 10 days) rank 2; C 700 (open 1,000,
-- 10 days) rank 3.  E and U owe nothing overdue: not listed.
--------------------------------------------------------------------------
SELECT overdue_rank, customer_key, customer_name, owner, region, currency, overdue_amount,
	   overdue_items, open_amount, days_overdue, oldest_due_date = t(-days_overdue) AS oldest_ok,
	   disputed_amount, max_dunning_level, status, exposure, grade
  FROM credit.report_top_overdue ORDER BY currency, overdue_rank;
-- the top 2 as a BI tool asks for them
SELECT customer_key FROM credit.report_top_overdue WHERE overdue_rank <= 2 ORDER BY overdue_rank;

--------------------------------------------------------------------------
-- 4. Grade distribution.  CNY accounts A, B, C, E (4): grade A = A, E (2,
-- share 0.5, exposure 4,550 + 0, average score 85); B = B (1, 0.25, 8,000,
-- 50); C nobody (0); ungraded C (1, 0.25, 1,000).  Open receivables by
-- grade: A 4,800 (share 4,800 / 13,800 = 0.3478, overdue 2,000: 0.4167);
-- B 8,000 (0.5797, all overdue); ungraded 1,000 (0.0725, overdue 700: 0.7).
-- USD: U in grade B (1, share 1), nothing open (shares NULL).
--------------------------------------------------------------------------
SELECT currency, grade, graded, in_active_scorecard, min_score, customers, customer_share,
	   exposure, avg_score, open_amount, receivable_share, overdue_amount, overdue_share
  FROM credit.report_grade_distribution ORDER BY currency, grade NULLS LAST;

--------------------------------------------------------------------------
-- 5. Collection by salesperson and region.
--   alice/north CNY: A; open 4,800, overdue 2,000 (0.4167), collected 1,200,
--     rate 1,200 / (1,200 + 4,800) = 0.2000
--   alice/south CNY: B; open 8,000, all overdue, collected 0 (PB1 was last
--     month), credited 600, rate 0
--   bob/north CNY: C and E; 1 overdue; open 1,000, overdue 700 (0.7), rate 0
--   carol/export USD: U; nothing open; collected 400, rate 1
--------------------------------------------------------------------------
SELECT owner, region, currency, customers, customers_overdue, exposure, open_amount,
	   overdue_amount, overdue_share, collected_this_month, credited_this_month, collection_rate
  FROM credit.report_collection_by_salesperson ORDER BY owner, region, currency;

--------------------------------------------------------------------------
-- 6. New overdue per month (12 rows per currency, this month and 11 before).
-- USD: U-a falls overdue in month -2 with 800 - 300 (paid by its due
-- date) = 500, 1 item; U-c in month -1 paid on its due date: 0, no item;
-- U-b in month 0 with 400, 1 item (paid today, after its due date); U-d
-- 12 months ago: outside.  Nothing is still open.
--------------------------------------------------------------------------
SELECT (extract(year FROM age(m(0, 0), month_start)) * 12
		+ extract(month FROM age(m(0, 0), month_start)))::integer AS months_ago,
	   month_end = CASE WHEN month_start = m(0, 0) THEN current_date
						ELSE (month_start + interval '1 month')::date - 1 END AS month_end_ok,
	   new_overdue_amount, new_overdue_items, still_open_amount
  FROM credit.report_overdue_trend WHERE currency = 'USD' ORDER BY month_start DESC;
-- CNY falls overdue on days that depend on today, so only its 12-month
-- total is fixed: A2 2,000 + B1 5,000 + B2 4,000 (the 1,000 was paid after
-- its due date) + C1 700 = 11,700 in 4 items, of which 2,000 + 5,000 +
-- 3,000 + 700 = 10,700 still open
SELECT count(*) AS months, sum(new_overdue_amount) AS new_overdue, sum(new_overdue_items) AS items,
	   sum(still_open_amount) AS still_open
  FROM credit.report_overdue_trend WHERE currency = 'CNY';

--------------------------------------------------------------------------
-- 7. Exposure snapshots and utilization.
--------------------------------------------------------------------------
-- history: A rose by 100 a day over the 29 days before today (4,550 - 100
-- x d days ago); a wild value 30 days ago is outside the window.  B was
-- flat at 8,000.  C, E, U have none.
INSERT INTO credit.exposure_snapshots (snapshot_on, customer_key, currency, exposure, effective_limit, status)
SELECT t(-d), 'A', 'CNY', 4550 - 100 * d, 10000, 'ok' FROM generate_series(1, 29) d
UNION ALL SELECT t(-30), 'A', 'CNY', 999999, 10000, 'ok'
UNION ALL SELECT t(-d), 'B', 'CNY', 8000, 25000, 'watch' FROM generate_series(1, 29) d;
-- today's snapshot: every account, and the trend through the 30 days ending
-- today: A +100 a day through 30 points (today's 4,550 on the line), B 0
-- through 30, the others have one point (no trend)
SELECT credit.snapshot_exposure() AS written;
-- idempotent per day: a second run replaces today's rows
SELECT credit.snapshot_exposure() AS written;
SELECT snapshot_on = current_date AS today, customer_key, currency, exposure, effective_limit,
	   status, trend_days, trend_per_day
  FROM credit.exposure_snapshots WHERE snapshot_on = current_date ORDER BY customer_key;
SELECT count(*) FROM credit.exposure_snapshots;
SELECT try('SELECT credit.snapshot_exposure(NULL)') AS null_date;
SELECT try($$SELECT credit.snapshot_exposure('infinity')$$) AS infinite_date;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try('SELECT credit.snapshot_exposure()') AS repeatable_read;
ROLLBACK;
SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c
 WHERE e.extname = 'credit' AND c = 'credit.exposure_snapshots'::regclass;

--   A  4,550 / 10,000 = 0.4550; watch line 0.5 x 10,000 = 5,000 not reached
--      (ok, not on the watch list); trend +100.00 a day over 30 snapshots;
--      forecast 4,550 + 700 = 5,250 >= 5,000: crosses within 7 days, in
--      ceil(450 / 100) = 5 days
--   B  8,000 / 25,000 (temporary limit counted) = 0.3200 >= 0.3: on the
--      watch list (status watch too); flat trend: forecast 8,000
--   C  no limit: utilization NULL, on the list because of its hold
--   E  0 / 5,000 = 0; U 0 / 1,000 = 0; one snapshot: no trend
-- Grade averages: A (A 0.455, E 0) 0.2275; B (B 0.32, U 0) 0.1600;
-- ungraded (C, no utilization) NULL.
SELECT customer_key, grade, status, exposure, effective_limit, available, utilization,
	   watch_ratio, watch_line, on_watch_list, trend_as_of = current_date AS trend_today,
	   trend_days, trend_per_day,
	   forecast_exposure_7d, days_to_watch_line, crosses_watch_line_7d, grade_avg_utilization,
	   utilization_vs_grade
  FROM credit.report_utilization ORDER BY customer_key;
SELECT customer_key FROM credit.report_utilization WHERE on_watch_list ORDER BY 1;
SELECT customer_key FROM credit.report_utilization WHERE crosses_watch_line_7d ORDER BY 1;

--------------------------------------------------------------------------
-- 8. Approval deadlines.  Four applications: A's limit change (pending:
-- step 1 approved, step 2 pending, escalated once, deadline 3 hours ago),
-- B's temporary limit (pending, step 1 due in 5 hours), C's new limit (a
-- draft: no step yet), A's older term change (approved).  Inside one
-- transaction now() is fixed, so the figures are exact.
--------------------------------------------------------------------------
BEGIN;
INSERT INTO credit.applications (kind, customer_key, requested_limit, requested_temp_limit,
								 temp_until, requested_term_days, requester, state,
								 route_amount, submitted_at)
VALUES ('limit_change', 'A', 20000, NULL, NULL, NULL, 'alice', 'pending', 20000, now() - interval '2 days'),
	   ('temp_limit', 'B', NULL, 8000, now() + interval '30 days', NULL, 'alice', 'pending', 8000, now() - interval '1 hour'),
	   ('new_limit', 'C', 3000, NULL, NULL, NULL, 'bob', 'draft', NULL, NULL),
	   ('term_change', 'A', NULL, NULL, NULL, 45, 'alice', 'approved', 10000, now() - interval '9 days');
INSERT INTO credit.application_steps (application_id, step_no, position, first_position,
									  escalate_to, deadline_interval, state, deadline, escalations)
SELECT a.application_id, s.step_no, s.pos, s.first_pos, NULL, interval '1 day', s.state,
	   now() + s.due, s.esc
  FROM credit.applications a
  JOIN (VALUES ('A', 'limit_change', 1, 'sales_manager', 'sales_manager', 'approved', interval '-1 day', 0),
			   ('A', 'limit_change', 2, 'cfo', 'finance_review', 'pending', interval '-3 hours', 1),
			   ('B', 'temp_limit', 1, 'finance_review', 'finance_review', 'pending', interval '5 hours', 0),
			   ('A', 'term_change', 1, 'finance_review', 'finance_review', 'approved', interval '-8 days', 0))
	   s(cust, kind, step_no, pos, first_pos, state, due, esc)
	ON s.cust = a.customer_key AND s.kind = a.kind;
SELECT kind, customer_key, customer_name, owner, requester, route_amount, step_no,
	   approver_position, first_position, escalations, deadline = now() + CASE WHEN breached
	   THEN -overdue_by ELSE time_left END AS deadline_ok, breached, overdue_by, hours_overdue,
	   time_left
  FROM credit.report_approval_deadlines ORDER BY application_id;
COMMIT;

--------------------------------------------------------------------------
-- 9. Customer 360.
--   A  3 open (A1, A2, A3) 4,800: not due 2,800, overdue 2,000 (10 days);
--      aging not due 2,800, 1-30 2,000; available 10,000 - 4,550 = 5,450;
--      last payments today PA1 + PA2 = 1,450; 1 open application (the
--      approved one does not count); profile from credit.profiles
--   B  2 open 8,000 all overdue (100 days), disputed 5,000, 31-60 5,000,
--      >90 3,000, dunning level 3; effective 25,000 (temporary 5,000),
--      available 17,000; last payment PB1 1,000 on the last day of last
--      month (the credit note does not count); 1 open application
--   C  2 open 1,000: 300 not due, 700 overdue (10 days); only C1 aged
--      (1-30 700); no limit: utilization NULL, available -1,000; a draft
--      application; no payment
--   E, U  nothing open, every bucket 0; U's last payment UP3 400 today
--------------------------------------------------------------------------
SELECT customer_key, customer_name, owner, region, currency, status, legal_name,
	   registered_capital, credit_limit, temp_limit_in_force, effective_limit, exposure,
	   available, utilization
  FROM credit.report_customer_360 ORDER BY customer_key;
SELECT customer_key, open_items, open_amount, not_due_amount, overdue_amount, disputed_amount,
	   days_overdue, oldest_due_date = t(-days_overdue) AS oldest_ok, aging, max_dunning_level
  FROM credit.report_customer_360 ORDER BY customer_key;
SELECT customer_key, grade, score, computed_grade, reasons, recommended_limit,
	   scored_on = current_date AS scored_today,
	   CASE WHEN last_payment_on = current_date THEN 'today'
			WHEN last_payment_on = m(0, -1) THEN 'last day of last month'
			ELSE last_payment_on::text END AS last_payment, last_payment_amount, open_applications
  FROM credit.report_customer_360 ORDER BY customer_key;
-- one customer, as an application asks for it: the same row
SELECT (SELECT r FROM credit.report_customer_360 r WHERE customer_key = 'B')
	   = (SELECT r FROM credit.report_customer_360 r ORDER BY customer_key OFFSET 1 LIMIT 1) AS same_row;

--------------------------------------------------------------------------
-- Row-level security holds through the views (security_invoker): a member
-- of credit_sales sees only the customers it owns (sql/roles.sql), so
-- regress_alice sees A and B: ranks, totals and grade averages are theirs.
--   top overdue: B 8,000 rank 1, A 2,000 rank 2 (C is regress_bob's)
--   CNY health: 2 customers, open 4,800 + 8,000 = 12,800, overdue 10,000
--   utilization: grade A average = A's own 0.4550, grade B = B's 0.3200
--------------------------------------------------------------------------
CREATE ROLE regress_alice IN ROLE credit_sales;
-- reading the views is the group role's grant (given here in case the
-- extension's own grants come later in the script than the views)
GRANT SELECT ON credit.report_top_overdue, credit.report_receivables_health,
	credit.report_customer_360, credit.report_utilization, credit.exposure_snapshots
	TO credit_sales;
SET ROLE regress_alice;
SELECT overdue_rank, customer_key, overdue_amount FROM credit.report_top_overdue ORDER BY 1;
SELECT currency, customers_open, open_amount, overdue_amount FROM credit.report_receivables_health
 ORDER BY 1;
SELECT customer_key, open_amount, aging FROM credit.report_customer_360 ORDER BY 1;
SELECT customer_key, utilization, grade_avg_utilization FROM credit.report_utilization ORDER BY 1;
RESET ROLE;
DROP ROLE regress_alice;

-- the two aggregates the 360 view reads with, at their edges
-- aging_json: x = 1.5 + 3 = 4.5, y = 2; NULL bucket or amount skipped
SELECT credit.aging_json(b, a, '{x,y}')
  FROM (VALUES (0, 1.5), (1, 2), (0, 3), (NULL, 9), (1, NULL)) v(b, a);
-- only skipped rows: every label at 0
SELECT credit.aging_json(NULL, NULL, '{x,y}');
-- a bucket outside the labels, and no labels
SELECT try($$SELECT credit.aging_json(b, 1, '{x}') FROM (VALUES (1)) v(b)$$) AS bucket_outside;
SELECT try($$SELECT credit.aging_json(-1, 1, '{x}')$$) AS negative_bucket;
SELECT try($$SELECT credit.aging_json(0, 1, NULL)$$) AS no_labels;
-- sum_on_last: the latest day with an amount is 2026-01-02: 5 + 1.25 = 6.25
SELECT credit.sum_on_last(d, a)
  FROM (VALUES (DATE '2026-01-02', 5), ('2026-01-01', 7), ('2026-01-02', 1.25), (NULL, 100),
			   ('2026-01-03', NULL)) v(d, a);
-- a later day restarts the sum; nothing but skipped rows gives NULL
SELECT credit.sum_on_last(d, a)
  FROM (VALUES (DATE '2026-01-01', 5), ('2026-01-02', 2), ('2026-01-01', 40)) v(d, a);
SELECT credit.sum_on_last(d, a) IS NULL AS empty
  FROM (VALUES (NULL::date, 1::numeric)) v(d, a);

DROP EXTENSION credit CASCADE;
DROP FUNCTION try(text);
DROP FUNCTION t(integer);
DROP FUNCTION m(integer, integer);
