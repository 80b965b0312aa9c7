#!/usr/bin/env python3
"""Seeded, offline generator of the demo model's training and evaluation data.

Writes into --out (default train/work/data):
  prose.jsonl          {"text": ...}  pretraining-style documents (all tokens masked-eligible):
                       English from Debian's `wordnet-base` (example sentences and glosses)
                       plus statements of the reversal facts
  tasks.jsonl          {"task", "prompt", "response"}  chat items (SFT: only the response is
                       masked-eligible): arithmetic (v2 word problems), qa (v2 free-form
                       questions), reversal Q&A, infill, word use
  copy.jsonl           chat items "Repeat: TEXT" -> TEXT (invented names, numbers, words)
  drill.jsonl          chat items "Compute: 48 + 24, 7 * 8" -> "48 + 24 = 72. 7 * 8 = 56."
  eval/<task>.jsonl    {"task", "prompt", "answer"}  held-out evaluation items
  reversal_split.json  which facts are trained in which directions
  LICENSES.txt         licence of the Debian prose

Reversal split (documented in train/README.md):
  * 60 invented (child, mother) pairs; every name is one invented word ("Mira", "Tobe"),
    unique. Every fact is stated in ONE direction only, "X's mother is Y.", in pretraining-style
    documents (each statement in 10 differently mixed documents). No "Y's child is X."
    statement exists for any fact.
  * 30 "train" facts: the chat data asks all three questions ("Who is X's mother?",
    "Who is Y's child?", "Whose mother is Y?"); answers are the bare name ("Y." or "X."). So
    the model practises answering backward questions from facts it only read forward.
  * 30 "held-out" facts: the chat data asks only "Who is X's mother?". Evaluation asks that
    forward question (reversal_forward, seen in training) and the two backward questions,
    never seen for these facts: "Who is Y's child?" (reversal_backward) and
    "Whose mother is Y?" (reversal_whose). The strings "Y's child" and "Whose mother is Y"
    never occur in training for them (checked at the end of this script).

v2 (issue 22): the word problems and free-form questions come from train/problems.py, many
frames per kind, with a random stream of their own (seed + 13), so the v1 eval files
(arithmetic, infill, reversal_*) are byte for byte those of v1. The v1 arithmetic templates
are no longer trained: their 200 eval items (`arithmetic`) are now held-out templates too.
Held-out frames of problems.py make `arithmetic_forms`; the hand-written free-form eval
(models/demo/eval/freeform.jsonl) is copied into eval/. Asserted at the end: no held-out
template id, no held-out (name, numbers) fact and no held-out prompt (verbatim or as an
instance of a training frame) occurs in training.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import problems  # noqa: E402

V1_N_ARITH = 60000  # v1's training problems: still drawn (and dropped) to keep the v1 eval files

# ---------------------------------------------------------------- arithmetic
GIRLS = ["Natalia", "Emma", "Sara", "Lily", "Mia", "Ava", "Zoe", "Nora", "Ella", "Ruby",
         "Grace", "Chloe", "Anna", "Julia", "Maya", "Rosa", "Lucy", "Amy", "Eva", "Ivy"]
BOYS = ["Tom", "Sam", "Ben", "Leo", "Max", "Jack", "Noah", "Liam", "Owen", "Adam",
        "Ryan", "Paul", "Mark", "Eric", "Hugo", "Luke", "Dan", "Ian", "Joe", "Carl"]


def person(rng):
    if rng.random() < 0.5:
        return rng.choice(GIRLS), "she", "her"
    return rng.choice(BOYS), "he", "his"


def cap(s):
    return s[0].upper() + s[1:]


MONTHS_PAIRS = [("April", "May"), ("May", "June"), ("June", "July"), ("March", "April"),
                ("September", "October"), ("January", "February")]
DAY_PAIRS = [("Monday", "Tuesday"), ("Tuesday", "Wednesday"), ("Wednesday", "Thursday"),
             ("Thursday", "Friday"), ("Saturday", "Sunday")]
SELL_ITEMS = ["clips", "cookies", "cupcakes", "bracelets", "tickets", "candles", "pies", "muffins"]
COLLECT = ["marbles", "stickers", "shells", "cards", "stamps", "coins", "books", "toy cars"]
PACKS = [("packs", "pencils"), ("boxes", "crayons"), ("bags", "apples"), ("boxes", "eggs"),
         ("packs", "stickers"), ("bags", "oranges"), ("jars", "candies"), ("boxes", "pens")]
BAKE = ["cookies", "cupcakes", "muffins", "brownies", "pancakes"]
WALK = [("walked", "miles"), ("ran", "laps"), ("read", "pages"), ("swam", "laps"), ("rode", "miles")]


def arith_problem(rng, tid=None):
    """Returns (template id, numbers key, question, worked answer, final number)."""
    tid = rng.randrange(8) if tid is None else tid
    name, p, pos = person(rng)
    if tid == 0:  # half as many (the GSM8K clip example)
        a = 2 * rng.randint(2, 30)
        b = a // 2
        c = a + b
        m1, m2 = rng.choice(MONTHS_PAIRS)
        it = rng.choice(SELL_ITEMS)
        q = (f"{name} sold {it} to {a} of {pos} friends in {m1}, and then {p} sold half as many "
             f"{it} in {m2}. How many {it} did {name} sell altogether in {m1} and {m2}?")
        r = (f"In {m2} {p} sold {a} / 2 = {b} {it}. "
             f"Altogether {p} sold {a} + {b} = {c} {it}. The answer is {c}.")
        key = (a,)
    elif tid == 1:  # twice as many
        a = rng.randint(2, 40)
        b = 2 * a
        c = a + b
        d1, d2 = rng.choice(DAY_PAIRS)
        verb, unit = rng.choice(WALK)
        q = (f"{name} {verb} {a} {unit} on {d1} and twice as many {unit} on {d2}. "
             f"How many {unit} did {name} do in total?") if verb != "read" else (
            f"{name} read {a} pages on {d1} and twice as many pages on {d2}. "
            f"How many pages did {name} read in total?")
        r = (f"On {d2} {p} did {a} * 2 = {b} {unit}. "
             f"In total {p} did {a} + {b} = {c} {unit}. The answer is {c}.")
        key = (a,)
    elif tid == 2:  # k more than
        a = rng.randint(3, 60)
        k = rng.randint(2, 30)
        b = a + k
        c = a + b
        name2, p2, _ = person(rng)
        while name2 == name:
            name2, p2, _ = person(rng)
        it = rng.choice(COLLECT)
        q = (f"{name} has {a} {it}. {name2} has {k} more {it} than {name}. "
             f"How many {it} do they have together?")
        r = (f"{name2} has {a} + {k} = {b} {it}. "
             f"Together they have {a} + {b} = {c} {it}. The answer is {c}.")
        key = (a, k)
    elif tid == 3:  # k fewer than
        a = rng.randint(10, 60)
        k = rng.randint(2, a - 2)
        b = a - k
        c = a + b
        name2, p2, _ = person(rng)
        while name2 == name:
            name2, p2, _ = person(rng)
        it = rng.choice(COLLECT)
        q = (f"{name} has {a} {it}. {name2} has {k} fewer {it} than {name}. "
             f"How many {it} do they have together?")
        r = (f"{name2} has {a} - {k} = {b} {it}. "
             f"Together they have {a} + {b} = {c} {it}. The answer is {c}.")
        key = (a, k)
    elif tid == 4:  # packs, then give away
        n = rng.randint(2, 9)
        per = rng.randint(2, 9)
        b = n * per
        g = rng.randint(1, b - 1)
        c = b - g
        box, it = rng.choice(PACKS)
        q = (f"{name} buys {n} {box} of {it}. Each of the {box} has {per} {it}. "
             f"{cap(p)} gives away {g} {it}. How many {it} does {name} have left?")
        r = (f"{name} buys {n} * {per} = {b} {it}. "
             f"After giving away {g}, {p} has {b} - {g} = {c} {it} left. The answer is {c}.")
        key = (n, per, g)
    elif tid == 5:  # money
        s = rng.randint(2, 30)
        t = rng.randint(2, 30)
        b = s + t
        a = rng.randint(b + 1, 99)
        c = a - b
        thing1, thing2 = rng.sample(["a book", "lunch", "a toy", "a hat", "a game", "a ball", "paint"], 2)
        q = (f"{name} had {a} dollars. {cap(p)} spent {s} dollars on {thing1} and {t} dollars "
             f"on {thing2}. How many dollars does {name} have left?")
        r = (f"{cap(p)} spent {s} + {t} = {b} dollars. "
             f"{cap(p)} has {a} - {b} = {c} dollars left. The answer is {c}.")
        key = (a, s, t)
    elif tid == 6:  # share equally
        k = rng.randint(2, 6)
        c = rng.randint(2, 9)
        b = k * c
        e = rng.randint(1, 12)
        a = b + e
        it = rng.choice(BAKE)
        q = (f"{name} baked {a} {it} and ate {e} of them. {cap(p)} shared the rest equally among "
             f"{k} friends. How many {it} did each friend get?")
        r = (f"{name} had {a} - {e} = {b} {it} left. "
             f"Each friend got {b} / {k} = {c} {it}. The answer is {c}.")
        key = (k, c, e)
    else:  # three days
        verb, unit = rng.choice(WALK)
        x, y, z = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 40)
        s1 = x + y
        c = s1 + z
        q = (f"{name} {verb} {x} {unit} on Monday, {y} {unit} on Tuesday and {z} {unit} on "
             f"Wednesday. How many {unit} did {name} do in all?")
        r = (f"On Monday and Tuesday {p} did {x} + {y} = {s1} {unit}. "
             f"With Wednesday {p} did {s1} + {z} = {c} {unit}. The answer is {c}.")
        key = (x, y, z)
    return tid, (tid,) + key, q, r, c


def drill_equation(rng):
    """One equation of the kinds the worked answers use, e.g. "48 + 24 = 72."."""
    kind = rng.randrange(6)
    if kind <= 1:  # addition, sums up to 199
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        return f"{a} + {b} = {a + b}."
    if kind == 2:  # subtraction, non-negative results
        a = rng.randint(2, 99)
        b = rng.randint(1, a)
        return f"{a} - {b} = {a - b}."
    if kind == 3:  # products: one-digit by one-digit, or doubling up to 60
        if rng.random() < 0.5:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
        else:
            a, b = rng.randint(2, 60), 2
        return f"{a} * {b} = {a * b}."
    if kind == 4:  # division: halving up to 120, or a one-digit table backwards
        if rng.random() < 0.5:
            b = rng.randint(2, 60)
            return f"{2 * b} / 2 = {b}."
        k, c = rng.randint(2, 9), rng.randint(2, 9)
        return f"{k * c} / {k} = {c}."
    a, b = rng.randint(1, 99), rng.randint(1, 99)  # both orders of a sum's parts
    return f"{a + b} - {a} = {b}."


# ---------------------------------------------------------------- reversal
ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "j", "h"]
VOWELS = ["a", "e", "i", "o", "u"]
CODAS = ["l", "n", "r", "s", "x", "k", "m", "t", "d"]


def invent_names(rng, n, single=False):
    """n unique invented names: "First Last", or one word with single=True."""
    seen = set()
    out = []
    while len(out) < n:
        first = cap(rng.choice(ONSETS + ["", ""]) + rng.choice(VOWELS) + rng.choice(ONSETS) + rng.choice(VOWELS))
        last = cap(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS))
        full = first if single else f"{first} {last}"
        if full in seen or first in GIRLS + BOYS:
            continue
        seen.add(full)
        out.append(full)
    return out


def fwd_q(x):
    return f"Who is {x}'s mother?"


def fwd_a(x, y):
    return f"{x}'s mother is {y}."


def bwd_q(y):
    return f"Who is {y}'s child?"


def bwd_a(x, y):
    return f"{y}'s child is {x}."


CLOZE_MASKS = 4  # masks in a cloze item: room for any invented name (1-4 tokens) and a space or period


def whose_q(y):
    return f"Whose mother is {y}?"


# ---------------------------------------------------------------- infill
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
NUMWORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen", "twenty"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
COLORS = ["red", "blue", "green", "yellow", "black", "white", "pink", "brown", "orange", "purple", "gray"]
THINGS = ["kite", "ball", "hat", "cup", "bike", "box", "bag", "coat", "car", "boat", "lamp", "chair",
          "book", "kitten", "dog", "bird", "shirt", "drum"]
PLACES = ["park", "garden", "kitchen", "school", "beach", "market", "library", "forest", "river", "farm"]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"),
             ("happy", "sad"), ("old", "new"), ("open", "closed"), ("wet", "dry"), ("light", "dark"),
             ("high", "low"), ("full", "empty"), ("early", "late"), ("hard", "soft"), ("long", "short"),
             ("left", "right"), ("in", "out"), ("black", "white"), ("loud", "quiet"), ("rich", "poor"),
             ("strong", "weak"), ("thick", "thin"), ("young", "old"), ("near", "far"), ("first", "last")]
BLANK = "____"


def infill_item(rng, kind=None):
    """Returns (kind, text with BLANK, span)."""
    kind = rng.randrange(6) if kind is None else kind
    if kind == 0:  # ordered lists
        seq = rng.choice([WEEKDAYS, MONTHS, NUMWORDS, LETTERS])
        n = rng.randint(4, 6)
        start = rng.randint(0, len(seq) - n)
        items = seq[start:start + n]
        j = rng.randint(1, n - 2)
        span = items[j]
        items = items[:j] + [BLANK] + items[j + 1:]
        return kind, ", ".join(items) + ".", span
    if kind == 1:  # arithmetic progressions in digits
        step = rng.randint(1, 5)
        a = rng.randint(0, 30)
        n = rng.randint(4, 6)
        items = [str(a + i * step) for i in range(n)]
        j = rng.randint(1, n - 2)
        span = items[j]
        items[j] = BLANK
        return kind, ", ".join(items) + ".", span
    if kind == 2:  # copy a colour from context
        name, p, pos = person(rng)
        color = rng.choice(COLORS)
        thing = rng.choice(THINGS)
        place = rng.choice(PLACES)
        text = (f"{name} has a {color} {thing}. Every day {p} takes {pos} {BLANK} {thing} "
                f"to the {place}.")
        return kind, text, color
    if kind == 3:  # copy a thing from context
        name, p, pos = person(rng)
        color = rng.choice(COLORS)
        thing = rng.choice(THINGS)
        place = rng.choice(PLACES)
        text = (f"At the {place}, {name} found a {color} {thing}. {cap(p)} took the {color} "
                f"{BLANK} home.")
        return kind, text, thing
    if kind == 4:  # opposites
        (a1, b1), (a2, b2) = rng.sample(OPPOSITES, 2)
        if rng.random() < 0.5:
            a2, b2 = b2, a2
        text = f"The opposite of {a1} is {b1}, and the opposite of {a2} is {BLANK}."
        return kind, text, b2
    # kind 5: a name mentioned twice
    name, p, pos = person(rng)
    name2, _, _ = person(rng)
    while name2 == name:
        name2, _, _ = person(rng)
    place = rng.choice(PLACES)
    text = (f"{name} and {name2} went to the {place}. {name2} stayed there, but {BLANK} "
            f"went home early.")
    return kind, text, name


def infill_prompt(text):
    return f"Fill in the blank: {text}"


# ---------------------------------------------------------------- prose
PROSE_PKG = "wordnet-base"


def fetch_wordnet(cache):
    """apt-get download + dpkg -x wordnet-base into cache; returns the wordnet dir."""
    wn = os.path.join(cache, "x", "usr", "share", "wordnet")
    if os.path.exists(os.path.join(wn, "data.noun")):
        return wn
    os.makedirs(cache, exist_ok=True)
    subprocess.run(["apt-get", "download", PROSE_PKG], cwd=cache, check=True)
    debs = [f for f in os.listdir(cache) if f.startswith(PROSE_PKG) and f.endswith(".deb")]
    if not debs:
        sys.exit("apt-get download wordnet-base produced no .deb")
    subprocess.run(["dpkg", "-x", os.path.join(cache, debs[0]), os.path.join(cache, "x")], check=True)
    return wn


def read_wordnet(wn):
    """Yields (pos, lemmas, definition, [examples]) for each synset."""
    for pos in ["noun", "verb", "adj", "adv"]:
        with open(os.path.join(wn, "data." + pos), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                head, _, gloss = line.partition("|")
                parts = head.split()
                nw = int(parts[3], 16)
                lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(nw)]
                lemmas = [re.sub(r"\(.*\)$", "", l) for l in lemmas]
                gloss = gloss.strip()
                examples = re.findall(r'"([^"]+)"', gloss)
                definition = re.sub(r'"[^"]*"', "", gloss)
                definition = re.sub(r"\s*;\s*", "; ", definition).strip(" ;")
                yield pos, lemmas, definition, examples


def sentence(s):
    s = s.strip()
    s = re.sub(r"\s+", " ", s)
    if not s:
        return s
    s = s[0].upper() + s[1:]
    if s[-1] not in ".!?":
        s += "."
    return s


def clean_ok(s):
    return all(32 <= ord(ch) < 127 for ch in s)


def build_prose(wn, rng, max_chars):
    docs = []
    word_use = []  # (lemma, example) for the chat word-use task
    defs = []  # (lemma, definition)
    para = []
    chars = 0
    for pos, lemmas, definition, examples in read_wordnet(wn):
        exs = [sentence(e) for e in examples if clean_ok(e) and len(e.split()) >= 4]
        for e in exs:
            para.append(e)
            lem = next((l for l in lemmas if re.search(r"\b" + re.escape(l) + r"\b", e, re.I)), None)
            if lem and " " not in lem and lem.isalpha() and lem.islower():
                word_use.append((lem, e))
        lem0 = lemmas[0]
        if definition and clean_ok(definition) and lem0.isalpha() and lem0.islower() and pos in ("noun", "verb", "adj"):
            defs.append((lem0, definition))
        if len(para) >= rng.randint(5, 9):
            docs.append(" ".join(para))
            chars += len(docs[-1])
            para = []
    if para:
        docs.append(" ".join(para))
    # glosses as plain sentences, a few per paragraph
    rng.shuffle(defs)
    dpara = []
    for lem, d in defs:
        dpara.append(sentence(f"{lem}: {d}"))
        if len(dpara) >= 6:
            docs.append(" ".join(dpara))
            chars += len(docs[-1])
            dpara = []
        if chars >= max_chars:
            break
    return docs, word_use, defs


# ---------------------------------------------------------------- v2 (issue 22)
V2_SPLIT_TASKS = ("arithmetic", "qa")  # the tasks whose templates and facts are partitioned


def v2_tasks(args, tasks, evals, sym, facts):
    """Adds the v2 training items to `tasks` and the v2 eval tasks to `evals` (own random
    stream: seed + 13). Returns the held-out side: {"templates", "facts", "prompts"}."""
    r2 = random.Random(args.seed + 13)
    held_facts = set()
    held_prompts = []
    # the hand-written free-form eval: copied as it is, its facts kept out of training
    if os.path.exists(args.freeform):
        ff = [json.loads(l) for l in open(args.freeform) if l.strip()]
        evals["freeform"] = ff
        held_prompts += [e["prompt"] for e in ff]
        held_facts |= {problems.fact(e["prompt"]) for e in ff} - {None}
    # v1's arithmetic eval: its templates are no longer trained, its facts are kept out too
    held_prompts += [e["prompt"] for e in evals["arithmetic"]]
    held_facts |= {problems.fact(e["prompt"]) for e in evals["arithmetic"]} - {None}
    # arithmetic_forms: held-out frames of problems.py, round robin, each fact once
    held_ids = problems.template_ids("heldout")
    ev = []
    while len(ev) < args.n_eval_forms:
        it = problems.problem(r2, held_ids[len(ev) % len(held_ids)])
        f = problems.fact(it["prompt"])
        if f is None or f in held_facts:
            continue
        held_facts.add(f)
        ev.append({"task": "arithmetic_forms", "prompt": it["prompt"], "answer": it["response"].rsplit(" ", 1)[1].rstrip("."),
                   "template": it["template"]})
    evals["arithmetic_forms"] = ev
    held_prompts += [e["prompt"] for e in ev]
    # training word problems (train frames only) and free-form questions; a drawn item whose
    # (name, numbers) fact is held out is drawn again
    train_ids = problems.template_ids("train")
    qa_ids = problems.qa_ids()
    for n_items, draw in ((args.n_arith, lambda: problems.problem(r2, r2.choice(train_ids))),
                          (args.n_qa, lambda: problems.qa_item(r2, *(lambda t: (t[0], int(t[1])))(r2.choice(qa_ids).rsplit(".", 1))))):
        n = 0
        while n < n_items:
            it = draw()
            if problems.fact(it["prompt"]) in held_facts:
                continue
            tasks.append(it)
            n += 1
    # more phrasings of the reversal questions: forward for every fact (trained by design),
    # backward only for the train facts (never for the held-out ones)
    for x, y in facts:
        for q in problems.REV_FORWARD:
            tasks.append({"task": "reversal", "template": "rev_fwd", "prompt": q.format(X=x), "response": f"{y}."})
    for x, y in sym:
        for q in problems.REV_BACKWARD:
            tasks.append({"task": "reversal", "template": "rev_bwd", "prompt": q.format(Y=y), "response": f"{x}."})
    return {"templates": set(held_ids) | {"v1." + str(i) for i in range(8)}, "facts": held_facts,
            "prompts": held_prompts}


def check_v2_split(tasks, evals, held):
    """The v2 split must hold: fails if a held-out template id, a held-out (name, numbers) fact
    or a held-out prompt (verbatim, or as an instance of a training frame) occurs in training."""
    train = [t for t in tasks if t["task"] in V2_SPLIT_TASKS]
    used = {t.get("template") for t in train}
    assert None not in used, "a training problem without a template id"
    assert not used & held["templates"], sorted(used & held["templates"])
    assert not set(problems.template_ids("heldout")) & set(problems.template_ids("train"))
    train_facts = {problems.fact(t["prompt"]) for t in train} - {None}
    both = train_facts & held["facts"]
    assert not both, sorted(both, key=str)[:5]
    prompts = {t["prompt"] for t in tasks}
    assert not any(p in prompts for p in held["prompts"]), "a held-out prompt is a training prompt"
    frames = problems.train_regexes()
    for p in held["prompts"]:
        hit = next((tid for tid, rx in frames if rx.fullmatch(p)), None)
        assert hit is None, f"held-out prompt {p!r} is an instance of training frame {hit}"
    print(json.dumps({"v2_split": "ok", "train_templates": len(used), "heldout_templates": len(held["templates"]),
                      "heldout_facts": len(held["facts"]), "heldout_prompts": len(held["prompts"]),
                      "train_facts": len(train_facts)}))


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "work", "data"))
    ap.add_argument("--cache", default=os.path.join(HERE, "work", "deb"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--n-arith", type=int, default=60000)
    ap.add_argument("--n-infill", type=int, default=30000)
    ap.add_argument("--n-facts", type=int, default=60)
    ap.add_argument("--fact-copies", type=int, default=10, help="documents each fact statement appears in")
    ap.add_argument("--n-eval-arith", type=int, default=200)
    ap.add_argument("--n-eval-infill", type=int, default=200)
    ap.add_argument("--prose-chars", type=int, default=3_000_000)
    ap.add_argument("--n-copy", type=int, default=30000)
    ap.add_argument("--n-drill", type=int, default=60000)
    ap.add_argument("--n-qa", type=int, default=30000, help="v2 free-form questions (task qa)")
    ap.add_argument("--n-eval-forms", type=int, default=200, help="arithmetic_forms: held-out frames")
    ap.add_argument("--freeform", default=os.path.join(HERE, "..", "models", "demo", "eval", "freeform.jsonl"),
                    help="the hand-written free-form eval (copied into eval/, its facts kept out of training)")
    ap.add_argument("--no-prose", action="store_true",
                    help="skip the Debian prose (tests: no download; the eval files do not change)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out, "eval"), exist_ok=True)

    tasks = []
    evals = {}

    # arithmetic: eval first, then training items whose numbers differ from every eval item
    ev, ev_keys = [], set()
    while len(ev) < args.n_eval_arith:
        tid = len(ev) % 8
        _, key, q, r, c = arith_problem(rng, tid)
        if key in ev_keys:
            continue
        ev_keys.add(key)
        ev.append({"task": "arithmetic", "prompt": q, "answer": str(c)})
    evals["arithmetic"] = ev
    # v1's training problems: drawn exactly as v1 drew them, so that the random stream and with it
    # every later v1 eval file stays the same, but no longer trained (v2: their 8 templates are
    # held out; the v2 problems below replace them)
    n = 0
    while n < V1_N_ARITH:
        _, key, q, r, c = arith_problem(rng)
        if key in ev_keys:
            continue
        n += 1

    # reversal
    names = invent_names(rng, 2 * args.n_facts, single=True)
    facts = [(names[2 * i], names[2 * i + 1]) for i in range(args.n_facts)]  # (child, mother)
    half = args.n_facts // 2
    sym, held = facts[:half], facts[half:]
    fact_docs = []
    for x, y in sym:
        tasks.append({"task": "reversal", "prompt": fwd_q(x), "response": f"{y}."})
        tasks.append({"task": "reversal", "prompt": bwd_q(y), "response": f"{x}."})
        tasks.append({"task": "reversal", "prompt": whose_q(y), "response": f"{x}."})
    for x, y in held:
        tasks.append({"task": "reversal", "prompt": fwd_q(x), "response": f"{y}."})
    statements = [fwd_a(x, y) for x, y in facts]  # one direction only, for every fact
    for _ in range(args.fact_copies):  # every statement in several differently-mixed documents
        rng.shuffle(statements)
        for i in range(0, len(statements), 6):
            fact_docs.append(" ".join(statements[i:i + 6]))
    evals["reversal_forward"] = [{"task": "reversal_forward", "prompt": fwd_q(x), "answer": y} for x, y in held]
    evals["reversal_backward"] = [{"task": "reversal_backward", "prompt": bwd_q(y), "answer": x} for x, y in held]
    evals["reversal_whose"] = [{"task": "reversal_whose", "prompt": whose_q(y), "answer": x} for x, y in held]
    # The same facts asked as the statements were written, with one name masked (no chat
    # template; the model fills CLOZE_MASKS masks in place). Forward masks the mother, backward
    # the child: the masked-diffusion objective trains both the same way, where a left-to-right
    # model only ever learns the forward one. No fact was ever asked in this form in training.
    evals["reversal_cloze_forward"] = [{"task": "reversal_cloze_forward", "prompt": f"{x}'s mother is<mask:{CLOZE_MASKS}>",
                                        "answer": y, "infill": True} for x, y in facts]
    evals["reversal_cloze_backward"] = [{"task": "reversal_cloze_backward", "prompt": f"<mask:{CLOZE_MASKS}>'s mother is {y}.",
                                         "answer": x, "infill": True} for x, y in facts]
    with open(os.path.join(args.out, "reversal_split.json"), "w") as f:
        json.dump({"train_asked_both_directions": [{"child": x, "mother": y} for x, y in sym],
                   "heldout_asked_forward_only": [{"child": x, "mother": y} for x, y in held],
                   "statements": "every fact stated forward only: X's mother is Y."}, f, indent=1)

    # infill
    ev, ev_texts = [], set()
    while len(ev) < args.n_eval_infill:
        kind, text, span = infill_item(rng, len(ev) % 6)
        if text in ev_texts:
            continue
        ev_texts.add(text)
        ev.append({"task": "infill", "prompt": infill_prompt(text), "answer": span})
    evals["infill"] = ev
    n = 0
    while n < args.n_infill:
        kind, text, span = infill_item(rng)
        if text in ev_texts:
            continue
        tasks.append({"task": "infill", "prompt": infill_prompt(text), "response": span})
        n += 1

    # prose (Debian wordnet-base)
    if args.no_prose:
        prose_docs, word_use, defs = [], [], []
    else:
        wn = fetch_wordnet(args.cache)
        prose_docs, word_use, defs = build_prose(wn, rng, args.prose_chars)
    # prose-derived chat items: word use, definitions, and infill of a word in a real sentence
    rng.shuffle(word_use)
    for lem, e in word_use[:12000]:
        tasks.append({"task": "word_use", "prompt": f'Use the word "{lem}" in a sentence.', "response": e})
    for lem, d in defs[:8000]:
        tasks.append({"task": "define", "prompt": f'What does "{lem}" mean?',
                      "response": sentence(f'"{lem}" means {d}')})
    for lem, e in word_use[12000:16000]:
        m = re.search(r"\b" + re.escape(lem) + r"\b", e, re.I)
        text = e[:m.start()] + BLANK + e[m.end():]
        tasks.append({"task": "infill_prose", "prompt": infill_prompt(text), "response": e[m.start():m.end()]})

    v2_heldout = v2_tasks(args, tasks, evals, sym, facts)

    rng.shuffle(tasks)
    docs = [{"source": "wordnet", "text": d} for d in prose_docs] + \
           [{"source": "facts", "text": d} for d in fact_docs]
    rng.shuffle(docs)

    # the split must hold: no backward form of a held-out fact anywhere in training
    blob = "\n".join(t["prompt"] + "\n" + t["response"] for t in tasks) + "\n".join(d["text"] for d in docs)
    for x, y in held:
        assert f"{y}'s child" not in blob and f"Whose mother is {y}" not in blob, (x, y)
    for x, y in facts:
        assert f"{y}'s child is" not in blob, (x, y)  # no backward statement for any fact
    train_prompts = {t["prompt"] for t in tasks}
    for k, v in evals.items():
        if k != "reversal_forward":  # the forward question is trained by design
            assert not any(e["prompt"] in train_prompts for e in v), k
    check_v2_split(tasks, evals, v2_heldout)

    with open(os.path.join(args.out, "tasks.jsonl"), "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    with open(os.path.join(args.out, "prose.jsonl"), "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    for k, v in evals.items():
        with open(os.path.join(args.out, "eval", k + ".jsonl"), "w") as f:
            for e in v:
                f.write(json.dumps(e) + "\n")
    lic = os.path.join(args.cache, "x", "usr", "share", "doc", PROSE_PKG, "copyright")
    with open(os.path.join(args.out, "LICENSES.txt"), "w") as f:
        f.write("Prose: Debian package wordnet-base (WordNet 3.0 example sentences and glosses).\n"
                "Task data (arithmetic, qa, reversal, infill, copy, drill): generated by train/make_data.py and "
                "train/problems.py; no licence "
                "restrictions beyond the repository's own.\n\n")
        if os.path.exists(lic):
            f.write(open(lic).read())
    # copy: "Repeat: ..." -> the same text. Dense practice at reading the prompt (the skill every
    # task needs), in its own file and with its own generator so the other files do not change.
    crng = random.Random(args.seed + 7)
    copy_names = invent_names(crng, 3000)
    words = COLORS + THINGS + PLACES + WEEKDAYS + MONTHS + NUMWORDS + [w for pair in OPPOSITES for w in pair]
    with open(os.path.join(args.out, "copy.jsonl"), "w") as f:
        for _ in range(args.n_copy):
            kind = crng.randrange(4)
            if kind == 0:
                text = ", ".join(crng.sample(copy_names, crng.randint(1, 4)))
            elif kind == 1:
                text = ", ".join(str(crng.randint(0, 199)) for _ in range(crng.randint(2, 6)))
            elif kind == 2:
                text = " ".join(crng.choice(words) for _ in range(crng.randint(3, 8)))
            else:
                name = crng.choice(copy_names)
                text = f"{name} has {crng.randint(2, 99)} {crng.choice(COLLECT)}."
            f.write(json.dumps({"task": "copy", "prompt": f"Repeat: {text}", "response": text}) + "\n")
    # drill: "Compute: 48 + 24, 7 * 8" -> "48 + 24 = 72. 7 * 8 = 56." chat items, in their own
    # file with their own generator (seed + 11) so the other files do not change. The operations
    # and ranges are those of the arithmetic templates' worked steps (sums up to 199, one-digit
    # products, doubling, halving, sharing): the facts that the worked answers compute. As chat
    # items the operands always stay visible in the prompt, so every masked result digit can be
    # computed (as bare equations in a stream, a masked result usually had masked operands: the
    # model learned almost nothing from 800 steps of them). Equations are arithmetic facts, not
    # word problems: a held-out problem's numbers may occur here as an equation, never as a
    # problem.
    drng = random.Random(args.seed + 11)
    with open(os.path.join(args.out, "drill.jsonl"), "w") as f:
        for _ in range(args.n_drill):
            eqs = [drill_equation(drng) for _ in range(drng.randint(1, 6))]
            prompt = "Compute: " + ", ".join(e.split(" = ")[0] for e in eqs)
            f.write(json.dumps({"task": "drill", "prompt": prompt, "response": " ".join(eqs)}) + "\n")
    counts = {}
    for t in tasks:
        counts[t["task"]] = counts.get(t["task"], 0) + 1
    print(json.dumps({"seed": args.seed, "tasks": counts, "prose_docs": len(docs),
                      "prose_chars": sum(len(d["text"]) for d in docs),
                      "eval": {k: len(v) for k, v in evals.items()}}))


if __name__ == "__main__":
    main()
