#!/usr/bin/env bash
# Regenerate assets/fixture-piglatin/: a small *trained* fairseq transformer
# (en->pg, post-norm, sinusoidal positions, 3+3 layers, d=128, ffn 256,
# separate dictionaries, tied decoder input/output embeddings) translating
# English into Pig Latin, language code `pg`, which Moses/sacremoses does not
# know. The Pig Latin side is made from assets/corpus/*.en by a fixed rule
# (scripts/_fixture_utils.py piglatin: let's -> etlay's, apostrophes and
# double quotes kept); every 10th line is joined with the next two (long
# sentences). Both sides are Moses-tokenized with the English rules (fairseq's
# MosesTokenizerConfig default, and the closest Moses has to Pig Latin).
#
# The checkpoint is the modern `cfg` layout fairseq-train 0.12 writes and
# records no tokenizer, so fairseq's hub interface picks the Moses languages
# itself (the case issue #18 is about). test.en / test.pg ship beside it.
#
#   bash scripts/make_piglatin_model.sh
#
# Env knobs: N_CODES (default 2000), MAX_EPOCH (default 5; about 5 minutes on
# 2 idle CPU cores, 21 on the loaded build machine), KEEP_WORK=1 keeps the temp working directory.
#
# Reference-side script: it runs fairseq itself (the shared steps are in
# scripts/_train_fixture.sh).
set -euo pipefail

OUT="assets/fixture-piglatin"
WORK_NAME="piglatin"
N_CODES="${N_CODES:-2000}"
MAX_EPOCH="${MAX_EPOCH:-5}"
SRC=en TGT=pg TGT_MOSES=en HUB_LANGS=0 CORPUS_IN_WORK=1
source "$(dirname "${BASH_SOURCE[0]}")/_train_fixture.sh"

step "0/6 Pig Latin corpus from assets/corpus/*.en"
"$PY" "$UTILS" piglatin assets/corpus "$CORPUS" --long-every 10
check_corpus

learn_bpe

preprocess "fairseq-preprocess (separate source / target dictionaries)"
wc -l "$WORK/data-bin/dict.en.txt" "$WORK/data-bin/dict.pg.txt"

# --source-lang/--target-lang recorded in cfg.task: from_pretrained needs no languages
train --source-lang en --target-lang pg --encoder-layers 3 --decoder-layers 3 \
  --encoder-embed-dim 128 --decoder-embed-dim 128 \
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 \
  --encoder-attention-heads 4 --decoder-attention-heads 4 \
  --share-decoder-input-output-embed \
  --dropout 0.1 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --optimizer adam --adam-betas "(0.9, 0.98)" \
  --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 150 --warmup-init-lr 1e-07

assemble_and_evaluate
cp "$CORPUS/test.en" "$CORPUS/test.pg" "$STAGE/"

cat > "$STAGE/README.md" <<EOT
# fixture-piglatin: tiny trained fairseq transformer, English -> Pig Latin (\`pg\`)

Post-norm fairseq \`transformer\` (3+3 layers, d=128, 4 heads, ffn 256, sinusoidal positions, separate en/pg dictionaries, \`--share-decoder-input-output-embed\`), ${PARAMS} parameters, ${MB} MB; optimizer state stripped.
The checkpoint is the \`cfg\` layout fairseq-train 0.12 writes; it records the task languages (en, pg) and no tokenizer.
Trained on CPU, seed ${SEED}, ${MAX_EPOCH} epochs (best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the 2-core build machine) on \`assets/corpus/*.en\` and its Pig Latin (\`scripts/_fixture_utils.py piglatin\`: let's -> etlay's; every 10th line joined with the next two),
both sides Moses-tokenized with the English rules (sacremoses, fairseq's \`tokenizer='moses'\` defaults; Moses has no \`pg\` rules) + ${N_CODES} joint fastBPE merges (\`bpecodes\`).
Rebuild: \`bash scripts/make_piglatin_model.sh\` (training command, run in the work dir: \`$(shquote "${TRAIN[@]}")\`).
Test set (\`test.en\`/\`test.pg\`, 200 lines, hub interface, beam 5): BLEU ${BLEU} (${DETAIL}; sacreBLEU ${SIG}), exact match ${EXACT}.
Load: \`TransformerModel.from_pretrained('assets/fixture-piglatin', checkpoint_file='model.pt', bpe='fastbpe', bpe_codes='assets/fixture-piglatin/bpecodes', tokenizer='moses')\` (the languages come from the checkpoint).
EOT

install_fixture "dicts     : en $(wc -l < "$STAGE/dict.en.txt") / pg $(wc -l < "$STAGE/dict.pg.txt") entries"
