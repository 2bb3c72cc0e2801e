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
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "credit.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	MarkGUCPrefixReserved("credit");
}

/*
 * The role on whose behalf the extension acts.  When credit_become_owner
 * switches to the schema owner, the user it switched from is remembered as
 * the actor, so that status changes and audit rows written in that context
 * name the person, not the owner.  The remembered actor counts only while
 * the current user is still that owner: after an error unwinds the switch,
 * PostgreSQL restores the user and the stale value is ignored.
 */
static Oid	credit_actor = InvalidOid;
static Oid	credit_actor_owner = InvalidOid;

Oid
credit_actor_id(void)
{
	if (OidIsValid(credit_actor) && GetUserId() == credit_actor_owner)
		return credit_actor;
	return GetUserId();
}

/* switch to the owner of schema credit for internal queries */
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
}
