//! The fuzz entry points: one function per parser of untrusted bytes, each feeding the input
//! through the same public API the loaders, the CLI and the page use, and asserting that it
//! returns (never panics) and that every refusal is an `Err` with a message. The libFuzzer
//! targets (`fuzz/fuzz_targets/`) and the native regression and smoke test
//! (`tests/fuzz_regressions.rs`) both call these.

use unmask::dgemma::index::DgIndex;
use unmask::dgemma::sampler::DgSettings;
use unmask::dgemma::DgConfig;
use unmask::model::gguf::Gguf;
use unmask::model::gguf_tokenizer::{tokenizer_from_gguf, tokenizer_metadata};
use unmask::model::index::{read_index, SafetensorsHeader};
use unmask::model::source::ByteSource;
use unmask::model::{ModelConfig, ModelIndex, TextTokenizer};
use unmask::request::Request;
use unmask::sampler::text::{chat_messages, parse_infill, parse_pin, Message};

/// A target's entry point: one input, whole.
pub type Target = fn(&[u8]);

/// Every target by name: the folder names of `tests/data/fuzz/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("gguf", gguf),
    ("gguf_tokenizer", gguf_tokenizer),
    ("safetensors", safetensors),
    ("shard_index", shard_index),
    ("config", config),
    ("tokenizer_json", tokenizer_json),
    ("request", request),
    ("request_json", request_json),
];

/// The family configs a safetensors input is indexed against (its selector byte picks one).
const CONFIGS: &[&str] = &[
    include_str!("../../models/demo/config.json"),
    include_str!("../../tests/data/families/dream/config.json"),
    include_str!("../../tests/data/families/llada_moe/config.json"),
    include_str!("../../tests/data/families/llada2/config.json"),
    include_str!("../../tests/data/families/diffusion_gemma/config.json"),
];

const DEMO_TOKENIZER: &[u8] = include_bytes!("../../models/demo/tokenizer.json");

/// A refusal must say what is wrong: a message of some length that does not stop at a colon.
fn clear<T>(r: &unmask::Result<T>) {
    if let Err(e) = r {
        let m = e.to_string();
        assert!(m.trim().len() >= 8 && !m.trim_end().ends_with(':'), "unclear error message {m:?}");
    }
}

/// Runs a future that never waits (every `ByteSource` here answers at once).
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a read from memory did not finish at once"),
    }
}

/// Files that are an input's bytes followed by `extra` more bytes: a claimed length, as a large
/// file on disk is read from its first bytes. Reads past the input give zeros when `zeros`,
/// else an error (a file that shrank).
struct Claimed<'a> {
    files: Vec<(&'a [u8], u64)>,
    zeros: bool,
}

impl ByteSource for Claimed<'_> {
    fn files(&self) -> usize {
        self.files.len()
    }
    fn name(&self, file: usize) -> String {
        format!("fuzz-input-{file}")
    }
    fn len(&self, file: usize) -> u64 {
        self.files[file].0.len() as u64 + self.files[file].1
    }
    async fn read(&self, file: usize, offset: u64, len: usize) -> unmask::Result<Vec<u8>> {
        let (bytes, _) = self.files[file];
        let end = offset.checked_add(len as u64).filter(|&e| e <= self.len(file));
        let Some(end) = end else { return Err(unmask::Error::model(self.name(file), "read past the end")) };
        if end <= bytes.len() as u64 {
            return Ok(bytes[offset as usize..end as usize].to_vec());
        }
        if !self.zeros {
            return Err(unmask::Error::model(self.name(file), "read past the fuzz input"));
        }
        let mut out = bytes.get(offset.min(bytes.len() as u64) as usize..).unwrap_or_default().to_vec();
        out.resize(len, 0);
        Ok(out)
    }
}

/// Splits `[u64 LE: bytes the file has after these][the file's first bytes]`; the claim is
/// capped at 1 TiB.
fn claimed(data: &[u8]) -> Option<(u64, &[u8])> {
    let (n, rest) = data.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*n).min(1 << 40), rest))
}

/// A GGUF header and tensor table, and everything read from it: the model index (config and
/// tensor shapes of every family), DiffusionGemma's config and settings, the embedded tokenizer,
/// and the header-only reader over a byte source. Input: `claimed` framing of a GGUF prefix.
pub fn gguf(data: &[u8]) {
    let Some((extra, bytes)) = claimed(data) else { return };
    let len = bytes.len() as u64 + extra;
    let parsed = Gguf::parse_prefix("fuzz.gguf", bytes, len);
    clear(&parsed);
    if let Ok(Some(g)) = &parsed {
        for (_, v) in &g.metadata {
            let _ = v.summary();
        }
        for t in &g.tensors {
            clear(&g.tensor_range(t));
        }
        clear(&ModelIndex::from_gguf(g));
        clear(&DgIndex::from_gguf(g, None));
        clear(&DgSettings::from_gguf(g));
        if let Some(info) = g.tensor("rope_freqs.weight") {
            clear(&DgIndex::from_gguf(g, Some(info.dims[0] as usize / 2)));
        }
    }
    // The whole file in memory parses as its prefix did.
    if extra == 0 {
        let whole = Gguf::parse("fuzz.gguf", bytes);
        clear(&whole);
        assert_eq!(whole.is_ok(), matches!(parsed, Ok(Some(_))), "parse and parse_prefix disagree on a whole file");
    }
    // The loaders' path: the header read from a source in growing prefixes (past the input:
    // zeros, at most 4 MiB of them).
    let src = Claimed { files: vec![(bytes, extra.min(4 << 20))], zeros: true };
    match now(read_index(&src, None)) {
        Ok((_, tok)) => clear(&tok),
        e => clear(&e),
    }
    clear(&now(DgIndex::read(&src, None)));
}

/// The tokenizer embedded in a GGUF's metadata, rebuilt and used on a short text. Input: as
/// `gguf`.
pub fn gguf_tokenizer(data: &[u8]) {
    let Some((extra, bytes)) = claimed(data) else { return };
    let Ok(Some(g)) = Gguf::parse_prefix("fuzz.gguf", bytes, bytes.len() as u64 + extra) else { return };
    let tok = tokenizer_from_gguf(&g);
    clear(&tok);
    if let Ok(Some(t)) = tok {
        use_tokenizer(&t);
    }
}

fn use_tokenizer(t: &TextTokenizer) {
    let ids = t.encode("Hello, world! 12345 <|mdm_mask|> naïve 東京\n\tend");
    clear(&ids);
    let n = t.vocab_size() as u32;
    let mut ids = ids.unwrap_or_default();
    ids.extend([0, 1, n.saturating_sub(1), n, u32::MAX]);
    clear(&t.decode(&ids, true));
    clear(&t.decode(&ids, false));
    let _ = TextTokenizer::piece(Some(t), n.saturating_sub(1));
}

/// A safetensors shard's header, then the model index against one of the family configs.
/// Input: `[selector byte][claimed framing of the shard's first bytes]`.
pub fn safetensors(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    let Some((extra, bytes)) = claimed(rest) else { return };
    let len = bytes.len() as u64 + extra;
    let n = SafetensorsHeader::header_len("fuzz.safetensors", bytes, len);
    clear(&n);
    let h = SafetensorsHeader::parse("fuzz.safetensors", bytes, len);
    clear(&h);
    let config = CONFIGS[which as usize % CONFIGS.len()];
    if let Ok(h) = h {
        let shards = [h];
        clear(&ModelIndex::from_safetensors("config.json", config, &shards));
        clear(&DgIndex::from_safetensors("config.json", config, &shards));
    }
    // The loaders' path: headers read from a source (past the input: an error).
    let src = Claimed { files: vec![(bytes, extra)], zeros: false };
    match now(read_index(&src, Some(("config.json", config)))) {
        Ok((_, tok)) => clear(&tok),
        e => clear(&e),
    }
    clear(&now(DgIndex::read(&src, Some(("config.json", config)))));
}

/// model.safetensors.index.json: the shard names.
pub fn shard_index(data: &[u8]) {
    let names = unmask::model::files::shard_names("model.safetensors.index.json", data);
    clear(&names);
    for n in names.iter().flatten() {
        assert!(!n.contains('/') && !n.contains('\\') && !n.starts_with('.'), "shard name {n:?} let through");
    }
}

/// config.json of every family (HF and DiffusionGemma) and DiffusionGemma's
/// generation_config.json.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    clear(&ModelConfig::from_hf_json("config.json", text));
    clear(&DgConfig::from_json("config.json", text));
    clear(&DgSettings::resolve(None, Some(text)));
}

/// tokenizer.json: loaded, used on a short text, and converted to GGUF metadata and back.
pub fn tokenizer_json(data: &[u8]) {
    let t = TextTokenizer::from_bytes("tokenizer.json", data);
    clear(&t);
    if let Ok(t) = &t {
        use_tokenizer(t);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let meta = tokenizer_metadata("tokenizer.json", text, Some("{{ messages }}"));
    clear(&meta);
    if let Ok(metadata) = meta {
        let g = Gguf { file: "fuzz.gguf".into(), version: 3, metadata, tensors: vec![], data: &[], data_offset: 0, data_len: 0 };
        let back = tokenizer_from_gguf(&g);
        clear(&back);
        if let Ok(Some(t)) = back {
            use_tokenizer(&t);
        }
    }
}

/// The demo model's config and tokenizer, which requests are prepared against.
fn demo() -> &'static (ModelConfig, TextTokenizer) {
    static DEMO: std::sync::OnceLock<(ModelConfig, TextTokenizer)> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let cfg = ModelConfig::from_hf_json("config.json", CONFIGS[0]).expect("the demo config");
        (cfg, TextTokenizer::from_bytes("tokenizer.json", DEMO_TOKENIZER).expect("the demo tokenizer"))
    })
}

/// A request as the CLI and the page state it: prompt or infill text with markers, pins, and
/// small sampler settings, prepared into a canvas for the demo model. Input: `[flags][span]
/// [gen length][block][steps]` then UTF-8 text; its `\0`-separated pieces after the first are
/// pins.
pub fn request(data: &[u8]) {
    let Some((&[flags, span, gen, block, steps], rest)) = data.split_first_chunk::<5>() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut pieces = text.split('\0');
    let main = pieces.next().unwrap_or_default().to_string();
    let pins: Vec<String> = pieces.map(str::to_string).collect();
    clear(&parse_infill(&main, span as usize));
    for p in &pins {
        clear(&parse_pin(p));
    }
    let (cfg, tok) = demo();
    let mut r = Request { pins, chat: flags & 1 != 0, ..Request::default() };
    match flags >> 1 & 3 {
        0 => r.prompt = Some(main),
        1 => r.infill = Some(main),
        2 => r.messages = Some(vec![Message { role: "user".into(), content: main }]),
        _ => r.prompt_tokens = Some(main.bytes().map(|b| b as u32 * 17).collect()),
    }
    r.span_length = (flags & 8 != 0).then_some(span as usize);
    r.options.gen_length = gen as usize;
    r.options.block_length = if flags & 16 != 0 { block as usize } else { gen as usize };
    r.options.steps = steps as usize;
    let prepared = r.prepare(cfg, Some(tok));
    clear(&prepared);
    if let Ok(p) = prepared {
        assert!(p.canvas.tokens.len() <= cfg.max_sequence_length, "a canvas longer than the context");
    }
    clear(&r.prepare(cfg, None));
}

/// The server's request body as JSON (`unmask::request::Request`), prepared for the demo model,
/// and its chat messages in every family's format.
pub fn request_json(data: &[u8]) {
    let Ok(r) = serde_json::from_slice::<Request>(data) else { return };
    let (cfg, tok) = demo();
    let prepared = r.prepare(cfg, Some(tok));
    clear(&prepared);
    if let Ok(p) = prepared {
        assert!(p.canvas.tokens.len() <= cfg.max_sequence_length, "a canvas longer than the context");
    }
    if let Some(m) = &r.messages {
        for f in unmask::model::families::FAMILIES {
            clear(&chat_messages(&f.chat, m));
        }
        clear(&unmask::dgemma::messages_tokens(tok, m));
    }
}
