#!/usr/bin/env bash
# The main job, end to end on a fresh machine: environment, the v1 dataset (rebuilt and checked against
# the shipped manifest), the v1 baselines (naive kd mib joint, default protocol), leaderboard, quality
# targets and the HTML report.
#   CPU: seed 0 of every method (the 3-seed board takes about 65 min on 2 cores, more than an hour),
#        2 runs at a time, one thread each (faster than one run on two threads: bench/bench_cpu_protocol.py)
#   GPU: seeds 0 1 2, 4 runs at a time
# Override with PRESET=tiny|default|long SEEDS="0 1 2" JOBS=N OUT=DIR ./run.sh
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[viz]'
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  JOBS="${JOBS:-4}"
  SEEDS="${SEEDS:-0 1 2}"
else
  JOBS="${JOBS:-2}"
  SEEDS="${SEEDS:-0}"
fi
PRESET="${PRESET:-default}"
OUT="${OUT:-runs/$PRESET}"
cemnist build --out _release/v1.0.0 --overwrite
# the first seed with traces (pictures), the others without (a trace scores the pool 4 times per task)
# shellcheck disable=SC2086
set -- $SEEDS
cemnist-baselines run --method all --preset "$PRESET" --seeds "$1" --jobs "$JOBS" --trace --resume --out "$OUT"
shift
if [ "$#" -gt 0 ]; then
  cemnist-baselines run --method all --preset "$PRESET" --seeds "$@" --jobs "$JOBS" --resume --out "$OUT"
fi
cemnist-baselines targets --results "$OUT" --preset "$PRESET" || echo "(some quality targets missed: see above)"
cemnist-baselines report "$OUT" --out "$OUT/report" --preview docs/img/preview_strip.png
echo "leaderboard: $OUT/LEADERBOARD.md   report: $OUT/report/index.html"
