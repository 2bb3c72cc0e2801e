#!/usr/bin/env bash
# bench/shared_ledger.sh: make bench part "shared": the order benchmark
# (bench/order.pgbench, -M prepared, one INSERT per transaction) with both
# exposure backends side by side in one run, in a throwaway cluster of its
# own (bench/cluster.sh, fsync on).  Each round: the server with credit in
# shared_preload_libraries runs bare, the PL/pgSQL reference and credit
# (shared-memory ledger); restarted without it, credit again (row locks).
# Scenarios distinct (10,000 customers), hot (one), group (100 members of
# one group account); -c 8.  After every run credit.reconcile() must be
# empty.  Prints the median TPS and the ratios the README records.
#
# Environment: BENCH_SECONDS (10), BENCH_ROUNDS (2), BENCH_PORT (5520),
# BENCH_NO_BUILD=1 (use the installed extension).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-2}
CUSTOMERS=10000
GROUP_MEMBERS=100
LIMIT=1e12
[ "${BENCH_NO_BUILD:-0}" = 1 ] || bash test/setup.sh build
. bench/cluster.sh
start_cluster shared "${BENCH_PORT:-5520}" 40 256MB
CONN=(-h "$WORK" -p "$PORT" -U postgres)
sql() { local db=$1; shift; "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" -d "$db" "$@"; }
scalar() { sql "$1" -At -c "$2"; }
restart() {	# restart with (1) or without (0) the preload
	as_postgres sed -i '/^shared_preload_libraries/d' "$DATA/postgresql.conf"
	as_postgres sed -i '/^credit.shared_ledger_accounts/d' "$DATA/postgresql.conf"
	# room for every account of the run (10,101): a database is loaded in one pass
	[ "$1" = 1 ] && printf "shared_preload_libraries = 'credit'\ncredit.shared_ledger_accounts = 20000\n" |
		as_postgres tee -a "$DATA/postgresql.conf" >/dev/null
	as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 restart >/dev/null
}

for v in bare plpgsql credit; do
	sql postgres -c "CREATE DATABASE bench_$v"
	sql "bench_$v" -f bench/orders.sql
done
sql bench_plpgsql -f bench/plpgsql_reference.sql
sql bench_plpgsql -c "INSERT INTO ref.accounts (customer_id, customer_name, credit_limit)
	SELECT g, 'customer ' || g, $LIMIT FROM generate_series(1, $CUSTOMERS + $GROUP_MEMBERS) g"
sql bench_credit >/dev/null <<SQL
CREATE EXTENSION credit;
INSERT INTO credit.accounts (customer_key, credit_limit) SELECT g::text, $LIMIT FROM generate_series(1, $CUSTOMERS) g;
INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('G1', $LIMIT);
INSERT INTO credit.accounts (customer_key, credit_limit, parent_key)
	SELECT g::text, $LIMIT, 'G1' FROM generate_series($CUSTOMERS + 1, $CUSTOMERS + $GROUP_MEMBERS) g;
SELECT credit.attach_orders('public.orders', 'customer_id', 'amount', 'status', '{open,confirmed}');
SQL

declare -A TPS=()
run() {	# run SCENARIO VARIANT DB
	local scen=$1 v=$2 db=$3 ncust base=0 out tps
	case $scen in distinct) ncust=$CUSTOMERS ;; hot) ncust=1 ;; group) ncust=$GROUP_MEMBERS base=$CUSTOMERS ;; esac
	sql "$db" -c "TRUNCATE orders" -c "VACUUM orders" -c "CHECKPOINT"
	if [ "$db" = bench_credit ]; then
		sql "$db" -c "VACUUM credit.accounts"
		# load every account now (its first use rebuilds it), not during the run
		scalar "$db" "SELECT count(credit.live_exposure(customer_key, exposure)) FROM credit.accounts" >/dev/null
	fi
	out=$("$PGBIN/pgbench" -n -M prepared -c 8 -j 2 -T "$DURATION" -D "ncust=$ncust" -D "base=$base" \
		-f bench/order.pgbench "${CONN[@]}" "$db" 2>&1)
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
	[ -n "$tps" ] || { echo "$out" >&2; exit 1; }
	if [ "$db" = bench_credit ] && [ "$(scalar "$db" "SELECT count(*) FROM credit.reconcile()")" != 0 ]; then
		echo "bench: credit.reconcile() is not empty after $scen/$v" >&2; exit 1
	fi
	TPS[$scen,$v]+="$tps "
}

for round in $(seq "$ROUNDS"); do
	restart 1
	[ "$(scalar bench_credit "SELECT credit.ledger_backend('1')")" = "shared memory" ] || { echo "bench: the preload is not active" >&2; exit 1; }
	for scen in distinct hot group; do
		run "$scen" bare bench_bare
		run "$scen" plpgsql bench_plpgsql
		run "$scen" shared bench_credit
	done
	restart 0
	[ "$(scalar bench_credit "SELECT credit.ledger_backend('1')")" = "row lock" ] || { echo "bench: the preload is still active" >&2; exit 1; }
	# the stored column was not written under the shared ledger: repair it (README)
	scalar bench_credit "SELECT count(*) FROM credit.reconcile(repair => true)" >/dev/null
	for scen in distinct hot group; do
		run "$scen" row bench_credit
	done
done

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "shared-memory ledger benchmark: pgbench -M prepared -c 8, $ROUNDS rounds of $DURATION s, medians (TPS)"
printf "%-9s %9s %9s %9s %9s   %s\n" scenario bare plpgsql shared row "shared/bare shared/plpgsql row/bare"
for scen in distinct hot group; do
	b=$(median "${TPS[$scen,bare]}"); p=$(median "${TPS[$scen,plpgsql]}")
	s=$(median "${TPS[$scen,shared]}"); r=$(median "${TPS[$scen,row]}")
	awk -v n="$scen" -v b="$b" -v p="$p" -v s="$s" -v r="$r" \
		'BEGIN { printf "%-9s %9.0f %9.0f %9.0f %9.0f   %.3f %.2f %.3f\n", n, b, p, s, r, s/b, s/p, r/b }'
done
# three decimals: a ratio of 0.895 is not shown as 0.90
echo "targets (-c 8): distinct shared/bare >= 0.90; hot shared/bare >= 0.80 and shared/plpgsql >= 4"
awk -v d="$(median "${TPS[distinct,shared]}")" -v db="$(median "${TPS[distinct,bare]}")" \
	-v h="$(median "${TPS[hot,shared]}")" -v hb="$(median "${TPS[hot,bare]}")" -v hp="$(median "${TPS[hot,plpgsql]}")" \
	'BEGIN { printf "targets met in this run: distinct %s, hot %s\n", (d/db >= 0.90) ? "yes" : "no",
	         (h/hb >= 0.80 && h/hp >= 4) ? "yes" : "no" }'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
