/*-------------------------------------------------------------------------
 *
 * currency.c
 *	  The rate at which an order in another currency counts on its account.
 *
 * An account keeps its exposure in its own currency.  An order of a table
 * attached with a currency column, in another currency, counts at the rate
 * of the account's currency position (credit.currency_positions, see
 * sql/currency.sql): booked with the account's first order in that
 * currency, changed only by credit.revalue.  Positions are read in a fresh
 * snapshot, also at REPEATABLE READ: revalue cannot run while this
 * transaction holds its order table's ROW EXCLUSIVE lock, so the position
 * read is the one in force until commit, and a position a committed
 * revaluation replaced is never used.  The ledger then checks, under the
 * account row's lock, that the account still has the currency converted
 * to (CreditChange.currency).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/snapmgr.h"

#include "credit.h"

/*
 * The rate of one unit of currency on account_key's account, booking the
 * position (at the business date's rate; CR008 if there is none) when the
 * account has none yet.  Returns NULL when the account is in that currency
 * (no conversion) or does not exist (the ledger reports CR003); sets
 * *account_currency to the account's currency (NULL: no account).
 */
Numeric
credit_currency_rate(const char *account_key, const char *currency,
					 char **account_currency)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	Numeric		rate = NULL;
	char	   *acur = NULL;
	bool		isnull;
	int			rc;
	CreditUserSave save;
	MemoryContext caller = CurrentMemoryContext;

	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT a.currency, p.rate"
									" FROM credit.accounts a"
									" LEFT JOIN credit.currency_positions p"
									" ON p.customer_key OPERATOR(pg_catalog.=) a.customer_key"
									" AND p.currency OPERATOR(pg_catalog.=) $2"
									" WHERE a.customer_key OPERATOR(pg_catalog.=) $1",
									2, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	args[0] = CStringGetTextDatum(account_key);
	args[1] = CStringGetTextDatum(currency);
	rc = SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the currency position failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		d;

		acur = SPI_getvalue(tup, desc, 1);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
			rate = DatumGetNumeric(d);
		else if (strcmp(acur, currency) != 0)
		{
			/* the account's first order in this currency: book the position */
			rc = SPI_execute_with_args("SELECT (credit.book_position($1, $2)).rate",
									   2, argtypes, args, NULL, false, 1);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "booking the currency position failed: %s",
					 SPI_result_code_string(rc));
			rate = DatumGetNumeric(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
		}
	}
	/* copy the results out of SPI's memory */
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		*account_currency = acur ? pstrdup(acur) : NULL;
		if (rate)
			rate = DatumGetNumeric(datumCopy(NumericGetDatum(rate), false, -1));
		MemoryContextSwitchTo(old);
	}
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	return rate;
}
