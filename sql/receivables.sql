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
