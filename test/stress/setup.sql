-- test/stress/setup.sql: the application the stress run works on.
--
-- An application-shaped schema (sales.customers, sales.orders), 50 credit
-- accounts with varied limits, an active scorecard that credit.rescore
-- applies while orders run, and the workload functions stress.act(),
-- stress.act_multi() and stress.rescore() that the pgbench scripts call.
-- Run by test/stress.sh in a fresh database.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION credit;

CREATE SCHEMA sales;
CREATE TABLE sales.customers (
	id		bigint PRIMARY KEY,
	name	text NOT NULL
);
CREATE TABLE sales.orders (
	id		bigserial PRIMARY KEY,
	cust_id	bigint REFERENCES sales.customers,
	total	numeric(12,2),
	state	text NOT NULL DEFAULT 'open'
			CHECK (state IN ('open', 'confirmed', 'closed', 'cancelled', 'invoiced')),
	note	text
);
CREATE INDEX orders_cust_idx ON sales.orders (cust_id);

/*
 * Customers 1..50 have credit accounts; 51 has none (its orders may exist
 * only while closed or cancelled: an open one is refused with CR003).
 *   1, 2    hot, small limits (2000, 3000), watch_ratio 0.8
 *   3       hot, limit 1000 plus a temporary 1500 in force for a day
 *   4       hot, limit 2500 plus a temporary 100000 that is not yet in force
 *   5..47   limits from 5000 to 200000, watch ratios 0.5..1
 *   48      toggled between stop and ok during the run
 *   49      status none: no check, small limit
 *   50      status stop, with open orders placed before the stop
 */
INSERT INTO sales.customers (id, name)
SELECT g, 'Customer ' || g FROM generate_series(1, 51) g;

INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, watch_ratio, owner)
SELECT g::text, 'Customer ' || g,
	   CASE g WHEN 1 THEN 2000 WHEN 2 THEN 3000 WHEN 3 THEN 1000 WHEN 4 THEN 2500
			  WHEN 49 THEN 100
			  ELSE 5000 + ((g * 7919) % 40) * 4875 END,
	   CASE WHEN g <= 2 THEN 0.8 ELSE (ARRAY[0.5, 0.75, 0.9, 0.95, 1.0])[1 + g % 5] END,
	   (ARRAY['alice', 'bob', 'chen', 'dana'])[1 + g % 4]
  FROM generate_series(1, 50) g;
UPDATE credit.accounts
   SET temp_limit = 1500, temp_limit_from = now() - interval '1 hour',
	   temp_limit_until = now() + interval '1 day'
 WHERE customer_key = '3';
UPDATE credit.accounts
   SET temp_limit = 100000, temp_limit_from = now() + interval '1 day',
	   temp_limit_until = now() + interval '2 days'
 WHERE customer_key = '4';

-- orders already in the table before attach: attach must count them
INSERT INTO sales.orders (cust_id, total, state)
SELECT 1 + (g % 47), 10 + (g * 37) % 400, (ARRAY['open', 'confirmed', 'closed', 'cancelled'])[1 + g % 4]
  FROM generate_series(1, 400) g
 WHERE 1 + (g % 47) > 4;
INSERT INTO sales.orders (cust_id, total, state) VALUES
	(50, 1200, 'open'), (50, 800, 'confirmed'), (50, 450.50, 'open'),
	(50, 300, 'closed'), (49, 250, 'open'), (51, 999, 'closed');

SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');

UPDATE credit.accounts SET status = 'none' WHERE customer_key = '49';
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = '50';

/*
 * The risk team's scorecard, active: credit.rescore (test/stress/
 * rescore.pgbench, as of a random day of the last four) grades every
 * account and moves its limit around its limit at set-up, lowering it
 * below the exposure at times, while orders run.
 *   utilization     built in (exposure / limit, now), 40 points: below 0.5
 *                   100 points, to 0.8 60, to 1 30, from 1 0; no limit 50
 *   stress_bureau   a user metric, a random value from 0 to 100 per customer
 *                   and day (so each as-of date grades differently), 60
 *                   points, linear: the value is the points
 *   grades          D from 0: half the set-up limit, 15 days, always applied
 *                   C from 30: 0.8 x, 30 days, applied when lower (decrease)
 *                   B from 55: 1 x, 30 days, decrease (a raise is requested)
 *                   A from 80: 1.3 x, 45 days, always applied
 *   rule            utilization above 1 (over the limit): one grade down
 *   hysteresis      3 points, no confirmation days
 * The limit multiplies the user metric setup_limit (each account's limit at
 * set-up, loaded as of 30 days ago).
 */
INSERT INTO credit.metrics (metric, description, unit) VALUES
	('stress_bureau', 'A bureau score, random per customer and day', 'points'),
	('setup_limit', 'The credit limit at set-up', 'currency');
INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
SELECT customer_key, 'setup_limit', current_date - 30, credit_limit FROM credit.accounts;
INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
SELECT a.customer_key, 'stress_bureau', current_date - d, floor(random() * 101)
  FROM credit.accounts a, generate_series(0, 3) d;

INSERT INTO credit.scorecards (name, description, hysteresis_points)
VALUES ('stress', 'Stress run scorecard', 3);
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, missing_points, reason_code)
SELECT scorecard_id, f.factor, f.position, f.metric, f.weight, f.method, f.intercept, f.slope,
	   f.missing_points, f.reason_code
  FROM credit.scorecards,
	   (VALUES ('utilization', 1, 'utilization', 40, 'bins', NULL::numeric, NULL::numeric, 50, 'U'),
			   ('bureau', 2, 'stress_bureau', 60, 'linear', 0, 1, 0, 'B'))
		   AS f (factor, position, metric, weight, method, intercept, slope, missing_points,
				 reason_code)
 WHERE name = 'stress';
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
SELECT scorecard_id, 'utilization', b.lo, b.hi, b.points
  FROM credit.scorecards,
	   (VALUES (NULL, 0.5, 100), (0.5, 0.8, 60), (0.8, 1, 30), (1, NULL, 0))
		   AS b (lo, hi, points)
 WHERE name = 'stress';
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_metric,
									 limit_multiplier, limit_cap, limit_round, term_days,
									 auto_apply)
SELECT scorecard_id, g.grade, g.min_score, 'setup_limit', g.multiplier, 1e9, 0.01, g.term,
	   g.auto_apply
  FROM credit.scorecards,
	   (VALUES ('D', 0, 0.5, 15, 'always'), ('C', 30, 0.8, 30, 'decrease'),
			   ('B', 55, 1, 30, 'decrease'), ('A', 80, 1.3, 45, 'always'))
		   AS g (grade, min_score, multiplier, term, auto_apply)
 WHERE name = 'stress';
INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold,
									downgrade_steps, description)
SELECT scorecard_id, 1, 'utilization', '>', 1, 1, 'one grade down while over the limit'
  FROM credit.scorecards WHERE name = 'stress';
SELECT credit.activate_scorecard(scorecard_id) FROM credit.scorecards WHERE name = 'stress';

CREATE SCHEMA stress;

-- what every committed call of stress.act() did (insert-only: no contention)
CREATE TABLE stress.events (
	client	int NOT NULL,
	mode	text NOT NULL,
	kind	text NOT NULL,
	outcome	text NOT NULL,
	-- the action can only lower exposure: it must never be refused
	pure_decrease boolean NOT NULL,
	detail	text
);

-- the accounts as they were before the run
CREATE TABLE stress.baseline AS
SELECT customer_key, status, exposure, credit_limit FROM credit.accounts;

-- invariant samples taken while pgbench runs (test/stress.sh)
CREATE TABLE stress.samples (
	taken_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	reconcile_rows bigint NOT NULL,
	over_limit	bigint NOT NULL,
	negative	bigint NOT NULL,
	independent_diff bigint NOT NULL,
	wrong_status bigint NOT NULL
);

-- every call of stress.rescore() that committed, with credit.rescore's counts
CREATE TABLE stress.rescores (
	client	int NOT NULL,
	mode	text NOT NULL,
	as_of	date NOT NULL,
	outcome	text NOT NULL,
	scored	bigint,
	grade_changes bigint,
	limits_applied bigint,
	limit_requests bigint,
	lowered	bigint,			-- applied limits below the limit before
	raised	bigint,			-- applied limits above it
	left_over bigint,		-- accounts left above their limit
	stale_grades bigint,	-- grades in force older than the customer's latest score
	detail	text
);

-- every account a rescore left above its effective limit (it applied a
-- limit below the exposure already committed), with the exposure then
CREATE TABLE stress.rescore_over (
	id		bigserial PRIMARY KEY,
	customer_key text NOT NULL,
	exposure numeric NOT NULL,
	effective_limit numeric NOT NULL
);
CREATE INDEX rescore_over_customer_idx ON stress.rescore_over (customer_key, id);

/*
 * Accounts (other than 'none') above their effective limit that no rescore
 * explains.  In this run only rescore lowers a limit below the exposure
 * (limit_change and temp_limit_revoke keep the limit in force at or above
 * it), and from then on every increase is refused, so an account above its
 * limit must be on hold (or stopped), and its exposure at most what it was
 * when the last rescore that left it above its limit applied that limit.
 */
CREATE FUNCTION stress.unexplained_over_limit()
RETURNS TABLE (customer_key text, status text, exposure numeric, effective_limit numeric,
			   exposure_at_rescore numeric)
LANGUAGE sql STABLE AS $$
SELECT a.customer_key, a.status, a.exposure, credit.effective_limit(a), o.exposure
  FROM credit.accounts a
  LEFT JOIN LATERAL (SELECT r.exposure FROM stress.rescore_over r
					  WHERE r.customer_key = a.customer_key
					  ORDER BY r.id DESC LIMIT 1) o ON true
 WHERE a.status <> 'none' AND a.exposure > credit.effective_limit(a)
   AND (o.exposure IS NULL OR a.exposure > o.exposure OR a.status NOT IN ('hold', 'stop'));
$$;

-- the status rule of README, for ok/watch/hold accounts (none, stop stay)
CREATE FUNCTION stress.derived_status(exposure numeric, effective_limit numeric,
									  watch_ratio numeric) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN exposure > effective_limit THEN 'hold'
			WHEN exposure > 0 AND exposure >= watch_ratio * effective_limit THEN 'watch'
			ELSE 'ok' END;

-- accounts whose exposure differs from their open orders plus open
-- receivables minus unallocated payments, computed here independently of
-- credit.reconcile()
CREATE VIEW stress.exposure_mismatch AS
SELECT a.customer_key, a.exposure, coalesce(o.total, 0) AS open_total
  FROM credit.accounts a
  LEFT JOIN (SELECT customer_key, sum(total) AS total
			   FROM (SELECT cust_id::text AS customer_key, coalesce(total, 0) AS total
					   FROM sales.orders WHERE state IN ('open', 'confirmed')
					 UNION ALL
					 SELECT customer_key, amount - allocated FROM credit.receivables
					 UNION ALL
					 SELECT customer_key, allocated - amount FROM credit.payments) x
			  GROUP BY 1) o
	ON o.customer_key = a.customer_key
 WHERE a.exposure <> coalesce(o.total, 0);

-- one sample of the invariants, in the caller's (REPEATABLE READ) snapshot
CREATE FUNCTION stress.sample() RETURNS void
LANGUAGE sql AS $$
INSERT INTO stress.samples (reconcile_rows, over_limit, negative, independent_diff, wrong_status)
SELECT (SELECT count(*) FROM credit.reconcile()),
	   (SELECT count(*) FROM stress.unexplained_over_limit()),
	   (SELECT count(*) FROM credit.accounts a WHERE a.exposure < 0),
	   (SELECT count(*) FROM stress.exposure_mismatch),
	   (SELECT count(*) FROM credit.accounts a
		 WHERE a.status IN ('ok', 'watch', 'hold')
		   AND a.status <> stress.derived_status(a.exposure, credit.effective_limit(a), a.watch_ratio));
$$;

CREATE FUNCTION stress.pick_customer() RETURNS bigint
LANGUAGE sql VOLATILE
RETURN CASE WHEN random() < 0.40 THEN 1 + floor(random() * 4)::bigint	-- hot
			WHEN random() < 0.02 THEN 51								-- no account
			ELSE 1 + floor(random() * 50)::bigint END;

CREATE FUNCTION stress.pick_amount() RETURNS numeric
LANGUAGE sql VOLATILE
RETURN CASE WHEN random() < 0.01 THEN NULL
			WHEN random() < 0.02 THEN 0
			ELSE round((random() * random() * 3000)::numeric, 2) END;

CREATE FUNCTION stress.pick_state() RETURNS text
LANGUAGE sql VOLATILE
RETURN (ARRAY['open', 'open', 'confirmed', 'closed', 'cancelled'])[1 + floor(random() * 5)::int];

-- a random existing order id (NULL when the table is empty)
CREATE FUNCTION stress.pick_order() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	last	bigint;
	r		bigint;
BEGIN
	SELECT s.last_value INTO last FROM sales.orders_id_seq s;
	SELECT o.id INTO r FROM sales.orders o
	 WHERE o.id >= 1 + floor(random() * last)::bigint ORDER BY o.id LIMIT 1;
	IF r IS NULL THEN
		SELECT o.id INTO r FROM sales.orders o ORDER BY o.id LIMIT 1;
	END IF;
	RETURN r;
END;
$$;

/*
 * One random action, the only statement of the caller's transaction.  mode
 * is single (READ COMMITTED) or rr (REPEATABLE READ: a serialization
 * failure, 40001, is legitimate there, and is caught and counted).  No
 * transaction of the run waits for a lock while holding an account row
 * lock that another could need first (one statement locks its order rows,
 * then the accounts in key order; stress.act_multi locks its order rows
 * before anything else; credit.rescore locks no order row, and the
 * accounts whose limits it applies in key order), so a deadlock is never
 * legitimate and is not caught: pgbench then counts a failed transaction
 * (test/stress.sh checks there is none) and the run fails.
 * Refusals (CR001, CR002, CR003) are caught and counted.  About 6% of the
 * actions raise SR001 at the end, which undoes them (the inner block is a
 * subtransaction).  The outcome is written to stress.events outside the
 * undone part.
 */
CREATE FUNCTION stress.act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	r		float8 := random();
	undo	boolean := random() < 0.06;
	kind	text;
	outcome	text := 'ok';
	decrease boolean := false;
	c		bigint;
	c2		bigint;
	o		bigint;
	st		text;
	n		bigint;
	amt		numeric;
	detail	text;
BEGIN
	BEGIN
		IF r < 0.26 THEN
			kind := 'insert';
			INSERT INTO sales.orders (cust_id, total, state)
			VALUES (stress.pick_customer(), stress.pick_amount(),
					CASE WHEN random() < 0.85 THEN 'open' ELSE stress.pick_state() END);
		ELSIF r < 0.34 THEN
			kind := 'increase';
			o := stress.pick_order();
			UPDATE sales.orders SET total = least(round(total * (1.05 + random()::numeric), 2), 999999)
			 WHERE id = o RETURNING state INTO st;
			IF st IS NULL THEN outcome := 'none'; END IF;
		ELSIF r < 0.42 THEN
			kind := 'decrease';
			decrease := true;
			o := stress.pick_order();
			UPDATE sales.orders SET total = round(total * (0.2 + 0.75 * random()::numeric), 2)
			 WHERE id = o RETURNING state INTO st;
			IF st IS NULL THEN outcome := 'none'; END IF;
		ELSIF r < 0.52 THEN
			-- any state to any state: confirm, close, cancel, reopen
			st := stress.pick_state();
			kind := 'state_' || st;
			decrease := st IN ('closed', 'cancelled');
			o := stress.pick_order();
			UPDATE sales.orders SET state = st WHERE id = o RETURNING id INTO n;
			IF n IS NULL THEN outcome := 'none'; END IF;
		ELSIF r < 0.62 THEN
			-- move one order to another customer: two accounts change
			kind := 'move';
			o := stress.pick_order();
			c2 := stress.pick_customer();
			UPDATE sales.orders SET cust_id = c2 WHERE id = o AND cust_id <> c2
			RETURNING state INTO st;
			outcome := CASE WHEN st IS NULL THEN 'none'
							WHEN st IN ('open', 'confirmed') THEN 'ok' ELSE 'ok_closed' END;
		ELSIF r < 0.70 THEN
			kind := 'delete';
			decrease := true;
			o := stress.pick_order();
			DELETE FROM sales.orders WHERE id = o RETURNING id INTO n;
			IF n IS NULL THEN outcome := 'none'; END IF;
		ELSIF r < 0.74 THEN
			-- upsert: the id may exist (update path) or have been deleted (insert path)
			kind := 'upsert';
			SELECT s.last_value INTO n FROM sales.orders_id_seq s;
			INSERT INTO sales.orders AS t (id, cust_id, total, state)
			VALUES (1 + floor(random() * n)::bigint, stress.pick_customer(),
					stress.pick_amount(), stress.pick_state())
			ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total, state = EXCLUDED.state;
		ELSIF r < 0.78 THEN
			kind := 'merge';
			SELECT s.last_value INTO n FROM sales.orders_id_seq s;
			MERGE INTO sales.orders t
			USING (SELECT 1 + floor(random() * n)::bigint AS id, stress.pick_customer() AS cust_id,
						  stress.pick_amount() AS total, stress.pick_state() AS state) v
			   ON t.id = v.id
			 WHEN MATCHED AND t.state = 'cancelled' THEN DELETE
			 WHEN MATCHED THEN UPDATE SET total = v.total, state = v.state
			 WHEN NOT MATCHED THEN INSERT (cust_id, total, state) VALUES (v.cust_id, v.total, v.state);
		ELSIF r < 0.81 THEN
			-- several rows of one customer in one statement, locked in id order
			kind := 'bulk_increase';
			c := stress.pick_customer();
			UPDATE sales.orders SET total = least(round(total * 1.1, 2), 999999)
			 WHERE id IN (SELECT id FROM sales.orders WHERE cust_id = c
						   ORDER BY id LIMIT 5 FOR UPDATE);
		ELSIF r < 0.84 THEN
			kind := 'bulk_move';
			c := stress.pick_customer();
			c2 := stress.pick_customer();
			UPDATE sales.orders SET cust_id = c2
			 WHERE id IN (SELECT id FROM sales.orders WHERE cust_id = c AND cust_id <> c2
						   AND state IN ('open', 'confirmed') ORDER BY id LIMIT 3 FOR UPDATE);
			GET DIAGNOSTICS n = ROW_COUNT;
			IF n = 0 THEN outcome := 'none'; END IF;
		ELSIF r < 0.86 THEN
			kind := 'bulk_cancel';
			decrease := true;
			c := stress.pick_customer();
			UPDATE sales.orders SET state = 'cancelled'
			 WHERE id IN (SELECT id FROM sales.orders WHERE cust_id = c
						   ORDER BY id LIMIT 4 FOR UPDATE);
		ELSIF r < 0.92 THEN
			-- a new limit around the first one; the limit in force stays at or
			-- above the exposure of the newest row version (READ COMMITTED
			-- re-evaluates SET on it)
			kind := 'limit_change';
			c := stress.pick_customer();
			UPDATE credit.accounts a
			   SET credit_limit = round(greatest(a.exposure - (credit.effective_limit(a) - a.credit_limit),
										 b.credit_limit * (0.5 + random()::numeric)), 2)
			  FROM stress.baseline b
			 WHERE a.customer_key = c::text AND b.customer_key = a.customer_key;
		ELSIF r < 0.95 THEN
			kind := 'temp_limit_grant';
			c := stress.pick_customer();
			-- never lowers the limit in force: only a larger temporary limit
			UPDATE credit.accounts a
			   SET temp_limit = greatest(a.temp_limit, round(b.credit_limit * 0.5 * random()::numeric, 2)),
				   temp_limit_until = coalesce(a.temp_limit_until, now() + interval '1 day')
			  FROM stress.baseline b
			 WHERE a.customer_key = c::text AND b.customer_key = a.customer_key;
		ELSIF r < 0.97 THEN
			-- revoking is only safe while the standing limit covers the exposure
			kind := 'temp_limit_revoke';
			c := stress.pick_customer();
			UPDATE credit.accounts
			   SET temp_limit = 0, temp_limit_from = NULL, temp_limit_until = NULL
			 WHERE customer_key = c::text AND exposure <= credit_limit
			   AND customer_key <> '4';
		ELSIF r < 0.985 THEN
			kind := 'toggle_stop';
			UPDATE credit.accounts
			   SET status = CASE status WHEN 'stop' THEN 'ok' ELSE 'stop' END
			 WHERE customer_key = '48';
		ELSIF r < 0.989 THEN
			-- the application invoices an open order: exposure unchanged
			kind := 'invoice_order';
			decrease := true;
			o := stress.pick_order();
			UPDATE sales.orders SET state = 'invoiced'
			 WHERE id = o AND state IN ('open', 'confirmed') AND total > 0
			RETURNING cust_id, total INTO c, amt;
			IF FOUND THEN
				INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				VALUES (c::text, 'INV-' || o || '-' || gen_random_uuid(), amt, current_date);
			ELSE
				outcome := 'none';
			END IF;
		ELSIF r < 0.993 THEN
			-- a payment of part of an open invoice, allocated at once
			kind := 'payment';
			decrease := true;
			SELECT x.receivable_id, x.customer_key, x.invoice_key, x.open_amount
			  INTO o, st, detail, amt
			  FROM credit.receivables x
			 WHERE x.receivable_id >= (SELECT floor(random() * max(y.receivable_id))
										 FROM credit.receivables y)
			   AND x.open_amount > 0
			 ORDER BY x.receivable_id LIMIT 1;
			IF FOUND THEN
				amt := greatest(0.01, round(amt * (0.3 + 0.7 * random()::numeric), 2));
				INSERT INTO credit.payments (customer_key, payment_key, amount)
				VALUES (st, gen_random_uuid()::text, amt)
				RETURNING payment_id INTO n;
				PERFORM credit.allocate(n, detail);
				detail := NULL;
			ELSE
				outcome := 'none';
			END IF;
		ELSIF r < 0.9995 THEN
			-- negative available credit only where a rescore lowered the limit
			kind := 'read';
			SELECT count(*), string_agg(b.customer_key, ',') INTO n, detail
			  FROM credit.account_balances b
			 WHERE b.available_credit < 0 AND b.status <> 'none'
			   AND b.customer_key IN (SELECT u.customer_key FROM stress.unexplained_over_limit() u);
			IF n > 0 THEN outcome := 'negative_available'; END IF;
		ELSE
			-- truncate, always undone
			kind := 'truncate';
			TRUNCATE sales.orders;
			undo := true;
		END IF;
		IF undo THEN
			RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'SR001' THEN
			outcome := 'undone';
		WHEN SQLSTATE 'CR001' OR SQLSTATE 'CR002' OR SQLSTATE 'CR003'
			 OR SQLSTATE 'CR005' THEN	-- CR005: the invoice was paid meanwhile
			outcome := SQLSTATE;
			detail := SQLERRM;
		WHEN serialization_failure THEN
			IF mode <> 'rr' THEN RAISE; END IF;
			outcome := 'serialization';
			detail := SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, kind, outcome, decrease, detail);
	RETURN kind || ':' || outcome;
END;
$$;

/*
 * Several actions on one customer in one transaction, each a statement of
 * its own (so the account row is changed again after earlier changes of the
 * same transaction, and after undone subtransactions).  The customer's
 * order rows are locked first, in id order, before any account row; later
 * actions touch only those rows, new orders and the customer's account.
 */
CREATE FUNCTION stress.act_multi(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	c		bigint := stress.pick_customer();
	ids		bigint[];
	o		bigint;
	r		float8;
	undo	boolean;
	kind	text;
	outcome	text;
	decrease boolean;
	detail	text;
	st		text;
	steps	int := 2 + floor(random() * 4)::int;
	result	text := '';
BEGIN
	ids := ARRAY(SELECT id FROM sales.orders WHERE cust_id = c
				  ORDER BY id LIMIT 12 FOR UPDATE);
	FOR step IN 1 .. steps LOOP
		r := random();
		undo := random() < 0.10;
		outcome := 'ok';
		decrease := false;
		detail := NULL;
		o := ids[1 + floor(random() * greatest(cardinality(ids), 1))::int];
		BEGIN
			IF r < 0.35 OR o IS NULL THEN
				kind := 'insert';
				INSERT INTO sales.orders (cust_id, total, state)
				VALUES (c, stress.pick_amount(), 'open') RETURNING id INTO o;
				ids := ids || o;
			ELSIF r < 0.50 THEN
				kind := 'increase';
				UPDATE sales.orders SET total = least(round(total * (1.05 + random()::numeric), 2), 999999)
				 WHERE id = o;
			ELSIF r < 0.65 THEN
				kind := 'decrease';
				decrease := true;
				UPDATE sales.orders SET total = round(total * (0.2 + 0.75 * random()::numeric), 2)
				 WHERE id = o;
			ELSIF r < 0.85 THEN
				st := stress.pick_state();
				kind := 'state_' || st;
				decrease := st IN ('closed', 'cancelled');
				UPDATE sales.orders SET state = st WHERE id = o;
			ELSIF r < 0.93 THEN
				kind := 'delete';
				decrease := true;
				DELETE FROM sales.orders WHERE id = o;
			ELSE
				kind := 'limit_change';
				UPDATE credit.accounts a
				   SET credit_limit = round(greatest(a.exposure - (credit.effective_limit(a) - a.credit_limit),
										 b.credit_limit * (0.5 + random()::numeric)), 2)
				  FROM stress.baseline b
				 WHERE a.customer_key = c::text AND b.customer_key = a.customer_key;
			END IF;
			IF undo THEN
				RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
			END IF;
		EXCEPTION
			WHEN SQLSTATE 'SR001' THEN
				outcome := 'undone';
			WHEN SQLSTATE 'CR001' OR SQLSTATE 'CR002' OR SQLSTATE 'CR003' THEN
				outcome := SQLSTATE;
				detail := SQLERRM;
		END;
		INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
		VALUES (client, mode, kind, outcome, decrease, detail);
		result := result || kind || ':' || outcome || ' ';
	END LOOP;
	RETURN result;
END;
$$;

/*
 * credit.rescore as of a random day of the last four, the only statement
 * of the caller's transaction; mode single or rollback (READ COMMITTED: it
 * waits for a running rescore and sees its results; rollback: the caller
 * rolls back) or rr (REPEATABLE READ: a rescore or an order that committed
 * meanwhile makes it fail with 40001, caught and counted).
 * A deadlock is not caught (see stress.act).  22023 is caught and counted
 * as refused, should rescore refuse an as-of date older than the grades in
 * force.  The accounts this run left above their limit are recorded, with
 * their exposure, in stress.rescore_over (see stress.unexplained_over_limit).
 */
CREATE FUNCTION stress.rescore(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	d		date := current_date - floor(random() * 4)::int;
	scored	bigint;
	changes	bigint;
	applied	bigint;
	requests bigint;
	outcome	text := 'ok';
	detail	text;
	lowered	bigint;
	raised	bigint;
	left_over bigint;
	stale	bigint;
BEGIN
	BEGIN
		SELECT r.scored, r.grade_changes, r.limits_applied, r.limit_requests
		  INTO scored, changes, applied, requests
		  FROM credit.rescore(d) r;
		-- the limits this run applied: its rows are the ones decided now
		SELECT count(*) FILTER (WHERE r.proposed_limit < r.current_limit),
			   count(*) FILTER (WHERE r.proposed_limit > r.current_limit)
		  INTO lowered, raised
		  FROM credit.limit_requests r
		 WHERE r.state = 'applied' AND r.decided_at = now();
		-- their rows are locked by this transaction: the exposure is exact
		INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit)
		SELECT a.customer_key, a.exposure, credit.effective_limit(a)
		  FROM credit.accounts a
		 WHERE a.exposure > credit.effective_limit(a)
		   AND a.customer_key IN (SELECT r.customer_key FROM credit.limit_requests r
								   WHERE r.state = 'applied' AND r.decided_at = now());
		GET DIAGNOSTICS left_over = ROW_COUNT;
		-- a run must not leave a grade in force older than a later-dated score
		SELECT count(*) INTO stale
		  FROM credit.customer_grades g
		 WHERE g.scored_on < (SELECT max(h.as_of) FROM credit.score_history h
							   WHERE h.customer_key = g.customer_key);
	EXCEPTION
		WHEN serialization_failure THEN
			IF mode <> 'rr' THEN RAISE; END IF;
			outcome := 'serialization';
			detail := SQLERRM;
		WHEN invalid_parameter_value THEN
			outcome := 'refused';
			detail := SQLERRM;
	END;
	INSERT INTO stress.rescores (client, mode, as_of, outcome, scored, grade_changes,
								 limits_applied, limit_requests, lowered, raised, left_over,
								 stale_grades, detail)
	VALUES (client, mode, d, outcome, scored, changes, applied, requests, lowered, raised,
			left_over, stale, detail);
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, 'rescore', outcome, false, detail);
	RETURN 'rescore ' || d || ': ' || outcome;
END;
$$;

/*
 * Detach the table and attach it again, then undo both: detach must leave
 * no exposure, attach must count the same exposure as the triggers kept.
 * Returns NULL, or what went wrong.
 */
CREATE FUNCTION stress.detach_attach_problem() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	problem	text;
BEGIN
	BEGIN
		CREATE TEMP TABLE exposure_before ON COMMIT DROP AS
		SELECT customer_key, exposure FROM credit.accounts;
		PERFORM credit.detach_orders('sales.orders');
		-- what remains is the receivables ledger's part alone
		SELECT 'exposure other than the ledger''s left after detach: '
			   || string_agg(a.customer_key || ' ' || a.exposure, ', ')
		  INTO problem
		  FROM credit.accounts a
		 WHERE a.exposure <> coalesce((SELECT sum(r.amount - r.allocated) FROM credit.receivables r
										WHERE r.customer_key = a.customer_key), 0)
						   - coalesce((SELECT sum(p.amount - p.allocated) FROM credit.payments p
										WHERE p.customer_key = a.customer_key), 0);
		IF problem IS NULL THEN
			PERFORM credit.attach_orders('sales.orders', customer_column => 'cust_id',
										 amount_column => 'total', status_column => 'state',
										 open_statuses => '{open,confirmed}');
			SELECT 'exposure differs after attaching again: '
				   || string_agg(customer_key || ' ' || b.exposure || ' -> ' || a.exposure, ', ')
			  INTO problem
			  FROM credit.accounts a JOIN exposure_before b USING (customer_key)
			 WHERE a.exposure <> b.exposure;
		END IF;
		RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
	EXCEPTION
		WHEN SQLSTATE 'SR001' THEN
			NULL;
		WHEN OTHERS THEN
			problem := SQLSTATE || ': ' || SQLERRM;
	END;
	RETURN problem;
END;
$$;
