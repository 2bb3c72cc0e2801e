/*-------------------------------------------------------------------------
 *
 * accounts.c
 *	  Credit status rules, and the trigger that keeps them on credit.accounts.
 *
 * The status of an account follows iDempiere.  It is derived from three
 * inputs: manual_status (none or stop, set by a person by writing status),
 * dunning_status (watch or stop, set and lifted by credit.run_dunning), and
 * exposure against the effective limit (credit limit plus the temporary
 * limit while now() is inside its window):
 *	  manual none -> none; manual or dunning stop -> stop; exposure above the
 *	  limit -> hold; at or above watch_ratio of it, or dunning watch -> watch;
 *	  otherwise ok.
 * The derivation lives here once and serves both the exposure ledger, which
 * writes account rows directly, and the BEFORE INSERT OR UPDATE trigger
 * that applies it to ordinary SQL writes (a limit change, COPY, a repair, a
 * person setting or lifting a stop, dunning).
 * Every change of status is recorded in credit.status_changes and announced
 * with NOTIFY on channel credit_events.  Nothing here takes locks of its
 * own: callers hold the account row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_accounts_status_trigger);

static const char *const status_names[] = {"none", "ok", "watch", "hold", "stop"};

/* ---- numeric helpers ---- */

Numeric
credit_numeric(const char *text)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(text),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

int
credit_numeric_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											 NumericGetDatum(a),
											 NumericGetDatum(b)));
}

Numeric
credit_numeric_add(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_add,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
credit_numeric_sub(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_sub,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
credit_numeric_mul(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_mul,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

Numeric
credit_numeric_div(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_div,
											   NumericGetDatum(a),
											   NumericGetDatum(b)));
}

/* round to scale decimal places (half away from zero) */
Numeric
credit_numeric_round(Numeric a, int scale)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_round,
											   NumericGetDatum(a),
											   Int32GetDatum(scale)));
}

Numeric
credit_numeric_floor(Numeric a)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_floor,
											   NumericGetDatum(a)));
}

char *
credit_numeric_text(Numeric n)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(n)));
}

/* finite and strictly inside (-1e15, 1e15) */
bool
credit_numeric_in_bounds(Numeric n)
{
	static Numeric bound = NULL;
	Numeric		absval;

	if (numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	if (bound == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		bound = credit_numeric(CREDIT_AMOUNT_BOUND);
		MemoryContextSwitchTo(old);
	}
	absval = DatumGetNumeric(DirectFunctionCall1(numeric_abs,
												 NumericGetDatum(n)));
	return credit_numeric_cmp(absval, bound) < 0;
}

/* ---- status rules ---- */

const char *
credit_status_name(CreditStatus status)
{
	return status_names[status];
}

/* parse a status name; false if it is not one */
static bool
parse_status(const char *status, CreditStatus *result)
{
	for (int i = 0; i < lengthof(status_names); i++)
		if (strcmp(status, status_names[i]) == 0)
		{
			*result = (CreditStatus) i;
			return true;
		}
	return false;
}

CreditStatus
credit_status_from_text(const char *status)
{
	CreditStatus result;

	/* rows the CHECK constraint let in always parse */
	if (!parse_status(status, &result))
		elog(ERROR, "unknown credit status \"%s\"", status);
	return result;
}

static Numeric
numeric_attr(HeapTuple tuple, TupleDesc desc, int attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum, desc, &isnull);

	if (isnull)
		elog(ERROR, "credit.accounts column %d is null", attnum);
	return DatumGetNumeric(d);
}

static TimestampTz
timestamp_attr(HeapTuple tuple, TupleDesc desc, int attnum, bool *isnull)
{
	Datum		d = heap_getattr(tuple, attnum, desc, isnull);

	return *isnull ? 0 : DatumGetTimestampTz(d);
}

void
credit_account_values(HeapTuple tuple, TupleDesc desc, CreditAccountValues *v)
{
	bool		isnull;
	Datum		status;

	v->credit_limit = numeric_attr(tuple, desc, Anum_accounts_credit_limit);
	v->temp_limit = numeric_attr(tuple, desc, Anum_accounts_temp_limit);
	v->temp_from = timestamp_attr(tuple, desc, Anum_accounts_temp_limit_from,
								  &v->temp_from_null);
	v->temp_until = timestamp_attr(tuple, desc, Anum_accounts_temp_limit_until,
								   &v->temp_until_null);
	v->watch_ratio = numeric_attr(tuple, desc, Anum_accounts_watch_ratio);
	v->exposure = numeric_attr(tuple, desc, Anum_accounts_exposure);
	status = heap_getattr(tuple, Anum_accounts_status, desc, &isnull);
	v->status = isnull ? CREDIT_STATUS_OK
		: credit_status_from_text(TextDatumGetCString(status));
	status = heap_getattr(tuple, Anum_accounts_manual_status, desc, &isnull);
	v->manual = isnull ? CREDIT_STATUS_OK
		: credit_status_from_text(TextDatumGetCString(status));
	status = heap_getattr(tuple, Anum_accounts_dunning_status, desc, &isnull);
	v->dunning = isnull ? CREDIT_STATUS_OK
		: credit_status_from_text(TextDatumGetCString(status));
}

/* credit limit, plus the temporary limit while now() is inside its window */
Numeric
credit_effective_limit(const CreditAccountValues *v)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Numeric		zero = int64_to_numeric(0);

	if (credit_numeric_cmp(v->temp_limit, zero) > 0 &&
		(v->temp_from_null || v->temp_from <= now) &&
		!v->temp_until_null && now < v->temp_until)
		return credit_numeric_add(v->credit_limit, v->temp_limit);
	return v->credit_limit;
}

/*
 * The status from its inputs: a person's none or stop first, then a
 * dunning stop, then hold, watch (by exposure or by dunning), ok.
 */
CreditStatus
credit_derive_status(const CreditAccountValues *v, Numeric effective_limit)
{
	Numeric		zero = int64_to_numeric(0);

	if (v->manual == CREDIT_STATUS_NONE)
		return CREDIT_STATUS_NONE;
	if (v->manual == CREDIT_STATUS_STOP || v->dunning == CREDIT_STATUS_STOP)
		return CREDIT_STATUS_STOP;
	if (credit_numeric_cmp(v->exposure, effective_limit) > 0)
		return CREDIT_STATUS_HOLD;
	if (v->dunning == CREDIT_STATUS_WATCH ||
		(credit_numeric_cmp(v->exposure, zero) > 0 &&
		 credit_numeric_cmp(v->exposure,
							credit_numeric_mul(v->watch_ratio,
											   effective_limit)) >= 0))
		return CREDIT_STATUS_WATCH;
	return CREDIT_STATUS_OK;
}

/*
 * Record a status change in credit.status_changes and announce it on
 * channel credit_events with a JSON payload.  Rare, so plain SPI.
 */
void
credit_record_status_change(const char *customer_key, CreditStatus old_status,
							CreditStatus new_status, Numeric exposure,
							Numeric effective_limit)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *changed_by = GetUserNameFromId(credit_actor_id(), false);
	StringInfoData payload;
	int			rc;
	CreditUserSave save;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (plan == NULL)
	{
		Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, TEXTOID};
		SPIPlanPtr	p;

		p = SPI_prepare("INSERT INTO credit.status_changes "
						"(customer_key, old_status, new_status, exposure, effective_limit, changed_by) "
						"VALUES ($1, $2, $3, $4, $5, $6)", 6, argtypes);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	values[0] = CStringGetTextDatum(customer_key);
	values[1] = CStringGetTextDatum(credit_status_name(old_status));
	values[2] = CStringGetTextDatum(credit_status_name(new_status));
	values[3] = NumericGetDatum(exposure);
	values[4] = NumericGetDatum(effective_limit);
	values[5] = CStringGetTextDatum(changed_by);
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "recording a status change failed: %s", SPI_result_code_string(rc));
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"event\": \"status_change\", \"customer_key\": ");
	escape_json(&payload, customer_key);
	appendStringInfo(&payload,
					 ", \"old_status\": \"%s\", \"new_status\": \"%s\", "
					 "\"exposure\": %s, \"effective_limit\": %s}",
					 credit_status_name(old_status), credit_status_name(new_status),
					 credit_numeric_text(exposure),
					 credit_numeric_text(effective_limit));
	Async_Notify("credit_events", payload.data);
	pfree(payload.data);
}

/* the key of an account with exposure must not change under its orders */
static void
check_key_change(HeapTuple oldtuple, HeapTuple newtuple, TupleDesc desc)
{
	bool		isnull;
	char	   *oldkey = TextDatumGetCString(heap_getattr(oldtuple, Anum_accounts_customer_key,
														  desc, &isnull));
	char	   *newkey = TextDatumGetCString(heap_getattr(newtuple, Anum_accounts_customer_key,
														  desc, &isnull));
	Numeric		exposure;

	if (strcmp(oldkey, newkey) == 0)
		return;
	/* the serving ledger's figure: the shared-memory ledger's, or the stored one */
	exposure = credit_shared_exposure(oldkey, NULL);
	if (exposure == NULL)
		exposure = DatumGetNumeric(heap_getattr(oldtuple, Anum_accounts_exposure, desc, &isnull));
	if (credit_numeric_cmp(exposure, int64_to_numeric(0)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change the key of customer \"%s\" while it has exposure", oldkey),
				 errdetail("Its exposure is %s; the open orders that make it up name key \"%s\".",
						   credit_numeric_text(exposure), oldkey),
				 errhint("Close or move the customer's open orders first.")));
}

/*
 * Attribute number of credit.accounts.parent_key, looked up by name: it
 * came with version 1.2, and a database still at an older version (its
 * ALTER EXTENSION ... UPDATE not run yet) has none: InvalidAttrNumber,
 * and no account has a parent.
 */
AttrNumber
credit_accounts_parent_attnum(TupleDesc desc)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), "parent_key") == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * The number of accounts from key up to its root, key included (0 if key
 * has no account); stops counting past CREDIT_MAX_DEPTH.
 */
int
credit_chain_length(const char *key)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	int			rc;
	int			n;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	values[0] = CStringGetTextDatum(key);
	rc = SPI_execute_with_args("WITH RECURSIVE up(k, n) AS ("
							   " SELECT a.parent_key, 1 FROM credit.accounts a"
							   " WHERE a.customer_key OPERATOR(pg_catalog.=) $1"
							   " UNION ALL"
							   " SELECT a.parent_key, up.n OPERATOR(pg_catalog.+) 1"
							   " FROM credit.accounts a JOIN up"
							   " ON a.customer_key OPERATOR(pg_catalog.=) up.k"
							   " WHERE up.n OPERATOR(pg_catalog.<=) " CppAsString2(CREDIT_MAX_DEPTH) ")"
							   " SELECT COALESCE(pg_catalog.max(up.n), 0)::pg_catalog.int4 FROM up",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the parent chain failed: %s", SPI_result_code_string(rc));
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	return n;
}

/* set by credit.move_account (hierarchy.c) while it rewrites parent_key */
bool		credit_moving_account = false;

/*
 * A new account may name its parent only while it has no exposure (it has
 * none to roll up); an existing one changes parent only through
 * credit.move_account, which moves its exposure along.
 */
static void
check_parent(TriggerData *trigdata, HeapTuple newtuple, TupleDesc desc, Numeric exposure)
{
	AttrNumber	attnum = credit_accounts_parent_attnum(desc);
	bool		newnull;
	Datum		newparent;

	if (attnum == InvalidAttrNumber)
		return;
	newparent = heap_getattr(newtuple, attnum, desc, &newnull);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (!newnull &&
			credit_chain_length(TextDatumGetCString(newparent)) >= CREDIT_MAX_DEPTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("parent \"%s\" is too deep for another level",
							TextDatumGetCString(newparent)),
					 errdetail("An account has at most %d ancestors.", CREDIT_MAX_DEPTH - 1)));
		if (!newnull && credit_numeric_cmp(exposure, int64_to_numeric(0)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a new account under parent \"%s\" must start without exposure",
							TextDatumGetCString(newparent)),
					 errhint("Open it without a parent, then move it with credit.move_account, which moves its exposure along.")));
	}
	else if (!credit_moving_account)
	{
		bool		oldnull;
		Datum		oldparent = heap_getattr(trigdata->tg_trigtuple, attnum, desc, &oldnull);

		if (oldnull != newnull ||
			(!oldnull && strcmp(TextDatumGetCString(oldparent),
								TextDatumGetCString(newparent)) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the parent of a credit account changes only through credit.move_account"),
					 errhint("SELECT credit.move_account(customer, new_parent) moves the account and its exposure.")));
	}
}

/*
 * BEFORE INSERT OR UPDATE ON credit.accounts: take a written none or stop
 * as the person's manual_status, derive status from the row being written,
 * and record a change on UPDATE.
 */
Datum
credit_accounts_status_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtuple;
	CreditAccountValues v;
	CreditStatus old_status = CREDIT_STATUS_OK;
	CreditStatus new_status;
	Numeric		effective;
	bool		isnull;
	Datum		key;
	static const int required[] = {
		Anum_accounts_credit_limit, Anum_accounts_temp_limit,
		Anum_accounts_watch_ratio, Anum_accounts_status, Anum_accounts_exposure
	};

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit_accounts_status_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit_accounts_status_trigger: must be fired before, for each row")));

	desc = RelationGetDescr(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtuple = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtuple = trigdata->tg_newtuple;
		old_status = credit_status_from_text(
			TextDatumGetCString(heap_getattr(trigdata->tg_trigtuple,
											 Anum_accounts_status, desc,
											 &isnull)));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit_accounts_status_trigger: must be fired for INSERT or UPDATE")));

	/* NOT NULL and CHECK constraints run after BEFORE triggers */
	key = heap_getattr(newtuple, Anum_accounts_customer_key, desc, &isnull);
	if (isnull)
		return PointerGetDatum(newtuple);
	for (int i = 0; i < lengthof(required); i++)
	{
		(void) heap_getattr(newtuple, required[i], desc, &isnull);
		if (isnull)
			return PointerGetDatum(newtuple);
	}
	for (int att = Anum_accounts_status; att <= Anum_accounts_dunning_status; att++)
	{
		Datum		d;

		if (att == Anum_accounts_exposure)
			continue;
		d = heap_getattr(newtuple, att, desc, &isnull);
		if (!isnull && !parse_status(TextDatumGetCString(d), &new_status))
			return PointerGetDatum(newtuple);	/* the CHECK constraints say why */
	}
	credit_account_values(newtuple, desc, &v);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		check_key_change(trigdata->tg_trigtuple, newtuple, desc);
	check_parent(trigdata, newtuple, desc, v.exposure);
	if (!credit_numeric_in_bounds(v.credit_limit) ||
		!credit_numeric_in_bounds(v.temp_limit) ||
		!credit_numeric_in_bounds(v.exposure) ||
		numeric_is_nan(v.watch_ratio))
		return PointerGetDatum(newtuple);	/* the CHECK constraints say why */

	/*
	 * Writing status (naming it in UPDATE's SET list, whatever its old value)
	 * states a person's intent: none or stop is kept as manual_status,
	 * anything else lifts it and asks for the derived value.
	 */
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		v.manual == CREDIT_STATUS_OK :
		bms_is_member(Anum_accounts_status - FirstLowInvalidHeapAttributeNumber,
					  trigdata->tg_updatedcols))
		v.manual = (v.status == CREDIT_STATUS_NONE || v.status == CREDIT_STATUS_STOP)
			? v.status : CREDIT_STATUS_OK;

	effective = credit_effective_limit(&v);
	new_status = credit_derive_status(&v, effective);
	{
		int			cols[2] = {Anum_accounts_status, Anum_accounts_manual_status};
		Datum		vals[2];
		bool		nulls[2] = {false, v.manual == CREDIT_STATUS_OK};

		vals[0] = CStringGetTextDatum(credit_status_name(new_status));
		vals[1] = nulls[1] ? (Datum) 0 : CStringGetTextDatum(credit_status_name(v.manual));
		newtuple = heap_modify_tuple_by_cols(newtuple, desc, 2, cols, vals, nulls);
	}
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && new_status != old_status)
		credit_record_status_change(TextDatumGetCString(key), old_status,
									new_status, v.exposure, effective);
	return PointerGetDatum(newtuple);
}
