#!/bin/bash
# The database and its two roles, from the env file's secrets:
#   DATABASE_OWNER_ROLE (backoffice_owner)  owns the database and every table; migrations run as it
#   DATABASE_APP_ROLE   (backoffice_app)    what web, workers and beat connect as: LOGIN, not a
#                                           superuser, owns nothing; reads and writes the owner's
#                                           tables (the audit table: INSERT and SELECT only)
set -euo pipefail
: "${DATABASE_OWNER_PASSWORD:?set DATABASE_OWNER_PASSWORD in the env file}"
: "${DATABASE_APP_PASSWORD:?set DATABASE_APP_PASSWORD in the env file}"
database=${DATABASE_NAME:-backoffice}
owner=${DATABASE_OWNER_ROLE:-backoffice_owner}
app=${DATABASE_APP_ROLE:-backoffice_app}

psql -v ON_ERROR_STOP=1 -U postgres -d postgres \
  -v owner="$owner" -v app="$app" -v database="$database" \
  -v owner_password="$DATABASE_OWNER_PASSWORD" -v app_password="$DATABASE_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
CREATE DATABASE :"database" OWNER :"owner";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"app";
\connect :"database"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- Tables the owner creates are the application's to read and write; the audit migration takes
-- UPDATE, DELETE and TRUNCATE on the audit table back (it may only INSERT and SELECT there).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app";
SQL
echo "initdb: database $database owned by $owner; application role $app"
