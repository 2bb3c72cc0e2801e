/*-------------------------------------------------------------------------
 *
 * reporting.c
 *	  Aggregates the reporting views use to read each customer's open
 *	  receivables and payments in one pass.
 *
 * credit.aging_json(bucket, amount, labels) sums amounts per aging bucket
 * (bucket i is labels[i + 1], as width_bucket over the buckets' lower
 * bounds numbers them) and returns {label: sum, ...} with every label
 * present (0 when empty).  It replaces a GROUP BY customer and bucket
 * followed by a second GROUP BY customer with jsonb_object_agg, which on
 * 100,000 customers spilled both aggregations to disk.
 *
 * credit.sum_on_last(day, amount) sums the amounts of the latest day in the
 * group (the last payment's total), so "the latest day and what was paid
 * on it" is one aggregate next to max(day), not a join back.
 *
 * Neither reads a table or takes a lock.  Both skip rows whose bucket or
 * day is NULL, like sum() skips NULL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_aging_json_step);
PG_FUNCTION_INFO_V1(credit_aging_json_final);
PG_FUNCTION_INFO_V1(credit_sum_on_last_step);
PG_FUNCTION_INFO_V1(credit_sum_on_last_final);

typedef struct AgingSums
{
	int			nbuckets;
	char	  **labels;			/* the bucket labels, in bucket order */
	Datum	   *sums;			/* numeric, or 0 while the bucket is empty */
} AgingSums;

typedef struct LastDaySum
{
	DateADT		day;
	Datum		sum;			/* numeric */
} LastDaySum;

static MemoryContext
aggregate_context(FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", name);
	return aggcontext;
}

/* a numeric Datum in the aggregate's context: sum + amount (sum may be 0: none yet) */
static Datum
add_amount(MemoryContext aggcontext, Datum sum, Datum amount)
{
	MemoryContext old = MemoryContextSwitchTo(aggcontext);
	Datum		result;

	if (sum == (Datum) 0)
		result = PointerGetDatum(DatumGetNumericCopy(amount));
	else
	{
		result = DirectFunctionCall2(numeric_add, sum, amount);
		pfree(DatumGetPointer(sum));
	}
	MemoryContextSwitchTo(old);
	return result;
}

Datum
credit_aging_json_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = aggregate_context(fcinfo, "credit.aging_json");
	AgingSums  *state = PG_ARGISNULL(0) ? NULL : (AgingSums *) PG_GETARG_POINTER(0);
	int			bucket;

	if (state == NULL)
	{
		ArrayType  *labels;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		MemoryContext old;

		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("credit.aging_json needs the bucket labels")));
		labels = PG_GETARG_ARRAYTYPE_P(3);
		deconstruct_array(labels, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		old = MemoryContextSwitchTo(aggcontext);
		state = palloc(sizeof(AgingSums));
		state->nbuckets = n;
		state->labels = palloc(sizeof(char *) * Max(n, 1));
		state->sums = palloc0(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("credit.aging_json: bucket label %d is NULL", i + 1)));
			state->labels[i] = TextDatumGetCString(elems[i]);
		}
		MemoryContextSwitchTo(old);
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(state);

	bucket = PG_GETARG_INT32(1);
	if (bucket < 0 || bucket >= state->nbuckets)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aging bucket index %d is outside the %d buckets", bucket,
						state->nbuckets)));
	state->sums[bucket] = add_amount(aggcontext, state->sums[bucket], PG_GETARG_DATUM(2));
	PG_RETURN_POINTER(state);
}

Datum
credit_aging_json_final(PG_FUNCTION_ARGS)
{
	AgingSums  *state;
	StringInfoData buf;

	(void) aggregate_context(fcinfo, "credit.aging_json");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (AgingSums *) PG_GETARG_POINTER(0);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < state->nbuckets; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, state->labels[i]);
		appendStringInfoString(&buf, ": ");
		if (state->sums[i] == (Datum) 0)
			appendStringInfoChar(&buf, '0');
		else
			appendStringInfoString(&buf,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   state->sums[i])));
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

Datum
credit_sum_on_last_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = aggregate_context(fcinfo, "credit.sum_on_last");
	LastDaySum *state = PG_ARGISNULL(0) ? NULL : (LastDaySum *) PG_GETARG_POINTER(0);
	DateADT		day;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	day = PG_GETARG_DATEADT(1);
	if (state == NULL)
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(LastDaySum));
		state->day = day;
	}
	else if (day > state->day)
	{
		pfree(DatumGetPointer(state->sum));
		state->sum = (Datum) 0;
		state->day = day;
	}
	else if (day < state->day)
		PG_RETURN_POINTER(state);
	state->sum = add_amount(aggcontext, state->sum, PG_GETARG_DATUM(2));
	PG_RETURN_POINTER(state);
}

Datum
credit_sum_on_last_final(PG_FUNCTION_ARGS)
{
	(void) aggregate_context(fcinfo, "credit.sum_on_last");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(((LastDaySum *) PG_GETARG_POINTER(0))->sum);
}
