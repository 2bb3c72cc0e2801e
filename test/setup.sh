#!/usr/bin/env bash
# test/setup.sh: the set-up shared by `make demo`, `make test` and `make bench`.
#   deps   install the Debian packages a fresh Debian 12 lacks (as root, or via sudo)
#   build  build and install the extension into the PostgreSQL 15 found by pg_config
#   demo   build, then run test/demo.sql in a throwaway cluster (pg_virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
      libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron python3-psycopg2)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
	local missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing: ${missing[*]}"
		as_root apt-get update -q
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
	fi
}

build() {
	export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	make -s PG_CONFIG=$PG_CONFIG
	as_root make -s install PG_CONFIG=$PG_CONFIG
}

case "${1:-}" in
	deps) deps ;;
	build) deps; build ;;
	demo)
		deps; build
		pg_virtualenv -v 15 psql -X -v ON_ERROR_STOP=1 -f test/demo.sql ;;
	*) echo "usage: $0 deps|build|demo" >&2; exit 2 ;;
esac
