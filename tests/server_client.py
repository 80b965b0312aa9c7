"""`unmask serve` driven by OpenAI's own Python client (tests/server.rs starts the server and runs
this with the virtual environment `./build.sh deps` makes). Usage: server_client.py BASE_URL.
Each check prints one line; any failure raises, and the exit code is not 0."""

import json
import sys
import urllib.request

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)
QUESTION = "Mia has 12 apples and buys 30 more. How many apples does she have now?"
# Several blocks, so that a streamed answer is final piece by piece.
LONG = dict(max_tokens=64, extra_body={"block_length": 16, "steps": 64, "early_stop": False})


def health():
    with urllib.request.urlopen(f"{base}/health") as r:
        return json.load(r)


def check(what, ok, detail=""):
    if not ok:
        raise AssertionError(f"{what}: {detail}")
    print(f"ok   {what}")


models = client.models.list().data
check("models lists the one model", len(models) == 1 and models[0].id, models)
model = models[0].id

# Chat, not streamed: OpenAI's shape.
r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], seed=3, **LONG)
content = r.choices[0].message.content
check("chat answer has text", r.object == "chat.completion" and content.strip(), r)
check("chat finish_reason", r.choices[0].finish_reason in ("stop", "length"), r.choices[0].finish_reason)
check("chat usage", r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 64 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage)
check("no special tokens in the answer", "<|" not in content, content)

# Chat, streamed: text arrives while the generation still runs, and adds up to the same answer.
stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], seed=3, stream=True, **LONG)
pieces, finish, running_at_first = [], None, None
for chunk in stream:
    check_shape = chunk.object == "chat.completion.chunk" and len(chunk.choices) == 1
    if not check_shape:
        raise AssertionError(f"chunk shape: {chunk}")
    delta = chunk.choices[0].delta.content
    if delta:
        if running_at_first is None:
            running_at_first = health()["running"]
        pieces.append(delta)
    finish = chunk.choices[0].finish_reason or finish
check("streamed in several pieces", len(pieces) >= 2, pieces)
check("the first piece came while the generation was running", running_at_first == 1, running_at_first)
check("streamed text = the non-streamed answer (same seed)", "".join(pieces) == content, ("".join(pieces), content))
check("streamed finish_reason = the non-streamed one", finish == r.choices[0].finish_reason, finish)

# Sampling with a seed is repeatable, and another seed may differ (both must be valid answers).
a = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0.9, seed=11, max_tokens=32)
b = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0.9, seed=11, max_tokens=32)
check("same seed, same answer", a.choices[0].message.content == b.choices[0].message.content, (a, b))

# Completions, streamed and not.
c = client.completions.create(model=model, prompt="Tom has 5 pens", seed=1, **LONG)
check("completion has text", c.object == "text_completion" and c.choices[0].text, c)
cs = "".join(ch.choices[0].text for ch in client.completions.create(model=model, prompt="Tom has 5 pens", seed=1, stream=True, **LONG))
check("streamed completion = non-streamed", cs == c.choices[0].text, (cs, c.choices[0].text))

# A conversation with a system turn and an earlier answer is the family's chat template (LLaDA's
# for the demo model): the same as a completion of that text.
turns = [
    ("system", "You answer arithmetic questions."),
    ("user", "What is 2 + 3?"),
    ("assistant", "2 + 3 = 5. The answer is 5."),
    ("user", QUESTION),
]
m = client.chat.completions.create(model=model, max_tokens=32, seed=5, messages=[{"role": r, "content": [{"type": "text", "text": c}]} for r, c in turns])
templated = "<|startoftext|>" + "".join(f"<|start_header_id|>{r}<|end_header_id|>\n\n{c}<|eot_id|>" for r, c in turns) + "<|start_header_id|>assistant<|end_header_id|>\n\n"
mc = client.completions.create(model=model, max_tokens=32, seed=5, prompt=templated)
check("multi-turn chat = completion of the template", m.choices[0].message.content == mc.choices[0].text and m.usage.prompt_tokens == mc.usage.prompt_tokens > r.usage.prompt_tokens, (m, mc))

# Stop strings end the answer before them.
full = content
word = next((w for w in full.split() if len(w) > 3), None)
check("the answer has a word to stop at", word is not None, full)
s = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], seed=3, stop=[word], **LONG)
check("stop string cuts the answer", s.choices[0].message.content == full[: full.index(word)] and s.choices[0].finish_reason == "stop", (s.choices[0].message.content, word))

# max_tokens that is not a multiple of the block: the answer is cut there.
t = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], max_tokens=5)
check("max_tokens 5 gives at most 5 tokens", t.usage.completion_tokens <= 5 and t.choices[0].finish_reason in ("stop", "length"), t)

# Errors arrive as the client's typed exceptions, with OpenAI's fields.
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], extra_body={"steps": 7})
    raise AssertionError("steps 7 was accepted")
except openai.BadRequestError as e:
    check("bad steps: 400 naming the field", e.status_code == 400 and e.body.get("param") == "steps" and "steps" in e.message, e.body)
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    check("unknown model: 404 model_not_found", e.body.get("code") == "model_not_found", e.body)
try:
    client.chat.completions.create(model=model, messages=[])
    raise AssertionError("empty messages were accepted")
except openai.BadRequestError as e:
    check("empty messages: 400", "messages" in e.message, e.body)
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], max_tokens=100000)
    raise AssertionError("an oversize request was accepted")
except openai.BadRequestError as e:
    check("oversize request: 400 naming max_tokens", e.body.get("param") == "max_tokens" and "context" in e.message, e.body)
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], temperature=-1)
    raise AssertionError("a negative temperature was accepted")
except openai.BadRequestError as e:
    check("negative temperature: 400", e.body.get("param") == "temperature", e.body)
print("all client checks passed")
