#!/usr/bin/env bash
# Regenerate assets/fixture-prenorm/: a second, differently shaped *trained*
# fairseq transformer (en->de) from the same corpus and the same BPE codes as
# assets/default-model/: pre-norm, joined dictionary with
# --share-all-embeddings, learned positions, --layernorm-embedding, gelu,
# 2+2 layers, d=128, 8 heads, ffn 256.
#
#   bash scripts/make_prenorm_model.sh
#
# Reuses assets/default-model/bpecodes when present (so both fixtures share
# one BPE model); otherwise learns the same codes with the same procedure.
# Env knobs: N_CODES (default 2000), MAX_EPOCH (default 8, about 4 minutes on 2
# idle CPU cores), KEEP_WORK=1 keeps the temp working directory.
#
# Reference-side script: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is set for
# fairseq's commands (fairseq 0.12's torch.load of its own checkpoints fails
# under torch's weights_only=True default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
BIN="$ROOT/.venv/bin"
UTILS="$ROOT/scripts/_fixture_utils.py"
CORPUS="assets/corpus"
OUT="assets/fixture-prenorm"
SHARED_CODES="assets/default-model/bpecodes"
N_CODES="${N_CODES:-2000}"
MAX_EPOCH="${MAX_EPOCH:-8}"
SEED=1

for f in train valid test; do
  for l in en de; do
    [[ -s "$CORPUS/$f.$l" ]] || { echo "missing $CORPUS/$f.$l (run scripts/make_corpus.py)" >&2; exit 1; }
  done
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelport-prenorm.XXXXXX")"
cleanup() { if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi; }
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
fairseq() { TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$@"; }
# print a command so it can be pasted back into a shell
shquote() { local a out=(); for a in "$@"; do if [[ "$a" =~ [^A-Za-z0-9_./=:,-] ]]; then out+=("'$a'"); else out+=("$a"); fi; done; echo "${out[*]}"; }

if [[ -s "$SHARED_CODES" ]]; then
  step "1-2/6 Moses tokenization (fairseq hub settings) + BPE with the shared codes $SHARED_CODES"
  "$PY" "$UTILS" prepare-data "$CORPUS" "$WORK/data" --codes "$SHARED_CODES"
else
  step "1-2/6 Moses tokenization (fairseq hub settings) + joint fastBPE ($N_CODES merges)"
  FAST="$("$PY" "$UTILS" build-fastbpe "$WORK/fastbpe" | tail -n 1)"
  "$PY" "$UTILS" prepare-data "$CORPUS" "$WORK/data" --fast "$FAST" --n-codes "$N_CODES"
fi

step "3/6 fairseq-preprocess --joined-dictionary"
PREPROCESS=(fairseq-preprocess --source-lang en --target-lang de --joined-dictionary
  --trainpref "$WORK/data/train.bpe" --validpref "$WORK/data/valid.bpe"
  --testpref "$WORK/data/test.bpe" --destdir "$WORK/data-bin" --workers 2)
shquote "${PREPROCESS[@]}"
fairseq "$BIN/${PREPROCESS[0]}" "${PREPROCESS[@]:1}" > "$WORK/preprocess.log" 2>&1 || { tail -n 40 "$WORK/preprocess.log"; exit 1; }
grep -E "Dictionary|sents" "$WORK/preprocess.log" | sed 's/^.*preprocess:/  /' || true
cmp "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt"
wc -l "$WORK/data-bin/dict.en.txt"

step "4/6 fairseq-train on CPU (max $MAX_EPOCH epochs)"
TRAIN=(fairseq-train data-bin
  --arch transformer
  --encoder-layers 2 --decoder-layers 2
  --encoder-embed-dim 128 --decoder-embed-dim 128
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256
  --encoder-attention-heads 8 --decoder-attention-heads 8
  --encoder-normalize-before --decoder-normalize-before
  --encoder-learned-pos --decoder-learned-pos
  --layernorm-embedding
  --activation-fn gelu
  --share-all-embeddings
  --dropout 0.1
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1
  --optimizer adam --adam-betas "(0.9, 0.98)"
  --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 150 --warmup-init-lr 1e-07
  --max-tokens 4096 --max-epoch "$MAX_EPOCH"
  --seed "$SEED" --cpu --num-workers 0
  --no-epoch-checkpoints --save-dir checkpoints
  --log-format simple --log-interval 50)
echo "(cd \$WORK && $(shquote "${TRAIN[@]}"))"
T0=$(date +%s)
(cd "$WORK" && fairseq "$BIN/${TRAIN[0]}" "${TRAIN[@]:1}" > train.log 2>&1) || { tail -n 40 "$WORK/train.log"; exit 1; }
T1=$(date +%s)
TRAIN_SECS=$((T1 - T0))
grep -E "\| valid \|" "$WORK/train.log" | sed 's/^.*| valid |/  valid |/' || true
echo "training took ${TRAIN_SECS}s"

step "5/6 strip optimizer state, assemble artefacts"
STAGE="$WORK/fixture-prenorm"
mkdir -p "$STAGE"
"$PY" "$UTILS" strip "$WORK/checkpoints/checkpoint_best.pt" "$STAGE/model.pt"
cp "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt" "$STAGE/"
cp "$WORK/data/bpecodes" "$STAGE/bpecodes"
"$PY" "$UTILS" describe "$STAGE/model.pt" | tee "$WORK/describe.txt"

step "6/6 evaluate through the fairseq hub interface (beam 5) on $CORPUS/test.en"
fairseq "$PY" "$UTILS" evaluate "$STAGE" "$CORPUS" --beam 5 --out "$WORK/test.hyp" 2>&1 \
  | grep -v -E "^(INFO|WARNING|  warnings.warn|  super\(\)|  state = torch.load)|UserWarning" | tee "$WORK/eval.txt"
BLEU="$(sed -n 's/^BLEU = \([0-9.]*\).*/\1/p' "$WORK/eval.txt")"
SIG="$(sed -n 's/^signature: //p' "$WORK/eval.txt")"
DETAIL="$(sed -n 's/^detail: BLEU = [0-9.]* //p' "$WORK/eval.txt")"
EXACT="$(sed -n 's/^exact matches: //p' "$WORK/eval.txt")"
PARAMS="$(sed -n 's/.*parameters: \([0-9,]*\).*/\1/p' "$WORK/describe.txt")"
MB="$(sed -n 's/.*size: \([0-9.]*\) MB.*/\1/p' "$WORK/describe.txt")"
EPOCHS="$(grep -oE "epoch [0-9]+ @ [0-9]+ updates" "$WORK/train.log" | tail -n 1)"

cat > "$STAGE/README.md" <<EOF
# fixture-prenorm: second tiny trained fairseq transformer, English -> German

Pre-norm fairseq \`transformer\` (2+2 layers, d=128, 8 heads, ffn 256, gelu, learned positions, \`--layernorm-embedding\`, joined dictionary with \`--share-all-embeddings\`; dict.en.txt == dict.de.txt), ${PARAMS} parameters, ${MB} MB; optimizer state stripped.
Trained on CPU, seed ${SEED}, ${MAX_EPOCH} epochs (best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the 2-core build machine) on \`assets/corpus/\` with the same Moses tokenization and fastBPE codes as \`assets/default-model/\`.
Rebuild: \`bash scripts/make_prenorm_model.sh\` (training command, run in the work dir: \`$(shquote "${TRAIN[@]}")\`).
Test set (200 sentences, hub interface, beam 5): BLEU ${BLEU} (${DETAIL}; sacreBLEU ${SIG}), exact match ${EXACT}.
Load: \`TransformerModel.from_pretrained('assets/fixture-prenorm', checkpoint_file='model.pt', bpe='fastbpe', bpe_codes='assets/fixture-prenorm/bpecodes', tokenizer='moses', source_lang='en', target_lang='de')\`.
EOF

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$STAGE" "$OUT"

step "summary"
echo "  artefacts : $OUT/{model.pt,dict.en.txt,dict.de.txt,bpecodes,README.md}"
echo "  params    : $PARAMS"
echo "  model.pt  : $MB MB ($(du -b "$OUT/model.pt" | cut -f1) bytes)"
echo "  dict      : $(wc -l < "$OUT/dict.en.txt") entries (joined)"
echo "  training  : ${TRAIN_SECS}s, $EPOCHS"
echo "  BLEU      : $BLEU (test, beam 5, hub interface)"
