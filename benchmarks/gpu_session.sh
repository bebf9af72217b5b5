#!/bin/bash
# One prepared run on a lent GPU machine (the workplace's `device` tool; or any offline CUDA
# box with PyTorch): the checks and measurements only a GPU can give, then a time-boxed
# fine-tune of the shipped model, with everything written to $OUT in at most 8 files.
#
# Here first:   python benchmarks/gpu_kit.py          (builds .gpukit/, about a minute)
# There:        device run, carry [".gpukit"], timeout_s 580:
#                   bash benchmarks/gpu_session.sh        (training: what the other stages leave of
#                                                          SESSION_S, default 570 s; or give MINUTES)
#                   CONFIG=config/train_gpu_root.yaml MEASURE_DATA=0 bash benchmarks/gpu_session.sh
#                                                         (another recipe; no render and loading stages)
# Back here:    cat $FILES/model.safetensors.part-* > runs/gpu/model.safetensors
#               cp $FILES/model.json runs/gpu/
# Judge it:     T="--image-seed 500 --clip-seed 600 --clips 10"   (the tuning set)
#               mhr2 eval $T --json shipped.json; mhr2 eval --weights runs/gpu/model.safetensors $T --json gpu.json
#               (the fine-tune's model.json keeps the shipped model's duplicate merging: same selection)
#               mhr2 compare shipped.json gpu.json --split --rule   (better / worse beyond the noise, and
#               the tries' rule: exit 0 when better on one of F1, PA-MPJPE, MRPE, IDF1 on person boxes and
#               worse on none; read PA-MPJPE and MRPE on its "same people" rows when the recall moved;
#               then the confirmation set, --image-seed 700 --clip-seed 800, with --guard: worse on none)
#
# Stages (each logs to report.txt, has its own time limit, and a failure does not stop the next;
# at most 5.2 min before the training, which gets what is left of SESSION_S after
# TRAIN_RESERVE_S for its setup, its final save, the 1.5 minutes that write the model from the
# saved state if it overruns, and the split; at least 1 minute): install the kit; the GPU's
# facts; the tests that only run with CUDA; synthetic rendering on the CPU and the GPU
# (benchmarks/synth.py); the training data stream with and without worker processes
# (benchmarks/data_loading.py), which picks the data workers the training uses (WORKERS, or 0
# when the GPU renders twice as fast in the training process or the workers fail; a training
# that fails before its first saved state runs again without workers in the time left); network
# latency on the GPU (benchmarks/latency.py); the training (config/train_gpu_finetune.yaml,
# `--time-limit`), its log in train.log; the model in parts under 16 MiB (the tool's per-file
# limit).
#
# A lease of minutes buys too little training to move the model (weights/README.md, the eighteenth
# try: 5.2 minutes, 795 steps, bound by the rendering workers): TRAIN=0 spends it on the
# measurements alone, LATENCY_PRESETS="tiny small large" on the latency of each preset.
set -u
MINUTES=${1:-auto}  # training minutes; auto: what the earlier stages leave of SESSION_S
TRAIN=${TRAIN:-1}  # 0: no training stage (the checks and measurements only)
CONFIG=${CONFIG:-config/train_gpu_finetune.yaml}  # the training stage's recipe (config/train_gpu_root.yaml: the twentieth try)
MEASURE_DATA=${MEASURE_DATA:-1}  # 0: no render and loading stages (WORKERS data workers), their time to the training
LATENCY_PRESETS=${LATENCY_PRESETS-tiny}  # presets the latency stage measures, each within 100 s taken from the training's time (use more with TRAIN=0; "" for none)
SESSION_S=${SESSION_S:-570}  # the whole run's seconds: the device call's timeout_s (580) less 10
TRAIN_RESERVE_S=165  # after the time limit: 60 s (setup, final save) + 90 s (overrun: write the model) + 15 s
DEVICE=${DEVICE:-cuda}  # cpu: a rehearsal of this script on a machine without a GPU
WORKERS=${WORKERS:-14}  # data workers rendering scenes on the CPU cores (16 on the lent H200 machine)
OUT=${OUT:-/tmp/gpu_session_out}
SITE=/tmp/mhr2_site
RUN=/tmp/mhr2_gpu_run
BEST_WORKERS=/tmp/mhr2_gpu_workers  # the loading stage's choice for the training stage
REPORT=$OUT/report.txt
mkdir -p "$OUT"
rm -rf "$BEST_WORKERS" "$RUN" "$OUT/train.log"  # a rehearsal's choice, run and log must not reach this run
cd "$(dirname "$0")/.."

stage() {  # stage NAME COMMAND...: run, log its output and status, go on either way
    local name=$1 start=$SECONDS
    shift
    echo "=== $name: $*" >>"$REPORT"
    "$@" >>"$REPORT" 2>&1
    echo "=== $name: exit $? after $((SECONDS - start)) s" >>"$REPORT"
}

install_kit() {
    [ -d .gpukit ] || { echo "no .gpukit: build it with benchmarks/gpu_kit.py and carry it"; return 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .gpukit/wheels/*.whl &&
        cp -r .gpukit/anny .gpukit/anny-*.dist-info "$SITE"/ &&
        for f in .gpukit/anny_cache/*/*.xz; do
            mkdir -p "$ANNY_CACHE_DIR/$(basename "$(dirname "$f")")"
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
                "$f" "$ANNY_CACHE_DIR/$(basename "$(dirname "$f")")/$(basename "$f" .xz)" || return 1
        done
}

facts() {
    nvidia-smi -L
    nproc
    python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO CUDA')"
    git log -1 --format='commit %h %s' 2>/dev/null || true
}

export PYTHONPATH=$SITE:$PWD ANNY_CACHE_DIR=/tmp/anny_cache PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
stage kit install_kit
stage facts facts
stage cuda-tests timeout 90 python3 -m pytest -q -p no:cacheprovider test/test_devices.py test/test_tracking_device.py \
    test/test_mixed_precision.py "test/test_synthetic.py::test_cuda_renders_like_the_cpu"
[ "$MEASURE_DATA" = 0 ] || stage render timeout 45 python3 benchmarks/synth.py --people 1 5 --sizes 384x288 --warmup 2 --iters 6
[ "$MEASURE_DATA" = 0 ] || stage loading timeout 75 python3 benchmarks/data_loading.py --config "$CONFIG" --device "$DEVICE" \
    --workers 0 "$WORKERS" --batch-size 32 --warmup 1 --batches 5 --best-to "$BEST_WORKERS"
for preset in $LATENCY_PRESETS; do
    stage "latency-$preset" timeout 100 python3 benchmarks/latency.py --preset "$preset" --people 5 --device "$DEVICE"
done
left_s() { echo $((SESSION_S - SECONDS - TRAIN_RESERVE_S)); }  # seconds the training may still plan for
train_with() {  # train_with WORKERS: one training run (appends to train.log); its exit status
    local minutes=$MINUTES limit_s
    [ "$minutes" = auto ] && minutes=$(python3 -c "print(round(max(1.0, $(left_s) / 60), 2))")
    echo "data workers: $1; training minutes: $minutes (started at $SECONDS s of the run)"
    limit_s=$(python3 -c "print(int(float('$minutes') * 60 + 60))")  # the setup and the final save
    TQDM_MININTERVAL=15 timeout "$limit_s" python3 -m mhr2_ros.cli.train --config "$CONFIG" \
        --time-limit "$minutes" --output "$RUN" --device "$DEVICE" --data-workers "$1" >>"$OUT/train.log" 2>&1
}
train() {  # its own log (train.log); the report gets the last lines
    local workers=$WORKERS status
    [ -s "$BEST_WORKERS" ] && workers=$(cat "$BEST_WORKERS")  # else the loading stage failed: WORKERS
    train_with "$workers"
    status=$?
    if [ ! -f "$RUN/model.safetensors" ] && [ ! -f "$RUN/last.json" ] && [ "$workers" != 0 ] &&
        [ "$MINUTES" = auto ] && [ "$(left_s)" -ge 60 ]; then
        # Failed before any saved state (workers that could not start or died): the time left
        # goes to a run that renders in the training process.
        echo "training with $workers data workers failed (exit $status): again with none"
        rm -rf "$RUN"
        train_with 0
        status=$?
    fi
    if [ ! -f "$RUN/model.safetensors" ] && [ -f "$RUN/last.json" ]; then
        # Overran its limit: timeout's SIGTERM saved the state at the step it stopped; a resume
        # to that same step trains nothing and writes the model, so the session still returns one.
        local step
        step=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "$RUN/last.json")
        echo "training stopped at step $step without a model: writing that step's weights" >>"$OUT/train.log"
        timeout 90 python3 -m mhr2_ros.cli.train --config "$CONFIG" --resume "$RUN" \
            --steps "$step" --device "$DEVICE" --data-workers 0 >>"$OUT/train.log" 2>&1
    fi
    tail -c 1500 "$OUT/train.log"
    return $status
}
[ "$TRAIN" = 0 ] || stage train train
# Without a training stage its time goes to a profile of one training step (the phases' host and GPU ms)
[ "$TRAIN" != 0 ] || stage train-step timeout 90 python3 benchmarks/train_step.py --config "$CONFIG" --device "$DEVICE" \
    --batch-size 32 --steps 5 --warmup 3
if [ -f "$RUN/model.safetensors" ]; then
    split -b 15M "$RUN/model.safetensors" "$OUT/model.safetensors.part-"
    cp "$RUN/model.json" "$OUT/model.json"
fi
tail -c 4000 "$REPORT"
