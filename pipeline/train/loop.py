"""Train stage: FLAME's vision tower + projector against precomputed facet embeddings (the LLM is never loaded),
or the open_clip CLIP baseline on the same shards' captions; one training loop for both.

One optimizer step = ``grad_accum`` micro-batches of ``batch_size`` images on each of the ``P`` processes; the
contrastive batch is all ``batch_size x P x grad_accum`` of them (features gathered across processes with
gradients, earlier micro-batches' features cached as in open_clip's ``accum_freq``). Each epoch runs
``images // (batch_size x P x grad_accum)`` steps on every process (``pipeline.train.data``). The learning rate
follows warm-up + cosine in optimizer steps, independent of ``P``. State is checkpointed every
``checkpoint_every`` steps and at each epoch end (``pipeline.train.checkpoints``); a rerun with the same fingerprint
resumes from the newest checkpoint and reaches bit-identical weights on CPU. A non-finite loss stops the run before
the weights change, keeping the last good checkpoint.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.embed.prompts import SOURCES, PromptTemplate, facet_slots
from pipeline.io import model_dir
from pipeline.io.atomic import write_json
from pipeline.io.embeddings import text_side
from pipeline.io.parquet import read_parquet_metadata
from pipeline.io.provenance import provenance
from pipeline.settings import as_json
from pipeline.train.checkpoints import CheckpointStore, fingerprint
from pipeline.train.data import Batch, CaptionTexts, FacetTargets, ShardPair, StreamState, TrainStream, images_used
from pipeline.train.facets import choose_facets
from pipeline.train.loss import objective_loss
from pipeline.train.model import FlameVisionModel
from pipeline.train.schedule import lr_factor
from pipeline.train.settings import ClipSettings, FlameSettings, TrainExecution, TrainSettings


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite (a bad value in the data, or a learning rate too high)."""


class TrainProgress:
    """Where this process stands: epoch, global step, step in epoch, every stream's state, skip totals.

    Saved by the checkpoint store as JSON; :meth:`gather` must run on every process before a save, so the main
    process writes all processes' progress and each process reads back its own.
    """

    def __init__(self, rank: int, processes: int):
        self.rank, self.processes = rank, processes
        self.epoch = self.step = self.step_in_epoch = 0
        self.streams: dict[int, StreamState] = {}
        self.skipped = {"missing_embedding": 0, "unreadable": 0}
        self._gathered: list[dict] = []

    def local(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "step_in_epoch": self.step_in_epoch,
                "streams": {str(s): state.as_list() for s, state in self.streams.items()},
                "skipped": dict(self.skipped)}

    def gather(self) -> None:
        self._gathered = gather_object([self.local()])

    def state_dict(self) -> dict:
        return {"processes": self._gathered}

    def load_state_dict(self, state: dict) -> None:
        ranks = state["processes"]
        if len(ranks) != self.processes:
            raise ValueError(f"checkpoint written by {len(ranks)} processes, resuming with {self.processes}")
        mine = ranks[self.rank]
        self.epoch, self.step, self.step_in_epoch = mine["epoch"], mine["step"], mine["step_in_epoch"]
        self.streams = {int(s): StreamState(*state) for s, state in mine["streams"].items()}
        self.skipped = dict(mine["skipped"])

    def consumed(self, batches: list[Batch]) -> None:
        for batch in batches:
            self.streams[batch.stream] = batch.state

    def end_epoch(self) -> None:
        for state in self.streams.values():
            self.skipped["missing_embedding"] += state.missing
            self.skipped["unreadable"] += state.unreadable
        self.epoch, self.step_in_epoch, self.streams = self.epoch + 1, 0, {}


def _check_text_side(pairs: list[ShardPair], sources: list[str]) -> dict:
    """The embeddings' shared text side (metadata of the first file); raises naming a file that differs from it
    or lacks a training source."""
    first = read_parquet_metadata(pairs[0].texts)
    for pair in pairs:
        meta = read_parquet_metadata(pair.texts) if pair is not pairs[0] else first
        differing = [key for key, value in text_side(meta).items() if value != first.get(key)]
        if differing:
            raise ValueError(f"{pair.texts}: embedded differently from {pairs[0].texts} ({', '.join(differing)}); "
                             "rerun the embed stage for every shard")
        missing = [s for s in sources if s not in meta["sources"]]
        if missing:
            raise ValueError(f"{pair.texts}: no embeddings of caption sources {missing} (embedded: "
                             f"{meta['sources']}); add them to embed.sources or remove them from train.sources")
    return first


class FlameTask:
    """FLAME: the vision model against precomputed text embeddings, with objective ``settings.loss``; ``meta``: the
    embeddings' text side (their metadata: dim, templates ...)."""

    def __init__(self, settings: FlameSettings, meta: dict):
        self.settings, self.meta = settings, meta
        templates = {s: PromptTemplate.from_description(d) for s, d in self.meta["templates"].items()}
        embedded = facet_slots(templates, settings.sources)
        try:
            self.facets = choose_facets(settings.facets, embedded)
        except ValueError as err:
            raise ValueError(f"train settings key {err} (caption sources {settings.sources})") from None
        facets = embedded if self.facets is None else self.facets
        if settings.loss != "info_nce":
            slots = tuple(f"row{r}" for r in range(settings.positives))
        elif settings.texts_per_step == "every_source":
            slots = tuple(f"{source}:{name}" for source in SOURCES if source in settings.sources
                          for name in templates[source].names if name in facets)
        else:
            slots = facets
        self.targets = FacetTargets(settings.sources, settings.loss, slots, self.facets, settings.texts_per_step)

    def build_model(self) -> FlameVisionModel:
        return FlameVisionModel(self.settings.vision, self.meta["dim"], self.settings.projector, self.settings.loss)

    def features(self, model, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = model(images)
        return image, targets.to(image.dtype)

    def loss(self, raw_model, image, text, mask, logits_live: bool) -> torch.Tensor:
        scale, bias = raw_model.logit_scale, raw_model.logit_bias
        if not logits_live:
            scale, bias = scale.detach(), None if bias is None else bias.detach()
        return objective_loss(self.settings.loss, image, text, mask, scale, bias)

    def save(self, raw_model: FlameVisionModel, out: Path) -> None:
        templates = {s: PromptTemplate.from_description(d) for s, d in self.meta["templates"].items()}
        trained = {source: templates[source].restricted(self.facets) for source in self.settings.sources}
        config = raw_model.config({**text_side(self.meta), "train_sources": self.settings.sources,
                                   "trained_templates": {s: t.describe() for s, t in trained.items() if t}})
        model_dir.save_model(raw_model, config, out)


class ClipTask:
    """The CLIP baseline: open_clip's CLIP on the captions of ``settings.sources``, open_clip's ``ClipLoss``."""

    def __init__(self, settings: ClipSettings):
        self.settings = settings
        self.targets = CaptionTexts(settings.sources, settings.text["context_length"])

    def build_model(self):
        from pipeline.train.clip_baseline import build_clip

        return build_clip(self.settings.vision, self.settings.embed_dim, self.settings.text)

    def features(self, model, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, text, _ = model(images, targets)
        return image, text

    def loss(self, raw_model, image, text, mask, logits_live: bool) -> torch.Tensor:
        from open_clip.loss import ClipLoss

        scale = raw_model.logit_scale if logits_live else raw_model.logit_scale.detach()
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        return ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world)(image, text, scale.exp())

    def save(self, raw_model, out: Path) -> None:
        from pipeline.train.clip_baseline import clip_config

        model_dir.save_model(raw_model, clip_config(self.settings.vision, self.settings.embed_dim, self.settings.text,
                                          {"sources": self.settings.sources}), out)


def contrastive_step(accelerator: Accelerator, model, task: FlameTask | ClipTask,
                     micro_batches: list[Batch]) -> torch.Tensor:
    """Forward and backward for one optimizer step over ``micro_batches`` (this process's part); returns the loss.

    With one micro-batch this is the plain objective with features gathered with gradients. With J > 1, the
    features of all J are first computed without gradients; then micro-batch j is recomputed with gradients and the
    loss of the whole batch (live features for j, cached ones for the rest) is back-propagated, so the summed
    gradients equal those of one batch of J micro-batches (open_clip's ``accum_freq``). The logit scale and bias get
    their gradient once (in the last pass); gradients are synchronised across processes only in the last pass.
    """
    raw = accelerator.unwrap_model(model)
    images = [b.images.to(accelerator.device) for b in micro_batches]
    targets = [b.targets.to(accelerator.device) for b in micro_batches]
    masks = [b.mask for b in micro_batches]
    mask = None if masks[0] is None else torch.cat(masks).to(accelerator.device)
    if len(images) == 1:
        loss = task.loss(raw, *task.features(model, images[0], targets[0]), mask, logits_live=True)
        accelerator.backward(loss)
        return loss.detach()
    with torch.no_grad():
        cached = [task.features(model, x, t) for x, t in zip(images, targets)]
    last = len(images) - 1
    for j in range(len(images)):
        with accelerator.no_sync(model) if j < last else nullcontext():
            live = task.features(model, images[j], targets[j])
            features = [torch.cat([*(c[side] for c in cached[:j]), live[side], *(c[side] for c in cached[j + 1:])])
                        for side in (0, 1)]
            loss = task.loss(raw, *features, mask, logits_live=j == last)
            accelerator.backward(loss)
    return loss.detach()


def _optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: not on biases, norms, the temperature, nor on the ViT's class and
    register tokens (vectors that timm stores as ``[1, n, W]``; open_clip's ``class_embedding`` is ``[W]``)."""
    def decayed(name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2 and name.rsplit(".", 1)[-1] not in ("cls_token", "reg_token")

    decay = [p for n, p in model.named_parameters() if decayed(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decayed(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps)


def listed(items: list, shown: int = 5) -> str:
    """The first ``shown`` items, comma-separated, and how many more there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(map(str, items[:shown])) + more


def train(pairs: list[ShardPair], out: Path, state_dir: Path, settings: TrainSettings,
          execution: TrainExecution, empty_shards: str = "skip") -> dict:
    """Train FLAME (``FlameSettings``: pairs of shards and embeddings) or the CLIP baseline (``ClipSettings``: pairs
    of shards and captions) on ``pairs``; save the model to ``out``. A pair without any image with a text is left
    out from the start (``empty_shards: skip``, listed in the summary) or stops before training (``error``).
    Returns the summary (also ``out/train_summary.json``)."""
    # cpu=True without a GPU: accelerate otherwise ignores the processes of `accelerate launch` (gloo) on a CPU host
    accelerator = Accelerator(mixed_precision=settings.precision, cpu=not torch.cuda.is_available())
    processes, rank = accelerator.num_processes, accelerator.process_index
    task = (FlameTask(settings, _check_text_side(pairs, settings.sources)) if isinstance(settings, FlameSettings)
            else ClipTask(settings))
    counts = {pair: images_used(task.targets, pair.texts, settings.data_fraction) for pair in pairs}
    empty = [pair for pair in pairs if not counts[pair]]
    if empty:
        names = listed([pair.tar for pair in empty])
        if empty_shards == "error" or len(empty) == len(pairs):
            raise ValueError(f"{len(empty)} of {len(pairs)} shards have no image with a text for sources "
                             f"{settings.sources}: {names}" + ("" if len(empty) == len(pairs) else
                                                               " (data.empty_shards: skip trains without them)"))
        accelerator.print(f"warning: {len(empty)} shards have no image with a text and are skipped: {names}")
        pairs = [pair for pair in pairs if counts[pair]]
    images_total = sum(counts.values())
    global_batch = settings.batch_size * processes * settings.grad_accum
    steps_per_epoch = images_total // global_batch
    if steps_per_epoch == 0:
        raise ValueError(f"{images_total} images have texts for sources {settings.sources}, fewer than one "
                         f"step's batch of {global_batch} (batch_size {settings.batch_size} x {processes} "
                         f"processes x grad_accum {settings.grad_accum}): lower train.batch_size")
    total_steps = steps_per_epoch * settings.epochs

    set_seed(settings.seed)
    model = task.build_model()
    optimizer = _optimizer(model, settings)
    # Not prepared: accelerate would step a prepared scheduler once per process per optimizer step.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, settings.warmup_steps, total_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    progress = TrainProgress(rank, processes)

    store = CheckpointStore(state_dir, accelerator, {"scheduler": scheduler, "progress": progress})
    latest = store.open(fingerprint(asdict(settings), pairs, processes, execution.num_workers))
    if latest is not None:
        store.resume(latest)
        accelerator.print(f"resuming from {latest} (epoch {progress.epoch + 1}, step {progress.step})")
    resumed_from = progress.step
    kept = store.truncate_metrics(progress.step)

    stream = TrainStream(pairs, task.targets, settings.vision["image_size"], settings.batch_size,
                         settings.shuffle_buffer, settings.seed, rank, steps_per_epoch * settings.grad_accum,
                         settings.data_fraction)
    loader = DataLoader(stream, batch_size=None, num_workers=execution.num_workers)
    raw_model = accelerator.unwrap_model(model)
    loss_value = float(kept[-1]["loss"]) if kept else float("nan")  # until this run trains a step
    started, images_seen = time.perf_counter(), 0
    with tqdm(total=total_steps, initial=progress.step, desc="train", unit="step",
              disable=not accelerator.is_main_process) as bar:
        model.train()
        while progress.epoch < settings.epochs:
            stream.start_epoch(progress.epoch, progress.step_in_epoch * settings.grad_accum, progress.streams)
            batches, rows = iter(loader), []
            for _ in range(progress.step_in_epoch, steps_per_epoch):
                step_started = time.perf_counter()
                micro = [next(batches) for _ in range(settings.grad_accum)]
                loss = accelerator.reduce(contrastive_step(accelerator, model, task, micro), "mean")
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"non-finite loss ({loss_value}) at step {progress.step + 1} (epoch {progress.epoch + 1}); "
                        f"the weights were not updated and the last good checkpoint in {store.checkpoints} is kept. "
                        f"Check the texts for NaN/inf embedding rows or lower train.lr")
                lr = scheduler.get_last_lr()[0]  # the rate this step uses
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                with torch.no_grad():
                    raw_model.logit_scale.clamp_(0, math.log(100))
                progress.consumed(micro)
                progress.step += 1
                progress.step_in_epoch += 1
                images_seen += global_batch
                rate = global_batch / (time.perf_counter() - step_started)
                rows.append({"step": progress.step, "epoch": progress.epoch + 1, "loss": loss_value,
                             "lr": lr, "temperature": math.exp(-raw_model.logit_scale.item()),
                             "images_per_s": round(rate, 2)})
                bar.update()
                bar.set_postfix(loss=f"{loss_value:.4f}", img_per_s=f"{rate:.1f}")
                end_of_epoch = progress.step_in_epoch == steps_per_epoch
                if end_of_epoch:
                    progress.end_epoch()
                if end_of_epoch or progress.step % execution.checkpoint_every == 0:
                    store.append_metrics(rows)
                    rows = []
                    progress.gather()
                    store.save(progress.step)
            del batches
            accelerator.print(f"epoch {progress.epoch}/{settings.epochs}: step {progress.step}, loss {loss_value:.4f}")

    seconds = time.perf_counter() - started
    steps_per_process = gather_object([progress.step - resumed_from])
    skipped = gather_object([progress.skipped])
    summary = {
        "kind": "flame" if isinstance(task, FlameTask) else "clip", "steps": progress.step,
        "steps_this_run": progress.step - resumed_from, "resumed_from_step": resumed_from,
        "steps_per_process_this_run": steps_per_process, "processes": processes, "global_batch": global_batch,
        "steps_per_epoch": steps_per_epoch, "images_with_texts": images_total,
        "empty_shards": [str(pair.tar) for pair in empty], "final_loss": loss_value,
        "seconds": round(seconds, 2), "images_per_s": round(images_seen / seconds, 2) if seconds else None,
        "skipped": {key: sum(s[key] for s in skipped) for key in skipped[0]},
        "settings": asdict(settings), "execution": asdict(execution),
        "provenance": provenance(model_dir.VERSION, as_json(asdict(settings))),
    }
    if accelerator.is_main_process:
        task.save(raw_model, out)
        write_json(summary, out / model_dir.SUMMARY_NAME)
        if store.metrics.exists():
            (out / "train_metrics.csv").write_bytes(store.metrics.read_bytes())
    accelerator.print(f"trained {summary['steps']} steps ({summary['steps_this_run']} in this run) in "
                      f"{summary['seconds']} s, final loss {loss_value:.4f}, skipped {summary['skipped']}; "
                      f"model in {out}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary
