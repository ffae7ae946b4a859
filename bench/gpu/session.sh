#!/usr/bin/env bash
# Run ON the device machine, in one call (see bench/gpu/README.md):
#   run(command="bash bench/gpu/session.sh", carry=[".whl"], timeout_s=590)
# 1. installs .whl/ into /tmp/site; prints versions; builds the dataset (~5 s);
# 2. the leaderboard of PRESET (default: the v1 protocol, 4 methods x 3 seeds, 2-2 overlap, 8 epochs per task,
#    bf16 autocast, eager; `long` is the 100-epoch fp32 one; --trace), bounded so the bench still runs (what
#    compiling costs and gains is measured by the bench);
#    quality targets; the results come back as $OUT/results_v1.tar.gz (+ checkpoints_v1.tar.gz when the
#    leaderboard did not finish, for `--resume` in a later session);
# 3. the speed bench with the time left (the default fast path, eager bf16, and eager fp32 for naive+kd; then
#    compiled / CUDA graphs (bf16) / fp32 + CUDA graphs for naive).
# Everything is logged to $OUT/session.log. At most 8 files come back from $OUT: keep it that way.
# Knobs (env): PRESET (default|long|tiny), DEVICE (cuda|cpu), JOBS, BUDGET (s, whole script), LB_MAX (s),
# RESUME_FROM (a carried results folder with checkpoints/ from an unfinished session: continue with --resume).
set -u -o pipefail
OUT=${OUT:?set OUT to a folder for the files that come back}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET - $(el) )); }
PRESET=${PRESET:-default} DEVICE=${DEVICE:-cuda} JOBS=${JOBS:-6} BUDGET=${BUDGET:-575} LB_MAX=${LB_MAX:-400}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 CEMNIST_CACHE=${CEMNIST_CACHE:-/tmp/cemnist-cache}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
  export CEMNIST_GIT_COMMIT=$(head -1 .whl/COMMIT)$(grep -q dirty .whl/COMMIT && echo -dirty)
fi
echo "== [$(el) s] environment (commit ${CEMNIST_GIT_COMMIT:-?})"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -m pip list 2>/dev/null | grep -i -E "^(torch|triton|datasets|pyarrow|fsspec|huggingface.hub|numpy|pandas|safetensors|pillow|matplotlib|dill|multiprocess|cemnist) " || true
python3 - <<'PY' || { echo "FATAL: imports failed"; exit 4; }
import torch, datasets, pyarrow, cemnist_data, cemnist_baselines
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("datasets", datasets.__version__, "pyarrow", pyarrow.__version__, "cemnist", cemnist_baselines.__version__)
PY
python3 -c "from cemnist_baselines.data import load_task_data; load_task_data(task=0, split='train', mode='overlap')" \
  || { echo "FATAL: dataset build failed"; exit 5; }
echo "== [$(el) s] leaderboard: preset $PRESET, 4 methods x 3 seeds, --jobs $JOBS, device $DEVICE"
RES=/tmp/results/v1
EXTRA=()
if [ -n "${RESUME_FROM:-}" ]; then  # a results folder carried from an unfinished session (with checkpoints/)
  mkdir -p /tmp/results && cp -r "$RESUME_FROM" "$RES" && EXTRA=(--resume) || { echo "FATAL: RESUME_FROM=$RESUME_FROM"; exit 6; }
fi
lb() {  # extra args; bounded by LB_MAX and by the budget minus 120 s for the bench
  local lim=$(( $(left) - 120 )); [ "$lim" -gt "$LB_MAX" ] && lim=$LB_MAX
  [ "$lim" -lt 30 ] && { echo "no time left for the leaderboard"; return 124; }
  local s=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$lim" cemnist-baselines run --method naive kd mib joint --seeds 0 1 2 --preset "$PRESET" \
    --device "$DEVICE" --jobs "$JOBS" --trace --no-progress --out "$RES" "${EXTRA[@]}" "$@"
  local rc=$?
  echo "leaderboard rc=$rc wall $(( $(date +%s) - s )) s (limit $lim s) $*"
  return $rc
}
lb; rc=$?
cemnist-baselines leaderboard --results "$RES" >/dev/null 2>&1 || true   # also after a partial run
cat "$RES/LEADERBOARD.md" 2>/dev/null
cemnist-baselines targets --results "$RES" || echo "targets: not all met (or runs missing)"
tar -czf "$OUT/results_v1.tar.gz" -C /tmp/results --exclude=checkpoints v1 && ls -la "$OUT/results_v1.tar.gz"
if [ "$rc" -ne 0 ]; then
  cemnist-baselines progress --results "$RES"
  tar -czf "$OUT/checkpoints_v1.tar.gz" -C /tmp/results v1/checkpoints 2>/dev/null
fi
echo "== [$(el) s] bench: the leaderboard's fast path (eager bf16) and eager fp32 vs the seed-style loop, naive + kd"
b=$(( $(left) - 60 )); [ "$b" -gt 120 ] && b=120
[ "$b" -ge 20 ] && timeout "$b" python3 bench/bench_train_epoch.py --device "$DEVICE" --variants eager fp32 --json "$OUT/bench_eager.json"
b=$(( $(left) - 5 ))
echo "== [$(el) s] bench: compiled (bf16), CUDA graphs (bf16), fp32 + CUDA graphs; naive ($b s)"
[ "$b" -ge 30 ] && timeout "$b" python3 bench/bench_train_epoch.py --device "$DEVICE" --method naive --variants graphs fp32-graphs compiled --json "$OUT/bench_compiled.json"
echo "== [$(el) s] done"
