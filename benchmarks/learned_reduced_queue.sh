#!/usr/bin/env bash
# The reduced Back-Projection Diffusion benchmark (benchmarks/learned_reduced.py) on a shared
# CPU: the three stores, then the twelve train+evaluate runs in priority order, PAR at a time,
# each a `nice` process with one torch thread. Stores and run folders live in $WORK, outside
# any checkout (--work), so that any checkout of the repository resumes the same runs; per-run
# results go to <checkout>/benchmarks/results/runs/<model>-seed<S>.json (a run whose JSON
# exists is skipped), logs to $LOGS/<model>-seed<S>.log.
#
# Usage (repository root):
#   WORK=/work/learned-reduced LOGS=/work/logs/learned bash benchmarks/learned_reduced_queue.sh
# Stop cleanly: `touch $WORK/STOP` (no further run starts), then SIGTERM each running
# learned_reduced.py process by its pid: it finishes its step, checkpoints and exits. Remove
# $WORK/STOP and run the same command to resume (training resumes from the checkpoint; an
# interrupted evaluation resumes after its last finished pass: validation with EMA weights,
# with raw weights, test).
set -u
WORK=${WORK:-/work/learned-reduced}
LOGS=${LOGS:-$WORK/logs}
PAR=${PAR:-2}
PY=${PY:-python3}
NICE=${NICE:-10}
if [ -e "$WORK/STOP" ]; then
  echo "$WORK/STOP exists: remove it to run" >&2
  exit 1
fi
mkdir -p "$WORK" "$LOGS"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export WORK LOGS PY NICE
nice -n "$NICE" $PY benchmarks/learned_reduced.py --work "$WORK" --stages data --workers 2 \
  >>"$LOGS/data.log" 2>&1 || { echo "data stage failed: $LOGS/data.log" >&2; exit 1; }
job() {
  local m=$1 s=$2
  if [ -e "$WORK/STOP" ]; then echo "skip $m seed$s (STOP)"; return 0; fi
  if [ -e "benchmarks/results/runs/$m-seed$s.json" ]; then echo "done $m seed$s"; return 0; fi
  nice -n "$NICE" $PY benchmarks/learned_reduced.py --work "$WORK" --stages train,evaluate \
    --models "$m" --seed "$s" --device cpu --threads 1 >>"$LOGS/$m-seed$s.log" 2>&1
  echo "exit $? $m seed$s $(date -u +%FT%H:%MZ)"
}
export -f job
printf '%s\n' "equinet-cnn 0" "equinet 0" "equinet-cnn 1" "equinet 1" "equinet-cnn 2" \
  "equinet 2" "b-equinet-cnn 0" "analytical-cnn 0" "b-equinet-cnn 1" "analytical-cnn 1" \
  "b-equinet-cnn 2" "analytical-cnn 2" | xargs -P "$PAR" -L 1 bash -c 'job "$0" "$1"'
