#!/usr/bin/env bash
# The CUDA backend's checks and timings, on the GPU machine (the `device` tool), from the
# repository root:   bash scripts/cuda/run_on_device.sh
# Needs .dev/cuda/gemv_check: the x86-64 release build of crates/bitnet-cuda/examples/gemv_check.rs
# (cargo build --release -p bitnet-cuda --example gemv_check; cp target/release/examples/gemv_check
# .dev/cuda/), carried with the call. Writes $OUT/gemv_check.txt and $OUT/sanitizer.txt; the last
# output is kept in scripts/cuda/last_run.txt.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
echo "== compute-sanitizer (memcheck), correctness only"
GEMV_CHECK_ONLY=1 timeout 300 compute-sanitizer --tool memcheck .dev/cuda/gemv_check > "$OUT/sanitizer.txt" 2>&1
echo "sanitizer exit $?"; tail -4 "$OUT/sanitizer.txt"
echo "== checks and timings"
.dev/cuda/gemv_check 2>&1 | tee "$OUT/gemv_check.txt"
echo "gemv_check exit ${PIPESTATUS[0]}"
