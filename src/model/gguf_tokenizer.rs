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
    // The demo model's: GPT-2's, with numbers split into single digits. Only files written before
    // `digits_as_gpt2` name it; it is read as before.
    ("unmask-digits", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
];

/// The byte a GPT-2 byte-level character stands for (`bytes_to_unicode`'s inverse).
fn byte_level(c: char) -> Option<u8> {
    let printable = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    match c as u32 {
        b if printable(b) => Some(b as u8),
        n @ 0x100..=0x143 => (0u32..256).filter(|&b| !printable(b)).nth((n - 0x100) as usize).map(|b| b as u8),
        _ => None,
    }
}

/// Whether merging `a` and `b` (byte-level token strings) could join two numeric characters:
/// `a` ends with one (or with bytes that may end one) and `b` starts with one (or with the
/// incomplete start of a character that may be one). Unknown characters count as joining.
fn joins_numbers(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (a.chars().map(byte_level).collect::<Option<Vec<u8>>>(), b.chars().map(byte_level).collect::<Option<Vec<u8>>>()) else {
        return true;
    };
    let continuation = |x: &u8| (0x80..0xC0).contains(x);
    // The last character of `a`: from its last non-continuation byte.
    let left = match a.iter().rposition(|x| !continuation(x)) {
        None => true, // only continuation bytes: the end of some character, maybe a numeric one
        Some(i) => match std::str::from_utf8(&a[i..]) {
            Ok(s) => s.chars().next_back().is_some_and(char::is_numeric),
            Err(_) => false, // ends inside a character: the merge is within it
        },
    };
    let right = match b.first() {
        None => false,
        Some(x) if continuation(x) => false, // starts inside a character
        Some(_) => {
            let len = b.iter().skip(1).take_while(|x| continuation(x)).count() + 1;
            match std::str::from_utf8(&b[..len]) {
                Ok(s) => s.chars().next().is_some_and(char::is_numeric),
                Err(_) => true, // an incomplete first character: maybe a numeric one
            }
        }
    };
    left && right
}

/// The name written for the single-digit pattern: GPT-2's ("gpt-2", which llama.cpp knows) when
/// no merge joins two numeric characters, since then BPE inside GPT-2's number runs (` ?\p{N}+`)
/// gives exactly the tokens of the single-digit pre-tokens; our own name otherwise.
fn digits_as_gpt2(merges: &[(String, String)]) -> &'static str {
    if merges.iter().any(|(a, b)| joins_numbers(a, b)) {
        PRE_TOKENIZERS[2].0
    } else {
        PRE_TOKENIZERS[0].0
    }
}

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

/// The two tokens of a GGUF merge: non-empty and separated by exactly one space.
fn split_merge(m: &str) -> Option<(&str, &str)> {
    let (a, b) = m.split_once(' ')?;
    (!a.is_empty() && !b.is_empty() && !b.contains(' ')).then_some((a, b))
}

/// A metadata value that is an integer (of any width), for ids and token types.
fn integer(v: &Value) -> Option<i64> {
    match *v {
        Value::U8(x) => Some(x.into()),
        Value::I8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::I16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::I32(x) => Some(x.into()),
        Value::U64(x) => i64::try_from(x).ok(),
        Value::I64(x) => Some(x),
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
    let pre =
        PRE_TOKENIZERS.iter().find(|p| p.1 == pattern).map(|p| p.0).ok_or_else(|| bad("its split pattern is not one of the known GGUF pre-tokenizers"))?;
    let vocab = t["model"]["vocab"].as_object().ok_or_else(|| bad("model.vocab is missing"))?;
    let added_tokens = t["added_tokens"].as_array().map(Vec::as_slice).unwrap_or_default();
    // Ids index the token list written below (gaps become unused placeholders), so an id far
    // beyond the number of tokens is refused before anything is sized by it.
    let count = vocab.len() + added_tokens.len();
    let limit = 2 * count + 256;
    let check_id = |id: Option<u64>, what: &str| match id {
        Some(id) if id < limit as u64 => Ok(id as usize),
        Some(id) => Err(bad(&format!("{what} id {id} is far beyond the tokenizer's {count} tokens (ids must stay below {limit})"))),
        None => Err(bad(&format!("{what} id is missing or not a non-negative integer"))),
    };
    let mut entries = Vec::with_capacity(count);
    for (s, id) in vocab {
        entries.push((check_id(id.as_u64(), &format!("the vocab token {s:?}'s"))?, s.as_str(), TOKEN_NORMAL));
    }
    for (i, a) in added_tokens.iter().enumerate() {
        let id = check_id(a["id"].as_u64(), &format!("added token {i}'s"))?;
        let ty = if a["special"].as_bool().unwrap_or(false) { TOKEN_CONTROL } else { TOKEN_USER_DEFINED };
        entries.push((id, a["content"].as_str().unwrap_or_default(), ty));
    }
    let mut tokens: Vec<Option<(String, i32)>> = vec![None; entries.iter().map(|e| e.0 + 1).max().unwrap_or(0)];
    for (id, s, ty) in entries {
        tokens[id] = Some((s.to_string(), ty));
    }
    let mut pairs = Vec::new();
    for (i, m) in t["model"]["merges"].as_array().into_iter().flatten().enumerate() {
        let pair = match m {
            Json::String(s) => split_merge(s),
            Json::Array(p) => match p.as_slice() {
                [Json::String(a), Json::String(b)] => Some((a.as_str(), b.as_str())),
                _ => None,
            },
            _ => None,
        };
        match pair {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !a.contains(' ') && !b.contains(' ') => pairs.push((a.to_string(), b.to_string())),
            _ => return Err(bad(&format!("merge {i} ({m}) is not two tokens without spaces"))),
        }
    }
    let pre = if pre == PRE_TOKENIZERS[2].0 { digits_as_gpt2(&pairs) } else { pre };
    let merges: Vec<Value> = pairs.iter().map(|(a, b)| Value::Str(format!("{a} {b}"))).collect();
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
        Some(other) => {
            return Err(Error::model(
                file,
                format!("embedded tokenizer {other:?} is not supported (GPT-2 style BPE is); put a tokenizer.json beside the model"),
            ))
        }
    }
    let pre = g.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("gpt-2");
    let pattern = PRE_TOKENIZERS.iter().find(|p| p.0 == pre || (pre == "default" && p.0 == "gpt-2")).map(|p| p.1).ok_or_else(|| {
        Error::model(file, format!("embedded tokenizer uses pre-tokenizer {pre:?}, which is not supported; put a tokenizer.json beside the model"))
    })?;
    let bad = |m: String| Error::model(file, format!("embedded tokenizer: {m}; put a tokenizer.json beside the model"));
    let list = |key: &str, required: bool| match g.get(key) {
        Some(Value::Array(a)) => Ok(Some(a.as_slice())),
        None if !required => Ok(None),
        None => Err(bad(format!("`{key}` is missing"))),
        Some(_) => Err(bad(format!("`{key}` is not an array"))),
    };
    // Every count and id is checked before anything is sized or indexed by it.
    let tokens = list("tokenizer.ggml.tokens", true)?.unwrap_or_default();
    if tokens.is_empty() || tokens.len() > u32::MAX as usize {
        return Err(bad(format!("`tokenizer.ggml.tokens` has {} tokens", tokens.len())));
    }
    let types = list("tokenizer.ggml.token_type", false)?;
    if let Some(types) = types.filter(|t| t.len() != tokens.len()) {
        return Err(bad(format!("`tokenizer.ggml.token_type` has {} entries for {} tokens", types.len(), tokens.len())));
    }
    for (key, v) in &g.metadata {
        if key.starts_with("tokenizer.ggml.") && key.ends_with("_token_id") {
            match integer(v) {
                Some(id) if id >= 0 && (id as u64) < tokens.len() as u64 => {}
                _ => {
                    let shown = match v {
                        Value::U64(x) => x.to_string(),
                        _ => integer(v).map_or_else(|| v.summary(), |i| i.to_string()),
                    };
                    return Err(bad(format!("`{key}` = {shown} is not a token id (there are {} tokens)", tokens.len())));
                }
            }
        }
    }
    let merges = list("tokenizer.ggml.merges", true)?.unwrap_or_default();
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, t) in tokens.iter().enumerate() {
        let s = t.as_str().ok_or_else(|| bad(format!("token {id} is not a string")))?;
        let ty = match types.and_then(|t| t.get(id)) {
            None => TOKEN_NORMAL as i64,
            Some(v) => integer(v).ok_or_else(|| bad(format!("the type of token {id} is not an integer")))?,
        };
        if ty == TOKEN_UNUSED as i64 {
            continue;
        }
        vocab.insert(s.to_string(), id.into());
        if ty == TOKEN_CONTROL as i64 || ty == TOKEN_USER_DEFINED as i64 {
            added.push(json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": ty == TOKEN_CONTROL as i64}));
        }
    }
    let mut pairs: Vec<Json> = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let m = m.as_str().ok_or_else(|| bad(format!("merge {i} is not a string")))?;
        let (a, b) = split_merge(m).ok_or_else(|| bad(format!("merge {i} ({m:?}) is not two tokens separated by one space")))?;
        if let Some(t) = [a, b, &format!("{a}{b}")].into_iter().find(|t| !vocab.contains_key(*t)) {
            return Err(bad(format!("merge {i} ({m:?}) uses {t:?}, which is not in the vocabulary")));
        }
        pairs.push(json!([a, b]));
    }
    let merges = pairs;
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
