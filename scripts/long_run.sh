#!/usr/bin/env bash
# The project's long CPU training run: CMDSR and its same-budget baseline trained side by side
# (python -m engine.training.pair, the `users` recipe at CPU batch size), continued in the
# background through every working session and carried between sessions in the repository.
#
#   scripts/long_run.sh start [SECONDS]   resume the run in $RUNS/long if it is there, else start it
#                                         from the committed state in resources/models/long_run/;
#                                         niced, in the background (scripts/long_run_curve.py: a
#                                         point of the learning curve every 20 minutes in
#                                         $RUNS/long/curve.jsonl), log in $RUNS/long.log
#                                         (default budget 9000 s: a session's worth)
#   scripts/long_run.sh stop              SIGTERM: the run checkpoints and exports, then exits
#   scripts/long_run.sh save              copy its newest fp32 models and its training log into
#                                         resources/models/long_run/ (commit them before a
#                                         session ends)
#
# Promote a result only through scripts/promote_model.py (never the newest by default).
# Environment: CORPUS (default /work/data/corpus, from scripts/make_photo_corpus.sh),
# RUNS (default /work/runs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="${CORPUS:-/work/data/corpus}"
runs="${RUNS:-/work/runs}"
run="$runs/long"
state="$root/resources/models/long_run"
py="$root/.venv/bin/python"

start() {
    local budget="${1:-9000}"
    mkdir -p "$runs"
    local from=()
    if [ -f "$run/cmdsr/latest.pt" ] && [ -f "$run/baseline/latest.pt" ]; then
        from=()  # long_run_curve.py resumes the run in $run
    elif [ -f "$state/cmdsr_x4_fp32.pt" ]; then
        rm -rf "$run"
        from=(--init-cmdsr "$state/cmdsr_x4_fp32.pt" --init-baseline "$state/basenet_x4_fp32.pt")
    else
        echo "long_run: no run in $run and no committed state in $state" >&2
        exit 2
    fi
    [ -d "$corpus/train" ] || "$root/scripts/make_photo_corpus.sh" "$corpus"
    # the recipe is long_run_curve.py's RECIPE (the ConditionNet held, 4 tasks x 8 patches, a
    # warm-up for the fresh optimiser, lr 3e-5, the moving average of the weights as the result)
    # on the users mix the held condition reads (on phones, whose camera noise it misreads, the
    # first stretch lost 1.3 dB: docs/training.md); a point of the curve every 20 minutes
    cd "$root"
    nohup nice -n 5 "$py" scripts/long_run_curve.py --data "$corpus/train" --out "$run" \
        --val "$corpus/val" --val "$corpus/val_textured" "${from[@]}" \
        --stretch 1200 --total "$budget" >>"$runs/long.log" 2>&1 &
    echo "long_run: started (pid $!), log $runs/long.log, curve $run/curve.jsonl"
}

stop() {
    pkill -TERM -f "long_run_curve.py --data $corpus/train --out $run" || true
}

save() {
    mkdir -p "$state"
    "$py" - "$run" "$state" <<'EOF'
import shutil, sys
from pathlib import Path
from engine.checkpoint import load_model, read_checkpoint, save_model
run, state = Path(sys.argv[1]), Path(sys.argv[2])
for name, stem in (("cmdsr", "cmdsr_x4"), ("baseline", "basenet_x4")):
    export, latest = run / f"{stem}_fp32.pt", run / name / "latest.pt"
    candidates = [p for p in (export, latest) if p.exists()]
    if not candidates:
        sys.exit(f"long_run: {run} holds no {name} model")
    newest = max(candidates, key=lambda p: read_checkpoint(p)[2].get("step", 0))
    step = int(read_checkpoint(newest)[2].get("step", 0))
    save_model(load_model(newest), state / f"{stem}_fp32.pt", step=step,
               extra={"long_run": {"from": newest.name, "step": step}})
    shutil.copyfile(run / name / "metrics.jsonl", state / f"{name}_metrics.jsonl")
if (run / "curve.jsonl").exists():
    shutil.copyfile(run / "curve.jsonl", state / "curve.jsonl")
    print(f"long_run: {name} at step {step} -> {state / (stem + '_fp32.pt')}")
EOF
}

case "${1:-}" in
    start) start "${2:-9000}" ;;
    stop) stop ;;
    save) save ;;
    *) echo "usage: $0 start [SECONDS] | stop | save" >&2; exit 2 ;;
esac
