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
