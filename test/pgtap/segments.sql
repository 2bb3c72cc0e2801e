/*
 * segments.sql: pgTAP suite for credit segments (per-company or
 * business-unit limits): attach_orders(..., segment_column) makes each row
 * count on the account customer/segment, with the customer's own account,
 * when it is the segments' parent, as the overall limit above them.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(29);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.figures() RETURNS TABLE (k text, e numeric)
LANGUAGE sql AS $$ SELECT customer_key, credit.live_exposure(customer_key, exposure) FROM credit.accounts ORDER BY 1 $$;

CREATE SCHEMA erp;
CREATE TABLE erp.orders (id int PRIMARY KEY, cust bigint NOT NULL, bu text, amount numeric(12,2) NOT NULL,
						 state text NOT NULL DEFAULT 'open');

/* customer 1001: overall limit 1,000 above north and south (600 each); customer 2002: south only */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('1001', 1000);
INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
VALUES ('1001/north', 600, '1001'), ('1001/south', 600, '1001');
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('2002/south', 300);

/* rows already there: north 100 and one without a segment (50, on 1001 itself) */
INSERT INTO erp.orders VALUES (1, 1001, 'north', 100), (2, 1001, NULL, 50);

/* attach: type and content checks */
SELECT throws_ok($$SELECT credit.attach_orders('erp.orders', 'cust', 'amount', 'state', '{open}',
												segment_column => 'no_such')$$,
				 '42703', NULL, 'attach with an unknown segment column: 42703');
CREATE TABLE erp.badseg (id int, cust int, seg numeric, amount numeric);
SELECT throws_ok($$SELECT credit.attach_orders('erp.badseg', 'cust', 'amount', segment_column => 'seg')$$,
				 '42804', NULL, 'attach with a numeric segment column: 42804');
CREATE TABLE erp.slash (id int, cust int, seg text, amount numeric);
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('7', 100);
INSERT INTO erp.slash VALUES (1, 7, 'a/b', 1);
SELECT throws_ok($$SELECT credit.attach_orders('erp.slash', 'cust', 'amount', segment_column => 'seg')$$,
				 '22023', NULL, 'attach when an open row''s segment contains "/": 22023');
UPDATE erp.slash SET seg = '';
SELECT throws_ok($$SELECT credit.attach_orders('erp.slash', 'cust', 'amount', segment_column => 'seg')$$,
				 '22023', NULL, 'attach when an open row''s segment is empty: 22023');
SELECT is((SELECT count(*) FROM credit.attachments WHERE orders = 'erp.slash'::regclass), 0::bigint,
		  'a refused attach leaves no attachment');

SELECT lives_ok($$SELECT credit.attach_orders('erp.orders', 'cust', 'amount', 'state', '{open}',
											   segment_column => 'bu')$$,
				'attach_orders with segment_column');
SELECT results_eq('SELECT * FROM pg_temp.figures()',
				  $$VALUES ('1001', 150::numeric), ('1001/north', 100), ('1001/south', 0),
						   ('2002/south', 0), ('7', 0)$$,
				  'the rows already there count on their segment, rolled up to the customer (100 + 50)');
SELECT is((SELECT segment_column FROM credit.attachments WHERE orders = 'erp.orders'::regclass),
		  'bu'::name, 'credit.attachments records the segment column');

/* each segment's own limit */
SELECT lives_ok($$INSERT INTO erp.orders VALUES (3, 1001, 'north', 500)$$,
				'north takes 500 more: 600 of its 600');
SELECT throws_ok($$INSERT INTO erp.orders VALUES (4, 1001, 'north', 0.01)$$,
				 'CR001', 'credit limit of customer "1001/north" exceeded',
				 'north is at its limit: CR001 names the segment account');
/* the overall limit above the segments: 650 used, 350 left, south alone could take 600 */
SELECT throws_ok($$INSERT INTO erp.orders VALUES (5, 1001, 'south', 400)$$,
				 'CR001', 'credit limit of group "1001" exceeded',
				 'south fits its own 600 but not the customer''s overall 350 left: CR001 names the overall account');
SELECT lives_ok($$INSERT INTO erp.orders VALUES (6, 1001, 'south', 350)$$,
				'350 on south fits both');
SELECT results_eq('SELECT * FROM pg_temp.figures()',
				  $$VALUES ('1001', 1000::numeric), ('1001/north', 600), ('1001/south', 350),
						   ('2002/south', 300 - 300), ('7', 0)$$,
				  'figures: north 600, south 350, overall 1,000 (50 of its own)');

/* a segment account with no overall account above it */
SELECT lives_ok($$INSERT INTO erp.orders VALUES (7, 2002, 'south', 300)$$,
				'2002/south takes its whole 300 (no overall account)');
SELECT throws_ok($$INSERT INTO erp.orders VALUES (8, 2002, 'south', 1)$$,
				 'CR001', 'credit limit of customer "2002/south" exceeded', 'then refuses');

/* unknown segment account, bad segments at the trigger */
SELECT throws_ok($$INSERT INTO erp.orders VALUES (9, 1001, 'west', 1)$$,
				 'CR003', 'customer "1001/west" has no credit account',
				 'a segment without an account: CR003 naming customer/segment');
SELECT throws_ok($$INSERT INTO erp.orders VALUES (10, 1001, 'x/y', 1)$$,
				 '22023', NULL, 'a segment containing "/": 22023');
SELECT throws_ok($$INSERT INTO erp.orders VALUES (11, 1001, '', 1)$$,
				 '22023', NULL, 'an empty segment: 22023');
SELECT throws_ok($$INSERT INTO erp.orders VALUES (12, 2002, NULL, 1)$$,
				 'CR003', 'customer "2002" has no credit account',
				 'a NULL segment counts on the customer''s own account (2002 has none: CR003)');

/* moving an order between segments moves its exposure, checked on the new segment */
SELECT throws_ok($$UPDATE erp.orders SET bu = 'south' WHERE id = 3$$,
				 'CR001', NULL, 'moving north''s 500 to south (350 used of 600) is refused');
SELECT lives_ok($$UPDATE erp.orders SET amount = 200 WHERE id = 3$$, 'north''s order lowered to 200');
SELECT lives_ok($$UPDATE erp.orders SET bu = 'south' WHERE id = 3$$, 'then moved to south');
SELECT results_eq('SELECT * FROM pg_temp.figures()',
				  $$VALUES ('1001', 700::numeric), ('1001/north', 100), ('1001/south', 550),
						   ('2002/south', 300), ('7', 0)$$,
				  'figures after the move: north 100, south 550, overall 700');
SELECT lives_ok($$UPDATE erp.orders SET state = 'shipped' WHERE id = 6$$, 'closing an order releases it');
SELECT results_eq($$SELECT pg_temp.exposure('1001/south'), pg_temp.exposure('1001')$$,
				  $$VALUES (200::numeric, 350::numeric)$$, 'from the segment and the overall account');

SELECT is_empty('SELECT * FROM credit.reconcile()', 'reconcile agrees with segments and their overall account');

/* TRUNCATE and detach release every segment */
SELECT lives_ok('TRUNCATE erp.orders', 'TRUNCATE of a segmented table');
SELECT results_eq('SELECT sum(e) FROM pg_temp.figures()', $$VALUES (0::numeric)$$,
				  'releases every segment and the overall account');
SELECT is_empty('SELECT * FROM credit.reconcile()', 'reconcile agrees after TRUNCATE');

SELECT * FROM finish();
ROLLBACK;
