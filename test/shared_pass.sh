#!/usr/bin/env bash
# test/shared_pass.sh COMMAND [ARG...]: run COMMAND (from the top of the
# tree) against a throwaway cluster of its own with credit in
# shared_preload_libraries, so that the shared-memory exposure ledger
# (src/shared_ledger.c) serves the accounts instead of row locks.
#
# test/suites.sh runs the isolation specs and test/stress.sh a second time
# through it ("isolation (shared memory)", "stress (shared memory)"); each
# gets a fresh cluster.  The cluster is made by bench/cluster.sh
# (initdb/pg_ctl as postgres, the socket in a fresh temporary directory, the
# first free port from SHARED_PASS_PORT, default 5620, on), configured as
# the pg_virtualenv cluster of `make test` is where it matters (autovacuum
# on, max_connections 100), and stopped and removed when COMMAND ends.
# COMMAND gets PGHOST, PGPORT and PGUSER pointing at it (PGDATABASE and
# PGPASSWORD unset) and STRESS_BACKEND='shared memory' (test/stress.sh then
# checks that every account is served by that ledger).
#
# Exit status: COMMAND's, or 1 with a message on stderr when the cluster
# could not be started with the ledger enabled (the caller counts that as a
# failure: never a silent pass with no test run).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
	echo "usage: bash test/shared_pass.sh COMMAND [ARG...]" >&2
	exit 2
fi
. bench/cluster.sh

start_cluster shared-pass "${SHARED_PASS_PORT:-5620}" 100 128MB
as_postgres tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
# test/shared_pass.sh: the shared-memory ledger
shared_preload_libraries = 'credit'
autovacuum = on
CONF
if ! as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 restart >/dev/null; then
	cat "$WORK/server.log" >&2
	echo "shared_pass: the cluster did not restart with credit preloaded" >&2
	exit 1
fi
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres STRESS_BACKEND='shared memory'
unset PGDATABASE PGPASSWORD PGSERVICE PGHOSTADDR

# the ledger must really be on: credit loaded and given room for accounts
on=$(psql -X -A -t -q -d postgres -c "SELECT current_setting('shared_preload_libraries') ~ '(^|[ ,])credit($|[ ,])'
	AND coalesce(current_setting('credit.shared_ledger_accounts', true), '0') <> '0'" 2>&1)
if [ "$on" != t ]; then
	echo "shared_pass: the shared-memory ledger is not enabled in the cluster ($on)" >&2
	tail -20 "$WORK/server.log" >&2
	exit 1
fi
echo "# shared_pass: $* against a cluster with credit preloaded (port $PORT)"

"$@"
rc=$?
# the cluster is removed on exit: keep its deadlock reports (what waited
# for what) in the output
if grep -q 'deadlock detected' "$WORK/server.log"; then
	echo "# shared_pass: deadlocks in the server log:"
	grep -A6 'deadlock detected' "$WORK/server.log" | head -80 | sed 's/^/#   /'
fi
# a crash of a backend (the ledger lives in shared memory) fails the pass
# even if COMMAND did not notice it
if grep -qE 'terminated by signal|was terminated by exception|PANIC' "$WORK/server.log"; then
	echo "shared_pass: the server log reports a crashed backend:" >&2
	grep -E -B2 -A3 'terminated by signal|was terminated by exception|PANIC' "$WORK/server.log" | head -40 >&2
	[ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
