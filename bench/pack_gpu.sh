#!/usr/bin/env bash
# Packs what bench/gpu.sh runs on the GPU machine into .gpu/ (ignored by git), stripped and
# xz-compressed: the device tool carries at most 64 MiB with the working tree (39 MB of it is
# the repository), and the uncompressed binaries alone are ~110 MB.
#   bench/pack_gpu.sh [all|unmask|llama]      then carry .gl and .gpu; gpu.sh unpacks them
# Builds what is missing first: the release CLI, write_full_size, and the release test binaries
# of kernels and full_size_dgemma; llama.cpp's binary comes from bench/llama_cpp_vulkan.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
case "$part" in all | unmask | llama) ;; *) echo "usage: bench/pack_gpu.sh [all|unmask|llama]" >&2; exit 2 ;; esac
cargo build --release --bin unmask --example write_full_size
cargo test --release --no-run --test kernels --test full_size_dgemma
newest() { ls -t $1 2>/dev/null | grep -v '\.d$' | head -1; }
files=("target/release/unmask:unmask")
[ "$part" = llama ] || files+=("$(newest 'target/release/deps/kernels-*'):kernels")
[ "$part" = unmask ] || files+=("$(newest 'target/release/deps/full_size_dgemma-*'):full_size_dgemma")
if [ "$part" != unmask ]; then
  [ -x .llama/llama-diffusion-cli ] || { echo ".llama/llama-diffusion-cli is missing: run bench/llama_cpp_vulkan.sh" >&2; exit 1; }
  files+=("target/release/examples/write_full_size:write_full_size" ".llama/llama-diffusion-cli:llama-diffusion-cli")
fi
rm -rf .gpu && mkdir -p .gpu
for f in "${files[@]}"; do
  src="${f%%:*}" name="${f##*:}"
  [ -e "$src" ] || { echo "$src is missing" >&2; exit 1; }
  cp "$src" ".gpu/$name" && strip ".gpu/$name" && xz -9 -T2 ".gpu/$name"
done
for c in shared/docs ../shared/docs; do
  [ -e "$c/llada-8b-instruct.config.json" ] && { cp "$c/llada-8b-instruct.config.json" .gpu/; break; }
done
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carried=$( (du -cb .gpu/* .gl/* 2>/dev/null || true) | tail -1 | cut -f1)
ls -la .gpu
echo "working tree $((tree / 1048576)) MiB + .gl and .gpu $((carried / 1048576)) MiB of the 64 MiB a call carries"
[ $((tree + carried)) -le $((64 * 1048576)) ] || { echo "too much for one call: pack the parts one at a time (unmask, llama)" >&2; exit 1; }
