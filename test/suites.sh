#!/usr/bin/env bash
# test/suites.sh: every suite, run inside pg_virtualenv (PGHOST, PGPORT,
# PGUSER and PGPASSWORD point at the throwaway cluster).  Each suite adds
# its counts; the last line is "N passed, N failed"; exit 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
mkdir -p log
passed=0
failed=0

count() {	# suite name, passed, failed
	echo "== $1: $2 passed, $3 failed"
	passed=$((passed + $2))
	failed=$((failed + $3))
}

# Both suites below run their command prefixed with $in_cluster: unset, in
# this (pg_virtualenv) cluster; "bash test/shared_pass.sh", in a throwaway
# cluster of its own with credit preloaded (the shared-memory ledger).

# a pg_regress-style run: suite name, log file, make arguments; a failing
# run's regression.diffs is shown and kept as the log's .diffs
pg_regress_suite() {
	local name=$1 log=$2 rc p f
	shift 2
	rm -f regression.diffs "${log%.log}.diffs"
	${in_cluster:-} make -s installcheck "$@" >"$log" 2>&1
	rc=$?
	p=$(grep -cE '^(test| ) .*\.\.\. ok' "$log")
	f=$(grep -cE '\.\.\. FAILED' "$log")
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	cat "$log"
	if [ -f regression.diffs ] && [ "$f" -gt 0 ]; then
		cp regression.diffs "${log%.log}.diffs"
		head -200 regression.diffs
	fi
	count "$name" "$p" "$f"
}

# pg_regress: test/sql against expected/
pg_regress_suite pg_regress log/regress.log ISOLATION=
# isolation tester: test/specs against expected/
pg_regress_suite isolation log/isolation.log REGRESS= ISOLATION_OPTS="--inputdir=test --outputdir=."

# pgTAP via pg_prove: one database with pgtap; each file installs credit in
# its own transaction and rolls back
dropdb --if-exists credit_tap >/dev/null 2>&1
createdb credit_tap && psql -X -q -d credit_tap -c 'CREATE EXTENSION pgtap' >/dev/null
pg_prove -d credit_tap test/pgtap/*.sql >log/pgtap.log 2>&1
rc=$?
cat log/pgtap.log
total=$(sed -n 's/.*Tests=\([0-9]*\).*/\1/p' log/pgtap.log | tail -1)
f=$(grep -oE 'Failed [0-9]+/[0-9]+ subtests' log/pgtap.log | awk '{split($2,a,"/"); s+=a[1]} END {print s+0}')
total=${total:-0}
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
count pgtap "$((total - f < 0 ? 0 : total - f))" "$f"

# a script printing "ok N - ..." / "not ok N - ..." lines: suite name,
# script, log file (log/NAME.log)
tap_script_suite() {
	local name=$1 script=$2 log=${3:-log/$1.log} rc p f
	${in_cluster:-} bash "$script" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	count "$name" "$p" "$f"
}

# randomized multi-client stress run, invariants checked afterwards
STRESS_BACKEND='row lock' tap_script_suite stress test/stress.sh
# credit.run_dunning() scheduled and run by pg_cron
tap_script_suite pg_cron test/cron.sh
# installing the latest version equals upgrading from 1.0
tap_script_suite upgrade test/upgrade.sh
# an application and a BI reader through a real driver (python3-psycopg2)
tap_script_suite client test/client/run.sh
# pg_dump / pg_restore round trip of a database using credit
tap_script_suite dump_restore test/dump_restore.sh
# login roles: row-level security, the privilege matrix, a hostile search_path
tap_script_suite security test/security.sh
# the shared-memory ledger in a cluster of its own (preloaded): limits, crash, rebuild
tap_script_suite shared_ledger test/shared_ledger.sh
# pg_regress, the isolation specs and the stress run again under the
# shared-memory ledger, each in a throwaway cluster of its own with credit
# preloaded
in_cluster="bash test/shared_pass.sh" pg_regress_suite "pg_regress (shared memory)" \
	log/regress_shm.log ISOLATION=
in_cluster="bash test/shared_pass.sh" pg_regress_suite "isolation (shared memory)" \
	log/isolation_shm.log REGRESS= ISOLATION_OPTS="--inputdir=test --outputdir=."
in_cluster="bash test/shared_pass.sh" tap_script_suite "stress (shared memory)" test/stress.sh \
	log/stress_shm.log

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
