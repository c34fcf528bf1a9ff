"""Training state on disk: accelerate checkpoints, guarded by a fingerprint of everything that shapes the result.

Layout of a state directory::

    fingerprint.json          what the checkpoints were trained on (settings, data layout, input content identity)
    checkpoints/step-000120/  accelerate's save_state: model.safetensors, optimizer.bin and random_states_<rank>.pkl
                              (every process's RNG; torch.save, read with weights_only=True), scaler.pt with fp16;
                              and ours, in JSON: scheduler.json, progress.json (epoch, step, every stream's position)
    metrics.csv               one row per optimizer step (loss, lr, temperature, images/s), written at checkpoints

A checkpoint directory appears only complete (written under a temporary name, renamed once every process has
written its part). When the fingerprint differs from the one on disk, the old checkpoints and metrics are discarded
with a message naming what changed, so a rerun after an upstream change never resumes stale weights.

No file of a state directory can run code on resume (a state directory may live on shared scratch, and a failed job
is retried automatically): nothing is registered with accelerate's checkpointing (it would pickle it and unpickle it
with ``weights_only=False``); a checkpoint must hold exactly the files above, each readable as what it should be
(safetensors, a ``weights_only`` torch file, JSON), or resume refuses it naming the file.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import OPTIMIZER_NAME, RNG_STATE_NAME, SAFE_MODEL_NAME, SCALER_NAME, load
from safetensors import SafetensorError, safe_open

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


def _refused(path: Path, reason: str) -> ValueError:
    """The error of a state file that resume does not read: names the file, the reason and the way out."""
    return ValueError(f"{path}: {reason}; refusing to resume: a file this pipeline did not write, or a damaged one "
                      "(delete the checkpoint directory holding it, or the whole state directory to train afresh)")


def read_json(path: Path):
    """The JSON document in ``path``; raises ``ValueError`` naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise _refused(path, f"not JSON ({err})") from None


def check_safetensors(path: Path) -> None:
    """``path`` is a safetensors file (its header parses); raises ``ValueError`` naming it otherwise."""
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except SafetensorError as err:
        raise _refused(path, f"not a safetensors file ({err})") from None


def check_weights_only(path: Path) -> None:
    """``path`` loads with ``torch.load(weights_only=True)`` and accelerate's allowlist (tensors, numbers, containers,
    the RNG states' numpy arrays): nothing in it can run code. Memory-mapped, so the tensors are not read; raises
    ``ValueError`` naming the file otherwise."""
    try:
        load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # UnpicklingError (a global outside the allowlist), a damaged or non-zip file ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _refused(path, f"not a weights-only torch file ({reason})") from None


class CheckpointStore:
    """The checkpoints of one state directory, used collectively by every process of ``accelerator``.

    ``tracked``: name -> an object with ``state_dict()`` / ``load_state_dict()`` of JSON values (the LR scheduler, the
    training progress), saved by the main process as ``<name>.json`` in each checkpoint beside accelerate's files.
    """

    def __init__(self, state_dir: Path, accelerator: Accelerator, tracked: dict):
        self.dir, self.accelerator, self.tracked = Path(state_dir), accelerator, tracked
        self.checkpoints = self.dir / "checkpoints"
        self.metrics = self.dir / "metrics.csv"

    def open(self, current: dict) -> Path | None:
        """Discard state written for another fingerprint (saying why), record ``current``; the newest checkpoint."""
        if self.accelerator.is_main_process:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            for partial in self.checkpoints.glob(".tmp-*"):
                shutil.rmtree(partial)
            stored = self.dir / "fingerprint.json"
            old = read_json(stored) if stored.exists() else None
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

    def files(self) -> set[str]:
        """The names of the files a checkpoint of this store holds: accelerate's and the tracked objects' JSON."""
        names = {f"{SAFE_MODEL_NAME}.safetensors", f"{OPTIMIZER_NAME}.bin",
                 *(f"{RNG_STATE_NAME}_{rank}.pkl" for rank in range(self.accelerator.num_processes)),
                 *(f"{name}.json" for name in self.tracked)}
        return names | ({SCALER_NAME} if self.accelerator.scaler is not None else set())

    def save(self, step: int) -> Path:
        """Save the accelerator's state and the tracked objects as ``step-<step>`` (all processes), keep the newest
        :data:`KEEP`."""
        final = self.checkpoints / f"step-{step:09d}"
        tmp = self.checkpoints / f".tmp-step-{step:09d}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        if self.accelerator.is_main_process:
            for name, tracked in self.tracked.items():
                write_json(tracked.state_dict(), tmp / f"{name}.json")
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            for old in sorted(self.checkpoints.glob("step-*"))[:-KEEP]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return final

    def resume(self, checkpoint: Path) -> None:
        """Load ``checkpoint`` into the accelerator's model and optimizer, this process's RNG and the tracked objects.

        First checked, so nothing in it can run code: it must hold exactly :meth:`files`, the model a safetensors
        file, the optimizer's, RNG and scaler files weights-only torch files, the rest JSON; raises ``ValueError``
        naming the first file that is not.
        """
        present, expected = {path.name for path in checkpoint.iterdir()}, self.files()
        for name in sorted(present ^ expected):
            raise _refused(checkpoint / name, "not a file of this pipeline's checkpoints" if name in present
                           else "missing")
        for name in sorted(expected):
            if name.endswith(".safetensors"):
                check_safetensors(checkpoint / name)
            elif not name.endswith(".json"):
                check_weights_only(checkpoint / name)
        documents = {name: read_json(checkpoint / f"{name}.json") for name in self.tracked}
        self.accelerator.load_state(str(checkpoint), load_kwargs={"weights_only": True})
        for name, tracked in self.tracked.items():
            tracked.load_state_dict(documents[name])

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
        try:
            with self.metrics.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames not in (None, list(METRICS_FIELDS)):  # None: empty (killed as it was created)
                    raise _refused(self.metrics, f"columns {reader.fieldnames}, expected {list(METRICS_FIELDS)}")
                rows = [row for row in reader  # a row cut short by a kill has missing fields
                        if None not in row.values() and row["step"].isdigit() and int(row["step"]) <= step]
        except (UnicodeDecodeError, csv.Error) as err:
            raise _refused(self.metrics, f"not a CSV file ({err})") from None
        self.metrics.unlink()
        self.append_metrics(rows)
        return rows
