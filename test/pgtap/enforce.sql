/*
 * enforce.sql: pgTAP suite for the triggers on attached order tables.
 *
 * Every way a row can come to count, or stop counting, goes through the
 * check (the holes ERPNext's credit check leaves open): INSERT, a larger
 * amount, reopening a closed order, moving an order to another customer,
 * DELETE, TRUNCATE, upsert, multi-row INSERT ... SELECT, MERGE, COPY, and
 * the application's own BEFORE triggers.  Bad input is refused with its
 * SQLSTATE and changes nothing.  Finally thousands of updates in one
 * transaction leave the ledger exact and the accounts' index intact.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(149);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;
/* the hint of the error a statement raises (NULL if it succeeds) */
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

CREATE SCHEMA shop;

/* ---------------------------------------------------------------------
 * INSERT, amount changes, close and reopen, customer change, DELETE
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit)
VALUES ('C1', 1000), ('C2', 500), ('CS', 1000);
CREATE TABLE shop.orders (
	id		int PRIMARY KEY,
	cust	text,
	amount	numeric,
	state	text DEFAULT 'open',
	note	text
);
SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,confirmed}');

SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (1, 'C1', 400)$$,
				'insert: an order within the limit passes');
SELECT is(pg_temp.exposure('C1'), 400::numeric, 'insert adds the amount');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (2, 'C1', 600.01)$$,
				 'CR001', NULL, 'insert: an order past the available credit is refused');
SELECT is(pg_temp.exposure('C1'), 400::numeric, 'the refused insert changed nothing');
SELECT is((SELECT count(*) FROM shop.orders WHERE id = 2), 0::bigint, 'the refused row is not in the table');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (2, 'C1', 600)$$,
				'insert: an order of exactly the available credit passes');
SELECT is(pg_temp.exposure('C1'), 1000::numeric, 'exposure equals the limit');
SELECT is(pg_temp.status('C1'), 'watch', 'an account at its limit is watch, not hold');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (3, 'C1', 0.01)$$,
				 'CR001', NULL, 'no credit left: 0.01 is refused');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (3, 'C1', 0)$$,
				'an order of 0 passes with no credit left');

SELECT lives_ok($$UPDATE shop.orders SET amount = 300 WHERE id = 2$$, 'update: lowering an amount passes');
SELECT is(pg_temp.exposure('C1'), 700::numeric, 'the decrease is applied');
SELECT throws_ok($$UPDATE shop.orders SET amount = 600.01 WHERE id = 2$$,
				 'CR001', NULL, 'update: raising an amount past the available credit is refused');
SELECT row_eq($$SELECT amount FROM shop.orders WHERE id = 2$$, ROW(300::numeric),
			  'the refused update left the row as it was');
SELECT is(pg_temp.exposure('C1'), 700::numeric, 'and the exposure');
SELECT lives_ok($$UPDATE shop.orders SET amount = 600 WHERE id = 2$$,
				'update: raising an amount by exactly the available credit passes');
SELECT is(pg_temp.exposure('C1'), 1000::numeric, 'the increase is applied');
SELECT lives_ok($$UPDATE shop.orders SET amount = 600.00 WHERE id = 2$$,
				'update: the same amount written with another scale');
SELECT is(pg_temp.exposure('C1'), 1000::numeric, 'changes nothing');
SELECT lives_ok($$UPDATE shop.orders SET note = 'rush' WHERE cust = 'C1'$$,
				'update of an unrelated column on a full account passes');
SELECT lives_ok($$UPDATE shop.orders SET state = 'confirmed' WHERE id = 1$$,
				'update: open -> confirmed (both open statuses)');
SELECT is(pg_temp.exposure('C1'), 1000::numeric, 'a change between open statuses changes nothing');

SELECT lives_ok($$UPDATE shop.orders SET state = 'closed' WHERE id = 2$$, 'close an order');
SELECT is(pg_temp.exposure('C1'), 400::numeric, 'closing releases its amount');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (4, 'C1', 500)$$,
				'the released credit is used by another order');
SELECT throws_ok($$UPDATE shop.orders SET state = 'open' WHERE id = 2$$,
				 'CR001', NULL, 'reopening a closed order past the limit is refused');
SELECT row_eq($$SELECT state FROM shop.orders WHERE id = 2$$, ROW('closed'::text),
			  'the order stays closed');
SELECT is(pg_temp.exposure('C1'), 900::numeric, 'the refused reopen changed nothing');
SELECT lives_ok($$UPDATE shop.orders SET amount = 5000 WHERE id = 2$$,
				'the amount of a closed order may change freely');
SELECT is(pg_temp.exposure('C1'), 900::numeric, 'closed orders do not count');
SELECT throws_ok($$UPDATE shop.orders SET state = 'confirmed', amount = 100.01 WHERE id = 2$$,
				 'CR001', NULL, 'reopening with a new amount is checked on the new amount');
SELECT lives_ok($$UPDATE shop.orders SET state = 'confirmed', amount = 100 WHERE id = 2$$,
				'reopening with an amount that fits passes');
SELECT is(pg_temp.exposure('C1'), 1000::numeric, 'the reopened order counts');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 4$$, 'delete an open order');
SELECT is(pg_temp.exposure('C1'), 500::numeric, 'delete releases its amount');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount, state) VALUES (5, 'C1', 9999, 'closed')$$,
				'a closed order past the limit may be inserted');
SELECT lives_ok($$DELETE FROM shop.orders WHERE id = 5$$, 'and deleted');
SELECT is(pg_temp.exposure('C1'), 500::numeric, 'neither counted');

/* change of customer: C1 has 400 (id 1) + 100 (id 2); C2 has 0 of 500 */
SELECT lives_ok($$UPDATE shop.orders SET cust = 'C2' WHERE id = 1$$, 'move an order to another customer');
SELECT is(pg_temp.exposure('C1'), 100::numeric, 'the old customer is released');
SELECT is(pg_temp.exposure('C2'), 400::numeric, 'the new customer is charged');
INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'C1', 150);
SELECT throws_ok($$UPDATE shop.orders SET cust = 'C2' WHERE id = 6$$,
				 'CR001', NULL, 'moving an order to a customer without enough credit is refused');
SELECT is(pg_temp.exposure('C1'), 250::numeric, 'after the refused move the old customer is unchanged');
SELECT is(pg_temp.exposure('C2'), 400::numeric, 'after the refused move the new customer is unchanged');
SELECT throws_ok($$UPDATE shop.orders SET cust = 'C9' WHERE id = 6$$,
				 'CR003', NULL, 'moving an order to a customer without an account is refused');
SELECT is(pg_temp.exposure('C1'), 250::numeric, 'after CR003 the old customer is unchanged');
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'CS';
SELECT throws_ok($$UPDATE shop.orders SET cust = 'CS' WHERE id = 6$$,
				 'CR002', NULL, 'moving an order to a stopped customer is refused');
SELECT is(pg_temp.exposure('CS'), 0::numeric, 'the stopped customer is unchanged');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'C1', amount = 350 WHERE id = 1$$,
				'move back and change the amount in one update');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('C1', 'C2') ORDER BY customer_key$$,
				  $$VALUES ('C1', 600::numeric), ('C2', 0::numeric)$$,
				  'the move and the new amount are applied to both accounts');
SELECT lives_ok($$UPDATE shop.orders SET cust = 'C2', state = 'closed' WHERE id = 1$$,
				'move a closed order (closing it at the same time)');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('C1', 'C2') ORDER BY customer_key$$,
				  $$VALUES ('C1', 250::numeric), ('C2', 0::numeric)$$,
				  'closing while moving releases the old customer and charges nobody');

/* the application's own BEFORE trigger: the row as finally written counts */
CREATE FUNCTION shop.add_tax() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.amount := NEW.amount * 1.1;
	RETURN NEW;
END $$;
CREATE TRIGGER add_tax BEFORE INSERT OR UPDATE OF amount ON shop.orders
	FOR EACH ROW EXECUTE FUNCTION shop.add_tax();
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (7, 'C2', 100)$$,
				'insert through an application BEFORE trigger that adds tax');
SELECT is(pg_temp.exposure('C2'), 110.0::numeric, 'the amount after the BEFORE trigger counts');
SELECT throws_ok($$INSERT INTO shop.orders (id, cust, amount) VALUES (8, 'C2', 355)$$,
				 'CR001', NULL, 'the check uses the amount after the BEFORE trigger (355 x 1.1 > 390)');
DROP TRIGGER add_tax ON shop.orders;

/* COPY into an attached table (rows from a program: pgTAP has no STDIN) */
SELECT lives_ok($$COPY shop.orders (id, cust, amount) FROM PROGRAM 'printf ''20\tC2\t100\n21\tC2\t90\n'''$$,
				'COPY of orders that fit');
SELECT is(pg_temp.exposure('C2'), 300.0::numeric, 'COPY counts every row');
SELECT throws_ok($$COPY shop.orders (id, cust, amount) FROM PROGRAM 'printf ''22\tC2\t100\n23\tC2\t100.01\n'''$$,
				 'CR001', NULL, 'COPY of rows that exceed the limit on the second row is refused');
SELECT is((SELECT count(*) FROM shop.orders WHERE id IN (22, 23)), 0::bigint,
		  'the refused COPY stored none of its rows');
SELECT is(pg_temp.exposure('C2'), 300.0::numeric, 'and changed no exposure');

/* ---------------------------------------------------------------------
 * TRUNCATE releases the table's open exposure, and only that
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('T1', 1000), ('T2', 1000);
CREATE TABLE shop.t1 (cust text, amount numeric, state text);
CREATE TABLE shop.t2 (cust text, amount numeric);
SELECT credit.attach_orders('shop.t1', 'cust', 'amount', 'state', '{open}');
SELECT credit.attach_orders('shop.t2', 'cust', 'amount');
INSERT INTO shop.t1 VALUES ('T1', 100, 'open'), ('T1', 50, 'open'), ('T1', 900, 'closed'), ('T2', 30, 'open');
INSERT INTO shop.t2 VALUES ('T1', 7), ('T2', 8);
SELECT lives_ok($$TRUNCATE shop.t1$$, 'TRUNCATE an attached table');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('T1', 'T2') ORDER BY customer_key$$,
				  $$VALUES ('T1', 7::numeric), ('T2', 8::numeric)$$,
				  'TRUNCATE released the open orders of that table only');
SELECT lives_ok($$INSERT INTO shop.t1 VALUES ('T1', 993, 'open')$$, 'the released credit is available again');
SELECT lives_ok($$TRUNCATE shop.t1, shop.t2$$, 'TRUNCATE of two attached tables at once');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('T1', 'T2') ORDER BY customer_key$$,
				  $$VALUES ('T1', 0::numeric), ('T2', 0::numeric)$$,
				  'both released');

/* ---------------------------------------------------------------------
 * INSERT ... ON CONFLICT DO UPDATE counts exactly once
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('U', 1000);
CREATE TABLE shop.up (id int PRIMARY KEY, cust text, amount numeric, state text DEFAULT 'open');
SELECT credit.attach_orders('shop.up', 'cust', 'amount', 'state', '{open}');
INSERT INTO shop.up (id, cust, amount) VALUES (1, 'U', 100);
SELECT lives_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (1, 'U', 300)
				  ON CONFLICT (id) DO UPDATE SET amount = excluded.amount$$,
				'upsert of an existing order');
SELECT is(pg_temp.exposure('U'), 300::numeric, 'the upsert counted the difference once (300, not 400 or 600)');
SELECT lives_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (2, 'U', 200)
				  ON CONFLICT (id) DO UPDATE SET amount = excluded.amount$$,
				'upsert of a new order');
SELECT is(pg_temp.exposure('U'), 500::numeric, 'the inserting upsert counted once');
SELECT lives_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (1, 'U', 999)
				  ON CONFLICT (id) DO NOTHING$$,
				'upsert DO NOTHING on an existing order');
SELECT is(pg_temp.exposure('U'), 500::numeric, 'DO NOTHING counts nothing');
SELECT throws_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (1, 'U', 800.01)
				   ON CONFLICT (id) DO UPDATE SET amount = excluded.amount$$,
				 'CR001', NULL, 'an upsert raising an order past the limit is refused');
SELECT is(pg_temp.exposure('U'), 500::numeric, 'the refused upsert changed nothing');
SELECT lives_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (1, 'U', 800), (3, 'U', 0)
				  ON CONFLICT (id) DO UPDATE SET amount = excluded.amount$$,
				'a multi-row upsert that exactly fits');
SELECT is(pg_temp.exposure('U'), 1000::numeric, 'counted exactly once per row');
SELECT lives_ok($$INSERT INTO shop.up (id, cust, amount) VALUES (2, 'U', 200)
				  ON CONFLICT (id) DO UPDATE SET state = 'closed'$$,
				'an upsert that closes an order');
SELECT is(pg_temp.exposure('U'), 800::numeric, 'releases it');

/* ---------------------------------------------------------------------
 * Multi-row statements are all or nothing
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('M', 1000), ('M2', 1000);
CREATE TABLE shop.multi (id int PRIMARY KEY, cust text, amount numeric);
SELECT credit.attach_orders('shop.multi', 'cust', 'amount');
SELECT throws_ok($$INSERT INTO shop.multi SELECT i, CASE WHEN i % 2 = 0 THEN 'M2' ELSE 'M' END, 100
					FROM generate_series(1, 30) i$$,
				 'CR001', NULL, 'INSERT ... SELECT of 30 orders exceeding after the 20th is refused');
SELECT is((SELECT count(*) FROM shop.multi), 0::bigint, 'no row of it was stored');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('M', 'M2') ORDER BY customer_key$$,
				  $$VALUES ('M', 0::numeric), ('M2', 0::numeric)$$,
				  'and no exposure was kept for any of its rows');
SELECT lives_ok($$INSERT INTO shop.multi SELECT i, CASE WHEN i % 2 = 0 THEN 'M2' ELSE 'M' END, 100
				   FROM generate_series(1, 20) i$$,
				'INSERT ... SELECT of 20 orders that exactly fit');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('M', 'M2') ORDER BY customer_key$$,
				  $$VALUES ('M', 1000::numeric), ('M2', 1000::numeric)$$,
				  'both accounts are exactly full');
SELECT lives_ok($$UPDATE shop.multi SET amount = amount - 10$$, 'a multi-row update lowering every order');
SELECT throws_ok($$UPDATE shop.multi SET amount = amount + 20 WHERE cust = 'M'$$,
				 'CR001', NULL, 'a multi-row update that exceeds after its fifth row is refused');
SELECT is((SELECT sum(amount) FROM shop.multi WHERE cust = 'M'), 900::numeric,
		  'none of its rows was changed');
SELECT lives_ok($$UPDATE shop.multi SET amount = amount + 10 WHERE cust = 'M'$$,
				'a multi-row update that exactly fits');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('M', 'M2') ORDER BY customer_key$$,
				  $$VALUES ('M', 1000::numeric), ('M2', 900::numeric)$$,
				  'the multi-row updates are applied exactly');
SELECT lives_ok($$DELETE FROM shop.multi WHERE id > 10$$, 'a multi-row delete');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('M', 'M2') ORDER BY customer_key$$,
				  $$VALUES ('M', 500::numeric), ('M2', 450::numeric)$$,
				  'releases every deleted row');

/* ---------------------------------------------------------------------
 * MERGE
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('G', 1000);
CREATE TABLE shop.mg (id int PRIMARY KEY, cust text, amount numeric);
SELECT credit.attach_orders('shop.mg', 'cust', 'amount');
INSERT INTO shop.mg VALUES (1, 'G', 100), (2, 'G', 200), (3, 'G', 300);
SELECT lives_ok($$MERGE INTO shop.mg m
				  USING (VALUES (1, 'G', 150), (2, 'G', 0), (4, 'G', 400)) s(id, cust, amount)
				  ON m.id = s.id
				  WHEN MATCHED AND s.amount = 0 THEN DELETE
				  WHEN MATCHED THEN UPDATE SET amount = s.amount
				  WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.cust, s.amount)$$,
				'MERGE updating, deleting and inserting orders');
SELECT is(pg_temp.exposure('G'), 850::numeric, 'MERGE: 150 + 300 + 400');
SELECT throws_ok($$MERGE INTO shop.mg m
				   USING (VALUES (3, 'G', 100), (5, 'G', 350.01)) s(id, cust, amount)
				   ON m.id = s.id
				   WHEN MATCHED THEN UPDATE SET amount = s.amount
				   WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.cust, s.amount)$$,
				 'CR001', NULL, 'a MERGE whose insert exceeds the credit freed by its update is refused');
SELECT is(pg_temp.exposure('G'), 850::numeric, 'the refused MERGE changed nothing');
SELECT is((SELECT sum(amount) FROM shop.mg), 850::numeric, 'nor any row');
SELECT lives_ok($$MERGE INTO shop.mg m
				  USING (VALUES (3, 'G', 100), (5, 'G', 150)) s(id, cust, amount)
				  ON m.id = s.id
				  WHEN MATCHED THEN UPDATE SET amount = s.amount
				  WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.cust, s.amount)$$,
				'the same MERGE with an insert that fits');
SELECT is(pg_temp.exposure('G'), 800::numeric, 'MERGE applied exactly');
SELECT lives_ok($$MERGE INTO shop.mg m USING (VALUES (6, 'G', 200)) s(id, cust, amount) ON m.id = s.id
				  WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.cust, s.amount)$$,
				'a MERGE inserting exactly the available credit');
SELECT is(pg_temp.exposure('G'), 1000::numeric, 'the account is exactly full');

/* ---------------------------------------------------------------------
 * Bad input
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('B', 1000);
INSERT INTO credit.accounts (customer_key, credit_limit, status) VALUES ('BIG', 0, 'none');
CREATE TABLE shop.bad (id serial PRIMARY KEY, cust text, amount numeric, state text DEFAULT 'open');
SELECT credit.attach_orders('shop.bad', 'cust', 'amount', 'state', '{open}');
INSERT INTO shop.bad (id, cust, amount) VALUES (100, 'B', 10);

SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES (NULL, 10)$$,
				 '23502', NULL, 'an open order without a customer: 23502');
SELECT lives_ok($$INSERT INTO shop.bad (id, cust, amount, state) VALUES (101, NULL, 10, 'draft')$$,
				'a draft (not open) without a customer is accepted');
SELECT throws_ok($$UPDATE shop.bad SET state = 'open' WHERE id = 101$$,
				 '23502', NULL, 'opening an order without a customer: 23502');
SELECT throws_ok($$UPDATE shop.bad SET cust = NULL WHERE id = 100$$,
				 '23502', NULL, 'removing the customer of an open order: 23502');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('nobody', 10)$$,
				 'CR003', NULL, 'an order of a customer without an account: CR003');
SELECT matches(pg_temp.error_hint($$INSERT INTO shop.bad (cust, amount) VALUES ('nobody', 10)$$),
			   'INSERT INTO credit\.accounts .*''nobody''',
			   'the CR003 hint shows the INSERT INTO credit.accounts that opens the account');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('B', -0.01)$$,
				 '22023', NULL, 'a negative amount: 22023');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('B', 'NaN')$$,
				 '22023', NULL, 'a NaN amount: 22023');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('B', 'Infinity')$$,
				 '22023', NULL, 'an infinite amount: 22023');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('B', '-Infinity')$$,
				 '22023', NULL, 'an amount of -Infinity: 22023');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('BIG', 1e15)$$,
				 '22003', NULL, 'an amount of 1e15: 22003 (even with status none)');
SELECT throws_ok($$UPDATE shop.bad SET amount = -5 WHERE id = 100$$,
				 '22023', NULL, 'lowering an open order below 0: 22023');
SELECT throws_ok($$UPDATE shop.bad SET amount = 'NaN' WHERE id = 100$$,
				 '22023', NULL, 'updating an open order to NaN: 22023');
SELECT lives_ok($$INSERT INTO shop.bad (id, cust, amount, state) VALUES (102, 'B', -50, 'draft')$$,
				'a draft with a negative amount is not an open order and is accepted');
SELECT throws_ok($$UPDATE shop.bad SET state = 'open' WHERE id = 102$$,
				 '22023', NULL, 'opening an order with a negative amount: 22023');
SELECT is(pg_temp.exposure('B'), 10::numeric, 'none of the bad input changed the exposure');
SELECT is((SELECT count(*) FROM shop.bad), 3::bigint, 'nor stored a row');
/* the SQL a hint shows must work when pasted, whatever the key */
INSERT INTO credit.accounts (customer_key, credit_limit, status) VALUES ('O''Brien', 100, 'stop');
SELECT matches(pg_temp.error_hint($$INSERT INTO shop.bad (cust, amount) VALUES ('D''Arcy', 10)$$),
			   $$VALUES \('D''Arcy', $$,
			   'the CR003 hint quotes a key containing a quote as an SQL literal');
SELECT matches(pg_temp.error_hint($$INSERT INTO shop.bad (cust, amount) VALUES ('O''Brien', 10)$$),
			   $$customer_key = 'O''Brien'$$,
			   'the CR002 hint quotes a key containing a quote as an SQL literal');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('nobody', 0)$$,
				 'CR003', NULL, 'even an order of 0 needs an account');

SELECT lives_ok($$INSERT INTO shop.bad (id, cust, amount) VALUES (103, 'BIG', 999999999999999.99)$$,
				'status none: an amount just below 1e15 passes');
SELECT throws_ok($$INSERT INTO shop.bad (cust, amount) VALUES ('BIG', 0.01)$$,
				 '22003', NULL, 'exposure reaching 1e15: 22003');
SELECT is(pg_temp.exposure('BIG'), 999999999999999.99, 'the overflow changed nothing');
SELECT lives_ok($$DELETE FROM shop.bad WHERE id = 103$$, 'and the large order is released');

/* NULL amount counts as 0 */
SELECT lives_ok($$INSERT INTO shop.bad (id, cust, amount) VALUES (104, 'B', NULL)$$,
				'an open order with a NULL amount');
SELECT is(pg_temp.exposure('B'), 10::numeric, 'counts as 0');
SELECT lives_ok($$UPDATE shop.bad SET amount = 50 WHERE id = 104$$, 'NULL -> 50');
SELECT is(pg_temp.exposure('B'), 60::numeric, 'adds 50');
SELECT lives_ok($$UPDATE shop.bad SET amount = NULL WHERE id = 104$$, '50 -> NULL');
SELECT is(pg_temp.exposure('B'), 10::numeric, 'releases 50');
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'B';
SELECT lives_ok($$INSERT INTO shop.bad (id, cust, amount) VALUES (105, 'B', NULL)$$,
				'a NULL-amount order passes even on a stopped account');
SELECT lives_ok($$DELETE FROM shop.bad WHERE id IN (104, 105)$$, 'and NULL-amount orders are deleted');
SELECT is(pg_temp.exposure('B'), 10::numeric, 'without any change');

/* integer and bigint amount columns */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('I', 100);
CREATE TABLE shop.int_amt (id int PRIMARY KEY, cust text, amount integer);
CREATE TABLE shop.big_amt (id int PRIMARY KEY, cust text, amount bigint);
SELECT credit.attach_orders('shop.int_amt', 'cust', 'amount');
SELECT credit.attach_orders('shop.big_amt', 'cust', 'amount');
SELECT lives_ok($$INSERT INTO shop.int_amt VALUES (1, 'I', 60)$$, 'integer amount');
SELECT lives_ok($$INSERT INTO shop.big_amt VALUES (1, 'I', 40)$$, 'bigint amount');
SELECT is(pg_temp.exposure('I'), 100::numeric, 'integer and bigint amounts add up exactly');
SELECT throws_ok($$INSERT INTO shop.int_amt VALUES (2, 'I', 1)$$, 'CR001', NULL, 'integer amount: limit enforced');
SELECT throws_ok($$INSERT INTO shop.big_amt VALUES (2, 'I', 1)$$, 'CR001', NULL, 'bigint amount: limit enforced');
SELECT throws_ok($$INSERT INTO shop.int_amt VALUES (3, 'I', -1)$$, '22023', NULL, 'negative integer amount: 22023');
SELECT throws_ok($$INSERT INTO shop.big_amt VALUES (3, 'I', 1000000000000000)$$,
				 '22003', NULL, 'bigint amount of 1e15: 22003');
SELECT lives_ok($$UPDATE shop.big_amt SET amount = 10 WHERE id = 1$$, 'lower a bigint amount');
SELECT lives_ok($$UPDATE shop.int_amt SET amount = 90 WHERE id = 1$$, 'raise an integer amount into the freed credit');
SELECT is(pg_temp.exposure('I'), 100::numeric, 'exact');

/* ---------------------------------------------------------------------
 * 3000 single-row updates across 20 accounts in one transaction: the
 * ledger's updates cannot all be HOT, so it must add index entries
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit)
SELECT 'H' || lpad(i::text, 2, '0'), 1000000 FROM generate_series(1, 20) i;
CREATE TABLE shop.hot (id int PRIMARY KEY, cust text, amount numeric);
SELECT credit.attach_orders('shop.hot', 'cust', 'amount');
INSERT INTO shop.hot SELECT i, 'H' || lpad((i % 20 + 1)::text, 2, '0'), 1 FROM generate_series(1, 100) i;
SELECT lives_ok($q$DO $do$
BEGIN
	FOR i IN 1..3000 LOOP
		UPDATE shop.hot SET amount = amount + (i % 7) WHERE id = i % 100 + 1;
	END LOOP;
END $do$$q$,
				'3000 single-row updates across 20 customers');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint,
		  'after 3000 updates every exposure is exact');
SELECT is((SELECT sum(credit.live_exposure(customer_key, exposure)) FROM credit.accounts WHERE customer_key LIKE 'H%'),
		  (SELECT sum(amount) FROM shop.hot), 'the total matches the orders');
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM shop.hot h
			WHERE (SELECT credit.live_exposure(a.customer_key, a.exposure) FROM credit.accounts a WHERE a.customer_key = h.cust COLLATE "C")
				= (SELECT sum(amount) FROM shop.hot h2 WHERE h2.cust = h.cust)), 100::bigint,
		  'with index scans only, each account is found by customer_key with its exact exposure');
SELECT ok(NOT EXISTS (SELECT 1 FROM generate_series(1, 20) i
					   WHERE NOT EXISTS (SELECT 1 FROM credit.accounts a
										  WHERE a.customer_key = 'H' || lpad(i::text, 2, '0'))),
		  'with index scans only, all 20 accounts are found');
SELECT lives_ok($$UPDATE shop.hot SET amount = amount + 1$$,
				'the ledger still finds every account through the index');
RESET enable_seqscan;
RESET enable_bitmapscan;
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT lives_ok($$SELECT bt_index_check('credit.accounts_pkey', true)$$,
				'amcheck: every row version of credit.accounts is in its primary key index');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile is empty at the end');

SELECT * FROM finish();
ROLLBACK;
