/*-------------------------------------------------------------------------
 *
 * shared_ledger.c
 *	  The shared-memory exposure ledger: escrow reservations per account.
 *
 * When credit is loaded through shared_preload_libraries and
 * credit.shared_ledger_accounts > 0, each account's committed exposure and
 * the pending reservations of running transactions live in a shared hash
 * table (one entry per database and customer key).  An order reserves its
 * change under the entry's LWLock, held for microseconds, instead of
 * writing the account row and holding its lock until commit.
 *
 * Invariants, for every entry served here:
 *   - committed exposure = what the source tables' committed rows give
 *     (own plus descendants'), as credit.reconcile() computes it;
 *   - a slot holds the signed sum of one running (or just ended)
 *     transaction's reservations on the account; it is folded into the
 *     committed exposure by the owner's commit callback, dropped by its
 *     abort callback, and reduced by its subtransaction aborts;
 *   - an increase is accepted only if it fits even when every other
 *     transaction's pending increase commits and none of their decreases
 *     does (the pessimistic figure); when it fits only if some of them end
 *     otherwise, it waits for them (XactLockTableWait, so the deadlock
 *     detector sees it) and decides again, as the row-locked design waits
 *     for the row lock: both accept and refuse the same orders.
 *
 * A database's entries are loaded in one pass on its first use since the
 * server started (credit.rebuild_exposures), an account created later on
 * its own first use (credit.rebuild_exposure), in a snapshot that sees the
 * committed rows of others and none of this transaction's, while other
 * users wait; the limit values come from the account row.  Readers
 * (credit.live_exposure) get the figure in their snapshot: an entry keeps
 * its last commits, to leave out those the snapshot does not see, or the
 * figure is rebuilt in it.  The status column is written at commit by a
 * transaction whose commit changes the derived status (store_statuses).
 *
 * A write of the account row (its limit, status, the row itself), and a
 * hold of the account (the hold and warn tables' check, attach, detach,
 * revaluations), first waits for the transactions holding reservations on
 * it and marks the entry as changing; orders then wait for that
 * transaction (and after a write reload the values).  Entries are never
 * evicted while the server runs: accounts that do not fit are served by
 * the row-locked path until the next restart (the choice is stable, so no
 * account is ever served by both).  After a restart or a crash the table
 * starts empty and every account is rebuilt on first use.
 *
 * Hot standbys: the ledger is never written there (no order can be).
 * PREPARE TRANSACTION with reservations is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "credit.h"

#define SHARED_KEYLEN	64		/* longer keys are served by the row path */
#define SHARED_NUMLEN	64		/* room for one numeric */
#define SHARED_SLOTS	8		/* concurrent transactions per account */
#define SHARED_FOLDS	16		/* recent commits kept for readers' snapshots */
#define SHARED_LOAD_XIP	16		/* running transactions kept of a load's snapshot */

/* the snapshot an entry's figure was rebuilt in: who it saw */
typedef struct LoadMark
{
	TransactionId xmax;
	int			nxip;			/* -1: more than SHARED_LOAD_XIP */
	TransactionId xip[SHARED_LOAD_XIP];
} LoadMark;

typedef union SharedNumeric
{
	int32		align;
	char		data[SHARED_NUMLEN];
} SharedNumeric;

typedef struct SharedTag
{
	Oid			dboid;
	Oid			relid;			/* credit.accounts: a new one after DROP EXTENSION */
	char		key[SHARED_KEYLEN];
} SharedTag;

typedef enum SharedState
{
	SHARED_LOADING,				/* being rebuilt by loader */
	SHARED_VALID,
	SHARED_GONE					/* no account row */
} SharedState;

typedef struct SharedSlot
{
	TransactionId xid;			/* InvalidTransactionId: free */
	uint64		seq;			/* order in which the slots were taken */
	bool		committing;		/* its owner has passed pre-commit */
	bool		token_wait;		/* ... and waits there for the status writer */
} SharedSlot;

typedef struct SharedAccount
{
	SharedTag	tag;			/* hash key */
	LWLock		lock;
	SharedState state;
	TransactionId loader;		/* LOADING: the loading transaction */
	TransactionId changer;		/* a transaction writing (or holding) the account row */
	TransactionId waiting_writer;	/* one with the row locked, waiting to become it */
	TransactionId row_waiter;	/* a commit waiting for the row's lock to write it */
	TransactionId row_holder;	/* the changer holds the row's lock (it locked it first) */
	bool		values_stale;	/* reload limits and statuses */
	uint64		next_seq;
	SharedNumeric exposure;		/* committed */
	SharedNumeric credit_limit;
	SharedNumeric temp_limit;
	SharedNumeric watch_ratio;
	bool		temp_from_null;
	bool		temp_until_null;
	TimestampTz temp_from;
	TimestampTz temp_until;
	int8		manual;
	int8		dunning;
	int8		stored_status;	/* the status the account row holds */
	bool		parent_known;	/* parent below is the row's parent_key */
	bool		has_parent;
	char		parent[SHARED_KEYLEN];
	bool		status_unknown; /* it may not: check at the next commit */
	TransactionId status_writer;	/* a transaction writing it at commit */
	SharedSlot	slots[SHARED_SLOTS];
	SharedNumeric pending[SHARED_SLOTS];	/* each slot's reservation */
	/* the last commits folded in, so a reader can leave out those its snapshot does not see */
	TransactionId fold_xid[SHARED_FOLDS];
	SharedNumeric fold_amount[SHARED_FOLDS];
	int			fold_next;
	TransactionId fold_forgotten;	/* the latest commit no longer kept */
	LoadMark	load;			/* the snapshot its figure was rebuilt in */
} SharedAccount;

/*
 * A slot's reservation, kept apart from the slots: the scans of their
 * transaction ids on every order then read two cache lines, not eight
 */
#define SLOT_PENDING(acc, s)	(&(acc)->pending[(s) - (acc)->slots])

#define SHARED_DATABASES 64		/* databases loaded in one pass; others per account */

typedef struct SharedDatabase
{
	Oid			dboid;			/* InvalidOid: free */
	Oid			relid;			/* its credit.accounts */
	TransactionId loader;		/* the transaction loading it */
	bool		loaded;
} SharedDatabase;

typedef struct SharedLedger
{
	LWLock	   *map_lock;		/* the hash table and dbs[] */
	int			tranche;
	SharedDatabase dbs[SHARED_DATABASES];
} SharedLedger;

/* a reservation of this backend: undone by subtransaction abort */
typedef struct LocalReservation
{
	SharedAccount *acc;
	TransactionId xid;
	SubTransactionId subid;
	Numeric		amount;			/* in TopMemoryContext */
} LocalReservation;

int			credit_shared_ledger_accounts = 10000;
static SharedLedger *ledger = NULL;
static HTAB *accounts = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static LocalReservation *mine = NULL;
static int	nmine = 0;
static int	maxmine = 0;
static SharedAccount *loading = NULL;	/* the entry this backend is loading */
static SharedAccount **held = NULL;		/* entries this transaction is the changer of */
static int	nheld = 0;
static int	maxheld = 0;
static Oid	database_loaded = InvalidOid;	/* the credit.accounts whose entries are loaded */
static bool loading_database = false;
static bool quiet_subxact = false;	/* read_account's own subtransaction */

static void store_statuses(void);
static TransactionId pending_other(SharedAccount *acc, TransactionId skip);
static bool changed_unseen(SharedAccount *acc, Snapshot snapshot, TransactionId me);
static void make_tag(SharedTag *tag, const char *key);
static bool committing_for_holder(SharedAccount *acc, SharedSlot *s, TransactionId me);
static void entry_values(SharedAccount *acc, Numeric exposure, CreditAccountValues *v);
static void mark_load(LoadMark *mark, Snapshot snapshot);
static void shared_xact_callback(XactEvent event, void *arg);
static void shared_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);

/* ---- numerics in shared memory ---- */

static Numeric
shared_get(const SharedNumeric *n)
{
	return (Numeric) n->data;
}

/*
 * A copy in local memory: what may be read after the entry's lock is
 * released (shared_get's pointer sees later commits, and a torn value
 * while one is written)
 */
static Numeric
shared_copy(const SharedNumeric *n)
{
	return DatumGetNumeric(datumCopy(NumericGetDatum(shared_get(n)), false, -1));
}

static void
shared_put(SharedNumeric *n, Numeric value)
{
	Size		len = VARSIZE(value);

	if (len > SHARED_NUMLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("an exposure of %s has too many digits for the shared-memory ledger",
						credit_numeric_text(value)),
				 errhint("Amounts and rates with fewer decimal places fit.")));
	memcpy(n->data, value, len);
}

static Numeric
zero(void)
{
	return int64_to_numeric(0);
}

/* ---- set-up ---- */

static Size
shared_size(void)
{
	return add_size(MAXALIGN(sizeof(SharedLedger)),
					hash_estimate_size(credit_shared_ledger_accounts, sizeof(SharedAccount)));
}

static void
shared_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("credit shared ledger", 1);
}

static void
shared_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ledger = ShmemInitStruct("credit shared ledger", sizeof(SharedLedger), &found);
	if (!found)
	{
		ledger->map_lock = &(GetNamedLWLockTranche("credit shared ledger"))->lock;
		ledger->tranche = LWLockNewTrancheId();
		memset(ledger->dbs, 0, sizeof(ledger->dbs));
	}
	info.keysize = sizeof(SharedTag);
	info.entrysize = sizeof(SharedAccount);
	accounts = ShmemInitHash("credit shared ledger accounts",
							 credit_shared_ledger_accounts, credit_shared_ledger_accounts,
							 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
	LWLockRegisterTranche(ledger->tranche, "credit account");
}

void
credit_shared_ledger_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("credit.shared_ledger_accounts",
							"Accounts the shared-memory exposure ledger can hold (0: off).",
							"Needs credit in shared_preload_libraries; accounts beyond it use the row-locked ledger.",
							&credit_shared_ledger_accounts,
							10000, 0, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	if (credit_shared_ledger_accounts == 0)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shared_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_startup;
	RegisterXactCallback(shared_xact_callback, NULL);
	RegisterSubXactCallback(shared_subxact_callback, NULL);
}

bool
credit_shared_enabled(void)
{
	return accounts != NULL && !RecoveryInProgress();
}

/* ---- local bookkeeping ---- */

static void
remember(SharedAccount *acc, TransactionId xid, Numeric amount)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (nmine == maxmine)
	{
		maxmine = maxmine ? maxmine * 2 : 16;
		mine = mine ? repalloc(mine, sizeof(LocalReservation) * maxmine)
			: palloc(sizeof(LocalReservation) * maxmine);
	}
	mine[nmine].acc = acc;
	mine[nmine].xid = xid;
	mine[nmine].subid = GetCurrentSubTransactionId();
	mine[nmine].amount = DatumGetNumeric(datumCopy(NumericGetDatum(amount), false, -1));
	nmine++;
	MemoryContextSwitchTo(old);
}

static SharedSlot *
find_slot(SharedAccount *acc, TransactionId xid)
{
	for (int i = 0; i < SHARED_SLOTS; i++)
		if (acc->slots[i].xid == xid)
			return &acc->slots[i];
	return NULL;
}

/* the end of this backend's transaction: fold (commit) or drop its slots */
static void
finish_all(bool commit)
{
	for (int i = 0; i < nmine; i++)
	{
		SharedAccount *acc = mine[i].acc;
		SharedSlot *slot;

		if (acc == NULL)
			continue;
		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		slot = find_slot(acc, mine[i].xid);
		if (slot)
		{
			if (commit)
			{
				int			f = acc->fold_next;

				shared_put(&acc->exposure,
						   credit_numeric_add(shared_get(&acc->exposure), shared_get(SLOT_PENDING(acc, slot))));
				if (TransactionIdIsValid(acc->fold_xid[f]) &&
					(!TransactionIdIsValid(acc->fold_forgotten) ||
					 TransactionIdFollows(acc->fold_xid[f], acc->fold_forgotten)))
					acc->fold_forgotten = acc->fold_xid[f];
				acc->fold_xid[f] = mine[i].xid;
				shared_put(&acc->fold_amount[f], shared_get(SLOT_PENDING(acc, slot)));
				acc->fold_next = (f + 1) % SHARED_FOLDS;
			}
			else if (slot->committing)
				acc->status_unknown = true; /* others' commits counted it */
			slot->xid = InvalidTransactionId;
		}
		if (acc->status_writer == mine[i].xid)
		{
			acc->status_writer = InvalidTransactionId;
			if (!commit)
				acc->status_unknown = true;
		}
		LWLockRelease(&acc->lock);
		/* one slot per account and transaction: skip its other reservations */
		for (int j = i + 1; j < nmine; j++)
			if (mine[j].acc == acc && mine[j].xid == mine[i].xid)
				mine[j].acc = NULL;
	}
	for (int i = 0; i < nmine; i++)
		if (mine[i].amount)
			pfree(mine[i].amount);
	nmine = 0;
	/* the accounts held without a reservation: their status writer, if it was us */
	for (int i = 0; i < nheld; i++)
	{
		SharedAccount *acc = held[i];

		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		if (TransactionIdIsValid(acc->status_writer) && acc->status_writer == acc->changer &&
			!TransactionIdIsInProgress(acc->status_writer))
		{
			acc->status_writer = InvalidTransactionId;
			if (!commit)
				acc->status_unknown = true;
		}
		LWLockRelease(&acc->lock);
	}
	nheld = 0;
}

/* a loader that failed leaves the entry to the next user */
static void
abandon_loading(void)
{
	if (loading == NULL)
		return;
	LWLockAcquire(&loading->lock, LW_EXCLUSIVE);
	if (loading->state == SHARED_LOADING)
		loading->loader = InvalidTransactionId;
	LWLockRelease(&loading->lock);
	loading = NULL;
}

/*
 * The exposure at this transaction's commit (lock held): committed, plus
 * the slots of transactions that committed, or passed pre-commit without
 * waiting for the status writer (they commit before us: a status writer
 * waits for them), plus ours.
 */
static Numeric
commit_figure(SharedAccount *acc, TransactionId me)
{
	Numeric		figure = shared_get(&acc->exposure);

	for (int i = 0; i < SHARED_SLOTS; i++)
	{
		SharedSlot *s = &acc->slots[i];

		if (TransactionIdIsValid(s->xid) &&
			(s->xid == me || TransactionIdDidCommit(s->xid) ||
			 (s->committing && !s->token_wait && s->xid != acc->row_waiter &&
			  !TransactionIdDidAbort(s->xid))))
			figure = credit_numeric_add(figure, shared_get(SLOT_PENDING(acc, s)));
	}
	return figure;
}

/* another transaction past pre-commit, not waiting for us: the writer waits for it */
static TransactionId
committing_other(SharedAccount *acc, TransactionId me)
{
	for (int i = 0; i < SHARED_SLOTS; i++)
	{
		SharedSlot *s = &acc->slots[i];

		/* not one waiting for the row: it writes after us */
		if (TransactionIdIsValid(s->xid) && s->xid != me && s->committing &&
			!s->token_wait && s->xid != acc->row_waiter &&
			TransactionIdIsInProgress(s->xid))
			return s->xid;
	}
	return InvalidTransactionId;
}

static Numeric
commit_figure_of(void *arg)
{
	SharedAccount *acc = (SharedAccount *) arg;
	Numeric		figure;

	LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
	figure = commit_figure(acc, GetTopTransactionId());
	figure = DatumGetNumeric(datumCopy(NumericGetDatum(figure), false, -1));
	LWLockRelease(&acc->lock);
	return figure;
}

/* an account with its place in the ledger's lock order */
typedef struct OrderedAccount
{
	SharedAccount *acc;
	char		root[SHARED_KEYLEN];
	int			depth;
} OrderedAccount;

/* the ledger's lock order (credit_lock_order) */
static int
by_lock_order(const void *a, const void *b)
{
	const OrderedAccount *x = (const OrderedAccount *) a;
	const OrderedAccount *y = (const OrderedAccount *) b;

	return credit_lock_order(x->root, x->depth, x->acc->tag.key,
							 y->root, y->depth, y->acc->tag.key);
}

/*
 * The root and depth of acc from the parents the entries hold (as far as
 * they know them: an unknown parent ends the chain there).
 */
static void
place_in_tree(OrderedAccount *o)
{
	SharedAccount *k = o->acc;
	char		key[SHARED_KEYLEN];

	strlcpy(key, k->tag.key, SHARED_KEYLEN);
	o->depth = 0;
	for (int n = 0; n < CREDIT_MAX_DEPTH; n++)
	{
		SharedTag	tag;
		bool		up;

		LWLockAcquire(&k->lock, LW_SHARED);
		up = k->has_parent && k->parent_known;
		if (up)
			strlcpy(key, k->parent, SHARED_KEYLEN);
		LWLockRelease(&k->lock);
		if (!up)
			break;
		o->depth++;
		make_tag(&tag, key);
		LWLockAcquire(ledger->map_lock, LW_SHARED);
		k = hash_search(accounts, &tag, HASH_FIND, NULL);
		LWLockRelease(ledger->map_lock);
		if (k == NULL)
			break;
	}
	strlcpy(o->root, key, SHARED_KEYLEN);
}

/*
 * Pre-commit: keep the status column of the account rows current, as the
 * row-locked ledger does on every change, without writing a row per
 * order.  This transaction's slots are marked as committing, so later
 * commits count them; where the status the rule derives from the exposure
 * at commit differs from the stored one, the row gets that exposure and
 * status and the change is recorded (credit.status_changes, NOTIFY), in
 * this transaction.  One status writer per account at a time: a later one
 * waits for the earlier's commit and counts it.  A row locked by a
 * transaction writing the account itself is left to that write (its
 * trigger derives the status from the ledger's figure).
 */
static void
store_statuses(void)
{
	TransactionId me = GetTopTransactionId();
	SharedAccount **accs = palloc(sizeof(SharedAccount *) * (nmine + nheld));
	OrderedAccount *ordered;
	int			n = 0;

	for (int i = 0; i < nmine + nheld; i++)
	{
		SharedAccount *acc = i < nmine ? mine[i].acc : held[i - nmine];
		bool		seen = false;

		for (int j = 0; j < n && !seen; j++)
			seen = accs[j] == acc;
		if (!seen && acc != NULL)
			accs[n++] = acc;
	}
	/*
	 * In the ledger's lock order, as an order's row writes go under row
	 * locks and as credit.lock_accounts locks: a row waited for here is
	 * never one whose holder waits for a row written here before.
	 */
	ordered = palloc(sizeof(OrderedAccount) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		ordered[i].acc = accs[i];
		place_in_tree(&ordered[i]);
	}
	qsort(ordered, n, sizeof(OrderedAccount), by_lock_order);
	for (int i = 0; i < n; i++)
		accs[i] = ordered[i].acc;
	pfree(ordered);
	for (int i = 0; i < n; i++)
	{
		SharedAccount *acc = accs[i];
		SharedSlot *slot;
		CreditAccountValues v;
		CreditStatus status;
		CreditStatus written;
		int			stored;
		int			save_iso;

		for (;;)
		{
			TransactionId writer;
			TransactionId other;

			LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			slot = find_slot(acc, me);
			/* a status writer at work: commit after it, and count it */
			writer = acc->status_writer;
			/*
			 * one that waits for the row we hold writes the status after
			 * us, with our commit counted: leave it to that one
			 */
			if (TransactionIdIsValid(writer) && writer != me && writer == acc->row_waiter &&
				acc->row_holder == me && TransactionIdIsInProgress(writer))
			{
				LWLockRelease(&acc->lock);
				break;
			}
			if (TransactionIdIsValid(writer) && writer != me &&
				TransactionIdIsInProgress(writer))
			{
				if (slot)
				{
					slot->committing = true;
					slot->token_wait = true;
				}
				LWLockRelease(&acc->lock);
				XactLockTableWait(writer, NULL, NULL, XLTW_Update);
				continue;
			}
			if (slot)
			{
				slot->committing = true;
				slot->token_wait = false;
			}
			if (acc->state != SHARED_VALID)
			{
				LWLockRelease(&acc->lock);
				break;
			}
			entry_values(acc, commit_figure(acc, me), &v);
			status = v.status;
			if (status == (CreditStatus) acc->stored_status && !acc->status_unknown)
			{
				LWLockRelease(&acc->lock);
				break;
			}
			acc->status_writer = me;
			/* those already past pre-commit commit first: our figure counts them */
			while (TransactionIdIsValid(other = committing_other(acc, me)))
			{
				LWLockRelease(&acc->lock);
				XactLockTableWait(other, NULL, NULL, XLTW_Update);
				LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			}
			LWLockRelease(&acc->lock);

			/*
			 * Pre-commit runs without a snapshot; recording the change needs
			 * one.  A row locked by a writer of the account that waits for
			 * this transaction's reservation, or by the account's changer,
			 * is left to it (its trigger, or its own commit, derives the
			 * status once we are done); a row locked otherwise is waited
			 * for, saying so (row_waiter): a writer that then locks the
			 * account in the ledger does not wait for us, nor does its
			 * commit, and it counts us as committed.
			 */
			/*
			 * At REPEATABLE READ or SERIALIZABLE too, the write and its audit
			 * row are made as at READ COMMITTED: no statement of the
			 * transaction is left to see the difference, and the chain head
			 * another commit moved is no serialization failure at commit
			 */
			save_iso = XactIsoLevel;
			XactIsoLevel = XACT_READ_COMMITTED;
			PushActiveSnapshot(GetTransactionSnapshot());
			stored = credit_store_figure(acc->tag.key, commit_figure_of, acc, &written, false);
			if (stored == 0)
			{
				TransactionId waiting;
				TransactionId changer;
				bool		wait;

				/* decided under the entry's lock, as a writer decides whether to wait */
				LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
				waiting = acc->waiting_writer;
				changer = acc->changer;
				wait = !(TransactionIdIsValid(waiting) && waiting != me &&
						 TransactionIdIsInProgress(waiting)) &&
					!(TransactionIdIsValid(changer) && changer != me &&
					  TransactionIdIsInProgress(changer));
				if (wait)
					acc->row_waiter = me;
				LWLockRelease(&acc->lock);
				if (wait)
					stored = credit_store_figure(acc->tag.key, commit_figure_of, acc,
												 &written, true);
			}
			PopActiveSnapshot();
			XactIsoLevel = save_iso;
			LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			if (acc->row_waiter == me)
				acc->row_waiter = InvalidTransactionId;
			if (stored > 0)
			{
				acc->stored_status = (int8) written;
				acc->status_unknown = false;
			}
			else
				acc->status_unknown = true;
			LWLockRelease(&acc->lock);
			break;
		}
	}
	pfree(accs);
}

static void
shared_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (nmine > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed credit exposure"),
						 errdetail("The shared-memory exposure ledger keeps the transaction's reservations in this session."),
						 errhint("Commit it instead, or run the server without credit in shared_preload_libraries.")));
			break;
		case XACT_EVENT_PRE_COMMIT:
			if (nmine > 0 || nheld > 0)
				store_statuses();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			abandon_loading();
			finish_all(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			abandon_loading();
			finish_all(false);
			break;
		default:
			break;
	}
}

static void
shared_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB || quiet_subxact)
		return;
	abandon_loading();
	/*
	 * reservations made in the aborted subtransaction or its children are
	 * taken back; their records stay (without an amount) so that the end of
	 * the transaction still frees the slot
	 */
	for (int i = 0; i < nmine; i++)
	{
		if (mine[i].subid >= mySubid && mine[i].amount != NULL)
		{
			SharedAccount *acc = mine[i].acc;
			SharedSlot *slot;

			LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			slot = find_slot(acc, mine[i].xid);
			if (slot)
				shared_put(SLOT_PENDING(acc, slot),
						   credit_numeric_sub(shared_get(SLOT_PENDING(acc, slot)), mine[i].amount));
			LWLockRelease(&acc->lock);
			pfree(mine[i].amount);
			mine[i].amount = NULL;
		}
	}
}

/* ---- entries ---- */

static void
make_tag(SharedTag *tag, const char *key)
{
	memset(tag, 0, sizeof(SharedTag));
	tag->dboid = MyDatabaseId;
	tag->relid = credit_accounts_oid();
	strlcpy(tag->key, key, SHARED_KEYLEN);
}

/*
 * The values of the account row into the entry (lock held), with its
 * parent_key (NULL: none) for credit_shared_parent.
 */
static void
install_values(SharedAccount *acc, const CreditAccountValues *v, const char *parent)
{
	acc->has_parent = parent != NULL;
	acc->parent_known = parent == NULL || strlen(parent) < SHARED_KEYLEN;
	strlcpy(acc->parent, parent && acc->parent_known ? parent : "", SHARED_KEYLEN);
	shared_put(&acc->credit_limit, v->credit_limit);
	shared_put(&acc->temp_limit, v->temp_limit);
	shared_put(&acc->watch_ratio, v->watch_ratio);
	acc->temp_from_null = v->temp_from_null;
	acc->temp_until_null = v->temp_until_null;
	acc->temp_from = v->temp_from;
	acc->temp_until = v->temp_until;
	acc->manual = (int8) v->manual;
	acc->dunning = (int8) v->dunning;
	acc->stored_status = (int8) v->status;
	acc->status_unknown = false;
}

/*
 * The entry's account values (lock held), with exposure and the status the
 * rule derives from it: install_values read back.
 */
static void
entry_values(SharedAccount *acc, Numeric exposure, CreditAccountValues *v)
{
	v->credit_limit = shared_copy(&acc->credit_limit);
	v->temp_limit = shared_copy(&acc->temp_limit);
	v->watch_ratio = shared_copy(&acc->watch_ratio);
	v->temp_from_null = acc->temp_from_null;
	v->temp_until_null = acc->temp_until_null;
	v->temp_from = acc->temp_from;
	v->temp_until = acc->temp_until;
	v->manual = (CreditStatus) acc->manual;
	v->dunning = (CreditStatus) acc->dunning;
	v->exposure = DatumGetNumeric(datumCopy(NumericGetDatum(exposure), false, -1));
	v->status = credit_derive_status(v, credit_effective_limit(v));
}

/* the parent_key of an account row (NULL: none), as found by name */
static char *
tuple_parent(HeapTuple tup, TupleDesc desc)
{
	AttrNumber	attnum = credit_accounts_parent_attnum(desc);
	bool		isnull;
	Datum		d;

	if (attnum == InvalidAttrNumber)
		return NULL;
	d = heap_getattr(tup, attnum, desc, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Read the account row (values, *parent: its parent_key or NULL) and, with
 * rebuild, the exposure the source tables give it, in a snapshot that sees
 * others' committed rows and none of this transaction's orders (but its own
 * version of the row: *own).  Returns false when there is no row.
 */
static LoadMark last_load;		/* the snapshot of read_account's last rebuild */

/* read_account's row: values, parent, whether the version is ours */
static bool
read_row(SPIPlanPtr plan, bool locks, Datum *args, Snapshot snapshot, MemoryContext caller,
		 CreditAccountValues *v, char **parent, bool *own)
{
	int			rc = SPI_execute_snapshot(plan, args, NULL, snapshot, InvalidSnapshot,
										  !locks, false, 1);
	MemoryContext old;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading credit.accounts failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		return false;
	old = MemoryContextSwitchTo(caller);
	tup = heap_copytuple(SPI_tuptable->vals[0]);
	desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
	credit_account_values(tup, desc, v);
	*parent = tuple_parent(tup, desc);
	*own = TransactionIdIsCurrentTransactionId(
		DatumGetTransactionId(SPI_getbinval(tup, desc, desc->natts, &isnull)));
	MemoryContextSwitchTo(old);
	return true;
}

static bool
read_account(const char *key, bool rebuild, CreditAccountValues *v, Numeric *exposure,
			 char **parent, bool *own)
{
	static SPIPlanPtr row_plan = NULL;
	static SPIPlanPtr reread_plan = NULL;
	static SPIPlanPtr rebuild_plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Snapshot	snapshot;
	int			rc;
	bool		found;
	bool		isnull;
	CreditUserSave save;
	MemoryContext caller = CurrentMemoryContext;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (row_plan == NULL)
	{
		/* FOR SHARE: waits for a transaction writing the row (it found no entry to mark) */
		row_plan = SPI_prepare("SELECT a.*, a.xmin FROM credit.accounts a"
							   " WHERE a.customer_key OPERATOR(pg_catalog.=) $1 FOR SHARE",
							   1, argtypes);
		if (row_plan == NULL || SPI_keepplan(row_plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		/*
		 * A reload after a writer ended needs no lock: a later writer marks
		 * itself first, and waiting for its row lock here could close a
		 * cycle (it waits for our reservations)
		 */
		reread_plan = SPI_prepare("SELECT a.*, a.xmin FROM credit.accounts a"
								  " WHERE a.customer_key OPERATOR(pg_catalog.=) $1",
								  1, argtypes);
		if (reread_plan == NULL || SPI_keepplan(reread_plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		rebuild_plan = SPI_prepare("SELECT credit.rebuild_exposure($1)", 1, argtypes);
		if (rebuild_plan == NULL || SPI_keepplan(rebuild_plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}
	args[0] = CStringGetTextDatum(key);
	/* the latest committed state, and (for the row) this transaction's own writes */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	snapshot->curcid = GetCurrentCommandId(false);
	if (rebuild)
		mark_load(&last_load, snapshot);
	/*
	 * FOR SHARE only to wait for a writer of the row: in a subtransaction
	 * rolled back once the row is copied, so that the lock does not stay
	 * until our end (a writer of the row would wait for all of this
	 * transaction, and a commit that writes the row's status waits for it)
	 */
	if (rebuild)
	{
		ResourceOwner owner = CurrentResourceOwner;

		quiet_subxact = true;
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(caller);
		PG_TRY();
		{
			found = read_row(row_plan, true, args, snapshot, caller, v, parent, own);
		}
		PG_CATCH();
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(caller);
			CurrentResourceOwner = owner;
			quiet_subxact = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		quiet_subxact = false;
	}
	else
		found = read_row(reread_plan, false, args, snapshot, caller, v, parent, own);
	if (rebuild)
	{
		/* none of this transaction's rows: they come as its reservations */
		snapshot->curcid = FirstCommandId;
		rc = SPI_execute_snapshot(rebuild_plan, args, NULL, snapshot, InvalidSnapshot,
								  true, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "rebuilding credit exposure failed: %s", SPI_result_code_string(rc));
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			MemoryContext old = MemoryContextSwitchTo(caller);

			*exposure = isnull ? zero() : DatumGetNumeric(datumCopy(d, false, -1));
			MemoryContextSwitchTo(old);
		}
	}
	UnregisterSnapshot(snapshot);
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	return found;
}

/* a new entry's bookkeeping (map lock held) */
static void
init_entry(SharedAccount *acc, SharedState state)
{
	LWLockInitialize(&acc->lock, ledger->tranche);
	acc->state = state;
	acc->loader = InvalidTransactionId;
	acc->changer = InvalidTransactionId;
	acc->next_seq = 0;
	acc->values_stale = false;
	acc->status_writer = InvalidTransactionId;
	acc->waiting_writer = InvalidTransactionId;
	acc->row_waiter = InvalidTransactionId;
	acc->row_holder = InvalidTransactionId;
	for (int i = 0; i < SHARED_SLOTS; i++)
		acc->slots[i].xid = InvalidTransactionId;
	for (int i = 0; i < SHARED_FOLDS; i++)
		acc->fold_xid[i] = InvalidTransactionId;
	acc->fold_next = 0;
	acc->fold_forgotten = InvalidTransactionId;
	acc->load.xmax = InvalidTransactionId;
	acc->load.nxip = -1;
}

static void
mark_load(LoadMark *mark, Snapshot snapshot)
{
	mark->xmax = snapshot->xmax;
	mark->nxip = snapshot->xcnt <= SHARED_LOAD_XIP ? (int) snapshot->xcnt : -1;
	for (int i = 0; i < mark->nxip; i++)
		mark->xip[i] = snapshot->xip[i];
}

/*
 * Does snapshot see every commit the load's snapshot saw?  Yes when it was
 * taken after them: no transaction it sees as running had committed (and
 * was thus seen) by the load.
 */
static bool
sees_load(const LoadMark *mark, Snapshot snapshot)
{
	if (!TransactionIdIsValid(mark->xmax) ||
		TransactionIdPrecedesOrEquals(mark->xmax, snapshot->xmin))
		return true;
	if (mark->nxip < 0 || TransactionIdPrecedes(snapshot->xmax, mark->xmax))
		return false;
	for (uint32 i = 0; i < snapshot->xcnt; i++)
	{
		TransactionId x = snapshot->xip[i];
		bool		running_then = false;

		if (!TransactionIdPrecedes(x, mark->xmax))
			continue;
		for (int j = 0; j < mark->nxip && !running_then; j++)
			running_then = mark->xip[j] == x;
		if (!running_then && TransactionIdDidCommit(x))
			return false;
	}
	return true;
}

/*
 * Remove the entries nobody can use any more: those of an earlier
 * instance of the extension in this database (dropped and created again:
 * its credit.accounts had another OID) and those of dropped databases.
 * Nobody holds them: DROP EXTENSION and DROP DATABASE waited for every
 * transaction that did.
 */
static void
forget_dead_entries(void)
{
	Oid			relid = credit_accounts_oid();
	Oid			dead[SHARED_DATABASES];
	int			ndead = 0;
	HASH_SEQ_STATUS status;
	SharedAccount *acc;

	for (int i = 0; i < SHARED_DATABASES; i++)
	{
		Oid			dboid = ledger->dbs[i].dboid;	/* a stale read only delays */

		if (OidIsValid(dboid) && dboid != MyDatabaseId &&
			!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid)))
			dead[ndead++] = dboid;
	}
	LWLockAcquire(ledger->map_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, accounts);
	while ((acc = hash_seq_search(&status)) != NULL)
	{
		bool		gone = acc->tag.dboid == MyDatabaseId && acc->tag.relid != relid;

		for (int i = 0; i < ndead && !gone; i++)
			gone = acc->tag.dboid == dead[i];
		if (gone)
			hash_search(accounts, &acc->tag, HASH_REMOVE, NULL);
	}
	for (int i = 0; i < SHARED_DATABASES; i++)
		for (int j = 0; j < ndead; j++)
			if (ledger->dbs[i].dboid == dead[j])
				ledger->dbs[i].dboid = InvalidOid;
	LWLockRelease(ledger->map_lock);
}

static bool
numeric_fits(Numeric n)
{
	return VARSIZE(n) <= SHARED_NUMLEN;
}

/*
 * Load every account of this database in one pass over the source tables
 * (credit.rebuild_exposures), in a snapshot that sees others' committed
 * rows and none of this transaction's.  A write of an account row cannot
 * run meanwhile unseen: its trigger loads the database first (waiting for
 * this load) and then marks the entry as changing.  Accounts
 * that do not fit are served by row locks until the next restart; their
 * stored exposure, which the shared ledger may have served in an earlier
 * run of the server, is set to the rebuilt figure.  Returns false (the
 * database stays unloaded) when that repair is impossible: a read-only
 * transaction.
 */
static bool
load_all(void)
{
	static SPIPlanPtr plan = NULL;
	Snapshot	snapshot;
	int			rc;
	uint64		nrows;
	List	   *overflow = NIL;
	bool		done = true;
	LoadMark	mark;
	CreditUserSave save;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (plan == NULL)
	{
		plan = SPI_prepare("SELECT a.*, r.exposure FROM credit.accounts a"
						   " JOIN credit.rebuild_exposures() r"
						   " ON r.customer_key OPERATOR(pg_catalog.=) a.customer_key",
						   0, NULL);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	snapshot->curcid = FirstCommandId;
	mark_load(&mark, snapshot);
	rc = SPI_execute_snapshot(plan, NULL, NULL, snapshot, InvalidSnapshot, true, false, 0);
	UnregisterSnapshot(snapshot);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "rebuilding credit exposure failed: %s", SPI_result_code_string(rc));
	nrows = SPI_processed;

	forget_dead_entries();
	LWLockAcquire(ledger->map_lock, LW_EXCLUSIVE);
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *key = TextDatumGetCString(SPI_getbinval(tup, desc, Anum_accounts_customer_key,
															&isnull));
		Numeric		exposure = DatumGetNumeric(SPI_getbinval(tup, desc, desc->natts, &isnull));
		CreditAccountValues v;
		SharedTag	tag;
		SharedAccount *acc = NULL;
		bool		found;

		if (strlen(key) >= SHARED_KEYLEN)
			continue;			/* always the row path's */
		credit_account_values(tup, desc, &v);
		make_tag(&tag, key);
		if (numeric_fits(exposure) && numeric_fits(v.credit_limit) &&
			numeric_fits(v.temp_limit) && numeric_fits(v.watch_ratio))
			acc = hash_search(accounts, &tag, HASH_ENTER_NULL, &found);
		if (acc == NULL)
		{
			overflow = lappend(overflow, list_make2(key, exposure));
			continue;
		}
		if (found)
			continue;
		init_entry(acc, SHARED_VALID);
		shared_put(&acc->exposure, exposure);
		acc->load = mark;
		install_values(acc, &v, tuple_parent(tup, desc));
	}
	LWLockRelease(ledger->map_lock);

	if (overflow != NIL)
	{
		ListCell   *lc;

		ereport(WARNING,
				(errmsg("the shared-memory exposure ledger holds %llu of the %llu accounts of database \"%s\"",
						(unsigned long long) (nrows - list_length(overflow)),
						(unsigned long long) nrows, get_database_name(MyDatabaseId)),
				 errdetail("The other accounts are served by row locks until the server restarts."),
				 errhint("Raise credit.shared_ledger_accounts (needs a restart).")));
		if (XactReadOnly)
			done = false;
		else
			foreach(lc, overflow)
			{
				List	   *item = lfirst(lc);
				Oid			types[2] = {TEXTOID, NUMERICOID};
				Datum		args[2] = {CStringGetTextDatum(linitial(item)),
				NumericGetDatum(lsecond(item))};

				rc = SPI_execute_with_args("UPDATE credit.accounts a SET exposure = $2"
										   " WHERE a.customer_key OPERATOR(pg_catalog.=) $1"
										   " AND a.exposure OPERATOR(pg_catalog.<>) $2",
										   2, types, args, NULL, false, 0);
				if (rc != SPI_OK_UPDATE)
					elog(ERROR, "repairing credit exposure failed: %s", SPI_result_code_string(rc));
			}
	}
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	return done;
}

/*
 * This database's entries, loaded in one pass on the first use since the
 * server started (other users wait for the loader).  Returns true when
 * they are: an account without an entry is then one created since, or one
 * the table had no room for.  False (more databases than dbs[] holds, a
 * read-only loader that could not finish): entries are loaded one by one.
 */
static bool
load_database(void)
{
	Oid			relid = credit_accounts_oid();

	if (database_loaded == relid)
		return true;
	if (loading_database)
		return false;
	for (;;)
	{
		SharedDatabase *db = NULL;
		TransactionId me = GetTopTransactionIdIfAny();
		bool		ok;

		LWLockAcquire(ledger->map_lock, LW_EXCLUSIVE);
		for (int i = 0; i < SHARED_DATABASES && db == NULL; i++)
			if (ledger->dbs[i].dboid == MyDatabaseId)
				db = &ledger->dbs[i];
		for (int i = 0; i < SHARED_DATABASES && db == NULL; i++)
			if (!OidIsValid(ledger->dbs[i].dboid))
				db = &ledger->dbs[i];
		if (db != NULL && (db->dboid != MyDatabaseId || db->relid != relid))
		{
			/* a free slot, or the extension was dropped and created again */
			db->dboid = MyDatabaseId;
			db->relid = relid;
			db->loader = InvalidTransactionId;
			db->loaded = false;
		}
		if (db == NULL || db->loaded)
		{
			LWLockRelease(ledger->map_lock);
			if (db != NULL)
				database_loaded = relid;
			return db != NULL;
		}
		if (TransactionIdIsValid(db->loader) && db->loader != me &&
			TransactionIdIsInProgress(db->loader))
		{
			LWLockRelease(ledger->map_lock);
			pg_usleep(1000L);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (!TransactionIdIsValid(me))
		{
			/* a transaction id identifies the loader to the waiters */
			LWLockRelease(ledger->map_lock);
			(void) GetTopTransactionId();
			continue;
		}
		db->loader = me;
		LWLockRelease(ledger->map_lock);

		loading_database = true;
		PG_TRY();
		{
			ok = load_all();
		}
		PG_FINALLY();
		{
			loading_database = false;
		}
		PG_END_TRY();

		LWLockAcquire(ledger->map_lock, LW_EXCLUSIVE);
		if (db->dboid == MyDatabaseId && db->relid == relid)
		{
			db->loaded = ok;
			db->loader = InvalidTransactionId;
		}
		LWLockRelease(ledger->map_lock);
		if (ok)
			database_loaded = relid;
		return ok;
	}
}

/*
 * The entry of key, loaded if this is its first use; NULL when the row
 * path serves it (no shared ledger, key too long, table full).
 */
CreditSharedAccount *
credit_shared_account(const char *key)
{
	SharedTag	tag;
	SharedAccount *acc;
	bool		found;

	if (!credit_shared_enabled() || strlen(key) >= SHARED_KEYLEN)
		return NULL;
	(void) load_database();
	make_tag(&tag, key);
	LWLockAcquire(ledger->map_lock, LW_SHARED);
	acc = hash_search(accounts, &tag, HASH_FIND, NULL);
	LWLockRelease(ledger->map_lock);
	if (acc == NULL)
	{
		LWLockAcquire(ledger->map_lock, LW_EXCLUSIVE);
		acc = hash_search(accounts, &tag, HASH_ENTER_NULL, &found);
		if (acc == NULL)
		{
			LWLockRelease(ledger->map_lock);
			return NULL;
		}
		if (!found)
			init_entry(acc, SHARED_LOADING);
		LWLockRelease(ledger->map_lock);
	}

	/* load it, or wait for its loader */
	for (;;)
	{
		TransactionId me = GetTopTransactionIdIfAny();
		CreditAccountValues v;
		Numeric		exposure = NULL;
		char	   *parent = NULL;
		bool		own = false;
		bool		exists;

		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		if (acc->state != SHARED_LOADING)
		{
			LWLockRelease(&acc->lock);
			return (CreditSharedAccount *) acc;
		}
		if (TransactionIdIsValid(acc->loader) && acc->loader != me &&
			TransactionIdIsInProgress(acc->loader))
		{
			LWLockRelease(&acc->lock);
			pg_usleep(1000L);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		LWLockRelease(&acc->lock);
		/* become the loader (a transaction id identifies it to the waiters) */
		me = GetTopTransactionId();
		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		if (acc->state != SHARED_LOADING ||
			(TransactionIdIsValid(acc->loader) && acc->loader != me &&
			 TransactionIdIsInProgress(acc->loader)))
		{
			LWLockRelease(&acc->lock);
			continue;
		}
		acc->loader = me;
		loading = acc;
		LWLockRelease(&acc->lock);

		exists = read_account(key, true, &v, &exposure, &parent, &own);

		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		shared_put(&acc->exposure, exposure);
		/* commits before the rebuild are in its figure, not in the record */
		acc->load = last_load;
		if (exists)
			install_values(acc, &v, parent);
		acc->state = exists ? SHARED_VALID : SHARED_GONE;
		acc->loader = InvalidTransactionId;
		loading = NULL;
		LWLockRelease(&acc->lock);
		/*
		 * The row's version is this transaction's own (it wrote the row
		 * before the entry existed, so no write marked it): hold the account
		 * as its writer, so others wait for us and reload after we end, as
		 * they would wait for the row lock.
		 */
		if (own)
			(void) credit_shared_account_changing(key, true, true, false);
		return (CreditSharedAccount *) acc;
	}
}

/*
 * The parent of account key as its entry holds it, without reading the
 * row: true and *parent (NULL for none) when the entry can tell, false when
 * the caller must read the row.  It can at READ COMMITTED, for a loaded
 * entry with no write pending: every write of an account row marks its
 * entry (credit_shared_account_changing; a move also holds EXCLUSIVE on
 * credit.accounts, so none runs while an order holds ROW EXCLUSIVE), so an
 * unmarked entry's parent is the newest committed row's, the one a fresh
 * READ COMMITTED snapshot sees.  A REPEATABLE READ snapshot may be older:
 * it reads the row.  This spares an order the index scan per account of
 * its chain (about 7% of an order's CPU).
 */
bool
credit_shared_parent(const char *key, char **parent)
{
	SharedAccount *acc;
	SharedTag	tag;
	bool		known;

	if (!credit_shared_enabled() || IsolationUsesXactSnapshot() ||
		strlen(key) >= SHARED_KEYLEN || database_loaded != credit_accounts_oid())
		return false;
	make_tag(&tag, key);
	LWLockAcquire(ledger->map_lock, LW_SHARED);
	acc = hash_search(accounts, &tag, HASH_FIND, NULL);
	LWLockRelease(ledger->map_lock);
	if (acc == NULL)
		return false;
	/*
	 * Read without the entry's lock (a hot account's orders would queue on
	 * it): the parent changes only by a move, which holds EXCLUSIVE on
	 * credit.accounts against the caller's ROW EXCLUSIVE, and was marked
	 * before that lock was granted (a barrier); a reload meanwhile installs
	 * the same parent again.  A changer that only held the account changed
	 * nothing once it ended.
	 */
	{
		volatile SharedAccount *v = acc;
		TransactionId changer;

		pg_read_barrier();
		changer = v->changer;
		known = v->state == SHARED_VALID && !v->values_stale && v->parent_known &&
			(!TransactionIdIsValid(changer) || !TransactionIdIsInProgress(changer));
		if (known)
			*parent = v->has_parent ? pnstrdup((const char *) v->parent, SHARED_KEYLEN - 1)
				: NULL;
	}
	return known;
}

/*
 * Begin a decision on acc: returns with its lock held and v filled (limits,
 * statuses; v->exposure the pessimistic figure: committed, plus every other
 * transaction's pending increase, plus this transaction's own), or without
 * the lock and *wait_for set when a transaction writing the account row
 * must end first (or, at REPEATABLE READ, any other transaction holding a
 * reservation).  Returns false (no lock) when the account does not exist.
 */
CreditSharedResult
credit_shared_begin(CreditSharedAccount *cacc, const char *key, CreditAccountValues *v,
					TransactionId *wait_for)
{
	SharedAccount *acc = (SharedAccount *) cacc;
	TransactionId me = GetTopTransactionId();
	Numeric		figure;
	bool		gone_checked = false;


	for (;;)
	{
		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		if (TransactionIdIsValid(acc->changer) && acc->changer != me &&
			TransactionIdIsInProgress(acc->changer))
		{
			*wait_for = acc->changer;
			LWLockRelease(&acc->lock);
			return CREDIT_SHARED_WAIT;
		}
		/*
		 * Reload after a write; and an entry without a row every time, as
		 * the row may have been inserted by a transaction that ran before
		 * the entry existed (nothing marked it then).
		 */
		if (acc->values_stale || (acc->state == SHARED_GONE && !gone_checked))
		{
			CreditAccountValues fresh;
			TransactionId changer = acc->changer;
			char	   *parent = NULL;
			bool		own = false;
			bool		exists;

			gone_checked = true;
			LWLockRelease(&acc->lock);
			exists = read_account(key, false, &fresh, NULL, &parent, &own);
			LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			if (acc->changer == changer)
			{
				if (exists)
					install_values(acc, &fresh, parent);
				if (acc->state != SHARED_LOADING)
					acc->state = exists ? SHARED_VALID : SHARED_GONE;
				/* our own writer stays the changer: later writes reload again */
				if (changer != me)
				{
					acc->changer = InvalidTransactionId;
					acc->values_stale = false;
				}
			}
			LWLockRelease(&acc->lock);
			if (changer == me)
			{
				/* decide on the values just read, keep reloading on later calls */
				LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
			}
			else
				continue;
		}
		break;
	}
	if (acc->state == SHARED_GONE)
	{
		LWLockRelease(&acc->lock);
		return CREDIT_SHARED_GONE;
	}
	/* REPEATABLE READ: a change committed after our snapshot, or one still running */
	if (IsolationUsesXactSnapshot())
	{
		for (int i = 0; i < SHARED_SLOTS; i++)
			if (TransactionIdIsValid(acc->slots[i].xid) && acc->slots[i].xid != me &&
				TransactionIdIsInProgress(acc->slots[i].xid))
			{
				*wait_for = acc->slots[i].xid;
				LWLockRelease(&acc->lock);
				return CREDIT_SHARED_WAIT;
			}
		if (changed_unseen(acc, GetTransactionSnapshot(), me))
		{
			LWLockRelease(&acc->lock);
			return CREDIT_SHARED_SERIALIZATION;
		}
	}

	figure = shared_get(&acc->exposure);
	for (int i = 0; i < SHARED_SLOTS; i++)
	{
		SharedSlot *s = &acc->slots[i];
		Numeric		p;

		if (!TransactionIdIsValid(s->xid))
			continue;
		p = shared_get(SLOT_PENDING(acc, s));
		/*
		 * ours; another's increase unless it aborted; another's decrease once
		 * it has committed and ended (is visible to new snapshots: counting
		 * it between its commit record and its end would let a snapshot see
		 * our increase without its decrease)
		 */
		if (s->xid == me ||
			(credit_numeric_cmp(p, zero()) > 0 ? !TransactionIdDidAbort(s->xid)
			 : (TransactionIdDidCommit(s->xid) && !TransactionIdIsInProgress(s->xid))))
			figure = credit_numeric_add(figure, p);
	}
	entry_values(acc, figure, v);
	return CREDIT_SHARED_LOCKED;
}

/*
 * Another running transaction holding a reservation on acc (lock held) that
 * this one may wait for, or invalid.  A transaction that holds a
 * reservation itself waits only for those that took theirs earlier, as it
 * would queue behind the row lock's earlier holders and ahead of later
 * ones; two transactions never wait for each other on one account.
 */
TransactionId
credit_shared_other_pending(CreditSharedAccount *cacc)
{
	SharedAccount *acc = (SharedAccount *) cacc;

	/* a commit waiting for the row we hold waits for us: not we for it */
	return pending_other(acc, acc->row_holder == GetTopTransactionId() ? acc->row_waiter
						 : InvalidTransactionId);
}

/*
 * The slot of a commit waiting for the row that me holds (row_waiter), as
 * me counts it: me did not wait for it, and decides (a key change, a
 * deletion, the status its write derives) as if it had committed, as it
 * would have waited for that commit under row locks.
 */
static bool
committing_for_holder(SharedAccount *acc, SharedSlot *s, TransactionId me)
{
	return acc->row_holder == me && TransactionIdIsValid(me) && s->xid != me &&
		s->xid == acc->row_waiter && s->committing && !TransactionIdDidAbort(s->xid);
}

/*
 * At REPEATABLE READ: has a change to acc's exposure committed, or passed
 * its pre-commit (a commit waiting for the row, let past us), that
 * snapshot does not see (lock held)?  The row path would have found the
 * account row updated since the snapshot.  The recent commits the entry
 * keeps are looked at, and the latest it no longer keeps.  A reservation
 * still running is not: under row locks it would be waiting for us.
 */
static bool
changed_unseen(SharedAccount *acc, Snapshot snapshot, TransactionId me)
{
	if (TransactionIdIsValid(acc->fold_forgotten) &&
		XidInMVCCSnapshot(acc->fold_forgotten, snapshot))
		return true;
	for (int i = 0; i < SHARED_FOLDS; i++)
		if (TransactionIdIsValid(acc->fold_xid[i]) && acc->fold_xid[i] != me &&
			XidInMVCCSnapshot(acc->fold_xid[i], snapshot))
			return true;
	for (int i = 0; i < SHARED_SLOTS; i++)
		if (TransactionIdIsValid(acc->slots[i].xid) && acc->slots[i].xid != me &&
			credit_numeric_cmp(shared_get(&acc->pending[i]), zero()) != 0 &&
			XidInMVCCSnapshot(acc->slots[i].xid, snapshot) &&
			(TransactionIdDidCommit(acc->slots[i].xid) ||
			 (acc->slots[i].committing && !TransactionIdDidAbort(acc->slots[i].xid))))
			return true;
	return false;
}

/* credit_shared_other_pending, not counting skip */
static TransactionId
pending_other(SharedAccount *acc, TransactionId skip)
{
	TransactionId me = GetTopTransactionId();
	SharedSlot *own = find_slot(acc, me);

	for (int i = 0; i < SHARED_SLOTS; i++)
		if (TransactionIdIsValid(acc->slots[i].xid) && acc->slots[i].xid != me &&
			acc->slots[i].xid != skip &&
			(own == NULL || acc->slots[i].seq < own->seq) &&
			credit_numeric_cmp(shared_get(&acc->pending[i]), zero()) != 0 &&
			TransactionIdIsInProgress(acc->slots[i].xid))
			return acc->slots[i].xid;
	return InvalidTransactionId;
}

/*
 * Add delta to this transaction's slot (lock held).  Returns false, with
 * the lock released and *wait_for set, when every slot is taken.
 */
bool
credit_shared_reserve(CreditSharedAccount *cacc, Numeric delta, TransactionId *wait_for)
{
	SharedAccount *acc = (SharedAccount *) cacc;
	TransactionId me = GetTopTransactionId();
	SharedSlot *slot = find_slot(acc, me);

	if (slot == NULL)
	{
		slot = find_slot(acc, InvalidTransactionId);
		if (slot == NULL)
		{
			/* every slot taken: wait for a running holder (or a moment) */
			*wait_for = acc->slots[0].xid;
			for (int i = 0; i < SHARED_SLOTS; i++)
				if (TransactionIdIsInProgress(acc->slots[i].xid))
					*wait_for = acc->slots[i].xid;
			LWLockRelease(&acc->lock);
			return false;
		}
		slot->xid = me;
		slot->seq = acc->next_seq++;
		slot->committing = false;
		slot->token_wait = false;
		shared_put(SLOT_PENDING(acc, slot), zero());
	}
	shared_put(SLOT_PENDING(acc, slot), credit_numeric_add(shared_get(SLOT_PENDING(acc, slot)), delta));
	remember(acc, me, delta);
	return true;
}

void
credit_shared_end(CreditSharedAccount *cacc)
{
	LWLockRelease(&((SharedAccount *) cacc)->lock);
}

/* take back delta from this transaction's reservation on acc */
void
credit_shared_take_back(CreditSharedAccount *cacc, Numeric delta)
{
	SharedAccount *acc = (SharedAccount *) cacc;
	TransactionId me = GetTopTransactionId();
	SharedSlot *slot;
	Numeric		minus = credit_numeric_sub(zero(), delta);

	LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
	slot = find_slot(acc, me);
	if (slot == NULL)
		elog(ERROR, "credit: no reservation to take back");
	shared_put(SLOT_PENDING(acc, slot), credit_numeric_add(shared_get(SLOT_PENDING(acc, slot)), minus));
	remember(acc, me, minus);
	/* nothing left: give the slot up, so nobody waits for this transaction here */
	if (credit_numeric_cmp(shared_get(SLOT_PENDING(acc, slot)), zero()) == 0)
		slot->xid = InvalidTransactionId;
	LWLockRelease(&acc->lock);
}

/*
 * Can the caller wait for xid with XactLockTableWait?  Not when it has
 * ended (its slot not yet freed by its callbacks): then pause a moment and
 * return false, and the caller tries again.
 */
bool
credit_shared_wait_usable(TransactionId xid)
{
	if (TransactionIdIsInProgress(xid))
		return true;
	pg_usleep(1000L);
	CHECK_FOR_INTERRUPTS();
	return false;
}

/*
 * A transaction is about to write the row of account key (INSERT, UPDATE,
 * DELETE; write), or to hold the account as a row lock would (the hold
 * and warn tables' check, which decides on what it saw): wait until no
 * other transaction holds a reservation on it, then mark it as changing,
 * so that orders wait for this transaction (and, after a write, reload the
 * account's values).  A transaction that has the row locked (row_locked:
 * every writer of the row) says so while it waits (waiting_writer), so
 * that a reservation holder's commit leaves the status to it instead of
 * waiting for the row; and it does not wait for a transaction that already
 * waits for that row (row_waiter), which writes the row again once we are
 * done.  An UPDATE's row trigger has the row, then the entry;
 * credit.lock_accounts takes the entry, then the row (row_next: it is the
 * row_waiter from the moment it holds the entry).  Returns the exposure
 * the ledger holds for it (committed plus this transaction's own), or NULL
 * when the row path serves it.
 */
Numeric
credit_shared_account_changing(const char *key, bool write, bool row_locked, bool row_next)
{
	SharedAccount *acc;
	SharedTag	tag;
	TransactionId me;
	Numeric		figure;

	if (!credit_shared_enabled() || strlen(key) >= SHARED_KEYLEN)
		return NULL;
	/* the figure of an account not loaded yet is in the source tables */
	(void) load_database();
	/* no entry: nothing reserved; a later load reads the row (waiting for us) */
	make_tag(&tag, key);
	LWLockAcquire(ledger->map_lock, LW_SHARED);
	acc = hash_search(accounts, &tag, HASH_FIND, NULL);
	LWLockRelease(ledger->map_lock);
	if (acc == NULL)
		return NULL;
	acc = (SharedAccount *) credit_shared_account(key);	/* waits for a loader */
	me = GetTopTransactionId();
	for (;;)
	{
		TransactionId other;

		LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
		/*
		 * Holding the row, not for a commit waiting for that row
		 * (row_waiter): it writes the row again after us
		 */
		other = pending_other(acc, row_locked ? acc->row_waiter : InvalidTransactionId);
		if (!TransactionIdIsValid(other) && TransactionIdIsValid(acc->changer) &&
			acc->changer != me && TransactionIdIsInProgress(acc->changer) &&
			!(row_locked && acc->changer == acc->row_waiter))
			other = acc->changer;
		if (!TransactionIdIsValid(other))
			break;
		if (row_locked)
			acc->waiting_writer = me;
		LWLockRelease(&acc->lock);
		if (credit_shared_wait_usable(other))
			XactLockTableWait(other, NULL, NULL, XLTW_Update);
	}
	if (acc->waiting_writer == me)
		acc->waiting_writer = InvalidTransactionId;
	/*
	 * REPEATABLE READ: a change the snapshot does not see, committed or let
	 * past us (a commit waiting for the row), is a serialization failure,
	 * as the row lock finds the row updated since the snapshot
	 */
	if (IsolationUsesXactSnapshot() && changed_unseen(acc, GetTransactionSnapshot(), me))
	{
		LWLockRelease(&acc->lock);
		credit_report_serialization_failure(key);
	}
	if (acc->changer != me)
	{
		/* its status is derived again at our commit (store_statuses) */
		if (nheld == maxheld)
		{
			maxheld = maxheld ? maxheld * 2 : 16;
			held = held ? repalloc(held, sizeof(SharedAccount *) * maxheld)
				: MemoryContextAlloc(TopMemoryContext, sizeof(SharedAccount *) * maxheld);
		}
		held[nheld++] = acc;
	}
	acc->changer = me;
	if (row_locked)
		acc->row_holder = me;
	/*
	 * row_next: the caller locks the row next (credit.lock_accounts); said
	 * in the same hold of the entry's lock, so a writer holding the row
	 * never waits for us while we wait for it
	 */
	if (row_next && !(TransactionIdIsValid(acc->row_waiter) && acc->row_waiter != me &&
					  TransactionIdIsInProgress(acc->row_waiter)))
		acc->row_waiter = me;
	if (write)
		acc->values_stale = true;
	figure = shared_get(&acc->exposure);
	for (int i = 0; i < SHARED_SLOTS; i++)
		if (TransactionIdIsValid(acc->slots[i].xid) &&
			(acc->slots[i].xid == me ||
			 (TransactionIdDidCommit(acc->slots[i].xid) &&
			  !TransactionIdIsInProgress(acc->slots[i].xid)) ||
			 committing_for_holder(acc, &acc->slots[i], me)))
			figure = credit_numeric_add(figure, shared_get(&acc->pending[i]));
	figure = DatumGetNumeric(datumCopy(NumericGetDatum(figure), false, -1));
	LWLockRelease(&acc->lock);
	return figure;
}

/*
 * credit.lock_accounts holds an account in the ledger first
 * (credit_shared_account_changing with row_next: while it waits for the
 * row it is the entry's row_waiter, and a writer holding the row does not
 * wait for it in the ledger but becomes the changer), then locks its row,
 * then calls this: it becomes the changer again if a writer took over,
 * waiting then as a writer does.
 */
void
credit_shared_row_locked(const char *key)
{
	SharedAccount *acc;
	SharedTag	tag;
	TransactionId me = GetTopTransactionId();
	bool		again = false;

	if (!credit_shared_enabled() || strlen(key) >= SHARED_KEYLEN)
		return;
	make_tag(&tag, key);
	LWLockAcquire(ledger->map_lock, LW_SHARED);
	acc = hash_search(accounts, &tag, HASH_FIND, NULL);
	LWLockRelease(ledger->map_lock);
	if (acc == NULL)
		return;
	LWLockAcquire(&acc->lock, LW_EXCLUSIVE);
	if (acc->row_waiter == me)
		acc->row_waiter = InvalidTransactionId;
	if (acc->changer == me)
		acc->row_holder = me;
	else
		again = true;
	LWLockRelease(&acc->lock);
	if (again)
		(void) credit_shared_account_changing(key, false, true, false);
}

/* the exposure of key computed from the source tables in snapshot */
static Numeric
rebuild_in_snapshot(const char *key, Snapshot snapshot)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(key)};
	MemoryContext caller = CurrentMemoryContext;
	Numeric		figure;
	bool		isnull;
	int			rc;
	CreditUserSave save;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	rc = SPI_execute_snapshot(SPI_prepare("SELECT credit.rebuild_exposure($1)", 1, argtypes),
							  args, NULL, snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "rebuilding credit exposure failed: %s", SPI_result_code_string(rc));
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(caller);

		figure = isnull ? zero() : DatumGetNumeric(datumCopy(d, false, -1));
		MemoryContextSwitchTo(old);
	}
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	return figure;
}

/*
 * The exposure of key as this transaction sees it, or NULL when the stored
 * column holds it: the row path serves the account, or (its database
 * loaded) it has no entry yet, being new since the load.  With a snapshot:
 * the commits that snapshot sees, plus this transaction's own pending
 * changes, as the stored column would read in it (commits it does not see
 * are left out, from the entry's record of recent commits; when that no
 * longer reaches back to the snapshot, the figure is rebuilt from the
 * source tables in it).  Without: every commit so far, plus our own.
 * Reading loads no entry of its own.
 */
Numeric
credit_shared_exposure(const char *key, Snapshot snapshot)
{
	SharedAccount *acc;
	TransactionId me;
	Numeric		figure;
	bool		reaches = true;

	if (!credit_shared_enabled() || strlen(key) >= SHARED_KEYLEN)
		return NULL;
	if (load_database())
	{
		SharedTag	tag;

		make_tag(&tag, key);
		LWLockAcquire(ledger->map_lock, LW_SHARED);
		acc = hash_search(accounts, &tag, HASH_FIND, NULL);
		LWLockRelease(ledger->map_lock);
		if (acc == NULL || acc->state != SHARED_VALID)
			return NULL;
	}
	else
		acc = (SharedAccount *) credit_shared_account(key);
	if (acc == NULL)
		return NULL;
	me = GetTopTransactionIdIfAny();
	LWLockAcquire(&acc->lock, LW_SHARED);
	figure = shared_copy(&acc->exposure);
	for (int i = 0; i < SHARED_SLOTS; i++)
		if (TransactionIdIsValid(acc->slots[i].xid) &&
			(acc->slots[i].xid == me ||
			 (TransactionIdDidCommit(acc->slots[i].xid) &&
			  (snapshot == NULL || !XidInMVCCSnapshot(acc->slots[i].xid, snapshot))) ||
			 (snapshot == NULL && committing_for_holder(acc, &acc->slots[i], me))))
			figure = credit_numeric_add(figure, shared_get(&acc->pending[i]));
	if (snapshot != NULL)
	{
		if ((TransactionIdIsValid(acc->fold_forgotten) &&
			 !TransactionIdPrecedes(acc->fold_forgotten, snapshot->xmin)) ||
			!sees_load(&acc->load, snapshot))
			reaches = false;
		for (int i = 0; i < SHARED_FOLDS && reaches; i++)
			if (TransactionIdIsValid(acc->fold_xid[i]) &&
				XidInMVCCSnapshot(acc->fold_xid[i], snapshot))
				figure = credit_numeric_sub(figure, shared_get(&acc->fold_amount[i]));
	}
	LWLockRelease(&acc->lock);
	if (!reaches)
		return rebuild_in_snapshot(key, snapshot);
	return figure;
}

/*
 * credit.adjust_shared_exposure(customer_keys, deltas): add each delta to
 * the account's exposure in the shared-memory ledger only (no limit check,
 * no roll-up: each figure is the account's own plus its descendants'), as
 * a reservation of this transaction, so it counts at commit and vanishes
 * at abort.  For credit.reconcile(repair => true), which holds locks that
 * keep every other order out; returns how many were applied (accounts the
 * row path serves are repaired in their row).
 */
PG_FUNCTION_INFO_V1(credit_adjust_shared_exposure);

Datum
credit_adjust_shared_exposure(PG_FUNCTION_ARGS)
{
	char	  **keys;
	Numeric    *deltas;
	int			nk = credit_keys_and_deltas(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1),
											"credit.adjust_shared_exposure", &keys, &deltas);
	int32		applied = 0;

	for (int i = 0; i < nk; i++)
	{
		char	   *key = keys[i];
		CreditSharedAccount *acc = credit_shared_account(key);

		if (acc == NULL)
			continue;
		for (;;)
		{
			CreditAccountValues v;
			TransactionId wait_for = InvalidTransactionId;
			CreditSharedResult r = credit_shared_begin(acc, key, &v, &wait_for);

			if (r == CREDIT_SHARED_WAIT)
			{
				if (credit_shared_wait_usable(wait_for))
					XactLockTableWait(wait_for, NULL, NULL, XLTW_Update);
				continue;
			}
			if (r == CREDIT_SHARED_LOCKED)
			{
				if (!credit_shared_reserve(acc, deltas[i], &wait_for))
				{
					if (credit_shared_wait_usable(wait_for))
						XactLockTableWait(wait_for, NULL, NULL, XLTW_Update);
					continue;
				}
				credit_shared_end(acc);
				applied++;
			}
			break;				/* no row, or 40001 at REPEATABLE READ: the caller refuses both */
		}
	}
	PG_RETURN_INT32(applied);
}

/*
 * credit.ledger_backend(customer_key): 'shared memory' or 'row lock',
 * the ledger that serves the account.
 */
PG_FUNCTION_INFO_V1(credit_ledger_backend);

Datum
credit_ledger_backend(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(cstring_to_text(credit_shared_account(key) ? "shared memory" : "row lock"));
}

/*
 * credit.live_exposure(customer_key, stored): the exposure the serving
 * ledger holds: the shared ledger's, or the stored column's.
 */
PG_FUNCTION_INFO_V1(credit_live_exposure);

Datum
credit_live_exposure(PG_FUNCTION_ARGS)
{
	Numeric		figure;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	figure = credit_shared_exposure(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	if (figure)
		PG_RETURN_NUMERIC(figure);
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(1));
}

/*
 * credit.shared_ledger(): the entries of this database: key, state,
 * committed exposure, the sum of pending reservations and their number.
 */
PG_FUNCTION_INFO_V1(credit_shared_ledger);

Datum
credit_shared_ledger(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	SharedAccount *acc;
	Oid			relid;

	InitMaterializedSRF(fcinfo, 0);
	if (!credit_shared_enabled())
		return (Datum) 0;
	relid = credit_accounts_oid();
	LWLockAcquire(ledger->map_lock, LW_SHARED);
	hash_seq_init(&status, accounts);
	while ((acc = hash_seq_search(&status)) != NULL)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		Numeric		pending = zero();
		int			npending = 0;

		if (acc->tag.dboid != MyDatabaseId || acc->tag.relid != relid)
			continue;
		LWLockAcquire(&acc->lock, LW_SHARED);
		values[0] = CStringGetTextDatum(acc->tag.key);
		values[1] = CStringGetTextDatum(acc->state == SHARED_VALID ? "valid"
										: acc->state == SHARED_GONE ? "no account" : "loading");
		values[2] = NumericGetDatum(shared_copy(&acc->exposure));
		for (int i = 0; i < SHARED_SLOTS; i++)
			if (TransactionIdIsValid(acc->slots[i].xid))
			{
				pending = credit_numeric_add(pending, shared_get(&acc->pending[i]));
				npending++;
			}
		LWLockRelease(&acc->lock);
		values[3] = NumericGetDatum(pending);
		values[4] = Int32GetDatum(npending);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(ledger->map_lock);
	return (Datum) 0;
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE ON credit.accounts, first of its
 * triggers (named accounts__ledger): a write of an account row the shared
 * ledger serves waits for the transactions holding reservations on it and
 * marks it as changing (credit_shared_account_changing); the row being
 * written gets the ledger's exposure, so the stored column and the status
 * derived from it are current after every write of the row.
 */
PG_FUNCTION_INFO_V1(credit_accounts_ledger_trigger);

Datum
credit_accounts_ledger_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	row;
	Datum		key;
	bool		isnull;
	Numeric		figure;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit_accounts_ledger_trigger: must be fired before, for each row")));
	desc = RelationGetDescr(trigdata->tg_relation);
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;
	if (!credit_shared_enabled())
		return PointerGetDatum(row);
	key = heap_getattr(trigdata->tg_trigtuple, Anum_accounts_customer_key, desc, &isnull);
	if (isnull)
		return PointerGetDatum(row);
	figure = credit_shared_account_changing(TextDatumGetCString(key), true, true, false);
	if (figure && !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		int			cols[1] = {Anum_accounts_exposure};
		Datum		vals[1] = {NumericGetDatum(figure)};
		bool		nulls[1] = {false};

		row = heap_modify_tuple_by_cols(row, desc, 1, cols, vals, nulls);
	}
	return PointerGetDatum(row);
}
