#!/usr/bin/env bash
# test/cron.sh: credit.run_dunning() scheduled with pg_cron, run for real.
# Runs inside the test cluster, which test/run_all.sh starts with
# shared_preload_libraries = pg_cron, cron.database_name = credit_cron and
# cron.use_background_workers = on.  Prints "ok N - ..." / "not ok N - ...".
set -uo pipefail
n=0
failed=0
check() {	# description, command that succeeds when the check holds
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi
}
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d credit_cron -c "$1"; }

dropdb --if-exists credit_cron >/dev/null 2>&1
createdb credit_cron
q "CREATE EXTENSION pg_cron; CREATE EXTENSION credit;
   INSERT INTO credit.accounts (customer_key, customer_name, credit_limit)
   VALUES ('C1', 'Cron Test Co.', 1000);
   INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
   VALUES ('C1', 'INV-1', 400, current_date - 40, current_date - 10);" >/dev/null

# the daily schedule the README documents
check "the daily job is scheduled" \
	"[ \"\$(q \"SELECT cron.schedule('credit-dunning', '0 6 * * *', 'SELECT credit.run_dunning()') > 0\")\" = t ]"
check "cron.job holds it" \
	"[ \"\$(q \"SELECT count(*) FROM cron.job WHERE jobname = 'credit-dunning' AND command = 'SELECT credit.run_dunning()'\")\" = 1 ]"

# the same job every minute, to see pg_cron really run it
q "SELECT cron.schedule('credit-dunning-now', '* * * * *', 'SELECT credit.run_dunning()')" >/dev/null
status=""
for _ in $(seq 1 80); do
	status=$(q "SELECT status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
				 WHERE j.jobname = 'credit-dunning-now' ORDER BY d.runid DESC LIMIT 1")
	[ "$status" = succeeded ] || [ "$status" = failed ] && break
	sleep 1
done
check "pg_cron ran credit.run_dunning() (status: ${status:-none within 80 s})" "[ \"$status\" = succeeded ]"
check "the run queued the overdue invoice's reminder" \
	"[ \"\$(q \"SELECT count(*) > 0 FROM credit.dunning_queue WHERE invoice_key = 'INV-1'\")\" = t ]"
q "SELECT cron.unschedule('credit-dunning-now'); SELECT cron.unschedule('credit-dunning')" >/dev/null
exit $failed
