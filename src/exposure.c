/*-------------------------------------------------------------------------
 *
 * exposure.c
 *	  The exposure ledger: the one place that changes an account's exposure.
 *
 * A change is applied to the account's row in credit.accounts without the
 * executor: a probe of the primary key, then table_tuple_update of the row,
 * as the executor's own UPDATE would do, but without planning, executor
 * start-up or triggers.  The limit check is made on the row version being
 * replaced.  If a concurrent transaction updated that row first, the update
 * waits for it (a heavyweight lock wait, as for any UPDATE); then, at READ
 * COMMITTED, we lock the newest version (table_tuple_lock following the
 * update chain, PostgreSQL's EvalPlanQual step) and check and write again
 * from it, so no committed change is ever missed; at REPEATABLE READ or
 * SERIALIZABLE we raise a serialization failure (40001) and the caller
 * retries.
 *
 * Accounts form trees (credit.accounts.parent_key: a group above its
 * subsidiaries).  An account's exposure is its own plus its descendants':
 * every change to a customer is applied to the customer and to each of
 * its ancestors, and an increase must fit each of them.  All the accounts a
 * set of changes touches are locked in one global order: by the key of
 * their tree's root, then root first down the tree, then by key.  Two
 * sessions whose changes meet on the same accounts (siblings on their
 * parent, or a transfer between customers) therefore never deadlock.  The
 * trees cannot change under a running change: credit.move_account takes an
 * EXCLUSIVE lock on credit.accounts, which waits for every transaction that
 * has changed exposure or locked account rows, and holds off new ones.
 *
 * Because the row is written directly, triggers on credit.accounts do not
 * fire for these writes; the status rule they would apply (accounts.c) is
 * applied here instead.  Column constraints are checked here as well:
 * exposure stays inside (-1e15, 1e15).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "credit.h"

/* relation and index of credit.accounts, cached; reset by invalidation */
static Oid	accounts_relid = InvalidOid;
static Oid	accounts_pkey = InvalidOid;
static bool accounts_shape_checked = false;
static AttrNumber accounts_parent_attnum = InvalidAttrNumber;
static bool callback_registered = false;

static void
ledger_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == accounts_relid || relid == accounts_pkey)
	{
		accounts_relid = accounts_pkey = InvalidOid;
		accounts_shape_checked = false;
		accounts_parent_attnum = InvalidAttrNumber;
	}
}

static void
lookup_accounts(void)
{
	Oid			nsp;
	Oid			relid;
	Oid			pkey;

	if (OidIsValid(accounts_relid))
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(ledger_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	nsp = get_namespace_oid("credit", false);
	relid = get_relname_relid("accounts", nsp);
	pkey = get_relname_relid("accounts_pkey", nsp);
	if (!OidIsValid(relid) || !OidIsValid(pkey))
		elog(ERROR, "credit.accounts or its primary key is missing");
	accounts_relid = relid;
	accounts_pkey = pkey;
}

/* the OID of credit.accounts (cached) */
Oid
credit_accounts_oid(void)
{
	lookup_accounts();
	return accounts_relid;
}

/* the table's shape must match the attribute numbers in credit.h */
static void
check_accounts_shape(TupleDesc desc)
{
	static const struct
	{
		int			attnum;
		const char *name;
	}			cols[] = {
		{Anum_accounts_customer_key, "customer_key"},
		{Anum_accounts_credit_limit, "credit_limit"},
		{Anum_accounts_temp_limit, "temp_limit"},
		{Anum_accounts_temp_limit_from, "temp_limit_from"},
		{Anum_accounts_temp_limit_until, "temp_limit_until"},
		{Anum_accounts_currency, "currency"},
		{Anum_accounts_watch_ratio, "watch_ratio"},
		{Anum_accounts_status, "status"},
		{Anum_accounts_exposure, "exposure"},
		{Anum_accounts_manual_status, "manual_status"},
		{Anum_accounts_dunning_status, "dunning_status"},
	};

	if (desc->natts < Natts_accounts_min)
		elog(ERROR, "credit.accounts has an unexpected shape");
	for (int i = 0; i < lengthof(cols); i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, cols[i].attnum - 1);

		if (att->attisdropped || strcmp(NameStr(att->attname), cols[i].name) != 0)
			elog(ERROR, "credit.accounts column %d is not \"%s\"",
				 cols[i].attnum, cols[i].name);
	}
	accounts_parent_attnum = credit_accounts_parent_attnum(desc);
}

/*
 * New index entries for a row version that could not be a HOT update.  No
 * range table: range table index 0 tells the executor no column list is
 * known, and none of the columns we change is indexed anyway.
 */
static void
insert_index_entries(Relation rel, TupleTableSlot *slot, bool only_summarizing)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	credit_insert_index_tuples(rri, slot, estate, only_summarizing);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * One account's share of a set of changes: the customer's own change, or
 * what it brings to an ancestor (via names the customer then).  root and
 * depth place the account in the lock order.
 */
typedef struct LedgerEntry
{
	char	   *key;
	Numeric		delta;
	bool		check;
	const char *via;			/* NULL: the customer's own account */
	char	   *root;
	int			depth;			/* 0: the root */
	ItemPointerData tid;		/* where the chain walk found the account's row */
	bool		found;			/* false: it found none (the apply reports it) */
	const char *currency;		/* the account must have this currency, or NULL */
} LedgerEntry;


static void
report_no_account(const char *key, const CreditSource *source)
{
	ereport(ERROR,
			(errcode(ERRCODE_CREDIT_NO_ACCOUNT),
			 errmsg("customer \"%s\" has no credit account", key),
			 errdetail("An %s of a customer without a credit account cannot be accepted.",
					   source->what),
			 errhint("Open one first: INSERT INTO credit.accounts (customer_key, credit_limit) VALUES (%s, ...).",
					 quote_literal_cstr(key)),
			 source->rel ? errtable(source->rel) : 0));
}

/*
 * Would this increase be refused on the row version in hand?  With report,
 * a refusal is raised as the error the user sees; an ancestor's refusal
 * says it is the group's and names the customer the change came from.
 */
static bool
increase_refused(const LedgerEntry *e, const CreditAccountValues *v, Numeric effective,
				 const CreditSource *source, bool report)
{
	Numeric		available;
	const char *key = e->key;

	if (v->status == CREDIT_STATUS_STOP)
	{
		if (!report)
			return true;
		if (e->via)
			ereport(ERROR,
					(errcode(ERRCODE_CREDIT_ACCOUNT_STOPPED),
					 errmsg("credit account of group \"%s\" is stopped", key),
					 errdetail("The group account's credit status is stop; every increase of the exposure of its members is refused (this %s of customer \"%s\" would add %s).",
							   source->what, e->via, credit_numeric_text(e->delta)),
					 errhint("A credit controller can lift the stop: UPDATE credit.accounts SET status = 'ok' WHERE customer_key = %s.",
							 quote_literal_cstr(key)),
					 source->rel ? errtable(source->rel) : 0));
		ereport(ERROR,
				(errcode(ERRCODE_CREDIT_ACCOUNT_STOPPED),
				 errmsg("credit account of customer \"%s\" is stopped", key),
				 errdetail("The account's credit status is stop; every increase of its exposure is refused (this %s would add %s).",
						   source->what, credit_numeric_text(e->delta)),
				 errhint("A credit controller can lift the stop: UPDATE credit.accounts SET status = 'ok' WHERE customer_key = %s.",
						 quote_literal_cstr(key)),
				 source->rel ? errtable(source->rel) : 0));
	}
	if (v->status == CREDIT_STATUS_NONE)
		return false;
	available = credit_numeric_sub(effective, v->exposure);
	if (credit_numeric_cmp(e->delta, available) <= 0)
		return false;
	if (report && e->via)
		ereport(ERROR,
				(errcode(ERRCODE_CREDIT_LIMIT_EXCEEDED),
				 errmsg("credit limit of group \"%s\" exceeded", key),
				 errdetail("Group credit limit %s, temporary limit in force %s, group exposure %s, this %s of customer \"%s\" adds %s, available credit %s.",
						   credit_numeric_text(v->credit_limit),
						   credit_numeric_text(credit_numeric_sub(effective, v->credit_limit)),
						   credit_numeric_text(v->exposure),
						   source->what, e->via,
						   credit_numeric_text(e->delta),
						   credit_numeric_text(available)),
				 errhint("Reduce the %s to at most the group's available credit, collect payment from the group's members first, or have the group's credit limit raised in credit.accounts.",
						 source->what),
				 source->rel ? errtable(source->rel) : 0));
	if (report)
		ereport(ERROR,
				(errcode(ERRCODE_CREDIT_LIMIT_EXCEEDED),
				 errmsg("credit limit of customer \"%s\" exceeded", key),
				 errdetail("Credit limit %s, temporary limit in force %s, exposure %s, this %s adds %s, available credit %s.",
						   credit_numeric_text(v->credit_limit),
						   credit_numeric_text(credit_numeric_sub(effective, v->credit_limit)),
						   credit_numeric_text(v->exposure),
						   source->what,
						   credit_numeric_text(e->delta),
						   credit_numeric_text(available)),
				 errhint("Reduce the %s to at most the available credit, collect payment first, or have the credit limit raised (or a temporary limit granted) in credit.accounts.",
						 source->what),
				 source->rel ? errtable(source->rel) : 0));
	return true;
}

/* 40001 for key: REPEATABLE READ and a change to the account since the snapshot */
void
credit_report_serialization_failure(const char *key)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update of the credit account of customer \"%s\"",
					key),
			 errhint("Retry the transaction.")));
}

/* find the account row of key visible to snapshot; false if there is none */
static bool
find_account(Relation rel, Relation index, const char *key, Snapshot snapshot,
			 TupleTableSlot *slot)
{
	ScanKeyData skey;
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(key));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	return found;
}

/*
 * Lock the newest version of the account row into slot (waiting for its
 * writer), as EvalPlanQual does.  Returns false if the row is gone or no
 * longer has this key (then the caller looks the key up afresh).  At
 * REPEATABLE READ and above, a version newer than our snapshot's is a
 * serialization failure.
 */
static bool
lock_newest_version(Relation rel, ItemPointer tid, Snapshot snapshot,
					TupleTableSlot *slot, const char *key)
{
	TM_FailureData tmfd;
	TM_Result	result;
	bool		isnull;
	Datum		newkey;

	result = table_tuple_lock(rel, tid, snapshot, slot,
							  GetCurrentCommandId(false),
							  LockTupleNoKeyExclusive, LockWaitBlock,
							  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	if (IsolationUsesXactSnapshot() &&
		(result == TM_Updated || result == TM_Deleted ||
		 (result == TM_Ok && tmfd.traversed)))
		credit_report_serialization_failure(key);
	if (result == TM_Deleted)
		return false;
	if (result != TM_Ok)
		elog(ERROR, "unexpected result %d locking credit account", (int) result);
	newkey = slot_getattr(slot, Anum_accounts_customer_key, &isnull);
	return !isnull && strcmp(TextDatumGetCString(newkey), key) == 0;
}

/*
 * Apply one change to one account, under the account row's lock.
 */
/*
 * The row version at tid, if snapshot sees it and it is still key's: the
 * row the chain walk found, fetched again without an index probe.
 */
static bool
fetch_account(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
			  const char *key)
{
	bool		isnull;
	Datum		k;

	if (!table_tuple_fetch_row_version(rel, tid, snapshot, slot))
		return false;
	k = slot_getattr(slot, Anum_accounts_customer_key, &isnull);
	return !isnull && strcmp(TextDatumGetCString(k), key) == 0;
}

/*
 * The delta was converted to the account's currency as it was then; an
 * account whose currency changed since (only possible while it had no
 * exposure) must not get it.
 */
static void
check_currency(HeapTuple tuple, TupleDesc desc, const LedgerEntry *change)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, Anum_accounts_currency, desc, &isnull);
	char	   *now = isnull ? "" : TextDatumGetCString(d);

	if (strcmp(now, change->currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the currency of the credit account of customer \"%s\" changed from %s to %s while a change was converted",
						change->key, change->currency, now),
				 errhint("Retry the transaction.")));
}

/*
 * Write v->exposure, and the status the rule derives from it, into the
 * account row version oldtuple at tid; when the update succeeds, also the
 * new index entries and the recorded status change.  v->status becomes the
 * derived status.
 */
static TM_Result
write_account(Relation rel, ItemPointer tid, HeapTuple oldtuple, CreditAccountValues *v,
			  Numeric effective, Snapshot snapshot, TupleTableSlot *newslot, const char *key)
{
	TupleDesc	desc = RelationGetDescr(rel);
	CreditStatus old_status = v->status;
	int			cols[2] = {Anum_accounts_exposure, Anum_accounts_status};
	Datum		values[2];
	bool		nulls[2] = {false, false};
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	result;
	bool		needs_index;
	bool		only_summarizing;

	v->status = credit_derive_status(v, effective);
	values[0] = NumericGetDatum(v->exposure);
	values[1] = CStringGetTextDatum(credit_status_name(v->status));
	ExecStoreHeapTuple(heap_modify_tuple_by_cols(oldtuple, desc, 2, cols, values, nulls),
					   newslot, true);
	result = credit_tuple_update(rel, tid, newslot, snapshot, &tmfd,
								 &lockmode, &needs_index, &only_summarizing);
	if (result == TM_Ok)
	{
		if (needs_index)
			insert_index_entries(rel, newslot, only_summarizing);
		if (v->status != old_status)
			credit_record_status_change(key, old_status, v->status, v->exposure, effective);
	}
	return result;
}

static void
apply_one(Relation rel, Relation index, const LedgerEntry *change, Snapshot batch_snapshot,
		  const CreditSource *source)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TupleTableSlot *newslot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	bool		increase = credit_numeric_cmp(change->delta, int64_to_numeric(0)) > 0;
	const char *key = change->key;
	Snapshot	snapshot;
	bool		locked = false;

	/* the batch's snapshot: it sees our own earlier changes and others' commits */
	snapshot = RegisterSnapshot(batch_snapshot);
	if (!(change->found && fetch_account(rel, (ItemPointer) &change->tid, snapshot, slot, key)) &&
		!find_account(rel, index, key, snapshot, slot))
		report_no_account(key, source);
	if (credit_numeric_cmp(change->delta, int64_to_numeric(0)) == 0)
		goto done;				/* nothing to write; the account exists */

	/*
	 * Decide on the version found.  If the update then meets a newer one, or
	 * an increase looks refused (perhaps only because a concurrent release
	 * has not committed yet), lock the newest version and decide on it.  If
	 * that version has lost the key (deleted, or the key renamed), look the
	 * key up again in a fresh snapshot.
	 */
	for (;;)
	{
		bool		shouldfree;
		HeapTuple	oldtuple;
		CreditAccountValues v;
		Numeric		effective;
		ItemPointerData tid = slot->tts_tid;
		TM_Result	result;

		oldtuple = ExecFetchSlotHeapTuple(slot, false, &shouldfree);
		if (change->currency)
			check_currency(oldtuple, desc, change);
		credit_account_values(oldtuple, desc, &v);
		effective = credit_effective_limit(&v);
		if (increase && change->check &&
			increase_refused(change, &v, effective, source, locked))
			result = TM_Updated;	/* decide again on the newest version */
		else
		{
			v.exposure = credit_numeric_add(v.exposure, change->delta);
			if (!credit_numeric_in_bounds(v.exposure))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("exposure of customer \"%s\" would be out of range", key),
						 errdetail("Exposure must stay below %s in magnitude.", CREDIT_AMOUNT_BOUND),
						 source->rel ? errtable(source->rel) : 0));
			result = write_account(rel, &tid, oldtuple, &v, effective, snapshot, newslot, key);
			if (result == TM_Ok)
			{
				if (shouldfree)
					heap_freetuple(oldtuple);
				break;
			}
			if (result == TM_SelfModified)
				elog(ERROR, "credit account row of \"%s\" was already changed by this command",
					 key);
			if (result != TM_Updated && result != TM_Deleted)
				elog(ERROR, "unexpected result %d updating credit account", (int) result);
		}
		if (shouldfree)
			heap_freetuple(oldtuple);

		if (result == TM_Deleted && IsolationUsesXactSnapshot())
			credit_report_serialization_failure(key);
		if (result != TM_Deleted && lock_newest_version(rel, &tid, snapshot, slot, key))
		{
			locked = true;
			continue;
		}
		/* the row is gone or renamed (READ COMMITTED): look the key up anew */
		UnregisterSnapshot(snapshot);
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		if (!find_account(rel, index, key, snapshot, slot))
			report_no_account(key, source);
		locked = false;
	}

done:
	ExecDropSingleTupleTableSlot(newslot);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
}

/*
 * Apply one change to an account the shared-memory ledger serves: a
 * reservation under the entry's lock (see shared_ledger.c), decided with
 * the same rules and messages as the row path.  Returns a transaction to
 * wait for before trying again (invalid: applied): one writing the account
 * row; at REPEATABLE READ one holding a reservation; for an increase that
 * fits only if other transactions' pending changes end otherwise, one of
 * them; for an unchecked increase (an approved release, attach, a
 * revaluation) any other holder, as the row lock would queue it behind
 * them so that what it reports counts their changes.
 */
static TransactionId
apply_shared(CreditSharedAccount *acc, const LedgerEntry *change, const CreditSource *source)
{
	bool		increase = credit_numeric_cmp(change->delta, int64_to_numeric(0)) > 0;
	CreditAccountValues v;
	TransactionId wait_for = InvalidTransactionId;
	CreditSharedResult r = credit_shared_begin(acc, change->key, &v, &wait_for);

	if (r == CREDIT_SHARED_WAIT)
		return wait_for;
	if (r == CREDIT_SHARED_GONE)
		report_no_account(change->key, source);
	if (r == CREDIT_SHARED_SERIALIZATION)
		credit_report_serialization_failure(change->key);
	if (increase && !change->check)
	{
		wait_for = credit_shared_other_pending(acc);
		if (TransactionIdIsValid(wait_for))
		{
			credit_shared_end(acc);
			return wait_for;
		}
	}
	if (increase && change->check &&
		increase_refused(change, &v, credit_effective_limit(&v), source, false))
	{
		wait_for = credit_shared_other_pending(acc);
		credit_shared_end(acc);
		if (TransactionIdIsValid(wait_for))
			return wait_for;
		/* nobody else's change pending: the figure is final */
		increase_refused(change, &v, credit_effective_limit(&v), source, true);
	}
	if (!credit_numeric_in_bounds(credit_numeric_add(v.exposure, change->delta)))
	{
		credit_shared_end(acc);
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("exposure of customer \"%s\" would be out of range", change->key),
				 errdetail("Exposure must stay below %s in magnitude.", CREDIT_AMOUNT_BOUND),
				 source->rel ? errtable(source->rel) : 0));
	}
	if (!credit_shared_reserve(acc, change->delta, &wait_for))
		return wait_for;
	credit_shared_end(acc);
	return InvalidTransactionId;
}

/*
 * At REPEATABLE READ the chain walk read the account rows in the
 * transaction's snapshot; an account row written since (a move, a limit,
 * a status) is a serialization failure, as the row path's update of it
 * would be.
 */
static void
check_row_current(Relation rel, Relation index, const LedgerEntry *change)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	latest = RegisterSnapshot(GetLatestSnapshot());

	latest->curcid = GetCurrentCommandId(false);
	if (!find_account(rel, index, change->key, latest, slot) ||
		!ItemPointerEquals(&slot->tts_tid, (ItemPointer) &change->tid))
		credit_report_serialization_failure(change->key);
	UnregisterSnapshot(latest);
	ExecDropSingleTupleTableSlot(slot);
}

/* the lock order: by root key, root first down the tree, then by key */
static int
entry_cmp(const void *a, const void *b)
{
	const LedgerEntry *x = (const LedgerEntry *) a;
	const LedgerEntry *y = (const LedgerEntry *) b;

	return credit_lock_order(x->root, x->depth, x->key, y->root, y->depth, y->key);
}

/*
 * The ledger's lock order, the one order in which every account is locked
 * (rows, shared-memory entries, commits' status writes): root first, then
 * depth (a group before its members), then key.
 */
int
credit_lock_order(const char *root_a, int depth_a, const char *key_a,
				  const char *root_b, int depth_b, const char *key_b)
{
	int			c = strcmp(root_a, root_b);

	if (c != 0)
		return c;
	if (depth_a != depth_b)
		return depth_a < depth_b ? -1 : 1;
	return strcmp(key_a, key_b);
}

/*
 * The chain of accounts from key up to its root, in chain[0..n-1] (key
 * first), with where each row was found (found[i]: tids[i] holds it; not
 * when the shared ledger's entry told the parent, credit_shared_parent).
 * A key without an account ends the chain at itself: the apply reports it.
 */
static int
read_chain(Relation rel, Relation index, Snapshot snapshot, TupleTableSlot *slot,
		   const char *key, char **chain, ItemPointerData *tids, bool *found)
{
	int			n = 0;
	char	   *k = pstrdup(key);

	while (k != NULL)
	{
		bool		isnull;
		Datum		parent;

		if (n == CREDIT_MAX_DEPTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("credit account \"%s\" has more than %d ancestors", key,
							CREDIT_MAX_DEPTH - 1)));
		chain[n] = k;
		/* the shared ledger's entry may know the parent: no index scan */
		if (credit_shared_parent(k, &k))
		{
			found[n++] = false;
			continue;
		}
		found[n] = find_account(rel, index, k, snapshot, slot);
		if (found[n])
			tids[n] = slot->tts_tid;
		n++;
		if (!found[n - 1] || accounts_parent_attnum == InvalidAttrNumber)
			break;
		parent = slot_getattr(slot, accounts_parent_attnum, &isnull);
		k = isnull ? NULL : TextDatumGetCString(parent);
	}
	return n;
}

/*
 * The entries of a set of changes: each change on its customer and on each
 * of the customer's ancestors, summed per account, in the lock order.
 * Returns their number.
 */
static int
ledger_entries(Relation rel, Relation index, const CreditChange *changes, int nchanges,
			   Snapshot snapshot, LedgerEntry **result)
{
	LedgerEntry *entries = NULL;
	int			n = 0;
	int			m = 0;
	char	   *chain[CREDIT_MAX_DEPTH];
	ItemPointerData tids[CREDIT_MAX_DEPTH];
	bool		found[CREDIT_MAX_DEPTH];
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	for (int i = 0; i < nchanges; i++)
	{
		int			len = read_chain(rel, index, snapshot, slot, changes[i].customer_key,
									 chain, tids, found);

		entries = entries ? repalloc(entries, sizeof(LedgerEntry) * (n + len))
			: palloc(sizeof(LedgerEntry) * len);
		for (int j = 0; j < len; j++)
		{
			LedgerEntry *e = &entries[n++];

			e->key = chain[j];
			e->delta = changes[i].delta;
			e->check = changes[i].check;
			e->via = j == 0 ? NULL : changes[i].customer_key;
			e->root = chain[len - 1];
			e->depth = len - 1 - j;
			e->found = found[j];
			e->currency = j == 0 ? changes[i].currency : NULL;
			if (found[j])
				e->tid = tids[j];
		}
	}
	ExecDropSingleTupleTableSlot(slot);

	if (n > 1)
		qsort(entries, n, sizeof(LedgerEntry), entry_cmp);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && strcmp(entries[m - 1].key, entries[i].key) == 0)
		{
			entries[m - 1].delta = credit_numeric_add(entries[m - 1].delta, entries[i].delta);
			entries[m - 1].check |= entries[i].check;
			if (entries[i].currency)
				entries[m - 1].currency = entries[i].currency;
			if (entries[i].via == NULL)
				entries[m - 1].via = NULL;	/* the customer's own change is there */
		}
		else
			entries[m++] = entries[i];
	}
	*result = entries;
	return m;
}

/* open credit.accounts and its primary key for the ledger */
static void
open_accounts(Relation *rel, Relation *index)
{
	Oid			relid;
	Oid			pkey;

	/*
	 * Opening the table can process invalidations that reset the cached
	 * OIDs (autovacuum's ANALYZE sends them): open from copies.
	 */
	lookup_accounts();
	relid = accounts_relid;
	pkey = accounts_pkey;
	*rel = table_open(relid, RowExclusiveLock);
	*index = index_open(pkey, RowExclusiveLock);
	if (!accounts_shape_checked)
	{
		check_accounts_shape(RelationGetDescr(*rel));
		accounts_shape_checked = true;
	}
}

/*
 * Apply a set of changes: to each customer and its ancestors, summed per
 * account, in the lock order.
 */
void
credit_apply_changes(CreditChange *changes, int nchanges, const CreditSource *source)
{
	Relation	rel;
	Relation	index;
	LedgerEntry *entries;
	Snapshot	snapshot;
	int			n;

	open_accounts(&rel, &index);
	/* see our own earlier changes, and (READ COMMITTED) others' commits */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	n = ledger_entries(rel, index, changes, nchanges, snapshot, &entries);

	/*
	 * A change that must wait first takes back what this call reserved, so
	 * it waits holding only what earlier statements hold, as it would wait
	 * for a row lock holding none of this statement's; then it starts
	 * again.  (Row-locked accounts, where the table was full, keep their
	 * locks: then it waits in place.)
	 */
	for (int i = 0; i < n;)
	{
		CreditSharedAccount *acc = credit_shared_account(entries[i].key);
		TransactionId wait_for;

		if (acc == NULL)
		{
			apply_one(rel, index, &entries[i], snapshot, source);
			i++;
			continue;
		}
		if (IsolationUsesXactSnapshot() && entries[i].found)
			check_row_current(rel, index, &entries[i]);
		wait_for = apply_shared(acc, &entries[i], source);
		if (!TransactionIdIsValid(wait_for) || !credit_shared_wait_usable(wait_for))
		{
			if (!TransactionIdIsValid(wait_for))
				i++;
			continue;
		}
		{
			bool		row_locked = false;

			for (int j = 0; j < i; j++)
				row_locked |= credit_shared_account(entries[j].key) == NULL;
			if (!row_locked)
			{
				for (int j = 0; j < i; j++)
					credit_shared_take_back(credit_shared_account(entries[j].key),
											entries[j].delta);
				i = 0;
			}
		}
		XactLockTableWait(wait_for, NULL, NULL, XLTW_Update);
	}
	UnregisterSnapshot(snapshot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
}

/*
 * The shared-memory ledger's write of an account row at commit (see
 * shared_ledger.c): lock the newest version of key's row (with wait, or
 * only if no other transaction holds it), then write figure(arg), the
 * exposure the ledger holds, and the status the rule derives from it, and
 * record the status change.  Called only when that status differs from the
 * stored one.  Returns 1 when written, 0 when another transaction holds
 * the row (without wait), -1 when there is no row.
 */
int
credit_store_figure(const char *key, Numeric (*figure) (void *arg), void *arg,
					CreditStatus *written, bool wait)
{
	Relation	rel;
	Relation	index;
	TupleTableSlot *slot;
	TupleTableSlot *newslot;
	Snapshot	snapshot;
	TM_FailureData tmfd;
	TM_Result	result;
	int			stored = -1;

	open_accounts(&rel, &index);
	CommandCounterIncrement();
	slot = table_slot_create(rel, NULL);
	newslot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	/*
	 * The newest version, found in a fresh snapshot and locked as found (not
	 * by following its update chain, which at REPEATABLE READ would be a
	 * serialization failure at commit): a version updated meanwhile is
	 * looked up again.
	 */
	for (;;)
	{
		ItemPointerData tid;

		snapshot = RegisterSnapshot(GetLatestSnapshot());
		if (!find_account(rel, index, key, snapshot, slot))
			break;
		tid = slot->tts_tid;
		result = table_tuple_lock(rel, &tid, snapshot, slot, GetCurrentCommandId(false),
								  LockTupleNoKeyExclusive, wait ? LockWaitBlock : LockWaitSkip,
								  0, &tmfd);
		if (result == TM_Updated || result == TM_Deleted)
		{
			UnregisterSnapshot(snapshot);
			continue;
		}
		if (result == TM_WouldBlock)
			stored = 0;
		else if (result == TM_Ok)
		{
			bool		shouldfree;
			HeapTuple	oldtuple = ExecFetchSlotHeapTuple(slot, false, &shouldfree);
			CreditAccountValues v;

			credit_account_values(oldtuple, RelationGetDescr(rel), &v);
			v.exposure = figure(arg);
			tid = slot->tts_tid;
			result = write_account(rel, &tid, oldtuple, &v, credit_effective_limit(&v),
								   snapshot, newslot, key);
			if (result != TM_Ok)
				elog(ERROR, "unexpected result %d writing locked credit account", (int) result);
			*written = v.status;
			if (shouldfree)
				heap_freetuple(oldtuple);
			stored = 1;
		}
		break;
	}
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(newslot);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return stored;
}

/*
 * Lock the newest version of key's row, as SELECT ... FOR NO KEY UPDATE
 * does (hint: where the row was found, or NULL); a row deleted or renamed
 * meanwhile is looked up again.  Returns false when there is no row.
 */
static bool
lock_account_row(Relation rel, Relation index, TupleTableSlot *slot, const char *key,
				 ItemPointer hint)
{
	for (;;)
	{
		Snapshot	snapshot;
		bool		found;
		bool		same = false;

		CommandCounterIncrement();
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
		found = (hint != NULL && fetch_account(rel, hint, snapshot, slot, key)) ||
			find_account(rel, index, key, snapshot, slot);
		if (found)
		{
			ItemPointerData tid = slot->tts_tid;

			same = lock_newest_version(rel, &tid, snapshot, slot, key);
		}
		UnregisterSnapshot(snapshot);
		if (!found || same)
			return found;
		hint = NULL;
	}
}

/*
 * Lock the account rows a set of changes touches (the customers' and their
 * ancestors'), in the lock order, in the current transaction, without
 * changing them.  A missing account is left for the apply to report.
 */
static void
lock_accounts(const CreditChange *changes, int nchanges)
{
	Relation	rel;
	Relation	index;
	LedgerEntry *entries;
	Snapshot	snapshot;
	int			n;
	TupleTableSlot *slot;

	open_accounts(&rel, &index);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	n = ledger_entries(rel, index, changes, nchanges, snapshot, &entries);
	UnregisterSnapshot(snapshot);
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < n; i++)
	{
		/* the shared ledger's accounts are held there: orders wait for us */
		if (credit_shared_account(entries[i].key) != NULL)
		{
			(void) credit_shared_account_changing(entries[i].key, false, false, false);
			continue;
		}
		(void) lock_account_row(rel, index, slot, entries[i].key,
								entries[i].found ? &entries[i].tid : NULL);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
}

/*
 * Apply a set of changes holding their accounts until commit first (the
 * customers' and their ancestors', in the lock order), as the row path's
 * update of their rows does: an unchecked increase (an approved release,
 * attach, a revaluation) then reports figures that stay true in its
 * transaction under the shared-memory ledger too, no order coming between.
 */
void
credit_apply_changes_held(CreditChange *changes, int nchanges, const CreditSource *source)
{
	lock_accounts(changes, nchanges);
	credit_apply_changes(changes, nchanges, source);
}

/*
 * Apply a set of changes, but return a refusal (CR001 limit exceeded, CR002
 * account stopped) instead of raising it: the changes run in a
 * subtransaction that is rolled back on refusal, so nothing of them stays.
 * The account rows are locked first, in the lock order, in the caller's
 * transaction, and stay locked after a refusal: what the caller then does
 * (hold the order, or apply it unchecked with a warning) is decided on the
 * rows the refusal saw, and its audit rows follow their account's lock.
 * Any other error is raised.  Returns NULL when the changes were applied.
 * Used for order tables whose over-limit policy is hold or warn.
 */
ErrorData *
credit_try_apply_changes(CreditChange *changes, int nchanges, const CreditSource *source)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *refusal = NULL;

	lock_accounts(changes, nchanges);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		credit_apply_changes(changes, nchanges, source);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode != ERRCODE_CREDIT_LIMIT_EXCEEDED &&
			edata->sqlerrcode != ERRCODE_CREDIT_ACCOUNT_STOPPED)
			ReThrowError(edata);
		refusal = edata;
	}
	PG_END_TRY();
	return refusal;
}

/*
 * The customers and deltas of a (text[], numeric[]) pair of arguments of
 * function fname, of equal length, without NULLs (2202E, 22004); returns
 * their number.
 */
int
credit_keys_and_deltas(ArrayType *keys, ArrayType *deltas, const char *fname,
					   char ***keys_out, Numeric **deltas_out)
{
	Datum	   *kd,
			   *dd;
	bool	   *kn,
			   *dn;
	int			nk,
				nd;

	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &kd, &kn, &nk);
	deconstruct_array(deltas, NUMERICOID, -1, false, TYPALIGN_INT, &dd, &dn, &nd);
	if (nk != nd)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s needs as many deltas as customers", fname)));
	*keys_out = palloc(sizeof(char *) * (nk + 1));
	*deltas_out = palloc(sizeof(Numeric) * (nk + 1));
	for (int i = 0; i < nk; i++)
	{
		if (kn[i] || dn[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: customers and deltas must not be null", fname)));
		(*keys_out)[i] = TextDatumGetCString(kd[i]);
		(*deltas_out)[i] = DatumGetNumeric(dd[i]);
	}
	return nk;
}

/*
 * credit.lock_accounts(customer_keys): lock the account rows, in the order
 * given (the ledger's: root first, then depth, then key), as SELECT ... FOR
 * NO KEY UPDATE does (waiting for their writers; at REPEATABLE READ a row
 * changed since the snapshot is a serialization failure), and under the
 * shared-memory ledger hold each account there first (waiting for the
 * transactions holding reservations on it, whose commits then write its
 * row), so that orders on it wait for this transaction.  A plain FOR
 * UPDATE holds the row only: orders go on, and their commits wait for the
 * row to write the status.  Keys without an account are skipped.  Returns
 * the number of rows locked.  Needs UPDATE on credit.accounts, as FOR
 * UPDATE does.
 */
PG_FUNCTION_INFO_V1(credit_lock_accounts);

Datum
credit_lock_accounts(PG_FUNCTION_ARGS)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			locked = 0;
	Relation	rel;
	Relation	index;
	TupleTableSlot *slot;

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("credit.lock_accounts: customer_keys must not contain NULL")));
	open_accounts(&rel, &index);
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(RelationGetRelid(rel), GetUserId(), ACL_UPDATE,
								  ACLMASK_ANY) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < n; i++)
	{
		char	   *key = TextDatumGetCString(elems[i]);

		/*
		 * The ledger first, then the row: a commit of a transaction that
		 * holds a reservation on the account writes the row (its status)
		 * before we lock it, as under row locks
		 */
		if (credit_shared_account(key) != NULL)
			(void) credit_shared_account_changing(key, false, false, true);
		if (lock_account_row(rel, index, slot, key, NULL))
			locked++;
		credit_shared_row_locked(key);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	PG_RETURN_INT32(locked);
}

/*
 * credit.apply_exposure(customer_keys, deltas, what): the ledger from SQL,
 * unchecked: each customer's exposure (and its ancestors') changes by its
 * delta, in the lock order.  Internal (credit.revalue); no grant.
 */
PG_FUNCTION_INFO_V1(credit_apply_exposure);

Datum
credit_apply_exposure(PG_FUNCTION_ARGS)
{
	char	  **keys;
	Numeric    *deltas;
	int			nk = credit_keys_and_deltas(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1),
											"credit.apply_exposure", &keys, &deltas);
	CreditChange *changes;
	CreditSource source;

	if (nk == 0)
		PG_RETURN_VOID();
	changes = palloc(sizeof(CreditChange) * nk);
	for (int i = 0; i < nk; i++)
	{
		changes[i].customer_key = keys[i];
		changes[i].delta = deltas[i];
		changes[i].check = false;
		changes[i].currency = NULL;
	}
	source.rel = NULL;
	source.what = text_to_cstring(PG_GETARG_TEXT_PP(2));
	/* attach, detach and revaluations hold the accounts they change until commit */
	credit_apply_changes_held(changes, nk, &source);
	PG_RETURN_VOID();
}
