#!/usr/bin/env python3
"""Byte-level BPE (HF `tokenizers`) for the demo model, with LLaDA's special tokens.

Pre-tokenizer: a GPT-2 style split in which every digit is its own piece (" 48" -> " 4", "8"),
so that the small model sees numbers digit by digit, then the byte-level alphabet (no regex).
Decoder: ByteLevel, so decode(encode(text)) == text. No BOS/EOS is added automatically.
"""

import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))

# ids 0..5, in this order
SPECIALS = ["<|endoftext|>", "<|startoftext|>", "<|mdm_mask|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def chat(message, answer=None):
    s = ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n" + message +
         "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    if answer is not None:
        s += answer + "<|eot_id|>"
    return s


def corpus(data):
    with open(os.path.join(data, "prose.jsonl")) as f:
        for line in f:
            yield json.loads(line)["text"]
    with open(os.path.join(data, "tasks.jsonl")) as f:
        for line in f:
            t = json.loads(line)
            yield t["prompt"] + "\n\n" + t["response"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "work", "data"))
    ap.add_argument("--out", default=os.path.join(HERE, "work", "tokenizer.json"))
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(args.data), trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))

    # round trip and digit checks
    for text in ["Natalia sold clips to 48 of her friends in April. The answer is 72.",
                 "Mira Tal's mother is Ona Bex.\n\nHe said: \"ok\" -- 3.5% of 1,024!  tabs\tand ümlauts"]:
        ids = tok.encode(text).ids
        assert tok.decode(ids) == text, (text, tok.decode(ids))
    pieces = tok.encode(" 48").tokens
    assert len(pieces) == 2, pieces
    c = chat("hi", "yo")
    enc = tok.encode(c)
    assert enc.ids[:2] == [1, 3] and enc.ids[-1] == 5, enc.tokens
    assert tok.decode(enc.ids, skip_special_tokens=True) == "user\n\nhiassistant\n\nyo"

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tok.save(args.out)
    print(json.dumps({"vocab_size": tok.get_vocab_size(), "out": args.out,
                      "specials": {s: tok.token_to_id(s) for s in SPECIALS}}))


if __name__ == "__main__":
    main()
