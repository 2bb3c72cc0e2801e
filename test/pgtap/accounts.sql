/*
 * accounts.sql: pgTAP suite for credit.accounts.
 *
 * The constraints a credit controller relies on, COPY into the table,
 * the status rules (ok, watch, hold derived; none and stop set by people),
 * the status history, and temporary limits inside and outside their window
 * with the limit functions and the balances view.  Runs in one transaction
 * and rolls back; now() is the transaction's start, so windows are exact.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(118);

CREATE FUNCTION pg_temp.exposure(k text) RETURNS numeric
LANGUAGE sql AS $$ SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status FROM credit.accounts WHERE customer_key = k $$;

/* ---------------------------------------------------------------------
 * Constraints: every malformed account is refused with 23514
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', -1)$$,
				 '23514', NULL, 'a negative credit limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', -0.01)$$,
				 '23514', NULL, 'a credit limit of -0.01 is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', 'NaN')$$,
				 '23514', NULL, 'a NaN credit limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', 'Infinity')$$,
				 '23514', NULL, 'an infinite credit limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', '-Infinity')$$,
				 '23514', NULL, 'a credit limit of -Infinity is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('bad', 1e15)$$,
				 '23514', NULL, 'a credit limit of 1e15 is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_until)
				   VALUES ('bad', 100, -5, now() + interval '1 day')$$,
				 '23514', NULL, 'a negative temporary limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_until)
				   VALUES ('bad', 100, 'NaN', now() + interval '1 day')$$,
				 '23514', NULL, 'a NaN temporary limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_until)
				   VALUES ('bad', 100, 'Infinity', now() + interval '1 day')$$,
				 '23514', NULL, 'an infinite temporary limit is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, currency) VALUES ('bad', 'usd')$$,
				 '23514', NULL, 'currency in lower case is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, currency) VALUES ('bad', 'US')$$,
				 '23514', NULL, 'a two-letter currency is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, currency) VALUES ('bad', 'USDX')$$,
				 '23514', NULL, 'a four-letter currency is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_from, temp_limit_until)
				   VALUES ('bad', 100, 50, now(), now() - interval '1 day')$$,
				 '23514', NULL, 'a temporary window that ends before it starts is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_from, temp_limit_until)
				   VALUES ('bad', 100, 50, now(), now())$$,
				 '23514', NULL, 'an empty temporary window (until = from) is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_from)
				   VALUES ('bad', 100, 50, now())$$,
				 '23514', NULL, 'a temporary limit > 0 without an end is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, watch_ratio) VALUES ('bad', 0)$$,
				 '23514', NULL, 'watch_ratio 0 is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, watch_ratio) VALUES ('bad', 1.01)$$,
				 '23514', NULL, 'watch_ratio above 1 is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, watch_ratio) VALUES ('bad', 'NaN')$$,
				 '23514', NULL, 'a NaN watch_ratio is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key, status) VALUES ('bad', 'frozen')$$,
				 '23514', NULL, 'an unknown status is refused');
SELECT throws_ok($$INSERT INTO credit.accounts (customer_key) VALUES ('')$$,
				 '23514', NULL, 'an empty customer key is refused');
SELECT is((SELECT count(*) FROM credit.accounts), 0::bigint,
		  'none of the malformed accounts was stored');

/* boundaries that are valid */
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, currency, watch_ratio)
				  VALUES ('edge', 999999999999999.99, 'USD', 1)$$,
				'limit just below 1e15, currency USD and watch_ratio 1 are accepted');
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit)
				  VALUES ('zero', 0, 0)$$,
				'a zero limit without a temporary limit needs no window');
SELECT is(pg_temp.status('zero'), 'ok', 'an account with limit 0 and no exposure is ok, not watch');
SELECT is((SELECT currency FROM credit.accounts WHERE customer_key = 'zero'), 'CNY',
		  'currency defaults to CNY');

/* an UPDATE is held to the same constraints, and leaves the row as it was */
SELECT throws_ok($$UPDATE credit.accounts SET credit_limit = -1 WHERE customer_key = 'edge'$$,
				 '23514', NULL, 'lowering a limit below 0 by UPDATE is refused');
SELECT throws_ok($$UPDATE credit.accounts SET currency = 'eur' WHERE customer_key = 'edge'$$,
				 '23514', NULL, 'a malformed currency by UPDATE is refused');
SELECT throws_ok($$UPDATE credit.accounts SET status = 'paused' WHERE customer_key = 'edge'$$,
				 '23514', NULL, 'an unknown status by UPDATE is refused');
SELECT throws_ok($$UPDATE credit.accounts SET temp_limit = 10 WHERE customer_key = 'edge'$$,
				 '23514', NULL, 'granting a temporary limit without an end by UPDATE is refused');
SELECT row_eq($$SELECT credit_limit, currency, temp_limit, status FROM credit.accounts WHERE customer_key = 'edge'$$,
			  ROW(999999999999999.99::numeric, 'USD'::text, 0::numeric, 'ok'::text),
			  'the refused updates left the account unchanged');

/* ---------------------------------------------------------------------
 * COPY into credit.accounts.  pgTAP cannot feed COPY ... FROM STDIN, so
 * the rows come from a program (superuser, as CREATE EXTENSION credit
 * needs anyway); INSERT ... SELECT covers bulk loading by SQL.
 * ------------------------------------------------------------------- */

SELECT lives_ok($$COPY credit.accounts (customer_key, customer_name, credit_limit, currency, status)
				  FROM PROGRAM 'printf ''K1\tAcme Trading\t50000\tCNY\tok\nK2\tBeta Ltd\t20000\tUSD\thold\nK3\tGamma\t0\tEUR\tnone\n'''$$,
				'COPY loads accounts');
SELECT results_eq($$SELECT customer_key COLLATE "default", customer_name, credit_limit, currency, status
					  FROM credit.accounts WHERE customer_key LIKE 'K_' ORDER BY 1$$,
				  $$VALUES ('K1', 'Acme Trading', 50000::numeric, 'CNY', 'ok'),
						   ('K2', 'Beta Ltd', 20000::numeric, 'USD', 'ok'),
						   ('K3', 'Gamma', 0::numeric, 'EUR', 'none')$$,
				  'COPY stores the rows; a copied hold with no exposure is derived to ok, none is kept');
SELECT throws_ok($$COPY credit.accounts (customer_key, credit_limit, currency)
				   FROM PROGRAM 'printf ''K4\t100\tCNY\nK5\t100\tyen\n'''$$,
				 '23514', NULL, 'COPY of a row with a malformed currency fails');
SELECT is((SELECT count(*) FROM credit.accounts WHERE customer_key IN ('K4', 'K5')), 0::bigint,
		  'the failed COPY stored none of its rows');
SELECT lives_ok($$INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
				  SELECT 'B' || i, 'Bulk ' || i, i * 1000, 'alice'
					FROM generate_series(1, 50) i$$,
				'INSERT ... SELECT loads 50 accounts');
SELECT is((SELECT count(*) FROM credit.accounts WHERE customer_key LIKE 'B%' AND status = 'ok'
											   AND credit.live_exposure(customer_key, exposure) = 0), 50::bigint,
		  'the bulk-loaded accounts start ok with no exposure');

/* ---------------------------------------------------------------------
 * Status derivation.  Orders come from an attached table without a
 * status column: every row counts.
 * ------------------------------------------------------------------- */

CREATE TABLE pg_temp.orders (id serial PRIMARY KEY, cust text, amount numeric);
SELECT credit.attach_orders('pg_temp.orders', 'cust', 'amount');

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('A', 1000);
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('A', 899.99)$$,
				'an order of 899.99 on a limit of 1000');
SELECT is(pg_temp.status('A'), 'ok', 'exposure 899.99 < 0.90 x 1000: ok');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('A', 0.01)$$,
				'an order of 0.01 brings exposure to exactly 900');
SELECT is(pg_temp.exposure('A'), 900.00, 'exposure is 900');
SELECT is(pg_temp.status('A'), 'watch', 'exposure exactly 0.90 x limit: watch (boundary)');
SELECT lives_ok($$UPDATE credit.accounts SET credit_limit = 800 WHERE customer_key = 'A'$$,
				'the limit is lowered below exposure');
SELECT is(pg_temp.status('A'), 'hold', 'exposure above the lowered limit: hold');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('A', 0.01)$$,
				 'CR001', NULL, 'an account on hold accepts no increase');
SELECT lives_ok($$DELETE FROM pg_temp.orders WHERE cust = 'A' AND amount = 0.01$$,
				'a decrease passes on hold');
SELECT is(pg_temp.exposure('A'), 899.99, 'the decrease was applied');
SELECT is(pg_temp.status('A'), 'hold', 'still above the limit: still hold');
SELECT lives_ok($$UPDATE credit.accounts SET credit_limit = 899.99 WHERE customer_key = 'A'$$,
				'the limit is set to exactly the exposure');
SELECT is(pg_temp.status('A'), 'watch', 'exposure equal to the limit is watch, not hold');
SELECT lives_ok($$UPDATE credit.accounts SET credit_limit = 2000 WHERE customer_key = 'A'$$,
				'the limit is raised');
SELECT is(pg_temp.status('A'), 'ok', 'after the raise: back to ok');
SELECT results_eq($$SELECT old_status, new_status, exposure, effective_limit
					  FROM credit.status_changes WHERE customer_key = 'A' ORDER BY change_id$$,
				  $$VALUES ('ok', 'watch', 900::numeric, 1000::numeric),
						   ('watch', 'hold', 900::numeric, 800::numeric),
						   ('hold', 'watch', 899.99, 899.99),
						   ('watch', 'ok', 899.99, 2000::numeric)$$,
				  'every status change of A is recorded with old and new status, exposure and limit');
SELECT is((SELECT count(*) FROM credit.status_changes
			WHERE customer_key = 'A' AND changed_by = current_user
			  AND changed_at = now()), 4::bigint,
		  'status changes record who and when');

/* writing a derived status asks for the derived value */
SELECT lives_ok($$UPDATE credit.accounts SET status = 'hold' WHERE customer_key = 'A'$$,
				'writing hold on an account within its limit');
SELECT is(pg_temp.status('A'), 'ok', 'writing hold yields the derived ok');
SELECT is((SELECT count(*) FROM credit.status_changes WHERE customer_key = 'A'), 4::bigint,
		  'no status change is recorded when the derived status stays the same');

/* custom watch ratio */
INSERT INTO credit.accounts (customer_key, credit_limit, watch_ratio) VALUES ('W', 1000, 0.5);
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('W', 499.99)$$,
				'an order of 499.99 with watch_ratio 0.5');
SELECT is(pg_temp.status('W'), 'ok', 'exposure below 0.5 x limit: ok');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('W', 0.01)$$,
				'exposure reaches exactly 500');
SELECT is(pg_temp.status('W'), 'watch', 'exposure at 0.5 x limit: watch with watch_ratio 0.5');
SELECT lives_ok($$UPDATE credit.accounts SET watch_ratio = 0.6 WHERE customer_key = 'W'$$,
				'the watch ratio is raised to 0.6');
SELECT is(pg_temp.status('W'), 'ok', 'a new watch ratio is applied at once');

/* none: no check, exposure still kept */
INSERT INTO credit.accounts (customer_key, credit_limit, status) VALUES ('N', 100, 'none');
SELECT is(pg_temp.status('N'), 'none', 'none is kept on insert');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('N', 300)$$,
				'status none: an order past the limit passes');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('N', 200)$$,
				'status none: a second order past the limit passes');
SELECT is(pg_temp.exposure('N'), 500::numeric, 'status none: exposure is still kept');
SELECT is(pg_temp.status('N'), 'none', 'status none is never replaced by a derived status');
SELECT lives_ok($$UPDATE credit.accounts SET credit_limit = 50 WHERE customer_key = 'N'$$,
				'the limit of a none account is changed');
SELECT is(pg_temp.status('N'), 'none', 'a limit change keeps none');
SELECT lives_ok($$UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'N'$$,
				'writing ok on a none account');
SELECT is(pg_temp.status('N'), 'hold', 'writing ok derives the status again: hold');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('N', 1)$$,
				 'CR001', NULL, 'once checked again, an increase past the limit is refused');

/* stop: every increase refused, decreases pass, never cleared by recomputation */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('S', 1000);
INSERT INTO pg_temp.orders (id, cust, amount) VALUES (1001, 'S', 100), (1002, 'S', 50);
SELECT lives_ok($$UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'S'$$,
				'a controller stops the account');
SELECT is(pg_temp.status('S'), 'stop', 'status is stop');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('S', 0.01)$$,
				 'CR002', NULL, 'stop: a new order of 0.01 is refused');
SELECT throws_ok($$UPDATE pg_temp.orders SET amount = 101 WHERE id = 1001$$,
				 'CR002', NULL, 'stop: raising an order''s amount is refused');
SELECT is(pg_temp.exposure('S'), 150::numeric, 'the refused increases changed nothing');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('S', 0)$$,
				'stop: an order of 0 adds nothing and passes');
SELECT lives_ok($$UPDATE pg_temp.orders SET amount = 60 WHERE id = 1001$$,
				'stop: lowering an order''s amount passes');
SELECT lives_ok($$DELETE FROM pg_temp.orders WHERE id = 1002$$,
				'stop: deleting an order passes');
SELECT is(pg_temp.exposure('S'), 60::numeric, 'the decreases were applied');
SELECT is(pg_temp.status('S'), 'stop', 'decreases do not clear stop');
SELECT lives_ok($$UPDATE credit.accounts SET credit_limit = 5000, owner = 'bob' WHERE customer_key = 'S'$$,
				'the limit of a stopped account is raised');
SELECT is(pg_temp.status('S'), 'stop', 'a limit change does not clear stop');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('S', 1)$$,
				 'CR002', NULL, 'still stopped after the raise');
SELECT lives_ok($$UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'S'$$,
				'writing status ok lifts the stop');
SELECT is(pg_temp.status('S'), 'ok', 'status is ok again');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('S', 1)$$,
				'after the stop is lifted an order passes');
SELECT results_eq($$SELECT old_status, new_status FROM credit.status_changes
					 WHERE customer_key = 'S' ORDER BY change_id$$,
				  $$VALUES ('ok', 'stop'), ('stop', 'ok')$$,
				  'stop and its lifting are recorded');

/* ---------------------------------------------------------------------
 * Temporary limits count only inside [from, until)
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit, temp_limit, temp_limit_from, temp_limit_until)
VALUES ('Tpast', 100, 400, now() - interval '2 days', now() - interval '1 day'),
	   ('Tfuture', 100, 400, now() + interval '1 day', now() + interval '2 days'),
	   ('Tnow', 100, 400, now() - interval '1 day', now() + interval '1 day'),
	   ('Topen', 100, 400, NULL, now() + interval '1 day'),
	   ('Tfrom', 100, 400, now(), now() + interval '1 day'),
	   ('Tuntil', 100, 400, now() - interval '1 day', now());

SELECT results_eq($$SELECT customer_key COLLATE "default", credit.effective_limit(a), credit.available_credit(a)
					  FROM credit.accounts a WHERE customer_key LIKE 'T%' ORDER BY customer_key$$,
				  $$VALUES ('Tfrom', 500::numeric, 500::numeric),
						   ('Tfuture', 100::numeric, 100::numeric),
						   ('Tnow', 500::numeric, 500::numeric),
						   ('Topen', 500::numeric, 500::numeric),
						   ('Tpast', 100::numeric, 100::numeric),
						   ('Tuntil', 100::numeric, 100::numeric)$$,
				  'effective_limit and available_credit count the temporary limit only inside [from, until)');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tpast', 101)$$,
				 'CR001', NULL, 'a window in the past does not count');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tfuture', 101)$$,
				 'CR001', NULL, 'a window in the future does not count');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tuntil', 101)$$,
				 'CR001', NULL, 'a window ending now does not count (until is exclusive)');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tpast', 100)$$,
				'outside the window the standing limit still holds');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tnow', 450)$$,
				'the current window counts: 450 on 100 + 400');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Topen', 500)$$,
				'a window without a start counts: exactly 500');
SELECT lives_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tfrom', 300)$$,
				'a window starting now counts (from is inclusive)');
SELECT throws_ok($$INSERT INTO pg_temp.orders (cust, amount) VALUES ('Tnow', 50.01)$$,
				 'CR001', NULL, 'the temporary limit is the ceiling inside the window');
SELECT is(pg_temp.status('Tnow'), 'watch', 'status is derived from the effective limit: 450 >= 0.9 x 500');
SELECT is(pg_temp.status('Topen'), 'watch', 'exposure equal to limit plus temporary limit: watch, not hold');
SELECT is(credit.effective_limit(a, now() + interval '2 days'), 100::numeric,
		  'effective_limit at a later time: the window has ended')
  FROM credit.accounts a WHERE customer_key = 'Tnow';
SELECT is(credit.available_credit(a, now() + interval '2 days'), -350::numeric,
		  'available_credit at a later time can be negative')
  FROM credit.accounts a WHERE customer_key = 'Tnow';
SELECT is(credit.effective_limit(a, now() + interval '36 hours'), 500::numeric,
		  'effective_limit at a time inside a future window')
  FROM credit.accounts a WHERE customer_key = 'Tfuture';
SELECT results_eq($$SELECT customer_key COLLATE "default", status, credit_limit, temp_limit_in_force,
						   effective_limit, exposure, available_credit
					  FROM credit.account_balances
					 WHERE customer_key IN ('Tnow', 'Tpast', 'Tfuture', 'A') ORDER BY customer_key$$,
				  $$VALUES ('A', 'ok', 2000::numeric, 0::numeric, 2000::numeric, 899.99, 1100.01),
						   ('Tfuture', 'ok', 100::numeric, 0::numeric, 100::numeric, 0::numeric, 100::numeric),
						   ('Tnow', 'watch', 100::numeric, 400::numeric, 500::numeric, 450::numeric, 50::numeric),
						   ('Tpast', 'watch', 100::numeric, 0::numeric, 100::numeric, 100::numeric, 0::numeric)$$,
				  'account_balances shows limit, temporary limit in force, effective limit, exposure and available credit');
SELECT lives_ok($$UPDATE credit.accounts SET temp_limit_until = now() WHERE customer_key = 'Tnow'$$,
				'the temporary limit of Tnow is ended now');
SELECT is(pg_temp.status('Tnow'), 'hold', 'ending the temporary limit re-derives the status: hold');
SELECT is((SELECT available_credit FROM credit.account_balances WHERE customer_key = 'Tnow'),
		  -350::numeric, 'the balances view follows');

SELECT is((SELECT count(*) FROM credit.reconcile()), 0::bigint,
		  'after all of this, exposure matches the orders exactly');

-- a person's intent is the status column being written, whatever its old value
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('intent', 100);
UPDATE credit.accounts SET dunning_status = 'stop' WHERE customer_key = 'intent';
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'intent';
SELECT is((SELECT manual_status FROM credit.accounts WHERE customer_key = 'intent'), 'stop',
		  'writing stop over a dunning stop records the person''s stop');
UPDATE credit.accounts SET dunning_status = NULL WHERE customer_key = 'intent';
SELECT is((SELECT status FROM credit.accounts WHERE customer_key = 'intent'), 'stop',
		  'lifting the dunning stop leaves the person''s stop');
UPDATE credit.accounts SET dunning_status = 'watch' WHERE customer_key = 'intent';
UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'intent';
SELECT is((SELECT status FROM credit.accounts WHERE customer_key = 'intent'), 'watch',
		  'writing ok lifts the person''s stop; dunning''s watch stays');
UPDATE credit.accounts SET credit_limit = 50 WHERE customer_key = 'intent';
SELECT is((SELECT manual_status FROM credit.accounts WHERE customer_key = 'intent'), NULL,
		  'a write that does not name status changes no manual status');

/* credit.lock_accounts: the rows locked in the order given, missing keys skipped */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('lockA', 100), ('lockB', 100);
SELECT is(credit.lock_accounts(ARRAY['lockB', 'no such key', 'lockA']), 2,
		  'lock_accounts locks the rows that exist and counts them (a missing key is skipped)');
SELECT is(credit.lock_accounts('{}'), 0, 'lock_accounts of no keys locks nothing');
SELECT is(credit.lock_accounts(NULL), NULL, 'lock_accounts(NULL) is NULL (strict)');
SELECT throws_ok($$SELECT credit.lock_accounts(ARRAY['lockA', NULL])$$, '22004', NULL,
				 'lock_accounts with a NULL key: 22004');
SELECT is((SELECT count(*) FROM credit.accounts WHERE customer_key LIKE 'lock_'
			 AND xmax::text::bigint = txid_current() % 4294967296), 2::bigint,
		  'lock_accounts left both rows locked by this transaction (their xmax is ours)');
CREATE ROLE lock_reader;
GRANT credit_bi TO lock_reader;
GRANT EXECUTE ON FUNCTION credit.lock_accounts(text[]) TO lock_reader;
SET ROLE lock_reader;
SELECT throws_ok($$SELECT credit.lock_accounts(ARRAY['lockA'])$$, '42501', NULL,
				 'lock_accounts needs UPDATE on credit.accounts, as FOR UPDATE does: 42501');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
