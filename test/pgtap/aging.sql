/*
 * aging.sql: pgTAP suite for receivables aging.
 *
 * Exact bucket boundaries (due today is not due; day 30 vs 31, 60/61,
 * 90/91), leap days, receivables invoiced after the as_of date, the
 * invoice_date basis, custom buckets (one statement, or several with the
 * check deferred to commit), every malformed bucket configuration refused
 * with 23514 and leaving the table as it was, credit.receivable_bucket
 * agreeing with credit.aging, partial and full payment, disputed
 * receivables, currencies, and credit.aging_summary.  Runs in one
 * transaction and rolls back; every date is explicit except for the
 * default as_of (current_date).
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(103);

/* receivable_id of a customer's invoice */
CREATE FUNCTION pg_temp.rid(k text, inv text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT receivable_id FROM credit.receivables WHERE customer_key = k AND invoice_key = inv
$$;
/* the bucket label of a customer's invoice as of a date */
CREATE FUNCTION pg_temp.bucket(k text, inv text, as_of date) RETURNS text
LANGUAGE sql AS $$ SELECT (credit.receivable_bucket(pg_temp.rid(k, inv), as_of)).bucket $$;
/* a customer's aging as text rows "bucket_no|bucket|band|amount|items|disputed" */
CREATE FUNCTION pg_temp.aging_of(k text, as_of date) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', bucket_no, bucket, band, amount, items, disputed_amount)
	  FROM credit.aging(as_of) WHERE customer_key = k ORDER BY bucket_no
$$;
CREATE FUNCTION pg_temp.bounds() RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', bucket_no, label, coalesce(min_days::text, '-'),
					 coalesce(max_days::text, '-'), band)
	  FROM credit.aging_buckets ORDER BY bucket_no
$$;
/* the configuration as shipped, to check that a refused change left it */
CREATE TEMP TABLE default_bounds AS SELECT * FROM pg_temp.bounds() b;

/* ---------------------------------------------------------------------
 * The table and its defaults
 * ------------------------------------------------------------------- */

SELECT results_eq('SELECT * FROM pg_temp.bounds()',
				  $$VALUES ('0|not due|-|0|green'), ('1|1-30|1|30|yellow'),
						   ('2|31-60|31|60|yellow'), ('3|61-90|61|90|red'),
						   ('4|>90|91|-|red')$$,
				  'default buckets: not due, 1-30, 31-60, 61-90, >90 with their bands');
SELECT ok((SELECT 'credit.aging_buckets'::regclass = ANY (extconfig)
			 FROM pg_extension WHERE extname = 'credit'),
		  'aging_buckets is a configuration table that pg_dump keeps');
SELECT is((SELECT count(*) FROM pg_attribute
			WHERE attrelid = 'credit.aging_buckets'::regclass AND attnum > 0
			  AND NOT attisdropped
			  AND col_description(attrelid, attnum) IS NULL), 0::bigint,
		  'every column of aging_buckets has a comment');
SELECT is((SELECT count(*) FROM pg_proc p
			WHERE p.pronamespace = 'credit'::regnamespace
			  AND p.proname IN ('aging', 'aging_summary', 'aging_bucket', 'receivable_bucket', 'aging_config',
								'aging_buckets_check')
			  AND obj_description(p.oid, 'pg_proc') IS NOT NULL), 7::bigint,
		  'the aging functions have comments');

/* ---------------------------------------------------------------------
 * Fixture: customer K has one invoice per boundary day as of 2026-06-30
 * (invoice key = days past due), amounts powers of two
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('K', 0), ('L', 0), ('F', 0),
	('P', 0), ('D', 0), ('N', 0);
INSERT INTO credit.accounts (customer_key, credit_limit, currency) VALUES ('U', 0, 'USD');

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
SELECT 'K', 'd' || d, 2 ^ n, DATE '2026-06-30' - d - 30, DATE '2026-06-30' - d
  FROM unnest('{-1,0,1,30,31,60,61,90,91}'::int[]) WITH ORDINALITY AS x(d, n);

SELECT is(pg_temp.bucket('K', 'd-1', '2026-06-30'), 'not due', 'due tomorrow: not due');
SELECT is(pg_temp.bucket('K', 'd0', '2026-06-30'), 'not due', 'due today (day 0): not due');
SELECT is(pg_temp.bucket('K', 'd1', '2026-06-30'), '1-30', 'day 1 past due: 1-30');
SELECT is(pg_temp.bucket('K', 'd30', '2026-06-30'), '1-30', 'day 30: still 1-30');
SELECT is(pg_temp.bucket('K', 'd31', '2026-06-30'), '31-60', 'day 31: 31-60');
SELECT is(pg_temp.bucket('K', 'd60', '2026-06-30'), '31-60', 'day 60: still 31-60');
SELECT is(pg_temp.bucket('K', 'd61', '2026-06-30'), '61-90', 'day 61: 61-90');
SELECT is(pg_temp.bucket('K', 'd90', '2026-06-30'), '61-90', 'day 90: still 61-90');
SELECT is(pg_temp.bucket('K', 'd91', '2026-06-30'), '>90', 'day 91: >90');
SELECT is((credit.receivable_bucket(pg_temp.rid('K', 'd31'), '2026-06-30')).days, 31,
		  'receivable_bucket gives the age in days');
SELECT is((credit.receivable_bucket(pg_temp.rid('K', 'd-1'), '2026-06-30')).days, -1,
		  'a receivable not yet due has a negative age');
SELECT is((credit.receivable_bucket(pg_temp.rid('K', 'd61'), '2026-06-30')).band, 'red',
		  'receivable_bucket gives the band');
SELECT results_eq($$SELECT (credit.receivable_bucket(r, '2026-06-30')).bucket
					  FROM credit.receivables r WHERE customer_key = 'K' ORDER BY due_date DESC$$,
				  $$VALUES ('not due'), ('not due'), ('1-30'), ('1-30'), ('31-60'), ('31-60'),
						   ('61-90'), ('61-90'), ('>90')$$,
				  'receivable_bucket taking the row agrees with the one taking the id');

SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|6|2|0'), ('1|1-30|yellow|24|2|0'),
						   ('2|31-60|yellow|96|2|0'), ('3|61-90|red|384|2|0'),
						   ('4|>90|red|512|1|0')$$,
				  'aging puts each boundary day in its bucket, with amounts, counts and bands');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-07-01')$$,
				  $$VALUES ('0|not due|green|2|1|0'), ('1|1-30|yellow|12|2|0'),
						   ('2|31-60|yellow|48|2|0'), ('3|61-90|red|192|2|0'),
						   ('4|>90|red|768|2|0')$$,
				  'one day later every boundary invoice moves up one bucket');
SELECT is((SELECT currency FROM credit.aging('2026-06-30') WHERE customer_key = 'K' LIMIT 1),
		  'CNY', 'aging shows the currency of the amounts');

/* ---------------------------------------------------------------------
 * Leap days: an exact count of days
 * ------------------------------------------------------------------- */

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date) VALUES
	('L', 'leap-28', 10, '2028-01-15', '2028-02-28'),
	('L', 'leap-29', 20, '2028-01-15', '2028-02-29'),
	('L', 'leap-jan', 40, '2028-01-01', '2028-01-31'),
	('L', 'plain-28', 100, '2027-01-15', '2027-02-28'),
	('L', 'plain-jan', 200, '2027-01-01', '2027-01-31');

SELECT is((credit.receivable_bucket(pg_temp.rid('L', 'leap-28'), '2028-03-01')).days, 2,
		  'due 2028-02-28, as of 2028-03-01: 2 days (29 February counts)');
SELECT is((credit.receivable_bucket(pg_temp.rid('L', 'plain-28'), '2027-03-01')).days, 1,
		  'due 2027-02-28, as of 2027-03-01: 1 day');
SELECT is((credit.receivable_bucket(pg_temp.rid('L', 'leap-29'), '2028-02-29')).bucket, 'not due',
		  'due on the leap day, as of the leap day: not due');
SELECT is((credit.receivable_bucket(pg_temp.rid('L', 'leap-29'), '2028-03-01')).days, 1,
		  'due on the leap day, as of 1 March: 1 day');
SELECT is(pg_temp.bucket('L', 'leap-jan', '2028-03-02'), '31-60',
		  'due 2028-01-31, as of 2028-03-02: 31 days, 31-60');
SELECT is(pg_temp.bucket('L', 'plain-jan', '2027-03-02'), '1-30',
		  'due 2027-01-31, as of 2027-03-02: 30 days, still 1-30');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('L', '2028-03-02')$$,
				  $$VALUES ('1|1-30|yellow|30|2|0'), ('2|31-60|yellow|40|1|0'),
						   ('4|>90|red|300|2|0')$$,
				  'aging across the leap day');

/* ---------------------------------------------------------------------
 * As of a date before the invoice date: not part of the aging
 * ------------------------------------------------------------------- */

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date) VALUES
	('F', 'early', 1, '2026-06-01', '2026-06-30'),
	('F', 'late', 1000, '2026-07-05', '2026-08-04');

SELECT results_eq($$SELECT * FROM pg_temp.aging_of('F', '2026-07-04')$$,
				  $$VALUES ('1|1-30|yellow|1|1|0')$$,
				  'an invoice dated after as_of is left out of the aging');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('F', '2026-07-05')$$,
				  $$VALUES ('0|not due|green|1000|1|0'), ('1|1-30|yellow|1|1|0')$$,
				  'as of its invoice date it is counted');
SELECT is_empty($$SELECT * FROM pg_temp.aging_of('F', '2026-05-31')$$,
				'as of a date before all its invoices a customer has no aging');
SELECT ok((SELECT r IS NULL FROM credit.receivable_bucket(pg_temp.rid('F', 'late'), '2026-07-04') r),
		  'receivable_bucket is NULL before the invoice date');
SELECT ok((SELECT r IS NULL FROM credit.receivable_bucket(-1::bigint, '2026-07-04') r),
		  'receivable_bucket is NULL for an unknown receivable');

/* ---------------------------------------------------------------------
 * Payments: the open amount is aged; paid receivables vanish
 * ------------------------------------------------------------------- */

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date) VALUES
	('P', 'i1', 1000, '2026-05-01', '2026-05-31'),
	('P', 'i2', 500, '2026-06-01', '2026-07-01');
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('P', 'pay1', 1200, '2026-06-20');
SELECT lives_ok($$SELECT credit.allocate((SELECT payment_id FROM credit.payments WHERE payment_key = 'pay1'),
										'i1', 400)$$, 'part of invoice i1 is paid');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('P', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|500|1|0'), ('1|1-30|yellow|600|1|0')$$,
				  'a partly paid invoice is aged with its open amount');
SELECT lives_ok($$SELECT credit.allocate((SELECT payment_id FROM credit.payments WHERE payment_key = 'pay1'),
										'i1')$$, 'the rest of i1 is paid');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('P', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|500|1|0')$$,
				  'a paid invoice vanishes from the aging');
SELECT is(pg_temp.bucket('P', 'i1', '2026-06-30'), '1-30',
		  'receivable_bucket still gives the age bucket of a paid invoice');
SELECT lives_ok($$DELETE FROM credit.allocations
				   WHERE receivable_id = pg_temp.rid('P', 'i1') AND amount = 600$$,
				'an allocation is reversed');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('P', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|500|1|0'), ('1|1-30|yellow|600|1|0')$$,
				  'a reversed allocation brings the open amount back');

/* ---------------------------------------------------------------------
 * Disputed receivables are aged, and shown apart
 * ------------------------------------------------------------------- */

INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date, disputed) VALUES
	('D', 'ok', 100, '2026-04-01', '2026-04-30', false),
	('D', 'disputed', 50, '2026-04-01', '2026-04-30', true),
	('D', 'new-disputed', 7, '2026-06-29', '2026-07-29', true);
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('D', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|7|1|7'), ('3|61-90|red|150|2|50')$$,
				  'disputed receivables count in their bucket and in disputed_amount');

/* another currency: amounts per customer and currency */
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('U', 'usd', 70, '2026-06-01', '2026-06-15');
SELECT results_eq($$SELECT currency, bucket, amount FROM credit.aging('2026-06-30') WHERE customer_key = 'U'$$,
				  $$VALUES ('USD', '1-30', 70::numeric)$$,
				  'a USD account is aged in USD');

/* a customer without open receivables has no rows */
SELECT is_empty($$SELECT * FROM credit.aging('2026-06-30') WHERE customer_key = 'N'$$,
				'an account without receivables is not in the aging');

/* receivable_bucket agrees with aging, for every open receivable, on several dates */
SELECT bag_eq($$SELECT d, a.customer_key, a.currency, a.bucket_no, a.bucket, a.band, a.amount, a.items
				  FROM unnest('{2026-05-31,2026-06-30,2026-07-31,2028-03-01}'::date[]) d, credit.aging(d) a$$,
			  $$SELECT d, r.customer_key, r.currency, b.bucket_no, b.bucket, b.band,
					   sum(r.open_amount), count(*)
				  FROM credit.receivables r,
					   unnest('{2026-05-31,2026-06-30,2026-07-31,2028-03-01}'::date[]) d,
					   credit.receivable_bucket(r, d) b
				 WHERE r.open_amount > 0 AND b.bucket_no IS NOT NULL
				 GROUP BY 1, 2, 3, 4, 5, 6$$,
			  'receivable_bucket agrees with aging on every open receivable');
SELECT is((SELECT sum(amount) FROM credit.aging('2026-06-30')),
		  (SELECT sum(open_amount) FROM credit.receivables WHERE invoice_date <= '2026-06-30'),
		  'the aging adds up to the open amounts invoiced by as_of');

/* the default as_of is today */
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('N', 'today-31', 3, current_date - 61, current_date - 31);
SELECT results_eq($$SELECT bucket, amount FROM credit.aging() WHERE customer_key = 'N'$$,
				  $$VALUES ('31-60', 3::numeric)$$,
				  'aging() without a date ages as of today');
SELECT is((credit.receivable_bucket(pg_temp.rid('N', 'today-31'))).days, 31,
		  'receivable_bucket without a date ages as of today');
SELECT throws_ok($$SELECT * FROM credit.aging(NULL)$$, '22004', 'as_of must not be null',
				 'aging(NULL) is refused');

/* ---------------------------------------------------------------------
 * aging_summary: one row per customer
 * ------------------------------------------------------------------- */

SELECT results_eq($$SELECT customer_key, currency, total, not_due, overdue, disputed_amount, items,
						   worst_bucket_no, worst_bucket, worst_band, buckets
					  FROM credit.aging_summary('2026-06-30') WHERE customer_key IN ('K', 'D')
					 ORDER BY customer_key$$,
				  $$VALUES ('D', 'CNY', 157::numeric, 7::numeric, 150::numeric, 57::numeric, 3::bigint,
							3, '61-90', 'red', '{"not due": 7, "61-90": 150}'::jsonb),
						   ('K', 'CNY', 1022::numeric, 6::numeric, 1016::numeric, 0::numeric, 9::bigint,
							4, '>90', 'red',
							'{"not due": 6, "1-30": 24, "31-60": 96, "61-90": 384, ">90": 512}'::jsonb)$$,
				  'aging_summary: totals, not due and overdue, disputed, worst bucket, amounts per bucket');
SELECT is((SELECT count(*) FROM credit.aging_summary('2026-06-30')),
		  (SELECT count(DISTINCT (customer_key, currency)) FROM credit.aging('2026-06-30')),
		  'aging_summary has one row per customer and currency in the aging');

/* ---------------------------------------------------------------------
 * invoice_date basis
 * ------------------------------------------------------------------- */

UPDATE credit.settings SET aging_basis = 'invoice_date';
SELECT is((credit.receivable_bucket(pg_temp.rid('P', 'i2'), '2026-06-30')).days, 29,
		  'invoice_date basis: days since the invoice date');
SELECT is(pg_temp.bucket('K', 'd31', '2026-06-30'), '61-90',
		  'invoice_date basis: invoiced 61 days ago is 61-90 although 31 days past due');
SELECT is(pg_temp.bucket('F', 'late', '2026-07-05'), 'not due',
		  'invoice_date basis: invoiced today is day 0');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('1|1-30|yellow|6|2|0'), ('2|31-60|yellow|24|2|0'),
						   ('3|61-90|red|96|2|0'), ('4|>90|red|896|3|0')$$,
				  'invoice_date basis: aging by days since invoicing');
SELECT results_eq($$SELECT not_due, overdue FROM credit.aging_summary('2026-06-30') WHERE customer_key = 'K'$$,
				  $$VALUES (6::numeric, 1016::numeric)$$,
				  'aging_summary: not due and overdue still go by the due date');
SELECT set_eq($$SELECT a.customer_key, a.bucket_no, a.amount FROM credit.aging('2026-06-30') a$$,
			  $$SELECT r.customer_key, b.bucket_no, sum(r.open_amount)
				  FROM credit.receivables r, credit.receivable_bucket(r, '2026-06-30') b
				 WHERE r.open_amount > 0 AND b.bucket_no IS NOT NULL GROUP BY 1, 2$$,
			  'invoice_date basis: receivable_bucket agrees with aging');
UPDATE credit.settings SET aging_basis = 'due_date';

/* ---------------------------------------------------------------------
 * Malformed configurations: refused with 23514, table unchanged
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.aging_buckets SET max_days = 31 WHERE bucket_no = 1$$,
				 '23514', 'aging buckets overlap: bucket 1 "1-30" (days 1..31) and bucket 2 "31-60" (days 31..60)',
				 'overlapping buckets are refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET min_days = 30 WHERE bucket_no = 2$$,
				 '23514', NULL, 'a bucket starting inside the previous one is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET max_days = 29 WHERE bucket_no = 1$$,
				 '23514', 'aging buckets leave a gap: days 30..30 are in no bucket',
				 'a gap of one day (day 30) is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET min_days = 40 WHERE bucket_no = 2$$,
				 '23514', 'aging buckets leave a gap: days 31..39 are in no bucket',
				 'a gap of several days is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET min_days = 40, max_days = 35 WHERE bucket_no = 2$$,
				 '23514', NULL, 'a bucket whose bounds are out of order (min > max) is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets
					  SET min_days = CASE bucket_no WHEN 1 THEN 31 ELSE 1 END,
						  max_days = CASE bucket_no WHEN 1 THEN 60 ELSE 30 END
					WHERE bucket_no IN (1, 2)$$,
				 '23514', 'aging buckets out of order: bucket 2 "31-60" (days 1..30) comes before bucket 1 "1-30" (days 31..60)',
				 'buckets whose days are not in bucket_no order are refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET band = 'blue' WHERE bucket_no = 1$$,
				 '23514', NULL, 'an unknown band is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET band = NULL WHERE bucket_no = 1$$,
				 '23502', NULL, 'a bucket without a band is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET min_days = -10 WHERE bucket_no = 0$$,
				 '23514', 'aging buckets leave a gap: days below -10 are in no bucket',
				 'a first bucket with a lower bound is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET max_days = 365 WHERE bucket_no = 4$$,
				 '23514', 'aging buckets leave a gap: days above 365 are in no bucket',
				 'a last bucket with an upper bound is refused');
SELECT throws_ok($$INSERT INTO credit.aging_buckets VALUES (5, '>180', 181, NULL, 'red')$$,
				 '23514', NULL, 'a bucket after the unbounded last one is refused');
SELECT throws_ok($$INSERT INTO credit.aging_buckets VALUES (-1, 'far ahead', NULL, -30, 'green')$$,
				 '23514', NULL, 'a second bucket without lower bound is refused');
SELECT throws_ok($$DELETE FROM credit.aging_buckets WHERE bucket_no = 2$$,
				 '23514', 'aging buckets leave a gap: days 31..60 are in no bucket',
				 'deleting a middle bucket is refused');
SELECT throws_ok($$DELETE FROM credit.aging_buckets$$,
				 '23514', 'there are no aging buckets', 'deleting all buckets is refused');
SELECT throws_ok($$TRUNCATE credit.aging_buckets$$,
				 '23514', 'there are no aging buckets', 'TRUNCATE is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET label = '1-30' WHERE bucket_no = 2$$,
				 '23505', NULL, 'a duplicate label is refused');
SELECT throws_ok($$UPDATE credit.aging_buckets SET label = ' ' WHERE bucket_no = 2$$,
				 '23514', NULL, 'a blank label is refused');
SELECT results_eq('SELECT * FROM pg_temp.bounds()', 'SELECT * FROM default_bounds',
				  'the refused changes left the buckets as they were');

/* the error names the table and the constraint, with detail and hint */
CREATE FUNCTION pg_temp.error_fields(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s text; t text; c text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS s = SCHEMA_NAME, t = TABLE_NAME, c = CONSTRAINT_NAME,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN concat_ws('|', s, t, c, d, h);
END;
$$;
SELECT is(pg_temp.error_fields($$UPDATE credit.aging_buckets SET max_days = 29 WHERE bucket_no = 1$$),
		  'credit|aging_buckets|aging_buckets_valid|Bucket 1 "1-30" (days 1..29) ends at day 29, bucket 2 "31-60" (days 31..60) starts at day 31.|Each bucket must start the day after the previous one ends.',
		  'the error names schema, table and constraint, and explains the gap');

/* ---------------------------------------------------------------------
 * Custom buckets
 * ------------------------------------------------------------------- */

/* one statement moving a boundary: valid at its end */
SELECT lives_ok($$UPDATE credit.aging_buckets
					 SET max_days = CASE bucket_no WHEN 1 THEN 45 ELSE max_days END,
						 min_days = CASE bucket_no WHEN 2 THEN 46 ELSE min_days END,
						 label = CASE bucket_no WHEN 1 THEN '1-45' WHEN 2 THEN '46-60' ELSE label END
				   WHERE bucket_no IN (1, 2)$$,
				'moving the 30/31 boundary to 45/46 in one statement is accepted');
SELECT is(pg_temp.bucket('K', 'd31', '2026-06-30'), '1-45', 'day 31 is now in 1-45');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('0|not due|green|6|2|0'), ('1|1-45|yellow|56|3|0'),
						   ('2|46-60|yellow|64|1|0'), ('3|61-90|red|384|2|0'),
						   ('4|>90|red|512|1|0')$$,
				  'aging follows the new boundary');

/* several statements: check deferred to the end of the edit */
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid DEFERRED$$, 'the check can be deferred');
SELECT lives_ok($$DELETE FROM credit.aging_buckets$$, 'deferred: all buckets deleted');
SELECT lives_ok($$INSERT INTO credit.aging_buckets (bucket_no, label, min_days, max_days, band) VALUES
					(10, 'due in more than a week', NULL, -8, 'green'),
					(20, 'due within a week', -7, 0, 'green'),
					(30, 'up to 2 weeks late', 1, 14, 'yellow'),
					(40, 'late', 15, NULL, 'red')$$,
				'deferred: a new set of buckets inserted');
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid IMMEDIATE$$,
				'the new set passes the check');
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('K', 'd-8', 1024, '2026-06-01', '2026-07-08'), ('K', 'd-7', 2048, '2026-06-01', '2026-07-07');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('10|due in more than a week|green|1024|1|0'),
						   ('20|due within a week|green|2054|3|0'),
						   ('30|up to 2 weeks late|yellow|8|1|0'),
						   ('40|late|red|1008|6|0')$$,
				  'aging with custom buckets, bucket numbers with gaps and negative days');
SELECT is(pg_temp.bucket('K', 'd-8', '2026-06-30'), 'due in more than a week', 'day -8 in the first custom bucket');
SELECT is(pg_temp.bucket('K', 'd-7', '2026-06-30'), 'due within a week', 'day -7 in the second');
SELECT is(pg_temp.bucket('K', 'd0', '2026-06-30'), 'due within a week', 'day 0 in the second');
SELECT is(pg_temp.bucket('K', 'd1', '2026-06-30'), 'up to 2 weeks late', 'day 1 in the third');
SELECT is((credit.aging_bucket(15)).bucket, 'late', 'aging_bucket(15) is the last bucket');
SELECT is((credit.aging_bucket(-2147483648)).bucket_no, 10, 'aging_bucket of the smallest integer: the first bucket');
SELECT is((credit.aging_bucket(2147483647)).bucket_no, 40, 'aging_bucket of the largest integer: the last bucket');
SELECT set_eq($$SELECT a.customer_key, a.bucket_no, a.amount, a.items FROM credit.aging('2026-06-30') a$$,
			  $$SELECT r.customer_key, b.bucket_no, sum(r.open_amount), count(*)
				  FROM credit.receivables r, credit.receivable_bucket(r, '2026-06-30') b
				 WHERE r.open_amount > 0 AND b.bucket_no IS NOT NULL GROUP BY 1, 2$$,
			  'custom buckets: receivable_bucket agrees with aging');

/* an invalid state inside a deferred edit: aging refuses, commit would too */
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid DEFERRED$$, 'deferred again');
SELECT lives_ok($$DELETE FROM credit.aging_buckets WHERE bucket_no = 30$$,
				'deferred: a gap is accepted for the moment');
SELECT throws_ok($$SELECT * FROM credit.aging('2026-06-30')$$, '23514',
				 'aging buckets leave a gap: days 1..14 are in no bucket',
				 'aging refuses to run on invalid buckets');
SELECT throws_ok($$SET CONSTRAINTS credit.aging_buckets_valid IMMEDIATE$$, '23514',
				 'aging buckets leave a gap: days 1..14 are in no bucket',
				 'the deferred check refuses the gap');
SELECT lives_ok($$UPDATE credit.aging_buckets SET min_days = 1 WHERE bucket_no = 40$$,
				'deferred: the gap closed');
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid IMMEDIATE$$,
				'the repaired buckets pass the check');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('10|due in more than a week|green|1024|1|0'),
						   ('20|due within a week|green|2054|3|0'),
						   ('40|late|red|1016|7|0')$$,
				  'aging with the repaired buckets');

/* a single bucket covering everything */
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid DEFERRED$$, 'deferred once more');
SELECT lives_ok($$DELETE FROM credit.aging_buckets WHERE bucket_no <> 40$$, 'all but one bucket deleted');
SELECT lives_ok($$UPDATE credit.aging_buckets SET min_days = NULL, label = 'all', band = 'green'$$,
				'the last bucket made unbounded');
SELECT lives_ok($$SET CONSTRAINTS credit.aging_buckets_valid IMMEDIATE$$,
				'one unbounded bucket is valid');
SELECT results_eq($$SELECT * FROM pg_temp.aging_of('K', '2026-06-30')$$,
				  $$VALUES ('40|all|green|4094|11|0')$$,
				  'with one bucket, each customer has one row');
SELECT is(pg_temp.bucket('K', 'd91', '2026-06-30'), 'all', 'receivable_bucket with one bucket');

SELECT * FROM finish();
ROLLBACK;
