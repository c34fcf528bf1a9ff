"""Load an LLM with `pipeline.llm.load_llm` on CPU in a dtype and read every weight once (so that memory-mapped
weights are paged in); print how far the resident set rose above where it was before loading, in MiB, sampled every
5 ms (a transient copy counts), and the weights' size."""

import os
import sys
import threading
from pathlib import Path

import torch

from pipeline.llm import load_llm


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


before, peak, done = resident_mib(), [0.0], threading.Event()


def sample() -> None:
    while not done.wait(0.005):
        peak[0] = max(peak[0], resident_mib())


sampler = threading.Thread(target=sample)
sampler.start()
model, _ = load_llm(sys.argv[1], dtype=sys.argv[2], device="cpu")
with torch.no_grad():  # every 1024th value: every 4 KiB page read, with no copy of a whole parameter
    touched = sum(float(p.reshape(-1)[::1024].float().sum()) for p in model.parameters())
done.set()
sampler.join()
growth = max(peak[0], resident_mib()) - before
weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
print(f"growth_mib={growth:.1f} weights_mib={weights:.1f} dtype={next(model.parameters()).dtype}")
