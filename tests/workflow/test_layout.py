"""The package layout as documented in pipeline/__init__.py: the demo apart, the CLI light, one stage.run() per
stage, only the named imports between stages; and the generated config reference is current."""

import ast
import subprocess
import sys
from pathlib import Path

from fixtures.workflow import REPO

STAGES = ("caption", "embed", "train", "evaluate", "report")
#: (importing package, imported module) across stages, as pipeline/__init__.py lists them
CROSS_STAGE = {
    ("train", "pipeline.embed.prompts"),
    ("evaluate", "pipeline.embed.prompts"), ("evaluate", "pipeline.embed.fda"),
    ("evaluate", "pipeline.train.model"), ("evaluate", "pipeline.train.clip_baseline"),
    ("evaluate", "pipeline.train.transforms"),
    ("report", "pipeline.evaluate.benchmarks"), ("report", "pipeline.evaluate.readers"),
    ("demo", "pipeline.embed.fda"), ("demo", "pipeline.embed.prompts"), ("demo", "pipeline.train.schedule"),
}


def modules(tree: ast.AST) -> set[str]:
    """The modules the import statements in ``tree`` name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_named_imports_cross_stages_and_nothing_of_the_product_imports_the_demo():
    crossing = set()
    for path in (REPO / "pipeline").rglob("*.py"):
        package = path.relative_to(REPO / "pipeline").parts[0]
        for module in modules(ast.parse(path.read_text(encoding="utf-8"))):
            target = module.split(".")[1] if module.startswith("pipeline.") else None
            if target == "demo" and package not in ("demo", "cli.py"):
                raise AssertionError(f"{path} imports the demo ({module})")
            if target in (*STAGES, "demo") and package in (*STAGES, "demo") and target != package:
                crossing.add((package, module))
    assert crossing == CROSS_STAGE


def test_every_stage_has_one_run_entry_point():
    for stage in STAGES:
        tree = ast.parse((REPO / "pipeline" / stage / "stage.py").read_text(encoding="utf-8"))
        assert "run" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, stage


def test_the_cli_parses_without_importing_torch_or_the_demo():
    code = ("import sys; from pipeline.cli import build_parser; build_parser().parse_args(['demo-llm', 'x']); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('pipeline.demo')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_the_workflow_plans_without_importing_torch_or_transformers():
    """The import statements of the Snakefile and its rules, run as they are: planning imports neither torch nor
    transformers nor open_clip (they cost every `snakemake` call, a dry run included, seconds)."""
    source = "".join(workflow_imports(path) for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))])
    assert {"pipeline.evaluate.benchmarks", "pipeline.io"} <= modules(ast.parse(source))
    code = source + ("import sys\nprint(sorted(m for m in sys.modules "
                     "if m.split('.')[0] in ('torch', 'transformers', 'open_clip')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert proc.stdout.strip() == "[]"


def workflow_imports(path: Path) -> str:
    """The top-level ``import``/``from`` statements of a Snakefile or .smk file (one may span lines in
    parentheses), as Python source."""
    statements, pending = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if pending or line.startswith(("import ", "from ")):
            pending += line + "\n"
            if pending.count("(") == pending.count(")"):
                statements.append(pending)
                pending = ""
    return "".join(statements)


def test_the_config_reference_is_current():
    proc = subprocess.run([sys.executable, str(REPO / "docs" / "make_config_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_dispatch_tables_cover_exactly_the_schemas_values():
    """Lists of allowed values live in the schema; the tables that dispatch on them must agree with it."""
    from pipeline.caption.backends import CAPTIONERS
    from pipeline.demo.tiny_llm import ARCHITECTURES
    from pipeline.evaluate.benchmarks import FORMATS
    from pipeline.settings import allowed

    assert set(FORMATS) == set(allowed("benchmark", "format"))
    assert set(ARCHITECTURES) == set(allowed("llm_shape", "arch"))
    assert set(CAPTIONERS) | {"dataset"} == set(allowed("caption_settings", "backend"))


SCHEMA_KEYWORDS = {
    "$schema", "$defs", "$ref", "description", "type", "properties", "additionalProperties", "unevaluatedProperties",
    "required", "propertyNames", "minProperties", "items", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "pattern", "enum", "const", "default", "oneOf", "anyOf",
    "allOf", "not", "if", "then", "else",
}


def test_every_schema_node_holds_only_json_schema_keywords():
    """An unquoted comma in a YAML flow mapping (`{description: a, b}`) cuts the description and adds a key `b`:
    every key of every schema node must be a JSON Schema keyword."""
    from pipeline.settings import load_schema

    def check(node, where):
        assert isinstance(node, dict), where
        unknown = set(node) - SCHEMA_KEYWORDS
        assert not unknown, f"{where}: {sorted(unknown)}"
        for key in ("properties", "$defs"):
            for name, sub in node.get(key, {}).items():
                check(sub, f"{where}/{key}/{name}")
        for key in ("items", "additionalProperties", "unevaluatedProperties", "propertyNames", "not", "if", "then",
                    "else"):
            if isinstance(node.get(key), dict):
                check(node[key], f"{where}/{key}")
        for key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(node.get(key, [])):
                check(sub, f"{where}/{key}[{i}]")

    check(load_schema(), "schema")
