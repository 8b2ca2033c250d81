#!/usr/bin/env bash
# Build the example's Python tasks into components (build/<task>.wasm) with the SDK's build,
# which runs componentize-py; an unchanged task is not rebuilt. PYTHON defaults to the venv
# scripts/setup makes (with componentize-py), else python3.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
for task in extract stats report; do
  PYTHONPATH=../../sdk/python "$PYTHON" -m sluice_sdk.build "tasks/$task" -o "build/$task.wasm" > /dev/null
done
