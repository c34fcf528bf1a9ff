"""How a training job starts its processes: the command prefix that runs ``pipeline.cli`` once per GPU."""

from __future__ import annotations

from pathlib import Path


def launch_command(processes: int, bin_dir: Path | None = None) -> list[str]:
    """The command prefix that runs ``pipeline.cli`` in ``processes`` processes on one node: plain ``python -m``
    for one, ``accelerate launch --multi_gpu`` for more (one process per GPU; gloo processes on a CPU host).
    ``bin_dir``: where ``python`` and ``accelerate`` are (default: found on PATH)."""
    python, accelerate = (str(bin_dir / name) if bin_dir else name for name in ("python", "accelerate"))
    if processes <= 1:
        return [python, "-m", "pipeline.cli"]
    return [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
            "--dynamo_backend", "no", "-m", "pipeline.cli"]
