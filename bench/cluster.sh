# bench/cluster.sh: sourced by the bench scripts.  start_cluster NAME PORT
# MAX_CONNECTIONS SHARED_BUFFERS starts a throwaway cluster of their own
# (initdb/pg_ctl as the postgres user, fsync on, autovacuum off, the socket
# in a fresh temporary directory, the first free port from PORT on) and
# stops and removes it on exit.  Sets PGBIN, WORK, DATA and PORT.
#
# Environment: BENCH_DIR, the directory the temporary directory (data and
# socket) is made in (default $TMPDIR, else /tmp); it must exist.

PGBIN=$(/usr/lib/postgresql/15/bin/pg_config --bindir)

as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	elif [ "$(id -un)" = postgres ]; then
		"$@"
	else
		sudo -u postgres "$@"
	fi
}

port_busy() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
	[ -e "/var/run/postgresql/.s.PGSQL.$1" ] || [ -e "/tmp/.s.PGSQL.$1" ] && return 0
	return 1
}

started=no
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$started" = yes ]; then
		as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
	exit "$rc"
}

start_cluster() {
	local name=$1 max_connections=$3 shared_buffers=$4
	PORT=$2
	WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/credit-$name.XXXXXX")
	DATA=$WORK/data
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP PIPE	# PIPE: a closed stdout still stops the cluster

	if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$WORK"; else sudo chown postgres:postgres "$WORK"; fi
	chmod 755 "$WORK"			# the socket lives here; the data directory is 0700

	for _ in $(seq 50); do
		port_busy "$PORT" || break
		PORT=$((PORT + 1))
	done
	port_busy "$PORT" && { echo "bench: no free port found" >&2; exit 1; }

	as_postgres "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
	as_postgres tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
# bench/cluster.sh for $name
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK'
fsync = on
max_connections = $max_connections
shared_buffers = $shared_buffers
max_wal_size = 8GB
checkpoint_timeout = 1h
autovacuum = off			# the scripts vacuum explicitly
log_min_messages = warning
CONF
	if ! as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start >/dev/null; then
		cat "$WORK/server.log" >&2
		echo "bench: the throwaway cluster did not start" >&2
		exit 1
	fi
	started=yes
}
