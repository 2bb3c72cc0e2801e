/*
 * metrics.sql: what a scorecard can measure about a customer.
 *
 * credit.metrics names every metric.  Built-in metrics (source builtin) are
 * computed from the ledger by credit.customer_metrics; user metrics (source
 * user: an external bureau score, an industry outlook index, ...) are
 * loaded into credit.metric_values by customer, metric and as-of date
 * (INSERT or COPY), and a scoring as of a date uses each customer's latest
 * value on or before that date.
 *
 * Built-in metrics as of a date D, with W = the scorecard's window_months
 * and N = its overdue_months.  A window of M months is (D - M months, D].
 * Allocations count on their allocated_on date and only up to D, so a
 * receivable's open amount as of D is its amount minus what was allocated to
 * it on or before D; receivables invoiced after D do not exist yet.
 *   avg_days_to_pay     amount-weighted mean of (allocated_on - invoice_date)
 *                       over allocations in the W-month window; NULL if none
 *   max_days_overdue    largest lateness seen in the window: D - due_date of
 *                       every item open and past due at D, allocated_on -
 *                       due_date of the last allocation of every item settled
 *                       late within the window; 0 if none, NULL for a
 *                       customer without receivables
 *   current_days_overdue D - the oldest due date among items open and past due
 *                       at D; 0 if none
 *   overdue_count       items falling due in the N-month window that were
 *   overdue_amount      paid late or are open past due at D (their number,
 *                       their amounts); NULL for a customer without receivables
 *   relationship_years  years (365.25 days) from the profile's customer_since,
 *                       else the first invoice, else the account's creation
 *   avg_monthly_sales   invoiced amount in the W-month window / W; NULL for a
 *                       customer without receivables
 *   sales_variation     coefficient of variation (population standard
 *                       deviation / mean) of the W monthly invoiced totals,
 *                       months without invoices counting as 0; NULL when
 *                       nothing was invoiced in the window
 *   utilization         exposure / effective limit now (not as of D: exposure
 *                       has no history); NULL when the effective limit is 0
 *   registered_capital  from the profile; NULL without one
 * Day counts are whole days; averages are rounded to 2 decimals, ratios to
 * 4, so a bin edge compares against the value the score report shows.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.metrics (
	metric			text PRIMARY KEY,
	source			text NOT NULL DEFAULT 'user',
	description		text NOT NULL,
	unit			text,
	CONSTRAINT metrics_name_check CHECK (metric OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
	CONSTRAINT metrics_source_check
		CHECK (source OPERATOR(pg_catalog.=) ANY ('{builtin,user}'::text[]))
);

COMMENT ON TABLE credit.metrics IS
'Every metric a scorecard may use: built-in ones computed from the ledger, and user ones loaded into credit.metric_values.';

INSERT INTO credit.metrics (metric, source, description, unit) VALUES
	('avg_days_to_pay', 'builtin', 'Amount-weighted average days from invoice to payment, payments in the window', 'days'),
	('max_days_overdue', 'builtin', 'Largest number of days an item was overdue within the window', 'days'),
	('current_days_overdue', 'builtin', 'Days the oldest open overdue item is past due today', 'days'),
	('overdue_count', 'builtin', 'Items falling due in the last overdue_months that were paid late or are still overdue', 'items'),
	('overdue_amount', 'builtin', 'Amount of those items', 'currency'),
	('relationship_years', 'builtin', 'Years since the relationship began (profile customer_since, else first invoice)', 'years'),
	('avg_monthly_sales', 'builtin', 'Invoiced amount per month over the window', 'currency'),
	('sales_variation', 'builtin', 'Coefficient of variation of monthly invoiced totals over the window', 'ratio'),
	('utilization', 'builtin', 'Exposure / effective limit, now', 'ratio'),
	('registered_capital', 'builtin', 'Registered capital from the credit profile', 'currency');

/* built-in rows are the extension's: people add and remove user metrics only */
CREATE FUNCTION credit.metrics_guard()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' AND OLD.source OPERATOR(pg_catalog.=) 'builtin' THEN
		RAISE EXCEPTION 'built-in metric "%" cannot be changed or removed', OLD.metric
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'metrics';
	END IF;
	IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' AND NEW.source OPERATOR(pg_catalog.=) 'builtin' THEN
		RAISE EXCEPTION 'metric "%" cannot be added as built-in', NEW.metric
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'metrics',
				  HINT = 'Add user metrics (source user) and load their values into credit.metric_values.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

COMMENT ON FUNCTION credit.metrics_guard() IS
'Trigger on credit.metrics: built-in metrics belong to the extension (55000).';

-- created after the built-in rows above
CREATE TRIGGER metrics_guard
	BEFORE INSERT OR UPDATE OR DELETE ON credit.metrics
	FOR EACH ROW EXECUTE FUNCTION credit.metrics_guard();

CREATE TABLE credit.metric_values (
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	metric			text NOT NULL REFERENCES credit.metrics ON UPDATE CASCADE,
	as_of			date NOT NULL,
	value			numeric NOT NULL,
	source_note		text,
	loaded_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_key, metric, as_of),
	CONSTRAINT metric_values_as_of_finite_check CHECK (pg_catalog.isfinite(as_of)),
	CONSTRAINT metric_values_value_check
		CHECK (value OPERATOR(pg_catalog.>) -1e15 AND value OPERATOR(pg_catalog.<) 1e15)
);

COMMENT ON TABLE credit.metric_values IS
'Values of user metrics by customer and as-of date (load with INSERT or COPY); scoring as of D uses each customer''s latest value on or before D.';

/* only user metrics take loaded values: built-ins are computed */
CREATE FUNCTION credit.metric_values_check()
RETURNS trigger
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM credit.metrics m
				WHERE m.metric OPERATOR(pg_catalog.=) NEW.metric
				  AND m.source OPERATOR(pg_catalog.=) 'builtin') THEN
		RAISE EXCEPTION 'metric "%" is built-in and computed from the ledger', NEW.metric
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'metric_values',
				  COLUMN = 'metric',
				  HINT = 'Load values only for user metrics.';
	END IF;
	RETURN NEW;
END;
$$;

COMMENT ON FUNCTION credit.metric_values_check() IS
'Trigger on credit.metric_values: refuses values for built-in metrics (55000).';

CREATE TRIGGER metric_values_check
	BEFORE INSERT OR UPDATE OF metric ON credit.metric_values
	FOR EACH ROW EXECUTE FUNCTION credit.metric_values_check();

SELECT pg_catalog.pg_extension_config_dump('credit.metrics', 'WHERE source OPERATOR(pg_catalog.=) ''user''');
SELECT pg_catalog.pg_extension_config_dump('credit.metric_values', '');

/*
 * The built-in metrics of every account (customer NULL) or of one, in one
 * pass over receivables and allocations.  PL/pgSQL so that the customer
 * filter is planned with its value (an index probe for one customer, hash
 * aggregates for all).
 */
CREATE FUNCTION credit.customer_metrics(as_of date DEFAULT CURRENT_DATE,
										window_months integer DEFAULT 6,
										overdue_months integer DEFAULT 12,
										customer text DEFAULT NULL)
RETURNS TABLE (customer_key text, avg_days_to_pay numeric, max_days_overdue integer,
			   current_days_overdue integer, overdue_count integer, overdue_amount numeric,
			   relationship_years numeric, avg_monthly_sales numeric,
			   sales_variation numeric, utilization numeric, registered_capital numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
	w_start date;
	o_start date;
	month_ends date[];
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'metrics need a finite as-of date'
			USING ERRCODE = '22023';
	END IF;
	IF window_months IS NULL OR window_months OPERATOR(pg_catalog.<) 1
	   OR window_months OPERATOR(pg_catalog.>) 120
	   OR overdue_months IS NULL OR overdue_months OPERATOR(pg_catalog.<) 1
	   OR overdue_months OPERATOR(pg_catalog.>) 120 THEN
		RAISE EXCEPTION 'metric windows must be 1 to 120 months, not % and %',
			window_months, overdue_months
			USING ERRCODE = '22023';
	END IF;
	w_start := (as_of OPERATOR(pg_catalog.-) pg_catalog.make_interval(months => window_months))::date;
	o_start := (as_of OPERATOR(pg_catalog.-) pg_catalog.make_interval(months => overdue_months))::date;
	/*
	 * The window's months, oldest first: month k is (as_of - (W-k+1)
	 * months, as_of - (W-k) months].  width_bucket over their ascending
	 * ends finds an invoice's month by binary search (on date - 1, since a
	 * month includes its end).
	 */
	SELECT pg_catalog.array_agg((as_of OPERATOR(pg_catalog.-)
								 pg_catalog.make_interval(months => k))::date ORDER BY k DESC)
	  INTO month_ends
	  FROM pg_catalog.generate_series(0, window_months) k;

	/*
	 * A receivable's open amount as of the date is amount - allocated plus
	 * what was allocated after the date (usually nothing); when that is 0,
	 * every allocation was on or before the date and last_allocated_on is
	 * its settlement date.  Payment behaviour comes from the allocations
	 * themselves, which carry their invoice's customer and date.
	 */
	RETURN QUERY
	WITH later AS (
		SELECT l.receivable_id, pg_catalog.sum(l.amount) AS amount
		  FROM credit.allocations l
		 WHERE l.allocated_on OPERATOR(pg_catalog.>) as_of
		   AND (customer IS NULL OR l.customer_key OPERATOR(pg_catalog.=) customer)
		 GROUP BY l.receivable_id
	), payments AS (
		SELECT l.customer_key,
			   pg_catalog.sum(l.amount OPERATOR(pg_catalog.*) (l.allocated_on OPERATOR(pg_catalog.-) l.invoice_date))
				   AS paid_days,
			   pg_catalog.sum(l.amount) AS paid_in_window
		  FROM credit.allocations l
		 WHERE l.allocated_on OPERATOR(pg_catalog.>) w_start
		   AND l.allocated_on OPERATOR(pg_catalog.<=) as_of
		   AND l.invoice_date OPERATOR(pg_catalog.<=) as_of
		   AND (customer IS NULL OR l.customer_key OPERATOR(pg_catalog.=) customer)
		 GROUP BY l.customer_key
	), items AS (
		SELECT r.customer_key, r.amount, r.invoice_date, r.due_date,
			   r.amount OPERATOR(pg_catalog.-) r.allocated OPERATOR(pg_catalog.+) COALESCE(x.amount, 0)
				   AS open_at,
			   r.last_allocated_on AS settled_on,
			   CASE WHEN r.invoice_date OPERATOR(pg_catalog.>) w_start
					THEN pg_catalog.width_bucket(r.invoice_date OPERATOR(pg_catalog.-) 1, month_ends)
			   END AS month_no
		  FROM credit.receivables r
		  LEFT JOIN later x ON x.receivable_id OPERATOR(pg_catalog.=) r.receivable_id
		 WHERE r.invoice_date OPERATOR(pg_catalog.<=) as_of
		   AND (customer IS NULL OR r.customer_key OPERATOR(pg_catalog.=) customer)
	), per_month AS (
		/* one row per customer and window month (month_no NULL: before the window) */
		SELECT i.customer_key, i.month_no,
			   pg_catalog.min(i.invoice_date) AS first_invoice,
			   pg_catalog.max(CASE
					WHEN i.open_at OPERATOR(pg_catalog.>) 0
						 AND i.due_date OPERATOR(pg_catalog.<) as_of
					THEN as_of OPERATOR(pg_catalog.-) i.due_date
					WHEN i.open_at OPERATOR(pg_catalog.=) 0
						 AND i.settled_on OPERATOR(pg_catalog.>) w_start
						 AND i.settled_on OPERATOR(pg_catalog.>) i.due_date
					THEN i.settled_on OPERATOR(pg_catalog.-) i.due_date
					END) AS max_days_overdue,
			   pg_catalog.max(as_of OPERATOR(pg_catalog.-) i.due_date)
					FILTER (WHERE i.open_at OPERATOR(pg_catalog.>) 0
							  AND i.due_date OPERATOR(pg_catalog.<) as_of) AS current_days_overdue,
			   pg_catalog.count(*) FILTER (WHERE i.due_date OPERATOR(pg_catalog.>) o_start
					AND i.due_date OPERATOR(pg_catalog.<) as_of
					AND (i.open_at OPERATOR(pg_catalog.>) 0
						 OR i.settled_on OPERATOR(pg_catalog.>) i.due_date)) AS overdue_count,
			   pg_catalog.sum(i.amount) FILTER (WHERE i.due_date OPERATOR(pg_catalog.>) o_start
					AND i.due_date OPERATOR(pg_catalog.<) as_of
					AND (i.open_at OPERATOR(pg_catalog.>) 0
						 OR i.settled_on OPERATOR(pg_catalog.>) i.due_date)) AS overdue_amount,
			   pg_catalog.sum(i.amount) FILTER (WHERE i.month_no IS NOT NULL) AS sales
		  FROM items i
		 GROUP BY i.customer_key, i.month_no
	), per_customer AS (
		SELECT m.customer_key,
			   pg_catalog.min(m.first_invoice) AS first_invoice,
			   COALESCE(pg_catalog.max(m.max_days_overdue), 0) AS max_days_overdue,
			   COALESCE(pg_catalog.max(m.current_days_overdue), 0) AS current_days_overdue,
			   pg_catalog.sum(m.overdue_count)::integer AS overdue_count,
			   COALESCE(pg_catalog.sum(m.overdue_amount), 0) AS overdue_amount,
			   COALESCE(pg_catalog.sum(m.sales), 0) AS window_sales,
			   COALESCE(pg_catalog.sum(m.sales OPERATOR(pg_catalog.*) m.sales), 0) AS sum_squares
		  FROM per_month m
		 GROUP BY m.customer_key
	)
	SELECT a.customer_key::text,
		   pg_catalog.round(y.paid_days OPERATOR(pg_catalog./)
							NULLIF(y.paid_in_window, 0), 2),
		   c.max_days_overdue,
		   COALESCE(c.current_days_overdue, 0),
		   c.overdue_count,
		   c.overdue_amount,
		   pg_catalog.round((as_of OPERATOR(pg_catalog.-)
							 COALESCE(p.customer_since, c.first_invoice,
									  (a.created_at AT TIME ZONE 'UTC')::date))::numeric
							OPERATOR(pg_catalog./) 365.25, 2),
		   pg_catalog.round(c.window_sales OPERATOR(pg_catalog./) window_months, 2),
		   CASE WHEN c.window_sales OPERATOR(pg_catalog.>) 0 THEN
			   pg_catalog.round(pg_catalog.sqrt(GREATEST(
				   (c.sum_squares OPERATOR(pg_catalog./) window_months)
				   OPERATOR(pg_catalog.-) ((c.window_sales OPERATOR(pg_catalog./) window_months)
										   OPERATOR(pg_catalog.^) 2), 0))
				   OPERATOR(pg_catalog./) (c.window_sales OPERATOR(pg_catalog./) window_months), 4)
		   END,
		   /* credit.effective_limit(a), spelled out: a call per account costs more than the rest */
		   pg_catalog.round(credit.live_exposure(a.customer_key, a.exposure) OPERATOR(pg_catalog./)
							NULLIF(a.credit_limit OPERATOR(pg_catalog.+)
								   CASE WHEN a.temp_limit OPERATOR(pg_catalog.>) 0
											 AND (a.temp_limit_from IS NULL
												  OR a.temp_limit_from OPERATOR(pg_catalog.<=) pg_catalog.now())
											 AND pg_catalog.now() OPERATOR(pg_catalog.<) a.temp_limit_until
										THEN a.temp_limit ELSE 0 END, 0), 4),
		   p.registered_capital
	  FROM credit.accounts a
	  LEFT JOIN per_customer c ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN payments y ON y.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN credit.profiles p ON p.customer_key OPERATOR(pg_catalog.=) a.customer_key
	 WHERE customer IS NULL OR a.customer_key OPERATOR(pg_catalog.=) customer;
END;
$$;

COMMENT ON FUNCTION credit.customer_metrics(date, integer, integer, text) IS
'The built-in metrics of every account (or of one customer) as of a date, for windows of window_months and overdue_months months.';
