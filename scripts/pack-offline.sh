#!/usr/bin/env bash
# Pack what kindling needs to run on an offline x86-64 Linux machine with a GPU driver but no Node,
# no npm registry and no Vulkan loader (a lent cloud GPU, a cluster node), into one folder:
#
#   DIR/kit.tar.xz   this machine's node binary (bin/node) and node_modules without the dev-only
#                    peers and build tools (TF.js, TypeScript, Vite/Vitest) and without Dawn's
#                    builds for other platforms
#   DIR/debs/*.deb   the Vulkan loader (libvulkan1) and libglvnd (the NVIDIA Vulkan driver loads its
#                    libGLdispatch), from this machine's apt sources
#
#   bash scripts/pack-offline.sh DIR        # run here, after `bash scripts/bootstrap.sh`
#   bash scripts/gpu-checks.sh OUT DIR      # there, in a copy of this checkout (see that script)
#
# ~40 MB in all. The benchmarks' TF.js peer is left out (the step benchmark says "TF.js peer
# unavailable" and goes on with PyTorch's); `npm test` is not runnable from the kit (no Vitest).
set -eu
cd "$(dirname "$0")/.."
dir=${1:?usage: bash scripts/pack-offline.sh DIR}
[ -d node_modules/webgpu ] || { echo "pack-offline: no node_modules: run bash scripts/bootstrap.sh first" >&2; exit 1; }
mkdir -p "$dir/debs"
dir=$(cd "$dir" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/bin"
cp "$(command -v node)" "$stage/bin/node"
# Copy, then prune what the experiment runner and the benchmarks never load.
cp -a node_modules "$stage/node_modules"
( cd "$stage/node_modules"
  rm -rf @tensorflow typescript vite vitest @vitest lightningcss* core-js @rolldown rolldown .cache
  find webgpu/dist -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} + )
tar -C "$stage" -cJf "$dir/kit.tar.xz" bin node_modules

( cd "$dir/debs" && rm -f ./*.deb && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 2>/dev/null >/dev/null )
echo "pack-offline: $dir"
du -sh "$dir/kit.tar.xz" "$dir/debs"
