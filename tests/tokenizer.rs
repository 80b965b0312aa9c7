//! The byte-level test tokenizer and the chat template through the `tokenizers` crate.

use unmask::model::TextTokenizer;
use unmask::sampler::text::chat_prompt;
use unmask::synth::byte_tokenizer_json;

#[test]
fn byte_tokenizer_round_trips_text_and_knows_the_specials() {
    let t = TextTokenizer::from_bytes("tokenizer.json", byte_tokenizer_json().as_bytes()).unwrap();
    let text = "The cat sat on the mat. Ünïcödé ✓";
    let ids = t.encode(text).unwrap();
    assert_eq!(ids.len(), text.len(), "one token per byte");
    assert_eq!(t.decode(&ids, false).unwrap(), text);
    assert_eq!(t.token_to_id("<|mdm_mask|>"), Some(256));
    let chat = t.encode(&chat_prompt(&unmask::model::arch::LLADA.chat, "Hi")).unwrap();
    assert_eq!(chat[0], 257, "<|startoftext|> is one token");
    assert_eq!(chat.iter().filter(|&&i| i == 261).count(), 1, "one <|eot_id|>");
    assert_eq!(t.decode(&chat, false).unwrap(), "user\n\nHiassistant\n\n");
}

#[test]
fn a_tokenizer_embedded_in_gguf_encodes_and_decodes_like_its_tokenizer_json() {
    use unmask::model::gguf::Gguf;
    use unmask::model::gguf_tokenizer::{tokenizer_from_gguf, tokenizer_metadata};
    use unmask::synth::{random_model, tiny_config_with_tokenizer};
    let json = byte_tokenizer_json();
    let original = TextTokenizer::from_bytes("tokenizer.json", json.as_bytes()).unwrap();
    let w = random_model(&tiny_config_with_tokenizer(1, 2, 2, 16, 32), unmask::model::DType::F32, 1);
    let bytes = w.to_gguf(tokenizer_metadata("tokenizer.json", &json, Some(unmask::model::arch::LLADA.chat_template)).unwrap());
    let g = Gguf::parse("m.gguf", &bytes).unwrap();
    assert_eq!(g.get("tokenizer.ggml.model").and_then(|v| v.as_str()), Some("gpt2"));
    let embedded = tokenizer_from_gguf(&g).unwrap().expect("an embedded tokenizer");
    for text in [
        "Hello, world! 123 4567",
        "  two  spaces\nnew line",
        &chat_prompt(&unmask::model::arch::LLADA.chat, "What is 2+2?"),
        "ünïcödé ✓ <|mdm_mask|><|mdm_mask|>",
    ] {
        let a = original.encode(text).unwrap();
        let b = embedded.encode(text).unwrap();
        assert_eq!(a, b, "{text:?}");
        assert_eq!(original.decode(&a, false).unwrap(), embedded.decode(&b, false).unwrap());
        assert_eq!(original.decode(&a, true).unwrap(), embedded.decode(&b, true).unwrap());
    }
    // No tokenizer metadata: None, not an error.
    let plain = w.to_gguf(vec![]);
    assert!(tokenizer_from_gguf(&Gguf::parse("p.gguf", &plain).unwrap()).unwrap().is_none());
}
