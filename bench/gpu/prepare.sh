#!/usr/bin/env bash
# Run HERE (a machine with the package registries), from a clean commit, before one device session.
# Fills .whl/ (git-ignored; travels with `carry: [".whl"]`) with what the device image lacks:
#   datasets + dill + multiprocess (the image has torch, pyarrow, pandas, huggingface_hub, safetensors, ...;
#   see /work/.library/device/KINDS.md), our own wheel (pure Python, MNIST data inside), and COMMIT.
# Versions are the ones of the local environment that ran the tests. Python of the device: 3.12.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PY:-3.12}                      # the device's Python
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}  # the tested environment
ver() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))"; }
V_DATASETS=$(ver datasets); V_DILL=$(ver dill); V_MP=$(ver multiprocess)
rm -rf .whl && mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "datasets==$V_DATASETS" "dill==$V_DILL" "multiprocess==$V_MP"
"$PYTHON" -m pip wheel -q --no-deps -w .whl .
git rev-parse HEAD > .whl/COMMIT
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "warning: uncommitted changes; results will name $(cat .whl/COMMIT) but were not made by it" >&2
  echo dirty >> .whl/COMMIT
fi
ls -la .whl
du -sh .whl
