/*
 * currency.sql: orders in other currencies than their account's.
 *
 * An account keeps its limit and exposure in its own currency
 * (accounts.currency).  An order table attached with a currency column may
 * hold orders in any currency: such an order counts at the rate booked on
 * its account's currency position, one row per (account, order currency)
 * in credit.currency_positions.  A position is booked the first time the
 * account gets an order in that currency, at the rate credit.exchange_rates
 * gives for the business date (credit.business_date()); every later order
 * in that currency, and every update or deletion of one, counts at the
 * same booked rate, so an order always releases exactly what it added and
 * exposure never moves because someone edited the rates table.  Exposure
 * moves to new rates only when credit.revalue(as_of) is run: it rebooks
 * every position at the rate valid on as_of, applies the differences
 * (open foreign amount x (new rate - old rate)) through the exposure
 * ledger, records them (credit.revaluations, credit.revaluation_lines) and
 * returns every account whose exposure changed, with the watch and limit
 * lines it crossed.  A missing rate is an error (CR008), never 1.0.
 *
 * Invariant (checked by credit.reconcile()): an account's own exposure from
 * a currency table is the sum over its open orders of amount x (1 when the
 * order is in the account's currency, else the position's rate).
 *
 * Concurrency.  Only credit.revalue changes a position's rate, and it holds
 * SHARE locks on credit.attachments and on every attached table with a
 * currency column while it reads the open amounts and rebooks: no order of
 * those tables is written meanwhile (an order's statement holds ROW
 * EXCLUSIVE on its table until its transaction ends), and no table is
 * attached or detached.  An order therefore converts at a rate that stays
 * booked until its transaction ends, read in a fresh snapshot (also at
 * REPEATABLE READ) so it never uses a rate a committed revaluation
 * replaced.  Accounts in one tree share one currency (CR004), and an
 * account's currency cannot change while it has exposure, positions or
 * members (55000); the ledger also checks, under the account
 * row's lock, that the currency an order was converted to is still the
 * account's.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.exchange_rates (
	from_currency	text NOT NULL,
	to_currency		text NOT NULL,
	valid_from		date NOT NULL,
	valid_until		date,
	rate			numeric NOT NULL,
	source			text,
	PRIMARY KEY (from_currency, to_currency, valid_from),
	CONSTRAINT exchange_rates_currency_check
		CHECK (from_currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'
			   AND to_currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'
			   AND from_currency OPERATOR(pg_catalog.<>) to_currency),
	CONSTRAINT exchange_rates_rate_check
		CHECK (rate OPERATOR(pg_catalog.>) 0 AND rate OPERATOR(pg_catalog.<) 1e9),
	CONSTRAINT exchange_rates_validity_check
		CHECK (valid_until OPERATOR(pg_catalog.>) valid_from)
);

COMMENT ON TABLE credit.exchange_rates IS
'Exchange rates with their validity: one unit of from_currency is worth rate units of to_currency from valid_from until valid_until (exclusive) or until the next rate of the pair starts. Only the direct pair is used (no inverse, no cross rates). Editing it changes no exposure; credit.revalue does.';
COMMENT ON COLUMN credit.exchange_rates.valid_until IS
'End of validity, exclusive; NULL: until the next rate of the pair starts. A date after it and before the next rate has no rate.';
COMMENT ON COLUMN credit.exchange_rates.source IS 'Where the rate comes from (central bank fixing, treasury, ...).';

SELECT pg_catalog.pg_extension_config_dump('credit.exchange_rates', '');

CREATE FUNCTION credit.rate_on(from_currency text, to_currency text, on_date date)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT CASE WHEN r.valid_until IS NULL OR $3 OPERATOR(pg_catalog.<) r.valid_until
					THEN r.rate END
		  FROM credit.exchange_rates r
		 WHERE r.from_currency OPERATOR(pg_catalog.=) $1
		   AND r.to_currency OPERATOR(pg_catalog.=) $2
		   AND r.valid_from OPERATOR(pg_catalog.<=) $3
		 ORDER BY r.valid_from DESC LIMIT 1);

COMMENT ON FUNCTION credit.rate_on(text, text, date) IS
'The rate of one unit of from_currency in to_currency on a date: the latest rate of the pair starting on or before it, if it has not expired; NULL when there is none.';

/* rate_on, or CR008 naming the pair and the date */
CREATE FUNCTION credit.required_rate(from_currency text, to_currency text, on_date date)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	numeric := credit.rate_on(from_currency, to_currency, on_date);
BEGIN
	IF r IS NULL THEN
		RAISE EXCEPTION 'no exchange rate from % to % on %', from_currency, to_currency, on_date
			USING ERRCODE = 'CR008',
				  DETAIL = 'Amounts in another currency count only at a recorded rate; none is valid on that date.',
				  HINT = pg_catalog.format('Record one: INSERT INTO credit.exchange_rates (from_currency, to_currency, valid_from, rate) VALUES (%L, %L, %L, ...).',
										   from_currency, to_currency, on_date);
	END IF;
	RETURN r;
END;
$$;

COMMENT ON FUNCTION credit.required_rate(text, text, date) IS
'credit.rate_on, but a missing rate is an error (CR008).';

CREATE FUNCTION credit.business_date(at timestamptz DEFAULT pg_catalog.now())
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT pg_catalog.timezone(s.time_zone, $1)::date FROM credit.settings s);

COMMENT ON FUNCTION credit.business_date(timestamptz) IS
'The calendar date of a moment in the company''s time zone (credit.settings.time_zone): the date whose exchange rate a new currency position books.';

CREATE TABLE credit.currency_positions (
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts (customer_key) ON UPDATE CASCADE ON DELETE CASCADE,
	currency		text NOT NULL,
	account_currency text NOT NULL,
	rate			numeric NOT NULL,
	rate_date		date NOT NULL,
	booked_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_key, currency),
	CONSTRAINT currency_positions_currency_check
		CHECK (currency OPERATOR(pg_catalog.<>) account_currency),
	CONSTRAINT currency_positions_rate_check
		CHECK (rate OPERATOR(pg_catalog.>) 0)
);

COMMENT ON TABLE credit.currency_positions IS
'Per account and foreign currency, the rate at which its orders in that currency count: booked with the account''s first order in the currency, rebooked only by credit.revalue. Kept by the engine; do not write it.';
COMMENT ON COLUMN credit.currency_positions.rate IS 'One unit of currency in account_currency.';
COMMENT ON COLUMN credit.currency_positions.rate_date IS 'The date whose rate this is (the business date of the booking, or the as_of of the last revaluation).';

SELECT pg_catalog.pg_extension_config_dump('credit.currency_positions', '');

/*
 * The position of an account in a currency, booked at the business date's
 * rate when there is none yet (CR008 when that rate is missing).  Called
 * by the order trigger (src/currency.c) and by attach; an ON CONFLICT
 * update returns a position another session booked meanwhile.
 */
CREATE FUNCTION credit.book_position(customer_key text, currency text)
RETURNS credit.currency_positions
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p		credit.currency_positions;
	acur	text;
	today	date := credit.business_date();
BEGIN
	SELECT a.currency INTO acur FROM credit.accounts a
	 WHERE a.customer_key OPERATOR(pg_catalog.=) book_position.customer_key;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer "%" has no credit account', customer_key
			USING ERRCODE = 'CR003';
	END IF;
	IF acur OPERATOR(pg_catalog.=) currency THEN
		RAISE EXCEPTION 'customer "%" keeps its account in %: no position is needed', customer_key, currency
			USING ERRCODE = '22023';
	END IF;
	INSERT INTO credit.currency_positions AS x (customer_key, currency, account_currency, rate, rate_date)
	VALUES (customer_key, currency, acur, credit.required_rate(currency, acur, today), today)
	ON CONFLICT ON CONSTRAINT currency_positions_pkey
	DO UPDATE SET rate = x.rate
	RETURNING * INTO p;
	RETURN p;
END;
$$;

COMMENT ON FUNCTION credit.book_position(text, text) IS
'Internal: the currency position of an account, booked at the rate of the business date if it has none (CR008 when that rate is missing).';

CREATE TABLE credit.revaluations (
	revaluation_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	as_of			date NOT NULL,
	revalued_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	revalued_by		text NOT NULL DEFAULT credit.caller()
);

COMMENT ON TABLE credit.revaluations IS 'Every run of credit.revalue: the date whose rates it booked, when and by whom.';

CREATE TABLE credit.revaluation_lines (
	revaluation_id	bigint NOT NULL REFERENCES credit.revaluations,
	customer_key	text COLLATE "C" NOT NULL,
	currency		text NOT NULL,
	open_amount		numeric NOT NULL,
	old_rate		numeric NOT NULL,
	new_rate		numeric NOT NULL,
	change			numeric NOT NULL,
	PRIMARY KEY (revaluation_id, customer_key, currency)
);

COMMENT ON TABLE credit.revaluation_lines IS
'Per revaluation and currency position: the open amount in the currency, the old and new rate, and the change of the account''s exposure (open_amount x (new_rate - old_rate)).';

SELECT pg_catalog.pg_extension_config_dump('credit.revaluations', '');
SELECT pg_catalog.pg_extension_config_dump('credit.revaluation_lines', '');

/*
 * The open amount per account key and currency of an attached table with
 * a currency column, as a query text (customer_key, currency, amount).
 */
CREATE FUNCTION credit.open_currency_query(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'SELECT %1$s AS customer_key, (o.%5$I)::pg_catalog.text AS currency, '
	'COALESCE(pg_catalog.sum((o.%2$I)::pg_catalog.numeric), 0) AS amount '
	'FROM %3$s o WHERE %4$s GROUP BY 1, 2',
	credit.account_key_sql($1), ($1).amount_column, ($1).orders,
	credit.open_orders_filter($1), ($1).currency_column);

COMMENT ON FUNCTION credit.open_currency_query(credit.attachments) IS
'Internal: the SQL of the open amount per account key and currency of a table attached with a currency column.';

/* a foreign-currency order counted without its position: the invariant is broken */
CREATE FUNCTION credit.missing_position(customer_key text, currency text)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'customer "%" has open orders in % but no currency position', customer_key, currency
		USING ERRCODE = '55000',
			  DETAIL = 'credit.currency_positions records the rate at which such orders count; its row is missing.',
			  HINT = pg_catalog.format('Book one at today''s rate: SELECT credit.book_position(%L, %L); then check with credit.reconcile().',
									   customer_key, currency);
END;
$$;

COMMENT ON FUNCTION credit.missing_position(text, text) IS
'Internal: raises 55000 for open foreign-currency orders whose currency position is missing.';

/* the ledger, unchecked, from SQL (C: src/exposure.c); for credit.revalue */
CREATE FUNCTION credit.apply_exposure(customer_keys text[], deltas numeric[], what text)
RETURNS void
AS 'MODULE_PATHNAME', 'credit_apply_exposure'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.apply_exposure(text[], numeric[], text) IS
'Internal: changes the exposure of each customer (and its ancestors) by its delta, unchecked, through the exposure ledger in its lock order.';

CREATE FUNCTION credit.revalue(as_of date)
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

COMMENT ON FUNCTION credit.revalue(date) IS
'Rebook every currency position at the rate valid on as_of (CR008 if one is missing: then nothing changes) and apply the differences to exposure. Returns every account whose exposure changed, groups included: before, after, the change, the effective limit and watch line, and whether it crossed the watch line or the limit (over or under). Recorded in credit.revaluations and credit.revaluation_lines.';

/*
 * An account's currency is the currency of its tree, of its exposure and
 * of its positions: a child must share its parent's (CR004, which also
 * refuses changing a member's currency), and it cannot change while the
 * account has exposure, positions or members (55000).
 */
CREATE FUNCTION credit.accounts_currency_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pcur	text;
BEGIN
	IF NEW.parent_key IS NOT NULL AND
	   (TG_OP OPERATOR(pg_catalog.=) 'INSERT' OR NEW.parent_key IS DISTINCT FROM OLD.parent_key
		OR NEW.currency OPERATOR(pg_catalog.<>) OLD.currency) THEN
		SELECT a.currency INTO pcur FROM credit.accounts a
		 WHERE a.customer_key OPERATOR(pg_catalog.=) NEW.parent_key;
		IF pcur OPERATOR(pg_catalog.<>) NEW.currency THEN
			RAISE EXCEPTION 'customer "%" keeps its account in %, its group "%" in %',
					NEW.customer_key, NEW.currency, NEW.parent_key, pcur
				USING ERRCODE = 'CR004',
					  DETAIL = 'Every account of a group keeps its limit and exposure in the group''s currency.',
					  HINT = 'Give the account the group''s currency; orders in other currencies are converted (attach_orders currency_column).';
		END IF;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.currency OPERATOR(pg_catalog.<>) OLD.currency THEN
		/* a member's currency is its group's (CR004 above) */
		/* NEW.exposure: the serving ledger's figure (trigger accounts__ledger) */
		IF NEW.exposure OPERATOR(pg_catalog.<>) 0
		   OR EXISTS (SELECT 1 FROM credit.accounts c
					   WHERE c.parent_key OPERATOR(pg_catalog.=) OLD.customer_key)
		   OR EXISTS (SELECT 1 FROM credit.currency_positions p
					   WHERE p.customer_key OPERATOR(pg_catalog.=) OLD.customer_key) THEN
			RAISE EXCEPTION 'cannot change the currency of customer "%" from % to %',
					OLD.customer_key, OLD.currency, NEW.currency
				USING ERRCODE = '55000',
					  DETAIL = 'An account''s currency can change only while it has no exposure, no currency positions and no members.';
		END IF;
	END IF;
	RETURN NEW;
END;
$$;

CREATE TRIGGER accounts_currency_insert
	BEFORE INSERT ON credit.accounts
	FOR EACH ROW WHEN (NEW.parent_key IS NOT NULL)
	EXECUTE FUNCTION credit.accounts_currency_check();
CREATE TRIGGER accounts_currency_update
	BEFORE UPDATE OF currency, parent_key ON credit.accounts
	FOR EACH ROW WHEN (NEW.currency OPERATOR(pg_catalog.<>) OLD.currency
					   OR NEW.parent_key IS DISTINCT FROM OLD.parent_key)
	EXECUTE FUNCTION credit.accounts_currency_check();
