#!/usr/bin/env bash
# The main job on the embedded default model (a trained fairseq en->de
# transformer in assets/default-model): convert it, translate a few test
# sentences with fairseq's beam-search semantics, and prove parity against
# fairseq itself (tokenizer ids, logits, beam outputs, BLEU of both systems).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-ported/default-en-de}
N=${N:-50}
DATA=$(mktemp) REFS=$(mktemp)
trap 'rm -f "$DATA" "$REFS"' EXIT
head -n "$N" assets/corpus/test.en > "$DATA"
head -n "$N" assets/corpus/test.de > "$REFS"

echo "== convert"
.venv/bin/modelport convert assets/default-model "$OUT" --force
echo "== translate (first 5 test sentences, beam 5)"
head -n 5 "$DATA" | .venv/bin/modelport translate "$OUT" --beam 5
echo "== validate against fairseq ($N sentences)"
.venv/bin/modelport validate "$OUT" --reference assets/default-model --data "$DATA" --references "$REFS"
