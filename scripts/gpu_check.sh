#!/usr/bin/env bash
# The prepared check for a machine with CUDA (aimed at under 8 minutes on one H100/H200):
#   1. the GPU section of the benchmarks (python -m benchmarks --only gpu);
#   2. a full-mode smoke run on CUDA with mixed precision: the stand-in mirror (random weights
#      in the real formats, a miniature UCF101), README's download and prepare commands, one
#      epoch of the paper-size I3D, the frozen-feature fusion, each timed.
# Prints what it measured; copy the GPU table into docs/benchmarks.md with its figures.
# Usage: bash scripts/gpu_check.sh [WORKDIR]   (from the repository root, hartutor installed)
set -euo pipefail
python - <<'PY' || { echo "gpu_check: no CUDA device here; nothing measured" >&2; exit 2; }
import torch, sys
sys.exit(0 if torch.cuda.is_available() else 1)
PY
work=${1:-$(mktemp -d)}
export HARTUTOR_CACHE="$work/cache" HARTUTOR_DATA="$work/data" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

stamp() { date +%s.%N; }
took() { python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(stamp)"; }

echo "== 1. benchmarks --only gpu"
t=$(stamp); python -m benchmarks --only gpu; echo "benchmarks gpu: $(took "$t")"

echo "== 2. full-mode smoke run on the stand-ins (CUDA, mixed precision)"
t=$(stamp); hartutor standins build "$work/mirror" --frames 64; echo "stand-ins: $(took "$t")"
export HARTUTOR_MIRROR="file://$work/mirror"
t=$(stamp)
hartutor weights download i3d_rgb_kinetics600_scratch xception_imagenet1k_tf --quiet
hartutor ucf101 prepare "$HARTUTOR_DATA/ucf101" --quiet
echo "download + prepare: $(took "$t")"
t=$(stamp)
hartutor train i3d --preset paper --data "$HARTUTOR_DATA/ucf101" --epochs 1 --batch-size 8 \
  --device cuda --out "$work/i3d_paper.pt" --quiet
echo "I3D (paper size) one epoch on the miniature, AMP: $(took "$t")"
t=$(stamp)
hartutor frozen "$HARTUTOR_DATA/ucf101" --cache "$work/features" --device cuda --epochs 5 \
  --test-clips 2 --quiet
echo "frozen-feature fusion: $(took "$t")"
echo "gpu_check: done"
