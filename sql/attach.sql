/*
 * attach.sql: attaching credit enforcement to an application's order table.
 *
 * credit.attach_orders checks the table and its columns, locks the table
 * against writers (SHARE ROW EXCLUSIVE, what CREATE TRIGGER takes anyway),
 * creates the C triggers, and adds the open orders already in the table to
 * their customers' exposure, so the figure is exact from the first moment.
 * credit.detach_orders does the reverse under the same lock.  The metadata
 * lives in credit.attachments, which pg_dump keeps; an event trigger removes
 * the row of a table that is dropped.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.attachments (
	orders			regclass PRIMARY KEY,
	customer_column	name NOT NULL,
	amount_column	name NOT NULL,
	status_column	name,
	open_statuses	text[],
	attached_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	attached_by		text NOT NULL DEFAULT credit.caller(),
	role			text NOT NULL DEFAULT 'orders',
	builtin			boolean NOT NULL DEFAULT false,
	over_limit		text NOT NULL DEFAULT 'reject',
	key_column		name,
	held_status		text,
	release_status	text,
	rejected_status	text,
	segment_column	name,
	currency_column	name,
	CONSTRAINT attachments_role_check
		CHECK (role OPERATOR(pg_catalog.=) ANY ('{orders,receivables,payments}'::text[])),
	CONSTRAINT attachments_status_check
		CHECK ((status_column IS NULL) OPERATOR(pg_catalog.=)
			   (open_statuses IS NULL)),
	CONSTRAINT attachments_over_limit_check
		CHECK (over_limit OPERATOR(pg_catalog.=) ANY ('{reject,hold,warn}'::text[])
			   AND (over_limit OPERATOR(pg_catalog.=) 'reject' OR role OPERATOR(pg_catalog.=) 'orders')
			   AND (over_limit OPERATOR(pg_catalog.=) 'reject' OR key_column IS NOT NULL)
			   AND ((over_limit OPERATOR(pg_catalog.=) 'hold') OPERATOR(pg_catalog.=)
					(held_status IS NOT NULL AND release_status IS NOT NULL
					 AND rejected_status IS NOT NULL AND status_column IS NOT NULL))),
	CONSTRAINT attachments_currency_check
		CHECK (currency_column IS NULL
			   OR (role OPERATOR(pg_catalog.=) 'orders' AND over_limit OPERATOR(pg_catalog.=) 'reject'))
);

COMMENT ON TABLE credit.attachments IS
'Tables whose rows count as credit exposure, and which columns hold the customer, amount and status. role orders: increases are checked against the limit; receivables: counted, not checked; payments: lower exposure. builtin rows are the extension''s own ledger tables. over_limit (orders): reject, hold (write held_status, open a release application) or warn. Maintained by credit.attach_orders, credit.attach_receivables and credit.detach_orders.';

COMMENT ON COLUMN credit.attachments.segment_column IS
'Column naming the credit segment (business unit) of each row: the row counts on account customer/segment (a NULL segment: on the customer''s own account). NULL: no segments.';

COMMENT ON COLUMN credit.attachments.currency_column IS
'Column holding each row''s currency (ISO 4217): a row in another currency than its account''s counts at the rate of the account''s currency position (credit.currency_positions). NULL: every row is in its account''s currency.';

SELECT pg_catalog.pg_extension_config_dump('credit.attachments', 'WHERE NOT builtin');

/*
 * C trigger functions (src/enforce.c).  The row trigger has no SET
 * search_path: it resolves no names itself, and its internal queries run
 * with search_path pinned (credit_become_owner); a SET per row would cost
 * about 4% of an order's CPU.
 */
CREATE FUNCTION credit.enforce_orders()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_enforce_orders'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION credit.enforce_orders() IS
'Row trigger on attached order tables: keeps exposure current and rejects increases past available credit.';

CREATE FUNCTION credit.enforce_orders_truncate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_enforce_orders_truncate'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.enforce_orders_truncate() IS
'Statement trigger on attached order tables: TRUNCATE releases the exposure of the open orders it removes.';

/*
 * The condition that makes a row of an attached table count (its status is
 * open), and the open exposure per customer key as a query text.  Used by
 * attach, detach, reconcile and TRUNCATE, so they agree with the trigger.
 */
CREATE FUNCTION credit.open_orders_filter(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN ($1).status_column IS NULL THEN 'true'
	ELSE pg_catalog.format(
		'(o.%I)::pg_catalog.text OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])',
		($1).status_column, ($1).open_statuses)
	END;

/*
 * The account key of a row o of an attached table, as SQL: the customer
 * key in text form, and customer/segment for a table with a segment column
 * (a NULL segment: the customer's own account).
 */
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

CREATE FUNCTION credit.open_exposure_query(att credit.attachments)
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

/*
 * attach, detach and repair count a table's orders after locking it, which
 * needs the fresh snapshot per statement that only READ COMMITTED gives.
 */
CREATE FUNCTION credit.require_read_committed(what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
		RAISE EXCEPTION '% must run at READ COMMITTED', what
			USING ERRCODE = '25000',
				  HINT = 'It counts the table''s orders after locking it; a snapshot taken before the lock would miss orders committed meanwhile.';
	END IF;
END;
$$;

/*
 * Attach a table in a role (see credit.attachments).  update_of limits the
 * row trigger's UPDATE event to those columns; only the built-in ledger
 * tables use it (their open amounts are generated from them).
 */
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

CREATE FUNCTION credit.detach_orders(orders regclass)
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

CREATE FUNCTION credit.column_type(rel regclass, col name)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t	regtype;
BEGIN
	SELECT a.atttypid INTO t FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) rel
	   AND a.attname OPERATOR(pg_catalog.=) col
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
			USING ERRCODE = '42703', COLUMN = col,
				  TABLE = (SELECT c.relname FROM pg_catalog.pg_class c
							WHERE c.oid OPERATOR(pg_catalog.=) rel),
				  SCHEMA = (SELECT n.nspname FROM pg_catalog.pg_class c
							  JOIN pg_catalog.pg_namespace n
								ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
							 WHERE c.oid OPERATOR(pg_catalog.=) rel);
	END IF;
	RETURN t;
END;
$$;

COMMENT ON FUNCTION credit.column_type(regclass, name) IS
'Type of a column of a table; raises 42703 when it does not exist.';

CREATE FUNCTION credit.reconcile(repair boolean DEFAULT false)
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

/*
 * a dropped attached table leaves no metadata behind; SECURITY DEFINER:
 * it fires for every DROP of every role, most of which have no privilege
 * on schema credit
 */
CREATE FUNCTION credit.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM credit.attachments a
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
	   AND d.objsubid OPERATOR(pg_catalog.=) 0
	   AND a.orders::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid;
END;
$$;

CREATE EVENT TRIGGER credit_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION credit.forget_dropped_tables();

/*
 * DROP TABLE or DROP SCHEMA of attached tables releases their exposure
 * first.  No SET search_path: the statement's names are resolved with the
 * caller's search_path, as the DROP resolves them; the C code pins
 * search_path itself (and runs as the owner) for its internal queries.
 */
CREATE FUNCTION credit.release_dropped_tables()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'credit_release_dropped_tables'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE EVENT TRIGGER credit_release_dropped_tables ON ddl_command_start
	WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA')
	EXECUTE FUNCTION credit.release_dropped_tables();
