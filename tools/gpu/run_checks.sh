#!/usr/bin/env bash
# GPU check, invocation (a) of two (docs/gpu.md): the CUDA tests (`pytest -m cuda`), then the CUDA
# cases of the perturbation, kernel and introspection benchmarks (pytest-benchmark JSON, with the
# environment fingerprint), then the ratio table of the GPU goals. Run from the repository root:
#   run(command="bash tools/gpu/run_checks.sh", carry=[".whl"], timeout_s=300)
# after tools/gpu/fetch_wheels.sh. Writes into $OUT (at most 8 files): gpu.txt, checks.log,
# cuda-tests.log, bench-{perturb,kernels,introspect}-gpu.json, ratios.md.
# Knobs: OUT (gpu-out), BUDGET_S (285: the whole script), WHEELS (.whl), DEVICE (cuda; `DEVICE=cpu` is the dry
# run of the flow on a CPU: every cuda test and case skips, the files are still written).
set -uo pipefail
export PYTHONUNBUFFERED=1
# the CPU perturbation kernels are not measured here: do not spend device time compiling them
export HARNESS_PERTURB_NATIVE=0
# the instrumented CUDA kernels: sm_90 only (an H200), not every architecture torch knows
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
OUT=${OUT:-gpu-out}
BUDGET_S=${BUDGET_S:-285}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
BUILDS=()
mkdir -p "$OUT"
exec > >(tee -a "$OUT/checks.log") 2>&1

WHEELS=${WHEELS:-.whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
step() { echo "== $1 ($(date +%T), ${SECONDS}s of ${BUDGET_S}s)"; }
# a step gets its own limit, never more than what is left of the budget
limit() { local left=$((BUDGET_S - SECONDS - 5)); echo $((left < $1 ? (left > 1 ? left : 1) : $1)); }

if [[ "$DEVICE" == cuda ]]; then
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total \
        --format=csv | tee "$OUT/gpu.txt"
    # The instrumented kernels' torch extension (binding.cpp + kernels/*.cu, one per mode) needs
    # this machine's torch and Python, so it cannot be built beforehand: build the three modes
    # in the background while the perturbation tests run (torch's build lock makes a test that
    # needs one wait for it).
    step "building the instrumented kernels (ieee, sr, rr) in the background"
    for mode in ieee sr rr; do
        "$PY" -c "from harness.kernels import load_extension; load_extension('$mode')" \
            >"/tmp/build-$mode.log" 2>&1 &
        BUILDS+=($!)
    done
else
    echo "device: $DEVICE (dry run of the flow)" | tee "$OUT/gpu.txt"
fi

step "CUDA tests (-m cuda)"
timeout "$(limit 120)" "$PY" -m pytest -p no:cacheprovider -m cuda -rs -q \
    --continue-on-collection-errors tests/ 2>&1 | tee "$OUT/cuda-tests.log" | tail -15
bench() {  # suite, output name, limit
    step "benchmark $1"
    timeout "$(limit "$3")" "$PY" -m pytest -p no:cacheprovider -m cuda -q "benchmarks/$1" \
        --benchmark-json "$OUT/$2" 2>&1 | tail -4
}
bench test_bench_perturb.py bench-perturb-gpu.json 60
if ((${#BUILDS[@]})); then  # the kernel builds, before the kernel benchmark times anything
    step "waiting for the kernel builds"
    wait "${BUILDS[@]}"
    for mode in ieee sr rr; do tail -2 "/tmp/build-$mode.log"; done
fi
bench test_bench_kernels.py bench-kernels-gpu.json 75
bench test_bench_introspect.py bench-introspect-gpu.json 30
step "ratios"
"$PY" tools/gpu/ratios.py --device "$DEVICE" --out "$OUT/ratios.md" "$OUT/bench-perturb-gpu.json" \
    "$OUT/bench-kernels-gpu.json" "$OUT/bench-introspect-gpu.json"
step "done"
