"""Embed captions (a JSON list, file argv[1]) with an LLM (argv[2]) at layer argv[3] and token budget argv[4] in fda
mode, float32 on CPU; print how far the resident set rose while encoding above where it was before (after loading
and one warm-up caption), in MiB, sampled every 5 ms, and what `FacetEmbedder.batch_bytes` predicts for them."""

import json
import os
import sys
import threading
from pathlib import Path

from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import paper_template
from pipeline.llm import load_llm

captions = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
model, tokenizer = load_llm(sys.argv[2], dtype="float32", device="cpu")
embedder = FacetEmbedder(model, tokenizer, paper_template("long"), layer=int(sys.argv[3]),
                         token_budget=int(sys.argv[4]))


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


embedder.encode(captions[:1])
before, peak, done = resident_mib(), [0.0], threading.Event()


def sample() -> None:
    while not done.wait(0.005):
        peak[0] = max(peak[0], resident_mib())


sampler = threading.Thread(target=sample)
sampler.start()
embedder.encode(captions)
done.set()
sampler.join()
growth = peak[0] - before
print(f"growth_mib={growth:.1f} predicted_mib={embedder.batch_bytes(captions) / 2**20:.1f}")
