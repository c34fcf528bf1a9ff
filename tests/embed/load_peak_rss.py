"""Load an LLM with `pipeline.llm.load_llm` on CPU in a dtype, read every weight once (so that memory-mapped
weights are paged in), then print how much the peak resident set grew in MiB and the weights' size."""

import resource
import sys

import torch

from pipeline.llm import load_llm

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
model, _ = load_llm(sys.argv[1], dtype=sys.argv[2], device="cpu")
with torch.no_grad():  # every 1024th value: every 4 KiB page read, with no copy of a whole parameter
    touched = sum(float(p.reshape(-1)[::1024].float().sum()) for p in model.parameters())
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
print(f"growth_mib={growth:.1f} weights_mib={weights:.1f} dtype={next(model.parameters()).dtype}")
