#!/usr/bin/env bash
# Unmask's one build script.
#   ./build.sh            build the native CLI (target/release/unmask)
#   ./build.sh test       install what the tests need (Debian/Ubuntu), then check formatting and
#                         clippy (warnings are errors) and run every test: native kernels and
#                         forward on Mesa lavapipe, wasm in headless Chromium
#   ./build.sh web        build the web app into www/: the wasm engine in www/pkg (release,
#                         wasm-bindgen, wasm-opt from npm's binaryen) and the bundled model in
#                         www/models (models/demo-q4_0.gguf when present, else a random stand-in;
#                         UNMASK_WEB_MODEL=path.gguf picks another)
#   ./build.sh serve      build the web app and serve www/ on http://127.0.0.1:8080 (PORT=...;
#                         UNMASK_NO_BUILD=1 serves what is built)
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
  # RADV (same package) compiles the kernels for an AMD GPU that is not there: the test of
  # `unmask bench --kernels compile` reads their register use from it.
  ls /usr/share/vulkan/icd.d/radeon_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
  command -v chromium >/dev/null || need+=(chromium)
  command -v curl >/dev/null || need+=(curl)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  # The desktop app's window test: a virtual X server, and what winit loads at run time.
  command -v xvfb-run >/dev/null || need+=(xvfb xauth)
  ls /usr/lib/*/libxkbcommon-x11.so.0 >/dev/null 2>&1 || need+=(libxkbcommon-x11-0)
  ls /usr/lib/*/libXcursor.so.1 >/dev/null 2>&1 || need+=(libxcursor1 libxi6)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  cargo generate-lockfile --offline >/dev/null 2>&1 || true
  # OpenAI's own Python client, which the server test (tests/server.rs) drives `unmask serve` with.
  if ! target/pyenv/bin/python -c "import openai" >/dev/null 2>&1; then
    echo "== installing OpenAI's Python client into target/pyenv (tests/server_requirements.txt)"
    python3 -m venv target/pyenv
    target/pyenv/bin/pip install -q --disable-pip-version-check -r tests/server_requirements.txt
  fi
  local v; v="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$v" ]; then
    echo "== installing wasm-bindgen-cli $v (must match Cargo.lock)"
    # Unoptimized, without debug info: it builds in 1.8 minutes instead of 4.7 on two cores,
    # and still binds the release wasm in 3 s.
    CARGO_PROFILE_DEV_DEBUG=false cargo install --debug wasm-bindgen-cli --version "$v" \
      --bin wasm-bindgen --bin wasm-bindgen-test-runner
  fi
}

test_all() {
  deps
  echo "== cargo fmt --check"
  cargo fmt --check
  # Clippy is the compiler of this crate's own targets in every build below (what `cargo clippy`
  # does: clippy-driver as RUSTC_WORKSPACE_WRAPPER; dependencies are built by plain rustc), with
  # warnings as errors. That is `cargo clippy --all-targets -D warnings` natively and
  # `--target wasm32-unknown-unknown --lib --test web` for the browser, without the two extra
  # check builds of every dependency that running it separately costs (~12 minutes on two cores).
  echo "== clippy lints every build below (-D warnings, native and wasm32)"
  RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
  CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
  # CI builds from scratch: incremental caches only cost time and ~0.7 GB of disk there.
  export CARGO_INCREMENTAL=0
  echo "== native tests (wgpu on $(vulkaninfo --summary 2>/dev/null | awk -F= '/deviceName/ {print $2; exit}' || echo 'the first adapter'))"
  cargo test
  echo "== browser tests (wasm in headless Chromium, WebGPU on SwiftShader)"
  # The runner's timeout covers the whole suite (20 s unless set). SwiftShader compiles each
  # kernel specialisation in about a second on this VM, and the suite compiles several dozen
  # (every layout and weight format the tests run): it took 22 s on 2026-12-04.
  WASM_BINDGEN_TEST_TIMEOUT=120 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test --target wasm32-unknown-unknown --test web
  echo "== web app tests (the page in headless Chromium, compared with the native CLI)"
  web
  cargo build --bin unmask --example write_full_size   # built by cargo test already
  node tests/web_page/page.test.mjs
  node tests/web_page/api.test.mjs
  node tests/web_page/a11y.test.mjs
  node tests/web_page/download.test.mjs
  node tests/web_page/faults.test.mjs
  echo "== all tests passed"
}

# npm packages of the web build and its tests (binaryen's wasm-opt, playwright-core), from the
# committed package-lock.json.
web_npm() {
  command -v npm >/dev/null || { echo "== installing nodejs, npm"; $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null; }
  if [ ! -d tests/web_page/node_modules ] || [ tests/web_page/package-lock.json -nt tests/web_page/node_modules/.package-lock.json ]; then
    echo "== npm ci (tests/web_page)"
    (cd tests/web_page && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The model the page bundles: www/models/demo/ plus www/models/manifest.json that lists it.
web_model() {
  local gguf tok name
  if [ -n "${UNMASK_WEB_MODEL:-}" ]; then
    gguf="$UNMASK_WEB_MODEL"; tok="${UNMASK_WEB_TOKENIZER:-$(dirname "$gguf")/tokenizer.json}"; name="$(basename "$gguf")"
  elif [ -f models/demo-q4_0.gguf ]; then
    gguf=models/demo-q4_0.gguf; tok=models/demo/tokenizer.json; name="Unmask demo (q4_0)"
  else
    gguf=target/demo-standin/demo-standin-q4_0.gguf; tok=target/demo-standin/tokenizer.json
    name="Stand-in demo (random weights, q4_0)"
    if [ ! -f "$gguf" ] || [ examples/write_demo_standin.rs -nt "$gguf" ]; then
      echo "== no models/demo-q4_0.gguf yet: writing a random stand-in model"
      cargo run --release --quiet --example write_demo_standin -- target/demo-standin
    fi
  fi
  [ -f "$gguf" ] || { echo "bundled model $gguf not found" >&2; exit 1; }
  rm -rf www/models/demo && mkdir -p www/models/demo
  cp "$gguf" www/models/demo/
  local base; base="$(basename "$gguf")"
  local files="\"model\": \"demo/$base\""
  local bytes; bytes=$(stat -c %s "$gguf")
  # A GGUF with its tokenizer embedded (unmask convert writes one) needs no tokenizer.json.
  if grep -qa 'tokenizer.ggml.model' "$gguf"; then tok=""; fi
  [ -f "$tok" ] || tok=""
  local version; version=$(cat "$gguf" ${tok:+"$tok"} | sha256sum | cut -c1-16)
  if [ -n "$tok" ]; then
    cp "$tok" www/models/demo/tokenizer.json
    files="$files, \"tokenizer\": \"demo/tokenizer.json\""
    bytes=$((bytes + $(stat -c %s "$tok")))
  fi
  printf '{\n  "bundled": [\n    {"id": "demo", "name": "%s", "format": "gguf", "files": {%s}, "bytes": %s, "version": "%s"}\n  ]\n}\n' \
    "$name" "$files" "$bytes" "$version" > www/models/manifest.json
  echo "bundled model: $gguf${tok:+ + $tok} ($bytes bytes) -> www/models/demo/"
}

web() {
  deps
  web_npm
  cargo build --release --lib --target wasm32-unknown-unknown
  local wasm=target/wasm32-unknown-unknown/release/unmask.wasm
  if [ ! -f www/pkg/unmask_bg.wasm ] || [ ! -f www/pkg/unmask.js ] || [ "$wasm" -nt www/pkg/unmask_bg.wasm ]; then
    wasm-bindgen --target web --no-typescript --out-dir www/pkg "$wasm"
    echo "== wasm-opt -Oz (npm binaryen $(cd tests/web_page && npx --no-install wasm-opt --version | awk '{print $3}'))"
    (cd tests/web_page && npx --no-install wasm-opt -Oz ../../www/pkg/unmask_bg.wasm -o ../../www/pkg/unmask_bg.opt.wasm)
    mv www/pkg/unmask_bg.opt.wasm www/pkg/unmask_bg.wasm
  fi
  web_model
  local raw gz
  raw=$(stat -c %s www/pkg/unmask_bg.wasm); gz=$(gzip -9c www/pkg/unmask_bg.wasm | wc -c)
  echo "built www/: pkg/unmask_bg.wasm is $raw bytes ($gz gzipped)"
}

serve() {
  [ -n "${UNMASK_NO_BUILD:-}" ] || web
  command -v node >/dev/null || web_npm
  exec node tests/web_page/serve.mjs www
}

case "${1:-build}" in
  build) cargo build --release; echo "built target/release/unmask" ;;
  deps) deps ;;
  test) test_all ;;
  web) web ;;
  serve) serve ;;
  *) echo "usage: ./build.sh [build|test|web|serve|deps]" >&2; exit 2 ;;
esac
