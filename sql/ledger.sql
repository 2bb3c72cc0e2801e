/*
 * ledger.sql: the shared-memory exposure ledger's SQL side (src/shared_ledger.c).
 *
 * With credit in shared_preload_libraries (and credit.shared_ledger_accounts
 * > 0), accounts are served by escrow reservations in shared memory instead
 * of row locks.  An entry is rebuilt from the source tables on its first use
 * since the server started (credit.rebuild_exposure); credit.ledger_backend
 * says which ledger serves an account, credit.shared_ledger() lists the
 * entries, and credit.live_exposure gives the figure the serving ledger holds.
 * Without the preload all of this is inert: every account is served by the
 * row-locked ledger.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

/* every customer's exposure (own plus descendants'), as SQL over the source tables */
CREATE FUNCTION credit.rebuilt_exposure_query()
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

/* own plus descendants' exposure of one account, from the source tables */
CREATE FUNCTION credit.rebuild_exposure(customer_key text)
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

/* every account's exposure from the source tables, in one pass */
CREATE FUNCTION credit.rebuild_exposures(OUT customer_key text, OUT exposure numeric)
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

CREATE FUNCTION credit.ledger_backend(customer_key text)
RETURNS text
AS 'MODULE_PATHNAME', 'credit_ledger_backend'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.ledger_backend(text) IS
'Which exposure ledger serves the account: shared memory (credit in shared_preload_libraries) or row lock.';

CREATE FUNCTION credit.shared_ledger(OUT customer_key text, OUT state text,
									 OUT committed_exposure numeric, OUT pending numeric,
									 OUT pending_transactions integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'credit_shared_ledger'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.shared_ledger() IS
'The shared-memory ledger''s entries of this database: committed exposure and pending reservations (empty without the preload).';

CREATE FUNCTION credit.adjust_shared_exposure(customer_keys text[], deltas numeric[])
RETURNS integer
AS 'MODULE_PATHNAME', 'credit_adjust_shared_exposure'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.adjust_shared_exposure(text[], numeric[]) IS
'Internal: adds each delta to the account''s figure in the shared-memory ledger alone (no check, no roll-up), as a reservation of this transaction; used by credit.reconcile(repair => true) under its locks. Returns how many accounts it served.';

CREATE FUNCTION credit.accounts_ledger_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_accounts_ledger_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

/* named to fire before the other triggers on credit.accounts */
CREATE TRIGGER accounts__ledger
	BEFORE INSERT OR UPDATE OR DELETE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.accounts_ledger_trigger();
