/*
 * scorecard.sql: pgTAP suite for the scorecard configuration and its life
 * cycle (sql/scorecard.sql, sql/rescore.sql, sql/metrics.sql,
 * sql/profiles.sql).
 *
 * A misconfiguration fails when it is written: every CHECK constraint of
 * scorecards, scorecard_factors, scorecard_bins, scorecard_grades and
 * scorecard_rules, the foreign keys to credit.metrics (23503), and the set
 * checks of the constraint triggers (bins that overlap, leave a gap, do not
 * start unbounded below or end unbounded above, bins on a linear factor;
 * grades that do not start at 0 or lie above the sum of the weights), each
 * refused with its SQLSTATE and message and leaving the tables as they
 * were; so is moving a factor or a grade to another draft when that breaks
 * the version it leaves.  An edit spread over several statements passes
 * with SET CONSTRAINTS ... DEFERRED and is checked when the constraints are
 * set IMMEDIATE again (what COMMIT does); copying a version in the middle of
 * such an edit leaves the edit, and the caller's deferred mode, alone.
 *
 * Life cycle: a version is created as a draft; an incomplete draft is not
 * activated (23514); activation of an unknown (42704) or non-draft (55000)
 * version is refused; one version is active; retiring; every change of an
 * active or retired version (each child table, the settings, DELETE,
 * TRUNCATE) is refused with 55000; a draft is deleted with its children;
 * credit.new_scorecard_version copies a version exactly.
 *
 * The functions' error paths (rescore, score, score_all,
 * compare_scorecards), the guards on credit.metrics and
 * credit.metric_values, the checks of credit.profiles, and the functions'
 * pinned search_path and volatility.
 *
 * One transaction, rolled back: scorecard ids come from a sequence created
 * in it, but every message naming an id is built from the id looked up.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION credit;

SELECT plan(214);

/* the id of a scorecard version */
CREATE FUNCTION pg_temp.sc(n text, v integer DEFAULT 1) RETURNS bigint
LANGUAGE sql AS $$ SELECT scorecard_id FROM credit.scorecards WHERE name = n AND version = v $$;

/* a version's configuration, without its id, as comparable rows */
CREATE FUNCTION pg_temp.factor_rows(n text, v integer) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', factor, position, metric, weight, method, intercept, slope,
					 missing_points, reason_code, reason_text)
	  FROM credit.scorecard_factors WHERE scorecard_id = pg_temp.sc(n, v)
$$;
CREATE FUNCTION pg_temp.bin_rows(n text, v integer) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', factor, coalesce(lower_bound::text, '-'), coalesce(upper_bound::text, '-'), points)
	  FROM credit.scorecard_bins WHERE scorecard_id = pg_temp.sc(n, v)
$$;
CREATE FUNCTION pg_temp.grade_rows(n text, v integer) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', grade, min_score, limit_base, coalesce(limit_metric, '-'), limit_multiplier,
					 limit_floor, limit_cap, limit_round, term_days, auto_apply)
	  FROM credit.scorecard_grades WHERE scorecard_id = pg_temp.sc(n, v)
$$;
CREATE FUNCTION pg_temp.rule_rows(n text, v integer) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT concat_ws('|', rule_no, metric, operator, threshold, downgrade_steps, description)
	  FROM credit.scorecard_rules WHERE scorecard_id = pg_temp.sc(n, v)
$$;
CREATE FUNCTION pg_temp.settings(n text, v integer) RETURNS text
LANGUAGE sql AS $$
	SELECT concat_ws('|', description, window_months, overdue_months, hysteresis_points,
					 confirm_days, limit_min_change)
	  FROM credit.scorecards WHERE scorecard_id = pg_temp.sc(n, v)
$$;

/* each table as one text, to check a refused statement left it as it was */
CREATE FUNCTION pg_temp.snapshot(tbl text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
	EXECUTE format('SELECT string_agg(t::text, E''\n'' ORDER BY t::text) FROM credit.%I t', tbl) INTO s;
	RETURN coalesce(s, '');
END $$;
CREATE TEMP TABLE saved (tbl text PRIMARY KEY, snap text);
CREATE FUNCTION pg_temp.save() RETURNS void
LANGUAGE sql AS $$
	DELETE FROM saved;
	INSERT INTO saved SELECT t, pg_temp.snapshot(t)
	  FROM unnest('{scorecards,scorecard_factors,scorecard_bins,scorecard_grades,scorecard_rules}'::text[]) t;
$$;
CREATE FUNCTION pg_temp.unchanged(tbl text) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_temp.snapshot(tbl) = (SELECT snap FROM saved WHERE saved.tbl = unchanged.tbl) $$;

/* ---------------------------------------------------------------------
 * Fixture: draft "retail" 1, complete; draft "other" 1, empty
 *   pay     avg_days_to_pay, weight 60, bins (-,30) 100, [30,60) 50, [60,-) 0
 *   bureau  bureau_score (a user metric), weight 40, linear 0 + 0.1 x value
 *   grades  D 0, C 40, B 60, A 80; rule 1: current_days_overdue > 30
 * ------------------------------------------------------------------- */

INSERT INTO credit.metrics (metric, description) VALUES ('bureau_score', 'External bureau score');
INSERT INTO credit.accounts (customer_key, credit_limit, created_at)
VALUES ('C1', 1000, '2020-01-01 00:00+00');

INSERT INTO credit.scorecards (name, description) VALUES ('retail', 'retail customers');
INSERT INTO credit.scorecards (name) VALUES ('other');
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, missing_points, reason_code, reason_text)
VALUES (pg_temp.sc('retail'), 'pay', 1, 'avg_days_to_pay', 60, 'bins', NULL, NULL, 0, 'P1', 'slow payer'),
	   (pg_temp.sc('retail'), 'bureau', 2, 'bureau_score', 40, 'linear', 0, 0.1, 20, 'B1', NULL);
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
VALUES (pg_temp.sc('retail'), 'pay', NULL, 30, 100), (pg_temp.sc('retail'), 'pay', 30, 60, 50),
	   (pg_temp.sc('retail'), 'pay', 60, NULL, 0);
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
VALUES (pg_temp.sc('retail'), 'D', 0, 0, 0), (pg_temp.sc('retail'), 'C', 40, 1000, 15),
	   (pg_temp.sc('retail'), 'B', 60, 5000, 30);
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_metric, limit_multiplier,
									 limit_floor, limit_cap, limit_round, term_days, auto_apply)
VALUES (pg_temp.sc('retail'), 'A', 80, 'avg_monthly_sales', 2, 5000, 100000, 1000, 45, 'decrease');
INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold,
									downgrade_steps, description)
VALUES (pg_temp.sc('retail'), 1, 'current_days_overdue', '>', 30, 1, 'anything over 30 days overdue');
SELECT pg_temp.save();

/* ---------------------------------------------------------------------
 * scorecards: row checks
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.scorecards SET window_months = 0 WHERE name = 'retail'$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_window_check"',
				 'window_months 0 is refused');
SELECT throws_ok($$UPDATE credit.scorecards SET overdue_months = 121 WHERE name = 'retail'$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_window_check"',
				 'overdue_months 121 is refused');
SELECT throws_ok($$INSERT INTO credit.scorecards (name, window_months) VALUES ('x', 121)$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_window_check"',
				 'a new version with window_months 121 is refused');
SELECT throws_ok($$UPDATE credit.scorecards SET hysteresis_points = -1 WHERE name = 'retail'$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_hysteresis_check"',
				 'negative hysteresis_points are refused');
SELECT throws_ok($$UPDATE credit.scorecards SET confirm_days = -1 WHERE name = 'retail'$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_hysteresis_check"',
				 'negative confirm_days are refused');
SELECT throws_ok($$UPDATE credit.scorecards SET limit_min_change = -1 WHERE name = 'retail'$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_limit_min_change_check"',
				 'a negative limit_min_change is refused');
SELECT throws_ok($$INSERT INTO credit.scorecards (name, version) VALUES ('x', 0)$$, '23514',
				 'new row for relation "scorecards" violates check constraint "scorecards_version_check"',
				 'version 0 is refused');
SELECT throws_ok($$INSERT INTO credit.scorecards (name, version) VALUES ('retail', 1)$$, '23505',
				 'duplicate key value violates unique constraint "scorecards_name_version"',
				 'a second "retail" version 1 is refused');
SELECT ok(pg_temp.unchanged('scorecards'), 'scorecards unchanged by the refused statements');

/* ---------------------------------------------------------------------
 * scorecard_factors: row checks, the metric, the grades' reach
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.scorecard_factors SET weight = 0 WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_weight_check"',
				 'weight 0 is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, reason_code)
						   VALUES (%s, 'x', 9, 'utilization', -5, 'X')$$, pg_temp.sc('retail')), '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_weight_check"',
				 'a negative weight is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET weight = 1001 WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_weight_check"',
				 'weight 1001 is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET missing_points = 101 WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_missing_points_check"',
				 'missing_points above 100 are refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET missing_points = -1 WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_missing_points_check"',
				 'negative missing_points are refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method, slope, reason_code)
						   VALUES (%s, 'x', 9, 'utilization', 10, 'linear', 1, 'X')$$, pg_temp.sc('other')), '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_linear_check"',
				 'a linear factor without an intercept is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET slope = NULL WHERE factor = 'bureau'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_linear_check"',
				 'a linear factor without a slope is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET intercept = 0, slope = 1 WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_linear_check"',
				 'a bins factor with an intercept and a slope is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET method = 'steps' WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_method_check"',
				 'an unknown method is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET reason_code = '' WHERE factor = 'pay'$$, '23514',
				 'new row for relation "scorecard_factors" violates check constraint "scorecard_factors_reason_code_check"',
				 'an empty reason code is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET metric = 'no_such_metric' WHERE factor = 'pay'$$, '23503',
				 'insert or update on table "scorecard_factors" violates foreign key constraint "scorecard_factors_metric_fkey"',
				 'a factor on an unknown metric is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET position = 1 WHERE factor = 'bureau'$$, '23505',
				 'duplicate key value violates unique constraint "scorecard_factors_position"',
				 'two factors in one position are refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET weight = 30 WHERE factor = 'pay'$$, '23514',
				 format('grade starting at 80 of scorecard %s can never be reached', pg_temp.sc('retail')),
				 'lowering a weight so that the top grade is out of reach is refused');
SELECT throws_ok($$DELETE FROM credit.scorecard_factors WHERE factor = 'bureau'$$, '23514',
				 format('grade starting at 80 of scorecard %s can never be reached', pg_temp.sc('retail')),
				 'deleting a factor so that the top grade is out of reach is refused');
SELECT throws_ok($$UPDATE credit.scorecard_factors SET method = 'linear', intercept = 0, slope = 1 WHERE factor = 'pay'$$,
				 '23514', format('factor "pay" of scorecard %s is linear and cannot have bins', pg_temp.sc('retail')),
				 'making a factor with bins linear is refused');
SELECT throws_ok(format($$UPDATE credit.scorecard_factors SET scorecard_id = %s WHERE factor = 'pay'$$,
						pg_temp.sc('other')), '23514',
				 format('grade starting at 80 of scorecard %s can never be reached', pg_temp.sc('retail')),
				 'moving a factor to another draft so that the top grade of its own is out of reach is refused');
/* puts the factor back should the move have been accepted (a no-op when it was refused) */
UPDATE credit.scorecard_factors SET scorecard_id = pg_temp.sc('retail') WHERE scorecard_id = pg_temp.sc('other');
SELECT ok(pg_temp.unchanged('scorecard_factors'), 'scorecard_factors unchanged by the refused statements');
SELECT ok(pg_temp.unchanged('scorecard_bins'), 'scorecard_bins unchanged too');

/* ---------------------------------------------------------------------
 * scorecard_bins: row checks and the bins of a factor as a set
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.scorecard_bins SET points = 101 WHERE lower_bound = 30$$, '23514',
				 'new row for relation "scorecard_bins" violates check constraint "scorecard_bins_points_check"',
				 'points above 100 are refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET points = -1 WHERE lower_bound = 30$$, '23514',
				 'new row for relation "scorecard_bins" violates check constraint "scorecard_bins_points_check"',
				 'negative points are refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = 30 WHERE lower_bound = 30$$, '23514',
				 'new row for relation "scorecard_bins" violates check constraint "scorecard_bins_range_check"',
				 'a bin with lower = upper (empty) is refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = 20 WHERE lower_bound = 30$$, '23514',
				 'new row for relation "scorecard_bins" violates check constraint "scorecard_bins_range_check"',
				 'a bin with lower > upper is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_bins VALUES (%s, 'pay', 40, 70, 10)$$, pg_temp.sc('retail')),
				 '23514', format('bins of factor "pay" of scorecard %s overlap at 40', pg_temp.sc('retail')),
				 'a bin overlapping two others is refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = 70 WHERE lower_bound = 30$$, '23514',
				 format('bins of factor "pay" of scorecard %s overlap at 60', pg_temp.sc('retail')),
				 'a bin stretched over the next one is refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = NULL WHERE lower_bound IS NULL$$, '23514',
				 format('bins of factor "pay" of scorecard %s overlap at 30', pg_temp.sc('retail')),
				 'a first bin covering every value, next to others, is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_bins VALUES (%s, 'pay', NULL, 10, 10)$$, pg_temp.sc('retail')),
				 '23505', 'duplicate key value violates unique constraint "scorecard_bins_lower"',
				 'two bins unbounded below are refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = 50 WHERE lower_bound = 30$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave a gap from 50 to 60', pg_temp.sc('retail')),
				 'a gap between two bins is refused');
SELECT throws_ok($$DELETE FROM credit.scorecard_bins WHERE lower_bound = 30$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave a gap from 30 to 60', pg_temp.sc('retail')),
				 'deleting a middle bin (a gap) is refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET lower_bound = 0 WHERE lower_bound IS NULL$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave values below 0 uncovered', pg_temp.sc('retail')),
				 'a first bin with a lower bound is refused');
SELECT throws_ok($$DELETE FROM credit.scorecard_bins WHERE lower_bound IS NULL$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave values below 30 uncovered', pg_temp.sc('retail')),
				 'deleting the first bin is refused');
SELECT throws_ok($$UPDATE credit.scorecard_bins SET upper_bound = 1000 WHERE lower_bound = 60$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave values from 1000 up uncovered', pg_temp.sc('retail')),
				 'a last bin with an upper bound is refused');
SELECT throws_ok($$DELETE FROM credit.scorecard_bins WHERE lower_bound = 60$$, '23514',
				 format('bins of factor "pay" of scorecard %s leave values from 60 up uncovered', pg_temp.sc('retail')),
				 'deleting the last bin is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_bins VALUES (%s, 'bureau', NULL, NULL, 50)$$, pg_temp.sc('retail')),
				 '23514', format('factor "bureau" of scorecard %s is linear and cannot have bins', pg_temp.sc('retail')),
				 'bins on a linear factor are refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_bins VALUES (%s, 'nope', NULL, NULL, 50)$$, pg_temp.sc('retail')),
				 '23503', 'insert or update on table "scorecard_bins" violates foreign key constraint "scorecard_bins_scorecard_id_factor_fkey"',
				 'bins of an unknown factor are refused');
SELECT lives_ok($$UPDATE credit.scorecard_bins
					 SET upper_bound = CASE WHEN lower_bound IS NULL THEN 25 ELSE upper_bound END,
						 lower_bound = CASE WHEN lower_bound = 30 THEN 25 ELSE lower_bound END
				   WHERE factor = 'pay' AND (lower_bound IS NULL OR lower_bound = 30)$$,
				'moving the edge between two bins in one statement is accepted (checked at its end)');
SELECT lives_ok($$UPDATE credit.scorecard_bins
					 SET upper_bound = CASE WHEN lower_bound IS NULL THEN 30 ELSE upper_bound END,
						 lower_bound = CASE WHEN lower_bound = 25 THEN 30 ELSE lower_bound END
				   WHERE factor = 'pay' AND (lower_bound IS NULL OR lower_bound = 25)$$,
				'and back');
SELECT ok(pg_temp.unchanged('scorecard_bins'), 'scorecard_bins as they were');

/* ---------------------------------------------------------------------
 * scorecard_grades: row checks and the grades as a set
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.scorecard_grades SET min_score = 10 WHERE grade = 'D'$$, '23514',
				 format('grades of scorecard %s leave scores below 10 ungraded', pg_temp.sc('retail')),
				 'grades not starting at 0 are refused');
SELECT throws_ok($$DELETE FROM credit.scorecard_grades WHERE grade = 'D'$$, '23514',
				 format('grades of scorecard %s leave scores below 40 ungraded', pg_temp.sc('retail')),
				 'deleting the grade at 0 is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
						   VALUES (%s, 'AA', 100.01, 0, 0)$$, pg_temp.sc('retail')), '23514',
				 format('grade starting at 100.01 of scorecard %s can never be reached', pg_temp.sc('retail')),
				 'a grade above the sum of the weights (100) is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET min_score = -1 WHERE grade = 'D'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_min_score_check"',
				 'a negative min_score is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_cap = 4999 WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_limit_check"',
				 'limit_cap below limit_floor is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_floor = -1 WHERE grade = 'C'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_limit_check"',
				 'a negative limit_floor is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_round = 0 WHERE grade = 'C'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_limit_check"',
				 'limit_round 0 is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_cap = 1e15 WHERE grade = 'C'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_limit_check"',
				 'limit_cap of 1e15 is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_multiplier = 3 WHERE grade = 'C'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_multiplier_check"',
				 'a limit multiplier without a metric is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_metric = NULL WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_multiplier_check"',
				 'removing the metric of a multiplier is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET limit_metric = 'no_such_metric' WHERE grade = 'A'$$, '23503',
				 'insert or update on table "scorecard_grades" violates foreign key constraint "scorecard_grades_limit_metric_fkey"',
				 'a limit on an unknown metric is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET auto_apply = 'sometimes' WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_auto_apply_check"',
				 'an unknown auto_apply is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET term_days = 3651 WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_term_check"',
				 'term_days above 3650 are refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET term_days = -1 WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_term_check"',
				 'negative term_days are refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET grade = '' WHERE grade = 'A'$$, '23514',
				 'new row for relation "scorecard_grades" violates check constraint "scorecard_grades_grade_check"',
				 'an empty grade name is refused');
SELECT throws_ok($$UPDATE credit.scorecard_grades SET min_score = 60 WHERE grade = 'A'$$, '23505',
				 'duplicate key value violates unique constraint "scorecard_grades_min_score"',
				 'two grades starting at the same score are refused');
SELECT throws_ok(format($$UPDATE credit.scorecard_grades SET scorecard_id = %s WHERE grade = 'D'$$, pg_temp.sc('other')),
				 '23514', format('grades of scorecard %s leave scores below 40 ungraded', pg_temp.sc('retail')),
				 'moving the grade at 0 to another draft is refused');
/* puts the grade back should the move have been accepted (a no-op when it was refused) */
UPDATE credit.scorecard_grades SET scorecard_id = pg_temp.sc('retail') WHERE scorecard_id = pg_temp.sc('other');
SELECT ok(pg_temp.unchanged('scorecard_grades'), 'scorecard_grades unchanged by the refused statements');
SELECT lives_ok(format($$INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
						  VALUES (%s, 'AA', 100, 0, 0)$$, pg_temp.sc('retail')),
				'a grade at exactly the sum of the weights is accepted');
DELETE FROM credit.scorecard_grades WHERE grade = 'AA';

/* ---------------------------------------------------------------------
 * scorecard_rules
 * ------------------------------------------------------------------- */

SELECT throws_ok($$UPDATE credit.scorecard_rules SET operator = '=' WHERE rule_no = 1$$, '23514',
				 'new row for relation "scorecard_rules" violates check constraint "scorecard_rules_operator_check"',
				 'rule operator = is refused');
SELECT throws_ok(format($$INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold)
						   VALUES (%s, 2, 'utilization', '=>', 1)$$, pg_temp.sc('retail')), '23514',
				 'new row for relation "scorecard_rules" violates check constraint "scorecard_rules_operator_check"',
				 'rule operator => is refused');
SELECT throws_ok($$UPDATE credit.scorecard_rules SET downgrade_steps = 0 WHERE rule_no = 1$$, '23514',
				 'new row for relation "scorecard_rules" violates check constraint "scorecard_rules_steps_check"',
				 'downgrade_steps 0 are refused');
SELECT throws_ok($$UPDATE credit.scorecard_rules SET downgrade_steps = 101 WHERE rule_no = 1$$, '23514',
				 'new row for relation "scorecard_rules" violates check constraint "scorecard_rules_steps_check"',
				 'downgrade_steps 101 are refused');
SELECT throws_ok($$UPDATE credit.scorecard_rules SET metric = 'no_such_metric' WHERE rule_no = 1$$, '23503',
				 'insert or update on table "scorecard_rules" violates foreign key constraint "scorecard_rules_metric_fkey"',
				 'a rule on an unknown metric is refused');
SELECT ok(pg_temp.unchanged('scorecard_rules'), 'scorecard_rules unchanged by the refused statements');

/* ---------------------------------------------------------------------
 * An edit over several statements: deferred, checked when set IMMEDIATE
 * (as COMMIT would)
 * ------------------------------------------------------------------- */

SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_bins_valid DEFERRED$$, 'the bins check can be deferred');
SELECT lives_ok($$UPDATE credit.scorecard_bins SET upper_bound = 20 WHERE factor = 'pay' AND lower_bound IS NULL$$,
				'deferred: a gap from 20 to 30 is accepted for now');
SELECT lives_ok($$UPDATE credit.scorecard_bins SET lower_bound = 20 WHERE factor = 'pay' AND lower_bound = 30$$,
				'deferred: the next bin now starts at 20');
SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_bins_valid IMMEDIATE$$, 'the whole edit passes its check');
SELECT results_eq($$SELECT * FROM pg_temp.bin_rows('retail', 1) b ORDER BY 1$$,
				  $$VALUES ('pay|-|20|100'), ('pay|20|60|50'), ('pay|60|-|0')$$,
				  'the bins are the edited ones');

SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_bins_valid DEFERRED$$, 'deferred again');
SELECT lives_ok($$UPDATE credit.scorecard_bins SET upper_bound = 30 WHERE factor = 'pay' AND lower_bound IS NULL$$,
				'deferred: an overlap from 20 to 30 is accepted for now');
SELECT throws_ok($$SET CONSTRAINTS credit.scorecard_bins_valid IMMEDIATE$$, '23514',
				 format('bins of factor "pay" of scorecard %s overlap at 20', pg_temp.sc('retail')),
				 'the deferred check refuses the overlap');
SELECT lives_ok($$UPDATE credit.scorecard_bins SET lower_bound = 30 WHERE factor = 'pay' AND lower_bound = 20$$,
				'deferred: the overlap removed');
SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_bins_valid IMMEDIATE$$, 'the repaired edit passes');
SELECT ok(pg_temp.unchanged('scorecard_bins'), 'the bins are back as they were');

SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_factors_valid, credit.scorecard_grades_valid DEFERRED$$,
				'the factors and grades checks can be deferred');
SELECT lives_ok($$UPDATE credit.scorecard_factors SET weight = 30 WHERE factor = 'pay'$$,
				'deferred: weights adding up to 70 under a grade at 80');
SELECT lives_ok($$UPDATE credit.scorecard_factors SET weight = 70 WHERE factor = 'bureau'$$,
				'deferred: weights adding up to 100 again');
SELECT lives_ok($$DELETE FROM credit.scorecard_grades WHERE grade = 'D'$$, 'deferred: the grade at 0 deleted');
SELECT lives_ok(format($$INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
						  VALUES (%s, 'D', 0, 0, 0)$$, pg_temp.sc('retail')), 'deferred: and inserted again');
SELECT lives_ok($$SET CONSTRAINTS credit.scorecard_factors_valid, credit.scorecard_grades_valid IMMEDIATE$$,
				'the edit of weights and grades passes its check');
SELECT lives_ok($$SET CONSTRAINTS ALL DEFERRED$$, 'all deferred');
SELECT lives_ok($$UPDATE credit.scorecard_grades SET min_score = 1 WHERE grade = 'D'$$,
				'deferred: grades starting at 1');
SELECT throws_ok($$SET CONSTRAINTS ALL IMMEDIATE$$, '23514',
				 format('grades of scorecard %s leave scores below 1 ungraded', pg_temp.sc('retail')),
				 'the deferred check refuses grades not starting at 0');
SELECT lives_ok(format($$SELECT credit.new_scorecard_version(%s)$$, pg_temp.sc('other')),
				'copying another version in the middle of a deferred edit leaves the edit pending (not checked yet)');
SELECT lives_ok($$UPDATE credit.scorecard_grades SET min_score = 0 WHERE grade = 'D'$$, 'deferred: repaired');
DELETE FROM credit.scorecards WHERE name = 'other' AND version = 2;
SELECT lives_ok(format($$SELECT credit.new_scorecard_version(%s)$$, pg_temp.sc('other')),
				'copying a version during a valid deferred edit');
DELETE FROM credit.scorecards WHERE name = 'other' AND version = 2;
SELECT lives_ok($$UPDATE credit.scorecard_bins SET upper_bound = 20 WHERE factor = 'pay' AND lower_bound IS NULL$$,
				'after the copy a gap is still accepted for now: the deferred mode is the caller''s');
UPDATE credit.scorecard_bins SET upper_bound = 30 WHERE factor = 'pay' AND lower_bound IS NULL;
SELECT lives_ok($$SET CONSTRAINTS ALL IMMEDIATE$$, 'the repaired edit passes');
UPDATE credit.scorecard_factors SET weight = CASE factor WHEN 'pay' THEN 60 ELSE 40 END
 WHERE scorecard_id = pg_temp.sc('retail');
SELECT ok(pg_temp.unchanged('scorecard_factors') AND pg_temp.unchanged('scorecard_grades'),
		  'factors and grades back as they were');

/* ---------------------------------------------------------------------
 * Life cycle: creation, activation of incomplete drafts
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.scorecards (name, version, state) VALUES ('retail', 9, 'active')$$, '55000',
				 'scorecard "retail" version 9 must be created as a draft',
				 'a version cannot be created active');
SELECT throws_ok($$INSERT INTO credit.scorecards (name, version, state) VALUES ('retail', 9, 'retired')$$, '55000',
				 'scorecard "retail" version 9 must be created as a draft',
				 'nor retired');
SELECT throws_ok($$UPDATE credit.scorecards SET state = 'retired' WHERE name = 'retail'$$, '55000',
				 'scorecard "retail" version 1 is draft and cannot be changed',
				 'a draft cannot be retired');

/* no active scorecard yet */
SELECT throws_ok($$SELECT * FROM credit.rescore('2026-06-30')$$, '55000', 'there is no active scorecard',
				 'rescore without an active scorecard is refused');
SELECT throws_ok($$SELECT * FROM credit.score('C1', NULL, '2026-06-30')$$, '55000', 'there is no active scorecard',
				 'score without an active scorecard is refused');
SELECT throws_ok(format($$SELECT * FROM credit.compare_scorecards(%s, NULL, '2026-06-30')$$, pg_temp.sc('retail')),
				 '55000', 'there is no active scorecard to compare with',
				 'compare_scorecards without an active scorecard (and no base) is refused');
SELECT throws_ok(format($$SELECT * FROM credit.rescore('2026-06-30', %s)$$, pg_temp.sc('retail')), '55000',
				 'scorecard "retail" version 1 is a draft', 'rescore with a draft is refused');

INSERT INTO credit.scorecards (name) VALUES ('nofactors'), ('nobins'), ('nogrades');
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, reason_code)
VALUES (pg_temp.sc('nobins'), 'pay', 1, 'avg_days_to_pay', 10, 'P');
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
VALUES (pg_temp.sc('nobins'), 'D', 0, 0, 0), (pg_temp.sc('nofactors'), 'D', 0, 0, 0);
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  intercept, slope, reason_code)
VALUES (pg_temp.sc('nogrades'), 'cap', 1, 'registered_capital', 10, 'linear', 0, 0.0001, 'K');
SELECT pg_temp.save();

SELECT throws_ok(format('SELECT credit.activate_scorecard(%s)', pg_temp.sc('nofactors')), '23514',
				 format('scorecard %s has no factors', pg_temp.sc('nofactors')),
				 'a draft without factors is not activated');
SELECT throws_ok(format('SELECT credit.activate_scorecard(%s)', pg_temp.sc('nobins')), '23514',
				 format('factors of scorecard %s have no bins: pay', pg_temp.sc('nobins')),
				 'a draft with a bins factor without bins is not activated');
SELECT throws_ok(format('SELECT credit.activate_scorecard(%s)', pg_temp.sc('nogrades')), '23514',
				 format('scorecard %s has no grades', pg_temp.sc('nogrades')),
				 'a draft without grades is not activated');
SELECT throws_ok($$UPDATE credit.scorecards SET state = 'active' WHERE name = 'nobins'$$, '23514',
				 format('factors of scorecard %s have no bins: pay', pg_temp.sc('nobins')),
				 'nor by an UPDATE of its state');
SELECT ok(pg_temp.unchanged('scorecards'), 'the incomplete drafts are still drafts');
SELECT throws_ok('SELECT credit.activate_scorecard(999999)', '42704', 'scorecard 999999 does not exist',
				 'activating an unknown scorecard is refused');

/* ---------------------------------------------------------------------
 * Activation, one active version, new versions, retirement
 * ------------------------------------------------------------------- */

SELECT is(credit.activate_scorecard(pg_temp.sc('retail')), NULL::bigint,
		  'activating the first version retires nothing');
SELECT is((SELECT state || '/' || (activated_at IS NOT NULL) || '/' || (retired_at IS NULL)
			 FROM credit.scorecards WHERE scorecard_id = pg_temp.sc('retail')), 'active/true/true',
		  'retail 1 is active, with its activation time');
SELECT throws_ok(format('SELECT credit.activate_scorecard(%s)', pg_temp.sc('retail')), '55000',
				 'scorecard "retail" version 1 is active already', 'activating it again is refused');

SELECT is(credit.new_scorecard_version(pg_temp.sc('retail')), pg_temp.sc('retail', 2),
		  'new_scorecard_version returns the id of the new version');
SELECT is((SELECT state FROM credit.scorecards WHERE scorecard_id = pg_temp.sc('retail', 2)), 'draft',
		  'retail 2 (version + 1) is a draft');
SELECT is(pg_temp.settings('retail', 2), pg_temp.settings('retail', 1), 'its settings are copied');
SELECT set_eq($$SELECT * FROM pg_temp.factor_rows('retail', 2)$$, $$SELECT * FROM pg_temp.factor_rows('retail', 1)$$,
			  'its factors are identical');
SELECT set_eq($$SELECT * FROM pg_temp.bin_rows('retail', 2)$$, $$SELECT * FROM pg_temp.bin_rows('retail', 1)$$,
			  'its bins are identical');
SELECT set_eq($$SELECT * FROM pg_temp.grade_rows('retail', 2)$$, $$SELECT * FROM pg_temp.grade_rows('retail', 1)$$,
			  'its grades are identical');
SELECT set_eq($$SELECT * FROM pg_temp.rule_rows('retail', 2)$$, $$SELECT * FROM pg_temp.rule_rows('retail', 1)$$,
			  'its rules are identical');
SELECT is((SELECT count(*) FROM pg_temp.factor_rows('retail', 2)) + (SELECT count(*) FROM pg_temp.bin_rows('retail', 2))
		  + (SELECT count(*) FROM pg_temp.grade_rows('retail', 2)) + (SELECT count(*) FROM pg_temp.rule_rows('retail', 2)),
		  10::bigint, 'and there are all of them (2 factors, 3 bins, 4 grades, 1 rule)');
SELECT throws_ok($$SELECT credit.new_scorecard_version(999999)$$, '42704', 'scorecard 999999 does not exist',
				 'copying an unknown scorecard is refused');

SELECT throws_ok($$UPDATE credit.scorecards SET state = 'active' WHERE name = 'retail' AND version = 2$$, '23505',
				 'duplicate key value violates unique constraint "scorecards_one_active"',
				 'a second active version is refused');
SELECT is(credit.activate_scorecard(pg_temp.sc('retail', 2)), pg_temp.sc('retail'),
		  'activating retail 2 returns the version it retired');
SELECT is((SELECT string_agg(format('%s:%s', version, state), ',' ORDER BY version)
			 FROM credit.scorecards WHERE name = 'retail'), '1:retired,2:active',
		  'retail 1 retired, retail 2 active');
SELECT is((SELECT count(*) FROM credit.scorecards WHERE state = 'active'), 1::bigint, 'one active version');
SELECT ok((SELECT retired_at IS NOT NULL AND activated_at IS NOT NULL FROM credit.scorecards
			WHERE scorecard_id = pg_temp.sc('retail')), 'retail 1 keeps its activation time and has its retirement time');
SELECT throws_ok(format('SELECT credit.activate_scorecard(%s)', pg_temp.sc('retail')), '55000',
				 'scorecard "retail" version 1 is retired already', 'a retired version is not activated again');
SELECT throws_ok(format('SELECT credit.retire_scorecard(%s)', pg_temp.sc('retail')), '55000',
				 format('scorecard %s is not the active scorecard', pg_temp.sc('retail')),
				 'retiring a retired version is refused');
SELECT throws_ok(format('SELECT credit.retire_scorecard(%s)', pg_temp.sc('nobins')), '55000',
				 format('scorecard %s is not the active scorecard', pg_temp.sc('nobins')),
				 'retiring a draft is refused');

/* ---------------------------------------------------------------------
 * Active (retail 2) and retired (retail 1) versions never change
 * ------------------------------------------------------------------- */

SELECT pg_temp.save();
CREATE FUNCTION pg_temp.frozen(v integer) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	id bigint := pg_temp.sc('retail', v);
	st text := CASE v WHEN 1 THEN 'retired' ELSE 'active' END;
	msg text := format('scorecard "retail" version %s is %s and cannot be changed', v, st);
	what text := format('retail %s (%s): ', v, st);
BEGIN
	RETURN NEXT throws_ok(format('UPDATE credit.scorecard_factors SET weight = weight WHERE scorecard_id = %s', id),
						  '55000', msg, what || 'UPDATE of a factor is refused');
	RETURN NEXT throws_ok(format($q$DELETE FROM credit.scorecard_factors WHERE scorecard_id = %s AND factor = 'bureau'$q$, id),
						  '55000', msg, what || 'DELETE of a factor is refused');
	RETURN NEXT throws_ok(format($q$INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, reason_code)
									 VALUES (%s, 'x', 9, 'utilization', 1, 'X')$q$, id),
						  '55000', msg, what || 'INSERT of a factor is refused');
	RETURN NEXT throws_ok(format('UPDATE credit.scorecard_bins SET points = 99 WHERE scorecard_id = %s', id),
						  '55000', msg, what || 'UPDATE of a bin is refused');
	RETURN NEXT throws_ok(format('DELETE FROM credit.scorecard_bins WHERE scorecard_id = %s', id),
						  '55000', msg, what || 'DELETE of its bins is refused');
	RETURN NEXT throws_ok(format($q$INSERT INTO credit.scorecard_bins VALUES (%s, 'pay', 1000, NULL, 0)$q$, id),
						  '55000', msg, what || 'INSERT of a bin is refused');
	RETURN NEXT throws_ok(format($q$UPDATE credit.scorecard_grades SET term_days = 60 WHERE scorecard_id = %s AND grade = 'A'$q$, id),
						  '55000', msg, what || 'UPDATE of a grade is refused');
	RETURN NEXT throws_ok(format($q$DELETE FROM credit.scorecard_grades WHERE scorecard_id = %s AND grade = 'A'$q$, id),
						  '55000', msg, what || 'DELETE of a grade is refused');
	RETURN NEXT throws_ok(format($q$INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
									 VALUES (%s, 'B+', 70, 0, 0)$q$, id),
						  '55000', msg, what || 'INSERT of a grade is refused');
	RETURN NEXT throws_ok(format('UPDATE credit.scorecard_rules SET threshold = 60 WHERE scorecard_id = %s', id),
						  '55000', msg, what || 'UPDATE of a rule is refused');
	RETURN NEXT throws_ok(format('DELETE FROM credit.scorecard_rules WHERE scorecard_id = %s', id),
						  '55000', msg, what || 'DELETE of a rule is refused');
	RETURN NEXT throws_ok(format($q$INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold)
									 VALUES (%s, 2, 'utilization', '>', 1)$q$, id),
						  '55000', msg, what || 'INSERT of a rule is refused');
	RETURN NEXT throws_ok(format('UPDATE credit.scorecards SET window_months = 12 WHERE scorecard_id = %s', id),
						  '55000', format('scorecard "retail" version %s is %s and cannot be changed', v, st),
						  what || 'UPDATE of its settings is refused');
	RETURN NEXT throws_ok(format($q$UPDATE credit.scorecards SET name = 'renamed' WHERE scorecard_id = %s$q$, id),
						  '55000', format('scorecard "retail" version %s is %s and cannot be changed', v, st),
						  what || 'renaming it is refused');
	RETURN NEXT throws_ok(format('DELETE FROM credit.scorecards WHERE scorecard_id = %s', id),
						  '55000', format('scorecard "retail" version %s is %s and cannot be deleted', v, st),
						  what || 'DELETE of the version is refused');
	RETURN NEXT throws_ok(format($q$UPDATE credit.scorecards SET state = 'draft' WHERE scorecard_id = %s$q$, id),
						  '55000', format('scorecard "retail" version %s is %s and cannot be changed', v, st),
						  what || 'it cannot go back to draft');
END $$;
SELECT * FROM pg_temp.frozen(2);
SELECT * FROM pg_temp.frozen(1);
SELECT throws_ok($$UPDATE credit.scorecards SET state = 'active' WHERE name = 'retail' AND version = 1$$, '55000',
				 'scorecard "retail" version 1 is retired and cannot be changed',
				 'a retired version cannot become active again by an UPDATE');
SELECT throws_ok(format($$UPDATE credit.scorecard_factors SET scorecard_id = %s WHERE scorecard_id = %s$$,
						pg_temp.sc('retail', 2), pg_temp.sc('nobins')), '55000',
				 'scorecard "retail" version 2 is active and cannot be changed',
				 'moving a draft''s factor into the active version is refused');
SELECT throws_ok($$UPDATE credit.metrics SET metric = 'bureau_score_v2' WHERE metric = 'bureau_score'$$, '55000', NULL,
				 'renaming a user metric that a used version refers to is refused (the cascade would change it)');
SELECT throws_ok($$TRUNCATE credit.scorecard_bins$$, '55000', 'table "credit.scorecard_bins" cannot be truncated',
				 'TRUNCATE of scorecard_bins is refused');
SELECT throws_ok($$TRUNCATE credit.scorecard_grades$$, '55000', 'table "credit.scorecard_grades" cannot be truncated',
				 'TRUNCATE of scorecard_grades is refused');
SELECT throws_ok($$TRUNCATE credit.scorecard_rules$$, '55000', 'table "credit.scorecard_rules" cannot be truncated',
				 'TRUNCATE of scorecard_rules is refused');
SELECT throws_ok($$TRUNCATE credit.scorecard_factors CASCADE$$, '55000', NULL,
				 'TRUNCATE of scorecard_factors (CASCADE: plain TRUNCATE meets the foreign key) is refused');
SELECT throws_ok($$TRUNCATE credit.scorecards CASCADE$$, '55000', NULL,
				 'TRUNCATE of scorecards (CASCADE) is refused');
SELECT ok(pg_temp.unchanged('scorecards') AND pg_temp.unchanged('scorecard_factors')
		  AND pg_temp.unchanged('scorecard_bins') AND pg_temp.unchanged('scorecard_grades')
		  AND pg_temp.unchanged('scorecard_rules'), 'every scorecard table unchanged');

/* ---------------------------------------------------------------------
 * Drafts are deleted with everything in them; retirement
 * ------------------------------------------------------------------- */

SELECT is(credit.new_scorecard_version(pg_temp.sc('retail', 2)), pg_temp.sc('retail', 3),
		  'a new version of the active one: retail 3');
SELECT lives_ok(format('DELETE FROM credit.scorecards WHERE scorecard_id = %s', pg_temp.sc('retail', 3)),
				'a draft is deleted');
SELECT is((SELECT count(*) FROM credit.scorecard_factors f
			WHERE NOT EXISTS (SELECT 1 FROM credit.scorecards s WHERE s.scorecard_id = f.scorecard_id))
		  + (SELECT count(*) FROM credit.scorecard_bins b
			  WHERE NOT EXISTS (SELECT 1 FROM credit.scorecards s WHERE s.scorecard_id = b.scorecard_id))
		  + (SELECT count(*) FROM credit.scorecard_grades g
			  WHERE NOT EXISTS (SELECT 1 FROM credit.scorecards s WHERE s.scorecard_id = g.scorecard_id))
		  + (SELECT count(*) FROM credit.scorecard_rules r
			  WHERE NOT EXISTS (SELECT 1 FROM credit.scorecards s WHERE s.scorecard_id = r.scorecard_id)),
		  0::bigint, 'with its factors, bins, grades and rules');
SELECT ok(pg_temp.unchanged('scorecard_factors') AND pg_temp.unchanged('scorecard_bins')
		  AND pg_temp.unchanged('scorecard_grades') AND pg_temp.unchanged('scorecard_rules'),
		  'and nothing of the other versions');
SELECT lives_ok(format('SELECT credit.retire_scorecard(%s)', pg_temp.sc('retail', 2)), 'the active version is retired');
SELECT is((SELECT count(*) FROM credit.scorecards WHERE state = 'active'), 0::bigint, 'no version is active');
SELECT throws_ok($$SELECT * FROM credit.rescore('2026-06-30')$$, '55000', 'there is no active scorecard',
				 'rescore after retirement is refused');

/* ---------------------------------------------------------------------
 * Error paths of rescore, score, score_all
 * ------------------------------------------------------------------- */

SELECT throws_ok($$SELECT * FROM credit.rescore(NULL)$$, '22023', 'rescore needs a finite as-of date',
				 'rescore(NULL) is refused');
SELECT throws_ok($$SELECT * FROM credit.rescore('infinity')$$, '22023', 'rescore needs a finite as-of date',
				 'rescore(infinity) is refused');
SELECT throws_ok($$SELECT * FROM credit.rescore('-infinity')$$, '22023', 'rescore needs a finite as-of date',
				 'rescore(-infinity) is refused');
SELECT throws_ok($$SELECT * FROM credit.rescore('2026-06-30', 999999)$$, '42704', 'scorecard 999999 does not exist',
				 'rescore with an unknown scorecard is refused');
SELECT throws_ok($$SELECT * FROM credit.score('nobody', NULL, '2026-06-30')$$, 'CR003',
				 'customer "nobody" has no credit account', 'score of an unknown customer is refused');
SELECT throws_ok($$SELECT * FROM credit.score_all(NULL, NULL)$$, '22004', 'scoring needs an as-of date',
				 'score_all with a NULL as_of is refused');
SELECT throws_ok($$SELECT * FROM credit.score_all(NULL, 'infinity')$$, '22023', 'scoring needs a finite as-of date',
				 'score_all with an infinite as_of is refused');
SELECT throws_ok($$SELECT * FROM credit.score_all(999999, '2026-06-30')$$, '42704', 'scorecard 999999 does not exist',
				 'score_all with an unknown scorecard is refused');
SELECT throws_ok(format($$SELECT * FROM credit.score_all(%s, '2026-06-30')$$, pg_temp.sc('nobins')), '23514',
				 format('factors of scorecard %s have no bins: pay', pg_temp.sc('nobins')),
				 'scoring (what-if) under an incomplete draft is refused');

/* ---------------------------------------------------------------------
 * credit.metrics and credit.metric_values guards
 * ------------------------------------------------------------------- */

SELECT throws_ok($$INSERT INTO credit.metrics (metric, source, description) VALUES ('my_metric', 'builtin', 'x')$$,
				 '55000', 'metric "my_metric" cannot be added as built-in', 'a built-in metric cannot be added');
SELECT throws_ok($$UPDATE credit.metrics SET source = 'builtin' WHERE metric = 'bureau_score'$$,
				 '55000', 'metric "bureau_score" cannot be added as built-in', 'a user metric cannot become built-in');
SELECT throws_ok($$UPDATE credit.metrics SET description = 'x' WHERE metric = 'avg_days_to_pay'$$,
				 '55000', 'built-in metric "avg_days_to_pay" cannot be changed or removed',
				 'a built-in metric cannot be changed');
SELECT throws_ok($$UPDATE credit.metrics SET source = 'user' WHERE metric = 'utilization'$$,
				 '55000', 'built-in metric "utilization" cannot be changed or removed',
				 'a built-in metric cannot become a user metric');
SELECT throws_ok($$DELETE FROM credit.metrics WHERE metric = 'sales_variation'$$,
				 '55000', 'built-in metric "sales_variation" cannot be changed or removed',
				 'a built-in metric cannot be deleted');
SELECT throws_ok($$INSERT INTO credit.metrics (metric, description) VALUES ('Bad-Name', 'x')$$,
				 '23514', 'new row for relation "metrics" violates check constraint "metrics_name_check"',
				 'a metric name that is not an identifier is refused');
SELECT is((SELECT count(*) FROM credit.metrics WHERE source = 'builtin'), 10::bigint, 'the 10 built-in metrics are there');
SELECT throws_ok($$INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
				   VALUES ('C1', 'avg_days_to_pay', '2026-06-30', 5)$$,
				 '55000', 'metric "avg_days_to_pay" is built-in and computed from the ledger',
				 'values of a built-in metric cannot be loaded');
SELECT throws_ok($$INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
				   VALUES ('C1', 'no_such_metric', '2026-06-30', 5)$$,
				 '23503', 'insert or update on table "metric_values" violates foreign key constraint "metric_values_metric_fkey"',
				 'values of an unknown metric are refused');
SELECT lives_ok($$INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
				  VALUES ('C1', 'bureau_score', '2026-06-30', 700)$$, 'values of a user metric are loaded');
SELECT throws_ok($$UPDATE credit.metric_values SET metric = 'utilization' WHERE customer_key = 'C1'$$,
				 '55000', 'metric "utilization" is built-in and computed from the ledger',
				 'a loaded value cannot be moved to a built-in metric');
SELECT throws_ok($$INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
				   VALUES ('C1', 'bureau_score', 'infinity', 5)$$,
				 '23514', 'new row for relation "metric_values" violates check constraint "metric_values_as_of_finite_check"',
				 'a value as of infinity is refused');

/* ---------------------------------------------------------------------
 * credit.profiles
 * ------------------------------------------------------------------- */

SELECT ok(credit.uscc_valid('91350100M000100Y43'), 'uscc_valid: a code with its right check character');
SELECT ok(NOT credit.uscc_valid('91350100M000100Y44'), 'uscc_valid: the same code with a wrong check character');
SELECT ok(NOT credit.uscc_valid('91350100M000100Y4'), 'uscc_valid: 17 characters');
SELECT lives_ok($$INSERT INTO credit.profiles (customer_key, uscc, registered_capital) VALUES ('C1', '91350100M000100Y43', 1000000)$$,
				'a profile with a valid code is stored');
INSERT INTO credit.accounts (customer_key, credit_limit, created_at) VALUES ('C2', 0, '2020-01-01 00:00+00');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, uscc) VALUES ('C2', '91350100M000100Y44')$$,
				 '23514', 'unified social credit code "91350100M000100Y44" has a wrong check character',
				 'a code with a wrong check character is refused');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, uscc) VALUES ('C2', '91350100M000100Y4')$$,
				 '23514', 'unified social credit code "91350100M000100Y4" is not 18 characters long',
				 'a code of 17 characters is refused');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, uscc) VALUES ('C2', '91350100I000100Y43')$$,
				 '23514', 'unified social credit code "91350100I000100Y43" has an invalid character at position 9',
				 'a code with a letter outside the alphabet (I) is refused');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, uscc) VALUES ('C2', '91350100M000100Y43')$$,
				 '23505', 'duplicate key value violates unique constraint "profiles_uscc_key"',
				 'a code already in another profile is refused');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, capital_currency) VALUES ('C2', 'cny')$$,
				 '23514', 'new row for relation "profiles" violates check constraint "profiles_capital_currency_check"',
				 'a currency that is not an ISO code is refused');
SELECT throws_ok($$INSERT INTO credit.profiles (customer_key, registered_capital) VALUES ('C2', -1)$$,
				 '23514', 'new row for relation "profiles" violates check constraint "profiles_registered_capital_check"',
				 'a negative registered capital is refused');
SELECT is((SELECT count(*) FROM credit.profiles), 1::bigint, 'no refused profile was stored');

/* ---------------------------------------------------------------------
 * Function declarations
 * ------------------------------------------------------------------- */

/* search_path of every function: test/pgtap/security.sql */
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'credit.score_all(bigint,date,text,boolean)'::regprocedure),
		  's', 'score_all is STABLE: it reads tables and writes nothing');
SELECT is((SELECT provolatile::text || proisstrict::text || proparallel::text FROM pg_proc
			WHERE oid = 'credit.uscc_valid(text)'::regprocedure),
		  'itrues', 'uscc_valid is IMMUTABLE, STRICT and PARALLEL SAFE (a pure function of its argument)');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'credit.uscc_check(text)'::regprocedure),
		  'i', 'uscc_check (the domain''s check) is IMMUTABLE');
SELECT is((SELECT string_agg(proname || '=' || provolatile::text, ',' ORDER BY proname) FROM pg_proc
			WHERE pronamespace = 'credit'::regnamespace
			  AND proname IN ('customer_metrics', 'score', 'rescore', 'compare_scorecards',
							  'activate_scorecard', 'new_scorecard_version')),
		  'activate_scorecard=v,compare_scorecards=s,customer_metrics=s,new_scorecard_version=v,rescore=v,score=s',
		  'readers are STABLE, writers VOLATILE');

SELECT * FROM finish();
ROLLBACK;
