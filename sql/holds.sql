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
	over := LEAST(h.amount, GREATEST(credit.live_exposure(acct.customer_key, acct.exposure)
									 OPERATOR(pg_catalog.-) credit.effective_limit(acct), 0));
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
	PERFORM credit.lock_accounts(ARRAY[h.customer_key]);
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
	/*
	 * The customer's row and its groups' rows, root first: the ledger's
	 * order, in which the trigger then applies a reopened order.  The
	 * customer's row alone first would invert that order against a
	 * concurrent order of the group's (a deadlock).  credit.lock_accounts
	 * holds them in the shared-memory ledger too: the trigger's apply then
	 * never waits for a commit that waits for these rows.
	 */
	PERFORM credit.lock_accounts(ARRAY(
		WITH RECURSIVE up (k, n) AS (
			SELECT customer COLLATE "C", 0
			UNION ALL
			SELECT p.parent_key, up.n OPERATOR(pg_catalog.+) 1
			  FROM credit.accounts p JOIN up ON p.customer_key OPERATOR(pg_catalog.=) up.k
			 WHERE p.parent_key IS NOT NULL AND up.n OPERATOR(pg_catalog.<) 64)
		SELECT up.k FROM up ORDER BY up.n DESC));
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
	VALUES ($1, $2, $3, $4, $5, $6, credit.live_exposure(acct.customer_key, acct.exposure),
			credit.effective_limit(acct), $7);
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_over_limit', 'customer_key', $3, 'orders', $1::text, 'order_key', $2,
		'amount', $4, 'exposure', credit.live_exposure(acct.customer_key, acct.exposure),
		'effective_limit', credit.effective_limit(acct), 'reason', $5)::text);
END;
$$;

COMMENT ON FUNCTION credit.record_overlimit_warning(regclass, text, text, numeric, text, text, text) IS
'Internal, called by the order trigger: records and announces an order let through over the limit.';

REVOKE EXECUTE ON FUNCTION credit.record_overlimit_warning(regclass, text, text, numeric, text, text, text) FROM PUBLIC;
