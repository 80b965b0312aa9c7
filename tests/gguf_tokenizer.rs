//! Tokenizers embedded in GGUF files with broken metadata: each is refused with a message that
//! names the field (or the merge) and the problem, never a panic or an allocation sized by it.

use unmask::model::gguf::{Gguf, Value};
use unmask::model::gguf_tokenizer::{tokenizer_from_gguf, tokenizer_metadata};
use unmask::model::gguf_write::GgufWriter;

fn strs(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::Str(s.to_string())).collect())
}

/// A tiny GPT-2 style tokenizer's metadata: six tokens (the last a control token) and two merges.
fn good() -> Vec<(&'static str, Value)> {
    vec![
        ("tokenizer.ggml.model", Value::Str("gpt2".into())),
        ("tokenizer.ggml.pre", Value::Str("gpt-2".into())),
        ("tokenizer.ggml.tokens", strs(&["h", "e", "he", "l", "o", "<|mask|>"])),
        ("tokenizer.ggml.token_type", Value::Array([1, 1, 1, 1, 1, 3].into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.merges", strs(&["h e"])),
        ("tokenizer.ggml.mask_token_id", Value::U32(5)),
        ("tokenizer.ggml.eos_token_id", Value::U32(4)),
    ]
}

/// `good()` with `key` replaced by `value` (or removed when `None`), written and parsed as a GGUF.
fn read(key: &str, value: Option<Value>) -> unmask::Result<Option<unmask::model::TextTokenizer>> {
    let mut g = GgufWriter::default();
    let mut seen = false;
    for (k, v) in good() {
        if k == key {
            seen = true;
            match &value {
                Some(x) => g.meta(k, x.clone()),
                None => continue,
            };
        } else {
            g.meta(k, v);
        }
    }
    if !seen {
        if let Some(x) = value {
            g.meta(key, x);
        }
    }
    let bytes = g.to_bytes();
    let parsed = Gguf::parse("tok.gguf", &bytes).expect("the GGUF itself is well-formed");
    tokenizer_from_gguf(&parsed)
}

fn error(key: &str, value: Option<Value>) -> String {
    match read(key, value) {
        Ok(_) => panic!("{key}: accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_well_formed_embedded_tokenizer_reads_and_merges() {
    let t = read("", None).unwrap().expect("a tokenizer");
    assert_eq!(t.encode("he").unwrap(), vec![2], "the merge applies");
    assert_eq!(t.encode("hello").unwrap(), vec![2, 3, 3, 4]);
    assert_eq!(t.token_to_id("<|mask|>"), Some(5));
}

#[test]
fn broken_merges_are_refused_naming_the_merge() {
    let cases: Vec<(Value, &str)> = vec![
        (strs(&["h e", "he"]), "merge 1 (\"he\") is not two tokens separated by one space"),
        (strs(&["h  e"]), "merge 0 (\"h  e\") is not two tokens separated by one space"),
        (strs(&["h e", " h"]), "merge 1 (\" h\") is not two tokens separated by one space"),
        (strs(&["h e", "h e l"]), "merge 1 (\"h e l\") is not two tokens"),
        (strs(&["h e", "he x"]), "merge 1 (\"he x\") uses \"x\", which is not in the vocabulary"),
        (strs(&["l o"]), "merge 0 (\"l o\") uses \"lo\", which is not in the vocabulary"),
        (Value::Array(vec![Value::U32(1)]), "merge 0 is not a string"),
        (Value::U32(3), "`tokenizer.ggml.merges` is not an array"),
    ];
    for (merges, needle) in cases {
        let e = error("tokenizer.ggml.merges", Some(merges));
        assert!(e.starts_with("tok.gguf: embedded tokenizer: ") && e.contains(needle), "{needle:?} not in {e:?}");
    }
    assert!(error("tokenizer.ggml.merges", None).contains("`tokenizer.ggml.merges` is missing"));
}

#[test]
fn absurd_ids_and_counts_are_refused_before_use() {
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("tokenizer.ggml.eos_token_id", Some(Value::U32(4_000_000_000)), "`tokenizer.ggml.eos_token_id` = 4000000000 is not a token id (there are 6 tokens)"),
        ("tokenizer.ggml.mask_token_id", Some(Value::U64(u64::MAX)), "`tokenizer.ggml.mask_token_id` = 18446744073709551615 is not a token id"),
        ("tokenizer.ggml.bos_token_id", Some(Value::I32(-1)), "`tokenizer.ggml.bos_token_id` = -1 is not a token id"),
        ("tokenizer.ggml.padding_token_id", Some(Value::U32(6)), "`tokenizer.ggml.padding_token_id` = 6 is not a token id (there are 6 tokens)"),
        ("tokenizer.ggml.unknown_token_id", Some(Value::Str("0".into())), "`tokenizer.ggml.unknown_token_id` = \"0\" is not a token id"),
        ("tokenizer.ggml.token_type", Some(Value::Array(vec![Value::I32(1); 3])), "`tokenizer.ggml.token_type` has 3 entries for 6 tokens"),
        ("tokenizer.ggml.token_type", Some(Value::Array(vec![Value::I32(1); 7])), "`tokenizer.ggml.token_type` has 7 entries for 6 tokens"),
        ("tokenizer.ggml.token_type", Some(Value::Array(vec![Value::F32(1.0); 6])), "the type of token 0 is not an integer"),
        ("tokenizer.ggml.token_type", Some(Value::I32(1)), "`tokenizer.ggml.token_type` is not an array"),
        ("tokenizer.ggml.tokens", Some(Value::Array(vec![])), "`tokenizer.ggml.tokens` has 0 tokens"),
        ("tokenizer.ggml.tokens", Some(Value::Array(vec![Value::U32(7); 6])), "token 0 is not a string"),
        ("tokenizer.ggml.tokens", None, "`tokenizer.ggml.tokens` is missing"),
    ];
    for (key, value, needle) in cases {
        let e = error(key, value);
        assert!(e.contains(needle) && e.contains("put a tokenizer.json beside the model"), "{key}: {needle:?} not in {e:?}");
    }
    // Without token types every token is a normal one.
    assert!(read("tokenizer.ggml.token_type", None).unwrap().is_some());
}

#[test]
fn writing_refuses_absurd_ids_and_malformed_merges_from_tokenizer_json() {
    let json = |vocab: &str, merges: &str| {
        format!(
            r#"{{"model": {{"type": "BPE", "vocab": {vocab}, "merges": {merges}}}, "added_tokens": [], "pre_tokenizer": {{"type": "ByteLevel", "use_regex": true}}}}"#
        )
    };
    let ok = tokenizer_metadata("tokenizer.json", &json(r#"{"a": 0, "b": 1, "ab": 2}"#, r#"["a b"]"#), None).unwrap();
    assert!(ok.iter().any(|(k, v)| k == "tokenizer.ggml.merges" && *v == strs(&["a b"])));
    let cases = [
        (json(r#"{"a": 0, "b": 1000000000000000}"#, "[]"), "the vocab token \"b\"'s id 1000000000000000 is far beyond the tokenizer's 2 tokens"),
        (json(r#"{"a": 0, "b": -1}"#, "[]"), "the vocab token \"b\"'s id is missing or not a non-negative integer"),
        (json(r#"{"a": 0, "b": 1}"#, r#"[["a"]]"#), "merge 0 ([\"a\"]) is not two tokens without spaces"),
        (json(r#"{"a": 0, "b": 1}"#, r#"["a b", 7]"#), "merge 1 (7) is not two tokens"),
        (json(r#"{"a": 0, "b": 1}"#, r#"["a  b"]"#), "merge 0 (\"a  b\") is not two tokens"),
        (json(r#"{"a": 0, "b": 1}"#, r#"[["a b", "b"]]"#), "merge 0"),
    ];
    for (text, needle) in cases {
        let e = tokenizer_metadata("tokenizer.json", &text, None).map(|_| ()).unwrap_err().to_string();
        assert!(e.starts_with("tokenizer.json: ") && e.contains(needle), "{needle:?} not in {e:?}");
    }
    let added = r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 99999999999, "content": "x"}], "pre_tokenizer": {"type": "ByteLevel"}}"#;
    let e = tokenizer_metadata("tokenizer.json", added, None).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("added token 0's id 99999999999 is far beyond the tokenizer's 2 tokens"), "{e}");
}

/// The tokenizer read back from a GGUF holding `meta`.
fn embedded(meta: Vec<(String, Value)>) -> unmask::Result<Option<unmask::model::TextTokenizer>> {
    let mut g = GgufWriter::default();
    for (k, v) in meta {
        g.meta(&k, v);
    }
    let bytes = g.to_bytes();
    tokenizer_from_gguf(&Gguf::parse("tok.gguf", &bytes).expect("the GGUF itself is well-formed"))
}

fn pre_of(meta: &[(String, Value)]) -> &str {
    meta.iter().find(|(k, _)| k == "tokenizer.ggml.pre").and_then(|(_, v)| v.as_str()).expect("tokenizer.ggml.pre")
}

/// The demo tokenizer splits numbers into single digits and has no merge joining two digits, so
/// its GGUF names GPT-2's pre-tokenizer (which stock llama.cpp knows; it refused our old name,
/// "unmask-digits") and still encodes every text exactly as its tokenizer.json does.
#[test]
fn the_single_digit_pattern_is_written_as_gpt2_and_encodes_the_same() {
    let json = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo/tokenizer.json")).unwrap();
    let meta = tokenizer_metadata("tokenizer.json", &json, None).unwrap();
    assert_eq!(pre_of(&meta), "gpt-2");
    let from_json = unmask::model::TextTokenizer::from_bytes("tokenizer.json", json.as_bytes()).unwrap();
    let from_gguf = embedded(meta).unwrap().expect("a tokenizer");
    for text in [
        "Mia has 12 apples and buys 30 more. How many apples does she have now?",
        "12345 + 67890 = 80235, 1,000,000 and 3.14159; x2 2x 007 a1b2c3 ' 42' 19.5% $1200",
        "  99  bottles\n\n\t 1 2  3   4 ²³ ½ ٣٤ 1st 2nd 10th",
        "Who is Tom's mother? It's 5 o'clock, we'll see 2024-12-02T05:34.",
    ] {
        assert_eq!(from_gguf.encode(text).unwrap(), from_json.encode(text).unwrap(), "{text:?}");
    }
    // A file written before keeps reading with the single-digit pattern.
    let old =
        embedded(good().into_iter().map(|(k, v)| (k.to_string(), if k == "tokenizer.ggml.pre" { Value::Str("unmask-digits".into()) } else { v })).collect());
    assert!(old.unwrap().is_some());
}

/// With a merge joining two digits GPT-2's number runs would tokenize differently, so the GGUF
/// keeps our own name for the pattern.
#[test]
fn the_single_digit_pattern_with_digit_merges_keeps_its_own_name() {
    let json = |merges: &str| {
        format!(
            r#"{{"model": {{"type": "BPE", "vocab": {{"1": 0, "2": 1, "12": 2, "Ġ": 3, "Ġ1": 4}}, "merges": {merges}}}, "added_tokens": [],
                "pre_tokenizer": {{"type": "Sequence", "pretokenizers": [
                    {{"type": "Split", "pattern": {{"Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{{L}}+| ?\\p{{N}}| ?[^\\s\\p{{L}}\\p{{N}}]+|\\s+(?!\\S)|\\s+"}}, "behavior": "Isolated", "invert": false}},
                    {{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}]}}}}"#
        )
    };
    let pre = |merges: &str| pre_of(&tokenizer_metadata("tokenizer.json", &json(merges), None).unwrap()).to_string();
    assert_eq!(pre(r#"["Ġ 1"]"#), "gpt-2");
    assert_eq!(pre(r#"["1 2"]"#), "unmask-digits");
    assert_eq!(pre(r#"["Ġ 1", "Ġ1 2"]"#), "unmask-digits");
}

/// The byte-level tokenizer that full-size synthetic GGUFs embed (`write_full_size --tokenizer`,
/// for llama.cpp in bench/gpu.sh) lists exactly the model's vocabulary, with the config's mask
/// and EOS at their ids, and encodes text one token per byte, as llama.cpp is then fed.
#[test]
fn the_full_vocabulary_byte_tokenizer_embeds_with_the_configs_special_ids() {
    let c = unmask::synth::llada_8b_config();
    let meta = tokenizer_metadata("synthetic", &unmask::synth::byte_tokenizer_json_for(&c), None).unwrap();
    let list = |key: &str| match &meta.iter().find(|(k, _)| k == key).expect(key).1 {
        Value::Array(v) => v.clone(),
        other => panic!("{key}: {other:?}"),
    };
    let (tokens, types) = (list("tokenizer.ggml.tokens"), list("tokenizer.ggml.token_type"));
    assert_eq!(tokens.len(), c.vocab_size, "one token per embedding row");
    assert_eq!(types.len(), c.vocab_size);
    assert_eq!(tokens[c.mask_token_id as usize].as_str(), Some("<|mdm_mask|>"));
    assert_eq!(tokens[c.eos_token_id.unwrap() as usize].as_str(), Some("<|endoftext|>"));
    assert!(matches!(types[c.mask_token_id as usize], Value::I32(3)), "the mask is a control token");
    let t = embedded(meta).unwrap().expect("a tokenizer");
    assert_eq!(t.vocab_size(), c.vocab_size);
    assert_eq!(t.token_to_id("<|mdm_mask|>"), Some(c.mask_token_id));
    let text = "Lily runs 12 km; ünïcode too.";
    let ids = t.encode(text).unwrap();
    assert_eq!(ids.len(), text.len(), "one token per byte");
    assert!(ids.iter().all(|&i| i < 256));
    assert_eq!(t.decode(&ids, false).unwrap(), text);
    // llama.cpp reads `tokenizer.ggml.merges` as an array of strings, also when it is empty.
    let mut g = GgufWriter::default();
    g.meta("tokenizer.ggml.merges", Value::Array(vec![]));
    let bytes = g.to_bytes();
    let key = b"tokenizer.ggml.merges";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the key") + key.len();
    assert_eq!(&bytes[at..at + 16], &[9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "an empty array of strings");
    // Special ids among the first 256 (the demo's: EOS 0, BOS 1, mask 2, EOT 5) move the bytes up.
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo/config.json")).unwrap();
    let demo = unmask::model::ModelConfig::from_hf_json("config.json", &demo).unwrap();
    let t = embedded(tokenizer_metadata("synthetic", &unmask::synth::byte_tokenizer_json_for(&demo), None).unwrap()).unwrap().unwrap();
    assert_eq!(t.vocab_size(), demo.vocab_size);
    assert_eq!((t.token_to_id("<|endoftext|>"), t.token_to_id("<|startoftext|>")), (Some(0), Some(1)));
    assert_eq!((t.token_to_id("<|mdm_mask|>"), t.token_to_id("<|eot_id|>")), (Some(2), Some(5)));
    let ids = t.encode(text).unwrap();
    assert_eq!(t.decode(&ids, false).unwrap(), text);
    assert!(ids.iter().all(|i| ![0, 1, 2, 5].contains(i)) && ids.len() == text.len());
    // The small test tokenizer is unchanged: bytes, then the six specials.
    let small = unmask::model::TextTokenizer::from_bytes("tokenizer.json", unmask::synth::byte_tokenizer_json().as_bytes()).unwrap();
    assert_eq!(small.vocab_size(), 256 + unmask::synth::SPECIALS.len());
    assert_eq!(small.token_to_id("<|eot_id|>"), Some(261));
}
