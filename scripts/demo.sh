#!/usr/bin/env bash
# The main job on the embedded default model: convert the trained fairseq
# en->de model shipped in assets/default-model and print what was ported.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-ported/default-en-de}
.venv/bin/modelport convert assets/default-model "$OUT" --force
.venv/bin/modelport inspect "$OUT"
