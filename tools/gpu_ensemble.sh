#!/usr/bin/env bash
# Seed and MCA stochastic-rounding ensembles of full-width FastSurferCNN on a synthetic 256^3
# cohort, on one CUDA GPU, then their agreement analysis. Everything is written under $OUT.
#
# Written on a CPU-only machine and NOT run there (no GPU): the CUDA path of `harness train` is
# exercised for the first time by this script. Requirements: the harness package installed
# (pip install -e .), torch with CUDA, a visible GPU.
#
# Usage:  OUT=/path/to/results bash tools/gpu_ensemble.sh
# Knobs (environment): SUBJECTS (6) TRAIN (3) GRID (256) EPOCHS (3) SIZE (5) VIEWS (axial)
#                      PRECISION (unset: t = 24 for fp32) SEED (0)
#                      SCHEDULE (milestones: x0.1 at 2/3 of the run, sensible for a few epochs;
#                      v1 steps every 5 epochs and would never step in 3)
#                      DEVICE (cuda) PRESET (full) -- DEVICE=cpu PRESET=tiny GRID=24 is a CPU
#                      smoke test of the script's flow only
set -euo pipefail

OUT=${OUT:?set OUT to an output directory}
SUBJECTS=${SUBJECTS:-6}
TRAIN=${TRAIN:-3}
GRID=${GRID:-256}
EPOCHS=${EPOCHS:-3}
SIZE=${SIZE:-5}
VIEWS=${VIEWS:-axial}
SEED=${SEED:-0}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-full}
SCHEDULE=${SCHEDULE:-milestones}
PRECISION_ARGS=()
if [[ -n "${PRECISION:-}" ]]; then PRECISION_ARGS=(--precision "$PRECISION"); fi

mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_ensemble.log") 2>&1
DEVICE="$DEVICE" python - <<'PY'
import os, sys, torch
if os.environ["DEVICE"] != "cuda":
    print("device:", os.environ["DEVICE"], "(smoke test)")
elif not torch.cuda.is_available():
    sys.exit("error: no CUDA device visible to torch")
else:
    print("cuda device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
harness env > "$OUT/environment.json"

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
echo "$(stamp) synthesising $SUBJECTS subjects at grid $GRID"
[[ -f "$OUT/cohort/participants.tsv" ]] || \
  harness data synth --subjects "$SUBJECTS" --out "$OUT/cohort" --grid "$GRID" --seed "$SEED"

# One ensemble directory: the baseline plus SIZE seed members and SIZE mca-sr members, so the
# analysis compares the two factors region by region (factor_correlation.tsv). Rerunning the
# script resumes: finished members are skipped, a killed member restarts from its last epoch.
echo "$(stamp) training $((2 * SIZE + 1)) members, $EPOCHS epochs, views $VIEWS"
harness ensemble run --cohort "$OUT/cohort" --out "$OUT/ens" \
  --factor "seed=$SIZE" --factor "mca-sr=$SIZE" "${PRECISION_ARGS[@]}" \
  --preset "$PRESET" --schedule "$SCHEDULE" --epochs "$EPOCHS" --views "$VIEWS" \
  --train-subjects "$TRAIN" --seed "$SEED" --device "$DEVICE" --quiet

echo "$(stamp) analysing"
harness ensemble analyze "$OUT/ens"

# Per-member timings (wall clock and seconds per epoch) for the docs.
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {}
for manifest in sorted((out / "ens" / "members").glob("*/manifest.json")):
    m = json.loads(manifest.read_text())
    rows[manifest.parent.name] = {
        "status": m["status"],
        "wall_s": m.get("timings", {}).get("wall_s"),
        "epoch_seconds": [r["seconds"] for r in m.get("history", [])],
        "final_loss": (m.get("history") or [{}])[-1].get("loss"),
    }
(out / "timings.json").write_text(json.dumps(rows, indent=2))
print(json.dumps(rows, indent=2))
PY
echo "$(stamp) done: $OUT/ens/analysis, $OUT/timings.json"
