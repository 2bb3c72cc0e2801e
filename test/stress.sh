#!/usr/bin/env bash
# test/stress.sh: the randomized multi-client stress run of `make test`.
#
# Run by test/suites.sh with PGHOST, PGPORT and PGUSER pointing at a running
# cluster where credit is installed.  It creates the database credit_stress
# (test/stress/setup.sql: an application's sales.orders attached to credit,
# 50 accounts with hot customers on small limits, one 'none', one 'stop'),
# runs pgbench clients that insert, change, move and delete random orders,
# change limits, rescore every customer under an active scorecard (which
# lowers and raises limits), and roll back at random (test/stress/*.pgbench,
# which call stress.act, stress.act_multi and stress.rescore), samples the
# invariants while they run, and checks them afterwards.  One line per
# check, "ok N - ..." or "not ok N - ..."; exit 1 if any failed.
#
#   bash test/stress.sh               set up, run, check
#   bash test/stress.sh --check-only  only the database checks, on the
#                                     database a previous run left behind
#
# Environment: STRESS_DB (credit_stress), STRESS_CLIENTS (8), STRESS_JOBS
# (2), STRESS_SECONDS (20), STRESS_MIN_TPS (50: fewer committed transactions
# per second than this fails the run).
set -uo pipefail
cd "$(dirname "$0")/.."

DB=${STRESS_DB:-credit_stress}
CLIENTS=${STRESS_CLIENTS:-8}
JOBS=${STRESS_JOBS:-2}
DURATION=${STRESS_SECONDS:-20}
MIN_TPS=${STRESS_MIN_TPS:-50}
MODE=${1:-run}

BINDIR=$(${PG_CONFIG:-pg_config} --bindir 2>/dev/null || true)
PGBENCH=pgbench
[ -n "$BINDIR" ] && [ -x "$BINDIR/pgbench" ] && PGBENCH=$BINDIR/pgbench

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
# one value (or row, |-separated) from a query
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

n=0
nfailed=0
# tap PASSED DESCRIPTION [DIAGNOSTIC...]: PASSED is "t" or "f"
tap() {
	local passed=$1 desc=$2
	shift 2
	n=$((n + 1))
	if [ "$passed" = t ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		nfailed=$((nfailed + 1))
	fi
	for d in "$@"; do
		[ -n "$d" ] && printf '%s\n' "$d" | sed 's/^/#   /'
	done
	return 0
}
# sqlcheck DESCRIPTION CONDITION [DIAGNOSTIC-QUERY]: CONDITION is an SQL
# boolean; the diagnostic query's output is shown when the check fails
sqlcheck() {
	local desc=$1 cond=$2 diag=${3:-} r d=""
	r=$(q "SELECT ($cond)::text" 2>&1)
	case "$r" in
		true) tap t "$desc" ;;
		*)
			[ -n "$diag" ] && d=$(q "$diag" 2>&1 | head -20)
			[ "$r" != false ] && d="$r${d:+
$d}"
			tap f "$desc" "$d" ;;
	esac
}

# ---------------------------------------------------------------- set-up
if [ "$MODE" != --check-only ]; then
	echo "# stress: database $DB, $CLIENTS clients, $JOBS threads, $DURATION s"
	if ! { dropdb --if-exists "$DB" && createdb "$DB" &&
		   psql_db -f test/stress/setup.sql; } >"$WORK/setup.out" 2>&1; then
		tap f "set-up of database $DB" "$(cat "$WORK/setup.out")"
		echo "1..$n"
		exit 1
	fi
	q "SELECT format('set-up: %s accounts, %s orders, exposure %s', count(*),
	                 (SELECT count(*) FROM sales.orders), sum(exposure))
	     FROM credit.accounts" | sed 's/^/# /'

	# ------------------------------------------------------------ the run
	start=$(date +%s)
	"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" --failures-detailed \
		-f test/stress/single.pgbench@62 -f test/stress/multi.pgbench@12 \
		-f test/stress/rr.pgbench@12 -f test/stress/rollback.pgbench@14 \
		-f test/stress/rescore.pgbench@3 \
		"$DB" >"$WORK/pgbench.out" 2>&1 &
	pid=$!
	# sample the invariants in one snapshot about once a second meanwhile
	sleep 1
	while kill -0 "$pid" 2>/dev/null; do
		q "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT stress.sample(); COMMIT" \
			>/dev/null 2>>"$WORK/sample.err"
		sleep 1
	done
	wait "$pid"
	rc=$?
	elapsed=$(($(date +%s) - start))

	echo "# pgbench output:"
	sed 's/^/#   /' "$WORK/pgbench.out"
	out=$WORK/pgbench.out
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	processed=${processed:-0}
	failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	deadlock_tx=$(sed -n 's/^number of deadlock failures: \([0-9]*\).*/\1/p' "$out")
	# per script: "SQL script N: path" then " - K transactions (...)"
	script_tx() {
		awk -v s="$1" '/^SQL script [0-9]+: / { cur = ($4 ~ s) } cur && / - [0-9]+ transactions/ { print $2; exit }' "$out"
	}
	rollback_tx=$(script_tx rollback.pgbench)
	min=$((MIN_TPS * DURATION))

	# ------------------------------------------------- pgbench's own checks
	aborted=$(grep -ciE 'aborted|error' "$out")
	tap "$([ "$rc" -eq 0 ] && [ "$aborted" -eq 0 ] && echo t || echo f)" \
		"pgbench exited 0 with no aborted client (exit $rc, $elapsed s)" \
		"$(grep -iE 'aborted|error' "$out" | head -20)"
	tap "$([ "${failed_tx:-x}" = 0 ] && echo t || echo f)" \
		"pgbench reports no failed transaction (${failed_tx:-none reported})"
	# pgbench counts a deadlock as a failed transaction; the server counts it too
	deadlocks=$(q "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	tap "$([ "${deadlock_tx:-x}" = 0 ] && [ "${deadlocks:-x}" = 0 ] && echo t || echo f)" \
		"no deadlock (40P01): pgbench counted ${deadlock_tx:-none}, the server ${deadlocks:-none}"
	tap "$([ "$processed" -ge "$min" ] && echo t || echo f)" \
		"pgbench processed at least $min transactions ($processed)"
	tap "$([ "${rollback_tx:-0}" -gt 0 ] && echo t || echo f)" \
		"whole transactions were rolled back (${rollback_tx:-0})"
	samples=$(q "SELECT count(*) FROM stress.samples")
	tap "$([ "${samples:-0}" -ge $((DURATION / 4)) ] && echo t || echo f)" \
		"invariants were sampled during the run (${samples:-0} samples)" \
		"$(head -5 "$WORK/sample.err" 2>/dev/null)"
fi

# ------------------------------------------------------ what happened
echo "# committed actions by kind and outcome (none: no row matched; undone: rolled"
echo "# back to a savepoint; serialization: 40001 at REPEATABLE READ):"
psql_db -c "SELECT kind, count(*) AS total,
	       count(*) FILTER (WHERE outcome LIKE 'ok%') AS ok,
	       count(*) FILTER (WHERE outcome = 'none') AS none,
	       count(*) FILTER (WHERE outcome = 'CR001') AS cr001,
	       count(*) FILTER (WHERE outcome = 'CR002') AS cr002,
	       count(*) FILTER (WHERE outcome = 'CR003') AS cr003,
	       count(*) FILTER (WHERE outcome = 'undone') AS undone,
	       count(*) FILTER (WHERE outcome = 'serialization') AS serialization,
	       count(*) FILTER (WHERE outcome NOT IN ('none', 'CR001', 'CR002', 'CR003', 'undone',
	                                              'serialization') AND outcome NOT LIKE 'ok%') AS other
	  FROM stress.events GROUP BY ROLLUP (kind) ORDER BY kind NULLS LAST" 2>&1 | sed 's/^/#   /'
ev() { q "SELECT count(*) FROM stress.events WHERE $1"; }

sqlcheck "actions were undone by subtransaction rollback ($(ev "outcome = 'undone'"))" \
	"EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'undone')"
sqlcheck "the limit refused increases, CR001 ($(ev "outcome = 'CR001'"))" \
	"EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'CR001')"
sqlcheck "stopped accounts refused increases, CR002 ($(ev "outcome = 'CR002'"))" \
	"EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'CR002')"
sqlcheck "orders moved between customers ($(ev "kind IN ('move', 'bulk_move') AND outcome = 'ok'") moves of open orders)" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind IN ('move', 'bulk_move') AND outcome = 'ok')"
sqlcheck "every kind of action committed at least once" \
	"NOT EXISTS (SELECT 1 FROM unnest(ARRAY['insert', 'increase', 'decrease', 'state_open',
		'state_confirmed', 'state_closed', 'state_cancelled', 'move', 'delete', 'upsert',
		'merge', 'bulk_increase', 'bulk_move', 'bulk_cancel', 'limit_change',
		'temp_limit_grant', 'temp_limit_revoke', 'toggle_stop', 'invoice_order', 'payment', 'read',
		'rescore']) k
		WHERE NOT EXISTS (SELECT 1 FROM stress.events e WHERE e.kind = k AND e.outcome = 'ok'))" \
	"SELECT 'never committed: ' || string_agg(k, ', ') FROM unnest(ARRAY['insert', 'increase',
		'decrease', 'state_open', 'state_confirmed', 'state_closed', 'state_cancelled', 'move',
		'delete', 'upsert', 'merge', 'bulk_increase', 'bulk_move', 'bulk_cancel', 'limit_change',
		'temp_limit_grant', 'temp_limit_revoke', 'toggle_stop', 'invoice_order', 'payment', 'read',
		'rescore']) k
		WHERE NOT EXISTS (SELECT 1 FROM stress.events e WHERE e.kind = k AND e.outcome = 'ok')"
sqlcheck "no action that only lowers exposure was refused" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE pure_decrease AND outcome IN ('CR001', 'CR002', 'CR003'))" \
	"SELECT mode, kind, outcome, detail FROM stress.events
	  WHERE pure_decrease AND outcome IN ('CR001', 'CR002', 'CR003') LIMIT 10"
sqlcheck "readers never saw negative available credit on a checked account that no rescore explains" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'negative_available')" \
	"SELECT mode, detail FROM stress.events WHERE outcome = 'negative_available' LIMIT 10"
sqlcheck "every snapshot sampled during the run was consistent" \
	"NOT EXISTS (SELECT 1 FROM stress.samples
	              WHERE reconcile_rows + over_limit + negative + independent_diff + wrong_status > 0)" \
	"SELECT * FROM stress.samples
	  WHERE reconcile_rows + over_limit + negative + independent_diff + wrong_status > 0 LIMIT 10"

# ------------------------------------------------------ the final state
sqlcheck "credit.reconcile() returns no rows" \
	"NOT EXISTS (SELECT 1 FROM credit.reconcile())" \
	"SELECT * FROM credit.reconcile() LIMIT 10"
sqlcheck "every exposure equals the sum of its open orders (computed independently)" \
	"NOT EXISTS (SELECT 1 FROM stress.exposure_mismatch)" \
	"SELECT * FROM stress.exposure_mismatch LIMIT 10"
# above the limit only where a rescore lowered it below the committed
# exposure, and then on hold (or stopped) with no increase since
over=$(q "SELECT count(*) FROM credit.accounts a WHERE a.status <> 'none' AND a.exposure > credit.effective_limit(a)")
sqlcheck "no account except 'none' has exposure above its effective limit unless a rescore lowered the limit below it, and then it is on hold or stopped and its exposure has not grown ($over such accounts)" \
	"NOT EXISTS (SELECT 1 FROM stress.unexplained_over_limit())" \
	"SELECT * FROM stress.unexplained_over_limit()"
sqlcheck "no exposure is negative" \
	"NOT EXISTS (SELECT 1 FROM credit.accounts WHERE exposure < 0)" \
	"SELECT customer_key, exposure FROM credit.accounts WHERE exposure < 0"
sqlcheck "no open order belongs to a customer without an account, none has a negative amount" \
	"NOT EXISTS (SELECT 1 FROM sales.orders o WHERE o.state IN ('open', 'confirmed')
	              AND (o.total < 0 OR NOT EXISTS (SELECT 1 FROM credit.accounts a
	                                               WHERE a.customer_key = o.cust_id::text)))" \
	"SELECT * FROM sales.orders o WHERE o.state IN ('open', 'confirmed')
	    AND (o.total < 0 OR NOT EXISTS (SELECT 1 FROM credit.accounts a
	                                    WHERE a.customer_key = o.cust_id::text)) LIMIT 10"
sqlcheck "detach leaves only the receivables ledger's exposure and attaching again counts the same (undone afterwards)" \
	"stress.detach_attach_problem() IS NULL" \
	"SELECT stress.detach_attach_problem()"
sqlcheck "the 'stop' account is still stopped and its exposure did not increase" \
	"(SELECT a.status = 'stop' AND a.exposure <= b.exposure
	    FROM credit.accounts a JOIN stress.baseline b USING (customer_key)
	   WHERE customer_key = '50')" \
	"SELECT a.status, a.exposure, b.exposure AS before
	   FROM credit.accounts a JOIN stress.baseline b USING (customer_key) WHERE customer_key = '50'"
sqlcheck "the 'none' account is still unchecked" \
	"(SELECT status = 'none' FROM credit.accounts WHERE customer_key = '49')" \
	"SELECT customer_key, status, exposure, credit_limit FROM credit.accounts WHERE customer_key = '49'"
sqlcheck "statuses ok, watch and hold are what the rule derives from exposure and the limit" \
	"NOT EXISTS (SELECT 1 FROM credit.accounts a WHERE a.status IN ('ok', 'watch', 'hold')
	              AND a.status <> stress.derived_status(a.exposure, credit.effective_limit(a), a.watch_ratio))" \
	"SELECT customer_key, status, exposure, credit.effective_limit(a), watch_ratio
	   FROM credit.accounts a WHERE a.status IN ('ok', 'watch', 'hold')
	    AND a.status <> stress.derived_status(a.exposure, credit.effective_limit(a), a.watch_ratio)"
sqlcheck "credit.status_changes recorded changes ($(q "SELECT count(*) FROM credit.status_changes"))" \
	"EXISTS (SELECT 1 FROM credit.status_changes)"
sqlcheck "each account's status history is a chain ending in its current status" \
	"NOT EXISTS (
	   SELECT 1 FROM (SELECT customer_key, old_status, new_status,
	                         lag(new_status) OVER w AS prev_new,
	                         lead(change_id) OVER w IS NULL AS last
	                    FROM credit.status_changes WINDOW w AS (PARTITION BY customer_key ORDER BY change_id)) h
	     JOIN credit.accounts a USING (customer_key)
	    WHERE h.old_status IS DISTINCT FROM coalesce(h.prev_new, h.old_status)
	       OR (h.last AND h.new_status <> a.status))" \
	"SELECT * FROM (SELECT change_id, customer_key, old_status, new_status,
	                       lag(new_status) OVER w AS prev_new, lead(change_id) OVER w IS NULL AS last
	                  FROM credit.status_changes WINDOW w AS (PARTITION BY customer_key ORDER BY change_id)) h
	  JOIN credit.accounts a USING (customer_key)
	 WHERE h.old_status IS DISTINCT FROM coalesce(h.prev_new, h.old_status)
	    OR (h.last AND h.new_status <> a.status) LIMIT 10"
sqlcheck "every derived status in the history agrees with the exposure and limit recorded with it" \
	"NOT EXISTS (SELECT 1 FROM credit.status_changes c JOIN credit.accounts a USING (customer_key)
	              WHERE c.new_status IN ('ok', 'watch', 'hold')
	                AND c.new_status <> stress.derived_status(c.exposure, c.effective_limit, a.watch_ratio))" \
	"SELECT c.* FROM credit.status_changes c JOIN credit.accounts a USING (customer_key)
	  WHERE c.new_status IN ('ok', 'watch', 'hold')
	    AND c.new_status <> stress.derived_status(c.exposure, c.effective_limit, a.watch_ratio) LIMIT 10"
# ------------------------------------------------------ scoring
echo "# credit.rescore runs by mode and outcome (rr: REPEATABLE READ; serialization:"
echo "# 40001 there; applied: limits applied, lowered or raised; requests: open"
echo "# requests written; left_over: accounts left above their limit; runs rolled"
echo "# back as a whole are not recorded):"
psql_db -c "SELECT mode, outcome, count(*) AS runs, sum(grade_changes) AS grade_changes,
	       sum(limits_applied) AS applied, sum(lowered) AS lowered, sum(raised) AS raised,
	       sum(limit_requests) AS requests, sum(left_over) AS left_over
	  FROM stress.rescores GROUP BY ROLLUP (mode, outcome) ORDER BY mode NULLS LAST, outcome" 2>&1 | sed 's/^/#   /'
rs() { q "SELECT coalesce(sum($1), 0) FROM stress.rescores WHERE outcome = 'ok'"; }
sqlcheck "credit.rescore ran while orders ran ($(rs 1) runs committed, $(q "SELECT count(*) FROM stress.rescores WHERE outcome = 'serialization'") failed with 40001 at REPEATABLE READ, $(q "SELECT count(*) FROM stress.rescores WHERE outcome = 'refused'") refused)" \
	"EXISTS (SELECT 1 FROM stress.rescores WHERE outcome = 'ok')"
sqlcheck "rescore lowered limits ($(rs lowered)) and raised them ($(rs raised)), and left accounts above their limit ($(rs left_over) times)" \
	"(SELECT sum(lowered) > 0 AND sum(raised) > 0 AND sum(left_over) > 0
	    FROM stress.rescores WHERE outcome = 'ok')"
sqlcheck "at most one open limit request per customer ($(q "SELECT count(*) FROM credit.limit_requests WHERE state = 'open'") open)" \
	"NOT EXISTS (SELECT 1 FROM credit.limit_requests WHERE state = 'open'
	              GROUP BY customer_key HAVING count(*) > 1)" \
	"SELECT customer_key, count(*) FROM credit.limit_requests WHERE state = 'open'
	  GROUP BY customer_key HAVING count(*) > 1 LIMIT 10"
sqlcheck "one score history row per customer and date ($(q "SELECT count(*) FROM credit.score_history") rows)" \
	"NOT EXISTS (SELECT 1 FROM credit.score_history GROUP BY customer_key, as_of HAVING count(*) > 1)" \
	"SELECT customer_key, as_of, count(*) FROM credit.score_history
	  GROUP BY customer_key, as_of HAVING count(*) > 1 LIMIT 10"
sqlcheck "every account has a grade in force, equal to the score history row it was written with" \
	"NOT EXISTS (SELECT 1 FROM credit.accounts a
	              LEFT JOIN credit.customer_grades g USING (customer_key)
	              LEFT JOIN credit.score_history h
	                ON h.customer_key = g.customer_key AND h.as_of = g.scored_on
	               AND h.scorecard_id = g.scorecard_id
	             WHERE h.grade IS DISTINCT FROM g.grade OR h.score IS DISTINCT FROM g.score
	                OR h.computed_grade IS DISTINCT FROM g.computed_grade
	                OR h.recommended_limit IS DISTINCT FROM g.recommended_limit)" \
	"SELECT a.customer_key, g.grade, g.score, g.scored_on, h.grade AS history_grade, h.score AS history_score
	   FROM credit.accounts a LEFT JOIN credit.customer_grades g USING (customer_key)
	   LEFT JOIN credit.score_history h ON h.customer_key = g.customer_key AND h.as_of = g.scored_on
	    AND h.scorecard_id = g.scorecard_id
	  WHERE h.grade IS DISTINCT FROM g.grade OR h.score IS DISTINCT FROM g.score
	     OR h.computed_grade IS DISTINCT FROM g.computed_grade
	     OR h.recommended_limit IS DISTINCT FROM g.recommended_limit LIMIT 10"
# after every run (recorded by stress.rescore) and at the end
sqlcheck "every grade in force is from the customer's latest scored date, after every run and at the end ($(q "SELECT count(*) FROM stress.rescores WHERE stale_grades > 0") runs left older grades in force)" \
	"NOT EXISTS (SELECT 1 FROM stress.rescores WHERE stale_grades > 0)
	 AND NOT EXISTS (SELECT 1 FROM credit.customer_grades g
	                  WHERE g.scored_on < (SELECT max(h.as_of) FROM credit.score_history h
	                                        WHERE h.customer_key = g.customer_key))" \
	"SELECT client, mode, as_of, stale_grades FROM stress.rescores WHERE stale_grades > 0 LIMIT 5"
sqlcheck "each customer's grade changes form a chain ending in the grade in force ($(q "SELECT count(*) FROM credit.grade_changes") changes)" \
	"NOT EXISTS (
	   SELECT 1 FROM (SELECT customer_key, old_grade, new_grade,
	                         lag(new_grade) OVER w AS prev_new,
	                         lead(change_id) OVER w IS NULL AS last
	                    FROM credit.grade_changes WINDOW w AS (PARTITION BY customer_key ORDER BY change_id)) c
	     LEFT JOIN credit.customer_grades g USING (customer_key)
	    WHERE c.old_grade IS DISTINCT FROM c.prev_new
	       OR (c.last AND c.new_grade IS DISTINCT FROM g.grade))
	 AND NOT EXISTS (SELECT 1 FROM credit.customer_grades g
	                  WHERE NOT EXISTS (SELECT 1 FROM credit.grade_changes c
	                                     WHERE c.customer_key = g.customer_key))" \
	"SELECT * FROM (SELECT change_id, customer_key, as_of, old_grade, new_grade,
	                       lag(new_grade) OVER w AS prev_new, lead(change_id) OVER w IS NULL AS last
	                  FROM credit.grade_changes WINDOW w AS (PARTITION BY customer_key ORDER BY change_id)) c
	   LEFT JOIN credit.customer_grades g USING (customer_key)
	  WHERE c.old_grade IS DISTINCT FROM c.prev_new OR (c.last AND c.new_grade IS DISTINCT FROM g.grade)
	  LIMIT 10"
sqlcheck "every open limit request proposes what its customer's score history row recommends" \
	"NOT EXISTS (SELECT 1 FROM credit.limit_requests r
	               LEFT JOIN credit.score_history h
	                 ON h.customer_key = r.customer_key AND h.as_of = r.as_of
	                AND h.scorecard_id = r.scorecard_id
	              WHERE r.state = 'open'
	                AND (h.grade IS DISTINCT FROM r.grade
	                     OR h.recommended_limit IS DISTINCT FROM r.proposed_limit
	                     OR h.recommended_term IS DISTINCT FROM r.proposed_term))" \
	"SELECT r.request_id, r.customer_key, r.as_of, r.grade, r.proposed_limit, h.grade, h.recommended_limit
	   FROM credit.limit_requests r LEFT JOIN credit.score_history h
	     ON h.customer_key = r.customer_key AND h.as_of = r.as_of AND h.scorecard_id = r.scorecard_id
	  WHERE r.state = 'open'
	    AND (h.grade IS DISTINCT FROM r.grade OR h.recommended_limit IS DISTINCT FROM r.proposed_limit
	         OR h.recommended_term IS DISTINCT FROM r.proposed_term) LIMIT 10"

# the ledger writes account rows and their index entries itself
if q "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null 2>&1; then
	sqlcheck "amcheck finds credit.accounts and its index intact" \
		"NOT EXISTS (SELECT 1 FROM verify_heapam('credit.accounts'))
		 AND (SELECT count(*) FROM (SELECT bt_index_parent_check(i.indexrelid, true)
		                              FROM pg_index i
		                             WHERE i.indrelid = 'credit.accounts'::regclass) x) > 0" \
		"SELECT * FROM verify_heapam('credit.accounts') LIMIT 10"
fi

echo "# $(q "SELECT format('scoring: %s history rows, %s grade changes, %s grades in force (%s); limit requests: %s',
	(SELECT count(*) FROM credit.score_history), (SELECT count(*) FROM credit.grade_changes),
	(SELECT count(*) FROM credit.customer_grades),
	(SELECT string_agg(grade || ' ' || n, ', ' ORDER BY grade)
	   FROM (SELECT grade, count(*) AS n FROM credit.customer_grades GROUP BY grade) x),
	(SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
	   FROM (SELECT state, count(*) AS n FROM credit.limit_requests GROUP BY state) y))")"
echo "# $(q "SELECT format('final: %s orders (%s open), exposure %s; hot accounts: %s',
	(SELECT count(*) FROM sales.orders),
	(SELECT count(*) FROM sales.orders WHERE state IN ('open', 'confirmed')),
	(SELECT sum(exposure) FROM credit.accounts),
	(SELECT string_agg(format('%s %s/%s %s', customer_key, exposure, credit.effective_limit(a), status), ', ' ORDER BY customer_key)
	   FROM credit.accounts a WHERE customer_key IN ('1', '2', '3', '4')))")"
echo "1..$n"
[ "$nfailed" -eq 0 ]
