/*
 * hierarchy.sql: pgTAP suite for group credit limits (credit.accounts
 * parent_key, credit.move_account).
 *
 * Three levels: group GRP (limit 10,000) above subsidiaries SUB1 (4,000)
 * and SUB2 (5,000); a branch BR1 (3,000) below SUB1.  An account's exposure
 * is its own plus its descendants': orders, invoices and payments of a leaf
 * roll up to every ancestor, on insert, update, close, reopen and delete,
 * and through attach, detach, TRUNCATE and DROP TABLE.  An increase must fit
 * the customer's own available credit and every ancestor's: CR001 at each
 * level names the refusing account ("group" for an ancestor, whose detail
 * names the ordering customer), CR002 when an ancestor is stopped; a hold
 * table holds an order the group refuses.  Ancestors' statuses are derived.
 * credit.move_account moves a customer's rolled-up exposure from the old
 * chain to the new one, unchecked (a new parent over its limit is hold),
 * refuses cycles (23514), unknown accounts (42704); a direct write of
 * parent_key and a new account with a parent and exposure are refused
 * (55000); an account with children cannot be deleted (23503).
 * credit.reconcile() recomputes the roll-up and repairs a tampered parent.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(188);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.parent(k text) RETURNS text
LANGUAGE sql AS $$ SELECT parent_key FROM credit.accounts WHERE customer_key = k $$;
/* exposure of the four accounts of the group, in a fixed order */
CREATE FUNCTION pg_temp.chain() RETURNS numeric[]
LANGUAGE sql AS $$
	SELECT ARRAY[pg_temp.exposure('BR1'), pg_temp.exposure('SUB1'),
				 pg_temp.exposure('SUB2'), pg_temp.exposure('GRP')] $$;
/* the detail of the error a statement raises (NULL if it succeeds) */
CREATE FUNCTION pg_temp.error_detail(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	d text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RETURN d;
END $$;
CREATE FUNCTION pg_temp.error_hint(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	h text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RETURN h;
END $$;
/* the SQLSTATE a statement raises ('00000' if it succeeds; then it is kept) */
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;

CREATE SCHEMA shop;
CREATE TABLE shop.orders (
	id		int PRIMARY KEY,
	cust	text,
	amount	numeric,
	state	text NOT NULL DEFAULT 'open'
);
SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}');

/* ---------------------------------------------------------------------
 * The tree: parent_key, its constraints, new accounts under a parent
 * ------------------------------------------------------------------- */

SELECT has_column('credit', 'accounts', 'parent_key', 'credit.accounts has parent_key');
SELECT col_is_null('credit', 'accounts', 'parent_key', 'parent_key is nullable (a root)');
SELECT col_is_fk('credit', 'accounts', 'parent_key', 'parent_key is a foreign key');
SELECT fk_ok('credit', 'accounts', 'parent_key', 'credit', 'accounts', 'customer_key',
			 'parent_key references credit.accounts (customer_key)');

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('GRP', 10000);
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
				  VALUES ('SUB1', 4000, 'GRP'), ('SUB2', 5000, 'GRP')$$,
				'new accounts under a parent (no exposure) are accepted');
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
				  VALUES ('BR1', 3000, 'SUB1')$$,
				'a third level');
SELECT results_eq($$SELECT customer_key COLLATE "default", parent_key COLLATE "default",
						   credit.live_exposure(customer_key, exposure), status
					  FROM credit.accounts ORDER BY customer_key$$,
				  $$VALUES ('BR1', 'SUB1', 0::numeric, 'ok'), ('GRP', NULL, 0::numeric, 'ok'),
						   ('SUB1', 'GRP', 0::numeric, 'ok'), ('SUB2', 'GRP', 0::numeric, 'ok')$$,
				  'the tree as inserted, nothing exposed');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key, exposure)
				   VALUES ('NEW', 100, 'GRP', 50)$$,
				 '55000', NULL, 'a new account under a parent with exposure: 55000');
SELECT is(pg_temp.exposure('GRP'), 0::numeric, 'and the parent is unchanged');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
				   VALUES ('NEW', 100, 'NOBODY')$$,
				 '23503', NULL, 'a new account under an unknown parent: 23503');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
				   VALUES ('SELF', 100, 'SELF')$$,
				 '23514', NULL, 'an account as its own parent: 23514');
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, exposure)
				  VALUES ('ROOTX', 100, 0)$$,
				'a root account without a parent as before');

/* ---------------------------------------------------------------------
 * Roll-up of orders, invoices and payments
 * ------------------------------------------------------------------- */

SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (1, 'BR1', 1000)$$,
				'an order of the branch');
SELECT is(pg_temp.chain(), '{1000,1000,0,1000}'::numeric[],
		  'the branch order counts on BR1, SUB1 and GRP, not on SUB2');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (2, 'SUB1', 2000)$$,
				'an own order of the subsidiary');
SELECT is(pg_temp.chain(), '{1000,3000,0,3000}'::numeric[],
		  'SUB1 = own 2000 + BR1 1000; GRP 3000');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (3, 'SUB2', 1500)$$,
				'an order of the other subsidiary');
SELECT is(pg_temp.chain(), '{1000,3000,1500,4500}'::numeric[], 'GRP = SUB1 3000 + SUB2 1500');
SELECT lives_ok($$INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
				  VALUES ('BR1', 'INV-1', 400, '2026-01-10')$$,
				'an invoice of the branch');
SELECT is(pg_temp.chain(), '{1400,3400,1500,4900}'::numeric[], 'the invoice rolls up');
SELECT lives_ok($$INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
				  VALUES ('BR1', 'PAY-1', 300, '2026-01-20')$$,
				'a payment of the branch');
SELECT is(pg_temp.chain(), '{1100,3100,1500,4600}'::numeric[], 'the payment lowers every level');
SELECT lives_ok($$SELECT credit.allocate(payment_id, 'INV-1') FROM credit.payments WHERE payment_key = 'PAY-1'$$,
				'allocate the payment to the invoice');
SELECT is(pg_temp.chain(), '{1100,3100,1500,4600}'::numeric[], 'an allocation changes no level');
SELECT lives_ok($$UPDATE shop.orders SET amount = 800 WHERE id = 1$$, 'lower the branch order');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the decrease flows up');
SELECT lives_ok($$UPDATE shop.orders SET state = 'closed' WHERE id = 1$$, 'close the branch order');
SELECT is(pg_temp.chain(), '{100,2100,1500,3600}'::numeric[], 'closing releases it at every level');
SELECT lives_ok($$UPDATE shop.orders SET state = 'open' WHERE id = 1$$, 'reopen it');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'reopening counts it again at every level');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 3$$, 'delete the SUB2 order');
SELECT is(pg_temp.chain(), '{900,2900,0,2900}'::numeric[], 'deleting releases it on SUB2 and GRP');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (3, 'SUB2', 1500)$$, 'and insert it again');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'GRP 4400 again');

/* one statement, orders of two branches of the tree */
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (4, 'BR1', 100), (5, 'SUB2', 200)$$,
				'one INSERT with orders of BR1 and SUB2');
SELECT is(pg_temp.chain(), '{1000,3000,1700,4700}'::numeric[], 'each row rolls up its own chain; GRP gets both');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id IN (4, 5)$$, 'one DELETE of both');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'both released');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount)
				   VALUES (4, 'BR1', 1000), (5, 'SUB2', 200), (6, 'BR1', 200)$$,
				 'CR001', 'credit limit of group "SUB1" exceeded',
				 'a multi-row INSERT whose third row exceeds SUB1 (2900 + 1000 + 200 > 4000) is refused');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'none of its rows counts');
SELECT is((SELECT count(*) FROM shop.orders WHERE id IN (4, 5, 6)), 0::bigint, 'none of its rows is stored');

/* an order moved from one customer to another */
SELECT throws_ok($$UPDATE shop.orders SET cust = 'BR1' WHERE id = 3$$,
				 'CR001', 'credit limit of group "SUB1" exceeded',
				 'moving a 1500 order from SUB2 to BR1 (BR1 fits, SUB1 has 1100) is refused by SUB1');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the refused order move changed nothing');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'SUB2' WHERE id = 1$$, 'move the 800 order from BR1 to SUB2');
SELECT is(pg_temp.chain(), '{100,2100,2300,4400}'::numeric[], 'BR1 and SUB1 lose 800, SUB2 gains it, GRP unchanged');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'BR1' WHERE id = 1$$, 'and back');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'back as before');

/* ---------------------------------------------------------------------
 * CR001 at each level, exact fits, derived statuses
 * limits BR1 3000, SUB1 4000, SUB2 5000, GRP 10000
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 1100.01)$$,
				 'CR001', 'credit limit of group "SUB1" exceeded',
				 'BR1 orders 1100.01: fits BR1 (2100 left), not SUB1 (1100 left): CR001 names the group SUB1');
SELECT matches(pg_temp.error_detail($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 1100.01)$$),
			   'customer "BR1"', 'the detail names the customer whose order it was');
SELECT matches(pg_temp.error_detail($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 1100.01)$$),
			   '1100\.01.*available credit 1100(\.00)?\.$', 'the detail gives the amount and the group''s available credit');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the refusal by SUB1 changed no level');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 1100)$$,
				'BR1 orders exactly what SUB1 has left');
SELECT is(pg_temp.chain(), '{2000,4000,1500,5500}'::numeric[], 'SUB1 is exactly at its limit');
SELECT results_eq($$SELECT customer_key COLLATE "default", status FROM credit.accounts
					 WHERE customer_key IN ('BR1', 'SUB1', 'SUB2', 'GRP') ORDER BY customer_key$$,
				  $$VALUES ('BR1', 'ok'), ('GRP', 'ok'), ('SUB1', 'watch'), ('SUB2', 'ok')$$,
				  'statuses are derived at every level: SUB1 at its limit is watch');
SELECT is((SELECT new_status FROM credit.status_changes WHERE customer_key = 'SUB1' ORDER BY change_id DESC LIMIT 1),
		  'watch', 'the ancestor''s status change is recorded');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 6$$, 'release it');
SELECT is(pg_temp.status('SUB1'), 'ok', 'SUB1 back to ok');

UPDATE credit.accounts SET credit_limit = 9000 WHERE customer_key = 'SUB1';
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 2100.01)$$,
				 'CR001', 'credit limit of customer "BR1" exceeded',
				 'SUB1 raised to 9000: BR1 orders 2100.01, past its own 2100: CR001 names BR1');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the refusal by BR1 changed no level');

UPDATE credit.accounts SET credit_limit = 9000 WHERE customer_key = 'BR1';
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 5600.01)$$,
				 'CR001', 'credit limit of group "GRP" exceeded',
				 'BR1 raised to 9000: BR1 orders 5600.01, fits BR1 and SUB1, not GRP: CR001 names GRP');
SELECT matches(pg_temp.error_detail($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'BR1', 5600.01)$$),
			   'customer "BR1"', 'the root''s refusal names the customer two levels down');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'SUB1', 5600.01)$$,
				 'CR001', 'credit limit of group "GRP" exceeded',
				 'an own order of SUB1 past GRP''s available credit: CR001 names GRP');
SELECT matches(pg_temp.error_detail($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'SUB1', 5600.01)$$),
			   'customer "SUB1"', 'and its detail names SUB1');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'SUB2', 3500.01)$$,
				 'CR001', 'credit limit of customer "SUB2" exceeded',
				 'SUB2 orders 3500.01 past its own 3500: CR001 names SUB2');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'GRP', 5600.01)$$,
				 'CR001', 'credit limit of customer "GRP" exceeded',
				 'an own order of the group past its available credit: CR001 names GRP as the customer');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'none of the refusals changed a level');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (7, 'SUB2', 3500)$$,
				'SUB2 orders exactly its available credit');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (8, 'BR1', 2100)$$,
				'BR1 orders exactly what GRP has left');
SELECT is(pg_temp.chain(), '{3000,5000,5000,10000}'::numeric[], 'GRP is exactly at its limit');
SELECT results_eq($$SELECT customer_key COLLATE "default", status FROM credit.accounts
					 WHERE customer_key IN ('BR1', 'SUB1', 'SUB2', 'GRP') ORDER BY customer_key$$,
				  $$VALUES ('BR1', 'ok'), ('GRP', 'watch'), ('SUB1', 'ok'), ('SUB2', 'watch')$$,
				  'GRP and SUB2 at their limits are watch');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (9, 'BR1', 0.01)$$,
				 'CR001', 'credit limit of group "GRP" exceeded', 'a full group refuses 0.01 from two levels down');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (9, 'GRP', 0.01)$$,
				 'CR001', 'credit limit of customer "GRP" exceeded', 'and from itself');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (9, 'BR1', 0)$$, 'an order of 0 passes');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'SUB1' WHERE id = 7$$,
				'moving a 3500 order from SUB2 to SUB1 in a full group passes: the group''s net change is 0');
SELECT is(pg_temp.chain(), '{3000,8500,1500,10000}'::numeric[], 'SUB1 8500, SUB2 1500, GRP still 10000');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'SUB2' WHERE id = 7$$, 'and back');
SELECT is(pg_temp.chain(), '{3000,5000,5000,10000}'::numeric[], 'as before');

/* a temporary limit of the group counts while in force */
UPDATE credit.accounts SET temp_limit = 500, temp_limit_from = now() - interval '1 hour',
	   temp_limit_until = now() + interval '1 day' WHERE customer_key = 'GRP';
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (10, 'BR1', 500)$$,
				'the group''s temporary limit of 500 lets BR1 order 500 more');
SELECT is(pg_temp.chain(), '{3500,5500,5000,10500}'::numeric[], 'GRP 10500 of 10500');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (11, 'SUB1', 0.01)$$,
				 'CR001', 'credit limit of group "GRP" exceeded', 'and the temporary limit is used up');
UPDATE credit.accounts SET temp_limit = 0 WHERE customer_key = 'GRP';
SELECT is(pg_temp.status('GRP'), 'hold', 'the temporary limit withdrawn: GRP over its limit is hold');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id IN (7, 8, 9, 10)$$, 'release orders 7 to 10');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the releases flow up');
SELECT is(pg_temp.status('GRP'), 'ok', 'GRP back to ok');
UPDATE credit.accounts SET credit_limit = 4000 WHERE customer_key = 'SUB1';
UPDATE credit.accounts SET credit_limit = 3000 WHERE customer_key = 'BR1';

/* ---------------------------------------------------------------------
 * CR002: a stopped ancestor refuses its members' increases
 * ------------------------------------------------------------------- */

UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'SUB1';
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (11, 'BR1', 1)$$,
				 'CR002', 'credit account of group "SUB1" is stopped',
				 'SUB1 stopped: an order of BR1 is refused with CR002 naming the group');
SELECT matches(pg_temp.error_detail($$INSERT INTO shop.orders (id, cust, amount) VALUES (11, 'BR1', 1)$$),
			   'customer "BR1"', 'the detail names the customer');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (11, 'SUB2', 1)$$,
				'the sibling SUB2 is not affected');
SELECT lives_ok($$UPDATE shop.orders SET amount = 700 WHERE id = 1$$, 'a decrease of BR1 passes');
SELECT is(pg_temp.chain(), '{800,2800,1501,4301}'::numeric[], 'and flows up through the stopped SUB1');
SELECT is(pg_temp.status('SUB1'), 'stop', 'SUB1 stays stopped');
UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'SUB1';
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'GRP';
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'SUB2', 1)$$,
				 'CR002', 'credit account of group "GRP" is stopped',
				 'GRP stopped: an order of SUB2 is refused');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'BR1', 1)$$,
				 'CR002', 'credit account of group "GRP" is stopped',
				 'and an order of BR1, two levels down');
UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'GRP';
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 11$$, 'release order 11');
SELECT lives_ok($$UPDATE shop.orders SET amount = 800 WHERE id = 1$$, 'order 1 back to 800 after the stop is lifted');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'as before');

/* ---------------------------------------------------------------------
 * A hold table: an order the group refuses is held
 * ------------------------------------------------------------------- */

CREATE TABLE shop.held (id int PRIMARY KEY, cust text, amount numeric, state text NOT NULL DEFAULT 'open');
SELECT credit.attach_orders('shop.held', 'cust', 'amount', 'state', '{open}',
							over_limit => 'hold', key_column => 'id',
							held_status => 'credit_hold', rejected_status => 'cancelled');
SELECT lives_ok($$INSERT INTO shop.held (id, cust, amount) VALUES (1, 'BR1', 1100.01)$$,
				'an order of BR1 that SUB1 refuses, on a hold table');
SELECT is((SELECT state FROM shop.held WHERE id = 1), 'credit_hold', 'is written held');
SELECT results_eq($$SELECT customer_key COLLATE "default", amount, refusal_code, refusal_message, state
					  FROM credit.held_orders WHERE orders = 'shop.held'::regclass AND order_key = '1'$$,
				  $$VALUES ('BR1', 1100.01, 'CR001', 'credit limit of group "SUB1" exceeded', 'held')$$,
				  'credit.held_orders records the group''s refusal for the customer BR1');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the held order counts on no level');
SELECT lives_ok($$INSERT INTO shop.held (id, cust, amount) VALUES (2, 'BR1', 1100)$$,
				'an order that fits SUB1 exactly');
SELECT is((SELECT state FROM shop.held WHERE id = 2), 'open', 'stays open');
SELECT is(pg_temp.chain(), '{2000,4000,1500,5500}'::numeric[], 'and counts at every level');
SELECT lives_ok($$DELETE FROM shop.held$$, 'delete both');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'as before');

/* ---------------------------------------------------------------------
 * credit.move_account
 * ------------------------------------------------------------------- */

SELECT is(pg_get_function_result('credit.move_account(text, text)'::regprocedure), 'credit.accounts',
		  'credit.move_account(customer, new_parent) returns the account row');
SELECT lives_ok($$SELECT credit.move_account('BR1', 'SUB2')$$, 'move BR1 (exposure 900) from SUB1 to SUB2');
SELECT is(pg_temp.parent('BR1'), 'SUB2', 'BR1''s parent is SUB2');
SELECT is(pg_temp.chain(), '{900,2000,2400,4400}'::numeric[],
		  'SUB1 loses 900, SUB2 gains 900, GRP (on both chains) unchanged');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'SUB1', 2000)$$,
				'SUB1 has room for 2000 now that BR1 is gone');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (13, 'SUB2', 1000)$$,
				'SUB2 orders 1000: SUB2 3400, 1600 left');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (14, 'BR1', 1600.01)$$,
				 'CR001', 'credit limit of group "SUB2" exceeded',
				 'BR1 (2100 left of its own, GRP 2600) is checked against its new parent SUB2 (1600 left)');
SELECT is(pg_temp.chain(), '{900,4000,3400,7400}'::numeric[], 'SUB1 4000, SUB2 3400, GRP 7400');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id IN (12, 13)$$, 'release orders 12 and 13');
SELECT lives_ok($$SELECT credit.move_account('BR1', NULL)$$, 'detach BR1 to a root');
SELECT is(pg_temp.parent('BR1'), NULL, 'BR1 has no parent');
SELECT is(pg_temp.chain(), '{900,2000,1500,3500}'::numeric[], 'SUB2 and GRP lose 900');
SELECT lives_ok($$SELECT credit.move_account('BR1', NULL)$$, 'moving a root to the root again');
SELECT is(pg_temp.chain(), '{900,2000,1500,3500}'::numeric[], 'changes nothing');
SELECT lives_ok($$SELECT credit.move_account('BR1', 'SUB1')$$, 'BR1 back under SUB1');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'SUB1 and GRP gain 900');
SELECT lives_ok($$SELECT credit.move_account('BR1', 'SUB1')$$, 'moving to the same parent');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'changes nothing');

/* a subtree moves with its exposure */
SELECT lives_ok($$SELECT credit.move_account('SUB1', 'SUB2')$$, 'move SUB1 (2900, with BR1) under SUB2');
SELECT is(pg_temp.chain(), '{900,2900,4400,4400}'::numeric[], 'SUB2 gains 2900; GRP unchanged');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'BR1', 600.01)$$,
				 'CR001', 'credit limit of group "SUB2" exceeded',
				 'BR1 is now checked three levels up: SUB2 has 600 left');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'BR1', 600)$$, 'exactly 600 passes');
SELECT is(pg_temp.chain(), '{1500,3500,5000,5000}'::numeric[], 'and counts on all four levels');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 12$$, 'release order 12');

/* cycles */
SELECT throws_ok($$SELECT credit.move_account(NULL, 'GRP')$$, '22004', NULL,
				 'move_account without a customer: 22004');
SELECT throws_ok($$SELECT credit.move_account('GRP', 'BR1')$$, '23514', NULL,
				 'moving GRP under BR1, its descendant three levels down: 23514');
SELECT throws_ok($$SELECT credit.move_account('SUB2', 'SUB1')$$, '23514', NULL,
				 'moving SUB2 under its child SUB1: 23514');
SELECT throws_ok($$SELECT credit.move_account('SUB1', 'SUB1')$$, '23514', NULL,
				 'moving SUB1 under itself: 23514');
SELECT results_eq($$SELECT customer_key COLLATE "default", parent_key COLLATE "default" FROM credit.accounts
					 WHERE customer_key IN ('BR1', 'SUB1', 'SUB2', 'GRP') ORDER BY customer_key$$,
				  $$VALUES ('BR1', 'SUB1'), ('GRP', NULL), ('SUB1', 'SUB2'), ('SUB2', 'GRP')$$,
				  'the refused moves changed no parent');
SELECT is(pg_temp.chain(), '{900,2900,4400,4400}'::numeric[], 'nor any exposure');
SELECT lives_ok($$SELECT credit.move_account('SUB1', 'GRP')$$, 'SUB1 back under GRP');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'as before');

/* a move is not checked: a new parent over its limit is hold */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('GRP2', 1000);
SELECT lives_ok($$SELECT credit.move_account('SUB1', 'GRP2')$$,
				'move SUB1 (2900) under GRP2 (limit 1000): not checked');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure), status FROM credit.accounts
					 WHERE customer_key IN ('BR1', 'GRP', 'GRP2', 'SUB1', 'SUB2') ORDER BY customer_key$$,
				  $$VALUES ('BR1', 900::numeric, 'ok'), ('GRP', 1500::numeric, 'ok'), ('GRP2', 2900::numeric, 'hold'),
						   ('SUB1', 2900::numeric, 'ok'), ('SUB2', 1500::numeric, 'ok')$$,
				  'GRP2 2900 over its 1000: hold; GRP keeps SUB2''s 1500');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'BR1', 0.01)$$,
				 'CR001', 'credit limit of group "GRP2" exceeded',
				 'an order of BR1 is refused by its new group GRP2');
SELECT lives_ok($$UPDATE shop.orders SET amount = 700 WHERE id = 1$$, 'a decrease of BR1 passes');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('BR1', 'GRP', 'GRP2', 'SUB1') ORDER BY customer_key$$,
				  $$VALUES ('BR1', 800::numeric), ('GRP', 1500::numeric), ('GRP2', 2800::numeric), ('SUB1', 2800::numeric)$$,
				  'and flows up to GRP2, not to GRP');
SELECT lives_ok($$SELECT credit.move_account('SUB1', 'GRP')$$, 'SUB1 back under GRP');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure), status FROM credit.accounts
					 WHERE customer_key IN ('GRP', 'GRP2') ORDER BY customer_key$$,
				  $$VALUES ('GRP', 4300::numeric, 'ok'), ('GRP2', 0::numeric, 'ok')$$,
				  'GRP2 is empty and ok again; GRP has the 2800 back');
SELECT lives_ok($$UPDATE shop.orders SET amount = 800 WHERE id = 1$$, 'order 1 back to 800');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'as before');

/* refusals */
SELECT throws_ok($$SELECT credit.move_account('NOBODY', 'GRP')$$, '42704', NULL,
				 'moving an unknown customer: 42704');
SELECT throws_ok($$SELECT credit.move_account('BR1', 'NOBODY')$$, '42704', NULL,
				 'moving under an unknown parent: 42704');
SELECT is(pg_temp.parent('BR1'), 'SUB1', 'BR1 stays under SUB1');
SELECT throws_ok($$UPDATE credit.accounts SET parent_key = 'SUB2' WHERE customer_key = 'BR1'$$,
				 '55000', NULL, 'a direct UPDATE of parent_key: 55000');
SELECT matches(pg_temp.error_hint($$UPDATE credit.accounts SET parent_key = 'SUB2' WHERE customer_key = 'BR1'$$),
			   'credit\.move_account', 'the hint names credit.move_account');
SELECT throws_ok($$UPDATE credit.accounts SET parent_key = NULL WHERE customer_key = 'BR1'$$,
				 '55000', NULL, 'a direct UPDATE of parent_key to NULL: 55000');
SELECT throws_ok($$UPDATE credit.accounts SET parent_key = 'SUB1' WHERE customer_key = 'GRP2'$$,
				 '55000', NULL, 'even for an account without exposure: 55000');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key) VALUES ('BR1', 1, 'SUB2')
				   ON CONFLICT (customer_key) DO UPDATE SET parent_key = excluded.parent_key$$,
				 '55000', NULL, 'an upsert changing parent_key: 55000');
SELECT lives_ok($$UPDATE credit.accounts SET parent_key = parent_key, credit_limit = 3000 WHERE customer_key = 'BR1'$$,
				'an UPDATE writing the same parent_key (and a limit) passes');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'no refused path changed an exposure');
INSERT INTO credit.accounts (customer_key, credit_limit, parent_key) VALUES ('G2C', 100, 'GRP2');
SELECT throws_ok($$DELETE FROM credit.accounts WHERE customer_key = 'GRP2'$$, '23503', NULL,
				 'deleting an account with a child: 23503');
SELECT throws_ok($$DELETE FROM credit.accounts WHERE customer_key = 'GRP'$$, '23503', NULL,
				 'deleting the root of a tree: 23503');
SELECT throws_ok($$UPDATE credit.accounts SET customer_key = 'GRPX' WHERE customer_key = 'GRP'$$, '55000', NULL,
				 'renaming a group with exposure: 55000');

/* a group with members keeps its key (parent_key is ON UPDATE RESTRICT) */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('P0', 100);
INSERT INTO credit.accounts (customer_key, credit_limit, parent_key) VALUES ('C0', 100, 'P0');
SELECT throws_ok($$UPDATE credit.accounts SET customer_key = 'P1' WHERE customer_key = 'P0'$$, '23503', NULL,
				 'renaming a group with members, even without exposure: 23503');
SELECT is(pg_temp.parent('C0'), 'P0', 'its member keeps its parent');
SELECT lives_ok($$UPDATE credit.accounts SET customer_key = 'C1' WHERE customer_key = 'C0'$$,
				'a member without exposure may be renamed');
SELECT is(pg_temp.parent('C1'), 'P0', 'and keeps its parent');

/* ---------------------------------------------------------------------
 * reconcile: the roll-up recomputed
 * ------------------------------------------------------------------- */

SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile finds nothing after all of the above');
/*
 * tamper with the serving ledger's figures: the shared-memory ledger's
 * (credit.adjust_shared_exposure, no roll-up; it serves no account without the
 * preload) and the stored column, the row ledger's figure (a copy of the
 * live figure when the shared-memory ledger serves)
 */
SELECT NULL FROM credit.adjust_shared_exposure(ARRAY['GRP'], ARRAY[7]::numeric[]);
UPDATE credit.accounts SET exposure = exposure + 7 WHERE customer_key = 'GRP';
SELECT results_eq($$SELECT customer_key COLLATE "default", stored_exposure, computed_exposure, difference
					  FROM credit.reconcile()$$,
				  $$VALUES ('GRP', 4407::numeric, 4400::numeric, 7::numeric)$$,
				  'a tampered group: reconcile computes its exposure over its subtree');
SELECT NULL FROM credit.adjust_shared_exposure(ARRAY['BR1', 'SUB1'], ARRAY[5, -100]::numeric[]);
UPDATE credit.accounts SET exposure = exposure + 5 WHERE customer_key = 'BR1';
UPDATE credit.accounts SET exposure = exposure - 100 WHERE customer_key = 'SUB1';
SELECT results_eq($$SELECT customer_key COLLATE "default", stored_exposure, computed_exposure, difference
					  FROM credit.reconcile()$$,
				  $$VALUES ('BR1', 905::numeric, 900::numeric, 5::numeric),
						   ('GRP', 4407::numeric, 4400::numeric, 7::numeric),
						   ('SUB1', 2800::numeric, 2900::numeric, -100::numeric)$$,
				  'each tampered level is reported with its own difference, no other');
SELECT is((SELECT count(*) FROM credit.reconcile(repair => true)), 3::bigint, 'reconcile(true) reports the three');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'and repairs them');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'the repaired figures are the rolled-up ones');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (12, 'BR1', 1100.01)$$,
				 'CR001', 'credit limit of group "SUB1" exceeded', 'after repair SUB1 is checked on its true exposure');

/* ---------------------------------------------------------------------
 * attach, TRUNCATE, detach, DROP TABLE roll up too
 * ------------------------------------------------------------------- */

CREATE TABLE shop.legacy (cust text, amount numeric);
INSERT INTO shop.legacy VALUES ('BR1', 50), ('SUB2', 30);
SELECT lives_ok($$SELECT credit.attach_orders('shop.legacy', 'cust', 'amount')$$,
				'attach a table with open orders of BR1 and SUB2');
SELECT is(pg_temp.chain(), '{950,2950,1530,4480}'::numeric[], 'its orders count on every level');
INSERT INTO shop.legacy VALUES ('BR1', 20);
SELECT lives_ok($$TRUNCATE shop.legacy$$, 'TRUNCATE it');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'TRUNCATE releases on every level');
INSERT INTO shop.legacy VALUES ('BR1', 40);
SELECT lives_ok($$SELECT credit.detach_orders('shop.legacy')$$, 'detach it');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'detach releases on every level');
SELECT lives_ok($$SELECT credit.attach_orders('shop.legacy', 'cust', 'amount')$$, 'attach it again');
SELECT is(pg_temp.chain(), '{940,2940,1500,4440}'::numeric[], 'counted again');
SELECT lives_ok($$DROP TABLE shop.legacy$$, 'DROP TABLE');
SELECT is(pg_temp.chain(), '{900,2900,1500,4400}'::numeric[], 'DROP TABLE releases on every level');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile finds nothing');

/* ---------------------------------------------------------------------
 * Deleting a member with exposure keeps the roll-up exact (refused or
 * released)
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit, parent_key) VALUES ('LEAF', 100, 'SUB2');
INSERT INTO shop.orders (id, cust, amount) VALUES (20, 'LEAF', 60);
SELECT is(pg_temp.chain(), '{900,2900,1560,4460}'::numeric[], 'LEAF''s 60 on SUB2 and GRP');
SELECT isnt(pg_temp.sqlstate_of($$DELETE FROM credit.accounts WHERE customer_key = 'LEAF'$$), 'XX000',
			'deleting a member with exposure is no internal error');
SELECT is(pg_temp.chain(), '{900,2900,1560,4460}'::numeric[], 'the group still counts LEAF''s open order');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint,
		  'after deleting (or refusing to delete) a member with exposure the group''s roll-up is exact');

/* ---------------------------------------------------------------------
 * A deep chain: no internal error, cycles found at any depth
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('L01', 1000);
CREATE TEMP TABLE deep AS
SELECT i, pg_temp.sqlstate_of(format($$INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
										 VALUES ('L%s', 1000, 'L%s')$$,
									 lpad(i::text, 2, '0'), lpad((i - 1)::text, 2, '0'))) AS state
  FROM generate_series(2, 70) i ORDER BY i;
SELECT is((SELECT count(*) FROM deep WHERE state = 'XX000'), 0::bigint,
		  'a chain of 70 levels is built or refused with a documented SQLSTATE');
SELECT is(pg_temp.sqlstate_of($$INSERT INTO shop.orders (id, cust, amount)
								VALUES (30, (SELECT max(customer_key) FROM credit.accounts WHERE customer_key ~ '^L[0-9]{2}$'), 1)$$),
		  '00000', 'an order of the deepest account of the chain passes');
SELECT throws_ok($$SELECT credit.move_account('L01', (SELECT max(customer_key) FROM credit.accounts WHERE customer_key ~ '^L[0-9]{2}$'))$$,
				 '23514', NULL, 'moving the top of the chain under its deepest account: 23514');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile finds nothing at the end');

SELECT * FROM finish();
ROLLBACK;
