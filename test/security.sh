#!/usr/bin/env bash
# test/security.sh: the security model exercised by real login roles, and a
# hostile role that plants look-alike functions, operators, aggregates and
# relations where a careless search_path would find them.
#
# Runs inside the test cluster (pg_virtualenv: PGHOST, PGPORT, PGUSER and
# PGPASSWORD name a superuser; other roles log in with passwords over TCP).
# Creates database credit_security and login roles sec_*, drops them at the
# end.  Prints "ok N - ..." / "not ok N - ..."; exits 1 on any failure.
#
# 1. Roles.  Two salespeople (sec_sales_a owns A1 and A2, sec_sales_b owns
#    B1), a BI reader, a finance clerk, a risk analyst (also the approver:
#    member of position credit_review), an admin, and a login with no credit
#    role, each logged in as itself: what each sees (tables, balances view,
#    report views, sums) and what each may do, with the SQLSTATE of every
#    refusal; an approval made through credit.approve is recorded under the
#    approver's name, not the extension owner's.
# 2. Hostile search_path.  sec_hostile may create in schema public and plants
#    there look-alikes of the pg_catalog functions the extension calls (same
#    signatures, generated from the catalog), better-matching ones (varchar,
#    integer/numeric mixes, concrete types where pg_catalog's are
#    polymorphic or variadic), aggregates, operators for every operator
#    symbol the extension uses, and views named like every relation of
#    schema credit; each records a hit (hostile.hits, and a WARNING naming
#    it) if it ever runs.  Victims (a superuser, finance, risk, sales, admin)
#    then work through the whole API with search_path = public, pg_catalog
#    and temporary views named like every credit relation in their own
#    sessions (which SECURITY DEFINER functions would see through pg_temp).
#    A role without any credit privilege drops its own objects, and its
#    attached table by an unqualified name (released first).
#    No hit may be recorded, and the results must be right.  Canaries
#    prove that the traps are live: an unqualified call in a victim
#    session is caught.
set -uo pipefail
cd "$(dirname "$0")/.."
n=0
failed=0
check() {	# description, command that succeeds when the check holds
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi
}
eq() {		# description, got, expected
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		echo "#   got:      $(printf '%s' "$2" | tr '\n' '|')"
		echo "#   expected: $(printf '%s' "$3" | tr '\n' '|')"
		failed=1
	fi
}

DB=credit_security
SUPERUSER=${PGUSER:-postgres}
SUPERPW=${PGPASSWORD:-}
PW="Sec-$RANDOM-$RANDOM-pw"
LOGS=$(mktemp -d -t credit_security.XXXXXX)
VICTIM_ERR=$LOGS/victims.err
: >"$VICTIM_ERR"
ROLES="sec_sales_a sec_sales_b sec_bi sec_finance sec_risk sec_admin sec_nobody sec_hostile"

# superuser, search_path pinned to pg_catalog (the traps cannot reach it)
sq() { PGOPTIONS="-c search_path=pg_catalog,pg_temp" PGUSER=$SUPERUSER PGPASSWORD=$SUPERPW \
		psql -X -q -t -A -v ON_ERROR_STOP=1 -d "${2:-$DB}" -c "$1"; }
# a login role, search_path pinned to pg_catalog: query output
as() { PGOPTIONS="-c search_path=pg_catalog,pg_temp" PGUSER=$1 PGPASSWORD=$PW \
		psql -X -q -t -A -v ON_ERROR_STOP=1 -d $DB -c "$2"; }
# a login role: the SQLSTATE of the statement's error, or "ok"
state() {
	local out
	out=$(PGOPTIONS="-c search_path=pg_catalog,pg_temp" PGUSER=$1 PGPASSWORD=$PW \
		  psql -X -q -t -A -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d $DB -c "$2" 2>&1 >/dev/null)
	if [ $? -eq 0 ]; then echo ok; else sed -n 's/^\(psql:[^ ]* \)\{0,1\}ERROR:  \([0-9A-Z]\{5\}\):.*/\2/p' <<<"$out" | head -1; fi
}
# a victim: role (or "super"), script on stdin; search_path = public, pg_catalog.
# Output goes to $LOGS/<name>.out, errors and warnings to $VICTIM_ERR;
# returns psql's status
victim() {
	local role=$1 name=$2 user pw
	if [ "$role" = super ]; then user=$SUPERUSER; pw=$SUPERPW; else user=$role; pw=$PW; fi
	{ echo "=== $name ($user)"; } >>"$VICTIM_ERR"
	PGOPTIONS="-c search_path=public,pg_catalog" PGUSER=$user PGPASSWORD=$pw \
		psql -X -q -t -A -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d $DB -f - \
		>"$LOGS/$name.out" 2>>"$VICTIM_ERR"
}

cleanup() {
	sq "DROP DATABASE IF EXISTS $DB" postgres >/dev/null 2>&1
	for r in $ROLES; do sq "DROP ROLE IF EXISTS $r" postgres >/dev/null 2>&1; done
}
cleanup
sq "CREATE DATABASE $DB" postgres >/dev/null || { echo "not ok 1 - create database $DB"; exit 1; }
sq "CREATE EXTENSION credit" >/dev/null 2>&1

# dates relative to today, computed here so that the victims' own
# statements need no operator
d() { date -u -d "$1" +%F; }
TODAY=$(d today)
DUE_40_AGO=$(d '40 days ago'); INV_70_AGO=$(d '70 days ago')
DUE_10_AGO=$(d '10 days ago'); INV_40_AGO=$(d '40 days ago')
DUE_IN_20=$(d '20 days'); INV_10_AGO=$(d '10 days ago')
PAST=$(d '2 days ago')

# ---------------------------------------------------------------------------
# 1. Roles, logged in as themselves
# ---------------------------------------------------------------------------
sq "CREATE ROLE sec_sales_a LOGIN PASSWORD '$PW' IN ROLE credit_sales;
	CREATE ROLE sec_sales_b LOGIN PASSWORD '$PW' IN ROLE credit_sales;
	CREATE ROLE sec_bi LOGIN PASSWORD '$PW' IN ROLE credit_bi;
	CREATE ROLE sec_finance LOGIN PASSWORD '$PW' IN ROLE credit_finance;
	CREATE ROLE sec_risk LOGIN PASSWORD '$PW' IN ROLE credit_risk;
	CREATE ROLE sec_admin LOGIN PASSWORD '$PW' IN ROLE credit_admin;
	CREATE ROLE sec_nobody LOGIN PASSWORD '$PW';" >/dev/null

eq "each login role logs in with its password and is itself" \
	"$(for r in sec_sales_a sec_bi sec_finance sec_risk sec_admin sec_nobody; do as $r 'SELECT session_user'; done | tr '\n' ' ')" \
	"sec_sales_a sec_bi sec_finance sec_risk sec_admin sec_nobody "

# the admin opens the accounts and the approval configuration
eq "admin opens three accounts and one approval rule" "$(as sec_admin "
	INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
	VALUES ('A1', 'Alpha', 10000, 'sec_sales_a'), ('A2', 'Alpha Two', 20000, 'sec_sales_a'),
		   ('B1', 'Beta', 40000, 'sec_sales_b');
	INSERT INTO credit.positions (position, description, superior)
	VALUES ('credit_review', 'Credit review', NULL);
	INSERT INTO credit.position_members (position, member) VALUES ('credit_review', 'sec_risk');
	INSERT INTO credit.approval_rules (rule_id, kinds, amount_up_to)
	VALUES (1, '{new_limit,limit_change,temp_limit,term_change,order_release}', 1000000);
	INSERT INTO credit.approval_rule_steps (rule_id, step_no, position, deadline)
	VALUES (1, 1, 'credit_review', '2 days');
	SELECT count(*) FROM credit.accounts" 2>&1 | tail -1)" "3"

# finance posts the ledger: A1 500 overdue 10 days, A2 700 not due, B1 4000 overdue 40 days
eq "finance posts three receivables" "$(as sec_finance "
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
	VALUES ('A1', 'INV-A1', 500, '$INV_40_AGO', '$DUE_10_AGO'),
		   ('A2', 'INV-A2', 700, '$INV_10_AGO', '$DUE_IN_20'),
		   ('B1', 'INV-B1', 4000, '$INV_70_AGO', '$DUE_40_AGO');
	SELECT sum(amount) FROM credit.receivables" 2>&1 | tail -1)" "5200"

# what sales A sees
eq "sales A sees exactly A1, A2 in credit.accounts" \
	"$(as sec_sales_a "SELECT string_agg(customer_key, ',' ORDER BY customer_key) FROM credit.accounts")" "A1,A2"
eq "sales A sees only its receivables (sum 1200)" \
	"$(as sec_sales_a "SELECT string_agg(invoice_key, ',' ORDER BY invoice_key) || ' ' || sum(amount) FROM credit.receivables")" \
	"INV-A1,INV-A2 1200"
eq "sales A sees exactly A1, A2 in credit.account_balances, exposure 1200" \
	"$(as sec_sales_a "SELECT string_agg(customer_key, ',' ORDER BY customer_key) || ' ' || sum(exposure) FROM credit.account_balances")" \
	"A1,A2 1200"
eq "sales B sees exactly B1, exposure 4000" \
	"$(as sec_sales_b "SELECT string_agg(customer_key, ',' ORDER BY customer_key) || ' ' || sum(exposure) FROM credit.account_balances")" \
	"B1 4000"
eq "BI sees all three accounts, exposure 5200" \
	"$(as sec_bi "SELECT string_agg(customer_key, ',' ORDER BY customer_key) || ' ' || sum(exposure) FROM credit.account_balances")" \
	"A1,A2,B1 5200"
eq "sales A: credit.aging sums only its customers (1200)" \
	"$(as sec_sales_a "SELECT sum(amount) FROM credit.aging('$TODAY')")" "1200"

# report views (sql/reporting.sql): rows and sums limited to the owner's customers
if [ "$(sq "SELECT count(*) FROM pg_class WHERE relnamespace = 'credit'::regnamespace AND relname LIKE 'report\_%'")" -gt 0 ]; then
	eq "sales A: report_customer_360 has exactly A1, A2 with open amount 1200" \
		"$(as sec_sales_a "SELECT string_agg(customer_key, ',' ORDER BY customer_key) || ' ' || sum(open_amount) FROM credit.report_customer_360")" \
		"A1,A2 1200"
	eq "sales A: report_top_overdue ranks only A1 (overdue 500)" \
		"$(as sec_sales_a "SELECT string_agg(overdue_rank || ':' || customer_key || ':' || overdue_amount, ',') FROM credit.report_top_overdue")" \
		"1:A1:500"
	eq "BI: report_top_overdue ranks B1 then A1" \
		"$(as sec_bi "SELECT string_agg(overdue_rank || ':' || customer_key || ':' || overdue_amount, ',' ORDER BY overdue_rank) FROM credit.report_top_overdue")" \
		"1:B1:4000,2:A1:500"
	eq "sales A: report_aging totals 1200 (500 overdue in 1-30, 700 not due)" \
		"$(as sec_sales_a "SELECT sum(amount) || ' ' || string_agg(bucket || '=' || amount, ',' ORDER BY bucket_no) FILTER (WHERE amount > 0) FROM credit.report_aging")" \
		"1200 not due=700,1-30=500"
	eq "sales A: report_receivables_health: open 1200, overdue 500" \
		"$(as sec_sales_a "SELECT open_amount || ' ' || overdue_amount FROM credit.report_receivables_health")" "1200 500"
	eq "sales A: report_collection_by_salesperson shows only itself" \
		"$(as sec_sales_a "SELECT string_agg(owner || ' ' || customers || ' ' || open_amount, ',') FROM credit.report_collection_by_salesperson")" \
		"sec_sales_a 2 1200"
	eq "sales A: report_utilization has exactly A1, A2" \
		"$(as sec_sales_a "SELECT string_agg(customer_key, ',' ORDER BY customer_key) FROM credit.report_utilization")" "A1,A2"
	eq "sales B: report_customer_360 has exactly B1 with open amount 4000" \
		"$(as sec_sales_b "SELECT string_agg(customer_key, ',' ORDER BY customer_key) || ' ' || sum(open_amount) FROM credit.report_customer_360")" \
		"B1 4000"
fi

# what sales A may do
eq "sales A cannot create a profile for B1 (42501)" \
	"$(state sec_sales_a "INSERT INTO credit.profiles (customer_key, legal_name) VALUES ('B1', 'Beta Ltd')")" "42501"
eq "sales A creates A1's profile" \
	"$(state sec_sales_a "INSERT INTO credit.profiles (customer_key, legal_name, uscc) VALUES ('A1', 'Alpha Ltd', '91350100M000100Y43')")" "ok"
eq "sales A cannot draft an application for B1 (42501)" \
	"$(state sec_sales_a "INSERT INTO credit.applications (kind, customer_key, requested_limit) VALUES ('limit_change', 'B1', 90000)")" "42501"
eq "sales A drafts an application for A1, in its own name" \
	"$(as sec_sales_a "INSERT INTO credit.applications (kind, customer_key, requested_limit, reason)
						VALUES ('limit_change', 'A1', 15000, 'growth') RETURNING requester")" "sec_sales_a"
APP=$(sq "SELECT application_id FROM credit.applications WHERE customer_key = 'A1' AND requested_limit = 15000")
eq "sales B cannot submit sales A's application (42501)" \
	"$(state sec_sales_b "SELECT credit.submit_application($APP)")" "42501"
eq "sales A submits its application: pending at credit_review" \
	"$(as sec_sales_a "SELECT credit.submit_application($APP);
					  SELECT a.state || ' ' || s.position || ' ' || s.state FROM credit.applications a
						JOIN credit.application_steps s USING (application_id) WHERE a.application_id = $APP" | tail -1)" \
	"pending credit_review pending"
eq "sales A cannot update an account, even its own (42501)" \
	"$(state sec_sales_a "UPDATE credit.accounts SET credit_limit = 99999 WHERE customer_key = 'A1'")" "42501"
eq "sales A cannot change its application's state directly (42501)" \
	"$(state sec_sales_a "UPDATE credit.applications SET state = 'approved' WHERE application_id = $APP")" "42501"
eq "sales A cannot approve (not a member of the step's position: 42501)" \
	"$(state sec_sales_a "SELECT credit.approve($APP, 'self')")" "42501"
eq "sales A cannot read the audit log (42501)" \
	"$(state sec_sales_a "SELECT count(*) FROM credit.audit_log")" "42501"
eq "sales A cannot run dunning (42501)" "$(state sec_sales_a "SELECT credit.run_dunning()")" "42501"
eq "sales B does not see A's application" \
	"$(as sec_sales_b "SELECT count(*) FROM credit.applications")" "0"

# BI
for stmt in "INSERT INTO credit.applications (kind, customer_key, requested_limit) VALUES ('limit_change', 'A1', 1)" \
			"UPDATE credit.accounts SET credit_limit = 1 WHERE customer_key = 'A1'" \
			"INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date) VALUES ('A1', 'X', 1, '$TODAY')" \
			"DELETE FROM credit.profiles" \
			"UPDATE credit.settings SET dunning_lifts_status = false" \
			"SELECT count(*) FROM credit.audit_log" \
			"SELECT credit.run_dunning()" \
			"SELECT * FROM credit.reconcile()"; do
	eq "BI: 42501 for: ${stmt:0:60}" "$(state sec_bi "$stmt")" "42501"
done
if [ "$(sq "SELECT count(*) FROM pg_class WHERE relnamespace = 'credit'::regnamespace AND relname LIKE 'report\_%'")" -gt 0 ]; then
	eq "BI reads every report_* view" \
		"$(for v in $(sq "SELECT relname FROM pg_class WHERE relnamespace = 'credit'::regnamespace AND relkind = 'v' ORDER BY 1"); do
			   state sec_bi "SELECT count(*) FROM credit.$v"; done | sort -u)" "ok"
fi

# finance
eq "finance posts a payment and allocates it (A1 pays 200)" \
	"$(as sec_finance "INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
					  VALUES ('A1', 'PAY-A1', 200, '$TODAY');
					  SELECT credit.allocate(payment_id, 'INV-A1') FROM credit.payments WHERE payment_key = 'PAY-A1';
					  SELECT exposure FROM credit.accounts WHERE customer_key = 'A1'" | tail -1)" "300"
eq "finance runs credit.run_dunning(): two overdue invoices evaluated" \
	"$(as sec_finance "SELECT evaluated FROM credit.run_dunning('$TODAY')")" "2"
eq "finance cannot change a credit limit (42501)" \
	"$(state sec_finance "UPDATE credit.accounts SET credit_limit = 1 WHERE customer_key = 'B1'")" "42501"
eq "finance cannot approve (not a member of the position: 42501)" \
	"$(state sec_finance "SELECT credit.approve($APP, 'finance')")" "42501"

# risk: limits, and the approval through credit.approve
eq "risk updates a limit" \
	"$(as sec_risk "UPDATE credit.accounts SET credit_limit = 45000 WHERE customer_key = 'B1' RETURNING credit_limit")" "45000"
eq "risk sees its task in credit.my_tasks()" \
	"$(as sec_risk "SELECT string_agg(application_id::text, ',') FROM credit.my_tasks()")" "$APP"
eq "risk approves through credit.approve: A1's limit becomes 15000" \
	"$(as sec_risk "SELECT credit.approve($APP, 'looks fine');
				   SELECT credit_limit FROM credit.accounts WHERE customer_key = 'A1'" | tail -1)" "15000"
eq "the step records the approver's login as acted_by" \
	"$(sq "SELECT acted_by || ' ' || state FROM credit.application_steps WHERE application_id = $APP")" "sec_risk approved"
eq "the audit trail names the approver (session and acting role), never the extension owner" \
	"$(sq "SELECT string_agg(DISTINCT session_role || '/' || acting_role, ',') FROM credit.audit_log
		   WHERE chain = 'application:$APP' AND table_name = 'application_steps' AND operation = 'UPDATE'
			 AND after ->> 'state' = 'approved'")" \
	"sec_risk/sec_risk"
eq "the limit change on the account is audited as the approver's" \
	"$(sq "SELECT string_agg(DISTINCT acting_role, ',') FROM credit.audit_log
		   WHERE chain = 'account:A1' AND operation = 'UPDATE' AND after ->> 'credit_limit' = '15000'")" "sec_risk"
eq "no audit row of the application names the extension owner as acting role" \
	"$(sq "SELECT count(*) FROM credit.audit_log a JOIN pg_namespace n ON n.nspname = 'credit'
		   WHERE a.chain = 'application:$APP' AND a.acting_role = n.nspowner::regrole::name")" "0"
eq "sales A sees its application approved" \
	"$(as sec_sales_a "SELECT state FROM credit.applications WHERE application_id = $APP")" "approved"

# a login without any credit role
for stmt in "SELECT count(*) FROM credit.accounts" "SELECT count(*) FROM credit.account_balances" \
			"SELECT * FROM credit.aging()" "SELECT credit.submit_application(1)" \
			"SELECT * FROM credit.reconcile()" "SELECT credit.run_dunning()"; do
	eq "no credit role: 42501 for: $stmt" "$(state sec_nobody "$stmt")" "42501"
done
eq "no credit role: without USAGE on schema credit not even credit.caller() resolves (42501)" \
	"$(state sec_nobody "SELECT credit.caller()")" "42501"
eq "no credit role: of schema credit's functions it holds EXECUTE on exactly caller, sees_all_customers and the code checks" \
	"$(as sec_nobody "SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY 1) FROM pg_proc p
					 WHERE p.pronamespace = 'credit'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE')")" \
	"credit.caller() credit.sees_all_customers() credit.uscc_check(text) credit.uscc_valid(text)"

# ---------------------------------------------------------------------------
# 2. Hostile search_path
# ---------------------------------------------------------------------------
sq "CREATE ROLE sec_hostile LOGIN PASSWORD '$PW';
	GRANT CREATE ON SCHEMA public TO sec_hostile;
	CREATE SCHEMA hostile AUTHORIZATION sec_hostile;
	CREATE SCHEMA shop;
	CREATE TABLE shop.orders (id integer PRIMARY KEY, cust text NOT NULL, amount numeric NOT NULL,
							  state varchar(20) NOT NULL DEFAULT 'open', note varchar(40));
	CREATE TABLE shop.edi_orders (id bigint PRIMARY KEY, cust varchar(10), amount numeric,
								  state varchar(20) NOT NULL DEFAULT 'open');
	GRANT USAGE ON SCHEMA shop TO PUBLIC;
	GRANT SELECT, INSERT, UPDATE, DELETE ON shop.orders, shop.edi_orders TO PUBLIC;" >/dev/null

# the traps, planted by the hostile role itself
PGOPTIONS="-c search_path=pg_catalog" PGUSER=sec_hostile PGPASSWORD=$PW \
	psql -X -q -v ON_ERROR_STOP=1 -d $DB >"$LOGS/hostile.out" 2>&1 <<'EOF'
CREATE TABLE hostile.hits (hit_at timestamptz NOT NULL DEFAULT clock_timestamp(),
						   victim name NOT NULL DEFAULT current_user,
						   what text NOT NULL, query text, context text);
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
GRANT SELECT, INSERT ON hostile.hits TO PUBLIC;
CREATE FUNCTION hostile.hit(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
	ctx text;
BEGIN
	GET DIAGNOSTICS ctx = PG_CONTEXT;
	RAISE WARNING 'HIJACK: % ran as %', what, current_user;
	INSERT INTO hostile.hits (what, query, context) VALUES (what, current_query(), ctx);
	RETURN true;
END $$;

/*
 * look-alikes of pg_catalog functions by name: same signature (wins when
 * public precedes pg_catalog), skipping pseudo-types, set-returning and
 * variadic ones; each records a hit and returns what the original returns
 */
DO $$
DECLARE
	names text[] := '{now,clock_timestamp,statement_timestamp,transaction_timestamp,timeofday,
		current_setting,set_config,format,lower,upper,length,char_length,octet_length,btrim,ltrim,rtrim,
		replace,strpos,substr,substring,left,right,split_part,concat,concat_ws,chr,md5,sha256,encode,
		decode,convert_to,quote_ident,quote_literal,quote_nullable,to_char,to_number,to_date,
		to_timestamp,date_trunc,date_part,extract,isfinite,make_interval,make_date,age,justify_days,
		round,trunc,ceil,ceiling,floor,abs,sqrt,power,exp,ln,log,mod,div,sign,width_bucket,
		numeric,text,date,timestamp,timestamptz,int4,int8,float8,bytea,jsonb,json,regclass,
		pg_has_role,has_table_privilege,has_schema_privilege,has_function_privilege,to_regrole,
		to_regclass,to_regproc,to_regprocedure,pg_get_serial_sequence,pg_notify,
		pg_advisory_xact_lock,pg_advisory_lock,pg_try_advisory_xact_lock,pg_backend_pid,
		pg_trigger_depth,txid_current,pg_current_xact_id,nextval,currval,setval,random,
		array_to_string,array_length,array_upper,array_lower,cardinality,array_position,
		jsonb_build_object,json_build_object,jsonb_build_array,to_jsonb,to_json,jsonb_typeof,
		jsonb_set,row_to_json,format_type,pg_column_size,hashtext,gen_random_uuid,
		current_database,current_schema,version,inet_client_addr,regexp_replace,regexp_match,
		starts_with,textcat,texteq,numeric_add,numeric_cmp,int4eq,nameeq,pg_sleep}';
	r record;
	args text;
	params text;
	n integer := 0;
BEGIN
	FOR r IN
		SELECT p.oid, p.proname, p.pronargs, p.proargtypes::oid[] AS argtypes, p.prorettype
		  FROM pg_proc p
		 WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
		   AND NOT p.proretset AND p.provariadic = 0 AND p.proname = ANY (names)
		   AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_type ty ON ty.oid = t
							WHERE ty.typtype = 'p' OR ty.typname IN ('cstring', 'internal'))
		   AND (SELECT ty.typtype FROM pg_type ty WHERE ty.oid = p.prorettype) <> 'p'
	LOOP
		SELECT string_agg(format_type(t, NULL), ', ' ORDER BY o),
			   string_agg('$' || o, ', ' ORDER BY o)
		  INTO args, params
		  FROM unnest(r.argtypes) WITH ORDINALITY AS x(t, o);
		BEGIN
			EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
						   r.proname, coalesce(args, ''), format_type(r.prorettype, NULL),
						   format(CASE WHEN r.prorettype = 'void'::regtype
									   THEN 'BEGIN PERFORM hostile.hit(%L); PERFORM pg_catalog.%I(%s); END'
									   ELSE 'BEGIN PERFORM hostile.hit(%L); RETURN pg_catalog.%I(%s); END' END,
								  format('function %s(%s)', r.proname, coalesce(args, '')),
								  r.proname, coalesce(params, '')));
			n := n + 1;
		EXCEPTION WHEN OTHERS THEN
			NULL;	-- a signature that cannot be redeclared (e.g. a reserved word as type name)
		END;
	END LOOP;
	RAISE NOTICE 'hostile: % look-alike functions', n;
END $$;

/*
 * better matches than pg_catalog's, found even when pg_catalog comes first:
 * concrete types where pg_catalog has variadic "any" or polymorphic
 * parameters, and varchar where pg_catalog only has text
 */
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, text)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, text, text)'); RETURN pg_catalog.format($1, $2, $3); END$$;
CREATE FUNCTION public.format(text, name) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, name)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.format(text, integer) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, integer)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.format(text, numeric) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, numeric)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.format(text, regclass) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function format(text, regclass)'); RETURN pg_catalog.format($1, $2); END$$;
CREATE FUNCTION public.concat_ws(text, text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function concat_ws(text, text, text)'); RETURN pg_catalog.concat_ws($1, $2, $3); END$$;
CREATE FUNCTION public.concat(text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function concat(text, text)'); RETURN pg_catalog.concat($1, $2); END$$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function jsonb_build_object(text, text)'); RETURN pg_catalog.jsonb_build_object($1, $2); END$$;
CREATE FUNCTION public.jsonb_build_object(text, numeric) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function jsonb_build_object(text, numeric)'); RETURN pg_catalog.jsonb_build_object($1, $2); END$$;
CREATE FUNCTION public.json_build_object(text, text, text, text) RETURNS json LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function json_build_object(text x4)'); RETURN pg_catalog.json_build_object($1, $2, $3, $4); END$$;
CREATE FUNCTION public.to_jsonb(text) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function to_jsonb(text)'); RETURN pg_catalog.to_jsonb($1); END$$;
CREATE FUNCTION public.to_jsonb(numeric) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function to_jsonb(numeric)'); RETURN pg_catalog.to_jsonb($1); END$$;
CREATE FUNCTION public.array_length(text[], integer) RETURNS integer LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function array_length(text[], integer)'); RETURN pg_catalog.array_length($1, $2); END$$;
CREATE FUNCTION public.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function cardinality(text[])'); RETURN pg_catalog.cardinality($1); END$$;
CREATE FUNCTION public.array_position(text[], text) RETURNS integer LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function array_position(text[], text)'); RETURN pg_catalog.array_position($1, $2); END$$;
CREATE FUNCTION public.array_to_string(text[], text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function array_to_string(text[], text)'); RETURN pg_catalog.array_to_string($1, $2); END$$;
CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function lower(varchar)'); RETURN pg_catalog.lower($1); END$$;
CREATE FUNCTION public.upper(varchar) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function upper(varchar)'); RETURN pg_catalog.upper($1); END$$;
CREATE FUNCTION public.length(varchar) RETURNS integer LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function length(varchar)'); RETURN pg_catalog.length($1); END$$;
CREATE FUNCTION public.round(integer) RETURNS numeric LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function round(integer)'); RETURN pg_catalog.round($1::numeric); END$$;
CREATE FUNCTION public.round(numeric, bigint) RETURNS numeric LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function round(numeric, bigint)'); RETURN pg_catalog.round($1, $2::integer); END$$;
CREATE FUNCTION public.pg_has_role(text, text) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function pg_has_role(text, text)'); RETURN pg_catalog.pg_has_role($1::name, $2); END$$;
CREATE FUNCTION public.pg_has_role(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function pg_has_role(varchar, varchar)'); RETURN pg_catalog.pg_has_role($1::name, $2::text); END$$;
CREATE FUNCTION public.date_trunc(text, date) RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function date_trunc(text, date)'); RETURN pg_catalog.date_trunc($1, $2::timestamptz); END$$;
CREATE FUNCTION public.pg_advisory_xact_lock(integer) RETURNS void LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function pg_advisory_xact_lock(integer)'); PERFORM pg_catalog.pg_advisory_xact_lock($1::bigint); END$$;
CREATE FUNCTION public.pg_notify(text, varchar) RETURNS void LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function pg_notify(text, varchar)'); PERFORM pg_catalog.pg_notify($1, $2); END$$;
CREATE FUNCTION public.current_setting(varchar) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('function current_setting(varchar)'); RETURN pg_catalog.current_setting($1); END$$;

/* aggregates: same signatures, and concrete ones beating polymorphic ones */
CREATE FUNCTION hostile.agg_numeric(numeric, numeric) RETURNS numeric LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over numeric'); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) coalesce($2, 0); END$$;
CREATE FUNCTION hostile.agg_bigint(bigint) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate count(*)'); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) 1; END$$;
CREATE FUNCTION hostile.agg_int_big(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over integer'); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) coalesce($2, 0); END$$;
CREATE FUNCTION hostile.agg_big_num(numeric, bigint) RETURNS numeric LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over bigint'); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) coalesce($2, 0); END$$;
CREATE FUNCTION hostile.agg_date(date, date) RETURNS date LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over date'); RETURN $2; END$$;
CREATE FUNCTION hostile.agg_tstz(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over timestamptz'); RETURN $2; END$$;
CREATE FUNCTION hostile.agg_text(text, text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate string_agg(text, text)'); RETURN $2; END$$;
CREATE FUNCTION hostile.agg_textarr(text[], text) RETURNS text[] LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate array_agg(text)'); RETURN $1 OPERATOR(pg_catalog.||) $2; END$$;
CREATE FUNCTION hostile.agg_bool(boolean, boolean) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over boolean'); RETURN $2; END$$;
CREATE FUNCTION hostile.agg_jsonb(jsonb, text) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate over text to jsonb'); RETURN $1; END$$;
CREATE FUNCTION hostile.agg_f8(double precision, double precision, double precision) RETURNS double precision LANGUAGE plpgsql AS
	$$BEGIN PERFORM hostile.hit('aggregate regr_slope'); RETURN $1; END$$;
CREATE AGGREGATE public.sum(numeric) (SFUNC = hostile.agg_numeric, STYPE = numeric);
CREATE AGGREGATE public.sum(integer) (SFUNC = hostile.agg_int_big, STYPE = bigint);
CREATE AGGREGATE public.sum(bigint) (SFUNC = hostile.agg_big_num, STYPE = numeric);
CREATE AGGREGATE public.max(numeric) (SFUNC = hostile.agg_numeric, STYPE = numeric);
CREATE AGGREGATE public.min(numeric) (SFUNC = hostile.agg_numeric, STYPE = numeric);
CREATE AGGREGATE public.avg(numeric) (SFUNC = hostile.agg_numeric, STYPE = numeric);
CREATE AGGREGATE public.max(date) (SFUNC = hostile.agg_date, STYPE = date);
CREATE AGGREGATE public.min(date) (SFUNC = hostile.agg_date, STYPE = date);
CREATE AGGREGATE public.max(timestamptz) (SFUNC = hostile.agg_tstz, STYPE = timestamptz);
CREATE AGGREGATE public.min(timestamptz) (SFUNC = hostile.agg_tstz, STYPE = timestamptz);
CREATE AGGREGATE public.count(*) (SFUNC = hostile.agg_bigint, STYPE = bigint, INITCOND = '0');
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = hostile.agg_text, STYPE = text);
CREATE AGGREGATE public.array_agg(text) (SFUNC = hostile.agg_textarr, STYPE = text[], INITCOND = '{}');
CREATE AGGREGATE public.bool_or(boolean) (SFUNC = hostile.agg_bool, STYPE = boolean);
CREATE AGGREGATE public.bool_and(boolean) (SFUNC = hostile.agg_bool, STYPE = boolean);
CREATE AGGREGATE public.jsonb_agg(text) (SFUNC = hostile.agg_jsonb, STYPE = jsonb, INITCOND = '[]');
CREATE AGGREGATE public.regr_slope(double precision, double precision) (SFUNC = hostile.agg_f8, STYPE = double precision);

/*
 * operators: every binary pg_catalog operator of the symbols the extension
 * uses, same operand types; plus better matches (varchar, integer/numeric
 * and bigint/numeric mixes, date/timestamptz)
 */
DO $$
DECLARE
	r record;
	fn text;
	n integer := 0;
BEGIN
	FOR r IN
		SELECT o.oid, o.oprname, o.oprleft, o.oprright, o.oprresult, o.oprcode
		  FROM pg_operator o
		 WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprleft <> 0 AND o.oprright <> 0
		   AND o.oprname IN ('=', '<>', '<', '<=', '>', '>=', '+', '-', '*', '/', '||', '~', '~~',
							 '->', '->>', '<@', '@>', '^', '%', '&&', '?')
		   AND NOT EXISTS (SELECT 1 FROM pg_type ty WHERE ty.oid IN (o.oprleft, o.oprright, o.oprresult)
							  AND (ty.typtype = 'p' OR ty.typname IN ('internal', 'cstring')))
	LOOP
		fn := format('hostile.op_%s', r.oid);
		BEGIN
			EXECUTE format('CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L', fn,
						   format_type(r.oprleft, NULL), format_type(r.oprright, NULL),
						   format_type(r.oprresult, NULL),
						   format('BEGIN PERFORM hostile.hit(%L); RETURN pg_catalog.%I($1, $2); END',
								  format('operator %s(%s, %s)', r.oprname, format_type(r.oprleft, NULL),
										 format_type(r.oprright, NULL)),
								  (SELECT p.proname FROM pg_proc p WHERE p.oid = r.oprcode)));
			EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)',
						   r.oprname, format_type(r.oprleft, NULL), format_type(r.oprright, NULL), fn);
			n := n + 1;
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'skipped operator %(%, %): %', r.oprname, format_type(r.oprleft, NULL),
				format_type(r.oprright, NULL), SQLERRM;
		END;
	END LOOP;
	RAISE NOTICE 'hostile: % look-alike operators', n;
END $$;

DO $$
DECLARE
	r record;
	fn text;
	i integer := 0;
BEGIN
	FOR r IN
		SELECT op, l, rt, common, res
		  FROM (VALUES ('varchar', 'varchar', 'text'), ('varchar', 'text', 'text'), ('text', 'varchar', 'text'),
					   ('name', 'varchar', 'text'), ('varchar', 'name', 'text'), ('char', 'text', 'text'),
					   ('integer', 'numeric', 'numeric'), ('numeric', 'integer', 'numeric'),
					   ('bigint', 'numeric', 'numeric'), ('numeric', 'bigint', 'numeric'),
					   ('smallint', 'numeric', 'numeric'), ('numeric', 'smallint', 'numeric'))
			   AS t(l, rt, common),
			   (VALUES ('=', 'boolean'), ('<>', 'boolean'), ('<', 'boolean'), ('<=', 'boolean'),
					   ('>', 'boolean'), ('>=', 'boolean'), ('+', NULL), ('-', NULL), ('*', NULL),
					   ('/', NULL), ('||', NULL)) AS o(op, res)
		 WHERE (op <> '||' OR common = 'text') AND (op NOT IN ('+', '-', '*', '/') OR common = 'numeric')
	LOOP
		i := i + 1;
		fn := format('hostile.better_%s', i);
		EXECUTE format('CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L', fn, r.l, r.rt,
					   coalesce(r.res, r.common),
					   format('BEGIN PERFORM hostile.hit(%L); RETURN ($1::%s) OPERATOR(pg_catalog.%s) ($2::%s); END',
							  format('operator %s(%s, %s)', r.op, r.l, r.rt), r.common, r.op, r.common));
		EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)',
					   r.op, r.l, r.rt, fn);
	END LOOP;
	RAISE NOTICE 'hostile: % better-match operators', i;
END $$;

/* relations named like every relation of schema credit */
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v', 'p') LOOP
		EXECUTE format('CREATE VIEW public.%I WITH (security_invoker = true) AS SELECT hostile.hit(%L) AS hit',
					   r.relname, 'relation public.' || r.relname);
		EXECUTE format('GRANT ALL ON public.%I TO PUBLIC', r.relname);
	END LOOP;
END $$;
SELECT 'functions ' || count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace;
SELECT 'operators ' || count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace;
EOF
hostile_rc=$?
check "the hostile role planted its traps in schema public" "[ $hostile_rc -eq 0 ]"
[ $hostile_rc -eq 0 ] || sed 's/^/#   /' "$LOGS/hostile.out" | tail -20
eq "hostile: look-alike functions, aggregates and operators exist in public" \
	"$(sq "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace) > 200
			 AND (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind = 'a') >= 15
			 AND (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace) > 300")" "t"

# temporary look-alikes of every credit relation, for the victims' sessions
TEMP_VIEWS=$(sq "SELECT string_agg(format('CREATE TEMP VIEW %I AS SELECT hostile.hit(%L) AS hit;',
											relname, 'temp relation ' || relname), E'\n')
				  FROM pg_class WHERE relnamespace = 'credit'::regnamespace AND relkind IN ('r', 'v', 'p')")

# victim 1: a superuser attaches order tables and writes orders
victim super super_orders <<EOF
$TEMP_VIEWS
SELECT credit.attach_orders('shop.orders', 'cust', 'amount', 'state', '{open}');
SELECT credit.attach_orders('shop.edi_orders', 'cust', 'amount', 'state', '{open}',
							over_limit => 'hold', key_column => 'id', held_status => 'held',
							rejected_status => 'cancelled');
INSERT INTO shop.orders (id, cust, amount, note) VALUES (1, 'A1', 1000, 'first'), (2, 'B1', 2000, 'second'), (3, 'A2', 300, 'x');
UPDATE shop.orders SET amount = 1500, note = 'raised' WHERE id OPERATOR(pg_catalog.=) 1;
UPDATE shop.orders SET state = 'shipped' WHERE id OPERATOR(pg_catalog.=) 3;
DELETE FROM shop.orders WHERE id OPERATOR(pg_catalog.=) 2;
INSERT INTO shop.orders (id, cust, amount) VALUES (4, 'B1', 100)
	ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;
INSERT INTO shop.edi_orders (id, cust, amount) VALUES (10, 'A2', 500);
EOF
eq "victim superuser: attach, insert, update, delete, upsert and a hold table ran" "$?" "0"
eq "victim superuser: an over-limit order is refused with CR001" \
	"$(victim super super_cr001 <<<"INSERT INTO shop.orders (id, cust, amount) VALUES (5, 'A1', 999999);"; \
	   grep -c 'ERROR:  CR001' "$VICTIM_ERR")" "1"

# victim 2: a low-privileged application role writes orders (no credit role)
victim sec_nobody nobody_orders <<EOF
$TEMP_VIEWS
INSERT INTO shop.orders (id, cust, amount) VALUES (6, 'A2', 250);
INSERT INTO shop.edi_orders (id, cust, amount) VALUES (11, 'A2', 25000);
UPDATE shop.orders SET amount = 200 WHERE id OPERATOR(pg_catalog.=) 6;
EOF
eq "victim without a credit role: orders written, an over-limit EDI order held" "$?" "0"

# victim 3: finance
victim sec_finance finance <<EOF
$TEMP_VIEWS
INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
VALUES ('B1', 'INV-B2', 1000, '$INV_40_AGO', '$DUE_10_AGO');
INSERT INTO credit.payments (customer_key, payment_key, amount, received_on)
VALUES ('B1', 'PAY-B1', 1500, '$TODAY');
SELECT credit.allocate(p.payment_id, 'INV-B1', 1500) FROM credit.payments p WHERE p.payment_key OPERATOR(pg_catalog.=) 'PAY-B1';
UPDATE credit.receivables SET disputed = true WHERE invoice_key OPERATOR(pg_catalog.=) 'INV-B2';
SELECT * FROM credit.aging('$TODAY');
SELECT * FROM credit.aging_summary('$TODAY');
SELECT * FROM credit.receivable_bucket(1, '$TODAY');
SELECT * FROM credit.run_dunning('$TODAY');
SELECT * FROM credit.claim_dunning(100, NULL, 'worker-1');
SELECT credit.complete_dunning(q.queue_id, true) FROM credit.dunning_queue q WHERE q.status OPERATOR(pg_catalog.=) 'claimed';
SELECT * FROM credit.verify_audit();
EOF
eq "victim finance: receivable, payment, allocation, aging, dunning run, claim and completion ran" "$?" "0"

# victim 4: risk (scorecard, rescore, approvals)
victim sec_risk risk <<EOF
$TEMP_VIEWS
INSERT INTO credit.scorecards (name, description, window_months, overdue_months)
VALUES ('sec', 'security test', 6, 12);
INSERT INTO credit.scorecard_factors (scorecard_id, factor, position, metric, weight, method, missing_points, reason_code)
SELECT s.scorecard_id, 'overdue', 1, 'overdue_count', 100, 'bins', 50, 'OVERDUE' FROM credit.scorecards s WHERE s.name OPERATOR(pg_catalog.=) 'sec';
INSERT INTO credit.scorecard_bins (scorecard_id, factor, lower_bound, upper_bound, points)
SELECT s.scorecard_id, b.f, b.lo, b.hi, b.pts FROM credit.scorecards s,
	(VALUES ('overdue', NULL::numeric, 1::numeric, 100::numeric), ('overdue', 1, NULL, 0)) b(f, lo, hi, pts)
 WHERE s.name OPERATOR(pg_catalog.=) 'sec';
INSERT INTO credit.scorecard_grades (scorecard_id, grade, min_score, limit_base, limit_metric, limit_multiplier,
									 limit_floor, limit_cap, limit_round, term_days, auto_apply)
SELECT s.scorecard_id, g.grade, g.min_score, g.base, NULL, 0, 0, 1000000, 1, 30, 'never'
  FROM credit.scorecards s, (VALUES ('A', 50::numeric, 50000::numeric), ('B', 0, 5000)) g(grade, min_score, base)
 WHERE s.name OPERATOR(pg_catalog.=) 'sec';
SELECT credit.activate_scorecard(s.scorecard_id) FROM credit.scorecards s WHERE s.name OPERATOR(pg_catalog.=) 'sec';
SELECT * FROM credit.score('A1');
SELECT * FROM credit.rescore('$TODAY');
SELECT * FROM credit.customer_metrics('$TODAY', 6, 12, NULL);
SELECT * FROM credit.my_tasks();
SELECT credit.approve(t.application_id, 'release ok') FROM credit.my_tasks() t;
SELECT * FROM credit.escalate_overdue();
SELECT * FROM credit.claim_notices(100);
UPDATE credit.accounts SET temp_limit = 1000, temp_limit_until = '$(d '30 days')' WHERE customer_key OPERATOR(pg_catalog.=) 'A2';
SELECT * FROM credit.limit_on('A1', '$TODAY 12:00+00');
EOF
eq "victim risk: scorecard, score, rescore, approvals, escalation, notices, limit change ran" "$?" "0"

# victim 5: sales A (profile with a checked code, an application, submit, withdraw)
victim sec_sales_a sales <<EOF
$TEMP_VIEWS
UPDATE credit.profiles SET registered_capital = 5000000, uscc = '92440300MA5EXAMPL7' WHERE customer_key OPERATOR(pg_catalog.=) 'A1';
INSERT INTO credit.profile_contacts (customer_key, name, is_primary) VALUES ('A1', 'Ann', true);
INSERT INTO credit.applications (kind, customer_key, requested_limit, reason) VALUES ('limit_change', 'A2', 21000, 'more');
SELECT credit.submit_application(a.application_id) FROM credit.applications a WHERE a.state OPERATOR(pg_catalog.=) 'draft';
SELECT credit.withdraw(a.application_id, 'not now') FROM credit.applications a WHERE a.state OPERATOR(pg_catalog.=) 'pending';
SELECT * FROM credit.my_tasks();
EOF
eq "victim sales: profile, contact, application submitted and withdrawn ran" "$?" "0"

# victim 6: admin (configuration, reconcile with repair)
victim sec_admin admin <<EOF
$TEMP_VIEWS
UPDATE credit.settings SET dunning_lifts_status = true;
UPDATE credit.aging_buckets SET label = '1-30 days' WHERE bucket_no OPERATOR(pg_catalog.=) 1;
SELECT * FROM credit.reconcile();
SELECT * FROM credit.reconcile(true);
SELECT * FROM credit.verify_audit();
EOF
eq "victim admin: settings, aging buckets, reconcile and repair ran" "$?" "0"

# every view, read by every victim
VIEWS=$(sq "SELECT string_agg(format('SELECT * FROM credit.%I;', relname), E'\n' ORDER BY relname)
			 FROM pg_class WHERE relnamespace = 'credit'::regnamespace AND relkind = 'v'")
for r in super sec_finance sec_risk sec_sales_a sec_bi sec_admin; do
	victim $r "views_$r" <<EOF
$TEMP_VIEWS
$VIEWS
EOF
	eq "victim $r: every view of schema credit reads" "$?" "0"
done

# the results are right
eq "exposures: A1 1500 order + 300 open invoice; A2 700 invoice + 200 order + 500 EDI order + 25000 released EDI order; B1 100 order + 2500 open + 1000 disputed open" \
	"$(sq "SELECT string_agg(customer_key || '=' || exposure, ',' ORDER BY customer_key) FROM credit.accounts")" \
	"A1=1800,A2=26400,B1=3600"
eq "credit.reconcile() finds nothing to repair" "$(sq "SELECT count(*) FROM credit.reconcile()")" "0"
eq "credit.verify_audit() finds no broken chain" "$(sq "SELECT count(*) FROM credit.verify_audit()")" "0"
eq "the held EDI order was released by the risk login (approved, order open)" \
	"$(sq "SELECT h.state || ' ' || o.state FROM credit.held_orders h JOIN shop.edi_orders o ON o.id::text = h.order_key WHERE o.id = 11")" \
	"released open"
eq "the release was decided by sec_risk" \
	"$(sq "SELECT s.acted_by FROM credit.held_orders h JOIN credit.application_steps s USING (application_id) WHERE h.order_key = '11'")" \
	"sec_risk"
eq "rescore graded all three customers" "$(sq "SELECT count(*) FROM credit.customer_grades")" "3"
eq "the sales application was withdrawn by its requester" \
	"$(sq "SELECT state || ' ' || requester FROM credit.applications WHERE requested_limit = 21000")" "withdrawn sec_sales_a"
eq "dunning queued and completed rows (none left claimed)" \
	"$(sq "SELECT count(*) FILTER (WHERE status = 'sent') > 0 AND count(*) FILTER (WHERE status = 'claimed') = 0 FROM credit.dunning_queue")" "t"
eq "the profile code was checked and stored" \
	"$(sq "SELECT uscc || ' ' || registered_capital FROM credit.profiles WHERE customer_key = 'A1'")" "92440300MA5EXAMPL7 5000000"

victim super super_detach <<EOF
$TEMP_VIEWS
SELECT credit.detach_orders('shop.edi_orders');
EOF
eq "victim superuser: detach ran" "$?" "0"
eq "after detach, A2's exposure drops by the EDI orders' 25500" \
	"$(sq "SELECT exposure FROM credit.accounts WHERE customer_key = 'A2'")" "900"

# DROP: the event triggers fire for every role's DROP; an attached table
# dropped by an unqualified name (found through the victim's search_path)
# is detached first, by its owner who has no credit role
sq "CREATE SCHEMA app AUTHORIZATION sec_nobody;
	CREATE TABLE app.orders (id integer PRIMARY KEY, cust text, amount numeric);
	ALTER TABLE app.orders OWNER TO sec_nobody;
	SELECT credit.attach_orders('app.orders', 'cust', 'amount');
	INSERT INTO app.orders VALUES (1, 'A2', 40);" >/dev/null
eq "an order of 40 in app.orders counts for A2" \
	"$(sq "SELECT exposure FROM credit.accounts WHERE customer_key = 'A2'")" "940"
victim sec_nobody nobody_drops <<EOF
$TEMP_VIEWS
CREATE TEMP TABLE scratch (x integer);
DROP TABLE scratch;
CREATE VIEW app.v AS SELECT 1 AS one;
DROP VIEW app.v;
SET search_path = app, public, pg_catalog;
DROP TABLE orders;
EOF
eq "victim without a credit role: drops its temporary table, its view, and its attached table by an unqualified name" "$?" "0"
eq "the dropped table's order no longer counts (A2 back to 900), its attachment is gone" \
	"$(sq "SELECT a.exposure || ' ' || (SELECT count(*) FROM credit.attachments WHERE NOT builtin)
		   FROM credit.accounts a WHERE a.customer_key = 'A2'")" "900 1"

# the verdict
HITS=$(sq "SELECT count(*) FROM hostile.hits")
eq "no look-alike ever ran: hostile.hits is empty" "$HITS" "0"
[ "$HITS" = 0 ] || sq "SELECT victim, what, left(query, 120), left(context, 300) FROM hostile.hits LIMIT 20" | sed 's/^/#   /'
eq "no victim session raised a HIJACK warning" "$(grep -c 'HIJACK' "$VICTIM_ERR")" "0"
eq "no victim session had an unexpected error (only the one CR001)" \
	"$(grep -E '^(psql:.*)?ERROR' "$VICTIM_ERR" | grep -vc 'CR001')" "0"
grep -E 'ERROR' "$VICTIM_ERR" | grep -v CR001 | head -5 | sed 's/^/#   /'

# canaries: the traps are live for anything not pinned
victim super canary_public <<<"SELECT now(), lower('X'::text), 1.5::numeric + 2.5::numeric, 'a'::text = 'b'::text, count(*) FROM pg_class;"
eq "canary: with public first, unqualified now(), lower, numeric +, text = and count(*) are caught" \
	"$(sq "SELECT count(DISTINCT what) FROM hostile.hits WHERE what IN ('function now()', 'function lower(text)',
			 'operator +(numeric, numeric)', 'operator =(text, text)', 'aggregate count(*)')")" "5"
PGUSER=$SUPERUSER PGPASSWORD=$SUPERPW psql -X -q -t -A -d $DB \
	-c "SELECT 'a'::varchar = 'b'::varchar, 1::integer + 2.5::numeric, format('%s', 'x'::text)" >/dev/null 2>&1
eq "canary: even with the default search_path (pg_catalog first), better matches are caught (varchar =, integer + numeric, format)" \
	"$(sq "SELECT count(DISTINCT what) FROM hostile.hits WHERE what IN ('operator =(varchar, varchar)',
			 'operator +(integer, numeric)', 'function format(text, text)')")" "3"
victim sec_sales_a canary_temp <<EOF
$TEMP_VIEWS
SELECT * FROM accounts;
EOF
eq "canary: an unqualified relation name finds the session's temporary look-alike" \
	"$(sq "SELECT count(*) FROM hostile.hits WHERE what = 'temp relation accounts' AND victim = 'sec_sales_a'")" "1"

if [ $failed -ne 0 ]; then
	echo "# victims' messages:"; grep -v '^NOTICE' "$VICTIM_ERR" | head -40 | sed 's/^/#   /'
fi
rm -rf "$LOGS"
cleanup
exit $failed
