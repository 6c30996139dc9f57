#!/usr/bin/env bash
# Evaluate the shipped default models on photos nobody trains or tunes on.
#
# Usage: scripts/eval_independent.sh OUT_DIR [MODEL BASELINE]
#
# scikit-image ships a few sample photos that this project keeps for independent evaluation
# only (never for training, tuning or picking a checkpoint). This script installs
# scikit-image into a temporary folder (pip, outside the project's environment), copies five
# natural photos (astronaut, chelsea, coffee, motorcycle_left, rocket) and writes two tables
# to OUT_DIR: `cmdsr eval` at the paper-test setting and over the --grid, both on central
# 256x256 crops, as in resources/models/cmdsr_x4.md. Run it from the repository root with the
# project's environment active.
set -euo pipefail

die() {
    printf 'eval_independent: error: %s\n' "$*" >&2
    exit 1
}

[[ $# -ge 1 ]] || die "usage: ${0##*/} OUT_DIR [MODEL BASELINE]"
out=$1
model=${2:-resources/models/cmdsr_x4.pt}
baseline=${3:-resources/models/basenet_x4.pt}
[[ -f $model ]] || die "$model: no such model file"
[[ -f $baseline ]] || die "$baseline: no such model file"
[[ ! -e $out ]] || die "$out: already exists (choose a new folder)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m pip install --quiet --no-deps --target "$tmp/site" scikit-image \
    || die "could not install scikit-image with pip"
data="$tmp/site/skimage/data"
mkdir -p "$tmp/photos"
for name in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg; do
    [[ -f $data/$name ]] || die "scikit-image has no $name"
    cp "$data/$name" "$tmp/photos/"
done

mkdir -p "$out"
python -m engine eval --hr "$tmp/photos" --model "$model" --baseline "$baseline" \
    --preset paper-test --crop 256 --out "$out/paper_test"
python -m engine eval --hr "$tmp/photos" --model "$model" --baseline "$baseline" \
    --grid --crop 256 --out "$out/grid"
printf 'eval_independent: tables in %s/paper_test and %s/grid\n' "$out" "$out"
