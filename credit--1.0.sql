/*
 * schema.sql: refuses a schema credit that someone else prepared, and
 * defines credit.caller().
 *
 * The control file names schema credit: CREATE EXTENSION creates it, owned
 * by the installing role, when it does not exist, and uses it when it does.
 * A schema that already exists is only accepted when the installing role
 * owns it, it holds nothing, and no other role may create in it: otherwise
 * a role that prepared it could have planted objects (or could plant them
 * later) that the extension's code would find.  The installation fails
 * with 42P06 and changes nothing.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

DO $$
DECLARE
	nsp oid := 'credit'::pg_catalog.regnamespace;
	owner name;
BEGIN
	SELECT r.rolname INTO owner
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.oid OPERATOR(pg_catalog.=) nsp;
	IF owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
		RAISE EXCEPTION 'schema "credit" already exists and belongs to role "%"', owner
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema (after checking what it holds), then create the extension.';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) nsp) THEN
		RAISE EXCEPTION 'schema "credit" already exists and is not empty'
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema (after checking what it holds), then create the extension.';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n,
					  LATERAL pg_catalog.aclexplode(n.nspacl) a
				WHERE n.oid OPERATOR(pg_catalog.=) nsp
				  AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
				  AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner) THEN
		RAISE EXCEPTION 'schema "credit" already exists and other roles may create objects in it'
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema, then create the extension.';
	END IF;
END;
$$;

CREATE FUNCTION credit.caller()
RETURNS name
AS 'MODULE_PATHNAME', 'credit_caller'
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.caller() IS
'The role acting: CURRENT_USER, except inside the extension''s SECURITY DEFINER functions and internal queries, where it is the role that called them (not the extension''s owner). Approval rights, requesters and audit rows use it.';
/*
 * settings.sql: the extension's configuration that is data, in one row.
 *
 * Finance edits it with UPDATE; pg_dump keeps it (see below for restores).  Policy tables with many
 * rows (aging buckets, dunning levels) have tables of their own.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.settings (
	singleton		boolean PRIMARY KEY DEFAULT true,
	aging_basis		text NOT NULL DEFAULT 'due_date',
	dunning_lifts_status boolean NOT NULL DEFAULT true,
	dunning_max_attempts integer NOT NULL DEFAULT 5,
	dunning_retry_delay interval NOT NULL DEFAULT '5 minutes',
	auto_new_limit_application boolean NOT NULL DEFAULT false,
	CONSTRAINT settings_singleton_check CHECK (singleton),
	CONSTRAINT settings_aging_basis_check
		CHECK (aging_basis OPERATOR(pg_catalog.=) ANY ('{due_date,invoice_date}'::text[])),
	CONSTRAINT settings_dunning_max_attempts_check
		CHECK (dunning_max_attempts OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT settings_dunning_retry_delay_check
		CHECK (dunning_retry_delay OPERATOR(pg_catalog.>) '0'::interval)
);
/*
 * The default configuration rows (this one, the aging buckets, the dunning
 * levels) are inserted unless row_security is off.  pg_dump's scripts and
 * pg_restore turn it off before CREATE EXTENSION (unless told
 * --enable-row-security); a restore brings the configuration as it was
 * dumped, and default rows inserted first would collide with it.
 */
DO $$
BEGIN
	IF NOT pg_catalog.current_setting('row_security')::boolean THEN
		RAISE WARNING 'row_security is off: taken as a restore from pg_dump, so the default configuration rows (credit.settings, credit.aging_buckets, credit.dunning_levels) are not inserted'
			USING HINT = 'For a new installation, create the extension with row_security on (the default).';
	END IF;
END;
$$;
INSERT INTO credit.settings (singleton) SELECT true WHERE pg_catalog.current_setting('row_security')::boolean;

COMMENT ON TABLE credit.settings IS 'The extension''s settings: one row, edited with UPDATE.';
COMMENT ON COLUMN credit.settings.aging_basis IS
'Age receivables by due_date (days past due) or by invoice_date (days since invoicing).';
COMMENT ON COLUMN credit.settings.dunning_lifts_status IS
'When a customer has nothing overdue any more, credit.run_dunning lifts the watch or stop it set.';
COMMENT ON COLUMN credit.settings.dunning_max_attempts IS
'A queued reminder whose delivery failed this many times is given up (status dead).';
COMMENT ON COLUMN credit.settings.dunning_retry_delay IS
'Delay before the first retry of a failed delivery; doubled after each further failure.';

COMMENT ON COLUMN credit.settings.auto_new_limit_application IS
'A new account inserted with credit_limit 0 gets a draft new-limit application.';

SELECT pg_catalog.pg_extension_config_dump('credit.settings', '');
/*
 * accounts.sql: credit accounts, their status history, and the status rules.
 *
 * One row per customer key.  credit_limit, the temporary limit and its
 * window, currency, owner and watch ratio are master data that ordinary SQL
 * (INSERT, UPDATE, COPY) maintains.  exposure is the engine's running total:
 * the attached order tables' triggers change it through the C exposure
 * ledger (src/exposure.c), which also keeps status current.  The status
 * values follow iDempiere: none (no check), ok, watch, hold, stop.  none and
 * stop are set by a person and never changed by recomputation; ok, watch and
 * hold are derived from exposure and the effective limit.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.accounts (
	customer_key	text COLLATE "C" PRIMARY KEY,
	customer_name	text,
	credit_limit	numeric NOT NULL DEFAULT 0,
	temp_limit		numeric NOT NULL DEFAULT 0,
	temp_limit_from	timestamptz,
	temp_limit_until timestamptz,
	currency		text NOT NULL DEFAULT 'CNY',
	owner			text,
	watch_ratio		numeric NOT NULL DEFAULT 0.90,
	status			text NOT NULL DEFAULT 'ok',
	exposure		numeric NOT NULL DEFAULT 0,
	manual_status	text,
	dunning_status	text,
	payment_term_days integer NOT NULL DEFAULT 30,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	region			text,
	CONSTRAINT accounts_customer_key_check
		CHECK (customer_key OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT accounts_credit_limit_check
		CHECK (credit_limit OPERATOR(pg_catalog.>=) 0
			   AND credit_limit OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT accounts_temp_limit_check
		CHECK (temp_limit OPERATOR(pg_catalog.>=) 0
			   AND temp_limit OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT accounts_temp_window_check
		CHECK (temp_limit_until OPERATOR(pg_catalog.>) temp_limit_from),
	CONSTRAINT accounts_temp_limit_needs_end_check
		CHECK (temp_limit OPERATOR(pg_catalog.=) 0
			   OR temp_limit_until IS NOT NULL),
	CONSTRAINT accounts_currency_check
		CHECK (currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
	CONSTRAINT accounts_watch_ratio_check
		CHECK (watch_ratio OPERATOR(pg_catalog.>) 0
			   AND watch_ratio OPERATOR(pg_catalog.<=) 1),
	CONSTRAINT accounts_status_check
		CHECK (status OPERATOR(pg_catalog.=) ANY
			   ('{none,ok,watch,hold,stop}'::text[])),
	CONSTRAINT accounts_manual_status_check
		CHECK (manual_status OPERATOR(pg_catalog.=) ANY ('{none,stop}'::text[])),
	CONSTRAINT accounts_dunning_status_check
		CHECK (dunning_status OPERATOR(pg_catalog.=) ANY ('{watch,stop}'::text[])),
	CONSTRAINT accounts_payment_term_check
		CHECK (payment_term_days OPERATOR(pg_catalog.>=) 0
			   AND payment_term_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT accounts_exposure_check
		CHECK (exposure OPERATOR(pg_catalog.>) -1e15
			   AND exposure OPERATOR(pg_catalog.<) 1e15)
) WITH (fillfactor = 50);

COMMENT ON TABLE credit.accounts IS
'Credit accounts, one per customer key. exposure and the derived statuses (ok, watch, hold) are kept by the engine; none and stop are set by people.';
COMMENT ON COLUMN credit.accounts.customer_key IS
'The application''s customer key in its text form (what key::text gives: a uuid in lower case, an integer in decimal).';
COMMENT ON COLUMN credit.accounts.credit_limit IS 'Standing credit limit, >= 0.';
COMMENT ON COLUMN credit.accounts.temp_limit IS
'Temporary extra limit, counted only while now() is in [temp_limit_from, temp_limit_until).';
COMMENT ON COLUMN credit.accounts.temp_limit_from IS 'Start of the temporary limit window (NULL: already valid).';
COMMENT ON COLUMN credit.accounts.temp_limit_until IS 'End of the temporary limit window, exclusive; required when temp_limit > 0.';
COMMENT ON COLUMN credit.accounts.currency IS 'ISO 4217 currency code of the limit and exposure.';
COMMENT ON COLUMN credit.accounts.owner IS
'Salesperson who owns the customer: the name of the salesperson''s database role (row-level security lets a member of credit_sales see only the customers it owns).';
COMMENT ON COLUMN credit.accounts.region IS 'Sales region of the customer, for reporting.';
COMMENT ON COLUMN credit.accounts.watch_ratio IS 'Status becomes watch when exposure reaches this share of the effective limit.';
COMMENT ON COLUMN credit.accounts.status IS
'none (no check), ok, watch, hold (over the limit), stop (every increase rejected). Write none or stop to set them; writing ok (or watch, hold) asks for the derived status.';
COMMENT ON COLUMN credit.accounts.manual_status IS
'none or stop as set by a person (by writing status); kept until a person writes another status.';
COMMENT ON COLUMN credit.accounts.dunning_status IS
'watch or stop set by credit.run_dunning; lifted by it when the customer has nothing overdue (if configured).';
COMMENT ON COLUMN credit.accounts.payment_term_days IS
'Payment term: a receivable posted without a due date is due this many days after its invoice date.';
COMMENT ON COLUMN credit.accounts.exposure IS
'Open exposure kept by the engine. Do not write it; credit.reconcile() checks and repairs it.';

CREATE TABLE credit.status_changes (
	change_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	old_status		text,
	new_status		text NOT NULL,
	exposure		numeric NOT NULL,
	effective_limit	numeric NOT NULL,
	changed_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by		text NOT NULL DEFAULT credit.caller()
);
CREATE INDEX status_changes_customer_idx
	ON credit.status_changes (customer_key, changed_at);

COMMENT ON TABLE credit.status_changes IS
'Every change of an account''s credit status (also announced by NOTIFY on channel credit_events).';

CREATE FUNCTION credit.effective_limit(account credit.accounts,
									   at timestamptz DEFAULT pg_catalog.now())
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN ($1).credit_limit OPERATOR(pg_catalog.+)
	CASE WHEN ($1).temp_limit OPERATOR(pg_catalog.>) 0
			  AND (($1).temp_limit_from IS NULL
				   OR ($1).temp_limit_from OPERATOR(pg_catalog.<=) $2)
			  AND $2 OPERATOR(pg_catalog.<) ($1).temp_limit_until
		 THEN ($1).temp_limit ELSE 0 END;

COMMENT ON FUNCTION credit.effective_limit(credit.accounts, timestamptz) IS
'Credit limit plus the temporary limit when the given time is inside its window.';

CREATE FUNCTION credit.available_credit(account credit.accounts,
										at timestamptz DEFAULT pg_catalog.now())
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN credit.effective_limit($1, $2) OPERATOR(pg_catalog.-) ($1).exposure;

COMMENT ON FUNCTION credit.available_credit(credit.accounts, timestamptz) IS
'Effective limit minus exposure: the largest increase an order may bring.';

/* keeps status derived on every SQL write of an account (C: src/accounts.c) */
CREATE FUNCTION credit.accounts_status_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_accounts_status_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER accounts_status
	BEFORE INSERT OR UPDATE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.accounts_status_trigger();

CREATE VIEW credit.account_balances WITH (security_invoker = true) AS
SELECT a.customer_key,
	   a.customer_name,
	   a.currency,
	   a.owner,
	   a.status,
	   a.credit_limit,
	   credit.effective_limit(a) OPERATOR(pg_catalog.-) a.credit_limit
		   AS temp_limit_in_force,
	   credit.effective_limit(a) AS effective_limit,
	   a.exposure,
	   credit.available_credit(a) AS available_credit
  FROM credit.accounts a;

COMMENT ON VIEW credit.account_balances IS
'Each account''s limit, temporary limit in force now, exposure and available credit.';

SELECT pg_catalog.pg_extension_config_dump('credit.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('credit.status_changes', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.status_changes', 'change_id')::pg_catalog.regclass, '');
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
					 AND rejected_status IS NOT NULL AND status_column IS NOT NULL)))
);

COMMENT ON TABLE credit.attachments IS
'Tables whose rows count as credit exposure, and which columns hold the customer, amount and status. role orders: increases are checked against the limit; receivables: counted, not checked; payments: lower exposure. builtin rows are the extension''s own ledger tables. over_limit (orders): reject, hold (write held_status, open a release application) or warn. Maintained by credit.attach_orders, credit.attach_receivables and credit.detach_orders.';

SELECT pg_catalog.pg_extension_config_dump('credit.attachments', 'WHERE NOT builtin');

/* C trigger functions (src/enforce.c) */
CREATE FUNCTION credit.enforce_orders()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_enforce_orders'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

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

CREATE FUNCTION credit.open_exposure_query(att credit.attachments)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'SELECT (o.%1$I)::pg_catalog.text AS customer_key, '
	'COALESCE(pg_catalog.sum((o.%2$I)::pg_catalog.numeric), 0) %5$s AS exposure '
	'FROM %3$s o WHERE %4$s GROUP BY 1',
	($1).customer_column, ($1).amount_column, ($1).orders,
	credit.open_orders_filter($1),
	CASE ($1).role WHEN 'payments' THEN 'OPERATOR(pg_catalog.*) -1' ELSE '' END);

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
									rejected_status text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
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

	INSERT INTO credit.attachments (orders, customer_column, amount_column,
									status_column, open_statuses, role, builtin,
									over_limit, key_column, held_status, release_status,
									rejected_status)
	VALUES (orders, customer_column, amount_column, status_column, open_statuses,
			role, builtin, over_limit, key_column, held_status, release_status,
			rejected_status)
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
									 rejected_status text DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT credit.attach_table(orders, customer_column, amount_column,
							   status_column, open_statuses, 'orders', false, NULL,
							   over_limit, key_column, held_status, release_status,
							   rejected_status);
END;

COMMENT ON FUNCTION credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text) IS
'Enforce credit limits on an order table: its open rows count as their customers'' exposure from now on, including the rows already there. over_limit: reject (CR001/CR002), hold (the order is written with held_status and a release application opens; key_column identifies it) or warn (it passes and is recorded).';

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
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
	EXECUTE pg_catalog.format(
		'UPDATE credit.accounts a SET exposure = a.exposure OPERATOR(pg_catalog.-) e.exposure '
		'FROM (%s) e WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key',
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
	RETURN QUERY EXECUTE pg_catalog.format(
		'WITH c AS (SELECT p.customer_key, pg_catalog.sum(p.exposure) AS exposure '
		'FROM (%s) p GROUP BY 1) '
		'SELECT a.customer_key::pg_catalog.text, a.exposure, '
		'COALESCE(c.exposure, 0), '
		'a.exposure OPERATOR(pg_catalog.-) COALESCE(c.exposure, 0) '
		'FROM credit.accounts a LEFT JOIN c '
		'ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key '
		'WHERE a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0) '
		'ORDER BY 1', parts);
	IF repair THEN
		EXECUTE pg_catalog.format(
			'WITH c AS (SELECT p.customer_key, pg_catalog.sum(p.exposure) AS exposure '
			'FROM (%s) p GROUP BY 1) '
			'UPDATE credit.accounts a SET exposure = COALESCE(c.exposure, 0) '
			'FROM credit.accounts a2 LEFT JOIN c '
			'ON c.customer_key OPERATOR(pg_catalog.=) a2.customer_key '
			'WHERE a2.customer_key OPERATOR(pg_catalog.=) a.customer_key '
			'AND a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0)',
			parts);
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.reconcile(boolean) IS
'Recompute exposure from the attached tables and return the accounts whose stored figure differs; with repair => true, lock the tables and correct them.';

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
/*
 * receivables.sql: the receivables ledger: invoices, payments and credit
 * notes, and allocations of payments to invoices.
 *
 * Exposure = open orders + open amounts of receivables - unallocated
 * payments.  credit.receivables and credit.payments are attached to the
 * exposure ledger like order tables (roles receivables and payments: never
 * refused, since they record what has happened), so the same C trigger keeps
 * exposure exact when an invoice, a payment and an order race for one
 * customer.  An allocation moves an amount from a payment's unallocated part
 * to an invoice's allocated part: exposure does not change.  Allocations
 * take the invoice's row lock, then the payment's, each with a guarded
 * UPDATE, so two allocations can never over-allocate either.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.receivables (
	receivable_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	invoice_key		text NOT NULL,
	amount			numeric NOT NULL,
	currency		text NOT NULL,
	invoice_date	date NOT NULL,
	due_date		date NOT NULL,
	disputed		boolean NOT NULL DEFAULT false,
	allocated		numeric NOT NULL DEFAULT 0,
	open_amount		numeric GENERATED ALWAYS AS (amount OPERATOR(pg_catalog.-) allocated) STORED,
	last_allocated_on date,
	order_ref		text,
	dunning_level	integer NOT NULL DEFAULT 0,
	dunning_repeat	integer NOT NULL DEFAULT 0,
	last_dunned_on	date,
	next_dunning_on	date,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT receivables_invoice_key UNIQUE (customer_key, invoice_key),
	CONSTRAINT receivables_amount_check
		CHECK (amount OPERATOR(pg_catalog.>) 0 AND amount OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT receivables_allocated_check
		CHECK (allocated OPERATOR(pg_catalog.>=) 0
			   AND allocated OPERATOR(pg_catalog.<=) amount),
	CONSTRAINT receivables_due_date_check
		CHECK (due_date OPERATOR(pg_catalog.>=) invoice_date),
	CONSTRAINT receivables_dates_finite_check
		CHECK (pg_catalog.isfinite(invoice_date) AND pg_catalog.isfinite(due_date)),
	CONSTRAINT receivables_currency_check
		CHECK (currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$')
) WITH (fillfactor = 50);	/* dunning rewrites every open row: keep it HOT */
CREATE INDEX receivables_open_due_idx ON credit.receivables (customer_key, due_date)
	WHERE allocated OPERATOR(pg_catalog.<) amount;

COMMENT ON TABLE credit.receivables IS
'Invoices owed by customers. open_amount (amount - allocated) counts as exposure. Post by INSERT or COPY; due_date defaults to invoice_date + the account''s payment_term_days, currency to the account''s.';
COMMENT ON COLUMN credit.receivables.invoice_key IS 'The invoice number, unique per customer.';
COMMENT ON COLUMN credit.receivables.disputed IS 'A disputed invoice still counts as exposure but is not dunned.';
COMMENT ON COLUMN credit.receivables.allocated IS 'Paid so far, kept by credit.allocations.';
COMMENT ON COLUMN credit.receivables.open_amount IS 'amount - allocated: what is still owed.';
COMMENT ON COLUMN credit.receivables.last_allocated_on IS 'Date of the latest allocation to the invoice (NULL: none), kept by credit.allocations.';
COMMENT ON COLUMN credit.receivables.order_ref IS 'Optional reference to the order this invoice bills.';
COMMENT ON COLUMN credit.receivables.dunning_level IS 'Highest dunning level reached (0: none), kept by credit.run_dunning.';

CREATE TABLE credit.payments (
	payment_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	payment_key		text NOT NULL,
	kind			text NOT NULL DEFAULT 'payment',
	amount			numeric NOT NULL,
	currency		text NOT NULL,
	received_on		date NOT NULL,
	allocated		numeric NOT NULL DEFAULT 0,
	unallocated		numeric GENERATED ALWAYS AS (amount OPERATOR(pg_catalog.-) allocated) STORED,
	reference		text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT payments_payment_key UNIQUE (customer_key, payment_key),
	CONSTRAINT payments_kind_check
		CHECK (kind OPERATOR(pg_catalog.=) ANY ('{payment,credit_note}'::text[])),
	CONSTRAINT payments_amount_check
		CHECK (amount OPERATOR(pg_catalog.>) 0 AND amount OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT payments_allocated_check
		CHECK (allocated OPERATOR(pg_catalog.>=) 0
			   AND allocated OPERATOR(pg_catalog.<=) amount),
	CONSTRAINT payments_currency_check
		CHECK (currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$')
);

COMMENT ON TABLE credit.payments IS
'Payments received and credit notes issued (kind), each a positive amount. The unallocated part lowers exposure until it is allocated to invoices.';
COMMENT ON COLUMN credit.payments.kind IS 'payment or credit_note: a credit note is its own document, never a negative invoice.';
COMMENT ON COLUMN credit.payments.unallocated IS 'amount - allocated: lowers exposure until allocated.';

CREATE TABLE credit.allocations (
	allocation_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	payment_id		bigint NOT NULL REFERENCES credit.payments,
	receivable_id	bigint NOT NULL REFERENCES credit.receivables,
	amount			numeric NOT NULL,
	allocated_on	date NOT NULL DEFAULT CURRENT_DATE,
	customer_key	text COLLATE "C",
	invoice_date	date,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT allocations_amount_check
		CHECK (amount OPERATOR(pg_catalog.>) 0 AND amount OPERATOR(pg_catalog.<) 1e15)
);
CREATE INDEX allocations_payment_idx ON credit.allocations (payment_id);
CREATE INDEX allocations_receivable_idx ON credit.allocations (receivable_id);
CREATE INDEX allocations_customer_idx ON credit.allocations (customer_key, allocated_on);

COMMENT ON TABLE credit.allocations IS
'Parts of payments (or credit notes) applied to invoices of the same customer and currency. Insert to allocate, delete to reverse; rows are not updated.';
COMMENT ON COLUMN credit.allocations.customer_key IS 'The invoice''s customer, copied at insert (for payment-behaviour metrics).';
COMMENT ON COLUMN credit.allocations.invoice_date IS 'The invoice''s date, copied at insert; an allocated invoice''s date cannot change.';

SELECT pg_catalog.pg_extension_config_dump('credit.receivables', '');
SELECT pg_catalog.pg_extension_config_dump('credit.payments', '');
SELECT pg_catalog.pg_extension_config_dump('credit.allocations', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.receivables', 'receivable_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.payments', 'payment_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.allocations', 'allocation_id')::pg_catalog.regclass, '');

CREATE FUNCTION credit.check_due_date(invoice_key text, invoice_date date, due_date date)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF due_date OPERATOR(pg_catalog.<) invoice_date THEN
		RAISE EXCEPTION 'invoice "%" is due on % before its invoice date %',
			invoice_key, due_date, invoice_date
			USING ERRCODE = '22007', SCHEMA = 'credit', TABLE = 'receivables',
				  COLUMN = 'due_date',
				  HINT = 'The due date must be on or after the invoice date.';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.check_due_date(text, date, date) IS
'Raises 22007 when an invoice would be due before its invoice date.';

/*
 * BEFORE INSERT OR UPDATE on receivables and payments: the account must
 * exist; currency defaults to the account's and must match it; an invoice's
 * due date defaults to its invoice date plus the payment term.  On UPDATE
 * these are checked again only when the customer or currency changes, and
 * allocated may be changed only by the allocations trigger.
 */
CREATE FUNCTION credit.ledger_document_defaults()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct_currency text;
	term	integer;
	doc		text;
	kind	text := CASE TG_TABLE_NAME WHEN 'receivables' THEN 'invoice' ELSE 'payment' END;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		doc := pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->>)
			CASE TG_TABLE_NAME WHEN 'receivables' THEN 'invoice_key' ELSE 'payment_key' END;
		/* allocated is kept by credit.allocations' trigger (one level down) */
		/* (NEW.last_allocated_on exists only for invoices: test it through jsonb) */
		IF (NEW.allocated IS DISTINCT FROM OLD.allocated
			OR (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.->) 'last_allocated_on')
			   IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) 'last_allocated_on'))
		   AND pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.<) 2 THEN
			RAISE EXCEPTION 'allocated of % "%" is kept by credit.allocations', kind, doc
				USING ERRCODE = '55000',
					  HINT = 'Insert or delete rows of credit.allocations (or use credit.allocate).';
		END IF;
		IF (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.->) 'invoice_date')
		   IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) 'invoice_date')
		   AND (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->>) 'last_allocated_on') IS NOT NULL THEN
			RAISE EXCEPTION 'cannot change the invoice date of invoice "%" after allocation', doc
				USING ERRCODE = '55000',
					  HINT = 'Delete its allocations first: payment behaviour is measured from the invoice date.';
		END IF;
		IF (NEW.customer_key, NEW.currency) IS NOT DISTINCT FROM (OLD.customer_key, OLD.currency) THEN
			IF kind OPERATOR(pg_catalog.=) 'invoice' THEN
				PERFORM credit.check_due_date(NEW.invoice_key, NEW.invoice_date, NEW.due_date);
			END IF;
			RETURN NEW;			/* the account was checked when it was posted */
		END IF;
		IF OLD.allocated OPERATOR(pg_catalog.<>) 0 THEN
			RAISE EXCEPTION 'cannot change the customer or currency of % "%" after allocation',
				kind, doc
				USING ERRCODE = '55000',
					  HINT = 'Delete its allocations first.';
		END IF;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' AND (NEW.allocated OPERATOR(pg_catalog.<>) 0
		OR (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.->>) 'last_allocated_on') IS NOT NULL) THEN
		RAISE EXCEPTION 'a new % starts with nothing allocated', kind
			USING ERRCODE = '55000',
				  HINT = 'Post it with allocated = 0, then allocate through credit.allocations.';
	END IF;
	IF NEW.customer_key IS NULL THEN
		RETURN NEW;				/* NOT NULL says why */
	END IF;
	SELECT a.currency, a.payment_term_days INTO acct_currency, term
	  FROM credit.accounts a
	 WHERE a.customer_key OPERATOR(pg_catalog.=) NEW.customer_key;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer "%" has no credit account', NEW.customer_key
			USING ERRCODE = 'CR003', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  HINT = pg_catalog.format('Open one first: INSERT INTO credit.accounts (customer_key, credit_limit) VALUES (%L, ...).',
										   NEW.customer_key);
	END IF;
	NEW.currency := COALESCE(NEW.currency, acct_currency);
	IF NEW.currency OPERATOR(pg_catalog.<>) acct_currency THEN
		RAISE EXCEPTION 'currency % does not match the % account of customer "%"',
			NEW.currency, acct_currency, NEW.customer_key
			USING ERRCODE = 'CR004', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'currency',
				  HINT = 'Post documents in the account''s currency (convert first).';
	END IF;
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'receivables' THEN
		IF NEW.invoice_date IS NULL THEN
			RETURN NEW;			/* NOT NULL says why */
		END IF;
		NEW.due_date := COALESCE(NEW.due_date,
								 NEW.invoice_date OPERATOR(pg_catalog.+) term);
		PERFORM credit.check_due_date(NEW.invoice_key, NEW.invoice_date, NEW.due_date);
	ELSE
		NEW.received_on := COALESCE(NEW.received_on, CURRENT_DATE);
	END IF;
	RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_document_defaults
	BEFORE INSERT OR UPDATE OF customer_key, currency, allocated, last_allocated_on, invoice_date,
	due_date ON credit.receivables
	FOR EACH ROW EXECUTE FUNCTION credit.ledger_document_defaults();
CREATE TRIGGER ledger_document_defaults
	BEFORE INSERT OR UPDATE OF customer_key, currency, allocated ON credit.payments
	FOR EACH ROW EXECUTE FUNCTION credit.ledger_document_defaults();

/*
 * Allocations: BEFORE INSERT checks and applies, AFTER DELETE reverses.
 * Lock order: the payment row, then the invoice row, then (through their
 * ledger triggers) the account row, the same order as any write of a
 * payment or an invoice alone, so allocations and corrections cannot
 * deadlock.
 */
CREATE FUNCTION credit.allocation_apply()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p		credit.payments;
	r		credit.receivables;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		UPDATE credit.receivables x
		   SET allocated = x.allocated OPERATOR(pg_catalog.-) OLD.amount,
			   last_allocated_on = (SELECT pg_catalog.max(l.allocated_on) FROM credit.allocations l
									 WHERE l.receivable_id OPERATOR(pg_catalog.=) OLD.receivable_id
									   AND l.allocation_id OPERATOR(pg_catalog.<>) OLD.allocation_id)
		 WHERE x.receivable_id OPERATOR(pg_catalog.=) OLD.receivable_id;
		UPDATE credit.payments x
		   SET allocated = x.allocated OPERATOR(pg_catalog.-) OLD.amount
		 WHERE x.payment_id OPERATOR(pg_catalog.=) OLD.payment_id;
		RETURN OLD;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		RAISE EXCEPTION 'allocations cannot be changed'
			USING ERRCODE = '55000',
				  HINT = 'Delete the allocation and insert a new one.';
	END IF;
	IF NEW.amount IS NULL OR NEW.amount OPERATOR(pg_catalog.<=) 0 THEN
		RETURN NEW;				/* the constraints say why */
	END IF;
	SELECT * INTO p FROM credit.payments x
	 WHERE x.payment_id OPERATOR(pg_catalog.=) NEW.payment_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown payment (payment_id %)', NEW.payment_id
			USING ERRCODE = '23503', SCHEMA = 'credit', TABLE = 'allocations';
	END IF;
	SELECT * INTO r FROM credit.receivables x
	 WHERE x.receivable_id OPERATOR(pg_catalog.=) NEW.receivable_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown invoice (receivable_id %)', NEW.receivable_id
			USING ERRCODE = '23503', SCHEMA = 'credit', TABLE = 'allocations';
	END IF;
	IF p.customer_key OPERATOR(pg_catalog.<>) r.customer_key THEN
		RAISE EXCEPTION 'payment "%" of customer "%" cannot pay invoice "%" of customer "%"',
			p.payment_key, p.customer_key, r.invoice_key, r.customer_key
			USING ERRCODE = 'CR006', SCHEMA = 'credit', TABLE = 'allocations';
	END IF;
	IF p.currency OPERATOR(pg_catalog.<>) r.currency THEN
		RAISE EXCEPTION 'payment "%" in % cannot pay invoice "%" in %',
			p.payment_key, p.currency, r.invoice_key, r.currency
			USING ERRCODE = 'CR004', SCHEMA = 'credit', TABLE = 'allocations';
	END IF;
	UPDATE credit.receivables x
	   SET allocated = x.allocated OPERATOR(pg_catalog.+) NEW.amount,
		   last_allocated_on = GREATEST(x.last_allocated_on, NEW.allocated_on)
	 WHERE x.receivable_id OPERATOR(pg_catalog.=) NEW.receivable_id
	   AND x.allocated OPERATOR(pg_catalog.+) NEW.amount OPERATOR(pg_catalog.<=) x.amount
	RETURNING * INTO r;
	IF NOT FOUND THEN
		SELECT * INTO r FROM credit.receivables x
		 WHERE x.receivable_id OPERATOR(pg_catalog.=) NEW.receivable_id;
		RAISE EXCEPTION 'allocation of % exceeds the open amount % of invoice "%"',
			NEW.amount, r.open_amount, r.invoice_key
			USING ERRCODE = 'CR005', SCHEMA = 'credit', TABLE = 'allocations',
				  HINT = 'Allocate at most the invoice''s open amount.';
	END IF;
	UPDATE credit.payments x
	   SET allocated = x.allocated OPERATOR(pg_catalog.+) NEW.amount
	 WHERE x.payment_id OPERATOR(pg_catalog.=) NEW.payment_id
	   AND x.allocated OPERATOR(pg_catalog.+) NEW.amount OPERATOR(pg_catalog.<=) x.amount
	RETURNING * INTO p;
	IF NOT FOUND THEN
		SELECT * INTO p FROM credit.payments x
		 WHERE x.payment_id OPERATOR(pg_catalog.=) NEW.payment_id;
		RAISE EXCEPTION 'allocation of % exceeds the unallocated amount % of payment "%"',
			NEW.amount, p.unallocated, p.payment_key
			USING ERRCODE = 'CR005', SCHEMA = 'credit', TABLE = 'allocations',
				  HINT = 'Allocate at most the payment''s unallocated amount.';
	END IF;
	/* copies for payment-behaviour metrics: neither can change while allocated */
	NEW.customer_key := r.customer_key;
	NEW.invoice_date := r.invoice_date;
	RETURN NEW;
END;
$$;

CREATE TRIGGER allocation_apply
	BEFORE INSERT OR UPDATE ON credit.allocations
	FOR EACH ROW EXECUTE FUNCTION credit.allocation_apply();
CREATE TRIGGER allocation_reverse
	AFTER DELETE ON credit.allocations
	FOR EACH ROW EXECUTE FUNCTION credit.allocation_apply();

CREATE FUNCTION credit.allocate(payment_id bigint, invoice_key text,
								amount numeric DEFAULT NULL)
RETURNS credit.allocations
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p		credit.payments;
	r		credit.receivables;
	result	credit.allocations;
BEGIN
	/* locked (same order as the trigger), so "as much as both allow" is exact */
	SELECT * INTO p FROM credit.payments x
	 WHERE x.payment_id OPERATOR(pg_catalog.=) allocate.payment_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown payment (payment_id %)', allocate.payment_id
			USING ERRCODE = '23503';
	END IF;
	SELECT * INTO r FROM credit.receivables x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) p.customer_key
	   AND x.invoice_key OPERATOR(pg_catalog.=) allocate.invoice_key
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown invoice "%" of customer "%"', allocate.invoice_key, p.customer_key
			USING ERRCODE = '23503',
				  HINT = 'Allocate to an invoice of the payment''s own customer.';
	END IF;
	IF allocate.amount IS NULL AND LEAST(p.unallocated, r.open_amount) OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'nothing to allocate: payment "%" has % unallocated, invoice "%" % open',
			p.payment_key, p.unallocated, r.invoice_key, r.open_amount
			USING ERRCODE = 'CR005';
	END IF;
	INSERT INTO credit.allocations (payment_id, receivable_id, amount)
	VALUES (p.payment_id, r.receivable_id,
			COALESCE(allocate.amount, LEAST(p.unallocated, r.open_amount)))
	RETURNING * INTO result;
	RETURN result;
END;
$$;

COMMENT ON FUNCTION credit.allocate(bigint, text, numeric) IS
'Allocate (part of) a payment to an invoice of the same customer, by invoice number; without an amount, as much as both allow.';

/* the ledger tables count as exposure through the same C trigger as orders */
SELECT credit.attach_table('credit.receivables', 'customer_key', 'open_amount',
						   NULL, NULL, 'receivables', true,
						   '{customer_key,amount,allocated}');
SELECT credit.attach_table('credit.payments', 'customer_key', 'unallocated',
						   NULL, NULL, 'payments', true,
						   '{customer_key,amount,allocated}');
/*
 * dunning.sql: dunning policy as data, the daily dunning run, and the
 * delivery queue its consumers work from.
 *
 * Policy.  credit.dunning_levels lists the levels a receivable goes through,
 * by days relative to its due date (negative: before it).  Each level names
 * its actions (notify_owner, message_customer, risk_task, set_status), the
 * channel a customer message goes by, a message template, how often it is
 * repeated while it stays the current level, and optionally a fee and
 * interest.  Writes are checked: unknown actions or template variables,
 * set_status without a status (or a status without the action), a customer
 * message without a channel, negative fees or repeat days are refused row by
 * row, and a statement-level trigger refuses a table whose days_from_due do
 * not strictly increase with level_no (all SQLSTATE 23514).
 *
 * The run.  credit.run_dunning(as_of) advances every open, undisputed
 * receivable by at most one level per run: to the next level once
 * as_of - due_date reaches its days_from_due, or else queues a repeat of its
 * current level when repeat_days have passed since it was last dunned.  A
 * receivable first seen long after its due date therefore climbs one level
 * per daily run, each level being reached (and sent) in order.  Each step
 * queues one row into credit.dunning_queue, unique per (receivable, level,
 * repeat), so a second run the same day finds nothing to do, and ON CONFLICT
 * DO NOTHING is the second guard.  The receivable keeps dunning_level,
 * dunning_repeat, last_dunned_on and next_dunning_on, the earliest date on
 * which anything can happen to it next ('infinity': nothing more; NULL
 * before the first step, which is due when as_of - due_date reaches the
 * first level's days), so a run writes only the receivables that are due:
 * a first run over a new ledger does not write the invoices whose first
 * level is still ahead.  It finds them with one sequential scan (see below
 * why there is no index on next_dunning_on).  When the schedule (level
 * numbers, days, repeat days) changes, the next run re-evaluates every open
 * receivable once, so stored dates never go stale.
 * Updating the dunning columns does not touch exposure: the ledger trigger
 * on credit.receivables fires only for customer_key, amount and allocated.
 *
 * Status.  After queueing, each customer whose receivables reached a level
 * with set_status gets accounts.dunning_status set to the most severe status
 * reached (stop over watch; a stop is never lowered to watch).  When
 * credit.settings.dunning_lifts_status is on, an account whose dunning_status
 * is set and which has no open, undisputed receivable past its due date has
 * it lifted (set to NULL).  Dunning writes only dunning_status: the accounts
 * trigger derives status from it, from a person's manual_status (never
 * touched here, so a person's stop stays) and from exposure, records the
 * change and announces it on channel credit_events.  Accounts are locked in
 * customer_key order.  A level may set a status only after the due date
 * (days_from_due > 0), since a status is lifted as soon as nothing is overdue.
 *
 * Concurrency.  run_dunning takes a transaction-level advisory lock (key
 * 7165901439040225281, the bytes of "credit" followed by 0001) and a SHARE
 * lock on credit.dunning_levels, so runs serialize and the policy cannot
 * change under a run; it must run at READ COMMITTED (25000 otherwise), so
 * that a run which waited for another sees its commit and queues nothing
 * twice.  It locks receivable rows (UPDATE), then account rows in key
 * order: the ledger's own order (payment, invoice, account), so allocations
 * and corrections only wait for it.  An application transaction that
 * already holds an account (it wrote an order or a payment of that
 * customer) and then writes an invoice the run has locked can deadlock
 * with it (40P01): either side may be chosen to fail; retry it.
 *
 * The queue.  One NOTIFY on channel credit_dunning per run that queued rows,
 * payload {"event": "dunning_queued", "as_of": "YYYY-MM-DD", "queued": n}.
 * Consumers call credit.claim_dunning(batch, channel, worker, lease), which
 * hands out the rows due longest first, with FOR UPDATE SKIP LOCKED (two
 * consumers never get the same row and never wait for each other), and
 * credit.complete_dunning(queue_id, ok, error) for each: ok -> sent; a
 * failure is retried after credit.settings.dunning_retry_delay, doubled per
 * further failure, until dunning_max_attempts, then the row is dead.  A
 * claim is a lease (default 15 minutes): a row whose consumer neither
 * completes nor fails it in time is handed out again, its attempt counted
 * as failed, or given up if that was the last one (so delivery is at least
 * once; consumers should be idempotent).  A channel of NULL claims rows of
 * every channel, internal ones (channel NULL) included.
 *
 * Scheduling.  The extension needs no scheduler; with pg_cron installed:
 *	  SELECT cron.schedule('credit-dunning', '30 6 * * *',
 *						   'SELECT * FROM credit.run_dunning()');
 * (cron.schedule runs it in the database named by cron.database_name;
 * pg_cron 1.4 has cron.schedule_in_database for another one).  Any other
 * scheduler that runs the same statement once a day works as well; running
 * it more often is harmless.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

/* ---------------------------------------------------------------------
 * Policy: the levels
 * ------------------------------------------------------------------- */

CREATE TABLE credit.dunning_levels (
	level_no		integer PRIMARY KEY,
	name			text NOT NULL,
	days_from_due	integer NOT NULL,
	actions			text[] NOT NULL,
	channel			text,
	set_status		text,
	template		text,
	repeat_days		integer,
	fee				numeric NOT NULL DEFAULT 0,
	annual_interest_rate numeric NOT NULL DEFAULT 0,
	CONSTRAINT dunning_levels_level_no_check
		CHECK (level_no OPERATOR(pg_catalog.>) 0 AND level_no OPERATOR(pg_catalog.<=) 1000),
	CONSTRAINT dunning_levels_name_check
		CHECK (name OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT dunning_levels_days_from_due_check
		CHECK (days_from_due OPERATOR(pg_catalog.>=) -3650
			   AND days_from_due OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT dunning_levels_actions_check
		CHECK (pg_catalog.cardinality(actions) OPERATOR(pg_catalog.>) 0
			   AND actions OPERATOR(pg_catalog.<@)
				   '{notify_owner,message_customer,risk_task,set_status}'::text[]),
	CONSTRAINT dunning_levels_channel_check
		CHECK (channel OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
	CONSTRAINT dunning_levels_message_channel_check
		CHECK (channel IS NOT NULL
			   OR NOT ('message_customer' OPERATOR(pg_catalog.=) ANY (actions))),
	CONSTRAINT dunning_levels_set_status_check
		CHECK (set_status OPERATOR(pg_catalog.=) ANY ('{watch,stop}'::text[])),
	CONSTRAINT dunning_levels_set_status_action_check
		CHECK ((set_status IS NOT NULL) OPERATOR(pg_catalog.=)
			   ('set_status' OPERATOR(pg_catalog.=) ANY (actions))),
	CONSTRAINT dunning_levels_set_status_overdue_check
		CHECK (set_status IS NULL OR days_from_due OPERATOR(pg_catalog.>) 0),
	CONSTRAINT dunning_levels_repeat_days_check
		CHECK (repeat_days OPERATOR(pg_catalog.>) 0
			   AND repeat_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT dunning_levels_fee_check
		CHECK (fee OPERATOR(pg_catalog.>=) 0 AND fee OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT dunning_levels_interest_check
		CHECK (annual_interest_rate OPERATOR(pg_catalog.>=) 0
			   AND annual_interest_rate OPERATOR(pg_catalog.<=) 1000)
);

COMMENT ON TABLE credit.dunning_levels IS
'Dunning policy: the levels a receivable goes through, in level_no order, by days relative to its due date. days_from_due must strictly increase with level_no. Edited with ordinary SQL; pg_dump keeps it.';
COMMENT ON COLUMN credit.dunning_levels.level_no IS 'Level number, 1 to 1000; levels are reached in this order, one per run at most.';
COMMENT ON COLUMN credit.dunning_levels.name IS 'Name of the level (the template variable {level}).';
COMMENT ON COLUMN credit.dunning_levels.days_from_due IS
'The level is reached when as_of - due_date >= this many days (negative: before the due date).';
COMMENT ON COLUMN credit.dunning_levels.actions IS
'What the level does, a non-empty subset of notify_owner (tell the salesperson), message_customer (through channel), risk_task (open a task for risk control), set_status (set the account''s dunning_status to set_status). credit.run_dunning applies set_status itself; consumers of credit.dunning_queue perform the others.';
COMMENT ON COLUMN credit.dunning_levels.channel IS
'How a customer message goes (email, dingtalk, wecom, sms, letter, ...: lower case); required with message_customer; NULL for internal levels.';
COMMENT ON COLUMN credit.dunning_levels.set_status IS
'watch or stop: the account''s dunning_status at this level; given exactly when actions include set_status, and only for levels after the due date.';
COMMENT ON COLUMN credit.dunning_levels.template IS
'Message text with variables {customer_name} {customer_key} {invoice} {open_amount} {overdue_amount} {currency} {due_date} {days_overdue} {level} {fee} {interest}; rendered into credit.dunning_queue.message. Other {name} variables are refused.';
COMMENT ON COLUMN credit.dunning_levels.repeat_days IS
'NULL: sent once. N > 0: queued again every N days while this stays the receivable''s level (the next level not reached yet).';
COMMENT ON COLUMN credit.dunning_levels.fee IS 'Dunning fee carried by each row queued at this level (repeats included), >= 0.';
COMMENT ON COLUMN credit.dunning_levels.annual_interest_rate IS
'Late interest in percent a year: interest = open_amount * rate / 100 * days_overdue / 365, rounded to 2 decimals.';

/* defaults, not on a restore (sql/settings.sql) */
INSERT INTO credit.dunning_levels
	(level_no, name, days_from_due, actions, channel, set_status, template)
SELECT * FROM (VALUES
	(1, 'reminder to salesperson', -3, '{notify_owner}'::text[], NULL, NULL::text,
	 'Invoice {invoice} of {customer_name} ({open_amount} {currency}) is due on {due_date}.'),
	(2, 'notice', 0, '{message_customer}', 'email', NULL,
	 'Dear {customer_name}, invoice {invoice} of {open_amount} {currency} is due today ({due_date}).'),
	(3, 'overdue email', 3, '{message_customer}', 'email', NULL,
	 'Dear {customer_name}, invoice {invoice} is {days_overdue} days overdue; {overdue_amount} {currency} remain unpaid. Please pay promptly.'),
	(4, 'escalation to risk', 15, '{risk_task,set_status}', NULL, 'watch',
	 'Invoice {invoice} of {customer_name} is {days_overdue} days overdue ({overdue_amount} {currency}); account set to watch.'),
	(5, 'stop', 30, '{set_status}', NULL, 'stop',
	 'Invoice {invoice} of {customer_name} is {days_overdue} days overdue ({overdue_amount} {currency}); account stopped.')) v
 WHERE pg_catalog.current_setting('row_security')::boolean;

SELECT pg_catalog.pg_extension_config_dump('credit.dunning_levels', '');

/* the template variables, in one place */
CREATE FUNCTION credit.dunning_template_variables()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '{customer_name,customer_key,invoice,open_amount,overdue_amount,currency,due_date,days_overdue,level,fee,interest}'::text[];

COMMENT ON FUNCTION credit.dunning_template_variables() IS
'The variables a dunning template may use, each written {name}.';

/*
 * BEFORE INSERT OR UPDATE row trigger on credit.dunning_levels: the same
 * rules as the CHECK constraints, said clearly (which action, which
 * variable, which level), plus the template's variables.
 */
CREATE FUNCTION credit.dunning_levels_check_row()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad		text;
BEGIN
	SELECT a INTO bad
	  FROM pg_catalog.unnest(NEW.actions) a
	 WHERE a IS NULL
		OR NOT (a OPERATOR(pg_catalog.=) ANY
				('{notify_owner,message_customer,risk_task,set_status}'::text[]))
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'unknown dunning action "%" in level %', bad, NEW.level_no
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'actions', CONSTRAINT = 'dunning_levels_actions_check',
				  HINT = 'Actions are notify_owner, message_customer, risk_task and set_status.';
	END IF;
	IF pg_catalog.cardinality(NEW.actions) OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'dunning level % has no actions', NEW.level_no
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'actions', CONSTRAINT = 'dunning_levels_actions_check',
				  HINT = 'Name at least one of notify_owner, message_customer, risk_task, set_status.';
	END IF;
	IF 'set_status' OPERATOR(pg_catalog.=) ANY (NEW.actions) AND NEW.set_status IS NULL THEN
		RAISE EXCEPTION 'dunning level % has the action set_status but no status to set', NEW.level_no
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'set_status', CONSTRAINT = 'dunning_levels_set_status_action_check',
				  HINT = 'Set set_status to watch or stop.';
	END IF;
	IF NEW.set_status IS NOT NULL
	   AND NOT ('set_status' OPERATOR(pg_catalog.=) ANY (NEW.actions)) THEN
		RAISE EXCEPTION 'dunning level % has set_status "%" but not the action set_status',
			NEW.level_no, NEW.set_status
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'set_status', CONSTRAINT = 'dunning_levels_set_status_action_check',
				  HINT = 'Add set_status to actions, or set set_status to NULL.';
	END IF;
	IF NEW.set_status IS NOT NULL
	   AND NOT (NEW.set_status OPERATOR(pg_catalog.=) ANY ('{watch,stop}'::text[])) THEN
		RAISE EXCEPTION 'dunning level % sets unknown status "%"', NEW.level_no, NEW.set_status
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'set_status', CONSTRAINT = 'dunning_levels_set_status_check',
				  HINT = 'Dunning sets watch or stop; none and ok are a person''s to set.';
	END IF;
	IF NEW.set_status IS NOT NULL AND NEW.days_from_due OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'dunning level % sets status "%" at % days from the due date',
			NEW.level_no, NEW.set_status, NEW.days_from_due
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'days_from_due', CONSTRAINT = 'dunning_levels_set_status_overdue_check',
				  DETAIL = 'credit.run_dunning lifts a status it set as soon as nothing is overdue.',
				  HINT = 'Only a level after the due date (days_from_due > 0) may set a status.';
	END IF;
	IF 'message_customer' OPERATOR(pg_catalog.=) ANY (NEW.actions) AND NEW.channel IS NULL THEN
		RAISE EXCEPTION 'dunning level % messages the customer but names no channel', NEW.level_no
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'channel', CONSTRAINT = 'dunning_levels_message_channel_check',
				  HINT = 'Name the channel: email, dingtalk, wecom, sms, letter, ...';
	END IF;
	SELECT m[1] INTO bad
	  FROM pg_catalog.regexp_matches(NEW.template, '\{([A-Za-z0-9_]*)\}', 'g') m
	 WHERE NOT (m[1] OPERATOR(pg_catalog.=) ANY (credit.dunning_template_variables()))
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'unknown variable "{%}" in the template of dunning level %', bad, NEW.level_no
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'template',
				  HINT = pg_catalog.format('Variables: {%s}.',
					  pg_catalog.array_to_string(credit.dunning_template_variables(), '} {'));
	END IF;
	RETURN NEW;		/* the CHECK constraints catch what is left */
END;
$$;

COMMENT ON FUNCTION credit.dunning_levels_check_row() IS
'Trigger: refuses a malformed dunning level with a message naming the fault (SQLSTATE 23514).';

CREATE TRIGGER dunning_levels_check_row
	BEFORE INSERT OR UPDATE ON credit.dunning_levels
	FOR EACH ROW EXECUTE FUNCTION credit.dunning_levels_check_row();

/*
 * AFTER INSERT OR UPDATE statement trigger: days_from_due strictly
 * increase with level_no (checked once per statement, so one UPDATE may
 * shift every level).  A DELETE cannot break the order.
 */
CREATE FUNCTION credit.dunning_levels_check_order()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad		record;
BEGIN
	SELECT * INTO bad
	  FROM (SELECT l.level_no, l.days_from_due,
				   pg_catalog.lag(l.level_no) OVER w AS prev_no,
				   pg_catalog.lag(l.days_from_due) OVER w AS prev_days
			  FROM credit.dunning_levels l
			WINDOW w AS (ORDER BY l.level_no)) s
	 WHERE s.prev_days OPERATOR(pg_catalog.>=) s.days_from_due
	 ORDER BY s.level_no
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'dunning level % (% days from due) must come later than level % (% days from due)',
			bad.level_no, bad.days_from_due, bad.prev_no, bad.prev_days
			USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
				  COLUMN = 'days_from_due',
				  DETAIL = 'Levels are reached in level_no order, so days_from_due must strictly increase with level_no.',
				  HINT = 'Renumber the levels or change their days in one statement.';
	END IF;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.dunning_levels_check_order() IS
'Trigger: refuses a dunning policy whose days_from_due do not strictly increase with level_no (SQLSTATE 23514).';

CREATE TRIGGER dunning_levels_check_order
	AFTER INSERT OR UPDATE ON credit.dunning_levels
	FOR EACH STATEMENT EXECUTE FUNCTION credit.dunning_levels_check_order();

/* ---------------------------------------------------------------------
 * The queue
 * ------------------------------------------------------------------- */

CREATE TABLE credit.dunning_queue (
	queue_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	receivable_id	bigint NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	invoice_key		text NOT NULL,
	level_no		integer NOT NULL,
	repeat_no		integer NOT NULL DEFAULT 0,
	as_of			date NOT NULL,
	channel			text,
	actions			text[] NOT NULL,
	recipient		text,
	message			text,
	currency		text NOT NULL,
	due_date		date NOT NULL,
	open_amount		numeric NOT NULL,
	overdue_amount	numeric NOT NULL,
	days_overdue	integer NOT NULL,
	fee				numeric NOT NULL DEFAULT 0,
	interest		numeric NOT NULL DEFAULT 0,
	status			text NOT NULL DEFAULT 'queued',
	attempts		integer NOT NULL DEFAULT 0,
	next_attempt_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	claimed_by		text,
	claimed_at		timestamptz,
	completed_at	timestamptz,
	last_error		text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT dunning_queue_step UNIQUE (receivable_id, level_no, repeat_no),
	CONSTRAINT dunning_queue_status_check
		CHECK (status OPERATOR(pg_catalog.=) ANY ('{queued,claimed,sent,failed,dead}'::text[])),
	CONSTRAINT dunning_queue_attempts_check
		CHECK (attempts OPERATOR(pg_catalog.>=) 0)
);
/* claiming: the pending rows by due time, all channels or one channel */
CREATE INDEX dunning_queue_pending_idx
	ON credit.dunning_queue (next_attempt_at, queue_id)
	WHERE status OPERATOR(pg_catalog.=) ANY ('{queued,claimed,failed}'::text[]);
CREATE INDEX dunning_queue_channel_idx
	ON credit.dunning_queue (channel, next_attempt_at, queue_id)
	WHERE status OPERATOR(pg_catalog.=) ANY ('{queued,claimed,failed}'::text[]);
/* claims whose lease ran out on their last attempt, to be given up */
CREATE INDEX dunning_queue_claimed_idx
	ON credit.dunning_queue (next_attempt_at)
	WHERE status OPERATOR(pg_catalog.=) 'claimed';

COMMENT ON TABLE credit.dunning_queue IS
'Dunning steps queued by credit.run_dunning, one per receivable, level and repeat, for consumers to deliver (credit.claim_dunning, credit.complete_dunning). Rows are kept as the dunning history; pg_dump keeps them.';
COMMENT ON COLUMN credit.dunning_queue.receivable_id IS 'The receivable dunned (credit.receivables; no foreign key, so the history outlives a deleted invoice).';
COMMENT ON COLUMN credit.dunning_queue.repeat_no IS '0 when the level was reached, then 1, 2, ... for its repeats.';
COMMENT ON COLUMN credit.dunning_queue.as_of IS 'The as_of date of the run that queued the row.';
COMMENT ON COLUMN credit.dunning_queue.actions IS 'The level''s actions at queueing time; set_status has already been applied by the run.';
COMMENT ON COLUMN credit.dunning_queue.recipient IS
'The customer_key when the level messages the customer, else the account owner when it notifies the owner, else NULL.';
COMMENT ON COLUMN credit.dunning_queue.message IS 'The level''s template rendered with the row''s figures (NULL without a template).';
COMMENT ON COLUMN credit.dunning_queue.due_date IS 'The receivable''s due date.';
COMMENT ON COLUMN credit.dunning_queue.open_amount IS 'The receivable''s open amount at queueing time.';
COMMENT ON COLUMN credit.dunning_queue.overdue_amount IS 'The open amount if the receivable is past its due date, else 0.';
COMMENT ON COLUMN credit.dunning_queue.days_overdue IS 'Days past the due date (0 on or before it).';
COMMENT ON COLUMN credit.dunning_queue.interest IS 'open_amount * annual_interest_rate / 100 * days_overdue / 365, rounded to 2 decimals.';
COMMENT ON COLUMN credit.dunning_queue.status IS
'queued, claimed (by a consumer, until next_attempt_at), sent, failed (retried at next_attempt_at), dead (given up).';
COMMENT ON COLUMN credit.dunning_queue.attempts IS 'Deliveries attempted: counted when a consumer claims the row.';
COMMENT ON COLUMN credit.dunning_queue.next_attempt_at IS
'queued or failed: when the row may be claimed; claimed: when the claim expires and the row is handed out again.';

SELECT pg_catalog.pg_extension_config_dump('credit.dunning_queue', '');
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('credit.dunning_queue', 'queue_id')::regclass, '');

/*
 * Internal: what the last run saw.  levels_fingerprint is a digest of the
 * schedule (level numbers, days, repeat days); when it differs from the
 * current policy, stored next_dunning_on dates may be stale and the run
 * re-evaluates every open receivable.  Not dumped: after a restore the
 * first run re-evaluates everything, which is correct.
 */
CREATE TABLE credit.dunning_state (
	singleton		boolean PRIMARY KEY DEFAULT true,
	levels_fingerprint text,
	last_as_of		date,
	last_run_at		timestamptz,
	CONSTRAINT dunning_state_singleton_check CHECK (singleton)
);
INSERT INTO credit.dunning_state DEFAULT VALUES;

COMMENT ON TABLE credit.dunning_state IS
'Internal to credit.run_dunning: the schedule it last evaluated receivables against, and its last run.';

/*
 * Deliberately no index on next_dunning_on.  A run finds the due
 * receivables with one sequential scan (0.3 to 0.6 s over 1,000,000 open
 * receivables) and writes only those.  An index on next_dunning_on (or an
 * expression or predicate using it) would make that read cheaper, but a row
 * whose indexed column changes can never be updated in place (HOT): every
 * dunning update would insert into all of the table's indexes.  Measured
 * on 1,000,000 receivables: +2.5 s on a first run even where pages are too
 * full for HOT; where they have room (fillfactor 50), HOT updates bring a
 * first run from 26 s down to 10 s, which such an index would forfeit.
 */

COMMENT ON COLUMN credit.receivables.dunning_repeat IS 'Repeats of the current dunning level queued so far, kept by credit.run_dunning.';
COMMENT ON COLUMN credit.receivables.last_dunned_on IS 'as_of of the run that last queued a dunning step for it.';
COMMENT ON COLUMN credit.receivables.next_dunning_on IS
'Earliest date a dunning run can next act on it (NULL: no step yet, due when the first level''s days are reached; infinity: nothing more to do); kept by credit.run_dunning. Set it to NULL to have the next run decide afresh.';

/* ---------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------- */

CREATE FUNCTION credit.run_dunning(as_of date DEFAULT CURRENT_DATE,
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

	/* escalate: lock the accounts in key order, then raise their dunning_status */
	to_watch := 0;
	to_stop := 0;
	IF esc_keys IS NOT NULL THEN
		PERFORM 1
		   FROM credit.accounts a
		  WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (esc_keys)
		  ORDER BY a.customer_key
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
				 WHERE a.dunning_status IS NOT NULL
				   AND NOT EXISTS (
						SELECT 1 FROM credit.receivables r
						 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
						   AND r.allocated OPERATOR(pg_catalog.<) r.amount
						   AND NOT r.disputed
						   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of)
				 ORDER BY a.customer_key
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

COMMENT ON FUNCTION credit.run_dunning(date) IS
'Daily dunning run as of a date: advances each due open, undisputed receivable by at most one level (or queues a repeat), queues one row per step into credit.dunning_queue, sets and lifts accounts.dunning_status, and NOTIFYs credit_dunning once. Returns one row: evaluated (receivables that were due for a decision: each got a step or a new next_dunning_on), queued (rows queued), repeats (of those, repeats of a level), to_watch and to_stop (accounts whose dunning_status was raised to watch, to stop), lifted (accounts whose dunning_status was lifted). Runs serialize; a second run for the same day queues nothing. READ COMMITTED only.';

/* ---------------------------------------------------------------------
 * Consumers
 * ------------------------------------------------------------------- */

CREATE FUNCTION credit.claim_dunning(batch integer,
									 channel text DEFAULT NULL,
									 worker text DEFAULT NULL,
									 lease interval DEFAULT '15 minutes')
RETURNS SETOF credit.dunning_queue
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_attempts integer;
BEGIN
	IF batch IS NULL OR batch OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'batch must be a positive number of rows, not %', COALESCE(batch::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	IF lease IS NULL OR lease OPERATOR(pg_catalog.<=) '0'::interval THEN
		RAISE EXCEPTION 'lease must be a positive interval, not %', COALESCE(lease::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	SELECT s.dunning_max_attempts INTO max_attempts FROM credit.settings s;

	/* claims that expired on their last allowed attempt: given up */
	UPDATE credit.dunning_queue q
	   SET status = 'dead',
		   completed_at = pg_catalog.now(),
		   last_error = pg_catalog.concat_ws(': ', 'claim expired', q.claimed_by)
	 WHERE q.queue_id OPERATOR(pg_catalog.=) ANY (ARRAY(
			SELECT d.queue_id FROM credit.dunning_queue d
			 WHERE d.status OPERATOR(pg_catalog.=) 'claimed'
			   AND d.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()
			   AND d.attempts OPERATOR(pg_catalog.>=) max_attempts
			   FOR UPDATE SKIP LOCKED))
	   AND q.status OPERATOR(pg_catalog.=) 'claimed';

	RETURN QUERY
	WITH c AS (
		SELECT d.queue_id
		  FROM credit.dunning_queue d
		 WHERE d.status OPERATOR(pg_catalog.=) ANY ('{queued,claimed,failed}'::text[])
		   AND d.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()
		   AND (claim_dunning.channel IS NULL
				OR d.channel OPERATOR(pg_catalog.=) claim_dunning.channel)
		   AND (d.status OPERATOR(pg_catalog.<>) 'claimed'
				OR d.attempts OPERATOR(pg_catalog.<) max_attempts)
		 ORDER BY d.next_attempt_at, d.queue_id
		 LIMIT batch
		   FOR UPDATE SKIP LOCKED
	), claimed AS (
		UPDATE credit.dunning_queue q
		   SET status = 'claimed',
			   attempts = q.attempts OPERATOR(pg_catalog.+) 1,
			   claimed_by = COALESCE(claim_dunning.worker, credit.caller()::text),
			   claimed_at = pg_catalog.now(),
			   next_attempt_at = pg_catalog.now() OPERATOR(pg_catalog.+) claim_dunning.lease
		  FROM c
		 WHERE q.queue_id OPERATOR(pg_catalog.=) c.queue_id
		RETURNING q.*
	)
	SELECT * FROM claimed ORDER BY claimed.queue_id;
END;
$$;

COMMENT ON FUNCTION credit.claim_dunning(integer, text, text, interval) IS
'Hand up to batch queued or failed rows that are due (all channels, or one) to a consumer: they become claimed by worker (default current_user) for lease, attempts + 1. Rows claimed by another transaction are skipped (FOR UPDATE SKIP LOCKED). A claim that expires is handed out again, or given up (dead) if it was the last allowed attempt.';

CREATE FUNCTION credit.complete_dunning(queue_id bigint, ok boolean, error text DEFAULT NULL)
RETURNS credit.dunning_queue
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	q		credit.dunning_queue;
	cfg		credit.settings;
BEGIN
	IF queue_id IS NULL OR ok IS NULL THEN
		RAISE EXCEPTION 'queue_id and ok must not be null'
			USING ERRCODE = '22023';
	END IF;
	SELECT * INTO q FROM credit.dunning_queue d
	 WHERE d.queue_id OPERATOR(pg_catalog.=) complete_dunning.queue_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'dunning queue row % does not exist', complete_dunning.queue_id
			USING ERRCODE = '22023', SCHEMA = 'credit', TABLE = 'dunning_queue';
	END IF;
	IF q.status OPERATOR(pg_catalog.<>) 'claimed' THEN
		RAISE EXCEPTION 'dunning queue row % is not claimed', complete_dunning.queue_id
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'dunning_queue',
				  DETAIL = pg_catalog.format('Its status is %s.', q.status),
				  HINT = 'Claim rows with credit.claim_dunning before completing them.';
	END IF;
	SELECT * INTO cfg FROM credit.settings;
	IF ok THEN
		UPDATE credit.dunning_queue d
		   SET status = 'sent', completed_at = pg_catalog.now()
		 WHERE d.queue_id OPERATOR(pg_catalog.=) complete_dunning.queue_id
		RETURNING * INTO q;
	ELSIF q.attempts OPERATOR(pg_catalog.>=) cfg.dunning_max_attempts THEN
		UPDATE credit.dunning_queue d
		   SET status = 'dead', completed_at = pg_catalog.now(),
			   last_error = COALESCE(complete_dunning.error, 'failed')
		 WHERE d.queue_id OPERATOR(pg_catalog.=) complete_dunning.queue_id
		RETURNING * INTO q;
	ELSE
		UPDATE credit.dunning_queue d
		   SET status = 'failed',
			   last_error = COALESCE(complete_dunning.error, 'failed'),
			   next_attempt_at = pg_catalog.now() OPERATOR(pg_catalog.+)
				   (cfg.dunning_retry_delay OPERATOR(pg_catalog.*)
					pg_catalog.power(2, GREATEST(q.attempts OPERATOR(pg_catalog.-) 1, 0)))
		 WHERE d.queue_id OPERATOR(pg_catalog.=) complete_dunning.queue_id
		RETURNING * INTO q;
	END IF;
	RETURN q;
END;
$$;

COMMENT ON FUNCTION credit.complete_dunning(bigint, boolean, text) IS
'Record the outcome of a claimed row: ok -> sent; a failure -> failed, retried after settings.dunning_retry_delay * 2^(attempts - 1), or dead once attempts reach settings.dunning_max_attempts. Returns the row. A row that is not claimed: SQLSTATE 55000.';
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
/*
 * profiles.sql: the credit profile (资信档案) of each customer: statutory and
 * background data a scorecard can draw on, key contacts, and references to
 * the documents behind them.
 *
 * The unified social credit code (统一社会信用代码, GB 32100-2015) is kept in
 * the domain credit.uscc, whose check calls the C function
 * credit.uscc_check (src/uscc.c): a code with a wrong length, a character
 * outside the code's alphabet or a wrong check character is refused with
 * SQLSTATE 23514 and a message naming what is wrong.  credit.uscc_valid is
 * the same test as a boolean, for applications' own validation.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE FUNCTION credit.uscc_valid(code text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'credit_uscc_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.uscc_valid(text) IS
'True when the text is a unified social credit code (GB 32100-2015): 18 characters of the code alphabet with a correct check character.';

CREATE FUNCTION credit.uscc_check(code text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'credit_uscc_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.uscc_check(text) IS
'Returns true for a valid unified social credit code; otherwise raises 23514 saying what is wrong (the check of domain credit.uscc).';

CREATE DOMAIN credit.uscc AS text
	CONSTRAINT uscc_valid CHECK (credit.uscc_check(VALUE));

COMMENT ON DOMAIN credit.uscc IS
'A unified social credit code (统一社会信用代码, GB 32100-2015), check character verified. Applications may use it for their own columns.';

CREATE TABLE credit.profiles (
	customer_key	text COLLATE "C" PRIMARY KEY
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	uscc			credit.uscc UNIQUE,
	legal_name		text,
	registered_capital numeric,
	capital_currency text NOT NULL DEFAULT 'CNY',
	established_on	date,
	industry		text,
	customer_source	text,
	customer_since	date,
	notes			text,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT profiles_registered_capital_check
		CHECK (registered_capital OPERATOR(pg_catalog.>=) 0
			   AND registered_capital OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT profiles_capital_currency_check
		CHECK (capital_currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
	CONSTRAINT profiles_dates_finite_check
		CHECK (pg_catalog.isfinite(established_on) AND pg_catalog.isfinite(customer_since))
);

COMMENT ON TABLE credit.profiles IS
'Credit profile (资信档案): statutory and background data of a customer, one row per account.';
COMMENT ON COLUMN credit.profiles.uscc IS 'Unified social credit code (统一社会信用代码), check character verified.';
COMMENT ON COLUMN credit.profiles.registered_capital IS 'Registered capital (注册资本) in capital_currency; metric registered_capital.';
COMMENT ON COLUMN credit.profiles.industry IS 'Industry, free text or the company''s own classification.';
COMMENT ON COLUMN credit.profiles.customer_source IS 'How the customer came: referral, tender, exhibition, ...';
COMMENT ON COLUMN credit.profiles.customer_since IS
'Start of the relationship when it predates the receivables ledger; metric relationship_years counts from it.';

CREATE TABLE credit.profile_contacts (
	contact_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.profiles ON UPDATE CASCADE ON DELETE CASCADE,
	name			text NOT NULL,
	role			text,
	phone			text,
	email			text,
	is_primary		boolean NOT NULL DEFAULT false
);
CREATE INDEX profile_contacts_customer_idx ON credit.profile_contacts (customer_key);
CREATE UNIQUE INDEX profile_contacts_primary_idx ON credit.profile_contacts (customer_key)
	WHERE is_primary;

COMMENT ON TABLE credit.profile_contacts IS
'Key contacts of a customer (finance, purchasing, legal representative); at most one primary.';

CREATE TABLE credit.profile_documents (
	document_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.profiles ON UPDATE CASCADE ON DELETE CASCADE,
	kind			text NOT NULL,
	reference		text NOT NULL,
	issued_on		date,
	expires_on		date,
	received_on		date NOT NULL DEFAULT CURRENT_DATE,
	CONSTRAINT profile_documents_kind_check
		CHECK (kind OPERATOR(pg_catalog.=) ANY
			   ('{business_licence,bureau_report,financial_statement,guarantee,contract,other}'::text[])),
	CONSTRAINT profile_documents_dates_check
		CHECK (expires_on OPERATOR(pg_catalog.>) issued_on)
);
CREATE INDEX profile_documents_customer_idx ON credit.profile_documents (customer_key, kind);

COMMENT ON TABLE credit.profile_documents IS
'References to the documents behind a profile (business licence, bureau report, ...): where the file is, and its dates.';
COMMENT ON COLUMN credit.profile_documents.reference IS 'Where the document is kept: a URL, a path or a document-management key.';

SELECT pg_catalog.pg_extension_config_dump('credit.profiles', '');
SELECT pg_catalog.pg_extension_config_dump('credit.profile_contacts', '');
SELECT pg_catalog.pg_extension_config_dump('credit.profile_documents', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.profile_contacts', 'contact_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.profile_documents', 'document_id')::pg_catalog.regclass, '');
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
		   pg_catalog.round(a.exposure OPERATOR(pg_catalog./)
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
/*
 * scorecard.sql: scorecards as data.  A scorecard version is a row of
 * credit.scorecards; its factors, bins, grades (with each grade's limit and
 * term recommendation) and adjustment rules are rows keyed by it.
 *
 * Scoring (src/scorecard.c):
 *   factor points    bins: the bin [lower_bound, upper_bound) holding the
 *                    metric's value gives points (0 to 100, NULL bounds are
 *                    unbounded); linear: intercept + slope x value, clamped
 *                    to 0..100; a missing value (NULL) gives missing_points
 *   contribution     weight x points / 100: a factor of weight 30 is worth
 *                    at most 30 points
 *   score            sum of contributions, rounded to 2 decimals; it lies in
 *                    0 .. sum of weights
 *   grade            the grade with the largest min_score <= score (grades
 *                    rank by min_score: the highest is the best)
 *   rules            each rule whose metric compares true moves the grade
 *                    downgrade_steps grades down (summed, bounded by the
 *                    lowest grade)
 *   recommendation   of the final grade: limit_base + limit_multiplier x
 *                    limit_metric (a missing metric counts 0), clamped to
 *                    [limit_floor, limit_cap], rounded down to a multiple of
 *                    limit_round; term_days
 *   reasons          the reason codes of the factors that lost points
 *                    (weight - contribution > 0), most points lost first,
 *                    ties in factor position order
 *
 * Life cycle: draft -> active -> retired.  Only a draft can be edited;
 * credit.activate_scorecard checks it is complete and makes it the one
 * active version (retiring the previous one); a version used for a decision
 * never changes again (SQLSTATE 55000), so score history always explains
 * itself.  credit.new_scorecard_version copies a version into a new draft.
 *
 * Validation happens when configuration is written (SQLSTATE 23514 unless
 * noted): row checks at once; the bins of a factor and the grades of a
 * scorecard, which are edited as sets, by constraint triggers at the end of
 * the statement (or at commit after SET CONSTRAINTS ... DEFERRED): bins of
 * a factor must not overlap and, once a factor has any, must cover every
 * value with no gap; completeness (every factor has bins or a linear rule,
 * grades start at score 0) is checked again at activation.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.scorecards (
	scorecard_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name			text NOT NULL,
	version			integer NOT NULL DEFAULT 1,
	state			text NOT NULL DEFAULT 'draft',
	description		text,
	window_months	integer NOT NULL DEFAULT 6,
	overdue_months	integer NOT NULL DEFAULT 12,
	hysteresis_points numeric NOT NULL DEFAULT 0,
	confirm_days	integer NOT NULL DEFAULT 0,
	limit_min_change numeric NOT NULL DEFAULT 0,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by		text NOT NULL DEFAULT credit.caller(),
	activated_at	timestamptz,
	retired_at		timestamptz,
	CONSTRAINT scorecards_name_version UNIQUE (name, version),
	CONSTRAINT scorecards_version_check CHECK (version OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT scorecards_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY ('{draft,active,retired}'::text[])),
	CONSTRAINT scorecards_window_check
		CHECK (window_months OPERATOR(pg_catalog.>=) 1 AND window_months OPERATOR(pg_catalog.<=) 120
			   AND overdue_months OPERATOR(pg_catalog.>=) 1 AND overdue_months OPERATOR(pg_catalog.<=) 120),
	CONSTRAINT scorecards_hysteresis_check
		CHECK (hysteresis_points OPERATOR(pg_catalog.>=) 0 AND confirm_days OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT scorecards_limit_min_change_check
		CHECK (limit_min_change OPERATOR(pg_catalog.>=) 0)
);
CREATE UNIQUE INDEX scorecards_one_active ON credit.scorecards ((true))
	WHERE state OPERATOR(pg_catalog.=) 'active';

COMMENT ON TABLE credit.scorecards IS
'Scorecard versions. Edit a draft; credit.activate_scorecard makes it the active one; active and retired versions never change.';
COMMENT ON COLUMN credit.scorecards.window_months IS 'Window of the payment-behaviour and sales metrics, in months.';
COMMENT ON COLUMN credit.scorecards.overdue_months IS 'Window of overdue_count and overdue_amount, in months.';
COMMENT ON COLUMN credit.scorecards.hysteresis_points IS
'A score-driven grade change needs the score this many points beyond the current grade''s band.';
COMMENT ON COLUMN credit.scorecards.confirm_days IS
'A score-driven grade change is applied only after the new grade has been computed for this many days.';
COMMENT ON COLUMN credit.scorecards.limit_min_change IS
'A recommended limit differing from the current limit by less than this is not acted on.';

CREATE TABLE credit.scorecard_factors (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	factor			text NOT NULL,
	position		integer NOT NULL,
	metric			text NOT NULL REFERENCES credit.metrics ON UPDATE CASCADE,
	weight			numeric NOT NULL,
	method			text NOT NULL DEFAULT 'bins',
	intercept		numeric,
	slope			numeric,
	missing_points	numeric NOT NULL DEFAULT 0,
	reason_code		text NOT NULL,
	reason_text		text,
	PRIMARY KEY (scorecard_id, factor),
	CONSTRAINT scorecard_factors_position UNIQUE (scorecard_id, position),
	CONSTRAINT scorecard_factors_weight_check
		CHECK (weight OPERATOR(pg_catalog.>) 0 AND weight OPERATOR(pg_catalog.<=) 1000),
	CONSTRAINT scorecard_factors_method_check
		CHECK (method OPERATOR(pg_catalog.=) ANY ('{bins,linear}'::text[])),
	CONSTRAINT scorecard_factors_linear_check
		CHECK ((method OPERATOR(pg_catalog.=) 'linear') OPERATOR(pg_catalog.=)
			   (intercept IS NOT NULL AND slope IS NOT NULL)),
	CONSTRAINT scorecard_factors_missing_points_check
		CHECK (missing_points OPERATOR(pg_catalog.>=) 0 AND missing_points OPERATOR(pg_catalog.<=) 100),
	CONSTRAINT scorecard_factors_reason_code_check
		CHECK (reason_code OPERATOR(pg_catalog.<>) '')
);

COMMENT ON TABLE credit.scorecard_factors IS
'Factors of a scorecard version: a metric, how its value becomes 0-100 points (bins or linear), and its weight (the most score points it can give).';
COMMENT ON COLUMN credit.scorecard_factors.weight IS 'Score points the factor gives at 100 points; contribution = weight x points / 100.';
COMMENT ON COLUMN credit.scorecard_factors.intercept IS 'linear method: points = intercept + slope x value, clamped to 0..100.';
COMMENT ON COLUMN credit.scorecard_factors.missing_points IS 'Points when the customer has no value for the metric.';
COMMENT ON COLUMN credit.scorecard_factors.reason_code IS 'Code reported when the factor costs points (adverse-action reason).';

CREATE TABLE credit.scorecard_bins (
	scorecard_id	bigint NOT NULL,
	factor			text NOT NULL,
	lower_bound		numeric,
	upper_bound		numeric,
	points			numeric NOT NULL,
	FOREIGN KEY (scorecard_id, factor)
		REFERENCES credit.scorecard_factors ON UPDATE CASCADE ON DELETE CASCADE,
	CONSTRAINT scorecard_bins_lower UNIQUE NULLS NOT DISTINCT (scorecard_id, factor, lower_bound),
	CONSTRAINT scorecard_bins_range_check
		CHECK (upper_bound OPERATOR(pg_catalog.>) lower_bound),
	CONSTRAINT scorecard_bins_points_check
		CHECK (points OPERATOR(pg_catalog.>=) 0 AND points OPERATOR(pg_catalog.<=) 100)
);

COMMENT ON TABLE credit.scorecard_bins IS
'Bins of a factor: a value in [lower_bound, upper_bound) gives points (0-100); NULL bounds are unbounded. A factor''s bins cover every value exactly once.';

CREATE TABLE credit.scorecard_grades (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	grade			text NOT NULL,
	min_score		numeric NOT NULL,
	limit_base		numeric NOT NULL DEFAULT 0,
	limit_metric	text REFERENCES credit.metrics ON UPDATE CASCADE,
	limit_multiplier numeric NOT NULL DEFAULT 0,
	limit_floor		numeric NOT NULL DEFAULT 0,
	limit_cap		numeric NOT NULL,
	limit_round		numeric NOT NULL DEFAULT 1,
	term_days		integer NOT NULL,
	auto_apply		text NOT NULL DEFAULT 'never',
	PRIMARY KEY (scorecard_id, grade),
	CONSTRAINT scorecard_grades_min_score UNIQUE (scorecard_id, min_score),
	CONSTRAINT scorecard_grades_grade_check CHECK (grade OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT scorecard_grades_min_score_check CHECK (min_score OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT scorecard_grades_limit_check
		CHECK (limit_floor OPERATOR(pg_catalog.>=) 0
			   AND limit_cap OPERATOR(pg_catalog.>=) limit_floor
			   AND limit_cap OPERATOR(pg_catalog.<) 1e15
			   AND limit_round OPERATOR(pg_catalog.>) 0),
	CONSTRAINT scorecard_grades_multiplier_check
		CHECK (limit_multiplier OPERATOR(pg_catalog.=) 0 OR limit_metric IS NOT NULL),
	CONSTRAINT scorecard_grades_term_check
		CHECK (term_days OPERATOR(pg_catalog.>=) 0 AND term_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT scorecard_grades_auto_apply_check
		CHECK (auto_apply OPERATOR(pg_catalog.=) ANY ('{never,decrease,always}'::text[]))
);

COMMENT ON TABLE credit.scorecard_grades IS
'Grades of a scorecard version: score bands (from min_score up to the next grade''s) and each grade''s limit and term recommendation.';
COMMENT ON COLUMN credit.scorecard_grades.min_score IS 'Lowest score of the grade; the grade with min_score 0 is the lowest, the highest min_score the best.';
COMMENT ON COLUMN credit.scorecard_grades.limit_metric IS 'Metric the recommended limit grows with (for example avg_monthly_sales).';
COMMENT ON COLUMN credit.scorecard_grades.limit_cap IS 'Recommended limit = clamp(limit_base + limit_multiplier x limit_metric, limit_floor, limit_cap), rounded down to limit_round.';
COMMENT ON COLUMN credit.scorecard_grades.auto_apply IS
'never: a changed recommendation opens a limit request; decrease: lower limits are applied at once, higher ones requested; always: applied at once.';

CREATE TABLE credit.scorecard_rules (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	rule_no			integer NOT NULL,
	metric			text NOT NULL REFERENCES credit.metrics ON UPDATE CASCADE,
	operator		text NOT NULL,
	threshold		numeric NOT NULL,
	downgrade_steps	integer NOT NULL DEFAULT 1,
	description		text,
	PRIMARY KEY (scorecard_id, rule_no),
	CONSTRAINT scorecard_rules_operator_check
		CHECK (operator OPERATOR(pg_catalog.=) ANY ('{>,>=,<,<=}'::text[])),
	CONSTRAINT scorecard_rules_steps_check
		CHECK (downgrade_steps OPERATOR(pg_catalog.>=) 1 AND downgrade_steps OPERATOR(pg_catalog.<=) 100)
);

COMMENT ON TABLE credit.scorecard_rules IS
'Adjustment rules: while metric <operator> threshold holds, the grade is downgrade_steps grades lower (applied at once, no hysteresis).';

SELECT pg_catalog.pg_extension_config_dump('credit.scorecards', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.scorecards', 'scorecard_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_factors', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_bins', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_grades', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_rules', '');

/*
 * Only drafts change.  On credit.scorecards itself an active or retired
 * version may change only its state, draft -> active -> retired (the
 * trigger stamps activated_at and retired_at); activation checks the draft
 * is complete.  credit.activate_scorecard also retires the previous active
 * version; an UPDATE of state alone meets the one-active unique index.
 */
CREATE FUNCTION credit.scorecard_immutable()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids bigint[];
	id bigint;
	st text;
	nm text;
	ver integer;
BEGIN
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecards' THEN
		IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
			IF NEW.state OPERATOR(pg_catalog.<>) 'draft' THEN
				RAISE EXCEPTION 'scorecard "%" version % must be created as a draft', NEW.name, NEW.version
					USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
						  HINT = 'Insert it as a draft, add its factors and grades, then call credit.activate_scorecard.';
			END IF;
			RETURN NEW;
		END IF;
		IF OLD.state OPERATOR(pg_catalog.=) 'draft' AND TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			RETURN OLD;
		END IF;
		IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be deleted',
				OLD.name, OLD.version, OLD.state
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
					  HINT = 'Only drafts are deleted; a used version stays to explain its scores.';
		END IF;
		IF (OLD.state, NEW.state) NOT IN (('draft', 'draft'), ('draft', 'active'),
										 ('active', 'active'), ('active', 'retired'),
										 ('retired', 'retired'))
		   OR (OLD.state OPERATOR(pg_catalog.<>) 'draft'
			   AND (NEW.scorecard_id, NEW.name, NEW.version, NEW.description,
					NEW.window_months, NEW.overdue_months, NEW.hysteresis_points,
					NEW.confirm_days, NEW.limit_min_change, NEW.created_at, NEW.created_by)
				   IS DISTINCT FROM
				   (OLD.scorecard_id, OLD.name, OLD.version, OLD.description,
					OLD.window_months, OLD.overdue_months, OLD.hysteresis_points,
					OLD.confirm_days, OLD.limit_min_change, OLD.created_at, OLD.created_by)) THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be changed',
				OLD.name, OLD.version, OLD.state
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
					  DETAIL = pg_catalog.format('A version moves draft -> active -> retired; only a draft''s settings change (this change: %s -> %s).',
												 OLD.state, NEW.state),
					  HINT = 'Change a used version by copying it with credit.new_scorecard_version.';
		END IF;
		IF OLD.state OPERATOR(pg_catalog.=) 'draft' AND NEW.state OPERATOR(pg_catalog.=) 'active' THEN
			PERFORM credit.scorecard_complete_check(NEW.scorecard_id);
			NEW.activated_at := pg_catalog.now();
		ELSIF OLD.state OPERATOR(pg_catalog.=) 'active' AND NEW.state OPERATOR(pg_catalog.=) 'retired' THEN
			NEW.retired_at := pg_catalog.now();
		ELSE
			NEW.activated_at := OLD.activated_at;
			NEW.retired_at := OLD.retired_at;
		END IF;
		RETURN NEW;
	END IF;

	/* factors, bins, grades, rules: the version(s) touched must be drafts */
	IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
		ids := ARRAY[OLD.scorecard_id];
	END IF;
	IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
		ids := ids OPERATOR(pg_catalog.||) NEW.scorecard_id;
	END IF;
	FOREACH id IN ARRAY ids LOOP
		SELECT s.state, s.name, s.version INTO st, nm, ver FROM credit.scorecards s
		 WHERE s.scorecard_id OPERATOR(pg_catalog.=) id FOR SHARE;
		IF st IS NULL AND TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			CONTINUE;	/* cascading delete of a draft */
		END IF;
		IF st OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be changed', nm, ver, st
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = TG_TABLE_NAME,
					  DETAIL = 'A version used for decisions keeps its factors, bins, grades and rules.',
					  HINT = 'Copy it into a new draft with credit.new_scorecard_version.';
		END IF;
	END LOOP;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_immutable() IS
'Trigger on the scorecard tables: only drafts change; state moves draft -> active -> retired (55000), and activation checks completeness (23514).';

CREATE TRIGGER scorecards_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecards
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_factors_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_factors
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_bins_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_bins
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_grades_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_grades
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_rules_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_rules
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();

/* TRUNCATE would bypass the row triggers */
CREATE FUNCTION credit.scorecard_no_truncate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'table "credit.%" cannot be truncated', TG_TABLE_NAME
		USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = TG_TABLE_NAME,
			  HINT = 'Delete draft versions with DELETE; used versions stay.';
END;
$$;

COMMENT ON FUNCTION credit.scorecard_no_truncate() IS
'Trigger on the scorecard tables: TRUNCATE would bypass version immutability (55000).';

CREATE TRIGGER scorecards_no_truncate BEFORE TRUNCATE ON credit.scorecards
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_factors_no_truncate BEFORE TRUNCATE ON credit.scorecard_factors
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_bins_no_truncate BEFORE TRUNCATE ON credit.scorecard_bins
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_grades_no_truncate BEFORE TRUNCATE ON credit.scorecard_grades
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_rules_no_truncate BEFORE TRUNCATE ON credit.scorecard_rules
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();

/*
 * The bins of one factor, checked as a set: sorted by lower bound, the
 * first starts at -infinity (NULL), each ends where the next starts, the
 * last ends at +infinity (NULL).  A linear factor has no bins.
 */
CREATE FUNCTION credit.scorecard_factor_check(scorecard_id bigint, factor text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f credit.scorecard_factors;
	b record;
	prev_upper numeric;
	n integer := 0;
	open_end boolean := false;
BEGIN
	SELECT * INTO f FROM credit.scorecard_factors x
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.factor OPERATOR(pg_catalog.=) $2;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	FOR b IN SELECT x.lower_bound, x.upper_bound FROM credit.scorecard_bins x
			  WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.factor OPERATOR(pg_catalog.=) $2
			  ORDER BY x.lower_bound NULLS FIRST LOOP
		n := n OPERATOR(pg_catalog.+) 1;
		IF f.method OPERATOR(pg_catalog.=) 'linear' THEN
			RAISE EXCEPTION 'factor "%" of scorecard % is linear and cannot have bins', $2, $1
				USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins';
		END IF;
		IF n OPERATOR(pg_catalog.=) 1 AND b.lower_bound IS NOT NULL THEN
			RAISE EXCEPTION 'bins of factor "%" of scorecard % leave values below % uncovered',
				$2, $1, b.lower_bound
				USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
					  HINT = 'The first bin has no lower bound (NULL).';
		END IF;
		IF n OPERATOR(pg_catalog.>) 1 THEN
			IF open_end OR b.lower_bound OPERATOR(pg_catalog.<) prev_upper THEN
				RAISE EXCEPTION 'bins of factor "%" of scorecard % overlap at %', $2, $1,
					COALESCE(b.lower_bound::text, 'the lowest values')
					USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
						  HINT = 'Each bin starts where the previous one ends (bins are [lower_bound, upper_bound)).';
			ELSIF b.lower_bound OPERATOR(pg_catalog.>) prev_upper THEN
				RAISE EXCEPTION 'bins of factor "%" of scorecard % leave a gap from % to %',
					$2, $1, prev_upper, b.lower_bound
					USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
						  HINT = 'Each bin starts where the previous one ends (bins are [lower_bound, upper_bound)).';
			END IF;
		END IF;
		prev_upper := b.upper_bound;
		open_end := b.upper_bound IS NULL;
	END LOOP;
	IF n OPERATOR(pg_catalog.>) 0 AND NOT open_end THEN
		RAISE EXCEPTION 'bins of factor "%" of scorecard % leave values from % up uncovered',
			$2, $1, prev_upper
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
				  HINT = 'The last bin has no upper bound (NULL).';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_factor_check(bigint, text) IS
'Raises 23514 when the bins of a factor overlap, leave a gap, or belong to a linear factor.';

/* the grades of one scorecard as a set: the lowest starts at 0, at most the top score */
CREATE FUNCTION credit.scorecard_grades_check(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lowest numeric;
	highest numeric;
	top numeric;
BEGIN
	SELECT pg_catalog.min(g.min_score), pg_catalog.max(g.min_score) INTO lowest, highest
	  FROM credit.scorecard_grades g WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF lowest IS NULL THEN
		RETURN;
	END IF;
	IF lowest OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'grades of scorecard % leave scores below % ungraded', $1, lowest
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades',
				  HINT = 'The lowest grade has min_score 0.';
	END IF;
	SELECT pg_catalog.sum(f.weight) INTO top
	  FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF top IS NOT NULL AND highest OPERATOR(pg_catalog.>) top THEN
		RAISE EXCEPTION 'grade starting at % of scorecard % can never be reached', highest, $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades',
				  DETAIL = pg_catalog.format('The factors'' weights add up to %s, the highest possible score.', top);
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_grades_check(bigint) IS
'Raises 23514 when the grades of a scorecard do not start at 0 or one lies above the highest possible score.';

CREATE FUNCTION credit.scorecard_validate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		r := OLD;
	ELSE
		r := NEW;
	END IF;
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecard_bins' THEN
		PERFORM credit.scorecard_factor_check(r.scorecard_id, r.factor);
		IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
			PERFORM credit.scorecard_factor_check(OLD.scorecard_id, OLD.factor);
		END IF;
	ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecard_factors' THEN
		PERFORM credit.scorecard_factor_check(r.scorecard_id, r.factor);
		PERFORM credit.scorecard_grades_check(r.scorecard_id);
	ELSE
		PERFORM credit.scorecard_grades_check(r.scorecard_id);
	END IF;
	/* a factor or grade moved to another version changes the old one too */
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
	   AND TG_TABLE_NAME OPERATOR(pg_catalog.<>) 'scorecard_bins' THEN
		IF OLD.scorecard_id OPERATOR(pg_catalog.<>) NEW.scorecard_id THEN
			PERFORM credit.scorecard_grades_check(OLD.scorecard_id);
		END IF;
	END IF;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_validate() IS
'Constraint trigger on bins, factors and grades: checks the changed factor''s bins and the scorecard''s grades as sets (23514).';

CREATE CONSTRAINT TRIGGER scorecard_bins_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_bins
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();
CREATE CONSTRAINT TRIGGER scorecard_factors_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_factors
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();
CREATE CONSTRAINT TRIGGER scorecard_grades_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_grades
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();

/* a version is complete when it can score anyone */
CREATE FUNCTION credit.scorecard_complete_check(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	missing text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM credit.scorecard_factors f
					WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1) THEN
		RAISE EXCEPTION 'scorecard % has no factors', $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_factors';
	END IF;
	SELECT pg_catalog.string_agg(f.factor, ', ' ORDER BY f.position) INTO missing
	  FROM credit.scorecard_factors f
	 WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1
	   AND f.method OPERATOR(pg_catalog.=) 'bins'
	   AND NOT EXISTS (SELECT 1 FROM credit.scorecard_bins b
						WHERE b.scorecard_id OPERATOR(pg_catalog.=) f.scorecard_id
						  AND b.factor OPERATOR(pg_catalog.=) f.factor);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'factors of scorecard % have no bins: %', $1, missing
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM credit.scorecard_grades g
					WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1) THEN
		RAISE EXCEPTION 'scorecard % has no grades', $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades';
	END IF;
	PERFORM credit.scorecard_factor_check($1, f.factor)
	   FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	PERFORM credit.scorecard_grades_check($1);
END;
$$;

COMMENT ON FUNCTION credit.scorecard_complete_check(bigint) IS
'Raises 23514 unless a scorecard version has factors, every bins factor has bins covering all values, and grades start at 0.';

CREATE FUNCTION credit.activate_scorecard(scorecard_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.scorecards;
	previous bigint;
BEGIN
	/* one activation at a time: the loser sees the winner's result */
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225282);
	SELECT * INTO s FROM credit.scorecards x
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % does not exist', $1 USING ERRCODE = '42704';
	END IF;
	IF s.state OPERATOR(pg_catalog.<>) 'draft' THEN
		RAISE EXCEPTION 'scorecard "%" version % is % already', s.name, s.version, s.state
			USING ERRCODE = '55000',
				  HINT = 'Only a draft can be activated; copy this one with credit.new_scorecard_version.';
	END IF;
	PERFORM credit.scorecard_complete_check($1);
	SELECT x.scorecard_id INTO previous FROM credit.scorecards x
	 WHERE x.state OPERATOR(pg_catalog.=) 'active' FOR UPDATE;
	IF previous IS NOT NULL THEN
		UPDATE credit.scorecards x SET state = 'retired'
		 WHERE x.scorecard_id OPERATOR(pg_catalog.=) previous;
	END IF;
	UPDATE credit.scorecards x SET state = 'active'
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1;
	RETURN previous;
END;
$$;

COMMENT ON FUNCTION credit.activate_scorecard(bigint) IS
'Checks a draft is complete (23514), makes it the active scorecard and retires the previous one (returned, or NULL).';

CREATE FUNCTION credit.retire_scorecard(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225282);
	UPDATE credit.scorecards x SET state = 'retired'
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.state OPERATOR(pg_catalog.=) 'active';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % is not the active scorecard', $1 USING ERRCODE = '55000';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.retire_scorecard(bigint) IS
'Retires the active scorecard (rescoring then needs a newly activated one).';

CREATE FUNCTION credit.new_scorecard_version(from_scorecard bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.scorecards;
	new_id bigint;
BEGIN
	SELECT * INTO s FROM credit.scorecards x WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % does not exist', $1 USING ERRCODE = '42704';
	END IF;
	/*
	 * Each table's rows are copied by one statement, so the set checks (at
	 * the end of each statement) see complete sets: factors before their
	 * bins, all bins of a factor at once, all grades at once.  The caller's
	 * constraint modes are left alone.
	 */
	INSERT INTO credit.scorecards (name, version, description, window_months, overdue_months,
								   hysteresis_points, confirm_days, limit_min_change)
	SELECT s.name, (SELECT pg_catalog.max(x.version) FROM credit.scorecards x
					 WHERE x.name OPERATOR(pg_catalog.=) s.name) OPERATOR(pg_catalog.+) 1,
		   s.description, s.window_months, s.overdue_months, s.hysteresis_points,
		   s.confirm_days, s.limit_min_change
	RETURNING scorecard_id INTO new_id;
	INSERT INTO credit.scorecard_factors
	SELECT new_id, f.factor, f.position, f.metric, f.weight, f.method, f.intercept, f.slope,
		   f.missing_points, f.reason_code, f.reason_text
	  FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_bins
	SELECT new_id, b.factor, b.lower_bound, b.upper_bound, b.points
	  FROM credit.scorecard_bins b WHERE b.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_grades
	SELECT new_id, g.grade, g.min_score, g.limit_base, g.limit_metric, g.limit_multiplier,
		   g.limit_floor, g.limit_cap, g.limit_round, g.term_days, g.auto_apply
	  FROM credit.scorecard_grades g WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_rules
	SELECT new_id, r.rule_no, r.metric, r.operator, r.threshold, r.downgrade_steps, r.description
	  FROM credit.scorecard_rules r WHERE r.scorecard_id OPERATOR(pg_catalog.=) $1;
	RETURN new_id;
END;
$$;

COMMENT ON FUNCTION credit.new_scorecard_version(bigint) IS
'Copies a scorecard version (any state) into a new draft with the next version number; returns its id.';
/*
 * rescore.sql: scoring customers and acting on the results.
 *
 * credit.score_all (C, src/scorecard.c) scores every account, or one, under
 * a scorecard version as of a date, and decides for each the grade to keep
 * (hysteresis) and what to do about its limit.  It reads and writes nothing
 * else.  On top of it:
 *   credit.score           one customer, with each factor explained (jsonb)
 *   credit.rescore         all customers under the active version, written:
 *                          score history, current grades, grade changes,
 *                          limits applied where policy allows, otherwise
 *                          limit requests for approval
 *   credit.compare_scorecards  what-if: a draft against the active version,
 *                          grade by grade, writing nothing
 *
 * Hysteresis (customers already graded under the same scorecard name): a
 * grade change driven by the score needs the score hysteresis_points beyond
 * the current grade's band, and it is applied only when the same new grade
 * has been pending for confirm_days days (as_of - pending_since >=
 * confirm_days, pending_grade and pending_since kept in
 * credit.customer_grades; a run that computes another grade restarts it).
 * Downgrades by adjustment rules act at once.  The first grading, and the
 * first under a scorecard of another name, apply the computed grade.
 *
 * Limit actions: when the final grade's recommended limit differs from the
 * account's credit_limit by at least limit_min_change (or the recommended
 * term differs), the grade's auto_apply says what happens: always (apply),
 * decrease (apply if lower, else request), never (request).  Applying
 * updates credit.accounts (credit_limit, payment_term_days) and records an
 * applied row in credit.limit_requests; requesting keeps one open request
 * per customer, updated as recommendations change, for the approval
 * workflow to decide.  An open request whose recommendation no longer
 * differs is marked superseded.
 *
 * Dates: the grades in force never go back in time.  A rescore as of a
 * date older than the newest scored_on in credit.customer_grades is
 * refused (22023); score past dates with credit.score or score_all, which
 * write nothing.  A same-day rerun replaces that day's results.
 *
 * Concurrency: rescore takes a transaction-level advisory lock, so two runs
 * queue (at REPEATABLE READ the second gets 40001).  It reads the ledger in
 * its snapshot and updates accounts only for applied limits: it locks those
 * rows in ascending key order, as the ledger does, so it cannot deadlock
 * with order entry, and the UPDATE re-tests the grade's policy on the
 * newest row, so a decrease policy never raises a limit a person lowered
 * meanwhile (an order racing a lowered limit is decided by the ledger, see
 * limit_lowered.spec and rescore_races.spec).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.customer_grades (
	customer_key	text COLLATE "C" PRIMARY KEY
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	grade			text NOT NULL,
	score			numeric NOT NULL,
	computed_grade	text NOT NULL,
	grade_since		date NOT NULL,
	pending_grade	text,
	pending_since	date,
	recommended_limit numeric NOT NULL,
	recommended_term integer NOT NULL,
	reasons			text[] NOT NULL,
	scored_on		date NOT NULL,
	scored_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 50);	/* rescore rewrites every row daily: keep it HOT (no index on grade) */

COMMENT ON TABLE credit.customer_grades IS
'Each account''s current grade, score and recommendation, kept by credit.rescore.';
COMMENT ON COLUMN credit.customer_grades.grade IS 'The grade in force (after adjustment rules and hysteresis).';
COMMENT ON COLUMN credit.customer_grades.computed_grade IS 'The grade the last score and rules gave, before hysteresis.';
COMMENT ON COLUMN credit.customer_grades.pending_grade IS 'A grade waiting for confirm_days before it is applied.';

CREATE TABLE credit.score_history (
	/*
	 * no foreign key: a version scored by rescore is active or retired, and
	 * those are never deleted (scorecard_immutable, 55000); the check would
	 * cost a trigger call per row, 0.3 s of every 100,000-customer rescore
	 */
	scorecard_id	bigint NOT NULL,
	as_of			date NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	score			numeric NOT NULL,
	computed_grade	text NOT NULL,
	grade			text NOT NULL,
	recommended_limit numeric NOT NULL,
	recommended_term integer NOT NULL,
	reasons			text[] NOT NULL,
	points			numeric[] NOT NULL,
	metric_values	numeric[] NOT NULL,
	scored_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (scorecard_id, as_of, customer_key)
);
CREATE INDEX score_history_customer_idx ON credit.score_history (customer_key, as_of);

COMMENT ON TABLE credit.score_history IS
'Every score credit.rescore computed: one row per scorecard version, date and customer (a same-day rerun replaces it).';
COMMENT ON COLUMN credit.score_history.points IS 'Each factor''s points (0-100), in factor position order of the scorecard version.';
COMMENT ON COLUMN credit.score_history.metric_values IS 'Each factor''s metric value (NULL: missing), in factor position order.';

CREATE TABLE credit.grade_changes (
	change_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	as_of			date NOT NULL,
	old_grade		text,
	new_grade		text NOT NULL,
	score			numeric NOT NULL,
	why				text NOT NULL,
	reasons			text[] NOT NULL,
	changed_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by		text NOT NULL DEFAULT credit.caller()
);
CREATE INDEX grade_changes_customer_idx ON credit.grade_changes (customer_key, changed_at);

COMMENT ON TABLE credit.grade_changes IS
'Every change of a customer''s grade: old, new, why, when (kept by credit.rescore).';

CREATE TABLE credit.limit_requests (
	request_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	as_of			date NOT NULL,
	grade			text NOT NULL,
	score			numeric NOT NULL,
	current_limit	numeric NOT NULL,
	proposed_limit	numeric NOT NULL,
	current_term	integer NOT NULL,
	proposed_term	integer NOT NULL,
	state			text NOT NULL DEFAULT 'open',
	reasons			text[] NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	decided_at		timestamptz,
	CONSTRAINT limit_requests_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY ('{open,applied,superseded,approved,rejected}'::text[]))
);
CREATE UNIQUE INDEX limit_requests_one_open ON credit.limit_requests (customer_key)
	WHERE state OPERATOR(pg_catalog.=) 'open';

COMMENT ON TABLE credit.limit_requests IS
'Limit and term changes recommended by scoring: applied at once where the grade''s auto_apply allows (state applied), otherwise one open request per customer for approval.';

SELECT pg_catalog.pg_extension_config_dump('credit.customer_grades', '');
SELECT pg_catalog.pg_extension_config_dump('credit.score_history', '');
SELECT pg_catalog.pg_extension_config_dump('credit.grade_changes', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.grade_changes', 'change_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.limit_requests', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.limit_requests', 'request_id')::pg_catalog.regclass, '');

CREATE FUNCTION credit.score_all(scorecard_id bigint DEFAULT NULL,
								 as_of date DEFAULT CURRENT_DATE,
								 customer text DEFAULT NULL,
								 hysteresis boolean DEFAULT true)
RETURNS TABLE (customer_key text, score numeric, band_grade text, grade text,
			   final_grade text, previous_grade text, grade_changed boolean,
			   pending_grade text, pending_since date, why text,
			   recommended_limit numeric, recommended_term integer,
			   current_limit numeric, current_term integer, limit_action text,
			   reasons text[], points numeric[], metric_values numeric[])
AS 'MODULE_PATHNAME', 'credit_score_all'
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.score_all(bigint, date, text, boolean) IS
'Scores every account (or one customer) under a scorecard version (NULL: the active one) as of a date; writes nothing. band_grade: the score''s band; grade: after adjustment rules; final_grade: after hysteresis (when hysteresis is true).';

CREATE FUNCTION credit.score(customer text, scorecard bigint DEFAULT NULL,
							 as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (customer_key text, scorecard_id bigint, score numeric, grade text,
			   band_grade text, recommended_limit numeric, recommended_term integer,
			   reasons text[], factors jsonb)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sc bigint := $2;
BEGIN
	IF sc IS NULL THEN
		SELECT s.scorecard_id INTO sc FROM credit.scorecards s
		 WHERE s.state OPERATOR(pg_catalog.=) 'active';
	END IF;
	IF customer IS NULL OR NOT EXISTS (SELECT 1 FROM credit.accounts a
										WHERE a.customer_key OPERATOR(pg_catalog.=) customer) THEN
		RAISE EXCEPTION 'customer "%" has no credit account', customer
			USING ERRCODE = 'CR003', SCHEMA = 'credit', TABLE = 'accounts';
	END IF;
	RETURN QUERY
	SELECT s.customer_key, sc, s.score, s.grade, s.band_grade,
		   s.recommended_limit, s.recommended_term, s.reasons,
		   (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
					   'factor', f.factor, 'metric', f.metric,
					   'value', s.metric_values[f.ord],
					   'points', s.points[f.ord], 'weight', f.weight,
					   'contribution', pg_catalog.round(f.weight OPERATOR(pg_catalog.*)
							s.points[f.ord] OPERATOR(pg_catalog./) 100, 2),
					   'lost', f.weight OPERATOR(pg_catalog.-) pg_catalog.round(f.weight
							OPERATOR(pg_catalog.*) s.points[f.ord] OPERATOR(pg_catalog./) 100, 2),
					   'reason_code', f.reason_code, 'reason_text', f.reason_text)
				   ORDER BY f.ord)
			  FROM (SELECT x.*, pg_catalog.row_number() OVER (ORDER BY x.position) AS ord
					  FROM credit.scorecard_factors x
					 WHERE x.scorecard_id OPERATOR(pg_catalog.=) sc) f)
	  FROM credit.score_all(sc, as_of, customer, false) s;
END;
$$;

COMMENT ON FUNCTION credit.score(text, bigint, date) IS
'Scores one customer (default: the active scorecard, today): score, grade after rules, recommendation, reason codes (most points lost first) and each factor''s value, points and contribution.';

CREATE FUNCTION credit.rescore(as_of date DEFAULT CURRENT_DATE,
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
		 * the accounts to change, locked in ascending key order as the
		 * ledger locks them, before any is updated: no deadlock with a
		 * transaction that holds one account and then writes a higher one
		 */
		SELECT a.customer_key
		  FROM credit.accounts a
		  JOIN s ON s.customer_key OPERATOR(pg_catalog.=) a.customer_key
		 WHERE s.limit_action OPERATOR(pg_catalog.=) 'apply'
		 ORDER BY a.customer_key
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

COMMENT ON FUNCTION credit.rescore(date, bigint) IS
'Scores every account under the active (or a given non-draft) scorecard as of a date and writes the results: history, grades, grade changes, applied limits and limit requests. Returns the counts.';

CREATE FUNCTION credit.compare_scorecards(draft bigint, base bigint DEFAULT NULL,
										  as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (grade text, base_customers bigint, draft_customers bigint,
			   base_recommended_limit numeric, draft_recommended_limit numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b bigint := base;
BEGIN
	IF b IS NULL THEN
		SELECT s.scorecard_id INTO b FROM credit.scorecards s
		 WHERE s.state OPERATOR(pg_catalog.=) 'active';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'there is no active scorecard to compare with'
				USING ERRCODE = '55000', HINT = 'Name the base version.';
		END IF;
	END IF;
	RETURN QUERY
	WITH bs AS (SELECT x.grade, pg_catalog.count(*) AS n,
					   pg_catalog.sum(x.recommended_limit) AS total
				  FROM credit.score_all(b, as_of, NULL, false) x GROUP BY x.grade),
		 ds AS (SELECT x.grade, pg_catalog.count(*) AS n,
					   pg_catalog.sum(x.recommended_limit) AS total
				  FROM credit.score_all(draft, as_of, NULL, false) x GROUP BY x.grade),
		 rows AS (SELECT COALESCE(bs.grade, ds.grade) AS grade,
						 COALESCE(bs.n, 0) AS bn, COALESCE(ds.n, 0) AS dn,
						 COALESCE(bs.total, 0) AS bt, COALESCE(ds.total, 0) AS dt
					FROM bs FULL JOIN ds ON bs.grade OPERATOR(pg_catalog.=) ds.grade)
	SELECT * FROM (
		SELECT r.grade, r.bn, r.dn, r.bt, r.dt FROM rows r ORDER BY r.grade) g
	UNION ALL
	SELECT 'total', COALESCE(pg_catalog.sum(r.bn), 0)::bigint, COALESCE(pg_catalog.sum(r.dn), 0)::bigint,
		   COALESCE(pg_catalog.sum(r.bt), 0), COALESCE(pg_catalog.sum(r.dt), 0)
	  FROM rows r;
END;
$$;

COMMENT ON FUNCTION credit.compare_scorecards(bigint, bigint, date) IS
'What-if: scores every account under a draft (or any) version and the base (default: active) version, writing nothing; per grade the customers and total recommended limits of each, then a total row.';
/*
 * limit_history.sql: every account's limits, effective-dated.
 *
 * A trigger on credit.accounts closes the current history row and opens a
 * new one whenever credit_limit, the temporary limit or its window, or the
 * payment term changes (by approval write-back, by rescoring, or by plain
 * SQL), so "what was the limit at time T" has an answer:
 * credit.limit_on(customer, T) gives the standing, temporary and effective
 * limit and the term in force at T.  Rows are [valid_from, valid_until)
 * with valid_until NULL for the row in force.  The times are the moments
 * the changes were written (clock_timestamp()), taken under the account
 * row's lock, so they increase along each account's history even when a
 * transaction that started earlier commits later.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.limit_history (
	history_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	valid_from		timestamptz NOT NULL,
	valid_until		timestamptz,
	credit_limit	numeric NOT NULL,
	temp_limit		numeric NOT NULL,
	temp_limit_from	timestamptz,
	temp_limit_until timestamptz,
	payment_term_days integer NOT NULL,
	changed_by		text NOT NULL DEFAULT credit.caller(),
	application_id	bigint,
	CONSTRAINT limit_history_period_check
		CHECK (valid_until OPERATOR(pg_catalog.>=) valid_from)
);
CREATE INDEX limit_history_customer_idx ON credit.limit_history (customer_key, valid_from);
CREATE UNIQUE INDEX limit_history_current_idx ON credit.limit_history (customer_key)
	WHERE valid_until IS NULL;

COMMENT ON TABLE credit.limit_history IS
'Each account''s limits and term over time, [valid_from, valid_until); valid_until NULL for the row in force. Kept by a trigger on credit.accounts.';
COMMENT ON COLUMN credit.limit_history.application_id IS 'The approved application that made the change, if any (set by its write-back).';

SELECT pg_catalog.pg_extension_config_dump('credit.limit_history', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.limit_history', 'history_id')::pg_catalog.regclass, '');

CREATE FUNCTION credit.limit_history_record()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	/* one instant: the row closed ends where the row opened begins */
	at timestamptz := pg_catalog.clock_timestamp();
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		IF (NEW.customer_key, NEW.credit_limit, NEW.temp_limit, NEW.temp_limit_from,
			NEW.temp_limit_until, NEW.payment_term_days)
		   IS NOT DISTINCT FROM
		   (OLD.customer_key, OLD.credit_limit, OLD.temp_limit, OLD.temp_limit_from,
			OLD.temp_limit_until, OLD.payment_term_days) THEN
			RETURN NULL;
		END IF;
		UPDATE credit.limit_history h SET valid_until = at
		 WHERE h.customer_key OPERATOR(pg_catalog.=) OLD.customer_key AND h.valid_until IS NULL;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		UPDATE credit.limit_history h SET valid_until = at
		 WHERE h.customer_key OPERATOR(pg_catalog.=) OLD.customer_key AND h.valid_until IS NULL;
		RETURN NULL;
	END IF;
	INSERT INTO credit.limit_history (customer_key, valid_from, credit_limit, temp_limit,
									  temp_limit_from, temp_limit_until, payment_term_days)
	VALUES (NEW.customer_key, at, NEW.credit_limit, NEW.temp_limit,
			NEW.temp_limit_from, NEW.temp_limit_until, NEW.payment_term_days);
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.limit_history_record() IS
'Trigger on credit.accounts: closes the limit history row in force and opens a new one when a limit, the temporary window or the term changes.';

CREATE TRIGGER accounts_limit_history
	AFTER INSERT OR UPDATE OR DELETE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.limit_history_record();

CREATE FUNCTION credit.limit_on(customer text, at timestamptz)
RETURNS TABLE (credit_limit numeric, temp_limit_in_force numeric, effective_limit numeric,
			   payment_term_days integer, valid_from timestamptz, application_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT h.credit_limit,
		   CASE WHEN h.temp_limit OPERATOR(pg_catalog.>) 0
					 AND (h.temp_limit_from IS NULL OR h.temp_limit_from OPERATOR(pg_catalog.<=) $2)
					 AND $2 OPERATOR(pg_catalog.<) h.temp_limit_until
				THEN h.temp_limit ELSE 0 END,
		   h.credit_limit OPERATOR(pg_catalog.+)
		   CASE WHEN h.temp_limit OPERATOR(pg_catalog.>) 0
					 AND (h.temp_limit_from IS NULL OR h.temp_limit_from OPERATOR(pg_catalog.<=) $2)
					 AND $2 OPERATOR(pg_catalog.<) h.temp_limit_until
				THEN h.temp_limit ELSE 0 END,
		   h.payment_term_days, h.valid_from, h.application_id
	  FROM credit.limit_history h
	 WHERE h.customer_key OPERATOR(pg_catalog.=) $1
	   AND h.valid_from OPERATOR(pg_catalog.<=) $2
	   AND (h.valid_until IS NULL OR $2 OPERATOR(pg_catalog.<) h.valid_until)
	 ORDER BY h.valid_from DESC, h.history_id DESC
	 LIMIT 1;
END;

COMMENT ON FUNCTION credit.limit_on(text, timestamptz) IS
'The limits and term in force for a customer at a time: standing limit, temporary limit in force, effective limit, term, since when, and the approving application. No row before the account existed.';
/*
 * approvals.sql: credit applications and their approval chains.
 *
 * Positions (credit.positions) stand between rules and people: a rule step
 * names a position, credit.position_members maps positions to database
 * roles, so people change without rules changing.  A role acts for a
 * position when it is a member (pg_has_role MEMBER) of one of the
 * position's member roles.
 *
 * Routing (credit.approval_rules, credit.approval_rule_steps): at submit,
 * the rule with the lowest priority (then rule_id) that matches the
 * application's kind, amount (absolute, or the increase over the current
 * value), the customer's grade and status gives the chain of steps; the
 * steps are copied into credit.application_steps, so later rule changes
 * affect new applications only.  Amount ranges are (amount_above,
 * amount_up_to]: "up to 50,000" includes 50,000, "above 50,000" does not.
 * No matching rule is an error (CR007): nothing is approved by default.
 *
 * States: an application is draft -> pending -> approved | rejected, or
 * withdrawn from draft or pending.  Steps are waiting -> pending ->
 * approved | rejected, or skipped when the application ends early; one
 * step is pending at a time, with a deadline.  Acting:
 *   only a member of the step's position or of its escalation target
 *     (42501), never the requester, and never a role that already acted on
 *     the application (four eyes per step);
 *   approve/reject/withdraw lock the application row first, so two people
 *     acting at once queue; the second sees the first's result (55000 if
 *     the step or application is no longer pending);
 *   the final approval writes back in the same transaction: credit_limit,
 *     temporary limit and window, payment term, or the release of a held
 *     order (sql/holds.sql), and marks the adopted limit request.
 * credit.escalate_overdue(as_of) moves every pending step past its
 * deadline up one level: the escalation target becomes the step's position,
 * its superior the new escalation target, and the deadline starts again.
 *
 * Notifications: every event queues one row per recipient position (and the
 * requester) in credit.approval_notices and is announced with NOTIFY on
 * channel credit_approvals; workers drain the queue as they drain the
 * dunning queue.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.positions (
	position		text PRIMARY KEY,
	description		text,
	superior		text REFERENCES credit.positions ON UPDATE CASCADE,
	CONSTRAINT positions_name_check CHECK (position OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
	CONSTRAINT positions_superior_check CHECK (superior OPERATOR(pg_catalog.<>) position)
);

COMMENT ON TABLE credit.positions IS
'Approver positions (finance review, sales director, ...); superior is where an overdue step escalates.';

CREATE TABLE credit.position_members (
	position		text NOT NULL REFERENCES credit.positions ON UPDATE CASCADE ON DELETE CASCADE,
	member			name NOT NULL,
	PRIMARY KEY (position, member)
);

COMMENT ON TABLE credit.position_members IS
'Database roles that act for a position (a login role, or a group role whose members act).';

CREATE FUNCTION credit.position_members_check()
RETURNS trigger
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regrole(pg_catalog.quote_ident(NEW.member)) IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', NEW.member
			USING ERRCODE = '42704', SCHEMA = 'credit', TABLE = 'position_members',
				  COLUMN = 'member';
	END IF;
	RETURN NEW;
END;
$$;

COMMENT ON FUNCTION credit.position_members_check() IS
'Trigger on credit.position_members: the member must be an existing role (42704).';

CREATE TRIGGER position_members_check
	BEFORE INSERT OR UPDATE ON credit.position_members
	FOR EACH ROW EXECUTE FUNCTION credit.position_members_check();

/* does the current role act for the position? */
CREATE FUNCTION credit.acts_for(pos text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT EXISTS (
		SELECT 1 FROM credit.position_members m
		  JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) m.member
		 WHERE m.position OPERATOR(pg_catalog.=) $1
		   AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER'));
END;

COMMENT ON FUNCTION credit.acts_for(text) IS
'True when the current role is a member of a role that acts for the position.';

CREATE TABLE credit.approval_rules (
	rule_id			integer PRIMARY KEY,
	kinds			text[] NOT NULL,
	amount_basis	text NOT NULL DEFAULT 'absolute',
	amount_above	numeric,
	amount_up_to	numeric,
	grades			text[],
	statuses		text[],
	priority		integer NOT NULL DEFAULT 100,
	description		text,
	CONSTRAINT approval_rules_kinds_check
		CHECK (kinds OPERATOR(pg_catalog.<@)
			   '{new_limit,limit_change,temp_limit,term_change,order_release}'::text[]
			   AND pg_catalog.cardinality(kinds) OPERATOR(pg_catalog.>) 0),
	CONSTRAINT approval_rules_basis_check
		CHECK (amount_basis OPERATOR(pg_catalog.=) ANY ('{absolute,increase}'::text[])),
	CONSTRAINT approval_rules_range_check
		CHECK (amount_up_to OPERATOR(pg_catalog.>) amount_above),
	CONSTRAINT approval_rules_statuses_check
		CHECK (statuses OPERATOR(pg_catalog.<@) '{none,ok,watch,hold,stop}'::text[]
			   AND pg_catalog.cardinality(statuses) OPERATOR(pg_catalog.>) 0),
	CONSTRAINT approval_rules_grades_check
		CHECK (pg_catalog.cardinality(grades) OPERATOR(pg_catalog.>) 0)
);

COMMENT ON TABLE credit.approval_rules IS
'Routing rules: the first match (by priority, then rule_id) on kind, amount in (amount_above, amount_up_to], grade and status gives the chain of steps.';
COMMENT ON COLUMN credit.approval_rules.amount_basis IS
'absolute: the requested amount; increase: the requested amount minus the current one (for a held order, the part above available credit).';
COMMENT ON COLUMN credit.approval_rules.amount_above IS 'The rule matches amounts above this (exclusive); NULL: no lower bound.';
COMMENT ON COLUMN credit.approval_rules.amount_up_to IS 'The rule matches amounts up to this (inclusive); NULL: no upper bound.';
COMMENT ON COLUMN credit.approval_rules.grades IS 'Customer grades the rule applies to (NULL: any, including ungraded).';

CREATE TABLE credit.approval_rule_steps (
	rule_id			integer NOT NULL REFERENCES credit.approval_rules ON DELETE CASCADE,
	step_no			integer NOT NULL,
	position		text NOT NULL REFERENCES credit.positions ON UPDATE CASCADE,
	deadline		interval NOT NULL DEFAULT '2 days',
	escalate_to		text REFERENCES credit.positions ON UPDATE CASCADE,
	PRIMARY KEY (rule_id, step_no),
	CONSTRAINT approval_rule_steps_step_check CHECK (step_no OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT approval_rule_steps_deadline_check CHECK (deadline OPERATOR(pg_catalog.>) '0'::interval)
);

COMMENT ON TABLE credit.approval_rule_steps IS
'The ordered steps of a rule: the approving position, the deadline, and the escalation target (NULL: the position''s superior).';

CREATE TABLE credit.applications (
	application_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind			text NOT NULL,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts ON UPDATE CASCADE,
	requested_limit	numeric,
	requested_temp_limit numeric,
	temp_from		timestamptz,
	temp_until		timestamptz,
	requested_term_days integer,
	order_table		regclass,
	order_key		text,
	order_amount	numeric,
	reason			text,
	documents		text[],
	requester		name NOT NULL DEFAULT credit.caller(),
	state			text NOT NULL DEFAULT 'draft',
	route_amount	numeric,
	rule_id			integer,
	current_limit	numeric,
	current_term_days integer,
	limit_request_id bigint REFERENCES credit.limit_requests,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	submitted_at	timestamptz,
	decided_at		timestamptz,
	decision_comment text,
	CONSTRAINT applications_kind_check
		CHECK (kind OPERATOR(pg_catalog.=) ANY
			   ('{new_limit,limit_change,temp_limit,term_change,order_release}'::text[])),
	CONSTRAINT applications_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY
			   ('{draft,pending,approved,rejected,withdrawn}'::text[])),
	CONSTRAINT applications_amounts_check
		CHECK (requested_limit OPERATOR(pg_catalog.>=) 0
			   AND requested_limit OPERATOR(pg_catalog.<) 1e15
			   AND requested_temp_limit OPERATOR(pg_catalog.>) 0
			   AND requested_temp_limit OPERATOR(pg_catalog.<) 1e15
			   AND order_amount OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT applications_term_check
		CHECK (requested_term_days OPERATOR(pg_catalog.>=) 0
			   AND requested_term_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT applications_window_check
		CHECK (temp_until OPERATOR(pg_catalog.>) temp_from),
	CONSTRAINT applications_temp_check
		CHECK (kind OPERATOR(pg_catalog.<>) 'temp_limit'
			   OR (requested_temp_limit IS NOT NULL AND temp_until IS NOT NULL)),
	CONSTRAINT applications_term_needed_check
		CHECK (kind OPERATOR(pg_catalog.<>) 'term_change' OR requested_term_days IS NOT NULL),
	CONSTRAINT applications_order_check
		CHECK ((kind OPERATOR(pg_catalog.=) 'order_release')
			   OPERATOR(pg_catalog.=) (order_table IS NOT NULL AND order_key IS NOT NULL))
);
CREATE INDEX applications_customer_idx ON credit.applications (customer_key, state);
CREATE INDEX applications_pending_idx ON credit.applications (state)
	WHERE state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON TABLE credit.applications IS
'Credit applications: new limit, limit change, temporary limit, payment-term change, release of a held order. Insert a draft, then credit.submit_application.';
COMMENT ON COLUMN credit.applications.documents IS 'References to attached documents (URLs, paths, document-management keys).';
COMMENT ON COLUMN credit.applications.route_amount IS 'The amount the rules were matched on, fixed at submit.';
COMMENT ON COLUMN credit.applications.limit_request_id IS 'The scoring limit request this application decides (credit.limit_requests).';

CREATE TABLE credit.application_steps (
	application_id	bigint NOT NULL REFERENCES credit.applications ON DELETE CASCADE,
	step_no			integer NOT NULL,
	position		text NOT NULL,
	first_position	text NOT NULL,
	escalate_to		text,
	deadline_interval interval NOT NULL,
	state			text NOT NULL DEFAULT 'waiting',
	deadline		timestamptz,
	escalations		integer NOT NULL DEFAULT 0,
	escalated_at	timestamptz,
	acted_by		name,
	acted_at		timestamptz,
	comment			text,
	PRIMARY KEY (application_id, step_no),
	CONSTRAINT application_steps_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY
			   ('{waiting,pending,approved,rejected,skipped}'::text[]))
);
CREATE INDEX application_steps_pending_idx ON credit.application_steps (deadline)
	WHERE state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON TABLE credit.application_steps IS
'The approval chain of each application, copied from the matching rule at submit; one step is pending at a time.';
COMMENT ON COLUMN credit.application_steps.position IS 'The position that acts now (after escalations).';
COMMENT ON COLUMN credit.application_steps.first_position IS 'The position the rule named.';

CREATE TABLE credit.approval_notices (
	notice_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	application_id	bigint NOT NULL REFERENCES credit.applications ON DELETE CASCADE,
	event			text NOT NULL,
	recipient		text NOT NULL,
	cc				boolean NOT NULL DEFAULT false,
	message			text NOT NULL,
	status			text NOT NULL DEFAULT 'queued',
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sent_at			timestamptz,
	CONSTRAINT approval_notices_status_check
		CHECK (status OPERATOR(pg_catalog.=) ANY ('{queued,sent}'::text[]))
);
CREATE INDEX approval_notices_queued_idx ON credit.approval_notices (notice_id)
	WHERE status OPERATOR(pg_catalog.=) 'queued';

COMMENT ON TABLE credit.approval_notices IS
'Notifications of approval events (a task assigned, escalated, decided), one row per recipient: a position, or a requester role (cc). Drain with credit.claim_notices.';

SELECT pg_catalog.pg_extension_config_dump('credit.positions', '');
SELECT pg_catalog.pg_extension_config_dump('credit.position_members', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_rules', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_rule_steps', '');
SELECT pg_catalog.pg_extension_config_dump('credit.applications', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.applications', 'application_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.application_steps', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_notices', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.approval_notices', 'notice_id')::pg_catalog.regclass, '');

/*
 * Once submitted, an application's request is what its approvers see and
 * approve: it no longer changes (the requester withdraws and submits a new
 * one).  The customer key may still follow a rename of the account (ON
 * UPDATE CASCADE), and supporting documents may still be added.
 */
CREATE FUNCTION credit.applications_request_frozen()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.state OPERATOR(pg_catalog.<>) 'draft'
	   AND (NEW.kind, NEW.requested_limit, NEW.requested_temp_limit, NEW.temp_from, NEW.temp_until,
			NEW.requested_term_days, NEW.order_table, NEW.order_key, NEW.order_amount, NEW.reason,
			NEW.requester)
		   IS DISTINCT FROM
		   (OLD.kind, OLD.requested_limit, OLD.requested_temp_limit, OLD.temp_from, OLD.temp_until,
			OLD.requested_term_days, OLD.order_table, OLD.order_key, OLD.order_amount, OLD.reason,
			OLD.requester) THEN
		RAISE EXCEPTION 'application % is %: its request can no longer change', OLD.application_id,
			OLD.state
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'applications',
				  HINT = 'Withdraw it and submit a new application.';
	END IF;
	RETURN NEW;
END;
$$;

COMMENT ON FUNCTION credit.applications_request_frozen() IS
'Trigger on credit.applications: refuses (55000) a change of the request (kind, amounts, window, term, order, reason, requester) once the application is no longer a draft.';

CREATE TRIGGER applications_request_frozen
	BEFORE UPDATE ON credit.applications
	FOR EACH ROW EXECUTE FUNCTION credit.applications_request_frozen();

/* queue a notice to each recipient and announce it */
CREATE FUNCTION credit.approval_notify(application_id bigint, event text, recipients text[],
									   cc text[], message text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO credit.approval_notices (application_id, event, recipient, cc, message)
	SELECT $1, $2, r.recipient, r.cc, $5
	  FROM (SELECT x AS recipient, false AS cc FROM pg_catalog.unnest($3) x
			UNION
			SELECT y, true FROM pg_catalog.unnest($4) y) r
	 WHERE r.recipient IS NOT NULL;
	PERFORM pg_catalog.pg_notify('credit_approvals',
		pg_catalog.json_build_object('application_id', $1, 'event', $2,
									 'recipients', $3, 'cc', $4, 'message', $5)::text);
END;
$$;

COMMENT ON FUNCTION credit.approval_notify(bigint, text, text[], text[], text) IS
'Queues an approval notice per recipient in credit.approval_notices and announces it on channel credit_approvals.';

CREATE FUNCTION credit.claim_notices(batch integer DEFAULT 100)
RETURNS SETOF credit.approval_notices
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	UPDATE credit.approval_notices n SET status = 'sent', sent_at = pg_catalog.now()
	 WHERE n.notice_id OPERATOR(pg_catalog.=) ANY (
		   ARRAY(SELECT q.notice_id FROM credit.approval_notices q
				  WHERE q.status OPERATOR(pg_catalog.=) 'queued'
				  ORDER BY q.notice_id LIMIT $1 FOR UPDATE SKIP LOCKED))
	RETURNING n.*;
END;

COMMENT ON FUNCTION credit.claim_notices(integer) IS
'Takes up to batch queued notices (skipping rows other workers hold), marks them sent and returns them; a worker that fails to deliver rolls back.';

/* the application row, locked; 42704 if unknown */
CREATE FUNCTION credit.application_lock(application_id bigint)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	SELECT * INTO a FROM credit.applications x
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'application % does not exist', $1
			USING ERRCODE = '42704', SCHEMA = 'credit', TABLE = 'applications';
	END IF;
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_lock(bigint) IS
'Locks and returns an application row (42704 when it does not exist).';

CREATE FUNCTION credit.route_amount(a credit.applications, basis text, acct credit.accounts)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE a.kind
	WHEN 'new_limit' THEN a.requested_limit
	WHEN 'limit_change' THEN
		CASE basis WHEN 'increase'
			 THEN a.requested_limit OPERATOR(pg_catalog.-) acct.credit_limit
			 ELSE a.requested_limit END
	WHEN 'temp_limit' THEN a.requested_temp_limit
	WHEN 'term_change' THEN acct.credit_limit
	WHEN 'order_release' THEN
		CASE basis WHEN 'increase'
			 THEN GREATEST(a.order_amount OPERATOR(pg_catalog.-) credit.available_credit(acct), 0)
			 ELSE a.order_amount END
	END;

COMMENT ON FUNCTION credit.route_amount(credit.applications, text, credit.accounts) IS
'The amount an application is routed on: the requested limit (or its increase), the temporary amount, the standing limit for a term change, the held order''s amount (or its part above available credit).';

/*
 * Submit a locked draft: only its requester (or a member of the
 * requester's role; the order trigger opens release applications as the
 * extension's owner) may; route it and start its first step.
 */
CREATE FUNCTION credit.application_start(app credit.applications)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications := app;
	acct credit.accounts;
	grade text;
	matched credit.approval_rules;
	amt numeric;
	first_step credit.application_steps;
BEGIN
	/* the caller locked the row (credit.application_lock) */
	IF a.state OPERATOR(pg_catalog.<>) 'draft' THEN
		RAISE EXCEPTION 'application % is % and cannot be submitted', a.application_id, a.state
			USING ERRCODE = '55000', HINT = 'Only a draft is submitted.';
	END IF;
	IF a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT pg_catalog.pg_has_role(credit.caller(), a.requester, 'MEMBER') THEN
		RAISE EXCEPTION 'application % belongs to "%"', a.application_id, a.requester
			USING ERRCODE = '42501', HINT = 'Only the requester submits an application.';
	END IF;
	IF a.kind OPERATOR(pg_catalog.=) ANY ('{new_limit,limit_change}'::text[])
	   AND a.requested_limit IS NULL THEN
		RAISE EXCEPTION 'application % requests no limit', a.application_id
			USING ERRCODE = '23502', SCHEMA = 'credit', TABLE = 'applications',
				  COLUMN = 'requested_limit';
	END IF;
	IF a.kind OPERATOR(pg_catalog.=) 'temp_limit'
	   AND a.temp_until OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION 'the temporary limit window of application % ends in the past (%)',
			a.application_id, a.temp_until
			USING ERRCODE = '22023', SCHEMA = 'credit', TABLE = 'applications',
				  COLUMN = 'temp_until';
	END IF;

	SELECT * INTO acct FROM credit.accounts x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
	SELECT g.grade INTO grade FROM credit.customer_grades g
	 WHERE g.customer_key OPERATOR(pg_catalog.=) a.customer_key;

	SELECT r.* INTO matched FROM credit.approval_rules r
	 WHERE a.kind OPERATOR(pg_catalog.=) ANY (r.kinds)
	   AND (r.grades IS NULL OR grade OPERATOR(pg_catalog.=) ANY (r.grades))
	   AND (r.statuses IS NULL OR acct.status OPERATOR(pg_catalog.=) ANY (r.statuses))
	   AND (r.amount_above IS NULL
			OR credit.route_amount(a, r.amount_basis, acct) OPERATOR(pg_catalog.>) r.amount_above)
	   AND (r.amount_up_to IS NULL
			OR credit.route_amount(a, r.amount_basis, acct) OPERATOR(pg_catalog.<=) r.amount_up_to)
	   AND EXISTS (SELECT 1 FROM credit.approval_rule_steps s
					WHERE s.rule_id OPERATOR(pg_catalog.=) r.rule_id)
	 ORDER BY r.priority, r.rule_id
	 LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no approval rule matches application %', a.application_id
			USING ERRCODE = 'CR007',
				  DETAIL = pg_catalog.format('Kind %s, customer "%s" (grade %s, status %s).',
											 a.kind, a.customer_key, COALESCE(grade, 'none'),
											 acct.status),
				  HINT = 'Add a rule to credit.approval_rules with its steps in credit.approval_rule_steps.';
	END IF;
	amt := credit.route_amount(a, matched.amount_basis, acct);

	INSERT INTO credit.application_steps (application_id, step_no, position, first_position,
										  escalate_to, deadline_interval, state, deadline)
	SELECT a.application_id, pg_catalog.row_number() OVER (ORDER BY s.step_no), s.position,
		   s.position, COALESCE(s.escalate_to, p.superior), s.deadline, 'waiting', NULL
	  FROM credit.approval_rule_steps s
	  JOIN credit.positions p ON p.position OPERATOR(pg_catalog.=) s.position
	 WHERE s.rule_id OPERATOR(pg_catalog.=) matched.rule_id;
	UPDATE credit.application_steps s
	   SET state = 'pending', deadline = pg_catalog.now() OPERATOR(pg_catalog.+) s.deadline_interval
	 WHERE s.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND s.step_no OPERATOR(pg_catalog.=) 1
	RETURNING * INTO first_step;

	UPDATE credit.applications x
	   SET state = 'pending', submitted_at = pg_catalog.now(), route_amount = amt,
		   rule_id = matched.rule_id, current_limit = acct.credit_limit,
		   current_term_days = acct.payment_term_days
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	RETURNING * INTO a;

	PERFORM credit.approval_notify(a.application_id, 'assigned', ARRAY[first_step.position],
								   ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" awaits %s by %s',
													 a.kind, a.application_id, a.customer_key,
													 first_step.position, first_step.deadline));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_start(credit.applications) IS
'Submits a locked draft (credit.submit_application locks it): routes it by the first matching rule (CR007 if none), copies its chain of steps, starts the first step''s deadline and notifies its position.';

CREATE FUNCTION credit.submit_application(application_id bigint)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	RETURN credit.application_start(credit.application_lock($1));
END;
$$;

COMMENT ON FUNCTION credit.submit_application(bigint) IS
'Submits a draft (its requester only, 42501): routes it by the first matching rule (CR007 if none), copies the chain of steps, starts the first step''s deadline and notifies its position.';


/* the pending step, locked with the application; checks the acting role */
CREATE FUNCTION credit.application_step_act(a credit.applications, step_no integer,
											action text, comment text)
RETURNS credit.application_steps
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.application_steps;
	earlier name;
BEGIN
	IF a.state OPERATOR(pg_catalog.<>) 'pending' THEN
		RAISE EXCEPTION 'application % is %, not pending', a.application_id, a.state
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('It was decided at %s.', a.decided_at);
	END IF;
	SELECT * INTO s FROM credit.application_steps x
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.state OPERATOR(pg_catalog.=) 'pending' FOR UPDATE;
	IF $2 IS NOT NULL AND s.step_no OPERATOR(pg_catalog.<>) $2 THEN
		SELECT x.acted_by INTO earlier FROM credit.application_steps x
		 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) $2;
		RAISE EXCEPTION 'step % of application % is not pending', $2, a.application_id
			USING ERRCODE = '55000',
				  DETAIL = CASE WHEN earlier IS NOT NULL
						   THEN pg_catalog.format('"%s" already acted on it; step %s is pending.', earlier, s.step_no)
						   ELSE pg_catalog.format('Step %s is pending.', s.step_no) END;
	END IF;
	IF a.requester OPERATOR(pg_catalog.=) credit.caller()
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				   WHERE r.rolname OPERATOR(pg_catalog.=) a.requester
					 AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER')) THEN
		RAISE EXCEPTION 'role "%" cannot % its own application %', credit.caller(), action,
			a.application_id
			USING ERRCODE = '42501', HINT = 'Segregation of duties: another approver must act.';
	END IF;
	IF NOT (credit.acts_for(s.position)
			OR (s.escalate_to IS NOT NULL AND credit.acts_for(s.escalate_to))) THEN
		RAISE EXCEPTION 'role "%" may not % step % of application %', credit.caller(), action,
			s.step_no, a.application_id
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('The step is assigned to position %s (escalation target %s).',
											 s.position, COALESCE(s.escalate_to, 'none'));
	END IF;
	SELECT x.step_no INTO earlier FROM credit.application_steps x
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.acted_by OPERATOR(pg_catalog.=) credit.caller();
	IF FOUND THEN
		RAISE EXCEPTION 'role "%" already acted on application % (step %)', credit.caller(),
			a.application_id, earlier
			USING ERRCODE = '42501', HINT = 'Each step of an application needs a different person.';
	END IF;
	UPDATE credit.application_steps x
	   SET state = CASE action WHEN 'approve' THEN 'approved' ELSE 'rejected' END,
		   acted_by = credit.caller(), acted_at = pg_catalog.now(), comment = $4
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.step_no OPERATOR(pg_catalog.=) s.step_no
	RETURNING * INTO s;
	RETURN s;
END;
$$;

COMMENT ON FUNCTION credit.application_step_act(credit.applications, integer, text, text) IS
'Records the current role''s approval or rejection of the pending step of a locked application, after checking it may act (42501) and that it is the expected step (55000); returns the step.';

/* end the application: remaining steps skipped */
CREATE FUNCTION credit.application_close(application_id bigint, new_state text, comment text)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	UPDATE credit.application_steps s SET state = 'skipped'
	 WHERE s.application_id OPERATOR(pg_catalog.=) $1
	   AND s.state OPERATOR(pg_catalog.=) ANY ('{waiting,pending}'::text[]);
	UPDATE credit.applications x
	   SET state = $2, decided_at = pg_catalog.now(), decision_comment = $3
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1
	RETURNING * INTO a;
	/* a withdrawn application leaves its limit request open for another */
	IF a.limit_request_id IS NOT NULL AND $2 OPERATOR(pg_catalog.<>) 'withdrawn' THEN
		UPDATE credit.limit_requests r
		   SET state = CASE $2 WHEN 'approved' THEN 'approved' ELSE 'rejected' END,
			   decided_at = pg_catalog.now(), updated_at = pg_catalog.now()
		 WHERE r.request_id OPERATOR(pg_catalog.=) a.limit_request_id
		   AND r.state OPERATOR(pg_catalog.=) 'open';
	END IF;
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_close(bigint, text, text) IS
'Ends an application (approved, rejected, withdrawn): skips the remaining steps and settles the adopted limit request (approved or rejected; a withdrawn application leaves it open).';

/* write an approved application back to the account, in this transaction */
CREATE FUNCTION credit.application_write_back(a credit.applications)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	CASE a.kind
		WHEN 'new_limit', 'limit_change' THEN
			UPDATE credit.accounts x SET credit_limit = a.requested_limit
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'temp_limit' THEN
			IF a.temp_until OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
				RAISE EXCEPTION 'the temporary limit window of application % has ended (%)',
					a.application_id, a.temp_until
					USING ERRCODE = '22023',
						  HINT = 'Reject it, and apply again with a window in the future.';
			END IF;
			UPDATE credit.accounts x
			   SET temp_limit = a.requested_temp_limit, temp_limit_from = a.temp_from,
				   temp_limit_until = a.temp_until
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'term_change' THEN
			UPDATE credit.accounts x SET payment_term_days = a.requested_term_days
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'order_release' THEN
			PERFORM credit.release_held_order(a.application_id);
	END CASE;
	IF a.kind OPERATOR(pg_catalog.<>) 'order_release' THEN
		/* the row the write-back just opened, if it changed anything */
		UPDATE credit.limit_history h SET application_id = a.application_id
		 WHERE h.customer_key OPERATOR(pg_catalog.=) a.customer_key
		   AND h.valid_until IS NULL
		   AND h.valid_from OPERATOR(pg_catalog.>=) pg_catalog.now();
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.application_write_back(credit.applications) IS
'Applies an approved application: limit, temporary limit and window, term, or the release of the held order.';

CREATE FUNCTION credit.approve(application_id bigint, comment text DEFAULT NULL,
							   step_no integer DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
	s credit.application_steps;
	next_step credit.application_steps;
BEGIN
	a := credit.application_lock($1);
	s := credit.application_step_act(a, $3, 'approve', $2);
	UPDATE credit.application_steps x
	   SET state = 'pending', deadline = pg_catalog.now() OPERATOR(pg_catalog.+) x.deadline_interval
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1
	   AND x.step_no OPERATOR(pg_catalog.=) (s.step_no OPERATOR(pg_catalog.+) 1)
	RETURNING * INTO next_step;
	IF FOUND THEN
		PERFORM credit.approval_notify($1, 'assigned', ARRAY[next_step.position],
									   ARRAY[a.requester::text],
									   pg_catalog.format('%s application %s for customer "%s": step %s approved by %s; awaits %s by %s',
														 a.kind, $1, a.customer_key, s.step_no, credit.caller(),
														 next_step.position, next_step.deadline));
		SELECT * INTO a FROM credit.applications x WHERE x.application_id OPERATOR(pg_catalog.=) $1;
		RETURN a;
	END IF;
	/*
	 * An adopted limit request is on its customer's request chain, which
	 * rescore appends to while it holds the account row: lock the account
	 * first, as rescore does.  (Not for an order release: its write-back
	 * locks the order row before the account, as the application's own
	 * order updates do.)
	 */
	IF a.limit_request_id IS NOT NULL THEN
		PERFORM 1 FROM credit.accounts x
		 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key FOR NO KEY UPDATE;
	END IF;
	a := credit.application_close($1, 'approved', $2);
	PERFORM credit.application_write_back(a);
	PERFORM credit.approval_notify($1, 'approved', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" approved by %s',
													 a.kind, $1, a.customer_key, credit.caller()));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.approve(bigint, text, integer) IS
'Approves the pending step (optionally naming it: 55000 if another is pending); the last approval writes the application back to the account in this transaction. 42501 unless the current role acts for the step''s position or escalation target, is not the requester and has not acted on the application before.';

CREATE FUNCTION credit.reject(application_id bigint, comment text DEFAULT NULL,
							  step_no integer DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
	s credit.application_steps;
BEGIN
	a := credit.application_lock($1);
	s := credit.application_step_act(a, $3, 'reject', $2);
	a := credit.application_close($1, 'rejected', $2);
	IF a.kind OPERATOR(pg_catalog.=) 'order_release' THEN
		PERFORM credit.reject_held_order($1);
	END IF;
	PERFORM credit.approval_notify($1, 'rejected', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" rejected by %s: %s',
													 a.kind, $1, a.customer_key, credit.caller(),
													 COALESCE($2, 'no comment')));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.reject(bigint, text, integer) IS
'Rejects the pending step and with it the application (a held order gets its table''s rejected status). Same rights as credit.approve.';

CREATE FUNCTION credit.withdraw(application_id bigint, comment text DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	a := credit.application_lock($1);
	IF a.state OPERATOR(pg_catalog.<>) ALL ('{draft,pending}'::text[]) THEN
		RAISE EXCEPTION 'application % is % and cannot be withdrawn', $1, a.state
			USING ERRCODE = '55000';
	END IF;
	IF a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT pg_catalog.pg_has_role(credit.caller(), a.requester, 'MEMBER') THEN
		RAISE EXCEPTION 'only "%" may withdraw application %', a.requester, $1
			USING ERRCODE = '42501';
	END IF;
	a := credit.application_close($1, 'withdrawn', $2);
	IF a.kind OPERATOR(pg_catalog.=) 'order_release' THEN
		PERFORM credit.reject_held_order($1);
	END IF;
	PERFORM credit.approval_notify($1, 'withdrawn', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" withdrawn',
													 a.kind, $1, a.customer_key));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.withdraw(bigint, text) IS
'Withdraws a draft or pending application (its requester only, 42501); a held order''s release request withdrawn leaves the order rejected.';

CREATE FUNCTION credit.my_tasks()
RETURNS TABLE (application_id bigint, kind text, customer_key text, step_no integer,
			   approver_position text, deadline timestamptz, overdue boolean, requester name,
			   route_amount numeric, reason text)
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT a.application_id, a.kind, a.customer_key, s.step_no, s.position, s.deadline,
		   s.deadline OPERATOR(pg_catalog.<) pg_catalog.now(), a.requester, a.route_amount,
		   a.reason
	  FROM credit.application_steps s
	  JOIN credit.applications a ON a.application_id OPERATOR(pg_catalog.=) s.application_id
	 WHERE s.state OPERATOR(pg_catalog.=) 'pending'
	   AND a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
						WHERE r.rolname OPERATOR(pg_catalog.=) a.requester
						  AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER'))
	   AND (credit.acts_for(s.position)
			OR (s.escalate_to IS NOT NULL AND credit.acts_for(s.escalate_to)))
	   AND NOT EXISTS (SELECT 1 FROM credit.application_steps e
						WHERE e.application_id OPERATOR(pg_catalog.=) s.application_id
						  AND e.acted_by OPERATOR(pg_catalog.=) credit.caller())
	 ORDER BY s.deadline, a.application_id;
END;

COMMENT ON FUNCTION credit.my_tasks() IS
'The pending steps the current role may act on, earliest deadline first.';

CREATE FUNCTION credit.escalate_overdue(as_of timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (application_id bigint, step_no integer, from_position text,
			   to_position text, new_deadline timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
	cur credit.application_steps;
	a credit.applications;
	nxt text;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'escalation needs a finite time' USING ERRCODE = '22023';
	END IF;
	FOR s IN SELECT x.application_id, x.step_no, x.position, x.escalate_to, x.deadline_interval
			   FROM credit.application_steps x
			  WHERE x.state OPERATOR(pg_catalog.=) 'pending'
				AND x.deadline OPERATOR(pg_catalog.<) as_of
			  ORDER BY x.application_id LOOP
		a := credit.application_lock(s.application_id);
		/*
		 * Re-read the step under the lock: it may have been acted on, or
		 * escalated by another run, since the loop's snapshot; escalate it
		 * from where it is now (or not at all).
		 */
		SELECT * INTO cur FROM credit.application_steps x
		 WHERE x.application_id OPERATOR(pg_catalog.=) s.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) s.step_no
		   AND x.state OPERATOR(pg_catalog.=) 'pending'
		   AND x.deadline OPERATOR(pg_catalog.<) as_of;
		CONTINUE WHEN NOT FOUND OR cur.escalate_to IS NULL;
		SELECT p.superior INTO nxt FROM credit.positions p
		 WHERE p.position OPERATOR(pg_catalog.=) cur.escalate_to;
		UPDATE credit.application_steps x
		   SET position = cur.escalate_to, escalate_to = nxt,
			   deadline = as_of OPERATOR(pg_catalog.+) x.deadline_interval,
			   escalations = x.escalations OPERATOR(pg_catalog.+) 1, escalated_at = as_of
		 WHERE x.application_id OPERATOR(pg_catalog.=) s.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) s.step_no;
		PERFORM credit.approval_notify(s.application_id, 'escalated',
									   ARRAY[cur.escalate_to], ARRAY[cur.position, a.requester::text],
									   pg_catalog.format('%s application %s for customer "%s": step %s overdue at %s, escalated from %s to %s',
														 a.kind, a.application_id, a.customer_key, s.step_no,
														 as_of, cur.position, cur.escalate_to));
		application_id := s.application_id;
		step_no := s.step_no;
		from_position := cur.position;
		to_position := cur.escalate_to;
		new_deadline := as_of OPERATOR(pg_catalog.+) cur.deadline_interval;
		RETURN NEXT;
	END LOOP;
END;
$$;

COMMENT ON FUNCTION credit.escalate_overdue(timestamptz) IS
'For the scheduler: every pending step past its deadline at as_of moves to its escalation target (whose superior becomes the next target), with a new deadline, and is announced. A step without a target stays where it is, overdue.';

/*
 * A new account opened without a limit (a CRM creating the customer when a
 * deal is won) gets a draft new-limit application when
 * credit.settings.auto_new_limit_application is on: the requester is the
 * role that opened the account; the requested limit is left NULL for the
 * requester to fill in before submitting.
 */
CREATE FUNCTION credit.open_new_limit_application()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.credit_limit OPERATOR(pg_catalog.=) 0
	   AND (SELECT s.auto_new_limit_application FROM credit.settings s) THEN
		INSERT INTO credit.applications (kind, customer_key, reason)
		VALUES ('new_limit', NEW.customer_key, 'opened automatically: new account without a limit');
	END IF;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.open_new_limit_application() IS
'Trigger on credit.accounts: opens a draft new-limit application for a new account without a limit, when credit.settings.auto_new_limit_application is on.';

CREATE TRIGGER accounts_new_limit_application
	AFTER INSERT ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.open_new_limit_application();
/*
 * holds.sql: orders held over their limit, their release, and over-limit
 * warnings.
 *
 * An order table attached with over_limit => 'hold' never rejects an order
 * for credit: when the ledger refuses an increase (CR001 over the limit,
 * CR002 account stopped), the trigger (src/enforce.c) calls
 * credit.hold_order, which writes the table's held status to the order
 * row, records it in credit.held_orders (its amount counts as blocked, not
 * as exposure) and opens an order_release application routed by the
 * approval rules.  Approving the application (credit.approve) calls
 * credit.release_held_order: the order row gets the release status (an open
 * status) through credit.held_order_update (C, as the extension's owner,
 * only for an approved application), and its amount is added to
 * exposure unchecked, even past the limit: an approved overrun, recorded
 * with the part above the limit.  Rejecting or withdrawing it writes the
 * rejected status.  With over_limit => 'warn' the order passes and
 * credit.overlimit_warnings records it.  Every such event is announced on
 * channel credit_events.
 *
 * Concurrency: the hold decision is the ledger's, made under the account
 * row's lock like any other; the release takes the same lock and adds the
 * amount, so an order racing a release is decided on the figure after it.
 * A held order's row is changed only by these functions (the held status
 * is not open, so nothing counts while it is held).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.held_orders (
	hold_id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	orders			regclass NOT NULL,
	order_key		text NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	amount			numeric NOT NULL,
	refusal_code	text NOT NULL,
	refusal_message	text NOT NULL,
	application_id	bigint REFERENCES credit.applications,
	state			text NOT NULL DEFAULT 'held',
	held_at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by		text NOT NULL,
	decided_at		timestamptz,
	overrun			numeric,
	CONSTRAINT held_orders_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY ('{held,released,rejected,cancelled}'::text[]))
);
CREATE UNIQUE INDEX held_orders_one_hold ON credit.held_orders (orders, order_key)
	WHERE state OPERATOR(pg_catalog.=) 'held';
CREATE INDEX held_orders_customer_idx ON credit.held_orders (customer_key, state);

COMMENT ON TABLE credit.held_orders IS
'Orders held over the credit limit (attach_orders over_limit => hold): blocked amounts, their release applications, and how each ended (released with its overrun, rejected, or cancelled: the application moved the order out of its held status or deleted it).';
COMMENT ON COLUMN credit.held_orders.amount IS 'The order''s amount when it was held: blocked, not counted as exposure.';
COMMENT ON COLUMN credit.held_orders.overrun IS 'On release: the part of the order above the effective limit, approved as an overrun.';
COMMENT ON COLUMN credit.held_orders.changed_by IS 'The role whose statement caused the hold or the decision.';

CREATE TABLE credit.overlimit_warnings (
	warning_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	orders			regclass NOT NULL,
	order_key		text NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	amount			numeric NOT NULL,
	refusal_code	text NOT NULL,
	refusal_message	text NOT NULL,
	exposure_after	numeric NOT NULL,
	effective_limit	numeric NOT NULL,
	warned_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by		text NOT NULL
);
CREATE INDEX overlimit_warnings_customer_idx ON credit.overlimit_warnings (customer_key, warned_at);

COMMENT ON TABLE credit.overlimit_warnings IS
'Orders let through over the limit (attach_orders over_limit => warn), with the exposure they left.';

SELECT pg_catalog.pg_extension_config_dump('credit.held_orders', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.held_orders', 'hold_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.overlimit_warnings', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.overlimit_warnings', 'warning_id')::pg_catalog.regclass, '');

CREATE VIEW credit.blocked_orders WITH (security_invoker = true) AS
SELECT h.customer_key, pg_catalog.count(*) AS held_orders, pg_catalog.sum(h.amount) AS blocked_amount
  FROM credit.held_orders h
 WHERE h.state OPERATOR(pg_catalog.=) 'held'
 GROUP BY h.customer_key;

COMMENT ON VIEW credit.blocked_orders IS
'Per customer, the orders held over the limit and their blocked amount.';

/*
 * an UPDATE of one order row's status, from the attachment: key and status
 * compared as text; with amount and customer given (a release), only while
 * the row still has the amount and customer it was held with
 */
CREATE FUNCTION credit.order_status_update(att credit.attachments, order_key text,
										   from_status text, to_status text,
										   amount numeric DEFAULT NULL,
										   customer text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'UPDATE %s o SET %I = %L WHERE (o.%I)::pg_catalog.text OPERATOR(pg_catalog.=) %L '
	'AND (o.%I)::pg_catalog.text OPERATOR(pg_catalog.=) %L',
	($1).orders, ($1).status_column, $4, ($1).key_column, $2, ($1).status_column, $3)
	OPERATOR(pg_catalog.||)
	CASE WHEN $5 IS NULL THEN '' ELSE pg_catalog.format(
		' AND COALESCE((o.%I)::pg_catalog.numeric, 0) OPERATOR(pg_catalog.=) %L::pg_catalog.numeric'
		' AND (o.%I)::pg_catalog.text OPERATOR(pg_catalog.=) %L',
		($1).amount_column, $5, ($1).customer_column, $6) END;

/*
 * Called by the order trigger (as the owner of schema credit) when an
 * increase is refused on a hold table.  Returns the application id.
 */
CREATE FUNCTION credit.hold_order(orders regclass, order_key text, customer text, amount numeric,
								  refusal_code text, refusal_message text, actor text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att credit.attachments;
	changed bigint;
	app credit.applications;
	open_status text;
BEGIN
	SELECT * INTO att FROM credit.attachments a WHERE a.orders OPERATOR(pg_catalog.=) $1;
	open_status := att.release_status;
	/* the row as the trigger saw it: whatever open status it was written with */
	EXECUTE pg_catalog.format(
		'UPDATE %s o SET %I = %L WHERE (o.%I)::pg_catalog.text OPERATOR(pg_catalog.=) %L',
		att.orders, att.status_column, att.held_status, att.key_column, $2);
	GET DIAGNOSTICS changed = ROW_COUNT;
	IF changed OPERATOR(pg_catalog.<>) 1 THEN
		RAISE EXCEPTION 'order "%" of "%" could not be held: % rows have that key', $2, $1, changed
			USING ERRCODE = '55000';
	END IF;
	INSERT INTO credit.applications (kind, customer_key, order_table, order_key, order_amount,
									 reason, requester)
	VALUES ('order_release', $3, $1, $2, $4,
			pg_catalog.format('order held over the credit limit (%s: %s)', $5, $6), $7)
	RETURNING * INTO app;
	INSERT INTO credit.held_orders (orders, order_key, customer_key, amount, refusal_code,
									refusal_message, application_id, changed_by)
	VALUES ($1, $2, $3, $4, $5, $6, app.application_id, $7);
	BEGIN
		PERFORM credit.application_start(app);
	EXCEPTION WHEN SQLSTATE 'CR007' THEN
		/* no rule routes it: it stays a draft for a person to route */
		PERFORM credit.approval_notify(app.application_id, 'unrouted', ARRAY[]::text[],
									   ARRAY[$7],
									   pg_catalog.format('order "%s" of customer "%s" is held; no approval rule matches its release',
														 $2, $3));
	END;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_held', 'customer_key', $3, 'orders', $1::text, 'order_key', $2,
		'amount', $4, 'application_id', app.application_id, 'reason', $5)::text);
	RETURN app.application_id;
END;
$$;

COMMENT ON FUNCTION credit.hold_order(regclass, text, text, numeric, text, text, text) IS
'Internal, called by the order trigger: writes the held status, records the hold and opens the order-release application.';

REVOKE EXECUTE ON FUNCTION credit.hold_order(regclass, text, text, numeric, text, text, text) FROM PUBLIC;

CREATE FUNCTION credit.held_order_update(application_id bigint, decision text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'credit_held_order_update'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.held_order_update(bigint, text) IS
'Writes the release (approved application) or rejected (rejected or withdrawn application) status to the held order, as the extension''s owner; a release counts the order unchecked. Returns the order rows changed.';

/* the write-back of an approved order release */
CREATE FUNCTION credit.release_held_order(application_id bigint)
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
	over := LEAST(h.amount, GREATEST(acct.exposure OPERATOR(pg_catalog.-) credit.effective_limit(acct), 0));
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

COMMENT ON FUNCTION credit.release_held_order(bigint) IS
'Write-back of an approved order release: the order gets its release status and counts as exposure even past the limit; returns the approved overrun (55000 if the order is no longer held).';

CREATE FUNCTION credit.reject_held_order(application_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h credit.held_orders;
BEGIN
	SELECT * INTO h FROM credit.held_orders x
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1 AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM credit.held_order_update($1, 'reject');
	/* the account row before its audit chain head, as on every path */
	PERFORM 1 FROM credit.accounts x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) h.customer_key FOR NO KEY UPDATE;
	/* not if the application cancelled the order meanwhile (credit.hold_left) */
	UPDATE credit.held_orders x
	   SET state = 'rejected', decided_at = pg_catalog.now(), changed_by = credit.caller()
	 WHERE x.hold_id OPERATOR(pg_catalog.=) h.hold_id
	   AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_rejected', 'customer_key', h.customer_key, 'orders', h.orders::text,
		'order_key', h.order_key, 'amount', h.amount, 'application_id', $1)::text);
END;
$$;

COMMENT ON FUNCTION credit.reject_held_order(bigint) IS
'For a rejected or withdrawn order release: writes the table''s rejected status to the held order.';

/*
 * Called by the order trigger (as the owner of schema credit) when the
 * application moves a held order out of its held status or deletes it,
 * other than by the decision of its release application: the hold ends
 * (cancelled) and its application, if still undecided, is withdrawn.
 */
CREATE FUNCTION credit.hold_left(orders regclass, order_key text, actor text)
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
	PERFORM 1 FROM credit.accounts x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) customer FOR NO KEY UPDATE;
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

COMMENT ON FUNCTION credit.hold_left(regclass, text, text) IS
'Internal, called by the order trigger: a held order left its held status (or was deleted) by the application''s own change; the hold is cancelled and its application withdrawn.';

REVOKE EXECUTE ON FUNCTION credit.hold_left(regclass, text, text) FROM PUBLIC;

/* called by the order trigger (as the owner of schema credit) on a warn table */
CREATE FUNCTION credit.record_overlimit_warning(orders regclass, order_key text, customer text,
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
	VALUES ($1, $2, $3, $4, $5, $6, acct.exposure, credit.effective_limit(acct), $7);
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_over_limit', 'customer_key', $3, 'orders', $1::text, 'order_key', $2,
		'amount', $4, 'exposure', acct.exposure,
		'effective_limit', credit.effective_limit(acct), 'reason', $5)::text);
END;
$$;

COMMENT ON FUNCTION credit.record_overlimit_warning(regclass, text, text, numeric, text, text, text) IS
'Internal, called by the order trigger: records and announces an order let through over the limit.';

REVOKE EXECUTE ON FUNCTION credit.record_overlimit_warning(regclass, text, text, numeric, text, text, text) FROM PUBLIC;
/*
 * audit.sql: the tamper-evident audit trail.
 *
 * Every change to applications, their steps, account limits and statuses,
 * grades, held orders and the approval configuration is appended to
 * credit.audit_log by statement-level triggers (transition tables): who
 * (session user and current role), when, the table and operation, the row's
 * key, before and after as jsonb, and a comment where the change has one.
 *
 * Chains.  Each row belongs to one chain: account:<customer> for limits,
 * statuses and held orders; request:<customer> for the limit requests
 * rescore writes (rescore writes them for customers whose account rows it
 * does not lock); grades for grade changes
 * (credit.grade_changes: rescore, which changes grades, runs one at a
 * time); application:<id> for an application and its steps; config for
 * the approval configuration.  credit.customer_grades itself is not
 * audited row by row: rescore rewrites it daily, and every change of a
 * grade in it is a row of credit.grade_changes.  A row carries its position in the chain
 * (chain_seq, 1, 2, ...), the hash of the previous row of its chain
 * (prev_hash, NULL for the first) and its own hash: SHA-256 over the
 * previous hash and the row's content (credit.audit_hash).  The last
 * position and hash of each chain are kept in credit.audit_heads; appending
 * updates the head row, whose lock serializes the appends of one chain
 * until commit while unrelated customers never wait for each other.  Locks
 * are taken account row first, then chain head, on every path (the order
 * path holds the account row when it records a status change; a hold
 * attempt keeps the account rows locked after a refusal; hold_left and
 * reject_held_order lock the account first; a final approval locks the
 * account before it settles an adopted limit request), so appends cannot
 * deadlock with order entry, rescore or each other.
 *
 * UPDATE, DELETE and TRUNCATE of credit.audit_log are refused by triggers,
 * whoever asks, the table owner included.  A superuser can still disable
 * triggers or edit the files; credit.verify_audit() then finds the first
 * broken link of each damaged chain: a row whose hash does not match its
 * content, a prev_hash that is not the previous row's hash, a gap in
 * chain_seq, or a head that does not match the chain's last row (a
 * deleted tail).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.audit_log (
	audit_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain			text NOT NULL,
	chain_seq		bigint NOT NULL,
	logged_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	session_role	name NOT NULL DEFAULT SESSION_USER,
	acting_role	name NOT NULL,
	backend_pid		integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
	table_name		text NOT NULL,
	operation		text NOT NULL,
	row_key			text NOT NULL,
	before			jsonb,
	after			jsonb,
	comment			text,
	prev_hash		bytea,
	hash			bytea NOT NULL,
	CONSTRAINT audit_log_chain_seq UNIQUE (chain, chain_seq)
);
CREATE INDEX audit_log_table_key_idx ON credit.audit_log (table_name, row_key);

COMMENT ON TABLE credit.audit_log IS
'Append-only audit trail: every change to applications, steps, limits, statuses, grades, held orders and approval configuration, hash-chained per chain; check with credit.verify_audit().';
COMMENT ON COLUMN credit.audit_log.chain IS 'account:<customer>, request:<customer>, grades, application:<id> or config.';
COMMENT ON COLUMN credit.audit_log.hash IS 'SHA-256 of prev_hash and the row''s content (credit.audit_hash).';

CREATE TABLE credit.audit_heads (
	chain			text PRIMARY KEY,
	last_seq		bigint NOT NULL,
	last_hash		bytea NOT NULL
);

COMMENT ON TABLE credit.audit_heads IS
'The last position and hash of each audit chain; its row lock serializes appends to one chain.';

SELECT pg_catalog.pg_extension_config_dump('credit.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.audit_log', 'audit_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.audit_heads', '');

/*
 * The hash of one audit row, as src/audit.c computes it when appending:
 * SHA-256 of the fields joined by U+001F, the time as integer microseconds
 * since the Unix epoch, jsonb in its canonical text, '-' for NULL.
 * Independent of DateStyle and TimeZone.
 */
CREATE FUNCTION credit.audit_hash(prev_hash bytea, chain text, chain_seq bigint,
								  logged_at timestamptz, session_role name,
								  acting_role name, table_name text, operation text,
								  row_key text, before jsonb, after jsonb, comment text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws(
	pg_catalog.chr(31),
	COALESCE(pg_catalog.encode($1, 'hex'), '-'), $2, $3::text,
	(pg_catalog.extract('epoch', $4) OPERATOR(pg_catalog.*) 1000000)::bigint::text,
	$5::text, $6::text, $7, $8, $9,
	COALESCE($10::text, '-'), COALESCE($11::text, '-'), COALESCE($12, '-')), 'UTF8'));

COMMENT ON FUNCTION credit.audit_hash(bytea, text, bigint, timestamptz, name, name, text, text, text, jsonb, jsonb, text) IS
'SHA-256 over the previous hash and an audit row''s content (the hash credit.audit_log.hash must have).';

/*
 * The statement-level audit trigger (C, src/audit.c).  Arguments: the chain
 * prefix; the column that completes the chain name and keys the row (or a
 * fixed chain name when the prefix ends without ':'); optionally the
 * comma-separated columns an UPDATE must change to be recorded.  The
 * transition tables must be named old_rows and new_rows.  Its writes run
 * as the owner of schema credit: audited users need no right on the trail.
 */
CREATE FUNCTION credit.audit_capture()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_audit_capture'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.audit_capture() IS
'Statement trigger: appends the changed rows to the hash-chained audit trail (chain prefix, key column, watched columns).';

REVOKE EXECUTE ON FUNCTION credit.audit_capture() FROM PUBLIC;

/* the trail is append-only, for everyone */
CREATE FUNCTION credit.audit_log_immutable()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP
		USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'audit_log',
			  HINT = 'Audit rows are never changed or removed; check the trail with credit.verify_audit().';
END;
$$;

COMMENT ON FUNCTION credit.audit_log_immutable() IS
'Trigger on credit.audit_log: refuses UPDATE, DELETE and TRUNCATE to everyone (55000).';

CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON credit.audit_log
	FOR EACH ROW EXECUTE FUNCTION credit.audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON credit.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION credit.audit_log_immutable();

/* TRUNCATE fires no row or transition-table trigger: an audited table refuses it */
CREATE FUNCTION credit.audited_no_truncate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'table "credit.%" cannot be truncated', TG_TABLE_NAME
		USING ERRCODE = '55000', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
			  HINT = 'Its changes are on the audit trail, which TRUNCATE would bypass; delete the rows instead.';
END;
$$;

COMMENT ON FUNCTION credit.audited_no_truncate() IS
'Trigger on every audited table: refuses TRUNCATE (55000), which would bypass the audit trail.';

/* audit a table: three statement triggers, one per event (transition tables need that) */
CREATE FUNCTION credit.audit_table(tbl regclass, chain_prefix text, key_column name,
								   watched text DEFAULT NULL,
								   events text[] DEFAULT '{INSERT,UPDATE,DELETE}')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ev text;
	args text;
BEGIN
	args := pg_catalog.format('%L, %L', chain_prefix, key_column);
	IF watched IS NOT NULL THEN
		args := args OPERATOR(pg_catalog.||) pg_catalog.format(', %L', watched);
	END IF;
	FOREACH ev IN ARRAY events LOOP
		EXECUTE pg_catalog.format(
			'CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT '
			'EXECUTE FUNCTION credit.audit_capture(%s)',
			'audit_' OPERATOR(pg_catalog.||) pg_catalog.lower(ev), ev, tbl,
			CASE ev WHEN 'INSERT' THEN 'NEW TABLE AS new_rows'
					WHEN 'DELETE' THEN 'OLD TABLE AS old_rows'
					ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
			args);
	END LOOP;
	EXECUTE pg_catalog.format(
		'CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %s '
		'FOR EACH STATEMENT EXECUTE FUNCTION credit.audited_no_truncate()', tbl);
END;
$$;

COMMENT ON FUNCTION credit.audit_table(regclass, text, name, text, text[]) IS
'Creates the audit triggers of a table. Internal: used by the extension script.';

REVOKE EXECUTE ON FUNCTION credit.audit_table(regclass, text, name, text, text[]) FROM PUBLIC;

SELECT credit.audit_table('credit.accounts', 'account:', 'customer_key',
						  'customer_key,credit_limit,temp_limit,temp_limit_from,temp_limit_until,payment_term_days,currency,owner,region,watch_ratio,status,manual_status,dunning_status');
SELECT credit.audit_table('credit.status_changes', 'account:', 'customer_key',
						  events => '{INSERT}');
SELECT credit.audit_table('credit.grade_changes', 'grades', 'customer_key',
						  events => '{INSERT}');
SELECT credit.audit_table('credit.applications', 'application:', 'application_id');
SELECT credit.audit_table('credit.application_steps', 'application:', 'application_id');
SELECT credit.audit_table('credit.held_orders', 'account:', 'customer_key');
SELECT credit.audit_table('credit.limit_requests', 'request:', 'customer_key', 'state,proposed_limit,proposed_term');
SELECT credit.audit_table('credit.positions', 'config', 'position');
SELECT credit.audit_table('credit.position_members', 'config', 'position');
SELECT credit.audit_table('credit.approval_rules', 'config', 'rule_id');
SELECT credit.audit_table('credit.approval_rule_steps', 'config', 'rule_id');

CREATE FUNCTION credit.verify_audit()
RETURNS TABLE (chain text, chain_seq bigint, audit_id bigint, problem text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH rows AS (
		SELECT l.*,
			   pg_catalog.lag(l.hash) OVER w AS prior_hash,
			   pg_catalog.lag(l.chain_seq) OVER w AS prior_seq
		  FROM credit.audit_log l
		WINDOW w AS (PARTITION BY l.chain ORDER BY l.chain_seq)
	), broken AS (
		SELECT r.chain, r.chain_seq, r.audit_id,
			   CASE WHEN r.chain_seq OPERATOR(pg_catalog.<>) (COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1)
					THEN CASE WHEN (COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1)
								   OPERATOR(pg_catalog.=) (r.chain_seq OPERATOR(pg_catalog.-) 1)
							  THEN pg_catalog.format('row %s of the chain is missing',
													 r.chain_seq OPERATOR(pg_catalog.-) 1)
							  ELSE pg_catalog.format('rows %s to %s of the chain are missing',
													 COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1,
													 r.chain_seq OPERATOR(pg_catalog.-) 1) END
					WHEN r.prev_hash IS DISTINCT FROM r.prior_hash
					THEN 'prev_hash is not the hash of the previous row'
					WHEN r.hash IS DISTINCT FROM credit.audit_hash(r.prev_hash, r.chain, r.chain_seq,
							 r.logged_at, r.session_role, r.acting_role, r.table_name,
							 r.operation, r.row_key, r.before, r.after, r.comment)
					THEN 'the row''s content does not match its hash'
			   END AS problem
		  FROM rows r
		UNION ALL
		SELECT h.chain, h.last_seq, NULL::bigint,
			   pg_catalog.format('the chain ends at row %s, its head says %s',
								 COALESCE(t.chain_seq, 0), h.last_seq)
		  FROM credit.audit_heads h
		  LEFT JOIN LATERAL (SELECT l.chain_seq, l.hash FROM credit.audit_log l
							  WHERE l.chain OPERATOR(pg_catalog.=) h.chain
							  ORDER BY l.chain_seq DESC LIMIT 1) t ON true
		 WHERE t.chain_seq IS DISTINCT FROM h.last_seq OR t.hash IS DISTINCT FROM h.last_hash
	)
	SELECT DISTINCT ON (b.chain) b.chain, b.chain_seq, b.audit_id, b.problem
	  FROM broken b
	 WHERE b.problem IS NOT NULL
	 ORDER BY b.chain, b.chain_seq;
END;

COMMENT ON FUNCTION credit.verify_audit() IS
'Checks every audit chain and returns its first broken link (a missing row, a wrong prev_hash, content not matching its hash, a head that does not match the chain''s end); no rows when the trail is intact.';
/*
 * roles.sql: the group roles, their privileges, and row-level security.
 *
 * Roles are cluster-wide: CREATE EXTENSION creates the five group roles
 * (NOLOGIN) when they are missing and leaves them in place on DROP
 * EXTENSION (other databases of the cluster may use them).  A DBA grants
 * them to login roles:
 *
 *   credit_admin    configuration, attaching tables, every write, reconcile
 *   credit_risk     accounts and limits, profiles, scorecards and rescoring,
 *                   metrics, limit applications, escalation
 *   credit_finance  receivables, payments, allocations, dunning runs and
 *                   the delivery queue
 *   credit_sales    its own customers only: reads them, edits their
 *                   profiles, drafts and submits their applications
 *   credit_bi       reads everything but the audit trail, writes nothing
 *
 * Approving is not a role's privilege: credit.approve and credit.reject
 * check the caller's positions (credit.position_members), whatever its
 * group role.  They, the other approval functions and the batch functions
 * (run_dunning, claim_dunning, complete_dunning, rescore, claim_notices)
 * are SECURITY DEFINER: they write tables their callers may only read, and
 * check the caller (credit.caller()) themselves.  Everything else runs with
 * the caller's rights.  EXECUTE is revoked from PUBLIC on every function but
 * credit.caller and the unified social credit code checks (which the domain
 * credit.uscc needs wherever it is used).
 *
 * Row-level security: a member of credit_sales that is not also a member
 * of credit_admin, credit_risk or credit_finance sees and writes only rows
 * of the customers whose accounts.owner is its role name, in every table
 * that belongs to a customer and in every view (the views are
 * security_invoker).  Table owners and superusers are not subject to it,
 * so the engine's own work (triggers, SECURITY DEFINER functions) always
 * sees every row.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY '{credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}'::text[] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		ELSE
			RAISE NOTICE 'role "%" already exists: it gets the privileges of that group role', r;
		END IF;
	END LOOP;
END;
$$;

CREATE FUNCTION credit.sees_all_customers()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN NOT pg_catalog.pg_has_role('credit_sales', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_admin', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_risk', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_finance', 'MEMBER');

COMMENT ON FUNCTION credit.sees_all_customers() IS
'False for a member of credit_sales that is not also a member of credit_admin, credit_risk or credit_finance: row-level security then limits it to the customers it owns (accounts.owner = its role name).';

CREATE INDEX accounts_owner_idx ON credit.accounts (owner);

/* functions: nothing for PUBLIC but the caller's name and the code checks */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA credit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.caller(), credit.sees_all_customers(),
	credit.uscc_valid(text), credit.uscc_check(text)
	TO PUBLIC;

GRANT USAGE ON SCHEMA credit TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;

/* reading: everyone; the audit trail not for sales and BI */
GRANT SELECT ON ALL TABLES IN SCHEMA credit
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
REVOKE SELECT ON credit.audit_log, credit.audit_heads, credit.attachments, credit.dunning_state
	FROM credit_sales;
REVOKE SELECT ON credit.audit_log, credit.audit_heads FROM credit_bi;
GRANT EXECUTE ON FUNCTION
	credit.effective_limit(credit.accounts, timestamptz),
	credit.available_credit(credit.accounts, timestamptz),
	credit.sees_all_customers(),
	credit.aging_config(), credit.aging_buckets_check(), credit.aging_bucket(integer),
	credit.receivable_bucket(credit.receivables, date), credit.receivable_bucket(bigint, date),
	credit.aging(date), credit.aging_summary(date),
	credit.limit_on(text, timestamptz),
	credit.acts_for(text), credit.my_tasks()
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.verify_audit(),
	credit.audit_hash(bytea, text, bigint, timestamptz, name, name, text, text, text, jsonb, jsonb, text)
	TO credit_admin, credit_risk, credit_finance;

/* applications: drafted by people, decided through the functions */
GRANT INSERT, DELETE ON credit.applications TO credit_admin, credit_risk, credit_sales;
GRANT UPDATE (requested_limit, requested_temp_limit, temp_from, temp_until, requested_term_days,
			  reason, documents) ON credit.applications
	TO credit_admin, credit_risk, credit_sales;
GRANT EXECUTE ON FUNCTION credit.submit_application(bigint), credit.approve(bigint, text, integer),
	credit.reject(bigint, text, integer), credit.withdraw(bigint, text)
	TO credit_admin, credit_risk, credit_finance, credit_sales;
GRANT EXECUTE ON FUNCTION credit.escalate_overdue(timestamptz), credit.claim_notices(integer)
	TO credit_admin, credit_risk;

/* profiles: risk, and sales for its own customers */
GRANT INSERT, UPDATE, DELETE ON credit.profiles, credit.profile_contacts, credit.profile_documents
	TO credit_admin, credit_risk, credit_sales;

/* risk: accounts and limits, scorecards, metrics */
GRANT INSERT, UPDATE, DELETE ON credit.accounts, credit.scorecards, credit.scorecard_factors,
	credit.scorecard_bins, credit.scorecard_grades, credit.scorecard_rules, credit.metrics,
	credit.metric_values
	TO credit_admin, credit_risk;
GRANT EXECUTE ON FUNCTION
	credit.customer_metrics(date, integer, integer, text),
	credit.score_all(bigint, date, text, boolean), credit.score(text, bigint, date),
	credit.rescore(date, bigint), credit.compare_scorecards(bigint, bigint, date),
	credit.activate_scorecard(bigint), credit.retire_scorecard(bigint),
	credit.new_scorecard_version(bigint),
	credit.scorecard_factor_check(bigint, text), credit.scorecard_grades_check(bigint),
	credit.scorecard_complete_check(bigint)
	TO credit_admin, credit_risk;

/* finance: the receivables ledger and dunning */
GRANT INSERT, UPDATE, DELETE ON credit.receivables, credit.payments, credit.allocations
	TO credit_admin, credit_finance;
GRANT EXECUTE ON FUNCTION
	credit.check_due_date(text, date, date), credit.allocate(bigint, text, numeric),
	credit.run_dunning(date), credit.claim_dunning(integer, text, text, interval),
	credit.complete_dunning(bigint, boolean, text)
	TO credit_admin, credit_finance;

/* admin: configuration and attachments */
GRANT INSERT, UPDATE, DELETE ON credit.settings, credit.aging_buckets, credit.dunning_levels,
	credit.positions, credit.position_members, credit.approval_rules, credit.approval_rule_steps,
	credit.attachments
	TO credit_admin;
GRANT EXECUTE ON FUNCTION
	credit.dunning_template_variables(),
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text),
	credit.attach_receivables(regclass, name, name, name, text[]),
	credit.detach_orders(regclass), credit.column_type(regclass, name),
	credit.require_read_committed(text),
	credit.open_orders_filter(credit.attachments), credit.open_exposure_query(credit.attachments),
	credit.reconcile(boolean)
	TO credit_admin;
CREATE POLICY own_customers ON credit.accounts
	USING ((SELECT credit.sees_all_customers())
		   OR owner OPERATOR(pg_catalog.=) CURRENT_USER::text)
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR owner OPERATOR(pg_catalog.=) CURRENT_USER::text);
ALTER TABLE credit.accounts ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.status_changes
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.status_changes ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profiles
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profiles ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profile_contacts
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profile_contacts ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profile_documents
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profile_documents ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.receivables
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.receivables ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.payments
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.payments ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.allocations
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.allocations ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.dunning_queue
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.dunning_queue ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.customer_grades
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.customer_grades ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.score_history
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.score_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.grade_changes
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.grade_changes ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.limit_requests
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.limit_requests ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.limit_history
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.limit_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.metric_values
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.metric_values ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.applications
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.applications ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.held_orders
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.held_orders ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.overlimit_warnings
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.overlimit_warnings ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.application_steps
	USING ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x));
ALTER TABLE credit.application_steps ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.approval_notices
	USING ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x));
ALTER TABLE credit.approval_notices ENABLE ROW LEVEL SECURITY;
