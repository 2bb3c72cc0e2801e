-- test/stress/setup.sql: the application the stress run works on.
--
-- An application-shaped schema (sales.customers, sales.orders, and
-- sales.edi_orders and sales.web_orders attached with the over-limit
-- policies hold and warn), 50 credit accounts with varied limits, an active
-- scorecard that credit.rescore applies while orders run, approval
-- positions, roles and rules for the release of held orders, and the
-- workload functions stress.act(), stress.act_multi(), stress.rescore(),
-- stress.edi_act(), stress.approve_act(), stress.withdraw_act(),
-- stress.web_act(), stress.group_move(), stress.fx_act() and
-- stress.revalue_act() that the pgbench scripts call.
-- Two corporate groups (accounts 60 and 61, three levels deep) share small
-- group limits among their members' orders, which every action places in
-- the same mix as the other customers'; stress.group_move moves members
-- between the groups (credit.move_account) while orders run.
-- Foreign-currency orders: sales.fx_orders is attached with a currency
-- column; the accounts are in CNY, orders in CNY, EUR and USD count at
-- their accounts' currency positions, GBP has no rate (CR008);
-- stress.revalue_act records new rates and runs credit.revalue while
-- orders run, and stress.currency_problems checks positions and
-- revaluation lines against the rates afterwards.
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
 * Customers 60..69 are two corporate groups (credit.accounts.parent_key):
 *   60  group G1, limit 6000          61  group G2, limit 9000
 *   62  under 60, limit 5000          67  under 61, limit 6000
 *   63, 64  under 62, limit 3500      68  under 67, limit 3500
 *   65, 66  under 60, limit 4000      69  under 61, limit 4000
 * The members' own limits add up to far more than their group's, so the
 * group's limit binds (CR001 "credit limit of group ..."); orders go to the
 * groups' own accounts too.  stress.group_move moves 62, 64, 65, 66, 67 and
 * 69 (with what is below them) between 60, 61, 62 and 67, or out of any
 * group, so trees change shape and depth (up to four levels) while orders
 * run.
 */
INSERT INTO sales.customers (id, name)
SELECT g, 'Customer ' || g FROM generate_series(1, 51) g;
INSERT INTO sales.customers (id, name)
SELECT g, 'Group customer ' || g FROM generate_series(60, 69) g;

INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, watch_ratio, owner)
SELECT g::text, 'Customer ' || g,
	   CASE g WHEN 1 THEN 2000 WHEN 2 THEN 3000 WHEN 3 THEN 1000 WHEN 4 THEN 2500
			  WHEN 49 THEN 100
			  ELSE 5000 + ((g * 7919) % 40) * 4875 END,
	   CASE WHEN g <= 2 THEN 0.8 ELSE (ARRAY[0.5, 0.75, 0.9, 0.95, 1.0])[1 + g % 5] END,
	   (ARRAY['alice', 'bob', 'chen', 'dana'])[1 + g % 4]
  FROM generate_series(1, 50) g;
-- parents before their children (an account names its parent at INSERT)
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, watch_ratio, owner,
							 parent_key)
VALUES ('60', 'Group G1', 6000, 0.9, 'alice', NULL),
	   ('61', 'Group G2', 9000, 0.9, 'bob', NULL),
	   ('62', 'G1 subsidiary', 5000, 0.8, 'chen', '60'),
	   ('63', 'G1 branch A', 3500, 0.75, 'dana', '62'),
	   ('64', 'G1 branch B', 3500, 0.75, 'alice', '62'),
	   ('65', 'G1 member', 4000, 0.9, 'bob', '60'),
	   ('66', 'G1 member', 4000, 1.0, 'chen', '60'),
	   ('67', 'G2 subsidiary', 6000, 0.8, 'dana', '61'),
	   ('68', 'G2 branch', 3500, 0.9, 'alice', '67'),
	   ('69', 'G2 member', 4000, 0.5, 'bob', '61');
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
-- the groups' members have orders too: attach rolls them up to the groups
INSERT INTO sales.orders (cust_id, total, state) VALUES
	(63, 400, 'open'), (64, 350.25, 'confirmed'), (65, 500, 'open'), (66, 120, 'closed'),
	(62, 200, 'open'), (60, 300, 'open'), (68, 700, 'open'), (69, 250, 'confirmed'),
	(61, 100, 'cancelled');

SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');

UPDATE credit.accounts SET status = 'none' WHERE customer_key = '49';
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = '50';

/*
 * Two more order tables of the application, for the over-limit policies:
 *   sales.edi_orders   over_limit hold: an order the ledger refuses is
 *                      written credit_hold and an order_release application
 *                      opens; a release writes confirmed (not the first open
 *                      status), a rejection credit_rejected.  Its key is text.
 *   sales.web_orders   over_limit warn: the order passes and is recorded in
 *                      credit.overlimit_warnings.  uuid key, bigint amounts.
 * Both have orders before they are attached (attach counts the open ones).
 */
CREATE SEQUENCE sales.edi_seq;
CREATE TABLE sales.edi_orders (
	order_no text PRIMARY KEY DEFAULT 'E' || lpad(nextval('sales.edi_seq')::text, 8, '0'),
	cust_id	bigint REFERENCES sales.customers,
	total	numeric(12,2) NOT NULL,
	state	text NOT NULL DEFAULT 'open'
			CHECK (state IN ('open', 'confirmed', 'closed', 'cancelled', 'credit_hold',
							 'credit_rejected'))
);
CREATE INDEX edi_orders_held_idx ON sales.edi_orders (order_no) WHERE state = 'credit_hold';
CREATE TABLE sales.web_orders (
	web_id	uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	cust_id	bigint REFERENCES sales.customers,
	total	bigint NOT NULL,
	state	text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'shipped', 'void'))
);
INSERT INTO sales.edi_orders (cust_id, total, state)
SELECT 5 + g % 40, 25 + g * 3, (ARRAY['open', 'confirmed', 'closed'])[1 + g % 3]
  FROM generate_series(1, 30) g;
INSERT INTO sales.web_orders (cust_id, total, state)
SELECT 5 + g % 40, 10 + g, (ARRAY['open', 'shipped', 'void'])[1 + g % 3]
  FROM generate_series(1, 30) g;
SELECT credit.attach_orders('sales.edi_orders', 'cust_id', 'total', 'state', '{open,confirmed}',
							over_limit => 'hold', key_column => 'order_no',
							held_status => 'credit_hold', release_status => 'confirmed',
							rejected_status => 'credit_rejected');
SELECT credit.attach_orders('sales.web_orders', 'cust_id', 'total', 'state', '{open,shipped}',
							over_limit => 'warn', key_column => 'web_id');

/*
 * Orders in foreign currencies (sql/currency.sql): sales.fx_orders is
 * attached with currency_column => 'currency'.  Every account keeps its
 * limit in CNY (the default; a group's members share its currency); an
 * order in EUR or USD counts at the rate of its account's currency
 * position, booked at the business date's rate with the account's first
 * order in that currency.  EUR->CNY and USD->CNY have rates from 30 days
 * ago, valid for a year; GBP has none, so an open GBP order (new, reopened
 * or changed to GBP) is refused with CR008 and changes nothing, while a
 * closed one is stored unconverted.  stress.revalue_act records new rates,
 * each valid from a future date later than every rate date used before,
 * and revalues to that date (see there).  Orders placed before attach,
 * in CNY, EUR and USD, some of group members, make attach book positions.
 */
CREATE TABLE sales.fx_orders (
	id		bigserial PRIMARY KEY,
	cust_id	bigint REFERENCES sales.customers,
	total	numeric(12,2),
	currency char(3) NOT NULL,
	state	text NOT NULL DEFAULT 'open'
			CHECK (state IN ('open', 'confirmed', 'closed', 'cancelled'))
);
CREATE INDEX fx_orders_cust_idx ON sales.fx_orders (cust_id);
INSERT INTO credit.exchange_rates (from_currency, to_currency, valid_from, valid_until, rate, source)
VALUES ('EUR', 'CNY', current_date - 30, current_date + 365, 7.8125, 'stress set-up'),
	   ('USD', 'CNY', current_date - 30, current_date + 365, 7.1234, 'stress set-up');
INSERT INTO sales.fx_orders (cust_id, total, currency, state)
SELECT 5 + g % 16, 20 + (g * 13) % 150, (ARRAY['CNY', 'EUR', 'USD'])[1 + g % 3],
	   (ARRAY['open', 'confirmed', 'closed'])[1 + g % 4 % 3]
  FROM generate_series(1, 30) g;
INSERT INTO sales.fx_orders (cust_id, total, currency, state) VALUES
	(63, 80, 'EUR', 'open'), (68, 45.5, 'USD', 'confirmed'), (65, 60, 'CNY', 'open'),
	(7, 99, 'GBP', 'closed'), (64, 30, 'GBP', 'cancelled');
SELECT credit.attach_orders('sales.fx_orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}', currency_column => 'currency');

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

-- the accounts as they were before the run (exposure: the serving ledger's
-- figure, credit.live_exposure, as everywhere in this file and in
-- test/stress.sh: under the shared-memory ledger the stored column is not
-- written by orders)
CREATE TABLE stress.baseline AS
SELECT customer_key, status, credit.live_exposure(customer_key, exposure) AS exposure, credit_limit
  FROM credit.accounts;

-- invariant samples taken while pgbench runs (test/stress.sh)
CREATE TABLE stress.samples (
	taken_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	reconcile_rows bigint NOT NULL,
	over_limit	bigint NOT NULL,
	negative	bigint NOT NULL,
	independent_diff bigint NOT NULL,
	wrong_status bigint NOT NULL,
	-- stress.hold_problems and stress.approval_problems rows, and the first
	-- few of them (and of credit.reconcile()'s)
	hold_problems bigint NOT NULL DEFAULT 0,
	approval_problems bigint NOT NULL DEFAULT 0,
	-- accounts whose exposure is not their own plus their children's
	-- (stress.rollup_mismatch)
	tree_problems bigint NOT NULL DEFAULT 0,
	problems text
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
-- limit below the exposure already committed), an approved release of a
-- held order left above it (an approved overrun), a warn-table order took
-- above it, credit.move_account took above it (a group receiving a
-- member with its exposure: the move is not checked), or credit.revalue
-- took above it (new rates applied unchecked), with the exposure then; a
-- release or warning records the member's groups too; written
-- while the transaction holds the account row, so id orders the events of
-- one account
CREATE TABLE stress.rescore_over (
	id		bigserial PRIMARY KEY,
	customer_key text NOT NULL,
	exposure numeric NOT NULL,
	effective_limit numeric NOT NULL,
	source	text NOT NULL DEFAULT 'rescore'
			CHECK (source IN ('rescore', 'release', 'warning', 'move', 'revalue'))
);
CREATE INDEX rescore_over_customer_idx ON stress.rescore_over (customer_key, id);

/*
 * Accounts (other than 'none') above their effective limit that nothing
 * recorded explains, group accounts as any other.  In this run an account
 * goes above its limit only when a rescore lowers the limit below the
 * exposure (limit_change and temp_limit_revoke keep the limit in force at
 * or above it), when an approved release of a held order counts past the
 * limit (an approved overrun, on the customer or one of its groups), when
 * a warn-table order passes over it, when credit.move_account brings a
 * member's exposure to a group unchecked, or when credit.revalue applies
 * new exchange rates to open foreign-currency orders (unchecked, as the
 * rates are facts: it reports the lines crossed); each is recorded in
 * stress.rescore_over with the exposure it left.  From then on every checked
 * increase is refused, so an account above its limit must be on hold (or
 * stopped), and its exposure at most what the latest such event left.
 */
CREATE FUNCTION stress.unexplained_over_limit()
RETURNS TABLE (customer_key text, status text, exposure numeric, effective_limit numeric,
			   exposure_at_event numeric, event text)
LANGUAGE sql STABLE AS $$
SELECT a.customer_key, a.status, a.exposure, a.effective_limit, o.exposure, o.source
  FROM (SELECT x.customer_key, x.status, credit.live_exposure(x.customer_key, x.exposure) AS exposure,
			   credit.effective_limit(x) AS effective_limit
		  FROM credit.accounts x) a
  LEFT JOIN LATERAL (SELECT r.exposure, r.source FROM stress.rescore_over r
					  WHERE r.customer_key = a.customer_key
					  ORDER BY r.id DESC LIMIT 1) o ON true
 WHERE a.status <> 'none' AND a.exposure > a.effective_limit
   AND (o.exposure IS NULL OR a.exposure > o.exposure OR a.status NOT IN ('hold', 'stop'));
$$;

-- the status rule of README, for ok/watch/hold accounts (none, stop stay)
CREATE FUNCTION stress.derived_status(exposure numeric, effective_limit numeric,
									  watch_ratio numeric) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN exposure > effective_limit THEN 'hold'
			WHEN exposure > 0 AND exposure >= watch_ratio * effective_limit THEN 'watch'
			ELSE 'ok' END;

-- every account with each of its descendants and itself (depth 0), from
-- parent_key as it stands, computed here independently of the extension
CREATE VIEW stress.tree_closure AS
WITH RECURSIVE c (ancestor, customer_key, depth) AS (
	SELECT a.customer_key, a.customer_key, 0 FROM credit.accounts a
	UNION ALL
	SELECT a.parent_key, c.customer_key, c.depth + 1
	  FROM c JOIN credit.accounts a ON a.customer_key = c.ancestor
	 WHERE a.parent_key IS NOT NULL AND c.depth < 64
)
SELECT ancestor, customer_key, depth FROM c;

-- each customer's own exposure: its open orders (of the four order
-- tables: a held order, credit_hold, is not open and must not count; a
-- foreign-currency order at its currency position's rate, NaN when the
-- position is missing, so that the sum cannot match) plus open receivables
-- minus unallocated payments
CREATE VIEW stress.own_totals AS
SELECT customer_key, sum(total) AS total
  FROM (SELECT cust_id::text AS customer_key, coalesce(total, 0) AS total
		  FROM sales.orders WHERE state IN ('open', 'confirmed')
		UNION ALL
		SELECT o.cust_id::text,
			   coalesce(o.total, 0) * CASE WHEN o.currency = a.currency THEN 1
										   ELSE coalesce(p.rate, 'NaN') END
		  FROM sales.fx_orders o
		  LEFT JOIN credit.accounts a ON a.customer_key = o.cust_id::text
		  LEFT JOIN credit.currency_positions p
			ON p.customer_key = o.cust_id::text AND p.currency = o.currency
		 WHERE o.state IN ('open', 'confirmed')
		UNION ALL
		SELECT cust_id::text, total
		  FROM sales.edi_orders WHERE state IN ('open', 'confirmed')
		UNION ALL
		SELECT cust_id::text, total
		  FROM sales.web_orders WHERE state IN ('open', 'shipped')
		UNION ALL
		SELECT customer_key, amount - allocated FROM credit.receivables
		UNION ALL
		SELECT customer_key, allocated - amount FROM credit.payments) x
 GROUP BY 1;

-- accounts whose exposure differs from the own exposure (stress.own_totals)
-- of the account and all its descendants, computed here independently of
-- credit.reconcile()
CREATE VIEW stress.exposure_mismatch AS
SELECT a.customer_key, a.exposure, coalesce(o.total, 0) AS open_total
  FROM (SELECT x.customer_key, credit.live_exposure(x.customer_key, x.exposure) AS exposure
		  FROM credit.accounts x) a
  LEFT JOIN (SELECT t.ancestor AS customer_key, sum(x.total) AS total
			   FROM stress.tree_closure t JOIN stress.own_totals x USING (customer_key)
			  GROUP BY 1) o
	ON o.customer_key = a.customer_key
 WHERE a.exposure <> coalesce(o.total, 0);

-- accounts whose exposure is not their own (stress.own_totals) plus their
-- direct children's exposure, or whose credit.own_exposure is not their
-- own: the roll-up, one level at a time, on the rows as they stand
CREATE VIEW stress.rollup_mismatch AS
SELECT a.customer_key, a.parent_key, a.exposure, coalesce(x.total, 0) AS own_total,
	   coalesce(ch.exposure, 0) AS children_exposure, oe.own_exposure
  FROM (SELECT y.customer_key, y.parent_key, credit.live_exposure(y.customer_key, y.exposure) AS exposure
		  FROM credit.accounts y) a
  LEFT JOIN stress.own_totals x USING (customer_key)
  LEFT JOIN (SELECT c.parent_key, sum(credit.live_exposure(c.customer_key, c.exposure)) AS exposure
			   FROM credit.accounts c
			  WHERE c.parent_key IS NOT NULL GROUP BY 1) ch ON ch.parent_key = a.customer_key
  LEFT JOIN credit.own_exposure oe ON oe.customer_key = a.customer_key
 WHERE a.exposure <> coalesce(x.total, 0) + coalesce(ch.exposure, 0)
	OR oe.own_exposure IS DISTINCT FROM coalesce(x.total, 0);

-- the accounts above the customer in its tree (nearest first) that are
-- above their effective limit now, with their exposure; the caller records
-- them in stress.rescore_over while its transaction holds their rows
CREATE FUNCTION stress.groups_over(customer text)
RETURNS TABLE (customer_key text, exposure numeric, effective_limit numeric)
LANGUAGE sql STABLE AS $$
SELECT a.customer_key, credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a)
  FROM stress.tree_closure t JOIN credit.accounts a ON a.customer_key = t.ancestor
 WHERE t.customer_key = $1 AND t.depth > 0 AND a.status <> 'none'
   AND credit.live_exposure(a.customer_key, a.exposure) > credit.effective_limit(a)
 ORDER BY t.depth;
$$;

/*
 * Approvals.  Roles (cluster-wide, so created only when missing): two
 * salespeople, stress_sales1 and stress_sales2, who write the hold and warn
 * tables and so request the order releases; two finance reviewers; a sales
 * director; a CFO.  stress_sales2 is a finance reviewer too, so that it
 * sometimes tries to approve its own release (refused, 42501).  All are
 * members of stress_staff, which holds their table privileges; membership
 * of stress_staff makes no one act for another.  stress.staff is this run's
 * own copy of who acts for which position, against which the checks judge
 * every approval independently of credit.acts_for.
 *   positions    finance_review and sales_director, both reporting to cfo
 *   rules        order_release, first match: a stopped account: director,
 *                then CFO; grade D: finance review, then CFO; otherwise by
 *                the part of the order above available credit: up to 500
 *                finance review; to 2000 finance review then the director;
 *                above, finance review, director and CFO
 */
DO $$
DECLARE
	r text;
BEGIN
	IF to_regrole('stress_staff') IS NULL THEN
		CREATE ROLE stress_staff NOLOGIN;
	END IF;
	FOREACH r IN ARRAY ARRAY['stress_sales1', 'stress_sales2', 'stress_fin1', 'stress_fin2',
							 'stress_director', 'stress_cfo'] LOOP
		IF to_regrole(r) IS NULL THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE stress_staff', r);
		END IF;
	END LOOP;
END;
$$;
GRANT USAGE ON SCHEMA credit, sales, stress TO stress_staff;
GRANT credit_risk TO stress_staff;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA credit TO stress_staff;
GRANT SELECT, INSERT, UPDATE, DELETE ON sales.edi_orders, sales.web_orders TO stress_staff;
GRANT USAGE ON SEQUENCE sales.edi_seq TO stress_staff;

CREATE TABLE stress.staff (
	member	name NOT NULL,
	position text NOT NULL,
	PRIMARY KEY (member, position)
);
INSERT INTO stress.staff (member, position) VALUES
	('stress_fin1', 'finance_review'), ('stress_fin2', 'finance_review'),
	('stress_sales2', 'finance_review'), ('stress_director', 'sales_director'),
	('stress_cfo', 'cfo');
INSERT INTO credit.positions (position, description, superior) VALUES
	('cfo', 'Chief financial officer', NULL),
	('sales_director', 'Sales director', 'cfo'),
	('finance_review', 'Credit analyst', 'cfo');
INSERT INTO credit.position_members (position, member)
SELECT position, member FROM stress.staff;
INSERT INTO credit.approval_rules (rule_id, kinds, amount_basis, amount_above, amount_up_to,
								   grades, statuses, priority, description) VALUES
	(10, '{order_release}', 'absolute', NULL, NULL, NULL, '{stop}', 10, 'stopped account'),
	(20, '{order_release}', 'increase', NULL, NULL, '{D}', NULL, 20, 'grade D'),
	(30, '{order_release}', 'increase', NULL, 500, NULL, NULL, 100, 'up to 500 over'),
	(40, '{order_release}', 'increase', 500, 2000, NULL, NULL, 100, 'to 2000 over'),
	(50, '{order_release}', 'increase', 2000, NULL, NULL, NULL, 100, 'above 2000 over');
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline) VALUES
	(10, 1, 'sales_director', '2 days'), (10, 2, 'cfo', '3 days'),
	(20, 1, 'finance_review', '1 day'), (20, 2, 'cfo', '3 days'),
	(30, 1, 'finance_review', '1 day'),
	(40, 1, 'finance_review', '1 day'), (40, 2, 'sales_director', '2 days'),
	(50, 1, 'finance_review', '1 day'), (50, 2, 'sales_director', '2 days'),
	(50, 3, 'cfo', '3 days');

/*
 * What changed a row of sales.edi_orders after it was written, in the order
 * the row's lock gave: the application's updates and deletes (changed), the
 * release of its hold (released) and its rejection or withdrawal (rejected).
 * A released or rejected order's row must show the decision unless the
 * application changed it afterwards.
 */
CREATE TABLE stress.hold_touch (
	id		bigserial PRIMARY KEY,
	order_no text NOT NULL,
	what	text NOT NULL CHECK (what IN ('changed', 'released', 'rejected')),
	hold_id	bigint
);
CREATE INDEX hold_touch_order_idx ON stress.hold_touch (order_no, id);

/*
 * Held orders of sales.edi_orders that disagree with their order row or
 * their application: a held one must have its row in credit_hold with the
 * held customer and amount (what its application asks to release, and
 * what credit.blocked_orders reports) and a draft or pending release
 * application; a released one an approved application and its row
 * confirmed with that amount, a rejected one a rejected or withdrawn
 * application and its row credit_rejected, unless the application changed
 * the row after the decision; a cancelled one (the application moved the
 * order out of credit_hold or deleted it) an application that is not
 * approved (withdrawn with the cancel, or left to its approver, who can
 * only reject it); every row in credit_hold must have its hold, every
 * release application its hold.
 */
CREATE VIEW stress.hold_problems AS
WITH h AS (
	SELECT h.hold_id, h.order_key, h.customer_key, h.amount, h.state, h.overrun,
		   a.application_id, a.state AS app_state, a.kind, a.order_key AS app_key,
		   a.customer_key AS app_customer, a.order_amount,
		   o.order_no, o.cust_id, o.total, o.state AS order_state,
		   d.id AS decided,
		   EXISTS (SELECT 1 FROM stress.hold_touch t
					WHERE t.order_no = h.order_key AND t.what = 'changed'
					  AND t.id > coalesce(d.id, 0)) AS changed_after,
		   EXISTS (SELECT 1 FROM stress.hold_touch t
					WHERE t.order_no = h.order_key AND t.what = 'changed') AS changed_ever
	  FROM credit.held_orders h
	  LEFT JOIN credit.applications a ON a.application_id = h.application_id
	  LEFT JOIN sales.edi_orders o ON o.order_no = h.order_key
	  LEFT JOIN LATERAL (SELECT max(t.id) AS id FROM stress.hold_touch t
						  WHERE t.order_no = h.order_key AND t.hold_id = h.hold_id
							AND t.what IN ('released', 'rejected')) d ON true
	 WHERE h.orders = 'sales.edi_orders'::regclass
)
SELECT hold_id, order_key, problem
  FROM (SELECT h.hold_id, h.order_key,
			   CASE
			   WHEN h.application_id IS NULL OR h.kind <> 'order_release'
					OR h.app_key <> h.order_key OR h.app_customer <> h.customer_key
					OR h.order_amount <> h.amount
			   THEN 'its application is not the release of this order'
			   WHEN h.state = 'held' AND h.app_state NOT IN ('draft', 'pending')
			   THEN 'held, but its application is ' || h.app_state
			   WHEN h.state = 'released' AND h.app_state <> 'approved'
			   THEN 'released, but its application is ' || h.app_state
			   WHEN h.state = 'rejected' AND h.app_state NOT IN ('rejected', 'withdrawn')
			   THEN 'rejected, but its application is ' || h.app_state
			   WHEN h.state = 'cancelled' AND h.app_state = 'approved'
			   THEN 'cancelled, but its application is approved'
			   WHEN h.state = 'cancelled' AND NOT h.changed_ever
			   THEN 'cancelled, but the application never changed the order'
			   WHEN h.state = 'held'
					AND (h.order_no IS NULL OR h.order_state <> 'credit_hold'
						 OR h.total <> h.amount OR h.cust_id::text <> h.customer_key)
			   THEN format('held (%s for customer %s), but the order row is %s', h.amount,
						   h.customer_key, coalesce(format('%s, %s for customer %s', h.order_state,
														   h.total, h.cust_id), 'gone'))
			   WHEN h.state IN ('released', 'rejected') AND h.decided IS NULL
			   THEN h.state || ' outside the approvals of this run'
			   WHEN h.state = 'released'
					AND (h.overrun IS NULL OR h.overrun < 0 OR h.overrun > h.amount)
			   THEN format('released with overrun %s of %s', h.overrun, h.amount)
			   WHEN h.state = 'released' AND NOT h.changed_after
					AND (h.order_no IS NULL OR h.order_state <> 'confirmed'
						 OR h.total <> h.amount OR h.cust_id::text <> h.customer_key)
			   THEN format('released (%s for customer %s), but the order row is %s', h.amount,
						   h.customer_key, coalesce(format('%s, %s for customer %s', h.order_state,
														   h.total, h.cust_id), 'gone'))
			   WHEN h.state = 'rejected' AND NOT h.changed_after
					AND ((h.order_no IS NULL AND NOT h.changed_ever)
						 OR h.order_state <> 'credit_rejected')
			   THEN format('rejected, but the order row is %s',
						   coalesce(h.order_state, 'gone'))
			   END AS problem
		  FROM h) x
 WHERE problem IS NOT NULL
UNION ALL
SELECT NULL, o.order_no, 'order row in credit_hold without a held hold'
  FROM sales.edi_orders o
 WHERE o.state = 'credit_hold'
   AND NOT EXISTS (SELECT 1 FROM credit.held_orders h
					WHERE h.orders = 'sales.edi_orders'::regclass AND h.order_key = o.order_no
					  AND h.state = 'held')
UNION ALL
SELECT NULL, a.order_key, format('%s release application %s has no hold', a.state, a.application_id)
  FROM credit.applications a
 WHERE a.kind = 'order_release'
   AND NOT EXISTS (SELECT 1 FROM credit.held_orders h WHERE h.application_id = a.application_id);

/*
 * Applications whose steps disagree with their state or their rule, or
 * were acted on by the wrong roles.  Step states in step order, one letter
 * each (Waiting, Pending, Approved, Rejected, Skipped), must read: approved
 * A+, pending A*PW*, rejected A*RS*, withdrawn A*S*, draft W*.  A step acted
 * on names its role, which acts (per stress.staff) for the step's position
 * or its escalation target, is not the requester, and acted on no other
 * step of the application.  The chain is the rule's (positions by step, as
 * the rule named them; unescalated steps still there), and the amount
 * routed on is in the rule's range.
 */
CREATE VIEW stress.approval_problems AS
SELECT a.application_id, 'steps ' || coalesce(p.pattern, '(none)') || ' for a ' || a.state
	   || ' application' AS problem
  FROM credit.applications a
  LEFT JOIN LATERAL (SELECT string_agg(upper(left(s.state, 1)), '' ORDER BY s.step_no) AS pattern,
							count(*) AS n, max(s.step_no) AS last
					   FROM credit.application_steps s
					  WHERE s.application_id = a.application_id) p ON true
 WHERE coalesce(p.pattern, '') !~ CASE a.state WHEN 'approved' THEN '^A+$'
											   WHEN 'pending' THEN '^A*PW*$'
											   WHEN 'rejected' THEN '^A*RS*$'
											   WHEN 'withdrawn' THEN '^A*S*$'
											   ELSE '^W*$' END
	OR p.n <> p.last
UNION ALL
SELECT s.application_id, format('step %s %s by %s: %s', s.step_no, s.state,
								coalesce(s.acted_by::text, 'nobody'),
		   CASE WHEN s.acted_by IS NULL THEN 'no role recorded'
				WHEN s.acted_by = a.requester THEN 'the requester'
				WHEN NOT EXISTS (SELECT 1 FROM stress.staff m WHERE m.member = s.acted_by
								   AND m.position IN (s.position, s.escalate_to))
				THEN format('does not act for %s or %s', s.position, s.escalate_to)
				ELSE 'acted on another step too' END)
  FROM credit.application_steps s
  JOIN credit.applications a USING (application_id)
 WHERE s.state IN ('approved', 'rejected')
   AND (s.acted_by IS NULL OR s.acted_by = a.requester
		OR NOT EXISTS (SELECT 1 FROM stress.staff m WHERE m.member = s.acted_by
						 AND m.position IN (s.position, s.escalate_to))
		OR EXISTS (SELECT 1 FROM credit.application_steps e
					WHERE e.application_id = s.application_id AND e.step_no <> s.step_no
					  AND e.acted_by = s.acted_by))
UNION ALL
SELECT a.application_id, format('routed by rule %s on %s, but %s', a.rule_id, a.route_amount,
		   CASE WHEN r.rule_id IS NULL THEN 'no such rule'
				WHEN NOT ((r.amount_above IS NULL OR a.route_amount > r.amount_above)
						  AND (r.amount_up_to IS NULL OR a.route_amount <= r.amount_up_to))
				THEN 'the amount is outside its range'
				ELSE 'the steps are not its chain' END)
  FROM credit.applications a
  LEFT JOIN credit.approval_rules r ON r.rule_id = a.rule_id
 WHERE a.submitted_at IS NOT NULL
   AND (r.rule_id IS NULL
		OR NOT ((r.amount_above IS NULL OR a.route_amount > r.amount_above)
				AND (r.amount_up_to IS NULL OR a.route_amount <= r.amount_up_to))
		OR EXISTS (SELECT s.step_no, s.first_position FROM credit.application_steps s
					WHERE s.application_id = a.application_id
				   EXCEPT
				   SELECT x.step_no, x.position FROM credit.approval_rule_steps x
					WHERE x.rule_id = a.rule_id)
		OR EXISTS (SELECT x.step_no, x.position FROM credit.approval_rule_steps x
					WHERE x.rule_id = a.rule_id
				   EXCEPT
				   SELECT s.step_no, s.first_position FROM credit.application_steps s
					WHERE s.application_id = a.application_id)
		OR EXISTS (SELECT 1 FROM credit.application_steps s
					WHERE s.application_id = a.application_id AND s.escalations = 0
					  AND s.position <> s.first_position));

-- one sample of the invariants, in the caller's (REPEATABLE READ) snapshot
CREATE FUNCTION stress.sample() RETURNS void
LANGUAGE sql AS $$
-- reconcile once: its rows are counted and shown (a second call could differ)
WITH r AS MATERIALIZED (SELECT * FROM credit.reconcile())
INSERT INTO stress.samples (reconcile_rows, over_limit, negative, independent_diff, wrong_status,
							hold_problems, approval_problems, tree_problems, problems)
SELECT (SELECT count(*) FROM r),
	   (SELECT count(*) FROM stress.unexplained_over_limit()),
	   (SELECT count(*) FROM credit.accounts a WHERE credit.live_exposure(a.customer_key, a.exposure) < 0),
	   (SELECT count(*) FROM stress.exposure_mismatch),
	   (SELECT count(*) FROM credit.accounts a
		 WHERE a.status IN ('ok', 'watch', 'hold')
		   AND a.status <> stress.derived_status(credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a),
												 a.watch_ratio)),
	   (SELECT count(*) FROM stress.hold_problems),
	   (SELECT count(*) FROM stress.approval_problems),
	   (SELECT count(*) FROM stress.rollup_mismatch),
	   (SELECT string_agg(p, '; ')
		  FROM ((SELECT format('reconcile %s: %s, computed %s (%s), column %s, rebuilt in this snapshot %s, ledger entry %s, snapshot %s',
							   r.customer_key, r.stored_exposure, r.computed_exposure,
							   credit.ledger_backend(r.customer_key),
							   (SELECT a.exposure FROM credit.accounts a WHERE a.customer_key = r.customer_key),
							   credit.rebuild_exposure(r.customer_key),
							   (SELECT row(l.*)::text FROM credit.shared_ledger() l
								 WHERE l.customer_key = r.customer_key),
							   txid_current_snapshot()) AS p
				   FROM r LIMIT 3)
				UNION ALL
				(SELECT format('hold %s %s: %s', hold_id, order_key, problem) AS p
				   FROM stress.hold_problems LIMIT 3)
				UNION ALL
				(SELECT format('application %s: %s', application_id, problem)
				   FROM stress.approval_problems LIMIT 3)
				UNION ALL
				(SELECT format('exposure %s: %s, open orders %s', customer_key, exposure, open_total)
				   FROM stress.exposure_mismatch LIMIT 3)
				UNION ALL
				(SELECT format('over %s: %s', u.customer_key, u)
				   FROM stress.unexplained_over_limit() u LIMIT 3)) x);
$$;

CREATE FUNCTION stress.pick_customer() RETURNS bigint
LANGUAGE sql VOLATILE
RETURN CASE WHEN random() < 0.40 THEN 1 + floor(random() * 4)::bigint	-- hot
			WHEN random() < 0.02 THEN 51								-- no account
			WHEN random() < 0.25 THEN 60 + floor(random() * 10)::bigint	-- groups (15%)
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
			-- re-evaluates SET on it), rounded up to the cent (an exposure with
			-- foreign-currency orders has fractions of a cent)
			kind := 'limit_change';
			c := stress.pick_customer();
			-- hold the account first (credit.lock_accounts): the shared-memory
			-- ledger then waits for the orders holding reservations on it
			-- (their commits write the row's status before we lock it) and
			-- holds off new ones until this transaction ends, as the row lock
			-- does under the row-locked ledger, so that the exposure read next
			-- stays put
			PERFORM credit.lock_accounts(ARRAY[c::text]);
			UPDATE credit.accounts a
			   SET credit_limit = greatest(round(ceil((credit.live_exposure(a.customer_key, a.exposure)
														 - (credit.effective_limit(a) - a.credit_limit)) * 100) / 100, 2),
										   round(b.credit_limit * (0.5 + random()::numeric), 2))
			  FROM stress.baseline b
			 WHERE a.customer_key = c::text AND b.customer_key = a.customer_key;
		ELSIF r < 0.95 THEN
			kind := 'temp_limit_grant';
			c := stress.pick_customer();
			PERFORM credit.lock_accounts(ARRAY[c::text]);
			-- never lowers the limit in force: only a larger temporary limit
			UPDATE credit.accounts a
			   SET temp_limit = greatest(a.temp_limit, round(b.credit_limit * 0.5 * random()::numeric, 2)),
				   temp_limit_until = coalesce(a.temp_limit_until, now() + interval '1 day')
			  FROM stress.baseline b
			 WHERE a.customer_key = c::text AND b.customer_key = a.customer_key;
		ELSIF r < 0.97 THEN
			-- revoking is only safe while the standing limit covers the exposure
			-- (the account held first, as for limit_change)
			kind := 'temp_limit_revoke';
			c := stress.pick_customer();
			PERFORM credit.lock_accounts(ARRAY[c::text]);
			UPDATE credit.accounts
			   SET temp_limit = 0, temp_limit_from = NULL, temp_limit_until = NULL
			 WHERE customer_key = c::text AND credit.live_exposure(customer_key, exposure) <= credit_limit
			   AND customer_key <> '4';
		ELSIF r < 0.985 THEN
			kind := 'toggle_stop';
			PERFORM credit.lock_accounts(ARRAY['48']);
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
 * A group member's account row is locked with its groups' first
 * (credit.lock_accounts), root first as the ledger does: a limit change locks the member's row alone,
 * and an order after it would then lock the groups after the member,
 * against the ledger's order (a deadlock with a sibling's order).  The
 * table lock the ledger takes (ROW EXCLUSIVE) comes before those row locks,
 * so that a credit.move_account cannot come between them.
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
	IF c >= 60 THEN
		LOCK TABLE credit.accounts IN ROW EXCLUSIVE MODE;
		-- credit.lock_accounts, not FOR NO KEY UPDATE: under the shared-memory
		-- ledger a plain row lock does not hold the account (README)
		PERFORM credit.lock_accounts(ARRAY(
			SELECT t.ancestor FROM stress.tree_closure t
			 WHERE t.customer_key = c::text
			 ORDER BY t.depth DESC));
	END IF;
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
				-- the account held first, as in stress.act
				PERFORM credit.lock_accounts(ARRAY[c::text]);
				UPDATE credit.accounts a
				   SET credit_limit = greatest(round(ceil((credit.live_exposure(a.customer_key, a.exposure)
															 - (credit.effective_limit(a) - a.credit_limit)) * 100) / 100, 2),
											   round(b.credit_limit * (0.5 + random()::numeric), 2))
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
		SELECT a.customer_key, credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a)
		  FROM credit.accounts a
		 WHERE credit.live_exposure(a.customer_key, a.exposure) > credit.effective_limit(a)
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
 * Detach the four order tables and attach them again (the hold and warn
 * tables with their policies, the currency table with its currency column:
 * its positions stay booked, so attach converts at the same rates), then
 * undo it all: detach must leave no exposure but the receivables ledger's
 * (held orders never counted), attach must count the same exposure as the
 * triggers kept, and book no position and rebook none.  Returns NULL, or
 * what went wrong.
 */
CREATE FUNCTION stress.detach_attach_problem() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	problem	text;
BEGIN
	BEGIN
		CREATE TEMP TABLE exposure_before ON COMMIT DROP AS
		SELECT customer_key, credit.live_exposure(customer_key, exposure) AS exposure
		  FROM credit.accounts;
		CREATE TEMP TABLE positions_before ON COMMIT DROP AS
		SELECT * FROM credit.currency_positions;
		PERFORM credit.detach_orders('sales.fx_orders');
		PERFORM credit.detach_orders('sales.orders');
		PERFORM credit.detach_orders('sales.edi_orders');
		PERFORM credit.detach_orders('sales.web_orders');
		-- what remains is the receivables ledger's part alone (a group's:
		-- its own and its descendants')
		WITH ledger AS (
			SELECT t.ancestor AS customer_key, sum(l.total) AS total
			  FROM stress.tree_closure t
			  JOIN (SELECT r.customer_key, r.amount - r.allocated AS total FROM credit.receivables r
					UNION ALL
					SELECT p.customer_key, p.allocated - p.amount FROM credit.payments p) l
				USING (customer_key)
			 GROUP BY 1
		)
		SELECT 'exposure other than the ledger''s left after detach: '
			   || string_agg(a.customer_key || ' ' || credit.live_exposure(a.customer_key, a.exposure), ', ')
		  INTO problem
		  FROM credit.accounts a LEFT JOIN ledger l USING (customer_key)
		 WHERE credit.live_exposure(a.customer_key, a.exposure) <> coalesce(l.total, 0);
		IF problem IS NULL THEN
			PERFORM credit.attach_orders('sales.orders', customer_column => 'cust_id',
										 amount_column => 'total', status_column => 'state',
										 open_statuses => '{open,confirmed}');
			PERFORM credit.attach_orders('sales.edi_orders', 'cust_id', 'total', 'state',
										 '{open,confirmed}', over_limit => 'hold',
										 key_column => 'order_no', held_status => 'credit_hold',
										 release_status => 'confirmed',
										 rejected_status => 'credit_rejected');
			PERFORM credit.attach_orders('sales.web_orders', 'cust_id', 'total', 'state',
										 '{open,shipped}', over_limit => 'warn',
										 key_column => 'web_id');
			PERFORM credit.attach_orders('sales.fx_orders', customer_column => 'cust_id',
										 amount_column => 'total', status_column => 'state',
										 open_statuses => '{open,confirmed}',
										 currency_column => 'currency');
			SELECT 'exposure differs after attaching again: '
				   || string_agg(customer_key || ' ' || b.exposure || ' -> ' || credit.live_exposure(a.customer_key, a.exposure), ', ')
			  INTO problem
			  FROM credit.accounts a JOIN exposure_before b USING (customer_key)
			 WHERE credit.live_exposure(a.customer_key, a.exposure) <> b.exposure;
			IF problem IS NULL THEN
				SELECT 'currency positions differ after attaching again: '
					   || string_agg(format('%s %s %s', coalesce(p.customer_key, b.customer_key),
											coalesce(p.currency, b.currency),
											coalesce(b.rate::text, 'none') || ' -> '
											|| coalesce(p.rate::text, 'none')), ', ')
				  INTO problem
				  FROM credit.currency_positions p
				  FULL JOIN positions_before b USING (customer_key, currency)
				 WHERE p.rate IS DISTINCT FROM b.rate OR p.rate_date IS DISTINCT FROM b.rate_date;
			END IF;
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

/*
 * The over-limit policies and approvals (issue 5).
 *
 * stress.edi_act: one random action on sales.edi_orders (over_limit hold),
 * as one of the salespeople (SET LOCAL ROLE inside the action's
 * subtransaction, so an error or undo also undoes the role): new orders
 * (some fit, some are held: outcome 'held'), increases, decreases, status
 * changes, moves and deletes of orders that are not held, and, about one
 * action in fourteen, a change the application tries on a held order
 * (raise its amount, open it, cancel it, move it, delete it).  A held
 * order's release is the approvers' decision: such a change must not
 * succeed behind their back (the checks hold the held order and its row in
 * step whatever the extension does with it: refuse it, 55000 'refused', or
 * end the hold; a held order being decided at that moment may also answer
 * 'retry', 55P03 or 40001, counted 'busy'; any other error is counted as
 * 'error:SQLSTATE').  The hold table never raises
 * CR001 or CR002 (counted if it does); CR003 (customer 51, no account) is
 * expected.  Every change of an existing row is written to stress.hold_touch.
 */
CREATE FUNCTION stress.pick_edi_amount() RETURNS numeric
LANGUAGE sql VOLATILE
RETURN CASE WHEN random() < 0.02 THEN 0
			ELSE round((random() * random() * 4000)::numeric, 2) END;

-- a random order of sales.edi_orders that is not held (NULL if none)
CREATE FUNCTION stress.pick_edi_order() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	last	bigint;
	r		text;
BEGIN
	SELECT s.last_value INTO last FROM sales.edi_seq s;
	SELECT o.order_no INTO r FROM sales.edi_orders o
	 WHERE o.order_no >= 'E' || lpad((1 + floor(random() * last))::bigint::text, 8, '0')
	   AND o.state <> 'credit_hold'
	 ORDER BY o.order_no LIMIT 1;
	IF r IS NULL THEN
		SELECT o.order_no INTO r FROM sales.edi_orders o
		 WHERE o.state <> 'credit_hold' ORDER BY o.order_no LIMIT 1;
	END IF;
	RETURN r;
END;
$$;

CREATE FUNCTION stress.edi_act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	r		float8 := random();
	undo	boolean := random() < 0.06;
	seller	text := CASE WHEN random() < 0.5 THEN 'stress_sales1' ELSE 'stress_sales2' END;
	kind	text;
	outcome	text := 'ok';
	decrease boolean := false;
	k		text;
	st		text;
	c2		bigint;
	n		bigint := 0;
	detail	text;
BEGIN
	BEGIN
		IF r < 0.40 THEN
			kind := 'edi_insert';
			EXECUTE format('SET LOCAL ROLE %I', seller);
			INSERT INTO sales.edi_orders (cust_id, total, state)
			VALUES (stress.pick_customer(), stress.pick_edi_amount(),
					CASE WHEN random() < 0.8 THEN 'open' ELSE 'confirmed' END)
			RETURNING order_no INTO k;
			RESET ROLE;
		ELSIF r < 0.93 THEN
			k := stress.pick_edi_order();
			IF r < 0.58 THEN
				kind := 'edi_increase';
				EXECUTE format('SET LOCAL ROLE %I', seller);
				UPDATE sales.edi_orders
				   SET total = least(round(total * (1.05 + random()::numeric), 2), 999999)
				 WHERE order_no = k AND state <> 'credit_hold';
			ELSIF r < 0.68 THEN
				kind := 'edi_decrease';
				decrease := true;
				EXECUTE format('SET LOCAL ROLE %I', seller);
				UPDATE sales.edi_orders SET total = round(total * (0.2 + 0.75 * random()::numeric), 2)
				 WHERE order_no = k AND state <> 'credit_hold';
			ELSIF r < 0.80 THEN
				-- confirm, close, cancel, reopen (also a rejected order)
				st := (ARRAY['open', 'confirmed', 'closed', 'cancelled'])[1 + floor(random() * 4)::int];
				kind := 'edi_state_' || st;
				decrease := st IN ('closed', 'cancelled');
				EXECUTE format('SET LOCAL ROLE %I', seller);
				UPDATE sales.edi_orders SET state = st WHERE order_no = k AND state <> 'credit_hold';
			ELSIF r < 0.87 THEN
				kind := 'edi_move';
				c2 := stress.pick_customer();
				EXECUTE format('SET LOCAL ROLE %I', seller);
				UPDATE sales.edi_orders SET cust_id = c2
				 WHERE order_no = k AND state <> 'credit_hold' AND cust_id <> c2;
			ELSE
				kind := 'edi_delete';
				decrease := true;
				EXECUTE format('SET LOCAL ROLE %I', seller);
				DELETE FROM sales.edi_orders WHERE order_no = k AND state <> 'credit_hold';
			END IF;
			GET DIAGNOSTICS n = ROW_COUNT;
			RESET ROLE;
		ELSE
			-- the application changes an order that is held
			SELECT o.order_no INTO k FROM sales.edi_orders o
			 WHERE o.state = 'credit_hold' ORDER BY random() LIMIT 1;
			st := (ARRAY['amount', 'open', 'cancel', 'move', 'delete'])[1 + floor(random() * 5)::int];
			kind := 'edi_held_' || st;
			EXECUTE format('SET LOCAL ROLE %I', seller);
			CASE st
				WHEN 'amount' THEN
					UPDATE sales.edi_orders SET total = least(round(total * 2 + 100, 2), 999999)
					 WHERE order_no = k AND state = 'credit_hold';
				WHEN 'open' THEN
					UPDATE sales.edi_orders SET state = 'open'
					 WHERE order_no = k AND state = 'credit_hold';
				WHEN 'cancel' THEN
					UPDATE sales.edi_orders SET state = 'cancelled'
					 WHERE order_no = k AND state = 'credit_hold';
				WHEN 'move' THEN
					UPDATE sales.edi_orders SET cust_id = 1 + cust_id % 47
					 WHERE order_no = k AND state = 'credit_hold';
				ELSE
					DELETE FROM sales.edi_orders WHERE order_no = k AND state = 'credit_hold';
			END CASE;
			GET DIAGNOSTICS n = ROW_COUNT;
			RESET ROLE;
		END IF;
		IF k IS NULL OR (kind <> 'edi_insert' AND n = 0) THEN
			outcome := 'none';
		ELSE
			IF kind <> 'edi_insert' THEN
				INSERT INTO stress.hold_touch (order_no, what) VALUES (k, 'changed');
			END IF;
			SELECT o.state INTO st FROM sales.edi_orders o WHERE o.order_no = k;
			IF st = 'credit_hold' AND kind NOT LIKE 'edi_held_%' THEN
				outcome := 'held';
			END IF;
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
		WHEN lock_not_available THEN
			-- a held order being decided meanwhile: retry later
			outcome := CASE WHEN kind LIKE 'edi_held_%' THEN 'busy' ELSE 'error:55P03' END;
			detail := SQLERRM;
		WHEN object_not_in_prerequisite_state THEN
			-- (a class: 55000 itself is the refusal)
			outcome := CASE WHEN SQLSTATE = '55000' THEN 'refused' ELSE 'error:' || SQLSTATE END;
			detail := SQLERRM;
		WHEN serialization_failure THEN
			IF mode <> 'rr' AND kind NOT LIKE 'edi_held_%' THEN RAISE; END IF;
			outcome := CASE WHEN mode = 'rr' THEN 'serialization' ELSE 'busy' END;
			detail := SQLERRM;
		WHEN deadlock_detected THEN
			RAISE;
		WHEN OTHERS THEN
			outcome := 'error:' || SQLSTATE;
			detail := SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, kind, outcome, decrease, coalesce(detail, k));
	RETURN kind || ':' || outcome;
END;
$$;

/*
 * The roles that may act now on a step (per stress.staff): members of the
 * step's position or escalation target, not the requester, not a role that
 * acted on the application already.
 */
CREATE FUNCTION stress.entitled(application_id bigint, step_no int) RETURNS name[]
LANGUAGE sql STABLE AS $$
SELECT coalesce(array_agg(DISTINCT m.member ORDER BY m.member), '{}')
  FROM credit.application_steps s
  JOIN credit.applications a ON a.application_id = s.application_id
  JOIN stress.staff m ON m.position IN (s.position, s.escalate_to)
 WHERE s.application_id = $1 AND s.step_no = $2
   AND m.member <> a.requester
   AND NOT EXISTS (SELECT 1 FROM credit.application_steps e
					WHERE e.application_id = s.application_id AND e.acted_by = m.member);
$$;

/*
 * After a decision on a release application, in the deciding transaction:
 * the held order's row must show it (confirmed with the held amount and
 * customer, or credit_rejected; a rejection of a hold the application had
 * cancelled leaves the row as it is), the recorded overrun must be the part of
 * the order above the limit after the release (computed here from the
 * account row, which the release locked), and an account the release left
 * above its limit is recorded in stress.rescore_over.  Returns 'released' or
 * 'rejected', or what disagreed.
 */
CREATE FUNCTION stress.check_decision(application_id bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	a		credit.applications;
	h		credit.held_orders;
	o		sales.edi_orders;
	acct	credit.accounts;
	lim		numeric;
BEGIN
	SELECT * INTO a FROM credit.applications x WHERE x.application_id = $1;
	SELECT * INTO h FROM credit.held_orders x WHERE x.application_id = $1;
	SELECT * INTO o FROM sales.edi_orders x WHERE x.order_no = h.order_key;
	IF a.state = 'approved' THEN
		SELECT * INTO acct FROM credit.accounts x WHERE x.customer_key = h.customer_key;
		acct.exposure := credit.live_exposure(acct.customer_key, acct.exposure);
		lim := credit.effective_limit(acct);
		INSERT INTO stress.hold_touch (order_no, what, hold_id) VALUES (h.order_key, 'released', h.hold_id);
		IF h.amount > 0 AND acct.exposure > lim THEN
			INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
			VALUES (acct.customer_key, acct.exposure, lim, 'release');
		END IF;
		-- the release counted on the customer's groups as well (their rows
		-- are locked by it)
		IF h.amount > 0 THEN
			INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
			SELECT g.customer_key, g.exposure, g.effective_limit, 'release'
			  FROM stress.groups_over(h.customer_key) g;
		END IF;
		IF h.state IS DISTINCT FROM 'released' OR o.state IS DISTINCT FROM 'confirmed'
		   OR o.total IS DISTINCT FROM h.amount OR o.cust_id::text IS DISTINCT FROM h.customer_key THEN
			RETURN format('release_mismatch: hold %s %s of %s for %s; row %s %s for %s',
						  h.hold_id, h.state, h.amount, h.customer_key, o.state, o.total, o.cust_id);
		END IF;
		IF h.overrun IS DISTINCT FROM least(h.amount, greatest(acct.exposure - lim, 0)) THEN
			RETURN format('overrun_mismatch: hold %s overrun %s, exposure %s, limit %s, amount %s',
						  h.hold_id, h.overrun, acct.exposure, lim, h.amount);
		END IF;
		RETURN 'released';
	END IF;
	INSERT INTO stress.hold_touch (order_no, what, hold_id) VALUES (h.order_key, 'rejected', h.hold_id);
	IF h.state = 'cancelled' THEN
		-- the application had moved the order out of its hold: nothing to write
		RETURN 'rejected';
	END IF;
	IF h.state IS DISTINCT FROM 'rejected' OR o.state IS DISTINCT FROM 'credit_rejected' THEN
		RETURN format('reject_mismatch: hold %s %s; row %s', h.hold_id, h.state,
					  coalesce(o.state, 'gone'));
	END IF;
	RETURN 'rejected';
END;
$$;

/*
 * stress.approve_act: an approver acts on a pending step, through
 * credit.approve or credit.reject (one in five), as a role SET LOCAL inside
 * the action's subtransaction.  The step is, half of the time, one of the
 * three oldest pending ones that some role may still act on (so approvers
 * race for it: the loser gets 55000, outcome 'raced'), else any pending
 * one.  The role is, 85% of the
 * time, one stress.entitled names, else any role (42501 expected unless it
 * happens to be entitled: outcome 'refused').  Every outcome is judged
 * independently: a success by a role that may not act is
 * 'wrongly_allowed', a 42501 or 55000 for a role that may act on a step
 * still pending (rechecked under the application's lock) is
 * 'wrongly_refused' or 'error:55000' (but 'refused_not_held' when the hold
 * was cancelled or its order's row no longer has the held status, amount
 * and customer: the README says such a release fails, and a decision racing
 * the application's change may fail too); a final decision is checked by
 * stress.check_decision.  One call in thirty-three runs
 * credit.escalate_overdue as of a day from now (steps of one day's
 * deadline then pending move to the CFO).  About 5% are undone.  A 55P03
 * (the held order being changed meanwhile) is 'busy'.
 */
CREATE FUNCTION stress.approve_act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t		record;
	cands	name[];
	roles	name[] := ARRAY['stress_sales1', 'stress_sales2', 'stress_fin1', 'stress_fin2',
							'stress_director', 'stress_cfo'];
	who		name;
	kind	text := CASE WHEN random() < 0.8 THEN 'approve' ELSE 'reject' END;
	undo	boolean := random() < 0.05;
	res		credit.applications;
	outcome	text := 'ok';
	detail	text;
	n		bigint;
BEGIN
	IF random() < 0.03 THEN
		kind := 'escalate';
		BEGIN
			SELECT count(*) INTO n
			  FROM credit.escalate_overdue(now() + interval '1 day');
			outcome := CASE WHEN n > 0 THEN 'ok' ELSE 'none' END;
			detail := n || ' steps';
		EXCEPTION
			WHEN deadlock_detected THEN
				RAISE;
			WHEN OTHERS THEN
				outcome := 'error:' || SQLSTATE;
				detail := SQLERRM;
		END;
		INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
		VALUES (client, mode, kind, outcome, false, detail);
		RETURN kind || ':' || outcome;
	END IF;
	IF random() < 0.5 THEN
		SELECT a.application_id, a.requester, s.step_no INTO t
		  FROM credit.applications a
		  JOIN credit.application_steps s
			ON s.application_id = a.application_id AND s.state = 'pending'
		 WHERE a.state = 'pending'
		   AND cardinality(stress.entitled(a.application_id, s.step_no)) > 0
		 ORDER BY a.application_id OFFSET floor(random() * 3)::int LIMIT 1;
	ELSE
		SELECT a.application_id, a.requester, s.step_no INTO t
		  FROM credit.applications a
		  JOIN credit.application_steps s
			ON s.application_id = a.application_id AND s.state = 'pending'
		 WHERE a.state = 'pending'
		 ORDER BY random() LIMIT 1;
	END IF;
	IF t.application_id IS NULL THEN
		INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease)
		VALUES (client, mode, kind, 'none', false);
		RETURN kind || ':none';
	END IF;
	cands := stress.entitled(t.application_id, t.step_no);
	IF random() < 0.85 AND cardinality(cands) > 0 THEN
		who := cands[1 + floor(random() * cardinality(cands))::int];
	ELSE
		who := roles[1 + floor(random() * cardinality(roles))::int];
	END IF;
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', who);
		IF kind = 'approve' THEN
			res := credit.approve(t.application_id, 'stress: approved by ' || who, t.step_no);
		ELSE
			res := credit.reject(t.application_id, 'stress: rejected by ' || who, t.step_no);
		END IF;
		RESET ROLE;
		-- this transaction holds the application: was the role entitled?
		IF NOT EXISTS (SELECT 1 FROM credit.application_steps s
						 JOIN stress.staff m ON m.position IN (s.position, s.escalate_to)
						WHERE s.application_id = t.application_id AND s.step_no = t.step_no
						  AND s.acted_by = who AND m.member = who)
		   OR who = t.requester
		   OR EXISTS (SELECT 1 FROM credit.application_steps e
					   WHERE e.application_id = t.application_id AND e.step_no <> t.step_no
						 AND e.acted_by = who) THEN
			outcome := 'wrongly_allowed';
			detail := format('%s on step %s of application %s', who, t.step_no, t.application_id);
		ELSIF res.state IN ('approved', 'rejected') THEN
			outcome := stress.check_decision(t.application_id);
		ELSIF res.state = 'pending' AND kind = 'approve' THEN
			outcome := 'step_approved';
		ELSE
			outcome := 'wrong_state';
			detail := format('application %s is %s after %s', t.application_id, res.state, kind);
		END IF;
		IF undo THEN
			RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'SR001' THEN
			outcome := 'undone';
		WHEN lock_not_available THEN
			-- the held order being changed meanwhile: retry later
			outcome := 'busy';
			detail := SQLERRM;
		WHEN insufficient_privilege OR object_not_in_prerequisite_state THEN
			detail := SQLSTATE || ': ' || SQLERRM;
			-- recheck under the application's lock
			PERFORM 1 FROM credit.applications a WHERE a.application_id = t.application_id FOR UPDATE;
			IF NOT EXISTS (SELECT 1 FROM credit.applications a
							 JOIN credit.application_steps s
							   ON s.application_id = a.application_id AND s.step_no = t.step_no
							WHERE a.application_id = t.application_id AND a.state = 'pending'
							  AND s.state = 'pending') THEN
				outcome := 'raced';
			ELSIF SQLSTATE = '55000'
				  AND NOT EXISTS (SELECT 1 FROM credit.held_orders h
									JOIN sales.edi_orders o ON o.order_no = h.order_key
								   WHERE h.application_id = t.application_id AND h.state = 'held'
									 AND o.state = 'credit_hold' AND o.total = h.amount
									 AND o.cust_id::text = h.customer_key) THEN
				-- README: an order no longer held as it was is not released
				outcome := 'refused_not_held';
			ELSIF SQLSTATE <> '42501' THEN
				outcome := 'error:' || SQLSTATE;
			ELSIF who = ANY (stress.entitled(t.application_id, t.step_no)) THEN
				outcome := 'wrongly_refused';
			ELSE
				outcome := 'refused';
			END IF;
		WHEN deadlock_detected THEN
			RAISE;
		WHEN OTHERS THEN
			outcome := 'error:' || SQLSTATE;
			detail := SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, kind, outcome, false, detail);
	RETURN kind || ':' || outcome;
END;
$$;

/*
 * stress.withdraw_act: the requester withdraws a pending release
 * application (one time in ten the other salesperson tries: 42501).  The
 * held order must end credit_rejected (stress.check_decision).  A 55000
 * while the application is still pending is 'refused_not_held' if the
 * application changed the held order meanwhile, else 'wrongly_refused'.
 */
CREATE FUNCTION stress.withdraw_act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t		record;
	who		name;
	res		credit.applications;
	outcome	text;
	detail	text;
BEGIN
	SELECT a.application_id, a.requester INTO t
	  FROM credit.applications a
	 WHERE a.state IN ('draft', 'pending') AND a.kind = 'order_release'
	 ORDER BY random() LIMIT 1;
	IF t.application_id IS NULL THEN
		INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease)
		VALUES (client, mode, 'withdraw', 'none', false);
		RETURN 'withdraw:none';
	END IF;
	who := CASE WHEN random() < 0.9 THEN t.requester
				WHEN t.requester = 'stress_sales1' THEN 'stress_sales2' ELSE 'stress_sales1' END;
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', who);
		res := credit.withdraw(t.application_id, 'stress: withdrawn by ' || who);
		RESET ROLE;
		IF who <> t.requester THEN
			outcome := 'wrongly_allowed';
			detail := format('%s withdrew application %s of %s', who, t.application_id, t.requester);
		ELSIF res.state <> 'withdrawn' THEN
			outcome := 'wrong_state';
			detail := format('application %s is %s after withdraw', t.application_id, res.state);
		ELSE
			outcome := stress.check_decision(t.application_id);
			IF outcome = 'rejected' THEN
				outcome := 'withdrawn';
			END IF;
		END IF;
	EXCEPTION
		WHEN lock_not_available THEN
			outcome := 'busy';
			detail := SQLERRM;
		WHEN insufficient_privilege OR object_not_in_prerequisite_state THEN
			detail := SQLSTATE || ': ' || SQLERRM;
			PERFORM 1 FROM credit.applications a WHERE a.application_id = t.application_id FOR UPDATE;
			IF NOT EXISTS (SELECT 1 FROM credit.applications a
							WHERE a.application_id = t.application_id
							  AND a.state IN ('draft', 'pending')) THEN
				outcome := 'raced';
			ELSIF SQLSTATE = '55000'
				  AND NOT EXISTS (SELECT 1 FROM credit.held_orders h
									JOIN sales.edi_orders o ON o.order_no = h.order_key
								   WHERE h.application_id = t.application_id AND h.state = 'held'
									 AND o.state = 'credit_hold' AND o.total = h.amount
									 AND o.cust_id::text = h.customer_key) THEN
				-- the application changed the order meanwhile
				outcome := 'refused_not_held';
			ELSIF SQLSTATE <> '42501' OR who = t.requester THEN
				outcome := 'wrongly_refused';
			ELSE
				outcome := 'refused';
			END IF;
		WHEN deadlock_detected THEN
			RAISE;
		WHEN OTHERS THEN
			outcome := 'error:' || SQLSTATE;
			detail := SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, 'withdraw', outcome, false, detail);
	RETURN 'withdraw:' || outcome;
END;
$$;

/*
 * stress.web_act: sales.web_orders (over_limit warn), as a salesperson:
 * new orders, increases, and voiding (a decrease).  An order over the limit
 * passes and is recorded in credit.overlimit_warnings: outcome 'warned',
 * after checking, under the account row's lock this transaction holds,
 * that the warning records the exposure it left and the limit in force,
 * with CR001 only above that limit; the account is then recorded in
 * stress.rescore_over when above its limit.  A CR001 of a group ("credit
 * limit of group "G" exceeded": the warning records the member's own
 * figures) must name one of the customer's groups, and that group must now
 * be above its limit; the customer's groups above their limits are
 * recorded as well.  The warn table never raises CR001 or CR002.
 */
CREATE FUNCTION stress.web_act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	r		float8 := random();
	undo	boolean := random() < 0.06;
	seller	text := CASE WHEN random() < 0.5 THEN 'stress_sales1' ELSE 'stress_sales2' END;
	kind	text;
	outcome	text := 'ok';
	decrease boolean := false;
	k		uuid;
	before	bigint;
	w		credit.overlimit_warnings;
	acct	credit.accounts;
	lim		numeric;
	grp		text;
	grp_over boolean;
	detail	text;
BEGIN
	SELECT coalesce(max(x.warning_id), 0) INTO before FROM credit.overlimit_warnings x;
	BEGIN
		IF r < 0.6 THEN
			kind := 'web_insert';
			EXECUTE format('SET LOCAL ROLE %I', seller);
			INSERT INTO sales.web_orders (cust_id, total)
			VALUES (stress.pick_customer(), floor(random() * random() * 2500)::bigint)
			RETURNING web_id INTO k;
			RESET ROLE;
		ELSE
			SELECT o.web_id INTO k FROM sales.web_orders o
			 WHERE o.web_id >= gen_random_uuid() AND o.state <> 'void'
			 ORDER BY o.web_id LIMIT 1;
			EXECUTE format('SET LOCAL ROLE %I', seller);
			IF r < 0.8 THEN
				kind := 'web_increase';
				UPDATE sales.web_orders SET total = least(total * 2 + 10, 999999) WHERE web_id = k;
			ELSE
				kind := 'web_void';
				decrease := true;
				UPDATE sales.web_orders SET state = 'void' WHERE web_id = k;
			END IF;
			RESET ROLE;
			IF k IS NULL THEN
				outcome := 'none';
			END IF;
		END IF;
		-- a warning this transaction wrote (another one's on the same order
		-- may have committed meanwhile: not ours)
		SELECT * INTO w FROM credit.overlimit_warnings x
		 WHERE x.warning_id > before AND x.orders = 'sales.web_orders'::regclass
		   AND x.order_key = k::text AND x.warned_at = now()
		 ORDER BY x.warning_id DESC LIMIT 1;
		IF FOUND THEN
			SELECT * INTO acct FROM credit.accounts a WHERE a.customer_key = w.customer_key;
			acct.exposure := credit.live_exposure(acct.customer_key, acct.exposure);
			lim := credit.effective_limit(acct);
			grp := substring(w.refusal_message FROM '^credit limit of group "([^"]*)" exceeded');
			IF grp IS NOT NULL THEN
				SELECT credit.live_exposure(a.customer_key, a.exposure) > credit.effective_limit(a) INTO grp_over
				  FROM stress.tree_closure t JOIN credit.accounts a ON a.customer_key = t.ancestor
				 WHERE t.customer_key = w.customer_key AND t.depth > 0 AND t.ancestor = grp;
			END IF;
			IF w.exposure_after <> acct.exposure OR w.effective_limit <> lim
			   OR w.changed_by <> seller OR w.refusal_code NOT IN ('CR001', 'CR002')
			   OR (w.refusal_code = 'CR001' AND grp IS NULL AND w.exposure_after <= w.effective_limit)
			   OR (w.refusal_code = 'CR001' AND grp IS NOT NULL AND grp_over IS NOT TRUE) THEN
				outcome := 'warning_mismatch';
				detail := format('warning %s: %s, exposure %s (account %s), limit %s (%s), by %s; group %s over: %s',
								 w.warning_id, w.refusal_code, w.exposure_after, acct.exposure,
								 w.effective_limit, lim, w.changed_by, grp, grp_over);
			ELSE
				outcome := 'warned';
			END IF;
			IF w.amount > 0 AND acct.exposure > lim THEN
				INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
				VALUES (acct.customer_key, acct.exposure, lim, 'warning');
			END IF;
			IF w.amount > 0 THEN
				INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
				SELECT g.customer_key, g.exposure, g.effective_limit, 'warning'
				  FROM stress.groups_over(w.customer_key) g;
			END IF;
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
		WHEN deadlock_detected THEN
			RAISE;
		WHEN OTHERS THEN
			outcome := 'error:' || SQLSTATE;
			detail := SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, kind, outcome, decrease, detail);
	RETURN kind || ':' || outcome;
END;
$$;

/*
 * Group moves.  Every change of an account's parent (only credit.move_account
 * may make one; its UPDATE of the row goes through the executor, so this
 * trigger sees it) is recorded in stress.moves, with the exposure the
 * account had: exactly one row per committed move.
 */
CREATE TABLE stress.moves (
	id		bigserial PRIMARY KEY,
	customer_key text NOT NULL,
	old_parent text,
	new_parent text,
	exposure numeric NOT NULL,
	xid		bigint NOT NULL DEFAULT txid_current()
);

CREATE FUNCTION stress.record_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO stress.moves (customer_key, old_parent, new_parent, exposure)
	VALUES (NEW.customer_key, OLD.parent_key, NEW.parent_key,
			credit.live_exposure(NEW.customer_key, NEW.exposure));
	RETURN NULL;
END;
$$;

CREATE TRIGGER stress_record_move AFTER UPDATE OF parent_key ON credit.accounts
	FOR EACH ROW WHEN (OLD.parent_key IS DISTINCT FROM NEW.parent_key)
	EXECUTE FUNCTION stress.record_move();

/*
 * stress.group_move: credit.move_account of 62, 64, 65, 66, 67 or 69 (with
 * what is below it) under 60, 61, 62 or 67, or (one in ten) out of any
 * group, the only statement of its transaction.  mode single or rollback
 * (READ COMMITTED; rollback: the caller rolls back) or rr (REPEATABLE READ:
 * the move refuses with 25000 (class 25), outcome 'refused_rr').  A move that would
 * make a cycle (62 under 67 while 67 is under 62, or the reverse, or, one
 * in seven on purpose, an account under one of its children) is refused
 * with 23514: outcome 'cycle'.  A move to the parent the account already
 * has changes nothing: 'same'.  After a move, under the lock it holds, the
 * account must be under the new parent, and each new ancestor (not one of
 * the old parent's chain: those got the exposure back) that the move left
 * above its limit is recorded in stress.rescore_over (source 'move').  A
 * deadlock is not caught (see stress.act).  About 5% are undone.
 */
CREATE FUNCTION stress.group_move(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	movable	text[] := ARRAY['62', '64', '65', '66', '67', '69'];
	parents	text[] := ARRAY['60', '61', '62', '67'];
	c		text := movable[1 + floor(random() * 6)::int];
	p		text;
	undo	boolean := random() < 0.05;
	outcome	text := 'ok';
	detail	text;
	m		stress.moves;
	now_parent text;
	n		bigint;
BEGIN
	IF random() >= 0.1 THEN
		p := parents[1 + floor(random() * 4)::int];
		IF p = c THEN
			p := CASE WHEN random() < 0.5 THEN '60' ELSE '61' END;
		END IF;
		/* one in seven tries to move the account under one of its own children: a cycle */
		IF random() < 0.15 THEN
			SELECT COALESCE(min(x.customer_key), p) INTO p FROM credit.accounts x WHERE x.parent_key = c;
		END IF;
	END IF;
	BEGIN
		PERFORM credit.move_account(c, p);
		SELECT * INTO m FROM stress.moves x
		 WHERE x.xid = txid_current() ORDER BY x.id DESC LIMIT 1;
		SELECT a.parent_key INTO now_parent FROM credit.accounts a WHERE a.customer_key = c;
		IF now_parent IS DISTINCT FROM p THEN
			outcome := 'wrong_parent';
			detail := format('%s moved under %s is under %s', c, p, now_parent);
		ELSIF m.id IS NULL THEN
			outcome := 'same';
		ELSE
			detail := format('%s (exposure %s) from %s to %s', c, m.exposure,
							 coalesce(m.old_parent, 'no group'), coalesce(p, 'no group'));
			IF m.exposure > 0 THEN
				INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
				SELECT g.customer_key, g.exposure, g.effective_limit, 'move'
				  FROM stress.groups_over(c) g
				 WHERE g.customer_key NOT IN (SELECT t.ancestor FROM stress.tree_closure t
											   WHERE t.customer_key = m.old_parent);
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n > 0 THEN
					outcome := 'ok_over';
				END IF;
			END IF;
		END IF;
		IF undo THEN
			RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'SR001' THEN
			outcome := 'undone';
		WHEN check_violation THEN
			outcome := CASE WHEN SQLERRM LIKE '%would make a cycle%' THEN 'cycle'
							ELSE 'error:23514' END;
			detail := SQLERRM;
		WHEN invalid_transaction_state THEN
			-- (a class: README's 25000)
			IF mode <> 'rr' THEN RAISE; END IF;
			outcome := 'refused_rr';
			detail := SQLSTATE || ': ' || SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, 'group_move', outcome, false, detail);
	RETURN 'group_move:' || outcome;
END;
$$;

/*
 * Audit chains that are not contiguous or whose head disagrees (checked
 * here independently of credit.verify_audit), and recorded actions missing
 * from the trail: every step acted on (by its role, in its state), every
 * application's state, every hold's state.
 */
CREATE VIEW stress.audit_problems AS
WITH chains AS (
	SELECT l.chain, count(*) AS n, min(l.chain_seq) AS first, max(l.chain_seq) AS last
	  FROM credit.audit_log l GROUP BY l.chain
)
SELECT coalesce(c.chain, hd.chain) AS chain,
	   format('%s rows numbered %s to %s; head at %s', c.n, c.first, c.last, hd.last_seq) AS problem
  FROM chains c
  FULL JOIN credit.audit_heads hd ON hd.chain = c.chain
 WHERE c.chain IS NULL OR hd.chain IS NULL OR c.first <> 1 OR c.n <> c.last
	OR hd.last_seq <> c.last
	OR hd.last_hash IS DISTINCT FROM (SELECT l.hash FROM credit.audit_log l
									   WHERE l.chain = c.chain AND l.chain_seq = c.last)
UNION ALL
SELECT 'application:' || s.application_id,
	   format('step %s %s by %s is not in the trail', s.step_no, s.state, s.acted_by)
  FROM credit.application_steps s
 WHERE s.acted_by IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM credit.audit_log l
					WHERE l.chain = 'application:' || s.application_id
					  AND l.table_name = 'application_steps' AND l.operation = 'UPDATE'
					  AND l.after ->> 'step_no' = s.step_no::text
					  AND l.after ->> 'state' = s.state AND l.acting_role = s.acted_by)
UNION ALL
SELECT 'application:' || a.application_id,
	   format('application %s (%s) is not in the trail', a.state, a.kind)
  FROM credit.applications a
 WHERE NOT EXISTS (SELECT 1 FROM credit.audit_log l
					WHERE l.chain = 'application:' || a.application_id
					  AND l.table_name = 'applications'
					  AND l.after ->> 'state' = a.state)
UNION ALL
SELECT 'account:' || h.customer_key, format('hold %s (%s) is not in the trail', h.hold_id, h.state)
  FROM credit.held_orders h
 WHERE NOT EXISTS (SELECT 1 FROM credit.audit_log l
					WHERE l.chain = 'account:' || h.customer_key
					  AND l.table_name = 'held_orders'
					  AND l.after ->> 'hold_id' = h.hold_id::text
					  AND l.after ->> 'state' = h.state);

/*
 * Foreign-currency orders (sql/currency.sql).
 *
 * stress.fx_act: one random action on sales.fx_orders, the only statement
 * of the caller's transaction, in the modes of stress.act (single, rr:
 * 40001 caught and counted 'serialization', rollback: the caller rolls
 * back).  New orders in CNY (the accounts' currency), EUR, USD and GBP
 * (no rate), increases, decreases, currency changes, state changes, moves
 * to another customer, deletes and bulk closes of one customer's orders.
 * Refusals (CR001, CR002, CR003 and CR008, no rate: an open GBP order) are
 * caught and counted as in stress.act; a deadlock is not caught (see
 * stress.act).  An action on an existing order locks its row first
 * (outside the refused part), so that after a CR008 the row is still as it
 * was: it must be, and no GBP position may exist (outcome 'cr008_changed'
 * otherwise).  About 6% of the actions are undone (SR001).
 */
CREATE FUNCTION stress.pick_currency() RETURNS text
LANGUAGE sql VOLATILE
RETURN CASE WHEN random() < 0.07 THEN 'GBP'
			ELSE (ARRAY['CNY', 'EUR', 'EUR', 'USD', 'USD'])[1 + floor(random() * 5)::int] END;

-- a random existing fx order id (NULL when the table is empty)
CREATE FUNCTION stress.pick_fx_order() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	last	bigint;
	r		bigint;
BEGIN
	SELECT s.last_value INTO last FROM sales.fx_orders_id_seq s;
	SELECT o.id INTO r FROM sales.fx_orders o
	 WHERE o.id >= 1 + floor(random() * last)::bigint ORDER BY o.id LIMIT 1;
	IF r IS NULL THEN
		SELECT o.id INTO r FROM sales.fx_orders o ORDER BY o.id LIMIT 1;
	END IF;
	RETURN r;
END;
$$;

CREATE FUNCTION stress.fx_act(client int, mode text) RETURNS text
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
	cur		text;
	st		text;
	n		bigint;
	detail	text;
	row_before sales.fx_orders;
	row_after sales.fx_orders;
	no_rate	boolean := false;
BEGIN
	BEGIN
		IF r < 0.30 THEN
			kind := 'fx_insert';
			cur := stress.pick_currency();
			BEGIN
				INSERT INTO sales.fx_orders (cust_id, total, currency, state)
				VALUES (stress.pick_customer(), stress.pick_amount(), cur,
						CASE WHEN random() < 0.85 THEN 'open' ELSE stress.pick_state() END);
			EXCEPTION WHEN SQLSTATE 'CR008' THEN
				no_rate := true;
				detail := SQLERRM;
			END;
		ELSIF r < 0.90 THEN
			o := stress.pick_fx_order();
			st := stress.pick_state();
			kind := CASE WHEN r < 0.40 THEN 'fx_increase' WHEN r < 0.48 THEN 'fx_decrease'
						 WHEN r < 0.62 THEN 'fx_currency'
						 WHEN r < 0.72 THEN CASE WHEN st = 'closed' AND random() < 0.5 THEN 'fx_close'
												 ELSE 'fx_state_' || st END
						 WHEN r < 0.82 THEN 'fx_move' ELSE 'fx_delete' END;
			-- the row as it is, locked: after a CR008 it must still be so
			SELECT * INTO row_before FROM sales.fx_orders WHERE id = o FOR UPDATE;
			BEGIN
				IF r < 0.40 THEN
					UPDATE sales.fx_orders
					   SET total = least(round(total * (1.05 + random()::numeric), 2), 999999)
					 WHERE id = o;
				ELSIF r < 0.48 THEN
					decrease := true;
					UPDATE sales.fx_orders SET total = round(total * (0.2 + 0.75 * random()::numeric), 2)
					 WHERE id = o;
				ELSIF r < 0.62 THEN
					-- to another currency: released at the old position's rate,
					-- counted at the new one's (CR008 to GBP when open)
					cur := stress.pick_currency();
					UPDATE sales.fx_orders SET currency = cur WHERE id = o AND currency <> cur;
				ELSIF r < 0.72 THEN
					-- any state to any state (reopening a GBP order: CR008)
					decrease := st IN ('closed', 'cancelled');
					UPDATE sales.fx_orders SET state = st WHERE id = o;
				ELSIF r < 0.82 THEN
					-- to another customer, who may need a position booked
					c2 := stress.pick_customer();
					UPDATE sales.fx_orders SET cust_id = c2 WHERE id = o AND cust_id <> c2;
				ELSE
					decrease := true;
					DELETE FROM sales.fx_orders WHERE id = o;
				END IF;
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n = 0 THEN outcome := 'none'; END IF;
			EXCEPTION WHEN SQLSTATE 'CR008' THEN
				no_rate := true;
				detail := SQLERRM;
			END;
			IF no_rate THEN
				SELECT * INTO row_after FROM sales.fx_orders WHERE id = o;
				IF row_after IS DISTINCT FROM row_before THEN
					no_rate := false;
					outcome := 'cr008_changed';
					detail := format('%s: %s became %s', detail, row_before, row_after);
				END IF;
			END IF;
		ELSE
			-- close a customer's open orders, several rows in id order
			kind := 'fx_bulk_close';
			decrease := true;
			c := stress.pick_customer();
			UPDATE sales.fx_orders SET state = 'closed'
			 WHERE id IN (SELECT id FROM sales.fx_orders WHERE cust_id = c
							AND state IN ('open', 'confirmed')
						   ORDER BY id LIMIT 4 FOR UPDATE);
			GET DIAGNOSTICS n = ROW_COUNT;
			IF n = 0 THEN outcome := 'none'; END IF;
		END IF;
		IF no_rate THEN
			-- refused for want of a rate: no GBP position may have been booked
			outcome := CASE WHEN EXISTS (SELECT 1 FROM credit.currency_positions p
										  WHERE p.currency = 'GBP')
							THEN 'cr008_changed' ELSE 'CR008' END;
		END IF;
		IF undo AND outcome NOT IN ('CR008', 'cr008_changed') THEN
			RAISE EXCEPTION 'undo' USING ERRCODE = 'SR001';
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'SR001' THEN
			outcome := 'undone';
		WHEN SQLSTATE 'CR001' OR SQLSTATE 'CR002' OR SQLSTATE 'CR003' THEN
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
 * stress.revalue_act: a treasurer records a new rate and revalues, the only
 * statement of the caller's transaction.  mode single or rollback (READ
 * COMMITTED; rollback: the caller rolls back) or rr (REPEATABLE READ:
 * credit.revalue refuses with 25000, outcome 'refused_rr').
 *
 * The new rate is for EUR or USD, within 15% of the pair's set-up rate
 * (so that rates move both ways without drifting off), valid from as_of,
 * one to three days after the latest revaluation's as_of (the first: a
 * week after the business date), usually open-ended but about one in seven
 * valid for one day only; then credit.revalue(as_of).  When a
 * currency's latest rate has expired by as_of, revalue refuses with CR008
 * and nothing changes (the new rate row goes with it): outcome 'CR008'.
 * revalue_acts take turns (an advisory lock, before the latest as_of is
 * read), so every rate row is inserted valid from a date later than every
 * rate date a position was ever booked or revalued at: no rate a position
 * was booked at is ever replaced in credit.exchange_rates afterwards, and
 * every position's rate must equal credit.rate_on(currency, its account's
 * currency, its rate_date) at the end (test/stress.sh).  Without the turns
 * a later as_of could be revalued first and an earlier-dated rate row
 * committed after it, which credit.rate_on would then return for that later
 * date: legitimate (editing rates changes no exposure), but the check would
 * not be exact.
 *
 * Under the SHARE locks revalue holds until commit (no fx order is written
 * meanwhile) the revaluation's lines are checked against the open amounts
 * computed here, and the accounts it reports against the account rows
 * (whose locks it holds): 'line_mismatch' or 'report_mismatch' otherwise.
 * Accounts it left above their limit are recorded in stress.rescore_over
 * (source 'revalue').  A deadlock is not caught (see stress.act): revalue
 * takes its table locks (credit.attachments, sales.fx_orders,
 * credit.currency_positions) before any account row, and no transaction
 * holding an account row waits for one of those (an fx statement holds
 * sales.fx_orders' ROW EXCLUSIVE from its start, before it books a position
 * or locks an account; nothing else writes them during the run).
 */
CREATE TYPE stress.revalued AS (customer_key text, exposure_before numeric,
								 exposure_after numeric, change numeric, effective_limit numeric,
								 watch_line numeric, crossed_watch text, crossed_limit text);

CREATE FUNCTION stress.revalue_act(client int, mode text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	cur		text := CASE WHEN random() < 0.5 THEN 'EUR' ELSE 'USD' END;
	d		date;
	rid		bigint;
	outcome	text := 'ok';
	detail	text;
	n		bigint;
	n_over	bigint;
	reported stress.revalued[];
BEGIN
	BEGIN
		IF mode = 'rr' THEN
			PERFORM credit.revalue(credit.business_date() + 7);
			outcome := 'allowed_rr';
		ELSE
			PERFORM pg_advisory_xact_lock(hashtext('stress.revalue_act'));
			SELECT coalesce(max(v.as_of), credit.business_date() + 6) + 1 + floor(random() * 3)::int
			  INTO d FROM credit.revaluations v;
			INSERT INTO credit.exchange_rates (from_currency, to_currency, valid_from, valid_until,
											   rate, source)
			SELECT cur, 'CNY', d, CASE WHEN random() < 0.15 THEN d + 1 END,
				   round(x.rate * (0.85 + 0.3 * random()::numeric), 4), 'stress.revalue_act'
			  FROM credit.exchange_rates x
			 WHERE x.from_currency = cur AND x.to_currency = 'CNY' AND x.source = 'stress set-up';
			SELECT array_agg(r::stress.revalued) INTO reported FROM credit.revalue(d) r;
			SELECT max(v.revaluation_id) INTO rid FROM credit.revaluations v WHERE v.as_of = d;
			-- the lines: one per position, the open amounts as they stand (nothing
			-- writes sales.fx_orders while revalue's lock is held)
			SELECT count(*), min(format('%s %s: line %s/%s/%s, open %s', coalesce(l.customer_key, p.customer_key),
										coalesce(l.currency, p.currency), l.open_amount, l.old_rate,
										l.new_rate, coalesce(o.amount, 0)))
			  INTO n, detail
			  FROM (SELECT * FROM credit.revaluation_lines WHERE revaluation_id = rid) l
			  FULL JOIN credit.currency_positions p USING (customer_key, currency)
			  LEFT JOIN (SELECT f.cust_id::text AS customer_key, f.currency::text AS currency,
								sum(coalesce(f.total, 0)) AS amount
						   FROM sales.fx_orders f WHERE f.state IN ('open', 'confirmed')
						  GROUP BY 1, 2) o USING (customer_key, currency)
			 WHERE l.customer_key IS NULL OR p.customer_key IS NULL
				OR l.open_amount <> coalesce(o.amount, 0) OR p.rate <> l.new_rate
				OR p.rate_date <> d;
			IF n > 0 THEN
				outcome := 'line_mismatch';
				detail := n || ' lines, e.g. ' || detail;
			ELSE
				-- what it reported: the account rows now, the lines crossed
				SELECT count(*), min(format('%s: reported %s -> %s (%s), limit %s, crossed %s/%s; now %s, limit %s',
											r.customer_key, r.exposure_before, r.exposure_after, r.change,
											r.effective_limit, r.crossed_watch, r.crossed_limit,
											credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a)))
				  INTO n, detail
				  FROM unnest(reported) r LEFT JOIN credit.accounts a USING (customer_key)
				 WHERE credit.live_exposure(a.customer_key, a.exposure) IS DISTINCT FROM r.exposure_after
					OR r.change <> r.exposure_after - r.exposure_before
					OR r.effective_limit <> credit.effective_limit(a)
					OR r.crossed_limit IS DISTINCT FROM
					   CASE WHEN r.exposure_after > r.effective_limit
								 AND NOT r.exposure_before > r.effective_limit THEN 'over'
							WHEN r.exposure_before > r.effective_limit
								 AND NOT r.exposure_after > r.effective_limit THEN 'under' END;
				IF n > 0 THEN
					outcome := 'report_mismatch';
					detail := n || ' accounts, e.g. ' || detail;
				ELSE
					n := coalesce(cardinality(reported), 0);
					INSERT INTO stress.rescore_over (customer_key, exposure, effective_limit, source)
					SELECT a.customer_key, credit.live_exposure(a.customer_key, a.exposure), credit.effective_limit(a), 'revalue'
					  FROM credit.accounts a
					 WHERE a.customer_key IN (SELECT r.customer_key FROM unnest(reported) r)
					   AND a.status <> 'none' AND credit.live_exposure(a.customer_key, a.exposure) > credit.effective_limit(a);
					GET DIAGNOSTICS n_over = ROW_COUNT;
					detail := format('%s %s %s: %s accounts changed, %s above their limit',
									 d, cur, (SELECT rate FROM credit.exchange_rates
											   WHERE from_currency = cur AND to_currency = 'CNY'
												 AND valid_from = d), n, n_over);
					IF n_over > 0 THEN
						outcome := 'ok_over';
					END IF;
				END IF;
			END IF;
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'CR008' THEN
			outcome := 'CR008';
			detail := SQLERRM;
		WHEN invalid_transaction_state THEN
			-- (a class: README's 25000)
			IF mode <> 'rr' THEN RAISE; END IF;
			outcome := 'refused_rr';
			detail := SQLSTATE || ': ' || SQLERRM;
	END;
	INSERT INTO stress.events (client, mode, kind, outcome, pure_decrease, detail)
	VALUES (client, mode, 'revalue', outcome, false, detail);
	RETURN 'revalue:' || outcome;
END;
$$;

/*
 * Currency positions and revaluation lines that disagree with the rates
 * (checked by test/stress.sh after the run).  what 'position': a position
 * whose rate is not credit.rate_on(currency, account currency, rate_date),
 * or whose account currency is not its account's.  This is exact because
 * every rate row recorded during the run is valid from a date later than
 * every rate date used before it (stress.revalue_act): the rate a position
 * was booked or revalued at is still the one credit.rate_on gives for its
 * date.  what 'line': a revaluation line whose change is not open_amount x
 * (new_rate - old_rate), whose new rate is not the rate on the
 * revaluation's as_of, or that breaks the position's chain: its first line
 * starts from the booking rate (the business date's rate: no rate row is
 * valid from before the business date + 7), each line starts where the
 * previous one (of the revaluation just before) ended, and the last is the
 * latest revaluation's and ends at the position's rate and rate date; a
 * position without lines was booked after the latest revaluation, at the
 * booking rate on a date no later than the business date; every
 * revaluation has lines (positions exist from set-up on).
 */
CREATE VIEW stress.currency_problems AS
WITH l AS (
	SELECT l.*, v.as_of,
		   lag(l.new_rate) OVER w AS prev_new,
		   lag(l.revaluation_id) OVER w AS prev_id,
		   (SELECT max(x.revaluation_id) FROM credit.revaluations x
			 WHERE x.revaluation_id < l.revaluation_id) AS id_before,
		   lead(l.revaluation_id) OVER w IS NULL AS last
	  FROM credit.revaluation_lines l JOIN credit.revaluations v USING (revaluation_id)
	WINDOW w AS (PARTITION BY l.customer_key, l.currency ORDER BY l.revaluation_id)
)
SELECT 'position' AS what, p.customer_key, p.currency,
	   format('rate %s on %s, account currency %s; rate_on gives %s, the account is in %s',
			  p.rate, p.rate_date, p.account_currency,
			  credit.rate_on(p.currency, p.account_currency, p.rate_date), a.currency) AS problem
  FROM credit.currency_positions p LEFT JOIN credit.accounts a USING (customer_key)
 WHERE p.rate IS DISTINCT FROM credit.rate_on(p.currency, p.account_currency, p.rate_date)
	OR p.account_currency IS DISTINCT FROM a.currency
UNION ALL
SELECT 'line', l.customer_key, l.currency,
	   format('revaluation %s as of %s (previous line: %s, revaluation %s): open %s, %s -> %s, change %s; rate_on gives %s, booking rate %s; the position is at %s on %s',
			  l.revaluation_id, l.as_of, l.prev_new, l.prev_id, l.open_amount, l.old_rate,
			  l.new_rate, l.change, credit.rate_on(l.currency, p.account_currency, l.as_of),
			  credit.rate_on(l.currency, p.account_currency, credit.business_date()),
			  p.rate, p.rate_date)
  FROM l LEFT JOIN credit.currency_positions p USING (customer_key, currency)
 WHERE l.change <> l.open_amount * (l.new_rate - l.old_rate)
	OR l.new_rate IS DISTINCT FROM credit.rate_on(l.currency, p.account_currency, l.as_of)
	OR l.old_rate IS DISTINCT FROM
	   coalesce(l.prev_new, credit.rate_on(l.currency, p.account_currency, credit.business_date()))
	OR l.prev_id IS DISTINCT FROM CASE WHEN l.prev_id IS NOT NULL THEN l.id_before END
	OR (l.last AND (l.revaluation_id <> (SELECT max(revaluation_id) FROM credit.revaluations)
					OR p.rate IS DISTINCT FROM l.new_rate OR p.rate_date IS DISTINCT FROM l.as_of))
UNION ALL
SELECT 'line', p.customer_key, p.currency,
	   format('no revaluation line; rate %s on %s, booking rate %s', p.rate, p.rate_date,
			  credit.rate_on(p.currency, p.account_currency, credit.business_date()))
  FROM credit.currency_positions p
 WHERE NOT EXISTS (SELECT 1 FROM credit.revaluation_lines l
					WHERE l.customer_key = p.customer_key AND l.currency = p.currency)
   AND (p.rate IS DISTINCT FROM credit.rate_on(p.currency, p.account_currency, credit.business_date())
		OR p.rate_date > credit.business_date())
UNION ALL
SELECT 'line', NULL, NULL, format('revaluation %s as of %s has no lines', v.revaluation_id, v.as_of)
  FROM credit.revaluations v
 WHERE NOT EXISTS (SELECT 1 FROM credit.revaluation_lines l WHERE l.revaluation_id = v.revaluation_id);
