#!/usr/bin/env bash
# test/upgrade.sh: the release discipline.  Installing the latest version
# directly and installing 1.0 then ALTER EXTENSION ... UPDATE must give the
# same catalog: compared as pg_dump --schema-only --binary-upgrade output
# (which, unlike a plain dump, writes every member object of the extension
# with its grants, policies, comments and configuration-table marks), with
# only the object identifiers masked.  Also: the update path exists, and a
# 1.0 database holding data keeps it and keeps enforcing after the update.
# Prints "ok N - ..." / "not ok N - ..." lines (test/suites.sh counts them).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$BIN/pg_dump" ] || BIN=/usr/lib/postgresql/15/bin
LATEST=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" credit.control)
n=0
fails=0
check() {	# description, then a command that succeeds when the check holds
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		fails=$((fails + 1))
	fi
}
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; for d in credit_up_direct credit_up_path credit_up_data; do dropdb --if-exists "$d" >/dev/null 2>&1; done' EXIT

for d in credit_up_direct credit_up_path credit_up_data; do
	dropdb --if-exists "$d" >/dev/null 2>&1
	createdb "$d"
done

check "CREATE EXTENSION credit installs the latest version ($LATEST)" \
	test "$(q -d credit_up_direct -c 'CREATE EXTENSION credit' -c "SELECT extversion FROM pg_extension WHERE extname = 'credit'")" = "$LATEST"
check "CREATE EXTENSION credit VERSION '1.0' installs the first release" \
	test "$(q -d credit_up_path -c "CREATE EXTENSION credit VERSION '1.0'" -c "SELECT extversion FROM pg_extension WHERE extname = 'credit'")" = "1.0"
check "pg_extension_update_paths has a path from 1.0 to $LATEST" \
	test "$(q -d credit_up_path -c "SELECT path FROM pg_extension_update_paths('credit') WHERE source = '1.0' AND target = '$LATEST'")" != ""
check "ALTER EXTENSION credit UPDATE brings 1.0 to $LATEST" \
	test "$(q -d credit_up_path -c 'ALTER EXTENSION credit UPDATE' -c "SELECT extversion FROM pg_extension WHERE extname = 'credit'")" = "$LATEST"

# the schema as pg_upgrade would see it, object identifiers masked, and the
# configuration tables' filters (listed in the order the tables were marked:
# an update appends; the next check compares them as a set)
catalog() {
	"$BIN/pg_dump" --schema-only --binary-upgrade -d "$1" 2>/dev/null |
		grep -v -e '^\\restrict' -e '^\\unrestrict' -e 'binary_upgrade_set_next_' -e '^--' -e '^$' |
		sed -E -e "s/(binary_upgrade_create_empty_extension\('credit', 'credit', false, '[^']*'), '\{[0-9,]*\}', '\{.*\}', ARRAY/\1, '{oids}', '{filters}', ARRAY/" \
			-e "s/relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'/relfrozenxid = 'x', relminmxid = 'x'/" \
			-e "s/^WHERE oid = '[0-9]+';/WHERE oid = 'n';/"
}
catalog credit_up_direct >"$WORK/direct.sql"
catalog credit_up_path >"$WORK/path.sql"
check "the dumps are not empty (both hold the extension's $(grep -c '^ALTER EXTENSION credit ADD' "$WORK/direct.sql") member objects)" \
	test "$(grep -c '^ALTER EXTENSION credit ADD' "$WORK/direct.sql")" -gt 100
if diff -u "$WORK/direct.sql" "$WORK/path.sql" >"$WORK/catalog.diff"; then
	check "installing $LATEST and upgrading from 1.0 give the same catalog" true
else
	check "installing $LATEST and upgrading from 1.0 give the same catalog" false
	head -80 "$WORK/catalog.diff" | sed 's/^/# /'
fi
cfg="SELECT array_to_string(ARRAY(SELECT c::regclass::text || ' ' || coalesce(w, '')
       FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, w)
      WHERE e.extname = 'credit' ORDER BY 1), ';')"
check "the same tables and sequences are marked for pg_dump, with the same filters" \
	test "$(q -d credit_up_direct -c "$cfg")" = "$(q -d credit_up_path -c "$cfg")"

# a 1.0 database in use keeps its data and its enforcement through the update
q -d credit_up_data >/dev/null <<'SQL'
CREATE EXTENSION credit VERSION '1.0';
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, cust text NOT NULL, amount numeric NOT NULL,
                          status text NOT NULL DEFAULT 'open');
INSERT INTO credit.accounts (customer_key, credit_limit, owner, region)
VALUES ('C1', 1000, 'someone', 'north');
SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'status', '{open}');
INSERT INTO shop.orders VALUES (1, 'C1', 600);
INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency, invoice_date, due_date)
VALUES ('C1', 'I-1', 250, 'CNY', CURRENT_DATE - 40, CURRENT_DATE - 10);
ALTER EXTENSION credit UPDATE;
SQL
check "after the update the account keeps its exposure (600 order + 250 invoice = 850)" \
	test "$(q -d credit_up_data -c "SELECT exposure FROM credit.accounts WHERE customer_key = 'C1'")" = "850"
check "after the update an order over the limit is refused with CR001" \
	test "$(q -d credit_up_data -c "DO \$\$ BEGIN INSERT INTO shop.orders VALUES (2, 'C1', 200); RAISE EXCEPTION 'accepted'; EXCEPTION WHEN SQLSTATE 'CR001' THEN RAISE NOTICE 'refused'; END \$\$" 2>&1 | grep -c refused)" = "1"
check "after the update credit.reconcile() finds nothing to repair" \
	test "$(q -d credit_up_data -c 'SELECT count(*) FROM credit.reconcile()')" = "0"
check "after the update the audit trail verifies" \
	test "$(q -d credit_up_data -c 'SELECT count(*) FROM credit.verify_audit()')" = "0"
check "after the update the reporting views read the 1.0 data (aging shows the 250 overdue)" \
	test "$(q -d credit_up_data -c "SELECT sum(amount) FROM credit.report_aging WHERE amount > 0 AND bucket_no > 0")" = "250"

[ "$fails" -eq 0 ]
