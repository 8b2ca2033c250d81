#!/usr/bin/env bash
# ml-deploy's CI/CD flow, locally: the steps .github/workflows/deploy.yml and .gitlab-ci.yml
# run, against a `sluice serve` this script starts on its own state directory.
#
#   validate → test → deploy dev, train, stage, score → deploy test, train, stage, score
#   → approve → promote to prod, stage, score
#
# Env: SLUICE (the binary, default `sluice` on PATH), SLUICE_STATE (default: a new temp dir),
# APPROVER (who approves the test deployment for prod, default `reviewer`).
# Needs python3 (to read --json answers). Results go to stdout, progress to stderr.
set -euo pipefail
cd "$(dirname "$0")"
SLUICE=${SLUICE:-sluice}
work=$(mktemp -d)
export SLUICE_STATE=${SLUICE_STATE:-$work/state}
export SLUICE_PRINCIPAL=${SLUICE_PRINCIPAL:-ci}
APPROVER=${APPROVER:-reviewer}

step() { printf '\n== %s\n' "$*" >&2; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if k.lstrip("-").isdigit() else v[k]
print(v)' "$1"; }
# run deployed job TARGET/JOB; fail unless it succeeds; print its run id
run() {
  local out
  out=$("$SLUICE" run --deployment "$1" --json) || { echo "$out" >&2; echo "run $1 failed" >&2; exit 1; }
  echo "$out" | field run_id
}

step "validate (each target)"
for target in dev test prod; do "$SLUICE" validate . --target "$target" >&2; done

step "test (the verdict is recorded against the bundle's content hash: prod's require_tests)"
"$SLUICE" test . >&2

step "serve (owns $SLUICE_STATE; every command below is its client)"
"$SLUICE" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
serve=$!
trap 'kill "$serve" 2>/dev/null; wait "$serve" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
grep "listening on" "$work/serve.log" >&2 || { cat "$work/serve.log" >&2; exit 1; }

for target in dev test; do
  step "deploy to $target, train, stage the model for $target, score"
  "$SLUICE" deploy --target "$target" >&2
  trained=$(run "$target/train")
  version=$("$SLUICE" models show churn --json | field 0.versions.-1.version)
  echo "$target: run $trained trained; model churn v$version" >&2
  "$SLUICE" models stage churn "$version" --target "$target" >&2
  scored=$(run "$target/score")
  echo "$target: run $scored scored with churn v$version"
done

step "approve the test deployment (as $APPROVER), promote test → prod"
number=$("$SLUICE" deployments show --target test --json | field number)
SLUICE_PRINCIPAL=$APPROVER "$SLUICE" approve "test/$number" >&2
"$SLUICE" promote --from test --to prod >&2

step "stage the tested model for prod, score"
"$SLUICE" models stage churn "$version" --target prod >&2
scored=$(run "prod/score")
echo "prod: run $scored scored with churn v$version"
"$SLUICE" models show churn
