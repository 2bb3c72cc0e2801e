#!/usr/bin/env bash
# bench/run.sh: `make bench`.  Throughput of one INSERT of one open order per
# transaction (pgbench -M prepared) on the same orders table in three
# variants, each in its own database of one throwaway cluster:
#   bare     no trigger
#   plpgsql  the PL/pgSQL reference a DBA would write (bench/plpgsql_reference.sql)
#   credit   credit's C trigger, attached with credit.attach_orders
# Scenarios: "distinct" (customer random(1, 10000)), "hot" (every order
# for one customer) and "group" (customer random among 100 more, 10001 to
# 10100, which in the credit variant are the members of one group account,
# G1: every order also changes G1's row; bare and plpgsql run the same
# orders without a group); clients -c 1 and -c 8 (-j 2).  The variants run
# interleaved, BENCH_ROUNDS rounds (the order rotating each round), and the
# table shows the median TPS of each.  After every run the variant's
# exposure is reconciled against its orders (credit.reconcile() must be
# empty).  The machine is shared: read the ratios, not the absolute TPS.
#
# Environment:
#   BENCH_SECONDS    duration of one pgbench run (default 15)
#   BENCH_ROUNDS     rounds of the interleaved variants (default 3; also the
#                    scorecard part's rounds)
#   BENCH_PORT       port of the throwaway cluster (default 5499; the next free
#                    one is taken when it is busy)
#   BENCH_CLIENTS    client counts (default "1 8")
#   BENCH_SCENARIOS  scenarios (default "distinct hot group")
#   BENCH_PARTS      parts to run (default "orders receivables scorecard
#                    reporting"); receivables is bench/receivables.sh,
#                    scorecard bench/scorecard.sh, reporting
#                    bench/reporting.sh, shared bench/shared_ledger.sh
#                    (each its own cluster, see there)
#   BENCH_DIR        where the throwaway clusters are made (bench/cluster.sh)
#   BENCH_PGBIN      PostgreSQL bin directory to run (default: the system's
#                    PostgreSQL 15); with BENCH_NO_BUILD=1, to bench an
#                    extension installed into a private tree
#   BENCH_NO_BUILD   1: do not build and install (test/setup.sh build)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_SECONDS:-15}
ROUNDS=${BENCH_ROUNDS:-3}
PORT=${BENCH_PORT:-5499}
CLIENTS_LIST=${BENCH_CLIENTS:-"1 8"}
SCENARIOS=${BENCH_SCENARIOS:-"distinct hot group"}
PARTS=${BENCH_PARTS:-"orders receivables scorecard reporting shared"}
VARIANTS=(bare plpgsql credit)
CUSTOMERS=10000
GROUP_MEMBERS=100		# scenario group: customers CUSTOMERS+1 .. CUSTOMERS+GROUP_MEMBERS
GROUP_KEY=G1			# their parent account (credit variant)
CREDIT_LIMIT=1e12		# far above what a run can add (hot customer: < 1e9), so no order is refused

for v in DURATION ROUNDS PORT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done

for part in $PARTS; do
	case $part in
		orders|receivables|scorecard|reporting|shared) ;;
		*) echo "bench: unknown part $part in BENCH_PARTS (orders, receivables, scorecard, reporting, shared)" >&2; exit 2 ;;
	esac
done

# the extension built and installed from this tree
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	bash test/setup.sh build
fi

# the parts with clusters of their own, after the order part (if any)
other_parts() {
	if [[ " $PARTS " == *" receivables "* ]]; then
		BENCH_NO_BUILD=1 bash bench/receivables.sh
	fi
	if [[ " $PARTS " == *" scorecard "* ]]; then
		BENCH_NO_BUILD=1 bash bench/scorecard.sh
	fi
	if [[ " $PARTS " == *" reporting "* ]]; then
		BENCH_NO_BUILD=1 bash bench/reporting.sh
	fi
	if [[ " $PARTS " == *" shared "* ]]; then
		BENCH_NO_BUILD=1 bash bench/shared_ledger.sh
	fi
}

if [[ " $PARTS " != *" orders "* ]]; then
	other_parts
	exit 0
fi

. bench/cluster.sh
PGBIN=${BENCH_PGBIN:-$PGBIN}
start_cluster bench "$PORT" 40 256MB

CONN=(-h "$WORK" -p "$PORT" -U postgres)
psql_db() {	# psql_db DB [psql args...]
	local db=$1
	shift
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d "$db" "$@"
}
scalar() {	# scalar DB SQL
	psql_db "$1" -At -c "$2"
}

# ---------------------------------------------------------------- set-up
for v in "${VARIANTS[@]}"; do
	psql_db postgres -c "CREATE DATABASE bench_$v"
	psql_db "bench_$v" -f bench/orders.sql
done

psql_db bench_plpgsql -f bench/plpgsql_reference.sql
psql_db bench_plpgsql -c "INSERT INTO ref.accounts (customer_id, customer_name, credit_limit)
	SELECT g, 'customer ' || g, $CREDIT_LIMIT FROM generate_series(1, $CUSTOMERS + $GROUP_MEMBERS) g"

psql_db bench_credit >/dev/null <<EOF
CREATE EXTENSION credit;
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
	SELECT g::text, 'customer ' || g, $CREDIT_LIMIT FROM generate_series(1, $CUSTOMERS) g;
-- scenario group: one parent account above $GROUP_MEMBERS members
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
	VALUES ('$GROUP_KEY', 'group of customers $((CUSTOMERS + 1)) to $((CUSTOMERS + GROUP_MEMBERS))', $CREDIT_LIMIT);
INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, parent_key)
	SELECT g::text, 'member ' || g, $CREDIT_LIMIT, '$GROUP_KEY'
	  FROM generate_series($CUSTOMERS + 1, $CUSTOMERS + $GROUP_MEMBERS) g;
SELECT credit.attach_orders('public.orders', customer_column => 'customer_id',
							amount_column => 'amount', status_column => 'status',
							open_statuses => '{open,confirmed}');
EOF

accounts_table() {
	case $1 in
		plpgsql) echo ref.accounts ;;
		credit) echo credit.accounts ;;
		*) echo "" ;;
	esac
}

# exposure kept by the variant equals what its orders say (nothing for bare)
reconcile_count() {
	case $1 in
		plpgsql) scalar bench_plpgsql "SELECT count(*) FROM ref.reconcile()" ;;
		credit) scalar bench_credit "SELECT count(*) FROM credit.reconcile()" ;;
		*) echo 0 ;;
	esac
}

# ---------------------------------------------------------------- runs
declare -A TPS=() TPS_ROUND=()

run_one() {	# run_one SCENARIO CLIENTS VARIANT ROUND
	local scen=$1 c=$2 v=$3 round=$4
	local db=bench_$v ncust base=0 jobs out tps processed failed norders bad acct group

	case $scen in
		distinct) ncust=$CUSTOMERS ;;
		hot) ncust=1 ;;
		group) ncust=$GROUP_MEMBERS base=$CUSTOMERS ;;
		*) echo "bench: unknown scenario $scen" >&2; exit 2 ;;
	esac
	jobs=$(( c >= 2 ? 2 : 1 ))

	# the same starting point for every run: no orders, no dead account rows,
	# no pending checkpoint work
	acct=$(accounts_table "$v")
	psql_db "$db" -c "TRUNCATE orders"
	if [ -n "$acct" ]; then
		psql_db "$db" -c "VACUUM $acct"
	fi
	psql_db "$db" -c "VACUUM orders" -c "CHECKPOINT"

	if ! out=$("$PGBIN/pgbench" -n -M prepared -c "$c" -j "$jobs" -T "$DURATION" \
			-D "ncust=$ncust" -D "base=$base" -f bench/order.pgbench "${CONN[@]}" "$db" 2>&1); then
		echo "$out" >&2
		echo "bench: pgbench failed ($scen, -c $c, $v)" >&2
		exit 1
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -z "$tps" ] || [ -z "$processed" ] || [ "${failed:-0}" != 0 ]; then
		echo "$out" >&2
		echo "bench: unexpected pgbench result ($scen, -c $c, $v)" >&2
		exit 1
	fi

	# sanity: every transaction left its order, and the exposure matches
	norders=$(scalar "$db" "SELECT count(*) FROM orders")
	bad=$(reconcile_count "$v")
	if [ "$norders" != "$processed" ] || [ "$bad" != 0 ]; then
		echo "bench: sanity check failed ($scen, -c $c, $v): $processed transactions," \
			 "$norders orders, $bad accounts differ on reconcile" >&2
		exit 1
	fi
	# the group's account carries every order of the run (credit.reconcile()
	# rolls up too; this says it without it)
	if [ "$scen" = group ] && [ "$v" = credit ]; then
		group=$(scalar "$db" "SELECT (SELECT exposure FROM credit.accounts WHERE customer_key = '$GROUP_KEY')
			= (SELECT sum(amount) FROM orders WHERE customer_id > $CUSTOMERS)")
		if [ "$group" != t ]; then
			echo "bench: sanity check failed ($scen, -c $c, $v): the exposure of $GROUP_KEY" \
				 "is not the sum of its members' orders" >&2
			exit 1
		fi
	fi

	TPS[$scen,$c,$v]+="$tps "
	TPS_ROUND[$scen,$c,$v,$round]=$tps
	printf '  round %d  %-8s -c %-2d %-8s %9.1f tps  (%s orders%s)\n' "$round" "$scen" "$c" "$v" \
		"$tps" "$processed" "$([ "$v" = bare ] && echo "" || echo ", reconcile empty")"
}

median() {
	tr ' ' '\n' | sed '/^$/d' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

nruns=0
for _ in $SCENARIOS; do for _ in $CLIENTS_LIST; do nruns=$((nruns + ${#VARIANTS[@]} * ROUNDS)); done; done

echo
echo "credit benchmark: pgbench -M prepared, one INSERT of one open order per transaction"
echo "  server:    $(scalar postgres "SELECT version()" | cut -d, -f1)"
echo "  settings:  fsync=$(scalar postgres "SHOW fsync")," \
	 "synchronous_commit=$(scalar postgres "SHOW synchronous_commit")," \
	 "wal_sync_method=$(scalar postgres "SHOW wal_sync_method")," \
	 "full_page_writes=$(scalar postgres "SHOW full_page_writes")," \
	 "shared_buffers=$(scalar postgres "SHOW shared_buffers"), autovacuum=off (vacuum between runs)"
echo "  machine:   $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  runs:      $nruns x ${DURATION}s ($ROUNDS rounds, variants interleaved), $CUSTOMERS customers" \
	 "(group: $GROUP_MEMBERS more, under one group account in the credit variant)"
echo

for ((round = 1; round <= ROUNDS; round++)); do
	# rotate the order of the variants each round
	order=()
	for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
		order+=("${VARIANTS[$(( (i + round - 1) % ${#VARIANTS[@]} ))]}")
	done
	for scen in $SCENARIOS; do
		for c in $CLIENTS_LIST; do
			for v in "${order[@]}"; do
				run_one "$scen" "$c" "$v" "$round"
			done
		done
	done
done

# ---------------------------------------------------------------- report
echo
echo "median TPS of $ROUNDS runs of ${DURATION}s each (fsync=on, synchronous_commit=$(scalar postgres "SHOW synchronous_commit"))"
echo
printf '%-9s %7s %10s %10s %10s %12s %15s\n' scenario clients bare plpgsql credit credit/bare credit/plpgsql
declare -A MED=()
for scen in $SCENARIOS; do
	for c in $CLIENTS_LIST; do
		for v in "${VARIANTS[@]}"; do
			MED[$scen,$c,$v]=$(median <<<"${TPS[$scen,$c,$v]}")
		done
		awk -v s="$scen" -v c="$c" -v b="${MED[$scen,$c,bare]}" -v p="${MED[$scen,$c,plpgsql]}" \
			-v r="${MED[$scen,$c,credit]}" \
			'BEGIN { printf "%-9s %7s %10.0f %10.0f %10.0f %12.2f %15.2f\n", s, c, b, p, r, r / b, r / p }'
	done
done
echo
echo "credit.reconcile() (and the reference's own reconcile) was empty after every run."

# The same ratios taken within each round (the three runs of a round are
# adjacent in time) and then the median over the rounds: steadier than the
# ratio of the medians when the machine's load drifts.
echo
echo "median over the rounds of the per-round ratios:"
printf '%-9s %7s %12s %15s\n' scenario clients credit/bare credit/plpgsql
for scen in $SCENARIOS; do
	for c in $CLIENTS_LIST; do
		rb="" rp=""
		for ((round = 1; round <= ROUNDS; round++)); do
			rb+="$(awk -v r="${TPS_ROUND[$scen,$c,credit,$round]}" -v b="${TPS_ROUND[$scen,$c,bare,$round]}" 'BEGIN { print r / b }') "
			rp+="$(awk -v r="${TPS_ROUND[$scen,$c,credit,$round]}" -v p="${TPS_ROUND[$scen,$c,plpgsql,$round]}" 'BEGIN { print r / p }') "
		done
		printf '%-9s %7s %12.2f %15.2f\n' "$scen" "$c" "$(median <<<"$rb")" "$(median <<<"$rp")"
	done
done
echo

# a hot group: every order also changes the group's row, so its members'
# orders queue on it (as the hot customer's do on its own row)
if [[ " $SCENARIOS " == *" group "* ]]; then
	for c in $CLIENTS_LIST; do
		if [[ " $SCENARIOS " == *" distinct "* ]]; then
			awk -v c="$c" -v g="${MED[group,$c,credit]}" -v d="${MED[distinct,$c,credit]}" \
				-v b="${MED[group,$c,bare]}" \
				'BEGIN { printf "group -c %s: credit %.0f tps = %.2f x credit distinct, %.2f x bare\n", c, g, g / d, g / b }'
		else
			awk -v c="$c" -v g="${MED[group,$c,credit]}" -v b="${MED[group,$c,bare]}" \
				'BEGIN { printf "group -c %s: credit %.0f tps = %.2f x bare\n", c, g, g / b }'
		fi
	done
	echo
fi
if [[ " $SCENARIOS " == *" distinct "* && " $CLIENTS_LIST " == *" 8 "* ]]; then
	awk -v b="${MED[distinct,8,bare]}" -v p="${MED[distinct,8,plpgsql]}" -v r="${MED[distinct,8,credit]}" 'BEGIN {
		printf "targets (distinct customers, -c 8, ratio of the medians): credit/bare %.2f >= 0.80: %s; credit/plpgsql %.2f >= 1.05: %s\n",
			r / b, (r / b >= 0.80 ? "met" : "MISSED"), r / p, (r / p >= 1.05 ? "met" : "MISSED")
	}'
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare ratios, not absolute TPS)"

# ---------------------------------------------------------------- receivables, scorecard, reporting
if [[ " $PARTS " == *" receivables "* || " $PARTS " == *" scorecard "* || " $PARTS " == *" reporting "* ]]; then
	as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
	started=no
	other_parts
fi
