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
	time_zone		text NOT NULL DEFAULT 'UTC',
	CONSTRAINT settings_singleton_check CHECK (singleton),
	CONSTRAINT settings_aging_basis_check
		CHECK (aging_basis OPERATOR(pg_catalog.=) ANY ('{due_date,invoice_date}'::text[])),
	CONSTRAINT settings_dunning_max_attempts_check
		CHECK (dunning_max_attempts OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT settings_dunning_retry_delay_check
		CHECK (dunning_retry_delay OPERATOR(pg_catalog.>) '0'::interval),
	CONSTRAINT settings_time_zone_check
		CHECK (pg_catalog.timezone(time_zone, '2000-01-01 00:00+00'::timestamptz) IS NOT NULL)
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

COMMENT ON COLUMN credit.settings.time_zone IS
'The company''s time zone: credit.business_date() gives dates in it (the date whose exchange rate a new currency position books).';

SELECT pg_catalog.pg_extension_config_dump('credit.settings', '');
