#!/usr/bin/env bash
# On the device machine (the `device` tool), carrying .dev/ppl (a copy of
# ../shared/data/real-models/bitllama2c-tinystories-3m and ../shared/data/text/tinystories-head.txt):
#   bash scripts/perplexity/run_on_device.sh
# Writes $OUT/tinystories-3m.ppl.json (commit it as fixtures/perplexity/).
set -euo pipefail
OUT=${OUT:-/tmp/out}
python3 scripts/perplexity/transformers_ppl.py .dev/ppl/bitllama2c-tinystories-3m \
    .dev/ppl/tinystories-head.txt "$OUT/tinystories-3m.ppl.json" 256 20
