"""Run one training step's forward/backward on a fixed global batch; save loss and gradients (rank 0).

    python step_gradients.py OUT --accum J                       # one process, the whole batch
    accelerate launch --multi_gpu --num_processes 2 step_gradients.py OUT   # each process its half

The global batch (16 images, 2-facet targets) and the initial weights are the same in every configuration.
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import TINY_VISION  # noqa: E402

from pipeline.model import FlameVisionModel  # noqa: E402
from pipeline.train import contrastive_step  # noqa: E402
from pipeline.train_data import Batch, StreamState  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--accum", type=int, default=1)
args = parser.parse_args()

accelerator = Accelerator(cpu=True)
generator = torch.Generator().manual_seed(0)
images = torch.randn(16, 3, 32, 32, generator=generator)
targets = F.normalize(torch.randn(16, 2, 16, generator=generator), dim=-1)
torch.manual_seed(0)
model = accelerator.prepare(FlameVisionModel(TINY_VISION, dim=16))
local = 16 // accelerator.num_processes
mine = slice(accelerator.process_index * local, (accelerator.process_index + 1) * local)
micro = [Batch(i, t, 0, StreamState()) for i, t in zip(images[mine].chunk(args.accum), targets[mine].chunk(args.accum))]
loss = accelerator.reduce(contrastive_step(accelerator, model, micro), "mean")
grads = {name: p.grad.clone() for name, p in accelerator.unwrap_model(model).named_parameters()}
if accelerator.is_main_process:
    torch.save({"loss": loss, "grads": grads}, args.out)
