"""Writes docs/config.md, the reference of every config key, from pipeline/schema.yaml (the one definition of the
settings): ``python docs/make_config_reference.py`` rewrites it, ``--check`` fails when the committed file is stale
(a test runs that)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.settings import load_schema, properties, resolve  # noqa: E402

OUT = REPO / "docs" / "config.md"
HEADER = """# Config reference

Every key of a config (`config/demo.yaml`, `config/cc3m.yaml`, your own), generated from `pipeline/schema.yaml` by
`python docs/make_config_reference.py` (a test checks that this file is current). Keys left out take the default.
Per stage, `execution`, `threads` and `resources` change speed and placement only and never trigger a rerun; every
other key of a stage section changes its results and reruns it (and what follows) when changed.
"""


def _type(node: dict) -> str:
    node = resolve(node)
    if "oneOf" in node:
        return " or ".join(_type(option) for option in node["oneOf"])
    kind = node.get("type", "object" if "properties" in node or "allOf" in node else "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in node:
        kind = f"list of {_type(node['items'])}"
    return kind


def _allowed(node: dict) -> str:
    node = resolve(node)
    node = resolve(node["items"]) if "items" in node else node
    if "enum" in node:
        return ", ".join(f"`{value}`" for value in node["enum"])
    bounds = [f"{word} {node[key]}" for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                                                     ("maximum", "≤"), ("exclusiveMaximum", "<")) if key in node]
    return ", ".join(bounds)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(prefix: str, node: dict, rows: list[str], inherited: dict | None = None) -> None:
    """One row per property of ``node`` (nested objects too); ``inherited``: the parent's default object, whose
    values are the defaults of its keys (``caption.short`` defaults ``max_new_tokens`` to 40, not the shared 256)."""
    for name, child in properties(node).items():
        key = f"{prefix}.{name}" if prefix else name
        resolved = resolve(child)
        if inherited is not None and name in inherited:
            default, known = inherited[name], True
        else:
            known = "default" in child or "default" in resolved
            default = child.get("default", resolved.get("default"))
        shown = f"`{json.dumps(default)}`" if known else ""
        rows.append(f"| `{key}` | {_cell(_type(child))} | {shown} | {_cell(_allowed(child))} | "
                    f"{_cell(child.get('description', resolved.get('description', '')))} |")
        nested = resolved.get("additionalProperties")
        if properties(child):
            _rows(key, child, rows, default if isinstance(default, dict) else None)
        elif isinstance(nested, dict) and properties(nested):
            _rows(f"{key}.<name>", nested, rows)


def reference() -> str:
    """The Markdown reference: one table per top-level section of a config."""
    schema = load_schema()
    parts = [HEADER]
    for section, node in schema["properties"].items():
        resolved = resolve(node)
        parts.append(f"\n## `{section}`\n\n{_cell(resolved.get('description', ''))}\n\n")
        rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        nested = resolved.get("additionalProperties")
        if properties(node):
            _rows(section, node, rows)
        elif isinstance(nested, dict):
            _rows(f"{section}.<name>", nested, rows)
        else:
            rows.append(f"| `{section}` | {_cell(_type(node))} | | {_cell(_allowed(node))} | |")
        parts.append("\n".join(rows) + "\n")
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if docs/config.md is not current")
    text = reference()
    if parser.parse_args().check:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python docs/make_config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
