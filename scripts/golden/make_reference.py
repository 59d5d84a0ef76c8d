#!/usr/bin/env python3
"""Reference logits and greedy continuations from Hugging Face transformers.

Run on a machine with torch + transformers (>= 5 with BitNet support), e.g. the lent GPU box:

    python3 scripts/golden/make_reference.py --cases scripts/golden/cases.json \
        --models MODELS_DIR --out OUT_DIR

MODELS_DIR holds one sub-folder per case (`case["dir"]`): checkpoints written by
`bitnet synth` plus copies of ../shared/data model folders. For every case and prompt it writes
`OUT_DIR/<case>.p<i>.npy` (float32 [positions, vocab] logits of one forward pass) and
`OUT_DIR/<case>.greedy.json` (generate(do_sample=False) ids), plus `OUT_DIR/manifest.json`
(versions, device, and the CPU-vs-GPU relative difference as a sanity figure).

Loading follows issue 2 item 8:
* `packed` / `llama`: `AutoModelForCausalLM.from_pretrained(dir, dtype=torch.float32)`; the
  checkpoint's own quantization_config selects transformers' BitLinear / AutoBitLinear.
* `master`: bf16/f32 master weights with no quantization_config are loaded as a plain float
  model, and every nn.Linear but `lm_head` is routed through transformers' own `WeightQuant`
  and `ActQuant` (what AutoBitLinear does in online mode).
Reference logits are computed in float32 on the CPU with TF32 off; the GPU run is only compared.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # integrations/bitnet.py decorates with torch.compile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
from transformers import AutoModelForCausalLM
from transformers.integrations.bitnet import ActQuant, WeightQuant

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")


class OnlineBitLinear(nn.Module):
    """nn.Linear with transformers' online ternary weight + int8 activation fake-quantization."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.weight = lin.weight
        self.bias = lin.bias

    def forward(self, x):
        return F.linear(ActQuant.apply(x), WeightQuant.apply(self.weight), self.bias)


def route_master(model):
    n = 0
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not full.endswith("lm_head"):
                setattr(mod, child_name, OnlineBitLinear(child))
                n += 1
    if n == 0:
        sys.exit("no nn.Linear found to route through WeightQuant/ActQuant")
    return n


def load(case, models_dir, device):
    path = os.path.join(models_dir, case["dir"])
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if case["kind"] == "master":
        route_master(model)
    model.to(device).eval()
    return model


@torch.no_grad()
def logits_of(model, ids, device):
    x = torch.tensor([ids], dtype=torch.long, device=device)
    return model(input_ids=x).logits[0].float().cpu().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cases = json.load(open(args.cases))["cases"]
    os.makedirs(args.out, exist_ok=True)
    manifest = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "reference_device": "cpu",
        "tf32": False,
        "cases": {},
    }
    for case in cases:
        name = case["name"]
        if not os.path.isdir(os.path.join(args.models, case["dir"])):
            print(f"== {name}: SKIPPED, {case['dir']} not in {args.models}", flush=True)
            continue
        print(f"== {name}", flush=True)
        cpu = load(case, args.models, "cpu")
        gpu = load(case, args.models, "cuda") if torch.cuda.is_available() else None
        info = {"dir": case["dir"], "kind": case["kind"], "prompts": []}
        for i, ids in enumerate(case["prompts"]):
            ref = logits_of(cpu, ids, "cpu")
            np.save(os.path.join(args.out, f"{name}.p{i}.npy"), ref.astype(np.float32))
            entry = {"ids": ids, "shape": list(ref.shape)}
            if gpu is not None:
                g = logits_of(gpu, ids, "cuda")
                entry["gpu_rel_l2"] = float(np.linalg.norm(g - ref) / np.linalg.norm(ref))
                entry["gpu_argmax_agree"] = float((g.argmax(-1) == ref.argmax(-1)).mean())
            info["prompts"].append(entry)
            print(f"   p{i}: {entry}", flush=True)
        g = case.get("greedy")
        if g:
            ids = case["prompts"][g["prompt"]]
            x = torch.tensor([ids], dtype=torch.long)
            out = cpu.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                do_sample=False,
                max_new_tokens=g["max_new_tokens"],
                min_new_tokens=g["max_new_tokens"],
                pad_token_id=0,
            )
            new = out[0, len(ids):].tolist()
            json.dump({"prompt": ids, "new_ids": new}, open(os.path.join(args.out, f"{name}.greedy.json"), "w"))
            print(f"   greedy: {new}", flush=True)
        manifest["cases"][name] = info
        del cpu, gpu
    json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
