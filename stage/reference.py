"""docs/settings.md, generated from the settings models: `python -m stage.reference` rewrites it.

One row per setting: its dotted name, type, default (from the models, where every default lives),
the value each stage of `cdk.json` gives it where that differs, and its description. A test fails
when the page is stale, so the models, cdk.json and the page cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stage.settings import CDK_JSON, StageSettings, load_context, settings_from_context

REFERENCE = CDK_JSON.parent / "docs" / "settings.md"
# Set by the stage itself, not by cdk.json.
_IMPLIED = frozenset({"project", "stage"})


def _section(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds, if it is one (a section or a nested policy; not a list of them)."""
    if get_origin(annotation) in (tuple, list, dict):
        return None
    candidates = [annotation, *get_args(annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _type(annotation: Any) -> str:
    """A reader's name for a type: `str`, `int or null`, `one of "a", "b"`, `list of str`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in args)
    if origin is Annotated:
        return _type(args[0])
    if origin in (Union, UnionType):
        return " or ".join("null" if arg is type(None) else _type(arg) for arg in args)
    if origin in (tuple, list):
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1])}"
    return getattr(annotation, "__name__", str(annotation))


def _value(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`".replace("|", "\\|")


def _rows(
    model: type[BaseModel], values: dict[str, dict[str, Any]], prefix: str, *, only: list[str] | None = None
) -> Iterator[list[str]]:
    for name, field in model.model_fields.items():
        if (not prefix and name in _IMPLIED) or (only is not None and name not in only):
            continue
        dotted = f"{prefix}{name}"
        nested = _section(field.annotation)
        if nested is not None and nested.model_fields:
            yield [f"**{dotted}**", "", "", *("" for _ in values), _doc(nested.__doc__)]
            yield from _rows(nested, {stage: v.get(name, {}) for stage, v in values.items()}, f"{dotted}.")
            continue
        default = _default(field)
        stage_values = [_value(v[name]) if _value(v[name]) != default else "" for v in values.values()]
        yield [f"`{dotted}`", _type(field.annotation), default, *stage_values, _describe(field)]


def _default(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    return _value(default.model_dump(mode="json") if isinstance(default, BaseModel) else default)


def _describe(field: FieldInfo) -> str:
    return (field.description or "").replace("|", "\\|").replace("\n", " ")


def _doc(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def render(context: dict[str, Any] | None = None) -> str:
    """The reference page for the stages of `context` (cdk.json's by default)."""
    context = context or load_context()
    stages = sorted(context.get("slipway:stages", {}))
    values = {stage: settings_from_context(context, stage).model_dump(mode="json") for stage in stages}
    header = ["setting", "type", "default", *stages, "meaning"]
    table_head = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines = [
        "# Settings reference",
        "",
        "Generated from `stage/settings.py` and `cdk.json` by `python -m stage.reference`; do not edit by hand",
        "(a test fails when it is stale). Every default lives in the models; `cdk.json` holds only what a",
        "stage changes (`slipway:stages`), what every stage changes (`slipway:defaults`, optional) and what an",
        "AWS emulator needs (`slipway:emulator`, [deploy.md](deploy.md)). A stage column is empty where the",
        "stage keeps the default. Set a value with `-c` at deploy time or in `cdk.json`, e.g.",
        '`"prod": {"retrain": {"gate": {"tolerance": 0.005}}}`.',
    ]
    top = [name for name, field in StageSettings.model_fields.items() if name not in _IMPLIED]
    plain = [name for name in top if _section(StageSettings.model_fields[name].annotation) is None]
    lines += ["", "## stage", "", *table_head]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(StageSettings, values, "", only=plain)]
    for name in top:
        section = _section(StageSettings.model_fields[name].annotation)
        if name in plain or section is None:
            continue
        lines += ["", f"## {name}", "", _doc(section.__doc__), "", *table_head]
        nested = {stage: v.get(name, {}) for stage, v in values.items()}
        lines += ["| " + " | ".join(row) + " |" for row in _rows(section, nested, f"{name}.")]
    return "\n".join(lines) + "\n"


def rewrite_page(page: Path, text: str) -> None:
    """Write a generated reference page (under the project's root) and say which."""
    page.write_text(text)
    print(f"wrote {page.relative_to(CDK_JSON.parent)}")


if __name__ == "__main__":
    rewrite_page(REFERENCE, render())
