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
# limit is still enforced; statuses are kept at commit; reconcile(repair)
# corrects drift; a ledger too small serves the rest by row locks with their
# rows rebuilt; a dropped and re-created extension starts afresh.
# "ok N - ..." lines; exit 1 if any failed.
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

# the status column is kept at commit: what the rule derives from the live figure
derived="CASE WHEN x.exposure > x.effective_limit THEN 'hold'
              WHEN x.exposure > 0 AND x.exposure >= a.watch_ratio * x.effective_limit THEN 'watch'
              ELSE 'ok' END"
check "every account's stored status is the one its live exposure gives ($(q "SELECT count(*) FROM credit.status_changes") status changes recorded)" \
	test "$(q "SELECT count(*) FROM credit.accounts a JOIN credit.account_balances x USING (customer_key)
	            WHERE a.status <> $derived")" = "0"
check "each account's status history is a chain ending in its current status" \
	test "$(q "SELECT count(*) FROM (SELECT h.customer_key, h.old_status, h.new_status,
	                   lag(h.new_status) OVER w AS prev, row_number() OVER (PARTITION BY h.customer_key ORDER BY h.change_id DESC) AS r
	              FROM credit.status_changes h WINDOW w AS (PARTITION BY h.customer_key ORDER BY h.change_id)) c
	            JOIN credit.accounts a USING (customer_key)
	           WHERE c.old_status IS DISTINCT FROM coalesce(c.prev, c.old_status) OR (c.r = 1 AND c.new_status <> a.status)")" = "0"

# reconcile(repair => true) under the shared ledger: drift made behind the trigger's back
q "ALTER TABLE sl.orders DISABLE TRIGGER USER; INSERT INTO sl.orders (customer_id, amount) VALUES (2, 1.5), (3, -2.25); ALTER TABLE sl.orders ENABLE TRIGGER USER" >/dev/null
check "credit.reconcile() reports the drift of the live figure (2 accounts)" \
	test "$(q "SELECT count(*) FROM credit.reconcile()")" = "2"
check "a rolled-back reconcile(repair => true) leaves the drift" \
	test "$(q "BEGIN; SELECT count(*) FROM credit.reconcile(true); ROLLBACK; SELECT count(*) FROM credit.reconcile()" | tail -1)" = "2"
check "reconcile(repair => true) corrects the shared ledger and the stored column alike" \
	test "$(q "SELECT count(*) FROM credit.reconcile(true); SELECT (SELECT count(*) FROM credit.reconcile())
	            + (SELECT count(*) FROM credit.accounts a WHERE a.exposure <> credit.live_exposure(a.customer_key, a.exposure))" | tail -1)" = "0"

# a ledger too small: the accounts that do not fit are served by row locks, their rows repaired
q "INSERT INTO sl.orders (customer_id, amount) SELECT g, 1 FROM generate_series(1, 5) g" >/dev/null
echo "credit.shared_ledger_accounts = 3" | as_postgres tee -a "$DATA/postgresql.conf" >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 restart -m immediate >/dev/null
check "with room for 3 of 5 accounts, the first use warns and 2 accounts are served by row locks" \
	test "$(psql -X -A -t -q -d credit_sl -c "SELECT count(*) FROM credit.accounts WHERE credit.ledger_backend(customer_key) = 'row lock'" 2>&1 | tr '\n' ' ')" \
	= "WARNING:  the shared-memory exposure ledger holds 3 of the 5 accounts of database \"credit_sl\" DETAIL:  The other accounts are served by row locks until the server restarts. HINT:  Raise credit.shared_ledger_accounts (needs a restart). 2 "
check "then credit.reconcile() is empty: the row-served accounts' stored exposure was rebuilt" \
	test "$(q "SELECT count(*) FROM credit.reconcile()")" = "0"
check "a row-served account still refuses an order past its limit (CR001)" \
	bash -c "psql -X -q -d credit_sl -v VERBOSITY=verbose -c \"INSERT INTO sl.orders (customer_id, amount) SELECT customer_key::bigint, 5001 FROM credit.accounts WHERE credit.ledger_backend(customer_key) = 'row lock' LIMIT 1\" 2>&1 | grep -q CR001"
as_postgres sed -i '/credit.shared_ledger_accounts = 3/d' "$DATA/postgresql.conf"
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 restart >/dev/null

# DROP EXTENSION and CREATE EXTENSION again: the old instance's entries are not reused
q "SELECT credit.live_exposure('1', 0)" >/dev/null
psql -X -q -d credit_sl -c "DROP SCHEMA sl CASCADE" -c "DROP EXTENSION credit CASCADE" >/dev/null 2>&1
psql -X -q -d credit_sl -f test/shared_ledger/setup.sql >/dev/null 2>&1
check "after DROP EXTENSION and CREATE EXTENSION the same keys start from nothing" \
	test "$(q "INSERT INTO sl.orders (customer_id, amount) VALUES (1, 4999)" >/dev/null
	        q "SELECT committed_exposure || '/' || (SELECT count(*) FROM credit.shared_ledger()) FROM credit.shared_ledger() WHERE customer_key = '1'")" = "4999.00/1"
[ "$nfailed" -eq 0 ]
