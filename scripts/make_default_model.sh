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
# Reference-side script: it runs fairseq itself (the shared steps are in
# scripts/_train_fixture.sh).
set -euo pipefail

OUT="assets/default-model"
WORK_NAME="default-model"
N_CODES="${N_CODES:-2000}"
MAX_EPOCH="${MAX_EPOCH:-9}"
source "$(dirname "${BASH_SOURCE[0]}")/_train_fixture.sh"

learn_bpe

preprocess "fairseq-preprocess (separate source / target dictionaries)"
wc -l "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.de.txt"

train --encoder-layers 3 --decoder-layers 3 \
  --encoder-embed-dim 128 --decoder-embed-dim 128 \
  --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 \
  --encoder-attention-heads 4 --decoder-attention-heads 4 \
  --share-decoder-input-output-embed \
  --dropout 0.1 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --optimizer adam --adam-betas "(0.9, 0.98)" \
  --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 200 --warmup-init-lr 1e-07

assemble_and_evaluate

cat > "$STAGE/README.md" <<EOF
# default-model: tiny trained fairseq transformer, English -> German

Post-norm fairseq \`transformer\` (3+3 layers, d=128, 4 heads, ffn 512, sinusoidal positions, separate en/de dictionaries, \`--share-decoder-input-output-embed\`), ${PARAMS} parameters, ${MB} MB; optimizer state stripped.
Trained on CPU, seed ${SEED}, ${MAX_EPOCH} epochs (best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the 2-core build machine) on the synthetic corpus in \`assets/corpus/\` (made by \`scripts/make_corpus.py\`),
Moses-tokenized (sacremoses, fairseq's \`tokenizer='moses'\` defaults) + ${N_CODES} joint fastBPE merges (\`bpecodes\`).
Rebuild: \`bash scripts/make_default_model.sh\` (training command, run in the work dir: \`$(shquote "${TRAIN[@]}")\`).
Test set (200 sentences, hub interface, beam 5): BLEU ${BLEU} (${DETAIL}; sacreBLEU ${SIG}), exact match ${EXACT}.
Load: \`TransformerModel.from_pretrained('assets/default-model', checkpoint_file='model.pt', bpe='fastbpe', bpe_codes='assets/default-model/bpecodes', tokenizer='moses', source_lang='en', target_lang='de')\`.
EOF

install_fixture "dicts     : en $(wc -l < "$OUT/dict.en.txt") / de $(wc -l < "$OUT/dict.de.txt") entries"
