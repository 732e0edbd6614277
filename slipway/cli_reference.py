"""docs/cli.md, generated from the `slipway` command's own parser: `python -m slipway.cli_reference` rewrites it.

A test fails when the page is stale, so the commands, their options and the page cannot disagree.
argparse offers no public way to walk a parser's commands and arguments, so this reads its
`_actions` (stable since Python 3.2, and only here, at documentation time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slipway.cli import _parser
from stage.reference import rewrite_page

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _usage(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    flags = ", ".join(action.option_strings)
    takes_value = action.nargs != 0
    return f"`{flags} {action.metavar or action.dest.upper()}`" if takes_value else f"`{flags}`"


def _default(action: argparse.Action) -> str:
    if action.required or not action.option_strings or action.nargs == 0 or action.default is None:
        return ""
    return f"`{action.default}`"


def render() -> str:
    """The command reference: each command, what it does, and its arguments."""
    parser = _parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    lines = [
        "# The `slipway` command",
        "",
        "Generated from the command's parser (`slipway/cli.py`) by `python -m slipway.cli_reference`; do not edit",
        "by hand (a test fails when it is stale). Every command takes `--stage` (a stage of `cdk.json`, default",
        "`dev`). Against the local stack (`make run`), export the `AWS_ENDPOINT_URL` it prints first; against",
        "AWS, the usual AWS credentials. `slipway COMMAND --help` prints the same.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    lines += [f"| [`{name}`](#{name}) | {_cell(helps.get(name))} |" for name in commands.choices]
    for name, sub in commands.choices.items():
        lines += ["", f"## {name}", "", _cell(sub.description), ""]
        arguments = [a for a in sub._actions if not isinstance(a, argparse._HelpAction) and a.dest != "stage"]
        if arguments:
            lines += ["| argument | default | meaning |", "|---|---|---|"]
            lines += [f"| {_usage(a)} | {_default(a)} | {_cell(a.help)} |" for a in arguments]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    rewrite_page(REFERENCE, render())
