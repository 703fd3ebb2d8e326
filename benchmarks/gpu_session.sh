#!/usr/bin/env bash
# One unattended GPU session (about 9 minutes on one H100/H200-class GPU): everything this
# project measures on a GPU, in one prepared command, results and timings under $OUT.
# Device call: COMMIT=$(git rev-parse --short HEAD) OUT=$OUT bash benchmarks/gpu_session.sh,
# carrying .whl (zarr, numcodecs, donfig, google-crc32c, pymetis, tomli_w wheels for cp312).
#
#   1. benchmarks/gpu_solver.py: the batched Lippmann-Schwinger solver (disk oracle, agreement
#      with the CPU FD solver, throughput, store path);
#   2. benchmarks/learned_reduced.py: the reduced Back-Projection Diffusion benchmark, three
#      training seeds per model, as parallel processes on the same GPU (small 32x32 models);
#   3. msinv learn paper-row: a Table-1 row (squares, 80x80) under a wall-clock budget.
#
# Usage (repository root):
#   OUT=out/gpu bash benchmarks/gpu_session.sh            # on the GPU machine
#   TOY=1 OUT=/tmp/gpu-toy bash benchmarks/gpu_session.sh # rehearsal on a CPU at toy sizes
#
# Optional wheels for packages the GPU image lacks lie in .whl/ (see docs/benchmarks.md); the
# results come back as $OUT/session.tgz plus the log $OUT/session.log.
set -u
OUT=${OUT:-out/gpu-session}
TOY=${TOY:-0}
ROW_MINUTES=${ROW_MINUTES:-5.0}
LIMIT_S=${LIMIT_S:-540}  # the whole session stops waiting for background work after this
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/session.log"
WORK=${WORK:-/tmp/msinv-gpu-session}
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$LOG"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  nvidia-smi 2>/dev/null | head -15
  $PY -c "import sys, torch, numpy, zarr; print(sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__, 'zarr', zarr.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
  nproc
  echo "commit ${COMMIT:-unknown}"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"
if [ "$TOY" = 1 ]; then DEVICE=cpu; SHIP_TO=${SHIP_TO:-$WORK/ship}; else DEVICE=cuda; fi

# --- 2. reduced benchmark in the background (its own processes share the GPU) -------------
reduced() {
  local models="equinet-cnn b-equinet-cnn analytical-cnn equinet"
  local extra="" workers=12
  if [ "$TOY" = 1 ]; then extra="--tiny"; workers=1; fi
  $PY benchmarks/learned_reduced.py --stages data --workers $workers $extra \
    >"$WORK/reduced-data.log" 2>&1 || return 1
  local pids=()
  for seed in 0 1 2; do
    for m in $models; do
      $PY benchmarks/learned_reduced.py --stages train,evaluate --models "$m" --seed "$seed" \
        --device "$DEVICE" --threads 1 $extra >"$WORK/reduced-$m-$seed.log" 2>&1 &
      pids+=($!)
    done
  done
  wait "${pids[@]}"
  $PY benchmarks/learned_reduced.py --stages report,ship $extra \
    ${SHIP_TO:+--ship-to "$SHIP_TO"} >"$WORK/reduced-report.log" 2>&1
  local results=benchmarks/results
  if [ "$TOY" = 1 ]; then results=benchmarks/results/tiny; fi
  mkdir -p "$WORK/reduced"
  cp -r "$results/learned_reduced.json" "$results/learned_reduced.md" "$results/runs" "$WORK/reduced/"
  cp src/msinv/learned/checkpoints/equinet-cnn-squares32.pt src/msinv/learned/checkpoints/example-squares32.npz \
    "$WORK/reduced/" 2>/dev/null
  for d in out/runs/reduced/*; do
    [ -f "$d/log.jsonl" ] && cp "$d/log.jsonl" "$WORK/reduced/$(basename "$d")-log.jsonl"
  done
}
if [ "${SKIP_REDUCED:-0}" != 1 ]; then
  say "reduced benchmark: started in the background"
  ( reduced; echo "reduced done rc=$?" >>"$LOG" ) &
  REDUCED_PID=$!
fi

# --- 0. the GPU tests (CUDA solver against the CPU) ------------------------------------------
if [ "$TOY" != 1 ]; then
  timeout 90 $PY -m pytest -q -p no:cacheprovider -m gpu tests/accel >"$WORK/gpu_tests.log" 2>&1
  say "gpu tests rc=$? ($(tail -1 "$WORK/gpu_tests.log"))"
fi

# --- 1. solver benchmark --------------------------------------------------------------------
say "gpu solver benchmark"
if [ "$TOY" = 1 ]; then
  timeout 300 $PY benchmarks/gpu_solver.py --device cpu --n 16 --samples 4 --max-seconds 120 \
    --out "$WORK/gpu_solver.json" >>"$WORK/gpu_solver.log" 2>&1
else
  timeout 90 $PY benchmarks/gpu_solver.py --device cuda --samples 512 --max-seconds 70 \
    --out "$WORK/gpu_solver.json" >>"$WORK/gpu_solver.log" 2>&1
fi
say "gpu solver benchmark rc=$?"

# --- 1b. training throughput of the speed switches -------------------------------------------
say "training switches benchmark"
if [ "$TOY" = 1 ]; then
  timeout 300 $PY benchmarks/learned_train_speed.py --device cpu --n 16 --pairs 16 --steps 8 \
    --warmup 3 --variants fp32,bf16+channels_last+device_noise --out "$WORK/learned_train_speed.json" \
    >"$WORK/learned_train_speed.log" 2>&1
else
  timeout 100 $PY benchmarks/learned_train_speed.py --device cuda --steps 150 --warmup 40 \
    --out "$WORK/learned_train_speed.json" >"$WORK/learned_train_speed.log" 2>&1
fi
say "training switches benchmark rc=$?"

# --- 3. a Table-1 row ------------------------------------------------------------------------
say "paper row: squares, budget $ROW_MINUTES min"
if [ "$TOY" = 1 ]; then
  ROW_ARGS="--n 16 --train-count 64 --test-count 4 --steps 30 --draws 2 --levels 8"
else
  ROW_ARGS=""
fi
timeout $(python3 -c "print(int(60 * $ROW_MINUTES + 90))") \
  $PY -m msinv.cli.main learn paper-row --family squares --device "$DEVICE" \
  --budget-minutes "$ROW_MINUTES" --out "$WORK/row-squares" $ROW_ARGS >"$WORK/row-squares.log" 2>&1
say "paper row rc=$?"
tail -12 "$WORK/row-squares.log" | tee -a "$LOG"

if [ -n "${REDUCED_PID:-}" ]; then
  say "waiting for the reduced benchmark (until ${LIMIT_S} s)"
  while kill -0 "$REDUCED_PID" 2>/dev/null && [ $(( $(date +%s) - t0 )) -lt "$LIMIT_S" ]; do
    sleep 2
  done
  if kill -0 "$REDUCED_PID" 2>/dev/null; then
    say "time limit: stopping the reduced runs still going; reporting the finished ones"
    pkill -f "benchmarks/learned_reduced.py" ; sleep 2; pkill -9 -f "benchmarks/learned_reduced.py"
    wait "$REDUCED_PID" 2>/dev/null
    extra=""; [ "$TOY" = 1 ] && extra="--tiny"
    $PY benchmarks/learned_reduced.py --stages report $extra >"$WORK/reduced-report.log" 2>&1
    results=benchmarks/results; [ "$TOY" = 1 ] && results=benchmarks/results/tiny
    mkdir -p "$WORK/reduced"
    cp -r "$results/learned_reduced.json" "$results/learned_reduced.md" "$results/runs" "$WORK/reduced/" 2>/dev/null
    for d in out/runs/reduced/*; do
      [ -f "$d/log.jsonl" ] && cp "$d/log.jsonl" "$WORK/reduced/$(basename "$d")-log.jsonl"
    done
  fi
fi
say "packing results"
( cd "$WORK" && tar czf "$OUT/session.tgz" --exclude='*.zarr' --exclude='samples' \
    --exclude='checkpoint.pt' --exclude='probe' -- * 2>/dev/null )
ls -la "$OUT" | tee -a "$LOG"
say "done"
