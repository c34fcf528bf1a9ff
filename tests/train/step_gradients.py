"""Run one training step's forward/backward on a fixed global batch; save loss and gradients (rank 0).

    python step_gradients.py OUT --accum J [--loss L | --clip]                       # one process, the whole batch
    accelerate launch --multi_gpu --num_processes 2 step_gradients.py OUT [...]      # each process its half

The global batch (16 images; FLAME: 3 text slots of D = 16 with some slots empty; CLIP: random token ids) and the
initial weights are the same in every configuration.
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures.training import TINY_VISION  # noqa: E402
from pipeline.train.data import Batch, StreamState  # noqa: E402
from pipeline.train.loop import ClipTask, FlameTask, contrastive_step  # noqa: E402
from pipeline.train.settings import ClipSettings, FlameSettings  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--accum", type=int, default=1)
parser.add_argument("--loss", default="info_nce")
parser.add_argument("--clip", action="store_true", help="the CLIP baseline's step instead of FLAME's")
args = parser.parse_args()

accelerator = Accelerator(cpu=True)
generator = torch.Generator().manual_seed(0)
images = torch.randn(16, 3, 32, 32, generator=generator)
if args.clip:
    settings = ClipSettings.from_document({"vision": TINY_VISION, "embed_dim": 16,
                                           "text": {"width": 16, "heads": 2, "layers": 1, "context_length": 12}})
    task = ClipTask(settings)
    targets, mask = torch.randint(1, 49000, (16, 12), generator=generator), None
else:
    settings = FlameSettings.from_document({"vision": TINY_VISION, "loss": args.loss, "positives": 3})
    names = ["a", "b", "c"]
    template = {"prefix": "{caption}", "names": names, "suffixes": names, "cleaning": "quotes"}
    task = FlameTask(settings, {"dim": 16, "templates": {s: template for s in ("raw", "short", "long")}})
    targets = F.normalize(torch.randn(16, 3, 16, generator=generator), dim=-1)
    mask = torch.rand(16, 3, generator=generator) > 0.3
    mask[:, 0] = True  # every image has at least one text
torch.manual_seed(0)
model = accelerator.prepare(task.build_model())
local = 16 // accelerator.num_processes
mine = slice(accelerator.process_index * local, (accelerator.process_index + 1) * local)
chunks = [x[mine].chunk(args.accum) if x is not None else [None] * args.accum for x in (images, targets, mask)]
micro = [Batch(i, t, m, 0, StreamState()) for i, t, m in zip(*chunks)]
loss = accelerator.reduce(contrastive_step(accelerator, model, task, micro), "mean")
grads = {name: p.grad.clone() for name, p in accelerator.unwrap_model(model).named_parameters()
         if p.grad is not None}
if accelerator.is_main_process:
    torch.save({"loss": loss, "grads": grads}, args.out)
