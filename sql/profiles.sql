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
