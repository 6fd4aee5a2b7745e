#!/usr/bin/env bash
# Apache Airflow 3 in its own virtualenv (.venv-airflow), with tickwatch installed into it, so
# Airflow's many pins never touch the project's .venv.
#
#   scripts/airflow.sh install     create .venv-airflow (idempotent; redone when the pins change)
#   scripts/airflow.sh python ...  run that venv's python (e.g. tests that import the DAGs)
#
# Pins: airflow/constraints.txt, the exact set that resolved here with apache-airflow and
# tickwatch[kafka] together (Airflow's own published constraint files live outside the package
# registries, so the set is frozen from an ordinary pip resolve instead). Downloads are cached
# under .cache/pip. Environment: AIRFLOW_PYTHON (default: the interpreter of .venv, else python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
venv=$root/.venv-airflow
pins=$root/airflow/constraints.txt
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$root/.cache/pip}
export PIP_DISABLE_PIP_VERSION_CHECK=1

die() { echo "airflow.sh: $*" >&2; exit 1; }

python_for_venv() {
  if [ -n "${AIRFLOW_PYTHON:-}" ]; then echo "$AIRFLOW_PYTHON"
  elif [ -x "$root/.venv/bin/python" ]; then readlink -f "$root/.venv/bin/python"
  else command -v python3
  fi
}

install() {
  local stamp=$venv/.installed
  if [ -f "$stamp" ] && [ "$stamp" -nt "$pins" ] && [ "$stamp" -nt "$root/pyproject.toml" ]; then
    return
  fi
  [ -x "$venv/bin/python" ] || "$(python_for_venv)" -m venv "$venv" || die "cannot create $venv"
  # the kafka extra: the DAGs' checks measure consumer lag and probe the broker
  "$venv/bin/pip" install --quiet -c "$pins" "apache-airflow" -e "$root[kafka]" \
    || die "pip could not install apache-airflow with the pins of $pins"
  touch "$stamp"
}

case "${1:-}" in
  install) install ;;
  python) shift; install; exec "$venv/bin/python" "$@" ;;
  *) die "usage: $0 install | python ARGS..." ;;
esac
