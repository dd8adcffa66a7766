#!/usr/bin/env bash
# Regenerate assets/fixture-bart/: a tiny *trained* fairseq BART (`bart_base`
# structure: post-norm, learned positions, layernorm_embedding, GELU, shared
# embeddings, no embedding scale; 2+2 layers, d=64, ffn 256) fine-tuned for
# translation en->de on assets/corpus/*.{en,de}, with a GPT-2 byte-level BPE
# learned from the corpus by scripts/make_gpt2_bpe.py. The data is what
# BARTHubInterface feeds the model: source `<s> ids </s>`, target `<s> ids </s>`
# (so the hub's forced first `<s>` is what training saw).
#
# bart_base's BERT-style init (std 0.02) trained from scratch at this width stays
# degenerate, so training is two runs: (1) a `transformer` with BART's structure,
# (2) continued as `--arch bart_base` (sizes overridden) with --restore-file, so the
# checkpoint is one BARTModel.from_pretrained loads. The test set shipped beside it
# is the first N_TEST lines of assets/corpus/test.{en,de}.
#
#   nice -n 10 env OMP_NUM_THREADS=1 bash scripts/make_bart_trained_fixture.sh
#
# About 5 minutes (231s + 64s of training) on the 2-core build machine. Env knobs: UPDATES1 (default 700), UPDATES2
# (default 200), MERGES (default 600), N_TEST (default 60), KEEP_WORK=1 keeps the work directory.
# Reference-side script: it runs fairseq itself (shared steps: scripts/_train_fixture.sh).
set -euo pipefail

OUT="assets/fixture-bart"
WORK_NAME="bart"
MAX_EPOCH="${MAX_EPOCH:-100}"
UPDATES1="${UPDATES1:-700}"
UPDATES2="${UPDATES2:-200}"
MERGES="${MERGES:-600}"
N_TEST="${N_TEST:-60}"
source "$(dirname "${BASH_SOURCE[0]}")/_train_fixture.sh"

step "1-2/6 GPT-2 byte BPE ($MERGES merges, scripts/make_gpt2_bpe.py); every split encoded by fairseq's encoder"
"$PY" scripts/make_gpt2_bpe.py "$WORK" --merges "$MERGES"
fairseq "$PY" "$UTILS" gpt2-data "$CORPUS" "$WORK/data" --bpe-dir "$WORK"

preprocess "fairseq-preprocess (BART's dict.txt on both sides)" --srcdict "$WORK/dict.txt" --tgtdict "$WORK/dict.txt"

SIZES=(--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 64 --decoder-embed-dim 64
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4 --decoder-attention-heads 4
  --max-source-positions 256 --max-target-positions 256)
# the languages recorded in cfg.task (from_pretrained cannot infer them from a folder without data)
COMMON=(--source-lang en --target-lang de --bpe gpt2 --gpt2-encoder-json encoder.json --gpt2-vocab-bpe vocab.bpe
  --dropout 0.1
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --optimizer adam --adam-betas "(0.9, 0.98)"
  --lr-scheduler inverse_sqrt --warmup-init-lr 1e-07)

# (1) a transformer with BART's structure (fairseq's transformer init)
train "${SIZES[@]}" "${COMMON[@]}" --encoder-learned-pos --decoder-learned-pos --layernorm-embedding \
  --share-all-embeddings --no-scale-embedding --activation-fn gelu \
  --lr 3e-3 --warmup-updates 200 --max-update "$UPDATES1"
TRAIN1=("${TRAIN[@]}")
SECS1=$TRAIN_SECS
mv "$WORK/train.log" "$WORK/train1.log"

# (2) continued as bart_base (its own defaults give the same structure)
TRAIN_ARCH=bart_base train "${SIZES[@]}" "${COMMON[@]}" --restore-file checkpoints/checkpoint_last.pt \
  --reset-optimizer --reset-lr-scheduler --reset-meters --reset-dataloader \
  --lr 1e-3 --warmup-updates 50 --max-update "$UPDATES2"
TRAIN2=("${TRAIN[@]}")
SECS2=$TRAIN_SECS

step "5/6 strip optimizer state, assemble artefacts"
STAGE="$WORK/$(basename "$OUT")"
mkdir -p "$STAGE"
"$PY" "$UTILS" strip "$WORK/checkpoints/checkpoint_best.pt" "$STAGE/model.pt"
cp "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt" "$WORK/encoder.json" "$WORK/vocab.bpe" "$STAGE/"
head -n "$N_TEST" "$CORPUS/test.en" > "$STAGE/test.en"
head -n "$N_TEST" "$CORPUS/test.de" > "$STAGE/test.de"
"$PY" "$UTILS" describe "$STAGE/model.pt" | tee "$WORK/describe.txt"
PARAMS="$(sed -n 's/.*parameters: \([0-9,]*\).*/\1/p' "$WORK/describe.txt")"
MB="$(sed -n 's/.*size: \([0-9.]*\) MB.*/\1/p' "$WORK/describe.txt")"

step "6/6 evaluate through BARTModel.from_pretrained (beam 5) on the shipped test set"
fairseq "$PY" "$UTILS" evaluate-bart "$STAGE" "$STAGE" --beam 5 2>&1 \
  | grep -v -E "^(INFO|WARNING|  warnings.warn|  super\(\)|  state = torch.load)|UserWarning" | tee "$WORK/eval.txt"
EVAL="$(grep -E '^en-de beam' "$WORK/eval.txt")"

cat > "$STAGE/README.md" <<EOT
# fixture-bart: tiny trained fairseq BART, fine-tuned for translation en->de

fairseq \`bart_base\` (task \`translation\`, as bart-large-cnn) shrunk to 2+2 layers, d=64, 4 heads, ffn 256,
256 learned positions (post-norm, \`layernorm_embedding\`, GELU, shared embeddings, no embedding scale),
${PARAMS} parameters, ${MB} MB; optimizer state stripped. Tokenizer: GPT-2 byte-level BPE (\`encoder.json\`,
\`vocab.bpe\`, ${MERGES} merges) and BART's \`dict.txt\` (as \`dict.en.txt\` = \`dict.de.txt\`), made from the
corpus by \`scripts/make_gpt2_bpe.py\`. Data as BARTHubInterface feeds it: source \`<s> ids </s>\`, target
\`<s> ids </s>\` (the hub forces \`<s>\` first).
Trained on CPU, seed ${SEED}, on \`assets/corpus/*.{en,de}\` in two runs (bart_base's BERT-style init stays
degenerate at this width): (1) a \`transformer\` with BART's structure, ${UPDATES1} updates, ${SECS1}s;
(2) continued as \`bart_base\` with \`--restore-file\`, ${UPDATES2} updates, ${SECS2}s (wall clock on the
2-core build machine). Rebuild: \`nice -n 10 env OMP_NUM_THREADS=1 bash scripts/make_bart_trained_fixture.sh\`;
the training commands, run in the work directory:

    $(shquote "${TRAIN1[@]}")
    $(shquote "${TRAIN2[@]}")

Test set: \`test.en\`/\`test.de\` (the first ${N_TEST} lines of \`assets/corpus/test.*\`), hub interface, beam 5:
${EVAL}

Load: \`BARTModel.from_pretrained('assets/fixture-bart', checkpoint_file='model.pt')\` run from inside the
folder (the checkpoint records \`encoder.json\` / \`vocab.bpe\` relative to where it was trained).
EOT

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$STAGE" "$OUT"
step "summary"
echo "  artefacts : $OUT/{model.pt,dict.en.txt,dict.de.txt,encoder.json,vocab.bpe,test.en,test.de,README.md}"
echo "  params    : $PARAMS, model.pt $MB MB"
echo "  training  : ${SECS1}s + ${SECS2}s"
