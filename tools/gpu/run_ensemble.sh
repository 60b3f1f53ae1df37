#!/usr/bin/env bash
# GPU check, invocation (b) of two (docs/gpu.md): a short full-width FastSurferCNN ensemble on a
# small synthetic cohort -- the baseline, 2 seed members and 2 mca-sr members -- and its analysis,
# with the number of epochs chosen at run time from measured epoch times so that the whole script
# fits BUDGET_S. Run from the repository root:
#   run(command="bash tools/gpu/run_ensemble.sh", carry=[".whl-ens", ".gpu-cohort"], timeout_s=300)
# after tools/gpu/fetch_wheels.sh (wheels, and the cohort synthesised beforehand: at grid 256 a
# subject takes about a minute of one CPU core, too much of this budget).
# Writes into $OUT: ensemble.log, sizing.json (measured epoch times, chosen epochs),
# timings.json (per member), analysis.tar.gz (the ensemble's analysis folder), environment.json.
# Knobs: OUT (gpu-ens), BUDGET_S (285), WHEELS (.whl-ens), COHORT (.gpu-cohort/cohort; synthesised here when
# absent), SUBJECTS (3), TRAIN (2), GRID (256), PRESET (full),
# VIEWS (axial), SEED (0), RESERVE_S (40: kept for the analysis and the archive), MAX_EPOCHS (20),
# DEVICE (cuda). `DEVICE=cpu PRESET=tiny GRID=24 BUDGET_S=60` is the dry run of the flow on a CPU.
set -euo pipefail
export PYTHONUNBUFFERED=1
# the fused CPU perturbation kernels are not used on CUDA tensors: do not compile them
export HARNESS_PERTURB_NATIVE=0
OUT=${OUT:-gpu-ens}
BUDGET_S=${BUDGET_S:-285}
SUBJECTS=${SUBJECTS:-3}
TRAIN=${TRAIN:-2}
GRID=${GRID:-256}
PRESET=${PRESET:-full}
VIEWS=${VIEWS:-axial}
SEED=${SEED:-0}
RESERVE_S=${RESERVE_S:-40}
MAX_EPOCHS=${MAX_EPOCHS:-20}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
SEEDS=2
MCA=2
mkdir -p "$OUT"
exec > >(tee -a "$OUT/ensemble.log") 2>&1

WHEELS=${WHEELS:-.whl-ens}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
harness() { "$PY" -m harness "$@"; }
step() { echo "== $1 ($(date +%T), ${SECONDS}s of ${BUDGET_S}s)"; }
WORK=${WORK:-$(mktemp -d)}  # cohort and runs: large, not brought back
COMMON=(--preset "$PRESET" --views "$VIEWS" --train-subjects "$TRAIN" --seed "$SEED"
        --device "$DEVICE" --schedule milestones --quiet)

harness env > "$OUT/environment.json"
COHORT=${COHORT:-.gpu-cohort/cohort}
if [[ ! -f "$COHORT/participants.tsv" ]]; then
    step "synthesising $SUBJECTS subjects at grid $GRID"
    COHORT="$WORK/cohort"
    harness data synth --subjects "$SUBJECTS" --out "$COHORT" --grid "$GRID" --seed "$SEED"
fi
step "cohort $COHORT: $(($(wc -l < "$COHORT/participants.tsv") - 1)) subjects"

# One measured epoch of each arithmetic the ensemble trains (ieee for the baseline and the seed
# members, sr for the mca-sr members), prediction included: the size of the ensemble comes from
# these, not from a guess. The first epoch also pays the warm-up (CUDA context, cuDNN, Triton),
# so the estimate errs on the long side.
for mode in ieee sr; do
    step "measuring one epoch under $mode"
    harness train --cohort "$COHORT" --out "$WORK/probe-$mode" --mode "$mode" --epochs 1 \
        "${COMMON[@]}"
done

step "sizing"
EPOCHS=$("$PY" - "$WORK" "$OUT/sizing.json" "$BUDGET_S" "$SECONDS" "$RESERVE_S" "$MAX_EPOCHS" \
    "$SEEDS" "$MCA" <<'PY'
import json, sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
budget, elapsed, reserve, max_epochs, seeds, mca = map(float, sys.argv[3:])
probe = {}
for mode in ("ieee", "sr"):
    m = json.loads((work / f"probe-{mode}" / "manifest.json").read_text())
    epoch = sum(r["seconds"] for r in m["history"])  # one epoch per view
    probe[mode] = {"epoch_s": epoch, "overhead_s": m["timings"]["wall_s"] - epoch}
members = {"ieee": 1 + seeds, "sr": mca}  # the baseline and the seed members train under ieee
fixed = sum(n * probe[mode]["overhead_s"] for mode, n in members.items())
per_epoch = sum(n * probe[mode]["epoch_s"] for mode, n in members.items())
left = budget - elapsed - reserve - fixed
epochs = int(max(1, min(max_epochs, left // per_epoch)))
sizing = {
    "measured": probe,
    "members": {"baseline": 1, "seed": int(seeds), "mca-sr": int(mca)},
    "budget_s": budget, "elapsed_before_s": elapsed, "reserve_s": reserve,
    "predicted_ensemble_s": fixed + epochs * per_epoch, "epochs": epochs,
    "fits": fixed + epochs * per_epoch <= budget - elapsed - reserve,
}
out.write_text(json.dumps(sizing, indent=2) + "\n")
if not sizing["fits"]:
    print("warning: even 1 epoch is predicted to overrun the budget", file=sys.stderr)
print(epochs)
PY
)
cat "$OUT/sizing.json"

step "training the baseline, $SEEDS seed and $MCA mca-sr members for $EPOCHS epochs"
harness ensemble run --cohort "$COHORT" --out "$WORK/ens" \
    --factor "seed=$SEEDS" --factor "mca-sr=$MCA" --epochs "$EPOCHS" "${COMMON[@]}"

step "analysing"
harness ensemble analyze "$WORK/ens"
"$PY" - "$WORK/ens" "$OUT/timings.json" <<'PY'
import json, sys
from pathlib import Path

ens, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = {}
for manifest in sorted((ens / "members").glob("*/manifest.json")):
    m = json.loads(manifest.read_text())
    rows[manifest.parent.name] = {
        "status": m["status"],
        "wall_s": m.get("timings", {}).get("wall_s"),
        "epoch_seconds": [r["seconds"] for r in m.get("history", [])],
        "final_loss": (m.get("history") or [{}])[-1].get("loss"),
    }
out.write_text(json.dumps(rows, indent=2))
print(json.dumps(rows, indent=2))
PY
tar -czf "$OUT/analysis.tar.gz" -C "$WORK/ens" analysis manifest.json
step "done: $OUT/sizing.json, $OUT/timings.json, $OUT/analysis.tar.gz"
