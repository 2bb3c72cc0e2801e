/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Shims over the server API differences between PostgreSQL majors.
 *
 * Every PG_VERSION_NUM test of the extension lives here.  PostgreSQL 16
 * changed table_tuple_update's index hint into an enum and gave
 * ExecInsertIndexTuples an onlySummarizing argument.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CREDIT_COMPAT_H
#define CREDIT_COMPAT_H

#include "postgres.h"

#include "access/tableam.h"
#include "executor/executor.h"

#if PG_VERSION_NUM < 150000
#error "credit needs PostgreSQL 15 or later"
#endif

/* update a row; *needs_index is true when new index entries are required */
static inline TM_Result
credit_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
					Snapshot snapshot, TM_FailureData *tmfd,
					LockTupleMode *lockmode, bool *needs_index,
					bool *only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes update_indexes;
	TM_Result	result;

	result = table_tuple_update(rel, otid, slot, GetCurrentCommandId(true),
								snapshot, InvalidSnapshot, true, tmfd,
								lockmode, &update_indexes);
	*needs_index = (update_indexes != TU_None);
	*only_summarizing = (update_indexes == TU_Summarizing);
	return result;
#else
	*only_summarizing = false;
	return table_tuple_update(rel, otid, slot, GetCurrentCommandId(true),
							  snapshot, InvalidSnapshot, true, tmfd,
							  lockmode, needs_index);
#endif
}

static inline void
credit_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
						   EState *estate, bool only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	ExecInsertIndexTuples(rri, slot, estate, true, false, NULL, NIL,
						  only_summarizing);
#else
	Assert(!only_summarizing);
	ExecInsertIndexTuples(rri, slot, estate, true, false, NULL, NIL);
#endif
}

#endif							/* CREDIT_COMPAT_H */
