/*
 * roles.sql: the group roles, their privileges, and row-level security.
 *
 * Roles are cluster-wide: CREATE EXTENSION creates the five group roles
 * (NOLOGIN) when they are missing and leaves them in place on DROP
 * EXTENSION (other databases of the cluster may use them).  A DBA grants
 * them to login roles:
 *
 *   credit_admin    configuration, attaching tables, every write, reconcile
 *   credit_risk     accounts and limits, groups (move_account), profiles,
 *                   scorecards and rescoring,
 *                   metrics, limit applications, escalation
 *   credit_finance  receivables, payments, allocations, dunning runs and
 *                   the delivery queue
 *   credit_sales    its own customers only: reads them, edits their
 *                   profiles, drafts and submits their applications
 *   credit_bi       reads everything but the audit trail, writes nothing
 *
 * Approving is not a role's privilege: credit.approve and credit.reject
 * check the caller's positions (credit.position_members), whatever its
 * group role.  They, the other approval functions and the batch functions
 * (run_dunning, claim_dunning, complete_dunning, rescore, claim_notices)
 * are SECURITY DEFINER: they write tables their callers may only read, and
 * check the caller (credit.caller()) themselves.  Everything else runs with
 * the caller's rights.  EXECUTE is revoked from PUBLIC on every function but
 * credit.caller and the unified social credit code checks (which the domain
 * credit.uscc needs wherever it is used).
 *
 * Row-level security: a member of credit_sales that is not also a member
 * of credit_admin, credit_risk or credit_finance sees and writes only rows
 * of the customers whose accounts.owner is its role name, in every table
 * that belongs to a customer and in every view (the views are
 * security_invoker).  Table owners and superusers are not subject to it,
 * so the engine's own work (triggers, SECURITY DEFINER functions) always
 * sees every row.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY '{credit_admin,credit_risk,credit_finance,credit_sales,credit_bi}'::text[] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		ELSE
			RAISE NOTICE 'role "%" already exists: it gets the privileges of that group role', r;
		END IF;
	END LOOP;
END;
$$;

CREATE FUNCTION credit.sees_all_customers()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN NOT pg_catalog.pg_has_role('credit_sales', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_admin', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_risk', 'MEMBER')
	OR pg_catalog.pg_has_role('credit_finance', 'MEMBER');

COMMENT ON FUNCTION credit.sees_all_customers() IS
'False for a member of credit_sales that is not also a member of credit_admin, credit_risk or credit_finance: row-level security then limits it to the customers it owns (accounts.owner = its role name).';

CREATE INDEX accounts_owner_idx ON credit.accounts (owner);

/* functions: nothing for PUBLIC but the caller's name and the code checks */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA credit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.caller(), credit.sees_all_customers(),
	credit.uscc_valid(text), credit.uscc_check(text)
	TO PUBLIC;

GRANT USAGE ON SCHEMA credit TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;

/* reading: everyone; the audit trail not for sales and BI */
GRANT SELECT ON ALL TABLES IN SCHEMA credit
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
REVOKE SELECT ON credit.audit_log, credit.audit_heads, credit.attachments, credit.dunning_state
	FROM credit_sales;
REVOKE SELECT ON credit.audit_log, credit.audit_heads FROM credit_bi;
GRANT EXECUTE ON FUNCTION
	credit.effective_limit(credit.accounts, timestamptz),
	credit.available_credit(credit.accounts, timestamptz),
	credit.sees_all_customers(),
	credit.aging_config(), credit.aging_buckets_check(), credit.aging_bucket(integer),
	credit.receivable_bucket(credit.receivables, date), credit.receivable_bucket(bigint, date),
	credit.aging(date), credit.aging_summary(date),
	credit.limit_on(text, timestamptz),
	credit.acts_for(text), credit.my_tasks()
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.verify_audit(),
	credit.audit_hash(bytea, text, bigint, timestamptz, name, name, text, text, text, jsonb, jsonb, text)
	TO credit_admin, credit_risk, credit_finance;

/* applications: drafted by people, decided through the functions */
GRANT INSERT, DELETE ON credit.applications TO credit_admin, credit_risk, credit_sales;
GRANT UPDATE (requested_limit, requested_temp_limit, temp_from, temp_until, requested_term_days,
			  reason, documents) ON credit.applications
	TO credit_admin, credit_risk, credit_sales;
GRANT EXECUTE ON FUNCTION credit.submit_application(bigint), credit.approve(bigint, text, integer),
	credit.reject(bigint, text, integer), credit.withdraw(bigint, text)
	TO credit_admin, credit_risk, credit_finance, credit_sales;
GRANT EXECUTE ON FUNCTION credit.escalate_overdue(timestamptz), credit.claim_notices(integer)
	TO credit_admin, credit_risk;

/* profiles: risk, and sales for its own customers */
GRANT INSERT, UPDATE, DELETE ON credit.profiles, credit.profile_contacts, credit.profile_documents
	TO credit_admin, credit_risk, credit_sales;

/* risk: accounts and limits, scorecards, metrics */
GRANT INSERT, UPDATE, DELETE ON credit.accounts, credit.scorecards, credit.scorecard_factors,
	credit.scorecard_bins, credit.scorecard_grades, credit.scorecard_rules, credit.metrics,
	credit.metric_values
	TO credit_admin, credit_risk;
GRANT EXECUTE ON FUNCTION
	credit.customer_metrics(date, integer, integer, text),
	credit.score_all(bigint, date, text, boolean), credit.score(text, bigint, date),
	credit.rescore(date, bigint), credit.compare_scorecards(bigint, bigint, date),
	credit.activate_scorecard(bigint), credit.retire_scorecard(bigint),
	credit.new_scorecard_version(bigint),
	credit.scorecard_factor_check(bigint, text), credit.scorecard_grades_check(bigint),
	credit.scorecard_complete_check(bigint), credit.move_account(text, text)
	TO credit_admin, credit_risk;

/* finance: the receivables ledger and dunning */
GRANT INSERT, UPDATE, DELETE ON credit.receivables, credit.payments, credit.allocations
	TO credit_admin, credit_finance;
GRANT EXECUTE ON FUNCTION
	credit.check_due_date(text, date, date), credit.allocate(bigint, text, numeric),
	credit.run_dunning(date), credit.claim_dunning(integer, text, text, interval),
	credit.complete_dunning(bigint, boolean, text)
	TO credit_admin, credit_finance;

/* admin: configuration and attachments */
GRANT INSERT, UPDATE, DELETE ON credit.settings, credit.aging_buckets, credit.dunning_levels,
	credit.positions, credit.position_members, credit.approval_rules, credit.approval_rule_steps,
	credit.attachments
	TO credit_admin;
GRANT EXECUTE ON FUNCTION
	credit.dunning_template_variables(),
	credit.attach_table(regclass, name, name, name, text[], text, boolean, name[], text, name, text, text, text, name, name),
	credit.attach_orders(regclass, name, name, name, text[], text, name, text, text, text, name, name),
	credit.attach_receivables(regclass, name, name, name, text[]),
	credit.detach_orders(regclass), credit.column_type(regclass, name),
	credit.require_read_committed(text),
	credit.open_orders_filter(credit.attachments), credit.open_exposure_query(credit.attachments),
	credit.rolled_up_query(text), credit.reconcile(boolean)
	TO credit_admin;
CREATE POLICY own_customers ON credit.accounts
	USING ((SELECT credit.sees_all_customers())
		   OR owner OPERATOR(pg_catalog.=) CURRENT_USER::text)
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR owner OPERATOR(pg_catalog.=) CURRENT_USER::text);
ALTER TABLE credit.accounts ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.status_changes
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.status_changes ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profiles
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profiles ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profile_contacts
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profile_contacts ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.profile_documents
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.profile_documents ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.receivables
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.receivables ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.payments
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.payments ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.allocations
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.allocations ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.dunning_queue
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.dunning_queue ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.customer_grades
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.customer_grades ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.score_history
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.score_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.grade_changes
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.grade_changes ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.limit_requests
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.limit_requests ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.limit_history
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.limit_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.metric_values
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.metric_values ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.applications
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.applications ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.held_orders
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.held_orders ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.overlimit_warnings
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.overlimit_warnings ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.application_steps
	USING ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x));
ALTER TABLE credit.application_steps ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.approval_notices
	USING ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR application_id IN (SELECT x.application_id FROM credit.applications x));
ALTER TABLE credit.approval_notices ENABLE ROW LEVEL SECURITY;

/* currencies: rates kept by finance; revaluation by finance and admin */
GRANT INSERT, UPDATE, DELETE ON credit.exchange_rates TO credit_admin, credit_finance;
/* attach_orders books the positions of the orders already in a table */
GRANT INSERT, UPDATE ON credit.currency_positions TO credit_admin;
GRANT EXECUTE ON FUNCTION credit.rate_on(text, text, date), credit.business_date(timestamptz)
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.revalue(date) TO credit_admin, credit_finance;
GRANT EXECUTE ON FUNCTION credit.required_rate(text, text, date),
	credit.book_position(text, text), credit.open_currency_query(credit.attachments),
	credit.missing_position(text, text), credit.account_key_sql(credit.attachments)
	TO credit_admin;

CREATE POLICY own_customers ON credit.currency_positions
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.currency_positions ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_customers ON credit.revaluation_lines
	USING ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text))
	WITH CHECK ((SELECT credit.sees_all_customers())
		   OR customer_key IN (SELECT a.customer_key FROM credit.accounts a
								WHERE a.owner OPERATOR(pg_catalog.=) CURRENT_USER::text));
ALTER TABLE credit.revaluation_lines ENABLE ROW LEVEL SECURITY;

/* the shared-memory ledger: who serves an account, and its live figure */
GRANT EXECUTE ON FUNCTION credit.ledger_backend(text), credit.live_exposure(text, numeric)
	TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
GRANT EXECUTE ON FUNCTION credit.shared_ledger() TO credit_admin;
/* locking accounts (instead of FOR UPDATE): the roles that may update them */
GRANT EXECUTE ON FUNCTION credit.lock_accounts(text[]) TO credit_admin, credit_risk;
/* attach_orders and detach_orders add and release through the ledger */
GRANT EXECUTE ON FUNCTION credit.apply_exposure(text[], numeric[], text) TO credit_admin;
/* reconcile(repair => true) repairs the shared-memory ledger's figures with it */
GRANT EXECUTE ON FUNCTION credit.adjust_shared_exposure(text[], numeric[]) TO credit_admin;
