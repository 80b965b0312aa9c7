//! The tokenizer inside a GGUF file, as llama.cpp's converter writes it for GPT-2 style BPE
//! vocabularies (`tokenizer.ggml.model = "gpt2"`, tokens, token types, merges, pre-tokenizer
//! name, special ids), written from a HF tokenizer.json and read back into one, so that a lone
//! .gguf file is enough to run a model.

use crate::error::{Error, Result};
use crate::model::gguf::{Gguf, Value};
use crate::model::TextTokenizer;
use serde_json::{json, Value as Json};

/// Pre-tokenizer split patterns by llama.cpp's `tokenizer.ggml.pre` names (and ours).
const PRE_TOKENIZERS: &[(&str, &str)] = &[
    ("gpt-2", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
    ("llama-bpe", r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    // The demo model's: GPT-2's, with numbers split into single digits.
    ("unmask-digits", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
];

const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// The split pattern of a tokenizer.json pre-tokenizer, if it is ByteLevel with a regex.
fn split_pattern(pre: &Json) -> Option<String> {
    match pre["type"].as_str()? {
        "ByteLevel" if pre["use_regex"].as_bool().unwrap_or(true) => Some(PRE_TOKENIZERS[0].1.to_string()),
        "Sequence" => {
            let items = pre["pretokenizers"].as_array()?;
            let split = items.iter().find(|p| p["type"] == "Split")?;
            items.iter().any(|p| p["type"] == "ByteLevel").then(|| split["pattern"]["Regex"].as_str().map(str::to_string))?
        }
        _ => None,
    }
}

/// GGUF metadata for a byte-level BPE tokenizer.json. `chat_template` is stored as
/// `tokenizer.chat_template` when given.
pub fn tokenizer_metadata(file: &str, tokenizer_json: &str, chat_template: Option<&str>) -> Result<Vec<(String, Value)>> {
    let bad = |m: &str| Error::model(file, m.to_string());
    let t: Json = serde_json::from_str(tokenizer_json).map_err(|e| bad(&format!("not valid JSON: {e}")))?;
    if t["model"]["type"] != "BPE" {
        return Err(bad("only BPE tokenizers can be embedded in GGUF here"));
    }
    let pattern = split_pattern(&t["pre_tokenizer"]).ok_or_else(|| bad("the pre-tokenizer is not byte-level BPE"))?;
    let pre = PRE_TOKENIZERS.iter().find(|p| p.1 == pattern).map(|p| p.0).ok_or_else(|| bad("its split pattern is not one of the known GGUF pre-tokenizers"))?;
    let vocab = t["model"]["vocab"].as_object().ok_or_else(|| bad("model.vocab is missing"))?;
    let mut tokens: Vec<Option<(String, i32)>> = Vec::new();
    let mut put = |id: usize, s: &str, ty: i32| {
        if tokens.len() <= id {
            tokens.resize(id + 1, None);
        }
        tokens[id] = Some((s.to_string(), ty));
    };
    for (s, id) in vocab {
        put(id.as_u64().ok_or_else(|| bad("a vocab id is not a number"))? as usize, s, TOKEN_NORMAL);
    }
    for a in t["added_tokens"].as_array().into_iter().flatten() {
        let id = a["id"].as_u64().ok_or_else(|| bad("an added token has no id"))? as usize;
        let ty = if a["special"].as_bool().unwrap_or(false) { TOKEN_CONTROL } else { TOKEN_USER_DEFINED };
        put(id, a["content"].as_str().unwrap_or_default(), ty);
    }
    let merges: Vec<Value> = t["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(p) => Value::Str(format!("{} {}", p[0].as_str().unwrap_or_default(), p[1].as_str().unwrap_or_default())),
            _ => Value::Str(String::new()),
        })
        .collect();
    let (strs, types): (Vec<Value>, Vec<Value>) = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            Some((s, ty)) => (Value::Str(s.clone()), Value::I32(*ty)),
            None => (Value::Str(format!("[PAD{i}]")), Value::I32(TOKEN_UNUSED)),
        })
        .unzip();
    let mut meta = vec![
        ("tokenizer.ggml.model".to_string(), Value::Str("gpt2".into())),
        ("tokenizer.ggml.pre".to_string(), Value::Str(pre.into())),
        ("tokenizer.ggml.tokens".to_string(), Value::Array(strs)),
        ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
        ("tokenizer.ggml.merges".to_string(), Value::Array(merges)),
        ("tokenizer.ggml.add_bos_token".to_string(), Value::Bool(false)),
    ];
    if let Some(c) = chat_template {
        meta.push(("tokenizer.chat_template".to_string(), Value::Str(c.into())));
    }
    Ok(meta)
}

/// Rebuilds a tokenizer from GGUF metadata, if the file embeds a GPT-2 style one.
pub fn tokenizer_from_gguf(g: &Gguf) -> Result<Option<TextTokenizer>> {
    let file = g.file.as_str();
    match g.get("tokenizer.ggml.model").and_then(Value::as_str) {
        None => return Ok(None),
        Some("gpt2") => {}
        Some(other) => return Err(Error::model(file, format!("embedded tokenizer {other:?} is not supported (GPT-2 style BPE is); put a tokenizer.json beside the model"))),
    }
    let pre = g.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("gpt-2");
    let pattern = PRE_TOKENIZERS
        .iter()
        .find(|p| p.0 == pre || (pre == "default" && p.0 == "gpt-2"))
        .map(|p| p.1)
        .ok_or_else(|| Error::model(file, format!("embedded tokenizer uses pre-tokenizer {pre:?}, which is not supported; put a tokenizer.json beside the model")))?;
    let list = |key: &str| match g.get(key) {
        Some(Value::Array(a)) => Ok(a.as_slice()),
        _ => Err(Error::model(file, format!("embedded tokenizer: `{key}` is missing"))),
    };
    let tokens = list("tokenizer.ggml.tokens")?;
    let types = list("tokenizer.ggml.token_type").unwrap_or(&[]);
    let merges = list("tokenizer.ggml.merges")?;
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, t) in tokens.iter().enumerate() {
        let s = t.as_str().ok_or_else(|| Error::model(file, "embedded tokenizer: a token is not a string"))?;
        let ty = types.get(id).and_then(|v| v.as_f64()).map(|v| v as i32).unwrap_or(TOKEN_NORMAL);
        if ty == TOKEN_UNUSED {
            continue;
        }
        vocab.insert(s.to_string(), id.into());
        if ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
            added.push(json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": ty == TOKEN_CONTROL}));
        }
    }
    let merges: Vec<Json> = merges
        .iter()
        .filter_map(|m| m.as_str())
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap_or((m, ""));
            json!([a, b])
        })
        .collect();
    let t = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    TextTokenizer::from_bytes(&format!("{file} (embedded tokenizer)"), t.to_string().as_bytes()).map(Some)
}
