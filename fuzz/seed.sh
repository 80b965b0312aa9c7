#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora to fuzz/corpus/<target>/ from the repository's own model
# files and fixtures (nothing is downloaded; nothing here is committed): GGUF headers cut where
# the tensor data starts (with and without their tokenizer metadata), safetensors headers,
# configs, shrunken copies of the demo tokenizer, and small requests. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
rm -rf "$out"
mkdir -p "$out"
python3 - "$out" <<'PY'
import glob, json, os, struct, sys

out = sys.argv[1]
def put(target, name, data):
    os.makedirs(f"{out}/{target}", exist_ok=True)
    with open(f"{out}/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# --- GGUF: parse the header into (key, type, raw value bytes) and tensor records.
def gguf_parts(path):
    b = open(path, "rb").read()
    pos = 4
    ver, nt, nkv = struct.unpack_from("<IQQ", b, pos); pos += 20
    def skip_str(p):
        return p + 8 + struct.unpack_from("<Q", b, p)[0]
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def skip_val(t, p):
        if t in sizes: return p + sizes[t]
        if t == 8: return skip_str(p)
        it, n = struct.unpack_from("<IQ", b, p); p += 12
        for _ in range(n): p = skip_val(it, p)
        return p
    kvs = []
    for _ in range(nkv):
        k0 = pos; pos = skip_str(pos)
        key = b[k0 + 8:pos].decode()
        t = struct.unpack_from("<I", b, pos)[0]
        v0 = pos; pos = skip_val(t, pos + 4)
        kvs.append((key, b[k0:pos]))
    t0 = pos
    for _ in range(nt):
        pos = skip_str(pos); nd = struct.unpack_from("<I", b, pos)[0]; pos += 4 + 8 * nd + 12
    tensors = b[t0:pos]
    align = 32
    start = (pos + align - 1) // align * align
    return ver, nt, kvs, tensors, len(b) - start

def gguf_bytes(ver, nt, kvs, tensors):
    h = b"GGUF" + struct.pack("<IQQ", ver, nt, len(kvs)) + b"".join(r for _, r in kvs) + tensors
    return h + b"\0" * ((-len(h)) % 32)

claim = lambda n: struct.pack("<Q", n)
ggufs = ["models/demo-q4_0.gguf"] + sorted(glob.glob("tests/data/families/*/*.gguf"))
for path in ggufs:
    name = path.replace("/", "_")
    ver, nt, kvs, tensors, data_len = gguf_parts(path)
    plain = [kv for kv in kvs if not kv[0].startswith("tokenizer.")]
    put("gguf", name + ".notok", claim(data_len) + gguf_bytes(ver, nt, plain, tensors))
    # Only the tokenizer keys, no tensors, with the vocabulary cut to its first 300 tokens.
    tok = [kv for kv in kvs if kv[0].startswith("tokenizer.")]
    put("gguf_tokenizer", name + ".full", claim(0) + gguf_bytes(ver, 0, tok, b""))
put("gguf", "demo-full-header", claim(gguf_parts(ggufs[0])[4]) + gguf_bytes(*gguf_parts(ggufs[0])[:4]))

# --- tokenizer.json: the demo tokenizer, shrunk to its first N ids (merges that stay whole).
demo = json.load(open("models/demo/tokenizer.json"))
def shrink(t, n):
    t = json.loads(json.dumps(t))
    vocab = {s: i for s, i in t["model"]["vocab"].items() if i < n}
    t["model"]["vocab"] = vocab
    t["model"]["merges"] = [m for m in t["model"]["merges"] if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < n]
    return t
for n in (280, 320, 600):
    put("tokenizer_json", f"demo-{n}.json", json.dumps(shrink(demo, n)))
put("tokenizer_json", "demo-full.json", open("models/demo/tokenizer.json", "rb").read())

# The small GGUF tokenizer seeds are the shrunk tokenizer written as GGUF metadata.
def kv(key, t, payload):
    k = key.encode()
    return (key, struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + payload)
def s(x):
    x = x.encode(); return struct.pack("<Q", len(x)) + x
def arr(t, items):
    return struct.pack("<IQ", t, len(items)) + b"".join(items)
for n, pre in ((280, "unmask-digits"), (320, "gpt-2"), (300, "llama-bpe")):
    t = shrink(demo, n)
    toks = ["[PAD%d]" % i for i in range(n)]
    types = [5] * n
    for sym, i in t["model"]["vocab"].items(): toks[i], types[i] = sym, 1
    for a in t["added_tokens"]: toks[a["id"]], types[a["id"]] = a["content"], 3
    kvs = [kv("tokenizer.ggml.model", 8, s("gpt2")), kv("tokenizer.ggml.pre", 8, s(pre)),
           kv("tokenizer.ggml.tokens", 9, arr(8, [s(x) for x in toks])),
           kv("tokenizer.ggml.token_type", 9, arr(5, [struct.pack("<i", x) for x in types])),
           kv("tokenizer.ggml.merges", 9, arr(8, [s(a + " " + b) for a, b in t["model"]["merges"]])),
           kv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 0)),
           kv("tokenizer.ggml.padding_token_id", 4, struct.pack("<I", 0))]
    put("gguf_tokenizer", f"demo-{n}-{pre}", claim(0) + gguf_bytes(3, 0, kvs, b""))

# --- safetensors: [config selector][claimed rest][header], the selector naming entry.rs's CONFIGS.
select = {"models/demo": 0, "dream": 1, "llada_moe": 2, "llada2": 3, "diffusion_gemma": 4, "illada": 0, "rnd1": 2}
for path in ["models/demo/model.safetensors"] + sorted(glob.glob("tests/data/families/*/model.safetensors")):
    b = open(path, "rb").read()
    n = 8 + struct.unpack_from("<Q", b, 0)[0]
    key = next(k for k in select if k in path)
    put("safetensors", path.replace("/", "_"), bytes([select[key]]) + claim(len(b) - n) + b[:n])

# --- shard index JSON.
put("shard_index", "two.json", json.dumps({"metadata": {"total_size": 1234}, "weight_map": {
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
    "lm_head.weight": "model-00002-of-00002.safetensors"}}, indent=2))
put("shard_index", "path.json", '{"weight_map": {"a": "../model.safetensors", "b": ".hidden", "c": "x\\\\y"}}')
put("shard_index", "empty.json", '{"weight_map": {}}')

# --- config.json and generation_config.json.
for path in sorted(glob.glob("tests/data/families/*/*config*.json") + glob.glob("tests/data/configs/*.json")) + ["models/demo/config.json"]:
    put("config", path.replace("/", "_"), open(path, "rb").read())

# --- request: [flags][span][gen][block][steps] then text, pins after \0 (see entry::request).
reqs = [
    (0, 4, 32, 32, 32, "Once upon a time"),
    (1, 4, 64, 32, 64, "Mia has 12 apples and buys 30 more. How many?\0" "0:Once\0" "3: upon"),
    (2 | 8, 3, 0, 0, 8, "The [MASK] sat on the <mask:5>. [MASK] end"),
    (2, 4, 0, 0, 4, "no markers here <mask:0> [MASK"),
    (4 | 1, 4, 16, 16, 16, "Hello there"),
    (6 | 16, 4, 48, 16, 12, "tokens\0" "1:x"),
]
for i, (f, sp, g, bl, st, text) in enumerate(reqs):
    put("request", f"r{i}", bytes([f, sp, g, bl, st]) + text.encode())

# --- request JSON, as `unmask serve` and the page send it.
jreqs = [
    {"prompt": "Why is the sky blue?", "chat": True, "options": {"gen_length": 64, "block_length": 32, "steps": 64}},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "options": {"gen_length": 32, "steps": 32, "block_length": 32, "temperature": 0.5, "seed": 7}},
    {"infill": "def f(x):\n    return [MASK]\n<mask:6>", "span_length": 3},
    {"prompt_tokens": [1, 2, 3, 4000], "pins": ["0:Once", "5: time"], "options": {"gen_length": 16, "block_length": 8, "steps": 16, "cfg_scale": 1.5, "remasking": "random", "schedule": "timesteps", "eps": 0.001}},
    {"prompt": "x", "options": {"gen_length": 32, "block_length": 32, "steps": 32, "threshold": 0.9, "schedule": "block", "top_k": 5, "top_p": 0.9, "cache": "prefix"}},
]
for i, r in enumerate(jreqs):
    put("request_json", f"j{i}.json", json.dumps(r))
PY
du -sh "$out"/*
