-- test/demo.sql: what `make demo` shows, in a throwaway cluster.
-- A small company: its order-entry application has its own table
-- sales.orders; credit is attached to it without changing the application.
\set ON_ERROR_STOP 1
\pset footer off

CREATE EXTENSION credit;

-- the application's own schema, as it was before credit existed
CREATE SCHEMA sales;
CREATE TABLE sales.customers (
	cust_id		bigint PRIMARY KEY,
	name		text NOT NULL,
	salesperson	text
);
CREATE TABLE sales.orders (
	order_no	bigserial PRIMARY KEY,
	cust_id		bigint NOT NULL REFERENCES sales.customers,
	total		numeric(14,2) NOT NULL,
	state		text NOT NULL DEFAULT 'open',
	placed_at	timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sales.customers VALUES
	(1001, 'Acme Trading Co.', 'alice'),
	(1002, 'Beijing Hardware Ltd.', 'bob'),
	(1003, 'Shenzhen Parts Factory', 'alice');

-- an open order placed before credit management started
INSERT INTO sales.orders (cust_id, total) VALUES (1001, 12000.00);

\echo '== credit accounts: one per customer, from the application''s customers'
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
SELECT c.cust_id::text, c.name, lim.credit_limit, c.salesperson
  FROM sales.customers c
  JOIN (VALUES (1001, 50000), (1002, 20000), (1003, 8000)) lim(cust_id, credit_limit)
	ON lim.cust_id = c.cust_id;
-- a temporary limit for a big project, valid for the next 30 days
UPDATE credit.accounts
   SET temp_limit = 10000, temp_limit_from = now() - interval '1 day',
	   temp_limit_until = now() + interval '30 days'
 WHERE customer_key = '1003';

\echo '== attach enforcement to sales.orders (the existing open order counts at once)'
SELECT credit.attach_orders('sales.orders', customer_column => 'cust_id',
							amount_column => 'total', status_column => 'state',
							open_statuses => '{open,confirmed}');

\echo '== orders that pass'
INSERT INTO sales.orders (cust_id, total) VALUES (1001, 30000.00);
INSERT INTO sales.orders (cust_id, total, state) VALUES (1002, 18500.00, 'confirmed');
INSERT INTO sales.orders (cust_id, total) VALUES (1003, 16000.00);	-- fits thanks to the temporary limit
UPDATE sales.orders SET state = 'shipped' WHERE cust_id = 1001 AND total = 12000.00;	-- releases 12,000

\echo '== an order that is rejected: Beijing Hardware has 1,500 of credit left'
\set ON_ERROR_STOP 0
\set VERBOSITY default
INSERT INTO sales.orders (cust_id, total) VALUES (1002, 4000.00);
\set ON_ERROR_STOP 1

\echo '== each customer''s limit, exposure and available credit'
SELECT customer_key, customer_name, status, credit_limit, temp_limit_in_force,
	   exposure, available_credit
  FROM credit.account_balances
 ORDER BY customer_key;

\echo '== status changes recorded (and announced on NOTIFY channel credit_events)'
SELECT customer_key, old_status, new_status, exposure, effective_limit
  FROM credit.status_changes ORDER BY change_id;

\echo '== finance posts invoices from its ERP; Acme''s order is invoiced (exposure unchanged)'
BEGIN;
UPDATE sales.orders SET state = 'invoiced' WHERE cust_id = 1001 AND total = 30000.00;
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, order_ref)
VALUES ('1001', 'INV-2026-0042', 30000.00, DATE '2026-09-15', 'SO-2');
COMMIT;
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('1003', 'INV-2026-0051', 1500.00, DATE '2026-10-20', DATE '2026-11-19');
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('1001', 'BANK-7781', 10000.00, DATE '2026-11-02');
SELECT a.amount AS allocated_to_inv_2026_0042
  FROM credit.payments p, credit.allocate(p.payment_id, 'INV-2026-0042') a
 WHERE p.payment_key = 'BANK-7781';

\echo '== aging as of 2026-11-30 (Acme''s invoice was due 2026-10-15: 46 days past due)'
SELECT customer_key, bucket, band, amount, items
  FROM credit.aging(DATE '2026-11-30') ORDER BY customer_key, bucket_no;

\echo '== the daily dunning run on 2026-11-30 queues reminders'
SELECT * FROM credit.run_dunning(DATE '2026-11-30');
SELECT customer_key, invoice_key, level_no, channel, recipient, message
  FROM credit.dunning_queue ORDER BY queue_id;

\echo '== a mail worker claims the reminders and reports delivery'
SELECT queue_id, channel, invoice_key FROM credit.claim_dunning(10) ORDER BY queue_id;
SELECT count(*) AS delivered
  FROM credit.dunning_queue q, credit.complete_dunning(q.queue_id, true) c
 WHERE q.status = 'claimed';

\echo '== credit profiles (资信档案): the unified social credit code is checked in C'
INSERT INTO credit.profiles (customer_key, uscc, legal_name, registered_capital, industry, customer_since)
VALUES ('1001', '91110108MA01ABCD1E', 'Acme Trading Co., Ltd.', 5000000, 'wholesale', DATE '2019-03-01'),
	   ('1002', '9131000060720123X0', 'Beijing Hardware Ltd.', 800000, 'hardware', NULL);
\set ON_ERROR_STOP 0
INSERT INTO credit.profiles (customer_key, uscc) VALUES ('1003', '91110108MA01ABCD1X');	-- one character mistyped
\set ON_ERROR_STOP 1
INSERT INTO credit.profiles (customer_key, legal_name, registered_capital)
VALUES ('1003', 'Shenzhen Parts Factory', 300000);

\echo '== an external bureau score, loaded as a user metric'
INSERT INTO credit.metrics (metric, description, unit)
VALUES ('bureau_score', 'Score from the credit bureau report', 'points');
INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
VALUES ('1001', 'bureau_score', DATE '2026-11-01', 720),
	   ('1002', 'bureau_score', DATE '2026-11-01', 560);

\echo '== the risk team''s scorecard, as data: 4 weighted factors, grades A-D with limits and terms'
INSERT INTO credit.scorecards (name, description, window_months, overdue_months)
VALUES ('standard', 'Company standard scorecard', 6, 12);
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, missing_points, reason_code, reason_text)
VALUES (1, 'overdue', 1, 'max_days_overdue', 35, 'bins', NULL, NULL, 50, 'R1', 'Paid late or overdue'),
	   (1, 'relationship', 2, 'relationship_years', 20, 'bins', NULL, NULL, 0, 'R2', 'Short relationship'),
	   (1, 'bureau', 3, 'bureau_score', 30, 'linear', -100, 0.25, 40, 'R3', 'Weak bureau score'),
	   (1, 'capital', 4, 'registered_capital', 15, 'bins', NULL, NULL, 0, 'R4', 'Low registered capital');
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
VALUES (1, 'overdue', NULL, 1, 100), (1, 'overdue', 1, 31, 60), (1, 'overdue', 31, 61, 20),
	   (1, 'overdue', 61, NULL, 0),
	   (1, 'relationship', NULL, 1, 0), (1, 'relationship', 1, 3, 50), (1, 'relationship', 3, NULL, 100),
	   (1, 'capital', NULL, 500000, 0), (1, 'capital', 500000, 2000000, 60),
	   (1, 'capital', 2000000, NULL, 100);
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_base, limit_metric,
									 limit_multiplier, limit_floor, limit_cap, limit_round,
									 term_days, auto_apply)
VALUES (1, 'D', 0, 0, NULL, 0, 0, 0, 1000, 0, 'never'),
	   (1, 'C', 40, 5000, 'avg_monthly_sales', 1, 5000, 20000, 1000, 30, 'never'),
	   (1, 'B', 60, 10000, 'avg_monthly_sales', 2, 10000, 60000, 1000, 45, 'never'),
	   (1, 'A', 80, 20000, 'avg_monthly_sales', 3, 20000, 150000, 1000, 60, 'never');
INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold,
									downgrade_steps, description)
VALUES (1, 1, 'current_days_overdue', '>', 30, 1, 'one grade down while anything is over 30 days overdue');

\echo '== an overlapping bin is refused when it is written, not at scoring time'
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
VALUES (1, 'capital', 3000000, 4000000, 100);
\set ON_ERROR_STOP 1
SELECT credit.activate_scorecard(1);

\echo '== Acme scored as of 2026-11-30: score, grade, recommendation, and the reasons (most points lost first)'
SELECT score, band_grade, grade, recommended_limit, recommended_term, reasons
  FROM credit.score('1001', NULL, DATE '2026-11-30');
SELECT f->>'factor' AS factor, f->>'value' AS value, f->>'points' AS points,
	   f->>'contribution' AS contribution, f->>'lost' AS lost, f->>'reason_code' AS reason
  FROM credit.score('1001', NULL, DATE '2026-11-30') s, jsonb_array_elements(s.factors) f;

\echo '== the nightly rescore: every customer graded, history written, limit changes requested'
SELECT * FROM credit.rescore(DATE '2026-11-30');
SELECT customer_key, grade, score, reasons, recommended_limit, recommended_term
  FROM credit.customer_grades ORDER BY customer_key;
SELECT customer_key, old_grade, new_grade, why FROM credit.grade_changes ORDER BY change_id;
SELECT customer_key, current_limit, proposed_limit, current_term, proposed_term, state
  FROM credit.limit_requests ORDER BY customer_key;

\echo '== what-if: a draft where grade C starts at 35 points, against the active version (nothing written)'
SELECT credit.new_scorecard_version(1) AS draft;
UPDATE credit.scorecard_grades SET min_score = 35 WHERE scorecard_id = 2 AND grade = 'C';
SELECT * FROM credit.compare_scorecards(2, NULL, DATE '2026-11-30');

\echo '== approvals: positions held by roles, rules as data (up to 50,000: finance review, then the sales director)'
-- the EDI feed's role writes its order table and has no privilege on schema credit;
-- the approvers are in the extension's group role credit_risk
CREATE ROLE demo_sales;
CREATE ROLE demo_finance IN ROLE credit_risk;
CREATE ROLE demo_director IN ROLE credit_risk;
GRANT USAGE ON SCHEMA sales TO demo_sales;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sales TO demo_sales;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA sales TO demo_sales;
INSERT INTO credit.positions (position, description, superior)
VALUES ('cfo', 'Chief financial officer', NULL),
	   ('sales_director', 'Sales director', 'cfo'),
	   ('finance_review', 'Credit analyst, finance', 'cfo');
INSERT INTO credit.position_members VALUES ('finance_review', 'demo_finance'), ('sales_director', 'demo_director');
INSERT INTO credit.approval_rules (rule_id, kinds, amount_up_to, description)
VALUES (1, '{new_limit,limit_change,temp_limit,order_release}', 50000, 'up to 50,000');
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
VALUES (1, 1, 'finance_review', '1 day'), (1, 2, 'sales_director', '2 days');

\echo '== the EDI feed''s order table holds over-limit orders instead of rejecting them'
CREATE TABLE sales.edi_orders (
	edi_no		integer PRIMARY KEY,
	cust_id		bigint NOT NULL,
	total		numeric(14,2) NOT NULL,
	state		text NOT NULL DEFAULT 'open'
);
GRANT SELECT, INSERT, UPDATE ON sales.edi_orders TO demo_sales;
SELECT credit.attach_orders('sales.edi_orders', 'cust_id', 'total', 'state', '{open}',
							over_limit => 'hold', key_column => 'edi_no',
							held_status => 'credit_hold', rejected_status => 'cancelled');
SET ROLE demo_sales;
INSERT INTO sales.edi_orders (edi_no, cust_id, total) VALUES (501, 1002, 1000.00), (502, 1002, 6000.00);
RESET ROLE;
SELECT edi_no, cust_id, total, state FROM sales.edi_orders ORDER BY edi_no;
SELECT customer_key, held_orders, blocked_amount FROM credit.blocked_orders;
SELECT application_id, kind, customer_key, state, route_amount, reason FROM credit.applications;

\echo '== the finance reviewer and then the sales director approve the release'
SET ROLE demo_finance;
SELECT application_id, kind, customer_key, approver_position, route_amount FROM credit.my_tasks();
SELECT application_id, state FROM credit.approve(1, 'good payer, seasonal peak');
RESET ROLE;
SET ROLE demo_director;
SELECT application_id, state FROM credit.approve(1, 'approved for the peak');
RESET ROLE;
SELECT edi_no, state FROM sales.edi_orders ORDER BY edi_no;
SELECT order_key, amount, state, overrun FROM credit.held_orders;
SELECT customer_key, credit_limit, exposure, status FROM credit.account_balances WHERE customer_key = '1002';

\echo '== the audit trail of the release: who did what, hash-chained, and verified'
SELECT chain, chain_seq, table_name, operation, acting_role,
	   COALESCE(after->>'state', after->>'new_status') AS new_state, comment
  FROM credit.audit_log
 WHERE chain IN ('application:1', 'account:1002') AND table_name <> 'accounts'
 ORDER BY audit_id;
SELECT count(*) AS broken_links FROM credit.verify_audit();

\echo '== reconcile: stored exposure agrees with orders, invoices and payments (no rows)'
SELECT * FROM credit.reconcile();

\echo '== reports for BI tools (a login granted credit_bi reads them): aging structure today'
SELECT currency, bucket, amount, items, customers, share FROM credit.report_aging ORDER BY bucket_no;
\echo '== receivables health and the top overdue customers'
SELECT currency, open_amount, overdue_amount, collected_this_month, collection_rate
  FROM credit.report_receivables_health;
SELECT overdue_rank, customer_name, overdue_amount, days_overdue, grade
  FROM credit.report_top_overdue WHERE overdue_rank <= 5 ORDER BY overdue_rank;
\echo '== customer 360 of Acme Trading'
SELECT customer_name, owner, effective_limit, exposure, available, open_amount, aging, grade,
	   reasons, last_payment_on, last_payment_amount, open_applications
  FROM credit.report_customer_360 WHERE customer_key = '1001' \gx

\echo '== row-level security: salesperson alice (a member of credit_sales) sees only her customers'
CREATE ROLE alice IN ROLE credit_sales;
SET ROLE alice;
SELECT customer_key, customer_name, owner, exposure FROM credit.account_balances ORDER BY 1;
SELECT customer_name, open_amount, utilization FROM credit.report_customer_360 ORDER BY 1;
\echo '== and cannot write for bob''s customer (42501)'
\set ON_ERROR_STOP 0
INSERT INTO credit.profiles (customer_key, legal_name) VALUES ('1002', 'not hers');
\set ON_ERROR_STOP 1
RESET ROLE;

\echo '== group limits: Huaxin Group (limit 30,000) above two subsidiaries with 20,000 each'
INSERT INTO sales.customers VALUES (2001, 'Huaxin Shanghai', 'bob'), (2002, 'Huaxin Tianjin', 'bob');
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
VALUES ('G-HUAXIN', 'Huaxin Group', 30000);
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, parent_key)
VALUES ('2001', 'Huaxin Shanghai', 20000, 'G-HUAXIN'), ('2002', 'Huaxin Tianjin', 20000, 'G-HUAXIN');
INSERT INTO sales.orders (cust_id, total) VALUES (2001, 18000.00);
\echo '== Huaxin Tianjin''s order of 15,000 fits its own limit, not the group''s 12,000 left: refused'
\set ON_ERROR_STOP 0
INSERT INTO sales.orders (cust_id, total) VALUES (2002, 15000.00);
\set ON_ERROR_STOP 1
INSERT INTO sales.orders (cust_id, total) VALUES (2002, 12000.00);
SELECT customer_key, customer_name, parent_key, credit_limit, exposure, status
  FROM credit.accounts WHERE customer_key IN ('G-HUAXIN', '2001', '2002') ORDER BY parent_key NULLS FIRST, 1;
\echo '== Huaxin Tianjin leaves the group: its exposure leaves with it; reconcile agrees (no rows)'
SELECT customer_key, parent_key, exposure, status FROM credit.move_account('2002', NULL);
SELECT customer_key, parent_key, exposure, status
  FROM credit.accounts WHERE customer_key IN ('G-HUAXIN', '2001', '2002') ORDER BY 1;
SELECT * FROM credit.reconcile();

\echo '== currencies: an export order table in EUR and USD against limits kept in CNY, rates with validity dates'
UPDATE credit.settings SET time_zone = 'Asia/Shanghai';
INSERT INTO credit.exchange_rates (from_currency, to_currency, valid_from, valid_until, rate, source)
VALUES ('EUR', 'CNY', credit.business_date() - 30, NULL, 7.80, 'treasury'),
	   ('USD', 'CNY', credit.business_date() - 30, NULL, 7.10, 'treasury');
CREATE TABLE sales.export_orders (id serial PRIMARY KEY, cust_id int NOT NULL,
								  total numeric(12,2) NOT NULL, currency char(3) NOT NULL,
								  state text NOT NULL DEFAULT 'open');
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
VALUES ('3001', 'Rhein Maschinen GmbH', 100000);
SELECT credit.attach_orders('sales.export_orders', 'cust_id', 'total', 'state', '{open}',
							currency_column => 'currency');
\echo '== 10,000 EUR counts 78,000 CNY at the booked rate; 3,200 USD more would be 22,720 CNY, past the 100,000 limit: refused (CR001)'
INSERT INTO sales.export_orders (cust_id, total, currency) VALUES (3001, 10000, 'EUR');
\set ON_ERROR_STOP 0
INSERT INTO sales.export_orders (cust_id, total, currency) VALUES (3001, 3200, 'USD');
\set ON_ERROR_STOP 1
\echo '== 2,000 USD (14,200 CNY) fits: exposure 92,200'
INSERT INTO sales.export_orders (cust_id, total, currency) VALUES (3001, 2000, 'USD');
\set ON_ERROR_STOP 0
\echo '== no GBP rate: refused with CR008, never counted at 1.0'
INSERT INTO sales.export_orders (cust_id, total, currency) VALUES (3001, 100, 'GBP');
\set ON_ERROR_STOP 1
SELECT customer_key, currency, rate, rate_date FROM credit.currency_positions ORDER BY 1, 2;
\echo '== the euro rises to 8.60 from today: exposure does not move until credit.revalue books it (+8,000: over the limit)'
INSERT INTO credit.exchange_rates (from_currency, to_currency, valid_from, rate, source)
VALUES ('EUR', 'CNY', credit.business_date(), 8.60, 'treasury');
SELECT customer_key, exposure, status FROM credit.accounts WHERE customer_key = '3001';
SELECT customer_key, exposure_before, exposure_after, change, watch_line, crossed_watch, crossed_limit
  FROM credit.revalue(credit.business_date());
SELECT * FROM credit.reconcile();
