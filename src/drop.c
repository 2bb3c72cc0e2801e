/*-------------------------------------------------------------------------
 *
 * drop.c
 *	  Releasing the exposure of attached tables that are being dropped.
 *
 * An event trigger on ddl_command_start sees DROP TABLE and DROP SCHEMA
 * before anything is dropped, while the tables can still be read: each
 * attached table named (or, for DROP SCHEMA, living in a named schema) is
 * detached first through credit.detach_orders, which locks it, releases
 * the exposure of its open orders and removes the triggers and metadata.
 * Other ways of dropping a table (DROP OWNED, dropping an extension that
 * owns it) leave its exposure in place; the sql_drop event trigger still
 * removes the metadata, and credit.reconcile(repair => true) corrects the
 * exposure.
 *
 * The names in the DROP statement are resolved the way the statement
 * itself resolves them, with the caller's search_path: that is why this
 * function has no SET search_path of its own.  The detaching then runs as
 * the owner of schema credit (the dropping role needs no privilege on it,
 * as for every other write of an attached table) with search_path pinned
 * to pg_catalog, pg_temp for its internal queries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_release_dropped_tables);

/* detach every attached table matching the query's $1 */
static void
detach_matching(const char *query, Oid arg)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(arg)};
	int			rc;

	rc = SPI_execute_with_args(query, 1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "detaching dropped tables failed: %s", SPI_result_code_string(rc));
}

Datum
credit_release_dropped_tables(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *stmt;
	ListCell   *lc;
	List	   *relids = NIL;
	List	   *nsps = NIL;
	CreditUserSave save;
	int			rc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.release_dropped_tables: not fired by event trigger manager")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (stmt->removeType != OBJECT_TABLE && stmt->removeType != OBJECT_SCHEMA)
		PG_RETURN_VOID();

	/* resolve the names first, as the DROP does: the caller's search_path */
	foreach(lc, stmt->objects)
	{
		if (stmt->removeType == OBJECT_TABLE)
		{
			RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
			Oid			relid = RangeVarGetRelid(rv, NoLock, true);

			if (OidIsValid(relid))
				relids = lappend_oid(relids, relid);
		}
		else
		{
			Oid			nsp = get_namespace_oid(strVal(lfirst(lc)), true);

			if (OidIsValid(nsp))
				nsps = lappend_oid(nsps, nsp);
		}
	}
	if (relids == NIL && nsps == NIL)
		PG_RETURN_VOID();

	/* then detach as the owner, with a pinned search_path (credit_become_owner) */
	credit_become_owner(&save);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	foreach(lc, relids)
		detach_matching("SELECT credit.detach_orders(a.orders) "
						"FROM credit.attachments a "
						"WHERE a.orders OPERATOR(pg_catalog.=) $1 AND NOT a.builtin",
						lfirst_oid(lc));
	foreach(lc, nsps)
		detach_matching("SELECT credit.detach_orders(a.orders) "
						"FROM credit.attachments a "
						"JOIN pg_catalog.pg_class c "
						"ON c.oid OPERATOR(pg_catalog.=) a.orders "
						"WHERE c.relnamespace OPERATOR(pg_catalog.=) $1 AND NOT a.builtin "
						"ORDER BY a.orders::pg_catalog.oid",
						lfirst_oid(lc));
	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	PG_RETURN_VOID();
}
