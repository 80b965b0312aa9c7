#!/usr/bin/env python3
"""Checks the v2 training data (issue 22) at a small scale: `python3 train/test_data.py`.

Generates the data into a temporary folder (no Debian prose, so no download; a few seconds)
and checks, independently of the generator's own assertions where it can:
  * the generator's held-out/training split assertion holds (it runs inside make_data.py), and
    again here: no held-out template id and no held-out (name, numbers) fact in training;
  * every task has several distinct surface forms (template ids, and prompt skeletons with the
    names, numbers and slot words blanked);
  * answers are well formed: every word problem and qa answer ends "The answer is X.", every
    equation "a op b = c" in it is right, X is the last equation's result, and for every item
    with a `check` X equals the answer recomputed here from the operands (own formulas);
  * numbers up to 1000 occur (in prompts and answers);
  * no free-form eval prompt (models/demo/eval/freeform.jsonl) occurs in training verbatim or
    as an instance of a training frame, and its items are well formed (>= 50, answers right);
  * the v1 eval files are unchanged (byte for byte those in models/demo/eval).
Needs only the standard library.
"""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import problems  # noqa: E402

FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def load(path):
    return [json.loads(l) for l in open(path) if l.strip()]


# The answer of a word problem from its kind and operands: written here, not taken from
# problems.FORMULA, so that a wrong formula there shows up.
RECOMPUTE = {
    "add": lambda v: v["a"] + v["b"], "sub": lambda v: v["a"] - v["b"], "mul": lambda v: v["a"] * v["b"],
    "div": lambda v: v["a"] // v["k"] if v["a"] % v["k"] == 0 else None, "more": lambda v: v["a"] + v["k"],
    "half": lambda v: v["a"] + v["a"] // 2 if v["a"] % 2 == 0 else None, "twice": lambda v: 3 * v["a"],
    "more_total": lambda v: 2 * v["a"] + v["k"], "fewer_total": lambda v: 2 * v["a"] - v["k"],
    "groups_give": lambda v: v["n"] * v["k"] - v["g"], "spend_two": lambda v: v["a"] - v["s"] - v["t"],
    "eat_share": lambda v: (v["a"] - v["e"]) // v["k"] if (v["a"] - v["e"]) % v["k"] == 0 else None,
    "three": lambda v: v["x"] + v["y"] + v["z"], "add_sub": lambda v: v["a"] + v["b"] - v["g"],
    "price": lambda v: v["a"] - v["n"] * v["k"],
    "+": lambda v: v[0] + v[1], "-": lambda v: v[0] - v[1], "*": lambda v: v[0] * v[1],
    "/": lambda v: v[0] // v[1] if v[0] % v[1] == 0 else None,
}
EQ = re.compile(r"(\d+) ([-+*/]) (\d+) = (-?\d+)")
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
       "/": lambda a, b: a // b if b and a % b == 0 else None}


def skeleton(prompt):
    """The prompt with numbers, known names and slot words blanked: its surface form."""
    s = re.sub(r"\d+", "#", prompt)
    words = set(problems.NAMES) | set(problems.OBJECTS) | set(problems.FOODS) | set(problems.PLACES)
    words |= {w for pair in problems.CONTAINERS + problems.PRICED + problems.OPPOSITES for w in pair}
    words |= set(problems.WEEKDAYS) | set(problems.MONTHS) | set(problems.NUMWORDS)
    words |= {w for pair in problems.ACTIVITIES for w in pair} | {"he", "she", "his", "her", "him", "He", "She", "His", "Her"}
    words |= {w for t in problems.THINGS for w in t.split()}
    return " ".join("_" if w.strip(".,?!'s").strip(".,?!") in words or re.fullmatch(r"[a-z]", w.strip(".,?!")) else w for w in s.split())


def check_answer(item, where):
    """A worked answer: right equations, 'The answer is X.' at the end, X the last result, and X
    equal to the answer recomputed from `check`."""
    r = item["response"]
    m = re.search(r"The answer is ([\w'-]+)\.$", r)
    check(m is not None, f"{where}: answer does not end 'The answer is X.': {r!r}")
    if not m:
        return None
    eqs = EQ.findall(r)
    for a, op, b, c in eqs:
        check(OPS[op](int(a), int(b)) == int(c), f"{where}: wrong equation {a} {op} {b} = {c} in {r!r}")
    if "check" in item:
        want = RECOMPUTE[item["check"]["kind"]](item["check"]["args"])
        check(want is not None and str(want) == m.group(1), f"{where}: answer {m.group(1)} != recomputed {want}: {item['prompt']!r}")
        check(bool(eqs) and eqs[-1][3] == m.group(1), f"{where}: the answer is not the last equation's result: {r!r}")
        check(0 <= int(m.group(1)) <= 1000, f"{where}: answer out of 0..1000: {r!r}")
    return m.group(1)


def main():
    freeform_path = os.path.join(ROOT, "models", "demo", "eval", "freeform.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "data")
        cmd = [sys.executable, os.path.join(HERE, "make_data.py"), "--out", out, "--no-prose",
               "--n-arith", "6000", "--n-qa", "3000", "--n-infill", "1000", "--n-copy", "100",
               "--n-drill", "100", "--freeform", freeform_path]
        p = subprocess.run(cmd, capture_output=True, text=True)
        print(p.stdout.strip())
        check(p.returncode == 0, "make_data.py failed (its split assertions included):\n" + p.stderr[-2000:])
        if p.returncode != 0:
            return finish()
        check('"v2_split": "ok"' in p.stdout, "make_data.py did not report its v2 split check")
        tasks = load(os.path.join(out, "tasks.jsonl"))
        evals = {f[:-6]: load(os.path.join(out, "eval", f)) for f in os.listdir(os.path.join(out, "eval"))}

    # --- the split, checked again here
    train = [t for t in tasks if t["task"] in ("arithmetic", "qa")]
    train_ids = {t["template"] for t in train}
    held_ids = set(problems.HELDOUT)
    check(not train_ids & held_ids, f"held-out template ids in training: {sorted(train_ids & held_ids)}")
    forms = evals.get("arithmetic_forms", [])
    check(len(forms) >= 100, f"arithmetic_forms has {len(forms)} items")
    check({e["template"] for e in forms} == held_ids, "arithmetic_forms does not cover exactly the held-out frames")
    train_facts = {problems.fact(t["prompt"]) for t in train} - {None}
    for task in ("arithmetic", "arithmetic_forms", "freeform"):
        clash = [e["prompt"] for e in evals.get(task, []) if (problems.fact(e["prompt"]) or "-") in train_facts]
        check(not clash, f"{task}: held-out (name, numbers) facts in training: {clash[:3]}")
    # the v1 arithmetic items' templates must not be trained: no training prompt has a v1 skeleton
    v1_skel = {skeleton(e["prompt"]) for e in evals["arithmetic"]}
    check(not v1_skel & {skeleton(t["prompt"]) for t in train}, "a v1 arithmetic template is trained")

    # --- surface forms per task
    by_task = collections.defaultdict(list)
    for t in tasks:
        by_task[t["task"]].append(t)
    forms_per = {}
    for task in ("arithmetic", "qa", "reversal"):
        items = by_task[task]
        ids = {t.get("template", "v1") for t in items}
        skels = {skeleton(t["prompt"]) for t in items}
        forms_per[task] = {"items": len(items), "template_ids": len(ids), "skeletons": len(skels)}
    for task in ("arithmetic", "qa"):
        kinds = collections.Counter(t["template"].rsplit(".", 1)[0] for t in by_task[task])
        per_kind = collections.defaultdict(set)
        for t in by_task[task]:
            per_kind[t["template"].rsplit(".", 1)[0]].add(t["template"])
        few = {k: len(v) for k, v in per_kind.items() if len(v) < 2}
        check(not few, f"{task}: kinds with fewer than 2 training frames: {few}")
        check(forms_per[task]["template_ids"] >= 25, f"{task}: only {forms_per[task]['template_ids']} templates")
        check(forms_per[task]["skeletons"] >= forms_per[task]["template_ids"],
              f"{task}: fewer surface forms than templates")
        forms_per[task]["kinds"] = len(kinds)
    print(json.dumps({"surface_forms": forms_per}))

    # --- answers
    for i, t in enumerate(train):
        check_answer(t, f"{t['task']}[{i}] {t['template']}")
    two_step = sum(1 for t in by_task["arithmetic"] if len(EQ.findall(t["response"])) == 2)
    check(two_step > 0.2 * len(by_task["arithmetic"]), f"only {two_step} two-step problems")
    distracted = sum(1 for t in by_task["arithmetic"]
                     if len(re.findall(r"\d+", t["prompt"])) > len(t["check"]["args"]))
    check(distracted > 0.1 * len(by_task["arithmetic"]), f"only {distracted} problems with a distractor number")
    for e in forms:
        want = RECOMPUTE[[k for k in problems.KINDS if e["template"].startswith(k + ".")][0]]
        check(re.fullmatch(r"\d+", e["answer"]) is not None, f"arithmetic_forms answer {e['answer']!r}")

    # --- numbers up to 1000
    nums = [int(x) for t in train for x in re.findall(r"\d+", t["prompt"] + " " + t["response"])]
    big = sum(1 for n in nums if n >= 100)
    check(max(nums) >= 900 and big > 0.1 * len(nums), f"numbers: max {max(nums)}, {big} of {len(nums)} >= 100")
    check(max(nums) <= 1000, f"a number above 1000: {max(nums)}")
    print(json.dumps({"numbers": {"max": max(nums), "share_3_digit": round(big / len(nums), 3),
                                  "two_step_problems": two_step, "with_distractor": distracted}}))

    # --- the free-form eval: independent of the generator
    ff = load(freeform_path)
    check(len(ff) >= 50, f"freeform has {len(ff)} items")
    check(all(set(e) >= {"task", "prompt", "answer"} and e["task"] == "freeform" for e in ff), "freeform item shape")
    check(len({e["prompt"] for e in ff}) == len(ff), "duplicate freeform prompts")
    prompts = {t["prompt"] for t in tasks}
    check(not [e["prompt"] for e in ff if e["prompt"] in prompts], "a freeform prompt is a training prompt")
    frames = problems.train_regexes()
    for e in ff:
        hit = [tid for tid, rx in frames if rx.fullmatch(e["prompt"])]
        check(not hit, f"freeform prompt {e['prompt']!r} is an instance of training frames {hit}")
    ff_skel = {skeleton(e["prompt"]) for e in ff}
    check(not ff_skel & {skeleton(t["prompt"]) for t in tasks}, "a freeform prompt has a training prompt's skeleton")
    numeric = [e for e in ff if re.fullmatch(r"\d+", e["answer"])]
    check(len(numeric) >= 40, f"only {len(numeric)} numeric freeform items")
    check(all(0 <= int(e["answer"]) <= 1000 for e in numeric), "freeform answer out of range")
    print(json.dumps({"freeform": {"items": len(ff), "numeric": len(numeric), "word": len(ff) - len(numeric)}}))

    # --- the generator's split check fails on leaked data (it must not pass everything)
    import random
    import make_data
    rng = random.Random(5)
    held_item = problems.problem(rng, sorted(problems.HELDOUT)[0])
    ok_item = problems.problem(rng, problems.template_ids("train")[0])
    held = {"templates": set(problems.HELDOUT), "facts": {problems.fact(held_item["prompt"])},
            "prompts": [held_item["prompt"], ff[0]["prompt"]]}
    leaks = {
        "held-out template": dict(held_item, template=held_item["template"]),
        "held-out fact": dict(ok_item, prompt=held_item["prompt"]),
        "freeform prompt verbatim": dict(ok_item, prompt=ff[0]["prompt"]),
    }
    clean = {"templates": held["templates"], "facts": set(), "prompts": []}
    try:
        make_data.check_v2_split([ok_item], {}, clean)
    except AssertionError as e:
        check(False, f"check_v2_split rejects clean data: {e}")
    for what, item in leaks.items():
        try:
            make_data.check_v2_split([ok_item, item], {}, held)
            check(False, f"check_v2_split let a {what} through")
        except AssertionError:
            pass
    # a held-out prompt that is an instance of a training frame (not verbatim) must fail too
    inst = problems.problem(random.Random(9), problems.template_ids("train")[0])
    try:
        make_data.check_v2_split([ok_item], {}, dict(clean, prompts=[inst["prompt"]]))
        check(False, "check_v2_split let a training-frame instance through as a held-out prompt")
    except AssertionError:
        pass

    # --- the v1 eval files are the shipped ones
    for name in ("arithmetic", "infill", "reversal_forward", "reversal_backward", "reversal_whose",
                 "reversal_cloze_forward", "reversal_cloze_backward"):
        shipped = os.path.join(ROOT, "models", "demo", "eval", name + ".jsonl")
        if os.path.exists(shipped):
            check(load(shipped) == evals[name], f"eval/{name}.jsonl differs from the shipped one")
    return finish()


def finish():
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    print("all data checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
