/*-------------------------------------------------------------------------
 *
 * credit.c
 *	  Module entry point of the credit extension, and module-wide helpers.
 *
 * Declares the module magic and reserves the credit.* configuration
 * prefix.  credit_become_owner lets the triggers run their few internal
 * queries (reading credit.attachments, recording a status change) as the
 * owner of schema credit, as PostgreSQL's own RI triggers run theirs as the
 * table owner: an application role that may insert orders needs no
 * privilege on the extension's tables, and no user can forge those rows.
 * The capabilities live in their own files: exposure.c (the ledger),
 * accounts.c (status rules), enforce.c (order-table triggers), drop.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "credit.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static void credit_xact_callback(XactEvent event, void *arg);

void
_PG_init(void)
{
	credit_shared_ledger_init();
	MarkGUCPrefixReserved("credit");
	RegisterXactCallback(credit_xact_callback, NULL);
}

/*
 * The role on whose behalf the extension acts.  When credit_become_owner
 * switches to the schema owner, the user it switched from is remembered as
 * the actor, so that status changes and audit rows written in that context
 * name the person, not the owner.  The remembered actor counts only while
 * the current user is still that owner inside the restricted operation the
 * switch began: after an error unwinds the switch, PostgreSQL restores the
 * user and security context and the stale value is ignored (the owner's own
 * SECURITY DEFINER functions are not restricted operations), and the end
 * of every transaction forgets it.  Outside
 * such a switch the actor is the outer user: the session's role as SET ROLE
 * left it, which a SECURITY DEFINER function (the approval functions run as
 * the extension's owner) does not change.
 */
static Oid	credit_actor = InvalidOid;
static Oid	credit_actor_owner = InvalidOid;

static void
credit_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		credit_actor = InvalidOid;
		credit_actor_owner = InvalidOid;
	}
}

Oid
credit_actor_id(void)
{
	if (OidIsValid(credit_actor) && GetUserId() == credit_actor_owner &&
		InSecurityRestrictedOperation())
		return credit_actor;
	return GetOuterUserId();
}

/*
 * credit.caller(): the actor's name, for SQL.  Inside the extension's
 * SECURITY DEFINER functions CURRENT_USER is the owner; this is the role
 * that called them.
 */
PG_FUNCTION_INFO_V1(credit_caller);

Datum
credit_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(credit_actor_id(),
																		  false))));
}

/*
 * Switch to the owner of schema credit for internal queries, with
 * search_path pinned to pg_catalog, pg_temp: every internal query of the C
 * code runs between this and credit_restore_user, so a C function that runs
 * no other name lookup needs no SET search_path of its own (the order
 * trigger has none: a SET per row costs about 4% of an order's CPU).
 */
void
credit_become_owner(CreditUserSave *save)
{
	Oid			nsp = get_namespace_oid("credit", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);

	save->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	save->actor = credit_actor;
	save->actor_owner = credit_actor_owner;
	credit_actor = credit_actor_id();
	credit_actor_owner = owner;
	SetUserIdAndSecContext(owner, save->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
credit_restore_user(const CreditUserSave *save)
{
	SetUserIdAndSecContext(save->userid, save->sec_context);
	credit_actor = save->actor;
	credit_actor_owner = save->actor_owner;
	AtEOXact_GUC(false, save->guc_level);
}
