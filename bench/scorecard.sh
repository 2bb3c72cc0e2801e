#!/usr/bin/env bash
# bench/scorecard.sh: the scorecard part of `make bench` (bench/run.sh calls
# it after the other parts; BENCH_PARTS=scorecard runs it alone).
#
# One throwaway cluster (fsync=on, autovacuum off) with 100,000 customers and
# a year of ledger, loaded through the extension's own tables
# (bench/scorecard_data.sql: every row passes the ledger triggers; the
# ledger in chunks of customers by BENCH_SCORE_LOADERS parallel sessions):
# about 6 receivables per customer with explicit dates, most paid by
# allocations on their own allocated_on dates, some late, some open
# overdue, some partly paid; a credit profile with registered capital for 9
# in 10; a user metric (bureau_score) for 17 in 20.  Then the 6-factor
# scorecard "bench" (grades A-D, limits from avg_monthly_sales, one rule:
# current_days_overdue > 60 costs a grade), activated; VACUUM ANALYZE and
# CHECKPOINT.
#
# Compared: credit.rescore(as_of) against bench.ref_rescore(as_of), the
# same scoring and the same writes in plain SQL/PL/pgSQL
# (bench/scorecard_reference.sql) into tables of its own.
#   check     before any timing, bench.ref_score must give every customer
#             the same score, band, grade, recommended limit and term, reason
#             codes, points and metric values as credit.score_all (without
#             hysteresis); any difference fails the bench
#   first     both score everyone for the first time (every grade is a
#             change), as of BENCH_ROUNDS days ago: timed, not the target
#   rounds    then one run per day up to today, BENCH_ROUNDS rounds, each
#             round in one session: both rescores (alternating which goes
#             first) and, for the breakdown, credit.customer_metrics,
#             credit.score_all and bench.ref_score alone (count(*) of each,
#             so no rows travel to the client); before each round the written
#             tables are vacuumed (what autovacuum does between daily runs)
#             and a CHECKPOINT taken; every statement autocommits
#   after     both must have written the same thing: each round's counts,
#             score history, current grades, grade changes, open limit
#             requests, applied limits; credit.reconcile() empty
# The report shows medians; the write part is rescore - score_all.
#
# Environment:
#   BENCH_SCORE_CUSTOMERS  customers (default 100000)
#   BENCH_ROUNDS           rounds (default 3; BENCH_SCORE_ROUNDS overrides)
#   BENCH_SCORE_LOADERS    parallel sessions loading the ledger (default 2)
#   BENCH_SCORE_PORT       port (default BENCH_PORT + 2, or 5490; the next
#                          free one is taken when it is busy)
#   BENCH_DIR              where the cluster's temporary directory is made
#                          (bench/cluster.sh; default $TMPDIR or /tmp)
#   BENCH_SCORE_PROFILE    1: after the checks, run one more day of both in a
#                          transaction that is rolled back, under auto_explain
#                          (nested statements of 200 ms or more, ANALYZE,
#                          BUFFERS, triggers), and print the plans
#   BENCH_NO_BUILD         1: do not build and install (run.sh already did)
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${BENCH_SCORE_CUSTOMERS:-100000}
ROUNDS=${BENCH_SCORE_ROUNDS:-${BENCH_ROUNDS:-3}}
LOADERS=${BENCH_SCORE_LOADERS:-2}
PORT=${BENCH_SCORE_PORT:-$(( ${BENCH_PORT:-5488} + 2 ))}
PROFILE=${BENCH_SCORE_PROFILE:-0}
CHUNK=5000				# customers per load_ledger call (one transaction each)

# targets (2 cores, 100,000 customers)
T_RESCORE_S=5			# credit.rescore, seconds, at most
T_RATIO=1.00			# credit.rescore / reference, below

for v in CUSTOMERS ROUNDS LOADERS PORT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	bash test/setup.sh build
fi

. bench/cluster.sh
start_cluster bench-score "$PORT" 20 1GB

CONN=(-h "$WORK" -p "$PORT" -U postgres)
DB=bench_scorecard
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
median() {
	tr ' ' '\n' | sed '/^$/d' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d postgres -c "CREATE DATABASE $DB"
psql_db -c "CREATE EXTENSION credit" -f bench/scorecard_data.sql -f bench/scorecard_reference.sql
AS_OF=$(scalar "SELECT current_date")
FIRST_AS_OF=$(scalar "SELECT current_date - $ROUNDS")

echo
echo "credit benchmark, scorecard: $CUSTOMERS customers, rescoring as of $FIRST_AS_OF .. $AS_OF"
echo "  server:    $(scalar "SELECT version()" | cut -d, -f1)"
echo "  settings:  fsync=$(scalar "SHOW fsync"), synchronous_commit=$(scalar "SHOW synchronous_commit")," \
	 "shared_buffers=$(scalar "SHOW shared_buffers"), work_mem=$(scalar "SHOW work_mem")," \
	 "jit=$(scalar "SHOW jit"), max_parallel_workers_per_gather=$(scalar "SHOW max_parallel_workers_per_gather"), autovacuum=off"
echo "  machine:   $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo

# ---------------------------------------------------------------- load
START_MS=$(now_ms)
timed "SELECT bench.load_accounts($CUSTOMERS)"
timed "SELECT bench.load_profiles($CUSTOMERS, '$AS_OF')"
N_PROFILES=$OUT
timed "SELECT bench.load_bureau_scores($CUSTOMERS, '$AS_OF')"
N_BUREAU=$OUT
printf '  load: %d accounts, %d profiles, %d bureau_score values in %s s\n' \
	"$CUSTOMERS" "$N_PROFILES" "$N_BUREAU" "$(sec $(( $(now_ms) - START_MS )))"

# the ledger: chunks of customers, LOADERS sessions each taking every LOADERS-th chunk
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
printf '  load: %d receivables, %d payments, %d allocations in %s s (%d sessions, %d customers per transaction)\n' \
	"$N_RECV" "$N_PAY" "$N_ALLOC" "$(sec "$LEDGER_MS")" "$LOADERS" "$CHUNK"

timed "SELECT bench.create_scorecard()"
CARD=$OUT
timed "SELECT bench.copy_account_terms()"
IFS='|' read -r WINDOW OVERDUE <<<"$(scalar "SELECT window_months, overdue_months
											 FROM credit.scorecards WHERE scorecard_id = $CARD")"
timed "VACUUM ANALYZE"
printf '  VACUUM ANALYZE in %s s\n' "$(sec "$T_MS")"
psql_db -c "CHECKPOINT"
sync

BAD_LOAD=$(scalar "SELECT count(*) FROM credit.reconcile()")
[ "$BAD_LOAD" = 0 ] || { echo "bench: credit.reconcile() reports $BAD_LOAD accounts after loading" >&2; exit 1; }

IFS='|' read -r N_OPEN N_OVERDUE N_PARTLY N_NONE SIZE <<<"$(scalar "
	SELECT count(*) FILTER (WHERE open_amount > 0),
		   count(*) FILTER (WHERE open_amount > 0 AND due_date < '$AS_OF'),
		   count(*) FILTER (WHERE allocated > 0 AND open_amount > 0),
		   (SELECT count(*) FROM credit.accounts a
			 WHERE NOT EXISTS (SELECT 1 FROM credit.receivables x WHERE x.customer_key = a.customer_key)),
		   pg_size_pretty(pg_total_relation_size('credit.receivables')
						  + pg_total_relation_size('credit.payments')
						  + pg_total_relation_size('credit.allocations'))
	  FROM credit.receivables")"
echo "  data: $N_OPEN receivables open ($N_OVERDUE overdue, $N_PARTLY partly paid), $N_NONE customers" \
	 "without receivables; ledger tables with indexes $SIZE; reconcile empty"
echo "  scorecard $CARD: $(scalar "SELECT string_agg(f.metric || ' ' || f.weight, ', ' ORDER BY f.position)
									 FROM credit.scorecard_factors f WHERE f.scorecard_id = $CARD");" \
	 "window $WINDOW months, overdue window $OVERDUE months"

# ---------------------------------------------------------------- check
# every customer scored alike by the extension and the reference
IFS='|' read -r C_ROWS C_MISSING C_SCORE C_BAND C_GRADE C_LIMIT C_TERM C_REASONS C_POINTS C_VALUES <<<"$(scalar "
	SELECT count(*),
		   count(*) FILTER (WHERE c.customer_key IS NULL OR r.customer_key IS NULL),
		   count(*) FILTER (WHERE c.score IS DISTINCT FROM r.score),
		   count(*) FILTER (WHERE c.band_grade IS DISTINCT FROM r.band_grade),
		   count(*) FILTER (WHERE c.grade IS DISTINCT FROM r.grade),
		   count(*) FILTER (WHERE c.recommended_limit IS DISTINCT FROM r.recommended_limit),
		   count(*) FILTER (WHERE c.recommended_term IS DISTINCT FROM r.recommended_term),
		   count(*) FILTER (WHERE c.reasons IS DISTINCT FROM r.reasons),
		   count(*) FILTER (WHERE c.points IS DISTINCT FROM r.points),
		   count(*) FILTER (WHERE c.metric_values IS DISTINCT FROM r.metric_values)
	  FROM credit.score_all($CARD, '$AS_OF', NULL, false) c
	  FULL JOIN bench.ref_score('$AS_OF', $CARD) r ON r.customer_key = c.customer_key")"
C_BAD=$(( C_MISSING + C_SCORE + C_BAND + C_GRADE + C_LIMIT + C_TERM + C_REASONS + C_POINTS + C_VALUES ))
echo "  check as of $AS_OF: $C_ROWS customers; differences between credit.score_all and the reference:" \
	 "missing $C_MISSING, score $C_SCORE, band $C_BAND, grade $C_GRADE, limit $C_LIMIT, term $C_TERM," \
	 "reasons $C_REASONS, points $C_POINTS, metric values $C_VALUES"
if [ "$C_BAD" != 0 ]; then
	echo "  first customers that differ:"
	psql_db -c "SELECT c.customer_key, c.score, r.score AS ref_score, c.grade, r.grade AS ref_grade,
					   c.recommended_limit, r.recommended_limit AS ref_limit, c.reasons, r.reasons AS ref_reasons
				  FROM credit.score_all($CARD, '$AS_OF', NULL, false) c
				  FULL JOIN bench.ref_score('$AS_OF', $CARD) r ON r.customer_key = c.customer_key
				 WHERE (c.score, c.band_grade, c.grade, c.recommended_limit, c.recommended_term,
						c.reasons, c.points, c.metric_values)
					   IS DISTINCT FROM
					   (r.score, r.band_grade, r.grade, r.recommended_limit, r.recommended_term,
						r.reasons, r.points, r.metric_values)
				 ORDER BY 1 LIMIT 10" | sed 's/^/    /'
	echo "bench: the reference and credit.score_all differ for some customers" >&2
	exit 1
fi
echo "  grades as of $AS_OF: $(scalar "SELECT string_agg(grade || ' ' || n || ' (' || round(100.0 * n / total, 1) || '%)', ', '
										   ORDER BY grade) || '; ' || sum(down) || ' downgraded by the rule'
									FROM (SELECT grade, count(*) AS n, sum(count(*)) OVER () AS total,
												 count(*) FILTER (WHERE grade <> band_grade) AS down
											FROM credit.score_all($CARD, '$AS_OF', NULL, false)
										   GROUP BY grade) g")"

# ---------------------------------------------------------------- runs
Q_CREDIT() { echo "SELECT * FROM credit.rescore('$1');"; }
Q_REF() { echo "SELECT * FROM bench.ref_rescore('$1');"; }
Q_METRICS() { echo "SELECT count(*) FROM credit.customer_metrics('$1', $WINDOW, $OVERDUE);"; }
Q_SCOREALL() { echo "SELECT count(*) FROM credit.score_all(NULL, '$1');"; }
Q_REFSCORE() { echo "SELECT count(*) FROM bench.ref_score('$1', $CARD);"; }
MAINT="VACUUM credit.score_history, credit.customer_grades, credit.grade_changes,
	credit.limit_requests, credit.accounts, bench.score_history, bench.customer_grades,
	bench.grade_changes, bench.limit_requests, bench.account_terms;
CHECKPOINT;"

RUN_SCRIPT=$WORK/scorecard_runs.sql
{
	echo '\timing on'
	for v in credit reference; do
		echo "\\echo @first $v"
		if [ "$v" = credit ]; then Q_CREDIT "$FIRST_AS_OF"; else Q_REF "$FIRST_AS_OF"; fi
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		day=$(date -d "$FIRST_AS_OF + $r days" +%F)
		echo "\\echo @- maintenance"
		echo "$MAINT"
		if (( r % 2 )); then
			order="credit reference metrics score_all ref_score"
		else
			order="reference credit ref_score score_all metrics"
		fi
		for v in $order; do
			echo "\\echo @$r $v"
			case $v in
				credit) Q_CREDIT "$day" ;;
				reference) Q_REF "$day" ;;
				metrics) Q_METRICS "$day" ;;
				score_all) Q_SCOREALL "$day" ;;
				ref_score) Q_REFSCORE "$day" ;;
			esac
		done
	done
} >"$RUN_SCRIPT"
chmod 644 "$RUN_SCRIPT"
echo
echo "  running: first grading of both, then $ROUNDS rounds (one day each) ..."
RUN_OUT=$(psql_db -At -f "$RUN_SCRIPT")

# T[round,variant] = ms; R[round,variant] = the result row
declare -A T=() R=()
while IFS=$'\t' read -r key kind val; do
	if [ "$kind" = time ]; then T[$key]=$val; else R[$key]=$val; fi
done < <(awk '/^@/ { key = substr($1, 2) "," $2; next }
			  key ~ /^-/ { next }
			  /^Time: / { print key "\ttime\t" $2; next }
			  { print key "\trow\t" $0 }' <<<"$RUN_OUT")

declare -A MS=()
RATIOS=""
for v in credit reference metrics score_all ref_score; do MS[$v]=""; done
for ((r = 1; r <= ROUNDS; r++)); do
	for v in credit reference metrics score_all ref_score; do
		[ -n "${T[$r,$v]:-}" ] || { echo "bench: no timing for round $r, $v" >&2; exit 1; }
		MS[$v]+="${T[$r,$v]} "
	done
	RATIOS+="$(awk -v c="${T[$r,credit]}" -v f="${T[$r,reference]}" 'BEGIN { print c / f }') "
done

echo "  first grading as of $FIRST_AS_OF (scored|grade changes|limits applied|open requests):"
printf '         %-10s %8s s  %s\n' rescore "$(sec "${T[first,credit]}")" "${R[first,credit]}"
printf '         %-10s %8s s  %s\n' reference "$(sec "${T[first,reference]}")" "${R[first,reference]}"
echo "  per round, seconds (rescore and reference: scored|grade changes|limits applied|open requests):"
printf '         %-5s %-10s %8s %9s %8s %9s %9s  %s\n' round as_of rescore reference metrics score_all ref_score "rescore / reference counts"
BAD_COUNTS=0
[ "${R[first,credit]}" = "${R[first,reference]}" ] || BAD_COUNTS=$((BAD_COUNTS + 1))
for ((r = 1; r <= ROUNDS; r++)); do
	[ "${R[$r,credit]}" = "${R[$r,reference]}" ] || BAD_COUNTS=$((BAD_COUNTS + 1))
	printf '         %-5d %-10s %8s %9s %8s %9s %9s  %s / %s\n' "$r" "$(date -d "$FIRST_AS_OF + $r days" +%F)" \
		"$(sec "${T[$r,credit]}")" "$(sec "${T[$r,reference]}")" "$(sec "${T[$r,metrics]}")" \
		"$(sec "${T[$r,score_all]}")" "$(sec "${T[$r,ref_score]}")" "${R[$r,credit]}" "${R[$r,reference]}"
done

# ---------------------------------------------------------------- after
IFS='|' read -r D_GRADES D_HISTORY D_CHANGES D_REQUESTS D_LIMITS N_HISTORY N_CHANGES N_REQUESTS <<<"$(scalar "
	SELECT (SELECT count(*) FROM credit.customer_grades c FULL JOIN bench.customer_grades b USING (customer_key)
			 WHERE (c.grade, c.score, c.computed_grade, c.grade_since, c.recommended_limit,
					c.recommended_term, c.reasons, c.scored_on)
				   IS DISTINCT FROM
				   (b.grade, b.score, b.computed_grade, b.grade_since, b.recommended_limit,
					b.recommended_term, b.reasons, b.scored_on)),
		   (SELECT count(*) FROM credit.score_history c
			  FULL JOIN bench.score_history b USING (scorecard_id, as_of, customer_key)
			 WHERE (c.score, c.computed_grade, c.grade, c.recommended_limit, c.recommended_term,
					c.reasons, c.points, c.metric_values)
				   IS DISTINCT FROM
				   (b.score, b.computed_grade, b.grade, b.recommended_limit, b.recommended_term,
					b.reasons, b.points, b.metric_values)),
		   (SELECT count(*) FROM (
				(SELECT customer_key, as_of, old_grade, new_grade, score, reasons FROM credit.grade_changes
				 EXCEPT ALL
				 SELECT customer_key, as_of, old_grade, new_grade, score, reasons FROM bench.grade_changes)
				UNION ALL
				(SELECT customer_key, as_of, old_grade, new_grade, score, reasons FROM bench.grade_changes
				 EXCEPT ALL
				 SELECT customer_key, as_of, old_grade, new_grade, score, reasons FROM credit.grade_changes)) d),
		   (SELECT count(*) FROM (
				(SELECT customer_key, state, as_of, grade, score, current_limit, proposed_limit,
						current_term, proposed_term, reasons FROM credit.limit_requests
				 EXCEPT ALL
				 SELECT customer_key, state, as_of, grade, score, current_limit, proposed_limit,
						current_term, proposed_term, reasons FROM bench.limit_requests)
				UNION ALL
				(SELECT customer_key, state, as_of, grade, score, current_limit, proposed_limit,
						current_term, proposed_term, reasons FROM bench.limit_requests
				 EXCEPT ALL
				 SELECT customer_key, state, as_of, grade, score, current_limit, proposed_limit,
						current_term, proposed_term, reasons FROM credit.limit_requests)) d),
		   (SELECT count(*) FROM credit.accounts a JOIN bench.account_terms b USING (customer_key)
			 WHERE (a.credit_limit, a.payment_term_days) IS DISTINCT FROM (b.credit_limit, b.payment_term_days)),
		   (SELECT count(*) FROM credit.score_history),
		   (SELECT count(*) FROM credit.grade_changes),
		   (SELECT count(*) FROM credit.limit_requests)")"
BAD_END=$(scalar "SELECT count(*) FROM credit.reconcile()")

if [ "$PROFILE" = 1 ]; then
	PROFILE_LOG_START=$(wc -l <"$WORK/server.log")
	NEXT_DAY=$(date -d "$AS_OF + 1 day" +%F)
	psql_db >/dev/null <<EOF
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 200;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_triggers = on;
SET auto_explain.log_nested_statements = on;
BEGIN;
SELECT * FROM credit.rescore('$NEXT_DAY');
SELECT * FROM bench.ref_rescore('$NEXT_DAY');
ROLLBACK;
EOF
	echo
	echo "  profile (auto_explain of one more day, $NEXT_DAY, rolled back; statements of 200 ms or more;"
	echo "  query texts cut to their first line, CONTEXT lines left out):"
	tail -n +"$((PROFILE_LOG_START + 1))" "$WORK/server.log" |
		awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / {
				 if ($0 ~ / CONTEXT: /) { mode = "skip"; next }
				 mode = "head"; print; next }
			 mode == "skip" { next }
			 /^\tQuery Text:/ { mode = "text"; print substr($0, 1, 100) " ..."; next }
			 mode == "text" && /^\t[^\t]/ { mode = "plan" }
			 mode == "plan" { print }' | sed 's/^/    | /'
fi

# ---------------------------------------------------------------- report
ok() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
chk() { if [ "$1" = 1 ]; then echo ok; else echo FAILED; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? 1 : 0 }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0) ? 1 : 0 }'; }
medsec() { sec "$(median <<<"${MS[$1]}")"; }
diffsec() { awk -v a="$(median <<<"${MS[$1]}")" -v b="$(median <<<"${MS[$2]}")" 'BEGIN { printf "%.2f", (a - b) / 1000 }'; }

RESCORE_S=$(medsec credit)
REF_S=$(medsec reference)
RATIO=$(awk -v c="$RESCORE_S" -v r="$REF_S" 'BEGIN { printf "%.2f", c / r }')
RATIO_ROUNDS=$(awk -v x="$(median <<<"$RATIOS")" 'BEGIN { printf "%.2f", x }')

echo
echo "scorecard: $CUSTOMERS customers, $N_RECV receivables, $N_ALLOC allocations; daily rescore," \
	 "median of $ROUNDS rounds (fsync=on)"
echo
[ "$CUSTOMERS" = 100000 ] || echo "(the targets are set for 100000 customers)"
printf '%-52s %10s %12s %8s\n' measure seconds target result
printf '%-52s %10s %12s %8s\n' "credit.rescore(as_of)" "$RESCORE_S" "<= $T_RESCORE_S" "$(ok "$(le "$RESCORE_S" "$T_RESCORE_S")")"
printf '%-52s %10s %12s %8s\n' "reference bench.ref_rescore(as_of)" "$REF_S" "-" "-"
printf '%-52s %10s %12s %8s\n' "ratio rescore / reference (of the medians)" "$RATIO x" "< $T_RATIO x" "$(ok "$(lt "$RATIO" "$T_RATIO")")"
printf '%-52s %10s %12s %8s\n' "  (median of the per-round ratios)" "$RATIO_ROUNDS x" "" ""
echo "breakdown (medians; a difference of medians is an estimate):"
printf '%-52s %10s\n' "  credit.customer_metrics alone (SQL, both use it)" "$(medsec metrics)"
printf '%-52s %10s\n' "  credit.score_all alone" "$(medsec score_all)"
printf '%-52s %10s\n' "    of which scoring in C (score_all - metrics)" "$(diffsec score_all metrics)"
printf '%-52s %10s\n' "  rescore's writes (rescore - score_all)" "$(diffsec credit score_all)"
printf '%-52s %10s\n' "  bench.ref_score alone" "$(medsec ref_score)"
printf '%-52s %10s\n' "    of which scoring in SQL (ref_score - metrics)" "$(diffsec ref_score metrics)"
printf '%-52s %10s\n' "  reference's writes (ref_rescore - ref_score)" "$(diffsec reference ref_score)"
printf '%-52s %10s\n' "first grading of everyone: credit.rescore" "$(sec "${T[first,credit]}")"
printf '%-52s %10s\n' "first grading of everyone: reference" "$(sec "${T[first,reference]}")"
echo
V1=$([ "$C_BAD" = 0 ] && echo 1 || echo 0)
V2=$([ "$BAD_COUNTS" = 0 ] && echo 1 || echo 0)
V3=$([ "$D_GRADES$D_HISTORY$D_CHANGES$D_REQUESTS$D_LIMITS" = 00000 ] && echo 1 || echo 0)
V4=$([ "$BAD_END" = 0 ] && echo 1 || echo 0)
printf '%-74s %s\n' "check: reference = credit.score_all for all $C_ROWS customers (before timing)" "$(chk "$V1")"
printf '%-74s %s\n' "check: each run's counts equal ($BAD_COUNTS runs differ)" "$(chk "$V2")"
printf '%-74s %s\n' "check: written the same (differing: grades $D_GRADES, history $D_HISTORY, changes $D_CHANGES, requests $D_REQUESTS, limits $D_LIMITS)" "$(chk "$V3")"
printf '%-74s %s\n' "check: credit.reconcile() empty at the end" "$(chk "$V4")"
echo "  written by credit.rescore: $N_HISTORY history rows, $N_CHANGES grade changes, $N_REQUESTS limit requests"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare ratios, not absolute times)"
echo

[ "$V1$V2$V3$V4" = 1111 ] || { echo "bench: scorecard checks failed" >&2; exit 1; }
