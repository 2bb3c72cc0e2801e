#!/usr/bin/env bash
# bench/receivables.sh: the receivables part of `make bench` (bench/run.sh
# calls it after the order part; BENCH_PARTS=receivables runs it alone).
#
# One throwaway cluster (fsync=on, autovacuum off) with 1,000,000 open
# receivables over 50,000 customers (limits far above exposure), loaded
# set-based through the extension's own tables (bench/receivables_data.sql:
# each row passes the ledger triggers): invoiced over the last 150 days, due
# 30 days later, 1 in 50 disputed, 1 in 20 half paid by a payment allocated
# to it; then VACUUM ANALYZE and CHECKPOINT.  Measured:
#   load        rows/s of loading the receivables (ledger triggers per row)
#   aging       credit.aging(as_of) against the hand-written GROUP BY
#               (bench/aging_reference.sql), alternately in one session,
#               BENCH_RECV_ROUNDS rounds after one warm-up each; both wrapped
#               in the same aggregate (count, sums) so the client transfer
#               is not timed; the two results are first checked identical
#   dunning     the first credit.run_dunning(as_of) over all of them, then a
#               re-run the same day (must queue nothing), without a VACUUM or
#               ANALYZE in between, as a scheduler retrying would
# and checked: credit.reconcile() empty after load and after dunning, the
# queue holds exactly what the first run reported, the re-run queued 0.
#
# Environment:
#   BENCH_RECV_ROWS       receivables (default 1000000)
#   BENCH_RECV_CUSTOMERS  customers (default 50000)
#   BENCH_RECV_ROUNDS     aging rounds (default 5)
#   BENCH_RECV_PAID_EVERY every n-th invoice is half paid (default 20; 0: none)
#   BENCH_RECV_PORT       port (default BENCH_PORT + 1, or 5489; the next free
#                         one is taken when it is busy)
#   BENCH_RECV_PROFILE    1: run the two dunning runs under auto_explain
#                         (nested statements taking 100 ms or more, ANALYZE,
#                         BUFFERS, WAL) and print their plans; the timings
#                         then include the instrumentation
#   BENCH_RECV_FILLFACTOR an experiment, not the product: ALTER TABLE
#                         credit.receivables SET (fillfactor = n) before
#                         loading (default: leave the extension's setting)
#   BENCH_NO_BUILD        1: do not build and install (run.sh already did)
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${BENCH_RECV_ROWS:-1000000}
CUSTOMERS=${BENCH_RECV_CUSTOMERS:-50000}
ROUNDS=${BENCH_RECV_ROUNDS:-5}
PAID_EVERY=${BENCH_RECV_PAID_EVERY:-20}
PORT=${BENCH_RECV_PORT:-$(( ${BENCH_PORT:-5488} + 1 ))}
PROFILE=${BENCH_RECV_PROFILE:-0}
FILLFACTOR=${BENCH_RECV_FILLFACTOR:-}
CHUNK=100000			# receivables per INSERT ... SELECT (one transaction each)

# targets (2 cores)
T_AGING_RATIO=1.20		# credit.aging / hand-written GROUP BY, at most
T_FIRST_S=20			# first run_dunning, seconds, at most
T_RERUN_S=3				# re-run the same day, seconds, at most

for v in ROWS CUSTOMERS ROUNDS PORT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
[[ $PAID_EVERY =~ ^[0-9]+$ ]] || { echo "bench: BENCH_RECV_PAID_EVERY must be an integer >= 0" >&2; exit 2; }
[[ -z $FILLFACTOR || $FILLFACTOR =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_RECV_FILLFACTOR must be 10..100" >&2; exit 2; }

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	bash test/setup.sh build
fi

. bench/cluster.sh
start_cluster bench-recv "$PORT" 20 1GB

CONN=(-h "$WORK" -p "$PORT" -U postgres)
DB=bench_receivables
psql_db() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d "$DB" "$@"
}
scalar() {	# scalar SQL
	psql_db -At -c "$1"
}
# timed SQL: runs one statement, sets T_MS (client-side \timing, ms) and OUT
# (its result, fields separated by |)
timed() {
	local out
	out=$(psql_db -At -c '\timing on' -c "$1")
	T_MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)
	OUT=$(grep -v '^Time: ' <<<"$out" || true)
	[ -n "$T_MS" ] || { echo "bench: no timing for: $1" >&2; exit 1; }
}
sec() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
median() {
	tr ' ' '\n' | sed '/^$/d' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d postgres -c "CREATE DATABASE $DB"
psql_db -c "CREATE EXTENSION credit" -f bench/receivables_data.sql
AS_OF=$(scalar "SELECT current_date")
if [ -n "$FILLFACTOR" ]; then
	psql_db -c "ALTER TABLE credit.receivables SET (fillfactor = $FILLFACTOR)"
fi

echo
echo "credit benchmark, receivables: $ROWS receivables over $CUSTOMERS customers, as of $AS_OF"
echo "  server:    $(scalar "SELECT version()" | cut -d, -f1)"
echo "  settings:  fsync=$(scalar "SHOW fsync"), synchronous_commit=$(scalar "SHOW synchronous_commit")," \
	 "shared_buffers=$(scalar "SHOW shared_buffers"), work_mem=$(scalar "SHOW work_mem")," \
	 "max_parallel_workers_per_gather=$(scalar "SHOW max_parallel_workers_per_gather"), autovacuum=off"
echo "  machine:   $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  credit.receivables: $(scalar "SELECT coalesce(array_to_string(reloptions, ', '), 'default storage options (fillfactor 100)')
								  FROM pg_class WHERE oid = 'credit.receivables'::regclass")$([ -n "$FILLFACTOR" ] && echo " (set by BENCH_RECV_FILLFACTOR: an experiment)")"
echo

# ---------------------------------------------------------------- load
timed "SELECT bench.load_accounts($CUSTOMERS)"
printf '  load: %d accounts in %s s\n' "$CUSTOMERS" "$(sec "$T_MS")"

LOAD_MS=0
for ((lo = 1; lo <= ROWS; lo += CHUNK)); do
	hi=$(( lo + CHUNK - 1 > ROWS ? ROWS : lo + CHUNK - 1 ))
	timed "SELECT bench.load_receivables($lo, $hi, $CUSTOMERS, '$AS_OF')"
	LOAD_MS=$(awk -v a="$LOAD_MS" -v b="$T_MS" 'BEGIN { print a + b }')
	[ -t 1 ] && printf '\r  load: %d receivables, %s s so far' "$hi" "$(sec "$LOAD_MS")"
done
LOAD_RATE=$(awk -v n="$ROWS" -v ms="$LOAD_MS" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
[ -t 1 ] && printf '\r'
printf '  load: %d receivables in %s s (%s rows/s, %d INSERT ... SELECT of up to %d rows)\n' \
	"$ROWS" "$(sec "$LOAD_MS")" "$LOAD_RATE" $(( (ROWS + CHUNK - 1) / CHUNK )) "$CHUNK"

PAY_MS=0 NPAID=0
if [ "$PAID_EVERY" -gt 0 ]; then
	timed "SELECT bench.load_payments($PAID_EVERY, '$AS_OF')"
	PAY_MS=$T_MS NPAID=$OUT
	printf '  load: %d payments allocated to as many invoices (half paid) in %s s\n' \
		"$NPAID" "$(sec "$PAY_MS")"
fi

timed "VACUUM ANALYZE"
printf '  VACUUM ANALYZE in %s s\n' "$(sec "$T_MS")"
psql_db -c "CHECKPOINT"
sync

BAD_LOAD=$(scalar "SELECT count(*) FROM credit.reconcile()")
[ "$BAD_LOAD" = 0 ] || { echo "bench: credit.reconcile() reports $BAD_LOAD accounts after loading" >&2; exit 1; }

IFS='|' read -r N_OPEN N_DISPUTED N_PARTLY N_OVERDUE N_DUNNABLE SIZE <<<"$(scalar "
	SELECT count(*) FILTER (WHERE open_amount > 0),
		   count(*) FILTER (WHERE disputed),
		   count(*) FILTER (WHERE allocated > 0 AND open_amount > 0),
		   count(*) FILTER (WHERE open_amount > 0 AND due_date < '$AS_OF'),
		   count(*) FILTER (WHERE open_amount > 0 AND NOT disputed
							  AND due_date + (SELECT l.days_from_due FROM credit.dunning_levels l
											   ORDER BY l.level_no LIMIT 1) <= '$AS_OF'),
		   pg_size_pretty(pg_total_relation_size('credit.receivables'))
	  FROM credit.receivables")"
echo "  data: $N_OPEN open ($N_DISPUTED disputed, $N_PARTLY partly paid, $N_OVERDUE overdue)," \
	 "credit.receivables with indexes $SIZE; reconcile empty"

# ---------------------------------------------------------------- aging
# the reference, without its comment and final semicolon, as a subquery
REF=$(sed -e '\#^/\*#,\#\*/#d' -e 's/;[[:space:]]*$//' bench/aging_reference.sql)
AGG="count(*) AS n_rows, sum(amount) AS amount, sum(items) AS items, sum(disputed_amount) AS disputed"
Q_CREDIT="SELECT $AGG FROM credit.aging(:'as_of')"
Q_REF="SELECT $AGG FROM (
$REF
) ref"

DIFF=$(psql_db -At -v as_of="$AS_OF" <<EOF
SELECT count(*) FROM (
	(SELECT * FROM credit.aging(:'as_of') EXCEPT ALL SELECT * FROM ($REF) r1)
	UNION ALL
	(SELECT * FROM ($REF) r2 EXCEPT ALL SELECT * FROM credit.aging(:'as_of'))) d;
EOF
)
[ "$DIFF" = 0 ] || { echo "bench: credit.aging and the reference differ in $DIFF rows" >&2; exit 1; }

AGING_SCRIPT=$WORK/aging.sql
{
	echo '\timing on'
	echo "\\echo @warm credit"; echo "$Q_CREDIT;"
	echo "\\echo @warm reference"; echo "$Q_REF;"
	for ((r = 1; r <= ROUNDS; r++)); do
		if (( r % 2 )); then order="credit reference"; else order="reference credit"; fi
		for v in $order; do
			echo "\\echo @$r $v"
			if [ "$v" = credit ]; then echo "$Q_CREDIT;"; else echo "$Q_REF;"; fi
		done
	done
} >"$AGING_SCRIPT"
chmod 644 "$AGING_SCRIPT"
AGING_OUT=$(psql_db -At -v as_of="$AS_OF" -f "$AGING_SCRIPT")

declare -A AG=()
AG_C="" AG_R="" AG_RATIOS=""
while read -r round v ms; do
	AG[$round,$v]=$ms
	if [ "$round" != warm ]; then
		if [ "$v" = credit ]; then AG_C+="$ms "; else AG_R+="$ms "; fi
	fi
done < <(awk '/^@/ { key = substr($1, 2) " " $2; next }
			  /^Time: / { print key, $2 }' <<<"$AGING_OUT")
for ((r = 1; r <= ROUNDS; r++)); do
	AG_RATIOS+="$(awk -v c="${AG[$r,credit]}" -v f="${AG[$r,reference]}" 'BEGIN { print c / f }') "
done
AGING_ROWS=$(grep -m1 '^[0-9]*|' <<<"$AGING_OUT" | cut -d'|' -f1)
MED_C=$(median <<<"$AG_C")
MED_R=$(median <<<"$AG_R")
RATIO=$(awk -v c="$MED_C" -v r="$MED_R" 'BEGIN { printf "%.2f", c / r }')
RATIO_ROUNDS=$(awk -v x="$(median <<<"$AG_RATIOS")" 'BEGIN { printf "%.2f", x }')
echo "  aging: $AGING_ROWS rows (customer, currency, bucket), identical to the reference;" \
	 "per round credit/reference ms:"
for ((r = 1; r <= ROUNDS; r++)); do
	printf '         round %d  %8.1f  %8.1f\n' "$r" "${AG[$r,credit]}" "${AG[$r,reference]}"
done

# ---------------------------------------------------------------- dunning
# the load's dirty pages written and flushed, so no writeback runs meanwhile
psql_db -c "CHECKPOINT"
sync

DUN_PREFIX=""
if [ "$PROFILE" = 1 ]; then
	PROFILE_LOG_START=$(wc -l <"$WORK/server.log")
	DUN_PREFIX="LOAD 'auto_explain'; SET auto_explain.log_min_duration = 100;
		SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;
		SET auto_explain.log_wal = on; SET auto_explain.log_nested_statements = on;"
fi
timed "${DUN_PREFIX}SELECT * FROM credit.run_dunning('$AS_OF')"
FIRST_MS=$T_MS
IFS='|' read -r F_EVAL F_QUEUED F_REP F_WATCH F_STOP F_LIFT <<<"$OUT"
echo "  run_dunning first:  $(sec "$FIRST_MS") s  (evaluated $F_EVAL, queued $F_QUEUED," \
	 "repeats $F_REP, to_watch $F_WATCH, to_stop $F_STOP, lifted $F_LIFT)"

timed "${DUN_PREFIX}SELECT * FROM credit.run_dunning('$AS_OF')"
RERUN_MS=$T_MS
IFS='|' read -r R_EVAL R_QUEUED R_REP R_WATCH R_STOP R_LIFT <<<"$OUT"
echo "  run_dunning re-run: $(sec "$RERUN_MS") s  (evaluated $R_EVAL, queued $R_QUEUED," \
	 "repeats $R_REP, to_watch $R_WATCH, to_stop $R_STOP, lifted $R_LIFT)"

Q_ROWS=$(scalar "SELECT count(*) FROM credit.dunning_queue")
Q_LEVELS=$(scalar "SELECT coalesce(string_agg('level ' || level_no || ': ' || n, ', ' ORDER BY level_no), 'none')
					 FROM (SELECT level_no, count(*) AS n FROM credit.dunning_queue GROUP BY level_no) l")
BAD_END=$(scalar "SELECT count(*) FROM credit.reconcile()")
if [ "$PROFILE" = 1 ]; then
	echo "  profile (auto_explain, statements of 100 ms or more; the times above include it):"
	tail -n +"$((PROFILE_LOG_START + 1))" "$WORK/server.log" | sed 's/^/    | /'
fi
echo "  queue: $Q_ROWS rows ($Q_LEVELS); credit.reconcile(): $BAD_END accounts differ"

# ---------------------------------------------------------------- report
ok() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
chk() { if [ "$1" = 1 ]; then echo ok; else echo FAILED; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? 1 : 0 }'; }

echo
echo "receivables: $ROWS open receivables, $CUSTOMERS customers, as of $AS_OF (fsync=on$([ -n "$FILLFACTOR" ] && echo ", EXPERIMENT: credit.receivables fillfactor $FILLFACTOR"))"
echo
[ "$ROWS" = 1000000 ] && [ "$CUSTOMERS" = 50000 ] || echo "(the targets are set for 1000000 receivables over 50000 customers)"
printf '%-44s %14s %12s %8s\n' measure figure target result
printf '%-44s %14s %12s %8s\n' "load receivables (INSERT ... SELECT)" "$LOAD_RATE rows/s" "-" "-"
printf '%-44s %14s %12s %8s\n' "  total for $ROWS rows" "$(sec "$LOAD_MS") s" "-" "-"
printf '%-44s %14s %12s %8s\n' "credit.aging, median of $ROUNDS" "$(awk -v x="$MED_C" 'BEGIN { printf "%.0f ms", x }')" "-" "-"
printf '%-44s %14s %12s %8s\n' "hand-written GROUP BY, median of $ROUNDS" "$(awk -v x="$MED_R" 'BEGIN { printf "%.0f ms", x }')" "-" "-"
printf '%-44s %14s %12s %8s\n' "aging ratio (of the medians)" "$RATIO x" "<= $T_AGING_RATIO x" "$(ok "$(ge "$RATIO" "$T_AGING_RATIO")")"
printf '%-44s %14s %12s %8s\n' "  (median of the per-round ratios)" "$RATIO_ROUNDS x" "" ""
printf '%-44s %14s %12s %8s\n' "run_dunning, first run" "$(sec "$FIRST_MS") s" "<= $T_FIRST_S s" "$(ok "$(ge "$(sec "$FIRST_MS")" "$T_FIRST_S")")"
printf '%-44s %14s %12s %8s\n' "run_dunning, re-run the same day" "$(sec "$RERUN_MS") s" "<= $T_RERUN_S s" "$(ok "$(ge "$(sec "$RERUN_MS")" "$T_RERUN_S")")"
echo
V1=$([ "$BAD_END" = 0 ] && echo 1 || echo 0)
V2=$([ "$R_QUEUED" = 0 ] && echo 1 || echo 0)
V3=$([ "$Q_ROWS" = "$F_QUEUED" ] && echo 1 || echo 0)
printf '%-60s %s\n' "check: credit.reconcile() empty after load and after dunning" "$(chk "$V1")"
printf '%-60s %s\n' "check: the re-run queued 0 rows (queued $R_QUEUED)" "$(chk "$V2")"
printf '%-60s %s\n' "check: queue holds what the first run queued ($Q_ROWS = $F_QUEUED)" "$(chk "$V3")"
echo "  first run: $F_EVAL receivables evaluated, $F_QUEUED queued (one level per run: expected the" \
	 "$N_DUNNABLE open, undisputed ones past the first level's days_from_due, each to that level)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare ratios, not absolute times)"
echo

[ "$V1$V2$V3" = 111 ] || { echo "bench: receivables checks failed" >&2; exit 1; }
