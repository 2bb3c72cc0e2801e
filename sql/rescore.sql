/*
 * rescore.sql: scoring customers and acting on the results.
 *
 * credit.score_all (C, src/scorecard.c) scores every account, or one, under
 * a scorecard version as of a date, and decides for each the grade to keep
 * (hysteresis) and what to do about its limit.  It reads and writes nothing
 * else.  On top of it:
 *   credit.score           one customer, with each factor explained (jsonb)
 *   credit.rescore         all customers under the active version, written:
 *                          score history, current grades, grade changes,
 *                          limits applied where policy allows, otherwise
 *                          limit requests for approval
 *   credit.compare_scorecards  what-if: a draft against the active version,
 *                          grade by grade, writing nothing
 *
 * Hysteresis (customers already graded under the same scorecard name): a
 * grade change driven by the score needs the score hysteresis_points beyond
 * the current grade's band, and it is applied only when the same new grade
 * has been pending for confirm_days days (as_of - pending_since >=
 * confirm_days, pending_grade and pending_since kept in
 * credit.customer_grades; a run that computes another grade restarts it).
 * Downgrades by adjustment rules act at once.  The first grading, and the
 * first under a scorecard of another name, apply the computed grade.
 *
 * Limit actions: when the final grade's recommended limit differs from the
 * account's credit_limit by at least limit_min_change (or the recommended
 * term differs), the grade's auto_apply says what happens: always (apply),
 * decrease (apply if lower, else request), never (request).  Applying
 * updates credit.accounts (credit_limit, payment_term_days) and records an
 * applied row in credit.limit_requests; requesting keeps one open request
 * per customer, updated as recommendations change, for the approval
 * workflow to decide.  An open request whose recommendation no longer
 * differs is marked superseded.
 *
 * Dates: the grades in force never go back in time.  A rescore as of a
 * date older than the newest scored_on in credit.customer_grades is
 * refused (22023); score past dates with credit.score or score_all, which
 * write nothing.  A same-day rerun replaces that day's results.
 *
 * Concurrency: rescore takes a transaction-level advisory lock, so two runs
 * queue (at REPEATABLE READ the second gets 40001).  It reads the ledger in
 * its snapshot and updates accounts only for applied limits: it locks those
 * rows in the ledger's lock order (credit.account_tree), so it cannot deadlock
 * with order entry, and the UPDATE re-tests the grade's policy on the
 * newest row, so a decrease policy never raises a limit a person lowered
 * meanwhile (an order racing a lowered limit is decided by the ledger, see
 * limit_lowered.spec and rescore_races.spec).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.customer_grades (
	customer_key	text COLLATE "C" PRIMARY KEY
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	grade			text NOT NULL,
	score			numeric NOT NULL,
	computed_grade	text NOT NULL,
	grade_since		date NOT NULL,
	pending_grade	text,
	pending_since	date,
	recommended_limit numeric NOT NULL,
	recommended_term integer NOT NULL,
	reasons			text[] NOT NULL,
	scored_on		date NOT NULL,
	scored_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 50);	/* rescore rewrites every row daily: keep it HOT (no index on grade) */

COMMENT ON TABLE credit.customer_grades IS
'Each account''s current grade, score and recommendation, kept by credit.rescore.';
COMMENT ON COLUMN credit.customer_grades.grade IS 'The grade in force (after adjustment rules and hysteresis).';
COMMENT ON COLUMN credit.customer_grades.computed_grade IS 'The grade the last score and rules gave, before hysteresis.';
COMMENT ON COLUMN credit.customer_grades.pending_grade IS 'A grade waiting for confirm_days before it is applied.';

CREATE TABLE credit.score_history (
	/*
	 * no foreign key: a version scored by rescore is active or retired, and
	 * those are never deleted (scorecard_immutable, 55000); the check would
	 * cost a trigger call per row, 0.3 s of every 100,000-customer rescore
	 */
	scorecard_id	bigint NOT NULL,
	as_of			date NOT NULL,
	customer_key	text COLLATE "C" NOT NULL,
	score			numeric NOT NULL,
	computed_grade	text NOT NULL,
	grade			text NOT NULL,
	recommended_limit numeric NOT NULL,
	recommended_term integer NOT NULL,
	reasons			text[] NOT NULL,
	points			numeric[] NOT NULL,
	metric_values	numeric[] NOT NULL,
	scored_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (scorecard_id, as_of, customer_key)
);
CREATE INDEX score_history_customer_idx ON credit.score_history (customer_key, as_of);

COMMENT ON TABLE credit.score_history IS
'Every score credit.rescore computed: one row per scorecard version, date and customer (a same-day rerun replaces it).';
COMMENT ON COLUMN credit.score_history.points IS 'Each factor''s points (0-100), in factor position order of the scorecard version.';
COMMENT ON COLUMN credit.score_history.metric_values IS 'Each factor''s metric value (NULL: missing), in factor position order.';

CREATE TABLE credit.grade_changes (
	change_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	as_of			date NOT NULL,
	old_grade		text,
	new_grade		text NOT NULL,
	score			numeric NOT NULL,
	why				text NOT NULL,
	reasons			text[] NOT NULL,
	changed_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by		text NOT NULL DEFAULT credit.caller()
);
CREATE INDEX grade_changes_customer_idx ON credit.grade_changes (customer_key, changed_at);

COMMENT ON TABLE credit.grade_changes IS
'Every change of a customer''s grade: old, new, why, when (kept by credit.rescore).';

CREATE TABLE credit.limit_requests (
	request_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_key	text COLLATE "C" NOT NULL
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards,
	as_of			date NOT NULL,
	grade			text NOT NULL,
	score			numeric NOT NULL,
	current_limit	numeric NOT NULL,
	proposed_limit	numeric NOT NULL,
	current_term	integer NOT NULL,
	proposed_term	integer NOT NULL,
	state			text NOT NULL DEFAULT 'open',
	reasons			text[] NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	decided_at		timestamptz,
	CONSTRAINT limit_requests_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY ('{open,applied,superseded,approved,rejected}'::text[]))
);
CREATE UNIQUE INDEX limit_requests_one_open ON credit.limit_requests (customer_key)
	WHERE state OPERATOR(pg_catalog.=) 'open';

COMMENT ON TABLE credit.limit_requests IS
'Limit and term changes recommended by scoring: applied at once where the grade''s auto_apply allows (state applied), otherwise one open request per customer for approval.';

SELECT pg_catalog.pg_extension_config_dump('credit.customer_grades', '');
SELECT pg_catalog.pg_extension_config_dump('credit.score_history', '');
SELECT pg_catalog.pg_extension_config_dump('credit.grade_changes', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.grade_changes', 'change_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.limit_requests', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.limit_requests', 'request_id')::pg_catalog.regclass, '');

CREATE FUNCTION credit.score_all(scorecard_id bigint DEFAULT NULL,
								 as_of date DEFAULT CURRENT_DATE,
								 customer text DEFAULT NULL,
								 hysteresis boolean DEFAULT true)
RETURNS TABLE (customer_key text, score numeric, band_grade text, grade text,
			   final_grade text, previous_grade text, grade_changed boolean,
			   pending_grade text, pending_since date, why text,
			   recommended_limit numeric, recommended_term integer,
			   current_limit numeric, current_term integer, limit_action text,
			   reasons text[], points numeric[], metric_values numeric[])
AS 'MODULE_PATHNAME', 'credit_score_all'
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.score_all(bigint, date, text, boolean) IS
'Scores every account (or one customer) under a scorecard version (NULL: the active one) as of a date; writes nothing. band_grade: the score''s band; grade: after adjustment rules; final_grade: after hysteresis (when hysteresis is true).';

CREATE FUNCTION credit.score(customer text, scorecard bigint DEFAULT NULL,
							 as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (customer_key text, scorecard_id bigint, score numeric, grade text,
			   band_grade text, recommended_limit numeric, recommended_term integer,
			   reasons text[], factors jsonb)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sc bigint := $2;
BEGIN
	IF sc IS NULL THEN
		SELECT s.scorecard_id INTO sc FROM credit.scorecards s
		 WHERE s.state OPERATOR(pg_catalog.=) 'active';
	END IF;
	IF customer IS NULL OR NOT EXISTS (SELECT 1 FROM credit.accounts a
										WHERE a.customer_key OPERATOR(pg_catalog.=) customer) THEN
		RAISE EXCEPTION 'customer "%" has no credit account', customer
			USING ERRCODE = 'CR003', SCHEMA = 'credit', TABLE = 'accounts';
	END IF;
	RETURN QUERY
	SELECT s.customer_key, sc, s.score, s.grade, s.band_grade,
		   s.recommended_limit, s.recommended_term, s.reasons,
		   (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
					   'factor', f.factor, 'metric', f.metric,
					   'value', s.metric_values[f.ord],
					   'points', s.points[f.ord], 'weight', f.weight,
					   'contribution', pg_catalog.round(f.weight OPERATOR(pg_catalog.*)
							s.points[f.ord] OPERATOR(pg_catalog./) 100, 2),
					   'lost', f.weight OPERATOR(pg_catalog.-) pg_catalog.round(f.weight
							OPERATOR(pg_catalog.*) s.points[f.ord] OPERATOR(pg_catalog./) 100, 2),
					   'reason_code', f.reason_code, 'reason_text', f.reason_text)
				   ORDER BY f.ord)
			  FROM (SELECT x.*, pg_catalog.row_number() OVER (ORDER BY x.position) AS ord
					  FROM credit.scorecard_factors x
					 WHERE x.scorecard_id OPERATOR(pg_catalog.=) sc) f)
	  FROM credit.score_all(sc, as_of, customer, false) s;
END;
$$;

COMMENT ON FUNCTION credit.score(text, bigint, date) IS
'Scores one customer (default: the active scorecard, today): score, grade after rules, recommendation, reason codes (most points lost first) and each factor''s value, points and contribution.';

CREATE FUNCTION credit.rescore(as_of date DEFAULT CURRENT_DATE,
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

COMMENT ON FUNCTION credit.rescore(date, bigint) IS
'Scores every account under the active (or a given non-draft) scorecard as of a date and writes the results: history, grades, grade changes, applied limits and limit requests. Returns the counts.';

CREATE FUNCTION credit.compare_scorecards(draft bigint, base bigint DEFAULT NULL,
										  as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (grade text, base_customers bigint, draft_customers bigint,
			   base_recommended_limit numeric, draft_recommended_limit numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b bigint := base;
BEGIN
	IF b IS NULL THEN
		SELECT s.scorecard_id INTO b FROM credit.scorecards s
		 WHERE s.state OPERATOR(pg_catalog.=) 'active';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'there is no active scorecard to compare with'
				USING ERRCODE = '55000', HINT = 'Name the base version.';
		END IF;
	END IF;
	RETURN QUERY
	WITH bs AS (SELECT x.grade, pg_catalog.count(*) AS n,
					   pg_catalog.sum(x.recommended_limit) AS total
				  FROM credit.score_all(b, as_of, NULL, false) x GROUP BY x.grade),
		 ds AS (SELECT x.grade, pg_catalog.count(*) AS n,
					   pg_catalog.sum(x.recommended_limit) AS total
				  FROM credit.score_all(draft, as_of, NULL, false) x GROUP BY x.grade),
		 rows AS (SELECT COALESCE(bs.grade, ds.grade) AS grade,
						 COALESCE(bs.n, 0) AS bn, COALESCE(ds.n, 0) AS dn,
						 COALESCE(bs.total, 0) AS bt, COALESCE(ds.total, 0) AS dt
					FROM bs FULL JOIN ds ON bs.grade OPERATOR(pg_catalog.=) ds.grade)
	SELECT * FROM (
		SELECT r.grade, r.bn, r.dn, r.bt, r.dt FROM rows r ORDER BY r.grade) g
	UNION ALL
	SELECT 'total', COALESCE(pg_catalog.sum(r.bn), 0)::bigint, COALESCE(pg_catalog.sum(r.dn), 0)::bigint,
		   COALESCE(pg_catalog.sum(r.bt), 0), COALESCE(pg_catalog.sum(r.dt), 0)
	  FROM rows r;
END;
$$;

COMMENT ON FUNCTION credit.compare_scorecards(bigint, bigint, date) IS
'What-if: scores every account under a draft (or any) version and the base (default: active) version, writing nothing; per grade the customers and total recommended limits of each, then a total row.';
