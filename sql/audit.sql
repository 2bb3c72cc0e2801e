/*
 * audit.sql: the tamper-evident audit trail.
 *
 * Every change to applications, their steps, account limits and statuses,
 * grades, held orders and the approval configuration is appended to
 * credit.audit_log by statement-level triggers (transition tables): who
 * (session user and current role), when, the table and operation, the row's
 * key, before and after as jsonb, and a comment where the change has one.
 *
 * Chains.  Each row belongs to one chain: account:<customer> for limits,
 * statuses and held orders; request:<customer> for the limit requests
 * rescore writes (rescore writes them for customers whose account rows it
 * does not lock); grades for grade changes
 * (credit.grade_changes: rescore, which changes grades, runs one at a
 * time); application:<id> for an application and its steps; config for
 * the approval configuration.  credit.customer_grades itself is not
 * audited row by row: rescore rewrites it daily, and every change of a
 * grade in it is a row of credit.grade_changes.  A row carries its position in the chain
 * (chain_seq, 1, 2, ...), the hash of the previous row of its chain
 * (prev_hash, NULL for the first) and its own hash: SHA-256 over the
 * previous hash and the row's content (credit.audit_hash).  The last
 * position and hash of each chain are kept in credit.audit_heads; appending
 * updates the head row, whose lock serializes the appends of one chain
 * until commit while unrelated customers never wait for each other.  Locks
 * are taken account row first, then chain head, on every path (the order
 * path holds the account row when it records a status change; a hold
 * attempt keeps the account rows locked after a refusal; hold_left and
 * reject_held_order lock the account first; a final approval locks the
 * account before it settles an adopted limit request), so appends cannot
 * deadlock with order entry, rescore or each other.
 *
 * UPDATE, DELETE and TRUNCATE of credit.audit_log are refused by triggers,
 * whoever asks, the table owner included.  A superuser can still disable
 * triggers or edit the files; credit.verify_audit() then finds the first
 * broken link of each damaged chain: a row whose hash does not match its
 * content, a prev_hash that is not the previous row's hash, a gap in
 * chain_seq, or a head that does not match the chain's last row (a
 * deleted tail).
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE TABLE credit.audit_log (
	audit_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain			text NOT NULL,
	chain_seq		bigint NOT NULL,
	logged_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	session_role	name NOT NULL DEFAULT SESSION_USER,
	acting_role	name NOT NULL,
	backend_pid		integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
	table_name		text NOT NULL,
	operation		text NOT NULL,
	row_key			text NOT NULL,
	before			jsonb,
	after			jsonb,
	comment			text,
	prev_hash		bytea,
	hash			bytea NOT NULL,
	CONSTRAINT audit_log_chain_seq UNIQUE (chain, chain_seq)
);
CREATE INDEX audit_log_table_key_idx ON credit.audit_log (table_name, row_key);

COMMENT ON TABLE credit.audit_log IS
'Append-only audit trail: every change to applications, steps, limits, statuses, grades, held orders and approval configuration, hash-chained per chain; check with credit.verify_audit().';
COMMENT ON COLUMN credit.audit_log.chain IS 'account:<customer>, request:<customer>, grades, application:<id> or config.';
COMMENT ON COLUMN credit.audit_log.hash IS 'SHA-256 of prev_hash and the row''s content (credit.audit_hash).';

CREATE TABLE credit.audit_heads (
	chain			text PRIMARY KEY,
	last_seq		bigint NOT NULL,
	last_hash		bytea NOT NULL
);

COMMENT ON TABLE credit.audit_heads IS
'The last position and hash of each audit chain; its row lock serializes appends to one chain.';

SELECT pg_catalog.pg_extension_config_dump('credit.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump(
		   pg_catalog.pg_get_serial_sequence('credit.audit_log', 'audit_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('credit.audit_heads', '');

/*
 * The hash of one audit row, as src/audit.c computes it when appending:
 * SHA-256 of the fields joined by U+001F, the time as integer microseconds
 * since the Unix epoch, jsonb in its canonical text, '-' for NULL.
 * Independent of DateStyle and TimeZone.
 */
CREATE FUNCTION credit.audit_hash(prev_hash bytea, chain text, chain_seq bigint,
								  logged_at timestamptz, session_role name,
								  acting_role name, table_name text, operation text,
								  row_key text, before jsonb, after jsonb, comment text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws(
	pg_catalog.chr(31),
	COALESCE(pg_catalog.encode($1, 'hex'), '-'), $2, $3::text,
	(pg_catalog.extract('epoch', $4) OPERATOR(pg_catalog.*) 1000000)::bigint::text,
	$5::text, $6::text, $7, $8, $9,
	COALESCE($10::text, '-'), COALESCE($11::text, '-'), COALESCE($12, '-')), 'UTF8'));

COMMENT ON FUNCTION credit.audit_hash(bytea, text, bigint, timestamptz, name, name, text, text, text, jsonb, jsonb, text) IS
'SHA-256 over the previous hash and an audit row''s content (the hash credit.audit_log.hash must have).';

/*
 * The statement-level audit trigger (C, src/audit.c).  Arguments: the chain
 * prefix; the column that completes the chain name and keys the row (or a
 * fixed chain name when the prefix ends without ':'); optionally the
 * comma-separated columns an UPDATE must change to be recorded.  The
 * transition tables must be named old_rows and new_rows.  Its writes run
 * as the owner of schema credit: audited users need no right on the trail.
 */
CREATE FUNCTION credit.audit_capture()
RETURNS trigger
AS 'MODULE_PATHNAME', 'credit_audit_capture'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.audit_capture() IS
'Statement trigger: appends the changed rows to the hash-chained audit trail (chain prefix, key column, watched columns).';

REVOKE EXECUTE ON FUNCTION credit.audit_capture() FROM PUBLIC;

/* the trail is append-only, for everyone */
CREATE FUNCTION credit.audit_log_immutable()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP
		USING ERRCODE = '55000', SCHEMA = 'credit', TABLE = 'audit_log',
			  HINT = 'Audit rows are never changed or removed; check the trail with credit.verify_audit().';
END;
$$;

COMMENT ON FUNCTION credit.audit_log_immutable() IS
'Trigger on credit.audit_log: refuses UPDATE, DELETE and TRUNCATE to everyone (55000).';

CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON credit.audit_log
	FOR EACH ROW EXECUTE FUNCTION credit.audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON credit.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION credit.audit_log_immutable();

/* TRUNCATE fires no row or transition-table trigger: an audited table refuses it */
CREATE FUNCTION credit.audited_no_truncate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'table "credit.%" cannot be truncated', TG_TABLE_NAME
		USING ERRCODE = '55000', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
			  HINT = 'Its changes are on the audit trail, which TRUNCATE would bypass; delete the rows instead.';
END;
$$;

COMMENT ON FUNCTION credit.audited_no_truncate() IS
'Trigger on every audited table: refuses TRUNCATE (55000), which would bypass the audit trail.';

/* audit a table: three statement triggers, one per event (transition tables need that) */
CREATE FUNCTION credit.audit_table(tbl regclass, chain_prefix text, key_column name,
								   watched text DEFAULT NULL,
								   events text[] DEFAULT '{INSERT,UPDATE,DELETE}')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ev text;
	args text;
BEGIN
	args := pg_catalog.format('%L, %L', chain_prefix, key_column);
	IF watched IS NOT NULL THEN
		args := args OPERATOR(pg_catalog.||) pg_catalog.format(', %L', watched);
	END IF;
	FOREACH ev IN ARRAY events LOOP
		EXECUTE pg_catalog.format(
			'CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT '
			'EXECUTE FUNCTION credit.audit_capture(%s)',
			'audit_' OPERATOR(pg_catalog.||) pg_catalog.lower(ev), ev, tbl,
			CASE ev WHEN 'INSERT' THEN 'NEW TABLE AS new_rows'
					WHEN 'DELETE' THEN 'OLD TABLE AS old_rows'
					ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
			args);
	END LOOP;
	EXECUTE pg_catalog.format(
		'CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %s '
		'FOR EACH STATEMENT EXECUTE FUNCTION credit.audited_no_truncate()', tbl);
END;
$$;

COMMENT ON FUNCTION credit.audit_table(regclass, text, name, text, text[]) IS
'Creates the audit triggers of a table. Internal: used by the extension script.';

REVOKE EXECUTE ON FUNCTION credit.audit_table(regclass, text, name, text, text[]) FROM PUBLIC;

SELECT credit.audit_table('credit.accounts', 'account:', 'customer_key',
						  'customer_key,credit_limit,temp_limit,temp_limit_from,temp_limit_until,payment_term_days,currency,owner,region,parent_key,watch_ratio,status,manual_status,dunning_status');
SELECT credit.audit_table('credit.status_changes', 'account:', 'customer_key',
						  events => '{INSERT}');
SELECT credit.audit_table('credit.grade_changes', 'grades', 'customer_key',
						  events => '{INSERT}');
SELECT credit.audit_table('credit.applications', 'application:', 'application_id');
SELECT credit.audit_table('credit.application_steps', 'application:', 'application_id');
SELECT credit.audit_table('credit.held_orders', 'account:', 'customer_key');
SELECT credit.audit_table('credit.limit_requests', 'request:', 'customer_key', 'state,proposed_limit,proposed_term');
SELECT credit.audit_table('credit.positions', 'config', 'position');
SELECT credit.audit_table('credit.position_members', 'config', 'position');
SELECT credit.audit_table('credit.approval_rules', 'config', 'rule_id');
SELECT credit.audit_table('credit.approval_rule_steps', 'config', 'rule_id');

CREATE FUNCTION credit.verify_audit()
RETURNS TABLE (chain text, chain_seq bigint, audit_id bigint, problem text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH rows AS (
		SELECT l.*,
			   pg_catalog.lag(l.hash) OVER w AS prior_hash,
			   pg_catalog.lag(l.chain_seq) OVER w AS prior_seq
		  FROM credit.audit_log l
		WINDOW w AS (PARTITION BY l.chain ORDER BY l.chain_seq)
	), broken AS (
		SELECT r.chain, r.chain_seq, r.audit_id,
			   CASE WHEN r.chain_seq OPERATOR(pg_catalog.<>) (COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1)
					THEN CASE WHEN (COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1)
								   OPERATOR(pg_catalog.=) (r.chain_seq OPERATOR(pg_catalog.-) 1)
							  THEN pg_catalog.format('row %s of the chain is missing',
													 r.chain_seq OPERATOR(pg_catalog.-) 1)
							  ELSE pg_catalog.format('rows %s to %s of the chain are missing',
													 COALESCE(r.prior_seq, 0) OPERATOR(pg_catalog.+) 1,
													 r.chain_seq OPERATOR(pg_catalog.-) 1) END
					WHEN r.prev_hash IS DISTINCT FROM r.prior_hash
					THEN 'prev_hash is not the hash of the previous row'
					WHEN r.hash IS DISTINCT FROM credit.audit_hash(r.prev_hash, r.chain, r.chain_seq,
							 r.logged_at, r.session_role, r.acting_role, r.table_name,
							 r.operation, r.row_key, r.before, r.after, r.comment)
					THEN 'the row''s content does not match its hash'
			   END AS problem
		  FROM rows r
		UNION ALL
		SELECT h.chain, h.last_seq, NULL::bigint,
			   pg_catalog.format('the chain ends at row %s, its head says %s',
								 COALESCE(t.chain_seq, 0), h.last_seq)
		  FROM credit.audit_heads h
		  LEFT JOIN LATERAL (SELECT l.chain_seq, l.hash FROM credit.audit_log l
							  WHERE l.chain OPERATOR(pg_catalog.=) h.chain
							  ORDER BY l.chain_seq DESC LIMIT 1) t ON true
		 WHERE t.chain_seq IS DISTINCT FROM h.last_seq OR t.hash IS DISTINCT FROM h.last_hash
	)
	SELECT DISTINCT ON (b.chain) b.chain, b.chain_seq, b.audit_id, b.problem
	  FROM broken b
	 WHERE b.problem IS NOT NULL
	 ORDER BY b.chain, b.chain_seq;
END;

COMMENT ON FUNCTION credit.verify_audit() IS
'Checks every audit chain and returns its first broken link (a missing row, a wrong prev_hash, content not matching its hash, a head that does not match the chain''s end); no rows when the trail is intact.';
