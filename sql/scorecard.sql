/*
 * scorecard.sql: scorecards as data.  A scorecard version is a row of
 * credit.scorecards; its factors, bins, grades (with each grade's limit and
 * term recommendation) and adjustment rules are rows keyed by it.
 *
 * Scoring (src/scorecard.c):
 *   factor points    bins: the bin [lower_bound, upper_bound) holding the
 *                    metric's value gives points (0 to 100, NULL bounds are
 *                    unbounded); linear: intercept + slope x value, clamped
 *                    to 0..100; a missing value (NULL) gives missing_points
 *   contribution     weight x points / 100: a factor of weight 30 is worth
 *                    at most 30 points
 *   score            sum of contributions, rounded to 2 decimals; it lies in
 *                    0 .. sum of weights
 *   grade            the grade with the largest min_score <= score (grades
 *                    rank by min_score: the highest is the best)
 *   rules            each rule whose metric compares true moves the grade
 *                    downgrade_steps grades down (summed, bounded by the
 *                    lowest grade)
 *   recommendation   of the final grade: limit_base + limit_multiplier x
 *                    limit_metric (a missing metric counts 0), clamped to
 *                    [limit_floor, limit_cap], rounded down to a multiple of
 *                    limit_round; term_days
 *   reasons          the reason codes of the factors that lost points
 *                    (weight - contribution > 0), most points lost first,
 *                    ties in factor position order
 *
 * Life cycle: draft -> active -> retired.  Only a draft can be edited;
 * credit.activate_scorecard checks it is complete and makes it the one
 * active version (retiring the previous one); a version used for a decision
 * never changes again (SQLSTATE 55000), so score history always explains
 * itself.  credit.new_scorecard_version copies a version into a new draft.
 *
 * Validation happens when configuration is written (SQLSTATE 23514 unless
 * noted): row checks at once; the bins of a factor and the grades of a
 * scorecard, which are edited as sets, by constraint triggers at the end of
 * the statement (or at commit after SET CONSTRAINTS ... DEFERRED): bins of
 * a factor must not overlap and, once a factor has any, must cover every
 * value with no gap; completeness (every factor has bins or a linear rule,
 * grades start at score 0) is checked again at activation.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.scorecards (
	scorecard_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name			text NOT NULL,
	version			integer NOT NULL DEFAULT 1,
	state			text NOT NULL DEFAULT 'draft',
	description		text,
	window_months	integer NOT NULL DEFAULT 6,
	overdue_months	integer NOT NULL DEFAULT 12,
	hysteresis_points numeric NOT NULL DEFAULT 0,
	confirm_days	integer NOT NULL DEFAULT 0,
	limit_min_change numeric NOT NULL DEFAULT 0,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by		text NOT NULL DEFAULT credit.caller(),
	activated_at	timestamptz,
	retired_at		timestamptz,
	CONSTRAINT scorecards_name_version UNIQUE (name, version),
	CONSTRAINT scorecards_version_check CHECK (version OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT scorecards_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY ('{draft,active,retired}'::text[])),
	CONSTRAINT scorecards_window_check
		CHECK (window_months OPERATOR(pg_catalog.>=) 1 AND window_months OPERATOR(pg_catalog.<=) 120
			   AND overdue_months OPERATOR(pg_catalog.>=) 1 AND overdue_months OPERATOR(pg_catalog.<=) 120),
	CONSTRAINT scorecards_hysteresis_check
		CHECK (hysteresis_points OPERATOR(pg_catalog.>=) 0 AND confirm_days OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT scorecards_limit_min_change_check
		CHECK (limit_min_change OPERATOR(pg_catalog.>=) 0)
);
CREATE UNIQUE INDEX scorecards_one_active ON credit.scorecards ((true))
	WHERE state OPERATOR(pg_catalog.=) 'active';

COMMENT ON TABLE credit.scorecards IS
'Scorecard versions. Edit a draft; credit.activate_scorecard makes it the active one; active and retired versions never change.';
COMMENT ON COLUMN credit.scorecards.window_months IS 'Window of the payment-behaviour and sales metrics, in months.';
COMMENT ON COLUMN credit.scorecards.overdue_months IS 'Window of overdue_count and overdue_amount, in months.';
COMMENT ON COLUMN credit.scorecards.hysteresis_points IS
'A score-driven grade change needs the score this many points beyond the current grade''s band.';
COMMENT ON COLUMN credit.scorecards.confirm_days IS
'A score-driven grade change is applied only after the new grade has been computed for this many days.';
COMMENT ON COLUMN credit.scorecards.limit_min_change IS
'A recommended limit differing from the current limit by less than this is not acted on.';

CREATE TABLE credit.scorecard_factors (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	factor			text NOT NULL,
	position		integer NOT NULL,
	metric			text NOT NULL REFERENCES credit.metrics ON UPDATE CASCADE,
	weight			numeric NOT NULL,
	method			text NOT NULL DEFAULT 'bins',
	intercept		numeric,
	slope			numeric,
	missing_points	numeric NOT NULL DEFAULT 0,
	reason_code		text NOT NULL,
	reason_text		text,
	PRIMARY KEY (scorecard_id, factor),
	CONSTRAINT scorecard_factors_position UNIQUE (scorecard_id, position),
	CONSTRAINT scorecard_factors_weight_check
		CHECK (weight OPERATOR(pg_catalog.>) 0 AND weight OPERATOR(pg_catalog.<=) 1000),
	CONSTRAINT scorecard_factors_method_check
		CHECK (method OPERATOR(pg_catalog.=) ANY ('{bins,linear}'::text[])),
	CONSTRAINT scorecard_factors_linear_check
		CHECK ((method OPERATOR(pg_catalog.=) 'linear') OPERATOR(pg_catalog.=)
			   (intercept IS NOT NULL AND slope IS NOT NULL)),
	CONSTRAINT scorecard_factors_missing_points_check
		CHECK (missing_points OPERATOR(pg_catalog.>=) 0 AND missing_points OPERATOR(pg_catalog.<=) 100),
	CONSTRAINT scorecard_factors_reason_code_check
		CHECK (reason_code OPERATOR(pg_catalog.<>) '')
);

COMMENT ON TABLE credit.scorecard_factors IS
'Factors of a scorecard version: a metric, how its value becomes 0-100 points (bins or linear), and its weight (the most score points it can give).';
COMMENT ON COLUMN credit.scorecard_factors.weight IS 'Score points the factor gives at 100 points; contribution = weight x points / 100.';
COMMENT ON COLUMN credit.scorecard_factors.intercept IS 'linear method: points = intercept + slope x value, clamped to 0..100.';
COMMENT ON COLUMN credit.scorecard_factors.missing_points IS 'Points when the customer has no value for the metric.';
COMMENT ON COLUMN credit.scorecard_factors.reason_code IS 'Code reported when the factor costs points (adverse-action reason).';

CREATE TABLE credit.scorecard_bins (
	scorecard_id	bigint NOT NULL,
	factor			text NOT NULL,
	lower_bound		numeric,
	upper_bound		numeric,
	points			numeric NOT NULL,
	FOREIGN KEY (scorecard_id, factor)
		REFERENCES credit.scorecard_factors ON UPDATE CASCADE ON DELETE CASCADE,
	CONSTRAINT scorecard_bins_lower UNIQUE NULLS NOT DISTINCT (scorecard_id, factor, lower_bound),
	CONSTRAINT scorecard_bins_range_check
		CHECK (upper_bound OPERATOR(pg_catalog.>) lower_bound),
	CONSTRAINT scorecard_bins_points_check
		CHECK (points OPERATOR(pg_catalog.>=) 0 AND points OPERATOR(pg_catalog.<=) 100)
);

COMMENT ON TABLE credit.scorecard_bins IS
'Bins of a factor: a value in [lower_bound, upper_bound) gives points (0-100); NULL bounds are unbounded. A factor''s bins cover every value exactly once.';

CREATE TABLE credit.scorecard_grades (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	grade			text NOT NULL,
	min_score		numeric NOT NULL,
	limit_base		numeric NOT NULL DEFAULT 0,
	limit_metric	text REFERENCES credit.metrics ON UPDATE CASCADE,
	limit_multiplier numeric NOT NULL DEFAULT 0,
	limit_floor		numeric NOT NULL DEFAULT 0,
	limit_cap		numeric NOT NULL,
	limit_round		numeric NOT NULL DEFAULT 1,
	term_days		integer NOT NULL,
	auto_apply		text NOT NULL DEFAULT 'never',
	PRIMARY KEY (scorecard_id, grade),
	CONSTRAINT scorecard_grades_min_score UNIQUE (scorecard_id, min_score),
	CONSTRAINT scorecard_grades_grade_check CHECK (grade OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT scorecard_grades_min_score_check CHECK (min_score OPERATOR(pg_catalog.>=) 0),
	CONSTRAINT scorecard_grades_limit_check
		CHECK (limit_floor OPERATOR(pg_catalog.>=) 0
			   AND limit_cap OPERATOR(pg_catalog.>=) limit_floor
			   AND limit_cap OPERATOR(pg_catalog.<) 1e15
			   AND limit_round OPERATOR(pg_catalog.>) 0),
	CONSTRAINT scorecard_grades_multiplier_check
		CHECK (limit_multiplier OPERATOR(pg_catalog.=) 0 OR limit_metric IS NOT NULL),
	CONSTRAINT scorecard_grades_term_check
		CHECK (term_days OPERATOR(pg_catalog.>=) 0 AND term_days OPERATOR(pg_catalog.<=) 3650),
	CONSTRAINT scorecard_grades_auto_apply_check
		CHECK (auto_apply OPERATOR(pg_catalog.=) ANY ('{never,decrease,always}'::text[]))
);

COMMENT ON TABLE credit.scorecard_grades IS
'Grades of a scorecard version: score bands (from min_score up to the next grade''s) and each grade''s limit and term recommendation.';
COMMENT ON COLUMN credit.scorecard_grades.min_score IS 'Lowest score of the grade; the grade with min_score 0 is the lowest, the highest min_score the best.';
COMMENT ON COLUMN credit.scorecard_grades.limit_metric IS 'Metric the recommended limit grows with (for example avg_monthly_sales).';
COMMENT ON COLUMN credit.scorecard_grades.limit_cap IS 'Recommended limit = clamp(limit_base + limit_multiplier x limit_metric, limit_floor, limit_cap), rounded down to limit_round.';
COMMENT ON COLUMN credit.scorecard_grades.auto_apply IS
'never: a changed recommendation opens a limit request; decrease: lower limits are applied at once, higher ones requested; always: applied at once.';

CREATE TABLE credit.scorecard_rules (
	scorecard_id	bigint NOT NULL REFERENCES credit.scorecards ON DELETE CASCADE,
	rule_no			integer NOT NULL,
	metric			text NOT NULL REFERENCES credit.metrics ON UPDATE CASCADE,
	operator		text NOT NULL,
	threshold		numeric NOT NULL,
	downgrade_steps	integer NOT NULL DEFAULT 1,
	description		text,
	PRIMARY KEY (scorecard_id, rule_no),
	CONSTRAINT scorecard_rules_operator_check
		CHECK (operator OPERATOR(pg_catalog.=) ANY ('{>,>=,<,<=}'::text[])),
	CONSTRAINT scorecard_rules_steps_check
		CHECK (downgrade_steps OPERATOR(pg_catalog.>=) 1 AND downgrade_steps OPERATOR(pg_catalog.<=) 100)
);

COMMENT ON TABLE credit.scorecard_rules IS
'Adjustment rules: while metric <operator> threshold holds, the grade is downgrade_steps grades lower (applied at once, no hysteresis).';

SELECT pg_catalog.pg_extension_config_dump('credit.scorecards', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.scorecards', 'scorecard_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_factors', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_bins', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_grades', '');
SELECT pg_catalog.pg_extension_config_dump('credit.scorecard_rules', '');

/*
 * Only drafts change.  On credit.scorecards itself an active or retired
 * version may change only its state, draft -> active -> retired (the
 * trigger stamps activated_at and retired_at); activation checks the draft
 * is complete.  credit.activate_scorecard also retires the previous active
 * version; an UPDATE of state alone meets the one-active unique index.
 */
CREATE FUNCTION credit.scorecard_immutable()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids bigint[];
	id bigint;
	st text;
	nm text;
	ver integer;
BEGIN
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecards' THEN
		IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
			IF NEW.state OPERATOR(pg_catalog.<>) 'draft' THEN
				RAISE EXCEPTION 'scorecard "%" version % must be created as a draft', NEW.name, NEW.version
					USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
						  HINT = 'Insert it as a draft, add its factors and grades, then call credit.activate_scorecard.';
			END IF;
			RETURN NEW;
		END IF;
		IF OLD.state OPERATOR(pg_catalog.=) 'draft' AND TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			RETURN OLD;
		END IF;
		IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be deleted',
				OLD.name, OLD.version, OLD.state
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
					  HINT = 'Only drafts are deleted; a used version stays to explain its scores.';
		END IF;
		IF (OLD.state, NEW.state) NOT IN (('draft', 'draft'), ('draft', 'active'),
										 ('active', 'active'), ('active', 'retired'),
										 ('retired', 'retired'))
		   OR (OLD.state OPERATOR(pg_catalog.<>) 'draft'
			   AND (NEW.scorecard_id, NEW.name, NEW.version, NEW.description,
					NEW.window_months, NEW.overdue_months, NEW.hysteresis_points,
					NEW.confirm_days, NEW.limit_min_change, NEW.created_at, NEW.created_by)
				   IS DISTINCT FROM
				   (OLD.scorecard_id, OLD.name, OLD.version, OLD.description,
					OLD.window_months, OLD.overdue_months, OLD.hysteresis_points,
					OLD.confirm_days, OLD.limit_min_change, OLD.created_at, OLD.created_by)) THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be changed',
				OLD.name, OLD.version, OLD.state
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'scorecards',
					  DETAIL = pg_catalog.format('A version moves draft -> active -> retired; only a draft''s settings change (this change: %s -> %s).',
												 OLD.state, NEW.state),
					  HINT = 'Change a used version by copying it with credit.new_scorecard_version.';
		END IF;
		IF OLD.state OPERATOR(pg_catalog.=) 'draft' AND NEW.state OPERATOR(pg_catalog.=) 'active' THEN
			PERFORM credit.scorecard_complete_check(NEW.scorecard_id);
			NEW.activated_at := pg_catalog.now();
		ELSIF OLD.state OPERATOR(pg_catalog.=) 'active' AND NEW.state OPERATOR(pg_catalog.=) 'retired' THEN
			NEW.retired_at := pg_catalog.now();
		ELSE
			NEW.activated_at := OLD.activated_at;
			NEW.retired_at := OLD.retired_at;
		END IF;
		RETURN NEW;
	END IF;

	/* factors, bins, grades, rules: the version(s) touched must be drafts */
	IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
		ids := ARRAY[OLD.scorecard_id];
	END IF;
	IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
		ids := ids OPERATOR(pg_catalog.||) NEW.scorecard_id;
	END IF;
	FOREACH id IN ARRAY ids LOOP
		SELECT s.state, s.name, s.version INTO st, nm, ver FROM credit.scorecards s
		 WHERE s.scorecard_id OPERATOR(pg_catalog.=) id FOR SHARE;
		IF st IS NULL AND TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
			CONTINUE;	/* cascading delete of a draft */
		END IF;
		IF st OPERATOR(pg_catalog.<>) 'draft' THEN
			RAISE EXCEPTION 'scorecard "%" version % is % and cannot be changed', nm, ver, st
				USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = TG_TABLE_NAME,
					  DETAIL = 'A version used for decisions keeps its factors, bins, grades and rules.',
					  HINT = 'Copy it into a new draft with credit.new_scorecard_version.';
		END IF;
	END LOOP;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_immutable() IS
'Trigger on the scorecard tables: only drafts change; state moves draft -> active -> retired (55000), and activation checks completeness (23514).';

CREATE TRIGGER scorecards_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecards
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_factors_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_factors
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_bins_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_bins
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_grades_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_grades
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();
CREATE TRIGGER scorecard_rules_immutable
	BEFORE INSERT OR UPDATE OR DELETE ON credit.scorecard_rules
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_immutable();

/* TRUNCATE would bypass the row triggers */
CREATE FUNCTION credit.scorecard_no_truncate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'table "credit.%" cannot be truncated', TG_TABLE_NAME
		USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = TG_TABLE_NAME,
			  HINT = 'Delete draft versions with DELETE; used versions stay.';
END;
$$;

COMMENT ON FUNCTION credit.scorecard_no_truncate() IS
'Trigger on the scorecard tables: TRUNCATE would bypass version immutability (55000).';

CREATE TRIGGER scorecards_no_truncate BEFORE TRUNCATE ON credit.scorecards
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_factors_no_truncate BEFORE TRUNCATE ON credit.scorecard_factors
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_bins_no_truncate BEFORE TRUNCATE ON credit.scorecard_bins
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_grades_no_truncate BEFORE TRUNCATE ON credit.scorecard_grades
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();
CREATE TRIGGER scorecard_rules_no_truncate BEFORE TRUNCATE ON credit.scorecard_rules
	FOR EACH STATEMENT EXECUTE FUNCTION credit.scorecard_no_truncate();

/*
 * The bins of one factor, checked as a set: sorted by lower bound, the
 * first starts at -infinity (NULL), each ends where the next starts, the
 * last ends at +infinity (NULL).  A linear factor has no bins.
 */
CREATE FUNCTION credit.scorecard_factor_check(scorecard_id bigint, factor text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f credit.scorecard_factors;
	b record;
	prev_upper numeric;
	n integer := 0;
	open_end boolean := false;
BEGIN
	SELECT * INTO f FROM credit.scorecard_factors x
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.factor OPERATOR(pg_catalog.=) $2;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	FOR b IN SELECT x.lower_bound, x.upper_bound FROM credit.scorecard_bins x
			  WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.factor OPERATOR(pg_catalog.=) $2
			  ORDER BY x.lower_bound NULLS FIRST LOOP
		n := n OPERATOR(pg_catalog.+) 1;
		IF f.method OPERATOR(pg_catalog.=) 'linear' THEN
			RAISE EXCEPTION 'factor "%" of scorecard % is linear and cannot have bins', $2, $1
				USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins';
		END IF;
		IF n OPERATOR(pg_catalog.=) 1 AND b.lower_bound IS NOT NULL THEN
			RAISE EXCEPTION 'bins of factor "%" of scorecard % leave values below % uncovered',
				$2, $1, b.lower_bound
				USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
					  HINT = 'The first bin has no lower bound (NULL).';
		END IF;
		IF n OPERATOR(pg_catalog.>) 1 THEN
			IF open_end OR b.lower_bound OPERATOR(pg_catalog.<) prev_upper THEN
				RAISE EXCEPTION 'bins of factor "%" of scorecard % overlap at %', $2, $1,
					COALESCE(b.lower_bound::text, 'the lowest values')
					USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
						  HINT = 'Each bin starts where the previous one ends (bins are [lower_bound, upper_bound)).';
			ELSIF b.lower_bound OPERATOR(pg_catalog.>) prev_upper THEN
				RAISE EXCEPTION 'bins of factor "%" of scorecard % leave a gap from % to %',
					$2, $1, prev_upper, b.lower_bound
					USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
						  HINT = 'Each bin starts where the previous one ends (bins are [lower_bound, upper_bound)).';
			END IF;
		END IF;
		prev_upper := b.upper_bound;
		open_end := b.upper_bound IS NULL;
	END LOOP;
	IF n OPERATOR(pg_catalog.>) 0 AND NOT open_end THEN
		RAISE EXCEPTION 'bins of factor "%" of scorecard % leave values from % up uncovered',
			$2, $1, prev_upper
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins',
				  HINT = 'The last bin has no upper bound (NULL).';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_factor_check(bigint, text) IS
'Raises 23514 when the bins of a factor overlap, leave a gap, or belong to a linear factor.';

/* the grades of one scorecard as a set: the lowest starts at 0, at most the top score */
CREATE FUNCTION credit.scorecard_grades_check(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lowest numeric;
	highest numeric;
	top numeric;
BEGIN
	SELECT pg_catalog.min(g.min_score), pg_catalog.max(g.min_score) INTO lowest, highest
	  FROM credit.scorecard_grades g WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF lowest IS NULL THEN
		RETURN;
	END IF;
	IF lowest OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'grades of scorecard % leave scores below % ungraded', $1, lowest
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades',
				  HINT = 'The lowest grade has min_score 0.';
	END IF;
	SELECT pg_catalog.sum(f.weight) INTO top
	  FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF top IS NOT NULL AND highest OPERATOR(pg_catalog.>) top THEN
		RAISE EXCEPTION 'grade starting at % of scorecard % can never be reached', highest, $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades',
				  DETAIL = pg_catalog.format('The factors'' weights add up to %s, the highest possible score.', top);
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_grades_check(bigint) IS
'Raises 23514 when the grades of a scorecard do not start at 0 or one lies above the highest possible score.';

CREATE FUNCTION credit.scorecard_validate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		r := OLD;
	ELSE
		r := NEW;
	END IF;
	IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecard_bins' THEN
		PERFORM credit.scorecard_factor_check(r.scorecard_id, r.factor);
		IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
			PERFORM credit.scorecard_factor_check(OLD.scorecard_id, OLD.factor);
		END IF;
	ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'scorecard_factors' THEN
		PERFORM credit.scorecard_factor_check(r.scorecard_id, r.factor);
		PERFORM credit.scorecard_grades_check(r.scorecard_id);
	ELSE
		PERFORM credit.scorecard_grades_check(r.scorecard_id);
	END IF;
	/* a factor or grade moved to another version changes the old one too */
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
	   AND TG_TABLE_NAME OPERATOR(pg_catalog.<>) 'scorecard_bins' THEN
		IF OLD.scorecard_id OPERATOR(pg_catalog.<>) NEW.scorecard_id THEN
			PERFORM credit.scorecard_grades_check(OLD.scorecard_id);
		END IF;
	END IF;
	RETURN NULL;
END;
$$;

COMMENT ON FUNCTION credit.scorecard_validate() IS
'Constraint trigger on bins, factors and grades: checks the changed factor''s bins and the scorecard''s grades as sets (23514).';

CREATE CONSTRAINT TRIGGER scorecard_bins_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_bins
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();
CREATE CONSTRAINT TRIGGER scorecard_factors_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_factors
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();
CREATE CONSTRAINT TRIGGER scorecard_grades_valid
	AFTER INSERT OR UPDATE OR DELETE ON credit.scorecard_grades
	DEFERRABLE INITIALLY IMMEDIATE
	FOR EACH ROW EXECUTE FUNCTION credit.scorecard_validate();

/* a version is complete when it can score anyone */
CREATE FUNCTION credit.scorecard_complete_check(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	missing text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM credit.scorecard_factors f
					WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1) THEN
		RAISE EXCEPTION 'scorecard % has no factors', $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_factors';
	END IF;
	SELECT pg_catalog.string_agg(f.factor, ', ' ORDER BY f.position) INTO missing
	  FROM credit.scorecard_factors f
	 WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1
	   AND f.method OPERATOR(pg_catalog.=) 'bins'
	   AND NOT EXISTS (SELECT 1 FROM credit.scorecard_bins b
						WHERE b.scorecard_id OPERATOR(pg_catalog.=) f.scorecard_id
						  AND b.factor OPERATOR(pg_catalog.=) f.factor);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'factors of scorecard % have no bins: %', $1, missing
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_bins';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM credit.scorecard_grades g
					WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1) THEN
		RAISE EXCEPTION 'scorecard % has no grades', $1
			USING ERRCODE = '23514', SCHEMA = 'credit', TABLE = 'scorecard_grades';
	END IF;
	PERFORM credit.scorecard_factor_check($1, f.factor)
	   FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	PERFORM credit.scorecard_grades_check($1);
END;
$$;

COMMENT ON FUNCTION credit.scorecard_complete_check(bigint) IS
'Raises 23514 unless a scorecard version has factors, every bins factor has bins covering all values, and grades start at 0.';

CREATE FUNCTION credit.activate_scorecard(scorecard_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.scorecards;
	previous bigint;
BEGIN
	/* one activation at a time: the loser sees the winner's result */
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225282);
	SELECT * INTO s FROM credit.scorecards x
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % does not exist', $1 USING ERRCODE = '42704';
	END IF;
	IF s.state OPERATOR(pg_catalog.<>) 'draft' THEN
		RAISE EXCEPTION 'scorecard "%" version % is % already', s.name, s.version, s.state
			USING ERRCODE = '55000',
				  HINT = 'Only a draft can be activated; copy this one with credit.new_scorecard_version.';
	END IF;
	PERFORM credit.scorecard_complete_check($1);
	SELECT x.scorecard_id INTO previous FROM credit.scorecards x
	 WHERE x.state OPERATOR(pg_catalog.=) 'active' FOR UPDATE;
	IF previous IS NOT NULL THEN
		UPDATE credit.scorecards x SET state = 'retired'
		 WHERE x.scorecard_id OPERATOR(pg_catalog.=) previous;
	END IF;
	UPDATE credit.scorecards x SET state = 'active'
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1;
	RETURN previous;
END;
$$;

COMMENT ON FUNCTION credit.activate_scorecard(bigint) IS
'Checks a draft is complete (23514), makes it the active scorecard and retires the previous one (returned, or NULL).';

CREATE FUNCTION credit.retire_scorecard(scorecard_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_catalog.pg_advisory_xact_lock(7165901439040225282);
	UPDATE credit.scorecards x SET state = 'retired'
	 WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1 AND x.state OPERATOR(pg_catalog.=) 'active';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % is not the active scorecard', $1 USING ERRCODE = '55000';
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.retire_scorecard(bigint) IS
'Retires the active scorecard (rescoring then needs a newly activated one).';

CREATE FUNCTION credit.new_scorecard_version(from_scorecard bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s credit.scorecards;
	new_id bigint;
BEGIN
	SELECT * INTO s FROM credit.scorecards x WHERE x.scorecard_id OPERATOR(pg_catalog.=) $1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scorecard % does not exist', $1 USING ERRCODE = '42704';
	END IF;
	/*
	 * Each table's rows are copied by one statement, so the set checks (at
	 * the end of each statement) see complete sets: factors before their
	 * bins, all bins of a factor at once, all grades at once.  The caller's
	 * constraint modes are left alone.
	 */
	INSERT INTO credit.scorecards (name, version, description, window_months, overdue_months,
								   hysteresis_points, confirm_days, limit_min_change)
	SELECT s.name, (SELECT pg_catalog.max(x.version) FROM credit.scorecards x
					 WHERE x.name OPERATOR(pg_catalog.=) s.name) OPERATOR(pg_catalog.+) 1,
		   s.description, s.window_months, s.overdue_months, s.hysteresis_points,
		   s.confirm_days, s.limit_min_change
	RETURNING scorecard_id INTO new_id;
	INSERT INTO credit.scorecard_factors
	SELECT new_id, f.factor, f.position, f.metric, f.weight, f.method, f.intercept, f.slope,
		   f.missing_points, f.reason_code, f.reason_text
	  FROM credit.scorecard_factors f WHERE f.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_bins
	SELECT new_id, b.factor, b.lower_bound, b.upper_bound, b.points
	  FROM credit.scorecard_bins b WHERE b.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_grades
	SELECT new_id, g.grade, g.min_score, g.limit_base, g.limit_metric, g.limit_multiplier,
		   g.limit_floor, g.limit_cap, g.limit_round, g.term_days, g.auto_apply
	  FROM credit.scorecard_grades g WHERE g.scorecard_id OPERATOR(pg_catalog.=) $1;
	INSERT INTO credit.scorecard_rules
	SELECT new_id, r.rule_no, r.metric, r.operator, r.threshold, r.downgrade_steps, r.description
	  FROM credit.scorecard_rules r WHERE r.scorecard_id OPERATOR(pg_catalog.=) $1;
	RETURN new_id;
END;
$$;

COMMENT ON FUNCTION credit.new_scorecard_version(bigint) IS
'Copies a scorecard version (any state) into a new draft with the next version number; returns its id.';
