/*
 * credit--1.1--1.2.sql: upgrade from 1.1 to 1.2 (frozen once 1.2 is released).
 *
 * 1.2 adds group credit limits: accounts.parent_key, exposure rolled up to
 * every ancestor (the C ledger), credit.move_account, credit.account_tree
 * (the lock order, used by rescore and run_dunning), reconcile, attach and
 * detach rolling up, and credit.own_exposure for the reports that sum
 * exposure; and credit segments: attach_orders(..., segment_column).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.2'" to load this file. \quit

ALTER TABLE credit.accounts
	ADD COLUMN parent_key text COLLATE "C"
		REFERENCES credit.accounts (customer_key) ON UPDATE RESTRICT ON DELETE RESTRICT,
	ADD CONSTRAINT accounts_parent_key_check
		CHECK (parent_key OPERATOR(pg_catalog.<>) customer_key);
CREATE INDEX accounts_parent_key_idx ON credit.accounts (parent_key);
COMMENT ON COLUMN credit.accounts.parent_key IS
'The account above this one (a group above its subsidiaries), or NULL. Its exposure includes this account''s, and an increase here must fit it too. Set at INSERT (while the account has no exposure) or by credit.move_account.';
COMMENT ON COLUMN credit.accounts.exposure IS
'Open exposure kept by the engine: the customer''s own plus that of every account below it (parent_key). Do not write it; credit.reconcile() checks and repairs it.';

/* sql/hierarchy.sql */
CREATE FUNCTION credit.move_account(customer text, new_parent text)
RETURNS credit.accounts
AS 'MODULE_PATHNAME', 'credit_move_account'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.move_account(text, text) IS
'Moves a customer''s account under new_parent (NULL: no parent) with its exposure: off the old parent and its ancestors, onto the new ones, without a limit check (a new parent over its limit gets status hold). Waits for transactions that have changed exposure or locked account rows (LOCK credit.accounts IN EXCLUSIVE MODE) and holds new ones off until it commits; plain reads go on. 42704: an unknown customer or parent; 23514: the move would make a cycle; 22004: no customer; 25000: above READ COMMITTED; 54000: the tree would be deeper than 63 levels. Returns the account row.';

/*
 * Where each account stands in its tree: its root and its depth below it.
 * (root_key, depth, customer_key) is the order in which the ledger locks
 * accounts; SQL that locks many accounts (rescore, run_dunning) locks them
 * in that order too, so it cannot deadlock with orders.
 */
CREATE VIEW credit.account_tree WITH (security_invoker = true) AS
WITH RECURSIVE t AS (
	SELECT a.customer_key, a.customer_key AS root_key, 0 AS depth
	  FROM credit.accounts a
	 WHERE a.parent_key IS NULL
	UNION ALL
	SELECT a.customer_key, t.root_key, t.depth OPERATOR(pg_catalog.+) 1
	  FROM credit.accounts a
	  JOIN t ON a.parent_key OPERATOR(pg_catalog.=) t.customer_key
)
SELECT t.customer_key, t.root_key, t.depth FROM t;

COMMENT ON VIEW credit.account_tree IS
'Each account''s place in its group tree: the root account above it and its depth below it (0: a root). The ledger locks accounts in (root_key, depth, customer_key) order.';
COMMENT ON COLUMN credit.account_tree.customer_key IS 'The account.';
COMMENT ON COLUMN credit.account_tree.root_key IS 'The topmost account above it (itself for an account without a parent).';
COMMENT ON COLUMN credit.account_tree.depth IS 'Levels below the root: 0 for a root, 1 for its children, ...';

/*
 * The SQL of a per-customer exposure query (columns customer_key,
 * exposure) rolled up the parent chains: each account's own plus its
 * descendants'.  reconcile, attach_orders and detach_orders apply it.
 */
CREATE FUNCTION credit.rolled_up_query(per_customer text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'WITH RECURSIVE c AS (SELECT p.customer_key, pg_catalog.sum(p.exposure) AS exposure '
	'FROM (%s) p GROUP BY 1), '
	'up AS (SELECT c.customer_key COLLATE "C" AS k, c.exposure, 0 AS depth FROM c '
	'UNION ALL SELECT a.parent_key, up.exposure, up.depth OPERATOR(pg_catalog.+) 1 '
	'FROM up JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) up.k '
	'WHERE a.parent_key IS NOT NULL AND up.depth OPERATOR(pg_catalog.<) 64) '
	'SELECT up.k AS customer_key, pg_catalog.sum(up.exposure) AS exposure FROM up GROUP BY 1',
	$1);

COMMENT ON FUNCTION credit.rolled_up_query(text) IS
'Internal: wraps the SQL of a per-customer exposure query (customer_key, exposure) so that each account also gets its descendants'' exposure.';

/*
 * A member's exposure is part of its ancestors': deleting the member would
 * leave it there.  (A root account may be deleted as before.)
 */
CREATE FUNCTION credit.accounts_delete_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.parent_key IS NOT NULL AND OLD.exposure OPERATOR(pg_catalog.<>) 0 THEN
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

CREATE TRIGGER accounts_delete_check
	BEFORE DELETE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.accounts_delete_check();

REVOKE ALL ON FUNCTION credit.move_account(text, text), credit.rolled_up_query(text),
	credit.accounts_delete_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.move_account(text, text) TO credit_admin, credit_risk;
GRANT EXECUTE ON FUNCTION credit.rolled_up_query(text) TO credit_admin;
GRANT SELECT ON credit.account_tree TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;

/* the audit trail of accounts watches parent_key too */
DROP TRIGGER audit_insert ON credit.accounts;
DROP TRIGGER audit_update ON credit.accounts;
DROP TRIGGER audit_delete ON credit.accounts;
DROP TRIGGER audit_no_truncate ON credit.accounts;
SELECT credit.audit_table('credit.accounts', 'account:', 'customer_key',
						  'customer_key,credit_limit,temp_limit,temp_limit_from,temp_limit_until,payment_term_days,currency,owner,region,parent_key,watch_ratio,status,manual_status,dunning_status');

/*
 * credit segments: attach_orders(..., segment_column); attach and detach
 * roll exposure up the parent chains, and so does reconcile
 */
ALTER TABLE credit.attachments ADD COLUMN segment_column name;
COMMENT ON COLUMN credit.attachments.segment_column IS
'Column naming the credit segment (business unit) of each row: the row counts on account customer/segment (a NULL segment: on the customer''s own account). NULL: no segments.';
DROP FUNCTION credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text);
DROP FUNCTION credit.attach_receivables(regclass, name, name, name, text[]);
DROP FUNCTION credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text);
CREATE OR REPLACE FUNCTION credit.open_exposure_query(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'SELECT (o.%1$I)::pg_catalog.text %6$s AS customer_key, '
	'COALESCE(pg_catalog.sum((o.%2$I)::pg_catalog.numeric), 0) %5$s AS exposure '
	'FROM %3$s o WHERE %4$s GROUP BY 1',
	($1).customer_column, ($1).amount_column, ($1).orders,
	credit.open_orders_filter($1),
	CASE ($1).role WHEN 'payments' THEN 'OPERATOR(pg_catalog.*) -1' ELSE '' END,
	CASE WHEN ($1).segment_column IS NOT NULL
		 THEN pg_catalog.format('OPERATOR(pg_catalog.||) COALESCE(''/'' OPERATOR(pg_catalog.||) (o.%I)::pg_catalog.text, '''')',
								($1).segment_column)
		 ELSE '' END);

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
									segment_column name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	seg_type regtype;
	bad_segment text;
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

	PERFORM credit.require_read_committed('credit.attach_orders');

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

	INSERT INTO credit.attachments (orders, customer_column, amount_column,
									status_column, open_statuses, role, builtin,
									over_limit, key_column, held_status, release_status,
									rejected_status, segment_column)
	VALUES (orders, customer_column, amount_column, status_column, open_statuses,
			role, builtin, over_limit, key_column, held_status, release_status,
			rejected_status, segment_column)
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
	EXECUTE pg_catalog.format(
		'UPDATE credit.accounts a SET exposure = a.exposure OPERATOR(pg_catalog.+) e.exposure '
		'FROM (%s) e WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key',
		credit.rolled_up_query(credit.open_exposure_query(att)));
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
									 segment_column name DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT credit.attach_table(orders, customer_column, amount_column,
							   status_column, open_statuses, 'orders', false, NULL,
							   over_limit, key_column, held_status, release_status,
							   rejected_status, segment_column);
END;

COMMENT ON FUNCTION credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name) IS
'Enforce credit limits on an order table: its open rows count as their customers'' exposure from now on, including the rows already there. over_limit: reject (CR001/CR002), hold (the order is written with held_status and a release application opens; key_column identifies it) or warn (it passes and is recorded). segment_column: each row counts on the account customer/segment (credit segments; a NULL segment counts on the customer''s own account).';
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
REVOKE ALL ON FUNCTION
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name),
	credit.attach_receivables(regclass, name, name, name, text[])
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name),
	credit.attach_receivables(regclass, name, name, name, text[])
	TO credit_admin;
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
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
	EXECUTE pg_catalog.format(
		'UPDATE credit.accounts a SET exposure = a.exposure OPERATOR(pg_catalog.-) e.exposure '
		'FROM (%s) e WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key',
		credit.rolled_up_query(credit.open_exposure_query(att)));
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS credit_enforce ON %s', orders);
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS credit_enforce_truncate ON %s', orders);
	DELETE FROM credit.attachments a
	 WHERE a.orders OPERATOR(pg_catalog.=) detach_orders.orders;
END;
$$;

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
		'SELECT a.customer_key::pg_catalog.text, a.exposure, '
		'COALESCE(c.exposure, 0), '
		'a.exposure OPERATOR(pg_catalog.-) COALESCE(c.exposure, 0) '
		'FROM credit.accounts a LEFT JOIN r c '
		'ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key '
		'WHERE a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0) '
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

/* rescore, run_dunning and hold_left lock accounts in the ledger's order */
CREATE OR REPLACE FUNCTION credit.rescore(as_of date DEFAULT CURRENT_DATE,
							   scorecard bigint DEFAULT NULL)
RETURNS TABLE (scored bigint, grade_changes bigint, limits_applied bigint,
			   limit_requests bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sc credit.scorecards;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'rescore needs a finite as-of date' USING ERRCODE = '22023';
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225283);
	IF $2 IS NULL THEN
		SELECT * INTO sc FROM credit.scorecards s WHERE s.state OPERATOR(pg_catalog.=) 'active';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'there is no active scorecard'
				USING ERRCODE = '55000',
					  HINT = 'Activate one with credit.activate_scorecard.';
		END IF;
	ELSE
		SELECT * INTO sc FROM credit.scorecards s WHERE s.scorecard_id OPERATOR(pg_catalog.=) $2;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'scorecard % does not exist', $2 USING ERRCODE = '42704';
		END IF;
		IF sc.state OPERATOR(pg_catalog.=) 'draft' THEN
			RAISE EXCEPTION 'scorecard "%" version % is a draft', sc.name, sc.version
				USING ERRCODE = '55000',
					  DETAIL = 'Decisions are made only with activated versions, which never change.',
					  HINT = 'Compare a draft with credit.compare_scorecards, or activate it.';
		END IF;
	END IF;

	/* the grades in force never go back in time: score earlier dates without writing */
	IF EXISTS (SELECT 1 FROM credit.customer_grades g
				WHERE g.scored_on OPERATOR(pg_catalog.>) $1) THEN
		RAISE EXCEPTION 'rescore as of % is older than the grades in force', $1
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('Grades in force were scored as of %s.',
											 (SELECT pg_catalog.max(g.scored_on)
												FROM credit.customer_grades g)),
				  HINT = 'Score an earlier date with credit.score or credit.score_all, which write nothing.';
	END IF;

	RETURN QUERY
	WITH s AS MATERIALIZED (
		SELECT * FROM credit.score_all(sc.scorecard_id, as_of, NULL, true)
	), open_requests AS MATERIALIZED (
		/* joined, not probed per row: the table grows invisibly under this statement */
		SELECT o.customer_key, o.grade, o.current_limit, o.proposed_limit,
			   o.current_term, o.proposed_term
		  FROM credit.limit_requests o
		 WHERE o.state OPERATOR(pg_catalog.=) 'open'
	), history AS (
		INSERT INTO credit.score_history AS h
			   (scorecard_id, as_of, customer_key, score, computed_grade, grade,
				recommended_limit, recommended_term, reasons, points, metric_values)
		SELECT sc.scorecard_id, as_of, s.customer_key, s.score, s.grade, s.final_grade,
			   s.recommended_limit, s.recommended_term, s.reasons, s.points, s.metric_values
		  FROM s
		ON CONFLICT ON CONSTRAINT score_history_pkey DO UPDATE
		   SET score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade = EXCLUDED.grade, recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   points = EXCLUDED.points, metric_values = EXCLUDED.metric_values,
			   scored_at = pg_catalog.now()
		RETURNING 1
	), current AS (
		INSERT INTO credit.customer_grades AS g
			   (customer_key, scorecard_id, grade, score, computed_grade, grade_since,
				pending_grade, pending_since, recommended_limit, recommended_term,
				reasons, scored_on)
		SELECT s.customer_key, sc.scorecard_id, s.final_grade, s.score, s.grade, as_of,
			   s.pending_grade, s.pending_since, s.recommended_limit, s.recommended_term,
			   s.reasons, as_of
		  FROM s
		ON CONFLICT (customer_key) DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, grade = EXCLUDED.grade,
			   score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade_since = CASE WHEN g.grade OPERATOR(pg_catalog.=) EXCLUDED.grade
								  THEN g.grade_since ELSE EXCLUDED.grade_since END,
			   pending_grade = EXCLUDED.pending_grade, pending_since = EXCLUDED.pending_since,
			   recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   scored_on = EXCLUDED.scored_on, scored_at = pg_catalog.now()
		RETURNING 1
	), changes AS (
		INSERT INTO credit.grade_changes (customer_key, scorecard_id, as_of, old_grade,
										  new_grade, score, why, reasons)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.previous_grade, s.final_grade,
			   s.score, s.why, s.reasons
		  FROM s WHERE s.grade_changed
		RETURNING 1
	), locked AS (
		/*
		 * the accounts to change, locked in the ledger's order (root
		 * first, then key: credit.account_tree) before any is updated: no
		 * deadlock with a transaction that holds one account and then
		 * writes one later in that order
		 */
		SELECT a.customer_key
		  FROM credit.accounts a
		  JOIN s ON s.customer_key OPERATOR(pg_catalog.=) a.customer_key
		  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
		 WHERE s.limit_action OPERATOR(pg_catalog.=) 'apply'
		 ORDER BY t.root_key, t.depth, a.customer_key
		   FOR NO KEY UPDATE OF a
	), applied AS (
		UPDATE credit.accounts a
		   SET credit_limit = s.recommended_limit, payment_term_days = s.recommended_term
		  FROM s, locked l, credit.scorecard_grades gr
		 WHERE s.limit_action OPERATOR(pg_catalog.=) 'apply'
		   AND l.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND a.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND gr.scorecard_id OPERATOR(pg_catalog.=) sc.scorecard_id
		   AND gr.grade OPERATOR(pg_catalog.=) s.final_grade
		   /*
			* re-tested on the newest row version when the row changed
			* meanwhile (EvalPlanQual): a decrease policy never raises a
			* limit or lengthens a term someone set in the meantime
			*/
		   AND (gr.auto_apply OPERATOR(pg_catalog.=) 'always'
				OR (s.recommended_limit OPERATOR(pg_catalog.<=) a.credit_limit
					AND s.recommended_term OPERATOR(pg_catalog.<=) a.payment_term_days))
		RETURNING a.customer_key
	), closed AS (
		UPDATE credit.limit_requests r
		   SET state = 'superseded', updated_at = pg_catalog.now(), decided_at = pg_catalog.now()
		  FROM s
		 WHERE r.state OPERATOR(pg_catalog.=) 'open'
		   AND r.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND s.limit_action IS DISTINCT FROM 'request'
		RETURNING 1
	), requests AS (
		INSERT INTO credit.limit_requests AS r
			   (customer_key, scorecard_id, as_of, grade, score, current_limit,
				proposed_limit, current_term, proposed_term, state, reasons, decided_at)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.final_grade, s.score,
			   s.current_limit, s.recommended_limit, s.current_term, s.recommended_term,
			   CASE s.limit_action WHEN 'apply' THEN 'applied' ELSE 'open' END,
			   s.reasons,
			   CASE s.limit_action WHEN 'apply' THEN pg_catalog.now() END
		  FROM s
		  LEFT JOIN open_requests o ON o.customer_key OPERATOR(pg_catalog.=) s.customer_key
		 WHERE (s.limit_action OPERATOR(pg_catalog.=) 'request'
				/* an open request proposing this already stays as it is */
				AND (o.customer_key IS NULL
					 OR (o.grade, o.current_limit, o.proposed_limit,
						 o.current_term, o.proposed_term)
						IS DISTINCT FROM
						(s.final_grade, s.current_limit, s.recommended_limit,
						 s.current_term, s.recommended_term)))
			/* IN (subquery), hashed; = ANY (ARRAY(...)) scanned the array per row */
			OR s.customer_key OPERATOR(pg_catalog.=) ANY (SELECT x.customer_key FROM applied x)
		ON CONFLICT (customer_key) WHERE state OPERATOR(pg_catalog.=) 'open' DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, as_of = EXCLUDED.as_of,
			   grade = EXCLUDED.grade, score = EXCLUDED.score,
			   current_limit = EXCLUDED.current_limit, proposed_limit = EXCLUDED.proposed_limit,
			   current_term = EXCLUDED.current_term, proposed_term = EXCLUDED.proposed_term,
			   reasons = EXCLUDED.reasons, updated_at = pg_catalog.now()
		RETURNING r.state
	)
	SELECT (SELECT pg_catalog.count(*) FROM history),
		   (SELECT pg_catalog.count(*) FROM changes),
		   (SELECT pg_catalog.count(*) FROM applied),
		   (SELECT pg_catalog.count(*) FROM s WHERE s.limit_action OPERATOR(pg_catalog.=) 'request')
	  FROM (SELECT pg_catalog.count(*) FROM current) c, (SELECT pg_catalog.count(*) FROM closed) d;
END;
$$;

CREATE OR REPLACE FUNCTION credit.hold_left(orders regclass, order_key text, actor text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h credit.held_orders;
	a credit.applications;
	customer text;
BEGIN
	/* the account row before its audit chain head, as on every path */
	SELECT x.customer_key INTO customer FROM credit.held_orders x
	 WHERE x.orders OPERATOR(pg_catalog.=) $1 AND x.order_key OPERATOR(pg_catalog.=) $2
	   AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	/*
	 * The customer's row and its groups' rows, root first: the ledger's
	 * order, in which the trigger then applies a reopened order.  The
	 * customer's row alone first would invert that order against a
	 * concurrent order of the group's (a deadlock).
	 */
	PERFORM 1 FROM credit.accounts x
	  JOIN (WITH RECURSIVE up (k, n) AS (
				SELECT customer COLLATE "C", 0
				UNION ALL
				SELECT p.parent_key, up.n OPERATOR(pg_catalog.+) 1
				  FROM credit.accounts p JOIN up ON p.customer_key OPERATOR(pg_catalog.=) up.k
				 WHERE p.parent_key IS NOT NULL AND up.n OPERATOR(pg_catalog.<) 64)
			SELECT up.k, up.n FROM up) c ON x.customer_key OPERATOR(pg_catalog.=) c.k
	 ORDER BY c.n DESC
	   FOR NO KEY UPDATE OF x;
	UPDATE credit.held_orders x
	   SET state = 'cancelled', decided_at = pg_catalog.now(), changed_by = $3
	 WHERE x.orders OPERATOR(pg_catalog.=) $1 AND x.order_key OPERATOR(pg_catalog.=) $2
	   AND x.state OPERATOR(pg_catalog.=) 'held'
	RETURNING * INTO h;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	/*
	 * Withdraw the release application, unless its row is locked: this path
	 * holds the order row, and an approver who holds the application row
	 * (credit.approve locks it first) needs the order row next, so waiting
	 * for it here would deadlock.  That approver then finds the order no
	 * longer held (55000), and the application stays for a rejection.
	 */
	SELECT * INTO a FROM credit.applications x
	 WHERE x.application_id OPERATOR(pg_catalog.=) h.application_id
	   AND x.state OPERATOR(pg_catalog.=) ANY ('{draft,pending}'::text[])
	   FOR UPDATE SKIP LOCKED;
	IF FOUND THEN
		PERFORM credit.application_close(a.application_id, 'withdrawn',
										 'the order left its held status');
		PERFORM credit.approval_notify(a.application_id, 'withdrawn', ARRAY[]::text[],
									   ARRAY[a.requester::text],
									   pg_catalog.format('order "%s" of customer "%s" left its held status; its release application %s is withdrawn',
														 $2, h.customer_key, a.application_id));
	END IF;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'hold_cancelled', 'customer_key', h.customer_key, 'orders', $1::text,
		'order_key', $2, 'amount', h.amount, 'application_id', h.application_id)::text);
END;
$$;

CREATE OR REPLACE FUNCTION credit.run_dunning(as_of date DEFAULT CURRENT_DATE,
								   OUT evaluated bigint,
								   OUT queued bigint,
								   OUT repeats bigint,
								   OUT to_watch bigint,
								   OUT to_stop bigint,
								   OUT lifted bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	lifts	boolean;
	fingerprint text;
	full_scan boolean;
	esc_keys text[];
	esc_status text[];
	lift_keys text[];
	cur_repeat_at integer[];
	next_no_at integer[];
	next_days_at integer[];
	next_repeat_at integer[];
	after_days_at integer[];
	adv		text;
	rep		text;
	new_level text;
	new_repeat text;
	new_last text;
	new_next text;
	scope	text;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of must be a finite date, not %', COALESCE(as_of::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	PERFORM credit.require_read_committed('credit.run_dunning');

	/* runs serialize; the policy holds still while one runs */
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225281);
	LOCK TABLE credit.dunning_levels IN SHARE MODE;

	SELECT s.dunning_lifts_status INTO lifts FROM credit.settings s;
	SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(
			   pg_catalog.concat_ws(':', l.level_no, l.days_from_due, l.repeat_days),
			   ',' ORDER BY l.level_no), ''))
	  INTO fingerprint
	  FROM credit.dunning_levels l;
	SELECT st.levels_fingerprint IS DISTINCT FROM fingerprint INTO full_scan
	  FROM credit.dunning_state st;

	/*
	 * The policy as arrays indexed by the level a receivable is at, plus one
	 * (0: none yet; a deleted level counts like the gap it left): that
	 * level's repeat days, and the next level's number, days and repeat
	 * days, and the days of the level after that.  Parameters $2 to $6 of
	 * the UPDATE below: no join, and the rows are written in index order.
	 */
	SELECT pg_catalog.array_agg(c.repeat_days ORDER BY k.k),
		   pg_catalog.array_agg(n.level_no ORDER BY k.k),
		   pg_catalog.array_agg(n.days_from_due ORDER BY k.k),
		   pg_catalog.array_agg(n.repeat_days ORDER BY k.k),
		   pg_catalog.array_agg(n.after_days ORDER BY k.k)
	  INTO cur_repeat_at, next_no_at, next_days_at, next_repeat_at, after_days_at
	  FROM pg_catalog.generate_series(0,
			   (SELECT COALESCE(pg_catalog.max(x.level_no), 0) FROM credit.dunning_levels x)) AS k(k)
	  LEFT JOIN credit.dunning_levels c ON c.level_no OPERATOR(pg_catalog.=) k.k
	  LEFT JOIN LATERAL (
		SELECT y.level_no, y.days_from_due, y.repeat_days,
			   (SELECT z.days_from_due FROM credit.dunning_levels z
				 WHERE z.level_no OPERATOR(pg_catalog.>) y.level_no
				 ORDER BY z.level_no LIMIT 1) AS after_days
		  FROM credit.dunning_levels y
		 WHERE y.level_no OPERATOR(pg_catalog.>) k.k
		 ORDER BY y.level_no LIMIT 1) n ON true;

	/*
	 * One step per receivable: advance to the next level when it is due
	 * (and nothing was queued for it on this day already), else repeat the
	 * current level when its repeat days have passed.  The expressions are
	 * spelled once here and used in the UPDATE below, which evaluates them
	 * on the row it writes (after waiting for a concurrent writer, on its
	 * newest version).
	 */
	adv := $e$(($3)[r.dunning_level OPERATOR(pg_catalog.+) 1] IS NOT NULL
		AND r.due_date OPERATOR(pg_catalog.+) ($4)[r.dunning_level OPERATOR(pg_catalog.+) 1]
			OPERATOR(pg_catalog.<=) $1
		AND (r.last_dunned_on IS NULL OR r.last_dunned_on OPERATOR(pg_catalog.<) $1))$e$;
	rep := $e$(($2)[r.dunning_level OPERATOR(pg_catalog.+) 1] IS NOT NULL
		AND r.dunning_level OPERATOR(pg_catalog.>) 0
		AND r.last_dunned_on OPERATOR(pg_catalog.<) $1
		AND r.last_dunned_on OPERATOR(pg_catalog.+) ($2)[r.dunning_level OPERATOR(pg_catalog.+) 1]
			OPERATOR(pg_catalog.<=) $1)$e$;
	new_level := pg_catalog.format(
		'CASE WHEN %s THEN ($3)[r.dunning_level OPERATOR(pg_catalog.+) 1] ELSE r.dunning_level END', adv);
	new_repeat := pg_catalog.format(
		'CASE WHEN %s THEN 0 WHEN %s THEN r.dunning_repeat OPERATOR(pg_catalog.+) 1 ELSE r.dunning_repeat END',
		adv, rep);
	new_last := pg_catalog.format('CASE WHEN %s OR %s THEN $1 ELSE r.last_dunned_on END', adv, rep);
	/*
	 * The earliest day the next level or the next repeat can come; NULL
	 * while a receivable has had no step (it is due when as_of - due_date
	 * reaches the first level's days, so nothing needs storing).
	 */
	new_next := pg_catalog.format(
		$e$CASE WHEN r.dunning_level OPERATOR(pg_catalog.=) 0 AND NOT COALESCE(%1$s, false) THEN NULL
		ELSE GREATEST($1 OPERATOR(pg_catalog.+) 1, COALESCE(LEAST(
			r.due_date OPERATOR(pg_catalog.+) CASE WHEN %1$s
				THEN ($6)[r.dunning_level OPERATOR(pg_catalog.+) 1]
				ELSE ($4)[r.dunning_level OPERATOR(pg_catalog.+) 1] END,
			%2$s OPERATOR(pg_catalog.+) CASE WHEN %1$s
				THEN ($5)[r.dunning_level OPERATOR(pg_catalog.+) 1]
				ELSE ($2)[r.dunning_level OPERATOR(pg_catalog.+) 1] END),
			'infinity'::pg_catalog.date)) END$e$, adv, new_last);

	/*
	 * Which receivables to write: the due ones (next_dunning_on reached;
	 * without a step yet, the first level's day reached; a NULL
	 * next_dunning_on after a step asks for a fresh decision), or, after a
	 * change of the schedule, every open one whose dunning state comes out
	 * different.  Planned for this run's values (EXECUTE).
	 */
	scope := CASE WHEN full_scan
			 THEN pg_catalog.format('AND (r.dunning_level, r.dunning_repeat, r.last_dunned_on, r.next_dunning_on) IS DISTINCT FROM (%s, %s, %s, %s)',
									new_level, new_repeat, new_last, new_next)
			 ELSE $e$AND CASE WHEN r.next_dunning_on IS NOT NULL THEN r.next_dunning_on OPERATOR(pg_catalog.<=) $1
						  WHEN r.dunning_level OPERATOR(pg_catalog.=) 0
						  THEN r.due_date OPERATOR(pg_catalog.+) ($4)[1] OPERATOR(pg_catalog.<=) $1
						  ELSE true END$e$ END;

	EXECUTE pg_catalog.format($q$
	WITH lv AS (
		/*
		 * Each level's template turned into a format() string (percent
		 * signs doubled, each variable replaced by its position): one pass
		 * per row, and no value is ever read as a variable.  (Percent signs
		 * are doubled once more for the outer format() that builds this
		 * query.)
		 */
		SELECT l.level_no,
			   pg_catalog.strpos(l.template, '{due_date}') OPERATOR(pg_catalog.>) 0 AS uses_due_date,
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(l.template, '%%', '%%%%'),
				   '{customer_name}', '%%1$s'), '{customer_key}', '%%2$s'),
				   '{invoice}', '%%3$s'), '{open_amount}', '%%4$s'),
				   '{overdue_amount}', '%%5$s'), '{currency}', '%%6$s'),
				   '{due_date}', '%%7$s'), '{days_overdue}', '%%8$s'),
				   '{level}', '%%9$s'), '{fee}', '%%10$s'), '{interest}', '%%11$s') AS fmt
		  FROM credit.dunning_levels l
	),
	upd AS (
		UPDATE credit.receivables r
		   SET dunning_level = %1$s,
			   dunning_repeat = %2$s,
			   last_dunned_on = %3$s,
			   next_dunning_on = %4$s
		  FROM credit.accounts a
		 WHERE a.customer_key OPERATOR(pg_catalog.=) r.customer_key
		   AND r.allocated OPERATOR(pg_catalog.<) r.amount AND NOT r.disputed
		   %5$s
		RETURNING r.receivable_id, r.customer_key, r.invoice_key, r.currency, r.due_date,
				  r.open_amount, r.dunning_level, r.dunning_repeat,
				  r.last_dunned_on OPERATOR(pg_catalog.=) $1 AS stepped,
				  a.owner, a.customer_name
	),
	ins AS (
		INSERT INTO credit.dunning_queue
			(receivable_id, customer_key, invoice_key, level_no, repeat_no, as_of,
			 channel, actions, recipient, message, currency, due_date, open_amount,
			 overdue_amount, days_overdue, fee, interest)
		SELECT u.receivable_id, u.customer_key, u.invoice_key, u.dunning_level,
			   u.dunning_repeat, $1, l.channel, l.actions,
			   CASE WHEN 'message_customer' OPERATOR(pg_catalog.=) ANY (l.actions) THEN u.customer_key
					WHEN 'notify_owner' OPERATOR(pg_catalog.=) ANY (l.actions) THEN u.owner END,
			   pg_catalog.format(f.fmt, COALESCE(u.customer_name, u.customer_key), u.customer_key,
								 u.invoice_key, u.open_amount, x.overdue_amount, u.currency,
								 CASE WHEN f.uses_due_date
									  THEN pg_catalog.to_char(u.due_date, 'YYYY-MM-DD') END,
								 x.days_overdue,
								 l.name, l.fee, x.interest),
			   u.currency, u.due_date, u.open_amount, x.overdue_amount, x.days_overdue, l.fee,
			   x.interest
		  FROM upd u
		  JOIN credit.dunning_levels l ON l.level_no OPERATOR(pg_catalog.=) u.dunning_level
		  JOIN lv f ON f.level_no OPERATOR(pg_catalog.=) u.dunning_level
		 CROSS JOIN LATERAL (
			SELECT CASE WHEN u.due_date OPERATOR(pg_catalog.<) $1 THEN u.open_amount ELSE 0 END
					   AS overdue_amount,
				   GREATEST($1 OPERATOR(pg_catalog.-) u.due_date, 0) AS days_overdue,
				   CASE WHEN l.annual_interest_rate OPERATOR(pg_catalog.=) 0
							 OR u.due_date OPERATOR(pg_catalog.>=) $1 THEN 0.00
						ELSE pg_catalog.round(u.open_amount OPERATOR(pg_catalog.*) l.annual_interest_rate
											  OPERATOR(pg_catalog./) 100
											  OPERATOR(pg_catalog.*) ($1 OPERATOR(pg_catalog.-) u.due_date)
											  OPERATOR(pg_catalog./) 365, 2) END AS interest) x
		 WHERE u.stepped
		ON CONFLICT (receivable_id, level_no, repeat_no) DO NOTHING
		RETURNING customer_key, level_no, repeat_no, actions
	),
	esc AS (
		/* per customer, the most severe status its new steps set */
		SELECT i.customer_key,
			   CASE WHEN pg_catalog.bool_or(l.set_status OPERATOR(pg_catalog.=) 'stop')
					THEN 'stop' ELSE 'watch' END AS set_status
		  FROM ins i
		  JOIN credit.dunning_levels l ON l.level_no OPERATOR(pg_catalog.=) i.level_no
		 WHERE 'set_status' OPERATOR(pg_catalog.=) ANY (i.actions)
		   AND l.set_status IS NOT NULL
		 GROUP BY i.customer_key
	)
	SELECT (SELECT pg_catalog.count(*) FROM upd),
		   (SELECT pg_catalog.count(*) FROM ins),
		   (SELECT pg_catalog.count(*) FROM ins WHERE ins.repeat_no OPERATOR(pg_catalog.>) 0),
		   (SELECT pg_catalog.array_agg(esc.customer_key ORDER BY esc.customer_key) FROM esc),
		   (SELECT pg_catalog.array_agg(esc.set_status ORDER BY esc.customer_key) FROM esc)
	$q$, new_level, new_repeat, new_last, new_next, scope)
	INTO evaluated, queued, repeats, esc_keys, esc_status
	USING as_of, cur_repeat_at, next_no_at, next_days_at, next_repeat_at, after_days_at;

	/* escalate: lock the accounts in the ledger's order, then raise their dunning_status */
	to_watch := 0;
	to_stop := 0;
	IF esc_keys IS NOT NULL THEN
		PERFORM 1
		   FROM credit.accounts a
		   JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
		  WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (esc_keys)
		  ORDER BY t.root_key, t.depth, a.customer_key
			FOR UPDATE OF a;
		WITH changed AS (
			UPDATE credit.accounts a
			   SET dunning_status = e.set_status
			  FROM ROWS FROM (pg_catalog.unnest(esc_keys), pg_catalog.unnest(esc_status))
				   AS e(customer_key, set_status)
			 WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key
			   AND (a.dunning_status IS NULL
					OR (a.dunning_status OPERATOR(pg_catalog.=) 'watch'
						AND e.set_status OPERATOR(pg_catalog.=) 'stop'))
			RETURNING e.set_status
		)
		SELECT pg_catalog.count(*) FILTER (WHERE c.set_status OPERATOR(pg_catalog.=) 'watch'),
			   pg_catalog.count(*) FILTER (WHERE c.set_status OPERATOR(pg_catalog.=) 'stop')
		  INTO to_watch, to_stop
		  FROM changed c;
	END IF;

	/* lift: nothing open and undisputed is past its due date any more */
	lifted := 0;
	IF lifts THEN
		SELECT pg_catalog.array_agg(s.customer_key ORDER BY s.customer_key) INTO lift_keys
		  FROM (SELECT a.customer_key
				  FROM credit.accounts a
				  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
				 WHERE a.dunning_status IS NOT NULL
				   AND NOT EXISTS (
						SELECT 1 FROM credit.receivables r
						 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
						   AND r.allocated OPERATOR(pg_catalog.<) r.amount
						   AND NOT r.disputed
						   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of)
				 ORDER BY t.root_key, t.depth, a.customer_key
				   FOR UPDATE OF a) s;
		IF lift_keys IS NOT NULL THEN
			UPDATE credit.accounts a
			   SET dunning_status = NULL
			 WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (lift_keys)
			   AND a.dunning_status IS NOT NULL
			   AND NOT EXISTS (
					SELECT 1 FROM credit.receivables r
					 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
					   AND r.allocated OPERATOR(pg_catalog.<) r.amount
					   AND NOT r.disputed
					   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of);
			GET DIAGNOSTICS lifted = ROW_COUNT;
		END IF;
	END IF;

	UPDATE credit.dunning_state
	   SET levels_fingerprint = fingerprint,
		   last_as_of = run_dunning.as_of,
		   last_run_at = pg_catalog.now();

	IF queued OPERATOR(pg_catalog.>) 0 THEN
		PERFORM pg_catalog.pg_notify('credit_dunning',
			pg_catalog.format('{"event": "dunning_queued", "as_of": "%s", "queued": %s}',
							  pg_catalog.to_char(run_dunning.as_of, 'YYYY-MM-DD'), queued));
	END IF;
END;
$fn$;

/* reports sum own exposure */
CREATE VIEW credit.own_exposure WITH (security_invoker = true) AS
SELECT a.customer_key,
	   a.exposure OPERATOR(pg_catalog.-) COALESCE(ch.exposure, 0) AS own_exposure
  FROM credit.accounts a
  LEFT JOIN (SELECT c.parent_key, pg_catalog.sum(c.exposure) AS exposure
			   FROM credit.accounts c
			  WHERE c.parent_key IS NOT NULL
			  GROUP BY c.parent_key) ch
	ON ch.parent_key OPERATOR(pg_catalog.=) a.customer_key;

COMMENT ON VIEW credit.own_exposure IS
'Each account''s own exposure: credit.accounts.exposure less that of its children (whose exposure includes theirs). Summed over accounts it gives the total without counting a group''s members twice.';
COMMENT ON COLUMN credit.own_exposure.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.own_exposure.own_exposure IS 'exposure minus the sum of the children''s exposure.';

CREATE OR REPLACE VIEW credit.report_grade_distribution WITH (security_invoker = true) AS
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
COMMENT ON COLUMN credit.report_grade_distribution.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count in their own grades).';

CREATE OR REPLACE VIEW credit.report_collection_by_salesperson WITH (security_invoker = true) AS
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
COMMENT ON COLUMN credit.report_collection_by_salesperson.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count with their own owners).';

GRANT SELECT ON credit.own_exposure TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
