--
-- approval_flow: credit applications from draft to decision.
--
-- 1. routing at every boundary of the example rules (up to 50,000: finance
--    review then sales director; above 50,000: finance review then finance
--    director; above 500,000 also the CFO), amount basis, grade and status
--    limits, priority, rules changed after submit, no matching rule;
-- 2. deadlines and escalation with explicit times, my_tasks, notices;
-- 3. segregation of duties;
-- 4. write-back in the same transaction, limit history, limit requests;
-- 5. the automatic new-limit application;
-- 6. bad input;
-- 7. the audit trail, intact and after tampering.
--
-- Every actor is a role of its own (SET ROLE); roles are cluster-wide, so
-- they are named appr_* and dropped at the end.  Times printed are
-- intervals relative to the application's submitted_at (or to the previous
-- step's acted_at), or fixed timestamps; escalation runs at explicit as_of
-- times derived from submitted_at.  Errors are caught by show_error() (as in
-- messages.sql): SQLSTATE and message, no C or PL/pgSQL line numbers; the
-- timestamps some details carry (a failing row's created_at, "decided at")
-- are masked as <time>, as they are in the notices' messages.
--
CREATE EXTENSION credit;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET TimeZone = 'UTC';
SET IntervalStyle = 'postgres';

CREATE FUNCTION show_error(stmt text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text; sch text; tbl text; col text;
BEGIN
	EXECUTE stmt;
	RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT,
		sch = SCHEMA_NAME, tbl = TABLE_NAME, col = COLUMN_NAME;
	RAISE NOTICE '%', concat_ws(E'\n',
		'SQLSTATE ' || st,
		'MESSAGE: ' || msg,
		'DETAIL: ' || nullif(regexp_replace(det, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d', '<time>', 'g'), ''),
		'HINT: ' || nullif(hnt, ''),
		'SCHEMA NAME: ' || nullif(sch, ''),
		'TABLE NAME: ' || nullif(tbl, ''),
		'COLUMN NAME: ' || nullif(col, ''));
END $$;

-- an application's chain of steps in one line: position[state]
CREATE FUNCTION chain_of(app bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(format('%s[%s]', s.position, s.state), ' -> ' ORDER BY s.step_no)
	  FROM credit.application_steps s WHERE s.application_id = app
$$;

--------------------------------------------------------------------------
-- People, positions, rules.
--
-- appr_finance_team is a group role: its members (appr_review1,
-- appr_review2, appr_deputy) act for finance_review.  appr_deputy also acts
-- for sales_director, so it could approve both steps of a small
-- application if the four-eyes rule did not stop it.  appr_staff carries
-- the table privileges everybody needs to use the workflow; it acts for no
-- position.
--------------------------------------------------------------------------
CREATE ROLE appr_staff NOLOGIN;
CREATE ROLE appr_finance_team NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_sales1 NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_sales2 NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_review1 NOLOGIN IN ROLE appr_staff, appr_finance_team;
CREATE ROLE appr_review2 NOLOGIN IN ROLE appr_staff, appr_finance_team;
CREATE ROLE appr_deputy NOLOGIN IN ROLE appr_staff, appr_finance_team;
CREATE ROLE appr_sdir NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_fdir NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_cfo NOLOGIN IN ROLE appr_staff;
CREATE ROLE appr_outsider NOLOGIN IN ROLE appr_staff;
GRANT USAGE ON SCHEMA credit TO appr_staff;
GRANT credit_risk TO appr_staff;
GRANT SELECT ON ALL TABLES IN SCHEMA credit TO appr_staff;
GRANT INSERT, UPDATE ON credit.accounts, credit.applications, credit.application_steps,
	credit.approval_notices, credit.limit_history, credit.limit_requests TO appr_staff;

INSERT INTO credit.positions (position, description, superior)
VALUES ('cfo', 'Chief financial officer', NULL),
	   ('finance_director', 'Finance director', 'cfo'),
	   ('sales_director', 'Sales director', 'cfo'),
	   ('finance_review', 'Credit analyst, finance', 'finance_director');
INSERT INTO credit.position_members (position, member)
VALUES ('finance_review', 'appr_finance_team'),
	   ('sales_director', 'appr_sdir'),
	   ('sales_director', 'appr_deputy'),
	   ('finance_director', 'appr_fdir'),
	   ('cfo', 'appr_cfo');
-- a member must be a role
SELECT show_error($$INSERT INTO credit.position_members VALUES ('cfo', 'appr_nobody')$$);

-- rules 1-3: the example; 4: small increases; 5: grade A fast track;
-- 6: customers on hold or stopped; 7: payment terms; 8: a rule with no
-- steps (it must never match: nothing is approved by default)
INSERT INTO credit.approval_rules (rule_id, kinds, amount_basis, amount_above, amount_up_to,
								   grades, statuses, priority, description)
VALUES (1, '{new_limit,limit_change,temp_limit,order_release}', 'absolute', NULL, 50000, NULL, NULL, 100, 'up to 50,000'),
	   (2, '{new_limit,limit_change,temp_limit,order_release}', 'absolute', 50000, 500000, NULL, NULL, 100, 'above 50,000'),
	   (3, '{new_limit,limit_change,temp_limit,order_release}', 'absolute', 500000, NULL, NULL, NULL, 100, 'above 500,000'),
	   (4, '{limit_change}', 'increase', NULL, 10000, NULL, NULL, 50, 'increase of up to 10,000, or a decrease'),
	   (5, '{new_limit}', 'absolute', NULL, 100000, '{A}', NULL, 10, 'grade A, up to 100,000'),
	   (6, '{new_limit,limit_change,temp_limit}', 'absolute', NULL, NULL, NULL, '{hold,stop}', 20, 'customer on hold or stopped'),
	   (7, '{term_change}', 'absolute', NULL, NULL, NULL, '{ok,watch}', 100, 'payment terms'),
	   (8, '{term_change}', 'absolute', NULL, NULL, NULL, NULL, 1, 'no steps: never matches');
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline, escalate_to)
VALUES (1, 1, 'finance_review', '2 days', NULL), (1, 2, 'sales_director', '3 days', NULL),
	   (2, 1, 'finance_review', '2 days', NULL), (2, 2, 'finance_director', '2 days', NULL),
	   (3, 1, 'finance_review', '2 days', NULL), (3, 2, 'finance_director', '2 days', NULL),
	   (3, 3, 'cfo', '5 days', NULL),
	   (4, 1, 'finance_review', '1 day', 'cfo'),
	   (5, 1, 'finance_review', '1 day', NULL),
	   (6, 1, 'finance_director', '2 days', NULL), (6, 2, 'cfo', '2 days', NULL),
	   (7, 1, 'sales_director', '1 second', NULL), (7, 2, 'finance_review', '2 days', NULL);

-- customers; G1, G2 and P1 are graded (a draft scorecard is enough for
-- credit.customer_grades), S1 and P1 are stopped by a person
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
VALUES ('N1', 'New customer', 0), ('L1', 'Limit change', 40000),
	   ('G1', 'Grade A', 0), ('G2', 'Grade B', 0), ('S1', 'Stopped', 20000),
	   ('P1', 'Grade A, stopped', 0), ('T1', 'Terms', 10000),
	   ('E1', 'Escalation', 0), ('F1', 'Four eyes', 0),
	   ('W2', 'Adopts a request', 10000), ('W3', 'Request rejected', 10000),
	   ('X1', 'Bad input', 10000);
UPDATE credit.accounts SET status = 'stop' WHERE customer_key IN ('S1', 'P1');
INSERT INTO credit.scorecards (name, description) VALUES ('appr', 'grades for routing');
INSERT INTO credit.customer_grades (customer_key, scorecard_id, grade, score, computed_grade,
									grade_since, recommended_limit, recommended_term, reasons,
									scored_on)
SELECT k, s.scorecard_id, g, 80, g, '2024-01-01', 50000, 30, '{}', '2024-01-01'
  FROM (VALUES ('G1', 'A'), ('G2', 'B'), ('P1', 'A'), ('W2', 'B'), ('W3', 'B')) v(k, g),
	   credit.scorecards s;
SELECT customer_key, credit_limit, status FROM credit.accounts ORDER BY customer_key;

--------------------------------------------------------------------------
-- 1. Routing.
--------------------------------------------------------------------------
-- new limits at the boundaries: (.., 50000] rule 1, (50000, 500000] rule 2,
-- (500000, ..) rule 3
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'N1', 49999.99, 'boundary'), ('new_limit', 'N1', 50000, 'boundary'),
	   ('new_limit', 'N1', 50000.01, 'boundary'), ('new_limit', 'N1', 500000, 'boundary'),
	   ('new_limit', 'N1', 500000.01, 'boundary');
SELECT a.application_id, (credit.submit_application(a.application_id)).state
  FROM credit.applications a WHERE a.customer_key = 'N1' ORDER BY a.application_id;
RESET ROLE;
SELECT application_id, requested_limit, route_amount, rule_id, state, requester,
	   current_limit, chain_of(application_id)
  FROM credit.applications WHERE customer_key = 'N1' ORDER BY application_id;
-- every step copied with its deadline and escalation target (the
-- position's superior when the rule names none); only step 1 is pending,
-- due its deadline after submit
SELECT s.application_id, s.step_no, s.position, s.first_position, s.escalate_to,
	   s.deadline_interval, s.state, s.deadline - a.submitted_at AS due_after_submit
  FROM credit.application_steps s JOIN credit.applications a USING (application_id)
 WHERE a.customer_key = 'N1' AND a.requested_limit IN (50000, 500000.01)
 ORDER BY s.application_id, s.step_no;
-- the requester withdraws them: every remaining step is skipped
SET ROLE appr_sales1;
SELECT a.application_id, (credit.withdraw(a.application_id, 'routing test')).state
  FROM credit.applications a WHERE a.customer_key = 'N1' ORDER BY a.application_id;
RESET ROLE;
SELECT application_id, state, decision_comment, decided_at IS NOT NULL AS decided,
	   chain_of(application_id)
  FROM credit.applications WHERE customer_key = 'N1' ORDER BY application_id;

-- amount basis: L1 has 40,000; rule 4 (priority 50) takes increases of up
-- to 10,000 and decreases, routed on the increase; 10,000.01 more falls
-- through to the absolute rules (50,000.01 is above 50,000: rule 2)
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('limit_change', 'L1', 50000), ('limit_change', 'L1', 50000.01),
	   ('limit_change', 'L1', 30000), ('limit_change', 'L1', 45000);
SELECT a.application_id, (credit.submit_application(a.application_id)).state
  FROM credit.applications a WHERE a.customer_key = 'L1' ORDER BY a.application_id;
RESET ROLE;
SELECT application_id, requested_limit, current_limit, route_amount, rule_id,
	   chain_of(application_id)
  FROM credit.applications WHERE customer_key = 'L1' ORDER BY application_id;

-- grades: rule 5 (grade A, up to 100,000, priority 10) is one review; grade
-- B and ungraded customers take the amount rules; above 100,000 grade A too
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('new_limit', 'G1', 80000), ('new_limit', 'G1', 100000), ('new_limit', 'G1', 100000.01),
	   ('new_limit', 'G2', 80000);
SELECT a.application_id, (credit.submit_application(a.application_id)).state
  FROM credit.applications a WHERE a.customer_key IN ('G1', 'G2') ORDER BY a.application_id;
RESET ROLE;
SELECT a.application_id, a.customer_key, g.grade, a.requested_limit, a.rule_id,
	   chain_of(a.application_id)
  FROM credit.applications a JOIN credit.customer_grades g USING (customer_key)
 WHERE a.customer_key IN ('G1', 'G2') ORDER BY a.application_id;

-- statuses: S1 is stopped, rule 6 (priority 20) takes its limit changes,
-- even the small increase rule 4 (priority 50) would take; no rule routes
-- its term change (rule 7 wants ok or watch, rule 8 has no steps): CR007;
-- T1's term change (status ok) goes by rule 7, not by the step-less rule 8
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('limit_change', 'S1', 25000);
INSERT INTO credit.applications (kind, customer_key, requested_term_days)
VALUES ('term_change', 'S1', 60), ('term_change', 'T1', 60);
SELECT application_id AS s1_limit FROM credit.applications
 WHERE customer_key = 'S1' AND kind = 'limit_change' \gset
SELECT application_id AS s1_term FROM credit.applications
 WHERE customer_key = 'S1' AND kind = 'term_change' \gset
SELECT application_id AS t1_term FROM credit.applications WHERE customer_key = 'T1' \gset
SELECT (credit.submit_application(:s1_limit)).state;
SELECT show_error(format('SELECT credit.submit_application(%s)', :s1_term));
SELECT (credit.submit_application(:t1_term)).state;
RESET ROLE;
SELECT a.application_id, a.kind, a.customer_key, c.status, a.state, a.route_amount, a.rule_id,
	   chain_of(a.application_id)
  FROM credit.applications a JOIN credit.accounts c USING (customer_key)
 WHERE a.customer_key IN ('S1', 'T1') ORDER BY a.application_id;

-- priority: P1 is grade A and stopped, rules 5 (priority 10) and 6
-- (priority 20) both match; rule 5 wins; at priority 30 rule 6 wins; at
-- the same priority 20 the lower rule_id (5) wins
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'P1', 80000, 'rule 5 at priority 10') RETURNING application_id AS p_1 \gset
SELECT (credit.submit_application(:p_1)).rule_id;
RESET ROLE;
UPDATE credit.approval_rules SET priority = 30 WHERE rule_id = 5;
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'P1', 80000, 'rule 5 at priority 30') RETURNING application_id AS p_2 \gset
SELECT (credit.submit_application(:p_2)).rule_id;
RESET ROLE;
UPDATE credit.approval_rules SET priority = 20 WHERE rule_id = 5;
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'P1', 80000, 'rule 5 at priority 20') RETURNING application_id AS p_3 \gset
SELECT (credit.submit_application(:p_3)).rule_id;
RESET ROLE;
UPDATE credit.approval_rules SET priority = 10 WHERE rule_id = 5;
SELECT application_id, reason, rule_id, chain_of(application_id)
  FROM credit.applications WHERE customer_key = 'P1' ORDER BY application_id;

-- everything pending so far is withdrawn by its requester
SET ROLE appr_sales1;
SELECT count(*) AS withdrawn FROM credit.applications a, credit.withdraw(a.application_id) w
 WHERE a.state = 'pending';
RESET ROLE;
SELECT state, count(*) FROM credit.applications GROUP BY state ORDER BY state;

-- a rule changed after submit: R was routed by rule 1 (sales director,
-- 3 days); then rule 1's second step becomes the finance director (4 days)
-- and a CFO step is added.  R keeps its copied chain and deadlines; R2,
-- submitted after the change, gets the new one
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'N1', 30000, 'before the change') RETURNING application_id AS r_1 \gset
SELECT (credit.submit_application(:r_1)).state;
RESET ROLE;
UPDATE credit.approval_rule_steps SET position = 'finance_director', deadline = '4 days'
 WHERE rule_id = 1 AND step_no = 2;
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
VALUES (1, 3, 'cfo', '1 day');
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'N1', 30000, 'after the change') RETURNING application_id AS r_2 \gset
SELECT (credit.submit_application(:r_2)).state;
RESET ROLE;
SET ROLE appr_review1;
SELECT (credit.approve(:r_1, 'reviewed')).state;
RESET ROLE;
SELECT s.application_id, a.reason, a.rule_id, s.step_no, s.position, s.deadline_interval, s.state,
	   s.deadline - p.acted_at AS due_after_previous_step
  FROM credit.application_steps s JOIN credit.applications a USING (application_id)
  LEFT JOIN credit.application_steps p
	ON p.application_id = s.application_id AND p.step_no = s.step_no - 1
 WHERE s.application_id IN (:r_1, :r_2) ORDER BY s.application_id, s.step_no;
-- rule 1 back as it was; R and R2 withdrawn
DELETE FROM credit.approval_rule_steps WHERE rule_id = 1 AND step_no = 3;
UPDATE credit.approval_rule_steps SET position = 'sales_director', deadline = '3 days'
 WHERE rule_id = 1 AND step_no = 2;
SET ROLE appr_sales1;
SELECT (credit.withdraw(:r_1)).state, (credit.withdraw(:r_2)).state;
RESET ROLE;

--------------------------------------------------------------------------
-- 2. Deadlines and escalation.
--
-- E (100,000, rule 2): finance review (2 days, escalates to the finance
-- director, the superior), then finance director (2 days).  Escalation
-- runs at as_of = submitted_at + N hours.
--------------------------------------------------------------------------
SELECT count(*) AS notices_drained FROM credit.claim_notices(1000);
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'E1', 100000, 'escalation') RETURNING application_id AS e \gset
SELECT (credit.submit_application(:e)).state;
RESET ROLE;
SELECT submitted_at AS e_sub FROM credit.applications WHERE application_id = :e \gset
SELECT step_no, position, escalate_to, state, escalations, deadline - :'e_sub' AS due
  FROM credit.application_steps WHERE application_id = :e ORDER BY step_no;

-- who sees the task: the finance team (the position) and the finance
-- director (its escalation target); not the CFO, the sales director, an
-- outsider, or the requester
SET ROLE appr_review1;
SELECT application_id, step_no, approver_position, overdue, requester, route_amount, reason FROM credit.my_tasks();
SET ROLE appr_review2;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_fdir;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_cfo;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_sdir;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_outsider;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_sales1;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
RESET ROLE;

-- before the deadline, and exactly at it: nothing is overdue
SELECT * FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '47 hours');
SELECT * FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '2 days');
-- an hour after it: the step moves to the finance director, whose
-- superior (the CFO) becomes the escalation target; a fresh 2-day deadline
SELECT application_id, step_no, from_position, to_position, new_deadline - :'e_sub' AS due
  FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '49 hours');
SELECT step_no, position, first_position, escalate_to, state, escalations,
	   escalated_at - :'e_sub' AS escalated, deadline - :'e_sub' AS due
  FROM credit.application_steps WHERE application_id = :e ORDER BY step_no;
-- now the finance team no longer sees it; the finance director and the CFO do
SET ROLE appr_review1;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_fdir;
SELECT application_id, step_no, approver_position, overdue FROM credit.my_tasks();
SET ROLE appr_cfo;
SELECT application_id, step_no, approver_position, overdue FROM credit.my_tasks();
RESET ROLE;
-- the same as_of again: the new deadline has not passed
SELECT * FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '49 hours');
-- a second breach: to the CFO, who has no superior
SELECT application_id, step_no, from_position, to_position, new_deadline - :'e_sub' AS due
  FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '98 hours');
-- a third: no escalation target, the step stays where it is
SELECT * FROM credit.escalate_overdue(:'e_sub'::timestamptz + interval '1000 hours');
SELECT step_no, position, first_position, escalate_to, state, escalations,
	   escalated_at - :'e_sub' AS escalated, deadline - :'e_sub' AS due
  FROM credit.application_steps WHERE application_id = :e ORDER BY step_no;
SET ROLE appr_fdir;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SET ROLE appr_cfo;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
RESET ROLE;
-- no escalation at a time that is not finite
SELECT show_error($$SELECT * FROM credit.escalate_overdue('infinity')$$);
SELECT show_error($$SELECT * FROM credit.escalate_overdue(NULL)$$);

-- the notices: assigned to the finance review (cc the requester), then each
-- escalation to the new position (cc the position it left and the requester)
SELECT event, recipient, cc, status,
	   regexp_replace(message, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d', '<time>', 'g') AS message
  FROM credit.approval_notices WHERE application_id = :e
 ORDER BY min(notice_id) OVER (PARTITION BY event, message), cc, recipient;
-- a worker that fails to deliver rolls back: its batch is queued again
BEGIN;
SELECT count(*) AS claimed FROM credit.claim_notices(100);
ROLLBACK;
SELECT status, count(*) FROM credit.approval_notices WHERE application_id = :e GROUP BY status;
-- workers claim them in batches, oldest first, and they are sent
SELECT event, recipient, cc, status, sent_at IS NOT NULL AS sent
  FROM credit.claim_notices(2) ORDER BY cc, recipient;
SELECT event, recipient, cc, status
  FROM credit.claim_notices(100)
 ORDER BY min(notice_id) OVER (PARTITION BY event, message), cc, recipient;
SELECT count(*) AS nothing_left FROM credit.claim_notices(100);
SELECT status, count(*) FROM credit.approval_notices WHERE application_id = :e GROUP BY status;

-- the CFO acts on the escalated step (the finance team may no longer: the
-- step now belongs to the CFO), the finance director on the second; the
-- second step's deadline runs from the first approval
SET ROLE appr_review1;
SELECT show_error(format('SELECT credit.approve(%s)', :e));
RESET ROLE;
SET ROLE appr_cfo;
SELECT (credit.approve(:e, 'approved after escalation')).state;
RESET ROLE;
SELECT s.step_no, s.position, s.state, s.acted_by, s.deadline - p.acted_at AS due_after_previous_step
  FROM credit.application_steps s
  LEFT JOIN credit.application_steps p ON p.application_id = s.application_id AND p.step_no = s.step_no - 1
 WHERE s.application_id = :e ORDER BY s.step_no;
SET ROLE appr_fdir;
SELECT (credit.approve(:e, 'fine')).state;
RESET ROLE;
SELECT customer_key, credit_limit FROM credit.accounts WHERE customer_key = 'E1';
SELECT event, recipient, cc, regexp_replace(message, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d', '<time>', 'g') AS message
  FROM credit.claim_notices(100)
 ORDER BY min(notice_id) OVER (PARTITION BY event, message), cc, recipient;

--------------------------------------------------------------------------
-- 3. Segregation of duties.
--
-- F (30,000, rule 1): finance review, then the sales director.
--------------------------------------------------------------------------
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'F1', 30000, 'four eyes') RETURNING application_id AS f \gset
SELECT (credit.submit_application(:f)).state;
-- the requester may not approve or reject
SELECT show_error(format('SELECT credit.approve(%s)', :f));
SELECT show_error(format('SELECT credit.reject(%s)', :f));
-- nor someone acting for no position, nor the sales director on the
-- finance review step
SET ROLE appr_outsider;
SELECT show_error(format('SELECT credit.approve(%s)', :f));
SET ROLE appr_sdir;
SELECT show_error(format('SELECT credit.reject(%s, %L)', :f, 'no'));
-- the deputy reviews (as a member of the finance team)
SET ROLE appr_deputy;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SELECT (credit.approve(:f, 'file complete')).state;
-- it acts for the sales director too, but not twice on one application:
-- its task list is empty, and approving again is refused
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SELECT show_error(format('SELECT credit.approve(%s)', :f));
SELECT show_error(format('SELECT credit.reject(%s)', :f));
-- naming the step it already approved: that step is no longer pending
SELECT show_error(format('SELECT credit.approve(%s, NULL, 1)', :f));
-- only the requester withdraws
SELECT show_error(format('SELECT credit.withdraw(%s)', :f));
SET ROLE appr_sales2;
SELECT show_error(format('SELECT credit.withdraw(%s)', :f));
SET ROLE appr_sdir;
SELECT show_error(format('SELECT credit.withdraw(%s)', :f));
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SELECT (credit.approve(:f, 'ok for 30,000')).state;
RESET ROLE;
SELECT step_no, position, state, acted_by, comment FROM credit.application_steps
 WHERE application_id = :f ORDER BY step_no;
SELECT state, decision_comment FROM credit.applications WHERE application_id = :f;

-- a requester who acts for the position still may not approve its own
-- application; it may withdraw it, after a colleague's approval
SET ROLE appr_review2;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'F1', 40000, 'own application') RETURNING application_id AS own \gset
SELECT (credit.submit_application(:own)).state;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SELECT show_error(format('SELECT credit.approve(%s)', :own));
SET ROLE appr_review1;
SELECT (credit.approve(:own)).state;
SET ROLE appr_review2;
SELECT (credit.withdraw(:own, 'not needed after all')).state;
RESET ROLE;
SELECT chain_of(:own), (SELECT credit_limit FROM credit.accounts WHERE customer_key = 'F1');

-- an application made in the name of a group role is its members' own:
-- appr_review1 makes one as appr_finance_team (which acts for the finance
-- review); as a member of the requester it may submit and withdraw it (as
-- credit.submit_application and credit.withdraw allow), so it must neither
-- see it among its tasks nor approve it
SET ROLE appr_finance_team;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'F1', 10000, 'in the team''s name') RETURNING application_id AS team \gset
SET ROLE appr_review1;
SELECT requester, (credit.submit_application(:team)).state
  FROM credit.applications WHERE application_id = :team;
SELECT application_id, step_no, approver_position FROM credit.my_tasks();
SELECT show_error(format('SELECT credit.approve(%s)', :team));
SELECT (credit.withdraw(:team)).state;
RESET ROLE;

-- the escalation target may act before any escalation: the finance
-- director on a finance review step, the CFO on a sales director step
SET ROLE appr_sales2;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('new_limit', 'F1', 20000, 'targets act') RETURNING application_id AS g \gset
SELECT (credit.submit_application(:g)).state;
SET ROLE appr_fdir;
SELECT (credit.approve(:g, 'as the review''s escalation target')).state;
SET ROLE appr_cfo;
SELECT (credit.approve(:g, 'as the sales director''s escalation target')).state;
RESET ROLE;
SELECT step_no, position, escalate_to, state, acted_by, comment FROM credit.application_steps
 WHERE application_id = :g ORDER BY step_no;
SELECT credit_limit FROM credit.accounts WHERE customer_key = 'F1';

--------------------------------------------------------------------------
-- 4. Write-back.
--
-- W1 goes through a new limit, a limit change, a temporary limit and a
-- term change; then a rejected and a withdrawn application.  Times t0..t4
-- are taken between the steps for credit.limit_on.
--------------------------------------------------------------------------
SELECT clock_timestamp() AS t0 \gset
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit) VALUES ('W1', 'Write-back', 0);

-- new limit, 30,000 (rule 1)
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason, documents)
VALUES ('new_limit', 'W1', 30000, 'new customer', '{dms://contracts/W1-2024.pdf}')
RETURNING application_id AS w_new \gset
SELECT (credit.submit_application(:w_new)).state;
SET ROLE appr_review1;
SELECT (credit.approve(:w_new, 'financials fine')).state;
RESET ROLE;
-- after the first step nothing has changed
SELECT credit_limit, temp_limit, payment_term_days FROM credit.accounts WHERE customer_key = 'W1';
-- the final approval and the account change are one transaction: rolled
-- back, neither happened
BEGIN;
SET ROLE appr_sdir;
SELECT application_id, state, decided_at IS NOT NULL AS decided FROM credit.approve(:w_new, 'ok');
RESET ROLE;
SELECT credit_limit FROM credit.accounts WHERE customer_key = 'W1';
ROLLBACK;
SELECT credit_limit FROM credit.accounts WHERE customer_key = 'W1';
SELECT state, chain_of(:w_new) FROM credit.applications WHERE application_id = :w_new;
SET ROLE appr_sdir;
SELECT application_id, state, decision_comment FROM credit.approve(:w_new, 'ok');
RESET ROLE;
SELECT credit_limit, temp_limit, payment_term_days FROM credit.accounts WHERE customer_key = 'W1';
SELECT clock_timestamp() AS t1 \gset

-- limit change to 35,000 (an increase of 5,000: rule 4, one review)
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('limit_change', 'W1', 35000) RETURNING application_id AS w_chg \gset
SELECT rule_id, route_amount, current_limit FROM credit.submit_application(:w_chg);
SET ROLE appr_review2;
SELECT state FROM credit.approve(:w_chg);
RESET ROLE;
SELECT credit_limit, temp_limit, payment_term_days FROM credit.accounts WHERE customer_key = 'W1';
SELECT clock_timestamp() AS t2 \gset

-- temporary limit of 20,000 in [2090-01-01, 2090-03-01) (rule 1)
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_from, temp_until, reason)
VALUES ('temp_limit', 'W1', 20000, '2090-01-01 00:00+00', '2090-03-01 00:00+00', 'project')
RETURNING application_id AS w_tmp \gset
SELECT rule_id, route_amount FROM credit.submit_application(:w_tmp);
SET ROLE appr_review1;
SELECT state FROM credit.approve(:w_tmp);
RESET ROLE;
SELECT temp_limit, temp_limit_from, temp_limit_until FROM credit.accounts WHERE customer_key = 'W1';
SET ROLE appr_sdir;
SELECT state FROM credit.approve(:w_tmp);
RESET ROLE;
SELECT credit_limit, temp_limit, temp_limit_from, temp_limit_until FROM credit.accounts WHERE customer_key = 'W1';
SELECT clock_timestamp() AS t3 \gset

-- term change to 45 days (rule 7: the sales director within a second,
-- then the finance review); the sales director's task is overdue a
-- second later
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_term_days)
VALUES ('term_change', 'W1', 45) RETURNING application_id AS w_term \gset
SELECT rule_id, route_amount, current_term_days FROM credit.submit_application(:w_term);
RESET ROLE;
SELECT pg_sleep(1.1);
SET ROLE appr_sdir;
SELECT application_id, step_no, approver_position, overdue FROM credit.my_tasks();
SELECT state FROM credit.approve(:w_term);
SET ROLE appr_review1;
SELECT application_id, step_no, approver_position, overdue FROM credit.my_tasks();
SELECT state FROM credit.approve(:w_term);
RESET ROLE;
SELECT credit_limit, temp_limit, payment_term_days FROM credit.accounts WHERE customer_key = 'W1';
SELECT clock_timestamp() AS t4 \gset

-- rejected at the second step (80,000: rule 2) and withdrawn while pending
-- (36,000: rule 4): the account does not change, no history row
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('limit_change', 'W1', 80000) RETURNING application_id AS w_rej \gset
SELECT (credit.submit_application(:w_rej)).rule_id;
INSERT INTO credit.applications (kind, customer_key, requested_limit)
VALUES ('limit_change', 'W1', 36000) RETURNING application_id AS w_wd \gset
SELECT (credit.submit_application(:w_wd)).rule_id;
SET ROLE appr_review1;
SELECT (credit.approve(:w_rej, 'fine by me')).state;
SET ROLE appr_fdir;
SELECT state, decision_comment FROM credit.reject(:w_rej, 'exposure too concentrated');
SET ROLE appr_sales1;
SELECT state, decision_comment FROM credit.withdraw(:w_wd, 'customer changed its mind');
RESET ROLE;
SELECT application_id, kind, state, chain_of(application_id)
  FROM credit.applications WHERE customer_key = 'W1' ORDER BY application_id;
SELECT step_no, state, acted_by, comment FROM credit.application_steps
 WHERE application_id = :w_rej ORDER BY step_no;
SELECT credit_limit, temp_limit, temp_limit_from, temp_limit_until, payment_term_days
  FROM credit.accounts WHERE customer_key = 'W1';

-- the limit history: one row per change, contiguous, each naming the
-- approving application and the approver
SELECT credit_limit, temp_limit, temp_limit_from, temp_limit_until, payment_term_days,
	   changed_by, application_id, valid_until IS NULL AS in_force
  FROM credit.limit_history WHERE customer_key = 'W1' ORDER BY valid_from;
SELECT bool_and(valid_until = next_from) AS contiguous, count(*) AS changes
  FROM (SELECT valid_until, lead(valid_from) OVER (ORDER BY valid_from) AS next_from
		  FROM credit.limit_history WHERE customer_key = 'W1') h
 WHERE next_from IS NOT NULL;
SELECT count(*) = 5 AS expected_ids
  FROM credit.limit_history
 WHERE customer_key = 'W1'
   AND application_id IS NOT DISTINCT FROM
	   CASE credit_limit WHEN 0 THEN NULL WHEN 30000 THEN :w_new ELSE
	   CASE WHEN payment_term_days = 45 THEN :w_term WHEN temp_limit > 0 THEN :w_tmp ELSE :w_chg END END;
-- at the very moment a change took effect, the new row answers: the row it
-- replaced ends where the new one begins
SELECT h.application_id AS replaced_app, l.application_id AS in_force_app, l.credit_limit,
	   l.payment_term_days
  FROM credit.limit_history h
  LEFT JOIN LATERAL credit.limit_on('W1', h.valid_until) l ON true
 WHERE h.customer_key = 'W1' AND h.valid_until IS NOT NULL ORDER BY h.valid_from;
-- what the limit was at each time: nothing before the account existed
SELECT t.label, l.credit_limit, l.temp_limit_in_force, l.effective_limit, l.payment_term_days,
	   l.application_id
  FROM (VALUES (0, 't0 before the account', :'t0'::timestamptz),
			   (1, 't1 after the new limit', :'t1'), (2, 't2 after the change', :'t2'),
			   (3, 't3 after the temporary limit', :'t3'), (4, 't4 after the term change', :'t4'),
			   (5, '2090-01-01 window opens', '2090-01-01 00:00+00'),
			   (6, '2090-02-28 inside the window', '2090-02-28 23:59:59+00'),
			   (7, '2090-03-01 window closed', '2090-03-01 00:00+00')) t(n, label, at)
  LEFT JOIN LATERAL credit.limit_on('W1', t.at) l ON true
 ORDER BY t.n;

-- limit requests from scoring, adopted by applications: W2's (60,000,
-- rule 2) approved, W3's (20,000, an increase of 10,000: rule 4) rejected
INSERT INTO credit.limit_requests (customer_key, scorecard_id, as_of, grade, score, current_limit,
								   proposed_limit, current_term, proposed_term, reasons)
SELECT k, s.scorecard_id, '2024-06-30', 'B', 80, 10000, p, 30, 30, '{}'
  FROM (VALUES ('W2', 60000), ('W3', 20000)) v(k, p), credit.scorecards s;
SET ROLE appr_sales1;
INSERT INTO credit.applications (kind, customer_key, requested_limit, limit_request_id, reason)
SELECT 'limit_change', r.customer_key, r.proposed_limit, r.request_id, 'scoring recommends'
  FROM credit.limit_requests r WHERE r.state = 'open' ORDER BY r.customer_key;
SELECT a.customer_key, s.rule_id, s.route_amount
  FROM credit.applications a, credit.submit_application(a.application_id) s
 WHERE a.limit_request_id IS NOT NULL ORDER BY a.customer_key;
RESET ROLE;
SELECT customer_key, state, decided_at IS NOT NULL AS decided FROM credit.limit_requests ORDER BY customer_key;
SET ROLE appr_review1;
SELECT a.customer_key, (credit.approve(a.application_id)).state
  FROM credit.applications a WHERE a.customer_key = 'W2' AND a.state = 'pending';
SELECT a.customer_key, (credit.reject(a.application_id, 'not now')).state
  FROM credit.applications a WHERE a.customer_key = 'W3' AND a.state = 'pending';
SET ROLE appr_fdir;
SELECT a.customer_key, (credit.approve(a.application_id)).state
  FROM credit.applications a WHERE a.customer_key = 'W2' AND a.state = 'pending';
RESET ROLE;
SELECT r.customer_key, r.proposed_limit, r.state, r.decided_at IS NOT NULL AS decided,
	   c.credit_limit, h.application_id = a.application_id AS history_names_it
  FROM credit.limit_requests r
  JOIN credit.accounts c USING (customer_key)
  JOIN credit.applications a ON a.limit_request_id = r.request_id
  LEFT JOIN credit.limit_history h ON h.customer_key = r.customer_key AND h.valid_until IS NULL
 ORDER BY r.customer_key;

--------------------------------------------------------------------------
-- 5. The automatic new-limit application.
--------------------------------------------------------------------------
SELECT auto_new_limit_application FROM credit.settings;
SET ROLE appr_sales2;
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit) VALUES ('A0', 'Off', 0);
RESET ROLE;
SELECT count(*) AS applications_for_a0 FROM credit.applications WHERE customer_key = 'A0';
UPDATE credit.settings SET auto_new_limit_application = true;
-- the CRM (appr_sales2) opens two accounts: without a limit, and with one
SET ROLE appr_sales2;
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
VALUES ('A1', 'Deal won', 0), ('A2', 'Has a limit', 5000);
RESET ROLE;
SELECT application_id AS auto FROM credit.applications WHERE customer_key = 'A1' \gset
SELECT customer_key, kind, state, requester, requested_limit, reason
  FROM credit.applications WHERE customer_key IN ('A1', 'A2') ORDER BY customer_key;
-- the requester completes it and submits it
SET ROLE appr_sales2;
SELECT show_error(format('SELECT credit.submit_application(%s)', :auto));
UPDATE credit.applications SET requested_limit = 15000 WHERE application_id = :auto;
SELECT state, rule_id, route_amount FROM credit.submit_application(:auto);
SELECT (credit.withdraw(:auto)).state;
RESET ROLE;
UPDATE credit.settings SET auto_new_limit_application = false;

--------------------------------------------------------------------------
-- 6. Bad input.
--------------------------------------------------------------------------
SET ROLE appr_sales1;
-- an unknown application
SELECT show_error('SELECT credit.submit_application(999999)');
SELECT show_error('SELECT credit.approve(999999)');
SELECT show_error('SELECT credit.reject(999999)');
SELECT show_error('SELECT credit.withdraw(999999)');
-- negative amounts, a window ending before it starts
SELECT show_error($$INSERT INTO credit.applications (kind, customer_key, requested_limit) VALUES ('limit_change', 'X1', -1)$$);
SELECT show_error($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_until) VALUES ('temp_limit', 'X1', -5000, '2090-01-01')$$);
SELECT show_error($$INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_from, temp_until) VALUES ('temp_limit', 'X1', 5000, '2090-01-01', '2089-12-31')$$);
-- a temporary limit whose window is in the past: a draft, refused at submit
INSERT INTO credit.applications (kind, customer_key, requested_temp_limit, temp_from, temp_until)
VALUES ('temp_limit', 'X1', 5000, '2000-01-01 00:00+00', '2000-02-01 00:00+00')
RETURNING application_id AS past \gset
SELECT show_error(format('SELECT credit.submit_application(%s)', :past));
-- a new limit without an amount
INSERT INTO credit.applications (kind, customer_key) VALUES ('new_limit', 'X1')
RETURNING application_id AS noamount \gset
SELECT show_error(format('SELECT credit.submit_application(%s)', :noamount));
SELECT (credit.withdraw(:past)).state, (credit.withdraw(:noamount)).state;
-- submitting someone else's draft, and a non-draft (X: 25,000, rule 1)
INSERT INTO credit.applications (kind, customer_key, requested_limit) VALUES ('limit_change', 'X1', 25000)
RETURNING application_id AS x \gset
SET ROLE appr_sales2;
SELECT show_error(format('SELECT credit.submit_application(%s)', :x));
SET ROLE appr_sales1;
SELECT (credit.submit_application(:x)).state;
SELECT show_error(format('SELECT credit.submit_application(%s)', :x));
-- an approver not entitled, then acting twice: the same role again (the
-- deputy acts for both steps' positions), and a second approver naming the
-- step the first one approved
SET ROLE appr_sdir;
SELECT show_error(format('SELECT credit.approve(%s)', :x));
SET ROLE appr_deputy;
SELECT (credit.approve(:x, NULL, 1)).state;
SELECT show_error(format('SELECT credit.approve(%s)', :x));
SELECT show_error(format('SELECT credit.approve(%s, NULL, 2)', :x));
SET ROLE appr_sdir;
SELECT show_error(format('SELECT credit.approve(%s, NULL, 1)', :x));
SELECT show_error(format('SELECT credit.reject(%s, NULL, 1)', :x));
SELECT (credit.approve(:x, NULL, 2)).state;
-- acting on a decided application
SELECT show_error(format('SELECT credit.approve(%s, NULL, 2)', :x));
SELECT show_error(format('SELECT credit.approve(%s)', :x));
SET ROLE appr_cfo;
SELECT show_error(format('SELECT credit.reject(%s)', :x));
SET ROLE appr_sales1;
SELECT show_error(format('SELECT credit.withdraw(%s)', :x));
SELECT show_error(format('SELECT credit.submit_application(%s)', :x));
RESET ROLE;
SELECT state, chain_of(:x), (SELECT credit_limit FROM credit.accounts WHERE customer_key = 'X1')
  FROM credit.applications WHERE application_id = :x;

--------------------------------------------------------------------------
-- 7. The audit trail.
--------------------------------------------------------------------------
-- intact after all of the above
SELECT * FROM credit.verify_audit();
-- F's chain: who did what (the acting role, the session role), with comments
SELECT chain_seq, table_name, operation, row_key, acting_role, session_role,
	   COALESCE(after->>'state', before->>'state') AS state,
	   after->>'step_no' AS step, comment
  FROM credit.audit_log WHERE chain = 'application:' || :f ORDER BY chain_seq;
-- W1's limit changes on its account chain, by their approvers
SELECT chain_seq, operation, acting_role, before->>'credit_limit' AS limit_before,
	   after->>'credit_limit' AS limit_after, after->>'temp_limit' AS temp,
	   after->>'payment_term_days' AS term
  FROM credit.audit_log WHERE chain = 'account:W1' AND table_name = 'accounts' ORDER BY chain_seq;
-- E's escalations are on its chain too, by the role that ran the scheduler
SELECT chain_seq, operation, acting_role, before->>'position' AS from_position,
	   after->>'position' AS to_position, after->>'escalations' AS escalations
  FROM credit.audit_log
 WHERE chain = 'application:' || :e AND table_name = 'application_steps'
   AND operation = 'UPDATE' AND before->>'position' IS DISTINCT FROM after->>'position'
 ORDER BY chain_seq;
-- W2's adopted request, on its request chain
SELECT table_name, operation, acting_role, before->>'state' AS before, after->>'state' AS after
  FROM credit.audit_log WHERE chain = 'request:W2' AND table_name = 'limit_requests' ORDER BY chain_seq;
-- every chain is numbered 1, 2, ... and linked; its head is its last row
SELECT count(*) AS rows_out_of_order
  FROM (SELECT chain, chain_seq, row_number() OVER (PARTITION BY chain ORDER BY chain_seq) AS rn,
			   prev_hash, lag(hash) OVER (PARTITION BY chain ORDER BY chain_seq) AS prior
		  FROM credit.audit_log) l
 WHERE chain_seq <> rn OR prev_hash IS DISTINCT FROM prior;
SELECT count(*) AS heads_off
  FROM credit.audit_heads h
 WHERE (h.last_seq, h.last_hash) IS DISTINCT FROM
	   (SELECT (l.chain_seq, l.hash) FROM credit.audit_log l WHERE l.chain = h.chain
		 ORDER BY l.chain_seq DESC LIMIT 1);

-- nobody changes it, not even the superuser who owns it
SELECT show_error($$UPDATE credit.audit_log SET comment = 'edited' WHERE chain = 'config' AND chain_seq = 1$$);
SELECT show_error($$DELETE FROM credit.audit_log WHERE chain = 'config' AND chain_seq = 1$$);
SELECT show_error($$TRUNCATE credit.audit_log$$);
SET ROLE appr_fdir;
SELECT show_error($$UPDATE credit.audit_log SET comment = 'edited' WHERE chain = 'config'$$);
RESET ROLE;

-- a superuser disables the triggers and tampers:
-- (a) W1's new limit rewritten in the after-image of its account row
-- (b) a middle row of F's chain deleted (its step 1 approval)
-- (c) the last row of G's chain deleted
ALTER TABLE credit.audit_log DISABLE TRIGGER USER;
SELECT chain_seq AS w1_seq FROM credit.audit_log
 WHERE chain = 'account:W1' AND table_name = 'accounts' AND after->>'credit_limit' = '30000' \gset
UPDATE credit.audit_log SET after = jsonb_set(after, '{credit_limit}', '300000')
 WHERE chain = 'account:W1' AND chain_seq = :w1_seq;
SELECT chain_seq AS f_seq FROM credit.audit_log
 WHERE chain = 'application:' || :f AND table_name = 'application_steps'
   AND after->>'state' = 'approved' AND after->>'step_no' = '1' \gset
DELETE FROM credit.audit_log WHERE chain = 'application:' || :f AND chain_seq = :f_seq;
SELECT max(chain_seq) AS g_last FROM credit.audit_log WHERE chain = 'application:' || :g \gset
DELETE FROM credit.audit_log WHERE chain = 'application:' || :g AND chain_seq = :g_last;
ALTER TABLE credit.audit_log ENABLE TRIGGER USER;
SELECT :w1_seq AS tampered_w1_row, :f_seq AS deleted_f_row, :g_last AS deleted_g_last_row;
SELECT chain, chain_seq, problem FROM credit.verify_audit() ORDER BY chain;
-- the triggers are back
SELECT show_error($$DELETE FROM credit.audit_log WHERE chain = 'config'$$);

--------------------------------------------------------------------------
-- Uninstall.
--------------------------------------------------------------------------
DROP EXTENSION credit;
-- schema credit outlives the extension (as in the other tests): take back
-- the role's privilege on it so the role can go
REVOKE USAGE ON SCHEMA credit FROM appr_staff;
DROP FUNCTION show_error(text);
DROP FUNCTION chain_of(bigint);
DROP ROLE appr_sales1, appr_sales2, appr_review1, appr_review2, appr_deputy, appr_sdir,
	appr_fdir, appr_cfo, appr_outsider, appr_finance_team, appr_staff;
