"""Drives `binarylm serve` (a real trained model) with the official `openai` Python SDK and
prints what came back as one JSON document; tests/e2e_serve.rs checks it.

usage: python openai_e2e.py BASE_URL MODEL
"""

import json
import sys
import urllib.request

from openai import OpenAI

base_url, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
out = {}


def post(path, body):
    req = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


prompt = "Once upon a time"
out["models"] = [m.id for m in client.models.list().data]
out["prompt_ids"] = post("/tokenize", {"model": model, "prompt": prompt})["tokens"]

c = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0)
out["completion"] = {
    "text": c.choices[0].text,
    "finish_reason": c.choices[0].finish_reason,
    "usage": [c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens],
}
again = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0)
out["completion_again"] = again.choices[0].text

stream = client.completions.create(
    model=model, prompt=prompt, max_tokens=12, temperature=0, stream=True
)
out["completion_stream"] = "".join(ch.choices[0].text for ch in stream if ch.choices)

# The same prompt as token ids gives the same text.
by_ids = client.completions.create(
    model=model, prompt=out["prompt_ids"], max_tokens=12, temperature=0
)
out["completion_by_ids"] = by_ids.choices[0].text

# Scoring the way lm-evaluation-harness does: echo the prompt with its log-probabilities.
scored = client.completions.create(
    model=model, prompt=prompt, max_tokens=1, temperature=0, logprobs=3, echo=True
)
lp = scored.choices[0].logprobs
out["echo"] = {
    "text": scored.choices[0].text,
    "tokens": lp.tokens,
    "token_logprobs": lp.token_logprobs,
    "top_logprobs": lp.top_logprobs,
}

seeded = [
    [
        ch.text
        for ch in client.completions.create(
            model=model, prompt=prompt, max_tokens=8, temperature=1.0, seed=42, n=2
        ).choices
    ]
    for _ in range(2)
]
out["seeded"] = seeded

messages = [{"role": "user", "content": "Tell me a story."}]
chat = client.chat.completions.create(
    model=model, messages=messages, max_tokens=10, temperature=0, logprobs=True, top_logprobs=2
)
out["chat"] = {
    "role": chat.choices[0].message.role,
    "content": chat.choices[0].message.content,
    "finish_reason": chat.choices[0].finish_reason,
    "logprobs": [t.logprob for t in chat.choices[0].logprobs.content],
    "completion_tokens": chat.usage.completion_tokens,
}
parts, usage, chunks = [], None, 0
for ch in client.chat.completions.create(
    model=model,
    messages=messages,
    max_tokens=10,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
):
    chunks += 1
    if ch.choices and ch.choices[0].delta.content:
        parts.append(ch.choices[0].delta.content)
    if ch.usage is not None:
        usage = ch.usage.completion_tokens
out["chat_stream"] = {"content": "".join(parts), "completion_tokens": usage, "chunks": chunks}

errors = {}
try:
    client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
except Exception as e:  # the SDK raises NotFoundError
    errors["unknown_model"] = [getattr(e, "status_code", None), type(e).__name__]
try:
    client.completions.create(model=model, prompt=prompt, max_tokens=100000)
except Exception as e:
    errors["too_long"] = [getattr(e, "status_code", None), str(e)]
out["errors"] = errors

print(json.dumps(out))
