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
	parent_key		text COLLATE "C"
		REFERENCES credit.accounts (customer_key) ON UPDATE RESTRICT ON DELETE RESTRICT,
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
			   AND exposure OPERATOR(pg_catalog.<) 1e15),
	CONSTRAINT accounts_parent_key_check
		CHECK (parent_key OPERATOR(pg_catalog.<>) customer_key)
) WITH (fillfactor = 50);
CREATE INDEX accounts_parent_key_idx ON credit.accounts (parent_key);

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
COMMENT ON COLUMN credit.accounts.parent_key IS
'The account above this one (a group above its subsidiaries), or NULL. Its exposure includes this account''s, and an increase here must fit it too. Set at INSERT (while the account has no exposure) or by credit.move_account.';
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
'Open exposure kept by the engine: the customer''s own plus that of every account below it (parent_key). Do not write it; credit.reconcile() checks and repairs it.';

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

/* the serving exposure ledger's figure (src/shared_ledger.c; sql/ledger.sql) */
CREATE FUNCTION credit.live_exposure(customer_key text, stored numeric)
RETURNS numeric
AS 'MODULE_PATHNAME', 'credit_live_exposure'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.live_exposure(text, numeric) IS
'The exposure the serving ledger holds for the account as this transaction sees it: the shared-memory ledger''s figure, or stored (the accounts column) under the row-locked ledger.';

CREATE FUNCTION credit.lock_accounts(customer_keys text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'credit_lock_accounts'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.lock_accounts(text[]) IS
'Lock the account rows of customer_keys in the order given (lock them root first, then by depth, then by key, as the engine does), as SELECT ... FOR NO KEY UPDATE does, and under the shared-memory ledger hold each account there as well, so that no order changes its exposure until this transaction ends. Use it instead of FOR UPDATE on credit.accounts: under the shared-memory ledger a plain row lock does not stop orders. Keys without an account are skipped; returns the number of rows locked. Needs UPDATE on credit.accounts; a NULL key is 22004.';

CREATE FUNCTION credit.available_credit(account credit.accounts,
										at timestamptz DEFAULT pg_catalog.now())
RETURNS numeric
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
RETURN credit.effective_limit($1, $2)
	   OPERATOR(pg_catalog.-) credit.live_exposure(($1).customer_key, ($1).exposure);

COMMENT ON FUNCTION credit.available_credit(credit.accounts, timestamptz) IS
'Effective limit minus exposure (the serving ledger''s figure, credit.live_exposure): the largest increase an order may bring.';

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
	   credit.live_exposure(a.customer_key, a.exposure) AS exposure,
	   credit.effective_limit(a) OPERATOR(pg_catalog.-)
		   credit.live_exposure(a.customer_key, a.exposure) AS available_credit
  FROM credit.accounts a;

COMMENT ON VIEW credit.account_balances IS
'Each account''s limit, temporary limit in force now, exposure and available credit.';

SELECT pg_catalog.pg_extension_config_dump('credit.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('credit.status_changes', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.status_changes', 'change_id')::pg_catalog.regclass, '');
