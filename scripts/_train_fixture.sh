# Shared steps of scripts/make_default_model.sh and scripts/make_prenorm_model.sh
# (sourced, not run): the environment, the work directory, fairseq-preprocess,
# fairseq-train, assembling and evaluating the fixture, and installing it.
#
# The sourcing script sets OUT (the assets folder), WORK_NAME, MAX_EPOCH and
# N_CODES before sourcing, then calls the steps in order. Optional: SRC/TGT
# (the language codes, default en/de), TGT_MOSES (the Moses rules for the
# target side, default TGT), HUB_LANGS=0 (evaluate with the languages the
# checkpoint records instead of passing them to from_pretrained), and
# CORPUS_IN_WORK=1 (the script writes the corpus to $WORK/corpus after
# sourcing and calls check_corpus itself). Reference-side:
# fairseq 0.12 loads its own checkpoints with a plain torch.load(), which
# torch>=2.6 turns into weights_only=True and refuses, so
# TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is set for fairseq's commands (and only
# for them).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
BIN="$ROOT/.venv/bin"
UTILS="$ROOT/scripts/_fixture_utils.py"
CORPUS="assets/corpus"
SRC="${SRC:-en}"
TGT="${TGT:-de}"
TGT_MOSES="${TGT_MOSES:-$TGT}"
HUB_LANGS="${HUB_LANGS:-1}"
SEED=1

check_corpus() {
  local f l
  for f in train valid test; do
    for l in "$SRC" "$TGT"; do
      [[ -s "$CORPUS/$f.$l" ]] || { echo "missing $CORPUS/$f.$l (run scripts/make_corpus.py)" >&2; exit 1; }
    done
  done
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelport-$WORK_NAME.XXXXXX")"
cleanup() { if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi; }
trap cleanup EXIT

if [[ "${CORPUS_IN_WORK:-0}" == 1 ]]; then CORPUS="$WORK/corpus"; else check_corpus; fi

step() { printf '\n==> %s\n' "$*"; }
fairseq() { TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$@"; }
# print a command so it can be pasted back into a shell
shquote() { local a out=(); for a in "$@"; do if [[ "$a" =~ [^A-Za-z0-9_./=:,-] ]]; then out+=("'$a'"); else out+=("$a"); fi; done; echo "${out[*]}"; }

# learn N_CODES joint fastBPE merges and apply them ("1-2/6")
learn_bpe() {
  step "1-2/6 Moses tokenization (fairseq hub settings) + joint fastBPE ($N_CODES merges) in $WORK"
  FAST="$("$PY" "$UTILS" build-fastbpe "$WORK/fastbpe" | tail -n 1)"
  "$PY" "$UTILS" prepare-data "$CORPUS" "$WORK/data" --fast "$FAST" --n-codes "$N_CODES" \
    --src "$SRC" --tgt "$TGT" --tgt-moses "$TGT_MOSES"
}

# preprocess LABEL [EXTRA fairseq-preprocess ARGS...]: binarize into $WORK/data-bin ("3/6 LABEL")
preprocess() {
  step "3/6 $1"
  shift
  PREPROCESS=(fairseq-preprocess --source-lang "$SRC" --target-lang "$TGT" "$@"
    --trainpref "$WORK/data/train.bpe" --validpref "$WORK/data/valid.bpe"
    --testpref "$WORK/data/test.bpe" --destdir "$WORK/data-bin" --workers 2)
  shquote "${PREPROCESS[@]}"
  fairseq "$BIN/${PREPROCESS[0]}" "${PREPROCESS[@]:1}" > "$WORK/preprocess.log" 2>&1 || { tail -n 40 "$WORK/preprocess.log"; exit 1; }
  grep -E "Dictionary|sents" "$WORK/preprocess.log" | sed 's/^.*preprocess:/  /' || true
}

# train ARGS...: fairseq-train on CPU with the shared optimisation settings ("4/6");
# sets TRAIN (the full command) and TRAIN_SECS. TRAIN_ARCH (default transformer) picks --arch.
train() {
  step "4/6 fairseq-train on CPU (max $MAX_EPOCH epochs)"
  TRAIN=(fairseq-train data-bin --arch "${TRAIN_ARCH:-transformer}" "$@"
    --max-tokens 4096 --max-epoch "$MAX_EPOCH"
    --seed "$SEED" --cpu --num-workers 0
    --no-epoch-checkpoints --save-dir checkpoints
    --log-format simple --log-interval 50)
  echo "(cd \$WORK && $(shquote "${TRAIN[@]}"))"
  local t0 t1
  t0=$(date +%s)
  (cd "$WORK" && fairseq "$BIN/${TRAIN[0]}" "${TRAIN[@]:1}" > train.log 2>&1) || { tail -n 40 "$WORK/train.log"; exit 1; }
  t1=$(date +%s)
  TRAIN_SECS=$((t1 - t0))
  grep -E "\| valid \|" "$WORK/train.log" | sed 's/^.*| valid |/  valid |/' || true
  echo "training took ${TRAIN_SECS}s"
}

# assemble_and_evaluate: strip the best checkpoint into STAGE with dictionaries and
# codes ("5/6"), translate the test set through the hub interface ("6/6"); sets
# STAGE, BLEU, SIG, DETAIL, EXACT, PARAMS, MB, EPOCHS for the README
assemble_and_evaluate() {
  step "5/6 strip optimizer state, assemble artefacts"
  STAGE="$WORK/$(basename "$OUT")"
  mkdir -p "$STAGE"
  "$PY" "$UTILS" strip "$WORK/checkpoints/checkpoint_best.pt" "$STAGE/model.pt"
  cp "$WORK/data-bin/dict.$SRC.txt" "$WORK/data-bin/dict.$TGT.txt" "$STAGE/"
  cp "$WORK/data/bpecodes" "$STAGE/bpecodes"
  "$PY" "$UTILS" describe "$STAGE/model.pt" | tee "$WORK/describe.txt"

  step "6/6 evaluate through the fairseq hub interface (beam 5) on $CORPUS/test.$SRC"
  local langs=(--src "$SRC" --tgt "$TGT")
  [[ "$HUB_LANGS" == 1 ]] || langs+=(--no-hub-langs)
  fairseq "$PY" "$UTILS" evaluate "$STAGE" "$CORPUS" --beam 5 --out "$WORK/test.hyp" "${langs[@]}" 2>&1 \
    | grep -v -E "^(INFO|WARNING|  warnings.warn|  super\(\)|  state = torch.load)|UserWarning" | tee "$WORK/eval.txt"
  BLEU="$(sed -n 's/^BLEU = \([0-9.]*\).*/\1/p' "$WORK/eval.txt")"
  SIG="$(sed -n 's/^signature: //p' "$WORK/eval.txt")"
  DETAIL="$(sed -n 's/^detail: BLEU = [0-9.]* //p' "$WORK/eval.txt")"
  EXACT="$(sed -n 's/^exact matches: //p' "$WORK/eval.txt")"
  PARAMS="$(sed -n 's/.*parameters: \([0-9,]*\).*/\1/p' "$WORK/describe.txt")"
  MB="$(sed -n 's/.*size: \([0-9.]*\) MB.*/\1/p' "$WORK/describe.txt")"
  EPOCHS="$(grep -oE "epoch [0-9]+ @ [0-9]+ updates" "$WORK/train.log" | tail -n 1)"
}

# install_fixture DICT_LINE: replace OUT by STAGE (written completely first) and print the summary
install_fixture() {
  rm -rf "$OUT"
  mkdir -p "$(dirname "$OUT")"
  mv "$STAGE" "$OUT"

  step "summary"
  echo "  artefacts : $OUT/{model.pt,dict.$SRC.txt,dict.$TGT.txt,bpecodes,README.md}"
  echo "  params    : $PARAMS"
  echo "  model.pt  : $MB MB ($(du -b "$OUT/model.pt" | cut -f1) bytes)"
  echo "  $1"
  echo "  training  : ${TRAIN_SECS}s, $EPOCHS"
  echo "  BLEU      : $BLEU (test, beam 5, hub interface)"
}
