#!/usr/bin/env bash
# bench/reporting.sh: the reporting part of `make bench` (bench/run.sh calls
# it after the other parts; BENCH_PARTS=reporting runs it alone).
#
# One throwaway cluster (fsync=on, autovacuum off) with 100,000 customers
# (40 salespeople, 6 regions, grades A-D of an active scorecard whose grade
# E nobody holds, 1 in 20 ungraded, 1 in 50 without a limit, profiles for 9
# in 10) and 1,000,000 receivables over the last 400 days, loaded through the
# extension's own tables by BENCH_REPORT_LOADERS parallel sessions, each
# taking chunks of customers (bench/reporting_data.sql: every row passes the
# ledger triggers): about half paid in full or in part by payments
# allocated on their own dates, the rest open, many overdue; 30 days of
# exposure snapshots (the 29 days before today synthetic, today's by
# credit.snapshot_exposure, which fits the trends); 2,000 pending
# applications.  Then VACUUM ANALYZE and
# CHECKPOINT.
#
# Measured: each credit.report_* view read in full, as a BI tool reads it,
# by COPY (SELECT * FROM view) TO '/dev/null' (every column computed and
# converted to text, no client transfer), best of BENCH_REPORT_ROUNDS runs
# in one session after one warm-up; target 2 s each.  Also one customer's
# row of credit.report_customer_360 (WHERE customer_key = ...; target
# 50 ms) and credit.snapshot_exposure() for all customers (no target; it
# runs once a day).
# Checked: the views agree with each other and with the ledger (open
# amounts, aging against credit.aging, overdue customers, row counts), and
# credit.reconcile() is empty after loading.
#
# Environment:
#   BENCH_REPORT_CUSTOMERS customers (default 100000; even; about 10
#                          receivables each)
#   BENCH_REPORT_ROUNDS    timed runs per view, best taken (default 3)
#   BENCH_REPORT_LOADERS   parallel loading sessions (default 2)
#   BENCH_REPORT_PORT      port (default BENCH_PORT + 3, or 5491; the next
#                          free one is taken when it is busy)
#   BENCH_PGBIN            PostgreSQL bin directory to run (default: the
#                          system's PostgreSQL 15); with BENCH_NO_BUILD=1, to
#                          bench an extension installed into a private tree
#   BENCH_DIR              where the cluster's temporary directory is made
#                          (bench/cluster.sh; default $TMPDIR or /tmp)
#   BENCH_NO_BUILD         1: do not build and install (run.sh already did)
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${BENCH_REPORT_CUSTOMERS:-100000}
ROUNDS=${BENCH_REPORT_ROUNDS:-3}
LOADERS=${BENCH_REPORT_LOADERS:-2}
PORT=${BENCH_REPORT_PORT:-$(( ${BENCH_PORT:-5488} + 3 ))}
CHUNK=5000				# customers per load_ledger call (one transaction each)
APPLICATIONS=2000

# targets (2 cores, 100,000 customers, 1,000,000 receivables)
T_VIEW_S=2				# each view read in full, seconds, at most
T_ONE_MS=50				# one customer's report_customer_360 row, ms, at most

VIEWS=(report_receivables_health report_aging report_top_overdue report_grade_distribution
	   report_collection_by_salesperson report_overdue_trend report_utilization
	   report_approval_deadlines report_customer_360)

for v in CUSTOMERS ROUNDS LOADERS PORT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
(( CUSTOMERS % 2 == 0 )) || { echo "bench: BENCH_REPORT_CUSTOMERS must be even" >&2; exit 2; }

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	bash test/setup.sh build
fi

. bench/cluster.sh
PGBIN=${BENCH_PGBIN:-$PGBIN}
start_cluster bench-report "$PORT" 20 1GB

CONN=(-h "$WORK" -p "$PORT" -U postgres)
DB=bench_reporting
psql_db() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d "$DB" "$@"
}
scalar() {	# scalar SQL
	psql_db -At -c "$1"
}
# timed SQL: runs one statement, sets T_MS (client-side \timing, ms) and OUT
timed() {
	local out
	out=$(psql_db -At -c '\timing on' -c "$1")
	T_MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)
	OUT=$(grep -v '^Time: ' <<<"$out" || true)
	[ -n "$T_MS" ] || { echo "bench: no timing for: $1" >&2; exit 1; }
}
now_ms() { date +%s%3N; }
sec() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
minimum() { tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }

"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d postgres -c "CREATE DATABASE $DB"
psql_db -c "CREATE EXTENSION credit" -f bench/reporting_data.sql
AS_OF=$(scalar "SELECT current_date")

echo
echo "credit benchmark, reporting: $CUSTOMERS customers, about $(( CUSTOMERS * 10 )) receivables, as of $AS_OF"
echo "  server:    $("$PGBIN/postgres" --version), $(scalar "SELECT version()" | cut -d, -f1)"
echo "  settings:  fsync=$(scalar "SHOW fsync"), shared_buffers=$(scalar "SHOW shared_buffers")," \
	 "work_mem=$(scalar "SHOW work_mem"), jit=$(scalar "SHOW jit")," \
	 "max_parallel_workers_per_gather=$(scalar "SHOW max_parallel_workers_per_gather"), autovacuum=off"
echo "  machine:   $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo

# ---------------------------------------------------------------- load
START_MS=$(now_ms)
timed "SELECT bench.load_accounts($CUSTOMERS, '$AS_OF')"
timed "SELECT bench.load_grades($CUSTOMERS, '$AS_OF')"
N_GRADED=$OUT
printf '  load: %d accounts with profiles, %d graded, in %s s\n' \
	"$CUSTOMERS" "$N_GRADED" "$(sec $(( $(now_ms) - START_MS )))"

NCHUNKS=$(( (CUSTOMERS + CHUNK - 1) / CHUNK ))
load_worker() {	# load_worker K
	local c lo hi
	for ((c = $1; c < NCHUNKS; c += LOADERS)); do
		lo=$(( c * CHUNK + 1 ))
		hi=$(( (c + 1) * CHUNK > CUSTOMERS ? CUSTOMERS : (c + 1) * CHUNK ))
		psql_db -At -c "SELECT bench.load_ledger($lo, $hi, '$AS_OF')" >/dev/null || return 1
	done
}
START_MS=$(now_ms)
pids=()
for ((k = 0; k < LOADERS; k++)); do
	load_worker "$k" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || { echo "bench: loading the ledger failed" >&2; exit 1; }
done
LEDGER_MS=$(( $(now_ms) - START_MS ))
IFS='|' read -r N_RECV N_PAY N_ALLOC <<<"$(scalar "SELECT (SELECT count(*) FROM credit.receivables),
	(SELECT count(*) FROM credit.payments), (SELECT count(*) FROM credit.allocations)")"
printf '  load: %d receivables, %d payments, %d allocations in %s s (%d sessions)\n' \
	"$N_RECV" "$N_PAY" "$N_ALLOC" "$(sec "$LEDGER_MS")" "$LOADERS"

timed "SELECT bench.load_applications($APPLICATIONS, $CUSTOMERS)"
timed "SELECT bench.load_snapshots('$AS_OF')"
printf '  load: %d pending applications, %d exposure snapshots of the 29 days before today in %s s\n' \
	"$APPLICATIONS" "$OUT" "$(sec "$T_MS")"
timed "SELECT credit.snapshot_exposure('$AS_OF')"
SNAP_MS=$T_MS SNAP_ROWS=$OUT
N_SNAP=$(scalar "SELECT count(*) FROM credit.exposure_snapshots")
printf '  credit.snapshot_exposure(): %d rows for today, trends fitted, in %s s\n' "$SNAP_ROWS" "$(sec "$SNAP_MS")"

timed "VACUUM ANALYZE"
printf '  VACUUM ANALYZE in %s s\n' "$(sec "$T_MS")"
psql_db -c "CHECKPOINT"
sync

BAD_LOAD=$(scalar "SELECT count(*) FROM credit.reconcile()")
[ "$BAD_LOAD" = 0 ] || { echo "bench: credit.reconcile() reports $BAD_LOAD accounts after loading" >&2; exit 1; }

IFS='|' read -r N_OPEN N_OVERDUE N_PARTLY N_MONTH SIZE <<<"$(scalar "
	SELECT count(*) FILTER (WHERE open_amount > 0),
		   count(*) FILTER (WHERE open_amount > 0 AND due_date < '$AS_OF'),
		   count(*) FILTER (WHERE allocated > 0 AND open_amount > 0),
		   (SELECT count(*) FROM credit.allocations
			 WHERE allocated_on >= date_trunc('month', '$AS_OF'::timestamp)::date),
		   pg_size_pretty(pg_total_relation_size('credit.receivables')
						  + pg_total_relation_size('credit.payments')
						  + pg_total_relation_size('credit.allocations')
						  + pg_total_relation_size('credit.exposure_snapshots'))
	  FROM credit.receivables")"
echo "  data: $N_OPEN receivables open ($N_OVERDUE overdue, $N_PARTLY partly paid), $N_MONTH allocations" \
	 "this month; ledger and snapshot tables with indexes $SIZE; reconcile empty"

# ---------------------------------------------------------------- checks
# the views against each other and the ledger
IFS='|' read -r C_HEALTH C_AGING C_360 C_TOP C_UTIL C_GRADES C_TREND C_DEADL <<<"$(scalar "
	SELECT (SELECT sum(open_amount) FROM credit.report_receivables_health)
			   = (SELECT sum(open_amount) FROM credit.receivables WHERE open_amount > 0),
		   (SELECT sum(amount) FROM credit.report_aging)
			   = (SELECT sum(amount) FROM credit.aging(current_date)),
		   (SELECT sum(open_amount) FROM credit.report_customer_360)
			   = (SELECT sum(open_amount) FROM credit.report_receivables_health)
		   AND (SELECT count(*) FROM credit.report_customer_360) = $CUSTOMERS,
		   (SELECT count(*) FROM credit.report_top_overdue)
			   = (SELECT count(DISTINCT customer_key) FROM credit.receivables
				   WHERE open_amount > 0 AND due_date < current_date),
		   (SELECT count(*) FROM credit.report_utilization) = $CUSTOMERS,
		   (SELECT sum(customers) FROM credit.report_grade_distribution) = $CUSTOMERS
		   AND (SELECT customers FROM credit.report_grade_distribution WHERE grade = 'E') = 0,
		   (SELECT count(*) FROM credit.report_overdue_trend) = 12,
		   (SELECT count(*) FROM credit.report_approval_deadlines) = $APPLICATIONS")"
for c in C_HEALTH C_AGING C_360 C_TOP C_UTIL C_GRADES C_TREND C_DEADL; do
	[ "${!c}" = t ] || { echo "bench: consistency check $c failed" >&2; exit 1; }
done
echo "  checks: health = ledger, aging = credit.aging, 360 = health, top overdue = overdue customers," \
	 "row counts: ok"

# ---------------------------------------------------------------- timing
SCRIPT=$WORK/reporting.sql
ONE=$(scalar "SELECT customer_key FROM credit.report_top_overdue WHERE overdue_rank = 1 LIMIT 1")
{
	echo '\timing on'
	for v in "${VIEWS[@]}"; do
		for ((r = 0; r <= ROUNDS; r++)); do
			echo "\\echo @$r $v"
			echo "COPY (SELECT * FROM credit.$v) TO '/dev/null';"
		done
	done
	for ((r = 0; r <= ROUNDS; r++)); do
		echo "\\echo @$r one_customer_360"
		echo "COPY (SELECT * FROM credit.report_customer_360 WHERE customer_key = '$ONE') TO '/dev/null';"
	done
} >"$SCRIPT"
chmod 644 "$SCRIPT"
TIMING_OUT=$("$PGBIN/psql" -X -v ON_ERROR_STOP=1 "${CONN[@]}" -d "$DB" -At -f "$SCRIPT")

declare -A BEST=() ROWS=()
while read -r round v rows ms; do
	[ "$round" = 0 ] && continue		# warm-up
	BEST[$v]+="$ms "
	ROWS[$v]=$rows
done < <(awk '/^@/ { key = substr($1, 2) " " $2; next }
			  /^COPY / { rows = $2; next }
			  /^Time: / { print key, rows, $2 }' <<<"$TIMING_OUT")

# ---------------------------------------------------------------- report
echo
echo "reporting: $CUSTOMERS customers, $N_RECV receivables, $N_ALLOC allocations, $N_SNAP snapshots," \
	 "as of $AS_OF (fsync=on; best of $ROUNDS after a warm-up; COPY (SELECT * FROM view) TO '/dev/null')"
echo
printf '%-36s %9s %9s %9s %6s\n' view rows seconds target ok?
FAILED=0
for v in "${VIEWS[@]}"; do
	ms=$(minimum <<<"${BEST[$v]}")
	ok=$(awk -v ms="$ms" -v t="$T_VIEW_S" 'BEGIN { print (ms / 1000 <= t) ? "yes" : "NO" }')
	[ "$ok" = yes ] || FAILED=1
	printf '%-36s %9s %9s %9s %6s\n' "credit.$v" "${ROWS[$v]}" "$(sec "$ms")" "$T_VIEW_S s" "$ok"
done
ms=$(minimum <<<"${BEST[one_customer_360]}")
ok=$(awk -v ms="$ms" -v t="$T_ONE_MS" 'BEGIN { print (ms <= t) ? "yes" : "NO" }')
[ "$ok" = yes ] || FAILED=1
printf '%-36s %9s %9s %9s %6s\n' "report_customer_360, one customer" "${ROWS[one_customer_360]}" \
	"$(awk -v ms="$ms" 'BEGIN { printf "%.1f ms", ms }')" "$T_ONE_MS ms" "$ok"
printf '%-36s %9s %9s %9s %6s\n' "credit.snapshot_exposure()" "$SNAP_ROWS" "$(sec "$SNAP_MS")" "-" "-"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: times vary with load)"
echo

[ "$FAILED" = 0 ] || echo "reporting: some targets MISSED (see the table)"
