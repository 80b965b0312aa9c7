#!/usr/bin/env python3
"""The v2 task generators (issue 22): word problems and free-form questions in many surface forms.

Every item comes from a *frame*: a sentence structure with slots ({N} a name, {a} a number,
{O} an object, ...), identified by a template id "<kind>.<index>" (e.g. "add.3"). Frames are
partitioned by id: the ids in HELDOUT are never used for training, only for the held-out eval
task `arithmetic_forms`; make_data.py asserts that no held-out template id and no held-out
(name, numbers) fact occurs in training. Answers are worked, one equation per step, and end with
"The answer is N." ("Mia has 12 + 30 = 42 apples. The answer is 42.").

Each word problem item also carries `check`: its kind and operands, so that a test can
recompute the answer on its own (train/test_data.py).

The frames were written after the hand-written free-form eval (models/demo/eval/freeform.jsonl)
and must not match any of its prompts; train/test_data.py checks that with `frame_regex`.
"""

import re

GIRLS = ["Natalia", "Emma", "Sara", "Lily", "Mia", "Ava", "Zoe", "Nora", "Ella", "Ruby",
         "Grace", "Chloe", "Anna", "Julia", "Maya", "Rosa", "Lucy", "Amy", "Eva", "Ivy",
         "Hana", "Lena", "Olivia", "Sofia", "Leah", "Alice", "Clara", "Iris", "Jade", "Kate",
         "Nina", "Tara", "Vera", "Wendy", "Yara", "Dina", "Beth", "Gina", "Lisa", "Fatima"]
BOYS = ["Tom", "Sam", "Ben", "Leo", "Max", "Jack", "Noah", "Liam", "Owen", "Adam",
        "Ryan", "Paul", "Mark", "Eric", "Hugo", "Luke", "Dan", "Ian", "Joe", "Carl",
        "Omar", "Ravi", "Sven", "Theo", "Victor", "Will", "Zack", "Felix", "Gus", "Hank",
        "Ivan", "Kofi", "Milo", "Nico", "Oscar", "Pete", "Rory", "Seth", "Tim", "Abe"]
NAMES = GIRLS + BOYS

OBJECTS = ["apples", "pens", "stickers", "marbles", "cards", "books", "shells", "stamps",
           "coins", "balloons", "pencils", "cookies", "eggs", "oranges", "toys", "beads",
           "flowers", "candies", "crayons", "buttons", "rocks", "leaves", "blocks", "bottles",
           "cups", "plates", "shirts", "socks", "carrots", "potatoes", "lemons", "peaches",
           "pears", "plums", "nuts", "ribbons", "rings", "kites", "boats", "cars"]
FOODS = ["cookies", "cupcakes", "muffins", "brownies", "pancakes", "rolls", "tarts", "pies"]
CONTAINERS = [("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("basket", "baskets"),
              ("pack", "packs"), ("crate", "crates"), ("tin", "tins"), ("bucket", "buckets")]
PRICED = [("notebook", "notebooks"), ("ticket", "tickets"), ("sandwich", "sandwiches"),
          ("toy car", "toy cars"), ("comic", "comics"), ("ball", "balls"), ("mug", "mugs"),
          ("plant", "plants"), ("lamp", "lamps"), ("scarf", "scarves")]
THINGS = ["a book", "lunch", "a toy", "a hat", "a game", "a ball", "paint", "a kite",
          "a shirt", "a cake", "a puzzle", "a plant", "a map", "a lamp"]
MONTH_PAIRS = [("April", "May"), ("May", "June"), ("June", "July"), ("March", "April"),
               ("September", "October"), ("January", "February"), ("July", "August"),
               ("October", "November")]
DAY_PAIRS = [("Monday", "Tuesday"), ("Tuesday", "Wednesday"), ("Wednesday", "Thursday"),
             ("Thursday", "Friday"), ("Friday", "Saturday"), ("Saturday", "Sunday")]
ACTIVITIES = [("walked", "miles"), ("ran", "laps"), ("read", "pages"), ("swam", "laps"),
              ("rode", "miles"), ("drew", "pictures"), ("wrote", "pages"), ("cycled", "miles")]
PLACES = ["park", "garden", "kitchen", "school", "beach", "market", "library", "farm", "shop", "zoo"]

# (setup, question, answer) per frame; setup "" for a one-sentence question. Slots:
#   {N} {N2} names, {P} he/she, {Pc} He/She, {Pos} his/her, {Obj} him/her, {O} {O2} objects,
#   {a} {b} {k} ... numbers, {c} the result, {s} a step's result, and kind-specific words.
# The answer restates the subject and shows every step as "x op y = z".
KINDS = {
    # ---------------------------------------------------------------- one step
    "add": [
        ("{N} has {a} {O}.", "{Pc} gets {b} more {O}. How many {O} does {N} have now?",
         "{N} has {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} had {a} {O}, and {Pos} friend gave {Obj} {b} more.", "How many {O} does {N} have?",
         "{N} has {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} picked {a} {O} in the morning and {b} {O} in the afternoon.", "How many {O} did {P} pick?",
         "{N} picked {a} + {b} = {c} {O}. The answer is {c}."),
        ("There are {a} {O} in a basket. {N} puts in {b} more {O}.", "How many {O} are in the basket now?",
         "There are {a} + {b} = {c} {O} in the basket. The answer is {c}."),
        ("{N} found {a} {O} on Monday and {b} {O} on Tuesday.", "What is the total number of {O} {P} found?",
         "{N} found {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} has {a} {O} and {N2} has {b} {O}.", "How many {O} do they have altogether?",
         "Together they have {a} + {b} = {c} {O}. The answer is {c}."),
        ("", "How many {O} does {N} have if {P} starts with {a} {O} and buys {b} more?",
         "{N} has {a} + {b} = {c} {O}. The answer is {c}."),
        ("A shop had {a} {O}. A truck brought {b} more {O}.", "How many {O} does the shop have now?",
         "The shop has {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} counted {a} {O}, then counted {b} more.", "How many {O} did {N} count in all?",
         "{N} counted {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} had {a} {O}. For {Pos} birthday {P} got another {b}.", "How many {O} does {P} have now?",
         "{N} has {a} + {b} = {c} {O}. The answer is {c}."),
    ],
    "sub": [
        ("{N} has {a} {O}. {Pc} gives {b} {O} to {N2}.", "How many {O} does {N} have left?",
         "{N} has {a} - {b} = {c} {O} left. The answer is {c}."),
        ("{N} had {a} {O} but lost {b} of them.", "How many {O} does {P} have now?",
         "{N} has {a} - {b} = {c} {O} now. The answer is {c}."),
        ("There were {a} {O} on the table. {N} took {b} {O}.", "How many {O} are on the table now?",
         "There are {a} - {b} = {c} {O} on the table. The answer is {c}."),
        ("A shop had {a} {O} and sold {b} of them.", "How many {O} does the shop have left?",
         "The shop has {a} - {b} = {c} {O} left. The answer is {c}."),
        ("{N} needs {a} {O}. {Pc} already has {b}.", "How many more {O} does {P} need?",
         "{N} needs {a} - {b} = {c} more {O}. The answer is {c}."),
        ("{N} has {a} {O} and {N2} has {b} {O}.", "How many more {O} does {N} have than {N2}?",
         "{N} has {a} - {b} = {c} more {O}. The answer is {c}."),
        ("Out of {a} {O}, {b} were broken.", "How many {O} were not broken?",
         "{a} - {b} = {c} {O} were not broken. The answer is {c}."),
        ("{N} started with {a} {O}.", "After giving away {b}, how many {O} does {P} have?",
         "{N} has {a} - {b} = {c} {O}. The answer is {c}."),
        ("{N} had {a} dollars in {Pos} wallet and paid {b} dollars for {T}.", "How many dollars are still in the wallet?",
         "There are {a} - {b} = {c} dollars in the wallet. The answer is {c}."),
        ("The {PL} had {a} visitors in the morning. By noon {b} of them had gone home.", "How many visitors were still there?",
         "{a} - {b} = {c} visitors were still there. The answer is {c}."),
    ],
    "mul": [
        ("{N} has {a} bags. Each bag has {b} {O}.", "How many {O} does {N} have?",
         "{N} has {a} * {b} = {c} {O}. The answer is {c}."),
        ("There are {a} rows with {b} {O} in each row.", "How many {O} are there in all?",
         "There are {a} * {b} = {c} {O}. The answer is {c}."),
        ("{N} buys {a} packs of {O}. There are {b} {O} in every pack.", "How many {O} did {P} buy?",
         "{N} bought {a} * {b} = {c} {O}. The answer is {c}."),
        ("Each {C} holds {b} {O}.", "How many {O} fit in {a} {Cs}?",
         "{a} {Cs} hold {a} * {b} = {c} {O}. The answer is {c}."),
        ("{N} gets {b} {O} every day.", "How many {O} does {P} get in {a} days?",
         "In {a} days {N} gets {a} * {b} = {c} {O}. The answer is {c}."),
        ("One {I} costs {b} dollars.", "How many dollars do {a} {Is} cost?",
         "{a} {Is} cost {a} * {b} = {c} dollars. The answer is {c}."),
        ("{N} has {b} {O}. {N2} has {a} times as many {O} as {N}.", "How many {O} does {N2} have?",
         "{N2} has {b} * {a} = {c} {O}. The answer is {c}."),
        ("{N} puts {b} {O} on each of {a} plates.", "How many {O} are on the plates?",
         "There are {a} * {b} = {c} {O} on the plates. The answer is {c}."),
    ],
    "div": [
        ("{N} shares {a} {O} equally among {k} friends.", "How many {O} does each friend get?",
         "Each friend gets {a} / {k} = {c} {O}. The answer is {c}."),
        ("{a} {O} are put into {k} equal groups.", "How many {O} are in each group?",
         "Each group has {a} / {k} = {c} {O}. The answer is {c}."),
        ("{N} has {a} {O} and puts {k} {O} in each {C}.", "How many {Cs} does {P} fill?",
         "{N} fills {a} / {k} = {c} {Cs}. The answer is {c}."),
        ("There are {a} {O} for {k} children. Each child gets the same number.", "How many {O} does each child get?",
         "Each child gets {a} / {k} = {c} {O}. The answer is {c}."),
        ("{N} wants to read a book of {a} pages in {k} days, the same number of pages each day.", "How many pages must {P} read each day?",
         "{N} must read {a} / {k} = {c} pages each day. The answer is {c}."),
        ("{k} friends pay {a} dollars for a pizza and split the cost evenly.", "How many dollars does each friend pay?",
         "Each friend pays {a} / {k} = {c} dollars. The answer is {c}."),
    ],
    "more": [  # k more than: one step
        ("{N} has {a} {O}. {N2} has {k} more {O} than {N}.", "How many {O} does {N2} have?",
         "{N2} has {a} + {k} = {c} {O}. The answer is {c}."),
        ("{N2} has {k} {O} more than {N}, and {N} has {a}.", "How many {O} does {N2} have?",
         "{N2} has {a} + {k} = {c} {O}. The answer is {c}."),
        ("A shelf had {a} {O} last week. This week it has {k} more.", "How many {O} are on the shelf this week?",
         "The shelf has {a} + {k} = {c} {O}. The answer is {c}."),
        ("A red box has {a} {O}. A blue box has {k} more {O} than the red box.", "How many {O} are in the blue box?",
         "The blue box has {a} + {k} = {c} {O}. The answer is {c}."),
    ],
    # ---------------------------------------------------------------- two steps
    "half": [
        ("In {M1} {N} sold {a} {O}. In {M2} {P} sold half that number.", "How many {O} did {P} sell in the two months?",
         "In {M2} {P} sold {a} / 2 = {b} {O}. Altogether {P} sold {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} has {a} {O}. {N2} has half as many {O} as {N}.", "How many {O} do they have in total?",
         "{N2} has {a} / 2 = {b} {O}. Together they have {a} + {b} = {c} {O}. The answer is {c}."),
        ("On {D1} {N} {V} {a} {U}. On {D2} {P} {V} only half as many {U}.", "How many {U} did {P} do on the two days?",
         "On {D2} {P} {V} {a} / 2 = {b} {U}. In total {P} {V} {a} + {b} = {c} {U}. The answer is {c}."),
    ],
    "twice": [
        ("{N} has {a} {O}. {N2} has twice as many.", "How many {O} do the two of them have?",
         "{N2} has {a} * 2 = {b} {O}. Together they have {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} {V} {a} {U} on {D1}. On {D2} {P} {V} two times as many {U}.", "How many {U} did {P} do on both days?",
         "On {D2} {P} {V} {a} * 2 = {b} {U}. On both days {P} {V} {a} + {b} = {c} {U}. The answer is {c}."),
        ("A small jar has {a} {O}. A big jar has double that.", "How many {O} are in the two jars?",
         "The big jar has {a} * 2 = {b} {O}. The two jars have {a} + {b} = {c} {O}. The answer is {c}."),
    ],
    "more_total": [
        ("{N2} has {k} more {O} than {N}, who has {a}.", "How many {O} do the two have in all?",
         "{N2} has {a} + {k} = {b} {O}. Together they have {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} collected {a} {O}. {N2} collected {k} more {O} than {N}.", "What is the total number of {O} they collected?",
         "{N2} collected {a} + {k} = {b} {O}. They collected {a} + {b} = {c} {O}. The answer is {c}."),
        ("There are {a} {O} in the first box and {k} more in the second box.", "How many {O} are in both boxes?",
         "The second box has {a} + {k} = {b} {O}. Both boxes have {a} + {b} = {c} {O}. The answer is {c}."),
    ],
    "fewer_total": [
        ("{N} has {a} {O}, and {N2} has {k} fewer.", "What is the number of {O} they have between them?",
         "{N2} has {a} - {k} = {b} {O}. Together they have {a} + {b} = {c} {O}. The answer is {c}."),
        ("{N} scored {a} points. {N2} scored {k} points less than {N}.", "How many points did the two score altogether?",
         "{N2} scored {a} - {k} = {b} points. Together they scored {a} + {b} = {c} points. The answer is {c}."),
        ("A farm has {a} hens and {k} fewer ducks than hens.", "How many birds are there on the farm?",
         "There are {a} - {k} = {b} ducks. There are {a} + {b} = {c} birds. The answer is {c}."),
    ],
    "groups_give": [
        ("{N} bought {n} {Cs} of {O} with {k} {O} in each {C} and gave {g} {O} to {N2}.", "How many {O} does {N} have now?",
         "{N} bought {n} * {k} = {b} {O}. {Pc} has {b} - {g} = {c} {O} now. The answer is {c}."),
        ("There are {n} {Cs}, each with {k} {O}. {N} uses {g} of the {O}.", "How many {O} are not used?",
         "There are {n} * {k} = {b} {O}. {b} - {g} = {c} {O} are not used. The answer is {c}."),
        ("{N} makes {k} {F} a day for {n} days and sells {g} of them.", "How many {F} does {P} still have?",
         "{N} makes {n} * {k} = {b} {F}. {Pc} still has {b} - {g} = {c} {F}. The answer is {c}."),
    ],
    "spend_two": [
        ("{N} went to the store with {a} dollars. {Pc} paid {s} dollars for {T} and {t} dollars for {T2}.", "How much money does {P} have now?",
         "{Pc} paid {s} + {t} = {b} dollars. {Pc} has {a} - {b} = {c} dollars now. The answer is {c}."),
        ("{N} had {a} dollars. Buying {T} cost {Obj} {s} dollars, and {T2} cost {t} dollars.", "How many dollars are left?",
         "{N} spent {s} + {t} = {b} dollars. {a} - {b} = {c} dollars are left. The answer is {c}."),
        ("{N} saved {a} dollars. {Pc} spends {s} dollars on Saturday and {t} dollars on Sunday.", "How much of the money does {P} still have?",
         "{Pc} spends {s} + {t} = {b} dollars. {Pc} still has {a} - {b} = {c} dollars. The answer is {c}."),
    ],
    "eat_share": [
        ("{N} made {a} {F}. {Pc} ate {e} and gave the rest to {k} friends, the same number each.", "How many {F} did each friend get?",
         "{N} had {a} - {e} = {b} {F} left. Each friend got {b} / {k} = {c} {F}. The answer is {c}."),
        ("There were {a} {O} in a bag. {e} of them were bad, and the good ones were split equally among {k} kids.", "How many {O} did each kid get?",
         "There were {a} - {e} = {b} good {O}. Each kid got {b} / {k} = {c} {O}. The answer is {c}."),
        ("{N} picked {a} {O} and kept {e} for {Obj}self. {Pc} put the others into {k} bags with the same number in each.", "How many {O} are in each bag?",
         "{N} put {a} - {e} = {b} {O} into bags. Each bag has {b} / {k} = {c} {O}. The answer is {c}."),
    ],
    "three": [
        ("On Monday {N} {V} {x} {U}. On Tuesday {P} {V} {y} {U}, and on Wednesday {z} {U}.", "How many {U} is that altogether?",
         "On Monday and Tuesday {P} {V} {x} + {y} = {s} {U}. With Wednesday it is {s} + {z} = {c} {U}. The answer is {c}."),
        ("{N} has three boxes of {O}. They hold {x}, {y} and {z} {O}.", "How many {O} are in the three boxes?",
         "Two boxes hold {x} + {y} = {s} {O}. All three hold {s} + {z} = {c} {O}. The answer is {c}."),
        ("{N} got {x} {O} from {Pos} mother, {y} from {Pos} father and {z} from {N2}.", "How many {O} did {N} get?",
         "From {Pos} parents {N} got {x} + {y} = {s} {O}. With {N2}'s it is {s} + {z} = {c} {O}. The answer is {c}."),
    ],
    "add_sub": [
        ("{N} had {a} {O}. {Pc} bought {b} more and then gave {g} to {N2}.", "How many {O} does {N} have now?",
         "{N} had {a} + {b} = {s} {O}. After giving {g} away {P} has {s} - {g} = {c} {O}. The answer is {c}."),
        ("A bus had {a} people on it. {b} people got on and then {g} got off.", "How many people are on the bus?",
         "After {b} got on there were {a} + {b} = {s} people. Then there were {s} - {g} = {c} people. The answer is {c}."),
        ("The {PL} had {a} {O}. It got {b} more {O} and then sold {g}.", "How many {O} does the {PL} have now?",
         "The {PL} had {a} + {b} = {s} {O}. It has {s} - {g} = {c} {O} now. The answer is {c}."),
    ],
    "price": [
        ("{N} has {a} dollars. {Pc} buys {n} {Is} that cost {k} dollars each.", "How much money does {P} have left?",
         "{Pc} spends {n} * {k} = {s} dollars. {Pc} has {a} - {s} = {c} dollars left. The answer is {c}."),
        ("{N} takes {a} dollars to the fair. Rides cost {k} dollars each, and {P} goes on {n} rides.", "How many dollars does {P} take home?",
         "The rides cost {n} * {k} = {s} dollars. {Pc} takes home {a} - {s} = {c} dollars. The answer is {c}."),
        ("A class has {a} dollars for a trip. The bus costs {k} dollars for each of {n} hours.", "How much money is left after paying for the bus?",
         "The bus costs {n} * {k} = {s} dollars. {a} - {s} = {c} dollars are left. The answer is {c}."),
        ("{Is} cost {k} dollars each. {N} pays for {n} of them with {a} dollars.", "How many dollars does {P} get back?",
         "{n} {Is} cost {n} * {k} = {s} dollars. {Pc} gets {a} - {s} = {c} dollars back. The answer is {c}."),
    ],
}

# Held-out frames: never trained; they make the eval task `arithmetic_forms`: the last frame of
# every kind (15 of 69; 54 are trained).
HELDOUT = {"add.9", "sub.9", "mul.7", "div.5", "more.3", "half.2", "twice.2", "more_total.2",
           "fewer_total.2", "groups_give.2", "spend_two.2", "eat_share.2", "three.2",
           "add_sub.2", "price.3"}

# How the answer follows from the operands (used by the generator to draw consistent numbers and,
# independently, by train/test_data.py to recompute the answer).
FORMULA = {
    "add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a // k", "more": "a + k",
    "half": "a + a // 2", "twice": "a + 2 * a", "more_total": "a + (a + k)",
    "fewer_total": "a + (a - k)", "groups_give": "n * k - g", "spend_two": "a - (s + t)",
    "eat_share": "(a - e) // k", "three": "x + y + z", "add_sub": "a + b - g", "price": "a - n * k",
}

# Distractor sentences: a true but irrelevant fact with a number, put before the question.
DISTRACTORS = [
    "{N2} has {d} {O2}.",
    "{Pc} is {age} years old.",
    "The {PL} is {d} miles away.",
    "{N}'s sister has {d} {O2}.",
    "It took {Obj} {d} minutes.",
    "{N2} owns {d} {O2} too.",
]


def mag(rng, hi):
    """A number 2..hi (no "1 apples"), roughly log-uniform in size: as many one- as two- and three-digit ones."""
    r = rng.random()
    top = 9 if r < 0.3 else 99 if r < 0.65 else 999
    return rng.randint(2, max(2, min(hi, top)))


def draw_numbers(rng, kind):
    """Operands for a kind (all results in 0..1000, steps as the drills practise them)."""
    if kind == "add":
        a = mag(rng, 990) + 1
        b = mag(rng, 1000 - a)
        return dict(a=a, b=b)
    if kind == "sub":
        a = mag(rng, 1000) + 1
        if a < 3:
            a += 2
        b = rng.randint(2, a - 1)
        return dict(a=a, b=b)
    if kind == "mul":
        if rng.random() < 0.7:
            return dict(a=rng.randint(2, 9), b=rng.randint(2, 9))
        return dict(a=rng.randint(2, 9), b=10 * rng.randint(1, 9) if rng.random() < 0.6 else rng.randint(11, 50))
    if kind == "div":
        k, c = rng.randint(2, 9), rng.randint(2, 12)
        return dict(a=k * c, k=k)
    if kind == "more":
        a = mag(rng, 900) + 1
        return dict(a=a, k=mag(rng, 1000 - a))
    if kind == "half":
        return dict(a=2 * (mag(rng, 300) + 1))
    if kind == "twice":
        return dict(a=mag(rng, 300) + 1)
    if kind == "more_total":
        a = mag(rng, 400) + 1
        return dict(a=a, k=mag(rng, 1000 - 2 * a))
    if kind == "fewer_total":
        a = mag(rng, 500) + 3
        return dict(a=a, k=rng.randint(2, a - 1))
    if kind == "groups_give":
        n, k = rng.randint(2, 9), rng.randint(2, 9)
        return dict(n=n, k=k, g=rng.randint(2, n * k - 1))
    if kind == "spend_two":
        s, t = mag(rng, 300), mag(rng, 300)
        return dict(a=rng.randint(s + t + 1, min(1000, s + t + 400)), s=s, t=t)
    if kind == "eat_share":
        k, c = rng.randint(2, 9), rng.randint(2, 12)
        e = rng.randint(2, 20)
        return dict(a=k * c + e, e=e, k=k)
    if kind == "three":
        return dict(x=mag(rng, 300), y=mag(rng, 300), z=mag(rng, 300))
    if kind == "add_sub":
        a = mag(rng, 500) + 1
        b = mag(rng, 1000 - a)
        return dict(a=a, b=b, g=rng.randint(2, a + b - 1))
    if kind == "price":
        n, k = rng.randint(2, 9), rng.randint(2, 9)
        return dict(a=rng.randint(n * k + 1, min(1000, n * k + 200)), n=n, k=k)
    raise KeyError(kind)


def steps(kind, v):
    """The intermediate values the answer shows: b, s, c."""
    c = eval(FORMULA[kind], {}, dict(v))
    out = dict(c=c)
    if kind in ("half",):
        out["b"] = v["a"] // 2
    elif kind == "twice":
        out["b"] = 2 * v["a"]
    elif kind == "more_total":
        out["b"] = v["a"] + v["k"]
    elif kind == "fewer_total":
        out["b"] = v["a"] - v["k"]
    elif kind == "groups_give":
        out["b"] = v["n"] * v["k"]
    elif kind == "spend_two":
        out["b"] = v["s"] + v["t"]
    elif kind == "eat_share":
        out["b"] = v["a"] - v["e"]
    elif kind == "three":
        out["s"] = v["x"] + v["y"]
    elif kind == "add_sub":
        out["s"] = v["a"] + v["b"]
    elif kind == "price":
        out["s"] = v["n"] * v["k"]
    return out


PRON = {"she": ("she", "She", "her", "her"), "he": ("he", "He", "his", "him")}


def words(rng):
    """Slot words for one item: names, pronouns, objects, places, ..."""
    girl = rng.random() < 0.5
    n1 = rng.choice(GIRLS if girl else BOYS)
    n2 = rng.choice([n for n in NAMES if n != n1])
    p, pc, pos, obj = PRON["she" if girl else "he"]
    o, o2 = rng.sample(OBJECTS, 2)
    c, cs = rng.choice(CONTAINERS)
    i, is_ = rng.choice(PRICED)
    m1, m2 = rng.choice(MONTH_PAIRS)
    d1, d2 = rng.choice(DAY_PAIRS)
    v, u = rng.choice(ACTIVITIES)
    t1, t2 = rng.sample(THINGS, 2)
    return dict(N=n1, N2=n2, P=p, Pc=pc, Pos=pos, Obj=obj, O=o, O2=o2, C=c, Cs=cs, I=i, Is=is_,
                M1=m1, M2=m2, D1=d1, D2=d2, V=v, U=u, T=t1, T2=t2, F=rng.choice(FOODS),
                PL=rng.choice(PLACES), d=rng.randint(2, 60), age=rng.randint(5, 15))


def fill(s, w):
    s = s.format(**w)
    return s[0].upper() + s[1:] if s else s


def template_ids(split):
    """Every frame id of the split: "train", "heldout" or "all"."""
    ids = [f"{k}.{i}" for k, fr in KINDS.items() for i in range(len(fr))]
    if split == "all":
        return ids
    return [t for t in ids if (t in HELDOUT) == (split == "heldout")]


def problem(rng, tid, distractor_p=0.3):
    """One word problem from frame `tid`: an item {task, template, prompt, response, check}."""
    kind, idx = tid.rsplit(".", 1)
    setup, question, answer = KINDS[kind][int(idx)]
    v = draw_numbers(rng, kind)
    w = words(rng)
    w.update(v)
    w.update(steps(kind, v))
    parts = [fill(setup, w)] if setup else []
    if rng.random() < distractor_p:
        parts.append(fill(rng.choice(DISTRACTORS), w))
    parts.append(fill(question, w))
    return {"task": "arithmetic", "template": tid, "prompt": " ".join(parts),
            "response": fill(answer, w), "check": {"kind": kind, "args": v}}


# ---------------------------------------------------------------- free-form questions (task "qa")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
NUMWORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen", "twenty"]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"),
             ("happy", "sad"), ("open", "closed"), ("wet", "dry"), ("light", "dark"),
             ("high", "low"), ("full", "empty"), ("early", "late"), ("hard", "soft"), ("long", "short"),
             ("left", "right"), ("in", "out"), ("black", "white"), ("loud", "quiet"), ("rich", "poor"),
             ("strong", "weak"), ("thick", "thin"), ("young", "old"), ("near", "far"), ("first", "last"),
             ("tall", "short"), ("clean", "dirty"), ("heavy", "light"), ("push", "pull"), ("win", "lose")]

# (question, answer) frames per qa kind; {x} the subject, {y} the answer, {a} {b} numbers.
QA = {
    "qa_add": [("What is {a} + {b}?", "{a} + {b} = {y}. The answer is {y}."),
               ("Compute {a} plus {b}.", "{a} + {b} = {y}. The answer is {y}."),
               ("How much are {a} and {b} together?", "{a} + {b} = {y}. The answer is {y}."),
               ("Please add {a} to {b}.", "{b} + {a} = {y}. The answer is {y}."),
               ("What number do {a} and {b} make when added?", "{a} + {b} = {y}. The answer is {y}.")],
    "qa_sub": [("What is {a} - {b}?", "{a} - {b} = {y}. The answer is {y}."),
               ("Calculate {a} take away {b}.", "{a} - {b} = {y}. The answer is {y}."),
               ("What is the difference between {a} and {b}?", "{a} - {b} = {y}. The answer is {y}."),
               ("Start at {a} and count back {b}. Where do you end?", "{a} - {b} = {y}. The answer is {y}.")],
    "qa_mul": [("What is {a} * {b}?", "{a} * {b} = {y}. The answer is {y}."),
               ("Multiply {a} by {b}.", "{a} * {b} = {y}. The answer is {y}."),
               ("How much is {a} multiplied by {b}?", "{a} * {b} = {y}. The answer is {y}.")],
    "qa_div": [("What is {a} / {b}?", "{a} / {b} = {y}. The answer is {y}."),
               ("Divide {a} by {b}.", "{a} / {b} = {y}. The answer is {y}."),
               ("How many times does {b} go into {a}?", "{a} / {b} = {y}. The answer is {y}.")],
    "qa_next": [("What day comes after {x}?", "The day after {x} is {y}. The answer is {y}."),
                ("Name the month that comes after {x}.", "The month after {x} is {y}. The answer is {y}."),
                ("What letter is after {x}?", "The letter after {x} is {y}. The answer is {y}."),
                ("What day was it yesterday if today is {x}?", "The day before {x} is {y}. The answer is {y}."),
                ("Which month comes before {x}?", "The month before {x} is {y}. The answer is {y}.")],
    "qa_opposite": [("What is the opposite of {x}?", "The opposite of {x} is {y}. The answer is {y}."),
                    ("Give a word that means the opposite of {x}.", "The opposite of {x} is {y}. The answer is {y}."),
                    ("{x} is to {y0} as {x2} is to what?", "The opposite of {x2} is {y}. The answer is {y}.")],
    "qa_compare": [("Which is bigger, {a} or {b}?", "{y} is bigger. The answer is {y}."),
                   ("Which number is smaller: {a} or {b}?", "{y} is smaller. The answer is {y}."),
                   ("Is {a} or {b} the larger number?", "{y} is larger. The answer is {y}.")],
    "qa_words": [("Write {a} in words.", "{a} is {y} in words. The answer is {y}."),
                 ("How do you spell the number {a}?", "{a} is spelled {y}. The answer is {y}."),
                 ("What number is the word {x}?", "The word {x} is the number {y}. The answer is {y}.")],
}


def qa_item(rng, kind, idx):
    qf, af = QA[kind][idx]
    w = {}
    if kind == "qa_add":
        x = mag(rng, 990) + 1
        w = dict(a=x, b=mag(rng, 1000 - x))
        w["y"] = w["a"] + w["b"]
        args, op = (w["a"], w["b"]), "+"
    elif kind == "qa_sub":
        x = mag(rng, 1000) + 1
        w = dict(a=x, b=rng.randint(0, x))
        w["y"] = w["a"] - w["b"]
        args, op = (w["a"], w["b"]), "-"
    elif kind == "qa_mul":
        w = dict(a=rng.randint(2, 9), b=rng.randint(2, 9) if rng.random() < 0.7 else 10 * rng.randint(1, 9))
        w["y"] = w["a"] * w["b"]
        args, op = (w["a"], w["b"]), "*"
    elif kind == "qa_div":
        b, y = rng.randint(2, 9), rng.randint(2, 12)
        w = dict(a=b * y, b=b, y=y)
        args, op = (w["a"], w["b"]), "/"
    elif kind == "qa_next":
        seq = [WEEKDAYS, MONTHS, LETTERS, WEEKDAYS, MONTHS][idx]
        j = rng.randrange(1, len(seq)) if idx >= 3 else rng.randrange(len(seq) - 1)
        w = dict(x=seq[j], y=seq[j - 1] if idx >= 3 else seq[j + 1])
        args, op = None, None
    elif kind == "qa_opposite":
        (x, y), (x2, y2) = rng.sample(OPPOSITES, 2)
        if idx < 2:
            w = dict(x=x, y=y)
        else:
            w = dict(x=x, y0=y, x2=x2, y=y2)
        args, op = None, None
    elif kind == "qa_compare":
        a, b = rng.sample(range(1, 1001) if rng.random() < 0.5 else range(1, 100), 2)
        w = dict(a=a, b=b, y=(min if idx == 1 else max)(a, b))
        args, op = None, None
    elif kind == "qa_words":
        j = rng.randrange(len(NUMWORDS))
        w = dict(a=j, x=NUMWORDS[j], y=NUMWORDS[j] if idx < 2 else j)
        args, op = None, None
    item = {"task": "qa", "template": f"{kind}.{idx}", "prompt": fill(qf, w), "response": fill(af, w)}
    if op:
        item["check"] = {"kind": op, "args": list(args)}
    return item


def qa_ids():
    return [f"{k}.{i}" for k, fr in QA.items() for i in range(len(fr))]


# Reversal phrasings beside the v1 ones ("Who is X's mother?" and so on): forward for every fact
# (the forward question is trained for every fact by design), backward only for the train facts.
REV_FORWARD = ["What is the name of {X}'s mother?", "Name {X}'s mother.", "{X}'s mother is called what?"]
REV_BACKWARD = ["Name {Y}'s child.", "Who is the child of {Y}?", "{Y} is the mother of whom?"]


# ---------------------------------------------------------------- checks
NUM = re.compile(r"\d+")


def fact(prompt):
    """The (name, numbers) fact of a prompt: its first known name (or None) and its numbers; None
    for a prompt without numbers (a question about words: "What day comes after Monday?" asks
    what the infill lists teach, as a drill's equation is an arithmetic fact, not a problem)."""
    nums = tuple(int(x) for x in NUM.findall(prompt))
    if not nums:
        return None
    names = [m for m in re.findall(r"[A-Z][a-z]+", prompt) if m in NAMES]
    return (names[0] if names else None, nums)


SLOT = r"[\w']+(?: [\w']+)?"  # a slot's value: one or two words or a number (no punctuation)


def frame_regex(setup, question):
    """A regex that every instance of the frame matches in full: each slot one or two words, and
    any one sentence (a distractor) before the question."""
    def rx(s):
        out, pos = "", 0
        for m in re.finditer(r"\{[A-Za-z0-9]+\}", s):
            out += re.escape(s[pos:m.start()]) + SLOT
            pos = m.end()
        return out + re.escape(s[pos:])
    head = (rx(setup) + " ") if setup else ""
    return re.compile("(?i)" + head + r"(?:[^.?!]+[.?!] )?" + rx(question))


def train_regexes():
    """(template id, regex) of every frame that training uses: word problems, qa, reversal."""
    out = [(t, frame_regex(*KINDS[t.rsplit(".", 1)[0]][int(t.rsplit(".", 1)[1])][:2])) for t in template_ids("train")]
    out += [(t, frame_regex("", QA[t.rsplit(".", 1)[0]][int(t.rsplit(".", 1)[1])][0])) for t in qa_ids()]
    out += [(f"rev.{i}", frame_regex("", q)) for i, q in enumerate(REV_FORWARD + REV_BACKWARD)]
    return out
