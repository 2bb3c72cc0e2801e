/*-------------------------------------------------------------------------
 *
 * credit.h
 *	  Shared declarations of the credit extension.
 *
 * The exposure ledger (exposure.c) is the one place that changes an
 * account's exposure.  Callers describe what happened as a list of
 * CreditChange entries (customer key and signed delta); the ledger orders
 * them by key, so two sessions touching the same pair of accounts always
 * lock them in the same order and cannot deadlock, and applies each under
 * the account row's lock: an increase is checked against available credit
 * at that moment, a decrease always passes.  Order tables today, and
 * receivables, held orders and group limits later, all go through it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CREDIT_H
#define CREDIT_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "utils/array.h"
#include "utils/numeric.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* the extension's own SQLSTATEs (documented in README.md) */
#define ERRCODE_CREDIT_LIMIT_EXCEEDED	MAKE_SQLSTATE('C','R','0','0','1')
#define ERRCODE_CREDIT_ACCOUNT_STOPPED	MAKE_SQLSTATE('C','R','0','0','2')
#define ERRCODE_CREDIT_NO_ACCOUNT		MAKE_SQLSTATE('C','R','0','0','3')

/* amounts and limits must stay below this magnitude (README: "Amounts") */
#define CREDIT_AMOUNT_BOUND "1e15"

/* credit statuses (iDempiere's meaning) */
typedef enum CreditStatus
{
	CREDIT_STATUS_NONE,			/* no check */
	CREDIT_STATUS_OK,
	CREDIT_STATUS_WATCH,		/* exposure at or above watch_ratio x limit */
	CREDIT_STATUS_HOLD,			/* exposure above the limit */
	CREDIT_STATUS_STOP			/* set by a person or dunning: no increase */
} CreditStatus;

/* one change of one account's exposure */
typedef struct CreditChange
{
	char	   *customer_key;	/* text form of the application's key */
	Numeric		delta;			/* signed */
	bool		check;			/* check an increase against the limit */
	const char *currency;		/* delta was converted to this currency: the
								 * account must still have it; NULL: no check */
} CreditChange;

/* where a change comes from, for error reports */
typedef struct CreditSource
{
	Relation	rel;			/* table whose row caused it, or NULL */
	const char *what;			/* "order", "invoice", ... */
} CreditSource;

/* credit.c: run internal queries as the owner of schema credit */
typedef struct CreditUserSave
{
	Oid			userid;
	int			sec_context;
	Oid			actor;
	Oid			actor_owner;
	int			guc_level;		/* search_path pinned from this GUC nest level */
} CreditUserSave;

extern Oid	credit_actor_id(void);
extern void credit_become_owner(CreditUserSave *save);
extern void credit_restore_user(const CreditUserSave *save);

/* exposure.c: the ledger */
extern void credit_apply_changes(CreditChange *changes, int nchanges,
								 const CreditSource *source);
extern void credit_apply_changes_held(CreditChange *changes, int nchanges,
									  const CreditSource *source);
extern ErrorData *credit_try_apply_changes(CreditChange *changes, int nchanges,
										   const CreditSource *source);
extern int	credit_lock_order(const char *root_a, int depth_a, const char *key_a,
							  const char *root_b, int depth_b, const char *key_b);

/* currency.c: conversion of orders in other currencies */
extern Numeric credit_currency_rate(const char *account_key, const char *currency,
									char **account_currency);

/* accounts.c: status rules shared by the ledger and the accounts trigger */
typedef struct CreditAccountValues
{
	Numeric		credit_limit;
	Numeric		temp_limit;
	bool		temp_from_null;
	TimestampTz temp_from;
	bool		temp_until_null;
	TimestampTz temp_until;
	Numeric		watch_ratio;
	Numeric		exposure;
	CreditStatus status;		/* the stored (effective) status */
	CreditStatus manual;		/* none or stop set by a person; OK if unset */
	CreditStatus dunning;		/* watch or stop set by dunning; OK if unset */
} CreditAccountValues;

/* an account has at most CREDIT_MAX_DEPTH - 1 ancestors (INSERT and move_account refuse more) */
#define CREDIT_MAX_DEPTH 64

extern AttrNumber credit_accounts_parent_attnum(TupleDesc desc);
extern int	credit_chain_length(const char *key);
extern bool credit_moving_account;

/* attribute numbers of credit.accounts (checked against the catalog) */
#define Anum_accounts_customer_key		1
#define Anum_accounts_customer_name		2
#define Anum_accounts_credit_limit		3
#define Anum_accounts_temp_limit		4
#define Anum_accounts_temp_limit_from	5
#define Anum_accounts_temp_limit_until	6
#define Anum_accounts_currency			7
#define Anum_accounts_owner				8
#define Anum_accounts_watch_ratio		9
#define Anum_accounts_status			10
#define Anum_accounts_exposure			11
#define Anum_accounts_manual_status		12
#define Anum_accounts_dunning_status	13
#define Natts_accounts_min				13

extern void credit_account_values(HeapTuple tuple, TupleDesc desc,
								  CreditAccountValues *values);
extern Numeric credit_effective_limit(const CreditAccountValues *values);
extern CreditStatus credit_derive_status(const CreditAccountValues *values,
										 Numeric effective_limit);
extern CreditStatus credit_status_from_text(const char *status);
extern const char *credit_status_name(CreditStatus status);
extern void credit_record_status_change(const char *customer_key,
										CreditStatus old_status,
										CreditStatus new_status,
										Numeric exposure,
										Numeric effective_limit);

/* numeric helpers (numeric_util in accounts.c) */
extern Numeric credit_numeric(const char *text);
extern int	credit_numeric_cmp(Numeric a, Numeric b);
extern Numeric credit_numeric_add(Numeric a, Numeric b);
extern Numeric credit_numeric_sub(Numeric a, Numeric b);
extern Numeric credit_numeric_mul(Numeric a, Numeric b);
extern Numeric credit_numeric_div(Numeric a, Numeric b);
extern Numeric credit_numeric_round(Numeric a, int scale);
extern Numeric credit_numeric_floor(Numeric a);
extern char *credit_numeric_text(Numeric n);
extern bool credit_numeric_in_bounds(Numeric n);

/* shared_ledger.c: the shared-memory exposure ledger (escrow reservations) */
typedef struct CreditSharedAccount CreditSharedAccount;	/* opaque */
typedef enum CreditSharedResult
{
	CREDIT_SHARED_LOCKED,		/* decide now; the entry's lock is held */
	CREDIT_SHARED_WAIT,			/* wait for *wait_for, then begin again */
	CREDIT_SHARED_GONE,			/* no account row */
	CREDIT_SHARED_SERIALIZATION	/* REPEATABLE READ: changed after our snapshot */
} CreditSharedResult;

extern int	credit_shared_ledger_accounts;
extern void credit_shared_ledger_init(void);
extern bool credit_shared_enabled(void);
extern CreditSharedAccount *credit_shared_account(const char *key);
extern CreditSharedResult credit_shared_begin(CreditSharedAccount *acc, const char *key,
											  CreditAccountValues *v,
											  TransactionId *wait_for);
extern TransactionId credit_shared_other_pending(CreditSharedAccount *acc);
extern bool credit_shared_reserve(CreditSharedAccount *acc, Numeric delta,
								  TransactionId *wait_for);
extern void credit_shared_end(CreditSharedAccount *acc);
extern void credit_shared_take_back(CreditSharedAccount *acc, Numeric delta);
extern bool credit_shared_wait_usable(TransactionId xid);
extern Numeric credit_shared_account_changing(const char *key, bool write,
											  bool row_locked, bool row_next);
extern bool credit_shared_parent(const char *key, char **parent);
extern void credit_shared_row_locked(const char *key);
extern void credit_report_serialization_failure(const char *key) pg_attribute_noreturn();
extern Numeric credit_shared_exposure(const char *key, Snapshot snapshot);

/* exposure.c: credit.accounts, and the shared ledger's write of a row at commit */
extern Oid	credit_accounts_oid(void);
extern int	credit_keys_and_deltas(ArrayType *keys, ArrayType *deltas, const char *fname,
								   char ***keys_out, Numeric **deltas_out);
extern int	credit_store_figure(const char *key, Numeric (*figure) (void *arg), void *arg,
								CreditStatus *written, bool wait);

#endif							/* CREDIT_H */
