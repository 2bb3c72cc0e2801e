/*-------------------------------------------------------------------------
 *
 * hierarchy.c
 *	  credit.move_account: a customer moves to another parent (group), and
 *	  its exposure moves with it.
 *
 * An account's exposure includes its descendants' (exposure.c).  Moving
 * account C from old parent P to new parent Q therefore takes C's exposure
 * E off P and its ancestors and puts it on Q and its ancestors, without a
 * limit check (a move is a decision of the credit controller; a new parent
 * over its limit gets status hold, and its members' increases are refused).
 *
 * The move first takes an EXCLUSIVE lock on credit.accounts.  It conflicts
 * with the ROW EXCLUSIVE lock of every transaction that has changed
 * exposure, so the move waits for those to end, and new changes wait for
 * the move to commit: no change runs on a tree while it is being reshaped,
 * which is what lets the ledger take its row locks in one global order.  It
 * also conflicts with the ROW SHARE lock of a transaction that has locked
 * account rows without changing exposure yet (SELECT ... FOR NO KEY UPDATE:
 * credit.hold_left does it before the trigger applies a reopened held
 * order).  SHARE ROW EXCLUSIVE did not: the move then waited for such a row
 * while holding the table lock, and the holder's exposure change waited for
 * the move, a deadlock.  Plain reads (ACCESS SHARE) go on.  A move that would make a cycle (Q is C or one of C's descendants)
 * is refused with 23514.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_move_account);

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		 int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

/* move one account's exposure onto an account and its ancestors, unchecked */
static void
move_exposure(char *key, Numeric delta)
{
	CreditChange change;
	CreditSource source = {NULL, "account move"};

	change.customer_key = key;
	change.delta = delta;
	change.check = false;
	change.currency = NULL;
	credit_apply_changes(&change, 1, &source);
}

/* the account row of key as it is now, in the caller's memory (inside SPI) */
static Datum
account_row(Datum key)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {key};

	spi_exec("SELECT a.* FROM credit.accounts a WHERE a.customer_key OPERATOR(pg_catalog.=) $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "credit account vanished during credit.move_account");
	return PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
}

Datum
credit_move_account(PG_FUNCTION_ARGS)
{
	Datum		result;
	char	   *customer;
	char	   *new_parent;
	char	   *old_parent = NULL;
	Numeric		exposure;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	int			rc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("credit.move_account needs a customer")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("credit.move_account must run at READ COMMITTED"),
				 errdetail("It reads the accounts after taking its lock, which needs a fresh snapshot.")));
	customer = text_to_cstring(PG_GETARG_TEXT_PP(0));
	new_parent = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	LockRelationOid(get_relname_relid("accounts", get_namespace_oid("credit", false)),
					ExclusiveLock);
	CommandCounterIncrement();

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));

	values[0] = CStringGetTextDatum(customer);
	spi_exec("SELECT a.exposure, a.parent_key FROM credit.accounts a "
			 "WHERE a.customer_key OPERATOR(pg_catalog.=) $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("customer \"%s\" has no credit account", customer)));
	exposure = DatumGetNumeric(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 1, &isnull));
	exposure = DatumGetNumericCopy(NumericGetDatum(exposure));
	{
		/* the shared-memory ledger's figure (every order that counts in it has ended) */
		Numeric		live = credit_shared_exposure(customer, NULL);

		if (live)
			exposure = live;
	}
	{
		Datum		p = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

		if (!isnull)
			old_parent = TextDatumGetCString(p);
	}

	if (new_parent != NULL)
	{
		values[1] = CStringGetTextDatum(new_parent);
		spi_exec("SELECT 1 FROM credit.accounts a WHERE a.customer_key OPERATOR(pg_catalog.=) $1",
				 1, types, &values[1], NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("parent \"%s\" has no credit account", new_parent)));
		/* the new parent and its ancestors must not include the customer */
		/* UNION, no depth bound: the walk ends at the root whatever the depth */
		spi_exec("WITH RECURSIVE up(k) AS ("
				 " SELECT $2::pg_catalog.text COLLATE \"C\""
				 " UNION"
				 " SELECT a.parent_key FROM credit.accounts a"
				 " JOIN up ON a.customer_key OPERATOR(pg_catalog.=) up.k"
				 " WHERE a.parent_key IS NOT NULL)"
				 " SELECT 1 FROM up WHERE up.k OPERATOR(pg_catalog.=) $1",
				 2, types, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("moving customer \"%s\" under \"%s\" would make a cycle",
							customer, new_parent),
					 errdetail("\"%s\" is \"%s\" or one of its descendants.", new_parent, customer)));
		/* the deepest account of the moved subtree must stay within the limit */
		spi_exec("WITH RECURSIVE down(k, h) AS ("
				 " SELECT $1::pg_catalog.text COLLATE \"C\", 0"
				 " UNION ALL"
				 " SELECT a.customer_key, down.h OPERATOR(pg_catalog.+) 1 FROM credit.accounts a"
				 " JOIN down ON a.parent_key OPERATOR(pg_catalog.=) down.k"
				 " WHERE down.h OPERATOR(pg_catalog.<) " CppAsString2(CREDIT_MAX_DEPTH) ")"
				 " SELECT pg_catalog.max(down.h)::pg_catalog.int4 FROM down",
				 1, types, values, NULL, SPI_OK_SELECT);
		{
			int			height = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull));

			if (height + 1 + credit_chain_length(new_parent) > CREDIT_MAX_DEPTH)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("moving customer \"%s\" under \"%s\" would make the tree too deep",
								customer, new_parent),
						 errdetail("An account has at most %d ancestors.", CREDIT_MAX_DEPTH - 1)));
		}
	}
	if ((old_parent == NULL && new_parent == NULL) ||
		(old_parent != NULL && new_parent != NULL && strcmp(old_parent, new_parent) == 0))
	{
		result = account_row(values[0]);
		SPI_finish();
		PG_RETURN_DATUM(result);
	}

	/* off the old chain, rewrite the link, onto the new chain */
	if (old_parent != NULL)
		move_exposure(old_parent, DatumGetNumeric(DirectFunctionCall1(numeric_uminus,
																	   NumericGetDatum(exposure))));
	credit_moving_account = true;
	PG_TRY();
	{
		spi_exec("UPDATE credit.accounts SET parent_key = $2 "
				 "WHERE customer_key OPERATOR(pg_catalog.=) $1",
				 2, types, values, new_parent ? "  " : " n", SPI_OK_UPDATE);
	}
	PG_FINALLY();
	{
		credit_moving_account = false;
	}
	PG_END_TRY();
	if (new_parent != NULL)
		move_exposure(new_parent, exposure);

	result = account_row(values[0]);
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	PG_RETURN_DATUM(result);
}
