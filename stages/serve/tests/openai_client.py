"""Drives a binarylm server with the official `openai` Python SDK and prints what came back as
one JSON document; the Rust test that runs this checks the values against the model.

usage: python openai_client.py BASE_URL MODEL API_KEY
"""

import json
import sys

import openai
from openai import OpenAI

base_url, model, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=30)
out = {}

out["models"] = [m.id for m in client.models.list().data]

c = client.completions.create(model=model, prompt="the d", max_tokens=10, temperature=0)
out["completion"] = {
    "text": c.choices[0].text,
    "finish_reason": c.choices[0].finish_reason,
    "usage": [c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens],
}

stream = client.completions.create(
    model=model, prompt="the d", max_tokens=10, temperature=0, stream=True
)
out["completion_stream"] = "".join(ch.choices[0].text for ch in stream if ch.choices)

scored = client.completions.create(
    model=model, prompt="the cat sat", max_tokens=1, temperature=0, logprobs=2, echo=True
)
lp = scored.choices[0].logprobs
out["echo_logprobs"] = {
    "tokens": lp.tokens,
    "token_logprobs": lp.token_logprobs,
    "top_counts": [None if t is None else len(t) for t in lp.top_logprobs],
}

chat = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "hi"}],
    max_tokens=6,
    temperature=0,
    logprobs=True,
    top_logprobs=2,
)
out["chat"] = {
    "role": chat.choices[0].message.role,
    "content": chat.choices[0].message.content,
    "finish_reason": chat.choices[0].finish_reason,
    "logprobs": [t.logprob for t in chat.choices[0].logprobs.content],
    "top_counts": [len(t.top_logprobs) for t in chat.choices[0].logprobs.content],
    "completion_tokens": chat.usage.completion_tokens,
}

parts, usage = [], None
for ch in client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "hi"}],
    max_tokens=6,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
):
    if ch.choices and ch.choices[0].delta.content:
        parts.append(ch.choices[0].delta.content)
    if ch.usage:
        usage = ch.usage.completion_tokens
out["chat_stream"] = {"content": "".join(parts), "completion_tokens": usage}

seeded = [
    client.completions.create(
        model=model, prompt="a", max_tokens=12, temperature=1.0, seed=42, n=2
    )
    for _ in range(2)
]
out["seeded"] = [[ch.text for ch in s.choices] for s in seeded]

errors = {}
try:
    client.completions.create(model="no-such-model", prompt="a", max_tokens=1)
except openai.NotFoundError as e:
    errors["unknown_model"] = [e.status_code, e.body.get("code") if isinstance(e.body, dict) else None]
try:
    client.completions.create(model=model, prompt="a", max_tokens=10_000)
except openai.BadRequestError as e:
    errors["too_long"] = [e.status_code, e.body.get("param") if isinstance(e.body, dict) else None]
try:
    OpenAI(base_url=f"{base_url}/v1", api_key="wrong-key", max_retries=0).models.list()
    errors["wrong_key"] = [200]
except openai.AuthenticationError as e:
    errors["wrong_key"] = [e.status_code]
out["errors"] = errors

print(json.dumps(out))
