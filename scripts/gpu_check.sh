#!/usr/bin/env bash
# Check cellshift's GPU path and write gpu_check.json / .md / .log to --out (default $OUT).
#
#   scripts/gpu_check.sh --peak-tflops 989          # on a GPU machine (989: H100/H200 bf16 dense peak)
#   scripts/gpu_check.sh --device cpu --out DIR     # dry run of every step on the CPU, tiny sizes
#
# Python: $PYTHON if set; else python3 when its torch sees a GPU (or for the dry run); else the
# CUDA build of torch is installed into .venv as `make test TORCH=torch` does, and .venv's Python is used.
# Every other argument goes to scripts/gpu_check.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in
        --device=*) device="${args[$i]#--device=}" ;;
        --device) device="${args[$((i + 1))]:-}" ;;
    esac
done

if [ -z "${PYTHON:-}" ]; then
    if [ "$device" = cpu ] || python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
        PYTHON=python3
    else
        make .venv/.installed TORCH=torch
        PYTHON=.venv/bin/python
    fi
fi
echo "python: $PYTHON"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" scripts/gpu_check.py "$@"
