"""The prepared GPU check (benchmarks/gpu_check.py) in its tiny CPU mode, so that it cannot rot between the times a
GPU is lent: every section runs through the pipeline's own code and writes its figures."""

import json
import subprocess
import sys
from pathlib import Path

from fixtures import HUNG_AFTER_S

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_every_section_in_its_tiny_cpu_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    embed = result["embed"]
    for mode in ("naive", "fda"):
        row = embed["modes"][mode]
        assert row["k"] == 7 and row["captions_per_s"] > 0 and row["mfu"] is None  # no --peak-tflops
    fda = embed["modes"]["fda"]
    assert embed["flop_bound"] == 7 * (fda["lp"] + fda["ls"]) / (fda["lp"] + 7 * fda["ls"])
    # nothing runs out of memory on the CPU: every budget tried fits, the largest is reported
    assert [b["fits"] for b in embed["budgets"]] == [True, True] and embed["largest_fitting_budget"] == 1024
    assert set(result["train"]["steps"]) == {"FLAME, per-token projector", "FLAME, pooled projector"}
    assert all(row["images_per_s"] > 0 and row["flops_per_image"] > 0 for row in result["train"]["steps"].values())
    assert result["train"]["loader"]["images_per_s"] > 0 and result["train"]["loader"]["workers"] == 2
    assert [row["batch"] for row in result["caption"]["rows"]] == [1, 2]
    assert "| embed | fda / naive (FLOP bound" in proc.stdout and "| caption | batch 2 " in proc.stdout
