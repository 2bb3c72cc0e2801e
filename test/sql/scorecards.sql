--
-- scorecards: hand-computed scores, grades, recommendations and reason codes
-- under a four-factor scorecard; bins at their edges; missing metrics; user
-- metrics by as-of date (INSERT and COPY); unified social credit codes;
-- version immutability; credit.rescore with adjustment rules, hysteresis,
-- confirmation days and limit actions; the what-if comparison.
--
-- Every date is explicit: each score is taken as of a given date, every
-- allocation is inserted with its allocated_on, every account with its
-- created_at.  Errors are caught by show_error() (as in messages.sql), so
-- no C line numbers reach the output.  Dates print as ISO (the why texts
-- carry dates, formatted by the session's DateStyle).
--
CREATE EXTENSION credit;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';

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

--------------------------------------------------------------------------
-- The customers and their ledger.
--
-- All accounts were created on 2024-07-01 (UTC), so relationship_years
-- never depends on today.  Scores below are as of 2031-07-01 unless said
-- otherwise: the scorecard's 6-month window is (2031-01-01, 2031-07-01],
-- its 12-month overdue window (2030-07-01, 2031-07-01).  Each payment
-- (key <invoice>-P) pays exactly one invoice.  The limits and terms of the
-- accounts only matter in section 8.
--------------------------------------------------------------------------
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, payment_term_days, created_at)
VALUES ('A1', 'Alpha', 50000, 30, '2024-07-01 12:00+00'),
	   ('B2', 'Beta', 20000, 60, '2024-07-01 12:00+00'),
	   ('C3', 'Gamma', 30000, 30, '2024-07-01 12:00+00'),
	   ('D10', 'Delta', 50000, 30, '2024-07-01 12:00+00'),
	   ('E5', 'Empty', 5400, 30, '2024-07-01 12:00+00'),
	   ('E7', 'Edge', 10000, 30, '2024-07-01 12:00+00'),
	   ('G8', 'Grade edge', 25000, 60, '2024-07-01 12:00+00'),
	   ('G9', 'Grade below', 10000, 30, '2024-07-01 12:00+00'),
	   ('R11', 'Rule edge', 70000, 60, '2024-07-01 12:00+00'),
	   ('T6', 'Ties', 10000, 45, '2024-07-01 12:00+00');

-- credit profiles: customer_since drives relationship_years where present
-- (D10 and T6 have none: their first invoice counts; E5 has neither: its
-- account's creation counts)
INSERT INTO credit.profiles (customer_key, uscc, legal_name, registered_capital, industry, customer_since)
VALUES ('A1', '91350100M000100Y43', 'Alpha Trading Co., Ltd.', 5000000, 'wholesale', '2020-01-01'),
	   ('B2', '91110000600037341L', 'Beta Ltd.', 1000000, 'retail', '2028-07-01'),
	   ('C3', '914403007152672630', 'Gamma Manufacturing', 20000000, 'manufacturing', '2026-01-01'),
	   ('E7', '9144030071526726DY', 'Edge Partners', NULL, 'services', '2026-07-01'),
	   ('G8', NULL, 'Grade Edge Co.', NULL, NULL, '2020-01-01'),
	   ('G9', NULL, 'Grade Below Co.', NULL, NULL, '2020-01-01'),
	   ('R11', '12100000400000770U', 'Rule Edge Institute', NULL, NULL, '2020-01-01');

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('A1', 'A1-1', 61000, '2031-02-01', '2031-03-03'),
	   ('A1', 'A1-2', 30000, '2031-04-01', '2031-05-01'),
	   ('B2', 'B2-1', 20000, '2031-03-01', '2031-03-31'),
	   ('C3', 'C3-1', 120000, '2031-01-15', '2031-04-15'),
	   ('C3', 'C3-2', 120000, '2031-03-15', '2031-06-13'),
	   ('D10', 'D10-0', 10000, '2031-02-01', '2031-03-03'),
	   ('D10', 'D10-1', 100000, '2031-04-01', '2031-05-01'),
	   ('E7', 'E7-1', 10000, '2031-03-01', '2031-03-31'),
	   ('G8', 'G8-1', 30000, '2031-02-15', '2031-03-17'),
	   ('G9', 'G9-1', 30000, '2031-02-15', '2031-03-17'),
	   ('R11', 'R11-0', 100000, '2031-02-01', '2031-03-03'),
	   ('R11', 'R11-1', 20000, '2031-05-02', '2031-06-01'),
	   ('T6', 'T6-1', 60000, '2031-05-01', '2031-05-11');

CREATE TEMP TABLE paid (customer_key text, invoice_key text, amount numeric, paid_on date);
INSERT INTO paid VALUES
	('A1', 'A1-1', 61000, '2031-02-21'),	-- 20 days after the invoice
	('A1', 'A1-2', 30000, '2031-04-21'),	-- 20 days
	('B2', 'B2-1', 20000, '2031-04-15'),	-- 45 days, 15 days late
	('C3', 'C3-1', 120000, '2031-04-15'),	-- 90 days, on the due date (not late)
	('C3', 'C3-2', 120000, '2031-04-14'),	-- 30 days
	('D10', 'D10-0', 10000, '2031-02-11'),	-- 10 days (D10-1 stays open)
	('E7', 'E7-1', 10000, '2031-03-31'),	-- 30 days, on the due date
	('G8', 'G8-1', 30000, '2031-03-07'),	-- 20 days
	('G9', 'G9-1', 30000, '2031-03-07'),	-- 20 days
	('R11', 'R11-0', 100000, '2031-02-21'),	-- 20 days (R11-1 stays open)
	('T6', 'T6-1', 60000, '2031-05-21');	-- 20 days, 10 days late
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
SELECT customer_key, invoice_key || '-P', amount, paid_on FROM paid;
INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
SELECT p.payment_id, r.receivable_id, x.amount, x.paid_on
  FROM paid x
  JOIN credit.receivables r USING (customer_key, invoice_key)
  JOIN credit.payments p ON p.customer_key = x.customer_key AND p.payment_key = x.invoice_key || '-P';
SELECT customer_key, invoice_key, amount, invoice_date, due_date, open_amount
  FROM credit.receivables ORDER BY customer_key, invoice_key;

-- a user metric, loaded with COPY: B2 has three values over time, E5 none
INSERT INTO credit.metrics (metric, source, description, unit)
VALUES ('bureau_score', 'user', 'External credit bureau score', 'points');
COPY credit.metric_values (customer_key, metric, as_of, value, source_note) FROM STDIN;
A1	bureau_score	2031-06-30	650	bureau June
B2	bureau_score	2031-01-01	500	bureau January
B2	bureau_score	2031-06-01	560	bureau June
B2	bureau_score	2031-08-01	700	bureau August
C3	bureau_score	2031-06-30	500	bureau June
D10	bureau_score	2031-06-30	560	bureau June
E7	bureau_score	2031-06-30	380	bureau June
G8	bureau_score	2031-06-30	500	bureau June
G9	bureau_score	2031-06-30	499.9	bureau June
R11	bureau_score	2031-06-30	600	bureau June
T6	bureau_score	2031-06-30	550	bureau June
\.

--------------------------------------------------------------------------
-- Scorecard "std" version 1 (scorecard_id 1): four factors, weights adding
-- up to 100 (contribution = weight x points / 100).
--   1 pay      avg_days_to_pay     30  bins [-,30) 100, [30,60) 60, [60,-) 20; missing 50
--   2 overdue  overdue_count       20  bins [-,1) 100, [1,3) 50, [3,-) 0;       missing 40
--   3 bureau   bureau_score (user) 40  linear -200 + 0.5 x value, 0..100;      missing 30
--   4 tenure   relationship_years  10  bins [-,2) 0, [2,5) 50, [5,-) 100;      missing 0
-- The reason codes sort differently alphabetically (AGE_SHORT, BUREAU_LOW,
-- OVERDUE, PAY_SLOW) and by weight (bureau, pay, overdue, tenure) than by
-- position, so the order of ties shows which rule is used.
-- Grades (limit = clamp(base + multiplier x avg_monthly_sales, floor, cap),
-- rounded down to a multiple of round):
--   A >= 80  10000 + 3 x sales, 20000..200000, round 1000, 60 days, always
--   B >= 60      0 + 2 x sales, 10000..100000, round 1000, 45 days, decrease
--   C >= 40   5000 + 1 x sales,  5000..30000,  round 500,  30 days, never
--   D >= 0    0, cap 0, 0 days, decrease
-- Rules: 1 current_days_overdue > 30: 1 grade down; 2 overdue_amount >=
-- 100000: 2 grades down.
--------------------------------------------------------------------------
INSERT INTO credit.scorecards (name, description, window_months, overdue_months)
VALUES ('std', 'standard trade customers', 6, 12);
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, missing_points, reason_code, reason_text)
VALUES (1, 'pay', 1, 'avg_days_to_pay', 30, 'bins', NULL, NULL, 50, 'PAY_SLOW', 'Pays slowly'),
	   (1, 'overdue', 2, 'overdue_count', 20, 'bins', NULL, NULL, 40, 'OVERDUE', 'Items paid late or overdue'),
	   (1, 'bureau', 3, 'bureau_score', 40, 'linear', -200, 0.5, 30, 'BUREAU_LOW', 'Low bureau score'),
	   (1, 'tenure', 4, 'relationship_years', 10, 'bins', NULL, NULL, 0, 'AGE_SHORT', 'Short relationship');
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
VALUES (1, 'pay', NULL, 30, 100), (1, 'pay', 30, 60, 60), (1, 'pay', 60, NULL, 20),
	   (1, 'overdue', NULL, 1, 100), (1, 'overdue', 1, 3, 50), (1, 'overdue', 3, NULL, 0),
	   (1, 'tenure', NULL, 2, 0), (1, 'tenure', 2, 5, 50), (1, 'tenure', 5, NULL, 100);
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_base, limit_metric,
									 limit_multiplier, limit_floor, limit_cap, limit_round,
									 term_days, auto_apply)
VALUES (1, 'A', 80, 10000, 'avg_monthly_sales', 3, 20000, 200000, 1000, 60, 'always'),
	   (1, 'B', 60, 0, 'avg_monthly_sales', 2, 10000, 100000, 1000, 45, 'decrease'),
	   (1, 'C', 40, 5000, 'avg_monthly_sales', 1, 5000, 30000, 500, 30, 'never'),
	   (1, 'D', 0, 0, NULL, 0, 0, 0, 1, 0, 'decrease');
INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold, downgrade_steps, description)
VALUES (1, 1, 'current_days_overdue', '>', 30, 1, 'anything more than 30 days overdue'),
	   (1, 2, 'overdue_amount', '>=', 100000, 2, 'large overdue amounts');
-- the first activation retires nothing (NULL)
SELECT credit.activate_scorecard(1);
SELECT scorecard_id, name, version, state FROM credit.scorecards ORDER BY scorecard_id;

--------------------------------------------------------------------------
-- 1. Scores, grades and recommendations, as of 2031-07-01.
--
-- A1: avg_days_to_pay (61000 x 20 + 30000 x 20) / 91000 = 20.00 -> 100 -> 30;
--     overdue_count 0 -> 100 -> 20; bureau 650: -200 + 325 = 125, clamped
--     to 100 -> 40; relationship 2020-01-01..2031-07-01 = 4199 days / 365.25
--     = 11.50 -> 100 -> 10.  Score 100.00, A, no reasons.
--     avg_monthly_sales 91000 / 6 = 15166.67; 10000 + 3 x 15166.67 =
--     55500.01, rounded down to 1000: 55000, 60 days.
-- B2: avg 45 days -> 60 -> 18; overdue_count 1 (paid 15 days late) -> 50 ->
--     10; bureau 560 (of 2031-06-01) -> 80 -> 32; relationship 1095 days =
--     3.00 years -> 50 -> 5.  Score 65.00, B.  Lost: pay 12, overdue 10,
--     bureau 8, tenure 5.  Sales 20000 / 6 = 3333.33; 2 x 3333.33 = 6666.66,
--     below the floor: 10000, 45 days.
-- C3: avg (120000 x 90 + 120000 x 30) / 240000 = 60.00 -> 20 -> 6; overdue 0
--     (C3-1 paid on its due date is not late) -> 20; bureau 500 -> 50 -> 20;
--     relationship 2007 days = 5.49 -> 100 -> 10.  Score 56.00, C.  Lost: pay
--     24, bureau 20 (overdue and tenure lost nothing: not listed).  Sales
--     240000 / 6 = 40000; 5000 + 40000 = 45000, capped: 30000, 30 days.
-- D10: avg 10 days -> 30; overdue_count 1 (D10-1 open since 2031-05-01) ->
--     10; bureau 560 -> 32; relationship from the first invoice 2031-02-01:
--     150 days = 0.41 -> 0.  Score 72.00, band B; rule 1 (61 days > 30) and
--     rule 2 (overdue_amount 100000 >= 100000) move it 1 + 2 = 3 grades
--     down, bounded by the lowest: D.  D recommends 0, 0 days.  Lost:
--     overdue 10, tenure 10 (tie: position order), bureau 8.
-- E5: no receivables, no bureau value: pay missing 50 -> 15, overdue missing
--     40 -> 8, bureau missing 30 -> 12; relationship from the account's
--     creation 2024-07-01: 2557 days = 7.00 -> 10.  Score 45.00, C.  Lost:
--     bureau 28, pay 15, overdue 12.  Sales missing count 0: 5000, 30 days.
-- E7: avg exactly 30.00 -> 60 -> 18; overdue 0 -> 20; bureau 380: -10,
--     clamped to 0 -> 0; relationship 1826 days = 4.9993, shown as 5.00 ->
--     100 -> 10.  Score 48.00, C.  Lost: bureau 40, pay 12.  Sales 10000 / 6
--     = 1666.67; 6666.67 rounded down to 500: 6500.
-- G8: 30 + 20 + bureau 500 -> 50 -> 20, + 10 = 80.00: exactly A's min_score,
--     A.  Sales 5000: 10000 + 15000 = 25000, 60 days.  Lost: bureau 20.
-- G9: as G8 with bureau 499.9 -> 49.95 -> 19.98: 79.98, B.  2 x 5000 =
--     10000, 45 days.  Lost: bureau 20.02.
-- R11: avg 20 -> 30; overdue_count 1 (R11-1 open, due 2031-06-01) -> 10;
--     bureau 600 -> 100 -> 40; tenure -> 10.  Score 90.00, A: rule 1 does
--     not fire, R11-1 is exactly 30 days overdue (> 30 is strict).  Sales
--     120000 / 6 = 20000: 10000 + 60000 = 70000, 60 days.  Lost: overdue 10.
-- T6: avg 20 -> 30; overdue_count 1 -> 10; bureau 550 -> 75 -> 30;
--     relationship from 2031-05-01: 0.17 -> 0.  Score 70.00, B.  Sales
--     60000 / 6 = 10000: 20000, 45 days.  Lost 10, 10, 10: position order.
--------------------------------------------------------------------------
SELECT s.customer_key, s.score, s.band_grade, s.grade, s.recommended_limit AS rec_limit,
	   s.recommended_term AS rec_term, s.reasons
  FROM credit.accounts a, credit.score(a.customer_key, 1, '2031-07-01') s
 ORDER BY s.customer_key;
-- the default scorecard is the active one
SELECT customer_key, scorecard_id, score, grade FROM credit.score('A1', as_of => '2031-07-01');
-- each factor of B2: value, points, contribution, points lost
SELECT f.factor, f.metric, f.value, f.points, f.weight, f.contribution, f.lost, f.reason_code
  FROM credit.score('B2', 1, '2031-07-01') s,
	   jsonb_to_recordset(s.factors) AS f(factor text, metric text, value numeric, points numeric,
										  weight numeric, contribution numeric, lost numeric,
										  reason_code text);
-- D10: why its grade is two rules below its band
SELECT customer_key, band_grade, grade, why
  FROM credit.score_all(1, '2031-07-01', 'D10', false);
-- an unknown customer
SELECT show_error($$SELECT * FROM credit.score('nobody', 1, '2031-07-01')$$);

--------------------------------------------------------------------------
-- 2. Bins at their edges, grade edges, linear clamping (as of 2031-07-01;
--    metric_values and points are in factor order pay, overdue, bureau,
--    tenure).
-- E7: avg_days_to_pay exactly 30.00 is in [30,60): 60 points, not 100;
--     relationship 4.9993 years is rounded to 5.00 before binning: [5,-)
--     gives 100; bureau 380 gives -200 + 190 = -10, clamped to 0.
-- C3: avg_days_to_pay exactly 60.00 is in [60,-): 20 points.
-- B2, T6: overdue_count exactly 1 is in [1,3): 50 points.
-- A1: bureau 650 gives 125, clamped to 100.  R11: bureau 600 gives exactly
--     100.
-- G8: score exactly 80.00 = A's min_score: A.  G9: 79.98: B.
--------------------------------------------------------------------------
SELECT customer_key, metric_values, points, score, band_grade
  FROM credit.score_all(1, '2031-07-01', NULL, false)
 WHERE customer_key IN ('A1', 'B2', 'C3', 'E7', 'G8', 'G9', 'R11', 'T6')
 ORDER BY customer_key;

--------------------------------------------------------------------------
-- 3. Missing metrics give each factor's missing_points.
-- E5 (no receivables, no bureau value): avg_days_to_pay NULL -> 50,
--     overdue_count NULL -> 40, bureau_score NULL -> 30; relationship_years
--     (from the account, 7.00) -> 100.  Score 15 + 8 + 12 + 10 = 45.00.
-- B2 as of 2030-12-31: nothing invoiced yet and no bureau value before
--     2031-01-01: the same three missing, relationship 913 days = 2.50 -> 50:
--     score 15 + 8 + 12 + 5 = 40.00, exactly C's min_score: C, 5000.
--     Lost: bureau 28, pay 15, overdue 12, tenure 5.
--------------------------------------------------------------------------
SELECT customer_key, metric_values, points, score, grade, recommended_limit, reasons
  FROM credit.score_all(1, '2031-07-01', 'E5', false);
SELECT customer_key, metric_values, points, score, grade, recommended_limit, reasons
  FROM credit.score_all(1, '2030-12-31', 'B2', false);

--------------------------------------------------------------------------
-- 4. User metrics by as-of date: scoring as of D uses the latest value on
--    or before D.  B2's bureau values: 500 from 2031-01-01, 560 from
--    2031-06-01, 700 from 2031-08-01.  pay/overdue/tenure points as of
--    each date (by hand: 2030-12-31 and 2031-01-01 have no invoice yet):
--      2030-12-31  no value   30 pts x 0.4 = 12; 15 + 8 + 5:  40.00 C
--      2031-01-01  500        50 -> 20;  15 + 8 + 5:          48.00 C
--      2031-05-31  500        50 -> 20;  18 + 10 + 5:         53.00 C
--      2031-06-01  560        80 -> 32;  18 + 10 + 5:         65.00 B
--      2031-07-31  560        80 -> 32:                       65.00 B
--      2031-08-01  700       150 -> 100 -> 40:                73.00 B
--------------------------------------------------------------------------
SELECT d AS as_of, s.metric_values[3] AS bureau, s.points[3] AS bureau_points, s.score, s.grade
  FROM unnest('{2030-12-31,2031-01-01,2031-05-31,2031-06-01,2031-07-31,2031-08-01}'::date[]) d,
	   credit.score_all(1, d, 'B2', false) s
 ORDER BY d;
-- a value loaded later for an earlier date counts from that date on:
-- 580 as of 2031-07-15 changes the score as of 2031-07-31 (-200 + 290 =
-- 90 pts -> 36: 18 + 10 + 36 + 5 = 69.00) but not as of 2031-07-14
INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('B2', 'bureau_score', '2031-07-15', 580);
SELECT d AS as_of, s.metric_values[3] AS bureau, s.score
  FROM unnest('{2031-07-14,2031-07-31}'::date[]) d, credit.score_all(1, d, 'B2', false) s
 ORDER BY d;
DELETE FROM credit.metric_values WHERE customer_key = 'B2' AND as_of = '2031-07-15';
-- built-in metrics are computed, never loaded
SELECT show_error($$INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('A1', 'avg_days_to_pay', '2031-07-01', 5)$$);

--------------------------------------------------------------------------
-- 5. Reason codes: most points lost first, ties in factor position order,
--    factors that lost nothing left out.
-- T6: overdue 20 - 10 = 10, bureau 40 - 30 = 10, tenure 10 - 0 = 10, pay 0:
--     {OVERDUE, BUREAU_LOW, AGE_SHORT} (position 2, 3, 4; alphabetical order
--     or weight order would differ).
-- D10: overdue 10, tenure 10, bureau 8: {OVERDUE, AGE_SHORT, BUREAU_LOW}.
-- E5: bureau 28, pay 15, overdue 12, tenure 0: {BUREAU_LOW, PAY_SLOW, OVERDUE}.
-- A1 lost nothing: {}.
--------------------------------------------------------------------------
SELECT s.customer_key, f.factor, f.lost, f.reason_code
  FROM credit.accounts a, credit.score(a.customer_key, 1, '2031-07-01') s,
	   ROWS FROM (jsonb_to_recordset(s.factors) AS (factor text, lost numeric, reason_code text))
		   WITH ORDINALITY AS f(factor, lost, reason_code, ord)
 WHERE a.customer_key IN ('T6', 'D10')
 ORDER BY s.customer_key, f.ord;
SELECT customer_key, reasons
  FROM credit.score_all(1, '2031-07-01', NULL, false)
 WHERE customer_key IN ('A1', 'D10', 'E5', 'T6')
 ORDER BY customer_key;

--------------------------------------------------------------------------
-- 6. Unified social credit codes (GB 32100-2015).  Alphabet
--    0123456789ABCDEFGHJKLMNPQRTUWXY (index 0..30), weights 3^(i-1) mod 31 =
--    1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28, check = (31 - sum mod
--    31) mod 31.  Worked by hand for 91350100M000100Y4: 9x1 + 1x3 + 3x9 +
--    5x27 + 0 + 1x26 + 0 + 0 + M(21)x20 + 0 + 0 + 0 + 1x8 + 0 + 0 + Y(30)x30
--    + 4x28 = 1640; 1640 mod 31 = 28; 31 - 28 = 3: 91350100M000100Y43.
--    Verified with an independent script: 91110000600037341 (sum 538, mod
--    11) -> L; 91440300715267263 (sum 1054, mod 0) -> (31 - 0) mod 31 = 0;
--    9144030071526726D (sum 1334, mod 1) -> index 30, Y;
--    12100000400000770 (sum 376, mod 4) -> U; 92440300MA5EXAMPL (sum 3186,
--    mod 24) -> 7.
--------------------------------------------------------------------------
SELECT code, credit.uscc_valid(code) AS valid
  FROM unnest(ARRAY[
	'91350100M000100Y43',	-- valid
	'91110000600037341L',	-- valid
	'914403007152672630',	-- valid, check character 0
	'9144030071526726DY',	-- valid, check character Y
	'12100000400000770U',	-- valid
	'92440300MA5EXAMPL7',	-- valid, letters in the body
	'91350100M000100Y4',	-- 17 characters
	'91350100M000100Y433',	-- 19 characters
	'',						-- empty
	'91350100M000100Y43 ',	-- trailing space
	'91350100m000100y43',	-- lower case
	'91350100I000100Y43',	-- I is not in the alphabet
	'91350100O000100Y43',	-- O
	'91350100S000100Y43',	-- S
	'91350100V000100Y43',	-- V
	'91350100Z000100Y43',	-- Z
	'91A50100M000100Y43',	-- position 3 is not a digit
	'9135010AM000100Y43',	-- position 8 is not a digit
	'91350100M000100Y44',	-- wrong check character (3 expected)
	'91350100M000010Y43',	-- transposed digits: check fails
	'91110000600037341M'	-- wrong check character (L expected)
  ]) AS code;
SELECT credit.uscc_valid(NULL) AS valid_null;
-- what is wrong, as the domain's check reports it (23514)
SELECT show_error($$SELECT '91350100M000100Y4'::credit.uscc$$);
SELECT show_error($$SELECT '91350100m000100y43'::credit.uscc$$);
SELECT show_error($$SELECT '91350100S000100Y43'::credit.uscc$$);
SELECT show_error($$SELECT '9135010AM000100Y43'::credit.uscc$$);
SELECT show_error($$SELECT '91350100M000100Y44'::credit.uscc$$);
-- a full-width digit (as a Chinese input method types it) makes 18
-- characters but 20 bytes: the fault is the character, not the length
SELECT show_error($$SELECT '91350100M000100Y4３'::credit.uscc$$);
-- a wrong code in a credit profile is refused, and nothing changes
SELECT show_error($$INSERT INTO credit.profiles (customer_key, uscc) VALUES ('T6', '91350100M000100Y44')$$);
SELECT show_error($$UPDATE credit.profiles SET uscc = '9144030071526726DZ' WHERE customer_key = 'E7'$$);
SELECT customer_key, uscc FROM credit.profiles WHERE customer_key IN ('E7', 'T6') ORDER BY 1;
-- a code is unique among profiles
SELECT show_error($$UPDATE credit.profiles SET uscc = '91350100M000100Y43' WHERE customer_key = 'G8'$$);
-- an application's own table uses the domain
CREATE TABLE suppliers (supplier_id int PRIMARY KEY, name text, uscc credit.uscc NOT NULL);
INSERT INTO suppliers VALUES (1, 'Fujian supplier', '91350100M000100Y43'),
							 (2, 'Guangdong supplier', '92440300MA5EXAMPL7');
SELECT show_error($$INSERT INTO suppliers VALUES (3, 'Typo supplier', '92440300MA5EXAMPL1')$$);
SELECT show_error($$UPDATE suppliers SET uscc = lower(uscc) WHERE supplier_id = 2$$);
SELECT supplier_id, uscc FROM suppliers ORDER BY supplier_id;
DROP TABLE suppliers;

--------------------------------------------------------------------------
-- 7. Version immutability.  Version 1 is active: its factors, bins, grades,
--    rules and settings are refused (55000), so are deleting it, moving it
--    back to draft and TRUNCATE.
--------------------------------------------------------------------------
SELECT show_error($$UPDATE credit.scorecard_factors SET weight = 35 WHERE scorecard_id = 1 AND factor = 'pay'$$);
SELECT show_error($$UPDATE credit.scorecard_bins SET points = 90 WHERE scorecard_id = 1 AND factor = 'pay' AND lower_bound IS NULL$$);
SELECT show_error($$INSERT INTO credit.scorecard_bins VALUES (1, 'pay', 90, NULL, 0)$$);
SELECT show_error($$DELETE FROM credit.scorecard_grades WHERE scorecard_id = 1 AND grade = 'D'$$);
SELECT show_error($$UPDATE credit.scorecard_grades SET limit_cap = 300000 WHERE scorecard_id = 1 AND grade = 'A'$$);
SELECT show_error($$UPDATE credit.scorecard_rules SET threshold = 60 WHERE scorecard_id = 1 AND rule_no = 1$$);
SELECT show_error($$INSERT INTO credit.scorecard_rules VALUES (1, 3, 'max_days_overdue', '>', 90, 1, NULL)$$);
SELECT show_error($$UPDATE credit.scorecards SET hysteresis_points = 5 WHERE scorecard_id = 1$$);
SELECT show_error($$UPDATE credit.scorecards SET window_months = 12 WHERE scorecard_id = 1$$);
SELECT show_error($$UPDATE credit.scorecards SET state = 'draft' WHERE scorecard_id = 1$$);
SELECT show_error($$DELETE FROM credit.scorecards WHERE scorecard_id = 1$$);
SELECT show_error($$TRUNCATE credit.scorecard_bins$$);
SELECT show_error($$SELECT credit.activate_scorecard(1)$$);

-- a new version: a draft copy of version 1 with version 2
SELECT credit.new_scorecard_version(1) AS new_id;
SELECT scorecard_id, name, version, state FROM credit.scorecards ORDER BY scorecard_id;
SELECT s.scorecard_id,
	   (SELECT count(*) FROM credit.scorecard_factors f WHERE f.scorecard_id = s.scorecard_id) AS factors,
	   (SELECT count(*) FROM credit.scorecard_bins b WHERE b.scorecard_id = s.scorecard_id) AS bins,
	   (SELECT count(*) FROM credit.scorecard_grades g WHERE g.scorecard_id = s.scorecard_id) AS grades,
	   (SELECT count(*) FROM credit.scorecard_rules r WHERE r.scorecard_id = s.scorecard_id) AS rules
  FROM credit.scorecards s ORDER BY s.scorecard_id;
-- the copy is the same configuration: no row of either version is missing
-- from the other
WITH c AS (
	SELECT 'factors' AS t, f.scorecard_id AS id, to_jsonb(f) - 'scorecard_id' AS j FROM credit.scorecard_factors f
	UNION ALL SELECT 'bins', b.scorecard_id, to_jsonb(b) - 'scorecard_id' FROM credit.scorecard_bins b
	UNION ALL SELECT 'grades', g.scorecard_id, to_jsonb(g) - 'scorecard_id' FROM credit.scorecard_grades g
	UNION ALL SELECT 'rules', r.scorecard_id, to_jsonb(r) - 'scorecard_id' FROM credit.scorecard_rules r)
SELECT (SELECT count(*) FROM (SELECT t, j FROM c WHERE id = 1 EXCEPT ALL SELECT t, j FROM c WHERE id = 2) x) AS only_in_1,
	   (SELECT count(*) FROM (SELECT t, j FROM c WHERE id = 2 EXCEPT ALL SELECT t, j FROM c WHERE id = 1) x) AS only_in_2;
-- a draft's settings change: version 2 adds hysteresis (2 points), a
-- 2-day confirmation and a minimum limit change of 1000
UPDATE credit.scorecards
   SET hysteresis_points = 2, confirm_days = 2, limit_min_change = 1000,
	   description = 'standard trade customers, with hysteresis'
 WHERE scorecard_id = 2;
-- misconfiguration of the draft is refused when written (23514): an
-- overlapping bin, a gap left by deleting a bin
SELECT show_error($$INSERT INTO credit.scorecard_bins VALUES (2, 'pay', 50, 70, 40)$$);
SELECT show_error($$DELETE FROM credit.scorecard_bins WHERE scorecard_id = 2 AND factor = 'pay' AND lower_bound = 30$$);
-- a factor without bins can be written, but the draft cannot be activated
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, reason_code)
VALUES (2, 'sales', 5, 'avg_monthly_sales', 10, 'SALES_LOW');
SELECT show_error($$SELECT credit.activate_scorecard(2)$$);
DELETE FROM credit.scorecard_factors WHERE scorecard_id = 2 AND factor = 'sales';
-- with the bin checks deferred, a gap can exist inside a transaction, but
-- activation checks the bins again and refuses it
BEGIN;
SET CONSTRAINTS credit.scorecard_bins_valid DEFERRED;
DELETE FROM credit.scorecard_bins WHERE scorecard_id = 2 AND factor = 'pay' AND lower_bound = 30;
SELECT show_error($$SELECT credit.activate_scorecard(2)$$);
ROLLBACK;
-- activating version 2 retires version 1 (returned)
SELECT credit.activate_scorecard(2) AS retired;
SELECT scorecard_id, version, state, hysteresis_points, confirm_days, limit_min_change,
	   activated_at IS NOT NULL AS activated, retired_at IS NOT NULL AS retired
  FROM credit.scorecards ORDER BY scorecard_id;
-- a retired version never changes nor comes back
SELECT show_error($$UPDATE credit.scorecard_bins SET points = 90 WHERE scorecard_id = 1 AND factor = 'pay' AND lower_bound IS NULL$$);
SELECT show_error($$UPDATE credit.scorecards SET state = 'active' WHERE scorecard_id = 1$$);
SELECT show_error($$SELECT credit.activate_scorecard(1)$$);
-- and the active version 2 is now immutable too
SELECT show_error($$UPDATE credit.scorecard_grades SET min_score = 85 WHERE scorecard_id = 2 AND grade = 'A'$$);

--------------------------------------------------------------------------
-- 8. credit.rescore under version 2 (same factors, bins, grades and rules
--    as version 1, so the scores of section 1; hysteresis 2 points,
--    confirmation 2 days, limit_min_change 1000), run on successive dates.
--    Between the dates the ledger and the bureau values change; nothing
--    on 2031-01-01..2031-01-05 or in 2030, so the windows' moving start
--    changes no metric.
--------------------------------------------------------------------------
CREATE VIEW grades AS
SELECT customer_key, grade, computed_grade, score, grade_since, pending_grade, pending_since,
	   recommended_limit AS rec_limit, recommended_term AS rec_term, reasons, scored_on
  FROM credit.customer_grades;
CREATE VIEW requests AS
SELECT customer_key, as_of, grade, current_limit, proposed_limit, current_term, proposed_term, state
  FROM credit.limit_requests;

-- Run 1, 2031-07-01: the first grading applies the computed grades of
-- section 1 (D10 after its rules).  Limit actions, recommended vs account:
--   A1  55000/60 vs 50000/30: A always: applied
--   B2  10000/45 vs 20000/60: lower limit and shorter term, B decrease: applied
--   C3  30000/30 vs 30000/30: nothing
--   D10     0/0  vs 50000/30: lower, D decrease: applied
--   E5   5000/30 vs  5400/30: 400 < limit_min_change 1000, same term: nothing
--   E7   6500/30 vs 10000/30: C never: request
--   G8  25000/60 vs 25000/60: nothing
--   G9  10000/45 vs 10000/30: only the term differs, longer: B decrease: request
--   R11 70000/60 vs 70000/60: nothing
--   T6  20000/45 vs 10000/45: higher, B decrease: request
-- So 10 scored, 10 grade changes (NULL -> grade), 3 applied, 3 open requests.
SELECT * FROM credit.rescore('2031-07-01');
SELECT * FROM grades ORDER BY customer_key;
SELECT customer_key, old_grade, new_grade, score, why FROM credit.grade_changes ORDER BY customer_key;
SELECT customer_key, credit_limit, payment_term_days FROM credit.accounts ORDER BY customer_key;
SELECT * FROM requests ORDER BY customer_key, state;
SELECT scorecard_id, as_of, count(*) FROM credit.score_history GROUP BY 1, 2 ORDER BY 1, 2;
CREATE TEMP TABLE first_requests AS
SELECT customer_key, request_id FROM credit.limit_requests WHERE state = 'open';

-- Run 2, 2031-07-01 again, after E5's first bureau value (600, as of
-- 2031-07-01): the day's history rows are replaced, not added.  E5 now
-- scores 15 + 8 + 40 + 10 = 73.00, band B; with the margin B still needs
-- 73 >= 60 + 2: B is the candidate, but a score-driven change waits 2
-- days: E5 keeps C, pending B since 2031-07-01.  Its recommendation stays
-- C's 5000 (vs 5400: nothing).  Applied limits now equal the
-- recommendations; the 3 open requests are updated, still one each:
-- 10 scored, 0 changes, 0 applied, 3 open.
INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('E5', 'bureau_score', '2031-07-01', 600);
SELECT customer_key, score, computed_grade, grade FROM credit.score_history WHERE customer_key = 'E5';
SELECT * FROM credit.rescore('2031-07-01');
SELECT customer_key, score, computed_grade, grade, metric_values FROM credit.score_history WHERE customer_key = 'E5';
SELECT scorecard_id, as_of, count(*) FROM credit.score_history GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM grades WHERE customer_key = 'E5';
SELECT customer_key, state, count(*) FROM credit.limit_requests GROUP BY 1, 2 ORDER BY 1, 2;

-- Run 3, 2031-07-02.  Before it: G8's bureau falls to 495 (47.5 pts ->
-- 19: score 79.00, band B, but 79 is not below A's 80 - 2 = 78: G8 keeps
-- A within the margin); T6 invoices 6000 (window sales 66000 / 6 = 11000:
-- B recommends 22000, its open request is updated).  R11-1 is now 31 days
-- overdue: rule 1 fires, R11 goes A -> B at once (no confirmation for rule
-- downgrades), and B's 40000/45 (2 x 20000) vs 70000/60 is a decrease:
-- applied.  E5 stays C (pending since 2031-07-01, 1 day < 2).
-- 10 scored, 1 change, 1 applied, 3 open (E7, G9, T6).
INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('G8', 'bureau_score', '2031-07-02', 495);
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('T6', 'T6-2', 6000, '2031-07-02', '2031-08-01');
SELECT customer_key, score, band_grade, grade, final_grade, pending_grade, pending_since, why
  FROM credit.score_all(NULL, '2031-07-02')
 WHERE customer_key IN ('E5', 'G8', 'R11') ORDER BY customer_key;
SELECT * FROM credit.rescore('2031-07-02');
SELECT * FROM grades WHERE customer_key IN ('E5', 'G8', 'R11', 'T6') ORDER BY customer_key;
SELECT * FROM requests WHERE customer_key IN ('R11', 'T6') ORDER BY customer_key, state;
-- the open requests of run 1 are the same rows; a request whose proposal
-- did not change keeps the date of its last change (E7, G9: run 1)
SELECT f.customer_key, r.request_id = f.request_id AS same_request, r.as_of, r.proposed_limit, r.state
  FROM first_requests f JOIN credit.limit_requests r
	ON r.customer_key = f.customer_key AND r.state = 'open'
 ORDER BY f.customer_key;

-- Run 4, 2031-07-03.  Before it: G8's bureau falls to 485 (42.5 pts -> 17:
-- 77.00 < 78: B becomes the candidate, pending since 2031-07-03); R11 pays
-- R11-1 (62 days: avg (100000 x 20 + 20000 x 62) / 120000 = 27.00, still
-- 100 points; overdue_count still 1: score 90.00), rule 1 stops: band A,
-- 90 >= 80 + 2, A is the candidate, pending since 2031-07-03, R11 stays B
-- (its limit already B's: nothing).  E5's B is confirmed (2 days since
-- 2031-07-01): C -> B, and B's 10000/45 (floor; sales missing) vs 5400/30
-- is a raise: a new open request.  E7's limit was set to 6500 by hand (as
-- an approval would): nothing to do, its open request is superseded.
-- 10 scored, 1 change, 0 applied, 3 open (E5, G9, T6).
INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('G8', 'bureau_score', '2031-07-03', 485);
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('R11', 'R11-1-P', 20000, '2031-07-03');
INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
SELECT p.payment_id, r.receivable_id, 20000, '2031-07-03'
  FROM credit.payments p, credit.receivables r
 WHERE p.payment_key = 'R11-1-P' AND r.invoice_key = 'R11-1';
UPDATE credit.accounts SET credit_limit = 6500 WHERE customer_key = 'E7';
SELECT customer_key, score, band_grade, grade, final_grade, pending_grade, pending_since, why
  FROM credit.score_all(NULL, '2031-07-03')
 WHERE customer_key IN ('E5', 'G8', 'R11') ORDER BY customer_key;
SELECT * FROM credit.rescore('2031-07-03');
SELECT * FROM grades WHERE customer_key IN ('E5', 'E7', 'G8', 'R11') ORDER BY customer_key;
SELECT * FROM requests WHERE customer_key IN ('E5', 'E7') ORDER BY customer_key, state;

-- Run 5, 2031-07-04: nothing changed; G8 (B) and R11 (A) have been pending
-- 1 day: 10 scored, 0 changes, 0 applied, 3 open.
SELECT * FROM credit.rescore('2031-07-04');
SELECT * FROM grades WHERE customer_key IN ('G8', 'R11') ORDER BY customer_key;
-- what if G8's bureau score had come back to 495 on 2031-07-04: 79.00 is
-- within the margin of A again, the candidate is A, and the pending B is
-- dropped (read-only score_all, rolled back)
BEGIN;
INSERT INTO credit.metric_values (customer_key, metric, as_of, value) VALUES ('G8', 'bureau_score', '2031-07-04', 495);
SELECT customer_key, score, band_grade, final_grade, pending_grade, pending_since, grade_changed, why
  FROM credit.score_all(NULL, '2031-07-04', 'G8');
ROLLBACK;

-- Run 6, 2031-07-05: 2 days have passed: G8 A -> B, B's 10000/45 vs
-- 25000/60 is a decrease: applied; R11 B -> A, A's 70000/60 vs 40000/45,
-- A always: applied.  10 scored, 2 changes, 2 applied, 3 open.
SELECT * FROM credit.rescore('2031-07-05');
SELECT * FROM grades ORDER BY customer_key;

-- The whole record.  Grade changes: ten first gradings on 2031-07-01, R11
-- A -> B (rule) on 2031-07-02, E5 C -> B on 2031-07-03, G8 A -> B and R11
-- B -> A on 2031-07-05.
SELECT as_of, customer_key, old_grade, new_grade, score, why, reasons
  FROM credit.grade_changes WHERE as_of > '2031-07-01' ORDER BY as_of, customer_key;
SELECT as_of, count(*) FROM credit.grade_changes GROUP BY as_of ORDER BY as_of;
-- limits: A1 55000/60, B2 10000/45, C3 30000/30, D10 0/0, E5 5400/30
-- (requested), E7 6500/30 (by hand), G8 10000/45, G9 10000/30 (requested),
-- R11 70000/60, T6 10000/45 (requested)
SELECT customer_key, credit_limit, payment_term_days FROM credit.accounts ORDER BY customer_key;
-- requests: applied A1, B2, D10 (2031-07-01), R11 (2031-07-02 and
-- 2031-07-05), G8 (2031-07-05); E7's superseded (proposed on 2031-07-01);
-- open E5, G9, T6, each dated by its last changed proposal (E5 2031-07-03,
-- G9 2031-07-01, T6 2031-07-02, proposing 22000)
SELECT * FROM requests ORDER BY customer_key, as_of, state;
SELECT count(*) FILTER (WHERE state = 'open') AS open_requests,
	   count(DISTINCT customer_key) FILTER (WHERE state = 'open') AS customers_with_open
  FROM credit.limit_requests;
SELECT scorecard_id, as_of, count(*) FROM credit.score_history GROUP BY 1, 2 ORDER BY 1, 2;

--------------------------------------------------------------------------
-- 9. What-if: a draft version 3 raises A to 95 and C to 50, compared with
--    the active version 2 as of 2031-07-05 (grades after rules, no
--    hysteresis), writing nothing.
--    Scores as of 2031-07-05: A1 100, B2 65, C3 56, D10 72 (rules: D), E5
--    73, E7 48, G8 77, G9 79.98, R11 90, T6 70.
--    Version 2: A: A1 55000 + R11 70000 = 125000 (2); B: B2, E5, G8, G9
--      10000 each + T6 22000 = 62000 (5); C: C3 30000 + E7 6500 = 36500 (2);
--      D: D10 0 (1).  Total 10, 223500.
--    Draft 3: A: A1 55000 (1); B: R11 joins with 2 x 20000 = 40000: 102000
--      (6); C: C3 30000 (1); D: D10 and E7 (48 < 50), 0 (2).  Total 10,
--      187000.
--------------------------------------------------------------------------
SELECT credit.new_scorecard_version(2) AS draft;
UPDATE credit.scorecard_grades SET min_score = 95 WHERE scorecard_id = 3 AND grade = 'A';
UPDATE credit.scorecard_grades SET min_score = 50 WHERE scorecard_id = 3 AND grade = 'C';
CREATE TEMP TABLE counts AS
SELECT (SELECT count(*) FROM credit.score_history) AS history,
	   (SELECT count(*) FROM credit.customer_grades) AS grades,
	   (SELECT count(*) FROM credit.grade_changes) AS changes,
	   (SELECT count(*) FROM credit.limit_requests) AS requests,
	   (SELECT sum(credit_limit) FROM credit.accounts) AS limits,
	   (SELECT string_agg(scorecard_id || ':' || state, ' ' ORDER BY scorecard_id) FROM credit.scorecards) AS states,
	   (SELECT md5(string_agg(g::text, ',' ORDER BY customer_key)) FROM grades g) AS grades_md5,
	   (SELECT md5(string_agg(r::text, ',' ORDER BY customer_key, as_of, state)) FROM requests r) AS requests_md5,
	   (SELECT md5(string_agg(h.score || h.grade || h.as_of, ',' ORDER BY scorecard_id, as_of, customer_key))
		  FROM credit.score_history h) AS history_md5;
SELECT history, grades, changes, requests, limits, states FROM counts;
SELECT * FROM credit.compare_scorecards(3, as_of => '2031-07-05');
-- the same, naming the base version
SELECT * FROM credit.compare_scorecards(3, 2, '2031-07-05') WHERE grade = 'total';
INSERT INTO counts
SELECT (SELECT count(*) FROM credit.score_history),
	   (SELECT count(*) FROM credit.customer_grades),
	   (SELECT count(*) FROM credit.grade_changes),
	   (SELECT count(*) FROM credit.limit_requests),
	   (SELECT sum(credit_limit) FROM credit.accounts),
	   (SELECT string_agg(scorecard_id || ':' || state, ' ' ORDER BY scorecard_id) FROM credit.scorecards),
	   (SELECT md5(string_agg(g::text, ',' ORDER BY customer_key)) FROM grades g),
	   (SELECT md5(string_agg(r::text, ',' ORDER BY customer_key, as_of, state)) FROM requests r),
	   (SELECT md5(string_agg(h.score || h.grade || h.as_of, ',' ORDER BY scorecard_id, as_of, customer_key))
		  FROM credit.score_history h);
-- before and after: the same counts, and the same contents of grades,
-- requests and history
SELECT count(DISTINCT counts) AS distinct_rows, count(*) AS rows FROM counts;
SELECT history, grades, changes, requests, limits, states FROM counts OFFSET 1;
-- the draft can be scored, but not used by rescore
SELECT customer_key, score, grade, recommended_limit FROM credit.score('R11', 3, '2031-07-05');
SELECT show_error($$SELECT * FROM credit.rescore('2031-07-05', 3)$$);

DROP VIEW grades, requests;
DROP FUNCTION show_error(text);
DROP EXTENSION credit;
