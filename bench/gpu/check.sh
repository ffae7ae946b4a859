#!/usr/bin/env bash
# GPU acceptance check of the baselines on ONE NVIDIA GPU (H100/H200 class), bounded to BUDGET seconds (default
# 450 = 7.5 min), one summary table at the end. Run from the repository root:
#   bash bench/gpu/prepare.sh                  # HERE, where registries answer: fills .whl/ (datasets, dill, ...)
#   run(command="OUT=$OUT bash bench/gpu/check.sh", carry=[".whl"], timeout_s=500)   # the device machine
#   DEVICE=cpu SMOKE=1 bash bench/gpu/check.sh  # dry run of the plumbing on a CPU (about 2 minutes)
# It never reaches a package registry: the machine's own python3 with torch, the wheels carried in .whl/ for
# what it lacks, and this working tree's package (a wheel built offline, else source links).
# Stages (each bounded; skipped when the time left is too short):
#   setup  imports (torch, CUDA, cuDNN, the package from THIS tree)      build  the dataset (first load)
#   a      every built-in method, tiny preset, --trace, on DEVICE (one process)
#   b      the default protocol, naive seed 0, eager: per-epoch times; against the committed CPU board
#          (results/v1; compare's tolerance) and its seed-0 run step by step (the same batches on every device)
#          + eager microbench (bf16/fp32, channels_last/NCHW, batch 32/72; CUDA kernels per step)
#   d      the same run in a fresh process: bitwise-identical confusions? (cuDNN benchmarking on: may differ)
#   r      replay --resume on DEVICE (a resume once crashed there), deterministic, equal to the uninterrupted run?
#   j      cemnist-baselines run --jobs 2 on DEVICE
#   t      the gpu-marked tests (tests/baselines/test_gpu_paths.py, test_env.py)
#   c      the default run with --compile (first epoch of a task = compile)     [GPU only; CPU: SKIP]
#   det    two 2-epoch runs with --deterministic: bitwise identical? which ops have no deterministic kernel
#   e      bench/bench_train_epoch.py (naive; eager bf16, fp32, graphs)           [GPU only]
#   c2     the default run with --cuda-graphs                                       [GPU only]
# Env: BUDGET (s), OUT (where the 3 files that come back go: gpu_check_summary.txt, gpu_check_results.jsonl,
#      gpu_check_logs.tar.gz; default /tmp/gpu_check_out), DEVICE (cuda | cpu), SMOKE=1 (micro configs), PYTHON.
# Commit the summary of a GPU run as bench/gpu/check_summary_<gpu>.txt.
set -u -o pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-450}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
REPO=$(pwd)
if [ ! -f "$REPO/pyproject.toml" ] || [ ! -d "$REPO/baselines" ]; then echo "run from the repository root"; exit 2; fi
OUTD=${OUT:-/tmp/gpu_check_out}
W=${GPUCHK_WORK:-/tmp/gpu_check_work}
rm -rf "$W"; mkdir -p "$W/logs" "$OUTD"
SUM="$W/summary.tsv"; : > "$SUM"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export CEMNIST_CACHE=${CEMNIST_CACHE:-/tmp/gpu_check_cache}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$W/inductor}
export GPUCHK_WORK="$W" GPUCHK_REPO="$REPO" GPUCHK_DEVICE="$DEVICE" GPUCHK_SMOKE="$SMOKE"
GPU=0; [ "$DEVICE" != cpu ] && GPU=1

el()   { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET - $(el) )); }
rec()  { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$SUM"; echo ">> [$(el)s] $1: $2 $3"; }
cap()  { local c=$1 r=${2:-20} l; l=$(( $(left) - r )); [ "$l" -lt "$c" ] && c=$l; [ "$c" -lt 1 ] && c=1; echo "$c"; }  # min(cap, left - reserve), >= 1
# stage NAME CAP MIN_NEEDED cmd...: bounded by timeout; output to logs/NAME.log; its tail on failure
stage() {
  local name=$1 c; c=$(cap "$2"); local need=$3; shift 3
  if [ "$c" -lt "$need" ]; then rec "$name" SKIP "no time left (${c}s < ${need}s)"; return 99; fi
  echo "== [$(el)s] $name (limit ${c}s)"
  local s=$(date +%s) rc
  timeout --signal=TERM --kill-after=10 "$c" "$@" > "$W/logs/$name.log" 2>&1; rc=$?
  echo "   $name: rc=$rc in $(( $(date +%s) - s ))s"
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && ! grep -q "^$name"$'\t' "$SUM" && rec "$name" TIMEOUT "killed after ${c}s$( [ -f "$W/$name.progress" ] \
      && echo "; $(wc -l < "$W/$name.progress") epochs done, last at $(tail -1 "$W/$name.progress" | cut -d' ' -f2)s" ) (logs/$name.log)"
    ! grep -q "^$name"$'\t' "$SUM" && ! grep -q "^$name\." "$SUM" && rec "$name" FAIL "rc=$rc: $(grep -v '^\s*$' "$W/logs/$name.log" | tail -1 | cut -c1-150)"
    tail -n 12 "$W/logs/$name.log" | sed 's/^/   | /'
  fi
  return $rc
}
finish() {
  local rc=$?
  {
    echo
    echo "================ GPU acceptance summary ($(el)s of ${BUDGET}s; device ${DEVICE}$( [ "$SMOKE" = 1 ] && echo ', SMOKE: micro configs, plumbing only')) ================"
    printf '%-10s %-8s %s\n' STAGE STATUS DETAIL
    while IFS=$'\t' read -r a b c; do printf '%-10s %-8s %s\n' "$a" "$b" "$c"; done < "$SUM"
    echo "counts: $(cut -f2 "$SUM" | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
    echo "full logs: $OUTD/gpu_check_logs.tar.gz"
  } | tee "$OUTD/gpu_check_summary.txt"
  cp "$W"/results.jsonl "$OUTD/gpu_check_results.jsonl" 2>/dev/null
  tar -czf "$OUTD/gpu_check_logs.tar.gz" -C "$W" logs 2>/dev/null
  exit $rc
}
trap finish EXIT

# ----------------------------------------------------------------------------------------------- setup
echo "== [$(el)s] setup (commit $(git rev-parse --short HEAD 2>/dev/null || cat .whl/COMMIT 2>/dev/null || echo '?'))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/   gpu: /'
PY=${PYTHON:-python3}
SITE="$W/site"; PKG="$W/pkg"; mkdir -p "$SITE" "$PKG"
export PYTHONPATH="$PKG:$SITE${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import torch' 2>/dev/null; then rec setup FAIL "$PY has no torch"; exit 3; fi
if ! "$PY" -c 'import datasets, dill, multiprocess' 2>/dev/null; then   # the device image lacks these (bench/gpu/README.md)
  if ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" $(ls "$REPO"/.whl/*.whl | grep -v '/cemnist-') \
      > "$W/logs/setup-deps.log" 2>&1 && echo "   deps from .whl/"
  else
    rec setup FAIL "datasets/dill/multiprocess missing and no .whl/: run bash bench/gpu/prepare.sh where a registry answers, carry .whl"
    exit 3
  fi
fi
# the package always from THIS working tree: a wheel built offline into $PKG, else source links
if ! timeout "$(cap 90 30)" "$PY" -m pip install -q --no-deps --no-build-isolation --no-index --no-compile --target "$PKG" "$REPO" \
     > "$W/logs/setup-pkg.log" 2>&1; then
  rm -rf "$PKG"/*; ln -s "$REPO/baselines" "$PKG/cemnist_baselines"; ln -s "$REPO/cemnist_data" "$PKG/cemnist_data"
  echo "   package: source links (offline wheel build failed: logs/setup-pkg.log)"
fi
if ! GPU=$GPU "$PY" - > "$W/logs/setup-import.log" 2>&1 <<'PYEOF'
import os, sys, torch, datasets, cemnist_data, cemnist_baselines
print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version() if torch.cuda.is_available() else None,
      "| datasets", datasets.__version__, "| cemnist", cemnist_baselines.__version__,
      "from", os.path.realpath(cemnist_baselines.__file__))
if os.environ["GPU"] == "1":
    assert torch.cuda.is_available(), "torch sees no CUDA device"
    print("device", torch.cuda.get_device_name(0), "sm", ".".join(map(str, torch.cuda.get_device_capability(0))),
          "x", torch.cuda.device_count())
PYEOF
then rec setup FAIL "imports: $(tail -1 "$W/logs/setup-import.log" | cut -c1-150)"; exit 3; fi
rec setup PASS "$(paste -sd' ' "$W/logs/setup-import.log" | cut -c1-200)"
CLI=("$PY" -m cemnist_baselines.cli)
D=("$PY" "$REPO/bench/gpu/check_stages.py")
MICRO=(); [ "$SMOKE" = 1 ] && MICRO=(--max-train 16 --epochs 1 --max-test 8)

# ----------------------------------------------------------------------------------------------- stages
stage build 90 20 "$PY" -c "
import time; t=time.perf_counter()
from cemnist_baselines.data import load_task_data, load_eval_pool
load_task_data(task=0, split='train', mode='overlap'); load_eval_pool(mode='overlap', n_tasks=5, split='test', max_n=None)
print(f'dataset ready in {time.perf_counter()-t:.1f}s')" && rec build PASS "$(tail -1 "$W/logs/build.log")"

stage a 100 30 "${D[@]}" methods
stage b 120 40 "${D[@]}" run b eager --ref --micro
stage d 80 30 "${D[@]}" run d eager && [ -f "$W/b.path" ] && "${D[@]}" same b d d.same >> "$W/logs/d.log" 2>&1
stage r 60 20 "${D[@]}" replay_resume
stage j 60 30 "${CLI[@]}" run --method naive kd --preset tiny --device "$DEVICE" --jobs 2 --no-progress --overwrite \
  --out "$W/j" "${MICRO[@]}" && rec j PASS "--jobs 2 --device $DEVICE: $(grep -c 'seed 0: final' "$W/logs/j.log") runs ok"
stage t 120 40 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/baselines/test_gpu_paths.py tests/baselines/test_env.py \
  && rec t PASS "$(grep -E '[0-9]+ (passed|skipped)' "$W/logs/t.log" | tail -1)"
if [ "$GPU" = 1 ]; then
  stage c 150 60 "${D[@]}" run c compile --ref
else
  rec c SKIP "--compile on a CPU is tests/baselines/test_compile.py's (slow); a GPU run times it here"
fi
stage det 70 30 "${D[@]}" run det eager --epochs 2 --det
benchline() { grep -E 'fast\[' "$1" | sed -E 's/^ *([a-z]+): seed-style ([0-9.]+) s\/epoch \| fast\[([a-z0-9-]+), ([a-z0-9]+)\] ([0-9.]+) s\/epoch \| ratio ([0-9.]+)x \| first epoch ([0-9.]+) s.*/\3 (\4) \5s\/ep (x\6 vs seed-style \2s; first \7s)/' | paste -sd';' -; }
if [ "$GPU" = 1 ]; then
  stage e 100 45 "$PY" bench/bench_train_epoch.py --device "$DEVICE" --method naive --variants eager fp32 graphs \
    --json "$W/logs/bench_train_epoch.json" && rec e INFO "$(benchline "$W/logs/e.log")"
  stage c2 150 80 "${D[@]}" run c2 graphs --ref
fi
exit 0
