/*
 * credit--1.4--1.5.sql: upgrade from 1.4 to 1.5 (frozen once 1.5 is released).
 *
 * 1.5 makes the order trigger cheaper and the shared-memory ledger's
 * account locks complete: credit.enforce_orders() has no SET search_path
 * (its internal queries pin it in C); credit.lock_accounts locks account
 * rows and holds them in the shared-memory ledger too, and the engine's
 * own functions lock accounts with it (approve, reject_held_order,
 * hold_left, run_dunning, rescore).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.5'" to load this file. \quit

ALTER FUNCTION credit.enforce_orders() RESET search_path;

CREATE FUNCTION credit.lock_accounts(customer_keys text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'credit_lock_accounts'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.lock_accounts(text[]) IS
'Lock the account rows of customer_keys in the order given (lock them root first, then by depth, then by key, as the engine does), as SELECT ... FOR NO KEY UPDATE does, and under the shared-memory ledger hold each account there as well, so that no order changes its exposure until this transaction ends. Use it instead of FOR UPDATE on credit.accounts: under the shared-memory ledger a plain row lock does not stop orders. Keys without an account are skipped; returns the number of rows locked. Needs UPDATE on credit.accounts; a NULL key is 22004.';

REVOKE EXECUTE ON FUNCTION credit.lock_accounts(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.lock_accounts(text[]) TO credit_admin, credit_risk;

CREATE OR REPLACE FUNCTION credit.approve(application_id bigint, comment text DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION credit.reject_held_order(application_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h credit.held_orders;
BEGIN
	SELECT * INTO h FROM credit.held_orders x
	 WHERE x.application_id OPERATOR(pg_catalog.=) $1 AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM credit.held_order_update($1, 'reject');
	/* the account row before its audit chain head, as on every path */
	PERFORM credit.lock_accounts(ARRAY[h.customer_key]);
	/* not if the application cancelled the order meanwhile (credit.hold_left) */
	UPDATE credit.held_orders x
	   SET state = 'rejected', decided_at = pg_catalog.now(), changed_by = credit.caller()
	 WHERE x.hold_id OPERATOR(pg_catalog.=) h.hold_id
	   AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'order_rejected', 'customer_key', h.customer_key, 'orders', h.orders::text,
		'order_key', h.order_key, 'amount', h.amount, 'application_id', $1)::text);
END;
$$;

CREATE OR REPLACE FUNCTION credit.hold_left(orders regclass, order_key text, actor text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h credit.held_orders;
	a credit.applications;
	customer text;
BEGIN
	/* the account row before its audit chain head, as on every path */
	SELECT x.customer_key INTO customer FROM credit.held_orders x
	 WHERE x.orders OPERATOR(pg_catalog.=) $1 AND x.order_key OPERATOR(pg_catalog.=) $2
	   AND x.state OPERATOR(pg_catalog.=) 'held';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	/*
	 * The customer's row and its groups' rows, root first: the ledger's
	 * order, in which the trigger then applies a reopened order.  The
	 * customer's row alone first would invert that order against a
	 * concurrent order of the group's (a deadlock).  credit.lock_accounts
	 * holds them in the shared-memory ledger too: the trigger's apply then
	 * never waits for a commit that waits for these rows.
	 */
	PERFORM credit.lock_accounts(ARRAY(
		WITH RECURSIVE up (k, n) AS (
			SELECT customer COLLATE "C", 0
			UNION ALL
			SELECT p.parent_key, up.n OPERATOR(pg_catalog.+) 1
			  FROM credit.accounts p JOIN up ON p.customer_key OPERATOR(pg_catalog.=) up.k
			 WHERE p.parent_key IS NOT NULL AND up.n OPERATOR(pg_catalog.<) 64)
		SELECT up.k FROM up ORDER BY up.n DESC));
	UPDATE credit.held_orders x
	   SET state = 'cancelled', decided_at = pg_catalog.now(), changed_by = $3
	 WHERE x.orders OPERATOR(pg_catalog.=) $1 AND x.order_key OPERATOR(pg_catalog.=) $2
	   AND x.state OPERATOR(pg_catalog.=) 'held'
	RETURNING * INTO h;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	/*
	 * Withdraw the release application, unless its row is locked: this path
	 * holds the order row, and an approver who holds the application row
	 * (credit.approve locks it first) needs the order row next, so waiting
	 * for it here would deadlock.  That approver then finds the order no
	 * longer held (55000), and the application stays for a rejection.
	 */
	SELECT * INTO a FROM credit.applications x
	 WHERE x.application_id OPERATOR(pg_catalog.=) h.application_id
	   AND x.state OPERATOR(pg_catalog.=) ANY ('{draft,pending}'::text[])
	   FOR UPDATE SKIP LOCKED;
	IF FOUND THEN
		PERFORM credit.application_close(a.application_id, 'withdrawn',
										 'the order left its held status');
		PERFORM credit.approval_notify(a.application_id, 'withdrawn', ARRAY[]::text[],
									   ARRAY[a.requester::text],
									   pg_catalog.format('order "%s" of customer "%s" left its held status; its release application %s is withdrawn',
														 $2, h.customer_key, a.application_id));
	END IF;
	PERFORM pg_catalog.pg_notify('credit_events', pg_catalog.json_build_object(
		'event', 'hold_cancelled', 'customer_key', h.customer_key, 'orders', $1::text,
		'order_key', $2, 'amount', h.amount, 'application_id', h.application_id)::text);
END;
$$;

CREATE OR REPLACE FUNCTION credit.run_dunning(as_of date DEFAULT CURRENT_DATE,
								   OUT evaluated bigint,
								   OUT queued bigint,
								   OUT repeats bigint,
								   OUT to_watch bigint,
								   OUT to_stop bigint,
								   OUT lifted bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	lifts	boolean;
	fingerprint text;
	full_scan boolean;
	esc_keys text[];
	esc_status text[];
	lift_keys text[];
	cur_repeat_at integer[];
	next_no_at integer[];
	next_days_at integer[];
	next_repeat_at integer[];
	after_days_at integer[];
	adv		text;
	rep		text;
	new_level text;
	new_repeat text;
	new_last text;
	new_next text;
	scope	text;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'as_of must be a finite date, not %', COALESCE(as_of::text, 'NULL')
			USING ERRCODE = '22023';
	END IF;
	PERFORM credit.require_read_committed('credit.run_dunning');

	/* runs serialize; the policy holds still while one runs */
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225281);
	LOCK TABLE credit.dunning_levels IN SHARE MODE;

	SELECT s.dunning_lifts_status INTO lifts FROM credit.settings s;
	SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(
			   pg_catalog.concat_ws(':', l.level_no, l.days_from_due, l.repeat_days),
			   ',' ORDER BY l.level_no), ''))
	  INTO fingerprint
	  FROM credit.dunning_levels l;
	SELECT st.levels_fingerprint IS DISTINCT FROM fingerprint INTO full_scan
	  FROM credit.dunning_state st;

	/*
	 * The policy as arrays indexed by the level a receivable is at, plus one
	 * (0: none yet; a deleted level counts like the gap it left): that
	 * level's repeat days, and the next level's number, days and repeat
	 * days, and the days of the level after that.  Parameters $2 to $6 of
	 * the UPDATE below: no join, and the rows are written in index order.
	 */
	SELECT pg_catalog.array_agg(c.repeat_days ORDER BY k.k),
		   pg_catalog.array_agg(n.level_no ORDER BY k.k),
		   pg_catalog.array_agg(n.days_from_due ORDER BY k.k),
		   pg_catalog.array_agg(n.repeat_days ORDER BY k.k),
		   pg_catalog.array_agg(n.after_days ORDER BY k.k)
	  INTO cur_repeat_at, next_no_at, next_days_at, next_repeat_at, after_days_at
	  FROM pg_catalog.generate_series(0,
			   (SELECT COALESCE(pg_catalog.max(x.level_no), 0) FROM credit.dunning_levels x)) AS k(k)
	  LEFT JOIN credit.dunning_levels c ON c.level_no OPERATOR(pg_catalog.=) k.k
	  LEFT JOIN LATERAL (
		SELECT y.level_no, y.days_from_due, y.repeat_days,
			   (SELECT z.days_from_due FROM credit.dunning_levels z
				 WHERE z.level_no OPERATOR(pg_catalog.>) y.level_no
				 ORDER BY z.level_no LIMIT 1) AS after_days
		  FROM credit.dunning_levels y
		 WHERE y.level_no OPERATOR(pg_catalog.>) k.k
		 ORDER BY y.level_no LIMIT 1) n ON true;

	/*
	 * One step per receivable: advance to the next level when it is due
	 * (and nothing was queued for it on this day already), else repeat the
	 * current level when its repeat days have passed.  The expressions are
	 * spelled once here and used in the UPDATE below, which evaluates them
	 * on the row it writes (after waiting for a concurrent writer, on its
	 * newest version).
	 */
	adv := $e$(($3)[r.dunning_level OPERATOR(pg_catalog.+) 1] IS NOT NULL
		AND r.due_date OPERATOR(pg_catalog.+) ($4)[r.dunning_level OPERATOR(pg_catalog.+) 1]
			OPERATOR(pg_catalog.<=) $1
		AND (r.last_dunned_on IS NULL OR r.last_dunned_on OPERATOR(pg_catalog.<) $1))$e$;
	rep := $e$(($2)[r.dunning_level OPERATOR(pg_catalog.+) 1] IS NOT NULL
		AND r.dunning_level OPERATOR(pg_catalog.>) 0
		AND r.last_dunned_on OPERATOR(pg_catalog.<) $1
		AND r.last_dunned_on OPERATOR(pg_catalog.+) ($2)[r.dunning_level OPERATOR(pg_catalog.+) 1]
			OPERATOR(pg_catalog.<=) $1)$e$;
	new_level := pg_catalog.format(
		'CASE WHEN %s THEN ($3)[r.dunning_level OPERATOR(pg_catalog.+) 1] ELSE r.dunning_level END', adv);
	new_repeat := pg_catalog.format(
		'CASE WHEN %s THEN 0 WHEN %s THEN r.dunning_repeat OPERATOR(pg_catalog.+) 1 ELSE r.dunning_repeat END',
		adv, rep);
	new_last := pg_catalog.format('CASE WHEN %s OR %s THEN $1 ELSE r.last_dunned_on END', adv, rep);
	/*
	 * The earliest day the next level or the next repeat can come; NULL
	 * while a receivable has had no step (it is due when as_of - due_date
	 * reaches the first level's days, so nothing needs storing).
	 */
	new_next := pg_catalog.format(
		$e$CASE WHEN r.dunning_level OPERATOR(pg_catalog.=) 0 AND NOT COALESCE(%1$s, false) THEN NULL
		ELSE GREATEST($1 OPERATOR(pg_catalog.+) 1, COALESCE(LEAST(
			r.due_date OPERATOR(pg_catalog.+) CASE WHEN %1$s
				THEN ($6)[r.dunning_level OPERATOR(pg_catalog.+) 1]
				ELSE ($4)[r.dunning_level OPERATOR(pg_catalog.+) 1] END,
			%2$s OPERATOR(pg_catalog.+) CASE WHEN %1$s
				THEN ($5)[r.dunning_level OPERATOR(pg_catalog.+) 1]
				ELSE ($2)[r.dunning_level OPERATOR(pg_catalog.+) 1] END),
			'infinity'::pg_catalog.date)) END$e$, adv, new_last);

	/*
	 * Which receivables to write: the due ones (next_dunning_on reached;
	 * without a step yet, the first level's day reached; a NULL
	 * next_dunning_on after a step asks for a fresh decision), or, after a
	 * change of the schedule, every open one whose dunning state comes out
	 * different.  Planned for this run's values (EXECUTE).
	 */
	scope := CASE WHEN full_scan
			 THEN pg_catalog.format('AND (r.dunning_level, r.dunning_repeat, r.last_dunned_on, r.next_dunning_on) IS DISTINCT FROM (%s, %s, %s, %s)',
									new_level, new_repeat, new_last, new_next)
			 ELSE $e$AND CASE WHEN r.next_dunning_on IS NOT NULL THEN r.next_dunning_on OPERATOR(pg_catalog.<=) $1
						  WHEN r.dunning_level OPERATOR(pg_catalog.=) 0
						  THEN r.due_date OPERATOR(pg_catalog.+) ($4)[1] OPERATOR(pg_catalog.<=) $1
						  ELSE true END$e$ END;

	EXECUTE pg_catalog.format($q$
	WITH lv AS (
		/*
		 * Each level's template turned into a format() string (percent
		 * signs doubled, each variable replaced by its position): one pass
		 * per row, and no value is ever read as a variable.  (Percent signs
		 * are doubled once more for the outer format() that builds this
		 * query.)
		 */
		SELECT l.level_no,
			   pg_catalog.strpos(l.template, '{due_date}') OPERATOR(pg_catalog.>) 0 AS uses_due_date,
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
			   pg_catalog.replace(l.template, '%%', '%%%%'),
				   '{customer_name}', '%%1$s'), '{customer_key}', '%%2$s'),
				   '{invoice}', '%%3$s'), '{open_amount}', '%%4$s'),
				   '{overdue_amount}', '%%5$s'), '{currency}', '%%6$s'),
				   '{due_date}', '%%7$s'), '{days_overdue}', '%%8$s'),
				   '{level}', '%%9$s'), '{fee}', '%%10$s'), '{interest}', '%%11$s') AS fmt
		  FROM credit.dunning_levels l
	),
	upd AS (
		UPDATE credit.receivables r
		   SET dunning_level = %1$s,
			   dunning_repeat = %2$s,
			   last_dunned_on = %3$s,
			   next_dunning_on = %4$s
		  FROM credit.accounts a
		 WHERE a.customer_key OPERATOR(pg_catalog.=) r.customer_key
		   AND r.allocated OPERATOR(pg_catalog.<) r.amount AND NOT r.disputed
		   %5$s
		RETURNING r.receivable_id, r.customer_key, r.invoice_key, r.currency, r.due_date,
				  r.open_amount, r.dunning_level, r.dunning_repeat,
				  r.last_dunned_on OPERATOR(pg_catalog.=) $1 AS stepped,
				  a.owner, a.customer_name
	),
	ins AS (
		INSERT INTO credit.dunning_queue
			(receivable_id, customer_key, invoice_key, level_no, repeat_no, as_of,
			 channel, actions, recipient, message, currency, due_date, open_amount,
			 overdue_amount, days_overdue, fee, interest)
		SELECT u.receivable_id, u.customer_key, u.invoice_key, u.dunning_level,
			   u.dunning_repeat, $1, l.channel, l.actions,
			   CASE WHEN 'message_customer' OPERATOR(pg_catalog.=) ANY (l.actions) THEN u.customer_key
					WHEN 'notify_owner' OPERATOR(pg_catalog.=) ANY (l.actions) THEN u.owner END,
			   pg_catalog.format(f.fmt, COALESCE(u.customer_name, u.customer_key), u.customer_key,
								 u.invoice_key, u.open_amount, x.overdue_amount, u.currency,
								 CASE WHEN f.uses_due_date
									  THEN pg_catalog.to_char(u.due_date, 'YYYY-MM-DD') END,
								 x.days_overdue,
								 l.name, l.fee, x.interest),
			   u.currency, u.due_date, u.open_amount, x.overdue_amount, x.days_overdue, l.fee,
			   x.interest
		  FROM upd u
		  JOIN credit.dunning_levels l ON l.level_no OPERATOR(pg_catalog.=) u.dunning_level
		  JOIN lv f ON f.level_no OPERATOR(pg_catalog.=) u.dunning_level
		 CROSS JOIN LATERAL (
			SELECT CASE WHEN u.due_date OPERATOR(pg_catalog.<) $1 THEN u.open_amount ELSE 0 END
					   AS overdue_amount,
				   GREATEST($1 OPERATOR(pg_catalog.-) u.due_date, 0) AS days_overdue,
				   CASE WHEN l.annual_interest_rate OPERATOR(pg_catalog.=) 0
							 OR u.due_date OPERATOR(pg_catalog.>=) $1 THEN 0.00
						ELSE pg_catalog.round(u.open_amount OPERATOR(pg_catalog.*) l.annual_interest_rate
											  OPERATOR(pg_catalog./) 100
											  OPERATOR(pg_catalog.*) ($1 OPERATOR(pg_catalog.-) u.due_date)
											  OPERATOR(pg_catalog./) 365, 2) END AS interest) x
		 WHERE u.stepped
		ON CONFLICT (receivable_id, level_no, repeat_no) DO NOTHING
		RETURNING customer_key, level_no, repeat_no, actions
	),
	esc AS (
		/* per customer, the most severe status its new steps set */
		SELECT i.customer_key,
			   CASE WHEN pg_catalog.bool_or(l.set_status OPERATOR(pg_catalog.=) 'stop')
					THEN 'stop' ELSE 'watch' END AS set_status
		  FROM ins i
		  JOIN credit.dunning_levels l ON l.level_no OPERATOR(pg_catalog.=) i.level_no
		 WHERE 'set_status' OPERATOR(pg_catalog.=) ANY (i.actions)
		   AND l.set_status IS NOT NULL
		 GROUP BY i.customer_key
	)
	SELECT (SELECT pg_catalog.count(*) FROM upd),
		   (SELECT pg_catalog.count(*) FROM ins),
		   (SELECT pg_catalog.count(*) FROM ins WHERE ins.repeat_no OPERATOR(pg_catalog.>) 0),
		   (SELECT pg_catalog.array_agg(esc.customer_key ORDER BY esc.customer_key) FROM esc),
		   (SELECT pg_catalog.array_agg(esc.set_status ORDER BY esc.customer_key) FROM esc)
	$q$, new_level, new_repeat, new_last, new_next, scope)
	INTO evaluated, queued, repeats, esc_keys, esc_status
	USING as_of, cur_repeat_at, next_no_at, next_days_at, next_repeat_at, after_days_at;

	/* escalate: lock the accounts in the ledger's order, then raise their dunning_status */
	to_watch := 0;
	to_stop := 0;
	IF esc_keys IS NOT NULL THEN
		PERFORM credit.lock_accounts(ARRAY(
			SELECT a.customer_key
			  FROM credit.accounts a
			  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
			 WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (esc_keys)
			 ORDER BY t.root_key, t.depth, a.customer_key));
		WITH changed AS (
			UPDATE credit.accounts a
			   SET dunning_status = e.set_status
			  FROM ROWS FROM (pg_catalog.unnest(esc_keys), pg_catalog.unnest(esc_status))
				   AS e(customer_key, set_status)
			 WHERE a.customer_key OPERATOR(pg_catalog.=) e.customer_key
			   AND (a.dunning_status IS NULL
					OR (a.dunning_status OPERATOR(pg_catalog.=) 'watch'
						AND e.set_status OPERATOR(pg_catalog.=) 'stop'))
			RETURNING e.set_status
		)
		SELECT pg_catalog.count(*) FILTER (WHERE c.set_status OPERATOR(pg_catalog.=) 'watch'),
			   pg_catalog.count(*) FILTER (WHERE c.set_status OPERATOR(pg_catalog.=) 'stop')
		  INTO to_watch, to_stop
		  FROM changed c;
	END IF;

	/* lift: nothing open and undisputed is past its due date any more */
	lifted := 0;
	IF lifts THEN
		SELECT pg_catalog.array_agg(a.customer_key ORDER BY t.root_key, t.depth, a.customer_key)
		  INTO lift_keys
		  FROM credit.accounts a
		  JOIN credit.account_tree t ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
		 WHERE a.dunning_status IS NOT NULL
		   AND NOT EXISTS (
				SELECT 1 FROM credit.receivables r
				 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
				   AND r.allocated OPERATOR(pg_catalog.<) r.amount
				   AND NOT r.disputed
				   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of);
		IF lift_keys IS NOT NULL THEN
			/* locked in the ledger's order; the update tests them again, locked */
			PERFORM credit.lock_accounts(lift_keys);
			UPDATE credit.accounts a
			   SET dunning_status = NULL
			 WHERE a.customer_key OPERATOR(pg_catalog.=) ANY (lift_keys)
			   AND a.dunning_status IS NOT NULL
			   AND NOT EXISTS (
					SELECT 1 FROM credit.receivables r
					 WHERE r.customer_key OPERATOR(pg_catalog.=) a.customer_key
					   AND r.allocated OPERATOR(pg_catalog.<) r.amount
					   AND NOT r.disputed
					   AND r.due_date OPERATOR(pg_catalog.<) run_dunning.as_of);
			GET DIAGNOSTICS lifted = ROW_COUNT;
		END IF;
	END IF;

	UPDATE credit.dunning_state
	   SET levels_fingerprint = fingerprint,
		   last_as_of = run_dunning.as_of,
		   last_run_at = pg_catalog.now();

	IF queued OPERATOR(pg_catalog.>) 0 THEN
		PERFORM pg_catalog.pg_notify('credit_dunning',
			pg_catalog.format('{"event": "dunning_queued", "as_of": "%s", "queued": %s}',
							  pg_catalog.to_char(run_dunning.as_of, 'YYYY-MM-DD'), queued));
	END IF;
END;
$fn$;

CREATE OR REPLACE FUNCTION credit.rescore(as_of date DEFAULT CURRENT_DATE,
							   scorecard bigint DEFAULT NULL)
RETURNS TABLE (scored bigint, grade_changes bigint, limits_applied bigint,
			   limit_requests bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sc credit.scorecards;
BEGIN
	IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
		RAISE EXCEPTION 'rescore needs a finite as-of date' USING ERRCODE = '22023';
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225283);
	IF $2 IS NULL THEN
		SELECT * INTO sc FROM credit.scorecards s WHERE s.state OPERATOR(pg_catalog.=) 'active';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'there is no active scorecard'
				USING ERRCODE = '55000',
					  HINT = 'Activate one with credit.activate_scorecard.';
		END IF;
	ELSE
		SELECT * INTO sc FROM credit.scorecards s WHERE s.scorecard_id OPERATOR(pg_catalog.=) $2;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'scorecard % does not exist', $2 USING ERRCODE = '42704';
		END IF;
		IF sc.state OPERATOR(pg_catalog.=) 'draft' THEN
			RAISE EXCEPTION 'scorecard "%" version % is a draft', sc.name, sc.version
				USING ERRCODE = '55000',
					  DETAIL = 'Decisions are made only with activated versions, which never change.',
					  HINT = 'Compare a draft with credit.compare_scorecards, or activate it.';
		END IF;
	END IF;

	/* the grades in force never go back in time: score earlier dates without writing */
	IF EXISTS (SELECT 1 FROM credit.customer_grades g
				WHERE g.scored_on OPERATOR(pg_catalog.>) $1) THEN
		RAISE EXCEPTION 'rescore as of % is older than the grades in force', $1
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('Grades in force were scored as of %s.',
											 (SELECT pg_catalog.max(g.scored_on)
												FROM credit.customer_grades g)),
				  HINT = 'Score an earlier date with credit.score or credit.score_all, which write nothing.';
	END IF;

	RETURN QUERY
	WITH s AS MATERIALIZED (
		SELECT * FROM credit.score_all(sc.scorecard_id, as_of, NULL, true)
	), open_requests AS MATERIALIZED (
		/* joined, not probed per row: the table grows invisibly under this statement */
		SELECT o.customer_key, o.grade, o.current_limit, o.proposed_limit,
			   o.current_term, o.proposed_term
		  FROM credit.limit_requests o
		 WHERE o.state OPERATOR(pg_catalog.=) 'open'
	), history AS (
		INSERT INTO credit.score_history AS h
			   (scorecard_id, as_of, customer_key, score, computed_grade, grade,
				recommended_limit, recommended_term, reasons, points, metric_values)
		SELECT sc.scorecard_id, as_of, s.customer_key, s.score, s.grade, s.final_grade,
			   s.recommended_limit, s.recommended_term, s.reasons, s.points, s.metric_values
		  FROM s
		ON CONFLICT ON CONSTRAINT score_history_pkey DO UPDATE
		   SET score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade = EXCLUDED.grade, recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   points = EXCLUDED.points, metric_values = EXCLUDED.metric_values,
			   scored_at = pg_catalog.now()
		RETURNING 1
	), current AS (
		INSERT INTO credit.customer_grades AS g
			   (customer_key, scorecard_id, grade, score, computed_grade, grade_since,
				pending_grade, pending_since, recommended_limit, recommended_term,
				reasons, scored_on)
		SELECT s.customer_key, sc.scorecard_id, s.final_grade, s.score, s.grade, as_of,
			   s.pending_grade, s.pending_since, s.recommended_limit, s.recommended_term,
			   s.reasons, as_of
		  FROM s
		ON CONFLICT (customer_key) DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, grade = EXCLUDED.grade,
			   score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade_since = CASE WHEN g.grade OPERATOR(pg_catalog.=) EXCLUDED.grade
								  THEN g.grade_since ELSE EXCLUDED.grade_since END,
			   pending_grade = EXCLUDED.pending_grade, pending_since = EXCLUDED.pending_since,
			   recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   scored_on = EXCLUDED.scored_on, scored_at = pg_catalog.now()
		RETURNING 1
	), changes AS (
		INSERT INTO credit.grade_changes (customer_key, scorecard_id, as_of, old_grade,
										  new_grade, score, why, reasons)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.previous_grade, s.final_grade,
			   s.score, s.why, s.reasons
		  FROM s WHERE s.grade_changed
		RETURNING 1
	), locked AS (
		/*
		 * the accounts to change, locked in the ledger's order (root
		 * first, then key: credit.account_tree) before any is updated: no
		 * deadlock with a transaction that holds one account and then
		 * writes one later in that order (credit.lock_accounts: held in
		 * the shared-memory ledger too)
		 */
		SELECT pg_catalog.unnest(k.keys) AS customer_key
		  FROM (SELECT pg_catalog.array_agg(a.customer_key
											ORDER BY t.root_key, t.depth, a.customer_key) AS keys
				  FROM credit.accounts a
				  JOIN s ON s.customer_key OPERATOR(pg_catalog.=) a.customer_key
				  JOIN credit.account_tree t
					ON t.customer_key OPERATOR(pg_catalog.=) a.customer_key
				 WHERE s.limit_action OPERATOR(pg_catalog.=) 'apply') k
		 WHERE credit.lock_accounts(k.keys) IS NOT NULL
	), applied AS (
		UPDATE credit.accounts a
		   SET credit_limit = s.recommended_limit, payment_term_days = s.recommended_term
		  FROM s, locked l, credit.scorecard_grades gr
		 WHERE s.limit_action OPERATOR(pg_catalog.=) 'apply'
		   AND l.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND a.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND gr.scorecard_id OPERATOR(pg_catalog.=) sc.scorecard_id
		   AND gr.grade OPERATOR(pg_catalog.=) s.final_grade
		   /*
			* re-tested on the newest row version when the row changed
			* meanwhile (EvalPlanQual): a decrease policy never raises a
			* limit or lengthens a term someone set in the meantime
			*/
		   AND (gr.auto_apply OPERATOR(pg_catalog.=) 'always'
				OR (s.recommended_limit OPERATOR(pg_catalog.<=) a.credit_limit
					AND s.recommended_term OPERATOR(pg_catalog.<=) a.payment_term_days))
		RETURNING a.customer_key
	), closed AS (
		UPDATE credit.limit_requests r
		   SET state = 'superseded', updated_at = pg_catalog.now(), decided_at = pg_catalog.now()
		  FROM s
		 WHERE r.state OPERATOR(pg_catalog.=) 'open'
		   AND r.customer_key OPERATOR(pg_catalog.=) s.customer_key
		   AND s.limit_action IS DISTINCT FROM 'request'
		RETURNING 1
	), requests AS (
		INSERT INTO credit.limit_requests AS r
			   (customer_key, scorecard_id, as_of, grade, score, current_limit,
				proposed_limit, current_term, proposed_term, state, reasons, decided_at)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.final_grade, s.score,
			   s.current_limit, s.recommended_limit, s.current_term, s.recommended_term,
			   CASE s.limit_action WHEN 'apply' THEN 'applied' ELSE 'open' END,
			   s.reasons,
			   CASE s.limit_action WHEN 'apply' THEN pg_catalog.now() END
		  FROM s
		  LEFT JOIN open_requests o ON o.customer_key OPERATOR(pg_catalog.=) s.customer_key
		 WHERE (s.limit_action OPERATOR(pg_catalog.=) 'request'
				/* an open request proposing this already stays as it is */
				AND (o.customer_key IS NULL
					 OR (o.grade, o.current_limit, o.proposed_limit,
						 o.current_term, o.proposed_term)
						IS DISTINCT FROM
						(s.final_grade, s.current_limit, s.recommended_limit,
						 s.current_term, s.recommended_term)))
			/* IN (subquery), hashed; = ANY (ARRAY(...)) scanned the array per row */
			OR s.customer_key OPERATOR(pg_catalog.=) ANY (SELECT x.customer_key FROM applied x)
		ON CONFLICT (customer_key) WHERE state OPERATOR(pg_catalog.=) 'open' DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, as_of = EXCLUDED.as_of,
			   grade = EXCLUDED.grade, score = EXCLUDED.score,
			   current_limit = EXCLUDED.current_limit, proposed_limit = EXCLUDED.proposed_limit,
			   current_term = EXCLUDED.current_term, proposed_term = EXCLUDED.proposed_term,
			   reasons = EXCLUDED.reasons, updated_at = pg_catalog.now()
		RETURNING r.state
	)
	SELECT (SELECT pg_catalog.count(*) FROM history),
		   (SELECT pg_catalog.count(*) FROM changes),
		   (SELECT pg_catalog.count(*) FROM applied),
		   (SELECT pg_catalog.count(*) FROM s WHERE s.limit_action OPERATOR(pg_catalog.=) 'request')
	  FROM (SELECT pg_catalog.count(*) FROM current) c, (SELECT pg_catalog.count(*) FROM closed) d;
END;
$$;
