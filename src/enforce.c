/*-------------------------------------------------------------------------
 *
 * enforce.c
 *	  Triggers on attached order tables.
 *
 * credit_enforce_orders is an AFTER INSERT OR UPDATE OR DELETE row
 * trigger: it sees each row as finally written (after any BEFORE trigger of
 * the application, and only for rows an upsert really inserted or updated),
 * works out how the row's contribution to exposure changed, and hands that
 * to the exposure ledger (exposure.c), which checks and applies it under
 * the account rows' locks.  A row counts while its status is one of the
 * table's open statuses (always, when the table has no status column).
 *
 * credit_enforce_orders_truncate is a BEFORE TRUNCATE statement trigger:
 * TRUNCATE holds ACCESS EXCLUSIVE on the table when it fires, so the open
 * exposure summed in a snapshot taken then (not the statement's, which may
 * predate the wait for the lock) is exact, and it is released.
 *
 * Over-limit policy (orders only).  reject: a refused increase raises
 * CR001/CR002 (the default).  hold: the change is tried in a subtransaction
 * (credit_try_apply_changes); on refusal the old row's contribution, if
 * any, is released, and credit.hold_order (sql/holds.sql) writes the held
 * status to the row and opens an order-release application; the nested
 * UPDATE that writes the status is skipped here (the open amount was never
 * counted).  When the application itself moves a held order out of its held
 * status, or deletes it, credit.hold_left ends the hold and withdraws its
 * application.  warn: on refusal the change is applied unchecked and
 * credit.record_overlimit_warning records and announces it.  Releasing an
 * approved held order runs its UPDATE through credit_held_order_update,
 * which marks that row so its increase is applied unchecked: an approved
 * overrun.
 *
 * How a table is attached is read once per backend from credit.attachments
 * and cached by relation OID; any relcache invalidation of the table
 * (ALTER TABLE, CREATE or DROP TRIGGER, detach) drops the cache entry, so
 * attribute numbers and types are always those of the current descriptor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_enforce_orders);
PG_FUNCTION_INFO_V1(credit_enforce_orders_truncate);
PG_FUNCTION_INFO_V1(credit_held_order_update);

typedef enum OverLimit
{
	OVER_LIMIT_REJECT,
	OVER_LIMIT_HOLD,
	OVER_LIMIT_WARN
} OverLimit;

/* the order row being held or released by this backend, if any */
static Oid	holding_relid = InvalidOid;
static char *holding_key = NULL;
static Oid	deciding_relid = InvalidOid;	/* a held order being released or rejected */
static char *deciding_key = NULL;
static bool deciding_release = false;

/* how one attached table is read; lives in CacheMemoryContext */
typedef struct OrdersTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	AttrNumber	customer_att;
	AttrNumber	amount_att;
	AttrNumber	status_att;		/* InvalidAttrNumber: every row counts */
	Oid			amount_type;
	FmgrInfo	customer_out;
	FmgrInfo	status_out;
	int			nopen;
	char	  **open_statuses;
	bool		negative;		/* rows lower exposure (payments) */
	bool		check_limit;	/* increases are checked (orders) */
	OverLimit	over_limit;		/* what a refused increase does */
	AttrNumber	key_att;		/* order key (hold, warn), or invalid */
	FmgrInfo	key_out;
	AttrNumber	segment_att;	/* credit segment, or invalid */
	FmgrInfo	segment_out;
	AttrNumber	currency_att;	/* the row's currency, or invalid */
	FmgrInfo	currency_out;
	char	   *held_status;	/* hold: the status a held order has */
	const char *what;			/* "order", "invoice", "payment" */
	MemoryContext cxt;			/* owns the strings above */
} OrdersTable;

static HTAB *orders_tables = NULL;

static void
orders_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	OrdersTable *entry;

	if (orders_tables == NULL)
		return;
	hash_seq_init(&status, orders_tables);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || entry->relid == relid)
			entry->valid = false;
}

static AttrNumber
find_column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of attached table \"%s\" does not exist",
					name, RelationGetRelationName(rel)),
			 errhint("Detach the table with credit.detach_orders and attach it again with its current columns."),
			 errtable(rel)));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

static void
check_type(Relation rel, AttrNumber att, const Oid *allowed, int nallowed)
{
	Form_pg_attribute a = TupleDescAttr(RelationGetDescr(rel), att - 1);

	for (int i = 0; i < nallowed; i++)
		if (a->atttypid == allowed[i])
			return;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of attached table \"%s\" has unsupported type %s",
					NameStr(a->attname), RelationGetRelationName(rel),
					format_type_be(a->atttypid)),
			 errhint("Detach the table with credit.detach_orders; see README for the supported types."),
			 errtablecol(rel, att)));
}

/* read the attachment of rel from credit.attachments into entry */
static void
load_orders_table(Relation rel, OrdersTable *entry)
{
	static SPIPlanPtr plan = NULL;
	static const Oid key_types[] = {INT2OID, INT4OID, INT8OID, TEXTOID, VARCHAROID, UUIDOID};
	static const Oid amount_types[] = {NUMERICOID, INT2OID, INT4OID, INT8OID};
	static const Oid status_types[] = {TEXTOID, VARCHAROID, NAMEOID, INT2OID, INT4OID, INT8OID};
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	int			rc;
	HeapTuple	tup;
	TupleDesc	tdesc;
	bool		isnull;
	Datum		d;
	Oid			outfunc;
	bool		varlena;
	MemoryContext old;
	CreditUserSave save;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT customer_column::pg_catalog.text, "
									"amount_column::pg_catalog.text, "
									"status_column::pg_catalog.text, open_statuses, role, "
									"over_limit, key_column::pg_catalog.text, held_status, "
									/* added in 1.2 and 1.3: absent before the updates */
									"pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'segment_column', "
									"pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'currency_column' "
									"FROM credit.attachments a "
									"WHERE orders OPERATOR(pg_catalog.=) $1",
									1, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	args[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	rc = SPI_execute_plan(plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading credit.attachments failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has a credit trigger but is not attached",
						RelationGetRelationName(rel)),
				 errhint("Attach it with credit.attach_orders, or drop the trigger."),
				 errtable(rel)));
	tup = SPI_tuptable->vals[0];
	tdesc = SPI_tuptable->tupdesc;

	if (entry->cxt != NULL)
		MemoryContextDelete(entry->cxt);
	entry->cxt = AllocSetContextCreate(CacheMemoryContext, "credit orders table",
									   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(entry->cxt);

	entry->customer_att = find_column(rel, SPI_getvalue(tup, tdesc, 1));
	entry->amount_att = find_column(rel, SPI_getvalue(tup, tdesc, 2));
	check_type(rel, entry->customer_att, key_types, lengthof(key_types));
	check_type(rel, entry->amount_att, amount_types, lengthof(amount_types));
	entry->amount_type = TupleDescAttr(RelationGetDescr(rel), entry->amount_att - 1)->atttypid;
	getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), entry->customer_att - 1)->atttypid,
					  &outfunc, &varlena);
	fmgr_info_cxt(outfunc, &entry->customer_out, entry->cxt);

	{
		char	   *role = SPI_getvalue(tup, tdesc, 5);

		entry->negative = strcmp(role, "payments") == 0;
		entry->check_limit = strcmp(role, "orders") == 0;
		entry->what = strcmp(role, "orders") == 0 ? "order"
			: strcmp(role, "receivables") == 0 ? "invoice" : "payment";
	}
	{
		char	   *policy = SPI_getvalue(tup, tdesc, 6);
		char	   *key_column = SPI_getvalue(tup, tdesc, 7);

		entry->held_status = SPI_getvalue(tup, tdesc, 8);	/* in entry->cxt */

		entry->over_limit = strcmp(policy, "hold") == 0 ? OVER_LIMIT_HOLD :
			strcmp(policy, "warn") == 0 ? OVER_LIMIT_WARN : OVER_LIMIT_REJECT;
		entry->key_att = InvalidAttrNumber;
		if (key_column != NULL)
		{
			entry->key_att = find_column(rel, key_column);
			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), entry->key_att - 1)->atttypid,
							  &outfunc, &varlena);
			fmgr_info_cxt(outfunc, &entry->key_out, entry->cxt);
		}
	}
	{
		char	   *segment_column = SPI_getvalue(tup, tdesc, 9);

		entry->segment_att = InvalidAttrNumber;
		if (segment_column != NULL)
		{
			entry->segment_att = find_column(rel, segment_column);
			check_type(rel, entry->segment_att, key_types, lengthof(key_types));
			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), entry->segment_att - 1)->atttypid,
							  &outfunc, &varlena);
			fmgr_info_cxt(outfunc, &entry->segment_out, entry->cxt);
		}
	}
	{
		static const Oid currency_types[] = {TEXTOID, VARCHAROID, BPCHAROID};
		char	   *currency_column = SPI_getvalue(tup, tdesc, 10);

		entry->currency_att = InvalidAttrNumber;
		if (currency_column != NULL)
		{
			entry->currency_att = find_column(rel, currency_column);
			check_type(rel, entry->currency_att, currency_types, lengthof(currency_types));
			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), entry->currency_att - 1)->atttypid,
							  &outfunc, &varlena);
			fmgr_info_cxt(outfunc, &entry->currency_out, entry->cxt);
		}
	}
	entry->status_att = InvalidAttrNumber;
	entry->nopen = 0;
	d = SPI_getbinval(tup, tdesc, 3, &isnull);
	if (!isnull)
	{
		ArrayType  *arr;
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;

		entry->status_att = find_column(rel, TextDatumGetCString(d));
		if (!type_is_enum(TupleDescAttr(RelationGetDescr(rel), entry->status_att - 1)->atttypid))
			check_type(rel, entry->status_att, status_types, lengthof(status_types));
		getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), entry->status_att - 1)->atttypid,
						  &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &entry->status_out, entry->cxt);
		arr = DatumGetArrayTypeP(SPI_getbinval(tup, tdesc, 4, &isnull));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elemnulls, &nelems);
		entry->open_statuses = palloc(sizeof(char *) * Max(nelems, 1));
		for (int i = 0; i < nelems; i++)
			if (!elemnulls[i])
				entry->open_statuses[entry->nopen++] = TextDatumGetCString(elems[i]);
	}
	MemoryContextSwitchTo(old);
	entry->valid = true;

	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
}

static OrdersTable *
get_orders_table(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	OrdersTable *entry;
	bool		found;

	if (orders_tables == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(OrdersTable);
		ctl.hcxt = CacheMemoryContext;
		orders_tables = hash_create("credit orders tables", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(orders_relcache_callback, (Datum) 0);
	}
	entry = hash_search(orders_tables, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->valid = false;
		entry->cxt = NULL;
	}
	if (!entry->valid)
		load_orders_table(rel, entry);
	return entry;
}

/* does this row count as exposure (is its status open)? */
static bool
row_is_open(OrdersTable *t, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d;
	char	   *status;

	if (t->status_att == InvalidAttrNumber)
		return true;
	d = heap_getattr(tuple, t->status_att, desc, &isnull);
	if (isnull)
		return false;
	status = OutputFunctionCall(&t->status_out, d);
	for (int i = 0; i < t->nopen; i++)
		if (strcmp(status, t->open_statuses[i]) == 0)
			return true;
	return false;
}

/* does the row have exactly this status? */
static bool
row_has_status(OrdersTable *t, HeapTuple tuple, TupleDesc desc, const char *status)
{
	bool		isnull;
	Datum		d;

	if (t->status_att == InvalidAttrNumber || status == NULL)
		return false;
	d = heap_getattr(tuple, t->status_att, desc, &isnull);
	return !isnull && strcmp(OutputFunctionCall(&t->status_out, d), status) == 0;
}

/* the row's amount as numeric; NULL counts as zero */
static Numeric
row_amount(OrdersTable *t, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, t->amount_att, desc, &isnull);

	if (isnull)
		return int64_to_numeric(0);
	switch (t->amount_type)
	{
		case INT2OID:
			return int64_to_numeric(DatumGetInt16(d));
		case INT4OID:
			return int64_to_numeric(DatumGetInt32(d));
		case INT8OID:
			return int64_to_numeric(DatumGetInt64(d));
		default:
			return DatumGetNumeric(d);
	}
}

/* a new open row's amount must be a finite, non-negative, bounded number */
static void
check_amount(Relation rel, OrdersTable *t, Numeric amount)
{
	const char *problem = NULL;
	int			code = ERRCODE_INVALID_PARAMETER_VALUE;

	if (numeric_is_nan(amount))
		problem = "is NaN";
	else if (numeric_is_inf(amount))
		problem = "is infinite";
	else if (credit_numeric_cmp(amount, int64_to_numeric(0)) < 0)
		problem = "is negative";
	else if (!credit_numeric_in_bounds(amount))
	{
		problem = "is out of range";
		code = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
	}
	if (problem)
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s amount %s %s", t->what, credit_numeric_text(amount), problem),
				 errdetail("An open %s's amount must be a finite number from 0 up to below %s.",
						   t->what, CREDIT_AMOUNT_BOUND),
				 errhint("Record returns and credits as their own documents, not as negative orders."),
				 errtablecol(rel, t->amount_att)));
}

/*
 * The account key of an open row: the customer key in text form (NULL is
 * refused), and for a table with a segment column, customer/segment (a
 * NULL segment: the customer's own account).
 */
static char *
row_customer(Relation rel, OrdersTable *t, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, t->customer_att, desc, &isnull);
	char	   *customer;
	char	   *segment;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("open order in \"%s\" has no customer",
						RelationGetRelationName(rel)),
				 errdetail("Column \"%s\" is null; an open order must name the customer whose credit it uses.",
						   NameStr(TupleDescAttr(desc, t->customer_att - 1)->attname)),
				 errtablecol(rel, t->customer_att)));
	customer = OutputFunctionCall(&t->customer_out, d);
	if (t->segment_att == InvalidAttrNumber)
		return customer;
	d = heap_getattr(tuple, t->segment_att, desc, &isnull);
	if (isnull)
		return customer;
	segment = OutputFunctionCall(&t->segment_out, d);
	if (strchr(segment, '/') != NULL || segment[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("credit segment \"%s\" of an order in \"%s\" is empty or contains \"/\"",
						segment, RelationGetRelationName(rel)),
				 errdetail("A segment's account is \"customer/segment\"; the segment must be a non-empty name without \"/\"."),
				 errtablecol(rel, t->segment_att)));
	return psprintf("%s/%s", customer, segment);
}

static Numeric
negate(Numeric n)
{
	return DatumGetNumeric(DirectFunctionCall1(numeric_uminus, NumericGetDatum(n)));
}

/*
 * The change an open row brings to its account: its amount (negated for a
 * release), converted to the account's currency when the table has a
 * currency column and the row is in another currency.
 */
static void
row_change(Relation rel, OrdersTable *t, HeapTuple tuple, TupleDesc desc,
		   Numeric amount, bool release, CreditChange *change)
{
	change->customer_key = row_customer(rel, t, tuple, desc);
	change->delta = amount;
	change->check = t->check_limit;
	change->currency = NULL;
	if (t->currency_att != InvalidAttrNumber)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, t->currency_att, desc, &isnull);
		char	   *account_currency;
		Numeric		rate;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("open order in \"%s\" has no currency",
							RelationGetRelationName(rel)),
					 errdetail("Column \"%s\" is null; an open order must say its currency.",
							   NameStr(TupleDescAttr(desc, t->currency_att - 1)->attname)),
					 errtablecol(rel, t->currency_att)));
		rate = credit_currency_rate(change->customer_key,
									OutputFunctionCall(&t->currency_out, d),
									&account_currency);
		if (rate)
			change->delta = credit_numeric_mul(amount, rate);
		change->currency = account_currency;
	}
	if (release != t->negative)
		change->delta = negate(change->delta);
}

static bool
column_unchanged(TupleDesc desc, AttrNumber att, HeapTuple a, HeapTuple b)
{
	bool		anull,
				bnull;
	Datum		ad = heap_getattr(a, att, desc, &anull);
	Datum		bd = heap_getattr(b, att, desc, &bnull);
	Form_pg_attribute attr = TupleDescAttr(desc, att - 1);

	if (anull || bnull)
		return anull == bnull;
	return datumIsEqual(ad, bd, attr->attbyval, attr->attlen);
}

/* the order key of a row of a hold or warn table, in text form */
static char *
row_key(Relation rel, OrdersTable *t, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d;

	if (t->key_att == InvalidAttrNumber)
		return NULL;
	d = heap_getattr(tuple, t->key_att, desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("order in \"%s\" has no key", RelationGetRelationName(rel)),
				 errdetail("Column \"%s\" is null; an order that may be held needs its key.",
						   NameStr(TupleDescAttr(desc, t->key_att - 1)->attname)),
				 errtablecol(rel, t->key_att)));
	return OutputFunctionCall(&t->key_out, d);
}

/* run one internal SQL call as the owner of schema credit */
static void
run_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	CreditUserSave save;
	int			rc;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	rc = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "credit: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
}

/*
 * An increase was refused on a hold or warn table.  hold: release what the
 * old row counted, then have the row held (its status written by a nested
 * UPDATE that this trigger skips) and a release application opened.  warn:
 * apply the changes unchecked and record the warning.
 */
static void
over_limit(Relation rel, OrdersTable *t, CreditChange *changes, int n,
		   bool old_counted, const char *key, Numeric amount,
		   const char *customer, ErrorData *refusal, const CreditSource *source)
{
	Oid			argtypes[7] = {OIDOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[7];

	args[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	args[1] = CStringGetTextDatum(key);
	args[2] = CStringGetTextDatum(customer);
	args[3] = NumericGetDatum(amount);
	args[4] = CStringGetTextDatum(unpack_sql_state(refusal->sqlerrcode));
	args[5] = CStringGetTextDatum(refusal->message ? refusal->message : "");
	args[6] = CStringGetTextDatum(GetUserNameFromId(credit_actor_id(), false));

	if (t->over_limit == OVER_LIMIT_WARN)
	{
		for (int i = 0; i < n; i++)
			changes[i].check = false;
		credit_apply_changes(changes, n, source);
		run_as_owner("SELECT credit.record_overlimit_warning($1, $2, $3, $4, $5, $6, $7)",
					 7, argtypes, args);
		return;
	}

	/* hold: the old row's contribution goes; the new one never came */
	if (old_counted)
	{
		CreditChange release = changes[0];

		release.check = false;
		credit_apply_changes(&release, 1, source);
	}
	holding_relid = RelationGetRelid(rel);
	holding_key = pstrdup(key);
	PG_TRY();
	{
		run_as_owner("SELECT credit.hold_order($1, $2, $3, $4, $5, $6, $7)",
					 7, argtypes, args);
	}
	PG_FINALLY();
	{
		holding_relid = InvalidOid;
		holding_key = NULL;
	}
	PG_END_TRY();
}

Datum
credit_enforce_orders(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	OrdersTable *t;
	HeapTuple	oldrow = NULL;
	HeapTuple	newrow = NULL;
	CreditChange changes[2];
	int			n = 0;
	CreditSource source;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders: not called by trigger manager")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders: must be fired after, for each row")));
	if (trigdata->tg_trigger->tgnargs != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders: takes no arguments"),
				 errhint("Use credit.attach_orders to attach a table.")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newrow = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		oldrow = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldrow = trigdata->tg_trigtuple;
		newrow = trigdata->tg_newtuple;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders: must be fired for INSERT, UPDATE or DELETE")));

	t = get_orders_table(rel);

	/* an update that touches none of our columns changes nothing */
	if (oldrow && newrow &&
		column_unchanged(desc, t->customer_att, oldrow, newrow) &&
		(t->segment_att == InvalidAttrNumber ||
		 column_unchanged(desc, t->segment_att, oldrow, newrow)) &&
		(t->currency_att == InvalidAttrNumber ||
		 column_unchanged(desc, t->currency_att, oldrow, newrow)) &&
		column_unchanged(desc, t->amount_att, oldrow, newrow) &&
		(t->status_att == InvalidAttrNumber ||
		 column_unchanged(desc, t->status_att, oldrow, newrow)))
		return PointerGetDatum(NULL);

	/*
	 * A held order (other than one being held or decided right now) keeps
	 * the amount and customer its release application asks for, and
	 * credit.blocked_orders reports, while it stays held.  If the
	 * application moves it out of its held status, or deletes it, the hold
	 * ends and its application is withdrawn; a move to an open status is
	 * then checked below like any new open order.
	 */
	if (t->over_limit == OVER_LIMIT_HOLD && oldrow &&
		deciding_relid != RelationGetRelid(rel) &&
		holding_relid != RelationGetRelid(rel) &&
		row_has_status(t, oldrow, desc, t->held_status))
	{
		if (newrow && row_has_status(t, newrow, desc, t->held_status))
		{
			if (!(column_unchanged(desc, t->customer_att, oldrow, newrow) &&
				  (t->segment_att == InvalidAttrNumber ||
				   column_unchanged(desc, t->segment_att, oldrow, newrow)) &&
				  column_unchanged(desc, t->amount_att, oldrow, newrow)))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("order \"%s\" of \"%s\" is held for credit approval",
								row_key(rel, t, oldrow, desc), RelationGetRelationName(rel)),
						 errdetail("Its release application asks for the amount and customer it was held with."),
						 errhint("Move it out of its held status first (its release application is then withdrawn)."),
						 errtable(rel)));
		}
		else
		{
			Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
			Datum		args[3];

			args[0] = ObjectIdGetDatum(RelationGetRelid(rel));
			args[1] = CStringGetTextDatum(row_key(rel, t, oldrow, desc));
			args[2] = CStringGetTextDatum(GetUserNameFromId(credit_actor_id(), false));
			run_as_owner("SELECT credit.hold_left($1, $2, $3)", 3, argtypes, args);
		}
	}

	/* this row is being held: its open amount was never counted */
	if (holding_relid == RelationGetRelid(rel) && newrow &&
		strcmp(row_key(rel, t, newrow, desc), holding_key) == 0)
		return PointerGetDatum(NULL);

	/* the old row's contribution goes, the new row's comes */
	if (oldrow && row_is_open(t, oldrow, desc))
		row_change(rel, t, oldrow, desc, row_amount(t, oldrow, desc), true, &changes[n++]);
	if (newrow && row_is_open(t, newrow, desc))
	{
		Numeric		amount = row_amount(t, newrow, desc);

		check_amount(rel, t, amount);
		row_change(rel, t, newrow, desc, amount, false, &changes[n++]);
	}
	source.rel = rel;
	source.what = t->what;
	if (n == 0)
		return PointerGetDatum(NULL);

	/*
	 * an approved release: the increase counts even past the limit; its
	 * accounts are held until commit, so that the overrun it records stays
	 * the part above the limit
	 */
	if (deciding_release && deciding_relid == RelationGetRelid(rel) && newrow &&
		strcmp(row_key(rel, t, newrow, desc), deciding_key) == 0)
	{
		for (int i = 0; i < n; i++)
			changes[i].check = false;
		credit_apply_changes_held(changes, n, &source);
		return PointerGetDatum(NULL);
	}

	if (t->over_limit != OVER_LIMIT_REJECT && newrow && changes[n - 1].check)
	{
		/* copies: the ledger sorts and merges the array it is given */
		CreditChange tried[2];
		bool		old_counted = oldrow && row_is_open(t, oldrow, desc);
		Numeric		amount = row_amount(t, newrow, desc);
		char	   *customer = row_customer(rel, t, newrow, desc);
		char	   *key = row_key(rel, t, newrow, desc);
		ErrorData  *refusal;

		memcpy(tried, changes, sizeof(CreditChange) * n);
		refusal = credit_try_apply_changes(tried, n, &source);
		if (refusal != NULL)
			over_limit(rel, t, changes, n, old_counted, key, amount, customer,
					   refusal, &source);
		return PointerGetDatum(NULL);
	}
	credit_apply_changes(changes, n, &source);
	return PointerGetDatum(NULL);
}

/*
 * credit.held_order_update(application_id, decision): writes the decided
 * status to the held order of an order-release application, as the owner
 * of schema credit (the approver needs no right on the application's order
 * table), and only when the decision is the application's: 'release' for
 * an approved application, 'reject' for a rejected or withdrawn one, with
 * the order still held.  A release marks the row so that the trigger
 * applies its increase unchecked: the approved overrun.  Locks: the order
 * row first, then the hold, as on the application's own path (its UPDATE
 * of the order row, then credit.hold_left), so the two cannot deadlock.
 * Returns the number of order rows changed (0: the application changed the
 * row).
 */
Datum
credit_held_order_update(PG_FUNCTION_ARGS)
{
	int64		application_id = PG_GETARG_INT64(0);
	char	   *decision = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		release = strcmp(decision, "release") == 0;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	uint64		processed = 0;
	char	   *stmt;
	Oid			relid;
	char	   *key;
	int64		hold_id;
	bool		isnull;
	int			rc;
	CreditUserSave save;

	if (!release && strcmp(decision, "reject") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decision must be release or reject, not \"%s\"", decision)));
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	credit_become_owner(&save);
	args[0] = Int64GetDatum(application_id);
	args[1] = CStringGetTextDatum(release ? "{approved}" : "{rejected,withdrawn}");
	rc = SPI_execute_with_args("SELECT h.orders, h.order_key,"
							   " credit.order_status_update(t, h.order_key, t.held_status,"
							   "   CASE WHEN $2 OPERATOR(pg_catalog.=) '{approved}'"
							   "   THEN t.release_status ELSE t.rejected_status END,"
							   "   CASE WHEN $2 OPERATOR(pg_catalog.=) '{approved}' THEN h.amount END,"
							   "   CASE WHEN $2 OPERATOR(pg_catalog.=) '{approved}' THEN h.customer_key END),"
							   " h.hold_id"
							   " FROM credit.held_orders h"
							   " JOIN credit.applications a"
							   "   ON a.application_id OPERATOR(pg_catalog.=) h.application_id"
							   " JOIN credit.attachments t ON t.orders OPERATOR(pg_catalog.=) h.orders"
							   " WHERE h.application_id OPERATOR(pg_catalog.=) $1"
							   " AND h.state OPERATOR(pg_catalog.=) 'held'"
							   " AND a.state OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])",
							   2, argtypes, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "credit: reading the held order failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("application " INT64_FORMAT " has no held order to %s", application_id,
						decision),
				 errdetail("The application must be %s and its order still held, its table attached.",
						   release ? "approved" : "rejected or withdrawn")));
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	stmt = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	hold_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4,
										  &isnull));
	deciding_relid = relid;
	deciding_key = key;
	deciding_release = release;
	PG_TRY();
	{
		rc = SPI_execute(stmt, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "credit: updating the held order failed: %s", SPI_result_code_string(rc));
		processed = SPI_processed;
	}
	PG_FINALLY();
	{
		deciding_relid = InvalidOid;
		deciding_key = NULL;
		deciding_release = false;
	}
	PG_END_TRY();

	/* the order row is ours: now the hold, which must still be held */
	if (processed > 0)
	{
		Oid			hold_types[1] = {INT8OID};
		Datum		hold_args[1];

		hold_args[0] = Int64GetDatum(hold_id);
		rc = SPI_execute_with_args("SELECT 1 FROM credit.held_orders h"
								   " WHERE h.hold_id OPERATOR(pg_catalog.=) $1"
								   " AND h.state OPERATOR(pg_catalog.=) 'held' FOR UPDATE",
								   1, hold_types, hold_args, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "credit: locking the hold failed: %s", SPI_result_code_string(rc));
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the hold of application " INT64_FORMAT " ended while it was decided",
							application_id)));
	}
	credit_restore_user(&save);
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	PG_RETURN_INT64((int64) processed);
}

/*
 * BEFORE TRUNCATE: release the open exposure of every customer in the
 * table.  The table is locked ACCESS EXCLUSIVE, so the sums are exact.
 */
Datum
credit_enforce_orders_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	char	   *query;
	SPIPlanPtr	plan;
	OrdersTable *t;
	CreditChange *changes;
	int			n;
	int			rc;
	bool		isnull;
	CreditSource source;
	CreditUserSave save;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders_truncate: not called by trigger manager")));
	if (!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.enforce_orders_truncate: must be fired before TRUNCATE")));
	rel = trigdata->tg_relation;
	t = get_orders_table(rel);	/* errors clearly if not attached */

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	args[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	rc = SPI_execute_with_args("SELECT credit.open_exposure_query(a) "
							   "FROM credit.attachments a "
							   "WHERE a.orders OPERATOR(pg_catalog.=) $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading credit.attachments failed: %s", SPI_result_code_string(rc));
	query = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	/* a snapshot taken now, under our lock, sees every row being removed */
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "summing open orders failed: %s", SPI_result_code_string(rc));

	/* copy the result out of SPI's memory before SPI_finish */
	n = (int) SPI_processed;
	changes = (CreditChange *) SPI_palloc(sizeof(CreditChange) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		Datum		sum = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);

		char	   *key = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);

		if (key == NULL)		/* the trigger lets no open row lack a customer */
			elog(ERROR, "open order without a customer in \"%s\"",
				 RelationGetRelationName(rel));
		changes[i].customer_key = SPI_palloc(strlen(key) + 1);
		strcpy(changes[i].customer_key, key);
		/* open_exposure_query already applied the table's sign */
		changes[i].delta = (Numeric) SPI_datumTransfer(NumericGetDatum(negate(DatumGetNumeric(sum))),
													   false, -1);
		changes[i].check = false;	/* a release, or a payment's removal */
		changes[i].currency = NULL;
	}
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);

	source.rel = rel;
	source.what = t->what;
	if (n > 0)
		credit_apply_changes(changes, n, &source);
	return PointerGetDatum(NULL);
}
