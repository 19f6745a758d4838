#!/usr/bin/env bash
# Bring up a local PostgreSQL for the storage contract tests (idempotent; run as root).
#
# Installs Debian's postgresql when missing, starts its cluster, creates the role
# `profilebot` (password profilebot, CREATEDB) and the database `profilebot_test`.
# Stdout carries exactly one line, meant for `eval "$(bash .ci/postgres.sh)"`:
#   export PROFILEBOT_TEST_POSTGRES_URL=postgresql+psycopg://profilebot:profilebot@127.0.0.1:5432/profilebot_test
# Everything else goes to stderr.
#
# Whatever starts the server (apt's postinst, pg_ctlcluster, service) runs with stdin from
# /dev/null, output to a log file and fd 3 closed: a daemon that inherited the caller's pipe
# would keep `$(...)` (and CI's own output pipe) open forever.
set -euo pipefail
exec 3>&1 1>&2

log="$(mktemp -t postgres-setup.XXXXXX.log)"
detached() {
    if ! "$@" </dev/null >>"$log" 2>&1 3>&-; then
        echo "postgres.sh: '$*' failed:" >&2
        cat "$log" >&2
        return 1
    fi
}

if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: must run as root (it installs and starts the server)" >&2
    exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "postgres.sh: installing postgresql from Debian's packages" >&2
    detached apt-get update
    detached apt-get install -y postgresql
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
    detached pg_createcluster "$version" main
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    detached pg_ctlcluster "$version" main start || detached service postgresql start
fi

port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
for _ in $(seq 1 30); do
    if su postgres -c "pg_isready -q -p $port"; then break; fi
    sleep 1
done
su postgres -c "pg_isready -p $port"

psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qAtX $*"; }

if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname = 'profilebot'\"")" != "1" ]; then
    psql_admin "-c \"CREATE ROLE profilebot LOGIN PASSWORD 'profilebot' CREATEDB\""
else
    psql_admin "-c \"ALTER ROLE profilebot LOGIN PASSWORD 'profilebot' CREATEDB\""
fi
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = 'profilebot_test'\"")" != "1" ]; then
    psql_admin "-c \"CREATE DATABASE profilebot_test OWNER profilebot\""
fi

echo "postgres.sh: PostgreSQL $version ready on port $port" >&2
echo "export PROFILEBOT_TEST_POSTGRES_URL=postgresql+psycopg://profilebot:profilebot@127.0.0.1:${port}/profilebot_test" >&3
