#!/usr/bin/env bash
# test/stress.sh: the randomized multi-client stress run of `make test`.
#
# Run by test/suites.sh with PGHOST, PGPORT and PGUSER pointing at a running
# cluster where credit is installed.  It creates the database credit_stress
# (test/stress/setup.sql: an application's sales.orders attached to credit,
# sales.edi_orders attached with over_limit hold and sales.web_orders with
# warn, sales.fx_orders attached with a currency column (orders in CNY,
# EUR, USD and GBP, which has no rate), 50 accounts with hot customers on
# small limits, one 'none', one 'stop', two corporate groups of members
# three levels deep under small group limits, approval positions, roles and
# rules for releasing held orders),
# runs pgbench clients that insert, change, move and delete random orders,
# change limits, rescore every customer under an active scorecard (which
# lowers and raises limits), approve, reject and withdraw the release of
# held orders as the roles entitled (and not) to, escalate overdue steps,
# move group members between the groups (credit.move_account), write
# foreign-currency orders (converted at their accounts' booked positions;
# GBP refused with CR008), record new exchange rates and revalue the
# positions to them (credit.revalue), and roll back at random
# (test/stress/*.pgbench, which call stress.act, stress.act_multi,
# stress.rescore, stress.edi_act, stress.approve_act, stress.withdraw_act,
# stress.web_act, stress.group_move, stress.fx_act and stress.revalue_act;
# the groups' members take their share of every kind of order action),
# samples the invariants while they
# run, and checks them afterwards.  One line per check, "ok N - ..." or
# "not ok N - ..."; exit 1 if any failed.
#
#   bash test/stress.sh               set up, run, check
#   bash test/stress.sh --check-only  only the database checks, on the
#                                     database a previous run left behind
#
# Both exposure backends: the row-locked ledger, and the shared-memory one
# (credit in shared_preload_libraries; test/shared_pass.sh).  Every check
# reads an account's exposure through credit.live_exposure (the figure the
# serving ledger holds), so the same checks hold under either.
#
# Environment: STRESS_DB (credit_stress), STRESS_CLIENTS (8), STRESS_JOBS
# (2), STRESS_SECONDS (20), STRESS_MIN_TPS (50: fewer committed transactions
# per second than this fails the run), STRESS_BACKEND ('row lock' or
# 'shared memory': if set, a check that every account is served by that
# ledger).
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
script_start=$(date +%s)
trap 'rm -rf "$WORK"' EXIT

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
# one value (or row, |-separated) from a query
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
# an account's exposure (credit.accounts a) as the serving ledger holds it:
# under the shared-memory ledger orders do not write the stored column, so
# every check reads this (as test/stress/setup.sql does), never a.exposure
live="credit.live_exposure(a.customer_key, a.exposure)"

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
	q "SELECT format('set-up: %s accounts, %s + %s + %s + %s orders, %s currency positions, exposure %s',
	                 count(*), (SELECT count(*) FROM sales.orders), (SELECT count(*) FROM sales.edi_orders),
	                 (SELECT count(*) FROM sales.web_orders), (SELECT count(*) FROM sales.fx_orders),
	                 (SELECT count(*) FROM credit.currency_positions), sum($live))
	     FROM credit.accounts a" | sed 's/^/# /'
	echo "# exposure backend: $(q "SELECT string_agg(b || ' ' || n, ', ') FROM (SELECT credit.ledger_backend(customer_key) AS b, count(*) AS n FROM credit.accounts GROUP BY 1 ORDER BY 1) x")"

	# ------------------------------------------------------------ the run
	start=$(date +%s)
	"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" --failures-detailed \
		-f test/stress/single.pgbench@62 -f test/stress/multi.pgbench@12 \
		-f test/stress/rr.pgbench@12 -f test/stress/rollback.pgbench@14 \
		-f test/stress/rescore.pgbench@3 \
		-f test/stress/edi.pgbench@18 -f test/stress/approve.pgbench@8 \
		-f test/stress/withdraw.pgbench@2 -f test/stress/web.pgbench@5 \
		-f test/stress/group_move.pgbench@1 \
		-f test/stress/fx.pgbench@14 -f test/stress/revalue.pgbench@1 \
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
	# pgbench counts a deadlock as a failed transaction; the server counts it too
	deadlocks=$(q "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	if [ "${STRESS_BACKEND:-}" = "shared memory" ]; then
		# The escrow lets a transaction reserve where the row lock would
		# have queued it, so two multi-statement transactions can meet in a
		# cycle (with the audit trail's per-account head, a held order, a
		# ledger wait) that row locks never form: the deadlock detector
		# breaks it with 40P01 and the transaction is retried like any
		# deadlock (README).  Proved here: deadlocks are the only failures,
		# they are rare (at most 1 in 500 transactions), and every invariant
		# below holds after them.
		tap "$([ -n "${failed_tx:-}" ] && [ "${failed_tx}" = "${deadlock_tx:-x}" ] && echo t || echo f)" \
			"pgbench reports no failed transaction but deadlocks (${failed_tx:-none reported} failed, ${deadlock_tx:-none} of them deadlocks)"
		tap "$([ -n "${deadlock_tx:-}" ] && [ "${deadlocks:-0}" -ge "$deadlock_tx" ] && [ $((deadlock_tx * 500)) -le "$processed" ] && echo t || echo f)" \
			"deadlocks (40P01) are rare under the shared-memory ledger: pgbench counted ${deadlock_tx:-none} in $processed transactions, the server ${deadlocks:-none}"
	else
		tap "$([ "${failed_tx:-x}" = 0 ] && echo t || echo f)" \
			"pgbench reports no failed transaction (${failed_tx:-none reported})"
		tap "$([ "${deadlock_tx:-x}" = 0 ] && [ "${deadlocks:-x}" = 0 ] && echo t || echo f)" \
			"no deadlock (40P01): pgbench counted ${deadlock_tx:-none}, the server ${deadlocks:-none}"
	fi
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
echo "# back to a savepoint; serialization: 40001 at REPEATABLE READ; cr008: no rate):"
psql_db -c "SELECT kind, count(*) AS total,
	       count(*) FILTER (WHERE outcome LIKE 'ok%') AS ok,
	       count(*) FILTER (WHERE outcome = 'none') AS none,
	       count(*) FILTER (WHERE outcome = 'CR001') AS cr001,
	       count(*) FILTER (WHERE outcome = 'CR002') AS cr002,
	       count(*) FILTER (WHERE outcome = 'CR003') AS cr003,
	       count(*) FILTER (WHERE outcome = 'CR008') AS cr008,
	       count(*) FILTER (WHERE outcome = 'undone') AS undone,
	       count(*) FILTER (WHERE outcome = 'serialization') AS serialization,
	       count(*) FILTER (WHERE outcome NOT IN ('none', 'CR001', 'CR002', 'CR003', 'CR008', 'undone',
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
sqlcheck "no action that only lowers exposure was refused (or held)" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE pure_decrease AND outcome IN ('CR001', 'CR002', 'CR003', 'held'))" \
	"SELECT mode, kind, outcome, detail FROM stress.events
	  WHERE pure_decrease AND outcome IN ('CR001', 'CR002', 'CR003', 'held') LIMIT 10"
sqlcheck "readers never saw negative available credit on a checked account that no rescore explains" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'negative_available')" \
	"SELECT mode, detail FROM stress.events WHERE outcome = 'negative_available' LIMIT 10"
sqlcheck "every snapshot sampled during the run was consistent (exposure, group roll-up, limits, statuses, held orders, approval chains)" \
	"NOT EXISTS (SELECT 1 FROM stress.samples
	              WHERE reconcile_rows + over_limit + negative + independent_diff + wrong_status
	                    + hold_problems + approval_problems + tree_problems > 0)" \
	"SELECT * FROM stress.samples
	  WHERE reconcile_rows + over_limit + negative + independent_diff + wrong_status
	        + hold_problems + approval_problems + tree_problems > 0 LIMIT 10"

# ------------------------------------------------------ group limits
gev() { ev "kind = 'group_move' AND outcome $1"; }
sqlcheck "group limits refused members' increases: CR001 naming the group ($(ev "outcome = 'CR001' AND detail LIKE 'credit limit of group %'") refusals; $(ev "outcome = 'CR001' AND detail NOT LIKE 'credit limit of group %'") by a customer's own limit), every group named one of the group accounts 60, 61, 62, 67" \
	"EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'CR001' AND detail LIKE 'credit limit of group %')
	 AND NOT EXISTS (SELECT 1 FROM stress.events
	                  WHERE outcome = 'CR001'
	                    AND substring(detail FROM '^credit limit of group \"([^\"]*)\"') NOT IN ('60', '61', '62', '67'))" \
	"SELECT kind, detail FROM stress.events
	  WHERE outcome = 'CR001' AND substring(detail FROM '^credit limit of group \"([^\"]*)\"') NOT IN ('60', '61', '62', '67') LIMIT 10"
sqlcheck "credit.move_account moved members between groups while orders ran ($(gev "LIKE 'ok%'") moves, $(gev "= 'ok_over'") leaving a group over its limit; $(gev "= 'cycle'") cycles refused with 23514, $(gev "= 'refused_rr'") refused at REPEATABLE READ, $(gev "= 'same'") to the same parent, $(gev "= 'undone'") undone), each recorded once by the parent_key trigger and no move otherwise ($(q "SELECT count(*) FROM stress.moves") recorded)" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind = 'group_move' AND outcome LIKE 'ok%')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind = 'group_move' AND outcome = 'cycle')
	 AND NOT EXISTS (SELECT 1 FROM stress.events
	                  WHERE kind = 'group_move'
	                    AND outcome NOT IN ('ok', 'ok_over', 'cycle', 'refused_rr', 'same', 'undone'))
	 AND (SELECT count(*) FROM stress.moves)
	     = (SELECT count(*) FROM stress.events WHERE kind = 'group_move' AND outcome LIKE 'ok%')" \
	"SELECT outcome, count(*), min(detail) FROM stress.events WHERE kind = 'group_move' GROUP BY 1
	 UNION ALL SELECT 'recorded moves', count(*), NULL FROM stress.moves"

# ------------------------------------------------------ the final state
if [ -n "${STRESS_BACKEND:-}" ]; then
	sqlcheck "every account is served by the $STRESS_BACKEND ledger" \
		"NOT EXISTS (SELECT 1 FROM credit.accounts WHERE credit.ledger_backend(customer_key) <> '$STRESS_BACKEND')" \
		"SELECT credit.ledger_backend(customer_key), count(*), min(customer_key) FROM credit.accounts GROUP BY 1"
fi
sqlcheck "credit.reconcile() returns no rows (it counts the currency table's open orders at their positions' rates: $(q "SELECT count(*) FROM sales.fx_orders WHERE state IN ('open', 'confirmed') AND currency <> 'CNY'") open foreign-currency orders)" \
	"NOT EXISTS (SELECT 1 FROM credit.reconcile())" \
	"SELECT * FROM credit.reconcile() LIMIT 10"
sqlcheck "every exposure equals the sum of its open orders in the four order tables, held orders not counted, foreign-currency orders at their positions' rates, and of all its descendants' (computed independently)" \
	"NOT EXISTS (SELECT 1 FROM stress.exposure_mismatch)" \
	"SELECT * FROM stress.exposure_mismatch LIMIT 10"
sqlcheck "every account's exposure is its own plus its direct children's, and credit.own_exposure is its own (trees: $(q "SELECT string_agg(customer_key || '<' || parent_key, ' ' ORDER BY customer_key) FROM credit.accounts WHERE parent_key IS NOT NULL"))" \
	"NOT EXISTS (SELECT 1 FROM stress.rollup_mismatch)
	 AND EXISTS (SELECT 1 FROM credit.accounts WHERE parent_key IS NOT NULL)" \
	"SELECT * FROM stress.rollup_mismatch LIMIT 10"
# above the limit only where a rescore lowered it below the committed
# exposure, an approved release counted past it (an overrun) or a warn-table
# order passed over it, and then on hold (or stopped) with no increase since
over=$(q "SELECT count(*) FROM credit.accounts a WHERE a.status <> 'none' AND $live > credit.effective_limit(a)")
sqlcheck "no account except 'none' has exposure above its effective limit unless a rescore lowered the limit below it, an approved release counted past it, a warning let an order past it or a revaluation raised it past it, and then it is on hold or stopped and its exposure has not grown since ($over such accounts; $(q "SELECT string_agg(source || ' ' || n, ', ' ORDER BY source) FROM (SELECT source, count(*) AS n FROM stress.rescore_over GROUP BY 1) x") events)" \
	"NOT EXISTS (SELECT 1 FROM stress.unexplained_over_limit())" \
	"SELECT * FROM stress.unexplained_over_limit()"
sqlcheck "no group account is above its effective limit unless a move, a release, a warning, a revaluation or a rescore took it there and it has been on hold with no increase since (groups: $(q "SELECT string_agg(format('%s %s/%s %s', customer_key, $live, credit.effective_limit(a), status), ', ' ORDER BY customer_key) FROM credit.accounts a WHERE customer_key IN (SELECT parent_key FROM credit.accounts)"); $(q "SELECT count(*) FROM stress.rescore_over WHERE customer_key IN ('60', '61', '62', '67')") events)" \
	"NOT EXISTS (SELECT 1 FROM stress.unexplained_over_limit()
	              WHERE customer_key IN ('60', '61', '62', '67'))" \
	"SELECT * FROM stress.unexplained_over_limit() WHERE customer_key IN ('60', '61', '62', '67')"
sqlcheck "no exposure is negative" \
	"NOT EXISTS (SELECT 1 FROM credit.accounts a WHERE $live < 0)" \
	"SELECT customer_key, $live AS exposure FROM credit.accounts a WHERE $live < 0"
open_rows="SELECT 'orders' AS t, id::text AS k, cust_id, total FROM sales.orders WHERE state IN ('open', 'confirmed')
	UNION ALL SELECT 'edi_orders', order_no, cust_id, total FROM sales.edi_orders WHERE state IN ('open', 'confirmed')
	UNION ALL SELECT 'web_orders', web_id::text, cust_id, total FROM sales.web_orders WHERE state IN ('open', 'shipped')
	UNION ALL SELECT 'fx_orders', id::text, cust_id, total FROM sales.fx_orders WHERE state IN ('open', 'confirmed')"
sqlcheck "no open order (of the four tables) belongs to a customer without an account, none has a negative amount" \
	"NOT EXISTS (SELECT 1 FROM ($open_rows) o
	              WHERE o.total < 0 OR NOT EXISTS (SELECT 1 FROM credit.accounts a
	                                                WHERE a.customer_key = o.cust_id::text))" \
	"SELECT * FROM ($open_rows) o
	  WHERE o.total < 0 OR NOT EXISTS (SELECT 1 FROM credit.accounts a
	                                    WHERE a.customer_key = o.cust_id::text) LIMIT 10"
sqlcheck "detaching the four order tables leaves only the receivables ledger's exposure and attaching them again counts the same, with the currency positions as they were (undone afterwards)" \
	"stress.detach_attach_problem() IS NULL" \
	"SELECT stress.detach_attach_problem()"
# a stopped account's exposure grows only by approved releases and warnings
stop_allowed="b.exposure + coalesce((SELECT sum(h.amount) FROM credit.held_orders h
	                                   WHERE h.customer_key = '50' AND h.state = 'released'), 0)
	             + coalesce((SELECT sum(w.amount) FROM credit.overlimit_warnings w
	                          WHERE w.customer_key = '50'), 0)"
sqlcheck "the 'stop' account is still stopped and its exposure did not increase but by approved releases and warnings" \
	"(SELECT a.status = 'stop' AND $live <= $stop_allowed
	    FROM credit.accounts a JOIN stress.baseline b USING (customer_key)
	   WHERE customer_key = '50')" \
	"SELECT a.status, $live AS exposure, b.exposure AS before, $stop_allowed AS allowed
	   FROM credit.accounts a JOIN stress.baseline b USING (customer_key) WHERE customer_key = '50'"
sqlcheck "the 'none' account is still unchecked" \
	"(SELECT status = 'none' FROM credit.accounts WHERE customer_key = '49')" \
	"SELECT customer_key, status, $live AS exposure, credit_limit FROM credit.accounts a WHERE customer_key = '49'"
sqlcheck "statuses ok, watch and hold are what the rule derives from exposure and the limit" \
	"NOT EXISTS (SELECT 1 FROM credit.accounts a WHERE a.status IN ('ok', 'watch', 'hold')
	              AND a.status <> stress.derived_status($live, credit.effective_limit(a), a.watch_ratio))" \
	"SELECT customer_key, status, $live AS exposure, credit.effective_limit(a), watch_ratio
	   FROM credit.accounts a WHERE a.status IN ('ok', 'watch', 'hold')
	    AND a.status <> stress.derived_status($live, credit.effective_limit(a), a.watch_ratio)"
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
# ------------------------------------------------------ currencies
echo "# currency actions by kind: outcome count (CR008: no rate, the order"
echo "# changed nothing; revalue: ok_over left accounts above their limit, CR008"
echo "# an expired rate, refused_rr 25000 at REPEATABLE READ):"
psql_db -c "SELECT kind, string_agg(outcome || ' ' || n, ', ' ORDER BY n DESC, outcome) AS outcomes
	  FROM (SELECT kind, outcome, count(*) AS n FROM stress.events
	         WHERE kind LIKE 'fx_%' OR kind = 'revalue' GROUP BY 1, 2) x
	 GROUP BY kind ORDER BY kind" 2>&1 | sed 's/^/#   /'
fx_kinds="ARRAY['fx_insert', 'fx_increase', 'fx_decrease', 'fx_currency', 'fx_close',
	'fx_state_open', 'fx_state_confirmed', 'fx_state_closed', 'fx_state_cancelled', 'fx_move',
	'fx_delete', 'fx_bulk_close']"
fx_open() { q "SELECT count(*) FROM sales.fx_orders WHERE state IN ('open', 'confirmed') AND currency = '$1'"; }
sqlcheck "every kind of action on the currency table committed at least once ($(ev "kind LIKE 'fx_%' AND outcome LIKE 'ok%'") fx actions committed; open orders now: $(fx_open CNY) CNY, $(fx_open EUR) EUR, $(fx_open USD) USD), and it refused increases with CR001 ($(ev "kind LIKE 'fx_%' AND outcome = 'CR001'")) and CR002 ($(ev "kind LIKE 'fx_%' AND outcome = 'CR002'"))" \
	"NOT EXISTS (SELECT 1 FROM unnest($fx_kinds) k
	              WHERE NOT EXISTS (SELECT 1 FROM stress.events e WHERE e.kind = k AND e.outcome = 'ok'))
	 AND (SELECT count(DISTINCT currency) = 3 FROM sales.fx_orders
	       WHERE state IN ('open', 'confirmed') AND currency IN ('CNY', 'EUR', 'USD'))
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind LIKE 'fx_%' AND outcome = 'CR001')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind LIKE 'fx_%' AND outcome = 'CR002')" \
	"SELECT 'never committed: ' || string_agg(k, ', ') FROM unnest($fx_kinds) k
	  WHERE NOT EXISTS (SELECT 1 FROM stress.events e WHERE e.kind = k AND e.outcome = 'ok')"
sqlcheck "orders in GBP (no rate) were refused with CR008 when open ($(ev "kind LIKE 'fx_%' AND outcome = 'CR008'"): $(q "SELECT coalesce(string_agg(kind || ' ' || n, ', ' ORDER BY kind), 'none') FROM (SELECT kind, count(*) AS n FROM stress.events WHERE kind LIKE 'fx_%' AND outcome = 'CR008' GROUP BY 1) x")) and changed nothing: each order row as it was, no GBP position booked, no open GBP order ($(q "SELECT count(*) FROM sales.fx_orders WHERE currency = 'GBP'") closed or cancelled ones)" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind LIKE 'fx_%' AND outcome = 'CR008')
	 AND NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'cr008_changed')
	 AND NOT EXISTS (SELECT 1 FROM credit.currency_positions WHERE currency = 'GBP')
	 AND NOT EXISTS (SELECT 1 FROM sales.fx_orders WHERE currency = 'GBP' AND state IN ('open', 'confirmed'))" \
	"SELECT 'event' AS what, kind, detail FROM stress.events WHERE outcome = 'cr008_changed'
	 UNION ALL SELECT 'position', customer_key, rate::text FROM credit.currency_positions WHERE currency = 'GBP'
	 UNION ALL SELECT 'order', id::text, state FROM sales.fx_orders WHERE currency = 'GBP' AND state IN ('open', 'confirmed')
	 LIMIT 10"
rv() { ev "kind = 'revalue' AND outcome $1"; }
sqlcheck "credit.revalue ran while orders ran ($(q "SELECT count(*) FROM credit.revaluations") revaluations to $(q "SELECT max(as_of) FROM credit.revaluations"), $(q "SELECT count(*) FROM credit.revaluation_lines WHERE change <> 0") lines changing exposure, $(rv "= 'ok_over'") leaving accounts above their limit; $(rv "= 'CR008'") refused with CR008 for an expired rate, $(rv "= 'refused_rr'") with 25000 at REPEATABLE READ), each one recorded once, and each one's lines were the open amounts and its positions' new rates under its lock, its report the account rows" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind = 'revalue' AND outcome LIKE 'ok%')
	 AND EXISTS (SELECT 1 FROM credit.revaluation_lines WHERE change <> 0)
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind = 'revalue' AND outcome = 'CR008')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind = 'revalue' AND outcome = 'refused_rr')
	 AND NOT EXISTS (SELECT 1 FROM stress.events
	                  WHERE kind = 'revalue' AND outcome NOT IN ('ok', 'ok_over', 'CR008', 'refused_rr'))
	 AND (SELECT count(*) FROM credit.revaluations)
	     = (SELECT count(*) FROM stress.events WHERE kind = 'revalue' AND outcome LIKE 'ok%')" \
	"SELECT outcome, count(*), min(detail) FROM stress.events WHERE kind = 'revalue' GROUP BY 1
	 UNION ALL SELECT 'recorded revaluations', count(*), NULL FROM credit.revaluations"
sqlcheck "every currency position's rate is credit.rate_on(currency, its account's currency, its rate date) ($(q "SELECT count(*) FROM credit.currency_positions") positions: $(q "SELECT string_agg(currency || ' ' || n, ', ' ORDER BY currency) FROM (SELECT currency, count(*) AS n FROM credit.currency_positions GROUP BY 1) x"); $(q "SELECT count(*) FROM credit.currency_positions WHERE rate_date > credit.business_date()") at a revaluation's date)" \
	"NOT EXISTS (SELECT 1 FROM stress.currency_problems WHERE what = 'position')" \
	"SELECT customer_key, currency, problem FROM stress.currency_problems WHERE what = 'position' LIMIT 10"
sqlcheck "every revaluation line's change is open_amount x (new_rate - old_rate) at the rate of its as-of date, and each position's lines chain from its booking rate through every revaluation since to its rate now ($(q "SELECT count(*) FROM credit.revaluation_lines") lines)" \
	"NOT EXISTS (SELECT 1 FROM stress.currency_problems WHERE what = 'line')" \
	"SELECT customer_key, currency, problem FROM stress.currency_problems WHERE what = 'line' LIMIT 10"
# ------------------------------------------------------ held orders, approvals, warnings
echo "# issue 5 actions by kind: outcome count (held: the order was held; refused:"
echo "# 42501 or 55000 as expected; raced: another approver or the requester acted"
echo "# first; busy: retry, the held order was being decided or changed; step_approved:"
echo "# a step of a longer chain approved):"
psql_db -c "SELECT kind, string_agg(outcome || ' ' || n, ', ' ORDER BY n DESC, outcome) AS outcomes
	  FROM (SELECT kind, outcome, count(*) AS n FROM stress.events
	         WHERE kind ~ '^(edi_|web_)' OR kind IN ('approve', 'reject', 'withdraw', 'escalate')
	         GROUP BY 1, 2) x
	 GROUP BY kind ORDER BY kind" 2>&1 | sed 's/^/#   /'
holds() { q "SELECT count(*) FROM credit.held_orders WHERE orders = 'sales.edi_orders'::regclass AND $1"; }
sqlcheck "the hold table held orders over the limit ($(ev "kind LIKE 'edi_%' AND outcome = 'held'"): $(q "SELECT coalesce(string_agg(k || ' ' || n, ', ' ORDER BY n DESC), 'none') FROM (SELECT kind AS k, count(*) AS n FROM stress.events WHERE outcome = 'held' GROUP BY 1) x")), and let the orders that fit pass ($(ev "kind LIKE 'edi_%' AND kind NOT LIKE 'edi_held_%' AND outcome = 'ok'"))" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind = 'edi_insert' AND outcome = 'held')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind = 'edi_increase' AND outcome = 'held')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE kind = 'edi_insert' AND outcome = 'ok')"
hold_kinds="ARRAY['edi_insert', 'edi_increase', 'edi_decrease', 'edi_state_open', 'edi_state_confirmed',
	'edi_state_closed', 'edi_state_cancelled', 'edi_move', 'edi_delete', 'web_insert', 'web_increase',
	'web_void']"
sqlcheck "every kind of action on the hold and warn tables committed at least once" \
	"NOT EXISTS (SELECT 1 FROM unnest($hold_kinds) k
	              WHERE NOT EXISTS (SELECT 1 FROM stress.events e
	                                 WHERE e.kind = k AND e.outcome IN ('ok', 'held', 'warned')))" \
	"SELECT 'never committed: ' || string_agg(k, ', ') FROM unnest($hold_kinds) k
	  WHERE NOT EXISTS (SELECT 1 FROM stress.events e
	                     WHERE e.kind = k AND e.outcome IN ('ok', 'held', 'warned'))"
sqlcheck "the hold and warn tables never refused an order with CR001 or CR002, and no action there or in approvals failed unexpectedly" \
	"NOT EXISTS (SELECT 1 FROM stress.events
	              WHERE (kind ~ '^(edi_|web_)' AND outcome IN ('CR001', 'CR002'))
	                 OR outcome LIKE 'error:%' OR outcome = 'wrong_state')" \
	"SELECT kind, outcome, count(*), min(detail) FROM stress.events
	  WHERE (kind ~ '^(edi_|web_)' AND outcome IN ('CR001', 'CR002'))
	     OR outcome LIKE 'error:%' OR outcome = 'wrong_state'
	  GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20"
sqlcheck "every hold agrees with its order row and its application: held ($(holds "state = 'held'") now) in credit_hold with its amount and a draft or pending application, released ($(holds "state = 'released'")) confirmed and approved, rejected ($(holds "state = 'rejected'")) credit_rejected and rejected or withdrawn, cancelled ($(holds "state = 'cancelled'")) moved by the application; no credit_hold row without its hold" \
	"NOT EXISTS (SELECT 1 FROM stress.hold_problems)" \
	"SELECT * FROM stress.hold_problems LIMIT 15"
sqlcheck "changes the application made to held orders ($(ev "kind LIKE 'edi_held_%' AND outcome <> 'none'"): $(q "SELECT coalesce(string_agg(outcome || ' ' || n, ', ' ORDER BY outcome), 'none') FROM (SELECT outcome, count(*) AS n FROM stress.events WHERE kind LIKE 'edi_held_%' GROUP BY 1) x")) were refused, ended the hold, or were told to retry while it was decided" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind LIKE 'edi_held_%' AND outcome <> 'none')
	 AND NOT EXISTS (SELECT 1 FROM stress.events
	                  WHERE kind LIKE 'edi_held_%' AND outcome NOT IN ('ok', 'held', 'refused', 'busy', 'none',
	                                                                   'undone', 'serialization', 'CR003'))" \
	"SELECT kind, outcome, count(*), min(detail) FROM stress.events WHERE kind LIKE 'edi_held_%'
	  GROUP BY 1, 2 ORDER BY 1, 2"
sqlcheck "blocked amounts (credit.blocked_orders) are the totals of the held rows, per customer" \
	"NOT EXISTS (SELECT 1 FROM credit.blocked_orders b
	              FULL JOIN (SELECT cust_id::text AS customer_key, count(*) AS n, sum(total) AS total
	                           FROM sales.edi_orders WHERE state = 'credit_hold' GROUP BY 1) o
	                ON o.customer_key = b.customer_key
	             WHERE b.held_orders IS DISTINCT FROM o.n OR b.blocked_amount IS DISTINCT FROM o.total)" \
	"SELECT * FROM credit.blocked_orders b
	   FULL JOIN (SELECT cust_id::text AS customer_key, count(*) AS n, sum(total) AS total
	                FROM sales.edi_orders WHERE state = 'credit_hold' GROUP BY 1) o
	     ON o.customer_key = b.customer_key
	  WHERE b.held_orders IS DISTINCT FROM o.n OR b.blocked_amount IS DISTINCT FROM o.total LIMIT 10"
app() { q "SELECT count(*) FROM credit.applications WHERE $1"; }
chain_len="(SELECT count(*) FROM credit.application_steps s WHERE s.application_id = a.application_id)"
sqlcheck "approvers released held orders ($(ev "outcome = 'released'")), through chains of two ($(app "state = 'approved' AND (SELECT count(*) FROM credit.application_steps s WHERE s.application_id = applications.application_id) = 2") approved) and three steps ($(app "state = 'approved' AND (SELECT count(*) FROM credit.application_steps s WHERE s.application_id = applications.application_id) = 3")), rejected some ($(ev "outcome = 'rejected'")), and requesters withdrew some ($(ev "outcome = 'withdrawn'"))" \
	"EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'released')
	 AND EXISTS (SELECT 1 FROM credit.applications a WHERE a.state = 'approved' AND $chain_len >= 2)
	 AND EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'rejected')
	 AND EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'withdrawn')"
sqlcheck "no role was wrongly allowed or refused: every approval, rejection and withdrawal by a role entitled to it, every 42501 for a role that was not ($(ev "outcome = 'refused' AND kind IN ('approve', 'reject', 'withdraw')"), $(ev "outcome = 'refused' AND detail LIKE '%its own application%'") on its own application, $(ev "outcome = 'refused' AND detail LIKE '%already acted%'") a second time), every 55000 a lost race ($(ev "outcome = 'raced'"))" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome IN ('wrongly_allowed', 'wrongly_refused'))
	 AND EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'refused' AND detail LIKE '%its own application%')" \
	"SELECT kind, outcome, detail FROM stress.events
	  WHERE outcome IN ('wrongly_allowed', 'wrongly_refused') LIMIT 10"
sqlcheck "every application's steps agree with its state and its rule, each decided step by a distinct role entitled to it that is not the requester ($(q "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) AS n FROM credit.applications GROUP BY 1) x"); $(q "SELECT count(*) FROM credit.application_steps WHERE escalations > 0") steps escalated)" \
	"NOT EXISTS (SELECT 1 FROM stress.approval_problems)" \
	"SELECT * FROM stress.approval_problems LIMIT 15"
sqlcheck "every release counted the held amount, and its recorded overrun is the part above the limit after it (total overrun $(q "SELECT coalesce(sum(overrun), 0) FROM credit.held_orders WHERE state = 'released'"))" \
	"NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome LIKE 'release_mismatch%'
	                                           OR outcome LIKE 'overrun_mismatch%'
	                                           OR outcome LIKE 'reject_mismatch%')" \
	"SELECT kind, outcome, detail FROM stress.events
	  WHERE outcome LIKE 'release_mismatch%' OR outcome LIKE 'overrun_mismatch%'
	     OR outcome LIKE 'reject_mismatch%' LIMIT 10"
sqlcheck "the warn table let orders pass over the limit ($(ev "kind LIKE 'web_%' AND outcome = 'warned'"), $(q "SELECT count(*) FROM credit.overlimit_warnings WHERE refusal_message LIKE 'credit limit of group %'") over a group's, whose group was then above its limit), each warning records the exposure it left, the limit in force and its refusal, and no other path recorded one ($(q "SELECT count(*) FROM credit.overlimit_warnings") warnings)" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind LIKE 'web_%' AND outcome = 'warned')
	 AND NOT EXISTS (SELECT 1 FROM stress.events WHERE outcome = 'warning_mismatch')
	 AND (SELECT count(*) FROM stress.events WHERE outcome IN ('warned', 'warning_mismatch'))
	     = (SELECT count(*) FROM credit.overlimit_warnings)
	 AND NOT EXISTS (SELECT 1 FROM credit.overlimit_warnings w
	                  WHERE w.refusal_code NOT IN ('CR001', 'CR002')
	                     OR (w.refusal_code = 'CR001' AND w.exposure_after <= w.effective_limit
	                         AND w.refusal_message NOT LIKE 'credit limit of group %'))" \
	"SELECT 'event' AS what, kind, outcome, detail FROM stress.events WHERE outcome = 'warning_mismatch'
	 UNION ALL SELECT 'counts', (SELECT count(*) FROM stress.events WHERE outcome IN ('warned', 'warning_mismatch'))::text,
	                  (SELECT count(*) FROM credit.overlimit_warnings)::text, NULL LIMIT 10"
sqlcheck "credit.escalate_overdue moved overdue steps while approvers acted ($(q "SELECT coalesce(sum(split_part(detail, ' ', 1)::int), 0) FROM stress.events WHERE kind = 'escalate' AND outcome = 'ok'") steps in $(ev "kind = 'escalate'") runs)" \
	"EXISTS (SELECT 1 FROM stress.events WHERE kind = 'escalate' AND outcome = 'ok')"
sqlcheck "credit.verify_audit() returns no rows ($(q "SELECT count(*) FROM credit.audit_log") audit rows in $(q "SELECT count(*) FROM credit.audit_heads") chains)" \
	"NOT EXISTS (SELECT 1 FROM credit.verify_audit())" \
	"SELECT * FROM credit.verify_audit() LIMIT 10"
sqlcheck "every audit chain is numbered 1..n and ends at its head's hash, and every decided step (by its role), application state and hold state is on the trail" \
	"NOT EXISTS (SELECT 1 FROM stress.audit_problems)" \
	"SELECT * FROM stress.audit_problems LIMIT 15"

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
	(SELECT sum($live) FROM credit.accounts a),
	(SELECT string_agg(format('%s %s/%s %s', customer_key, $live, credit.effective_limit(a), status), ', ' ORDER BY customer_key)
	   FROM credit.accounts a WHERE customer_key IN ('1', '2', '3', '4')))")"
echo "# $(q "SELECT format('holds: %s held orders (%s released with %s approved overrun, %s rejected, %s cancelled, %s still held, blocked %s); applications: %s; approval steps acted on: %s; warnings: %s',
	(SELECT count(*) FROM credit.held_orders),
	(SELECT count(*) FROM credit.held_orders WHERE state = 'released'),
	(SELECT coalesce(sum(overrun), 0) FROM credit.held_orders WHERE state = 'released'),
	(SELECT count(*) FROM credit.held_orders WHERE state = 'rejected'),
	(SELECT count(*) FROM credit.held_orders WHERE state = 'cancelled'),
	(SELECT count(*) FROM credit.held_orders WHERE state = 'held'),
	(SELECT coalesce(sum(blocked_amount), 0) FROM credit.blocked_orders),
	(SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
	   FROM (SELECT state, count(*) AS n FROM credit.applications GROUP BY 1) x),
	(SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
	   FROM (SELECT state, count(*) AS n FROM credit.application_steps
	          WHERE acted_by IS NOT NULL GROUP BY 1) y),
	(SELECT count(*) FROM credit.overlimit_warnings))")"
echo "# stress.sh: $(($(date +%s) - script_start)) s"
echo "1..$n"
[ "$nfailed" -eq 0 ]
