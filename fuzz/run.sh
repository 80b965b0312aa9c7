#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer for SECONDS (default 600) on stable Rust:
#   fuzz/run.sh TARGET [SECONDS]
# cargo-fuzz's flags need nightly features, which RUSTC_BOOTSTRAP=1 allows on the stable
# toolchain; no sanitizer (the parsers are safe Rust, and the allocation bound is the targets'
# own allocator, src/guard.rs). One process, lowest priority; the last lines of the log carry
# libFuzzer's final cov/ft/exec counts. Crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=$1
secs=${2:-600}
[ -d "corpus/$target" ] || ./seed.sh
dict=()
case $target in
    gguf | gguf_tokenizer) dict=(-dict=gguf.dict) ;;
    request_json) dict=(-dict=request_json.dict) ;;
esac
mkdir -p logs
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run --sanitizer none -a "$target" "corpus/$target" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" 2>&1 | tee "logs/$target.log" | grep -E "^#[0-9]+ +(pulse|DONE|NEW)|INFO: -max_total|Done|ERROR|panicked|deadly|Timeout|crash-|stat::" | tail -n 30
