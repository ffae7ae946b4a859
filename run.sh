#!/usr/bin/env bash
# The main job, end to end on a fresh machine: environment, the v1 dataset (rebuilt and checked against
# the shipped manifest), the v1 baselines (default protocol), leaderboard, quality targets and the HTML report.
#   CPU: seed 0 of naive kd mib joint on 2-2 overlap (the whole published board, 10 methods x 3 seeds x 2 modes,
#        takes hours on 2 cores), 2 runs at a time, one thread each (faster than one run on two threads:
#        bench/bench_cpu_protocol.py)
#   GPU: the whole board: every built-in method, seeds 0 1 2, overlap and disjoint, 4 runs at a time
# Override with PRESET=tiny|default|long SEEDS="0 1 2" METHODS="all" (every built-in) or "naive mib ..."
#   MODES="overlap disjoint" JOBS=N OUT=DIR ./run.sh
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
  METHODS="${METHODS:-all}"
  MODES="${MODES:-overlap disjoint}"
else
  JOBS="${JOBS:-2}"
  SEEDS="${SEEDS:-0}"
  METHODS="${METHODS:-naive kd mib joint}"
  MODES="${MODES:-overlap}"
fi
PRESET="${PRESET:-default}"
OUT="${OUT:-runs/$PRESET}"
cemnist build --out _release/v1.0.0 --overwrite
# the first seed with traces (pictures), the others without (a trace scores the pool 4 times per task)
# shellcheck disable=SC2086
for MODE in $MODES; do
  set -- $SEEDS
  cemnist-baselines run --method $METHODS --mode "$MODE" --preset "$PRESET" --seeds "$1" --jobs "$JOBS" --trace \
    --resume --out "$OUT"
  shift
  if [ "$#" -gt 0 ]; then
    cemnist-baselines run --method $METHODS --mode "$MODE" --preset "$PRESET" --seeds "$@" --jobs "$JOBS" --resume \
      --out "$OUT"
  fi
  cemnist-baselines targets --results "$OUT" --preset "$PRESET" --mode "$MODE" \
    || echo "(some quality targets missed: see above)"
done
cemnist-baselines report "$OUT" --out "$OUT/report" --preview docs/img/preview_strip.png
echo "leaderboard: $OUT/LEADERBOARD.md   report: $OUT/report/index.html"
