#!/bin/bash
# PostgreSQL for the compose deployment: on an empty volume, initdb with a superuser password, run the
# scripts in /docker-entrypoint-initdb.d against a server listening on its socket only, then serve.
# (The same contract as the public postgres image, so that image can stand in for this one.)
set -euo pipefail
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in the env file}"
export PGDATA=${PGDATA:-/var/lib/postgresql/data}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  # Other containers reach it over the compose network, always with a password.
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # A socket of its own while initialising, so the healthcheck (on /run/postgresql) stays red until
  # the real server is up and nothing connects half-way.
  init_socket=$(mktemp -d)
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $init_socket" -w start >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$script" ] || continue
    echo "initdb: running $script"
    PGHOST=$init_socket bash "$script"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /run/postgresql
