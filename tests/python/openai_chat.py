"""One greedy chat completion through `binarylm serve` with the official `openai` SDK, and the
prompt tokens the server's chat template made of the same messages (`/tokenize`); prints one
JSON document for tests/e2e_sft.rs.

usage: python openai_chat.py BASE_URL MODEL USER_MESSAGE MAX_TOKENS
"""

import json
import sys
import urllib.request

from openai import OpenAI

base_url, model, message, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
messages = [{"role": "user", "content": message}]
chat = client.chat.completions.create(
    model=model, messages=messages, max_tokens=max_tokens, temperature=0
)
req = urllib.request.Request(
    f"{base_url}/tokenize",
    data=json.dumps({"model": model, "messages": messages}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(req, timeout=60) as r:
    prompt_tokens = json.load(r)["tokens"]
print(
    json.dumps(
        {
            "content": chat.choices[0].message.content,
            "finish_reason": chat.choices[0].finish_reason,
            "completion_tokens": chat.usage.completion_tokens,
            "prompt_tokens": prompt_tokens,
        }
    )
)
