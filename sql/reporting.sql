/*
 * reporting.sql: the views BI tools read (see README "For BI tools"), and
 * the daily exposure snapshot the utilization trend is computed from.
 *
 * Every view is named credit.report_<subject>, is created WITH
 * (security_invoker = true), so the row-level security of the tables it
 * reads applies to the querying role (a member of credit_sales sees only
 * the customers it owns, ranks and totals included), and has a comment on
 * each column defining its figure.  Names and types are a stable interface:
 * columns are only ever added at the end.
 *
 *   report_receivables_health      one row per currency: open, overdue,
 *                                  collected this month, collection rate
 *   report_aging                   one row per currency and configured
 *                                  bucket (empty buckets included)
 *   report_top_overdue             customers with overdue receivables,
 *                                  ranked per currency (filter overdue_rank)
 *   report_grade_distribution      one row per currency and grade (active
 *                                  scorecard's grades, other grades in use,
 *                                  and ungraded): customers, receivables
 *   report_collection_by_salesperson  one row per owner, region, currency
 *   report_overdue_trend           12 months x currency: amount that fell
 *                                  overdue in the month
 *   report_utilization             one row per account: utilization, watch
 *                                  list, 30-day trend and 7-day forecast,
 *                                  grade average
 *   report_approval_deadlines      one row per pending approval step
 *   report_customer_360            one row per account: everything at once
 *
 * Dates.  "Today" is CURRENT_DATE and "this month" the calendar month of
 * CURRENT_DATE (from its first day up to and including today), both in the
 * session's TimeZone; approval deadlines are compared with now().  Money
 * is never summed across currencies: views that sum receivables have a
 * currency column, taken from the documents (the ledger makes them match
 * the account's currency); views per salesperson or grade use the
 * account's currency.  Overdue means open with due_date < today, as in
 * credit.aging_summary (due today is not yet overdue).  Ratios are rounded
 * to 4 decimal places (comparisons with thresholds use the exact value)
 * and are NULL where their denominator is 0.
 *
 * Cost.  Each view is one set-based query: the ledger is aggregated per
 * customer (or currency) with hash aggregates and joined, never a
 * subquery per row; on 100,000 customers and 1,000,000 receivables every
 * full view reads in well under 2 s (bench/reporting.sh).  A condition on
 * customer_key given to report_customer_360 is pushed down into each
 * aggregate (they are grouped by customer_key), so one customer's row
 * takes milliseconds through the indexes on customer_key.
 *
 * Exposure history.  credit.exposure_snapshots keeps each account's
 * exposure and effective limit once a day, written by
 * credit.snapshot_exposure(), for instance from pg_cron:
 *	  SELECT cron.schedule('credit-snapshot', '55 23 * * *',
 *						   'SELECT credit.snapshot_exposure()');
 * Each run also fits a least-squares line (regr_slope) through the
 * customer's snapshots of the 30 days ending with that day and stores its
 * slope; report_utilization reads the latest day's rows to forecast the
 * exposure 7 days ahead.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

/* ---------------------------------------------------------------------
 * Exposure snapshots
 * ------------------------------------------------------------------- */

CREATE TABLE credit.exposure_snapshots (
	/*
	 * no foreign key to credit.accounts: history outlives a deleted account,
	 * and the daily insert of every account skips as many RI checks
	 */
	snapshot_on		date NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	currency		text NOT NULL,
	exposure		numeric NOT NULL,
	effective_limit	numeric NOT NULL,
	status			text NOT NULL,
	trend_days		integer,
	trend_per_day	numeric,
	taken_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (snapshot_on, customer_key),
	CONSTRAINT exposure_snapshots_date_check CHECK (pg_catalog.isfinite(snapshot_on))
);
CREATE INDEX exposure_snapshots_customer_idx
	ON credit.exposure_snapshots (customer_key, snapshot_on);

COMMENT ON TABLE credit.exposure_snapshots IS
'Each account''s exposure and effective limit once a day, and the exposure trend fitted through its last 30 days, written by credit.snapshot_exposure (schedule it daily, for example with pg_cron).';
COMMENT ON COLUMN credit.exposure_snapshots.snapshot_on IS 'The day the snapshot stands for (the as_of of credit.snapshot_exposure).';
COMMENT ON COLUMN credit.exposure_snapshots.customer_key IS 'The account''s customer key.';
COMMENT ON COLUMN credit.exposure_snapshots.currency IS 'The account''s currency at the time of the snapshot.';
COMMENT ON COLUMN credit.exposure_snapshots.exposure IS 'credit.accounts.exposure when the snapshot was taken.';
COMMENT ON COLUMN credit.exposure_snapshots.effective_limit IS 'credit.effective_limit(account) when the snapshot was taken (temporary limit included while in force).';
COMMENT ON COLUMN credit.exposure_snapshots.status IS 'The account''s credit status when the snapshot was taken.';
COMMENT ON COLUMN credit.exposure_snapshots.trend_days IS 'Number of the customer''s snapshots in the 30 days ending with snapshot_on (snapshot_on - 29 .. snapshot_on, this one included) that trend_per_day was fitted through.';
COMMENT ON COLUMN credit.exposure_snapshots.trend_per_day IS 'Least-squares slope of exposure over the day numbers of those snapshots (regr_slope): change of exposure per day; NULL with fewer than 2 of them.';
COMMENT ON COLUMN credit.exposure_snapshots.taken_at IS 'When the snapshot was taken (now() of the transaction that wrote it).';

SELECT pg_catalog.pg_extension_config_dump('credit.exposure_snapshots', '');

/*
 * One row per account for the day as_of, replacing that day's rows (a
 * scheduler retrying the same day rewrites them).  The values are the
 * accounts' as they are now, whatever as_of says.  Each row also gets the
 * trend: regr_slope of exposure over the day number through the
 * customer's snapshots of as_of - 29 .. as_of (the new one included), so
 * reports read one row per customer instead of fitting 30 days of rows on
 * every query (one GROUP BY over 30 days of snapshots, once a day).  Runs serialize on a
 * transaction-level advisory lock (key 7165901439040225284: "credit"
 * followed by 0004) and must run at READ COMMITTED, so that a run which
 * waited for another sees the other's rows and replaces them instead of
 * failing on the primary key.  Under row-level security a caller sees (and
 * so snapshots and replaces) only the accounts it may see: schedule it as
 * a role that sees them all.
 */
CREATE FUNCTION credit.snapshot_exposure(as_of date DEFAULT CURRENT_DATE)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n		bigint;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of must be a finite date, not %', COALESCE(as_of::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
		RAISE EXCEPTION 'credit.snapshot_exposure must run at READ COMMITTED'
			USING ERRCODE = '25000',
				  HINT = 'A run that waited for a concurrent run of the same day must see its rows to replace them.';
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225284);
	DELETE FROM credit.exposure_snapshots s
	 WHERE s.snapshot_on OPERATOR(pg_catalog.=) as_of;
	INSERT INTO credit.exposure_snapshots (snapshot_on, customer_key, currency, exposure,
										   effective_limit, status, trend_days, trend_per_day)
	WITH points AS (
		SELECT h.customer_key, (h.snapshot_on OPERATOR(pg_catalog.-) as_of)::float8 AS x,
			   h.exposure::float8 AS y
		  FROM credit.exposure_snapshots h
		 WHERE h.snapshot_on OPERATOR(pg_catalog.>) (as_of OPERATOR(pg_catalog.-) 30)
		   AND h.snapshot_on OPERATOR(pg_catalog.<) as_of
		UNION ALL
		SELECT a.customer_key, 0::float8, credit.live_exposure(a.customer_key, a.exposure)::float8
		  FROM credit.accounts a
	), trend AS (
		SELECT p.customer_key, pg_catalog.count(*) AS n, pg_catalog.regr_slope(p.y, p.x) AS slope
		  FROM points p
		 GROUP BY p.customer_key
	)
	SELECT as_of, a.customer_key, a.currency, credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a),
		   a.status,
		   t.n, t.slope::numeric
	  FROM credit.accounts a
	  LEFT JOIN trend t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

COMMENT ON FUNCTION credit.snapshot_exposure(date) IS
'Writes every account''s current exposure, effective limit and status, and its exposure trend over the 30 days ending with as_of (regr_slope through its snapshots), into credit.exposure_snapshots under the date as_of (default today), replacing that day''s rows; returns the number of rows written. Schedule daily (pg_cron); needs READ COMMITTED (25000).';

/* ---------------------------------------------------------------------
 * Aggregates for one-pass reads (C: src/reporting.c)
 *
 * credit.aging_json(bucket, amount, labels): {label: sum} over every
 * label, 0 where empty; bucket i is labels[i + 1].  credit.sum_on_last(day,
 * amount): the sum of the amounts of the group's latest day.  Their support
 * functions resolve no names and run once per row: they do not SET
 * search_path, which would cost a configuration save and restore per row
 * (measured: 1.6 s -> 2.6-3.3 s for report_customer_360 on 100,000
 * customers); the aggregates themselves are what callers execute.
 * ------------------------------------------------------------------- */

CREATE FUNCTION credit.aging_json_step(internal, integer, numeric, text[])
RETURNS internal
AS 'MODULE_PATHNAME', 'credit_aging_json_step'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION credit.aging_json_final(internal)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'credit_aging_json_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE credit.aging_json(bucket integer, amount numeric, labels text[]) (
	SFUNC = credit.aging_json_step,
	STYPE = internal,
	SSPACE = 160,
	FINALFUNC = credit.aging_json_final
);

COMMENT ON FUNCTION credit.aging_json_step(internal, integer, numeric, text[]) IS
'Transition function of credit.aging_json.';
COMMENT ON FUNCTION credit.aging_json_final(internal) IS 'Final function of credit.aging_json.';
COMMENT ON AGGREGATE credit.aging_json(integer, numeric, text[]) IS
'Sums amount per aging bucket (bucket i is labels[i + 1], as width_bucket over the buckets'' lower bounds numbers them; NULL bucket or amount: skipped) and returns {label: sum} with every label (0 when empty). 22023 for a bucket outside the labels.';

CREATE FUNCTION credit.sum_on_last_step(internal, date, numeric)
RETURNS internal
AS 'MODULE_PATHNAME', 'credit_sum_on_last_step'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION credit.sum_on_last_final(internal)
RETURNS numeric
AS 'MODULE_PATHNAME', 'credit_sum_on_last_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE credit.sum_on_last(day date, amount numeric) (
	SFUNC = credit.sum_on_last_step,
	STYPE = internal,
	SSPACE = 48,
	FINALFUNC = credit.sum_on_last_final
);

COMMENT ON FUNCTION credit.sum_on_last_step(internal, date, numeric) IS
'Transition function of credit.sum_on_last.';
COMMENT ON FUNCTION credit.sum_on_last_final(internal) IS 'Final function of credit.sum_on_last.';
COMMENT ON AGGREGATE credit.sum_on_last(date, numeric) IS
'The sum of amount over the rows of the latest day in the group (rows with a NULL day or amount skipped): with max(day), the last payment date and what was paid on it.';

/*
 * Each account's own exposure: its exposure without its descendants'
 * (which they count themselves).  Reports that sum exposure over accounts
 * sum this, so a group's members are not counted twice.
 */
CREATE VIEW credit.own_exposure WITH (security_invoker = true) AS
SELECT a.customer_key,
	   credit.live_exposure(a.customer_key, a.exposure) OPERATOR(pg_catalog.-) COALESCE(ch.exposure, 0)
		   AS own_exposure
  FROM credit.accounts a
  LEFT JOIN (SELECT c.parent_key,
					pg_catalog.sum(credit.live_exposure(c.customer_key, c.exposure)) AS exposure
			   FROM credit.accounts c
			  WHERE c.parent_key IS NOT NULL
			  GROUP BY c.parent_key) ch
	ON ch.parent_key OPERATOR(pg_catalog.=) a.customer_key;

COMMENT ON VIEW credit.own_exposure IS
'Each account''s own exposure: credit.accounts.exposure less that of its children (whose exposure includes theirs). Summed over accounts it gives the total without counting a group''s members twice.';
COMMENT ON COLUMN credit.own_exposure.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.own_exposure.own_exposure IS 'exposure minus the sum of the children''s exposure.';

/*
 * What was collected this month, per customer and currency: the one
 * definition report_receivables_health and report_collection_by_salesperson
 * both sum (collected = payments allocated this month, credited = credit
 * notes allocated this month; this month = the calendar month of
 * CURRENT_DATE up to today).
 */
CREATE VIEW credit.collections_this_month WITH (security_invoker = true) AS
SELECT l.customer_key,
	   p.currency,
	   COALESCE(pg_catalog.sum(l.amount) FILTER (WHERE p.kind OPERATOR(pg_catalog.=) 'payment'), 0)
		   AS collected,
	   COALESCE(pg_catalog.sum(l.amount) FILTER (WHERE p.kind OPERATOR(pg_catalog.=) 'credit_note'), 0)
		   AS credited
  FROM credit.allocations l
  JOIN credit.payments p ON p.payment_id OPERATOR(pg_catalog.=) l.payment_id
 WHERE l.allocated_on OPERATOR(pg_catalog.>=)
		   pg_catalog.date_trunc('month', CURRENT_DATE::pg_catalog.timestamp)::date
   AND l.allocated_on OPERATOR(pg_catalog.<=) CURRENT_DATE
 GROUP BY l.customer_key, p.currency;

COMMENT ON VIEW credit.collections_this_month IS
'Allocations made this month (the calendar month of CURRENT_DATE, session time zone, up to today), per customer and currency: what the collection rates of the reports count as collected.';
COMMENT ON COLUMN credit.collections_this_month.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.collections_this_month.currency IS 'Currency of the payments and credit notes.';
COMMENT ON COLUMN credit.collections_this_month.collected IS 'Payments (kind payment) allocated to the customer''s invoices this month.';
COMMENT ON COLUMN credit.collections_this_month.credited IS 'Credit notes allocated to the customer''s invoices this month.';

/* ---------------------------------------------------------------------
 * 1. Receivables health
 * ------------------------------------------------------------------- */

CREATE VIEW credit.report_receivables_health WITH (security_invoker = true) AS
WITH per_customer AS (
	SELECT r.currency, r.customer_key,
		   pg_catalog.count(*) AS items,
		   pg_catalog.sum(r.open_amount) AS open_amount,
		   pg_catalog.count(*) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS overdue_items,
		   pg_catalog.sum(r.open_amount) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS overdue_amount,
		   pg_catalog.sum(r.open_amount) FILTER (WHERE r.disputed) AS disputed_amount
	  FROM credit.receivables r
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	 GROUP BY r.currency, r.customer_key
), open_r AS (
	SELECT o.currency,
		   pg_catalog.count(*) AS customers_open,
		   pg_catalog.count(o.overdue_amount) AS customers_overdue,
		   pg_catalog.sum(o.items)::bigint AS open_items,
		   pg_catalog.sum(o.open_amount) AS open_amount,
		   pg_catalog.sum(o.overdue_items)::bigint AS overdue_items,
		   pg_catalog.sum(o.overdue_amount) AS overdue_amount,
		   pg_catalog.sum(o.disputed_amount) AS disputed_amount
	  FROM per_customer o
	 GROUP BY o.currency
), coll AS (
	SELECT m.currency, pg_catalog.sum(m.collected) AS collected, pg_catalog.sum(m.credited) AS credited
	  FROM credit.collections_this_month m
	 GROUP BY m.currency
), cash AS (
	SELECT p.currency,
		   pg_catalog.sum(p.amount)
			   FILTER (WHERE p.kind OPERATOR(pg_catalog.=) 'payment'
						 AND p.received_on OPERATOR(pg_catalog.>=)
							 pg_catalog.date_trunc('month', CURRENT_DATE::pg_catalog.timestamp)::date
						 AND p.received_on OPERATOR(pg_catalog.<=) CURRENT_DATE) AS received,
		   pg_catalog.sum(p.unallocated) AS unallocated
	  FROM credit.payments p
	 GROUP BY p.currency
), cur AS (
	SELECT a.currency FROM credit.accounts a
	UNION SELECT o.currency FROM open_r o
	UNION SELECT c.currency FROM coll c
	UNION SELECT c.currency FROM cash c
)
SELECT cur.currency,
	   CURRENT_DATE AS as_of,
	   pg_catalog.date_trunc('month', CURRENT_DATE::pg_catalog.timestamp)::date AS month_start,
	   COALESCE(o.customers_open, 0) AS customers_open,
	   COALESCE(o.open_items, 0) AS open_items,
	   COALESCE(o.open_amount, 0) AS open_amount,
	   COALESCE(o.customers_overdue, 0) AS customers_overdue,
	   COALESCE(o.overdue_items, 0) AS overdue_items,
	   COALESCE(o.overdue_amount, 0) AS overdue_amount,
	   pg_catalog.round(o.overdue_amount OPERATOR(pg_catalog./)
						NULLIF(o.open_amount, 0), 4) AS overdue_share,
	   COALESCE(o.disputed_amount, 0) AS disputed_amount,
	   COALESCE(c.collected, 0) AS collected_this_month,
	   COALESCE(c.credited, 0) AS credited_this_month,
	   COALESCE(k.received, 0) AS received_this_month,
	   COALESCE(k.unallocated, 0) AS unallocated_payments,
	   pg_catalog.round(COALESCE(c.collected, 0) OPERATOR(pg_catalog./)
						NULLIF(COALESCE(c.collected, 0) OPERATOR(pg_catalog.+)
							   COALESCE(o.open_amount, 0), 0), 4) AS collection_rate
  FROM cur
  LEFT JOIN open_r o ON o.currency OPERATOR(pg_catalog.=) cur.currency
  LEFT JOIN coll c ON c.currency OPERATOR(pg_catalog.=) cur.currency
  LEFT JOIN cash k ON k.currency OPERATOR(pg_catalog.=) cur.currency;

COMMENT ON VIEW credit.report_receivables_health IS
'Receivables health, one row per currency (of any account or document): what is open and overdue now, what was collected this month, and the collection rate. Today = CURRENT_DATE, this month = its calendar month up to today, in the session time zone.';
COMMENT ON COLUMN credit.report_receivables_health.currency IS 'Currency of the figures (never summed across currencies).';
COMMENT ON COLUMN credit.report_receivables_health.as_of IS 'Today: CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_receivables_health.month_start IS 'First day of the current month (of CURRENT_DATE).';
COMMENT ON COLUMN credit.report_receivables_health.customers_open IS 'Customers with at least one open receivable (open_amount > 0).';
COMMENT ON COLUMN credit.report_receivables_health.open_items IS 'Number of open receivables (open_amount > 0).';
COMMENT ON COLUMN credit.report_receivables_health.open_amount IS 'Total receivables open now: sum of open_amount (amount - allocated) of all open receivables, whatever their dates (receivables invoiced after today included, as in exposure).';
COMMENT ON COLUMN credit.report_receivables_health.customers_overdue IS 'Customers with at least one overdue receivable.';
COMMENT ON COLUMN credit.report_receivables_health.overdue_items IS 'Number of overdue receivables: open with due_date < today.';
COMMENT ON COLUMN credit.report_receivables_health.overdue_amount IS 'Open amount of the overdue receivables (due_date < today; due today is not overdue).';
COMMENT ON COLUMN credit.report_receivables_health.overdue_share IS 'overdue_amount / open_amount, rounded to 4 places; NULL when nothing is open.';
COMMENT ON COLUMN credit.report_receivables_health.disputed_amount IS 'Open amount of disputed receivables (part of open_amount).';
COMMENT ON COLUMN credit.report_receivables_health.collected_this_month IS 'Collected this month: sum of allocations of payments (kind payment, not credit notes) to receivables with allocated_on from the first of this month to today inclusive.';
COMMENT ON COLUMN credit.report_receivables_health.credited_this_month IS 'Sum of allocations of credit notes with allocated_on this month (settled without cash; not in collected_this_month).';
COMMENT ON COLUMN credit.report_receivables_health.received_this_month IS 'Cash received this month: sum of amount of payments (kind payment) with received_on from the first of this month to today, allocated or not.';
COMMENT ON COLUMN credit.report_receivables_health.unallocated_payments IS 'Sum of unallocated of all payments and credit notes now (received but not yet applied to invoices; lowers exposure).';
COMMENT ON COLUMN credit.report_receivables_health.collection_rate IS 'collected_this_month / (collected_this_month + open_amount): the share of what was owed this month (collected since the first, or still open now) that has been collected; rounded to 4 places; NULL when both are 0.';

/* ---------------------------------------------------------------------
 * 2. Aging structure
 * ------------------------------------------------------------------- */

/*
 * The same rules as credit.aging(CURRENT_DATE) (checked buckets, aging
 * basis, width_bucket over the lower bounds, receivables invoiced after
 * today and paid ones left out), summed per currency and bucket instead of
 * per customer; every configured bucket appears for every currency.
 */
CREATE VIEW credit.report_aging WITH (security_invoker = true) AS
WITH cfg AS MATERIALIZED (
	SELECT c.lower_bounds, c.bucket_nos, c.by_invoice_date FROM credit.aging_config() c
), per_customer AS (
	SELECT r.currency, r.customer_key,
		   cfg.bucket_nos[pg_catalog.width_bucket(
				CURRENT_DATE OPERATOR(pg_catalog.-)
				CASE WHEN cfg.by_invoice_date THEN r.invoice_date ELSE r.due_date END,
				cfg.lower_bounds) OPERATOR(pg_catalog.+) 1] AS bucket_no,
		   pg_catalog.sum(r.open_amount) AS amount,
		   pg_catalog.count(*) AS items,
		   pg_catalog.sum(r.open_amount) FILTER (WHERE r.disputed) AS disputed_amount
	  FROM credit.receivables r
	 CROSS JOIN cfg
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	   AND r.invoice_date OPERATOR(pg_catalog.<=) CURRENT_DATE
	 GROUP BY 1, 2, 3
), per_bucket AS (
	SELECT p.currency, p.bucket_no,
		   pg_catalog.sum(p.amount) AS amount,
		   pg_catalog.sum(p.items)::bigint AS items,
		   pg_catalog.count(*) AS customers,
		   pg_catalog.sum(p.disputed_amount) AS disputed_amount
	  FROM per_customer p
	 GROUP BY 1, 2
), cur AS (
	SELECT a.currency FROM credit.accounts a
	UNION SELECT p.currency FROM per_bucket p
), grid AS (
	SELECT cur.currency, b.bucket_no, b.label, b.band, b.min_days, b.max_days,
		   COALESCE(p.amount, 0) AS amount,
		   COALESCE(p.items, 0) AS items,
		   COALESCE(p.customers, 0) AS customers,
		   COALESCE(p.disputed_amount, 0) AS disputed_amount
	  FROM cur
	 CROSS JOIN credit.aging_buckets b
	  LEFT JOIN per_bucket p
		ON p.currency OPERATOR(pg_catalog.=) cur.currency
	   AND p.bucket_no OPERATOR(pg_catalog.=) b.bucket_no
)
SELECT g.currency,
	   CURRENT_DATE AS as_of,
	   (SELECT s.aging_basis FROM credit.settings s) AS aging_basis,
	   g.bucket_no,
	   g.label AS bucket,
	   g.band,
	   g.min_days,
	   g.max_days,
	   g.amount,
	   g.items,
	   g.customers,
	   g.disputed_amount,
	   pg_catalog.round(g.amount OPERATOR(pg_catalog./)
						NULLIF(pg_catalog.sum(g.amount) OVER (PARTITION BY g.currency), 0), 4)
		   AS share
  FROM grid g;

COMMENT ON VIEW credit.report_aging IS
'Aging structure today, one row per currency and configured bucket (credit.aging_buckets, empty buckets with 0): what credit.aging(CURRENT_DATE) gives, summed over customers. Today = CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_aging.currency IS 'Currency of the figures (every account currency appears, with all buckets).';
COMMENT ON COLUMN credit.report_aging.as_of IS 'Today: CURRENT_DATE in the session time zone; ages are counted to it.';
COMMENT ON COLUMN credit.report_aging.aging_basis IS 'credit.settings.aging_basis: due_date (age = days past due) or invoice_date (age = days since invoicing).';
COMMENT ON COLUMN credit.report_aging.bucket_no IS 'The bucket''s number (ascending = older), from credit.aging_buckets.';
COMMENT ON COLUMN credit.report_aging.bucket IS 'The bucket''s label.';
COMMENT ON COLUMN credit.report_aging.band IS 'The bucket''s colour: green, yellow or red.';
COMMENT ON COLUMN credit.report_aging.min_days IS 'First age in days of the bucket (NULL: no lower bound).';
COMMENT ON COLUMN credit.report_aging.max_days IS 'Last age in days of the bucket, inclusive (NULL: no upper bound).';
COMMENT ON COLUMN credit.report_aging.amount IS 'Sum of open_amount of the open receivables invoiced on or before today whose age falls in the bucket (0 if none).';
COMMENT ON COLUMN credit.report_aging.items IS 'Number of those receivables.';
COMMENT ON COLUMN credit.report_aging.customers IS 'Number of customers with at least one of those receivables.';
COMMENT ON COLUMN credit.report_aging.disputed_amount IS 'The disputed part of amount.';
COMMENT ON COLUMN credit.report_aging.share IS 'amount / total amount of all buckets of the currency, rounded to 4 places; NULL when the currency has nothing aged.';

/* ---------------------------------------------------------------------
 * 3. Top overdue customers
 * ------------------------------------------------------------------- */

CREATE VIEW credit.report_top_overdue WITH (security_invoker = true) AS
WITH o AS (
	SELECT r.customer_key, r.currency,
		   pg_catalog.sum(r.open_amount) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS overdue_amount,
		   pg_catalog.count(*) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS overdue_items,
		   pg_catalog.sum(r.open_amount) AS open_amount,
		   pg_catalog.min(r.due_date) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS oldest_due_date,
		   COALESCE(pg_catalog.sum(r.open_amount)
					FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE AND r.disputed), 0)
			   AS disputed_amount,
		   pg_catalog.max(r.dunning_level) AS max_dunning_level
	  FROM credit.receivables r
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	 GROUP BY r.customer_key, r.currency
)
SELECT pg_catalog.row_number() OVER (PARTITION BY o.currency
									 ORDER BY o.overdue_amount DESC, o.customer_key) AS overdue_rank,
	   o.customer_key,
	   a.customer_name,
	   a.owner,
	   a.region,
	   o.currency,
	   CURRENT_DATE AS as_of,
	   o.overdue_amount,
	   o.overdue_items,
	   o.open_amount,
	   o.oldest_due_date,
	   CURRENT_DATE OPERATOR(pg_catalog.-) o.oldest_due_date AS days_overdue,
	   o.disputed_amount,
	   o.max_dunning_level,
	   a.status,
	   credit.live_exposure(a.customer_key, a.exposure) AS exposure,
	   g.grade
  FROM o
  JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) o.customer_key
  LEFT JOIN credit.customer_grades g ON g.customer_key OPERATOR(pg_catalog.=) o.customer_key
 WHERE o.overdue_amount OPERATOR(pg_catalog.>) 0;

COMMENT ON VIEW credit.report_top_overdue IS
'Customers with overdue receivables, ranked per currency by overdue amount: filter overdue_rank <= N for the top N. Overdue = open with due_date < today (CURRENT_DATE, session time zone). Under row-level security the ranks are among the customers the role sees.';
COMMENT ON COLUMN credit.report_top_overdue.overdue_rank IS '1 = largest overdue_amount within the currency; ties broken by customer_key, so ranks are unique and rank <= N gives exactly N rows (or fewer).';
COMMENT ON COLUMN credit.report_top_overdue.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.report_top_overdue.customer_name IS 'The account''s customer name.';
COMMENT ON COLUMN credit.report_top_overdue.owner IS 'The salesperson who owns the customer (credit.accounts.owner).';
COMMENT ON COLUMN credit.report_top_overdue.region IS 'The customer''s sales region (credit.accounts.region).';
COMMENT ON COLUMN credit.report_top_overdue.currency IS 'Currency of the amounts.';
COMMENT ON COLUMN credit.report_top_overdue.as_of IS 'Today: CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_top_overdue.overdue_amount IS 'Sum of open_amount of the customer''s receivables with due_date < today (> 0 in every row).';
COMMENT ON COLUMN credit.report_top_overdue.overdue_items IS 'Number of those receivables.';
COMMENT ON COLUMN credit.report_top_overdue.open_amount IS 'Sum of open_amount of all the customer''s open receivables in the currency, overdue or not.';
COMMENT ON COLUMN credit.report_top_overdue.oldest_due_date IS 'Earliest due date among the overdue receivables.';
COMMENT ON COLUMN credit.report_top_overdue.days_overdue IS 'today - oldest_due_date: days the oldest overdue receivable is past due.';
COMMENT ON COLUMN credit.report_top_overdue.disputed_amount IS 'The disputed part of overdue_amount.';
COMMENT ON COLUMN credit.report_top_overdue.max_dunning_level IS 'Highest dunning_level among the customer''s open receivables (0: none dunned).';
COMMENT ON COLUMN credit.report_top_overdue.status IS 'The account''s credit status (none, ok, watch, hold, stop).';
COMMENT ON COLUMN credit.report_top_overdue.exposure IS 'The account''s exposure (credit.accounts.exposure).';
COMMENT ON COLUMN credit.report_top_overdue.grade IS 'The customer''s grade in force (credit.customer_grades; NULL: ungraded).';

/* ---------------------------------------------------------------------
 * 4. Grade distribution
 * ------------------------------------------------------------------- */

/*
 * Grades: those of the active scorecard version (with no customers too),
 * plus any other grade customers still hold (graded under a retired
 * version), plus NULL for ungraded accounts.  Customers count by the
 * account's currency; receivables by the document's.
 */
CREATE VIEW credit.report_grade_distribution WITH (security_invoker = true) AS
WITH active AS (
	SELECT g.grade, g.min_score
	  FROM credit.scorecard_grades g
	  JOIN credit.scorecards s ON s.scorecard_id OPERATOR(pg_catalog.=) g.scorecard_id
	 WHERE s.state OPERATOR(pg_catalog.=) 'active'
), grades AS (
	SELECT x.grade, x.min_score, true AS in_active_scorecard FROM active x
	UNION ALL
	SELECT d.grade, NULL::numeric, false
	  FROM (SELECT DISTINCT cg.grade FROM credit.customer_grades cg) d
	 WHERE NOT EXISTS (SELECT 1 FROM active x WHERE x.grade OPERATOR(pg_catalog.=) d.grade)
	UNION ALL
	SELECT NULL::text, NULL::numeric, false
), cust AS (
	SELECT a.currency, cg.grade,
		   pg_catalog.count(*) AS customers,
		   pg_catalog.sum(oe.own_exposure) AS exposure,
		   pg_catalog.avg(cg.score) AS avg_score
	  FROM credit.accounts a
	  JOIN credit.own_exposure oe ON oe.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN credit.customer_grades cg ON cg.customer_key OPERATOR(pg_catalog.=) a.customer_key
	 GROUP BY 1, 2
), recv AS (
	SELECT o.currency, cg.grade,
		   pg_catalog.sum(o.open_amount) AS open_amount,
		   pg_catalog.sum(o.overdue_amount) AS overdue_amount
	  FROM (SELECT r.customer_key, r.currency,
				   pg_catalog.sum(r.open_amount) AS open_amount,
				   pg_catalog.sum(r.open_amount)
					   FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE) AS overdue_amount
			  FROM credit.receivables r
			 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
			 GROUP BY 1, 2) o
	  LEFT JOIN credit.customer_grades cg ON cg.customer_key OPERATOR(pg_catalog.=) o.customer_key
	 GROUP BY 1, 2
), cur AS (
	SELECT c.currency FROM cust c
	UNION SELECT r.currency FROM recv r
), grid AS (
	SELECT cur.currency, g.grade, g.min_score, g.in_active_scorecard,
		   COALESCE(c.customers, 0) AS customers,
		   COALESCE(c.exposure, 0) AS exposure,
		   c.avg_score,
		   COALESCE(r.open_amount, 0) AS open_amount,
		   COALESCE(r.overdue_amount, 0) AS overdue_amount
	  FROM cur
	 CROSS JOIN grades g
	  LEFT JOIN cust c ON c.currency OPERATOR(pg_catalog.=) cur.currency
					  AND c.grade IS NOT DISTINCT FROM g.grade
	  LEFT JOIN recv r ON r.currency OPERATOR(pg_catalog.=) cur.currency
					  AND r.grade IS NOT DISTINCT FROM g.grade
)
SELECT x.currency,
	   x.grade,
	   x.grade IS NOT NULL AS graded,
	   x.in_active_scorecard,
	   x.min_score,
	   x.customers,
	   pg_catalog.round(x.customers::numeric OPERATOR(pg_catalog./)
						NULLIF(pg_catalog.sum(x.customers) OVER w, 0), 4) AS customer_share,
	   x.exposure,
	   pg_catalog.round(x.avg_score, 2) AS avg_score,
	   x.open_amount,
	   pg_catalog.round(x.open_amount OPERATOR(pg_catalog./)
						NULLIF(pg_catalog.sum(x.open_amount) OVER w, 0), 4) AS receivable_share,
	   x.overdue_amount,
	   pg_catalog.round(x.overdue_amount OPERATOR(pg_catalog./)
						NULLIF(x.open_amount, 0), 4) AS overdue_share
  FROM grid x
WINDOW w AS (PARTITION BY x.currency);

COMMENT ON VIEW credit.report_grade_distribution IS
'Customers and receivables per grade, one row per currency and grade: every grade of the active scorecard version (even without customers), any other grade customers still hold, and one row with grade NULL for ungraded accounts. Overdue = due_date < today (CURRENT_DATE, session time zone).';
COMMENT ON COLUMN credit.report_grade_distribution.currency IS 'Currency: the account''s for customers and exposure, the documents'' for receivables.';
COMMENT ON COLUMN credit.report_grade_distribution.grade IS 'The grade in force (credit.customer_grades.grade); NULL: accounts without a grade.';
COMMENT ON COLUMN credit.report_grade_distribution.graded IS 'false for the row of ungraded accounts.';
COMMENT ON COLUMN credit.report_grade_distribution.in_active_scorecard IS 'The grade is one of the active scorecard version''s grades.';
COMMENT ON COLUMN credit.report_grade_distribution.min_score IS 'Lowest score of the grade in the active scorecard version (NULL for other grades).';
COMMENT ON COLUMN credit.report_grade_distribution.customers IS 'Number of accounts in the currency holding the grade.';
COMMENT ON COLUMN credit.report_grade_distribution.customer_share IS 'customers / all accounts of the currency, rounded to 4 places.';
COMMENT ON COLUMN credit.report_grade_distribution.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count in their own grades).';
COMMENT ON COLUMN credit.report_grade_distribution.avg_score IS 'Average current score of the graded accounts, rounded to 2 places (NULL: none).';
COMMENT ON COLUMN credit.report_grade_distribution.open_amount IS 'Sum of open_amount of the open receivables of customers holding the grade.';
COMMENT ON COLUMN credit.report_grade_distribution.receivable_share IS 'open_amount / all open receivables of the currency, rounded to 4 places; NULL when nothing is open.';
COMMENT ON COLUMN credit.report_grade_distribution.overdue_amount IS 'The overdue part of open_amount (due_date < today).';
COMMENT ON COLUMN credit.report_grade_distribution.overdue_share IS 'overdue_amount / open_amount, rounded to 4 places; NULL when nothing is open.';

/* ---------------------------------------------------------------------
 * 5. Collection performance by salesperson and region
 * ------------------------------------------------------------------- */

CREATE VIEW credit.report_collection_by_salesperson WITH (security_invoker = true) AS
WITH recv AS (
	SELECT r.customer_key,
		   pg_catalog.sum(r.open_amount) AS open_amount,
		   pg_catalog.sum(r.open_amount)
			   FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE) AS overdue_amount
	  FROM credit.receivables r
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	 GROUP BY r.customer_key
), coll AS (
	SELECT m.customer_key, pg_catalog.sum(m.collected) AS collected,
		   pg_catalog.sum(m.credited) AS credited
	  FROM credit.collections_this_month m
	 GROUP BY m.customer_key
), g AS (
	SELECT a.owner, a.region, a.currency,
		   pg_catalog.count(*) AS customers,
		   pg_catalog.count(r.overdue_amount) AS customers_overdue,
		   pg_catalog.sum(oe.own_exposure) AS exposure,
		   COALESCE(pg_catalog.sum(r.open_amount), 0) AS open_amount,
		   COALESCE(pg_catalog.sum(r.overdue_amount), 0) AS overdue_amount,
		   COALESCE(pg_catalog.sum(c.collected), 0) AS collected,
		   COALESCE(pg_catalog.sum(c.credited), 0) AS credited
	  FROM credit.accounts a
	  JOIN credit.own_exposure oe ON oe.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN recv r ON r.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN coll c ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key
	 GROUP BY a.owner, a.region, a.currency
)
SELECT g.owner,
	   g.region,
	   g.currency,
	   CURRENT_DATE AS as_of,
	   g.customers,
	   g.customers_overdue,
	   g.exposure,
	   g.open_amount,
	   g.overdue_amount,
	   pg_catalog.round(g.overdue_amount OPERATOR(pg_catalog./) NULLIF(g.open_amount, 0), 4)
		   AS overdue_share,
	   g.collected AS collected_this_month,
	   g.credited AS credited_this_month,
	   pg_catalog.round(g.collected OPERATOR(pg_catalog./)
						NULLIF(g.collected OPERATOR(pg_catalog.+) g.open_amount, 0), 4)
		   AS collection_rate
  FROM g;

COMMENT ON VIEW credit.report_collection_by_salesperson IS
'Collection performance per salesperson (credit.accounts.owner), region (credit.accounts.region) and account currency: what their customers owe, what is overdue, what was collected this month. Roll up by summing the amounts and recomputing the ratios. Today = CURRENT_DATE, this month = its calendar month up to today, in the session time zone.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.owner IS 'The salesperson (credit.accounts.owner; NULL: accounts without an owner).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.region IS 'The sales region (credit.accounts.region; NULL: accounts without a region).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.currency IS 'The accounts'' currency (amounts are the accounts'' documents, in it).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.as_of IS 'Today: CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.customers IS 'Number of accounts of the owner in the region and currency.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.customers_overdue IS 'How many of them have an overdue receivable (open, due_date < today).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count with their own owners).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.open_amount IS 'Sum of open_amount of their open receivables now.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.overdue_amount IS 'The overdue part of open_amount (due_date < today).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.overdue_share IS 'overdue_amount / open_amount, rounded to 4 places; NULL when nothing is open.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.collected_this_month IS 'Sum of allocations of payments (kind payment) to their receivables with allocated_on from the first of this month to today.';
COMMENT ON COLUMN credit.report_collection_by_salesperson.credited_this_month IS 'Sum of allocations of credit notes to their receivables this month (not in collected_this_month).';
COMMENT ON COLUMN credit.report_collection_by_salesperson.collection_rate IS 'collected_this_month / (collected_this_month + open_amount), rounded to 4 places; NULL when both are 0 (as in credit.report_receivables_health).';

/* ---------------------------------------------------------------------
 * 6. New overdue amount per month
 * ------------------------------------------------------------------- */

/*
 * A receivable falls overdue on due_date + 1 (the first day with
 * due_date < today), with what was not paid by its due date: amount minus
 * its allocations dated on or before due_date.  Summed per month of
 * due_date + 1 as amount - paid-by-due, both additive, so only the
 * allocations need joining to their receivables.  Up to today: in the
 * current month only receivables with due_date < today count.
 */
CREATE VIEW credit.report_overdue_trend WITH (security_invoker = true) AS
WITH bounds AS (
	SELECT (pg_catalog.date_trunc('month', CURRENT_DATE::pg_catalog.timestamp)
			OPERATOR(pg_catalog.-) '11 months'::interval)::date AS first_month
), due AS (
	SELECT r.currency,
		   pg_catalog.date_trunc('month', (r.due_date OPERATOR(pg_catalog.+) 1)::pg_catalog.timestamp)::date
			   AS month_start,
		   pg_catalog.sum(r.amount) AS amount,
		   pg_catalog.count(*) AS items,
		   pg_catalog.count(*) FILTER (WHERE r.allocated OPERATOR(pg_catalog.=) r.amount
										 AND r.last_allocated_on OPERATOR(pg_catalog.<=) r.due_date)
			   AS paid_by_due_items,
		   pg_catalog.sum(r.open_amount) AS open_amount
	  FROM credit.receivables r, bounds b
	 WHERE r.due_date OPERATOR(pg_catalog.>=) (b.first_month OPERATOR(pg_catalog.-) 1)
	   AND r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE
	 GROUP BY 1, 2
), paid AS (
	SELECT r.currency,
		   pg_catalog.date_trunc('month', (r.due_date OPERATOR(pg_catalog.+) 1)::pg_catalog.timestamp)::date
			   AS month_start,
		   pg_catalog.sum(l.amount) AS amount
	  FROM credit.allocations l
	  JOIN credit.receivables r ON r.receivable_id OPERATOR(pg_catalog.=) l.receivable_id, bounds b
	 WHERE r.due_date OPERATOR(pg_catalog.>=) (b.first_month OPERATOR(pg_catalog.-) 1)
	   AND r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE
	   AND l.allocated_on OPERATOR(pg_catalog.<=) r.due_date
	 GROUP BY 1, 2
), months AS (
	SELECT m::date AS month_start
	  FROM bounds b,
		   pg_catalog.generate_series(b.first_month::pg_catalog.timestamp,
									  pg_catalog.date_trunc('month', CURRENT_DATE::pg_catalog.timestamp),
									  '1 month'::interval) m
), cur AS (
	SELECT a.currency FROM credit.accounts a
	UNION SELECT d.currency FROM due d
)
SELECT cur.currency,
	   m.month_start,
	   LEAST((m.month_start OPERATOR(pg_catalog.+) '1 month'::interval)::date OPERATOR(pg_catalog.-) 1,
			 CURRENT_DATE) AS month_end,
	   COALESCE(d.amount, 0) OPERATOR(pg_catalog.-) COALESCE(p.amount, 0) AS new_overdue_amount,
	   COALESCE(d.items, 0) OPERATOR(pg_catalog.-) COALESCE(d.paid_by_due_items, 0) AS new_overdue_items,
	   COALESCE(d.open_amount, 0) AS still_open_amount
  FROM cur
 CROSS JOIN months m
  LEFT JOIN due d ON d.currency OPERATOR(pg_catalog.=) cur.currency
				 AND d.month_start OPERATOR(pg_catalog.=) m.month_start
  LEFT JOIN paid p ON p.currency OPERATOR(pg_catalog.=) cur.currency
				  AND p.month_start OPERATOR(pg_catalog.=) m.month_start;

COMMENT ON VIEW credit.report_overdue_trend IS
'New overdue amount per month over the last 12 months (the current month, up to today, and the 11 before), one row per currency and month, months without any with 0. A receivable falls overdue on the day after its due date, with the part not paid by then. Today = CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_overdue_trend.currency IS 'Currency of the receivables.';
COMMENT ON COLUMN credit.report_overdue_trend.month_start IS 'First day of the month.';
COMMENT ON COLUMN credit.report_overdue_trend.month_end IS 'Last day of the month counted: its last day, or today for the current month.';
COMMENT ON COLUMN credit.report_overdue_trend.new_overdue_amount IS 'For the receivables whose first overdue day (due_date + 1) is in the month and on or before today: the sum of amount minus their allocations dated on or before their due date (what was unpaid when they fell overdue).';
COMMENT ON COLUMN credit.report_overdue_trend.new_overdue_items IS 'Number of those receivables that were not fully paid by their due date.';
COMMENT ON COLUMN credit.report_overdue_trend.still_open_amount IS 'Of those receivables, the sum of open_amount now (what has not been recovered since).';

/* ---------------------------------------------------------------------
 * 7. Utilization, watch list, trend and forecast
 * ------------------------------------------------------------------- */

CREATE VIEW credit.report_utilization WITH (security_invoker = true) AS
WITH trend AS (
	SELECT s.customer_key, s.snapshot_on, s.trend_days, s.trend_per_day
	  FROM credit.exposure_snapshots s
	 WHERE s.snapshot_on OPERATOR(pg_catalog.=)
		   (SELECT pg_catalog.max(l.snapshot_on) FROM credit.exposure_snapshots l
			 WHERE l.snapshot_on OPERATOR(pg_catalog.<=) CURRENT_DATE)
), u AS (
	SELECT a.customer_key, a.customer_name, a.owner, a.region, a.currency, a.status,
		   a.watch_ratio, credit.live_exposure(a.customer_key, a.exposure) AS exposure, cg.grade,
		   el.effective_limit,
		   t.snapshot_on AS trend_as_of,
		   t.trend_days,
		   pg_catalog.round(t.trend_per_day, 2) AS slope
	  FROM credit.accounts a
	 CROSS JOIN LATERAL (SELECT credit.effective_limit(a) AS effective_limit OFFSET 0) el
	  LEFT JOIN credit.customer_grades cg ON cg.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN trend t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
), v AS (
	SELECT u.*,
		   u.exposure OPERATOR(pg_catalog./) NULLIF(u.effective_limit, 0) AS util,
		   u.effective_limit OPERATOR(pg_catalog.*) u.watch_ratio AS watch_line,
		   u.exposure OPERATOR(pg_catalog.+) (7 OPERATOR(pg_catalog.*) u.slope) AS forecast
	  FROM u
)
SELECT v.customer_key,
	   v.customer_name,
	   v.owner,
	   v.region,
	   v.currency,
	   v.grade,
	   v.status,
	   CURRENT_DATE AS as_of,
	   v.exposure,
	   v.effective_limit,
	   v.effective_limit OPERATOR(pg_catalog.-) v.exposure AS available,
	   pg_catalog.round(v.util, 4) AS utilization,
	   v.watch_ratio,
	   v.watch_line,
	   (v.status OPERATOR(pg_catalog.=) ANY ('{watch,hold}'::text[])
		OR COALESCE(v.util OPERATOR(pg_catalog.>=) v.watch_ratio, false)) AS on_watch_list,
	   v.trend_as_of,
	   v.trend_days,
	   v.slope AS trend_per_day,
	   v.forecast AS forecast_exposure_7d,
	   CASE WHEN v.effective_limit OPERATOR(pg_catalog.>) 0
				 AND v.exposure OPERATOR(pg_catalog.<) v.watch_line
				 AND v.slope OPERATOR(pg_catalog.>) 0
			THEN pg_catalog.ceil((v.watch_line OPERATOR(pg_catalog.-) v.exposure)
								 OPERATOR(pg_catalog./) v.slope)::integer END AS days_to_watch_line,
	   COALESCE(v.effective_limit OPERATOR(pg_catalog.>) 0
				AND v.exposure OPERATOR(pg_catalog.<) v.watch_line
				AND v.forecast OPERATOR(pg_catalog.>=) v.watch_line, false) AS crosses_watch_line_7d,
	   pg_catalog.round(pg_catalog.avg(v.util) OVER (PARTITION BY v.grade), 4) AS grade_avg_utilization,
	   pg_catalog.round(v.util OPERATOR(pg_catalog.-) pg_catalog.avg(v.util) OVER (PARTITION BY v.grade), 4)
		   AS utilization_vs_grade
  FROM v;

COMMENT ON VIEW credit.report_utilization IS
'Credit utilization per account: exposure against the effective limit, the watch list, the exposure trend over the 30 days of credit.exposure_snapshots ending with the latest snapshot (normally today''s) with a 7-day forecast, and the average utilization of the customer''s grade (for limit-expansion suggestions). Today = CURRENT_DATE in the session time zone; limits and exposure as of now().';
COMMENT ON COLUMN credit.report_utilization.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.report_utilization.customer_name IS 'The account''s customer name.';
COMMENT ON COLUMN credit.report_utilization.owner IS 'The salesperson who owns the customer.';
COMMENT ON COLUMN credit.report_utilization.region IS 'The customer''s sales region.';
COMMENT ON COLUMN credit.report_utilization.currency IS 'The account''s currency (of exposure and limits).';
COMMENT ON COLUMN credit.report_utilization.grade IS 'The grade in force (NULL: ungraded).';
COMMENT ON COLUMN credit.report_utilization.status IS 'The account''s credit status (none, ok, watch, hold, stop).';
COMMENT ON COLUMN credit.report_utilization.as_of IS 'Today: CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_utilization.exposure IS 'The account''s exposure now (credit.accounts.exposure).';
COMMENT ON COLUMN credit.report_utilization.effective_limit IS 'credit.effective_limit(account) now: credit limit plus the temporary limit in force.';
COMMENT ON COLUMN credit.report_utilization.available IS 'effective_limit - exposure (negative: over the limit).';
COMMENT ON COLUMN credit.report_utilization.utilization IS 'exposure / effective_limit, rounded to 4 places; NULL when the effective limit is 0 (no limit).';
COMMENT ON COLUMN credit.report_utilization.watch_ratio IS 'The account''s watch ratio.';
COMMENT ON COLUMN credit.report_utilization.watch_line IS 'effective_limit x watch_ratio: the exposure at which the account goes to watch.';
COMMENT ON COLUMN credit.report_utilization.on_watch_list IS 'status is watch or hold, or exposure / effective_limit >= watch_ratio (exact, not rounded; never for an effective limit of 0).';
COMMENT ON COLUMN credit.report_utilization.trend_as_of IS 'Date of the latest exposure snapshot (the latest snapshot_on in credit.exposure_snapshots on or before today) the trend comes from; NULL: the customer is not in it.';
COMMENT ON COLUMN credit.report_utilization.trend_days IS 'Number of the customer''s snapshots in the 30 days ending with trend_as_of that the trend was fitted through.';
COMMENT ON COLUMN credit.report_utilization.trend_per_day IS 'Least-squares slope (regr_slope) of exposure over the day numbers of the customer''s snapshots in the 30 days ending with trend_as_of, as credit.snapshot_exposure computed it: change of exposure per day, rounded to 2 places; NULL with fewer than 2 snapshots.';
COMMENT ON COLUMN credit.report_utilization.forecast_exposure_7d IS 'exposure + 7 x trend_per_day: the exposure expected in 7 days if the trend holds; NULL without a trend.';
COMMENT ON COLUMN credit.report_utilization.days_to_watch_line IS 'While exposure is below the watch line and the trend rises: ceil((watch_line - exposure) / trend_per_day), the days until the watch line is reached; otherwise NULL.';
COMMENT ON COLUMN credit.report_utilization.crosses_watch_line_7d IS 'Forecast to cross the watch line within 7 days: effective_limit > 0, exposure < watch_line and forecast_exposure_7d >= watch_line.';
COMMENT ON COLUMN credit.report_utilization.grade_avg_utilization IS 'Average of exposure / effective_limit over the accounts of the same grade with an effective limit > 0 (ungraded accounts together), rounded to 4 places; under row-level security, over the accounts the role sees.';
COMMENT ON COLUMN credit.report_utilization.utilization_vs_grade IS 'exposure / effective_limit - grade_avg_utilization, rounded to 4 places: > 0 uses more of its limit than its grade does on average (a candidate for a larger limit if its grade is good).';

/* ---------------------------------------------------------------------
 * 8. Approval deadlines
 * ------------------------------------------------------------------- */

CREATE VIEW credit.report_approval_deadlines WITH (security_invoker = true) AS
SELECT s.application_id,
	   ap.kind,
	   ap.customer_key,
	   a.customer_name,
	   a.owner,
	   ap.requester,
	   ap.route_amount,
	   ap.submitted_at,
	   s.step_no,
	   s.position AS approver_position,
	   s.first_position,
	   s.escalations,
	   s.deadline,
	   s.deadline OPERATOR(pg_catalog.<) pg_catalog.now() AS breached,
	   CASE WHEN s.deadline OPERATOR(pg_catalog.<) pg_catalog.now()
			THEN pg_catalog.now() OPERATOR(pg_catalog.-) s.deadline END AS overdue_by,
	   CASE WHEN s.deadline OPERATOR(pg_catalog.<) pg_catalog.now()
			THEN pg_catalog.round((pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) s.deadline)
								   OPERATOR(pg_catalog./) 3600)::numeric, 2) END AS hours_overdue,
	   CASE WHEN s.deadline OPERATOR(pg_catalog.>=) pg_catalog.now()
			THEN s.deadline OPERATOR(pg_catalog.-) pg_catalog.now() END AS time_left
  FROM credit.application_steps s
  JOIN credit.applications ap ON ap.application_id OPERATOR(pg_catalog.=) s.application_id
  JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) ap.customer_key
 WHERE s.state OPERATOR(pg_catalog.=) 'pending'
   AND ap.state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON VIEW credit.report_approval_deadlines IS
'Open approval steps (the pending step of each pending application) and their deadlines: due, breached, how late. Compared with now() (timestamptz), not with the date.';
COMMENT ON COLUMN credit.report_approval_deadlines.application_id IS 'The application.';
COMMENT ON COLUMN credit.report_approval_deadlines.kind IS 'new_limit, limit_change, temp_limit, term_change or order_release.';
COMMENT ON COLUMN credit.report_approval_deadlines.customer_key IS 'The customer the application is for.';
COMMENT ON COLUMN credit.report_approval_deadlines.customer_name IS 'The account''s customer name.';
COMMENT ON COLUMN credit.report_approval_deadlines.owner IS 'The salesperson who owns the customer.';
COMMENT ON COLUMN credit.report_approval_deadlines.requester IS 'The role that requested it.';
COMMENT ON COLUMN credit.report_approval_deadlines.route_amount IS 'The amount the approval rules were matched on.';
COMMENT ON COLUMN credit.report_approval_deadlines.submitted_at IS 'When the application was submitted.';
COMMENT ON COLUMN credit.report_approval_deadlines.step_no IS 'The pending step''s number in the chain.';
COMMENT ON COLUMN credit.report_approval_deadlines.approver_position IS 'The position that must act now (after escalations).';
COMMENT ON COLUMN credit.report_approval_deadlines.first_position IS 'The position the rule named for the step.';
COMMENT ON COLUMN credit.report_approval_deadlines.escalations IS 'How often the step has been escalated.';
COMMENT ON COLUMN credit.report_approval_deadlines.deadline IS 'When the step is due (restarted at each escalation).';
COMMENT ON COLUMN credit.report_approval_deadlines.breached IS 'deadline < now().';
COMMENT ON COLUMN credit.report_approval_deadlines.overdue_by IS 'now() - deadline when breached, else NULL.';
COMMENT ON COLUMN credit.report_approval_deadlines.hours_overdue IS 'overdue_by in hours, rounded to 2 places; NULL when not breached.';
COMMENT ON COLUMN credit.report_approval_deadlines.time_left IS 'deadline - now() when not breached, else NULL.';

/* ---------------------------------------------------------------------
 * 9. Customer 360
 * ------------------------------------------------------------------- */

/*
 * One row per account.  Every part is grouped by customer_key and joined
 * to the account, so WHERE customer_key = ... reaches each part's index.
 * The buckets jsonb starts from every configured label at 0 (computed
 * once) and is overwritten by the customer's non-empty buckets.
 */
CREATE VIEW credit.report_customer_360 WITH (security_invoker = true) AS
WITH recv AS (
	SELECT r.customer_key,
		   pg_catalog.sum(r.open_amount) AS open_amount,
		   pg_catalog.count(*) AS open_items,
		   COALESCE(pg_catalog.sum(r.open_amount) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE), 0)
			   AS overdue_amount,
		   COALESCE(pg_catalog.sum(r.open_amount) FILTER (WHERE r.disputed), 0) AS disputed_amount,
		   pg_catalog.min(r.due_date) FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE)
			   AS oldest_due_date,
		   pg_catalog.max(r.dunning_level) AS max_dunning_level,
		   /* bucket index as credit.aging numbers them; NULL (not aged): invoiced after today */
		   credit.aging_json(
			   CASE WHEN r.invoice_date OPERATOR(pg_catalog.<=) CURRENT_DATE
					THEN pg_catalog.width_bucket(
							 CURRENT_DATE OPERATOR(pg_catalog.-)
							 CASE WHEN (SELECT c.by_invoice_date FROM credit.aging_config() c)
								  THEN r.invoice_date ELSE r.due_date END,
							 (SELECT c.lower_bounds FROM credit.aging_config() c)) END,
			   r.open_amount,
			   (SELECT c.labels FROM credit.aging_config() c)) AS aging
	  FROM credit.receivables r
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	 GROUP BY 1
), pay AS (
	SELECT p.customer_key,
		   pg_catalog.max(p.received_on) AS received_on,
		   credit.sum_on_last(p.received_on, p.amount) AS amount
	  FROM credit.payments p
	 WHERE p.kind OPERATOR(pg_catalog.=) 'payment'
	 GROUP BY p.customer_key
), apps AS (
	SELECT x.customer_key, pg_catalog.count(*) AS n
	  FROM credit.applications x
	 WHERE x.state OPERATOR(pg_catalog.=) ANY ('{draft,pending}'::text[])
	 GROUP BY 1
)
SELECT a.customer_key,
	   a.customer_name,
	   a.owner,
	   a.region,
	   a.currency,
	   a.status,
	   a.manual_status,
	   a.dunning_status,
	   a.payment_term_days,
	   a.created_at,
	   CURRENT_DATE AS as_of,
	   pr.uscc::text AS uscc,
	   pr.legal_name,
	   pr.industry,
	   pr.registered_capital,
	   pr.capital_currency,
	   pr.established_on,
	   pr.customer_since,
	   a.credit_limit,
	   el.effective_limit OPERATOR(pg_catalog.-) a.credit_limit AS temp_limit_in_force,
	   el.effective_limit,
	   lx.exposure,
	   el.effective_limit OPERATOR(pg_catalog.-) lx.exposure AS available,
	   pg_catalog.round(lx.exposure OPERATOR(pg_catalog./) NULLIF(el.effective_limit, 0), 4)
		   AS utilization,
	   COALESCE(r.open_items, 0) AS open_items,
	   COALESCE(r.open_amount, 0) AS open_amount,
	   COALESCE(r.open_amount, 0) OPERATOR(pg_catalog.-) COALESCE(r.overdue_amount, 0) AS not_due_amount,
	   COALESCE(r.overdue_amount, 0) AS overdue_amount,
	   COALESCE(r.disputed_amount, 0) AS disputed_amount,
	   r.oldest_due_date,
	   CURRENT_DATE OPERATOR(pg_catalog.-) r.oldest_due_date AS days_overdue,
	   COALESCE(r.aging,
				(SELECT credit.aging_json(NULL, NULL, c.labels) FROM credit.aging_config() c)) AS aging,
	   COALESCE(r.max_dunning_level, 0) AS max_dunning_level,
	   g.grade,
	   g.score,
	   g.computed_grade,
	   g.pending_grade,
	   g.grade_since,
	   g.scored_on,
	   g.reasons,
	   g.recommended_limit,
	   g.recommended_term,
	   p.received_on AS last_payment_on,
	   p.amount AS last_payment_amount,
	   COALESCE(ap.n, 0) AS open_applications
  FROM credit.accounts a
 CROSS JOIN LATERAL (SELECT credit.effective_limit(a) AS effective_limit OFFSET 0) el
 CROSS JOIN LATERAL (SELECT credit.live_exposure(a.customer_key, a.exposure) AS exposure OFFSET 0) lx
  LEFT JOIN credit.profiles pr ON pr.customer_key OPERATOR(pg_catalog.=) a.customer_key
  LEFT JOIN recv r ON r.customer_key OPERATOR(pg_catalog.=) a.customer_key
  LEFT JOIN credit.customer_grades g ON g.customer_key OPERATOR(pg_catalog.=) a.customer_key
  LEFT JOIN pay p ON p.customer_key OPERATOR(pg_catalog.=) a.customer_key
  LEFT JOIN apps ap ON ap.customer_key OPERATOR(pg_catalog.=) a.customer_key;

COMMENT ON VIEW credit.report_customer_360 IS
'Everything about a customer in one row per account: profile, limits, exposure and available credit, open receivables with their aging, grade and score with reasons, last payment, dunning, open applications. Filter by customer_key for one customer (milliseconds). Today = CURRENT_DATE in the session time zone; limits as of now().';
COMMENT ON COLUMN credit.report_customer_360.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.report_customer_360.customer_name IS 'The account''s customer name.';
COMMENT ON COLUMN credit.report_customer_360.owner IS 'The salesperson who owns the customer.';
COMMENT ON COLUMN credit.report_customer_360.region IS 'The customer''s sales region.';
COMMENT ON COLUMN credit.report_customer_360.currency IS 'The account''s currency: of the limits, exposure and receivables.';
COMMENT ON COLUMN credit.report_customer_360.status IS 'The account''s credit status (none, ok, watch, hold, stop).';
COMMENT ON COLUMN credit.report_customer_360.manual_status IS 'none or stop as set by a person (NULL: none set).';
COMMENT ON COLUMN credit.report_customer_360.dunning_status IS 'watch or stop as set by dunning (NULL: none).';
COMMENT ON COLUMN credit.report_customer_360.payment_term_days IS 'The account''s payment term in days.';
COMMENT ON COLUMN credit.report_customer_360.created_at IS 'When the account was opened.';
COMMENT ON COLUMN credit.report_customer_360.as_of IS 'Today: CURRENT_DATE in the session time zone.';
COMMENT ON COLUMN credit.report_customer_360.uscc IS 'Unified social credit code from the credit profile (NULL: no profile or none recorded).';
COMMENT ON COLUMN credit.report_customer_360.legal_name IS 'Legal name from the credit profile.';
COMMENT ON COLUMN credit.report_customer_360.industry IS 'Industry from the credit profile.';
COMMENT ON COLUMN credit.report_customer_360.registered_capital IS 'Registered capital from the credit profile, in capital_currency.';
COMMENT ON COLUMN credit.report_customer_360.capital_currency IS 'Currency of registered_capital.';
COMMENT ON COLUMN credit.report_customer_360.established_on IS 'Date the company was established (credit profile).';
COMMENT ON COLUMN credit.report_customer_360.customer_since IS 'Start of the relationship (credit profile).';
COMMENT ON COLUMN credit.report_customer_360.credit_limit IS 'The standing credit limit.';
COMMENT ON COLUMN credit.report_customer_360.temp_limit_in_force IS 'The temporary limit counted now (0 outside its window).';
COMMENT ON COLUMN credit.report_customer_360.effective_limit IS 'credit.effective_limit(account) now: credit_limit + temp_limit_in_force.';
COMMENT ON COLUMN credit.report_customer_360.exposure IS 'The account''s exposure (open orders + open receivables - unallocated payments).';
COMMENT ON COLUMN credit.report_customer_360.available IS 'effective_limit - exposure (negative: over the limit).';
COMMENT ON COLUMN credit.report_customer_360.utilization IS 'exposure / effective_limit, rounded to 4 places; NULL when the effective limit is 0.';
COMMENT ON COLUMN credit.report_customer_360.open_items IS 'Number of open receivables (open_amount > 0).';
COMMENT ON COLUMN credit.report_customer_360.open_amount IS 'Sum of open_amount of the open receivables (all of them, also those invoiced after today).';
COMMENT ON COLUMN credit.report_customer_360.not_due_amount IS 'open_amount - overdue_amount: open receivables with due_date >= today.';
COMMENT ON COLUMN credit.report_customer_360.overdue_amount IS 'Open amount of receivables with due_date < today.';
COMMENT ON COLUMN credit.report_customer_360.disputed_amount IS 'The disputed part of open_amount.';
COMMENT ON COLUMN credit.report_customer_360.oldest_due_date IS 'Earliest due date of an overdue receivable (NULL: nothing overdue).';
COMMENT ON COLUMN credit.report_customer_360.days_overdue IS 'today - oldest_due_date (NULL: nothing overdue).';
COMMENT ON COLUMN credit.report_customer_360.aging IS 'Open amount per aging bucket label as jsonb, every configured bucket present (0 when empty), as credit.aging(CURRENT_DATE) ages them (receivables invoiced after today are in no bucket).';
COMMENT ON COLUMN credit.report_customer_360.max_dunning_level IS 'Highest dunning_level among the open receivables (0: none dunned or nothing open).';
COMMENT ON COLUMN credit.report_customer_360.grade IS 'The grade in force (credit.customer_grades, written by the latest credit.rescore; NULL: ungraded).';
COMMENT ON COLUMN credit.report_customer_360.score IS 'The latest score.';
COMMENT ON COLUMN credit.report_customer_360.computed_grade IS 'The grade the latest score gave, before hysteresis.';
COMMENT ON COLUMN credit.report_customer_360.pending_grade IS 'A grade waiting for confirmation (NULL: none).';
COMMENT ON COLUMN credit.report_customer_360.grade_since IS 'Since when the grade is in force.';
COMMENT ON COLUMN credit.report_customer_360.scored_on IS 'As-of date of the latest score.';
COMMENT ON COLUMN credit.report_customer_360.reasons IS 'Reason codes of the latest score (factors that cost points).';
COMMENT ON COLUMN credit.report_customer_360.recommended_limit IS 'The limit the grade recommends.';
COMMENT ON COLUMN credit.report_customer_360.recommended_term IS 'The payment term in days the grade recommends.';
COMMENT ON COLUMN credit.report_customer_360.last_payment_on IS 'received_on of the latest payment (kind payment; credit notes not counted); NULL: none.';
COMMENT ON COLUMN credit.report_customer_360.last_payment_amount IS 'Sum of the payments (kind payment) received on last_payment_on.';
COMMENT ON COLUMN credit.report_customer_360.open_applications IS 'Number of the customer''s credit applications in state draft or pending.';

/*
 * privileges: sql/roles.sql runs before this file, so its REVOKE ... ON ALL
 * FUNCTIONS and GRANT ... ON ALL TABLES did not reach these objects.  The
 * snapshot is written by the scheduler as credit_admin (it must see every
 * account); the snapshots hold customer figures, so row-level security
 * limits credit_sales to its own customers there too.
 */
REVOKE ALL ON FUNCTION credit.snapshot_exposure(date), credit.aging_json(integer, numeric, text[]),
	credit.aging_json_step(internal, integer, numeric, text[]), credit.aging_json_final(internal),
	credit.sum_on_last(date, numeric), credit.sum_on_last_step(internal, date, numeric),
	credit.sum_on_last_final(internal)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.aging_json(integer, numeric, text[]), credit.sum_on_last(date, numeric)
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.snapshot_exposure(date) TO credit_admin;
GRANT INSERT, DELETE ON credit.exposure_snapshots TO credit_admin;
GRANT SELECT ON credit.exposure_snapshots, credit.collections_this_month, credit.own_exposure,
	credit.report_receivables_health, credit.report_aging,
	credit.report_top_overdue, credit.report_grade_distribution,
	credit.report_collection_by_salesperson, credit.report_overdue_trend,
	credit.report_utilization, credit.report_approval_deadlines, credit.report_customer_360
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;

CREATE POLICY own_customers ON credit.exposure_snapshots
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.exposure_snapshots ENABLE ROW LEVEL SECURITY;
