"""Training state on disk: accelerate checkpoints, guarded by a fingerprint of everything that shapes the result.

Layout of a state directory::

    fingerprint.json          what the checkpoints were trained on (settings, data layout, input content identity)
    checkpoints/step-000120/  accelerate's save_state: model (safetensors), optimizer, scheduler, RNG of every
                              process, and the training progress (epoch, step, every stream's position)
    metrics.csv               one row per optimizer step (loss, lr, temperature, images/s), written at checkpoints

A checkpoint directory appears only complete (written under a temporary name, renamed once every process has
written its part). When the fingerprint differs from the one on disk, the old checkpoints and metrics are discarded
with a message naming what changed, so a rerun after an upstream change never resumes stale weights.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from accelerate import Accelerator

from pipeline.io.atomic import write_json
from pipeline.io.embeddings import text_side
from pipeline.io.parquet import read_parquet_metadata
from pipeline.io.shards import file_identity
from pipeline.train.data import ShardPair

KEEP = 2  # newest checkpoints kept
METRICS_FIELDS = ("step", "epoch", "loss", "lr", "temperature", "images_per_s")


def fingerprint(settings: dict, pairs: list[ShardPair], processes: int, num_workers: int) -> dict:
    """What a checkpoint must match to be resumed: the settings, the data layout (processes x loader workers) and
    the inputs' content identity (text side from the texts' metadata; sizes and mtimes of every file)."""
    shards = []
    for pair in pairs:
        meta = read_parquet_metadata(pair.texts)
        shards.append({"tar": file_identity(pair.tar), "texts": file_identity(pair.texts),
                       "text_side": text_side(meta)})
    return {"settings": settings, "processes": processes, "num_workers": num_workers, "shards": shards}


def describe_change(old: dict, new: dict) -> str:
    """A short human description of the first differences between two fingerprints."""
    old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
    changes = [f"{key}: {json.dumps(old_settings.get(key))} -> {json.dumps(new_settings.get(key))}"
               for key in sorted(set(old_settings) | set(new_settings))
               if old_settings.get(key) != new_settings.get(key)]
    for key in ("processes", "num_workers"):
        if old.get(key) != new.get(key):
            changes.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    old_shards, new_shards = old.get("shards", []), new.get("shards", [])
    if len(old_shards) != len(new_shards):
        changes.append(f"shards: {len(old_shards)} -> {len(new_shards)}")
    else:
        for before, after in zip(old_shards, new_shards):
            for part in ("tar", "texts", "text_side"):
                if before[part] != after[part]:
                    diff = [k for k in after[part] if before[part].get(k) != after[part][k]]
                    changes.append(f"{after['tar']['name']} {part} ({', '.join(diff)})")
    return "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")


class CheckpointStore:
    """The checkpoints of one state directory, used collectively by every process of ``accelerator``."""

    def __init__(self, state_dir: Path, accelerator: Accelerator):
        self.dir, self.accelerator = Path(state_dir), accelerator
        self.checkpoints = self.dir / "checkpoints"
        self.metrics = self.dir / "metrics.csv"

    def open(self, current: dict) -> Path | None:
        """Discard state written for another fingerprint (saying why), record ``current``; the newest checkpoint."""
        if self.accelerator.is_main_process:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            for partial in self.checkpoints.glob(".tmp-*"):
                shutil.rmtree(partial)
            stored = self.dir / "fingerprint.json"
            old = json.loads(stored.read_text(encoding="utf-8")) if stored.exists() else None
            if old is not None and old != current:
                print(f"{self.dir}: discarding training state written for other inputs or settings "
                      f"({describe_change(old, current)}); training from scratch", flush=True)
                shutil.rmtree(self.checkpoints)
                self.checkpoints.mkdir()
                self.metrics.unlink(missing_ok=True)
            write_json(current, stored)
        self.accelerator.wait_for_everyone()
        return self.latest()

    def latest(self) -> Path | None:
        steps = sorted(self.checkpoints.glob("step-*"))
        return steps[-1] if steps else None

    def save(self, step: int) -> Path:
        """Save the accelerator's state as ``step-<step>`` (all processes), keep the newest :data:`KEEP`."""
        final = self.checkpoints / f"step-{step:09d}"
        tmp = self.checkpoints / f".tmp-step-{step:09d}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            for old in sorted(self.checkpoints.glob("step-*"))[:-KEEP]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return final

    def append_metrics(self, rows: list[dict]) -> None:
        """Append per-step rows (:data:`METRICS_FIELDS`) to ``metrics.csv`` (main process only)."""
        if not self.accelerator.is_main_process:
            return
        new = not self.metrics.exists()
        with self.metrics.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRICS_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def truncate_metrics(self, step: int) -> list[dict]:
        """Keep the rows up to optimizer step ``step`` (a resumed run rewrites those after it); returns them on the
        main process, [] elsewhere."""
        if not (self.accelerator.is_main_process and self.metrics.exists()):
            return []
        with self.metrics.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle)  # a row cut short by a kill has missing fields
                    if None not in row.values() and row["step"].isdigit() and int(row["step"]) <= step]
        self.metrics.unlink()
        self.append_metrics(rows)
        return rows
