#!/usr/bin/env python3
"""Reference perplexity from Hugging Face transformers, by llama-perplexity's method (the one
`bitnet perplexity` implements): tokenize the whole text with BOS, chunks of CTX tokens, BOS in
place of each chunk's first token, score positions CTX/2 .. CTX-2 (each predicting the next
token), PPL = exp(mean NLL), stderr = PPL * sqrt((E[nll^2] - E[nll]^2) / (N - 1)). float64
log-softmax over float32 logits computed on the CPU.

    python3 scripts/perplexity/transformers_ppl.py MODEL_DIR TEXT OUT.json [CTX] [CHUNKS]

Writes the ids it scored (so the Rust test scores the very same ids), the per-chunk running
PPL and the final PPL +/- stderr. Run on the device machine (torch + transformers >= 5):
    bash scripts/perplexity/run_on_device.sh
"""
import json
import math
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_float32_matmul_precision("highest")


def main():
    model_dir, text_file, out = sys.argv[1:4]
    ctx = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    chunks = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    tok = AutoTokenizer.from_pretrained(model_dir)
    text = open(text_file, encoding="utf-8").read().replace("\r\n", "\n")
    ids = tok(text, add_special_tokens=True)["input_ids"]
    bos = tok.bos_token_id
    assert ids[0] == bos, "the tokenizer did not add BOS"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    n = min(chunks, len(ids) // ctx)
    s = s2 = 0.0
    count = 0
    running = []
    with torch.no_grad():
        for c in range(n):
            chunk = list(ids[c * ctx : (c + 1) * ctx])
            chunk[0] = bos
            logits = model(input_ids=torch.tensor([chunk])).logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            for j in range(ctx // 2, ctx - 1):
                v = -lp[j, ids[c * ctx + j + 1]].item()
                s += v
                s2 += v * v
                count += 1
            running.append(math.exp(s / count))
    mean = s / count
    ppl = math.exp(mean)
    var = s2 / count - mean * mean
    stderr = ppl * math.sqrt(var / (count - 1)) if var > 0 else 0.0
    json.dump(
        {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "model": model_dir.rstrip("/").split("/")[-1],
            "text": text_file.split("/")[-1],
            "ctx": ctx,
            "chunks": n,
            "bos": bos,
            "text_tokens": len(ids),
            "ids": ids[: n * ctx],
            "scored": count,
            "running_ppl": running,
            "ppl": ppl,
            "ppl_stderr": stderr,
        },
        open(out, "w"),
    )
    print(f"{n} chunks of {ctx}: PPL = {ppl:.6f} +/- {stderr:.6f} ({count} tokens, text {len(ids)} tokens)")


if __name__ == "__main__":
    main()
