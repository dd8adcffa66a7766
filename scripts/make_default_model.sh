#!/usr/bin/env bash
# Regenerate assets/default-model/: a small *trained* fairseq transformer
# (en->de, post-norm, sinusoidal positions, 3+3 layers, d=128, separate
# dictionaries, tied decoder input/output embeddings) from the synthetic
# corpus in assets/corpus/ (made by scripts/make_corpus.py).
#
#   bash scripts/make_default_model.sh
#
# Env knobs: N_CODES (BPE merges, default 2000), MAX_EPOCH (default 9, about
# 7 minutes of training on 2 otherwise idle CPU cores; a fixed epoch count
# rather than a wall-clock cap keeps the result independent of machine load),
# KEEP_WORK=1 keeps the temp working directory.
#
# Reference-side script: it runs fairseq itself. fairseq 0.12 loads its own
# checkpoints with a plain torch.load(), which torch>=2.6 turns into
# weights_only=True and refuses; TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is set for
# fairseq's commands here (and only here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
BIN="$ROOT/.venv/bin"
UTILS="$ROOT/scripts/_fixture_utils.py"
CORPUS="assets/corpus"
OUT="assets/default-model"
N_CODES="${N_CODES:-2000}"
MAX_EPOCH="${MAX_EPOCH:-9}"
SEED=1

for f in train valid test; do
  for l in en de; do
    [[ -s "$CORPUS/$f.$l" ]] || { echo "missing $CORPUS/$f.$l (run scripts/make_corpus.py)" >&2; exit 1; }
  done
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelport-default-model.XXXXXX")"
cleanup() { if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi; }
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
fairseq() { TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$@"; }
# print a command so it can be pasted back into a shell
shquote() { local a out=(); for a in "$@"; do if [[ "$a" =~ [^A-Za-z0-9_./=:,-] ]]; then out+=("'$a'"); else out+=("$a"); fi; done; echo "${out[*]}"; }

step "1-2/6 Moses tokenization (fairseq hub settings) + joint fastBPE ($N_CODES merges) in $WORK"
FAST="$("$PY" "$UTILS" build-fastbpe "$WORK/fastbpe" | tail -n 1)"
"$PY" "$UTILS" prepare-data "$CORPUS" "$WORK/data" --fast "$FAST" --n-codes "$N_CODES"

step "3/6 fairseq-preprocess (separate source / target dictionaries)"
PREPROCESS=(fairseq-preprocess --source-lang en --target-lang de
  --trainpref "$WORK/data/train.bpe" --validpref "$WORK/data/valid.bpe"
  --testpref "$WORK/data/test.bpe" --destdir "$WORK/data-bin" --workers 2)
shquote "${PREPROCESS[@]}"
fairseq "$BIN/${PREPROCESS[0]}" "${PREPROCESS[@]:1}" > "$WORK/preprocess.log" 2>&1 || { tail -n 40 "$WORK/preprocess.log"; exit 1; }
grep -E "Dictionary|sents" "$WORK/preprocess.log" | sed 's/^.*preprocess:/  /' || true
wc -l "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt"

step "4/6 fairseq-train on CPU (max $MAX_EPOCH epochs)"
TRAIN=(fairseq-train data-bin
  --arch transformer
  --encoder-layers 3 --decoder-layers 3
  --encoder-embed-dim 128 --decoder-embed-dim 128
  --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512
  --encoder-attention-heads 4 --decoder-attention-heads 4
  --share-decoder-input-output-embed
  --dropout 0.1
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1
  --optimizer adam --adam-betas "(0.9, 0.98)"
  --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 200 --warmup-init-lr 1e-07
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
STAGE="$WORK/default-model"
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
# default-model: tiny trained fairseq transformer, English -> German

Post-norm fairseq \`transformer\` (3+3 layers, d=128, 4 heads, ffn 512, sinusoidal positions, separate en/de dictionaries, \`--share-decoder-input-output-embed\`), ${PARAMS} parameters, ${MB} MB; optimizer state stripped.
Trained on CPU, seed ${SEED}, ${MAX_EPOCH} epochs (best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the 2-core build machine) on the synthetic corpus in \`assets/corpus/\` (made by \`scripts/make_corpus.py\`),
Moses-tokenized (sacremoses, fairseq's \`tokenizer='moses'\` defaults) + ${N_CODES} joint fastBPE merges (\`bpecodes\`).
Rebuild: \`bash scripts/make_default_model.sh\` (training command, run in the work dir: \`$(shquote "${TRAIN[@]}")\`).
Test set (200 sentences, hub interface, beam 5): BLEU ${BLEU} (${DETAIL}; sacreBLEU ${SIG}), exact match ${EXACT}.
Load: \`TransformerModel.from_pretrained('assets/default-model', checkpoint_file='model.pt', bpe='fastbpe', bpe_codes='assets/default-model/bpecodes', tokenizer='moses', source_lang='en', target_lang='de')\`.
EOF

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$STAGE" "$OUT"

step "summary"
echo "  artefacts : $OUT/{model.pt,dict.en.txt,dict.de.txt,bpecodes,README.md}"
echo "  params    : $PARAMS"
echo "  model.pt  : $MB MB ($(du -b "$OUT/model.pt" | cut -f1) bytes)"
echo "  dicts     : en $(wc -l < "$OUT/dict.en.txt") / de $(wc -l < "$OUT/dict.de.txt") entries"
echo "  training  : ${TRAIN_SECS}s, $EPOCHS"
echo "  BLEU      : $BLEU (test, beam 5, hub interface)"
