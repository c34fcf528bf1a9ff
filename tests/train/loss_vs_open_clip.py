"""Our objectives against open_clip's loss classes on the same inputs, in this process (one of 1..N under
`torchrun`/`accelerate launch`, gloo): values and gradients w.r.t. the image and text features. Saves rank's results.

    python loss_vs_open_clip.py OUT_DIR
    python -m torch.distributed.run --nproc-per-node 2 loss_vs_open_clip.py OUT_DIR

Global batch: 8 images, D = 16, 3 facets; each rank holds its slice.
"""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from pipeline.train.loss import facet_info_nce, sigmoid_multi_positive

out = Path(sys.argv[1])
world = int(os.environ.get("WORLD_SIZE", "1"))
if world > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if world > 1 else 0
generator = torch.Generator().manual_seed(0)
image_all = F.normalize(torch.randn(8, 16, generator=generator), dim=-1)
text_all = F.normalize(torch.randn(8, 3, 16, generator=generator), dim=-1)
local = 8 // world
mine = slice(rank * local, (rank + 1) * local)
scale = torch.tensor(2.3)
bias = torch.tensor(-1.5)


def leaves():
    return image_all[mine].clone().requires_grad_(), text_all[mine].clone().requires_grad_()


def grads_of(loss, image, text):
    loss.backward()
    return loss.detach(), image.grad.clone(), text.grad.clone()


results = {}
# info_nce with every facet present == open_clip ClipLoss per facet (local_loss, gather_with_grad), averaged
image, text = leaves()
ours = grads_of(facet_info_nce(image, text, torch.ones(local, 3, dtype=torch.bool), scale), image, text)
image, text = leaves()
clip = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world)
theirs = grads_of(torch.stack([clip(image, text[:, k], scale.exp()) for k in range(3)]).mean(), image, text)
results["info_nce"] = (ours, theirs)
# sigmoid with one row per image == open_clip SigLipLoss (texts of other ranks are negatives)
image, text = leaves()
ours = grads_of(sigmoid_multi_positive(image, text[:, :1], torch.ones(local, 1, dtype=torch.bool), scale, bias),
                image, text)
image, text = leaves()
siglip = SigLipLoss(rank=rank, world_size=world)
theirs = grads_of(siglip(image, text[:, 0].contiguous(), scale.exp(), bias), image, text)
results["sigmoid_one_row"] = (ours, theirs)
torch.save(results, out / f"rank{rank}.pt")
if world > 1:
    dist.destroy_process_group()
