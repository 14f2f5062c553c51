#!/bin/sh
# Start Switchboard's production topology on this machine: the Procfile's
# uvicorn workers, Celery worker and Celery beat, under honcho.
#
#   DATABASE_URL=postgres://... REDIS_URL=redis://... \
#   SWITCHBOARD_SECRET_KEY=... SWITCHBOARD_ENCRYPTION_KEY=... deploy/prod.sh
#
# `make prod` runs it after installing the requirements. It refuses to start
# without the settings production needs, never inventing a secret; migrates
# the database; gives the Prometheus client a fresh multiprocess directory;
# then execs honcho, which stops every process when one of them stops and on
# SIGTERM or Ctrl-C (README: "Production topology").
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -d "$ROOT/.venv/bin" ] && PATH="$ROOT/.venv/bin:$PATH" && export PATH

missing=""
for name in DATABASE_URL REDIS_URL SWITCHBOARD_SECRET_KEY SWITCHBOARD_ENCRYPTION_KEY; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
# Emails carry password reset and invitation links: SMTP, or the log on purpose.
[ -n "${EMAIL_HOST:-}${SWITCHBOARD_EMAIL_BACKEND:-}" ] || missing="$missing EMAIL_HOST"
if [ -n "$missing" ]; then
  cat >&2 <<MSG
make prod: refusing to start, these must be set in the environment:$missing

  DATABASE_URL                PostgreSQL, e.g. postgres://user@127.0.0.1:5432/switchboard
  REDIS_URL                   Redis, e.g. redis://127.0.0.1:6379/0
  SWITCHBOARD_SECRET_KEY      python -c "import secrets; print(secrets.token_urlsafe(50))"
  SWITCHBOARD_ENCRYPTION_KEY  python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
  EMAIL_HOST                  the SMTP server for password reset, verification and
                              invitation emails (or SWITCHBOARD_EMAIL_BACKEND=console
                              to write them, links included, to the log)

Keep the two keys: upstream API keys stored with one encryption key cannot
be read with another. (make run is the embedded default that needs none.)
MSG
  exit 2
fi
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "make prod: DATABASE_URL must be a PostgreSQL URL" >&2; exit 2 ;;
esac

# Production settings, whatever the shell had: no debug pages, real tasks.
SWITCHBOARD_DEBUG=0
CELERY_TASK_ALWAYS_EAGER=0
export SWITCHBOARD_DEBUG CELERY_TASK_ALWAYS_EAGER

# Every web worker and Celery process writes its metrics to files in this
# directory; files left by an earlier run would be added to this one's.
PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$ROOT/var/prometheus}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
export PROMETHEUS_MULTIPROC_DIR

# Beat's record of when each periodic task last ran.
SWITCHBOARD_BEAT_SCHEDULE=${SWITCHBOARD_BEAT_SCHEDULE:-$ROOT/var/celerybeat-schedule}
mkdir -p "$(dirname "$SWITCHBOARD_BEAT_SCHEDULE")"
export SWITCHBOARD_BEAT_SCHEDULE

python manage.py migrate --no-input --verbosity 0

# honcho gives the first process type (web) the port given with -p.
exec honcho start --no-colour --procfile "$ROOT/Procfile" --port "${PORT:-8000}"
