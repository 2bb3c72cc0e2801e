/*
 * security.sql: pgTAP suite for the security model (sql/roles.sql,
 * sql/schema.sql).
 *
 * From the catalogs: the exact set of SECURITY DEFINER functions, each
 * pinned to exactly search_path = pg_catalog, pg_temp (pg_temp last), and
 * exactly which of PUBLIC and the five group roles may execute each of
 * them; every function of schema credit pins its search_path; PUBLIC may
 * execute only credit.caller, credit.sees_all_customers and the two code
 * checks, and holds no privilege on any relation or on the schema; the five
 * group roles exist and cannot log in (nor bypass row-level security);
 * row-level security is enabled, with the policy own_customers, on exactly
 * the tables roles.sql lists, and on every table sales may read that
 * carries a customer_key; every view of schema credit is security_invoker
 * (a definer-rights view would bypass row-level security), and the
 * report_* views are the nine of sql/reporting.sql; spot checks of the
 * privilege matrix (BI writes nothing and does not read the audit trail,
 * sales does not write accounts, finance writes the ledger but not
 * accounts, risk writes accounts, only admin reconciles and attaches, no
 * one executes the internal functions).  Behaviour, with SET ROLE: a
 * member of credit_sales sees only its own customers, through tables and
 * views, and cannot write another's.  Installation: a pre-existing schema
 * credit owned by another role, holding a table or a function, or where
 * another role (or PUBLIC) may create, makes CREATE EXTENSION fail with
 * 42P06 and leaves nothing behind; an empty schema owned by the installing
 * role (even with USAGE granted to others) is accepted.
 *
 * Logging in as real login roles, and the hostile search_path, are in
 * test/security.sh.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(99);

/* the five group roles and PUBLIC, in a fixed order */
CREATE FUNCTION pg_temp.executors(f text) RETURNS text[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg(r ORDER BY o), '{}')
	  FROM unnest('{public,credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}'::text[])
		   WITH ORDINALITY AS x(r, o)
	 WHERE has_function_privilege(r, f::regprocedure, 'EXECUTE') $$;

/* ---------------------------------------------------------------------
 * SECURITY DEFINER functions: exactly these, each pinned
 * ------------------------------------------------------------------- */

SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	   WHERE p.pronamespace = 'credit'::regnamespace AND p.prosecdef$$,
	$$VALUES ('credit.submit_application(bigint)'),
			 ('credit.approve(bigint,text,integer)'),
			 ('credit.reject(bigint,text,integer)'),
			 ('credit.withdraw(bigint,text)'),
			 ('credit.my_tasks()'),
			 ('credit.escalate_overdue(timestamp with time zone)'),
			 ('credit.claim_notices(integer)'),
			 ('credit.open_new_limit_application()'),
			 ('credit.limit_history_record()'),
			 ('credit.run_dunning(date)'),
			 ('credit.claim_dunning(integer,text,text,interval)'),
			 ('credit.complete_dunning(bigint,boolean,text)'),
			 ('credit.rescore(date,bigint)'),
			 ('credit.revalue(date)'),
			 ('credit.forget_dropped_tables()')$$,
	'the SECURITY DEFINER functions of schema credit are exactly the approval, batch and three trigger functions');

SELECT is((SELECT p.proconfig FROM pg_proc p WHERE p.oid = to_regprocedure(f)),
		  '{"search_path=pg_catalog, pg_temp"}'::text[],
		  f || ' is SECURITY DEFINER with exactly search_path = pg_catalog, pg_temp')
  FROM (VALUES ('credit.submit_application(bigint)'),
			   ('credit.approve(bigint,text,integer)'),
			   ('credit.reject(bigint,text,integer)'),
			   ('credit.withdraw(bigint,text)'),
			   ('credit.my_tasks()'),
			   ('credit.escalate_overdue(timestamp with time zone)'),
			   ('credit.claim_notices(integer)'),
			   ('credit.open_new_limit_application()'),
			   ('credit.limit_history_record()'),
			   ('credit.run_dunning(date)'),
			   ('credit.claim_dunning(integer,text,text,interval)'),
			   ('credit.complete_dunning(bigint,boolean,text)'),
			   ('credit.rescore(date,bigint)'),
			   ('credit.revalue(date)'),
			   ('credit.forget_dropped_tables()')) AS x(f)
 ORDER BY f;

/* who may execute them: nobody through PUBLIC, the triggers nobody at all */
SELECT results_eq(
	$$SELECT f, pg_temp.executors(f) FROM (VALUES
		('credit.submit_application(bigint)'), ('credit.approve(bigint,text,integer)'),
		('credit.reject(bigint,text,integer)'), ('credit.withdraw(bigint,text)'),
		('credit.my_tasks()'), ('credit.escalate_overdue(timestamp with time zone)'),
		('credit.claim_notices(integer)'), ('credit.open_new_limit_application()'),
		('credit.limit_history_record()'), ('credit.run_dunning(date)'),
		('credit.claim_dunning(integer,text,text,interval)'),
		('credit.complete_dunning(bigint,boolean,text)'), ('credit.rescore(date,bigint)'),
		('credit.revalue(date)'), ('credit.forget_dropped_tables()')) x(f)
	  ORDER BY f$$,
	$$VALUES
		('credit.approve(bigint,text,integer)', '{credit_admin,credit_risk,credit_finance,credit_sales}'::text[]),
		('credit.claim_dunning(integer,text,text,interval)', '{credit_admin,credit_finance}'),
		('credit.claim_notices(integer)', '{credit_admin,credit_risk}'),
		('credit.complete_dunning(bigint,boolean,text)', '{credit_admin,credit_finance}'),
		('credit.escalate_overdue(timestamp with time zone)', '{credit_admin,credit_risk}'),
		('credit.forget_dropped_tables()', '{}'),
		('credit.limit_history_record()', '{}'),
		('credit.my_tasks()', '{credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}'),
		('credit.open_new_limit_application()', '{}'),
		('credit.reject(bigint,text,integer)', '{credit_admin,credit_risk,credit_finance,credit_sales}'),
		('credit.rescore(date,bigint)', '{credit_admin,credit_risk}'),
		('credit.revalue(date)', '{credit_admin,credit_finance}'),
		('credit.run_dunning(date)', '{credit_admin,credit_finance}'),
		('credit.submit_application(bigint)', '{credit_admin,credit_risk,credit_finance,credit_sales}'),
		('credit.withdraw(bigint,text)', '{credit_admin,credit_risk,credit_finance,credit_sales}')$$,
	'each SECURITY DEFINER function is executable by exactly the group roles that need it, never by PUBLIC');

/* ---------------------------------------------------------------------
 * Every function pins its search_path; PUBLIC executes almost nothing
 * ------------------------------------------------------------------- */

SELECT cmp_ok((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'credit'::regnamespace),
			  '>=', 80::bigint, 'schema credit has its functions (the checks below are not vacuous)');

SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	   WHERE p.pronamespace = 'credit'::regnamespace
		 AND p.prokind <> 'a'
		 AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
	$$VALUES ('credit.release_dropped_tables()'), ('credit.enforce_orders()'),
			 ('credit.aging_json_step(internal,integer,numeric,text[])'),
			 ('credit.aging_json_final(internal)'),
			 ('credit.sum_on_last_step(internal,date,numeric)'),
			 ('credit.sum_on_last_final(internal)')$$,
	'every function of schema credit has SET search_path = pg_catalog, pg_temp but the DROP event trigger (which resolves the DROP''s names as the DROP does, and pins search_path in C), the order row trigger (it resolves no names; its internal queries pin search_path in C, and a SET per order would cost about 4% of its CPU) and the C support functions of the two reporting aggregates (they resolve no names; a SET per row would cost a second on the 360 view)');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	   WHERE p.pronamespace = 'credit'::regnamespace
		 AND p.oid::regprocedure::text ~ '^credit\.(aging_json|sum_on_last)_'
		 AND (p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c') OR p.prosecdef
			  OR pg_temp.executors(p.oid::regprocedure::text) <> '{}')$$,
	'the aggregate support functions are C, not SECURITY DEFINER, and executable by nobody but the owner');
SELECT is((SELECT p.proconfig FROM pg_proc p WHERE p.oid = 'credit.release_dropped_tables()'::regprocedure),
		  NULL, 'credit.release_dropped_tables sets nothing (its SPI queries run pinned, as the owner)');

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text, c
		FROM pg_proc p, unnest(p.proconfig) c
	   WHERE p.pronamespace = 'credit'::regnamespace
		 AND c LIKE 'search_path=%' AND c <> 'search_path=pg_catalog, pg_temp'$$,
	'no function of schema credit sets any other search_path as well');

SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	   WHERE p.pronamespace = 'credit'::regnamespace
		 AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
	$$VALUES ('credit.caller()'), ('credit.sees_all_customers()'),
			 ('credit.uscc_valid(text)'), ('credit.uscc_check(text)')$$,
	'PUBLIC may execute only credit.caller, credit.sees_all_customers, credit.uscc_valid and credit.uscc_check');

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a
	   WHERE p.pronamespace = 'credit'::regnamespace AND a.grantee = 0
		 AND p.oid NOT IN ('credit.caller()'::regprocedure, 'credit.sees_all_customers()'::regprocedure,
						   'credit.uscc_valid(text)'::regprocedure, 'credit.uscc_check(text)'::regprocedure)$$,
	'no other function has an ACL entry for PUBLIC');

SELECT is_empty(
	$$SELECT c.oid::regclass::text, a.privilege_type
		FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
	   WHERE c.relnamespace = 'credit'::regnamespace AND a.grantee = 0$$,
	'PUBLIC holds no privilege on any table, view or sequence of schema credit');

SELECT ok(NOT has_schema_privilege('public', 'credit', 'CREATE')
		  AND NOT has_schema_privilege('public', 'credit', 'USAGE'),
		  'PUBLIC has neither CREATE nor USAGE on schema credit');

SELECT is_empty(
	$$SELECT a.grantee::regrole::text FROM pg_namespace n, aclexplode(n.nspacl) a
	   WHERE n.nspname = 'credit' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner$$,
	'no role but the owner may create in schema credit');

/* ---------------------------------------------------------------------
 * The group roles
 * ------------------------------------------------------------------- */

SELECT set_eq(
	$$SELECT rolname::text FROM pg_roles
	   WHERE rolname IN ('credit_admin', 'credit_risk', 'credit_finance', 'credit_sales', 'credit_bi')
		 AND NOT rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb
		 AND NOT rolbypassrls AND NOT rolreplication AND NOT rolinherit IS NULL$$,
	ARRAY['credit_admin', 'credit_risk', 'credit_finance', 'credit_sales', 'credit_bi'],
	'the five group roles exist, NOLOGIN, without any attribute');

SELECT is_empty(
	$$SELECT m.roleid::regrole::text, m.member::regrole::text FROM pg_auth_members m
	   WHERE m.roleid::regrole::text LIKE 'credit\_%' AND m.member::regrole::text LIKE 'credit\_%'$$,
	'no group role is a member of another (sales does not inherit more)');

/* ---------------------------------------------------------------------
 * Row-level security
 * ------------------------------------------------------------------- */

SELECT set_eq(
	$$SELECT c.relname::text FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity$$,
	ARRAY['accounts', 'status_changes', 'profiles', 'profile_contacts', 'profile_documents',
		  'receivables', 'payments', 'allocations', 'dunning_queue', 'customer_grades',
		  'score_history', 'grade_changes', 'limit_requests', 'limit_history', 'metric_values',
		  'applications', 'held_orders', 'overlimit_warnings', 'application_steps',
		  'approval_notices', 'exposure_snapshots', 'currency_positions', 'revaluation_lines'],
	'row-level security is enabled on exactly the customer tables of roles.sql and the exposure snapshots');

SELECT set_eq(
	$$SELECT c.relname::text FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
	   WHERE c.relnamespace = 'credit'::regnamespace AND p.polname = 'own_customers'
		 AND p.polpermissive AND p.polcmd = '*' AND p.polroles = '{0}'
		 AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL$$,
	$$SELECT c.relname::text FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace AND c.relrowsecurity$$,
	'each of them has the policy own_customers, for every command, with USING and WITH CHECK');

SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'p')
		 AND has_table_privilege('credit_sales', c.oid, 'SELECT') AND NOT c.relrowsecurity
		 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
						AND a.attname IN ('customer_key', 'application_id'))$$,
	'every table credit_sales may read that holds customer rows has row-level security');

SELECT cmp_ok((SELECT count(*) FROM pg_class c
				WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v'),
			  '>=', 2::bigint, 'schema credit has views (the next check is not vacuous)');

SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('v', 'm')
		 AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)$$,
	'every view of schema credit is security_invoker (a view with its owner''s rights would bypass row-level security)');

SELECT is((SELECT count(*) FROM pg_class c
			WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v'
			  AND c.relname LIKE 'report\_%'
			  AND 'security_invoker=true' = ANY (c.reloptions)),
		  9::bigint, 'the nine report_* views of reporting.sql are security_invoker');

SELECT is_empty(
	$$SELECT c.relname, r FROM pg_class c,
			 unnest('{credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}'::text[]) r
	   WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v'
		 AND c.relname LIKE 'report\_%' AND NOT has_table_privilege(r, c.oid, 'SELECT')$$,
	'every group role may read every report_* view');

/* ---------------------------------------------------------------------
 * Privilege matrix
 * ------------------------------------------------------------------- */

SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace
		 AND has_table_privilege('credit_bi', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')$$,
	'credit_bi cannot write any table of schema credit');
SELECT ok(NOT has_table_privilege('credit_bi', 'credit.audit_log', 'SELECT')
		  AND NOT has_table_privilege('credit_bi', 'credit.audit_heads', 'SELECT'),
		  'credit_bi cannot read the audit trail');
SELECT ok(has_table_privilege('credit_bi', 'credit.accounts', 'SELECT')
		  AND has_table_privilege('credit_bi', 'credit.account_balances', 'SELECT')
		  AND has_table_privilege('credit_bi', 'credit.receivables', 'SELECT'),
		  'credit_bi reads accounts, balances and receivables');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'credit'::regnamespace
		 AND has_table_privilege('credit_sales', c.oid, 'TRUNCATE, REFERENCES, TRIGGER')$$,
	'credit_sales holds no TRUNCATE, REFERENCES or TRIGGER anywhere');
SELECT ok(NOT has_table_privilege('credit_sales', 'credit.accounts', 'UPDATE')
		  AND NOT has_table_privilege('credit_sales', 'credit.accounts', 'INSERT')
		  AND NOT has_table_privilege('credit_sales', 'credit.accounts', 'DELETE'),
		  'credit_sales cannot write credit.accounts');
SELECT ok(NOT has_table_privilege('credit_sales', 'credit.receivables', 'INSERT')
		  AND NOT has_table_privilege('credit_sales', 'credit.payments', 'INSERT')
		  AND NOT has_table_privilege('credit_sales', 'credit.application_steps', 'UPDATE'),
		  'credit_sales cannot post receivables or payments or decide steps');
SELECT ok(NOT has_table_privilege('credit_sales', 'credit.audit_log', 'SELECT')
		  AND NOT has_table_privilege('credit_sales', 'credit.attachments', 'SELECT')
		  AND NOT has_table_privilege('credit_sales', 'credit.dunning_state', 'SELECT'),
		  'credit_sales cannot read the audit trail, the attachments or the dunning state');
SELECT ok(has_table_privilege('credit_sales', 'credit.applications', 'INSERT')
		  AND has_column_privilege('credit_sales', 'credit.applications', 'requested_limit', 'UPDATE')
		  AND NOT has_column_privilege('credit_sales', 'credit.applications', 'state', 'UPDATE')
		  AND NOT has_column_privilege('credit_sales', 'credit.applications', 'requester', 'UPDATE'),
		  'credit_sales drafts applications but cannot write their state or requester');
SELECT ok(has_table_privilege('credit_sales', 'credit.profiles', 'INSERT')
		  AND has_table_privilege('credit_sales', 'credit.profiles', 'UPDATE'),
		  'credit_sales edits profiles');
SELECT ok(has_table_privilege('credit_finance', 'credit.receivables', 'INSERT')
		  AND has_table_privilege('credit_finance', 'credit.payments', 'INSERT')
		  AND has_table_privilege('credit_finance', 'credit.allocations', 'INSERT'),
		  'credit_finance posts receivables, payments and allocations');
SELECT ok(NOT has_table_privilege('credit_finance', 'credit.accounts', 'UPDATE')
		  AND NOT has_column_privilege('credit_finance', 'credit.accounts', 'credit_limit', 'UPDATE'),
		  'credit_finance cannot update credit.accounts');
SELECT ok(NOT has_table_privilege('credit_finance', 'credit.scorecards', 'INSERT')
		  AND NOT has_table_privilege('credit_finance', 'credit.positions', 'INSERT'),
		  'credit_finance cannot write scorecards or positions');
SELECT ok(has_table_privilege('credit_risk', 'credit.accounts', 'UPDATE')
		  AND has_table_privilege('credit_risk', 'credit.scorecards', 'INSERT'),
		  'credit_risk updates accounts and writes scorecards');
SELECT ok(NOT has_table_privilege('credit_risk', 'credit.receivables', 'INSERT')
		  AND NOT has_table_privilege('credit_risk', 'credit.positions', 'INSERT')
		  AND NOT has_table_privilege('credit_risk', 'credit.application_steps', 'UPDATE'),
		  'credit_risk cannot post receivables, change positions or decide steps directly');
SELECT ok(NOT has_table_privilege('credit_admin', 'credit.audit_log', 'INSERT, UPDATE, DELETE, TRUNCATE')
		  AND NOT has_table_privilege('credit_admin', 'credit.application_steps', 'INSERT, UPDATE, DELETE'),
		  'not even credit_admin writes the audit log or the steps directly');
SELECT ok(has_table_privilege('credit_admin', 'credit.positions', 'INSERT')
		  AND has_table_privilege('credit_admin', 'credit.approval_rules', 'INSERT')
		  AND has_table_privilege('credit_admin', 'credit.settings', 'UPDATE'),
		  'credit_admin configures positions, rules and settings');
SELECT is(pg_temp.executors('credit.reconcile(boolean)'), '{credit_admin}',
		  'only credit_admin may execute credit.reconcile');
SELECT is(pg_temp.executors('credit.attach_orders(regclass,name,name,name,text[],text,name,text,text,text,name,name)'),
		  '{credit_admin}', 'only credit_admin may execute credit.attach_orders');
SELECT is(pg_temp.executors('credit.detach_orders(regclass)'), '{credit_admin}',
		  'only credit_admin may execute credit.detach_orders');
SELECT is(pg_temp.executors('credit.apply_exposure(text[],numeric[],text)'), '{credit_admin}',
		  'only credit_admin may execute credit.apply_exposure (the unchecked ledger, for attach and detach)');
SELECT is(pg_temp.executors('credit.lock_accounts(text[])'), '{credit_admin,credit_risk}',
		  'only credit_admin and credit_risk (who may update accounts) may execute credit.lock_accounts');
SELECT is(pg_temp.executors('credit.adjust_shared_exposure(text[],numeric[])'), '{credit_admin}',
		  'only credit_admin may execute credit.adjust_shared_exposure (reconcile''s repair of the shared ledger)');
SELECT ok(has_table_privilege('credit_finance', 'credit.exchange_rates', 'INSERT, UPDATE, DELETE')
		  AND NOT has_table_privilege('credit_risk', 'credit.exchange_rates', 'INSERT')
		  AND NOT has_table_privilege('credit_finance', 'credit.currency_positions', 'INSERT, UPDATE, DELETE')
		  AND NOT has_table_privilege('credit_admin', 'credit.currency_positions', 'DELETE')
		  AND NOT has_table_privilege('credit_admin', 'credit.revaluation_lines', 'INSERT'),
		  'finance keeps the exchange rates; nobody deletes positions or writes revaluations directly');
SELECT is(pg_temp.executors('credit.allocate(bigint,text,numeric)'), '{credit_admin,credit_finance}',
		  'credit.allocate: admin and finance');
SELECT is(pg_temp.executors('credit.activate_scorecard(bigint)'), '{credit_admin,credit_risk}',
		  'credit.activate_scorecard: admin and risk');
SELECT is(pg_temp.executors('credit.verify_audit()'), '{credit_admin,credit_risk,credit_finance}',
		  'credit.verify_audit: not sales, not BI');
SELECT is(pg_temp.executors('credit.aging(date)'),
		  '{credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}',
		  'credit.aging: every group role, not PUBLIC');
SELECT is_empty(
	$$SELECT f, pg_temp.executors(f) FROM (VALUES
		('credit.hold_order(regclass,text,text,numeric,text,text,text)'),
		('credit.held_order_update(bigint,text)'),
		('credit.release_held_order(bigint)'),
		('credit.reject_held_order(bigint)'),
		('credit.hold_left(regclass,text,text)'),
		('credit.record_overlimit_warning(regclass,text,text,numeric,text,text,text)'),
		('credit.order_status_update(credit.attachments,text,text,text,numeric,text)'),
		('credit.application_write_back(credit.applications)'),
		('credit.application_start(credit.applications)'),
		('credit.application_step_act(credit.applications,integer,text,text)'),
		('credit.application_close(bigint,text,text)'),
		('credit.application_lock(bigint)'),
		('credit.approval_notify(bigint,text,text[],text[],text)'),
		('credit.route_amount(credit.applications,text,credit.accounts)'),
		('credit.audit_table(regclass,text,name,text,text[])'),
		('credit.audit_capture()'),
		('credit.enforce_orders()'),
		('credit.accounts_status_trigger()'),
		('credit.release_dropped_tables()')) x(f)
	  WHERE pg_temp.executors(f) <> '{}'$$,
	'no group role and not PUBLIC may execute the internal functions (holds, write-back, audit, triggers)');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	   WHERE p.pronamespace = 'credit'::regnamespace AND p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype)
		 AND pg_temp.executors(p.oid::regprocedure::text) <> '{}'$$,
	'no one may call a trigger function of schema credit');

/* ---------------------------------------------------------------------
 * Behaviour: a salesperson sees and writes only its own customers
 * ------------------------------------------------------------------- */

CREATE ROLE sec_tap_sales_a IN ROLE credit_sales;
CREATE ROLE sec_tap_sales_b IN ROLE credit_sales;
CREATE ROLE sec_tap_bi IN ROLE credit_bi;
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
VALUES ('A1', 'Alpha', 1000, 'sec_tap_sales_a'), ('A2', 'Alpha two', 2000, 'sec_tap_sales_a'),
	   ('B1', 'Beta', 4000, 'sec_tap_sales_b');
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('A1', 'IA1', 100, '2026-01-01', '2026-01-31'), ('A2', 'IA2', 200, '2026-01-01', '2026-01-31'),
	   ('B1', 'IB1', 400, '2026-01-01', '2026-01-31');

SET LOCAL ROLE sec_tap_sales_a;
SELECT results_eq('SELECT customer_key COLLATE "default" FROM credit.accounts ORDER BY 1',
				  ARRAY['A1', 'A2'], 'sales A sees its two accounts in credit.accounts');
SELECT results_eq('SELECT customer_key COLLATE "default" FROM credit.account_balances ORDER BY 1',
				  ARRAY['A1', 'A2'], 'sales A sees its two accounts in credit.account_balances');
SELECT results_eq('SELECT sum(amount) FROM credit.receivables', ARRAY[300::numeric],
				  'sales A sums only its receivables');
SELECT results_eq('SELECT sum(exposure) FROM credit.account_balances', ARRAY[300::numeric],
				  'sales A sums only its exposure through the view');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				   VALUES ('limit_change', 'B1', 9000)$$,
				 '42501', NULL, 'sales A cannot draft an application for B''s customer');
SELECT lives_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				  VALUES ('limit_change', 'A1', 1500)$$,
				'sales A drafts an application for its own customer');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, legal_name) VALUES ('B1', 'x')$$,
				 '42501', NULL, 'sales A cannot create B''s customer''s profile');
SELECT throws_ok($$UPDATE credit.accounts SET credit_limit = 5000 WHERE customer_key = 'A1'$$,
				 '42501', NULL, 'sales A cannot update even its own account');
SELECT is((SELECT count(*) FROM credit.applications WHERE customer_key = 'B1'), 0::bigint,
		  'and B''s customer has no application');
RESET ROLE;

SET LOCAL ROLE sec_tap_bi;
SELECT results_eq('SELECT count(*) FROM credit.account_balances', ARRAY[3::bigint],
				  'BI sees every account');
SELECT throws_ok('SELECT count(*) FROM credit.audit_log', '42501', NULL, 'BI cannot read the audit log');
SELECT throws_ok($$INSERT INTO credit.applications (kind, customer_key, requested_limit)
				   VALUES ('limit_change', 'A1', 1)$$, '42501', NULL, 'BI cannot draft an application');
RESET ROLE;

/* a role without any credit privilege still drops its own objects (the
 * event triggers fire for every DROP) */
CREATE ROLE sec_tap_app;
CREATE SCHEMA sec_tap_app AUTHORIZATION sec_tap_app;
SET LOCAL ROLE sec_tap_app;
SELECT lives_ok($$CREATE TABLE sec_tap_app.t (x int); DROP TABLE sec_tap_app.t$$,
				'a role without credit privileges drops its own table');
SELECT lives_ok($$CREATE VIEW sec_tap_app.v AS SELECT 1 AS one; DROP VIEW sec_tap_app.v$$,
				'a role without credit privileges drops its own view');
SELECT lives_ok($$CREATE TEMP TABLE sec_tap_tmp (x int); DROP TABLE sec_tap_tmp$$,
				'a role without credit privileges drops its own temporary table');
RESET ROLE;

/* an attached table dropped by an unqualified name, as its owner (who has
 * no credit role), is detached first: its exposure is released */
CREATE TABLE sec_tap_app.orders (id int PRIMARY KEY, cust text, amount numeric);
ALTER TABLE sec_tap_app.orders OWNER TO sec_tap_app;
SELECT credit.attach_orders('sec_tap_app.orders', 'cust', 'amount');
INSERT INTO sec_tap_app.orders VALUES (1, 'A1', 250);
SELECT is((SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = 'A1'), 350::numeric,
		  'the order counts (100 invoiced + 250)');
SET LOCAL ROLE sec_tap_app;
SET LOCAL search_path = sec_tap_app, public;
SELECT lives_ok('DROP TABLE orders', 'its owner drops the attached table by an unqualified name');
RESET search_path;
RESET ROLE;
SELECT is((SELECT credit.live_exposure(customer_key, exposure) FROM credit.accounts WHERE customer_key = 'A1'), 100::numeric,
		  'the dropped table''s open order no longer counts');
SELECT is((SELECT count(*) FROM credit.attachments WHERE NOT builtin), 0::bigint,
		  'and its attachment is gone');

/* ---------------------------------------------------------------------
 * Installation: a schema credit prepared by someone else is refused
 * ------------------------------------------------------------------- */

CREATE ROLE sec_tap_squatter;
DROP EXTENSION credit;
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'credit'::regnamespace)
		  + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'credit'::regnamespace)
		  + (SELECT count(*) FROM pg_type WHERE typnamespace = 'credit'::regnamespace),
		  0::bigint, 'DROP EXTENSION leaves schema credit empty');
DROP SCHEMA credit;

CREATE SCHEMA credit AUTHORIZATION sec_tap_squatter;
SELECT throws_ok('CREATE EXTENSION credit', '42P06',
				 'schema "credit" already exists and belongs to role "sec_tap_squatter"',
				 'a schema credit owned by another role is refused');
SELECT hasnt_extension('credit', 'nothing is installed');
SELECT is((SELECT count(*) FROM pg_roles WHERE rolname LIKE 'credit\_%'), 5::bigint,
		  'the group roles are still there (roles are cluster-wide)');
DROP SCHEMA credit;

CREATE SCHEMA credit;
CREATE TABLE credit.accounts (customer_key text);
SELECT throws_ok('CREATE EXTENSION credit', '42P06', 'schema "credit" already exists and is not empty',
				 'a schema credit of the installer holding a table is refused');
SELECT results_eq($$SELECT relname::text COLLATE "default" FROM pg_class WHERE relnamespace = 'credit'::regnamespace$$,
				  ARRAY['accounts'], 'and the schema holds only what was planted');
DROP TABLE credit.accounts;
CREATE FUNCTION credit.caller() RETURNS name LANGUAGE sql AS 'SELECT ''postgres''::name';
SELECT throws_ok('CREATE EXTENSION credit', '42P06', 'schema "credit" already exists and is not empty',
				 'a schema credit of the installer holding a planted function is refused');
DROP FUNCTION credit.caller();
CREATE DOMAIN credit.uscc AS text;
SELECT throws_ok('CREATE EXTENSION credit', '42P06', 'schema "credit" already exists and is not empty',
				 'a schema credit of the installer holding a planted type is refused');
DROP DOMAIN credit.uscc;
CREATE OPERATOR credit.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_catalog.texteq);
SELECT throws_ok('CREATE EXTENSION credit', '42P06', 'schema "credit" already exists and is not empty',
				 'a schema credit of the installer holding a planted operator is refused');
DROP OPERATOR credit.= (text, text);

GRANT CREATE ON SCHEMA credit TO sec_tap_squatter;
SELECT throws_ok('CREATE EXTENSION credit', '42P06',
				 'schema "credit" already exists and other roles may create objects in it',
				 'an empty schema credit where another role may create is refused');
REVOKE CREATE ON SCHEMA credit FROM sec_tap_squatter;
GRANT CREATE ON SCHEMA credit TO PUBLIC;
SELECT throws_ok('CREATE EXTENSION credit', '42P06',
				 'schema "credit" already exists and other roles may create objects in it',
				 'an empty schema credit where PUBLIC may create is refused');
REVOKE CREATE ON SCHEMA credit FROM PUBLIC;
SELECT hasnt_extension('credit', 'still nothing is installed');

GRANT USAGE ON SCHEMA credit TO sec_tap_squatter;
SELECT lives_ok('CREATE EXTENSION credit',
				'an empty schema credit owned by the installer (USAGE granted to others) is accepted');
SELECT has_extension('credit', 'credit is installed into it');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'credit'::regnamespace AND prosecdef),
		  15::bigint, 'with its fifteen SECURITY DEFINER functions');

SELECT * FROM finish();
ROLLBACK;
