#!/usr/bin/env bash
# The GPU checks in one command, for a machine with CUDA (a lent GPU): the
# embedded model (or PORTED_DIR) translated on CUDA in float32, float16 and
# bfloat16 beside float32 on the CPU, lines identical and tokens/s per run,
# then CTranslate2 float16 on the same GPU beside the port's float16
# (scripts/gpu_check.py). Bounded to 5 minutes; without CUDA it says so and
# exits 0 (--cpu-dry-run checks the script on the CPU). Run after
# `bash scripts/setup.sh`:
#
#     bash scripts/gpu_check.sh [PORTED_DIR] [--lines N] [--cpu-dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 300 .venv/bin/python scripts/gpu_check.py "$@"
