#!/usr/bin/env bash
# test/client/run.sh: credit through a real driver (python3-psycopg2), as an
# application and as a BI reader.  Run inside pg_virtualenv (or any cluster
# where credit is installed and PGUSER is a superuser); creates and drops the
# database credit_client and the roles credit_client_app and credit_client_bi.
# Prints "ok N - ..." / "not ok N - ..." lines; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")"
export CLIENT_DB=${CLIENT_DB:-credit_client}
PY=/usr/bin/python3		# Debian's python3, where python3-psycopg2 lives
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
	echo "not ok 1 - python3-psycopg2 is installed (apt-get install python3-psycopg2)"
	exit 1
fi
cleanup() {
	dropdb --if-exists "$CLIENT_DB" >/dev/null 2>&1
	psql -X -q -d postgres -c 'DROP ROLE IF EXISTS credit_client_app' \
		-c 'DROP ROLE IF EXISTS credit_client_bi' >/dev/null 2>&1
}
cleanup
if ! createdb "$CLIENT_DB"; then
	echo "not ok 1 - createdb $CLIENT_DB"
	exit 1
fi
"$PY" client.py
rc=$?
[ "${CLIENT_KEEP:-}" = 1 ] || cleanup
exit $rc
