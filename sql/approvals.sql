/*
 * approvals.sql: credit applications and their approval chains.
 *
 * Positions (credit.positions) stand between rules and people: a rule step
 * names a position, credit.position_members maps positions to database
 * roles, so people change without rules changing.  A role acts for a
 * position when it is a member (pg_has_role MEMBER) of one of the
 * position's member roles.
 *
 * Routing (credit.approval_rules, credit.approval_rule_steps): at submit,
 * the rule with the lowest priority (then rule_id) that matches the
 * application's kind, amount (absolute, or the increase over the current
 * value), the customer's grade and status gives the chain of steps; the
 * steps are copied into credit.application_steps, so later rule changes
 * affect new applications only.  Amount ranges are (amount_above,
 * amount_up_to]: "up to 50,000" includes 50,000, "above 50,000" does not.
 * No matching rule is an error (CR007): nothing is approved by default.
 *
 * States: an application is draft -> pending -> approved | rejected, or
 * withdrawn from draft or pending.  Steps are waiting -> pending ->
 * approved | rejected, or skipped when the application ends early; one
 * step is pending at a time, with a deadline.  Acting:
 *   only a member of the step's position or of its escalation target
 *     (42501), never the requester, and never a role that already acted on
 *     the application (four eyes per step);
 *   approve/reject/withdraw lock the application row first, so two people
 *     acting at once queue; the second sees the first's result (55000 if
 *     the step or application is no longer pending);
 *   the final approval writes back in the same transaction: credit_limit,
 *     temporary limit and window, payment term, or the release of a held
 *     order (sql/holds.sql), and marks the adopted limit request.
 * credit.escalate_overdue(as_of) moves every pending step past its
 * deadline up one level: the escalation target becomes the step's position,
 * its superior the new escalation target, and the deadline starts again.
 *
 * Notifications: every event queues one row per recipient position (and the
 * requester) in credit.approval_notices and is announced with NOTIFY on
 * channel credit_approvals; workers drain the queue as they drain the
 * dunning queue.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.positions (
	position		text PRIMARY KEY,
	description		text,
	superior		text REFERENCES credit.positions ON UPDATE CASCADE,
	CONSTRAINT positions_name_check CHECK (position OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
	CONSTRAINT positions_superior_check CHECK (superior OPERATOR(pg_catalog.<>) position)
);

COMMENT ON TABLE credit.positions IS
'Approver positions (finance review, sales director, ...); superior is where an overdue step escalates.';

CREATE TABLE credit.position_members (
	position		text NOT NULL REFERENCES credit.positions ON UPDATE CASCADE ON DELETE CASCADE,
	member			name NOT NULL,
	PRIMARY KEY (position, member)
);

COMMENT ON TABLE credit.position_members IS
'Database roles that act for a position (a login role, or a group role whose members act).';

CREATE FUNCTION credit.position_members_check()
RETURNS trigger
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regrole(pg_catalog.quote_ident(NEW.member)) IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', NEW.member
			USING ERRCODE = '42704', SCHEMA = 'credit', TABLE = 'position_members',
				  COLUMN = 'member';
	END IF;
	RETURN NEW;
END;
$$;

COMMENT ON FUNCTION credit.position_members_check() IS
'Trigger on credit.position_members: the member must be an existing role (42704).';

CREATE TRIGGER position_members_check
	BEFORE INSERT OR UPDATE ON credit.position_members
	FOR EACH ROW EXECUTE FUNCTION credit.position_members_check();

/* does the current role act for the position? */
CREATE FUNCTION credit.acts_for(pos text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT EXISTS (
		SELECT 1 FROM credit.position_members m
		  JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) m.member
		 WHERE m.position OPERATOR(pg_catalog.=) $1
		   AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER'));
END;

COMMENT ON FUNCTION credit.acts_for(text) IS
'True when the current role is a member of a role that acts for the position.';

CREATE TABLE credit.approval_rules (
	rule_id			integer PRIMARY KEY,
	kinds			text[] NOT NULL,
	amount_basis	text NOT NULL DEFAULT 'absolute',
	amount_above	numeric,
	amount_up_to	numeric,
	grades			text[],
	statuses		text[],
	priority		integer NOT NULL DEFAULT 100,
	description		text,
	CONSTRAINT approval_rules_kinds_check
		CHECK (kinds OPERATOR(pg_catalog.<@)
			   '{new_limit,limit_change,temp_limit,term_change,order_release}'::text[]
			   AND pg_catalog.cardinality(kinds) OPERATOR(pg_catalog.>) 0),
	CONSTRAINT approval_rules_basis_check
		CHECK (amount_basis OPERATOR(pg_catalog.=) ANY ('{absolute,increase}'::text[])),
	CONSTRAINT approval_rules_range_check
		CHECK (amount_up_to OPERATOR(pg_catalog.>) amount_above),
	CONSTRAINT approval_rules_statuses_check
		CHECK (statuses OPERATOR(pg_catalog.<@) '{none,ok,watch,hold,stop}'::text[]
			   AND pg_catalog.cardinality(statuses) OPERATOR(pg_catalog.>) 0),
	CONSTRAINT approval_rules_grades_check
		CHECK (pg_catalog.cardinality(grades) OPERATOR(pg_catalog.>) 0)
);

COMMENT ON TABLE credit.approval_rules IS
'Routing rules: the first match (by priority, then rule_id) on kind, amount in (amount_above, amount_up_to], grade and status gives the chain of steps.';
COMMENT ON COLUMN credit.approval_rules.amount_basis IS
'absolute: the requested amount; increase: the requested amount minus the current one (for a held order, the part above available credit).';
COMMENT ON COLUMN credit.approval_rules.amount_above IS 'The rule matches amounts above this (exclusive); NULL: no lower bound.';
COMMENT ON COLUMN credit.approval_rules.amount_up_to IS 'The rule matches amounts up to this (inclusive); NULL: no upper bound.';
COMMENT ON COLUMN credit.approval_rules.grades IS 'Customer grades the rule applies to (NULL: any, including ungraded).';

CREATE TABLE credit.approval_rule_steps (
	rule_id			integer NOT NULL REFERENCES credit.approval_rules ON DELETE CASCADE,
	step_no			integer NOT NULL,
	position		text NOT NULL REFERENCES credit.positions ON UPDATE CASCADE,
	deadline		interval NOT NULL DEFAULT '2 days',
	escalate_to		text REFERENCES credit.positions ON UPDATE CASCADE,
	PRIMARY KEY (rule_id, step_no),
	CONSTRAINT approval_rule_steps_step_check CHECK (step_no OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT approval_rule_steps_deadline_check CHECK (deadline OPERATOR(pg_catalog.>) '0'::interval)
);

COMMENT ON TABLE credit.approval_rule_steps IS
'The ordered steps of a rule: the approving position, the deadline, and the escalation target (NULL: the position''s superior).';

CREATE TABLE credit.applications (
	application_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind			text NOT NULL,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts ON UPDATE CASCADE,
	requested_limit	numeric,
	requested_temp_limit numeric,
	temp_from		timestamptz,
	temp_until		timestamptz,
	requested_term_days integer,
	order_table		regclass,
	order_key		text,
	order_amount	numeric,
	reason			text,
	documents		text[],
	requester		name NOT NULL DEFAULT credit.caller(),
	state			text NOT NULL DEFAULT 'draft',
	route_amount	numeric,
	rule_id			integer,
	current_limit	numeric,
	current_term_days integer,
	limit_request_id bigint REFERENCES credit.limit_requests,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	submitted_at	timestamptz,
	decided_at		timestamptz,
	decision_comment text,
	CONSTRAINT applications_kind_check
		CHECK (kind OPERATOR(pg_catalog.=) ANY
			   ('{new_limit,limit_change,temp_limit,term_change,order_release}'::text[])),
	CONSTRAINT applications_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY
			   ('{draft,pending,approved,rejected,withdrawn}'::text[])),
	CONSTRAINT applications_amounts_check
		CHECK (requested_limit OPERATOR(pg_catalog.>=) 0
			   AND requested_limit OPERATOR(pg_catalog.<) 1e15
			   AND requested_temp_limit OPERATOR(pg_catalog.>) 0
			   AND requested_temp_limit OPERATOR(pg_catalog.<) 1e15
			   AND order_amount OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT applications_term_check
		CHECK (requested_term_days OPERATOR(pg_catalog.>=) 0
			   AND requested_term_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT applications_window_check
		CHECK (temp_until OPERATOR(pg_catalog.>) temp_from),
	CONSTRAINT applications_temp_check
		CHECK (kind OPERATOR(pg_catalog.<>) 'temp_limit'
			   OR (requested_temp_limit IS NOT NULL AND temp_until IS NOT NULL)),
	CONSTRAINT applications_term_needed_check
		CHECK (kind OPERATOR(pg_catalog.<>) 'term_change' OR requested_term_days IS NOT NULL),
	CONSTRAINT applications_order_check
		CHECK ((kind OPERATOR(pg_catalog.=) 'order_release')
			   OPERATOR(pg_catalog.=) (order_table IS NOT NULL AND order_key IS NOT NULL))
);
CREATE INDEX applications_customer_idx ON credit.applications (customer_key, state);
CREATE INDEX applications_pending_idx ON credit.applications (state)
	WHERE state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON TABLE credit.applications IS
'Credit applications: new limit, limit change, temporary limit, payment-term change, release of a held order. Insert a draft, then credit.submit_application.';
COMMENT ON COLUMN credit.applications.documents IS 'References to attached documents (URLs, paths, document-management keys).';
COMMENT ON COLUMN credit.applications.route_amount IS 'The amount the rules were matched on, fixed at submit.';
COMMENT ON COLUMN credit.applications.limit_request_id IS 'The scoring limit request this application decides (credit.limit_requests).';

CREATE TABLE credit.application_steps (
	application_id	bigint NOT NULL REFERENCES credit.applications ON DELETE CASCADE,
	step_no			integer NOT NULL,
	position		text NOT NULL,
	first_position	text NOT NULL,
	escalate_to		text,
	deadline_interval interval NOT NULL,
	state			text NOT NULL DEFAULT 'waiting',
	deadline		timestamptz,
	escalations		integer NOT NULL DEFAULT 0,
	escalated_at	timestamptz,
	acted_by		name,
	acted_at		timestamptz,
	comment			text,
	PRIMARY KEY (application_id, step_no),
	CONSTRAINT application_steps_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY
			   ('{waiting,pending,approved,rejected,skipped}'::text[]))
);
CREATE INDEX application_steps_pending_idx ON credit.application_steps (deadline)
	WHERE state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON TABLE credit.application_steps IS
'The approval chain of each application, copied from the matching rule at submit; one step is pending at a time.';
COMMENT ON COLUMN credit.application_steps.position IS 'The position that acts now (after escalations).';
COMMENT ON COLUMN credit.application_steps.first_position IS 'The position the rule named.';

CREATE TABLE credit.approval_notices (
	notice_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	application_id	bigint NOT NULL REFERENCES credit.applications ON DELETE CASCADE,
	event			text NOT NULL,
	recipient		text NOT NULL,
	cc				boolean NOT NULL DEFAULT false,
	message			text NOT NULL,
	status			text NOT NULL DEFAULT 'queued',
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sent_at			timestamptz,
	CONSTRAINT approval_notices_status_check
		CHECK (status OPERATOR(pg_catalog.=) ANY ('{queued,sent}'::text[]))
);
CREATE INDEX approval_notices_queued_idx ON credit.approval_notices (notice_id)
	WHERE status OPERATOR(pg_catalog.=) 'queued';

COMMENT ON TABLE credit.approval_notices IS
'Notifications of approval events (a task assigned, escalated, decided), one row per recipient: a position, or a requester role (cc). Drain with credit.claim_notices.';

SELECT pg_catalog.pg_extension_config_dump('credit.positions', '');
SELECT pg_catalog.pg_extension_config_dump('credit.position_members', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_rules', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_rule_steps', '');
SELECT pg_catalog.pg_extension_config_dump('credit.applications', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.applications', 'application_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.application_steps', '');
SELECT pg_catalog.pg_extension_config_dump('credit.approval_notices', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.approval_notices', 'notice_id')::pg_catalog.regclass, '');

/*
 * Once submitted, an application's request is what its approvers see and
 * approve: it no longer changes (the requester withdraws and submits a new
 * one).  The customer key may still follow a rename of the account (ON
 * UPDATE CASCADE), and supporting documents may still be added.
 */
CREATE FUNCTION credit.applications_request_frozen()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.state OPERATOR(pg_catalog.<>) 'draft'
	   AND (NEW.kind, NEW.requested_limit, NEW.requested_temp_limit, NEW.temp_from, NEW.temp_until,
			NEW.requested_term_days, NEW.order_table, NEW.order_key, NEW.order_amount, NEW.reason,
			NEW.requester)
		   IS DISTINCT FROM
		   (OLD.kind, OLD.requested_limit, OLD.requested_temp_limit, OLD.temp_from, OLD.temp_until,
			OLD.requested_term_days, OLD.order_table, OLD.order_key, OLD.order_amount, OLD.reason,
			OLD.requester) THEN
		RAISE EXCEPTION 'application % is %: its request can no longer change', OLD.application_id,
			OLD.state
			USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'applications',
				  HINT = 'Withdraw it and submit a new application.';
	END IF;
	RETURN NEW;
END;
$$;

COMMENT ON FUNCTION credit.applications_request_frozen() IS
'Trigger on credit.applications: refuses (55000) a change of the request (kind, amounts, window, term, order, reason, requester) once the application is no longer a draft.';

CREATE TRIGGER applications_request_frozen
	BEFORE UPDATE ON credit.applications
	FOR EACH ROW EXECUTE FUNCTION credit.applications_request_frozen();

/* queue a notice to each recipient and announce it */
CREATE FUNCTION credit.approval_notify(application_id bigint, event text, recipients text[],
									   cc text[], message text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO credit.approval_notices (application_id, event, recipient, cc, message)
	SELECT $1, $2, r.recipient, r.cc, $5
	  FROM (SELECT x AS recipient, false AS cc FROM pg_catalog.unnest($3) x
			UNION
			SELECT y, true FROM pg_catalog.unnest($4) y) r
	 WHERE r.recipient IS NOT NULL;
	PERFORM pg_catalog.pg_notify('credit_approvals',
		pg_catalog.json_build_object('application_id', $1, 'event', $2,
									 'recipients', $3, 'cc', $4, 'message', $5)::text);
END;
$$;

COMMENT ON FUNCTION credit.approval_notify(bigint, text, text[], text[], text) IS
'Queues an approval notice per recipient in credit.approval_notices and announces it on channel credit_approvals.';

CREATE FUNCTION credit.claim_notices(batch integer DEFAULT 100)
RETURNS SETOF credit.approval_notices
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	UPDATE credit.approval_notices n SET status = 'sent', sent_at = pg_catalog.now()
	 WHERE n.notice_id OPERATOR(pg_catalog.=) ANY (
		   ARRAY(SELECT q.notice_id FROM credit.approval_notices q
				  WHERE q.status OPERATOR(pg_catalog.=) 'queued'
				  ORDER BY q.notice_id LIMIT $1 FOR UPDATE SKIP LOCKED))
	RETURNING n.*;
END;

COMMENT ON FUNCTION credit.claim_notices(integer) IS
'Takes up to batch queued notices (skipping rows other workers hold), marks them sent and returns them; a worker that fails to deliver rolls back.';

/* the application row, locked; 42704 if unknown */
CREATE FUNCTION credit.application_lock(application_id bigint)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	SELECT * INTO a FROM credit.applications x
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'application % does not exist', $1
			USING ERRCODE = '42704', SCHEMA = 'credit', TABLE = 'applications';
	END IF;
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_lock(bigint) IS
'Locks and returns an application row (42704 when it does not exist).';

CREATE FUNCTION credit.route_amount(a credit.applications, basis text, acct credit.accounts)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE a.kind
	WHEN 'new_limit' THEN a.requested_limit
	WHEN 'limit_change' THEN
		CASE basis WHEN 'increase'
			 THEN a.requested_limit OPERATOR(pg_catalog.-) acct.credit_limit
			 ELSE a.requested_limit END
	WHEN 'temp_limit' THEN a.requested_temp_limit
	WHEN 'term_change' THEN acct.credit_limit
	WHEN 'order_release' THEN
		CASE basis WHEN 'increase'
			 THEN GREATEST(a.order_amount OPERATOR(pg_catalog.-) credit.available_credit(acct), 0)
			 ELSE a.order_amount END
	END;

COMMENT ON FUNCTION credit.route_amount(credit.applications, text, credit.accounts) IS
'The amount an application is routed on: the requested limit (or its increase), the temporary amount, the standing limit for a term change, the held order''s amount (or its part above available credit).';

/*
 * Submit a locked draft: only its requester (or a member of the
 * requester's role; the order trigger opens release applications as the
 * extension's owner) may; route it and start its first step.
 */
CREATE FUNCTION credit.application_start(app credit.applications)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications := app;
	acct credit.accounts;
	grade text;
	matched credit.approval_rules;
	amt numeric;
	first_step credit.application_steps;
BEGIN
	/* the caller locked the row (credit.application_lock) */
	IF a.state OPERATOR(pg_catalog.<>) 'draft' THEN
		RAISE EXCEPTION 'application % is % and cannot be submitted', a.application_id, a.state
			USING ERRCODE = '55000', HINT = 'Only a draft is submitted.';
	END IF;
	IF a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT pg_catalog.pg_has_role(credit.caller(), a.requester, 'MEMBER') THEN
		RAISE EXCEPTION 'application % belongs to "%"', a.application_id, a.requester
			USING ERRCODE = '42501', HINT = 'Only the requester submits an application.';
	END IF;
	IF a.kind OPERATOR(pg_catalog.=) ANY ('{new_limit,limit_change}'::text[])
	   AND a.requested_limit IS NULL THEN
		RAISE EXCEPTION 'application % requests no limit', a.application_id
			USING ERRCODE = '23502', SCHEMA = 'credit', TABLE = 'applications',
				  COLUMN = 'requested_limit';
	END IF;
	IF a.kind OPERATOR(pg_catalog.=) 'temp_limit'
	   AND a.temp_until OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION 'the temporary limit window of application % ends in the past (%)',
			a.application_id, a.temp_until
			USING ERRCODE = '22023', SCHEMA = 'credit', TABLE = 'applications',
				  COLUMN = 'temp_until';
	END IF;

	SELECT * INTO acct FROM credit.accounts x
	 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
	SELECT g.grade INTO grade FROM credit.customer_grades g
	 WHERE g.customer_key OPERATOR(pg_catalog.=) a.customer_key;

	SELECT r.* INTO matched FROM credit.approval_rules r
	 WHERE a.kind OPERATOR(pg_catalog.=) ANY (r.kinds)
	   AND (r.grades IS NULL OR grade OPERATOR(pg_catalog.=) ANY (r.grades))
	   AND (r.statuses IS NULL OR acct.status OPERATOR(pg_catalog.=) ANY (r.statuses))
	   AND (r.amount_above IS NULL
			OR credit.route_amount(a, r.amount_basis, acct) OPERATOR(pg_catalog.>) r.amount_above)
	   AND (r.amount_up_to IS NULL
			OR credit.route_amount(a, r.amount_basis, acct) OPERATOR(pg_catalog.<=) r.amount_up_to)
	   AND EXISTS (SELECT 1 FROM credit.approval_rule_steps s
					WHERE s.rule_id OPERATOR(pg_catalog.=) r.rule_id)
	 ORDER BY r.priority, r.rule_id
	 LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no approval rule matches application %', a.application_id
			USING ERRCODE = 'CR007',
				  DETAIL = pg_catalog.format('Kind %s, customer "%s" (grade %s, status %s).',
											 a.kind, a.customer_key, COALESCE(grade, 'none'),
											 acct.status),
				  HINT = 'Add a rule to credit.approval_rules with its steps in credit.approval_rule_steps.';
	END IF;
	amt := credit.route_amount(a, matched.amount_basis, acct);

	INSERT INTO credit.application_steps (application_id, step_no, position, first_position,
										  escalate_to, deadline_interval, state, deadline)
	SELECT a.application_id, pg_catalog.row_number() OVER (ORDER BY s.step_no), s.position,
		   s.position, COALESCE(s.escalate_to, p.superior), s.deadline, 'waiting', NULL
	  FROM credit.approval_rule_steps s
	  JOIN credit.positions p ON p.position OPERATOR(pg_catalog.=) s.position
	 WHERE s.rule_id OPERATOR(pg_catalog.=) matched.rule_id;
	UPDATE credit.application_steps s
	   SET state = 'pending', deadline = pg_catalog.now() OPERATOR(pg_catalog.+) s.deadline_interval
	 WHERE s.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND s.step_no OPERATOR(pg_catalog.=) 1
	RETURNING * INTO first_step;

	UPDATE credit.applications x
	   SET state = 'pending', submitted_at = pg_catalog.now(), route_amount = amt,
		   rule_id = matched.rule_id, current_limit = acct.credit_limit,
		   current_term_days = acct.payment_term_days
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	RETURNING * INTO a;

	PERFORM credit.approval_notify(a.application_id, 'assigned', ARRAY[first_step.position],
								   ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" awaits %s by %s',
													 a.kind, a.application_id, a.customer_key,
													 first_step.position, first_step.deadline));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_start(credit.applications) IS
'Submits a locked draft (credit.submit_application locks it): routes it by the first matching rule (CR007 if none), copies its chain of steps, starts the first step''s deadline and notifies its position.';

CREATE FUNCTION credit.submit_application(application_id bigint)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	RETURN credit.application_start(credit.application_lock($1));
END;
$$;

COMMENT ON FUNCTION credit.submit_application(bigint) IS
'Submits a draft (its requester only, 42501): routes it by the first matching rule (CR007 if none), copies the chain of steps, starts the first step''s deadline and notifies its position.';


/* the pending step, locked with the application; checks the acting role */
CREATE FUNCTION credit.application_step_act(a credit.applications, step_no integer,
											action text, comment text)
RETURNS credit.application_steps
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.application_steps;
	earlier name;
BEGIN
	IF a.state OPERATOR(pg_catalog.<>) 'pending' THEN
		RAISE EXCEPTION 'application % is %, not pending', a.application_id, a.state
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('It was decided at %s.', a.decided_at);
	END IF;
	SELECT * INTO s FROM credit.application_steps x
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.state OPERATOR(pg_catalog.=) 'pending' FOR UPDATE;
	IF $2 IS NOT NULL AND s.step_no OPERATOR(pg_catalog.<>) $2 THEN
		SELECT x.acted_by INTO earlier FROM credit.application_steps x
		 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) $2;
		RAISE EXCEPTION 'step % of application % is not pending', $2, a.application_id
			USING ERRCODE = '55000',
				  DETAIL = CASE WHEN earlier IS NOT NULL
						   THEN pg_catalog.format('"%s" already acted on it; step %s is pending.', earlier, s.step_no)
						   ELSE pg_catalog.format('Step %s is pending.', s.step_no) END;
	END IF;
	IF a.requester OPERATOR(pg_catalog.=) credit.caller()
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				   WHERE r.rolname OPERATOR(pg_catalog.=) a.requester
					 AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER')) THEN
		RAISE EXCEPTION 'role "%" cannot % its own application %', credit.caller(), action,
			a.application_id
			USING ERRCODE = '42501', HINT = 'Segregation of duties: another approver must act.';
	END IF;
	IF NOT (credit.acts_for(s.position)
			OR (s.escalate_to IS NOT NULL AND credit.acts_for(s.escalate_to))) THEN
		RAISE EXCEPTION 'role "%" may not % step % of application %', credit.caller(), action,
			s.step_no, a.application_id
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('The step is assigned to position %s (escalation target %s).',
											 s.position, COALESCE(s.escalate_to, 'none'));
	END IF;
	SELECT x.step_no INTO earlier FROM credit.application_steps x
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.acted_by OPERATOR(pg_catalog.=) credit.caller();
	IF FOUND THEN
		RAISE EXCEPTION 'role "%" already acted on application % (step %)', credit.caller(),
			a.application_id, earlier
			USING ERRCODE = '42501', HINT = 'Each step of an application needs a different person.';
	END IF;
	UPDATE credit.application_steps x
	   SET state = CASE action WHEN 'approve' THEN 'approved' ELSE 'rejected' END,
		   acted_by = credit.caller(), acted_at = pg_catalog.now(), comment = $4
	 WHERE x.application_id OPERATOR(pg_catalog.=) a.application_id
	   AND x.step_no OPERATOR(pg_catalog.=) s.step_no
	RETURNING * INTO s;
	RETURN s;
END;
$$;

COMMENT ON FUNCTION credit.application_step_act(credit.applications, integer, text, text) IS
'Records the current role''s approval or rejection of the pending step of a locked application, after checking it may act (42501) and that it is the expected step (55000); returns the step.';

/* end the application: remaining steps skipped */
CREATE FUNCTION credit.application_close(application_id bigint, new_state text, comment text)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	UPDATE credit.application_steps s SET state = 'skipped'
	 WHERE s.application_id OPERATOR(pg_catalog.=) $1
	   AND s.state OPERATOR(pg_catalog.=) ANY ('{waiting,pending}'::text[]);
	UPDATE credit.applications x
	   SET state = $2, decided_at = pg_catalog.now(), decision_comment = $3
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1
	RETURNING * INTO a;
	/* a withdrawn application leaves its limit request open for another */
	IF a.limit_request_id IS NOT NULL AND $2 OPERATOR(pg_catalog.<>) 'withdrawn' THEN
		UPDATE credit.limit_requests r
		   SET state = CASE $2 WHEN 'approved' THEN 'approved' ELSE 'rejected' END,
			   decided_at = pg_catalog.now(), updated_at = pg_catalog.now()
		 WHERE r.request_id OPERATOR(pg_catalog.=) a.limit_request_id
		   AND r.state OPERATOR(pg_catalog.=) 'open';
	END IF;
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.application_close(bigint, text, text) IS
'Ends an application (approved, rejected, withdrawn): skips the remaining steps and settles the adopted limit request (approved or rejected; a withdrawn application leaves it open).';

/* write an approved application back to the account, in this transaction */
CREATE FUNCTION credit.application_write_back(a credit.applications)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * A row write holds the account first (credit.lock_accounts): under the
	 * shared-memory ledger the commits of orders holding reservations on it
	 * then write its status before this transaction locks the row, so no
	 * reader sees their exposure with the status before it
	 */
	IF a.kind OPERATOR(pg_catalog.<>) 'order_release' THEN
		PERFORM credit.lock_accounts(ARRAY[a.customer_key]);
	END IF;
	CASE a.kind
		WHEN 'new_limit', 'limit_change' THEN
			UPDATE credit.accounts x SET credit_limit = a.requested_limit
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'temp_limit' THEN
			IF a.temp_until OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
				RAISE EXCEPTION 'the temporary limit window of application % has ended (%)',
					a.application_id, a.temp_until
					USING ERRCODE = '22023',
						  HINT = 'Reject it, and apply again with a window in the future.';
			END IF;
			UPDATE credit.accounts x
			   SET temp_limit = a.requested_temp_limit, temp_limit_from = a.temp_from,
				   temp_limit_until = a.temp_until
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'term_change' THEN
			UPDATE credit.accounts x SET payment_term_days = a.requested_term_days
			 WHERE x.customer_key OPERATOR(pg_catalog.=) a.customer_key;
		WHEN 'order_release' THEN
			PERFORM credit.release_held_order(a.application_id);
	END CASE;
	IF a.kind OPERATOR(pg_catalog.<>) 'order_release' THEN
		/* the row the write-back just opened, if it changed anything */
		UPDATE credit.limit_history h SET application_id = a.application_id
		 WHERE h.customer_key OPERATOR(pg_catalog.=) a.customer_key
		   AND h.valid_until IS NULL
		   AND h.valid_from OPERATOR(pg_catalog.>=) pg_catalog.now();
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.application_write_back(credit.applications) IS
'Applies an approved application: limit, temporary limit and window, term, or the release of the held order.';

CREATE FUNCTION credit.approve(application_id bigint, comment text DEFAULT NULL,
							   step_no integer DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
	s credit.application_steps;
	next_step credit.application_steps;
BEGIN
	a := credit.application_lock($1);
	s := credit.application_step_act(a, $3, 'approve', $2);
	UPDATE credit.application_steps x
	   SET state = 'pending', deadline = pg_catalog.now() OPERATOR(pg_catalog.+) x.deadline_interval
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1
	   AND x.step_no OPERATOR(pg_catalog.=) (s.step_no OPERATOR(pg_catalog.+) 1)
	RETURNING * INTO next_step;
	IF FOUND THEN
		PERFORM credit.approval_notify($1, 'assigned', ARRAY[next_step.position],
									   ARRAY[a.requester::text],
									   pg_catalog.format('%s application %s for customer "%s": step %s approved by %s; awaits %s by %s',
														 a.kind, $1, a.customer_key, s.step_no, credit.caller(),
														 next_step.position, next_step.deadline));
		SELECT * INTO a FROM credit.applications x WHERE x.application_id OPERATOR(pg_catalog.=) $1;
		RETURN a;
	END IF;
	/*
	 * An adopted limit request is on its customer's request chain, which
	 * rescore appends to while it holds the account row: lock the account
	 * first, as rescore does.  (Not for an order release: its write-back
	 * locks the order row before the account, as the application's own
	 * order updates do.)
	 */
	IF a.limit_request_id IS NOT NULL THEN
		PERFORM credit.lock_accounts(ARRAY[a.customer_key]);
	END IF;
	a := credit.application_close($1, 'approved', $2);
	PERFORM credit.application_write_back(a);
	PERFORM credit.approval_notify($1, 'approved', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" approved by %s',
													 a.kind, $1, a.customer_key, credit.caller()));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.approve(bigint, text, integer) IS
'Approves the pending step (optionally naming it: 55000 if another is pending); the last approval writes the application back to the account in this transaction. 42501 unless the current role acts for the step''s position or escalation target, is not the requester and has not acted on the application before.';

CREATE FUNCTION credit.reject(application_id bigint, comment text DEFAULT NULL,
							  step_no integer DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
	s credit.application_steps;
BEGIN
	a := credit.application_lock($1);
	s := credit.application_step_act(a, $3, 'reject', $2);
	a := credit.application_close($1, 'rejected', $2);
	IF a.kind OPERATOR(pg_catalog.=) 'order_release' THEN
		PERFORM credit.reject_held_order($1);
	END IF;
	PERFORM credit.approval_notify($1, 'rejected', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" rejected by %s: %s',
													 a.kind, $1, a.customer_key, credit.caller(),
													 COALESCE($2, 'no comment')));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.reject(bigint, text, integer) IS
'Rejects the pending step and with it the application (a held order gets its table''s rejected status). Same rights as credit.approve.';

CREATE FUNCTION credit.withdraw(application_id bigint, comment text DEFAULT NULL)
RETURNS credit.applications
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a credit.applications;
BEGIN
	a := credit.application_lock($1);
	IF a.state OPERATOR(pg_catalog.<>) ALL ('{draft,pending}'::text[]) THEN
		RAISE EXCEPTION 'application % is % and cannot be withdrawn', $1, a.state
			USING ERRCODE = '55000';
	END IF;
	IF a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT pg_catalog.pg_has_role(credit.caller(), a.requester, 'MEMBER') THEN
		RAISE EXCEPTION 'only "%" may withdraw application %', a.requester, $1
			USING ERRCODE = '42501';
	END IF;
	a := credit.application_close($1, 'withdrawn', $2);
	IF a.kind OPERATOR(pg_catalog.=) 'order_release' THEN
		PERFORM credit.reject_held_order($1);
	END IF;
	PERFORM credit.approval_notify($1, 'withdrawn', ARRAY[]::text[], ARRAY[a.requester::text],
								   pg_catalog.format('%s application %s for customer "%s" withdrawn',
													 a.kind, $1, a.customer_key));
	RETURN a;
END;
$$;

COMMENT ON FUNCTION credit.withdraw(bigint, text) IS
'Withdraws a draft or pending application (its requester only, 42501); a held order''s release request withdrawn leaves the order rejected.';

CREATE FUNCTION credit.my_tasks()
RETURNS TABLE (application_id bigint, kind text, customer_key text, step_no integer,
			   approver_position text, deadline timestamptz, overdue boolean, requester name,
			   route_amount numeric, reason text)
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT a.application_id, a.kind, a.customer_key, s.step_no, s.position, s.deadline,
		   s.deadline OPERATOR(pg_catalog.<) pg_catalog.now(), a.requester, a.route_amount,
		   a.reason
	  FROM credit.application_steps s
	  JOIN credit.applications a ON a.application_id OPERATOR(pg_catalog.=) s.application_id
	 WHERE s.state OPERATOR(pg_catalog.=) 'pending'
	   AND a.requester OPERATOR(pg_catalog.<>) credit.caller()
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
						WHERE r.rolname OPERATOR(pg_catalog.=) a.requester
						  AND pg_catalog.pg_has_role(credit.caller(), r.oid, 'MEMBER'))
	   AND (credit.acts_for(s.position)
			OR (s.escalate_to IS NOT NULL AND credit.acts_for(s.escalate_to)))
	   AND NOT EXISTS (SELECT 1 FROM credit.application_steps e
						WHERE e.application_id OPERATOR(pg_catalog.=) s.application_id
						  AND e.acted_by OPERATOR(pg_catalog.=) credit.caller())
	 ORDER BY s.deadline, a.application_id;
END;

COMMENT ON FUNCTION credit.my_tasks() IS
'The pending steps the current role may act on, earliest deadline first.';

CREATE FUNCTION credit.escalate_overdue(as_of timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (application_id bigint, step_no integer, from_position text,
			   to_position text, new_deadline timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
	cur credit.application_steps;
	a credit.applications;
	nxt text;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'escalation needs a finite time' USING ERRCODE = '22023';
	END IF;
	FOR s IN SELECT x.application_id, x.step_no, x.position, x.escalate_to, x.deadline_interval
			   FROM credit.application_steps x
			  WHERE x.state OPERATOR(pg_catalog.=) 'pending'
				AND x.deadline OPERATOR(pg_catalog.<) as_of
			  ORDER BY x.application_id LOOP
		a := credit.application_lock(s.application_id);
		/*
		 * Re-read the step under the lock: it may have been acted on, or
		 * escalated by another run, since the loop's snapshot; escalate it
		 * from where it is now (or not at all).
		 */
		SELECT * INTO cur FROM credit.application_steps x
		 WHERE x.application_id OPERATOR(pg_catalog.=) s.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) s.step_no
		   AND x.state OPERATOR(pg_catalog.=) 'pending'
		   AND x.deadline OPERATOR(pg_catalog.<) as_of;
		CONTINUE WHEN NOT FOUND OR cur.escalate_to IS NULL;
		SELECT p.superior INTO nxt FROM credit.positions p
		 WHERE p.position OPERATOR(pg_catalog.=) cur.escalate_to;
		UPDATE credit.application_steps x
		   SET position = cur.escalate_to, escalate_to = nxt,
			   deadline = as_of OPERATOR(pg_catalog.+) x.deadline_interval,
			   escalations = x.escalations OPERATOR(pg_catalog.+) 1, escalated_at = as_of
		 WHERE x.application_id OPERATOR(pg_catalog.=) s.application_id
		   AND x.step_no OPERATOR(pg_catalog.=) s.step_no;
		PERFORM credit.approval_notify(s.application_id, 'escalated',
									   ARRAY[cur.escalate_to], ARRAY[cur.position, a.requester::text],
									   pg_catalog.format('%s application %s for customer "%s": step %s overdue at %s, escalated from %s to %s',
														 a.kind, a.application_id, a.customer_key, s.step_no,
														 as_of, cur.position, cur.escalate_to));
		application_id := s.application_id;
		step_no := s.step_no;
		from_position := cur.position;
		to_position := cur.escalate_to;
		new_deadline := as_of OPERATOR(pg_catalog.+) cur.deadline_interval;
		RETURN NEXT;
	END LOOP;
END;
$$;

COMMENT ON FUNCTION credit.escalate_overdue(timestamptz) IS
'For the scheduler: every pending step past its deadline at as_of moves to its escalation target (whose superior becomes the next target), with a new deadline, and is announced. A step without a target stays where it is, overdue.';

/*
 * A new account opened without a limit (a CRM creating the customer when a
 * deal is won) gets a draft new-limit application when
 * credit.settings.auto_new_limit_application is on: the requester is the
 * role that opened the account; the requested limit is left NULL for the
 * requester to fill in before submitting.
 */
CREATE FUNCTION credit.open_new_limit_application()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.credit_limit OPERATOR(pg_catalog.=) 0
	   AND (SELECT s.auto_new_limit_application FROM credit.settings s) THEN
		INSERT INTO credit.applications (kind, customer_key, reason)
		VALUES ('new_limit', NEW.customer_key, 'opened automatically: new account without a limit');
	END IF;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.open_new_limit_application() IS
'Trigger on credit.accounts: opens a draft new-limit application for a new account without a limit, when credit.settings.auto_new_limit_application is on.';

CREATE TRIGGER accounts_new_limit_application
	AFTER INSERT ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.open_new_limit_application();
