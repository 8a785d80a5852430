#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), one after the
# other, each a single libFuzzer process on one core, starting from the
# committed seeds (seeds/TARGET) plus whatever corpus/TARGET has grown.
# Crashes land in artifacts/TARGET; logs in logs/TARGET.log.
#
#   fuzz/run.sh 600            # ten minutes per target
#   fuzz/run.sh 600 keys_verify
#
# cargo-fuzz wants nightly-only rustc flags (-Zsanitizer=address, ...);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them (fuzz/'s own
# build only). tests/run-all.sh runs it for 20 s a target.
set -euo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target" logs
    echo "== $target: ${seconds}s"
    # -timeout: one input taking >10 s is a finding (a hang), not a pause.
    inputs=("corpus/$target")
    [ -d "seeds/$target" ] && inputs+=("seeds/$target")
    if ! nice -n 10 cargo fuzz run "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1 \
        >"logs/$target.log" 2>&1; then
        status=1
        echo "   FAILED: see fuzz/logs/$target.log and fuzz/artifacts/$target/"
    fi
    grep -E '^Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec' \
        "logs/$target.log" | sed 's/^/   /' || true
done
exit $status
