/*-------------------------------------------------------------------------
 *
 * credit.c
 *	  Module entry point of the credit extension.
 *
 * Declares the module magic and reserves the credit.* configuration
 * prefix.  The capabilities live in their own files: exposure.c (the
 * ledger), accounts.c (status rules), enforce.c (order-table triggers).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "credit.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	MarkGUCPrefixReserved("credit");
}
