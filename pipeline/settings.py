"""Stage settings: one definition per setting, in ``pipeline/schema.yaml`` (types, bounds, defaults, meaning).

Snakemake validates a whole config against that schema (``rules/common.smk``: Snakemake's ``validate`` fills in the
defaults, :func:`validate_config` checks again with this module's types); a stage run by hand validates its own
documents against the same ``$defs``: ``<stage>_settings`` (everything that changes the stage's results, passed as
one JSON/YAML document) and ``<stage>_execution`` (speed-only settings, passed as flags). Missing keys take the
schema's defaults; a wrong key or value is an error naming the document, the key and the reason.

Stricter than plain JSON Schema, as the code needs: an ``integer`` is a Python ``int`` (JSON Schema counts 8.0 as
one, which ``range()`` would reject in the middle of a job), and a key given twice in one mapping of a YAML or JSON
document is an error naming the key, the file and the line (YAML and JSON take the last one silently).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Hashable
from functools import cache
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

# Keys of a config's stage section that are not part of the stage's settings document.
NON_SETTINGS_KEYS = ("execution", "threads", "resources")


@cache
def load_schema() -> dict:
    """The configuration schema (JSON Schema 2020-12) as a dict."""
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


class RepeatedKey(ValueError):
    """A key given twice in one mapping of a YAML or JSON document."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml's SafeLoader, but a key given twice in one mapping raises :class:`RepeatedKey` naming it and its lines (a
    merge ``<<: *anchor`` is not a repeat: the keys beside it override the merged ones, as YAML defines)."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in first_line:
                raise RepeatedKey(f"line {line}: key {key!r} given twice in one mapping (first at line "
                                  f"{first_line[key]})")
            first_line.setdefault(key, line)
        return super().construct_mapping(node, deep)


def load_yaml(source: str, where: str):
    """The YAML (or JSON) text ``source``, read with :class:`UniqueKeyLoader`; raises ``ValueError`` naming ``where``
    (the file) for a repeated key or invalid YAML."""
    try:
        return yaml.load(source, Loader=UniqueKeyLoader)
    except RepeatedKey as err:
        raise ValueError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid JSON or YAML ({err})") from None


def _is_int(checker, instance) -> bool:
    """JSON Schema's ``integer`` as the code needs it: a Python int, not a bool nor an integral float (8.0)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Strict = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)


def _with_defaults(validator_class):
    """A validator class that also fills in each missing property's ``default`` (a copy), as Snakemake does."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(_Strict)


def resolve(node: dict) -> dict:
    """``node`` with its ``$ref`` followed (within ``$defs``)."""
    while "$ref" in node:
        node = load_schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def properties(node: dict) -> dict[str, dict]:
    """The properties of a schema node, those of its ``allOf`` parts first (its own win)."""
    node = resolve(node)
    found: dict[str, dict] = {}
    for part in node.get("allOf", []):
        found.update(properties(part))
    found.update(node.get("properties", {}))
    return found


def _walk(definition: str, path: tuple[str, ...]) -> dict:
    """The schema of ``$defs/<definition>``, then of its property ``path[0]`` ... as written (the last ``$ref`` not
    followed, so the keys beside it, such as ``default``, stay); raises ``KeyError`` naming a missing step."""
    node = {"$ref": f"#/$defs/{definition}"}
    for i, name in enumerate(path):
        found = properties(node).get(name)
        if found is None:
            raise KeyError(f"schema: $defs/{definition}/{'/'.join(path[:i + 1])} is not defined")
        node = found
    return node


def schema_node(definition: str, *path: str) -> dict:
    """The schema of ``$defs/<definition>``, then of its property ``path[0]``, of that one's ``path[1]`` ...
    (``$ref`` and ``allOf`` followed)."""
    return resolve(_walk(definition, path))


def allowed(definition: str, *path: str) -> tuple:
    """The allowed values of a setting (its ``enum``, or its items' for a list), as the schema defines them, in
    the schema's order: the one list of them, which the code and the CLI read."""
    node = schema_node(definition, *path)
    node = resolve(node.get("items", node))
    return tuple(node["enum"])


def default(definition: str, *path: str):
    """The schema's default of a setting (a copy)."""
    node = _walk(definition, path)
    return copy.deepcopy(node["default"] if "default" in node else resolve(node)["default"])


def _cause(errors) -> jsonschema.ValidationError | None:
    """The error to report of a validation: a key that fails its own check also counts as "unevaluated" for the
    mapping holding it, so that one is reported only when there is no other."""
    errors = list(errors)
    specific = [e for e in errors if e.validator != "unevaluatedProperties"] or errors
    return jsonschema.exceptions.best_match(specific)


#: Why ``embed.layer: 0`` is refused (the schema excludes 0; its own message would only quote the schema).
LAYER_ZERO = ("0 would be hidden_states[0], the token embeddings before any decoder layer (no context): use -1 for "
              "the final normed state or L >= 1 for decoder layer L's output (before the final norm)")


def check_layer(layer, key: str) -> None:
    """Raise ``ValueError`` naming ``key`` (e.g. ``config key embed.layer``) when an embed ``layer`` is 0, saying
    what 0 would mean and what to use; run before schema validation."""
    if type(layer) is int and layer == 0:
        raise ValueError(f"{key}: {LAYER_ZERO}")


def validate_document(definition: str, document: dict, where: str) -> dict:
    """``document`` checked against ``$defs/<definition>`` of the schema, defaults filled in (a new dict).

    ``where`` names the document in the error (a file, a flag). Raises ``ValueError`` naming the key and the reason.
    """
    schema = load_schema()
    if definition not in schema["$defs"]:
        raise KeyError(f"schema has no definition {definition!r}")
    wrapped = {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"], "unevaluatedProperties": False}
    filled = copy.deepcopy(document)
    error = _cause(_Validator(wrapped).iter_errors(filled))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"{where}: key {key}: {error.message}")
    return filled


def validate_config(config: dict) -> None:
    """A whole config checked against the schema with this module's types (Snakemake's ``validate`` uses plain JSON
    Schema's); raises ``ValueError`` naming the key path and the reason."""
    error = _cause(_Strict(load_schema()).iter_errors(config))
    if error is not None:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise ValueError(f"config key {key or '(top level)'}: {error.message}")


def _unique_pairs(pairs: list[tuple]) -> dict:
    """A JSON object's pairs as a dict; raises :class:`RepeatedKey` for a key given twice."""
    document: dict = {}
    for key, value in pairs:
        if key in document:
            raise RepeatedKey(f"key {key!r} given twice in one object")
        document[key] = value
    return document


def read_document(text: str, expected: type = dict) -> dict | list:
    """A settings document given on the command line: a path to a YAML/JSON file, or inline JSON/YAML text; a
    mapping (or a list, with ``expected=list``). A key given twice is an error naming it, the file and the line."""
    path = Path(text)
    is_file = path.suffix in (".yaml", ".yml", ".json") and path.is_file()
    source, where = (path.read_text(encoding="utf-8"), str(path)) if is_file else (text, f"settings {text[:80]!r}")
    try:  # JSON first: YAML 1.1 reads JSON's 1e-08 as a string
        document = json.loads(source, object_pairs_hook=_unique_pairs)
    except RepeatedKey as err:  # YAML reads JSON too, and knows the line
        load_yaml(source, where)
        raise ValueError(f"{where}: {err}") from None
    except ValueError:
        document = load_yaml(source, where)
    if not isinstance(document, expected):
        what = "a mapping of setting names to values" if expected is dict else "a list"
        raise ValueError(f"{where}: expected {what}")
    return document


def stage_settings(section: dict) -> dict:
    """The settings document of a config's stage section: every key except execution, threads and resources."""
    return {key: value for key, value in section.items() if key not in NON_SETTINGS_KEYS}


def clip_settings(train_section: dict, baseline_section: dict) -> dict:
    """The CLIP baseline's settings document: the keys of a config's ``train:`` section that ``$defs/train_common``
    defines (vision backbone, data, schedule) plus its ``clip_baseline:`` section."""
    common = load_schema()["$defs"]["train_common"]["properties"]
    return {**{key: value for key, value in train_section.items() if key in common}, **baseline_section}


def as_json(document: dict) -> str:
    """Canonical JSON of a settings document (sorted keys): the form the rules pass and fingerprints hash."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
