#!/usr/bin/env bash
# The main job, end to end on a fresh machine: environment, the v1 dataset (rebuilt and checked against
# the shipped manifest), every baseline, the leaderboard and the HTML report.
#   GPU present -> the full protocol (preset "default": 4 methods x 3 seeds, 100 epochs/task, 4 runs at once)
#   CPU only    -> preset "quick" (4 methods x 1 seed, a few minutes on 2 cores)
# Override with PRESET=tiny|quick|default JOBS=N ./run.sh
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[viz]'
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  PRESET="${PRESET:-default}"; JOBS="${JOBS:-4}"
else
  PRESET="${PRESET:-quick}"; JOBS="${JOBS:-1}"
fi
cemnist build --out _release/v1.0.0 --overwrite
cemnist-baselines run --method all --preset "$PRESET" --jobs "$JOBS" --trace --out "results/$PRESET"
cemnist report "results/$PRESET" --out "results/$PRESET/report" --preview docs/img/preview_strip.png
echo "leaderboard: results/$PRESET/LEADERBOARD.md   report: results/$PRESET/report/index.html"
