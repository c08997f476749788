#!/usr/bin/env bash
# Deployment smoke test: build the images from Debian's packages, bring the compose stack up with
# podman-compose (with the sandbox as Clear Street), create the first administrator, sign in through
# the TLS proxy over HTTPS, then tear everything down (volumes included).
#
#   deploy/smoke.sh            (as root, on Debian; installs podman, runc, debootstrap if absent)
#   KEEP=1 deploy/smoke.sh     leaves the stack running for a look around
#   COLD=1 deploy/smoke.sh     rebuilds the base image and every layer (no cache)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { printf '[smoke %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# --- what the machine needs ------------------------------------------------------------------------
missing=()
# netavark sets up the containers' network with the iptables program (it fails "No such file or
# directory" without it).
for tool in podman runc debootstrap netavark:/usr/lib/podman/netavark aardvark-dns:/usr/lib/podman/aardvark-dns \
  iptables:/usr/sbin/iptables; do
  name=${tool%%:*}; path=${tool#*:}
  if [ "$path" = "$tool" ]; then command -v "$name" >/dev/null || missing+=("$name")
  else [ -x "$path" ] || missing+=("$name"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" uidmap >/dev/null
fi
make install >/dev/null  # podman-compose is a development dependency (uv.lock)
export CONTAINERS_CONF=$PWD/deploy/podman/containers.conf
COMPOSE=(.venv/bin/podman-compose -p backoffice-smoke --profile rehearsal)

# --- images ----------------------------------------------------------------------------------------
export BASE_IMAGE=localhost/backoffice-base:bookworm IMAGE_TAG=smoke
cache=()
if [ "${COLD:-0}" = 1 ]; then
  podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
  rm -f "/var/tmp/backoffice-base-bookworm.tar"
  cache=(--no-cache)
fi
deploy/base-image.sh "$BASE_IMAGE"
say "base image ready"
builds=$(mktemp -d /var/tmp/backoffice-builds.XXXXXX)
for target in app proxy db redis; do
  case $target in
    db) tag=localhost/backoffice-db:18.6 ;;
    redis) tag=localhost/backoffice-redis:6.2.14 ;;
    *) tag=localhost/backoffice-$target:$IMAGE_TAG ;;
  esac
  # The host's certificate store, for a network whose TLS is inspected (used while building only).
  podman build "${cache[@]}" --quiet --network host --logfile "$builds/$target.log" \
    --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca-certificates.crt:ro \
    --build-arg CA_BUNDLE=/run/host-ca-certificates.crt \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --target "$target" -t "$tag" . >/dev/null \
    || { tail -40 "$builds/$target.log" >&2; exit 1; }
  say "built $tag"
done

# --- a throwaway env file: fresh secrets, the sandbox as Clear Street --------------------------------
work=$(mktemp -d /var/tmp/backoffice-smoke.XXXXXX)
secret() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg=$(secret); owner=$(secret); app=$(secret); redis=$(secret); admin=$(secret)
cat > "$work/smoke.env" <<ENV
DEBUG=0
SECRET_KEY=$(secret)$(secret)
ALLOWED_HOSTS=localhost
SITE_ADDRESS=localhost
TLS=internal
BEHIND_TLS_PROXY=1
TRUSTED_PROXY_COUNT=1
POSTGRES_PASSWORD=$pg
DATABASE_OWNER_PASSWORD=$owner
DATABASE_APP_PASSWORD=$app
DATABASE_URL=postgresql://backoffice_app:$app@db:5432/backoffice
DATABASE_OWNER_URL=postgresql://backoffice_owner:$owner@db:5432/backoffice
DATABASE_APP_ROLE=backoffice_app
REDIS_PASSWORD=$redis
REDIS_URL=redis://:$redis@redis:6379/0
CLEAR_STREET_BASE_URL=http://sandbox:8765
CLEAR_STREET_API_KEY=sandbox-demo-key
MARKET_CLOCK=sandbox
EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
AUDIT_ANCHOR_KEY=$(secret)$(secret)
AUDIT_ANCHOR_DIR=/app/anchors
METRICS_TOKEN=$(secret)
ENV
export ENV_FILE=$work/smoke.env PROXY_PORT=$port

teardown() {
  if [ "${KEEP:-0}" = 1 ]; then
    say "left running: https://localhost:$PROXY_PORT/ (env file $ENV_FILE); stop with: ENV_FILE=$ENV_FILE ${COMPOSE[*]} down -v"
    return
  fi
  "${COMPOSE[@]}" down -v -t 10 >/dev/null 2>&1 || true
  rm -rf "$work"
  say "torn down"
}
trap teardown EXIT

# --- up ------------------------------------------------------------------------------------------
# The order docker-compose.yml's depends_on conditions state, taken step by step: Debian 12's podman
# (4.3, no systemd here) cannot wait for "healthy" itself, so each healthcheck is run on demand.
container() {
  podman ps -a -q --filter label=com.docker.compose.project=backoffice-smoke \
    --filter "label=com.docker.compose.service=$1" | head -1
}
wait_healthy() {
  local id deadline=$(( $(date +%s) + 180 ))
  id=$(container "$1")
  until podman healthcheck run "$id" >/dev/null 2>&1; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
      podman logs --tail 40 "$id" >&2 || true
      echo "smoke: $1 never became healthy" >&2; exit 1
    fi
    sleep 2
  done
  say "$1 healthy"
}
up() { "${COMPOSE[@]}" up -d --no-deps "$@" >>"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }; }

up db redis sandbox
wait_healthy db
wait_healthy redis
up migrate
status=$(podman wait "$(container migrate)")
if [ "$status" != 0 ]; then podman logs "$(container migrate)" >&2; echo "smoke: migrate exited $status" >&2; exit 1; fi
say "migrated (as the owner role)"
up web worker-desk worker-sync worker-maintenance beat
wait_healthy web
up proxy
wait_healthy proxy
for worker in worker-desk worker-sync worker-maintenance; do wait_healthy "$worker"; done
say "stack up on https://localhost:$port/"

url=https://localhost:$port
deadline=$(( $(date +%s) + 120 ))
until curl -ksf -o /dev/null "$url/readyz"; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    "${COMPOSE[@]}" ps; "${COMPOSE[@]}" logs --tail 40 web proxy || true
    echo "smoke: /readyz never answered 200 through the proxy" >&2; exit 1
  fi
  sleep 2
done
say "ready through the proxy: $(curl -ks "$url/readyz")"
# Beat is the one process without a healthcheck: it must still be running.
[ "$(podman inspect -f '{{.State.Running}}' "$(container beat)")" = true ] || { echo "smoke: beat died" >&2; exit 1; }

# --- the first administrator, then a sign-in over HTTPS ---------------------------------------------
printf '%s\n' "$admin" | podman exec -i "$(container web)" \
  python manage.py bootstrap_admin --username first_admin --email admin@firm.example
jar=$work/cookies
login=$(curl -ksS -c "$jar" "$url/login/")
token=$(printf '%s' "$login" | sed -n 's/.*name="csrfmiddlewaretoken" value="\([^"]*\)".*/\1/p' | head -1)
answer=$(curl -ksS -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
  -H "Referer: $url/login/" -H "Origin: $url" \
  --data-urlencode "csrfmiddlewaretoken=$token" --data-urlencode "username=first_admin" \
  --data-urlencode "password=$admin" "$url/login/")
say "sign-in answered: $answer"
[ "$answer" = "302 $url/" ] || { echo "smoke: sign-in through the proxy failed ($answer)" >&2; exit 1; }
# An administrator must enrol a second factor first: the signed-in session is led to enrolment.
enrol=$(curl -ksSL -b "$jar" -c "$jar" -w '\n%{url_effective}' "$url/")
case "$(tail -1 <<<"$enrol")" in
  "$url/access/mfa/"*) ;;
  *) echo "smoke: the signed-in session was not led to enrolment ($(tail -1 <<<"$enrol"))" >&2; exit 1 ;;
esac
grep -q 'totp-secret' <<<"$enrol" || { echo "smoke: the enrolment page did not show a key" >&2; exit 1; }
hsts=$(curl -ksSI "$url/login/" | grep -i '^strict-transport-security' || true)
[ -n "$hsts" ] || { echo "smoke: no HSTS header through the proxy" >&2; exit 1; }
say "signed in as first_admin over HTTPS; $(tr -d '\r' <<<"$hsts")"

# --- the audit anchored outside the database, by the maintenance worker's volume --------------------
podman exec "$(container worker-maintenance)" python manage.py audit_checkpoint >>"$work/up.log" 2>&1 \
  || { tail -20 "$work/up.log"; echo "smoke: the chain could not be anchored" >&2; exit 1; }
verified=$(podman exec "$(container worker-maintenance)" python manage.py verify_audit 2>&1) \
  || { echo "$verified" >&2; echo "smoke: verify_audit failed" >&2; exit 1; }
say "audit: $(tail -1 <<<"$verified")"
say "OK"
