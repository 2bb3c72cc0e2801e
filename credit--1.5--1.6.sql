/*
 * credit--1.5--1.6.sql: upgrade from 1.5 to 1.6 (frozen once 1.6 is released).
 *
 * 1.6: an approved limit, temporary limit or term change holds the
 * account with credit.lock_accounts before it writes the row (under the
 * shared-memory ledger, the commits of orders in flight then write the
 * account's status first).  The rest of 1.6 is in the library.
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.6'" to load this file. \quit

CREATE OR REPLACE FUNCTION credit.application_write_back(a credit.applications)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * A row write holds the account first (credit.lock_accounts): under the
	 * shared-memory ledger the commits of orders holding reservations on it
	 * then write its status before this transaction locks the row, so no
	 * reader sees their exposure with the status before it
	 */
	IF a.kind OPERATOR(pg_catalog.<>) 'order_release' THEN
		PERFORM credit.lock_accounts(ARRAY[a.customer_key]);
	END IF;
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
