#!/usr/bin/env bash
# One prepared script for a session with a GPU (issue 3 §7): full leaderboard and quality targets first (the
# artifact that matters most), then the speed bench with short timeouts, to fit the 15 minutes of device time.
# Usage (repo root, venv active, package installed): OUT=/some/dir bash bench/bench_train_gpu_session.sh
# Writes $OUT/bench.json, $OUT/bench_graphs.json, $OUT/results/v1/*.json + LEADERBOARD.md + leaderboard.csv,
# $OUT/session.log. Then copy $OUT/results/v1 to results/v1 and commit (drop the checkpoints/ folder); with the
# traces, `cemnist report results/v1` makes the README pictures of issue 4.
set -u -o pipefail
OUT=${OUT:-runs/gpu_session}
JOBS=${JOBS:-4}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 CEMNIST_CACHE=${CEMNIST_CACHE:-$OUT/cache}
exec > >(tee -a "$OUT/session.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python -c "from cemnist_baselines.data import load_task_data; load_task_data(task=0, split='train', mode='overlap')"  # builds the data once
echo "== full leaderboard: 4 methods x 3 seeds, 2-2, 100 epochs, --jobs $JOBS =="
start=$(date +%s)
timeout 480 cemnist-baselines run --method all --seeds 0 1 2 --device cuda --jobs "$JOBS" --trace --out "$OUT/results/v1" --no-progress || echo "leaderboard run ended with $?"
echo "leaderboard wall: $(( $(date +%s) - start )) s"
cemnist-baselines targets --results "$OUT/results/v1" || echo "targets missed (see above)"
rm -rf "$OUT/results/v1/checkpoints"
echo "== bench (compile, bf16; graphs off) =="
timeout 150 python bench/bench_train_epoch.py --device cuda --json "$OUT/bench.json" || echo "bench failed: $?"
echo "== bench (compile + CUDA graphs) =="
timeout 90 python bench/bench_train_epoch.py --device cuda --cuda-graphs --method naive --json "$OUT/bench_graphs.json" || echo "bench graphs failed: $?"
