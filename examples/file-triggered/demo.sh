#!/usr/bin/env bash
# The file-triggered scenario end to end on this machine: an S3-compatible server (s3s-fs),
# the churn model of ../ml-deploy trained and staged for dev, `sluice serve` watching
# s3://landing/incoming/, then the 20 files of data/ dropped in 5 batches through the S3 API
# (curl --aws-sigv4) — one run per batch: ingest → features → score, scores back in
# s3://landing/scores/.
#
# Env: SLUICE (default ../../target/release/sluice), S3S_FS (default
# ../../target/s3s-fs/bin/s3s-fs, as scripts/setup installs it), S3_PORT (default 18014),
# KEEP=1 to keep the temp dir. Needs curl and python3. Results on stdout, progress on stderr.
set -euo pipefail
cd "$(dirname "$0")"
SLUICE=$(realpath "${SLUICE:-../../target/release/sluice}")
S3S_FS=${S3S_FS:-../../target/s3s-fs/bin/s3s-fs}
PORT=${S3_PORT:-18014}
KEY=demo-key SECRET=demo-secret
work=$(mktemp -d)
export SLUICE_STATE=$work/state SLUICE_PRINCIPAL=ops
step() { printf '\n== %s\n' "$*" >&2; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
s3() { # s3 METHOD PATH [FILE]: a SigV4-signed request to the bucket server
  local sha; sha=$( (if [ -n "${3:-}" ]; then cat "$3"; fi) | sha256sum | cut -d' ' -f1)
  curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" -H "x-amz-content-sha256: $sha" \
    -X "$1" ${3:+-T "$3"} "http://127.0.0.1:$PORT/$2"
}
runs() { "$SLUICE" runs list --limit 100 --json | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if r.get("job","").endswith("score_new_files")))'; }

step "s3s-fs on 127.0.0.1:$PORT, bucket landing"
mkdir -p "$work/s3/landing"
"$S3S_FS" --host 127.0.0.1 --port "$PORT" --access-key "$KEY" --secret-key "$SECRET" "$work/s3" > "$work/s3.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break; sleep 0.1; done

step "the churn model (../ml-deploy): train, register, stage v1 for dev"
"$SLUICE" run ../ml-deploy --job train > /dev/null
"$SLUICE" models stage churn 1 --target dev >&2

step "the bucket's credentials: secret landing/s3 (the tasks never see it)"
"$SLUICE" secrets scopes create landing >&2
printf '{"access_key_id":"%s","secret_access_key":"%s","region":"us-east-1","endpoint":"http://127.0.0.1:%s"}' \
  "$KEY" "$SECRET" "$PORT" | "$SLUICE" secrets put landing s3 >&2

step "sluice serve . (the file-arrival trigger lists s3://landing/incoming/ every 10 s)"
"$SLUICE" serve . 2> "$work/serve.log" &
pids+=($!)
for _ in $(seq 1 300); do grep -q "listening on" "$work/serve.log" 2> /dev/null && break; sleep 0.1; done

start=$(date +%s)
for batch in 1 2 3 4 5; do
  step "batch $batch: 4 files into s3://landing/incoming/"
  for f in data/batch-$batch/*.csv; do s3 PUT "landing/incoming/$(basename "$f")" "$f"; echo "  put $(basename "$f")" >&2; done
  for _ in $(seq 1 600); do [ "$(runs)" -ge "$batch" ] && break; sleep 0.2; done
  [ "$(runs)" -eq "$batch" ] || { echo "batch $batch started no run" >&2; cat "$work/serve.log" >&2; exit 1; }
done

step "the runs (each waits to finish)"
ids=$("$SLUICE" runs list --limit 100 --json | python3 -c 'import json,sys
print(" ".join(str(r["run_id"]) for r in sorted(json.load(sys.stdin), key=lambda r: r["run_id"]) if r.get("job","").endswith("score_new_files")))')
for id in $ids; do
  for _ in $(seq 1 600); do
    "$SLUICE" runs show "$id" --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("result") else 1)' && break
    sleep 0.2
  done
  "$SLUICE" runs show "$id" --json | python3 -c 'import json,sys
r = json.load(sys.stdin)
out = {t["key"]: json.loads(t["attempts"][-1].get("output") or "null") for t in r["tasks"]}
i, s = out["ingest"], out["score"]
print("run %s: %-8s files %s  rows %d  rejected %d  at risk %d"
      % (r["run_id"], r["result"], ",".join(i["files"]), i["rows"], len(i["rejected"]), s["at_risk"]))'
done
echo "5 batches, $(runs) runs, $(( $(date +%s) - start )) s from the first file to the last run" >&2

step "scores in s3://landing/scores/"
s3 GET "landing?list-type=2&prefix=scores%2F" | python3 -c 'import re,sys
keys = re.findall(r"<Key>([^<]+)</Key>", sys.stdin.read()); print(len(keys), "score files:", " ".join(k.split("/")[-1] for k in keys))'
