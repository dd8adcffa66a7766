#!/usr/bin/env bash
# Regenerate assets/fixture-m2m/: a tiny *trained* M2M100/NLLB-style fairseq model
# (task translation_multi_simple_epoch, pairs en-de and de-en, pre-norm
# `transformer`, 2+2 layers, d=64, ffn 256, sinusoidal positions, shared
# embeddings, --encoder-langtok src --decoder-langtok, --lang-dict with M2M100's
# own 100 languages (transformers' M2M100Tokenizer list, so the port exports to
# M2M100ForConditionalGeneration), a fixed dictionary padded with madeupwords)
# on assets/corpus/*.{en,de}, with a
# SentencePiece BPE model (1000 pieces) trained here. The test set shipped beside
# it is the first N_TEST lines of assets/corpus/test.{en,de}.
#
#   nice -n 10 env OMP_NUM_THREADS=1 bash scripts/make_m2m_trained_fixture.sh
#
# 6-11 minutes (354-674s of training, by load) on the 2-core build machine. Env knobs: MAX_UPDATE (default 900),
# VOCAB (default 1000), N_TEST (default 60), KEEP_WORK=1 keeps the work directory.
# Reference-side script: it runs fairseq itself (shared steps: scripts/_train_fixture.sh).
set -euo pipefail

OUT="assets/fixture-m2m"
WORK_NAME="m2m"
MAX_EPOCH="${MAX_EPOCH:-100}"
MAX_UPDATE="${MAX_UPDATE:-900}"
VOCAB="${VOCAB:-1000}"
N_TEST="${N_TEST:-60}"
source "$(dirname "${BASH_SOURCE[0]}")/_train_fixture.sh"

step "1-2/6 SentencePiece BPE ($VOCAB pieces) trained on train.{en,de}, every split encoded"
"$PY" "$UTILS" spm-data "$CORPUS" "$WORK/data" --vocab "$VOCAB"

# one binarization serves both directions (the task reads train.en-de.* for de-en too);
# the joined dictionary is padded with madeupwords to a multiple of 8, as M2M100's model_dict.txt
preprocess "fairseq-preprocess (joined dictionary, madeupword padding)" --joined-dictionary
cp "$WORK/data-bin/dict.en.txt" "$WORK/model_dict.txt"
cp "$WORK/data/spm.model" "$WORK/spm.model"
# M2M100's language list, in its order (the task appends __af__ ... __zu__ after the dictionary)
"$PY" -c "from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as C
print('\n'.join(C['m2m100']))" > "$WORK/lang_dict.txt"
MADEUP="$(grep -c '^madeupword' "$WORK/model_dict.txt")"
echo "  model_dict.txt: $(wc -l < "$WORK/model_dict.txt") lines ($MADEUP madeupwords)"

# paths relative to the work directory, as the released models record them
train --task translation_multi_simple_epoch --lang-pairs en-de,de-en --lang-dict lang_dict.txt \
  --fixed-dictionary model_dict.txt --encoder-langtok src --decoder-langtok \
  --bpe sentencepiece --sentencepiece-model spm.model \
  --share-all-embeddings --encoder-normalize-before --decoder-normalize-before \
  --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 64 --decoder-embed-dim 64 \
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 \
  --encoder-attention-heads 4 --decoder-attention-heads 4 \
  --max-source-positions 256 --max-target-positions 256 --dropout 0.1 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --optimizer adam --adam-betas "(0.9, 0.98)" --lr 3e-3 --lr-scheduler inverse_sqrt \
  --warmup-updates 200 --warmup-init-lr 1e-07 --max-update "$MAX_UPDATE" --validate-interval-updates 300

step "5/6 strip optimizer state, assemble artefacts"
STAGE="$WORK/$(basename "$OUT")"
mkdir -p "$STAGE"
"$PY" "$UTILS" strip "$WORK/checkpoints/checkpoint_best.pt" "$STAGE/model.pt"
cp "$WORK/model_dict.txt" "$WORK/lang_dict.txt" "$WORK/spm.model" "$STAGE/"
head -n "$N_TEST" "$CORPUS/test.en" > "$STAGE/test.en"
head -n "$N_TEST" "$CORPUS/test.de" > "$STAGE/test.de"
"$PY" "$UTILS" describe "$STAGE/model.pt" | tee "$WORK/describe.txt"
PARAMS="$(sed -n 's/.*parameters: \([0-9,]*\).*/\1/p' "$WORK/describe.txt")"
MB="$(sed -n 's/.*size: \([0-9.]*\) MB.*/\1/p' "$WORK/describe.txt")"
EPOCHS="$(grep -oE "epoch [0-9]+ @ [0-9]+ updates" "$WORK/train.log" | tail -n 1)"

step "6/6 evaluate with the task's own inference (SequenceGenerator, beam 5) on the shipped test set"
fairseq "$PY" "$UTILS" evaluate-multilingual "$STAGE" "$STAGE" --pairs en-de,de-en --beam 5 2>&1 \
  | grep -v -E "^(INFO|WARNING|  warnings.warn|  super\(\)|  state = torch.load)|UserWarning" | tee "$WORK/eval.txt"
EVAL="$(grep -E '^(en-de|de-en) beam' "$WORK/eval.txt" | sed 's/^/- /')"

cat > "$STAGE/README.md" <<EOT
# fixture-m2m: tiny trained M2M100/NLLB-style fairseq model, en<->de

fairseq \`transformer\` of the \`translation_multi_simple_epoch\` task as M2M100 / NLLB-200 dense:
pre-norm (\`--encoder-normalize-before --decoder-normalize-before\`), 2+2 layers, d=64, 4 heads, ffn 256,
sinusoidal positions, \`--share-all-embeddings\`, \`--encoder-langtok src --decoder-langtok\` (\`__en__\`/\`__de__\`),
\`--lang-dict lang_dict.txt\` (M2M100's 100 languages in its order, as transformers' M2M100Tokenizer lists
them; only en-de and de-en trained), \`--fixed-dictionary model_dict.txt\` (fairseq-preprocess's joined
dictionary, padded with \`madeupword\`s to a multiple of 8; the task appends the 100 language tokens),
${PARAMS} parameters, ${MB} MB; optimizer state stripped.
Tokenizer: \`spm.model\`, SentencePiece BPE with ${VOCAB} pieces trained on \`assets/corpus/train.{en,de}\`.
Trained on CPU, seed ${SEED}, pairs en-de and de-en of \`assets/corpus\`, ${MAX_UPDATE} updates
(best checkpoint: ${EPOCHS}; ${TRAIN_SECS}s wall clock on the loaded 2-core build machine).
Rebuild: \`nice -n 10 env OMP_NUM_THREADS=1 bash scripts/make_m2m_trained_fixture.sh\`; the training command,
run in the work directory:

    $(shquote "${TRAIN[@]}")

Test set: \`test.en\`/\`test.de\` (the first ${N_TEST} lines of \`assets/corpus/test.*\`); beam 5, the task's inference:
${EVAL}

Load with fairseq: \`checkpoint_utils.load_model_ensemble_and_task(['model.pt'], arg_overrides=...)\` with
\`data\`, \`source_lang\`, \`target_lang\`, \`lang_dict\` and \`fixed_dictionary\` (absolute paths of this folder's
files) overridden, then the task's \`inference_step\` (the hub's \`translate()\` raises a TypeError for this task).
EOT

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$STAGE" "$OUT"
step "summary"
echo "  artefacts : $OUT/{model.pt,model_dict.txt,lang_dict.txt,spm.model,test.en,test.de,README.md}"
echo "  params    : $PARAMS, model.pt $MB MB"
echo "  training  : ${TRAIN_SECS}s, $EPOCHS"
