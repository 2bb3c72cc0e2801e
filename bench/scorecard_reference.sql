/*
 * bench/scorecard_reference.sql: the scoring a DBA would write in plain SQL
 * and PL/pgSQL, the reference that credit.rescore(as_of) is measured
 * against (bench/scorecard.sh).  Loaded after bench/scorecard_data.sql.
 *
 * Like credit.score_all, it reads the scorecard as data (any factors, bins,
 * linear factors, grades, rules and user metrics), and takes the built-in
 * metrics from credit.customer_metrics (SQL, shared with the extension):
 *   bench.ref_score(as_of, scorecard)   every account's score, grade band,
 *       grade after the adjustment rules, recommended limit and term, reason
 *       codes, points and metric values, set-based: the metrics unpivoted
 *       into (customer, metric, value) rows, user metrics as each
 *       customer's latest value on or before as_of (DISTINCT ON), bins by a
 *       range join, grades by a range join on their min_score bands
 *   bench.ref_rescore(as_of)   the same writes as credit.rescore, into its
 *       own tables of the same shape (columns, keys, indexes, foreign keys):
 *       bench.score_history, bench.customer_grades, bench.grade_changes,
 *       bench.limit_requests, and applied limits into bench.account_terms
 *       (its copy of the accounts' limits and terms, so that the two never
 *       see each other's applied limits)
 * It implements hysteresis_points = 0 and confirm_days = 0 only (a grade
 * changes as soon as the score and rules say so), which it checks; the
 * "why" of a grade change is a shorter text than the extension's.
 */

CREATE TABLE bench.customer_grades (LIKE credit.customer_grades INCLUDING ALL,
	FOREIGN KEY (customer_key) REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	FOREIGN KEY (scorecard_id) REFERENCES credit.scorecards);
CREATE TABLE bench.score_history (LIKE credit.score_history INCLUDING ALL,
	FOREIGN KEY (scorecard_id) REFERENCES credit.scorecards);
CREATE TABLE bench.grade_changes (LIKE credit.grade_changes INCLUDING ALL,
	FOREIGN KEY (scorecard_id) REFERENCES credit.scorecards);
CREATE TABLE bench.limit_requests (LIKE credit.limit_requests INCLUDING ALL,
	FOREIGN KEY (customer_key) REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	FOREIGN KEY (scorecard_id) REFERENCES credit.scorecards);

/* the reference's copy of the limits and terms it may change */
CREATE TABLE bench.account_terms (
	customer_key	text COLLATE "C" PRIMARY KEY
		REFERENCES credit.accounts ON UPDATE CASCADE ON DELETE CASCADE,
	credit_limit	numeric NOT NULL,
	payment_term_days integer NOT NULL
);

CREATE FUNCTION bench.copy_account_terms()
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO bench.account_terms
	SELECT a.customer_key, a.credit_limit, a.payment_term_days FROM credit.accounts a;
	SELECT count(*) FROM bench.account_terms;
END;

CREATE FUNCTION bench.ref_score(as_of date, scorecard bigint)
RETURNS TABLE (customer_key text, score numeric, band_grade text, grade text,
			   recommended_limit numeric, recommended_term integer, auto_apply text,
			   reasons text[], points numeric[], metric_values numeric[], fired text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	sc credit.scorecards;
BEGIN
	SELECT * INTO STRICT sc FROM credit.scorecards s WHERE s.scorecard_id = scorecard;
	RETURN QUERY
	WITH f AS (
		SELECT x.* FROM credit.scorecard_factors x WHERE x.scorecard_id = sc.scorecard_id
	), g AS (
		SELECT x.*, row_number() OVER (ORDER BY x.min_score) AS rank,
			   lead(x.min_score) OVER (ORDER BY x.min_score) AS next_min
		  FROM credit.scorecard_grades x WHERE x.scorecard_id = sc.scorecard_id
	), r AS (
		SELECT x.* FROM credit.scorecard_rules x WHERE x.scorecard_id = sc.scorecard_id
	), used AS (
		SELECT u.metric, d.source
		  FROM (SELECT f.metric FROM f UNION SELECT r.metric FROM r
				UNION SELECT g.limit_metric FROM g WHERE g.limit_metric IS NOT NULL) u
		  JOIN credit.metrics d ON d.metric = u.metric
	), m AS MATERIALIZED (
		SELECT * FROM credit.customer_metrics(as_of, sc.window_months, sc.overdue_months)
	), uv AS (
		/* user metrics: each customer's latest value on or before as_of */
		SELECT DISTINCT ON (v.customer_key, v.metric) v.customer_key, v.metric, v.value
		  FROM credit.metric_values v
		 WHERE v.metric IN (SELECT u.metric FROM used u WHERE u.source = 'user')
		   AND v.as_of <= ref_score.as_of
		 ORDER BY v.customer_key, v.metric, v.as_of DESC
	), mv AS MATERIALIZED (
		/* (customer, metric, value) of every metric the scorecard uses */
		SELECT m.customer_key, u.metric,
			   CASE u.metric
				   WHEN 'avg_days_to_pay' THEN m.avg_days_to_pay
				   WHEN 'max_days_overdue' THEN m.max_days_overdue
				   WHEN 'current_days_overdue' THEN m.current_days_overdue
				   WHEN 'overdue_count' THEN m.overdue_count
				   WHEN 'overdue_amount' THEN m.overdue_amount
				   WHEN 'relationship_years' THEN m.relationship_years
				   WHEN 'avg_monthly_sales' THEN m.avg_monthly_sales
				   WHEN 'sales_variation' THEN m.sales_variation
				   WHEN 'utilization' THEN m.utilization
				   WHEN 'registered_capital' THEN m.registered_capital
				   ELSE uv.value
			   END AS value
		  FROM m CROSS JOIN used u
		  LEFT JOIN uv ON u.source = 'user' AND uv.customer_key = m.customer_key
					  AND uv.metric = u.metric
	), fp AS (
		/* each factor's value and points (0-100) */
		SELECT mv.customer_key, f.position, f.weight, f.reason_code, mv.value,
			   CASE WHEN mv.value IS NULL THEN f.missing_points
					WHEN f.method = 'linear'
					THEN least(100, greatest(0, f.intercept + f.slope * mv.value))
					ELSE b.points END AS points
		  FROM f JOIN mv ON mv.metric = f.metric
		  LEFT JOIN credit.scorecard_bins b
			ON b.scorecard_id = f.scorecard_id AND b.factor = f.factor
		   AND (b.lower_bound IS NULL OR mv.value >= b.lower_bound)
		   AND (b.upper_bound IS NULL OR mv.value < b.upper_bound)
	), fc AS (
		SELECT fp.*, fp.weight * fp.points / 100 AS contribution,
			   fp.weight - fp.weight * fp.points / 100 AS lost
		  FROM fp
	), s AS (
		SELECT fc.customer_key, round(sum(fc.contribution), 2) AS score,
			   coalesce(array_agg(fc.reason_code ORDER BY fc.lost DESC, fc.position)
							FILTER (WHERE fc.lost > 0), '{}') AS reasons,
			   array_agg(fc.points ORDER BY fc.position) AS points,
			   array_agg(fc.value ORDER BY fc.position) AS metric_values
		  FROM fc
		 GROUP BY fc.customer_key
	), rules AS (
		/* the adjustment rules that fire: grades down, and why */
		SELECT mv.customer_key, sum(r.downgrade_steps)::integer AS steps,
			   string_agg(format('; rule %s (%s %s %s, value %s): %s down', r.rule_no, r.metric,
								 r.operator, r.threshold, mv.value, r.downgrade_steps),
						  '' ORDER BY r.rule_no) AS fired
		  FROM r JOIN mv ON mv.metric = r.metric
		 WHERE CASE r.operator WHEN '>' THEN mv.value > r.threshold
							   WHEN '>=' THEN mv.value >= r.threshold
							   WHEN '<' THEN mv.value < r.threshold
							   WHEN '<=' THEN mv.value <= r.threshold END
		 GROUP BY mv.customer_key
	)
	SELECT s.customer_key::text, s.score, band.grade, t.grade,
		   floor(least(t.limit_cap, greatest(t.limit_floor,
				 t.limit_base + CASE WHEN lm.value IS NOT NULL
									 THEN t.limit_multiplier * lm.value ELSE 0 END))
				 / t.limit_round) * t.limit_round,
		   t.term_days, t.auto_apply, s.reasons, s.points, s.metric_values, rules.fired
	  FROM s
	  JOIN g band ON s.score >= band.min_score
				 AND (band.next_min IS NULL OR s.score < band.next_min)
	  LEFT JOIN rules ON rules.customer_key = s.customer_key
	  JOIN g t ON t.rank = greatest(1, band.rank - coalesce(rules.steps, 0))
	  LEFT JOIN mv lm ON lm.customer_key = s.customer_key AND lm.metric = t.limit_metric;
END;
$$;

CREATE FUNCTION bench.ref_rescore(as_of date)
RETURNS TABLE (scored bigint, grade_changes bigint, limits_applied bigint,
			   limit_requests bigint)
LANGUAGE plpgsql
AS $$
DECLARE
	sc credit.scorecards;
BEGIN
	PERFORM pg_advisory_xact_lock(7165901439040225284);
	SELECT * INTO STRICT sc FROM credit.scorecards s WHERE s.state = 'active';
	IF sc.hysteresis_points <> 0 OR sc.confirm_days <> 0 THEN
		RAISE EXCEPTION 'the reference implements neither hysteresis_points nor confirm_days';
	END IF;

	RETURN QUERY
	WITH s AS MATERIALIZED (
		SELECT x.*, cg.grade AS previous_grade,
			   a.credit_limit AS current_limit, a.payment_term_days AS current_term,
			   CASE WHEN (x.recommended_limit <> a.credit_limit
						  AND abs(x.recommended_limit - a.credit_limit) >= sc.limit_min_change)
						 OR x.recommended_term <> a.payment_term_days
					THEN CASE WHEN x.auto_apply = 'always'
								   OR (x.auto_apply = 'decrease'
									   AND x.recommended_limit <= a.credit_limit
									   AND x.recommended_term <= a.payment_term_days)
							  THEN 'apply' ELSE 'request' END
			   END AS limit_action
		  FROM bench.ref_score(as_of, sc.scorecard_id) x
		  JOIN bench.account_terms a ON a.customer_key = x.customer_key
		  LEFT JOIN bench.customer_grades cg ON cg.customer_key = x.customer_key
	), history AS (
		INSERT INTO bench.score_history AS h
			   (scorecard_id, as_of, customer_key, score, computed_grade, grade,
				recommended_limit, recommended_term, reasons, points, metric_values)
		SELECT sc.scorecard_id, as_of, s.customer_key, s.score, s.grade, s.grade,
			   s.recommended_limit, s.recommended_term, s.reasons, s.points, s.metric_values
		  FROM s
		ON CONFLICT ON CONSTRAINT score_history_pkey DO UPDATE
		   SET score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade = EXCLUDED.grade, recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   points = EXCLUDED.points, metric_values = EXCLUDED.metric_values,
			   scored_at = now()
		RETURNING 1
	), current AS (
		INSERT INTO bench.customer_grades AS g
			   (customer_key, scorecard_id, grade, score, computed_grade, grade_since,
				pending_grade, pending_since, recommended_limit, recommended_term,
				reasons, scored_on)
		SELECT s.customer_key, sc.scorecard_id, s.grade, s.score, s.grade, as_of,
			   NULL, NULL, s.recommended_limit, s.recommended_term, s.reasons, as_of
		  FROM s
		ON CONFLICT (customer_key) DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, grade = EXCLUDED.grade,
			   score = EXCLUDED.score, computed_grade = EXCLUDED.computed_grade,
			   grade_since = CASE WHEN g.grade = EXCLUDED.grade
								  THEN g.grade_since ELSE EXCLUDED.grade_since END,
			   pending_grade = NULL, pending_since = NULL,
			   recommended_limit = EXCLUDED.recommended_limit,
			   recommended_term = EXCLUDED.recommended_term, reasons = EXCLUDED.reasons,
			   scored_on = EXCLUDED.scored_on, scored_at = now()
		RETURNING 1
	), changes AS (
		INSERT INTO bench.grade_changes (customer_key, scorecard_id, as_of, old_grade,
										 new_grade, score, why, reasons)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.previous_grade, s.grade, s.score,
			   format('score %s in band %s', s.score, s.band_grade) || coalesce(s.fired, '')
			   || CASE WHEN s.previous_grade IS NULL THEN '; first grading' ELSE '' END,
			   s.reasons
		  FROM s WHERE s.previous_grade IS DISTINCT FROM s.grade
		RETURNING 1
	), applied AS (
		UPDATE bench.account_terms a
		   SET credit_limit = s.recommended_limit, payment_term_days = s.recommended_term
		  FROM s
		 WHERE s.limit_action = 'apply' AND a.customer_key = s.customer_key
		RETURNING a.customer_key
	), closed AS (
		UPDATE bench.limit_requests r
		   SET state = 'superseded', updated_at = now(), decided_at = now()
		  FROM s
		 WHERE r.state = 'open' AND r.customer_key = s.customer_key
		   AND s.limit_action IS DISTINCT FROM 'request'
		RETURNING 1
	), requests AS (
		INSERT INTO bench.limit_requests AS r
			   (customer_key, scorecard_id, as_of, grade, score, current_limit,
				proposed_limit, current_term, proposed_term, state, reasons, decided_at)
		SELECT s.customer_key, sc.scorecard_id, as_of, s.grade, s.score,
			   s.current_limit, s.recommended_limit, s.current_term, s.recommended_term,
			   CASE s.limit_action WHEN 'apply' THEN 'applied' ELSE 'open' END,
			   s.reasons,
			   CASE s.limit_action WHEN 'apply' THEN now() END
		  FROM s
		  LEFT JOIN (SELECT o.customer_key, o.grade, o.current_limit, o.proposed_limit,
							o.current_term, o.proposed_term
					   FROM bench.limit_requests o WHERE o.state = 'open') o
			ON o.customer_key = s.customer_key
		 WHERE s.limit_action = 'apply'
			OR (s.limit_action = 'request'
				AND (o.customer_key IS NULL
					 OR (o.grade, o.current_limit, o.proposed_limit,
						 o.current_term, o.proposed_term)
						IS DISTINCT FROM
						(s.grade, s.current_limit, s.recommended_limit,
						 s.current_term, s.recommended_term)))
		ON CONFLICT (customer_key) WHERE state = 'open' DO UPDATE
		   SET scorecard_id = EXCLUDED.scorecard_id, as_of = EXCLUDED.as_of,
			   grade = EXCLUDED.grade, score = EXCLUDED.score,
			   current_limit = EXCLUDED.current_limit, proposed_limit = EXCLUDED.proposed_limit,
			   current_term = EXCLUDED.current_term, proposed_term = EXCLUDED.proposed_term,
			   reasons = EXCLUDED.reasons, updated_at = now()
		RETURNING r.state
	)
	SELECT (SELECT count(*) FROM history),
		   (SELECT count(*) FROM changes),
		   (SELECT count(*) FROM applied),
		   (SELECT count(*) FROM s WHERE s.limit_action = 'request')
	  FROM (SELECT count(*) FROM current) c, (SELECT count(*) FROM closed) d;
END;
$$;
