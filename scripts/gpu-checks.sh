#!/usr/bin/env bash
# The GPU measurements of docs/performance.md and docs/results.md in one go, for a machine with a GPU
# (and its Vulkan driver) that may be offline; writes its tables under OUT:
#
#   OUT/adapter.txt        the WebGPU adapter Dawn picked, `kindling device` (features, limits, plan, and
#                          shader-f16 / subgroup matrices under Dawn's adapter toggles), nvidia-smi
#   OUT/step.txt           benchmarks/step.bench.ts all --profile (a, b, GPT-2 small; PyTorch peer when
#                          python3 has torch), then the needle shape beside PyTorch
#   OUT/gelu.txt           benchmarks/step.bench.ts all --gelu-ab: each step (a, b, needle, GPT-2 small) with the MLP's GELU inside its
#                          products and with the GELU kernels, alternating (what the fusion buys)
#   OUT/attention.txt      benchmarks/attention.bench.ts --sweep (the block kernels' tiles against tiled and sg at
#                          GPT-2's shape, with their differences), then benchmarks/step.bench.ts g --attention-ab
#                          (GPT-2 small with and without the block kernels, alternating)
#   OUT/precision.txt      benchmarks/step.bench.ts all --precision --profile: each step in f32, f16 and bf16
#                          (half matmul operands) alternating, with KINDLING_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia
#   OUT/stacked.txt        benchmarks/stacked.bench.ts: the needle step of 1, 4, 8, 16, 32 stacked models
#                          in one process against one model (with the profile of 16)
#   OUT/arms.txt           benchmarks/arms.bench.ts: needle arms per minute with 1, 4, 9, 16 side by side
#                          and 16 stacked in one model, evaluations included
#   OUT/needle.log         `kindling experiment paper --arms 'needle-*' --jobs JOBS --stack STACK` (progress + table)
#   OUT/needle.md, OUT/needle.json   its results.md and results.json (partial if the time ran out)
#   OUT/needle-runs.tar.xz the experiment directory, to resume elsewhere with --resume
#
#   bash scripts/gpu-checks.sh OUT [KIT] [NEEDLE_SECONDS] [JOBS] [STACK]
#
# KIT is a folder from scripts/pack-offline.sh (node, node_modules and the Vulkan loader for a machine
# without them); without it, node and node_modules must already be here. NEEDLE_SECONDS (default 300)
# bounds the experiment: then its processes are killed, and what OUT/needle-runs.tar.xz holds (finished
# runs, the others' checkpoints every 500 steps) resumes when that file is put into KIT for the next call.
# JOBS (default 15: every needle run at once) is the number of worker processes sharing the GPU;
# STACK (default 1) trains up to that many seeds of an arm as one stacked model (--stack).
# GPU_CHECKS_ONLY (comma-separated: step, gelu, attention, precision, stacked, arms, needle; default
# all) runs only those parts, so that the whole set can be split over calls of a limited length
# (adapter.txt is written every time), e.g. GPU_CHECKS_ONLY=step,attention,gelu first.
set -u
cd "$(dirname "$0")/.."
out=${1:?usage: bash scripts/gpu-checks.sh OUT [KIT] [NEEDLE_SECONDS] [JOBS] [STACK]}
kit=${2:-}
secs=${3:-300}
jobs=${4:-15}
stack=${5:-1}
only=",${GPU_CHECKS_ONLY:-step,gelu,attention,precision,stacked,arms,needle},"
gco=${GPU_CHECKS_ONLY:-}
for part in ${gco//,/ }; do
  case ",step,gelu,attention,precision,stacked,arms,needle," in
    *",$part,"*) ;;
    *) echo "gpu-checks: GPU_CHECKS_ONLY: unknown part \"$part\" (step, gelu, attention, precision, stacked, arms, needle)" >&2; exit 2 ;;
  esac
done
want() { [[ "$only" == *",$1,"* ]]; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -n "$kit" ]; then
  for f in "$kit"/debs/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
  command -v ldconfig >/dev/null && ldconfig
  k=/tmp/kindling-kit
  mkdir -p "$k" && tar -C "$k" -xJf "$kit/kit.tar.xz"
  export PATH="$k/bin:$PATH"
  [ -e node_modules ] || ln -s "$k/node_modules" node_modules
fi
# Lent NVIDIA machines keep the driver's Vulkan manifest outside the loader's search path.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
# The benchmarks' PyTorch peer: python3 with torch on the GPU, when present.
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  export KINDLING_TORCH_PYTHON=${KINDLING_TORCH_PYTHON:-$(command -v python3)} KINDLING_TORCH_DEVICE=${KINDLING_TORCH_DEVICE:-cuda}
fi

{ node --version; node --import tsx scripts/probe-adapter.ts 2>&1 | grep -v 'artificially reduced'
  node --import tsx src/cli/main.ts device 2>&1 | grep -v 'artificially reduced'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/adapter.txt" 2>&1
cat "$out/adapter.txt"
grep -q '^WebGPU adapter: ' "$out/adapter.txt" || { echo "gpu-checks: no WebGPU adapter (see $out/adapter.txt)" >&2; exit 1; }


if want step; then
  t0=$(date +%s)
  { node --import tsx benchmarks/step.bench.ts all --profile
    node --import tsx benchmarks/step.bench.ts needle; } > "$out/step.txt" 2>&1
  echo "gpu-checks: step benchmarks in $(( $(date +%s) - t0 )) s → $out/step.txt"
  grep -E 'ms/step|"shape"' "$out/step.txt" | head -40
fi

if want gelu; then
  # The MLP's GELU inside its matmuls against the GELU kernels, alternating on one GPU.
  t0=$(date +%s)
  node --import tsx benchmarks/step.bench.ts all --gelu-ab > "$out/gelu.txt" 2>&1
  echo "gpu-checks: GELU A/B in $(( $(date +%s) - t0 )) s → $out/gelu.txt"
  tail -n 5 "$out/gelu.txt"
fi

if want attention; then
  # Attention on the block kernels against the kernels before them: per layer, then the GPT-2 step.
  t0=$(date +%s)
  { node --import tsx benchmarks/attention.bench.ts --sweep
    node --import tsx benchmarks/step.bench.ts g --attention-ab; } > "$out/attention.txt" 2>&1
  echo "gpu-checks: attention A/B in $(( $(date +%s) - t0 )) s → $out/attention.txt"
  grep -E 'GPT-2 small|^g ' "$out/attention.txt" | tail -n 8
fi

if want precision; then
  # Mixed precision: the step in f32, f16 and bf16 alternating (Dawn offers shader-f16 on NVIDIA only behind this toggle).
  t0=$(date +%s)
  KINDLING_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia node --import tsx benchmarks/step.bench.ts all --precision --profile > "$out/precision.txt" 2>&1
  echo "gpu-checks: precision benchmark in $(( $(date +%s) - t0 )) s → $out/precision.txt"
  tail -n 10 "$out/precision.txt"
fi

if want stacked; then
  t0=$(date +%s)
  node --import tsx benchmarks/stacked.bench.ts --profile 16 > "$out/stacked.txt" 2>&1
  echo "gpu-checks: stacked benchmark in $(( $(date +%s) - t0 )) s → $out/stacked.txt"
  grep -E '^\||"bench"' "$out/stacked.txt" | head -12
fi

if want arms; then
  t0=$(date +%s)
  node --import tsx benchmarks/arms.bench.ts > "$out/arms.txt" 2>&1
  echo "gpu-checks: arms benchmark in $(( $(date +%s) - t0 )) s → $out/arms.txt"
  grep -E '^\||"bench"' "$out/arms.txt"
fi

want needle || exit 0
dir=/tmp/kindling-needle
[ -n "$kit" ] && [ -f "$kit/needle-runs.tar.xz" ] && [ ! -d "$dir" ] && tar -C /tmp -xJf "$kit/needle-runs.tar.xz"
t0=$(date +%s)
timeout -s KILL "$secs" node --import tsx src/cli/main.ts experiment paper --arms 'needle-*' \
  --out "$dir" --jobs "$jobs" --stack "$stack" --resume > "$out/needle.log" 2>&1
rc=$?
pkill -KILL -f "experiment .*--out $dir" 2>/dev/null   # its --jobs workers, if the time ran out
echo "gpu-checks: needle experiment exit $rc after $(( $(date +%s) - t0 )) s → $out/needle.log"
node --import tsx src/cli/main.ts experiment report "$dir" >> "$out/needle.log" 2>&1
cp "$dir/results.md" "$out/needle.md" 2>/dev/null
cp "$dir/results.json" "$out/needle.json" 2>/dev/null
tar -C "$(dirname "$dir")" -cJf "$out/needle-runs.tar.xz" "$(basename "$dir")"
tail -n 25 "$out/needle.log"
