#!/usr/bin/env python3
"""Does stock llama.cpp load the GGUFs Unmask writes, and give the same answers?

Not part of `./build.sh test` (it needs the network once and builds llama.cpp: ~20 min on two
busy cores the first time). Steps:

1. llama.cpp's source: the copy vendored in PyPI's `llama-cpp-python` sdist (this environment
   reaches PyPI, not GitHub), taken from $LLAMA_CPP_CACHE if the tarball is there, else
   downloaded from PyPI's simple index and checked against its sha256.
2. A CPU-only build of `llama-diffusion-cli` and `llama-tokenize` in $LLAMA_CPP_BUILD (cmake +
   ninja, installed from PyPI when missing; incremental when the build folder is there).
3. `cargo build --bin unmask` (or $UNMASK_BIN), then `unmask convert models/demo --quant q4_0`
   (what the converter writes now), the shipped models/demo-q4_0.gguf, and every
   tests/data/families/*/model.gguf present.
4. Per model and prompt: the chat prompt as llama.cpp builds it (the GGUF's template rendered with
   jinja2, tokenized by llama-tokenize; its length confirmed by llama-diffusion-cli itself) against
   `unmask generate --chat`'s prompt tokens; then greedy generations under settings where both
   samplers do the same thing (below), compared as llama.cpp prints them: the answer detokenized
   with control tokens dropped.

Why only those settings: llama-diffusion-cli samples every masked position through a llama.cpp
sampler chain ending in `dist`, and ranks positions by the probability of the chosen token *after*
that chain. Greedy there means `--top-k 1`, which leaves one candidate of probability 1, so every
position ties and the leftmost ones are committed first (with `--temp 0` alone it samples at
temperature 1 from top-k 40 / top-p 0.95). LLaDA's low-confidence remasking ranks by the full
softmax instead. The two agree exactly when each step commits every masked position of its block
(one step per block) or when blocks are one token long; those are the settings compared. Its
blocks also count from the prompt's end over `-ub` = prompt + answer positions, so the block
length must divide the prompt length too (blocks of the answer length + prompt for one block).

Exit status: 0 when every comparison on the demo model matched and every family that llama.cpp
supports matched; 1 otherwise. Families report their own results and never stop the run.
`--lenient-quantized`: DIFF rows of Q4_0/Q8_0 files are reported but do not fail the run (F16
stays strict). llama.cpp's CPU backend rounds the activations to 8 bits (Q8_0) before every
Q4_0/Q8_0 matmul, Unmask keeps them in f32, and on the tiny demo model that moves logits by up to
~0.5: enough, now and then, to swap a close top two (README, "llama.cpp interoperability").

Environment: LLAMA_CPP_PYTHON_VERSION (0.3.36), LLAMA_CPP_CACHE (target/llama-cpp),
LLAMA_CPP_BUILD ($LLAMA_CPP_CACHE/build), UNMASK_BIN (target/debug/unmask, built when unset),
JOBS (2), UNMASK_FLAGS (extra `unmask generate` flags, e.g. "--cpu").
"""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("LLAMA_CPP_PYTHON_VERSION", "0.3.36")
CACHE = Path(os.environ.get("LLAMA_CPP_CACHE", REPO / "target" / "llama-cpp"))
BUILD = Path(os.environ.get("LLAMA_CPP_BUILD", CACHE / "build"))
JOBS = os.environ.get("JOBS", "2")
WORK = CACHE / "work"
NICE = ["nice", "-n", "19"]

# Prompts from README.md and models/README.md (the demo model's tasks).
PROMPTS = [
    "Mia has 12 apples and buys 30 more. How many apples does she have now?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Who is Tom's mother?",
    "Write a sentence about the sea.",
]
GEN = 32  # answer positions for the block settings
GEN_AR = 16  # answer positions for one-token blocks (one forward pass per token)
# llama.cpp knows these diffusion architectures (src/llama-arch.cpp, llm_arch_is_diffusion).
LLAMA_CPP_ARCHES = {"llada", "llada-moe", "dream", "rnd1"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace", **kw)


# ---------------------------------------------------------------- llama.cpp: source and build


def download_sdist(tarball):
    """The sdist straight from PyPI's simple index, checked against the index's sha256 (`pip
    download` of an sdist first prepares its metadata, which here built CMake from source)."""
    import hashlib
    import urllib.request

    log(f"== downloading {tarball.name} from PyPI into {CACHE}")
    index = urllib.request.urlopen("https://pypi.org/simple/llama-cpp-python/", timeout=60).read().decode()
    m = re.search(r'href="(https://[^"#]*/' + re.escape(tarball.name) + r')#sha256=([0-9a-f]{64})"', index)
    if not m:
        sys.exit(f"PyPI lists no {tarball.name} (LLAMA_CPP_PYTHON_VERSION={VERSION})")
    data = urllib.request.urlopen(m.group(1), timeout=600).read()
    if hashlib.sha256(data).hexdigest() != m.group(2):
        sys.exit(f"{tarball.name}: the download does not match PyPI's sha256")
    part = tarball.with_name(tarball.name + ".part")
    part.write_bytes(data)
    part.rename(tarball)


def llama_source():
    tarball = CACHE / f"llama_cpp_python-{VERSION}.tar.gz"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not tarball.exists():
        download_sdist(tarball)
    src = CACHE / f"llama_cpp_python-{VERSION}"
    if not (src / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        log(f"== extracting {tarball.name}")
        with tarfile.open(tarball) as t:
            t.extractall(CACHE)
    src = src / "vendor" / "llama.cpp"
    # The sdist has no git metadata: the llama.cpp commit is the one its CHANGELOG names.
    changelog = (src.parents[1] / "CHANGELOG.md").read_text(errors="replace")
    m = re.search(r"## \[" + re.escape(VERSION) + r"\]\s+- feat: update llama.cpp to (\S+)", changelog)
    ggml = re.findall(r"set\(GGML_VERSION_(?:MAJOR|MINOR|PATCH) (\d+)\)", (src / "ggml" / "CMakeLists.txt").read_text())
    return src, (m.group(1) if m else "unknown commit"), ".".join(ggml)


def ensure_tool(name):
    if shutil.which(name):
        return
    log(f"== pip install {name}")
    run([sys.executable, "-m", "pip", "install", name])
    if not shutil.which(name):
        sys.exit(f"{name} is needed to build llama.cpp")


def build_llama(src):
    ensure_tool("cmake")
    ensure_tool("ninja")
    BUILD.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not (BUILD / "CMakeCache.txt").exists():
        flags = [
            "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON",
            "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF",
            "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF",
        ]  # fmt: skip
        r = run(NICE + ["cmake", "-S", src, "-B", BUILD] + flags)
        if r.returncode:
            sys.exit(f"cmake failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    log(f"== building llama-diffusion-cli and llama-tokenize in {BUILD} (-j{JOBS}, nice 19)")
    r = run(NICE + ["cmake", "--build", BUILD, "--target", "llama-diffusion-cli", "llama-tokenize", "-j", JOBS])
    if r.returncode:
        sys.exit(f"llama.cpp build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    # llama.cpp's logger is a thread whose last lines can be lost at exit (its singleton is leaked
    # on purpose, common/log.cpp), and the answer is the last line: a library whose destructor
    # waits 0.3 s at exit gives that thread time to write it.
    delay = BUILD / "exit_delay.so"
    if not delay.exists():
        c = BUILD / "exit_delay.c"
        c.write_text("#include <unistd.h>\n__attribute__((destructor)) static void exit_delay(void) { usleep(300000); }\n")
        r = run(["cc", "-shared", "-fPIC", "-O2", "-o", delay, c])
        if r.returncode:
            sys.exit(f"cc exit_delay.so failed: {r.stderr}")
    os.environ["UNMASK_INTEROP_PRELOAD"] = str(delay)
    return BUILD / "bin" / "llama-diffusion-cli", BUILD / "bin" / "llama-tokenize", time.time() - t0


def build_unmask():
    if os.environ.get("UNMASK_BIN"):
        return Path(os.environ["UNMASK_BIN"])
    log("== cargo build --bin unmask (nice 19)")
    r = subprocess.run(NICE + ["cargo", "build", "--bin", "unmask", "-j", JOBS], cwd=REPO)
    if r.returncode:
        sys.exit("cargo build failed")
    return REPO / "target" / "debug" / "unmask"


# ---------------------------------------------------------------- GGUF metadata (no dependencies)


def gguf_meta(path):
    """The metadata of a GGUF file (arrays of strings kept, other arrays skipped)."""
    f = open(path, "rb")
    if f.read(4) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    version, _n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def string():
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n).decode("utf-8", "replace")

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = struct.unpack("<IQ", f.read(12))
            if et == 8:
                return [string() for _ in range(n)]
            size = struct.calcsize(scalar[et])
            return list(struct.unpack("<" + scalar[et][1] * n, f.read(size * n)))
        fmt = scalar[t]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    meta = {}
    for _ in range(n_kv):
        k = string()
        (t,) = struct.unpack("<I", f.read(4))
        meta[k] = value(t)
    return meta


# llama.cpp's fallback when a GGUF has no chat template (common/chat.cpp, CHATML_TEMPLATE_SRC).
CHATML = (
    "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\\n' -}}\n{%- endif -%}"
)


def chat_prompt(meta, prompt):
    try:
        import jinja2
    except ImportError:
        run([sys.executable, "-m", "pip", "install", "jinja2"])
        import jinja2
    tokens = meta.get("tokenizer.ggml.tokens", [])

    def tok(key):
        i = meta.get(key)
        return tokens[i] if i is not None and i < len(tokens) else ""

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(meta.get("tokenizer.chat_template") or CHATML)
    bos, eos = tok("tokenizer.ggml.bos_token_id"), tok("tokenizer.ggml.eos_token_id")
    text = tmpl.render(messages=[{"role": "user", "content": prompt}], add_generation_prompt=True, bos_token=bos, eos_token=eos)
    # As common_chat_templates_apply: the tokenizer adds BOS/EOS itself when the vocabulary asks.
    if meta.get("tokenizer.ggml.add_bos_token") and bos and text.startswith(bos):
        text = text[len(bos) :]
    if meta.get("tokenizer.ggml.add_eos_token") and eos and text.endswith(eos):
        text = text[: -len(eos)]
    return text


def clean_spaces(text):
    """llama.cpp's detokenizer clean-up for BPE vocabularies (`clean_spaces`, llama-vocab.cpp): no
    space before ?!., or around a lone apostrophe, none before 's 'm 're 've."""
    t = bytearray(text.encode())
    out = bytearray(t[:1])
    for i in range(1, len(t)):
        if t[i - 1] == 32 and t[i] in b"?!.,":
            out.pop()
        out.append(t[i])
    t, out, i = out, bytearray(out[:1]), 1
    while i < len(t):
        x = t[i]
        if x == 39 and i + 1 < len(t) and t[i - 1] == 32 and t[i + 1] == 32:
            out.pop()
            t[i + 1] = 0
            out.append(x)
            i += 2
            continue
        out.append(x)
        i += 1
    t, out = out, bytearray(out[:1])
    for i in range(1, len(t)):
        x = t[i]
        if t[i - 1] == 32 and x == 39 and i + 1 < len(t):
            x1 = t[i + 1]
            if x1 in b"sm" or (i + 2 < len(t) and bytes([x1, t[i + 2]]) in (b"re", b"ve")):
                out.pop()
        out.append(x)
    return out.replace(b"\0", b"").decode(errors="replace")


# Strings whose tokenization must agree (numbers above all: GPT-2's pre-tokenizer keeps digit runs
# together where the demo tokenizer splits them, harmless only without digit-digit merges).
TOKENIZER_TEXTS = PROMPTS + [
    "12345 + 67890 = 80235", "1,000,000 and 3.14159; x2 2x 007 a1b2c3", " 42 ", "19.5% of $1200 is 234",
    "  99  bottles\n\n\t 1 2  3   4", "\u00b2\u00b3 \u00bd \u0663\u0664 1st 2nd 10th", "It's 5 o'clock; we'll see 2024-12-02T05:34.",
    "Who is Tom's mother? Whose mother is Ann?", "The [MASK] sat on the mat.", "  leading and trailing  ",
    "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001f600 \u2014 \u2018quoted\u2019", "a\r\nb\rc", "tab\tsep\u00a0nbsp", "'s 't 're 've 'm 'll 'd",
    "Mia has 12 apples and buys 30 more.\n\n42 - 7 = 35 so 35 + 1 = 36", "0.5 0.25 0.125 1e10 -3 +4", "9999999999999999999999",
]


def tokenizer_rows(name, llama):
    """llama-tokenize against the HF tokenizers library on the demo's tokenizer.json."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return [(name, "-", "tokenizer", "skip", "pip install tokenizers to compare tokenizations")]
    hf = Tokenizer.from_file(str(REPO / "models" / "demo" / "tokenizer.json"))
    bad = []
    for text in TOKENIZER_TEXTS:
        want, got = hf.encode(text, add_special_tokens=False).ids, llama.tokenize(text)
        if want != got:
            bad.append(f"{text!r}: tokenizers {want} llama.cpp {got}")
    if bad:
        return [(name, "-", "tokenizer", "DIFF", "; ".join(bad)[:1500])]
    return [(name, "-", "tokenizer", "same", f"{len(TOKENIZER_TEXTS)} texts tokenized alike by llama-tokenize and HF tokenizers")]


# ---------------------------------------------------------------- the two programs


class Llama:
    def __init__(self, cli, tokenize, model):
        self.cli, self.tokenize_bin, self.model = cli, tokenize, model

    def tokenize(self, text):
        r = run([self.tokenize_bin, "-m", self.model, "-p", text, "--ids"])
        m = re.search(r"^\[([0-9, ]*)\]\s*$", r.stdout, re.M)
        if r.returncode or not m:
            errors = [line for line in r.stderr.splitlines() if " E " in line or "error" in line]
            raise RuntimeError(f"llama.cpp cannot load it: {(errors or [r.stderr.strip()[-600:]])[0]}")
        return [int(x) for x in m.group(1).split(",") if x.strip()]

    def diffuse(self, prompt, ub, extra):
        cmd = [self.cli, "-m", self.model, "-p", prompt, "-ub", ub, "-b", ub, "-c", max(ub, 256), "-t", os.environ.get("THREADS", "2")]
        cmd += ["--temp", "0", "--top-k", "1", "--top-p", "1", "--seed", "0", "--diffusion-algorithm", "4"] + extra
        # Its log (stderr, each call prefixed by a timestamp) ends "total time: ...", "\n<answer>\n".
        # Should the logger still lose them (see build_llama), run again.
        env = dict(os.environ, LD_PRELOAD=os.environ.get("UNMASK_INTEROP_PRELOAD", ""))
        for _ in range(8):
            r = run(cmd, env=env)
            out = r.stdout + r.stderr
            if "diffusion generation failed" in out:
                return None
            m = re.search(r"total time: [^\n]*\n(?:[0-9.]+ I )?\n(.*)\n\Z", r.stderr, re.S)
            if r.returncode or m:
                break
        if r.returncode or not m:
            raise RuntimeError(f"llama-diffusion-cli exited {r.returncode}: {out.strip()[-1500:]}")
        return m.group(1)

    def prompt_length_is(self, prompt, n):
        """llama-diffusion-cli generates iff -ub exceeds its prompt length: probe n and n + 1."""
        probe = ["--diffusion-eps", "0.001", "--diffusion-steps", "1"]
        return self.diffuse(prompt, n, probe) is None and self.diffuse(prompt, n + 1, probe) is not None


def unmask_generate(bin_, model, prompt, gen, block, steps, ids=None):
    """`unmask generate --chat --prompt prompt`, or on the prompt token ids `ids` when given."""
    asked = ["--prompt-tokens", ",".join(map(str, ids))] if ids else ["--chat", "--prompt", prompt]
    cmd = [bin_, "generate", "--model", model] + asked + ["--gen-length", gen, "--block-length", block, "--steps", steps]
    # LLaDA's even schedule and low-confidence remasking for every family (Dream and RND1 default
    # to their own), so that one step per block commits the whole block, as in llama.cpp.
    cmd += ["--schedule", "even", "--temperature", "0", "--cache", "none", "--remasking", "low_confidence", "--no-early-stop", "--json"]
    cmd += os.environ.get("UNMASK_FLAGS", "").split()
    r = run(cmd)
    if r.returncode:
        raise RuntimeError(f"unmask generate: {r.stderr.strip()[-800:]}")
    return json.loads(r.stdout)


def settings(n_input):
    """(name, answer length, unmask block and steps, llama.cpp block and steps) where both samplers
    commit the same positions: one step per block, or one-token blocks."""
    out = []
    ub = n_input + GEN
    out.append((f"1 block of {GEN}, 1 step", GEN, GEN, 1, ub, 1))
    b = min(16, n_input & -n_input)  # the largest power of two dividing the prompt length, up to 16
    if b >= 2:
        out.append((f"{GEN // b} blocks of {b}, 1 step each", GEN, b, GEN // b, b, ub // b))
    else:
        out.append((f"blocks of 2+ (prompt length {n_input} is odd)", None, 0, 0, 0, 0))
    out.append((f"{GEN_AR} blocks of 1 (left to right)", GEN_AR, 1, GEN_AR, 1, n_input + GEN_AR))
    return out


def check_model(name, model, llama_bins, unmask):
    """Rows of (model, prompt, setting, result, detail) for one GGUF file."""
    rows = []
    try:
        meta = gguf_meta(model)
    except Exception as e:
        return [(name, "-", "read", "FAIL", str(e))]
    arch = meta.get("general.architecture", "?")
    if arch not in LLAMA_CPP_ARCHES:
        return [(name, "-", "load", "n/a", f"architecture {arch!r} is not one llama.cpp runs ({', '.join(sorted(LLAMA_CPP_ARCHES))})")]
    llama = Llama(*llama_bins, model)
    if name.startswith("demo"):
        try:
            rows += tokenizer_rows(name, llama)
        except Exception as e:
            return rows + [(name, "-", "load", "FAIL", str(e)[-400:])]
    unmask_ran = False
    for p in PROMPTS:
        short = p if len(p) <= 24 else p[:21] + "..."
        try:
            text = chat_prompt(meta, p)
            ids = llama.tokenize(text)
            if not llama.prompt_length_is(p, len(ids)):
                rows.append((name, short, "prompt", "FAIL", f"llama-diffusion-cli's prompt is not the {len(ids)} tokens of the rendered template"))
                continue
        except Exception as e:
            rows.append((name, short, "load", "FAIL", str(e)[-400:]))
            return rows
        same_prompt = True
        for label, gen, block, steps, lblock, lsteps in settings(len(ids)):
            if gen is None:
                rows.append((name, short, label, "skip", "llama.cpp's blocks must divide prompt + answer"))
                continue
            try:
                u = unmask_generate(unmask, model, p, gen, block, steps, None if same_prompt else ids)
                unmask_ran = True
                if u["prompt_tokens"] != ids:
                    # `unmask generate --chat` builds another prompt than the GGUF's template: say
                    # so, then compare the generations on llama.cpp's prompt tokens.
                    rows.append((name, short, "chat prompt", "DIFF", f"unmask --chat {u['prompt_tokens']} llama.cpp {ids}"))
                    same_prompt = False
                    u = unmask_generate(unmask, model, p, gen, block, steps, ids)
            except Exception as e:
                if not unmask_ran:  # it cannot run this model at all: one row says so
                    return rows + [(name, "-", "unmask", "FAIL", str(e)[-400:])]
                rows.append((name, short, label, "FAIL", str(e)[-400:]))
                continue
            try:
                t0 = time.time()
                got = llama.diffuse(p, len(ids) + gen, ["--diffusion-block-length", lblock, "--diffusion-steps", lsteps])
                secs = time.time() - t0
            except Exception as e:
                rows.append((name, short, label, "FAIL", str(e)[-400:]))
                continue
            want = u["text"]
            if got in (want, clean_spaces(want)):
                rows.append((name, short, label, "same", f"{gen} tokens, prompt {len(ids)} tokens ({secs:.1f} s in llama.cpp): {want[:40]!r}"))
            else:
                rows.append((name, short, label, "DIFF", f"unmask {want!r} llama.cpp {got!r}"))
    return rows


def main():
    src, commit, ggml = llama_source()
    log(f"== llama.cpp: llama-cpp-python {VERSION} sdist, {commit}, ggml {ggml}")
    cli, tokenize, secs = build_llama(src)
    log(f"== llama.cpp build: {secs:.0f} s")
    unmask = build_unmask()
    WORK.mkdir(parents=True, exist_ok=True)
    models = []
    for q in ("f16", "q8_0", "q4_0"):
        converted = WORK / f"demo-{q}.gguf"
        r = run([unmask, "convert", REPO / "models" / "demo", "--out", converted, "--quant", q])
        if r.returncode:
            sys.exit(f"unmask convert failed: {r.stderr}")
        models.append((f"demo {q}, converted now", converted))
    models.append(("demo q4_0, shipped", REPO / "models" / "demo-q4_0.gguf"))
    families = sorted((REPO / "tests" / "data" / "families").glob("*/model.gguf"))
    models += [(f"family {f.parent.name}", f) for f in families]
    rows = []
    for name, model in models:
        log(f"== {name}: {model}")
        for row in check_model(name, model, (cli, tokenize), unmask):
            log("   " + " | ".join(row))
            rows.append(row)
    print(f"llama.cpp: llama-cpp-python {VERSION} sdist (vendor/llama.cpp = {commit}, ggml {ggml}); unmask: {unmask}")
    print("| model | prompt | setting | result | detail |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(x.replace("|", "\\|").replace("\n", "\\n") for x in row) + " |")
    lenient = "--lenient-quantized" in sys.argv
    bad = [r for r in rows if r[3] == "FAIL" or (r[3] == "DIFF" and not (lenient and re.search(r"q4_0|q8_0", r[0])))]
    demo_ok = any(r[0].startswith("demo") and r[3] == "same" for r in rows) and not any(r[0].startswith("demo") for r in bad)
    same = sum(r[3] == "same" for r in rows)
    print(f"\n{same} passed, {len(bad)} failed")
    for fam in sorted({r[0] for r in rows if r[0].startswith("family")}):
        res = [r[3] for r in rows if r[0] == fam]
        state = "n/a (llama.cpp lacks the architecture)" if res == ["n/a"] else ("ok" if all(x in ("same", "skip") for x in res) else "MISMATCH/FAIL")
        print(f"{fam}: {state}")
    return 0 if demo_ok and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
