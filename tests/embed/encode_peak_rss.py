"""Embed captions (a JSON list, file argv[1]) with an LLM (argv[2]) at layer argv[3] and token budget argv[4] in fda
mode, float32 on CPU; print how far the resident set rose while encoding above where it was before (after loading
and one warm-up caption), in MiB, sampled every 5 ms, and what `FacetEmbedder.batch_bytes` predicts for them."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fixtures package
from fixtures.resident import resident_rise  # noqa: E402
from pipeline.embed.fda import FacetEmbedder  # noqa: E402
from pipeline.embed.prompts import paper_template  # noqa: E402
from pipeline.llm import load_llm  # noqa: E402

captions = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
model, tokenizer = load_llm(sys.argv[2], dtype="float32", device="cpu")
embedder = FacetEmbedder(model, tokenizer, paper_template("long"), layer=int(sys.argv[3]),
                         token_budget=int(sys.argv[4]))
embedder.encode(captions[:1])
_, growth = resident_rise(lambda: embedder.encode(captions))
print(f"growth_mib={growth:.1f} predicted_mib={embedder.batch_bytes(captions) / 2**20:.1f}")
