#!/usr/bin/env bash
# Train several checkpoints at once on one GPU machine (the device tool's H200), each with our own
# `workbench train`, from notes rendered beforehand (no FluidSynth there):
#
#   here:   workbench render-notes gansynth wavegan ... --cache .gpu/notes
#   there:  OUT=/some/dir MINUTES=7 bash scripts/gpu_train.sh
#   (dry run on a CPU: DEVICE=cpu PY=.venv/bin/python MINUTES=0.2 OUT=/tmp/out bash scripts/gpu_train.sh)
#
# Every job is one process on the same GPU; a job that fails on CUDA is retried on the CPU for
# the time left, so one device bug costs one model, not the run. Results: $OUT/runs.tar.gz.partNN
# (checkpoints, logs, cards) and $OUT/states.tar.gz.partNN (optimiser states, for --resume).
set -u
OUT=${OUT:?set OUT to a folder for the results}
MINUTES=${MINUTES:-7}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export WORKBENCH_NOTES_CACHE=${WORKBENCH_NOTES_CACHE:-$PWD/.gpu/notes}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
RUNS=$OUT/gpu_runs
mkdir -p "$RUNS"
deadline=$(( $(date +%s) + ${MINUTES%.*} * 60 + 20 ))

job() {  # job NAME MODEL [train arguments...]
  local name=$1 model=$2
  shift 2
  local dir=$RUNS/$name
  mkdir -p "$dir"
  $PY -m workbench train "$model" --out "$dir" --device "$DEVICE" --threads 1 --steps 1000000 \
      --max-minutes "$MINUTES" --checkpoint-every 1000 "$@" >"$dir/train.log" 2>&1 && return 0
  local left=$(( deadline - $(date +%s) ))
  echo "[$name] failed on $DEVICE; retrying on the CPU for ${left}s" | tee -a "$dir/train.log"
  [ "$left" -gt 30 ] || return 1
  rm -f "$dir/model.safetensors" "$dir/train_state.pt" "$dir/card.json" "$dir/log.csv"
  $PY -m workbench train "$model" --out "$dir" --device cpu --threads 1 --steps 1000000 \
      --max-minutes "$(( left / 60 )).$(( left % 60 * 10 / 60 ))" --checkpoint-every 250 "$@" \
      >>"$dir/train.log" 2>&1
}

job gansynth gansynth --eval-every 1000 &
job gansynth_b32 gansynth --eval-every 1000 --batch-size 32 &
job gansynth_no_map_no_gate gansynth --eval-every 1000 --set pitch_map=false --set if_mask=false &
job wavegan wavegan --eval-every 1000 --batch-size 64 &
job melgan melgan --eval-every 1000 --batch-size 16 &
job samplernn samplernn --eval-every 500 --batch-size 32 &
job waveglow waveglow --eval-every 500 --batch-size 16 &
job flowavenet flowavenet --eval-every 500 --batch-size 16 &
job vae vae --eval-every 500 --batch-size 32 &
job vqvae vqvae --eval-every 500 --batch-size 32 &
(sleep 60; nvidia-smi >"$RUNS/nvidia-smi.txt" 2>&1) &
wait
for d in "$RUNS"/*/; do echo "$(basename "$d"): $(tail -c 300 "$d/train.log" | tr '\r' '\n' | tail -2)"; done

cd "$RUNS" || exit 1
tar --exclude=train_state.pt -czf "$OUT/runs.tar.gz" .
find . -name train_state.pt -print0 | tar -czf "$OUT/states.tar.gz" --null -T -
cd "$OUT" || exit 1
rm -rf "$RUNS"
split -b 15M -d runs.tar.gz runs.tar.gz.part && rm runs.tar.gz
split -b 15M -d states.tar.gz states.tar.gz.part && rm states.tar.gz
# at most 8 files and 64 MiB come back: drop optimiser states first
while [ "$(ls | wc -l)" -gt 8 ] || [ "$(du -sm . | cut -f1)" -gt 62 ]; do
  last=$(ls states.tar.gz.part* 2>/dev/null | tail -1)
  [ -n "$last" ] || break
  echo "dropping $last (too much to bring back)"; rm -f states.tar.gz.part*
done
ls -la "$OUT"
