#!/usr/bin/env bash
# Every GPU check of the project in one device call (see docs/gpu.md). Run through the device
# tool from the repo root with carry [".whl"] after tools/gpu/fetch_wheels.sh, e.g.
#   run(command="bash tools/gpu/run_checks.sh", carry=[".whl"], timeout_s=580)
# Writes into $OUT: cuda-tests.log and the benchmark JSONs (environment fingerprint inside).
set -uo pipefail
export PYTHONUNBUFFERED=1
# the CPU perturbation kernels are not measured here: do not spend device time compiling them
export HARNESS_PERTURB_NATIVE=0
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
step() { echo "== $1 ($(date +%T))"; }
step "CUDA tests"
timeout 150 python3 -m pytest -p no:cacheprovider tests/test_perturb_cuda.py tests/test_kernels_cuda.py \
    tests/test_introspect*.py -k "cuda or Cuda or CUDA" 2>&1 | tee "$OUT/cuda-tests.log" | tail -5
step "perturbation benchmark"
timeout 150 python3 -m pytest -p no:cacheprovider benchmarks/test_bench_perturb.py -k cuda \
    --benchmark-json "$OUT/bench-perturb-gpu.json" 2>&1 | tail -3
step "kernel benchmark"
timeout 150 python3 -m pytest -p no:cacheprovider benchmarks/test_bench_kernels.py -k cuda \
    --benchmark-json "$OUT/bench-kernels-gpu.json" 2>&1 | tail -3
step "introspection benchmark"
timeout 100 python3 -m pytest -p no:cacheprovider benchmarks/test_bench_introspect.py -k cuda \
    --benchmark-json "$OUT/bench-introspect-gpu.json" 2>&1 | tail -3
step "done"
