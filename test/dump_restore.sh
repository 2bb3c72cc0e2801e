#!/usr/bin/env bash
# test/dump_restore.sh: a database that uses credit survives pg_dump and
# pg_restore.
#
# A source database with credit, an application's order tables attached
# (reject and hold), accounts, an approved and a pending held order, an
# approved limit change, receivables, a payment and its allocation, a credit
# note, changed configuration (aging basis, an aging bucket, a dunning
# level), a dunning run, an activated scorecard and a rescore, a credit
# profile and a user metric, and so an audit trail.  It is dumped with
# pg_dump -Fc and restored, as a superuser, into fresh databases with the
# extension's own triggers (immutability of active scorecards and of the
# audit log, exposure, status and audit capture) kept from firing while
# rows that already passed them are loaded: pg_restore --disable-triggers
# does that only in a data-only restore, so the restore is done in three
# sections (pre-data; --data-only --disable-triggers; post-data), and,
# separately, in one run under session_replication_role = replica.  Each
# restored database must hold the same rows in every table, keep its
# configuration, reconcile, verify its audit trail, continue its identity
# sequences, and enforce limits on the restored order tables.  A plain
# pg_restore without options is run for information only (its errors are
# printed as comments).
#
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER: a superuser), with
# credit installed.  Creates and drops the databases credit_dr_src,
# credit_dr_dst, credit_dr_replica and credit_dr_plain and the roles
# dr_staff, dr_finance and dr_director (DR_KEEP=1 keeps them for a look).
# Prints "ok N - ..." / "not ok N - ..." lines; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

SRC=credit_dr_src
DST=credit_dr_dst
PLAIN=credit_dr_plain
REPLICA=credit_dr_replica
WORK=$(mktemp -d)
n=0
failed=0

ok() {		# condition status (0 = pass), text, [diagnostics]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		[ $# -ge 3 ] && [ -n "$3" ] && printf '%s\n' "$3" | sed 's/^/#   /'
	fi
}

is() {		# got, want, text
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3" "got:  $1
want: $2"; fi
}

q() {		# database, sql...: unaligned, tuples only, '|' separated
	local db=$1
	shift
	local args=()
	for s in "$@"; do args+=(-c "$s"); done
	psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "${args[@]}" 2>&1
}

# an error caught in the database: "SQLSTATE: message | detail"
TRY_FN="CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE det text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS det = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM || ' | ' || det;
END \$f\$"

cleanup() {
	for db in $SRC $DST $REPLICA $PLAIN; do dropdb --if-exists "$db" >/dev/null 2>&1; done
	psql -X -q -d postgres -c 'DROP ROLE IF EXISTS dr_finance' -c 'DROP ROLE IF EXISTS dr_director' \
		-c 'DROP ROLE IF EXISTS dr_staff' >/dev/null 2>&1
}
cleanup
trap 'rm -rf "$WORK"' EXIT

##########################################################################
# the source database
##########################################################################
createdb $SRC || { echo "not ok 1 - createdb $SRC"; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -d $SRC >"$WORK/setup.log" 2>&1 <<'SQL'
SET client_min_messages = warning;
SET datestyle = 'ISO, YMD';
CREATE EXTENSION credit;

CREATE SCHEMA app;
CREATE TABLE app.orders (
	order_id	integer PRIMARY KEY,
	customer_id	bigint NOT NULL,
	amount		numeric(12,2) NOT NULL,
	status		text NOT NULL DEFAULT 'open'
);
CREATE TABLE app.edi_orders (
	order_id	integer PRIMARY KEY,
	customer_id	bigint NOT NULL,
	amount		numeric(12,2) NOT NULL,
	status		text NOT NULL DEFAULT 'open'
);

INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner, created_at)
VALUES ('701', 'Acme Trading', 10000, 'alice', '2025-01-01 12:00+00'),
	   ('702', 'Beta Ltd', 5000, 'bob', '2025-01-01 12:00+00'),
	   ('703', 'Gamma EDI', 3000, 'chen', '2025-01-01 12:00+00'),
	   ('704', 'Delta Wholesale', 20000, 'dana', '2025-01-01 12:00+00');
UPDATE credit.accounts SET temp_limit = 5000, temp_limit_from = now() - interval '1 day',
	   temp_limit_until = now() + interval '30 days'
 WHERE customer_key = '704';

-- an order already there when the table is attached
INSERT INTO app.orders VALUES (1, 701, 1000, 'open'), (2, 701, 2000, 'shipped');
SELECT credit.attach_orders('app.orders', 'customer_id', 'amount', 'status', '{open,confirmed}');
SELECT credit.attach_orders('app.edi_orders', 'customer_id', 'amount', 'status', '{open}',
							over_limit => 'hold', key_column => 'order_id',
							held_status => 'credit_hold', rejected_status => 'cancelled');
INSERT INTO app.orders VALUES (3, 701, 3000, 'confirmed'), (4, 702, 4500, 'open');

-- approvals: two positions, one rule
CREATE ROLE dr_staff NOLOGIN;
CREATE ROLE dr_finance NOLOGIN IN ROLE dr_staff;
CREATE ROLE dr_director NOLOGIN IN ROLE dr_staff;
GRANT USAGE ON SCHEMA credit TO dr_staff;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA credit TO dr_staff;
GRANT SELECT, UPDATE ON app.orders, app.edi_orders TO dr_staff;
-- the group role for approvers, where sql/roles.sql provides it
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_finance') THEN
		GRANT credit_finance TO dr_staff;
	END IF;
END $$;
INSERT INTO credit.positions (position, description, superior)
VALUES ('cfo', 'CFO', NULL), ('finance_review', 'Credit analyst', 'cfo'),
	   ('sales_director', 'Sales director', 'cfo');
INSERT INTO credit.position_members (position, member)
VALUES ('finance_review', 'dr_finance'), ('sales_director', 'dr_director');
INSERT INTO credit.approval_rules (rule_id, kinds, amount_up_to)
VALUES (1, '{new_limit,limit_change,temp_limit,order_release}', 50000);
INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
VALUES (1, 1, 'finance_review', '1 day'), (1, 2, 'sales_director', '2 days');

-- the hold table: order 2 is held and released, order 3 held and pending
INSERT INTO app.edi_orders VALUES (1, 703, 2000, 'open');
INSERT INTO app.edi_orders VALUES (2, 703, 1500, 'open');
INSERT INTO app.edi_orders VALUES (3, 703, 2500, 'open');
SET ROLE dr_finance;
SELECT credit.approve(1, 'checked');
SET ROLE dr_director;
SELECT credit.approve(1, 'ok, known customer');
RESET ROLE;

-- a limit change through the approval chain
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
VALUES ('limit_change', '704', 25000, 'growing volume');
SELECT credit.submit_application(3);
SET ROLE dr_finance;
SELECT credit.approve(3, 'fine');
SET ROLE dr_director;
SELECT credit.approve(3, 'approved');
RESET ROLE;

-- the ledger
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('704', 'INV-1', 5000, '2026-09-01', '2026-10-01'),
	   ('704', 'INV-2', 3000, '2026-10-15', '2026-11-14'),
	   ('701', 'INV-3', 1200, '2026-11-01', '2026-12-01');
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('704', 'BANK-1', 4000, '2026-10-20');
INSERT INTO credit.payments (customer_key, payment_key, kind, amount, received_on)
VALUES ('704', 'CN-1', 'credit_note', 200, '2026-10-25');
SELECT credit.allocate(payment_id, 'INV-1') FROM credit.payments WHERE payment_key = 'BANK-1';

-- configuration, changed from the defaults the extension script inserts
UPDATE credit.settings SET aging_basis = 'invoice_date', dunning_max_attempts = 7;
UPDATE credit.aging_buckets SET label = '1-30 days', band = 'green' WHERE bucket_no = 1;
UPDATE credit.dunning_levels SET fee = 15, annual_interest_rate = 8 WHERE level_no = 3;
SELECT * FROM credit.run_dunning('2026-11-20');

-- profile, user metric, an activated scorecard and a rescore
INSERT INTO credit.profiles (customer_key, legal_name, customer_since)
VALUES ('701', 'Acme Trading Co., Ltd.', '2020-01-01');
INSERT INTO credit.metrics (metric, source, description, unit)
VALUES ('bureau_score', 'user', 'External bureau score', 'points');
INSERT INTO credit.metric_values (customer_key, metric, as_of, value)
VALUES ('701', 'bureau_score', '2026-11-01', 700), ('704', 'bureau_score', '2026-11-01', 550);
INSERT INTO credit.scorecards (name, description) VALUES ('dr', 'dump and restore');
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method,
									  missing_points, reason_code)
VALUES (1, 'tenure', 1, 'relationship_years', 60, 'bins', 0, 'AGE'),
	   (1, 'bureau', 2, 'bureau_score', 40, 'bins', 50, 'BUREAU');
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
VALUES (1, 'tenure', NULL, 2, 0), (1, 'tenure', 2, 5, 50), (1, 'tenure', 5, NULL, 100),
	   (1, 'bureau', NULL, 600, 30), (1, 'bureau', 600, NULL, 100);
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_cap, term_days)
VALUES (1, 'A', 80, 50000, 60), (1, 'B', 40, 20000, 30), (1, 'C', 0, 5000, 30);
INSERT INTO credit.scorecard_rules (scorecard_id, rule_no, metric, operator, threshold, downgrade_steps)
VALUES (1, 1, 'current_days_overdue', '>', 60, 1);
SELECT credit.activate_scorecard(1);
SELECT * FROM credit.rescore('2026-11-20');
SQL
rc=$?
ok $rc "source database set up (orders, holds, approvals, ledger, configuration, scorecard)" \
	"$(tail -20 "$WORK/setup.log")"
[ $rc -eq 0 ] || { echo "1..$n"; cleanup; exit 1; }

is "$(q $SRC "SELECT string_agg(customer_key || '=' || exposure, ' ' ORDER BY customer_key) FROM credit.accounts")" \
	"701=5200.00 702=4500.00 703=3500.00 704=3800" \
	"source exposure: 701 orders 4000 + INV-3 1200; 702 4500; 703 2000 + released 1500; 704 invoices open 1000 + 3000 - credit note 200"
is "$(q $SRC "SELECT string_agg(order_key || ':' || state, ' ' ORDER BY hold_id) FROM credit.held_orders")" \
	"2:released 3:held" "source: order 2 released, order 3 still held"
is "$(q $SRC "SELECT credit_limit FROM credit.accounts WHERE customer_key = '704'")" "25000" \
	"source: 704's limit raised to 25000 by the approved application"
is "$(q $SRC "SELECT count(*) > 0 FROM credit.dunning_queue")" "t" "source: the dunning run queued reminders"
is "$(q $SRC "SELECT count(*) FROM credit.score_history")" "4" "source: rescore scored the four accounts"
is "$(q $SRC "SELECT count(*) FROM credit.verify_audit()")" "0" "source: audit trail intact"

##########################################################################
# dump, and restore
#
# pg_restore --disable-triggers acts only in a data-only restore (it wraps
# each table's data in ALTER TABLE ... DISABLE TRIGGER ALL); in a full
# restore it does nothing, and the extension's triggers fire on every row
# loaded.  So two ways are tested, each into a database of its own:
#   sections: pg_restore --section=pre-data, then -a --disable-triggers,
#             then --section=post-data
#   replica:  one pg_restore with PGOPTIONS='-c session_replication_role=replica'
# and the one-command restore users try first, for information only.
##########################################################################
pg_dump -Fc -f "$WORK/src.dump" $SRC 2>"$WORK/dump.err"
ok $? "pg_dump -Fc of the source" "$(cat "$WORK/dump.err")"

restore() {	# method, database: restore the dump, log in $WORK/<db>.log
	local log="$WORK/$2.log" rc=0
	dropdb --if-exists "$2" >/dev/null 2>&1
	createdb "$2" || return 1
	case $1 in
	sections)
		pg_restore --section=pre-data -d "$2" "$WORK/src.dump" >"$log" 2>&1 || rc=1
		pg_restore --data-only --disable-triggers -d "$2" "$WORK/src.dump" >>"$log" 2>&1 || rc=1
		pg_restore --section=post-data -d "$2" "$WORK/src.dump" >>"$log" 2>&1 || rc=1 ;;
	replica)
		PGOPTIONS='-c session_replication_role=replica' \
			pg_restore -d "$2" "$WORK/src.dump" >"$log" 2>&1 || rc=1 ;;
	plain)
		pg_restore -d "$2" "$WORK/src.dump" >"$log" 2>&1 || rc=1 ;;
	esac
	return $rc
}

TABLES=$(q $SRC "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ' '
								   ORDER BY n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('credit', 'app') AND c.relkind = 'r'
   AND c.oid <> 'credit.dunning_state'::regclass")
fingerprint() {	# database, table: row count and md5 of the ordered rows
	local from=$2
	# the built-in attachment rows are the extension script's, not dumped:
	# their attached_at is the restore's
	[ "$2" = credit.attachments ] && from="(SELECT CASE WHEN a.builtin THEN to_jsonb(a) - 'attached_at'
		ELSE to_jsonb(a) END FROM credit.attachments a) AS"
	q "$1" "SET datestyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3" \
		"SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
		   FROM $from t" | sed 's/^SET$//' | grep -v '^$'
}

check_target() {	# method, database
	local m=$1 db=$2 t src_max
	restore "$m" "$db"
	ok $? "[$m] restore exits 0" "$(grep -E '^pg_restore: (error|warning)|^(ERROR|DETAIL)' "$WORK/$db.log" | head -20)"
	is "$(grep -c 'ERROR' "$WORK/$db.log")" "0" "[$m] restore reports no error"

	# same rows in every table
	for t in $TABLES; do
		is "$(fingerprint "$db" "$t")" "$(fingerprint $SRC "$t")" "[$m] restored $t: same rows (count and md5)"
	done
	is "$(q "$db" "SELECT count(*) FROM credit.dunning_state")" "1" \
		"[$m] credit.dunning_state (not dumped by design) has its one row"

	# configuration
	is "$(q "$db" "SELECT string_agg(aging_basis || ' ' || dunning_max_attempts, ',') FROM credit.settings")" \
		"invoice_date 7" "[$m] settings: one row, aging_basis invoice_date, dunning_max_attempts 7"
	is "$(q "$db" "SELECT string_agg(bucket_no || ':' || label || ':' || band, ' ' ORDER BY bucket_no) FROM credit.aging_buckets")" \
		"0:not due:green 1:1-30 days:green 2:31-60:yellow 3:61-90:red 4:>90:red" \
		"[$m] aging buckets: five, bucket 1 relabelled"
	is "$(q "$db" "SELECT count(*) || ' ' || sum(fee) || ' ' || max(annual_interest_rate) FROM credit.dunning_levels")" \
		"5 15 8" "[$m] dunning levels: five, level 3 with fee 15 and 8 % interest"
	is "$(q "$db" "SELECT string_agg(scorecard_id || ':' || state, ' ') FROM credit.scorecards")" "1:active" \
		"[$m] scorecard 1 is active"
	is "$(q "$db" "SELECT grade || ' ' || score FROM credit.score('701', NULL, '2026-11-20')")" \
		"$(q $SRC "SELECT grade || ' ' || score FROM credit.score('701', NULL, '2026-11-20')")" \
		"[$m] the restored scorecard scores 701 as the source does"

	# ledger invariants, triggers, sequences
	is "$(q "$db" "SELECT count(*) FROM credit.reconcile()")" "0" "[$m] credit.reconcile() is empty"
	is "$(q "$db" "SELECT count(*) FROM credit.verify_audit()")" "0" "[$m] credit.verify_audit() returns no rows"
	is "$(q "$db" "SELECT string_agg(c.relname || ':' || t.tgname, ' ' ORDER BY c.relname, t.tgname)
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE c.relnamespace = 'app'::regnamespace AND NOT t.tgisinternal AND t.tgenabled = 'O'")" \
		"edi_orders:credit_enforce edi_orders:credit_enforce_truncate orders:credit_enforce orders:credit_enforce_truncate" \
		"[$m] the order tables carry the enabled credit triggers"
	is "$(q "$db" "SELECT string_agg(t.tgrelid::regclass || ':' || t.tgname, ' ')
		FROM pg_trigger t WHERE t.tgenabled = 'D'")" "" "[$m] no trigger left disabled"
	is "$(q "$db" "$SEQ_SQL")" "" "[$m] identity sequences are past every restored id"
	src_max=$(q $SRC "SELECT max(receivable_id) FROM credit.receivables")
	is "$(q "$db" "INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date)
		VALUES ('701', 'INV-NEW', 100, '2026-11-21') RETURNING receivable_id")" "$((src_max + 1))" \
		"[$m] a new receivable gets the next id ($((src_max + 1))), no collision"
	src_max=$(q $SRC "SELECT max(audit_id) FROM credit.audit_log")
	is "$(q "$db" "UPDATE credit.accounts SET credit_limit = 11000 WHERE customer_key = '701'" \
		"SELECT string_agg(audit_id || ':' || chain, ' ') FROM credit.audit_log WHERE audit_id > $src_max")" \
		"$((src_max + 1)):account:701" "[$m] a limit change appends audit row $((src_max + 1)) to chain account:701"
	is "$(q "$db" "SELECT count(*) FROM credit.verify_audit()")" "0" "[$m] the audit chains stay intact after the new row"
	is "$(q "$db" "SELECT queued FROM credit.run_dunning('2026-11-20')")" "0" \
		"[$m] a dunning run for the same day queues nothing again"

	# enforcement on the restored tables.  701: limit 11000 now, exposure
	# 5200 + 100 (INV-NEW) = 5300, available 5700
	is "$(q "$db" "$TRY_FN" "SELECT pg_temp.try('INSERT INTO app.orders VALUES (10, 701, 5700.01, ''open'')')")" \
		"CR001: credit limit of customer \"701\" exceeded | Credit limit 11000, temporary limit in force 0, exposure 5300.00, this order adds 5700.01, available credit 5700.00." \
		"[$m] app.orders refuses an over-limit order with CR001"
	is "$(q "$db" "INSERT INTO app.orders VALUES (11, 701, 5700, 'open')" \
		"SELECT exposure FROM credit.accounts WHERE customer_key = '701'")" "11000.00" \
		"[$m] a fitting order is accepted and the exposure moves to 11000.00"
	is "$(q "$db" "INSERT INTO app.edi_orders VALUES (4, 703, 100, 'open')" \
		"SELECT status FROM app.edi_orders WHERE order_id = 4" \
		"SELECT exposure FROM credit.accounts WHERE customer_key = '703'")" "credit_hold
3500.00" "[$m] the hold table holds an over-limit order (703 is over its limit)"
	is "$(q "$db" "SET ROLE dr_finance" "SELECT state FROM credit.approve(2, 'after restore')" \
		"SET ROLE dr_director" "SELECT state FROM credit.approve(2, 'after restore')" "RESET ROLE" \
		"SELECT status FROM app.edi_orders WHERE order_id = 3" \
		"SELECT exposure FROM credit.accounts WHERE customer_key = '703'")" "pending
approved
open
6000.00" "[$m] the release pending at dump time is approved after the restore: order 3 open, exposure 6000.00"
	is "$(q "$db" "SELECT count(*) FROM credit.reconcile()")" "0" "[$m] credit.reconcile() still empty after the new orders"
	is "$(q "$db" "SELECT count(*) FROM credit.verify_audit()")" "0" "[$m] audit trail intact after the new orders"
}

# every identity sequence is at or past its column's maximum
SEQ_SQL="SELECT string_agg(format('%s.%s', c.relname, a.attname), ' ' ORDER BY c.relname, a.attname)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'credit'::regnamespace AND a.attidentity <> ''
   AND (xpath('/row/m/text()', query_to_xml(format(
		'SELECT coalesce(max(%I), 0) AS m FROM credit.%I', a.attname, c.relname), false, false, '')))[1]::text::bigint
	   > (SELECT coalesce(s.last_value, 0) FROM pg_sequences s
		   WHERE format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence(format('credit.%I', c.relname), a.attname))"

check_target sections $DST
check_target replica $REPLICA

# the one-command restore: for information
restore plain $PLAIN
echo "# for information: a plain pg_restore (no option) gives $(grep -c 'ERROR' "$WORK/$PLAIN.log") errors:"
grep -E '^pg_restore: error' "$WORK/$PLAIN.log" | head -20 | sed 's/^/#   /'
for t in $TABLES; do
	p=$(fingerprint $PLAIN "$t")
	[ "$p" = "$(fingerprint $SRC "$t")" ] || echo "#   then $t has $p, the source $(fingerprint $SRC "$t")"
done

echo "1..$n"
[ "${DR_KEEP:-}" = 1 ] || cleanup
[ $failed -eq 0 ]
