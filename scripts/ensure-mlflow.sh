#!/usr/bin/env bash
# A venv with MLflow (server and client) for the MLflow integration tests: .venv-mlflow, kept
# apart from .venv because MLflow's dependencies conflict with Driftloop's pins. Idempotent: does
# nothing when the pinned version is installed already. The tests find it through
# DRIFTLOOP_MLFLOW_PYTHON (default: .venv-mlflow/bin/python).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${MLFLOW_VENV:-.venv-mlflow}
CONSTRAINTS=scripts/mlflow-constraints.txt
want=$(sed -n 's/^mlflow==//p' "$CONSTRAINTS")
stamp="$VENV/.installed-$want"

installed() {
  "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('mlflow'))" 2>/dev/null
}
if [ -f "$stamp" ] && [ "$(installed)" = "$want" ]; then
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" "mlflow==$want"
"$VENV/bin/python" -c "import mlflow, sys; assert mlflow.__version__ == sys.argv[1], mlflow.__version__" "$want"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "MLflow $want installed in $VENV"
