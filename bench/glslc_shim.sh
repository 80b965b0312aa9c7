#!/usr/bin/env bash
# glslc's command line on glslang 13.1 (the first with GL_KHR_cooperative_matrix), for building
# llama.cpp's Vulkan shaders here: Debian 12's glslc (shaderc 2023.2) lacks that extension, so
# a llama.cpp built with it would run its matmuls without tensor cores. Used by
# bench/llama_cpp_vulkan.sh, which puts glslang and its libraries in lib/ and bin/ beside this.
# Handles what llama.cpp passes: -fshader-stage=compute, --target-env=X, -O, -MD -MF FILE,
# -g, -DNAME=VALUE, -o FILE (or - for stdout), one input file.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
args=(-V -S comp)
out=
dep=
opt=0
input=
while [ $# -gt 0 ]; do
  case "$1" in
    -fshader-stage=compute | -MD) ;;
    --target-env=*) args+=(--target-env "${1#--target-env=}") ;;
    -O) opt=1 ;;
    -MF) dep="$2"; shift ;;
    -o) out="$2"; shift ;;
    -g) args+=(-g) ;;
    -D*) args+=("$1") ;;
    -*) echo "glslc shim: unsupported option $1" >&2; exit 2 ;;
    *) input="$1" ;;
  esac
  shift
done
[ -n "$input" ] && [ -n "$out" ] || { echo "glslc shim: usage: glslc [options] -o OUT INPUT" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# glslc resolves #include without being asked; glslang wants the extension declared, so it is
# added after the #version line (messages' line numbers are one higher from there on).
awk 'NR == 1 && /^#version/ { print; print "#extension GL_GOOGLE_include_directive : enable"; next } { print }' "$input" >"$tmp/in.comp"
if ! "$here/bin/glslang" "${args[@]}" -I"$(dirname "$input")" -o "$tmp/out.spv" "$tmp/in.comp" >"$tmp/log" 2>&1; then
  grep -v '^/\|^$' "$tmp/log" >&2 || cat "$tmp/log" >&2
  exit 1
fi
# glslc -O runs spirv-opt's performance passes; where this older spirv-opt cannot, the shader
# stays unoptimized (llama.cpp already skips -O for its cooperative-matrix shaders).
if [ "$opt" = 1 ] && "$here/bin/spirv-opt" -O "$tmp/out.spv" -o "$tmp/opt.spv" >/dev/null 2>&1; then
  mv "$tmp/opt.spv" "$tmp/out.spv"
fi
if [ "$out" = - ]; then cat "$tmp/out.spv"; else cp "$tmp/out.spv" "$out"; fi
[ -z "$dep" ] || echo "$out: $input" >"$dep"
