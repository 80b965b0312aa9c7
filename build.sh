#!/usr/bin/env bash
# Unmask's one build script.
#   ./build.sh            build the native CLI (target/release/unmask)
#   ./build.sh test       install what the tests need (Debian/Ubuntu), then run every test:
#                         native kernels and forward on Mesa lavapipe, wasm in headless Chromium
#   ./build.sh web        build the wasm engine into www/pkg (release, wasm-bindgen, wasm-opt)
#   ./build.sh serve      build the web app and serve www/ on http://127.0.0.1:8080
#   ./build.sh deps       only install the prerequisites
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/unmask-xdg-$(id -u)}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

deps() {
  local need=()
  [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers libvulkan1)
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  cargo generate-lockfile --offline >/dev/null 2>&1 || true
  local v; v="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$v" ]; then
    echo "== installing wasm-bindgen-cli $v (must match Cargo.lock)"
    cargo install wasm-bindgen-cli --version "$v"
  fi
}

test_all() {
  deps
  echo "== native tests (wgpu on $(vulkaninfo --summary 2>/dev/null | awk -F= '/deviceName/ {print $2; exit}' || echo 'the first adapter'))"
  cargo test
  echo "== browser tests (wasm in headless Chromium, WebGPU on SwiftShader)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test --target wasm32-unknown-unknown --test web
  echo "== all tests passed"
}

case "${1:-build}" in
  build) cargo build --release; echo "built target/release/unmask" ;;
  deps) deps ;;
  test) test_all ;;
  *) echo "usage: ./build.sh [build|test|deps]" >&2; exit 2 ;;
esac
