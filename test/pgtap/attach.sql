/*
 * attach.sql: pgTAP suite for credit.attach_orders, credit.detach_orders,
 * credit.reconcile and what happens to attached tables under DDL.
 *
 * Every refusal of attach/detach with its SQLSTATE and nothing attached
 * afterwards; every supported key type; quoted, mixed-case and spaced
 * names; the open orders already in a table; detach; ALTER TABLE and
 * DROP TABLE of attached tables; reconcile after drift.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(116);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;
/* user triggers on a table (the credit triggers, when attached) */
CREATE FUNCTION pg_temp.triggers(t regclass) RETURNS text[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(tgname::text ORDER BY tgname), '{}')
	  FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal $$;
CREATE FUNCTION pg_temp.attached(t regclass) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM credit.attachments WHERE orders = t) $$;

CREATE SCHEMA shop;
CREATE TYPE shop.order_state AS ENUM ('draft', 'open', 'closed');
CREATE TABLE shop.orders (
	id		int PRIMARY KEY,
	cust	bigint,
	amount	numeric,
	state	text,
	f8		float8,
	m		money,
	flag	boolean,
	js		jsonb,
	st		shop.order_state
);
INSERT INTO credit.accounts (customer_key, credit_limit)
VALUES ('1', 1000), ('2', 1000), ('3', 100);

/* ---------------------------------------------------------------------
 * Refusals
 * ------------------------------------------------------------------- */

SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'nope', 'amount')$$,
				 '42703', NULL, 'missing customer column: 42703');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'nope')$$,
				 '42703', NULL, 'missing amount column: 42703');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'nope', '{open}')$$,
				 '42703', NULL, 'missing status column: 42703');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'f8')$$,
				 '42804', NULL, 'float8 amount: 42804');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'm')$$,
				 '42804', NULL, 'money amount: 42804');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'flag', 'amount')$$,
				 '42804', NULL, 'boolean customer: 42804');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'js', '{open}')$$,
				 '42804', NULL, 'jsonb status: 42804');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state')$$,
				 '22023', NULL, 'status_column without open_statuses: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', NULL, '{open}')$$,
				 '22023', NULL, 'open_statuses without status_column: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{}')$$,
				 '22023', NULL, 'empty open_statuses: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open,NULL}')$$,
				 '22023', NULL, 'a NULL among open_statuses: 22023');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'st', '{open,shipped}')$$,
				 '22P02', NULL, 'an open status that is not a value of the enum: 22P02');

CREATE VIEW shop.orders_view AS SELECT id, cust, amount FROM shop.orders;
CREATE TABLE shop.orders_part (id int, cust bigint, amount numeric) PARTITION BY RANGE (id);
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders_view', 'cust', 'amount')$$,
				 '42809', NULL, 'a view cannot be attached: 42809');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders_part', 'cust', 'amount')$$,
				 '42809', NULL, 'a partitioned table cannot be attached: 42809');
SELECT throws_ok($$SELECT credit.detach_orders('shop.orders')$$,
				 '42704', NULL, 'detach of a table that is not attached: 42704');
SELECT is((SELECT count(*) FROM credit.attachments WHERE NOT builtin), 0::bigint,
		  'after the refusals nothing is attached');
SELECT is(pg_temp.triggers('shop.orders'), '{}'::text[],
		  'after the refusals the table carries no trigger');

SELECT lives_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'st', '{open}')$$,
				'an enum status column with a valid open status attaches');
SELECT is(pg_temp.triggers('shop.orders'), '{credit_enforce,credit_enforce_truncate}'::text[],
		  'attach creates the row and TRUNCATE triggers');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount')$$,
				 '42710', NULL, 'attaching twice: 42710');
SELECT is((SELECT count(*) FROM credit.attachments WHERE NOT builtin), 1::bigint,
		  'the second attach added nothing');
SELECT lives_ok($$INSERT INTO shop.orders (id, cust, amount, st) VALUES (1, 1, 100, 'open'), (2, 1, 901, 'draft')$$,
				'orders on the enum-status table');
SELECT is(pg_temp.exposure('1'), 100::numeric, 'only the enum status listed as open counts');
SELECT throws_ok($$UPDATE shop.orders SET st = 'open' WHERE id = 2$$,
				 'CR001', NULL, 'opening a draft past the limit is refused');
SELECT lives_ok($$SELECT credit.detach_orders('shop.orders')$$, 'detach');
SELECT is(pg_temp.exposure('1'), 0::numeric, 'detach released the open order');

/* open orders of a customer without an account: CR003, nothing attached */
INSERT INTO shop.orders (id, cust, amount, state) VALUES (10, 2, 40, 'open'), (11, 999, 5, 'open'),
														 (12, 998, 5, 'closed');
SELECT throws_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}')$$,
				 'CR003', NULL, 'existing open orders of a customer without an account: CR003');
SELECT ok(NOT pg_temp.attached('shop.orders'), 'after CR003 the table is not attached');
SELECT is(pg_temp.triggers('shop.orders'), '{}'::text[], 'after CR003 the table has no trigger');
SELECT is(pg_temp.exposure('2'), 0::numeric, 'after CR003 no exposure was added for the other customers');
UPDATE shop.orders SET state = 'closed' WHERE id = 11;
SELECT lives_ok($$SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}')$$,
				'a closed order of a customer without an account does not block attach');
SELECT is(pg_temp.exposure('2'), 40::numeric, 'the existing open order was counted');
SELECT lives_ok($$SELECT credit.detach_orders('shop.orders')$$, 'detach again');

/* ---------------------------------------------------------------------
 * Customer key, amount and status types
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit)
VALUES ('9000000001', 100), ('70001', 100), ('301', 100), ('cust-α', 100), ('V-7', 100),
	   ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 100);
CREATE TABLE shop.k_bigint (cust bigint, amount numeric);
CREATE TABLE shop.k_int (cust integer, amount integer);
CREATE TABLE shop.k_small (cust smallint, amount bigint);
CREATE TABLE shop.k_text (cust text, amount smallint);
CREATE TABLE shop.k_varchar (cust varchar(20), amount numeric(12,2));
CREATE TABLE shop.k_uuid (cust uuid, amount numeric);
INSERT INTO shop.k_uuid VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 10);

SELECT lives_ok($$SELECT credit.attach_orders('shop.k_bigint', 'cust', 'amount')$$, 'bigint key attaches');
SELECT lives_ok($$SELECT credit.attach_orders('shop.k_int', 'cust', 'amount')$$, 'integer key, integer amount attach');
SELECT lives_ok($$SELECT credit.attach_orders('shop.k_small', 'cust', 'amount')$$, 'smallint key, bigint amount attach');
SELECT lives_ok($$SELECT credit.attach_orders('shop.k_text', 'cust', 'amount')$$, 'text key, smallint amount attach');
SELECT lives_ok($$SELECT credit.attach_orders('shop.k_varchar', 'cust', 'amount')$$, 'varchar key attaches');
SELECT lives_ok($$SELECT credit.attach_orders('shop.k_uuid', 'cust', 'amount')$$, 'uuid key attaches');
SELECT is(pg_temp.exposure('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 10::numeric,
		  'an existing order with an upper-case uuid counts for the lower-case key');

SELECT lives_ok($$INSERT INTO shop.k_bigint VALUES (9000000001, 60)$$, 'bigint key: order passes');
SELECT lives_ok($$INSERT INTO shop.k_int VALUES (70001, 60)$$, 'integer key: order passes');
SELECT lives_ok($$INSERT INTO shop.k_small VALUES (301, 60)$$, 'smallint key: order passes');
SELECT lives_ok($$INSERT INTO shop.k_text VALUES ('cust-α', 60)$$, 'text key: order passes');
SELECT lives_ok($$INSERT INTO shop.k_varchar VALUES ('V-7', 60)$$, 'varchar key: order passes');
SELECT lives_ok($$INSERT INTO shop.k_uuid VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 50)$$,
				'uuid key given in upper case: order passes');
SELECT throws_ok($$INSERT INTO shop.k_bigint VALUES (9000000001, 41)$$, 'CR001', NULL, 'bigint key: limit enforced');
SELECT throws_ok($$INSERT INTO shop.k_int VALUES (70001, 41)$$, 'CR001', NULL, 'integer key: limit enforced');
SELECT throws_ok($$INSERT INTO shop.k_small VALUES (301, 41)$$, 'CR001', NULL, 'smallint key: limit enforced');
SELECT throws_ok($$INSERT INTO shop.k_text VALUES ('cust-α', 41)$$, 'CR001', NULL, 'text key: limit enforced');
SELECT throws_ok($$INSERT INTO shop.k_varchar VALUES ('V-7', 40.01)$$, 'CR001', NULL, 'varchar key: limit enforced');
SELECT throws_ok($$INSERT INTO shop.k_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 41)$$,
				 'CR001', NULL, 'uuid key: limit enforced');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure) FROM credit.accounts
					 WHERE customer_key IN ('9000000001', '70001', '301', 'cust-α', 'V-7',
											'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
					 ORDER BY customer_key$$,
				  $$VALUES ('301', 60::numeric), ('70001', 60::numeric), ('9000000001', 60::numeric),
						   ('V-7', 60::numeric), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 60::numeric),
						   ('cust-α', 60::numeric)$$,
				  'each key type keeps its account''s exposure exactly');

/* integer status column */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('400', 100);
CREATE TABLE shop.int_status (cust int, amount numeric, status int);
SELECT lives_ok($$SELECT credit.attach_orders('shop.int_status', 'cust', 'amount', 'status', '{1,2}')$$,
				'an integer status column attaches');
SELECT lives_ok($$INSERT INTO shop.int_status VALUES (400, 30, 1), (400, 30, 2), (400, 99, 3), (400, 99, NULL)$$,
				'orders with statuses 1, 2, 3 and NULL');
SELECT is(pg_temp.exposure('400'), 60::numeric, 'only statuses 1 and 2 count; NULL status does not');

/* ---------------------------------------------------------------------
 * Quoted, mixed-case and spaced names; existing open orders
 * ------------------------------------------------------------------- */

CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order Book" (
	"Order No"		serial PRIMARY KEY,
	"Cust ID"		text,
	"Total Amount"	numeric,
	"Order State"	text
);
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('Acme Co', 1000), ('Beta "B"', 100);
INSERT INTO "Sales Dept"."Order Book" ("Cust ID", "Total Amount", "Order State")
VALUES ('Acme Co', 300, 'Open'), ('Acme Co', 200, 'Confirmed'), ('Acme Co', 5000, 'Closed'),
	   ('Acme Co', NULL, 'Open'), ('Acme Co', 7000, NULL), ('Beta "B"', 150, 'Open');
SELECT lives_ok($$SELECT credit.attach_orders('"Sales Dept"."Order Book"', 'Cust ID', 'Total Amount',
											  'Order State', '{Open,Confirmed}')$$,
				'a table with quoted, mixed-case, spaced schema, table and column names attaches');
SELECT is(pg_temp.exposure('Acme Co'), 500::numeric,
		  'attach counted the open orders already in the table (closed, NULL status and NULL amount not)');
SELECT is(pg_temp.exposure('Beta "B"'), 150::numeric, 'existing orders beyond the limit are counted too');
SELECT is(pg_temp.status('Beta "B"'), 'hold', 'and the account goes on hold');
SELECT is(pg_temp.status('Acme Co'), 'ok', 'an account within its limit stays ok');
SELECT lives_ok($$INSERT INTO "Sales Dept"."Order Book" ("Cust ID", "Total Amount", "Order State")
				  VALUES ('Acme Co', 500, 'Open')$$,
				'an order that exactly fits passes');
SELECT throws_ok($$INSERT INTO "Sales Dept"."Order Book" ("Cust ID", "Total Amount", "Order State")
				   VALUES ('Acme Co', 0.01, 'Confirmed')$$,
				 'CR001', NULL, 'the next one is refused');
SELECT lives_ok($$UPDATE "Sales Dept"."Order Book" SET "Order State" = 'Closed'
				   WHERE "Cust ID" = 'Beta "B"'$$,
				'closing the order of the customer on hold');
SELECT is(pg_temp.exposure('Beta "B"'), 0::numeric, 'closing released it');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile agrees after normal use');
SELECT lives_ok($$TRUNCATE "Sales Dept"."Order Book"$$, 'TRUNCATE of the quoted table');
SELECT is(pg_temp.exposure('Acme Co'), 0::numeric, 'TRUNCATE released its open orders');
SELECT lives_ok($$SELECT credit.detach_orders('"Sales Dept"."Order Book"')$$, 'detach of the quoted table');

/* ---------------------------------------------------------------------
 * Detach
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('D', 1000);
CREATE TABLE shop.d1 (cust text, amount numeric);
CREATE TABLE shop.d2 (cust text, amount numeric);
SELECT credit.attach_orders('shop.d1', 'cust', 'amount');
SELECT credit.attach_orders('shop.d2', 'cust', 'amount');
INSERT INTO shop.d1 VALUES ('D', 300), ('D', 200);
INSERT INTO shop.d2 VALUES ('D', 100);
SELECT is(pg_temp.exposure('D'), 600::numeric, 'exposure sums two attached tables');
SELECT lives_ok($$SELECT credit.detach_orders('shop.d1')$$, 'detach one of them');
SELECT is(pg_temp.exposure('D'), 100::numeric, 'detach released exactly that table''s open orders');
SELECT is(pg_temp.triggers('shop.d1'), '{}'::text[], 'detach removed the triggers');
SELECT ok(NOT pg_temp.attached('shop.d1'), 'detach removed the attachments row');
SELECT lives_ok($$INSERT INTO shop.d1 VALUES ('D', 5000), ('nobody', 1)$$,
				'a detached table is no longer checked');
SELECT is(pg_temp.exposure('D'), 100::numeric, 'and no longer counted');
SELECT throws_ok($$SELECT credit.detach_orders('shop.d1')$$, '42704', NULL, 'detaching twice: 42704');
SELECT lives_ok($$DELETE FROM shop.d1 WHERE cust = 'nobody'$$, 'clean up the detached table');
SELECT lives_ok($$SELECT credit.attach_orders('shop.d1', 'cust', 'amount')$$,
				'attach again: existing orders past the limit are accepted (they already exist)');
SELECT is(pg_temp.exposure('D'), 5600::numeric, 'the re-attach counted every existing open order');
SELECT is(pg_temp.status('D'), 'hold', 'the account is on hold');
SELECT lives_ok($$DELETE FROM shop.d1 WHERE amount = 5000$$, 'delete the large order');
SELECT is(pg_temp.exposure('D'), 600::numeric, 'and the account recovers');

/* ---------------------------------------------------------------------
 * ALTER TABLE on an attached table: the trigger follows the columns
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('AL', 1000);
CREATE TABLE shop.alt (id serial PRIMARY KEY, note text, memo text, cust text, amount numeric, state text);
SELECT credit.attach_orders('shop.alt', 'cust', 'amount', 'state', '{open}');
INSERT INTO shop.alt (cust, amount, state) VALUES ('AL', 100, 'open');
ALTER TABLE shop.alt DROP COLUMN note;
SELECT lives_ok($$INSERT INTO shop.alt (cust, amount, state) VALUES ('AL', 200, 'open')$$,
				'insert after DROP COLUMN of an unrelated column');
SELECT is(pg_temp.exposure('AL'), 300::numeric, 'counted after DROP COLUMN');
ALTER TABLE shop.alt ADD COLUMN extra int DEFAULT 7;
ALTER TABLE shop.alt DROP COLUMN memo;
ALTER TABLE shop.alt ADD COLUMN memo2 text;
SELECT lives_ok($$UPDATE shop.alt SET amount = amount + 50, extra = 8 WHERE amount = 100$$,
				'update after ADD and DROP COLUMN');
SELECT is(pg_temp.exposure('AL'), 350::numeric, 'the amount change is counted after ADD and DROP COLUMN');
SELECT throws_ok($$INSERT INTO shop.alt (cust, amount, state, extra) VALUES ('AL', 651, 'open', 1)$$,
				 'CR001', NULL, 'the limit is still enforced after the columns moved');
SELECT lives_ok($$UPDATE shop.alt SET state = 'closed' WHERE amount = 200$$, 'close an order after the DDL');
SELECT is(pg_temp.exposure('AL'), 150::numeric, 'closing is counted after the DDL');
ALTER TABLE shop.alt ALTER COLUMN amount TYPE bigint;
SELECT lives_ok($$INSERT INTO shop.alt (cust, amount, state) VALUES ('AL', 25, 'open')$$,
				'insert after the amount column became bigint');
SELECT is(pg_temp.exposure('AL'), 175::numeric, 'a bigint amount is read correctly after ALTER COLUMN TYPE');
ALTER TABLE shop.alt RENAME COLUMN cust TO customer;
SELECT throws_ok($$INSERT INTO shop.alt (customer, amount, state) VALUES ('AL', 1, 'open')$$,
				 '42703', NULL, 'a renamed attached column: 42703 from the trigger');
ALTER TABLE shop.alt RENAME COLUMN customer TO cust;
ALTER TABLE shop.alt ALTER COLUMN amount TYPE float8;
SELECT throws_ok($$INSERT INTO shop.alt (cust, amount, state) VALUES ('AL', 1, 'open')$$,
				 '42804', NULL, 'an attached amount column changed to float8: 42804 from the trigger');
ALTER TABLE shop.alt ALTER COLUMN amount TYPE numeric;
SELECT is(pg_temp.exposure('AL'), 175::numeric, 'the refused statements changed nothing');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile agrees after the DDL');

/* ---------------------------------------------------------------------
 * DROP TABLE and DROP SCHEMA of attached tables
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('DR', 1000);
CREATE TABLE shop.dropme (cust text, amount numeric);
CREATE SCHEMA gone;
CREATE TABLE gone.t1 (cust text, amount numeric);
CREATE TABLE gone.t2 (cust text, amount numeric);
SELECT credit.attach_orders('shop.dropme', 'cust', 'amount');
SELECT credit.attach_orders('gone.t1', 'cust', 'amount');
SELECT credit.attach_orders('gone.t2', 'cust', 'amount');
INSERT INTO shop.dropme VALUES ('DR', 100);
INSERT INTO gone.t1 VALUES ('DR', 20);
INSERT INTO gone.t2 VALUES ('DR', 3);
SELECT lives_ok($$DROP TABLE shop.dropme$$, 'DROP TABLE of an attached table');
SELECT is((SELECT count(*) FROM credit.attachments a
			WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = a.orders)), 0::bigint,
		  'DROP TABLE leaves no row in credit.attachments');
SELECT is(pg_temp.exposure('DR'), 23::numeric, 'DROP TABLE released its open orders');
SELECT lives_ok($$DROP SCHEMA gone CASCADE$$, 'DROP SCHEMA CASCADE with two attached tables');
SELECT is((SELECT count(*) FROM credit.attachments a
			WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = a.orders)), 0::bigint,
		  'DROP SCHEMA leaves no row in credit.attachments');
SELECT is(pg_temp.exposure('DR'), 0::numeric, 'DROP SCHEMA released their open orders');

/* ---------------------------------------------------------------------
 * reconcile
 * ------------------------------------------------------------------- */

SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'reconcile returns nothing after normal use');
/*
 * drift the serving ledger's figures on purpose: the shared-memory ledger's
 * (credit.adjust_shared_exposure, no roll-up; it serves no account without the
 * preload) and the stored column, the row ledger's figure (a copy of the
 * live figure when the shared-memory ledger serves)
 */
SELECT NULL FROM credit.adjust_shared_exposure(ARRAY['AL', 'D', '2'], ARRAY[25, 390, 7]::numeric[]);
UPDATE credit.accounts SET exposure = exposure + 25 WHERE customer_key = 'AL';
UPDATE credit.accounts SET exposure = 990 WHERE customer_key = 'D';
UPDATE credit.accounts SET exposure = 7 WHERE customer_key = '2';
SELECT results_eq($$SELECT customer_key COLLATE "default", stored_exposure, computed_exposure, difference
					  FROM credit.reconcile()$$,
				  $$VALUES ('2', 7::numeric, 0::numeric, 7::numeric),
						   ('AL', 200::numeric, 175::numeric, 25::numeric),
						   ('D', 990::numeric, 600::numeric, 390::numeric)$$,
				  'reconcile reports each drifted account with stored, computed and difference');
SELECT is(pg_temp.status('D'), 'watch', 'the drift itself was derived into the status');
SELECT is(pg_temp.exposure('AL'), 200::numeric, 'reconcile without repair changes nothing');
SELECT is((SELECT count(*) FROM credit.reconcile(true)), 3::bigint, 'reconcile(true) reports the three');
SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint, 'and repaired them');
SELECT results_eq($$SELECT customer_key COLLATE "default", credit.live_exposure(customer_key, exposure), status FROM credit.accounts
					 WHERE customer_key IN ('2', 'AL', 'D') ORDER BY customer_key$$,
				  $$VALUES ('2', 0::numeric, 'ok'), ('AL', 175::numeric, 'ok'), ('D', 600::numeric, 'ok')$$,
				  'the repaired exposure and status');
SELECT throws_ok($$INSERT INTO shop.d1 VALUES ('D', 400.01)$$, 'CR001', NULL,
				 'after repair the limit is checked against the true exposure');
SELECT lives_ok($$INSERT INTO shop.d1 VALUES ('D', 400)$$, 'and exactly the remaining credit passes');

/* ---------------------------------------------------------------------
 * Attach refuses existing open orders the trigger would refuse
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('BAD', 100);
CREATE TABLE shop.badnull (cust text, amount numeric);
INSERT INTO shop.badnull VALUES (NULL, 10), ('BAD', 5);
SELECT throws_ok($$SELECT credit.attach_orders('shop.badnull', 'cust', 'amount')$$,
				 '23502', NULL, 'an existing open order without a customer: attach refuses with 23502');
CREATE TABLE shop.badneg (cust text, amount numeric);
INSERT INTO shop.badneg VALUES ('BAD', -3);
SELECT throws_ok($$SELECT credit.attach_orders('shop.badneg', 'cust', 'amount')$$,
				 '22023', NULL, 'an existing open order with a negative amount: attach refuses with 22023');
CREATE TABLE shop.badnan (cust text, amount numeric);
INSERT INTO shop.badnan VALUES ('BAD', 'NaN');
SELECT throws_ok($$SELECT credit.attach_orders('shop.badnan', 'cust', 'amount')$$,
				 '22023', NULL, 'an existing open order with a NaN amount: attach refuses with 22023');
SELECT is(pg_temp.exposure('BAD'), 0::numeric, 'the refused attaches added nothing');
SELECT is((SELECT count(*) FROM credit.attachments WHERE orders::text LIKE 'shop.bad%'), 0::bigint,
		  'the refused attaches left no attachment');

SELECT * FROM finish();
ROLLBACK;
