/*
 * approvals.sql: pgTAP suite for the approval configuration and the data
 * the approval workflow keeps: positions and their members, routing rules
 * and their steps, the CHECKs of credit.applications, the effective-dated
 * limit history with credit.limit_on, and the audit trail.
 *
 * Every refusal with its SQLSTATE and constraint; limit history rows on
 * INSERT, on each change of limit, temporary limit and term (none for an
 * unrelated change), closed on DELETE, contiguous, and limit_on at the
 * boundaries (valid_from inclusive, valid_until exclusive, the temporary
 * limit only inside its window); an approved write-back names its
 * application; the audit log refuses UPDATE, DELETE and TRUNCATE, every
 * stored hash is credit.audit_hash of its row, every chain is contiguous
 * and ends at its head, no audited table is truncated without a trace,
 * tampering is found; the extension's functions pin their search_path and
 * audit_capture is not executable by PUBLIC.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(96);

/* the limit history of a customer, oldest first */
CREATE FUNCTION pg_temp.hist(k text)
RETURNS TABLE (n bigint, valid_from timestamptz, valid_until timestamptz, credit_limit numeric,
			   temp_limit numeric, payment_term_days integer)
LANGUAGE sql AS $$
	SELECT row_number() OVER (ORDER BY h.valid_from, h.history_id), h.valid_from, h.valid_until,
		   h.credit_limit, h.temp_limit, h.payment_term_days
	  FROM credit.limit_history h WHERE h.customer_key = k
	 ORDER BY h.valid_from, h.history_id $$;
CREATE FUNCTION pg_temp.rows(k text) RETURNS bigint
LANGUAGE sql AS $$ SELECT count(*) FROM credit.limit_history WHERE customer_key = k $$;
CREATE FUNCTION pg_temp.from_of(k text, i bigint) RETURNS timestamptz
LANGUAGE sql AS $$ SELECT valid_from FROM pg_temp.hist(k) WHERE n = i $$;
CREATE FUNCTION pg_temp.until_of(k text, i bigint) RETURNS timestamptz
LANGUAGE sql AS $$ SELECT valid_until FROM pg_temp.hist(k) WHERE n = i $$;

CREATE ROLE approvals_analyst;
CREATE ROLE "Approvals Mixed";
GRANT USAGE ON SCHEMA credit TO approvals_analyst;
GRANT credit_risk TO approvals_analyst;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA credit TO approvals_analyst;

INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('c1', 1000);

/* ---------------------------------------------------------------------
 * positions and members
 * ------------------------------------------------------------------- */

SELECT lives_ok($$INSERT INTO credit.positions (position, description, superior)
				  VALUES ('cfo', 'Chief financial officer', NULL),
						 ('finance', 'Credit analyst', 'cfo')$$,
				'positions with a superior');
SELECT throws_ok($$INSERT INTO credit.position_members VALUES ('finance', 'approvals_no_such_role')$$,
				 '42704', 'role "approvals_no_such_role" does not exist',
				 'a member that is not a role: 42704');
SELECT lives_ok($$INSERT INTO credit.position_members VALUES ('finance', 'approvals_analyst'),
																('cfo', 'Approvals Mixed')$$,
				'members that are roles, a mixed-case one included');
SELECT throws_ok($$UPDATE credit.position_members SET member = 'approvals_gone'
					WHERE member = 'approvals_analyst'$$,
				 '42704', 'role "approvals_gone" does not exist',
				 'renaming a member to a role that does not exist: 42704');
SELECT throws_ok($$INSERT INTO credit.positions (position) VALUES ('Finance')$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_name_check"',
				 'a position name with a capital: 23514');
SELECT throws_ok($$INSERT INTO credit.positions (position) VALUES ('1st_line')$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_name_check"',
				 'a position name starting with a digit: 23514');
SELECT throws_ok($$INSERT INTO credit.positions (position) VALUES ('sales director')$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_name_check"',
				 'a position name with a space: 23514');
SELECT throws_ok($$INSERT INTO credit.positions (position) VALUES ('')$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_name_check"',
				 'an empty position name: 23514');
SELECT throws_ok($$INSERT INTO credit.positions (position, superior) VALUES ('selfish', 'selfish')$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_superior_check"',
				 'a position that is its own superior: 23514');
SELECT throws_ok($$UPDATE credit.positions SET superior = 'cfo' WHERE position = 'cfo'$$,
				 '23514', 'new row for relation "positions" violates check constraint "positions_superior_check"',
				 'made its own superior by UPDATE: 23514');
SELECT is((SELECT array_agg(position ORDER BY position) FROM credit.positions), ARRAY['cfo', 'finance'],
		  'only the valid positions exist');

/* ---------------------------------------------------------------------
 * rules and their steps
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds) VALUES (9, '{bogus}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_kinds_check"',
				 'an unknown kind: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds) VALUES (9, '{}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_kinds_check"',
				 'no kinds: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds) VALUES (9, '{new_limit,NULL}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_kinds_check"',
				 'a NULL among the kinds: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, amount_basis)
				   VALUES (9, '{limit_change}', 'relative')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_basis_check"',
				 'an unknown amount basis: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, amount_above, amount_up_to)
				   VALUES (9, '{new_limit}', 50000, 50000)$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_range_check"',
				 'amount_up_to equal to amount_above (an empty range): 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, amount_above, amount_up_to)
				   VALUES (9, '{new_limit}', 50000, 10000)$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_range_check"',
				 'amount_up_to below amount_above: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, statuses)
				   VALUES (9, '{new_limit}', '{ok,bogus}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_statuses_check"',
				 'an unknown status: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, statuses)
				   VALUES (9, '{new_limit}', '{ok,NULL}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_statuses_check"',
				 'a NULL among the statuses: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, statuses)
				   VALUES (9, '{new_limit}', '{}')$$,
				 '23514', 'new row for relation "approval_rules" violates check constraint "approval_rules_statuses_check"',
				 'an empty status list (a rule that can never match): 23514');
SELECT lives_ok($$INSERT INTO credit.approval_rules (rule_id, kinds, amount_above, amount_up_to)
				  VALUES (1, '{new_limit,limit_change}', NULL, 1000000)$$,
				'a valid rule');
SELECT throws_ok($$INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
				   VALUES (1, 1, 'finance', '0')$$,
				 '23514', 'new row for relation "approval_rule_steps" violates check constraint "approval_rule_steps_deadline_check"',
				 'a zero deadline: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
				   VALUES (1, 1, 'finance', '-1 day')$$,
				 '23514', 'new row for relation "approval_rule_steps" violates check constraint "approval_rule_steps_deadline_check"',
				 'a negative deadline: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
				   VALUES (1, 1, 'finance', '1 day -24 hours')$$,
				 '23514', 'new row for relation "approval_rule_steps" violates check constraint "approval_rule_steps_deadline_check"',
				 'a deadline that adds up to zero: 23514');
SELECT throws_ok($$INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
				   VALUES (1, 0, 'finance', '1 day')$$,
				 '23514', 'new row for relation "approval_rule_steps" violates check constraint "approval_rule_steps_step_check"',
				 'step number 0: 23514');
SELECT lives_ok($$INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
				  VALUES (1, 1, 'finance', '1 day')$$,
				'a valid step');

/* ---------------------------------------------------------------------
 * applications
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				   VALUES ('new_limit', 'c1', -1)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_amounts_check"',
				 'a negative requested limit: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				   VALUES ('new_limit', 'c1', 1e15)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_amounts_check"',
				 'a requested limit of 1e15: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_until)
				   VALUES ('temp_limit', 'c1', -5, now() + interval '1 day')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_amounts_check"',
				 'a negative temporary limit: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_until)
				   VALUES ('temp_limit', 'c1', 0, now() + interval '1 day')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_amounts_check"',
				 'a temporary limit of 0: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, order_table, order_key, order_amount)
				   VALUES ('order_release', 'c1', 'pg_catalog.pg_class', '1', -0.01)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_amounts_check"',
				 'a negative order amount: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_term_days)
				   VALUES ('term_change', 'c1', -1)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_term_check"',
				 'a negative term: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_term_days)
				   VALUES ('term_change', 'c1', 3651)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_term_check"',
				 'a term over ten years: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, temp_until)
				   VALUES ('temp_limit', 'c1', now() + interval '1 day')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_temp_check"',
				 'a temporary-limit application without its amount: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit)
				   VALUES ('temp_limit', 'c1', 100)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_temp_check"',
				 'a temporary-limit application without the end of its window: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key) VALUES ('term_change', 'c1')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_term_needed_check"',
				 'a term-change application without a term: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, order_key)
				   VALUES ('order_release', 'c1', '1')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_order_check"',
				 'an order release without its order table: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, order_table)
				   VALUES ('order_release', 'c1', 'pg_catalog.pg_class')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_order_check"',
				 'an order release without its order key: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit, order_table, order_key)
				   VALUES ('new_limit', 'c1', 10, 'pg_catalog.pg_class', '1')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_order_check"',
				 'a limit application naming an order: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_from, temp_until)
				   VALUES ('temp_limit', 'c1', 100, now() + interval '2 days', now() + interval '1 day')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_window_check"',
				 'a temporary window ending before it starts: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_from, temp_until)
				   VALUES ('temp_limit', 'c1', 100, now() + interval '1 day', now() + interval '1 day')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_window_check"',
				 'an empty temporary window: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				   VALUES ('bigger_limit', 'c1', 10)$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_kind_check"',
				 'an unknown kind: 23514');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit, state)
				   VALUES ('new_limit', 'c1', 10, 'parked')$$,
				 '23514', 'new row for relation "applications" violates check constraint "applications_state_check"',
				 'an unknown state: 23514');
SELECT is((SELECT count(*) FROM credit.applications), 0::bigint, 'no application was written');

/* ---------------------------------------------------------------------
 * limit history
 * ------------------------------------------------------------------- */

INSERT INTO credit.accounts (customer_key, credit_limit, payment_term_days, owner)
VALUES ('h1', 1000, 30, 'alice');
SELECT results_eq($$SELECT credit_limit, temp_limit, payment_term_days, valid_until IS NULL,
						   changed_by OPERATOR(pg_catalog.=) current_user
					  FROM credit.limit_history WHERE customer_key = 'h1'$$,
				  $$VALUES (1000::numeric, 0::numeric, 30, true, true)$$,
				  'INSERT opens the first history row, in force, by the current role');
SELECT ok(pg_temp.from_of('h1', 1) <= clock_timestamp() AND pg_temp.from_of('h1', 1) >= now(),
		  'valid from the moment it was written');

/* unrelated changes: owner, status, name, exposure through orders */
UPDATE credit.accounts SET owner = 'bob', customer_name = 'Acme' WHERE customer_key = 'h1';
SELECT is(pg_temp.rows('h1'), 1::bigint, 'changing owner and name adds no history row');
UPDATE credit.accounts SET credit_limit = 1000 WHERE customer_key = 'h1';
SELECT is(pg_temp.rows('h1'), 1::bigint, 'writing the same limit adds no history row');
CREATE TABLE pg_temp.orders (id int PRIMARY KEY, cust text, amount numeric);
SELECT credit.attach_orders('pg_temp.orders', 'cust', 'amount');
INSERT INTO pg_temp.orders VALUES (1, 'h1', 950);
SELECT is((SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = 'h1'), 950::numeric,
		  'an order changes exposure');
SELECT is((SELECT status FROM credit.accounts WHERE customer_key = 'h1'), 'watch',
		  'and the derived status');
SELECT is(pg_temp.rows('h1'), 1::bigint, 'exposure and status changes add no history row');
DELETE FROM pg_temp.orders;
UPDATE credit.accounts SET status = 'stop' WHERE customer_key = 'h1';
UPDATE credit.accounts SET status = 'ok' WHERE customer_key = 'h1';
SELECT is(pg_temp.rows('h1'), 1::bigint, 'a stop set and lifted adds no history row');

/* each change of limit, temporary limit and term: one row closed, one opened */
UPDATE credit.accounts SET credit_limit = 2000 WHERE customer_key = 'h1';
SELECT results_eq($$SELECT n, credit_limit, temp_limit, payment_term_days, valid_until IS NULL
					  FROM pg_temp.hist('h1')$$,
				  $$VALUES (1::bigint, 1000::numeric, 0::numeric, 30, false),
						   (2::bigint, 2000::numeric, 0::numeric, 30, true)$$,
				  'a new limit closes the row in force and opens one');
UPDATE credit.accounts
   SET temp_limit = 500, temp_limit_from = now() + interval '1 day',
	   temp_limit_until = now() + interval '3 days'
 WHERE customer_key = 'h1';
SELECT results_eq($$SELECT n, credit_limit, temp_limit, payment_term_days, valid_until IS NULL
					  FROM pg_temp.hist('h1') WHERE n >= 2$$,
				  $$VALUES (2::bigint, 2000::numeric, 0::numeric, 30, false),
						   (3::bigint, 2000::numeric, 500::numeric, 30, true)$$,
				  'a temporary limit closes the row in force and opens one');
SELECT results_eq($$SELECT temp_limit_from, temp_limit_until FROM credit.limit_history
					 WHERE customer_key = 'h1' AND valid_until IS NULL$$,
				  $$VALUES (now() + interval '1 day', now() + interval '3 days')$$,
				  'with its window');
UPDATE credit.accounts SET temp_limit_until = now() + interval '2 days' WHERE customer_key = 'h1';
SELECT is(pg_temp.rows('h1'), 4::bigint, 'moving the end of the window opens a row');
UPDATE credit.accounts SET payment_term_days = 45 WHERE customer_key = 'h1';
SELECT results_eq($$SELECT n, credit_limit, temp_limit, payment_term_days, valid_until IS NULL
					  FROM pg_temp.hist('h1') WHERE n >= 4$$,
				  $$VALUES (4::bigint, 2000::numeric, 500::numeric, 30, false),
						   (5::bigint, 2000::numeric, 500::numeric, 45, true)$$,
				  'a new term closes the row in force and opens one');
SELECT is((SELECT count(*) FROM credit.limit_history WHERE customer_key = 'h1' AND valid_until IS NULL),
		  1::bigint, 'exactly one row is in force');
SELECT is_empty($$SELECT a.n FROM pg_temp.hist('h1') a JOIN pg_temp.hist('h1') b ON b.n = a.n + 1
				   WHERE a.valid_until IS DISTINCT FROM b.valid_from$$,
				'the history is contiguous: each row ends where the next begins');
SELECT is_empty($$SELECT n FROM pg_temp.hist('h1') WHERE valid_until < valid_from$$,
				'no row ends before it begins');

/* credit.limit_on at the boundaries */
SELECT is_empty($$SELECT * FROM credit.limit_on('h1', pg_temp.from_of('h1', 1) - interval '1 microsecond')$$,
				'limit_on before the account existed: no row');
SELECT results_eq($$SELECT credit_limit, valid_from FROM credit.limit_on('h1', pg_temp.from_of('h1', 2))$$,
				  $$SELECT 2000::numeric, pg_temp.from_of('h1', 2)$$,
				  'limit_on at a row''s valid_from: that row (inclusive)');
SELECT results_eq($$SELECT credit_limit, valid_from
					  FROM credit.limit_on('h1', pg_temp.until_of('h1', 1) - interval '1 microsecond')$$,
				  $$SELECT 1000::numeric, pg_temp.from_of('h1', 1)$$,
				  'limit_on just before a row''s valid_until: that row');
SELECT results_eq($$SELECT credit_limit, valid_from FROM credit.limit_on('h1', pg_temp.until_of('h1', 1))$$,
				  $$SELECT 2000::numeric, pg_temp.from_of('h1', 2)$$,
				  'limit_on at a row''s valid_until: the next row (exclusive)');
SELECT results_eq($$SELECT credit_limit, payment_term_days FROM credit.limit_on('h1', clock_timestamp())$$,
				  $$VALUES (2000::numeric, 45)$$,
				  'limit_on now: the row in force');

/* the temporary limit counts only inside its window [now + 1 day, now + 2 days) */
SELECT results_eq($$SELECT temp_limit_in_force, effective_limit
					  FROM credit.limit_on('h1', now() + interval '1 day' - interval '1 microsecond')$$,
				  $$VALUES (0::numeric, 2000::numeric)$$,
				  'before the window: no temporary limit');
SELECT results_eq($$SELECT temp_limit_in_force, effective_limit FROM credit.limit_on('h1', now() + interval '1 day')$$,
				  $$VALUES (500::numeric, 2500::numeric)$$,
				  'at the start of the window: the temporary limit counts (inclusive)');
SELECT results_eq($$SELECT temp_limit_in_force, effective_limit
					  FROM credit.limit_on('h1', now() + interval '2 days' - interval '1 microsecond')$$,
				  $$VALUES (500::numeric, 2500::numeric)$$,
				  'just before the end of the window: it counts');
SELECT results_eq($$SELECT temp_limit_in_force, effective_limit FROM credit.limit_on('h1', now() + interval '2 days')$$,
				  $$VALUES (0::numeric, 2000::numeric)$$,
				  'at the end of the window: it no longer counts (exclusive)');
SELECT results_eq($$SELECT temp_limit_in_force, effective_limit
					  FROM credit.limit_on('h1', pg_temp.until_of('h1', 2) - interval '1 microsecond')$$,
				  $$VALUES (0::numeric, 2000::numeric)$$,
				  'before the temporary limit was granted: none');

/* an approved write-back names its application */
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('limit_change', 'h1', 3000, 'bigger orders');
SELECT is((SELECT state FROM credit.submit_application((SELECT max(application_id) FROM credit.applications))),
		  'pending', 'a limit change is submitted');
/* a submitted request is what the approvers approve: it no longer changes */
SELECT throws_ok($$UPDATE credit.applications SET requested_limit = 9000000
					WHERE application_id = (SELECT max(application_id) FROM credit.applications)$$,
				 '55000', NULL, 'the requested limit of a pending application cannot change: 55000');
SELECT throws_ok($$UPDATE credit.applications SET reason = 'other'
					WHERE application_id = (SELECT max(application_id) FROM credit.applications)$$,
				 '55000', NULL, 'nor its reason');
SELECT lives_ok($$UPDATE credit.applications SET documents = '{contract.pdf}'
				   WHERE application_id = (SELECT max(application_id) FROM credit.applications)$$,
				'supporting documents may still be added');
SET ROLE approvals_analyst;
SELECT is((SELECT state FROM credit.approve((SELECT max(application_id) FROM credit.applications), 'fine')),
		  'approved', 'the analyst approves the limit change');
RESET ROLE;
SELECT throws_ok($$UPDATE credit.applications SET requested_limit = 1
					WHERE application_id = (SELECT max(application_id) FROM credit.applications)$$,
				 '55000', NULL, 'nor once approved');
SELECT results_eq($$SELECT credit_limit, application_id, changed_by FROM credit.limit_history
					 WHERE customer_key = 'h1' AND valid_until IS NULL$$,
				  $$SELECT 3000::numeric, max(application_id), 'approvals_analyst'::text FROM credit.applications$$,
				  'the row the write-back opened carries the application and the approver');
SELECT is((SELECT application_id FROM credit.limit_on('h1', clock_timestamp())),
		  (SELECT max(application_id) FROM credit.applications),
		  'limit_on names the approving application');

/* DELETE closes the row in force (an account without applications) */
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('h2', 100);
UPDATE credit.accounts SET credit_limit = 200 WHERE customer_key = 'h2';
DELETE FROM credit.accounts WHERE customer_key = 'h2';
SELECT is((SELECT count(*) FROM credit.limit_history WHERE customer_key = 'h2' AND valid_until IS NULL),
		  0::bigint, 'DELETE closes the row in force');
SELECT is(pg_temp.rows('h2'), 2::bigint, 'and keeps the history');
SELECT ok(pg_temp.until_of('h2', 2) IS NOT NULL AND pg_temp.until_of('h2', 2) >= pg_temp.from_of('h2', 2),
		  'the last row ends when the account was deleted');
SELECT is_empty($$SELECT * FROM credit.limit_on('h2', pg_temp.until_of('h2', 2))$$,
				'limit_on from the deletion on: no row');
SELECT results_eq($$SELECT credit_limit FROM credit.limit_on('h2', pg_temp.from_of('h2', 2))$$,
				  $$VALUES (200::numeric)$$,
				  'the deleted account''s past is still answered');

/* ---------------------------------------------------------------------
 * the audit trail
 * ------------------------------------------------------------------- */

SELECT cmp_ok((SELECT count(*) FROM credit.audit_log), '>', 20::bigint,
			  'the changes above are on the audit trail');
SELECT throws_ok($$UPDATE credit.audit_log SET comment = 'edited'$$,
				 '55000', 'the audit trail is append-only: UPDATE is not allowed',
				 'UPDATE of the audit log: 55000');
SELECT throws_ok($$DELETE FROM credit.audit_log WHERE audit_id = (SELECT max(audit_id) FROM credit.audit_log)$$,
				 '55000', 'the audit trail is append-only: DELETE is not allowed',
				 'DELETE from the audit log: 55000');
SELECT throws_ok($$TRUNCATE credit.audit_log$$,
				 '55000', 'the audit trail is append-only: TRUNCATE is not allowed',
				 'TRUNCATE of the audit log: 55000');
SELECT is((SELECT tableowner::text FROM pg_tables WHERE schemaname = 'credit' AND tablename = 'audit_log'),
		  current_user::text, 'refused although the current role owns the table');

SELECT is_empty($$SELECT audit_id FROM credit.audit_log l
				   WHERE l.hash IS DISTINCT FROM
						 credit.audit_hash(l.prev_hash, l.chain, l.chain_seq, l.logged_at, l.session_role,
										   l.acting_role, l.table_name, l.operation, l.row_key,
										   l.before, l.after, l.comment)$$,
				'every stored hash is credit.audit_hash of its row');
SELECT is_empty($$SELECT chain FROM credit.audit_log GROUP BY chain
				   HAVING min(chain_seq) <> 1 OR max(chain_seq) <> count(*)$$,
				'every chain is numbered 1, 2, ... without gaps');
SELECT is_empty($$SELECT audit_id FROM (
					SELECT audit_id, prev_hash, lag(hash) OVER (PARTITION BY chain ORDER BY chain_seq) AS prior
					  FROM credit.audit_log) x
				   WHERE prev_hash IS DISTINCT FROM prior$$,
				'every row''s prev_hash is the previous row''s hash (NULL for the first)');
SELECT is_empty($$SELECT h.chain FROM credit.audit_heads h
				   FULL JOIN (SELECT DISTINCT ON (chain) chain, chain_seq, hash FROM credit.audit_log
							   ORDER BY chain, chain_seq DESC) t ON t.chain = h.chain
				   WHERE h.last_seq IS DISTINCT FROM t.chain_seq OR h.last_hash IS DISTINCT FROM t.hash$$,
				'every chain ends at its head, and every head has its chain');
SELECT is_empty($$SELECT * FROM credit.verify_audit()$$, 'verify_audit finds nothing');
SELECT results_eq($$SELECT acting_role, operation FROM credit.audit_log
					 WHERE table_name = 'applications' ORDER BY audit_id DESC LIMIT 1$$,
				  $$VALUES ('approvals_analyst'::name, 'UPDATE')$$,
				  'the approval is on the trail in the approver''s name');

/*
 * TRUNCATE of an audited table: refused (55000), or on the trail.  The
 * probe truncates inside a block it then rolls back.
 */
CREATE FUNCTION pg_temp.truncate_leaves_trace(t regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	before_count bigint;
	after_count bigint;
BEGIN
	SELECT count(*) INTO before_count FROM credit.audit_log;
	BEGIN
		EXECUTE format('TRUNCATE %s CASCADE', t);
		SELECT count(*) INTO after_count FROM credit.audit_log;
		RAISE EXCEPTION 'undo' USING ERRCODE = 'P0099';
	EXCEPTION
		WHEN SQLSTATE 'P0099' THEN RETURN after_count > before_count;
		WHEN SQLSTATE '55000' THEN RETURN true;
	END;
END;
$$;
SELECT is_empty($$SELECT DISTINCT tgrelid::regclass FROM pg_trigger
				   WHERE tgfoid = 'credit.audit_capture'::regproc
					 AND NOT pg_temp.truncate_leaves_trace(tgrelid::regclass)$$,
				'no audited table can be truncated without a trace');

/* a superuser who gets past the triggers is found out */
ALTER TABLE credit.audit_log DISABLE TRIGGER audit_log_immutable;
UPDATE credit.audit_log SET comment = 'rewritten'
 WHERE chain = 'config' AND chain_seq = 2;
ALTER TABLE credit.audit_log ENABLE TRIGGER audit_log_immutable;
SELECT results_eq($$SELECT chain, chain_seq, problem FROM credit.verify_audit()$$,
				  $$VALUES ('config', 2::bigint, 'the row''s content does not match its hash')$$,
				  'a row rewritten with the triggers disabled breaks its chain at that row');

/* function privileges and search_path: test/pgtap/security.sql */

SELECT * FROM finish();
ROLLBACK;
