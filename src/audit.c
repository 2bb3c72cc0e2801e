/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The hash-chained audit trail: the statement trigger credit.audit_capture.
 *
 * The trigger reads the statement's transition tables (old_rows,
 * new_rows) in one query that yields, per changed row, its chain, key,
 * before and after images (jsonb), comment and acting role; rows are taken
 * in chain order.  It then locks the head row of every chain involved in
 * one upsert (in chain order, so two statements lock shared heads in the
 * same order), computes each row's SHA-256 chained to the previous one in
 * C, and writes the rows and the new heads with two set-based statements.
 * sql/audit.sql states the hash input; credit.audit_hash recomputes it.
 *
 * The acting role is the user whose statement fired the trigger, taken
 * before the trigger switches to the owner of schema credit to write the
 * trail (credit_become_owner), so audited users need no right on it.  Rows
 * of credit.status_changes and credit.grade_changes name their own actor
 * (changed_by), which is used instead: those rows are written by the
 * extension on a user's behalf.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "credit.h"

PG_FUNCTION_INFO_V1(credit_audit_capture);

/* columns of the capture query */
#define CAP_CHAIN	1
#define CAP_KEY		2
#define CAP_BEFORE	3
#define CAP_AFTER	4
#define CAP_COMMENT	5
#define CAP_ROLE	6

static void
append_field(StringInfo buf, const char *value, bool first)
{
	if (!first)
		appendStringInfoChar(buf, '\x1f');
	appendStringInfoString(buf, value ? value : "-");
}

static char *
jsonb_text(Datum d, bool isnull)
{
	Jsonb	   *j;

	if (isnull)
		return NULL;
	j = DatumGetJsonbP(d);
	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

/* SHA-256 of one row's content chained to the previous hash */
static bytea *
audit_row_hash(bytea *prev, const char *chain, int64 seq, TimestampTz at,
			   const char *session_role, const char *acting_role,
			   const char *table, const char *op, const char *key,
			   const char *before, const char *after, const char *comment)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	int64		epoch_us = at + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	initStringInfo(&buf);
	if (prev)
	{
		int			len = VARSIZE_ANY_EXHDR(prev);
		char	   *hex = palloc(len * 2 + 1);

		hex_encode(VARDATA_ANY(prev), len, hex);
		hex[len * 2] = '\0';
		append_field(&buf, hex, true);
	}
	else
		append_field(&buf, NULL, true);
	append_field(&buf, chain, false);
	appendStringInfo(&buf, "\x1f" INT64_FORMAT "\x1f" INT64_FORMAT, seq, epoch_us);
	append_field(&buf, session_role, false);
	append_field(&buf, acting_role, false);
	append_field(&buf, table, false);
	append_field(&buf, op, false);
	append_field(&buf, key, false);
	append_field(&buf, before, false);
	append_field(&buf, after, false);
	append_field(&buf, comment, false);

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf.data, buf.len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "credit: could not compute SHA-256");
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pfree(buf.data);
	return result;
}

/* the query listing the changed rows: chain, key, before, after, comment, role */
static char *
capture_query(TriggerData *trigdata, bool *has_watched)
{
	Trigger    *trig = trigdata->tg_trigger;
	const char *prefix = trig->tgargs[0];
	bool		fixed_chain = prefix[0] != '\0' && prefix[strlen(prefix) - 1] != ':';
	StringInfoData q;
	const char *chain_expr;
	const char *rows;

	*has_watched = trig->tgnargs > 2;
	initStringInfo(&q);
	/* $1 prefix, $2 key column, $3 acting role, $4 watched columns */
	chain_expr = fixed_chain ? "$1" : "$1 OPERATOR(pg_catalog.||) (COALESCE(a.j, b.j) OPERATOR(pg_catalog.->>) $2)";
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		rows = "(SELECT pg_catalog.to_jsonb(t) AS j, pg_catalog.row_number() OVER () AS o FROM new_rows t) a"
			" LEFT JOIN (SELECT NULL::pg_catalog.jsonb AS j, NULL::bigint AS o) b ON false";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		rows = "(SELECT pg_catalog.to_jsonb(t) AS j, pg_catalog.row_number() OVER () AS o FROM old_rows t) b"
			" LEFT JOIN (SELECT NULL::pg_catalog.jsonb AS j, NULL::bigint AS o) a ON false";
	else
		rows = "(SELECT pg_catalog.to_jsonb(t) AS j, pg_catalog.row_number() OVER () AS o FROM old_rows t) b"
			" JOIN (SELECT pg_catalog.to_jsonb(t) AS j, pg_catalog.row_number() OVER () AS o FROM new_rows t) a"
			" ON a.o OPERATOR(pg_catalog.=) b.o";
	appendStringInfo(&q,
					 "SELECT s.chain, s.row_key, s.before, s.after, s.comment, s.role FROM ("
					 "SELECT %s AS chain,"
					 " COALESCE(a.j, b.j) OPERATOR(pg_catalog.->>) $2 AS row_key,"
					 " b.j AS before, a.j AS after,"
					 " COALESCE(COALESCE(a.j, b.j) OPERATOR(pg_catalog.->>) 'comment',"
					 " COALESCE(a.j, b.j) OPERATOR(pg_catalog.->>) 'decision_comment') AS comment,"
					 " COALESCE(COALESCE(a.j, b.j) OPERATOR(pg_catalog.->>) 'changed_by', $3) AS role,"
					 " COALESCE(a.o, b.o) AS o"
					 " FROM %s",
					 chain_expr, rows);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		if (*has_watched)
			appendStringInfoString(&q,
								   " WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest($4) c"
								   " WHERE (a.j OPERATOR(pg_catalog.->) c) IS DISTINCT FROM"
								   " (b.j OPERATOR(pg_catalog.->) c))");
		else
			appendStringInfoString(&q, " WHERE a.j OPERATOR(pg_catalog.<>) b.j");
	}
	appendStringInfoString(&q, ") s ORDER BY s.chain COLLATE \"C\", s.o");
	return q.data;
}

Datum
credit_audit_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trig;
	const char *op;
	const char *table;
	char	   *actor;
	char	   *session_role;
	bool		has_watched;
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID};
	Datum		args[4];
	char		argnulls[4] = {' ', ' ', ' ', ' '};
	SPITupleTable *rows;
	uint64		nrows;
	uint64		i;
	int			rc;
	CreditUserSave save;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.audit_capture: not called by trigger manager")));
	trig = trigdata->tg_trigger;
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.audit_capture: must be fired after INSERT, UPDATE or DELETE, for each statement")));
	if (trig->tgnargs < 2 || trig->tgnargs > 3)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.audit_capture: takes a chain prefix, a key column and optionally watched columns")));
	if ((TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && trigdata->tg_newtable == NULL) ||
		(TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) && trigdata->tg_oldtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 (trigdata->tg_newtable == NULL || trigdata->tg_oldtable == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("credit.audit_capture: needs transition tables old_rows and new_rows")));

	op = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT" :
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "UPDATE";
	table = RelationGetRelationName(trigdata->tg_relation);
	actor = GetUserNameFromId(credit_actor_id(), false);
	session_role = GetUserNameFromId(GetSessionUserId(), false);

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if ((rc = SPI_register_trigger_data(trigdata)) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed: %s", SPI_result_code_string(rc));
	credit_become_owner(&save);

	args[0] = CStringGetTextDatum(trig->tgargs[0]);
	args[1] = CStringGetTextDatum(trig->tgargs[1]);
	args[2] = CStringGetTextDatum(actor);
	if (trig->tgnargs > 2)
		args[3] = DirectFunctionCall2Coll(text_to_array, C_COLLATION_OID,
									  CStringGetTextDatum(trig->tgargs[2]),
									  CStringGetTextDatum(","));
	else
	{
		args[3] = (Datum) 0;
		argnulls[3] = 'n';
	}
	rc = SPI_execute_with_args(capture_query(trigdata, &has_watched), 4, argtypes, args,
							   argnulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "credit: reading the changed rows failed: %s", SPI_result_code_string(rc));
	rows = SPI_tuptable;
	nrows = SPI_processed;

	if (nrows > 0)
	{
		Datum	   *chains = palloc(sizeof(Datum) * nrows);
		Datum	   *seqs = palloc(sizeof(Datum) * nrows);
		Datum	   *times = palloc(sizeof(Datum) * nrows);
		Datum	   *roles = palloc(sizeof(Datum) * nrows);
		Datum	   *keys = palloc(sizeof(Datum) * nrows);
		Datum	   *befores = palloc(sizeof(Datum) * nrows);
		Datum	   *afters = palloc(sizeof(Datum) * nrows);
		Datum	   *comments = palloc(sizeof(Datum) * nrows);
		Datum	   *prevs = palloc(sizeof(Datum) * nrows);
		Datum	   *hashes = palloc(sizeof(Datum) * nrows);
		bool	   *before_nulls = palloc(sizeof(bool) * nrows);
		bool	   *after_nulls = palloc(sizeof(bool) * nrows);
		bool	   *comment_nulls = palloc(sizeof(bool) * nrows);
		bool	   *prev_nulls = palloc(sizeof(bool) * nrows);
		Datum	   *head_chains = palloc(sizeof(Datum) * nrows);
		int			nheads = 0;
		int			dims[1];
		int			lbs[1] = {1};
		Oid			head_types[1] = {TEXTARRAYOID};
		Datum		head_args[1];
		SPITupleTable *heads;
		uint64		nheadrows;
		TimestampTz now;
		char	   *prev_chain = NULL;
		int64		seq = 0;
		bytea	   *prev = NULL;
		uint64		h = 0;
		MemoryContext row_context = AllocSetContextCreate(CurrentMemoryContext,
														  "credit audit row",
														  ALLOCSET_DEFAULT_SIZES);

		/* the distinct chains, already sorted by the query */
		for (i = 0; i < nrows; i++)
		{
			char	   *chain = SPI_getvalue(rows->vals[i], rows->tupdesc, CAP_CHAIN);

			if (chain == NULL)
				elog(ERROR, "credit: audited row of \"%s\" has no key", table);
			if (prev_chain == NULL || strcmp(prev_chain, chain) != 0)
				head_chains[nheads++] = CStringGetTextDatum(chain);
			prev_chain = chain;
		}

		/* lock every head (creating missing ones) and read where each chain ends */
		dims[0] = nheads;
		head_args[0] = PointerGetDatum(construct_array(head_chains, nheads, TEXTOID,
													   -1, false, TYPALIGN_INT));
		rc = SPI_execute_with_args("WITH h AS (INSERT INTO credit.audit_heads AS hd (chain, last_seq, last_hash)"
								   " SELECT c, 0, '\\x'::pg_catalog.bytea FROM pg_catalog.unnest($1) c"
								   " ON CONFLICT (chain) DO UPDATE SET last_seq = hd.last_seq"
								   " RETURNING hd.chain, hd.last_seq, hd.last_hash)"
								   " SELECT h.chain, h.last_seq, h.last_hash FROM h"
								   " ORDER BY h.chain COLLATE \"C\"",
								   1, head_types, head_args, NULL, false, 0);
		if (rc != SPI_OK_SELECT || SPI_processed != (uint64) nheads)
			elog(ERROR, "credit: locking the audit chain heads failed: %s",
				 SPI_result_code_string(rc));
		heads = SPI_tuptable;
		/* taken under the heads' locks: times rise along each chain */
		now = GetCurrentTimestamp();
		nheadrows = SPI_processed;

		prev_chain = NULL;
		for (i = 0; i < nrows; i++)
		{
			HeapTuple	tup = rows->vals[i];
			TupleDesc	desc = rows->tupdesc;
			char	   *chain = SPI_getvalue(tup, desc, CAP_CHAIN);
			char	   *key = SPI_getvalue(tup, desc, CAP_KEY);
			char	   *role = SPI_getvalue(tup, desc, CAP_ROLE);
			char	   *comment = SPI_getvalue(tup, desc, CAP_COMMENT);
			bool		bnull;
			bool		anull;
			Datum		bd = SPI_getbinval(tup, desc, CAP_BEFORE, &bnull);
			Datum		ad = SPI_getbinval(tup, desc, CAP_AFTER, &anull);
			bytea	   *hash;

			if (prev_chain == NULL || strcmp(prev_chain, chain) != 0)
			{
				/* the next head: rows and heads are both in "C" order of chain */
				bool		isnull;
				bytea	   *last;
				char	   *hc;

				if (h >= nheadrows ||
					strcmp(hc = SPI_getvalue(heads->vals[h], heads->tupdesc, 1), chain) != 0)
					elog(ERROR, "credit: audit chain head \"%s\" not found", chain);
				pfree(hc);
				seq = DatumGetInt64(SPI_getbinval(heads->vals[h], heads->tupdesc, 2, &isnull));
				last = DatumGetByteaPP(SPI_getbinval(heads->vals[h], heads->tupdesc, 3, &isnull));
				prev = VARSIZE_ANY_EXHDR(last) == 0 ? NULL : last;
				h++;
			}
			prev_chain = chain;
			seq++;
			{
				MemoryContext old = MemoryContextSwitchTo(row_context);
				bytea	   *tmp = audit_row_hash(prev, chain, seq, now, session_role, role,
												 table, op, key, jsonb_text(bd, bnull),
												 jsonb_text(ad, anull), comment);

				MemoryContextSwitchTo(old);
				hash = (bytea *) palloc(VARSIZE(tmp));
				memcpy(hash, tmp, VARSIZE(tmp));
				MemoryContextReset(row_context);
			}
			chains[i] = CStringGetTextDatum(chain);
			seqs[i] = Int64GetDatum(seq);
			times[i] = TimestampTzGetDatum(now);
			roles[i] = CStringGetTextDatum(role);
			keys[i] = CStringGetTextDatum(key ? key : "");
			befores[i] = bd;
			before_nulls[i] = bnull;
			afters[i] = ad;
			after_nulls[i] = anull;
			comments[i] = comment ? CStringGetTextDatum(comment) : (Datum) 0;
			comment_nulls[i] = comment == NULL;
			prevs[i] = prev ? PointerGetDatum(prev) : (Datum) 0;
			prev_nulls[i] = prev == NULL;
			hashes[i] = PointerGetDatum(hash);
			prev = hash;
		}

		/* the rows, then the heads' new ends, each in one statement */
		{
			Oid			types[11] = {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
				TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTARRAYOID,
				JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID};
			Datum		vals[13];
			Oid			types2[2] = {BYTEAARRAYOID, BYTEAARRAYOID};
			Datum		vals2[2];

			dims[0] = (int) nrows;
			vals[0] = PointerGetDatum(construct_array(chains, nrows, TEXTOID, -1, false, TYPALIGN_INT));
			vals[1] = PointerGetDatum(construct_array(seqs, nrows, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			vals[2] = PointerGetDatum(construct_array(times, nrows, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			vals[3] = CStringGetTextDatum(session_role);
			vals[4] = PointerGetDatum(construct_array(roles, nrows, TEXTOID, -1, false, TYPALIGN_INT));
			vals[5] = CStringGetTextDatum(table);
			vals[6] = CStringGetTextDatum(op);
			vals[7] = PointerGetDatum(construct_array(keys, nrows, TEXTOID, -1, false, TYPALIGN_INT));
			vals[8] = PointerGetDatum(construct_md_array(befores, before_nulls, 1, dims, lbs,
														 JSONBOID, -1, false, TYPALIGN_INT));
			vals[9] = PointerGetDatum(construct_md_array(afters, after_nulls, 1, dims, lbs,
														 JSONBOID, -1, false, TYPALIGN_INT));
			vals[10] = PointerGetDatum(construct_md_array(comments, comment_nulls, 1, dims, lbs,
														  TEXTOID, -1, false, TYPALIGN_INT));
			vals2[0] = PointerGetDatum(construct_md_array(prevs, prev_nulls, 1, dims, lbs,
														  BYTEAOID, -1, false, TYPALIGN_INT));
			vals2[1] = PointerGetDatum(construct_array(hashes, nrows, BYTEAOID, -1, false, TYPALIGN_INT));
			{
				Oid			all_types[13];
				Datum		all_vals[13];

				memcpy(all_types, types, sizeof(types));
				memcpy(all_vals, vals, sizeof(Datum) * 11);
				all_types[11] = types2[0];
				all_types[12] = types2[1];
				all_vals[11] = vals2[0];
				all_vals[12] = vals2[1];
				rc = SPI_execute_with_args("INSERT INTO credit.audit_log (chain, chain_seq, logged_at,"
										   " session_role, acting_role, table_name, operation, row_key,"
										   " before, after, comment, prev_hash, hash)"
										   " SELECT r.chain, r.seq, r.at, $4, r.role, $6, $7, r.key,"
										   " r.before, r.after, r.comment, r.prev, r.hash"
										   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
										   " pg_catalog.unnest($3), pg_catalog.unnest($5), pg_catalog.unnest($8),"
										   " pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11),"
										   " pg_catalog.unnest($12), pg_catalog.unnest($13))"
										   " AS r(chain, seq, at, role, key, before, after, comment, prev, hash)",
										   13, all_types, all_vals, NULL, false, 0);
				if (rc != SPI_OK_INSERT)
					elog(ERROR, "credit: writing the audit trail failed: %s",
						 SPI_result_code_string(rc));
				rc = SPI_execute_with_args("UPDATE credit.audit_heads hd SET last_seq = e.seq, last_hash = e.hash"
										   " FROM (SELECT DISTINCT ON (r.chain) r.chain, r.seq, r.hash"
										   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
										   " pg_catalog.unnest($13)) AS r(chain, seq, hash)"
										   " ORDER BY r.chain, r.seq DESC) e"
										   " WHERE hd.chain OPERATOR(pg_catalog.=) e.chain",
										   13, all_types, all_vals, NULL, false, 0);
				if (rc != SPI_OK_UPDATE)
					elog(ERROR, "credit: advancing the audit chain heads failed: %s",
						 SPI_result_code_string(rc));
			}
		}
	}

	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
	credit_restore_user(&save);
	return PointerGetDatum(NULL);
}
