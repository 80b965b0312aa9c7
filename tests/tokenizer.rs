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
    let chat = t.encode(&chat_prompt("Hi")).unwrap();
    assert_eq!(chat[0], 257, "<|startoftext|> is one token");
    assert_eq!(chat.iter().filter(|&&i| i == 261).count(), 1, "one <|eot_id|>");
    assert_eq!(t.decode(&chat, false).unwrap(), "user\n\nHiassistant\n\n");
}
