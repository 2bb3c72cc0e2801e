/*-------------------------------------------------------------------------
 *
 * scorecard.c
 *	  Scoring customers under a scorecard version: credit.score_all.
 *
 * The scorecard version (factors, bins, grades, rules) is read once per
 * call into C arrays; the metrics of every account, or of one, come from
 * one SQL query over credit.customer_metrics (the built-in metrics) plus
 * one index probe per user metric into credit.metric_values, read through
 * a cursor.  Each row is then scored in C: bins by a scan of the factor's
 * few sorted bins, contributions and the score in exact numeric, the grade
 * band, the adjustment rules, the hysteresis against the customer's
 * current grade, the recommendation and the limit action (sql/scorecard.sql
 * and sql/rescore.sql state the rules).  Results go to a tuplestore.
 *
 * The function reads only, in the caller's snapshot, with the caller's
 * privileges, and takes no locks beyond those of its reads; credit.rescore
 * writes the results.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_score_all);

#define SCORE_FETCH_BATCH 2000
#define SCORE_ALL_COLUMNS 18

typedef struct ScoreBin
{
	Numeric		lower;			/* NULL: unbounded */
	Numeric		upper;			/* NULL: unbounded */
	Numeric		points;
} ScoreBin;

typedef struct ScoreFactor
{
	char	   *name;
	int			metric;			/* index into the metric list */
	Numeric		weight;
	bool		linear;
	Numeric		intercept;
	Numeric		slope;
	Numeric		missing_points;
	char	   *reason_code;
	int			nbins;
	ScoreBin   *bins;			/* sorted by lower bound, NULL first */
} ScoreFactor;

typedef enum AutoApply
{
	AUTO_NEVER,
	AUTO_DECREASE,
	AUTO_ALWAYS
} AutoApply;

typedef struct ScoreGrade
{
	char	   *name;
	Numeric		min_score;
	Numeric		limit_base;
	int			limit_metric;	/* -1: none */
	Numeric		limit_multiplier;
	Numeric		limit_floor;
	Numeric		limit_cap;
	Numeric		limit_round;
	int32		term_days;
	AutoApply	auto_apply;
} ScoreGrade;

typedef enum RuleOp
{
	RULE_GT,
	RULE_GE,
	RULE_LT,
	RULE_LE
} RuleOp;

typedef struct ScoreRule
{
	int32		rule_no;
	int			metric;
	RuleOp		op;
	const char *op_text;
	Numeric		threshold;
	int32		steps;
} ScoreRule;

typedef struct Scorecard
{
	int64		id;
	char	   *name;
	int32		window_months;
	int32		overdue_months;
	Numeric		hysteresis;
	int32		confirm_days;
	Numeric		limit_min_change;
	int			nfactors;
	ScoreFactor *factors;
	int			ngrades;
	ScoreGrade *grades;			/* ascending min_score: 0 is the lowest */
	int			nrules;
	ScoreRule  *rules;
	int			nmetrics;
	char	  **metrics;		/* distinct metric names used */
	bool	   *builtin;
} Scorecard;

/* columns of the metrics query before the metric values */
#define MQ_CUSTOMER		0
#define MQ_LIMIT		1
#define MQ_TERM			2
#define MQ_GRADE		3
#define MQ_PENDING		4
#define MQ_PENDING_SINCE 5
#define MQ_CARD_NAME	6
#define MQ_FIRST_METRIC	7

static Numeric numeric_zero;
static Numeric numeric_hundred;

/* ---- reading the scorecard ---- */

static Numeric
spi_numeric(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetNumericCopy(d);
}

static int32
spi_int32(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);	/* NULL for NULL */
}

/* index of a metric in the card's list, adding it if new */
static int
metric_index(Scorecard *card, const char *metric, int capacity)
{
	int			i;

	for (i = 0; i < card->nmetrics; i++)
		if (strcmp(card->metrics[i], metric) == 0)
			return i;
	Assert(card->nmetrics < capacity);
	card->metrics[card->nmetrics] = pstrdup(metric);
	return card->nmetrics++;
}

static void
run_config_query(const char *sql, int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	int			rc;

	args[0] = Int64GetDatum(id);
	rc = SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "credit: scorecard query failed: %s", SPI_result_code_string(rc));
}

static RuleOp
parse_rule_op(const char *op)
{
	if (strcmp(op, ">") == 0)
		return RULE_GT;
	if (strcmp(op, ">=") == 0)
		return RULE_GE;
	if (strcmp(op, "<") == 0)
		return RULE_LT;
	if (strcmp(op, "<=") == 0)
		return RULE_LE;
	elog(ERROR, "credit: unknown rule operator \"%s\"", op);
	return RULE_GT;				/* keep compiler quiet */
}

/*
 * Load a scorecard version (NULL: the active one).  A draft is checked for
 * completeness first, since drafts may be scored for what-if comparisons.
 */
static Scorecard *
load_scorecard(bool id_null, int64 id)
{
	Scorecard  *card = palloc0(sizeof(Scorecard));
	SPITupleTable *tt;
	TupleDesc	desc;
	char	   *state;
	int			capacity;
	uint64		i;
	int			rc;
	bool		isnull;

	if (id_null)
		rc = SPI_execute("SELECT scorecard_id, name, state, window_months, overdue_months,"
						 " hysteresis_points, confirm_days, limit_min_change"
						 " FROM credit.scorecards WHERE state OPERATOR(pg_catalog.=) 'active'",
						 true, 0);
	else
	{
		run_config_query("SELECT scorecard_id, name, state, window_months, overdue_months,"
						 " hysteresis_points, confirm_days, limit_min_change"
						 " FROM credit.scorecards WHERE scorecard_id OPERATOR(pg_catalog.=) $1",
						 id);
		rc = SPI_OK_SELECT;
	}
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "credit: scorecard query failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		if (id_null)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("there is no active scorecard"),
					 errhint("Activate one with credit.activate_scorecard, or name a version.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("scorecard " INT64_FORMAT " does not exist", id)));
	}
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	card->id = DatumGetInt64(SPI_getbinval(tt->vals[0], desc, 1, &isnull));
	card->name = spi_text(tt->vals[0], desc, 2);
	state = spi_text(tt->vals[0], desc, 3);
	card->window_months = spi_int32(tt->vals[0], desc, 4);
	card->overdue_months = spi_int32(tt->vals[0], desc, 5);
	card->hysteresis = spi_numeric(tt->vals[0], desc, 6);
	card->confirm_days = spi_int32(tt->vals[0], desc, 7);
	card->limit_min_change = spi_numeric(tt->vals[0], desc, 8);

	if (strcmp(state, "draft") == 0)
		run_config_query("SELECT credit.scorecard_complete_check($1)", card->id);

	/* factors, in position order */
	run_config_query("SELECT factor, metric, weight, method, intercept, slope,"
					 " missing_points, reason_code"
					 " FROM credit.scorecard_factors WHERE scorecard_id OPERATOR(pg_catalog.=) $1"
					 " ORDER BY position", card->id);
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	card->nfactors = (int) SPI_processed;
	card->factors = palloc0(sizeof(ScoreFactor) * Max(card->nfactors, 1));

	/* grades and rules are counted below; metrics are at most one per reference */
	capacity = card->nfactors;
	{
		SPITupleTable *ftt = tt;

		run_config_query("SELECT grade, min_score, limit_base, limit_metric, limit_multiplier,"
						 " limit_floor, limit_cap, limit_round, term_days, auto_apply"
						 " FROM credit.scorecard_grades WHERE scorecard_id OPERATOR(pg_catalog.=) $1"
						 " ORDER BY min_score", card->id);
		{
			SPITupleTable *gtt = SPI_tuptable;
			uint64		ngrades = SPI_processed;

			run_config_query("SELECT rule_no, metric, operator, threshold, downgrade_steps"
							 " FROM credit.scorecard_rules WHERE scorecard_id OPERATOR(pg_catalog.=) $1"
							 " ORDER BY rule_no", card->id);
			{
				SPITupleTable *rtt = SPI_tuptable;
				uint64		nrules = SPI_processed;

				capacity += (int) ngrades + (int) nrules;
				card->metrics = palloc0(sizeof(char *) * Max(capacity, 1));

				for (i = 0; i < (uint64) card->nfactors; i++)
				{
					ScoreFactor *f = &card->factors[i];
					HeapTuple	tup = ftt->vals[i];

					f->name = spi_text(tup, ftt->tupdesc, 1);
					f->metric = metric_index(card, spi_text(tup, ftt->tupdesc, 2), capacity);
					f->weight = spi_numeric(tup, ftt->tupdesc, 3);
					f->linear = strcmp(spi_text(tup, ftt->tupdesc, 4), "linear") == 0;
					f->intercept = spi_numeric(tup, ftt->tupdesc, 5);
					f->slope = spi_numeric(tup, ftt->tupdesc, 6);
					f->missing_points = spi_numeric(tup, ftt->tupdesc, 7);
					f->reason_code = spi_text(tup, ftt->tupdesc, 8);
				}

				card->ngrades = (int) ngrades;
				card->grades = palloc0(sizeof(ScoreGrade) * Max(card->ngrades, 1));
				for (i = 0; i < ngrades; i++)
				{
					ScoreGrade *g = &card->grades[i];
					HeapTuple	tup = gtt->vals[i];
					char	   *lm = spi_text(tup, gtt->tupdesc, 4);
					char	   *aa = spi_text(tup, gtt->tupdesc, 10);

					g->name = spi_text(tup, gtt->tupdesc, 1);
					g->min_score = spi_numeric(tup, gtt->tupdesc, 2);
					g->limit_base = spi_numeric(tup, gtt->tupdesc, 3);
					g->limit_metric = lm ? metric_index(card, lm, capacity) : -1;
					g->limit_multiplier = spi_numeric(tup, gtt->tupdesc, 5);
					g->limit_floor = spi_numeric(tup, gtt->tupdesc, 6);
					g->limit_cap = spi_numeric(tup, gtt->tupdesc, 7);
					g->limit_round = spi_numeric(tup, gtt->tupdesc, 8);
					g->term_days = spi_int32(tup, gtt->tupdesc, 9);
					g->auto_apply = strcmp(aa, "always") == 0 ? AUTO_ALWAYS :
						strcmp(aa, "decrease") == 0 ? AUTO_DECREASE : AUTO_NEVER;
				}

				card->nrules = (int) nrules;
				card->rules = palloc0(sizeof(ScoreRule) * Max(card->nrules, 1));
				for (i = 0; i < nrules; i++)
				{
					ScoreRule  *r = &card->rules[i];
					HeapTuple	tup = rtt->vals[i];

					r->rule_no = spi_int32(tup, rtt->tupdesc, 1);
					r->metric = metric_index(card, spi_text(tup, rtt->tupdesc, 2), capacity);
					r->op_text = spi_text(tup, rtt->tupdesc, 3);
					r->op = parse_rule_op(r->op_text);
					r->threshold = spi_numeric(tup, rtt->tupdesc, 4);
					r->steps = spi_int32(tup, rtt->tupdesc, 5);
				}
			}
		}
	}
	if (card->nfactors == 0 || card->ngrades == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("scorecard " INT64_FORMAT " has no %s", card->id,
						card->nfactors == 0 ? "factors" : "grades")));

	/* bins, grouped by factor, each group sorted with the unbounded one first */
	run_config_query("SELECT factor, lower_bound, upper_bound, points"
					 " FROM credit.scorecard_bins WHERE scorecard_id OPERATOR(pg_catalog.=) $1"
					 " ORDER BY factor, lower_bound NULLS FIRST", card->id);
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *fname = spi_text(tt->vals[i], desc, 1);
		ScoreFactor *f = NULL;
		int			k;

		for (k = 0; k < card->nfactors; k++)
			if (strcmp(card->factors[k].name, fname) == 0)
				f = &card->factors[k];
		if (f == NULL)
			elog(ERROR, "credit: bin of unknown factor \"%s\"", fname);
		if (f->bins == NULL)
			f->bins = palloc0(sizeof(ScoreBin) * SPI_processed);
		f->bins[f->nbins].lower = spi_numeric(tt->vals[i], desc, 2);
		f->bins[f->nbins].upper = spi_numeric(tt->vals[i], desc, 3);
		f->bins[f->nbins].points = spi_numeric(tt->vals[i], desc, 4);
		f->nbins++;
	}

	/* which metrics are built-in (columns of credit.customer_metrics) */
	card->builtin = palloc0(sizeof(bool) * Max(card->nmetrics, 1));
	{
		Datum	   *elems = palloc(sizeof(Datum) * Max(card->nmetrics, 1));
		ArrayType  *names;
		Oid			argtypes[1] = {TEXTARRAYOID};
		Datum		args[1];
		int			k;

		for (k = 0; k < card->nmetrics; k++)
			elems[k] = CStringGetTextDatum(card->metrics[k]);
		names = construct_array(elems, card->nmetrics, TEXTOID, -1, false, TYPALIGN_INT);
		args[0] = PointerGetDatum(names);
		rc = SPI_execute_with_args("SELECT metric FROM credit.metrics"
								   " WHERE metric OPERATOR(pg_catalog.=) ANY ($1)"
								   " AND source OPERATOR(pg_catalog.=) 'builtin'",
								   1, argtypes, args, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "credit: metrics query failed: %s", SPI_result_code_string(rc));
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *m = spi_text(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			for (k = 0; k < card->nmetrics; k++)
				if (strcmp(card->metrics[k], m) == 0)
					card->builtin[k] = true;
		}
	}
	return card;
}

/*
 * The metrics query: the built-in metrics from credit.customer_metrics, the
 * user metrics by index probes, and the account's limit, term and current
 * grade.  $1 as_of, $2 window, $3 overdue window, $4 customer or NULL, $5
 * the user metric names.
 */
static char *
metrics_query(const Scorecard *card)
{
	StringInfoData q;
	int			k;
	int			user = 0;

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT a.customer_key, a.credit_limit, a.payment_term_days,"
						   " g.grade, g.pending_grade, g.pending_since, s.name");
	for (k = 0; k < card->nmetrics; k++)
	{
		if (card->builtin[k])
			appendStringInfo(&q, ", m.%s::pg_catalog.numeric",
							 quote_identifier(card->metrics[k]));
		else
			appendStringInfo(&q,
							 ", (SELECT v.value FROM credit.metric_values v"
							 " WHERE v.customer_key OPERATOR(pg_catalog.=) a.customer_key"
							 " AND v.metric OPERATOR(pg_catalog.=) ($5)[%d]"
							 " AND v.as_of OPERATOR(pg_catalog.<=) $1"
							 " ORDER BY v.as_of DESC LIMIT 1)", ++user);
	}
	appendStringInfoString(&q,
						   " FROM credit.customer_metrics($1, $2, $3, $4) m"
						   " JOIN credit.accounts a"
						   " ON a.customer_key OPERATOR(pg_catalog.=) (m.customer_key COLLATE \"C\")"
						   " LEFT JOIN credit.customer_grades g"
						   " ON g.customer_key OPERATOR(pg_catalog.=) a.customer_key"
						   " LEFT JOIN credit.scorecards s"
						   " ON s.scorecard_id OPERATOR(pg_catalog.=) g.scorecard_id");
	return q.data;
}

/* ---- scoring one customer ---- */

static Numeric
clamp_points(Numeric p)
{
	if (credit_numeric_cmp(p, numeric_zero) < 0)
		return numeric_zero;
	if (credit_numeric_cmp(p, numeric_hundred) > 0)
		return numeric_hundred;
	return p;
}

static Numeric
factor_points(const ScoreFactor *f, Numeric value)
{
	int			i;

	if (value == NULL)
		return f->missing_points;
	if (f->linear)
		return clamp_points(credit_numeric_add(f->intercept,
											   credit_numeric_mul(f->slope, value)));
	for (i = 0; i < f->nbins; i++)
	{
		const ScoreBin *b = &f->bins[i];

		if ((b->lower == NULL || credit_numeric_cmp(value, b->lower) >= 0) &&
			(b->upper == NULL || credit_numeric_cmp(value, b->upper) < 0))
			return b->points;
	}
	/* the write-time checks make the bins cover every value */
	elog(ERROR, "credit: no bin of factor \"%s\" holds %s",
		 f->name, credit_numeric_text(value));
	return NULL;				/* keep compiler quiet */
}

static bool
rule_fires(const ScoreRule *r, Numeric value)
{
	int			c;

	if (value == NULL)
		return false;
	c = credit_numeric_cmp(value, r->threshold);
	switch (r->op)
	{
		case RULE_GT:
			return c > 0;
		case RULE_GE:
			return c >= 0;
		case RULE_LT:
			return c < 0;
		case RULE_LE:
			return c <= 0;
	}
	return false;
}

static int
grade_index(const Scorecard *card, const char *name)
{
	int			i;

	if (name == NULL)
		return -1;
	for (i = 0; i < card->ngrades; i++)
		if (strcmp(card->grades[i].name, name) == 0)
			return i;
	return -1;
}

/* the highest grade whose band holds the score */
static int
band_of(const Scorecard *card, Numeric score)
{
	int			i;

	for (i = card->ngrades - 1; i > 0; i--)
		if (credit_numeric_cmp(score, card->grades[i].min_score) >= 0)
			return i;
	return 0;
}

/* the band with hysteresis: leave the current grade only by more than the margin */
static int
band_with_margin(const Scorecard *card, Numeric score, int current)
{
	int			g = current;

	while (g + 1 < card->ngrades &&
		   credit_numeric_cmp(score,
							  credit_numeric_add(card->grades[g + 1].min_score,
												 card->hysteresis)) >= 0)
		g++;
	if (g != current)
		return g;
	while (g > 0 &&
		   credit_numeric_cmp(score,
							  credit_numeric_sub(card->grades[g].min_score,
												 card->hysteresis)) < 0)
		g--;
	return g;
}

typedef struct LostPoints
{
	int			factor;
	Numeric		lost;
} LostPoints;

static int
lost_cmp(const void *a, const void *b)
{
	const LostPoints *x = a;
	const LostPoints *y = b;
	int			c = credit_numeric_cmp(y->lost, x->lost);

	return c != 0 ? c : (x->factor - y->factor);
}

static Datum
text_array(char **items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
numeric_array(Numeric *items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		nulls[i] = items[i] == NULL;
		elems[i] = nulls[i] ? (Datum) 0 : NumericGetDatum(items[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, NUMERICOID,
											  -1, false, TYPALIGN_INT));
}

/* score one metrics row and append the result row */
static void
score_row(const Scorecard *card, HeapTuple tup, TupleDesc desc, DateADT as_of,
		  bool hysteresis, ReturnSetInfo *rsinfo)
{
	Datum		values[SCORE_ALL_COLUMNS];
	bool		nulls[SCORE_ALL_COLUMNS];
	Numeric    *metric = palloc(sizeof(Numeric) * Max(card->nmetrics, 1));
	Numeric    *points = palloc(sizeof(Numeric) * card->nfactors);
	Numeric    *factor_values = palloc(sizeof(Numeric) * card->nfactors);
	LostPoints *lost = palloc(sizeof(LostPoints) * card->nfactors);
	char	  **reasons = palloc(sizeof(char *) * card->nfactors);
	int			nlost = 0;
	Numeric		total = numeric_zero;
	Numeric		score;
	Numeric		current_limit = spi_numeric(tup, desc, MQ_LIMIT + 1);
	int32		current_term = spi_int32(tup, desc, MQ_TERM + 1);
	char	   *previous = spi_text(tup, desc, MQ_GRADE + 1);
	char	   *pending = spi_text(tup, desc, MQ_PENDING + 1);
	char	   *previous_card = spi_text(tup, desc, MQ_CARD_NAME + 1);
	bool		pending_since_null;
	Datum		pending_since_d = SPI_getbinval(tup, desc, MQ_PENDING_SINCE + 1,
												&pending_since_null);
	DateADT		pending_since = pending_since_null ? 0 : DatumGetDateADT(pending_since_d);
	StringInfoData why;
	int			band;
	int			steps = 0;
	int			target;
	int			final;
	int			prev;
	const ScoreGrade *g;
	Numeric		limit;
	char	   *action = NULL;
	int			i;

	initStringInfo(&why);
	for (i = 0; i < card->nmetrics; i++)
		metric[i] = spi_numeric(tup, desc, MQ_FIRST_METRIC + i + 1);

	/* factors */
	for (i = 0; i < card->nfactors; i++)
	{
		const ScoreFactor *f = &card->factors[i];
		Numeric		contribution;

		factor_values[i] = metric[f->metric];
		points[i] = factor_points(f, factor_values[i]);
		contribution = credit_numeric_div(credit_numeric_mul(f->weight, points[i]),
										  numeric_hundred);
		total = credit_numeric_add(total, contribution);
		lost[nlost].factor = i;
		lost[nlost].lost = credit_numeric_sub(f->weight, contribution);
		if (credit_numeric_cmp(lost[nlost].lost, numeric_zero) > 0)
			nlost++;
	}
	score = credit_numeric_round(total, 2);
	qsort(lost, nlost, sizeof(LostPoints), lost_cmp);
	for (i = 0; i < nlost; i++)
		reasons[i] = card->factors[lost[i].factor].reason_code;

	/* grade: band, then rules */
	band = band_of(card, score);
	appendStringInfo(&why, "score %s in band %s",
					 credit_numeric_text(score), card->grades[band].name);
	for (i = 0; i < card->nrules; i++)
	{
		const ScoreRule *r = &card->rules[i];

		if (rule_fires(r, metric[r->metric]))
		{
			steps += r->steps;
			appendStringInfo(&why, "; rule %d (%s %s %s, value %s): %d down",
							 r->rule_no, card->metrics[r->metric], r->op_text,
							 credit_numeric_text(r->threshold),
							 credit_numeric_text(metric[r->metric]), r->steps);
		}
	}
	target = Max(0, band - steps);

	/* hysteresis against the grade in force under the same scorecard name */
	prev = (hysteresis && previous_card != NULL && strcmp(previous_card, card->name) == 0)
		? grade_index(card, previous) : -1;
	if (!hysteresis)
	{
		final = target;
		pending = NULL;
	}
	else if (prev < 0)
	{
		final = target;
		pending = NULL;
		appendStringInfoString(&why, previous ? "; first grading under this scorecard"
							   : "; first grading");
	}
	else
	{
		int			candidate = Max(0, band_with_margin(card, score, prev) - steps);

		if (candidate == prev)
		{
			final = prev;
			pending = NULL;
			if (target != prev)
				appendStringInfo(&why, "; kept %s within the hysteresis margin",
								 card->grades[prev].name);
		}
		else if (steps > 0 && candidate < prev)
		{
			final = candidate;
			pending = NULL;
			appendStringInfoString(&why, "; rule downgrade applied at once");
		}
		else if (card->confirm_days == 0)
		{
			final = candidate;
			pending = NULL;
		}
		else if (pending != NULL && !pending_since_null &&
				 strcmp(pending, card->grades[candidate].name) == 0)
		{
			if (as_of - pending_since >= card->confirm_days)
			{
				final = candidate;
				appendStringInfo(&why, "; %s confirmed since %s", pending,
								 DatumGetCString(DirectFunctionCall1(date_out,
																	 DateADTGetDatum(pending_since))));
				pending = NULL;
			}
			else
			{
				final = prev;
				appendStringInfo(&why, "; %s pending since %s", pending,
								 DatumGetCString(DirectFunctionCall1(date_out,
																	 DateADTGetDatum(pending_since))));
			}
		}
		else
		{
			final = prev;
			pending = card->grades[candidate].name;
			pending_since = as_of;
			pending_since_null = false;
			appendStringInfo(&why, "; %s pending for %d days", pending, card->confirm_days);
		}
	}

	/* recommendation of the final grade, and what to do about the limit */
	g = &card->grades[final];
	limit = g->limit_base;
	if (g->limit_metric >= 0 && metric[g->limit_metric] != NULL)
		limit = credit_numeric_add(limit, credit_numeric_mul(g->limit_multiplier,
															 metric[g->limit_metric]));
	if (credit_numeric_cmp(limit, g->limit_floor) < 0)
		limit = g->limit_floor;
	if (credit_numeric_cmp(limit, g->limit_cap) > 0)
		limit = g->limit_cap;
	limit = credit_numeric_mul(credit_numeric_floor(credit_numeric_div(limit, g->limit_round)),
							   g->limit_round);
	if (current_limit != NULL)
	{
		Numeric		diff = credit_numeric_sub(limit, current_limit);
		bool		limit_moves;

		if (credit_numeric_cmp(diff, numeric_zero) < 0)
			diff = credit_numeric_sub(numeric_zero, diff);
		limit_moves = credit_numeric_cmp(diff, numeric_zero) > 0 &&
			credit_numeric_cmp(diff, card->limit_min_change) >= 0;
		if (limit_moves || g->term_days != current_term)
		{
			bool		tightening = credit_numeric_cmp(limit, current_limit) <= 0 &&
				g->term_days <= current_term;

			if (g->auto_apply == AUTO_ALWAYS ||
				(g->auto_apply == AUTO_DECREASE && tightening))
				action = "apply";
			else
				action = "request";
		}
	}

	memset(nulls, false, sizeof(nulls));
	values[0] = CStringGetTextDatum(spi_text(tup, desc, MQ_CUSTOMER + 1));
	values[1] = NumericGetDatum(score);
	values[2] = CStringGetTextDatum(card->grades[band].name);
	values[3] = CStringGetTextDatum(card->grades[target].name);
	values[4] = CStringGetTextDatum(card->grades[final].name);
	nulls[5] = previous == NULL;
	values[5] = previous ? CStringGetTextDatum(previous) : (Datum) 0;
	values[6] = BoolGetDatum(hysteresis &&
							 (previous == NULL || strcmp(previous, card->grades[final].name) != 0));
	nulls[7] = pending == NULL;
	values[7] = pending ? CStringGetTextDatum(pending) : (Datum) 0;
	nulls[8] = pending == NULL;
	values[8] = DateADTGetDatum(pending_since);
	values[9] = CStringGetTextDatum(why.data);
	values[10] = NumericGetDatum(limit);
	values[11] = Int32GetDatum(g->term_days);
	nulls[12] = current_limit == NULL;
	values[12] = current_limit ? NumericGetDatum(current_limit) : (Datum) 0;
	values[13] = Int32GetDatum(current_term);
	nulls[14] = action == NULL;
	values[14] = action ? CStringGetTextDatum(action) : (Datum) 0;
	values[15] = text_array(reasons, nlost);
	values[16] = numeric_array(points, card->nfactors);
	values[17] = numeric_array(factor_values, card->nfactors);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
credit_score_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		id_null = PG_ARGISNULL(0);
	int64		id = id_null ? 0 : PG_GETARG_INT64(0);
	DateADT		as_of;
	bool		hysteresis;
	MemoryContext row_context;
	MemoryContext old;
	Scorecard  *card;
	Portal		portal;
	Oid			argtypes[5] = {DATEOID, INT4OID, INT4OID, TEXTOID, TEXTARRAYOID};
	Datum		args[5];
	char		argnulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			nuser = 0;
	Datum	   *user_names;
	int			k;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scoring needs an as-of date")));
	as_of = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scoring needs a finite as-of date")));
	hysteresis = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);

	InitMaterializedSRF(fcinfo, 0);

	if (numeric_zero == NULL)
	{
		old = MemoryContextSwitchTo(TopMemoryContext);
		numeric_zero = credit_numeric("0");
		numeric_hundred = credit_numeric("100");
		MemoryContextSwitchTo(old);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "credit: SPI_connect failed");

	card = load_scorecard(id_null, id);

	user_names = palloc(sizeof(Datum) * Max(card->nmetrics, 1));
	for (k = 0; k < card->nmetrics; k++)
		if (!card->builtin[k])
			user_names[nuser++] = CStringGetTextDatum(card->metrics[k]);
	args[0] = DateADTGetDatum(as_of);
	args[1] = Int32GetDatum(card->window_months);
	args[2] = Int32GetDatum(card->overdue_months);
	if (PG_ARGISNULL(2))
	{
		args[3] = (Datum) 0;
		argnulls[3] = 'n';
	}
	else
		args[3] = PG_GETARG_DATUM(2);
	args[4] = PointerGetDatum(construct_array(user_names, nuser, TEXTOID, -1, false,
											  TYPALIGN_INT));

	portal = SPI_cursor_open_with_args(NULL, metrics_query(card), 5, argtypes, args,
									   argnulls, true, 0);
	row_context = AllocSetContextCreate(CurrentMemoryContext, "credit score row",
										ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		i;

		SPI_cursor_fetch(portal, true, SCORE_FETCH_BATCH);
		tt = SPI_tuptable;
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(row_context);
			score_row(card, tt->vals[i], tt->tupdesc, as_of, hysteresis, rsinfo);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_context);
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}
