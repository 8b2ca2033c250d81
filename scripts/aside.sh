# Sourced by scripts/setup and scripts/test: run a step in the background beside the Rust
# builds, then wait for every such step and fail (printing its log) if one did.
#   aside NAME COMMAND...   start COMMAND, its output in a log of its own
#   await_all               wait for them all; exit 1 after printing the log of each that failed
ASIDE_LOGS="$(mktemp -d)"
ASIDE_JOBS=()
aside() {
  local name="$1"
  shift
  ("$@") > "$ASIDE_LOGS/$name.log" 2>&1 &
  ASIDE_JOBS+=("$!:$name")
}
await_all() {
  local job failed=0
  for job in "${ASIDE_JOBS[@]}"; do
    if ! wait "${job%%:*}"; then
      echo "error: ${job#*:} failed:" >&2
      cat "$ASIDE_LOGS/${job#*:}.log" >&2
      failed=1
    fi
  done
  ASIDE_JOBS=()
  [ "$failed" = 0 ] || exit 1
}
