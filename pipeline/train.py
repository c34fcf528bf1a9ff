"""Train stage: the vision tower + projector against precomputed facet embeddings (the LLM is never loaded).

Data: pairs of (image shard ``.tar``, embeddings ``.parquet``) joined by key. Per image and step one of its caption
rows (``raw``, ``short_i``, ``long_i``, restricted to ``sources``) is drawn; its K facet embeddings are the targets of
the per-facet InfoNCE loss. Devices, mixed precision and processes come from ``accelerate``; each process reads its
own subset of shards. Checkpoints go to ``state_dir`` at every epoch end; a rerun with the same settings resumes
after the last finished epoch.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.data import decode_image, iter_shard, read_parquet_metadata, shard_name, write_json
from pipeline.embed_shard import read_embeddings
from pipeline.loss import facet_info_nce
from pipeline.model import FlameVisionModel, image_transform


@dataclass
class TrainConfig:
    """Training hyper-parameters (defaults: the demo; the paper's are in config/cc3m.yaml)."""

    vision: dict = field(default_factory=lambda: {"model": "vit_tiny_patch16_224", "image_size": 64,
                                                   "patch_size": 8, "kwargs": {}})
    sources: list[str] = field(default_factory=lambda: ["raw", "short", "long"])
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.5
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 0
    precision: str = "no"
    grad_accum: int = 1
    num_workers: int = 0
    shuffle_buffer: int = 1000
    seed: int = 0


class ShardPairDataset(IterableDataset):
    """Yields ``(image [3, H, W], facet targets [K, D] float32)`` from (tar, parquet) pairs; reshuffled per epoch."""

    def __init__(self, pairs: list[tuple[Path, Path]], image_size: int, sources: list[str], seed: int,
                 shuffle_buffer: int, rank: int = 0, world_size: int = 1):
        self.pairs, self.sources, self.seed = pairs, sources, seed
        self.shuffle_buffer, self.rank, self.world_size = shuffle_buffer, rank, world_size
        self.transform = image_transform(image_size, train=True)
        self.epoch = 0

    def _targets(self, parquet: Path) -> dict[str, list]:
        keys, labels, emb = read_embeddings(parquet)
        index: dict[str, list] = {}
        for key, label, vector in zip(keys, labels, emb):
            if label.split("_")[0] in self.sources:
                index.setdefault(key, []).append(vector)
        return index

    def _samples(self, rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        pairs = self.pairs[:]
        rng.shuffle(pairs)
        worker = get_worker_info()
        stride, offset = self.world_size, self.rank
        if worker is not None:
            stride, offset = stride * worker.num_workers, offset * worker.num_workers + worker.id
        for tar, parquet in pairs[offset::stride]:
            targets = self._targets(parquet)
            for sample in iter_shard(tar):
                image = decode_image(sample.image_bytes)
                if image is None:
                    continue  # unreadable: the caption stage skipped it too
                if sample.key not in targets:
                    raise KeyError(f"{tar}: sample key {sample.key!r} has no embedding for sources {self.sources} "
                                   f"in {parquet}")
                vector = rng.choice(targets[sample.key])
                yield self.transform(image), torch.from_numpy(vector.astype("float32"))

    def __iter__(self):
        rng = random.Random(f"{self.seed}-{self.epoch}")
        buffer: list = []
        for item in self._samples(rng):
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer


def count_images(parquets: list[Path]) -> int:
    """Images with at least one embedded caption in the embeddings files ``parquets``."""
    return sum(len(set(pq.read_table(p, columns=["key"]).column("key").to_pylist())) for p in parquets)


def _lr_lambda(warmup: int, total: int):
    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return schedule


def train(pairs: list[tuple[Path, Path]], out: Path, state_dir: Path, cfg: TrainConfig) -> dict:
    """Train on ``pairs`` and save the model to ``out``. Returns a summary (steps, final loss, seconds)."""
    for tar, parquet in pairs:
        if shard_name(tar) != shard_name(parquet):
            raise ValueError(f"shard {tar} is paired with embeddings of another shard: {parquet}")
    meta = read_parquet_metadata(pairs[0][1])
    accelerator = Accelerator(mixed_precision=cfg.precision, gradient_accumulation_steps=cfg.grad_accum)
    torch.manual_seed(cfg.seed)
    model = FlameVisionModel(cfg.vision, dim=meta["dim"])
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=tuple(cfg.betas))
    global_batch = cfg.batch_size * accelerator.num_processes * cfg.grad_accum
    steps_per_epoch = max(1, count_images([p for _, p in pairs]) // global_batch)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.warmup_steps, total_steps))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    dataset = ShardPairDataset(pairs, cfg.vision["image_size"], cfg.sources, cfg.seed, cfg.shuffle_buffer,
                               accelerator.process_index, accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=cfg.num_workers, drop_last=True)

    state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = state_dir / "checkpoint.pt"
    fingerprint = json.dumps({"cfg": asdict(cfg), "pairs": [[str(a), str(b)] for a, b in pairs]}, sort_keys=True)
    start_epoch, step = 0, 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if saved["fingerprint"] == fingerprint:
            accelerator.unwrap_model(model).load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            start_epoch, step = saved["epoch"] + 1, saved["step"]
            accelerator.print(f"resuming after epoch {saved['epoch']} (step {step}) from {checkpoint}")
        else:
            accelerator.print(f"{checkpoint} was written with other settings: starting afresh")

    log_path = state_dir / "log.jsonl"
    started, loss_value = time.perf_counter(), float("nan")
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        dataset.epoch = epoch
        for images, targets in loader:
            images, targets = images.to(accelerator.device), targets.to(accelerator.device)
            with accelerator.accumulate(model):
                features = model(images)
                loss = facet_info_nce(features, targets.to(features.dtype),
                                      accelerator.unwrap_model(model).logit_scale)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            with torch.no_grad():
                accelerator.unwrap_model(model).logit_scale.clamp_(0, math.log(100))
            step += 1
            loss_value = loss.item()
            if accelerator.is_main_process:
                with log_path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps({"epoch": epoch, "step": step, "loss": loss_value,
                                          "lr": scheduler.get_last_lr()[0]}) + "\n")
        accelerator.print(f"epoch {epoch + 1}/{cfg.epochs}: step {step}, loss {loss_value:.4f}")
        if accelerator.is_main_process:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"fingerprint": fingerprint, "epoch": epoch, "step": step,
                        "model": accelerator.unwrap_model(model).state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
            tmp.replace(checkpoint)
    summary = {"steps": step, "final_loss": loss_value, "seconds": round(time.perf_counter() - started, 2),
               "images_per_epoch": steps_per_epoch * global_batch, "config": asdict(cfg)}
    if accelerator.is_main_process:
        text_side = {k: meta.get(k) for k in ("llm", "revision", "layer", "facets", "suffixes", "prompts_hash",
                                               "normalized", "dim")}
        accelerator.unwrap_model(model).save(out, text_side)
        write_json(summary, out / "train_summary.json")
        if log_path.exists():
            (out / "train_log.jsonl").write_text(log_path.read_text(encoding="utf-8"), encoding="utf-8")
    return summary
