/*
 * aging.sql: receivables aging: open amounts per customer in day buckets.
 *
 * The age of a receivable as of a date is as_of - due_date (days past due)
 * or, with credit.settings.aging_basis = 'invoice_date', as_of - invoice_date
 * (days since invoicing): exact day counts, so leap days count like any
 * other day.  credit.aging_buckets maps day counts to buckets; its rows must
 * cover every integer exactly once, in bucket_no order: the first bucket has
 * no lower bound, the last no upper bound, and each bucket starts the day
 * after the previous one ends.  A constraint trigger checks the whole table
 * after every change (SQLSTATE 23514): at the end of each statement, or at
 * commit after SET CONSTRAINTS credit.aging_buckets_valid DEFERRED, so that
 * an edit spread over several statements may pass through invalid states.
 * Writers of the table queue on its rows' locks (a BEFORE statement trigger
 * locks them all): the second edit waits for the first to commit, then is
 * checked against the combined result (READ COMMITTED) or fails with 40001
 * (REPEATABLE READ, SERIALIZABLE), so two concurrent edits, each valid on
 * its own, cannot commit an invalid combination.
 *
 * What is aged: every receivable with an open amount (amount - allocated >
 * 0) that exists as of the date (invoice_date <= as_of).  The amounts are
 * today's open amounts: the allocation history is not replayed, so an aging
 * "as of" a past date shows what is still open now, aged as of that date.
 * Paid receivables are left out; disputed ones are counted in their bucket
 * (they are still owed and still count as exposure) and also shown apart
 * (disputed_amount), so a report can leave them out.  Amounts are summed
 * per customer and currency, never across currencies.
 *
 * credit.aging reads the bucket bounds once into an array and finds each
 * receivable's bucket with width_bucket (a binary search) in one GROUP BY
 * over credit.receivables: about the cost of the GROUP BY with CASE buckets
 * a DBA would write (bench/aging_reference.sql).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.aging_buckets (
	bucket_no		integer PRIMARY KEY,
	label			text NOT NULL,
	min_days		integer,
	max_days		integer,
	band			text NOT NULL,
	CONSTRAINT aging_buckets_label_key UNIQUE (label),
	CONSTRAINT aging_buckets_label_check
		CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT aging_buckets_bounds_check
		CHECK (min_days OPERATOR(pg_catalog.<=) max_days),
	CONSTRAINT aging_buckets_band_check
		CHECK (band OPERATOR(pg_catalog.=) ANY ('{green,yellow,red}'::text[]))
);

/*
 * The default buckets.  Everything overdue is at least yellow, so that a
 * dashboard tells "not due" from "a few days late" at a glance; red from 61
 * days.
 */
/* defaults, not on a restore (sql/settings.sql) */
INSERT INTO credit.aging_buckets (bucket_no, label, min_days, max_days, band)
SELECT * FROM (VALUES
	(0, 'not due', NULL::integer, 0, 'green'),
	(1, '1-30', 1, 30, 'yellow'),
	(2, '31-60', 31, 60, 'yellow'),
	(3, '61-90', 61, 90, 'red'),
	(4, '>90', 91, NULL, 'red')) v
 WHERE pg_catalog.current_setting('row_security')::boolean;

COMMENT ON TABLE credit.aging_buckets IS
'Aging buckets: day ranges, in bucket_no order, that together cover every day count exactly once (first bucket without lower bound, last without upper bound, no gaps, no overlaps). Checked after each statement; SET CONSTRAINTS credit.aging_buckets_valid DEFERRED to check at commit instead.';
COMMENT ON COLUMN credit.aging_buckets.bucket_no IS 'Order of the buckets: ascending bucket_no means ascending days.';
COMMENT ON COLUMN credit.aging_buckets.label IS 'Name of the bucket in reports, unique.';
COMMENT ON COLUMN credit.aging_buckets.min_days IS
'First day count in the bucket (NULL: no lower bound, only for the first bucket). Days are as_of - due_date, or as_of - invoice_date (credit.settings.aging_basis).';
COMMENT ON COLUMN credit.aging_buckets.max_days IS 'Last day count in the bucket, inclusive (NULL: no upper bound, only for the last bucket).';
COMMENT ON COLUMN credit.aging_buckets.band IS 'Colour for dashboards: green, yellow or red.';

SELECT pg_catalog.pg_extension_config_dump('credit.aging_buckets', '');

/*
 * The whole-table rule.  Raises 23514 naming one problem, in this order:
 * no buckets; two buckets out of order (one starts before the previous one
 * starts); an overlap; a gap (below the first bucket, between two, above the
 * last).  Out of order comes first, so that two swapped buckets are named
 * as such and not as the gap or overlap that follows from the swap.
 */
CREATE FUNCTION credit.aging_buckets_check()
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b		record;
	prev	record;
	first	record;
	n		integer := 0;
	disorder text;				/* first problem of each kind, in bucket_no order */
	overlap	text;
	gap		text;
	gap_detail text;
	problem	text;
	detail	text;
	hint	text;
BEGIN
	FOR b IN
		SELECT x.bucket_no, x.label, x.min_days, x.max_days,
			   pg_catalog.format('%s "%s" (days %s)', x.bucket_no, x.label,
								 pg_catalog.concat(x.min_days, '..', x.max_days)) AS name
		  FROM credit.aging_buckets x
		 ORDER BY x.bucket_no
	LOOP
		n := n OPERATOR(pg_catalog.+) 1;
		IF n OPERATOR(pg_catalog.=) 1 THEN
			first := b;
		ELSIF (b.min_days IS NULL AND prev.min_days IS NOT NULL)
			  OR b.min_days OPERATOR(pg_catalog.<) prev.min_days THEN
			/* starts before the previous bucket starts (NULL: minus infinity) */
			disorder := COALESCE(disorder,
				pg_catalog.format('aging buckets out of order: bucket %s comes before bucket %s',
								  b.name, prev.name));
		ELSIF prev.max_days IS NULL OR b.min_days IS NULL
			  OR b.min_days OPERATOR(pg_catalog.<=) prev.max_days THEN
			overlap := COALESCE(overlap,
				pg_catalog.format('aging buckets overlap: bucket %s and bucket %s',
								  prev.name, b.name));
		ELSIF gap IS NULL
			  AND b.min_days::bigint OPERATOR(pg_catalog.>) (prev.max_days::bigint OPERATOR(pg_catalog.+) 1) THEN
			gap := pg_catalog.format('aging buckets leave a gap: days %s..%s are in no bucket',
									 prev.max_days::bigint OPERATOR(pg_catalog.+) 1,
									 b.min_days::bigint OPERATOR(pg_catalog.-) 1);
			gap_detail := pg_catalog.format('Bucket %s ends at day %s, bucket %s starts at day %s.',
											prev.name, prev.max_days, b.name, b.min_days);
		END IF;
		prev := b;
	END LOOP;

	IF n OPERATOR(pg_catalog.=) 0 THEN
		problem := 'there are no aging buckets';
		detail := 'Every day count must fall into exactly one bucket.';
		hint := 'Insert at least one bucket without bounds; to replace all buckets, delete and insert in one transaction after SET CONSTRAINTS credit.aging_buckets_valid DEFERRED.';
	ELSIF disorder IS NOT NULL THEN
		problem := disorder;
		detail := 'Ascending bucket_no must mean ascending days.';
		hint := 'Number the buckets in the order of their days.';
	ELSIF overlap IS NOT NULL THEN
		problem := overlap;
		detail := 'Every day count must fall into exactly one bucket.';
		hint := 'Each bucket must start the day after the previous one ends.';
	ELSIF first.min_days IS NOT NULL THEN
		problem := pg_catalog.format('aging buckets leave a gap: days below %s are in no bucket',
									 first.min_days);
		detail := pg_catalog.format('The first bucket, %s, starts at day %s.', first.name, first.min_days);
		hint := 'Give the first bucket no lower bound (min_days NULL).';
	ELSIF gap IS NOT NULL THEN
		problem := gap;
		detail := gap_detail;
		hint := 'Each bucket must start the day after the previous one ends.';
	ELSIF prev.max_days IS NOT NULL THEN
		problem := pg_catalog.format('aging buckets leave a gap: days above %s are in no bucket',
									 prev.max_days);
		detail := pg_catalog.format('The last bucket, %s, ends at day %s.', prev.name, prev.max_days);
		hint := 'Give the last bucket no upper bound (max_days NULL).';
	END IF;
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION '%', problem
			USING ERRCODE = '23514', DETAIL = detail, HINT = hint,
				  SCHEMA = 'credit', TABLE = 'aging_buckets',
				  CONSTRAINT = 'aging_buckets_valid';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.aging_buckets_check() IS
'Raises 23514 unless credit.aging_buckets covers every day count exactly once, in bucket_no order.';

CREATE FUNCTION credit.aging_buckets_validate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM credit.aging_buckets_check();
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.aging_buckets_validate() IS
'Trigger on credit.aging_buckets: checks the whole table (credit.aging_buckets_check) after a change.';

/*
 * A constraint trigger is row-level in PostgreSQL: it runs once per changed
 * row, at the end of the statement (or at commit when deferred), and each
 * run checks the whole table; the table has a handful of rows.  TRUNCATE
 * leaves no buckets, which is never valid.
 */
CREATE CONSTRAINT TRIGGER aging_buckets_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.aging_buckets
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.aging_buckets_validate();
CREATE TRIGGER aging_buckets_truncate
	AFTER TRUNCATE ON credit.aging_buckets
	FOR EACH STATEMENT EXECUTE FUNCTION credit.aging_buckets_validate();

/*
 * Before any change, lock every bucket row: a second editing transaction
 * waits here until the first commits, then (READ COMMITTED) checks the
 * combined result; at REPEATABLE READ it gets 40001 if the first changed a
 * row (every change of the bounds changes at least one existing row).
 */
CREATE FUNCTION credit.aging_buckets_lock()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM 1 FROM credit.aging_buckets x ORDER BY x.bucket_no FOR UPDATE;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.aging_buckets_lock() IS
'Trigger on credit.aging_buckets: serializes edits of the buckets by locking all their rows first.';

CREATE TRIGGER aging_buckets_lock
	BEFORE INSERT OR UPDATE OR DELETE ON credit.aging_buckets
	FOR EACH STATEMENT EXECUTE FUNCTION credit.aging_buckets_lock();

/*
 * The bucket of a day count.  Plain lookup, no validation (the table is
 * valid outside an edit in progress), so it is cheap enough per row.
 */
CREATE FUNCTION credit.aging_bucket(days integer,
									OUT bucket_no integer, OUT bucket text, OUT band text)
RETURNS record
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b.bucket_no, b.label, b.band
	  FROM credit.aging_buckets b
	 WHERE (b.min_days IS NULL OR b.min_days OPERATOR(pg_catalog.<=) days)
	   AND (b.max_days IS NULL OR b.max_days OPERATOR(pg_catalog.>=) days)
	 ORDER BY b.bucket_no
	 LIMIT 1
$$;

COMMENT ON FUNCTION credit.aging_bucket(integer) IS
'The aging bucket (number, label, band) that a day count falls into.';

/*
 * The bucket of one receivable as of a date: by the row, or by its id.
 * All fields NULL when the receivable does not exist (yet) as of that date
 * (invoice_date > as_of) or there is no such id.  A paid receivable still
 * has an age and a bucket, but credit.aging leaves it out.  The row form is
 * one query without nested function calls (about 8 microseconds a row when
 * listing many receivables: FROM credit.receivables r, receivable_bucket(r)).
 */
CREATE FUNCTION credit.receivable_bucket(receivable credit.receivables,
										 as_of date DEFAULT CURRENT_DATE,
										 OUT bucket_no integer, OUT bucket text,
										 OUT band text, OUT days integer)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b.bucket_no, b.label, b.band, d.days
	  FROM (SELECT as_of OPERATOR(pg_catalog.-)
				   CASE WHEN (SELECT s.aging_basis FROM credit.settings s)
							 OPERATOR(pg_catalog.=) 'invoice_date'
						THEN (receivable).invoice_date
						ELSE (receivable).due_date END AS days) d
	  JOIN credit.aging_buckets b
		ON (b.min_days IS NULL OR b.min_days OPERATOR(pg_catalog.<=) d.days)
	   AND (b.max_days IS NULL OR b.max_days OPERATOR(pg_catalog.>=) d.days)
	 WHERE (receivable).invoice_date OPERATOR(pg_catalog.<=) as_of
	 ORDER BY b.bucket_no
	 LIMIT 1
$$;

COMMENT ON FUNCTION credit.receivable_bucket(credit.receivables, date) IS
'The aging bucket of a receivable as of a date (default today): bucket number, label, band, and its age in days; NULLs if it was not yet invoiced then.';

CREATE FUNCTION credit.receivable_bucket(receivable_id bigint,
										 as_of date DEFAULT CURRENT_DATE,
										 OUT bucket_no integer, OUT bucket text,
										 OUT band text, OUT days integer)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b.bucket_no, b.bucket, b.band, b.days
	  FROM credit.receivables r
	 CROSS JOIN LATERAL credit.receivable_bucket(r, as_of) b
	 WHERE r.receivable_id OPERATOR(pg_catalog.=) receivable_bucket.receivable_id
$$;

COMMENT ON FUNCTION credit.receivable_bucket(bigint, date) IS
'The aging bucket of the receivable with this receivable_id as of a date (default today); NULLs if there is no such receivable or it was not yet invoiced then.';

/*
 * What credit.aging and credit.aging_summary need from the configuration,
 * read once per call: the buckets in order as arrays, and the basis.  Checks
 * the buckets first, so that a deferred edit in progress that left them
 * invalid cannot produce a wrong report.  lower_bounds holds min_days of the
 * 2nd, 3rd, ... bucket: width_bucket(days, lower_bounds) is then 0 for the
 * first bucket, 1 for the second, and so on (a binary search).
 */
CREATE FUNCTION credit.aging_config(OUT lower_bounds integer[], OUT bucket_nos integer[],
									OUT labels text[], OUT bands text[],
									OUT by_invoice_date boolean)
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM credit.aging_buckets_check();
	SELECT COALESCE(pg_catalog.array_agg(b.min_days ORDER BY b.bucket_no)
					FILTER (WHERE b.min_days IS NOT NULL), '{}'),
		   pg_catalog.array_agg(b.bucket_no ORDER BY b.bucket_no),
		   pg_catalog.array_agg(b.label ORDER BY b.bucket_no),
		   pg_catalog.array_agg(b.band ORDER BY b.bucket_no)
	  INTO lower_bounds, bucket_nos, labels, bands
	  FROM credit.aging_buckets b;
	by_invoice_date := COALESCE((SELECT s.aging_basis OPERATOR(pg_catalog.=) 'invoice_date'
								   FROM credit.settings s), false);
END;
$$;

COMMENT ON FUNCTION credit.aging_config() IS
'Internal to credit.aging and credit.aging_summary: the checked bucket configuration as arrays in bucket order, and whether aging goes by invoice date.';

/*
 * credit.aging: one row per customer, currency and non-empty bucket (long
 * format, for BI tools), in no particular order.  One GROUP BY over the
 * open receivables; plan_cache_mode = force_custom_plan plans it for the
 * actual date and bounds on every call, as the hand-written query would be
 * (a generic plan would guess the share of receivables invoiced by as_of).
 */
CREATE FUNCTION credit.aging(as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (customer_key text, currency text, bucket_no integer, bucket text,
			   band text, amount numeric, items bigint, disputed_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
	cfg		record;
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO cfg FROM credit.aging_config() c;

	RETURN QUERY
	SELECT g.customer_key, g.currency, cfg.bucket_nos[g.i OPERATOR(pg_catalog.+) 1],
		   cfg.labels[g.i OPERATOR(pg_catalog.+) 1], cfg.bands[g.i OPERATOR(pg_catalog.+) 1],
		   g.amount, g.items, g.disputed_amount
	  FROM (SELECT r.customer_key, r.currency,
				   pg_catalog.width_bucket(as_of OPERATOR(pg_catalog.-)
										   CASE WHEN cfg.by_invoice_date THEN r.invoice_date
												ELSE r.due_date END,
										   cfg.lower_bounds) AS i,
				   pg_catalog.sum(r.open_amount) AS amount,
				   pg_catalog.count(*) AS items,
				   COALESCE(pg_catalog.sum(r.open_amount) FILTER (WHERE r.disputed), 0)
					   AS disputed_amount
			  FROM credit.receivables r
			 WHERE r.open_amount OPERATOR(pg_catalog.>) 0
			   AND r.invoice_date OPERATOR(pg_catalog.<=) as_of
			 GROUP BY 1, 2, 3) g;
END;
$$;

COMMENT ON FUNCTION credit.aging(date) IS
'Receivables aging as of a date (default today): per customer, currency and non-empty bucket, the open amount, the number of receivables, and the disputed part of the amount. Receivables invoiced after as_of and paid ones are left out; amounts are current open amounts.';

/*
 * credit.aging_summary: one row per customer and currency, for dashboards,
 * from the same single pass.  not_due and overdue go by the due date
 * whatever the aging basis: not due while due_date >= as_of.  The worst
 * bucket is the last non-empty one in bucket order.
 */
CREATE FUNCTION credit.aging_summary(as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (customer_key text, currency text, total numeric, not_due numeric,
			   overdue numeric, disputed_amount numeric, items bigint,
			   worst_bucket_no integer, worst_bucket text, worst_band text,
			   buckets jsonb)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
	cfg		record;
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO cfg FROM credit.aging_config() c;

	RETURN QUERY
	SELECT g.customer_key, g.currency,
		   pg_catalog.sum(g.amount),
		   pg_catalog.sum(g.not_due),
		   pg_catalog.sum(g.amount) OPERATOR(pg_catalog.-) pg_catalog.sum(g.not_due),
		   pg_catalog.sum(g.disputed_amount),
		   pg_catalog.sum(g.items)::bigint,
		   cfg.bucket_nos[pg_catalog.max(g.i) OPERATOR(pg_catalog.+) 1],
		   cfg.labels[pg_catalog.max(g.i) OPERATOR(pg_catalog.+) 1],
		   cfg.bands[pg_catalog.max(g.i) OPERATOR(pg_catalog.+) 1],
		   pg_catalog.jsonb_object_agg(cfg.labels[g.i OPERATOR(pg_catalog.+) 1], g.amount)
	  FROM (SELECT r.customer_key, r.currency,
				   pg_catalog.width_bucket(as_of OPERATOR(pg_catalog.-)
										   CASE WHEN cfg.by_invoice_date THEN r.invoice_date
												ELSE r.due_date END,
										   cfg.lower_bounds) AS i,
				   pg_catalog.sum(r.open_amount) AS amount,
				   pg_catalog.count(*) AS items,
				   COALESCE(pg_catalog.sum(r.open_amount) FILTER (WHERE r.disputed), 0)
					   AS disputed_amount,
				   COALESCE(pg_catalog.sum(r.open_amount)
							FILTER (WHERE r.due_date OPERATOR(pg_catalog.>=) as_of), 0)
					   AS not_due
			  FROM credit.receivables r
			 WHERE r.open_amount OPERATOR(pg_catalog.>) 0
			   AND r.invoice_date OPERATOR(pg_catalog.<=) as_of
			 GROUP BY 1, 2, 3) g
	 GROUP BY 1, 2;
END;
$$;

COMMENT ON FUNCTION credit.aging_summary(date) IS
'Receivables aging as of a date (default today), one row per customer and currency: total open amount, not due (due_date >= as_of) and overdue parts, disputed part, number of receivables, the last non-empty bucket with its band, and the amount per bucket label as jsonb.';
