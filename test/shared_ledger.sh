#!/usr/bin/env bash
# test/shared_ledger.sh: the shared-memory exposure ledger (src/shared_ledger.c)
# in a throwaway cluster of its own with credit in shared_preload_libraries
# (initdb/pg_ctl as postgres, via bench/cluster.sh): accounts are served by
# it; PREPARE is refused; a savepoint's rollback releases its reservation;
# 8 clients ordering at their limits, with savepoints and aborted orders,
# never see an exposure above the limit, never deadlock, and leave
# credit.reconcile() empty; then a crash (pg_ctl stop -m immediate in the
# middle of such a run) and a restart: every account is rebuilt from the
# order table, reconcile() is empty, no account is over its limit, and the
# limit is still enforced.  "ok N - ..." lines; exit 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/cluster.sh
n=0
nfailed=0
check() {	# description, command...
	local desc=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $desc"; else echo "not ok $n - $desc"; nfailed=$((nfailed + 1)); fi
}

start_cluster shared-ledger 5600 40 64MB
echo "shared_preload_libraries = 'credit'" | as_postgres tee -a "$DATA/postgresql.conf" >/dev/null
echo "max_prepared_transactions = 5" | as_postgres tee -a "$DATA/postgresql.conf" >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 restart >/dev/null
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
q() { psql -X -A -t -q -d credit_sl -c "$1" 2>&1; }

createdb credit_sl
psql -X -q -d credit_sl -f test/shared_ledger/setup.sql >/dev/null
check "with the preload, accounts are served by the shared-memory ledger" \
	test "$(q "SELECT credit.ledger_backend('1')")" = "shared memory"
check "PREPARE TRANSACTION of a transaction that changed exposure is refused (0A000)" \
	bash -c "psql -X -q -d credit_sl -v VERBOSITY=verbose -c \"BEGIN; INSERT INTO sl.orders (customer_id, amount) VALUES (1, 10); PREPARE TRANSACTION 'x';\" 2>&1 | grep -q 0A000"
check "the refused PREPARE left nothing: exposure 0, no reservation" \
	test "$(q "SELECT committed_exposure || '/' || pending FROM credit.shared_ledger() WHERE customer_key = '1'")" = "0/0"
check "a savepoint's rollback releases its reservation, the commit folds the rest (100)" \
	test "$(q "BEGIN; INSERT INTO sl.orders (customer_id, amount) VALUES (1, 100); SAVEPOINT s; INSERT INTO sl.orders (customer_id, amount) VALUES (1, 4000); ROLLBACK TO s; COMMIT; SELECT committed_exposure FROM credit.shared_ledger() WHERE customer_key = '1'" | tail -1)" = "100.00"
check "an order past the limit is refused with CR001" \
	bash -c "psql -X -q -d credit_sl -v VERBOSITY=verbose -c 'INSERT INTO sl.orders (customer_id, amount) VALUES (1, 4901)' 2>&1 | grep -q CR001"

: >"$WORK/server.log.mark"
"$PGBIN/pgbench" -n -c 8 -j 2 -T "${SHARED_LEDGER_SECONDS:-10}" \
	-f test/shared_ledger/orders.pgbench@10 -f test/shared_ledger/aborted.pgbench@3 credit_sl \
	>"$WORK/pgbench.out" 2>&1
check "8 clients at their limits: $(q "SELECT count(*) FROM sl.samples") in-transaction samples, none above the limit" \
	test "$(q "SELECT count(*) FROM sl.samples WHERE exposure > credit_limit")" = "0"
check "refusals happened ($(q "SELECT count(*) FROM sl.refusals") CR001), no transaction failed" \
	bash -c "test $(q "SELECT count(*) FROM sl.refusals") -gt 0 && grep -q 'number of failed transactions: 0 ' '$WORK/pgbench.out'"
check "no deadlock" bash -c "! grep -q 'deadlock detected' '$WORK/server.log'"
check "credit.reconcile() is empty and no reservation is left" \
	test "$(q "SELECT (SELECT count(*) FROM credit.reconcile()) + (SELECT count(*) FROM credit.shared_ledger() WHERE pending <> 0)")" = "0"
check "the ledger's total equals the open orders'" \
	test "$(q "SELECT (SELECT sum(committed_exposure) FROM credit.shared_ledger()) = (SELECT sum(amount) FROM sl.orders WHERE status = 'open')")" = "t"

# the crash
"$PGBIN/pgbench" -n -c 8 -j 2 -T 8 -f test/shared_ledger/orders.pgbench@10 \
	-f test/shared_ledger/aborted.pgbench@3 credit_sl >"$WORK/crash.out" 2>&1 &
sleep 4
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null
wait
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start >/dev/null
check "after pg_ctl stop -m immediate mid-run and a restart the ledger starts empty" \
	test "$(q "SELECT count(*) FROM credit.shared_ledger()")" = "0"
check "credit.reconcile() finds no drift (every account rebuilt from the order table)" \
	test "$(q "SELECT count(*) FROM credit.reconcile()")" = "0"
check "no account is over its limit after the crash" \
	test "$(q "SELECT count(*) FROM credit.accounts a WHERE credit.live_exposure(a.customer_key, a.exposure) > credit.effective_limit(a)")" = "0"
check "the rebuilt ledger still enforces the limit (CR001)" \
	bash -c "psql -X -q -d credit_sl -v VERBOSITY=verbose -c 'INSERT INTO sl.orders (customer_id, amount) VALUES (1, 5001)' 2>&1 | grep -q CR001"
[ "$nfailed" -eq 0 ]
