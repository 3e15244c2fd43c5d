#!/bin/sh
# compose-harden lab: root-then-drop entrypoint (written for the lab, postgres-like).
# As root: make the data dir, fix its mode, chown whatever postgres does not own, then
# re-exec this script as postgres with gosu. As postgres: initdb on an empty dir, serve.
set -e
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA" || :
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 2775 /var/run/postgresql || :
	exec gosu postgres "$0" "$@"
fi
if [ "$1" = postgres ]; then
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		initdb --username=postgres --auth=trust -D "$PGDATA" >/dev/null
		printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
		printf 'host all all all trust\n' >> "$PGDATA/pg_hba.conf"
		echo "lab-pg: initialised $PGDATA"
	fi
	exec postgres -D "$PGDATA"
fi
exec "$@"
