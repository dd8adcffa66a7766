#!/usr/bin/env bash
# Create .venv with modelport, its reference frameworks (fairseq, fastBPE,
# transformers, ctranslate2, sacrebleu), onnx + onnxruntime (export onnx) and
# the test tools.
#
# Order matters: the local CPU build of torch goes in first, so nothing that
# depends on torch pulls a CUDA build; fastBPE and fairseq compile extensions
# against the installed torch/cython (--no-build-isolation); fairseq-fixed is
# installed with --no-deps because its declared torchaudio requirement pins a
# torch build that does not match and breaks `import transformers` (its real
# runtime needs are in modelport's [reference] extra).
#
# Every install runs under scripts/constraints.txt, the versions the suite last
# passed with (CONSTRAINTS= for the registry's newest, CONSTRAINTS=FILE for another).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
CONSTRAINTS=${CONSTRAINTS-scripts/constraints.txt}
[ -z "$CONSTRAINTS" ] || export PIP_CONSTRAINT="$(realpath "$CONSTRAINTS")"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

"${PIP[@]}" install -q --upgrade pip wheel setuptools
"${PIP[@]}" install -q "torch==2.13.0"
"${PIP[@]}" install -q -e ".[reference,onnx,dev]"
"$VENV/bin/python" -c "import fastBPE" 2>/dev/null || "${PIP[@]}" install -q --no-build-isolation fastbpe
"$VENV/bin/python" -c "import fairseq" 2>/dev/null \
  || "${PIP[@]}" install -q --no-build-isolation --no-deps "fairseq-fixed==0.12.3.1"

"$VENV/bin/python" - <<'PY'
import importlib, sys
import torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
for name in ("modelport", "fairseq", "transformers", "fastBPE", "ctranslate2", "sacrebleu", "sentencepiece",
             "accelerate", "onnx", "onnxruntime", "pymarian", "importlinter"):
    importlib.import_module(name)
print(f"setup ok: torch {torch.__version__}, python {sys.version.split()[0]}", file=sys.stderr)
PY
