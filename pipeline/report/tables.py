"""The report's tables (Markdown): every result with the models side by side, the per-language table, provenance."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.io.model_dir import CONFIG_NAME, read_config, read_summary
from pipeline.io.results import model_name

Row = tuple[str, str, str, str]  # (dataset, language, task, metric)


def side_by_side(results: list[dict]) -> tuple[list[str], dict[Row, dict[str, float]]]:
    """``(models in first-seen order, {(dataset, language, task, metric): {model: value}})`` in first-seen order."""
    models: dict[str, None] = {}
    rows: dict[Row, dict[str, float]] = {}
    for result in results:
        models[model_name(result)] = None
        for metric, value in result["metrics"].items():
            key = (result["dataset"], result.get("language", "en"), result["task"], metric)
            rows.setdefault(key, {})[model_name(result)] = value
    return list(models), rows


def markdown_table(results: list[dict]) -> str:
    """One row per (dataset, language, metric), one column per model, values in percent with one decimal."""
    models, rows = side_by_side(results)
    lines = ["| dataset | language | task | metric | " + " | ".join(f"{m} (%)" for m in models) + " |",
             "|---|---|---|---|" + "---:|" * len(models)]
    for (dataset, language, task, metric), values in rows.items():
        cells = " | ".join(f"{100 * values[m]:.1f}" if m in values else "–" for m in models)
        lines.append(f"| {dataset} | {language} | {task} | {metric} | {cells} |")
    return "\n".join(lines) + "\n"


def language_table(results: list[dict], metric: str = "image_retrieval_recall@1") -> str:
    """Per multilingual dataset, one row per language and a column per model: ``metric`` in percent ("" when no
    dataset has more than one language)."""
    models, rows = side_by_side(results)
    languages: dict[str, set[str]] = {}
    for dataset, language, _, _ in rows:
        languages.setdefault(dataset, set()).add(language)
    multilingual = [d for d, langs in languages.items() if len(langs) > 1]
    if not multilingual:
        return ""
    lines = [f"## Per language ({metric})\n", "| dataset | language | " + " | ".join(models) + " |",
             "|---|---|" + "---:|" * len(models)]
    for (dataset, language, _, name), values in rows.items():
        if dataset in multilingual and name == metric:
            cells = " | ".join(f"{100 * values[m]:.1f}" if m in values else "–" for m in models)
            lines.append(f"| {dataset} | {language} | {cells} |")
    return "\n".join(lines) + "\n\n"


def prompt_table(results: list[dict]) -> str:
    """Markdown: per benchmark (one row for all its languages), the prompt each FLAME model's texts were embedded
    with: its name, the trained source whose facets it used and, for several facets, how they were averaged ("" when
    no result records a prompt)."""
    cells: dict[str, dict[str, str]] = {}
    for result in results:
        prompt = result.get("prompt")
        if isinstance(prompt, dict):
            count = len(prompt["facets"])
            used = f"{prompt['name']}: {prompt['source']} template, " + (
                f"{count} facets, mean of {prompt['long_mean']} facets" if count > 1 else "1 facet")
            cells.setdefault(result["dataset"], {})[model_name(result)] = used
    if not cells:
        return ""
    models = list(dict.fromkeys(model for row in cells.values() for model in row))
    lines = ["## Prompts (FLAME's texts)\n", "| dataset | " + " | ".join(models) + " |",
             "|---|" + "---|" * len(models)]
    lines += [f"| {dataset} | " + " | ".join(row.get(m, "–") for m in models) + " |" for dataset, row in cells.items()]
    return "\n".join(lines) + "\n\n"


def text_side_table(results: list[dict]) -> str:
    """Markdown: per FLAME model whose directory is readable, the frozen LLM its targets came from (as named, and its
    content identity: a directory's or GGUF file's SHA-256), the hidden layer read and the text layout ("" when there
    is none)."""
    lines = []
    for model, result in {model_name(r): r for r in results}.items():
        directory = Path(result.get("model") or "")
        if not (directory / CONFIG_NAME).is_file():
            continue
        config = read_config(directory)
        if config.get("kind") == "flame":
            text = config["text"]
            identity = str(text.get("llm_identity"))
            lines.append(f"| {model} | `{text.get('llm')}` | `{identity[:23]}…` | {text.get('layer')} | "
                         f"{text.get('layout')} |")
    if not lines:
        return ""
    return ("## Text side (the frozen LLM of each FLAME model)\n\n| model | LLM | content identity | layer | layout |\n"
            "|---|---|---|---:|---|\n" + "\n".join(lines) + "\n\n")


def provenance_table(results: list[dict]) -> str:
    """Markdown: what produced each model (its ``train_summary.json``, when the model directory is readable) and the
    evaluations (each distinct code and library version, with how many results it made)."""
    columns = ("git_commit", "flame_pipeline", "torch", "transformers", "timm", "open_clip_torch")
    rows = []
    for model, result in {model_name(r): r for r in results}.items():
        summary = read_summary(Path(result["model"]))
        if summary is not None:
            found = summary.get("provenance") or {}
            rows.append((f"train {model} (settings {str(found.get('settings_sha256'))[:12]})", found))
    versions = Counter(tuple((key, r.get("provenance", {}).get(key)) for key in columns) for r in results)
    rows += [(f"evaluate ({count} results)", dict(version)) for version, count in versions.items()]
    lines = ["| stage | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {what} | " + " | ".join(str(found.get(key)) for key in columns) + " |" for what, found in rows]
    return "## Provenance\n\n" + "\n".join(lines) + "\n"
