"""Load an LLM with `pipeline.llm.load_llm` on CPU in a dtype and read every weight once (so that memory-mapped
weights are paged in); print how far the resident set rose above where it was before loading, in MiB, sampled every
5 ms (a transient copy counts), and the weights' size."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fixtures package
from fixtures.resident import resident_rise  # noqa: E402
from pipeline.llm import load_llm  # noqa: E402


def load_and_read():
    model, _ = load_llm(sys.argv[1], dtype=sys.argv[2], device="cpu")
    with torch.no_grad():  # every 1024th value: every 4 KiB page read, with no copy of a whole parameter
        sum(float(p.reshape(-1)[::1024].float().sum()) for p in model.parameters())
    return model


model, growth = resident_rise(load_and_read)
weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
print(f"growth_mib={growth:.1f} weights_mib={weights:.1f} dtype={next(model.parameters()).dtype}")
