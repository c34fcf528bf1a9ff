"""The Snakemake workflow: lint, config validation, the cc3m dry run, and the demo DAG end to end (small)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(*args, cwd=REPO, check=True):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def write_config(path: Path, base: str = "config.yaml", **sections) -> Path:
    config = yaml.safe_load((REPO / "config" / base).read_text())
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_config_typo_fails_before_any_job_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", embed={"layr": 3})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0
    assert "layr" in proc.stderr + proc.stdout


def test_wrong_type_names_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", train={"epochs": "many"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "epochs" in proc.stderr + proc.stdout


def test_cc3m_dry_run_builds_the_dag_without_models(tmp_path):
    shards = tmp_path / "cc3m"
    shards.mkdir()
    for i in range(3):
        (shards / f"{i:05d}.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "cc3m.yaml", base="cc3m.yaml", data={"train_shards": f"{shards}/{{00000..00002}}.tar"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path))
    out = proc.stdout + proc.stderr
    for rule, count in (("caption", 3), ("embed", 3), ("train", 1), ("evaluate", 2), ("report", 1)):
        assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), out


def test_shard_glob_matching_nothing_names_the_pattern(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/none/*.tar"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and f"{tmp_path}/none/*.tar" in proc.stderr + proc.stdout


def test_missing_local_llm_directory_names_the_path(tmp_path):
    (tmp_path / "s.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       embed={"llm": "/nonexistent/llm"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "/nonexistent/llm" in proc.stderr + proc.stdout


@pytest.mark.e2e
def test_demo_dag_end_to_end_then_nothing_to_do(tmp_path):
    cfg = write_config(
        tmp_path / "small.yaml",
        demo={"train_shards": 2, "samples_per_shard": 24, "eval_size": 12},
        train={"epochs": 1, "batch_size": 8},
    )
    cfg_text = cfg.read_text()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(cfg_text)
    snakemake("--profile", str(REPO / "profiles" / "local"), "--configfile", str(cfg), "--directory", str(tmp_path),
              "--cores", "2")
    report = (tmp_path / "results" / "demo" / "report" / "report.md").read_text()
    for name in ("urban1k", "coco", "zeroshot"):
        assert f"| {name} |" in report
    assert "image_retrieval_recall@1" in report and "acc1" in report
    again = snakemake("--profile", str(REPO / "profiles" / "local"), "--configfile", str(cfg), "--directory",
                      str(tmp_path), "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
