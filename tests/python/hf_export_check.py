"""Loads a binarylm Hugging Face export with transformers alone and reports what it computes.

Usage: hf_export_check.py REQUEST.json  (prints a JSON report on stdout)

REQUEST: {"dir": export directory, "texts": [str], "prompts": [{"text": str, "max_new_tokens": n}]}
REPORT:  {"class": the loaded model's class name,
          "ids": [[int]] per text (AutoTokenizer),
          "logits": [[[float]]] per text, computed as one right-padded batch with an attention
                    mask (rows of padding dropped),
          "generated": [{"tokens": [int], "text": str}] per prompt (greedy generate, the
                    export's generation_config), "chat": the chat template rendered for one
                    user message}

The checks (ids equal, logits within 1e-4, generated text equal) are made by the Rust test
(tests/e2e_export.rs), which also holds binarylm's side. Runs offline: nothing may be fetched.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        req = json.load(f)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(req["dir"])
    model = AutoModelForCausalLM.from_pretrained(req["dir"], dtype=torch.float32)
    model.eval()

    ids = [tok.encode(t) for t in req["texts"]]
    longest = max(len(i) for i in ids)
    pad = model.generation_config.pad_token_id or 0
    batch = torch.tensor([i + [pad] * (longest - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in ids])
    with torch.no_grad():
        logits = model(input_ids=batch, attention_mask=mask).logits
    rows = [logits[b, : len(i)].tolist() for b, i in enumerate(ids)]

    generated = []
    for p in req["prompts"]:
        prompt = tok.encode(p["text"])
        with torch.no_grad():
            out = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=p["max_new_tokens"],
                do_sample=False,
            )
        new = out[0, len(prompt) :].tolist()
        generated.append({"tokens": new, "text": tok.decode(new)})

    chat = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    json.dump(
        {
            "class": type(model).__name__,
            "ids": ids,
            "logits": rows,
            "generated": generated,
            "chat": chat,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
