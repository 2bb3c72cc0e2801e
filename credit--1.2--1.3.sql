/*
 * credit--1.2--1.3.sql: upgrade from 1.2 to 1.3 (frozen once 1.3 is released).
 *
 * 1.3 adds multi-currency exposure: credit.exchange_rates, currency
 * positions booked per account and currency, attach_orders(...,
 * currency_column), credit.revalue(as_of), credit.settings.time_zone and
 * credit.business_date(), and the currency rules of accounts (a group
 * shares one currency; an account's currency is fixed while it is in use).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.3'" to load this file. \quit

/* sql/settings.sql */
/* added empty, then filled: no "missing value" is left in the catalog */
ALTER TABLE credit.settings ADD COLUMN time_zone text;
UPDATE credit.settings SET time_zone = 'UTC';
ALTER TABLE credit.settings
	ALTER COLUMN time_zone SET DEFAULT 'UTC',
	ALTER COLUMN time_zone SET NOT NULL,
	ADD CONSTRAINT settings_time_zone_check
		CHECK (pg_catalog.timezone(time_zone, '2000-01-01 00:00+00'::timestamptz) IS NOT NULL);
COMMENT ON COLUMN credit.settings.time_zone IS
'The company''s time zone: credit.business_date() gives dates in it (the date whose exchange rate a new currency position books).';

/* sql/attach.sql */
ALTER TABLE credit.attachments
	ADD COLUMN currency_column name,
	ADD CONSTRAINT attachments_currency_check
		CHECK (currency_column IS NULL
			   OR (role OPERATOR(pg_catalog.=) 'orders' AND over_limit OPERATOR(pg_catalog.=) 'reject'));
COMMENT ON COLUMN credit.attachments.currency_column IS
'Column holding each row''s currency (ISO 4217): a row in another currency than its account''s counts at the rate of the account''s currency position (credit.currency_positions). NULL: every row is in its account''s currency.';

CREATE FUNCTION credit.account_key_sql(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN ($1).segment_column IS NULL
	THEN pg_catalog.format('(o.%I)::pg_catalog.text', ($1).customer_column)
	ELSE pg_catalog.format('((o.%I)::pg_catalog.text OPERATOR(pg_catalog.||) '
						   'COALESCE(''/'' OPERATOR(pg_catalog.||) (o.%I)::pg_catalog.text, ''''))',
						   ($1).customer_column, ($1).segment_column)
	END;

CREATE OR REPLACE FUNCTION credit.open_exposure_query(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'SELECT %1$s AS customer_key, '
	'COALESCE(pg_catalog.sum((o.%2$I)::pg_catalog.numeric %6$s), 0) %5$s AS exposure '
	'FROM %3$s o %7$s WHERE %4$s GROUP BY 1',
	credit.account_key_sql($1), ($1).amount_column, ($1).orders,
	credit.open_orders_filter($1),
	CASE ($1).role WHEN 'payments' THEN 'OPERATOR(pg_catalog.*) -1' ELSE '' END,
	/* a row in another currency than its account's counts at its position's rate */
	CASE WHEN ($1).currency_column IS NOT NULL
		 THEN pg_catalog.format('OPERATOR(pg_catalog.*) CASE WHEN a.customer_key IS NULL THEN NULL '
								'WHEN (o.%1$I)::pg_catalog.text OPERATOR(pg_catalog.=) a.currency THEN 1 '
								'ELSE COALESCE(p.rate, credit.missing_position(a.customer_key, (o.%1$I)::pg_catalog.text)) END',
								($1).currency_column)
		 ELSE '' END,
	CASE WHEN ($1).currency_column IS NOT NULL
		 THEN pg_catalog.format('LEFT JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) %1$s '
								'LEFT JOIN credit.currency_positions p ON p.customer_key OPERATOR(pg_catalog.=) a.customer_key '
								'AND p.currency OPERATOR(pg_catalog.=) (o.%2$I)::pg_catalog.text',
								credit.account_key_sql($1), ($1).currency_column)
		 ELSE '' END);

DROP FUNCTION credit.attach_receivables(regclass, name, name, name, text[]);
DROP FUNCTION credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name);
DROP FUNCTION credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name);

CREATE FUNCTION credit.attach_table(orders regclass,
									customer_column name,
									amount_column name,
									status_column name,
									open_statuses text[],
									role text,
									builtin boolean DEFAULT false,
									update_of name[] DEFAULT NULL,
									over_limit text DEFAULT 'reject',
									key_column name DEFAULT NULL,
									held_status text DEFAULT NULL,
									release_status text DEFAULT NULL,
									rejected_status text DEFAULT NULL,
									segment_column name DEFAULT NULL,
									currency_column name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	seg_type regtype;
	bad_segment text;
	cur_type regtype;
	bad_currency text;
	kind	"char";
	cust_type regtype;
	amt_type regtype;
	st_type	regtype;
	att		credit.attachments;
	missing	text;
	s		text;
	null_customer boolean;
	rel_schema name;
	rel_name name;
	bad_amount text;
BEGIN
	IF orders IS NULL OR customer_column IS NULL OR amount_column IS NULL THEN
		RAISE EXCEPTION 'orders, customer_column and amount_column must not be null'
			USING ERRCODE = '22004';
	END IF;
	SELECT c.relkind, n.nspname, c.relname INTO kind, rel_schema, rel_name
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) orders;
	IF kind OPERATOR(pg_catalog.<>) 'r' THEN
		RAISE EXCEPTION '"%" is not an ordinary table', orders
			USING ERRCODE = '42809',
				  HINT = 'Attach the table itself; views, foreign and partitioned tables are not supported.';
	END IF;
	IF EXISTS (SELECT 1 FROM credit.attachments a
				WHERE a.orders OPERATOR(pg_catalog.=) attach_table.orders) THEN
		RAISE EXCEPTION 'table "%" is already attached', orders
			USING ERRCODE = '42710',
				  HINT = 'Run credit.detach_orders first to change how it is attached.';
	END IF;
	IF (status_column IS NULL) OPERATOR(pg_catalog.<>) (open_statuses IS NULL) THEN
		RAISE EXCEPTION 'status_column and open_statuses must be given together'
			USING ERRCODE = '22023';
	END IF;
	IF open_statuses IS NOT NULL AND
	   (pg_catalog.cardinality(open_statuses) OPERATOR(pg_catalog.=) 0
		OR pg_catalog.array_position(open_statuses, NULL) IS NOT NULL) THEN
		RAISE EXCEPTION 'open_statuses must list at least one status and no nulls'
			USING ERRCODE = '22023';
	END IF;

	IF over_limit IS NULL OR over_limit OPERATOR(pg_catalog.<>) ALL ('{reject,hold,warn}'::text[]) THEN
		RAISE EXCEPTION 'over_limit must be reject, hold or warn, not %', COALESCE(over_limit, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	IF over_limit OPERATOR(pg_catalog.<>) 'reject' THEN
		IF key_column IS NULL THEN
			RAISE EXCEPTION 'over_limit % needs key_column: the column that identifies an order', over_limit
				USING ERRCODE = '22023';
		END IF;
		IF over_limit OPERATOR(pg_catalog.=) 'hold' AND
		   (status_column IS NULL OR held_status IS NULL OR rejected_status IS NULL) THEN
			RAISE EXCEPTION 'over_limit hold needs status_column, held_status and rejected_status'
				USING ERRCODE = '22023',
					  HINT = 'A held order is one with the held status; the release writes release_status (default: the first open status), a rejection rejected_status.';
		END IF;
		IF over_limit OPERATOR(pg_catalog.=) 'hold' THEN
			release_status := COALESCE(release_status, open_statuses[1]);
			IF held_status OPERATOR(pg_catalog.=) ANY (open_statuses)
			   OR rejected_status OPERATOR(pg_catalog.=) ANY (open_statuses) THEN
				RAISE EXCEPTION 'held_status and rejected_status must not be open statuses'
					USING ERRCODE = '22023';
			END IF;
			IF release_status OPERATOR(pg_catalog.<>) ALL (open_statuses) THEN
				RAISE EXCEPTION 'release_status "%" must be one of the open statuses', release_status
					USING ERRCODE = '22023';
			END IF;
		END IF;
	END IF;

	IF currency_column IS NOT NULL AND (role OPERATOR(pg_catalog.<>) 'orders'
										OR over_limit OPERATOR(pg_catalog.<>) 'reject') THEN
		RAISE EXCEPTION 'currency_column is supported for order tables with over_limit reject only'
			USING ERRCODE = '0A000',
				  HINT = 'Held orders and warnings are recorded with their amount, which must be in the account''s currency.';
	END IF;

	PERFORM credit.require_read_committed('credit.attach_orders');

	/* no revaluation runs while a table is attached (credit.revalue) */
	LOCK TABLE credit.attachments IN ROW EXCLUSIVE MODE;
	/* the same lock CREATE TRIGGER takes: no writer runs while we count */
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);

	cust_type := credit.column_type(orders, customer_column);
	amt_type := credit.column_type(orders, amount_column);
	IF cust_type NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype,
						 'text'::regtype, 'character varying'::regtype, 'uuid'::regtype) THEN
		RAISE EXCEPTION 'customer column "%" has unsupported type %', customer_column, cust_type
			USING ERRCODE = '42804', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = customer_column,
				  HINT = 'Customer keys may be bigint, integer, smallint, text, varchar or uuid.';
	END IF;
	IF amt_type NOT IN ('numeric'::regtype, 'bigint'::regtype, 'integer'::regtype,
						'smallint'::regtype) THEN
		RAISE EXCEPTION 'amount column "%" has unsupported type %', amount_column, amt_type
			USING ERRCODE = '42804', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = amount_column,
				  HINT = 'Amounts must be numeric (or an integer type); money in floating point is refused.';
	END IF;
	IF status_column IS NOT NULL THEN
		st_type := credit.column_type(orders, status_column);
		IF NOT (st_type IN ('text'::regtype, 'character varying'::regtype, 'name'::regtype,
							'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
				OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t
							WHERE t.oid OPERATOR(pg_catalog.=) st_type
							  AND t.typtype OPERATOR(pg_catalog.=) 'e')) THEN
			RAISE EXCEPTION 'status column "%" has unsupported type %', status_column, st_type
				USING ERRCODE = '42804', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = status_column,
					  HINT = 'Statuses may be text, varchar, an enum or an integer type.';
		END IF;
		/* every open status must be a value of the column's type */
		FOREACH s IN ARRAY open_statuses OPERATOR(pg_catalog.||)
						   ARRAY[held_status, release_status, rejected_status] LOOP
			CONTINUE WHEN s IS NULL;
			EXECUTE pg_catalog.format('SELECT %L::%s', s, st_type);
		END LOOP;
	END IF;
	IF key_column IS NOT NULL THEN
		PERFORM credit.column_type(orders, key_column);
		/* the key must identify one row: a unique index on exactly that column */
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
						 JOIN pg_catalog.pg_attribute a
						   ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
						  AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
						WHERE i.indrelid OPERATOR(pg_catalog.=) orders
						  AND i.indisunique AND i.indnkeyatts OPERATOR(pg_catalog.=) 1
						  AND i.indpred IS NULL AND i.indexprs IS NULL
						  AND a.attname OPERATOR(pg_catalog.=) key_column) THEN
			RAISE EXCEPTION 'key column "%" of "%" is not unique', key_column, orders
				USING ERRCODE = '42P10', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = key_column,
					  HINT = 'Use the primary key, or a column with a unique index of its own.';
		END IF;
	END IF;

	IF segment_column IS NOT NULL THEN
		seg_type := credit.column_type(orders, segment_column);
		IF seg_type NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype,
							'text'::regtype, 'character varying'::regtype, 'uuid'::regtype) THEN
			RAISE EXCEPTION 'segment column "%" has unsupported type %', segment_column, seg_type
				USING ERRCODE = '42804', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = segment_column,
					  HINT = 'Segments may be bigint, integer, smallint, text, varchar or uuid.';
		END IF;
	END IF;

	IF currency_column IS NOT NULL THEN
		cur_type := credit.column_type(orders, currency_column);
		IF cur_type NOT IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype) THEN
			RAISE EXCEPTION 'currency column "%" has unsupported type %', currency_column, cur_type
				USING ERRCODE = '42804', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = currency_column,
					  HINT = 'Currencies are ISO 4217 codes in a text, varchar or char(3) column.';
		END IF;
	END IF;

	INSERT INTO credit.attachments (orders, customer_column, amount_column,
									status_column, open_statuses, role, builtin,
									over_limit, key_column, held_status, release_status,
									rejected_status, segment_column, currency_column)
	VALUES (orders, customer_column, amount_column, status_column, open_statuses,
			role, builtin, over_limit, key_column, held_status, release_status,
			rejected_status, segment_column, currency_column)
	RETURNING * INTO att;

	EXECUTE pg_catalog.format(
		'CREATE TRIGGER credit_enforce AFTER INSERT OR DELETE OR UPDATE %s ON %s '
		'FOR EACH ROW EXECUTE FUNCTION credit.enforce_orders()',
		CASE WHEN update_of IS NULL THEN ''
			 ELSE 'OF ' OPERATOR(pg_catalog.||)
				  (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ')
					 FROM pg_catalog.unnest(update_of) c)
		END, orders);
	EXECUTE pg_catalog.format(
		'CREATE TRIGGER credit_enforce_truncate BEFORE TRUNCATE ON %s '
		'FOR EACH STATEMENT EXECUTE FUNCTION credit.enforce_orders_truncate()', orders);

	/* open orders already in the table must pass what the trigger checks */
	EXECUTE pg_catalog.format(
		'SELECT o.%1$I IS NULL, (o.%2$I)::pg_catalog.numeric::pg_catalog.text '
		'FROM %3$s o WHERE %4$s AND (o.%1$I IS NULL '
		'OR (o.%2$I)::pg_catalog.numeric OPERATOR(pg_catalog.<) 0 '
		'OR (o.%2$I)::pg_catalog.numeric OPERATOR(pg_catalog.>=) 1e15) LIMIT 1',
		customer_column, amount_column, orders, credit.open_orders_filter(att))
		INTO null_customer, bad_amount;
	IF segment_column IS NOT NULL THEN
		EXECUTE pg_catalog.format(
			'SELECT (o.%1$I)::pg_catalog.text FROM %2$s o WHERE %3$s '
			'AND ((o.%1$I)::pg_catalog.text OPERATOR(pg_catalog.~) ''/'' '
			'OR (o.%1$I)::pg_catalog.text OPERATOR(pg_catalog.=) '''') LIMIT 1',
			segment_column, orders, credit.open_orders_filter(att)) INTO bad_segment;
		IF bad_segment IS NOT NULL THEN
			RAISE EXCEPTION 'open order in "%" has credit segment "%", empty or containing "/"', orders, bad_segment
				USING ERRCODE = '22023', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = segment_column,
					  HINT = 'A segment''s account is "customer/segment": segments are non-empty names without "/".';
		END IF;
	END IF;
	IF currency_column IS NOT NULL THEN
		EXECUTE pg_catalog.format(
			'SELECT ''NULL'' FROM %2$s o WHERE %3$s AND o.%1$I IS NULL LIMIT 1',
			currency_column, orders, credit.open_orders_filter(att)) INTO bad_currency;
		IF bad_currency IS NOT NULL THEN
			RAISE EXCEPTION 'open order in "%" has no currency', orders
				USING ERRCODE = '23502', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = currency_column,
					  HINT = 'Give every open order its currency (or close it), then attach again.';
		END IF;
	END IF;
	IF null_customer THEN
		RAISE EXCEPTION 'open order in "%" has no customer', orders
			USING ERRCODE = '23502', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = customer_column,
				  HINT = 'Give every open order a customer (or close it), then attach again.';
	ELSIF bad_amount IN ('NaN', 'Infinity', '-Infinity') OR bad_amount LIKE '-%' THEN
		RAISE EXCEPTION 'open order in "%" has amount %', orders, bad_amount
			USING ERRCODE = '22023', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = amount_column,
				  HINT = 'An open order''s amount must be a finite number from 0 up to below 1e15.';
	ELSIF bad_amount IS NOT NULL THEN
		RAISE EXCEPTION 'open order in "%" has amount % out of range', orders, bad_amount
			USING ERRCODE = '22003', SCHEMA = rel_schema, TABLE = rel_name, COLUMN = amount_column,
				  HINT = 'An open order''s amount must be a finite number from 0 up to below 1e15.';
	END IF;

	/* open orders already in the table become exposure now */
	EXECUTE pg_catalog.format(
		'SELECT pg_catalog.min(e.customer_key) FROM (%s) e '
		'WHERE NOT EXISTS (SELECT 1 FROM credit.accounts a '
		'WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key)',
		credit.open_exposure_query(att)) INTO missing;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'customer "%" has open orders in "%" but no credit account', missing, orders
			USING ERRCODE = 'CR003', SCHEMA = rel_schema, TABLE = rel_name,
				  HINT = 'Open accounts for every customer with open orders (INSERT INTO credit.accounts ...), then attach again.';
	END IF;
	/* orders in other currencies than their account's count at a booked rate (CR008 if none) */
	IF currency_column IS NOT NULL THEN
		EXECUTE pg_catalog.format(
			'SELECT pg_catalog.count(credit.book_position(x.customer_key, x.currency)) '
			'FROM (%s) x JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) x.customer_key '
			'WHERE x.currency OPERATOR(pg_catalog.<>) a.currency', credit.open_currency_query(att));
	END IF;
	/* through the ledger (each customer and its ancestors, in its lock order) */
	EXECUTE pg_catalog.format(
		'SELECT credit.apply_exposure(pg_catalog.array_agg(e.customer_key ORDER BY e.customer_key), '
		'pg_catalog.array_agg(e.exposure ORDER BY e.customer_key), ''attach'') '
		'FROM (%s) e WHERE e.exposure OPERATOR(pg_catalog.<>) 0',
		credit.open_exposure_query(att));
END;
$$;

CREATE FUNCTION credit.attach_orders(orders regclass,
									 customer_column name,
									 amount_column name,
									 status_column name DEFAULT NULL,
									 open_statuses text[] DEFAULT NULL,
									 over_limit text DEFAULT 'reject',
									 key_column name DEFAULT NULL,
									 held_status text DEFAULT NULL,
									 release_status text DEFAULT NULL,
									 rejected_status text DEFAULT NULL,
									 segment_column name DEFAULT NULL,
									 currency_column name DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT credit.attach_table(orders, customer_column, amount_column,
							   status_column, open_statuses, 'orders', false, NULL,
							   over_limit, key_column, held_status, release_status,
							   rejected_status, segment_column, currency_column);
END;

COMMENT ON FUNCTION credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name, name) IS
'Enforce credit limits on an order table: its open rows count as their customers'' exposure from now on, including the rows already there. over_limit: reject (CR001/CR002), hold (the order is written with held_status and a release application opens; key_column identifies it) or warn (it passes and is recorded). segment_column: each row counts on the account customer/segment (credit segments; a NULL segment counts on the customer''s own account). currency_column: each row''s currency; a row in another currency than its account''s counts at the account''s booked rate for it (credit.currency_positions; over_limit reject only).';

CREATE FUNCTION credit.attach_receivables(invoices regclass,
										  customer_column name,
										  amount_column name,
										  status_column name DEFAULT NULL,
										  open_statuses text[] DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT credit.attach_table(invoices, customer_column, amount_column,
							   status_column, open_statuses, 'receivables');
END;

COMMENT ON FUNCTION credit.attach_receivables(regclass, name, name, name, text[]) IS
'Count an application''s own invoice table as exposure (its open amount column): like an order table, but an invoice is a posted fact and is never refused.';

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
		IF pg_catalog.current_setting('credit.shared_ledger_accounts', true) IS NOT NULL
		   AND pg_catalog.current_setting('credit.shared_ledger_accounts', true) OPERATOR(pg_catalog.<>) '0' THEN
			RAISE EXCEPTION 'credit.reconcile(repair => true) is not supported under the shared-memory ledger yet'
				USING ERRCODE = '0A000',
					  HINT = 'A restart rebuilds every account from the attached tables on its first use.';
		END IF;
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
'Recompute exposure from the attached tables (each customer''s own, rolled up to its ancestors) and return the accounts whose stored figure differs; with repair => true, lock the tables and correct them.';

CREATE OR REPLACE FUNCTION credit.detach_orders(orders regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
BEGIN
	SELECT * INTO att FROM credit.attachments a
	 WHERE a.orders OPERATOR(pg_catalog.=) detach_orders.orders;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table "%" is not attached', orders
			USING ERRCODE = '42704';
	END IF;
	IF att.builtin THEN
		RAISE EXCEPTION 'table "%" is part of the credit ledger and cannot be detached', orders
			USING ERRCODE = '55000';
	END IF;
	PERFORM credit.require_read_committed('credit.detach_orders');
	/* no revaluation runs while a table is detached (credit.revalue) */
	LOCK TABLE credit.attachments IN ROW EXCLUSIVE MODE;
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
	EXECUTE pg_catalog.format(
		'SELECT credit.apply_exposure(pg_catalog.array_agg(e.customer_key ORDER BY e.customer_key), '
		'pg_catalog.array_agg(OPERATOR(pg_catalog.-) e.exposure ORDER BY e.customer_key), ''detach'') '
		'FROM (%s) e WHERE e.exposure OPERATOR(pg_catalog.<>) 0',
		credit.open_exposure_query(att));
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS credit_enforce ON %s', orders);
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS credit_enforce_truncate ON %s', orders);
	DELETE FROM credit.attachments a
	 WHERE a.orders OPERATOR(pg_catalog.=) detach_orders.orders;
END;
$$;

COMMENT ON FUNCTION credit.detach_orders(regclass) IS
'Stop enforcing on an order table and release the exposure of its open orders.';

/* sql/currency.sql */
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
		'SELECT a.customer_key::pg_catalog.text, x.before, a.exposure, c.exposure, x.lim, x.watch, '
		'CASE WHEN x.watch_after AND NOT x.watch_before THEN ''over'' '
		'WHEN x.watch_before AND NOT x.watch_after THEN ''under'' END, '
		'CASE WHEN x.over_after AND NOT x.over_before THEN ''over'' '
		'WHEN x.over_before AND NOT x.over_after THEN ''under'' END '
		'FROM c JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) c.customer_key '
		'CROSS JOIN LATERAL (SELECT (a.exposure OPERATOR(pg_catalog.-) c.exposure) AS before, '
		'  credit.effective_limit(a) AS lim, '
		'  (a.watch_ratio OPERATOR(pg_catalog.*) credit.effective_limit(a)) AS watch) y '
		'CROSS JOIN LATERAL (SELECT y.before, y.lim, y.watch, '
		'  (y.before OPERATOR(pg_catalog.>) 0 AND (y.before OPERATOR(pg_catalog.>=) y.watch)) AS watch_before, '
		'  (a.exposure OPERATOR(pg_catalog.>) 0 AND (a.exposure OPERATOR(pg_catalog.>=) y.watch)) AS watch_after, '
		'  (y.before OPERATOR(pg_catalog.>) y.lim) AS over_before, '
		'  (a.exposure OPERATOR(pg_catalog.>) y.lim) AS over_after) x '
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

/* sql/ledger.sql */
/* own plus descendants' exposure of one account, from the source tables */
CREATE FUNCTION credit.rebuild_exposure(customer_key text)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
	parts	text := 'SELECT NULL::pg_catalog.text AS customer_key, 0::pg_catalog.numeric AS exposure WHERE false';
	total	numeric;
BEGIN
	FOR att IN SELECT * FROM credit.attachments ORDER BY orders::oid LOOP
		parts := parts OPERATOR(pg_catalog.||) ' UNION ALL ' OPERATOR(pg_catalog.||)
			credit.open_exposure_query(att);
	END LOOP;
	EXECUTE pg_catalog.format('SELECT COALESCE(pg_catalog.sum(r.exposure), 0) FROM (%s) r '
							  'WHERE r.customer_key OPERATOR(pg_catalog.=) $1',
							  credit.rolled_up_query(parts))
	INTO total USING customer_key;
	RETURN total;
END;
$$;

COMMENT ON FUNCTION credit.rebuild_exposure(text) IS
'Internal: an account''s exposure (its own and its descendants'') computed from the attached tables, as credit.reconcile computes it; the shared-memory ledger loads an entry with it.';

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

CREATE FUNCTION credit.accounts_ledger_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_accounts_ledger_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

/* named to fire before the other triggers on credit.accounts */
CREATE TRIGGER accounts__ledger
	BEFORE INSERT OR UPDATE OR DELETE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.accounts_ledger_trigger();

/* sql/accounts.sql: the serving ledger's figure */
CREATE FUNCTION credit.live_exposure(customer_key text, stored numeric)
RETURNS numeric
AS 'MODULE_PATHNAME', 'credit_live_exposure'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.live_exposure(text, numeric) IS
'The exposure the serving ledger holds for the account as this transaction sees it: the shared-memory ledger''s figure, or stored (the accounts column) under the row-locked ledger.';

/* sql/accounts.sql: the balances read the serving ledger */
CREATE OR REPLACE VIEW credit.account_balances WITH (security_invoker = true) AS
SELECT a.customer_key,
	   a.customer_name,
	   a.currency,
	   a.owner,
	   a.status,
	   a.credit_limit,
	   credit.effective_limit(a) OPERATOR(pg_catalog.-) a.credit_limit
		   AS temp_limit_in_force,
	   credit.effective_limit(a) AS effective_limit,
	   credit.live_exposure(a.customer_key, a.exposure) AS exposure,
	   credit.effective_limit(a) OPERATOR(pg_catalog.-)
		   credit.live_exposure(a.customer_key, a.exposure) AS available_credit
  FROM credit.accounts a;

/* sql/hierarchy.sql: the delete check reads the serving ledger */
CREATE OR REPLACE FUNCTION credit.accounts_delete_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.parent_key IS NOT NULL
	   AND credit.live_exposure(OLD.customer_key, OLD.exposure) OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'cannot delete customer "%" while it has exposure', OLD.customer_key
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('Its exposure %s is part of the exposure of group "%s".',
											 OLD.exposure, OLD.parent_key),
				  HINT = pg_catalog.format('Close its open items, or move it out of the group first: SELECT credit.move_account(%L, NULL).',
										   OLD.customer_key);
	END IF;
	RETURN OLD;
END;
$$;

COMMENT ON FUNCTION credit.accounts_delete_check() IS
'BEFORE DELETE on credit.accounts: a member of a group (parent_key) with exposure cannot be deleted (55000).';

/* sql/roles.sql: the new tables and functions, as a fresh install grants them */
GRANT SELECT ON credit.exchange_rates, credit.currency_positions, credit.revaluations,
	credit.revaluation_lines
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
REVOKE ALL ON FUNCTION credit.rate_on(text, text, date), credit.required_rate(text, text, date),
	credit.business_date(timestamptz), credit.book_position(text, text),
	credit.open_currency_query(credit.attachments), credit.missing_position(text, text),
	credit.apply_exposure(text[], numeric[], text), credit.revalue(date),
	credit.accounts_currency_check(), credit.account_key_sql(credit.attachments), credit.rebuild_exposure(text), credit.ledger_backend(text),
	credit.live_exposure(text, numeric), credit.shared_ledger(), credit.accounts_ledger_trigger(),
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name, name),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name, name),
	credit.attach_receivables(regclass, name, name, name, text[])
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name, name),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name, name),
	credit.attach_receivables(regclass, name, name, name, text[])
	TO credit_admin;
/* currencies: rates kept by finance; revaluation by finance and admin */
GRANT INSERT, UPDATE, DELETE ON credit.exchange_rates TO credit_admin, credit_finance;
/* attach_orders books the positions of the orders already in a table */
GRANT INSERT, UPDATE ON credit.currency_positions TO credit_admin;
GRANT EXECUTE ON FUNCTION credit.rate_on(text, text, date), credit.business_date(timestamptz)
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.revalue(date) TO credit_admin, credit_finance;
GRANT EXECUTE ON FUNCTION credit.required_rate(text, text, date),
	credit.book_position(text, text), credit.open_currency_query(credit.attachments),
	credit.missing_position(text, text), credit.account_key_sql(credit.attachments)
	TO credit_admin;

CREATE POLICY own_customers ON credit.currency_positions
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.currency_positions ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.revaluation_lines
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.revaluation_lines ENABLE ROW LEVEL SECURITY;

/* the shared-memory ledger: who serves an account, and its live figure */
GRANT EXECUTE ON FUNCTION credit.ledger_backend(text), credit.live_exposure(text, numeric)
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.shared_ledger() TO credit_admin;
/* attach_orders and detach_orders add and release through the ledger */
GRANT EXECUTE ON FUNCTION credit.apply_exposure(text[], numeric[], text) TO credit_admin;
