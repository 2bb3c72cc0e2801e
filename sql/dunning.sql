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

	/* escalate: lock the accounts in the ledger's order, then raise their dunning_status */
	to_watch := 0;
	to_stop := 0;
	IF esc_keys IS NOT NULL THEN
		PERFORM credit.lock_accounts(ARRAY(
			SELECT a.customer_key
			  FROM credit.accounts a
			  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
			 WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (esc_keys)
			 ORDER BY t.root_key, t.depth, a.customer_key));
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
		SELECT pg_catalog.array_agg(a.customer_key ORDER BY t.root_key, t.depth, a.customer_key)
		  INTO lift_keys
		  FROM credit.accounts a
		  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
		 WHERE a.dunning_status IS NOT NULL
		   AND NOT EXISTS (
				SELECT 1 FROM credit.receivables r
				 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
				   AND r.allocated OPERATOR(pg_catalog.<) r.amount
				   AND NOT r.disputed
				   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of);
		IF lift_keys IS NOT NULL THEN
			/* locked in the ledger's order; the update tests them again, locked */
			PERFORM credit.lock_accounts(lift_keys);
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
