#!/usr/bin/env python3
"""Writes the `long-*` cases of scripts/golden/cases.json (issue 7 item 2): prompts past the
256-token prefill chunk and up to 1,000 positions, greedy continuations of 64 tokens with an
EOS that may stop them, on the tiny, GQA and 2B4T shapes (`bitnet synth --seed 1`, HF packed).

Prompts: BOS, then ids drawn by Python's `random.Random("long-<shape>")` from [3, vocab).
EOS: each greedy case names the id that ends it (`eos_token_id`, passed to transformers'
`generate` and used as our stop token). Synthetic models know no text, so their own EOS never
comes; the ids below were picked among those a trial greedy run produced first around step
35–55, so that the reference decides whether and where the continuation stops (tiny runs past
it on its 1,000-token prompt only if transformers does).

Logits: `columns` keeps every `columns`-th vocabulary column of each position (the 2B4T's
1,300 × 128,256 logits would be 667 MB), and the full row's argmax is stored beside it;
`probes` keeps 8 values of six points of each layer: the inputs of q/k/v, o_proj, gate/up and
down, and the keys and values. A rounding taken the other way shows first at the point after
it, so the tie search looks at the roundings just before the first point that departs, not at
all of them (keys and values too, because a rounding that barely moves its own position's
output can still move what later positions read).

    python3 scripts/golden/long_cases.py   # rewrites cases.json in place
"""
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {
    # shape: (vocab, bos, columns stride, greedy prompt index, eos_token_id)
    "tiny": (512, 1, 4, 1, 11),
    "gqa": (1024, 1, 8, 0, 839),
    "2b4t": (128256, 128000, 256, 0, 74234),
}


def prompts(shape):
    vocab, bos = SHAPES[shape][:2]
    r = random.Random(f"long-{shape}")
    ids = [bos] + [r.randrange(3, vocab) for _ in range(999)]
    # 2B4T: the 300-token prompt (its tie-proof check costs ~0.3 s a position on 2 cores,
    # where ~2 roundings per position sit on a tie; 1,000 positions do not fit CI).
    return [ids[:300]] if shape == "2b4t" else [ids[:300], ids]


def main():
    path = os.path.join(HERE, "cases.json")
    doc = json.load(open(path))
    cases = [c for c in doc["cases"] if not c["name"].startswith("long-")]
    for shape, (_, _, stride, gp, eos) in SHAPES.items():
        cases.append({
            "name": f"long-{shape}-packed",
            "dir": f"long-{shape}-hf-packed",
            "kind": "packed",
            "synth": {"shape": shape, "format": "hf-packed", "seed": 1},
            "columns": stride,
            "probes": 8,
            "prompts": prompts(shape),
            "greedy": {"prompt": gp, "max_new_tokens": 64, "eos_token_id": eos},
        })
    doc["cases"] = cases
    text = json.dumps(doc, indent=1)
    # One line per id list.
    text = re.sub(r"\[\s+([0-9,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    open(path, "w").write(text + "\n")


if __name__ == "__main__":
    main()
