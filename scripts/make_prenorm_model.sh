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
# Reference-side script: it runs fairseq itself (the shared steps are in
# scripts/_train_fixture.sh).
set -euo pipefail

OUT="assets/fixture-prenorm"
WORK_NAME="prenorm"
SHARED_CODES="assets/default-model/bpecodes"
N_CODES="${N_CODES:-2000}"
MAX_EPOCH="${MAX_EPOCH:-8}"
source "$(dirname "${BASH_SOURCE[0]}")/_train_fixture.sh"

if [[ -s "$SHARED_CODES" ]]; then
  step "1-2/6 Moses tokenization (fairseq hub settings) + BPE with the shared codes $SHARED_CODES"
  "$PY" "$UTILS" prepare-data "$CORPUS" "$WORK/data" --codes "$SHARED_CODES"
else
  learn_bpe
fi

preprocess "fairseq-preprocess --joined-dictionary" --joined-dictionary
cmp "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt"
wc -l "$WORK/data-bin/dict.en.txt"

train --encoder-layers 2 --decoder-layers 2 \
  --encoder-embed-dim 128 --decoder-embed-dim 128 \
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 \
  --encoder-attention-heads 8 --decoder-attention-heads 8 \
  --encoder-normalize-before --decoder-normalize-before \
  --encoder-learned-pos --decoder-learned-pos \
  --layernorm-embedding \
  --activation-fn gelu \
  --share-all-embeddings \
  --dropout 0.1 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --optimizer adam --adam-betas "(0.9, 0.98)" \
  --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 150 --warmup-init-lr 1e-07

assemble_and_evaluate

cat > "$STAGE/README.md" <<EOF
# fixture-prenorm: second tiny trained fairseq transformer, English -> German

Pre-norm fairseq \`transformer\` (2+2 layers, d=128, 8 heads, ffn 256, gelu, learned positions, \`--layernorm-embedding\`, joined dictionary with \`--share-all-embeddings\`; dict.en.txt == dict.de.txt), ${PARAMS} parameters, ${MB} MB; optimizer state stripped.
Trained on CPU, seed ${SEED}, ${MAX_EPOCH} epochs (best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the 2-core build machine) on \`assets/corpus/\` with the same Moses tokenization and fastBPE codes as \`assets/default-model/\`.
Rebuild: \`bash scripts/make_prenorm_model.sh\` (training command, run in the work dir: \`$(shquote "${TRAIN[@]}")\`).
Test set (200 sentences, hub interface, beam 5): BLEU ${BLEU} (${DETAIL}; sacreBLEU ${SIG}), exact match ${EXACT}.
Load: \`TransformerModel.from_pretrained('assets/fixture-prenorm', checkpoint_file='model.pt', bpe='fastbpe', bpe_codes='assets/fixture-prenorm/bpecodes', tokenizer='moses', source_lang='en', target_lang='de')\`.
EOF

install_fixture "dict      : $(wc -l < "$OUT/dict.en.txt") entries (joined)"
