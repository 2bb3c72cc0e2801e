#!/usr/bin/env bash
# test/run_all.sh: `make test`.  Builds and installs credit, starts one
# throwaway cluster (pg_virtualenv) and runs every suite in it through
# test/suites.sh, which ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
if ! bash test/setup.sh build; then
	echo "build: 0 passed, 1 failed"
	echo "0 passed, 1 failed"
	exit 1
fi
mkdir -p log
pg_virtualenv -v 15 -o shared_preload_libraries=pg_cron -o cron.database_name=credit_cron \
	-o cron.use_background_workers=on -o max_worker_processes=16 \
	bash test/suites.sh 2>&1 | tee log/all.log
rc=${PIPESTATUS[0]}
# pg_virtualenv talks after the suites: repeat their total as the last line
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' log/all.log | tail -1)
if [ -z "$summary" ]; then
	echo "0 passed, 1 failed"
	exit 1
fi
echo "$summary"
exit "$rc"
