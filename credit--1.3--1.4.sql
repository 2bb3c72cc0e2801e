/*
 * credit--1.3--1.4.sql: upgrade from 1.3 to 1.4 (frozen once 1.4 is released).
 *
 * 1.4 completes the shared-memory exposure ledger: a database's entries are
 * loaded in one pass (credit.rebuild_exposures), and every reader of
 * exposure (report views, snapshot_exposure, revalue, hold releases,
 * over-limit warnings, customer_metrics) reads the serving ledger's figure
 * (credit.live_exposure); credit.reconcile(repair => true) repairs the
 * shared ledger's figures too (credit.adjust_shared_exposure).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.4'" to load this file. \quit

/* sql/accounts.sql */
CREATE OR REPLACE FUNCTION credit.available_credit(account credit.accounts,
										at timestamptz DEFAULT pg_catalog.now())
RETURNS numeric
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
RETURN credit.effective_limit($1, $2)
	   OPERATOR(pg_catalog.-) credit.live_exposure(($1).customer_key, ($1).exposure);

COMMENT ON FUNCTION credit.available_credit(credit.accounts, timestamptz) IS
'Effective limit minus exposure (the serving ledger''s figure, credit.live_exposure): the largest increase an order may bring.';

/* sql/ledger.sql */
CREATE OR REPLACE FUNCTION credit.rebuilt_exposure_query()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
	parts	text := 'SELECT NULL::pg_catalog.text AS customer_key, 0::pg_catalog.numeric AS exposure WHERE false';
BEGIN
	FOR att IN SELECT * FROM credit.attachments ORDER BY orders::oid LOOP
		parts := parts OPERATOR(pg_catalog.||) ' UNION ALL ' OPERATOR(pg_catalog.||)
			credit.open_exposure_query(att);
	END LOOP;
	RETURN credit.rolled_up_query(parts);
END;
$$;

COMMENT ON FUNCTION credit.rebuilt_exposure_query() IS
'Internal: SQL giving (customer_key, exposure) for every customer with open rows and every ancestor, computed from the attached tables as credit.reconcile computes it.';

CREATE OR REPLACE FUNCTION credit.rebuild_exposure(customer_key text)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	total	numeric;
BEGIN
	EXECUTE pg_catalog.format('SELECT COALESCE(pg_catalog.sum(r.exposure), 0) FROM (%s) r '
							  'WHERE r.customer_key OPERATOR(pg_catalog.=) $1',
							  credit.rebuilt_exposure_query())
	INTO total USING customer_key;
	RETURN total;
END;
$$;

COMMENT ON FUNCTION credit.rebuild_exposure(text) IS
'Internal: an account''s exposure (its own and its descendants'') computed from the attached tables, as credit.reconcile computes it; the shared-memory ledger loads an entry for an account created since its first use with it.';

CREATE OR REPLACE FUNCTION credit.rebuild_exposures(OUT customer_key text, OUT exposure numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT a.customer_key::pg_catalog.text, COALESCE(r.exposure, 0) '
		'FROM credit.accounts a LEFT JOIN (%s) r '
		'ON r.customer_key OPERATOR(pg_catalog.=) a.customer_key',
		credit.rebuilt_exposure_query());
END;
$$;

COMMENT ON FUNCTION credit.rebuild_exposures() IS
'Internal: every account''s exposure (its own and its descendants'') computed from the attached tables in one pass; the shared-memory ledger loads a database''s entries with it on their first use since the server started.';

CREATE OR REPLACE FUNCTION credit.adjust_shared_exposure(customer_keys text[], deltas numeric[])
RETURNS integer
AS 'MODULE_PATHNAME', 'credit_adjust_shared_exposure'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.adjust_shared_exposure(text[], numeric[]) IS
'Internal: adds each delta to the account''s figure in the shared-memory ledger alone (no check, no roll-up), as a reservation of this transaction; used by credit.reconcile(repair => true) under its locks. Returns how many accounts it served.';

/* sql/attach.sql */
CREATE OR REPLACE FUNCTION credit.reconcile(repair boolean DEFAULT false)
RETURNS TABLE (customer_key text, stored_exposure numeric,
			   computed_exposure numeric, difference numeric)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
	parts	text := 'SELECT NULL::pg_catalog.text AS customer_key, 0::pg_catalog.numeric AS exposure WHERE false';
	rolled	text;
BEGIN
	IF repair THEN
		PERFORM credit.require_read_committed('credit.reconcile(repair => true)');
	END IF;
	FOR att IN SELECT * FROM credit.attachments ORDER BY orders::oid LOOP
		parts := parts || ' UNION ALL ' || credit.open_exposure_query(att);
		IF repair THEN
			EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', att.orders);
		END IF;
	END LOOP;
	IF repair THEN
		LOCK TABLE credit.accounts IN SHARE ROW EXCLUSIVE MODE;
	END IF;
	/* each customer's own exposure, rolled up the parent chains */
	rolled := credit.rolled_up_query(parts);
	RETURN QUERY EXECUTE pg_catalog.format(
		'WITH r AS (%s) '
		'SELECT a.customer_key::pg_catalog.text, a.live, '
		'COALESCE(c.exposure, 0), '
		'a.live OPERATOR(pg_catalog.-) COALESCE(c.exposure, 0) '
		'FROM (SELECT x.customer_key, credit.live_exposure(x.customer_key, x.exposure) AS live '
		'FROM credit.accounts x) a LEFT JOIN r c '
		'ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key '
		'WHERE a.live OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0) '
		'ORDER BY 1', rolled);
	IF repair THEN
		/*
		 * the shared-memory ledger's figures first (a reservation of this
		 * transaction: undone if it aborts); the UPDATE below then stores
		 * the figure in every row whose column differs
		 */
		EXECUTE pg_catalog.format(
			'WITH r AS (%s) '
			'SELECT credit.adjust_shared_exposure('
			'COALESCE(pg_catalog.array_agg(a.customer_key), ''{}''), '
			'COALESCE(pg_catalog.array_agg(COALESCE(c.exposure, 0) OPERATOR(pg_catalog.-) a.live), ''{}'')) '
			'FROM (SELECT x.customer_key::pg_catalog.text AS customer_key, '
			'credit.live_exposure(x.customer_key, x.exposure) AS live FROM credit.accounts x) a '
			'LEFT JOIN r c ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key '
			'WHERE a.live OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0)',
			rolled);
		EXECUTE pg_catalog.format(
			'WITH r AS (%s) '
			'UPDATE credit.accounts a SET exposure = COALESCE(c.exposure, 0) '
			'FROM credit.accounts a2 LEFT JOIN r c '
			'ON c.customer_key OPERATOR(pg_catalog.=) a2.customer_key '
			'WHERE a2.customer_key OPERATOR(pg_catalog.=) a.customer_key '
			'AND a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0)',
			rolled);
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.reconcile(boolean) IS
'Recompute exposure from the attached tables (each customer''s own, rolled up to its ancestors) and return the accounts whose figure (the serving ledger''s, credit.live_exposure) differs; with repair => true, lock the tables and correct them (the shared-memory ledger''s figure and the stored column).';

/* sql/currency.sql */
CREATE OR REPLACE FUNCTION credit.revalue(as_of date)
RETURNS TABLE (customer_key text, exposure_before numeric, exposure_after numeric,
			   change numeric, effective_limit numeric, watch_line numeric,
			   crossed_watch text, crossed_limit text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
	parts	text := 'SELECT NULL::pg_catalog.text AS customer_key, NULL::pg_catalog.text AS currency, '
					'0::pg_catalog.numeric AS amount WHERE false';
	rid		bigint;
	keys	text[];
	deltas	numeric[];
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'credit.revalue needs the date whose rates it books'
			USING ERRCODE = '22004';
	END IF;
	PERFORM credit.require_read_committed('credit.revalue');

	/* no attach or detach, no write of a currency table, no other revaluation meanwhile */
	LOCK TABLE credit.attachments IN SHARE MODE;
	FOR att IN SELECT * FROM credit.attachments a
				WHERE a.currency_column IS NOT NULL ORDER BY a.orders::oid LOOP
		EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', att.orders);
		parts := parts OPERATOR(pg_catalog.||) ' UNION ALL ' OPERATOR(pg_catalog.||)
			credit.open_currency_query(att);
	END LOOP;
	LOCK TABLE credit.currency_positions IN SHARE ROW EXCLUSIVE MODE;

	INSERT INTO credit.revaluations (as_of, revalued_by) VALUES (as_of, credit.caller())
	RETURNING revaluation_id INTO rid;
	/* every position at its new rate (CR008 for the first one missing: nothing changes) */
	EXECUTE pg_catalog.format(
		'INSERT INTO credit.revaluation_lines (revaluation_id, customer_key, currency, '
		'open_amount, old_rate, new_rate, change) '
		'SELECT $1, p.customer_key, p.currency, COALESCE(o.amount, 0), p.rate, n.rate, '
		'COALESCE(o.amount, 0) OPERATOR(pg_catalog.*) (n.rate OPERATOR(pg_catalog.-) p.rate) '
		'FROM credit.currency_positions p '
		'CROSS JOIN LATERAL (SELECT credit.required_rate(p.currency, p.account_currency, $2) AS rate) n '
		'LEFT JOIN (SELECT x.customer_key, x.currency, pg_catalog.sum(x.amount) AS amount '
		'FROM (%s) x GROUP BY 1, 2) o '
		'ON o.customer_key OPERATOR(pg_catalog.=) p.customer_key '
		'AND o.currency OPERATOR(pg_catalog.=) p.currency '
		'ORDER BY p.customer_key, p.currency', parts)
	USING rid, as_of;

	SELECT pg_catalog.array_agg(l.customer_key ORDER BY l.customer_key),
		   pg_catalog.array_agg(l.change ORDER BY l.customer_key)
	  INTO keys, deltas
	  FROM (SELECT r.customer_key, pg_catalog.sum(r.change) AS change
			  FROM credit.revaluation_lines r
			 WHERE r.revaluation_id OPERATOR(pg_catalog.=) rid
			 GROUP BY 1) l
	 WHERE l.change OPERATOR(pg_catalog.<>) 0;
	IF keys IS NOT NULL THEN
		PERFORM credit.apply_exposure(keys, deltas, 'revaluation');
	END IF;

	UPDATE credit.currency_positions p
	   SET rate = r.new_rate, rate_date = as_of, booked_at = pg_catalog.now()
	  FROM credit.revaluation_lines r
	 WHERE r.revaluation_id OPERATOR(pg_catalog.=) rid
	   AND r.customer_key OPERATOR(pg_catalog.=) p.customer_key
	   AND r.currency OPERATOR(pg_catalog.=) p.currency;

	/*
	 * every account whose exposure changed (groups included), with the lines
	 * it crossed: the status rule's, watch at exposure > 0 and >= watch_ratio
	 * x limit, hold above the limit
	 */
	RETURN QUERY EXECUTE pg_catalog.format(
		'WITH c AS (%s) '
		'SELECT a.customer_key::pg_catalog.text, x.before, l.exposure, c.exposure, x.lim, x.watch, '
		'CASE WHEN x.watch_after AND NOT x.watch_before THEN ''over'' '
		'WHEN x.watch_before AND NOT x.watch_after THEN ''under'' END, '
		'CASE WHEN x.over_after AND NOT x.over_before THEN ''over'' '
		'WHEN x.over_before AND NOT x.over_after THEN ''under'' END '
		'FROM c JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) c.customer_key '
		'CROSS JOIN LATERAL (SELECT credit.live_exposure(a.customer_key, a.exposure) AS exposure) l '
		'CROSS JOIN LATERAL (SELECT (l.exposure OPERATOR(pg_catalog.-) c.exposure) AS before, '
		'  credit.effective_limit(a) AS lim, '
		'  (a.watch_ratio OPERATOR(pg_catalog.*) credit.effective_limit(a)) AS watch) y '
		'CROSS JOIN LATERAL (SELECT y.before, y.lim, y.watch, '
		'  (y.before OPERATOR(pg_catalog.>) 0 AND (y.before OPERATOR(pg_catalog.>=) y.watch)) AS watch_before, '
		'  (l.exposure OPERATOR(pg_catalog.>) 0 AND (l.exposure OPERATOR(pg_catalog.>=) y.watch)) AS watch_after, '
		'  (y.before OPERATOR(pg_catalog.>) y.lim) AS over_before, '
		'  (l.exposure OPERATOR(pg_catalog.>) y.lim) AS over_after) x '
		'WHERE c.exposure OPERATOR(pg_catalog.<>) 0 ORDER BY 1',
		credit.rolled_up_query(pg_catalog.format(
			'SELECT r.customer_key, r.change AS exposure FROM credit.revaluation_lines r '
			'WHERE r.revaluation_id OPERATOR(pg_catalog.=) %s', rid)));
END;
$$;

/* sql/metrics.sql */
CREATE OR REPLACE FUNCTION credit.customer_metrics(as_of date DEFAULT CURRENT_DATE,
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

/* sql/holds.sql */
CREATE OR REPLACE FUNCTION credit.release_held_order(application_id bigint)
RETURNS numeric
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h credit.held_orders;
	acct credit.accounts;
	over numeric;
BEGIN
	IF credit.held_order_update($1, 'release') OPERATOR(pg_catalog.<>) 1 THEN
		SELECT * INTO h FROM credit.held_orders x WHERE x.application_id OPERATOR(pg_catalog.=) $1;
		RAISE EXCEPTION 'order "%" of "%" is no longer held', h.order_key, h.orders
			USING ERRCODE = '55000',
				  DETAIL = 'Its row is gone, or the application changed its status, amount or customer while it was held.';
	END IF;
	SELECT * INTO h FROM credit.held_orders x WHERE x.application_id OPERATOR(pg_catalog.=) $1;
	SELECT * INTO acct FROM credit.accounts x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) h.customer_key;
	over := LEAST(h.amount, GREATEST(credit.live_exposure(acct.customer_key, acct.exposure)
									 OPERATOR(pg_catalog.-) credit.effective_limit(acct), 0));
	UPDATE credit.held_orders x
	   SET state = 'released', decided_at = pg_catalog.now(), overrun = over,
		   changed_by = credit.caller()
	 WHERE x.hold_id OPERATOR(pg_catalog.=) h.hold_id;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_released', 'customer_key', h.customer_key, 'orders', h.orders::text,
		'order_key', h.order_key, 'amount', h.amount, 'overrun', over,
		'application_id', $1)::text);
	RETURN over;
END;
$$;

CREATE OR REPLACE FUNCTION credit.record_overlimit_warning(orders regclass, order_key text, customer text,
												amount numeric, refusal_code text,
												refusal_message text, actor text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct credit.accounts;
BEGIN
	SELECT * INTO acct FROM credit.accounts x WHERE x.customer_key OPERATOR(pg_catalog.=) $3;
	INSERT INTO credit.overlimit_warnings (orders, order_key, customer_key, amount, refusal_code,
										   refusal_message, exposure_after, effective_limit,
										   changed_by)
	VALUES ($1, $2, $3, $4, $5, $6, credit.live_exposure(acct.customer_key, acct.exposure),
			credit.effective_limit(acct), $7);
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_over_limit', 'customer_key', $3, 'orders', $1::text, 'order_key', $2,
		'amount', $4, 'exposure', credit.live_exposure(acct.customer_key, acct.exposure),
		'effective_limit', credit.effective_limit(acct), 'reason', $5)::text);
END;
$$;

/* sql/reporting.sql */
CREATE OR REPLACE FUNCTION credit.snapshot_exposure(as_of date DEFAULT CURRENT_DATE)
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

CREATE OR REPLACE VIEW credit.own_exposure WITH (security_invoker = true) AS
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

CREATE OR REPLACE VIEW credit.report_top_overdue WITH (security_invoker = true) AS
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

CREATE OR REPLACE VIEW credit.report_utilization WITH (security_invoker = true) AS
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

CREATE OR REPLACE VIEW credit.report_customer_360 WITH (security_invoker = true) AS
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

/* sql/roles.sql: the new internal functions, like every function, not for PUBLIC */
REVOKE ALL ON FUNCTION credit.rebuilt_exposure_query(), credit.rebuild_exposures(),
	credit.adjust_shared_exposure(text[], numeric[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.adjust_shared_exposure(text[], numeric[]) TO credit_admin;
