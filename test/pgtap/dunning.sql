/*
 * dunning.sql: pgTAP suite for dunning (sql/dunning.sql).
 *
 * The policy table and every way to write a bad one (23514, nothing
 * changed); each default level reached on its day and not a day earlier
 * (day 2 against day 3, across a leap day); one level per run; disputed and
 * paid invoices skipped; a second run the same day queues nothing; repeats;
 * escalation to watch and stop and its never going back from stop to watch;
 * lifting when the overdue invoices are paid, not when a person stopped the
 * account, not when dunning_lifts_status is off; fee, interest and template
 * rendering; a change of the schedule; the consumers' claim, completion,
 * retries with doubling delays, dead rows and expired claims.
 *
 * Each section has its own customer and retires it (pg_temp.retire) when
 * done, so the counts every run returns belong to that section alone.  The
 * whole suite is one transaction: now() does not move, so retry times are
 * exact.  The NOTIFY on credit_dunning is shown by the isolation spec
 * dunning_runs (pgTAP cannot see notifications).
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(146);

/* one run as a comparable row */
CREATE FUNCTION pg_temp.run(d date) RETURNS text
LANGUAGE sql AS $$
	SELECT format('evaluated %s queued %s repeats %s to_watch %s to_stop %s lifted %s',
				  evaluated, queued, repeats, to_watch, to_stop, lifted)
	  FROM credit.run_dunning(d)
$$;
/* an invoice's queued steps: level.repeat@as_of, in queue order */
CREATE FUNCTION pg_temp.steps(inv text) RETURNS text
LANGUAGE sql AS $$
	SELECT COALESCE(string_agg(format('%s.%s@%s', level_no, repeat_no, as_of), ' ' ORDER BY queue_id), '')
	  FROM credit.dunning_queue WHERE invoice_key = inv
$$;
CREATE FUNCTION pg_temp.status(k text) RETURNS text
LANGUAGE sql AS $$ SELECT status || '/' || COALESCE(dunning_status, '-') || '/' || COALESCE(manual_status, '-')
					 FROM credit.accounts WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.invoice(k text, inv text, amount numeric, due date) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
	VALUES (k, inv, amount, due - 30, due)
$$;
CREATE FUNCTION pg_temp.pay(k text, inv text, amt numeric) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO credit.payments (customer_key, payment_key, amount)
	VALUES (k, 'PAY-' || inv || '-' || amt, amt);
	SELECT credit.allocate((SELECT p.payment_id FROM credit.payments p
							 WHERE p.customer_key = k AND p.payment_key = 'PAY-' || inv || '-' || amt),
						   inv, amt);
$$;
/* runs on several days, for the steps a section needs before its checks */
CREATE FUNCTION pg_temp.runs(VARIADIC days date[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE d date;
BEGIN
	FOREACH d IN ARRAY days LOOP
		PERFORM credit.run_dunning(d);
	END LOOP;
END $$;
/* a section is over: its invoices and their dunning state go */
CREATE FUNCTION pg_temp.retire(k text) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM credit.allocations WHERE receivable_id IN
		(SELECT receivable_id FROM credit.receivables WHERE customer_key = k);
	DELETE FROM credit.receivables WHERE customer_key = k;
	UPDATE credit.accounts SET dunning_status = NULL WHERE customer_key = k;
$$;
CREATE FUNCTION pg_temp.levels() RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(format('%s:%s:%s:%s:%s:%s:%s:%s:%s', level_no, name, days_from_due, actions,
							 channel, set_status, repeat_days, fee, annual_interest_rate),
					  ',' ORDER BY level_no)
	  FROM credit.dunning_levels
$$;
CREATE TEMP TABLE saved (s text);
INSERT INTO saved SELECT pg_temp.levels();

/* ---------------------------------------------------------------------
 * The objects
 * ------------------------------------------------------------------- */

SELECT has_table('credit', 'dunning_levels', 'credit.dunning_levels exists');
SELECT has_table('credit', 'dunning_queue', 'credit.dunning_queue exists');
SELECT has_function('credit', 'run_dunning', ARRAY['date'], 'credit.run_dunning(date) exists');
SELECT has_function('credit', 'claim_dunning', ARRAY['integer', 'text', 'text', 'interval'],
					'credit.claim_dunning(integer, text, text, interval) exists');
SELECT has_function('credit', 'complete_dunning', ARRAY['bigint', 'boolean', 'text'],
					'credit.complete_dunning(bigint, boolean, text) exists');
SELECT ok((SELECT extconfig @> ARRAY['credit.dunning_levels'::regclass::oid,
									 'credit.dunning_queue'::regclass::oid]
			 FROM pg_extension WHERE extname = 'credit'),
		  'pg_dump keeps the levels and the queue (pg_extension_config_dump)');
SELECT col_is_unique('credit', 'dunning_queue', ARRAY['receivable_id', 'level_no', 'repeat_no'],
					 'one queue row per receivable, level and repeat');
SELECT results_eq(
	$$SELECT level_no, days_from_due, actions, channel, set_status FROM credit.dunning_levels ORDER BY level_no$$,
	$$VALUES (1, -3, '{notify_owner}'::text[], NULL::text, NULL::text),
			 (2, 0, '{message_customer}', 'email', NULL),
			 (3, 3, '{message_customer}', 'email', NULL),
			 (4, 15, '{risk_task,set_status}', NULL, 'watch'),
			 (5, 30, '{set_status}', NULL, 'stop')$$,
	'the default policy: 3 days before, due date, 3 days after, 15 days watch, 30 days stop');

/* ---------------------------------------------------------------------
 * A bad policy is refused at write time (23514) and changes nothing
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'again', 30, '{notify_owner}')$$,
				 '23514', 'dunning level 6 (30 days from due) must come later than level 5 (30 days from due)',
				 'a level on the same day as the one before is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'earlier', 20, '{notify_owner}')$$,
				 '23514', NULL, 'a level earlier than the one before is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (0, 'zero', -10, '{notify_owner}')$$,
				 '23514', NULL, 'level_no 0 is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET days_from_due = 16 WHERE level_no = 3$$,
				 '23514', NULL, 'an update that puts a level after the next one is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET days_from_due = 7$$,
				 '23514', NULL, 'giving every level the same day is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'call', 45, '{notify_owner,phone_call}')$$,
				 '23514', 'unknown dunning action "phone_call" in level 6',
				 'an unknown action is refused, named');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'none', 45, '{}')$$,
				 '23514', 'dunning level 6 has no actions', 'a level without actions is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'hold', 45, '{set_status}')$$,
				 '23514', 'dunning level 6 has the action set_status but no status to set',
				 'set_status without a status is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, set_status)
				   VALUES (6, 'hold', 45, '{notify_owner}', 'stop')$$,
				 '23514', 'dunning level 6 has set_status "stop" but not the action set_status',
				 'a status without the action set_status is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, set_status)
				   VALUES (6, 'hold', 45, '{set_status}', 'hold')$$,
				 '23514', 'dunning level 6 sets unknown status "hold"',
				 'set_status other than watch or stop is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET set_status = 'ok' WHERE level_no = 5$$,
				 '23514', 'dunning level 5 sets unknown status "ok"', 'also by an update');
SELECT throws_ok($$UPDATE credit.dunning_levels SET actions = '{notify_owner,set_status}', set_status = 'watch'
				   WHERE level_no = 2$$,
				 '23514', 'dunning level 2 sets status "watch" at 0 days from the due date',
				 'a status set on or before the due date is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
				   VALUES (6, 'letter', 45, '{message_customer}')$$,
				 '23514', 'dunning level 6 messages the customer but names no channel',
				 'a customer message without a channel is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, channel)
				   VALUES (6, 'letter', 45, '{message_customer}', 'Letter')$$,
				 '23514', NULL, 'a channel not in lower case is refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, channel, template)
				   VALUES (6, 'letter', 45, '{message_customer}', 'letter', 'Dear {customer}, pay {invoice}')$$,
				 '23514', 'unknown variable "{customer}" in the template of dunning level 6',
				 'an unknown template variable is refused, named');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, repeat_days)
				   VALUES (6, 'again', 45, '{notify_owner}', -7)$$,
				 '23514', NULL, 'negative repeat days are refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET repeat_days = 0 WHERE level_no = 3$$,
				 '23514', NULL, 'zero repeat days are refused');
SELECT throws_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, fee)
				   VALUES (6, 'fee', 45, '{notify_owner}', -5)$$,
				 '23514', NULL, 'a negative fee is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET fee = 'NaN' WHERE level_no = 3$$,
				 '23514', NULL, 'a NaN fee is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET annual_interest_rate = -1 WHERE level_no = 3$$,
				 '23514', NULL, 'a negative interest rate is refused');
SELECT throws_ok($$UPDATE credit.dunning_levels SET name = '' WHERE level_no = 3$$,
				 '23514', NULL, 'an empty name is refused');
SELECT is(pg_temp.levels(), (SELECT s FROM saved), 'none of the refused writes changed the policy');

SELECT lives_ok($$UPDATE credit.dunning_levels SET days_from_due = days_from_due + 1$$,
				'one statement may move every level (the order is checked per statement)');
SELECT lives_ok($$UPDATE credit.dunning_levels SET days_from_due = days_from_due - 1$$,
				'and back');
SELECT lives_ok($$INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, channel, template)
				  VALUES (10, 'letter', 60, '{message_customer,notify_owner}', 'letter',
						  '{customer_name} {customer_key} {invoice} {open_amount} {overdue_amount} {currency} {due_date} {days_overdue} {level} {fee} {interest} {not a variable} 100%')$$,
				'a good level with every variable is accepted (gaps in level_no are fine)');
DELETE FROM credit.dunning_levels WHERE level_no = 10;
SELECT is(pg_temp.levels(), (SELECT s FROM saved), 'the policy is back to the default');

/* ---------------------------------------------------------------------
 * Bad arguments
 * ------------------------------------------------------------------- */

SELECT throws_ok($$SELECT credit.run_dunning(NULL)$$, '22023', NULL, 'run_dunning(NULL) is refused');
SELECT throws_ok($$SELECT credit.run_dunning('infinity')$$, '22023', NULL, 'run_dunning(infinity) is refused');
SELECT throws_ok($$SELECT * FROM credit.claim_dunning(0)$$, '22023',
				 'batch must be a positive number of rows, not 0', 'claim_dunning(0) is refused');
SELECT throws_ok($$SELECT * FROM credit.claim_dunning(NULL)$$, '22023', NULL, 'claim_dunning(NULL) is refused');
SELECT throws_ok($$SELECT * FROM credit.claim_dunning(10, lease => '0 minutes')$$, '22023', NULL,
				 'a lease of zero is refused');
SELECT throws_ok($$SELECT credit.complete_dunning(424242, true)$$, '22023',
				 'dunning queue row 424242 does not exist', 'completing an unknown row is refused');
SELECT throws_ok($$SELECT credit.complete_dunning(1, NULL)$$, '22023', NULL, 'ok must not be null');

/* ---------------------------------------------------------------------
 * Each level on its day, not a day earlier
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
VALUES ('D', 'Days Ltd', 1e9, 'dora');
SELECT pg_temp.invoice('D', 'D-1', 1000, '2030-03-10');

SELECT is(pg_temp.run('2030-03-06'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day -4: nothing');
SELECT is(pg_temp.run('2030-03-07'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day -3: one step');
SELECT is(pg_temp.steps('D-1'), '1.0@2030-03-07', 'level 1 (remind the salesperson) 3 days before');
SELECT is(pg_temp.run('2030-03-07'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'the same day again: nothing');
SELECT is(pg_temp.run('2030-03-09'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day -1: nothing');
SELECT is(pg_temp.run('2030-03-10'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 0: one step');
SELECT is(pg_temp.run('2030-03-12'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 2: nothing');
SELECT is(pg_temp.steps('D-1'), '1.0@2030-03-07 2.0@2030-03-10', 'level 2 (notice) on the due date');
SELECT is(pg_temp.run('2030-03-13'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 3: one step');
SELECT is(pg_temp.steps('D-1'), '1.0@2030-03-07 2.0@2030-03-10 3.0@2030-03-13',
		  'level 3 (email) 3 days after');
SELECT is(pg_temp.run('2030-03-24'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 14: nothing');
SELECT is(pg_temp.status('D'), 'ok/-/-', 'the account is ok before day 15');
SELECT is(pg_temp.run('2030-03-25'), 'evaluated 1 queued 1 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  'day 15: one step, one account to watch');
SELECT is(pg_temp.status('D'), 'watch/watch/-', 'level 4 sets the account to watch');
SELECT is(pg_temp.run('2030-04-08'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 29: nothing');
SELECT is(pg_temp.run('2030-04-09'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 1 lifted 0',
		  'day 30: one step, one account to stop');
SELECT is(pg_temp.status('D'), 'stop/stop/-', 'level 5 stops the account');
SELECT is(pg_temp.steps('D-1'), '1.0@2030-03-07 2.0@2030-03-10 3.0@2030-03-13 4.0@2030-03-25 5.0@2030-04-09',
		  'all five levels, each on its day');
SELECT row_eq($$SELECT dunning_level, dunning_repeat, last_dunned_on, next_dunning_on
				  FROM credit.receivables WHERE invoice_key = 'D-1'$$,
			  ROW(5, 0, '2030-04-09'::date, 'infinity'::date),
			  'the receivable keeps its level, last step and next date (infinity: nothing more)');
SELECT is(pg_temp.run('2030-12-31'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'after the last level nothing more happens');
SELECT results_eq(
	$$SELECT old_status, new_status FROM credit.status_changes
	   WHERE customer_key = 'D' ORDER BY change_id$$,
	$$VALUES ('ok'::text, 'watch'::text), ('watch', 'stop')$$,
	'the accounts trigger recorded ok -> watch -> stop');
SELECT pg_temp.retire('D');
SELECT is(pg_temp.status('D'), 'ok/-/-', 'retired');

/* across a leap day: due 2028-02-26, day 3 is 29 February, day 15 is 12 March */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('L', 1e9);
SELECT pg_temp.invoice('L', 'L-1', 100, '2028-02-26');
SELECT pg_temp.invoice('L', 'L-2', 100, '2028-02-29');
SELECT is(pg_temp.run('2028-02-23'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-02-23: L-1 three days before');
SELECT is(pg_temp.run('2028-02-26'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-02-26: L-1 due, L-2 three days before');
SELECT is(pg_temp.run('2028-02-28'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-02-28 (day 2 of L-1): nothing');
SELECT is(pg_temp.run('2028-02-29'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-02-29: day 3 of L-1, due date of L-2');
SELECT is(pg_temp.run('2028-03-02'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-03-02 (day 2 of L-2): nothing');
SELECT is(pg_temp.run('2028-03-03'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-03-03: day 3 of L-2');
SELECT is(pg_temp.run('2028-03-11'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  '2028-03-11 (day 14 of L-1): nothing');
SELECT is(pg_temp.run('2028-03-12'), 'evaluated 1 queued 1 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  '2028-03-12: day 15 of L-1 (February has 29 days)');
SELECT is(pg_temp.steps('L-1'), '1.0@2028-02-23 2.0@2028-02-26 3.0@2028-02-29 4.0@2028-03-12',
		  'L-1: its levels across the leap day');
SELECT is(pg_temp.steps('L-2'), '1.0@2028-02-26 2.0@2028-02-29 3.0@2028-03-03',
		  'L-2, due on the leap day');
SELECT is((SELECT days_overdue FROM credit.dunning_queue WHERE invoice_key = 'L-1' AND level_no = 3),
		  3, 'days_overdue counts 29 February');
SELECT pg_temp.retire('L');

/* ---------------------------------------------------------------------
 * One level per run; disputed and paid invoices are skipped
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
VALUES ('S', 'Skip Co', 1e9, 'sam');
SELECT pg_temp.invoice('S', 'S-old', 500, '2030-01-01');
SELECT pg_temp.invoice('S', 'S-disputed', 500, '2030-01-01');
SELECT pg_temp.invoice('S', 'S-paid', 500, '2030-01-01');
SELECT pg_temp.invoice('S', 'S-half', 500, '2030-01-01');
UPDATE credit.receivables SET disputed = true WHERE invoice_key = 'S-disputed';
SELECT pg_temp.pay('S', 'S-paid', 500);
SELECT pg_temp.pay('S', 'S-half', 200);
SELECT is(pg_temp.run('2030-03-01'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'a first run 59 days after the due date: two invoices, one step each');
SELECT is(pg_temp.steps('S-old'), '1.0@2030-03-01', 'level 1 first, however late');
SELECT is(pg_temp.steps('S-disputed'), '', 'a disputed invoice is not dunned');
SELECT is(pg_temp.steps('S-paid'), '', 'a paid invoice is not dunned');
SELECT row_eq($$SELECT open_amount, overdue_amount, days_overdue FROM credit.dunning_queue
				 WHERE invoice_key = 'S-half'$$,
			  ROW(300::numeric, 300::numeric, 59),
			  'a partly paid invoice is dunned for what is left');
SELECT is(pg_temp.run('2030-03-02'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'next day: the next level');
SELECT is(pg_temp.run('2030-03-03'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'and the next');
SELECT is(pg_temp.run('2030-03-04'), 'evaluated 2 queued 2 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  'and the next: watch');
SELECT is(pg_temp.run('2030-03-05'), 'evaluated 2 queued 2 repeats 0 to_watch 0 to_stop 1 lifted 0',
		  'and the last: stop');
SELECT is(pg_temp.steps('S-old'), '1.0@2030-03-01 2.0@2030-03-02 3.0@2030-03-03 4.0@2030-03-04 5.0@2030-03-05',
		  'every level reached, in order, one per run');
UPDATE credit.receivables SET disputed = false WHERE invoice_key = 'S-disputed';
SELECT is(pg_temp.run('2030-03-06'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'a dispute resolved: the invoice is dunned from level 1');
SELECT pg_temp.retire('S');

/* ---------------------------------------------------------------------
 * Repeats
 * ------------------------------------------------------------------- */

UPDATE credit.dunning_levels SET repeat_days = 5 WHERE level_no = 3;
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('R', 1e9);
SELECT pg_temp.invoice('R', 'R-1', 100, '2030-05-01');
SELECT pg_temp.runs('2030-04-28', '2030-05-01', '2030-05-04');
SELECT is(pg_temp.run('2030-05-08'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 7: four days after level 3, nothing');
SELECT is(pg_temp.run('2030-05-09'), 'evaluated 1 queued 1 repeats 1 to_watch 0 to_stop 0 lifted 0',
		  'day 8: five days after level 3, a repeat');
SELECT is(pg_temp.run('2030-05-09'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'not twice the same day');
SELECT is(pg_temp.run('2030-05-14'), 'evaluated 1 queued 1 repeats 1 to_watch 0 to_stop 0 lifted 0',
		  'day 13: the second repeat');
SELECT is(pg_temp.run('2030-05-16'), 'evaluated 1 queued 1 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  'day 15: level 4 comes before the next repeat');
SELECT is(pg_temp.steps('R-1'), '1.0@2030-04-28 2.0@2030-05-01 3.0@2030-05-04 3.1@2030-05-09 3.2@2030-05-14 4.0@2030-05-16',
		  'level 3 repeated every 5 days while it was the current level');
SELECT is(pg_temp.run('2030-05-21'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'level 4 has no repeats');
SELECT pg_temp.retire('R');
UPDATE credit.dunning_levels SET repeat_days = NULL WHERE level_no = 3;

/* ---------------------------------------------------------------------
 * Escalation, and lifting
 * ------------------------------------------------------------------- */

/* stop is never lowered to watch by a younger invoice */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('E', 1e9);
SELECT pg_temp.invoice('E', 'E-old', 100, '2030-06-01');
SELECT pg_temp.invoice('E', 'E-new', 100, '2030-06-20');
SELECT pg_temp.runs('2030-05-29', '2030-06-01', '2030-06-04', '2030-06-16', '2030-06-17', '2030-06-20', '2030-06-23');
SELECT is(pg_temp.status('E'), 'watch/watch/-', 'E-old at level 4: watch');
SELECT is(pg_temp.run('2030-07-01'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 1 lifted 0',
		  'E-old reaches level 5: watch raised to stop');
SELECT is(pg_temp.steps('E-old'), '1.0@2030-05-29 2.0@2030-06-01 3.0@2030-06-04 4.0@2030-06-16 5.0@2030-07-01',
		  'E-old: watch on day 15, stop on day 30');
SELECT is(pg_temp.run('2030-07-05'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'E-new reaches level 4 (watch): nothing raised');
SELECT is(pg_temp.status('E'), 'stop/stop/-', 'still stopped: a stop is not lowered to watch');
SELECT pg_temp.pay('E', 'E-old', 100);
SELECT is(pg_temp.run('2030-07-06'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'E-old paid, E-new still overdue: not lifted');
SELECT is(pg_temp.status('E'), 'stop/stop/-', 'still stopped');
SELECT pg_temp.pay('E', 'E-new', 60);
SELECT is(pg_temp.run('2030-07-07'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'E-new partly paid: still overdue, not lifted');
SELECT pg_temp.pay('E', 'E-new', 40);
SELECT is(pg_temp.run('2030-07-08'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 1',
		  'everything overdue paid: lifted');
SELECT is(pg_temp.status('E'), 'ok/-/-', 'the account is ok again');
SELECT is((SELECT string_agg(old_status || '>' || new_status, ' ' ORDER BY change_id)
			 FROM credit.status_changes WHERE customer_key = 'E'),
		  'ok>watch watch>stop stop>ok', 'each change recorded by the accounts trigger');
SELECT pg_temp.retire('E');

/* a person's stop is not lifted, a dunning watch under it is */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('P', 1e9);
SELECT pg_temp.invoice('P', 'P-1', 100, '2030-08-01');
SELECT pg_temp.runs('2030-07-29', '2030-08-01', '2030-08-04');
SELECT is(pg_temp.run('2030-08-16'), 'evaluated 1 queued 1 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  'level 4: watch');
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'P';
SELECT is(pg_temp.status('P'), 'stop/watch/stop', 'a person stops the account (manual_status)');
SELECT pg_temp.pay('P', 'P-1', 100);
SELECT is(pg_temp.run('2030-08-17'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 1',
		  'paid: the dunning watch is lifted');
SELECT is(pg_temp.status('P'), 'stop/-/stop', 'the person''s stop stays');
SELECT pg_temp.retire('P');

/* dunning_lifts_status off: nothing is lifted */
UPDATE credit.settings SET dunning_lifts_status = false;
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('N', 1e9);
SELECT pg_temp.invoice('N', 'N-1', 100, '2030-09-01');
SELECT pg_temp.runs('2030-08-29', '2030-09-01', '2030-09-04', '2030-09-16');
SELECT is(pg_temp.status('N'), 'watch/watch/-', 'watch at level 4');
SELECT pg_temp.pay('N', 'N-1', 100);
SELECT is(pg_temp.run('2030-09-17'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'with dunning_lifts_status off a paid account is not lifted');
SELECT is(pg_temp.status('N'), 'watch/watch/-', 'still watch');
UPDATE credit.settings SET dunning_lifts_status = true;
SELECT is(pg_temp.run('2030-09-18'), 'evaluated 0 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 1',
		  'turned on again: lifted at the next run');
SELECT pg_temp.retire('N');

/* ---------------------------------------------------------------------
 * Recipients, fee, interest and the rendered message
 * ------------------------------------------------------------------- */

UPDATE credit.dunning_levels
   SET fee = 25, annual_interest_rate = 18,
	   template = '{customer_name}/{customer_key}/{invoice}/{open_amount}/{overdue_amount}/{currency}/{due_date}/{days_overdue}/{level}/{fee}/{interest}/{not a variable}/100%/%s'
 WHERE level_no = 3;
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner, currency)
VALUES ('M', 'Brace {invoice} %1$s Ltd', 1e9, 'mia', 'USD'), ('M2', NULL, 1e9, NULL, 'USD');
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('M', 'M-1', 1234.50, '2030-09-01', '2030-10-01'), ('M2', 'M2-1', 80, '2030-09-01', '2030-10-01');
SELECT pg_temp.runs('2030-09-28');
SELECT results_eq($$SELECT invoice_key, channel, actions, recipient, message FROM credit.dunning_queue
					WHERE invoice_key IN ('M-1', 'M2-1') ORDER BY invoice_key$$,
				  $$VALUES ('M-1'::text, NULL::text, '{notify_owner}'::text[], 'mia'::text,
							'Invoice M-1 of Brace {invoice} %1$s Ltd (1234.50 USD) is due on 2030-10-01.'::text),
						   ('M2-1', NULL, '{notify_owner}', NULL,
							'Invoice M2-1 of M2 (80 USD) is due on 2030-10-01.')$$,
				  'level 1 goes to the owner; a name is never read as a variable; no name: the key');
SELECT pg_temp.runs('2030-10-01');
SELECT is((SELECT recipient FROM credit.dunning_queue WHERE invoice_key = 'M-1' AND level_no = 2), 'M',
		  'a customer message goes to the customer');
SELECT pg_temp.runs('2030-10-04');
SELECT row_eq($$SELECT fee, interest, overdue_amount, days_overdue, message FROM credit.dunning_queue
				 WHERE invoice_key = 'M-1' AND level_no = 3$$,
			  ROW(25::numeric, 1.83::numeric, 1234.50::numeric, 3,
				  'Brace {invoice} %1$s Ltd/M/M-1/1234.50/1234.50/USD/2030-10-01/3/overdue email/25/1.83/{not a variable}/100%/%s'::text),
			  'fee, interest (1234.50 x 18% x 3/365 = 1.83) and every variable rendered');
SELECT is((SELECT interest FROM credit.dunning_queue WHERE invoice_key = 'M-1' AND level_no = 2),
		  0.00, 'no interest on the due date');
SELECT pg_temp.retire('M');
SELECT pg_temp.retire('M2');
UPDATE credit.dunning_levels SET fee = 0, annual_interest_rate = 0, template = 'x' WHERE level_no = 3;

/* ---------------------------------------------------------------------
 * A change of the schedule reaches receivables already scheduled
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('C', 1e9);
SELECT pg_temp.invoice('C', 'C-1', 100, '2030-11-01');
SELECT pg_temp.invoice('C', 'C-2', 100, '2030-11-20');
SELECT pg_temp.runs('2030-10-29', '2030-11-01', '2030-11-04', '2030-11-16', '2030-11-17', '2030-11-20', '2030-11-23', '2030-12-01', '2030-12-05', '2030-12-20');
SELECT is(pg_temp.steps('C-1'), '1.0@2030-10-29 2.0@2030-11-01 3.0@2030-11-04 4.0@2030-11-16 5.0@2030-12-01',
		  'C-1 at the last level');
SELECT is(pg_temp.steps('C-2'), '1.0@2030-11-17 2.0@2030-11-20 3.0@2030-11-23 4.0@2030-12-05 5.0@2030-12-20',
		  'C-2 too');
INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions)
VALUES (6, 'collections', 45, '{risk_task}');
SELECT is(pg_temp.run('2030-12-15'), 'evaluated 2 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'a level 6 at 45 days added: both receivables past level 5 are rescheduled');
SELECT is((SELECT string_agg(next_dunning_on::text, ' ' ORDER BY invoice_key) FROM credit.receivables
			WHERE customer_key = 'C'),
		  '2030-12-16 2031-01-04', 'to day 45 of each');
SELECT is(pg_temp.run('2030-12-16'), 'evaluated 1 queued 1 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'day 45 of C-1: the new level');
SELECT is(pg_temp.steps('C-1'), '1.0@2030-10-29 2.0@2030-11-01 3.0@2030-11-04 4.0@2030-11-16 5.0@2030-12-01 6.0@2030-12-16',
		  'C-1 reached level 6 on its day');
SELECT pg_temp.retire('C');
DELETE FROM credit.dunning_levels WHERE level_no = 6;

/* a level deleted: the receivables go on to the next one that exists */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('G', 1e9);
SELECT pg_temp.invoice('G', 'G-1', 100, '2031-03-01');
SELECT pg_temp.runs('2031-02-26', '2031-03-01');
DELETE FROM credit.dunning_levels WHERE level_no = 3;
SELECT is(pg_temp.run('2031-03-04'), 'evaluated 1 queued 0 repeats 0 to_watch 0 to_stop 0 lifted 0',
		  'level 3 deleted: nothing on day 3, the receivable is rescheduled');
SELECT is(pg_temp.run('2031-03-16'), 'evaluated 1 queued 1 repeats 0 to_watch 1 to_stop 0 lifted 0',
		  'it reaches level 4 on day 15');
SELECT is(pg_temp.steps('G-1'), '1.0@2031-02-26 2.0@2031-03-01 4.0@2031-03-16', 'levels 1, 2, 4');
SELECT pg_temp.retire('G');
INSERT INTO credit.dunning_levels (level_no, name, days_from_due, actions, channel, template)
VALUES (3, 'overdue email', 3, '{message_customer}', 'email', 'x');

/* ---------------------------------------------------------------------
 * Consumers: claim, complete, retry with doubling delays, dead
 * ------------------------------------------------------------------- */

DELETE FROM credit.dunning_queue;
UPDATE credit.settings SET dunning_max_attempts = 3, dunning_retry_delay = '10 minutes';
INSERT INTO credit.accounts (customer_key, credit_limit, owner) VALUES ('Q', 1e9, 'quinn');
SELECT pg_temp.invoice('Q', 'Q-1', 100, '2031-01-10');
SELECT pg_temp.invoice('Q', 'Q-2', 100, '2031-01-13');
SELECT pg_temp.invoice('Q', 'Q-3', 100, '2031-01-13');
/* Q-1: level 1, then 2 (email); Q-2, Q-3: level 1, then 2 (email) */
SELECT pg_temp.runs('2031-01-10', '2031-01-13');
SELECT is((SELECT count(*) FROM credit.dunning_queue WHERE status = 'queued'), 6::bigint, 'six rows queued');

UPDATE credit.dunning_queue SET next_attempt_at = now() - interval '1 hour'
 WHERE invoice_key = 'Q-3' AND level_no = 2;
SELECT results_eq($$SELECT invoice_key, level_no, status, attempts, claimed_by
					  FROM credit.claim_dunning(1, 'email', 'mailer-1')$$,
				  $$VALUES ('Q-3'::text, 2, 'claimed'::text, 1, 'mailer-1'::text)$$,
				  'claim one email row: the one due longest');
SELECT is((SELECT next_attempt_at FROM credit.dunning_queue WHERE invoice_key = 'Q-3' AND level_no = 2),
		  now() + interval '15 minutes', 'a claim is a lease of 15 minutes');
SELECT results_eq($$SELECT invoice_key, status FROM credit.claim_dunning(5, 'email', 'mailer-1') ORDER BY 1$$,
				  $$VALUES ('Q-1'::text, 'claimed'::text), ('Q-2', 'claimed')$$,
				  'a second claim gets the email rows not claimed yet');
SELECT is((SELECT count(*) FROM credit.claim_dunning(5, 'sms')), 0::bigint, 'nothing for another channel');
SELECT is((SELECT count(*) FROM credit.claim_dunning(5, 'email')), 0::bigint, 'nothing left for email');
SELECT results_eq($$SELECT level_no, channel, claimed_by, count(*) FROM credit.claim_dunning(2)
					 GROUP BY 1, 2, 3$$,
				  $$VALUES (1, NULL::text, current_user::text COLLATE "default", 2::bigint)$$,
				  'without a channel: any row (here internal ones), claimed by current_user');

SELECT is((credit.complete_dunning((SELECT queue_id FROM credit.dunning_queue
									 WHERE invoice_key = 'Q-1' AND level_no = 2), true)).status,
		  'sent', 'completed: sent');
SELECT throws_ok($$SELECT credit.complete_dunning((SELECT queue_id FROM credit.dunning_queue
													WHERE invoice_key = 'Q-1' AND level_no = 2), true)$$,
				 '55000', 'dunning queue row '
				 || (SELECT queue_id FROM credit.dunning_queue WHERE invoice_key = 'Q-1' AND level_no = 2)
				 || ' is not claimed',
				 'completing it again is refused (55000)');
SELECT throws_ok($$SELECT credit.complete_dunning((SELECT queue_id FROM credit.dunning_queue
													WHERE status = 'queued'), false)$$,
				 '55000', NULL, 'completing a row nobody claimed is refused');

CREATE TEMP TABLE q2 AS SELECT queue_id FROM credit.dunning_queue WHERE invoice_key = 'Q-2' AND level_no = 2;
SELECT row_eq($$SELECT status, attempts, next_attempt_at, last_error
				  FROM credit.complete_dunning((SELECT queue_id FROM q2), false, 'smtp 451')$$,
			  ROW('failed'::text, 1, now() + interval '10 minutes', 'smtp 451'::text),
			  'first failure: retried after the retry delay');
SELECT is((SELECT count(*) FROM credit.claim_dunning(5, 'email')), 0::bigint, 'not before its time');
UPDATE credit.dunning_queue SET next_attempt_at = now() - interval '1 second' WHERE queue_id = (SELECT queue_id FROM q2);
SELECT results_eq($$SELECT status, attempts FROM credit.claim_dunning(5, 'email')$$,
				  $$VALUES ('claimed'::text, 2)$$, 'claimed again when due: attempt 2');
SELECT row_eq($$SELECT status, attempts, next_attempt_at FROM credit.complete_dunning((SELECT queue_id FROM q2), false)$$,
			  ROW('failed'::text, 2, now() + interval '20 minutes'),
			  'second failure: the delay doubles');
UPDATE credit.dunning_queue SET next_attempt_at = now() - interval '1 second' WHERE queue_id = (SELECT queue_id FROM q2);
SELECT results_eq($$SELECT attempts FROM credit.claim_dunning(5, 'email')$$, $$VALUES (3)$$, 'attempt 3');
SELECT row_eq($$SELECT status, attempts, last_error FROM credit.complete_dunning((SELECT queue_id FROM q2), false, 'gone')$$,
			  ROW('dead'::text, 3, 'gone'::text),
			  'the third failure with dunning_max_attempts 3: dead');
SELECT throws_ok($$SELECT credit.complete_dunning((SELECT queue_id FROM q2), true)$$,
				 '55000', NULL, 'a dead row cannot be completed');
UPDATE credit.dunning_queue SET next_attempt_at = now() - interval '1 day' WHERE queue_id = (SELECT queue_id FROM q2);
SELECT is((SELECT count(*) FROM credit.claim_dunning(5, 'email')), 0::bigint, 'a dead row is never claimed');

/* an expired claim is handed out again; on its last attempt it is given up */
UPDATE credit.dunning_queue SET next_attempt_at = now() - interval '1 second'
 WHERE invoice_key = 'Q-3' AND level_no = 2;		/* mailer-1 never came back */
SELECT results_eq($$SELECT invoice_key, attempts, claimed_by FROM credit.claim_dunning(5, 'email', 'mailer-2')$$,
				  $$VALUES ('Q-3'::text, 2, 'mailer-2'::text)$$,
				  'a claim whose lease expired is handed out again (attempt 2)');
UPDATE credit.dunning_queue SET attempts = 3, next_attempt_at = now() - interval '1 second'
 WHERE invoice_key = 'Q-3' AND level_no = 2;
SELECT is((SELECT count(*) FROM credit.claim_dunning(5, 'email')), 0::bigint,
		  'an expired claim on its last attempt is not handed out');
SELECT row_eq($$SELECT status, last_error FROM credit.dunning_queue WHERE invoice_key = 'Q-3' AND level_no = 2$$,
			  ROW('dead'::text, 'claim expired: mailer-2'::text), 'it is dead');
SELECT is((SELECT string_agg(status || ':' || n, ' ' ORDER BY status)
			 FROM (SELECT status, count(*) n FROM credit.dunning_queue GROUP BY status) s),
		  'claimed:2 dead:2 queued:1 sent:1', 'the queue at the end');

SELECT * FROM finish();
ROLLBACK;
