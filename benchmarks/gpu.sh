#!/usr/bin/env bash
# Every GPU check and benchmark in one call: a lent GPU machine is held for minutes, not hours.
#
#   bash benchmarks/gpu.sh [OUTDIR]        (OUTDIR defaults to $OUT, else /tmp/dreamscope-gpu)
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu.sh OUTDIR   (the same steps at toy sizes on the CPU:
#                                                       the test suite runs this so the script cannot rot)
#
# Runs from the repository root on a machine whose python3 has a CUDA torch. Packages that
# machine lacks (mujoco, gymnasium, ...) may sit as wheels in .whl/; they are installed to
# /tmp/site. Appends every step's output to OUTDIR/gpu_session.txt and prints each step's end.
# Exits non-zero when a step failed (each step still runs).
set -u
out=${1:-${OUT:-/tmp/dreamscope-gpu}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} MUJOCO_GL=disable PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
if [ "${QUICK:-0}" = 1 ]; then  # toy sizes: minutes of GPU work become seconds of CPU work
  sizes=tiny; mid=tiny; steps=300; repeats=2; loop="--steps 400 --set run.prefill=100 --set run.log_every=50"
  probe_updates=4
else
  sizes="size1m size25m"; mid=size12m; steps=1200; repeats=20; loop="--steps 1200 --set run.log_every=125"
  probe_updates=50
fi
failed=0
log=$out/gpu_session.txt
step() {  # step NAME COMMAND...: run it (240 s at most), append its output to the log, go on when it fails
  local name=$1; shift
  echo "=== $name: $*" | tee -a "$log"
  local t0=$SECONDS
  timeout "${STEP_TIMEOUT:-240}" "$@" >"$out/step.txt" 2>&1
  local rc=$?
  cat "$out/step.txt" >>"$log"
  tail -n 12 "$out/step.txt"
  echo "=== $name: rc $rc, $((SECONDS - t0)) s" | tee -a "$log"
  [ "$rc" = 0 ] || failed=1
}

[ "$device" = cuda ] && step gpu nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
# Correctness on the GPU first: a short run, the doctor on it, the probe on the GPU and on the CPU.
run=$out/run
rm -rf "$run"
step ${device}_train $py -m dreamscope.cli train --preset tiny --config airhockey_seed_small --steps $steps \
  --logdir "$run" --no-progress --set run.device=$device
step ${device}_diagnose $py -m dreamscope.cli diagnose "$run"
step ${device}_probe $py -m dreamscope.cli probe "$run" --device $device --updates $probe_updates --eval-batches 2 --train-batches 4
step cpu_probe_of_${device}_run $py -m dreamscope.cli probe "$run" --device cpu --updates 4 --eval-batches 2 --train-batches 2
# A sweep's trials sharing the GPU through Ray (needs ray[tune]): two trials on half a GPU each.
rm -rf "$out/sweep"
[ "$device" = cuda ] && step cuda_sweep $py -m dreamscope.cli sweep --logdir "$out/sweep" --preset tiny \
  --config airhockey_seed_small --steps 600 --gpus-per-trial 0.5 --seeds 0 1 --no-progress
# One update, per model size and precision; compiled at the middle size.
step train_step_$device $py benchmarks/train_step.py --device $device --presets $sizes --bfloat16 --repeats $repeats
[ "${QUICK:-0}" = 1 ] || step train_step_${device}_compile $py benchmarks/train_step.py --device $device --presets $mid \
  --compile --bfloat16 --repeats $repeats
# Whole runs: what one run gets, and what the machine gives several at once (a sweep's trials).
[ "$device" = cuda ] && step train_loop_cuda $py benchmarks/train_loop.py --device cuda $loop --parallel 1 4 8
step train_loop_cpu $py benchmarks/train_loop.py --device cpu $loop --parallel 1
rm -f "$out/step.txt"
exit $failed
