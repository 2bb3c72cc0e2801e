/*
 * holds.sql: pgTAP suite for the over-limit policies of attach_orders
 * (reject, hold, warn), held orders and their release, rejection and
 * withdrawal.
 *
 * Every refusal of attach_orders' over_limit arguments with its SQLSTATE
 * and message and nothing attached afterwards; reject stays the default;
 * hold: an over-limit INSERT, an UPDATE raising an open order, a stopped
 * account and a multi-row INSERT are held (not counted, recorded as
 * blocked, a routed release application opened, or a draft and an
 * 'unrouted' notice when no rule matches), all by a role with no privilege
 * on schema credit, whose name the audit rows carry; release by a two-step
 * approval counts the order past the limit with its exact overrun; reject
 * and withdraw write the rejected status; an order changed by the
 * application while held is not released (55000); held_order_update's
 * refusals; warn records the order with the exposure it left; reconcile
 * and verify_audit find nothing at the end.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(94);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.triggers(t regclass) RETURNS text[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(tgname::text ORDER BY tgname), '{}')
	  FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal $$;
CREATE FUNCTION pg_temp.attached(t regclass) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM credit.attachments WHERE orders = t) $$;

/* roles exist only inside this transaction */
CREATE ROLE holds_clerk;		-- writes orders; no privilege on schema credit
CREATE ROLE holds_finance;		-- position finance
CREATE ROLE holds_director;		-- position director

CREATE SCHEMA shop;
CREATE TYPE shop.order_state AS ENUM ('draft', 'open', 'held', 'cancelled');
CREATE TABLE shop.orders (
	id		int PRIMARY KEY,
	cust	bigint,
	amount	numeric,
	state	text NOT NULL DEFAULT 'open',
	alt_no	int,				-- no index
	pair_no	int,				-- only in a two-column unique index
	part_no	int,				-- only in a partial unique index
	st		shop.order_state,
	ist		int,
	UNIQUE (pair_no, id)
);
CREATE UNIQUE INDEX orders_part_no ON shop.orders (part_no) WHERE part_no > 0;

/* the release application of a held order of shop.orders (its latest hold) */
CREATE FUNCTION pg_temp.app(order_key text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT application_id FROM credit.held_orders
	 WHERE orders::text = 'shop.orders' AND held_orders.order_key = app.order_key
	 ORDER BY hold_id DESC LIMIT 1 $$;
CREATE FUNCTION pg_temp.order_state(order_id int) RETURNS text
LANGUAGE sql AS $$ SELECT state FROM shop.orders WHERE id = order_id $$;
GRANT USAGE ON SCHEMA shop TO holds_clerk;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.orders TO holds_clerk;

/* approvers act through the approval functions, which run as the caller */
GRANT USAGE ON SCHEMA credit TO holds_finance, holds_director;
GRANT credit_risk TO holds_finance, holds_director;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA credit TO holds_finance, holds_director;

INSERT INTO credit.accounts (customer_key, credit_limit)
VALUES ('1', 1000), ('2', 1000), ('3', 1000), ('4', 1000), ('5', 100);

INSERT INTO credit.positions (position, superior)
VALUES ('cfo', NULL), ('finance', 'cfo'), ('director', 'cfo');
INSERT INTO credit.position_members VALUES ('finance', 'holds_finance'), ('director', 'holds_director');
/* releases up to 10,000: finance, then the director; nothing routes above */
INSERT INTO credit.approval_rules (rule_id, kinds, amount_up_to)
VALUES (1, '{order_release}', 10000);
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
VALUES (1, 1, 'finance', '1 day'), (1, 2, 'director', '2 days');

/* ---------------------------------------------------------------------
 * attach_orders: refusals of the over-limit arguments
 * ------------------------------------------------------------------- */

SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'block')$$,
				 '22023', 'over_limit must be reject, hold or warn, not block',
				 'an unknown over_limit policy: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => NULL)$$,
				 '22023', 'over_limit must be reject, hold or warn, not NULL',
				 'a NULL over_limit policy: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', held_status => 'h',
												rejected_status => 'c')$$,
				 '22023', 'over_limit hold needs key_column: the column that identifies an order',
				 'hold without key_column: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', over_limit => 'warn')$$,
				 '22023', 'over_limit warn needs key_column: the column that identifies an order',
				 'warn without key_column: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', key_column => 'id',
												rejected_status => 'c')$$,
				 '22023', 'over_limit hold needs status_column, held_status and rejected_status',
				 'hold without held_status: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'h')$$,
				 '22023', 'over_limit hold needs status_column, held_status and rejected_status',
				 'hold without rejected_status: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount',
												over_limit => 'hold', key_column => 'id',
												held_status => 'h', rejected_status => 'c')$$,
				 '22023', 'over_limit hold needs status_column, held_status and rejected_status',
				 'hold without a status column: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'confirmed', rejected_status => 'c')$$,
				 '22023', 'held_status and rejected_status must not be open statuses',
				 'a held status that is an open status: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'h', rejected_status => 'open')$$,
				 '22023', 'held_status and rejected_status must not be open statuses',
				 'a rejected status that is an open status: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'h', release_status => 'shipped',
												rejected_status => 'c')$$,
				 '22023', 'release_status "shipped" must be one of the open statuses',
				 'a release status that is not open: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', key_column => 'alt_no',
												held_status => 'h', rejected_status => 'c')$$,
				 '42P10', 'key column "alt_no" of "shop.orders" is not unique',
				 'a key column without an index: 42P10');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', key_column => 'pair_no',
												held_status => 'h', rejected_status => 'c')$$,
				 '42P10', 'key column "pair_no" of "shop.orders" is not unique',
				 'a key column unique only together with another column: 42P10');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}',
												over_limit => 'hold', key_column => 'part_no',
												held_status => 'h', rejected_status => 'c')$$,
				 '42P10', 'key column "part_no" of "shop.orders" is not unique',
				 'a key column unique only in a partial index: 42P10');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount',
												over_limit => 'warn', key_column => 'alt_no')$$,
				 '42P10', 'key column "alt_no" of "shop.orders" is not unique',
				 'warn needs a unique key column too: 42P10');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount',
												over_limit => 'warn', key_column => 'nope')$$,
				 '42703', 'column "nope" of relation "shop.orders" does not exist',
				 'a key column that does not exist: 42703');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'st', '{open}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'frozen', rejected_status => 'cancelled')$$,
				 '22P02', 'invalid input value for enum shop.order_state: "frozen"',
				 'a held status that is not a value of the enum: 22P02');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'st', '{open}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'held', rejected_status => 'void')$$,
				 '22P02', 'invalid input value for enum shop.order_state: "void"',
				 'a rejected status that is not a value of the enum: 22P02');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'ist', '{1,2}',
												over_limit => 'hold', key_column => 'id',
												held_status => 'x', rejected_status => '9')$$,
				 '22P02', 'invalid input syntax for type integer: "x"',
				 'a held status that is not an integer, on an integer status column: 22P02');
/* only order tables may hold or warn (the ledger's internal attach) */
SELECT throws_ok($$SELECT credit.attach_table('shop.orders', 'cust', 'amount', 'state', '{open}',
											   'receivables', false, NULL, 'hold', 'id', 'h', 'open', 'c')$$,
				 '23514', 'new row for relation "attachments" violates check constraint "attachments_over_limit_check"',
				 'a receivables table cannot hold: 23514');
SELECT throws_ok($$SELECT credit.attach_table('shop.orders', 'cust', 'amount', NULL, NULL,
											   'payments', false, NULL, 'warn', 'id')$$,
				 '23514', 'new row for relation "attachments" violates check constraint "attachments_over_limit_check"',
				 'a payments table cannot warn: 23514');

SELECT is(pg_temp.attached('shop.orders'), false, 'after the refusals the table is not attached');
SELECT is(pg_temp.triggers('shop.orders'), '{}'::text[], 'and carries no trigger');

/* ---------------------------------------------------------------------
 * reject stays the default
 * ------------------------------------------------------------------- */

SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}');
SELECT is((SELECT over_limit FROM credit.attachments WHERE orders = 'shop.orders'::regclass),
		  'reject', 'attach_orders without over_limit rejects');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (900, 1, 1000.01)$$,
				 'CR001', 'credit limit of customer "1" exceeded',
				 'an over-limit order on a reject table fails with CR001');
SELECT is((SELECT count(*) FROM credit.held_orders) + (SELECT count(*) FROM credit.applications),
		  0::bigint, 'and nothing is held, no application opened');
SELECT credit.detach_orders('shop.orders');

/* ---------------------------------------------------------------------
 * hold
 * ------------------------------------------------------------------- */

SELECT lives_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}',
											   over_limit => 'hold', key_column => 'id',
											   held_status => 'credit_hold',
											   rejected_status => 'cancelled')$$,
				'attach with over_limit hold');
SELECT is((SELECT release_status FROM credit.attachments WHERE orders = 'shop.orders'::regclass),
		  'open', 'release_status defaults to the first open status');

SELECT is(has_schema_privilege('holds_clerk', 'credit', 'USAGE'), false,
		  'the clerk has no privilege on schema credit');

/* an over-limit INSERT, by a role with no privilege on schema credit */
SET ROLE holds_clerk;
INSERT INTO shop.orders (id, cust, amount) VALUES (1, 1, 600);
INSERT INTO shop.orders (id, cust, amount) VALUES (2, 1, 500);
RESET ROLE;

SELECT results_eq($$SELECT id, state FROM shop.orders ORDER BY id$$,
				  $$VALUES (1, 'open'), (2, 'credit_hold')$$,
				  'the order that fits is open, the one over the limit is written held');
SELECT is(pg_temp.exposure('1'), 600::numeric, 'the held order is not exposure');
SELECT results_eq($$SELECT order_key, customer_key COLLATE "default", amount, refusal_code, refusal_message,
						   state, changed_by
					  FROM credit.held_orders WHERE order_key = '2'$$,
				  $$VALUES ('2', '1', 500::numeric, 'CR001', 'credit limit of customer "1" exceeded',
							'held', 'holds_clerk')$$,
				  'credit.held_orders records the hold, its refusal and the clerk');
SELECT results_eq($$SELECT customer_key COLLATE "default", held_orders, blocked_amount FROM credit.blocked_orders$$,
				  $$VALUES ('1', 1::bigint, 500::numeric)$$,
				  'credit.blocked_orders counts it as blocked');
SELECT results_eq($$SELECT kind, customer_key COLLATE "default", order_table, order_key, order_amount, requester,
						   state, rule_id, route_amount
					  FROM credit.applications WHERE application_id = pg_temp.app('2')$$,
				  $$VALUES ('order_release', '1', 'shop.orders'::regclass, '2', 500::numeric,
							'holds_clerk'::name, 'pending', 1, 500::numeric)$$,
				  'a pending order_release application is opened in the clerk''s name, routed by rule 1');
SELECT results_eq($$SELECT step_no, position, state FROM credit.application_steps
					 WHERE application_id = pg_temp.app('2') ORDER BY step_no$$,
				  $$VALUES (1, 'finance', 'pending'), (2, 'director', 'waiting')$$,
				  'its chain: finance pending, then the director');
SELECT results_eq($$SELECT event, recipient, cc FROM credit.approval_notices
					 WHERE application_id = pg_temp.app('2') ORDER BY notice_id$$,
				  $$VALUES ('assigned', 'finance', false), ('assigned', 'holds_clerk', true)$$,
				  'finance is notified, the clerk gets a copy');
SELECT is((SELECT array_agg(DISTINCT acting_role::text) FROM credit.audit_log
			WHERE chain = 'application:' || pg_temp.app('2')),
		  ARRAY['holds_clerk'], 'the audit rows of the application name the clerk');
SELECT results_eq($$SELECT session_role, acting_role, operation FROM credit.audit_log
					 WHERE table_name = 'held_orders' AND chain = 'account:1'$$,
				  $$VALUES (session_user::name, 'holds_clerk'::name, 'INSERT')$$,
				  'the audit row of the hold names the clerk (and the session role)');

/* an UPDATE that raises an open order over the limit holds the whole order */
SET ROLE holds_clerk;
INSERT INTO shop.orders (id, cust, amount) VALUES (3, 1, 300);
UPDATE shop.orders SET amount = 450 WHERE id = 3;
RESET ROLE;
SELECT is(pg_temp.order_state(3), 'credit_hold', 'an open order raised over the limit is held');
SELECT is(pg_temp.exposure('1'), 600::numeric, 'and its old amount is released');
SELECT results_eq($$SELECT amount, refusal_code, state FROM credit.held_orders WHERE order_key = '3'$$,
				  $$VALUES (450::numeric, 'CR001', 'held')$$,
				  'the whole new amount is blocked');
SELECT results_eq($$SELECT customer_key COLLATE "default", held_orders, blocked_amount FROM credit.blocked_orders$$,
				  $$VALUES ('1', 2::bigint, 950::numeric)$$,
				  'blocked: both held orders of customer 1');

/* a stopped account (CR002) holds too */
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = '2';
SET ROLE holds_clerk;
INSERT INTO shop.orders (id, cust, amount) VALUES (4, 2, 10);
RESET ROLE;
SELECT is(pg_temp.order_state(4), 'credit_hold', 'an order of a stopped account is held');
SELECT results_eq($$SELECT refusal_code, refusal_message FROM credit.held_orders WHERE order_key = '4'$$,
				  $$VALUES ('CR002', 'credit account of customer "2" is stopped')$$,
				  'with the CR002 refusal');
SELECT is(pg_temp.exposure('2'), 0::numeric, 'and is not exposure');

/* a multi-row INSERT: the rows that fit are open, the one that does not is held */
SET ROLE holds_clerk;
INSERT INTO shop.orders (id, cust, amount) VALUES (10, 3, 400), (11, 3, 400), (12, 3, 400), (13, 3, 100);
RESET ROLE;
SELECT results_eq($$SELECT id, state FROM shop.orders WHERE cust = 3 ORDER BY id$$,
				  $$VALUES (10, 'open'), (11, 'open'), (12, 'credit_hold'), (13, 'open')$$,
				  'multi-row INSERT: the third row is held, the fourth still fits');
SELECT is(pg_temp.exposure('3'), 900::numeric, 'exposure counts the three open rows');
SELECT results_eq($$SELECT order_key, amount FROM credit.held_orders WHERE customer_key = '3'$$,
				  $$VALUES ('12', 400::numeric)$$, 'only the third row is recorded as held');
SELECT is((SELECT state FROM credit.applications WHERE application_id = pg_temp.app('12')), 'pending',
		  'its release application is pending');

/* no rule matches: a draft and an 'unrouted' notice */
SET ROLE holds_clerk;
INSERT INTO shop.orders (id, cust, amount) VALUES (20, 4, 20000);
RESET ROLE;
SELECT is(pg_temp.order_state(20), 'credit_hold', 'an order no rule could route is held');
SELECT results_eq($$SELECT state, rule_id, route_amount, requester FROM credit.applications
					 WHERE application_id = pg_temp.app('20')$$,
				  $$VALUES ('draft', NULL::int, NULL::numeric, 'holds_clerk'::name)$$,
				  'its release application stays a draft');
SELECT is((SELECT count(*) FROM credit.application_steps WHERE application_id = pg_temp.app('20')),
		  0::bigint, 'without steps');
SELECT results_eq($$SELECT event, recipient, cc, message FROM credit.approval_notices
					 WHERE application_id = pg_temp.app('20')$$,
				  $$VALUES ('unrouted', 'holds_clerk', true,
							'order "20" of customer "4" is held; no approval rule matches its release')$$,
				  'an unrouted notice goes to the clerk');

/* an enum status column: the held status is written as the enum value */
CREATE TABLE shop.enum_orders (id int PRIMARY KEY, cust bigint, amount numeric, st shop.order_state);
SELECT credit.attach_orders('shop.enum_orders', 'cust', 'amount', 'st', '{open}',
							over_limit => 'hold', key_column => 'id',
							held_status => 'held', rejected_status => 'cancelled');
INSERT INTO shop.enum_orders VALUES (1, 5, 150, 'open');
SELECT is((SELECT st FROM shop.enum_orders WHERE id = 1), 'held'::shop.order_state,
		  'an enum status column gets the held value');
SELECT is(pg_temp.exposure('5'), 0::numeric, 'and the held order is not exposure');

/* ---------------------------------------------------------------------
 * release by approval: an approved overrun
 * ------------------------------------------------------------------- */

SET ROLE holds_finance;
SELECT is((SELECT state FROM credit.approve(pg_temp.app('2'), 'good payer')), 'pending',
		  'finance approves step 1: still pending');
RESET ROLE;
SELECT is(pg_temp.order_state(2), 'credit_hold', 'after the first step the order is still held');
SET ROLE holds_director;
SELECT is((SELECT state FROM credit.approve(pg_temp.app('2'), 'approved for the peak')), 'approved',
		  'the director approves step 2: approved');
RESET ROLE;
SELECT is(pg_temp.order_state(2), 'open', 'the released order gets the release status');
SELECT is(pg_temp.exposure('1'), 1100::numeric, 'its amount counts as exposure past the limit of 1000');
SELECT is(pg_temp.status('1'), 'hold', 'the account is over its limit');
SELECT results_eq($$SELECT state, overrun, changed_by, decided_at IS NOT NULL FROM credit.held_orders
					 WHERE order_key = '2'$$,
				  $$VALUES ('released', 100::numeric, 'holds_director', true)$$,
				  'the hold is released with the exact overrun: 100 above the limit');
SELECT results_eq($$SELECT customer_key COLLATE "default", held_orders, blocked_amount FROM credit.blocked_orders
					 WHERE customer_key = '1'$$,
				  $$VALUES ('1', 1::bigint, 450::numeric)$$,
				  'the released order is no longer blocked');

/* the overrun is not a higher limit: the next order is held */
INSERT INTO shop.orders (id, cust, amount) VALUES (5, 1, 1);
SELECT is(pg_temp.order_state(5), 'credit_hold', 'after the overrun the next order is held');

/* ---------------------------------------------------------------------
 * reject and withdraw
 * ------------------------------------------------------------------- */

SET ROLE holds_finance;
SELECT is((SELECT state FROM credit.reject(pg_temp.app('3'), 'too much')), 'rejected',
		  'finance rejects the release of order 3');
RESET ROLE;
SELECT is(pg_temp.order_state(3), 'cancelled', 'the rejected order gets the rejected status');
SELECT results_eq($$SELECT state, overrun, changed_by FROM credit.held_orders WHERE order_key = '3'$$,
				  $$VALUES ('rejected', NULL::numeric, 'holds_finance')$$,
				  'the hold is recorded as rejected');
SELECT is(pg_temp.exposure('1'), 1100::numeric, 'rejecting changes no exposure');

/* the requester's side (a superuser acts for every role) withdraws */
SELECT is((SELECT state FROM credit.withdraw(pg_temp.app('4'), 'customer cancelled')), 'withdrawn',
		  'the release of order 4 is withdrawn');
SELECT is(pg_temp.order_state(4), 'cancelled', 'the withdrawn order gets the rejected status');
SELECT is((SELECT state FROM credit.held_orders WHERE order_key = '4'), 'rejected',
		  'the hold is recorded as rejected');
SELECT is(pg_temp.exposure('2'), 0::numeric, 'withdrawing changes no exposure');

/* ---------------------------------------------------------------------
 * held_order_update refusals
 * ------------------------------------------------------------------- */

SELECT throws_ok(format('SELECT credit.held_order_update(%s, %L)', pg_temp.app('12'), 'release'),
				 '55000', format('application %s has no held order to release', pg_temp.app('12')),
				 'held_order_update will not release for a pending application: 55000');
SELECT throws_ok(format('SELECT credit.held_order_update(%s, %L)', pg_temp.app('12'), 'reject'),
				 '55000', format('application %s has no held order to reject', pg_temp.app('12')),
				 'held_order_update will not reject for a pending application: 55000');
SELECT throws_ok(format('SELECT credit.held_order_update(%s, %L)', pg_temp.app('2'), 'release'),
				 '55000', format('application %s has no held order to release', pg_temp.app('2')),
				 'nor release an order already released: 55000');
SELECT throws_ok(format('SELECT credit.held_order_update(%s, %L)', pg_temp.app('3'), 'release'),
				 '55000', format('application %s has no held order to release', pg_temp.app('3')),
				 'nor release for a rejected application: 55000');
SELECT throws_ok(format('SELECT credit.held_order_update(%s, %L)', pg_temp.app('12'), 'approve'),
				 '22023', 'decision must be release or reject, not "approve"',
				 'a decision other than release or reject: 22023');
SELECT is(pg_temp.order_state(12), 'credit_hold', 'the refused calls left the order held');

/* ---------------------------------------------------------------------
 * releasing an order the application changed meanwhile
 * ------------------------------------------------------------------- */

/*
 * order 5: the application cancels it itself while it is held: the hold
 * ends (cancelled) and its release application is withdrawn
 */
UPDATE shop.orders SET state = 'void' WHERE id = 5;
SELECT is((SELECT state FROM credit.held_orders WHERE order_key = '5'), 'cancelled',
		  'an order the application moves out of its held status is no longer held (cancelled)');
SELECT is((SELECT state FROM credit.applications WHERE application_id = pg_temp.app('5')), 'withdrawn',
		  'and its release application is withdrawn');
SET ROLE holds_finance;
SELECT throws_ok(format('SELECT credit.approve(%s)', pg_temp.app('5')),
				 '55000', format('application %s is withdrawn, not pending', pg_temp.app('5')),
				 'approving the release of a cancelled hold: 55000');
RESET ROLE;
SELECT is(pg_temp.order_state(5), 'void', 'and the order keeps the application''s status');

/* order 12: the application cannot change a held order's amount or customer */
SELECT throws_ok($$UPDATE shop.orders SET amount = 4000 WHERE id = 12$$,
				 '55000', 'order "12" of "orders" is held for credit approval',
				 'raising the amount of a held order: 55000');
SELECT throws_ok($$UPDATE shop.orders SET cust = '4' WHERE id = 12$$,
				 '55000', 'order "12" of "orders" is held for credit approval',
				 'moving a held order to another customer: 55000');
SET ROLE holds_finance;
SELECT lives_ok(format('SELECT credit.approve(%s)', pg_temp.app('12')), 'finance approves order 12''s release (400)');
RESET ROLE;
SET ROLE holds_director;
SELECT lives_ok(format('SELECT credit.approve(%s)', pg_temp.app('12')),
				'the director releases it as it was held');
RESET ROLE;
SELECT is(pg_temp.exposure('3'), 1300::numeric,
		  'the release counted the amount it was held with');

/* ---------------------------------------------------------------------
 * warn
 * ------------------------------------------------------------------- */

CREATE TABLE shop.warn_orders (no text PRIMARY KEY, cust text, amount numeric);
GRANT SELECT, INSERT ON shop.warn_orders TO holds_clerk;
INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_until)
VALUES ('w', 100, 20, now() + interval '1 day');
SELECT lives_ok($$SELECT credit.attach_orders('shop.warn_orders', 'cust', 'amount',
											   over_limit => 'warn', key_column => 'no')$$,
				'attach with over_limit warn');
SET ROLE holds_clerk;
INSERT INTO shop.warn_orders VALUES ('a', 'w', 80);
INSERT INTO shop.warn_orders VALUES ('b', 'w', 50);
RESET ROLE;
SELECT is((SELECT count(*) FROM shop.warn_orders), 2::bigint, 'the order over the limit passes');
SELECT is(pg_temp.exposure('w'), 130::numeric, 'and counts as exposure');
SELECT is(pg_temp.status('w'), 'hold', 'the account is over its limit');
SELECT results_eq($$SELECT orders, order_key, customer_key COLLATE "default", amount, refusal_code,
						   exposure_after, effective_limit, changed_by
					  FROM credit.overlimit_warnings$$,
				  $$VALUES ('shop.warn_orders'::regclass, 'b', 'w', 50::numeric, 'CR001',
							130::numeric, 120::numeric, 'holds_clerk')$$,
				  'overlimit_warnings: amount, exposure after, effective limit (with the temporary limit), the clerk');
SELECT is((SELECT count(*) FROM credit.held_orders WHERE orders = 'shop.warn_orders'::regclass)
		  + (SELECT count(*) FROM credit.applications WHERE order_table = 'shop.warn_orders'::regclass),
		  0::bigint, 'a warned order is neither held nor sent for approval');

/* ---------------------------------------------------------------------
 * the books agree
 * ------------------------------------------------------------------- */

SELECT is_empty($$SELECT * FROM credit.reconcile()$$, 'reconcile: stored exposure matches the open orders');
SELECT is_empty($$SELECT * FROM credit.verify_audit()$$, 'the audit trail verifies');

SELECT * FROM finish();
ROLLBACK;
