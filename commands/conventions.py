"""What every ``sleuth`` command shares: ``--version``, ``-h``, ``sleuth.toml`` defaults, and option
values checked when the command line is parsed (a bad value is a usage error, exit 2, before
any library is opened or model loaded).
"""

from __future__ import annotations

from typing import Optional

import typer
from typer.core import TyperGroup

from .. import __version__
from ..config import ConfigError, load_default_map
from ..core import LEVELS

# Mirrors of the readers' and searcher's own lists (tests/test_cli_conventions.py checks they
# agree), kept here so that parsing a command line imports no reader.
OCR_CHOICES = ("auto", "off", "force", "rapid", "paddle", "thorough", "figures")
ASR_CHOICES = ("auto", "subtitles", "whisper", "whisper-batched", "pocketsphinx", "none", "off")  # off = none (readers.check_modes)
LEVEL_CHOICES = ("any", "source", "coarse", "fine", "entity", *sorted(k for k in LEVELS if k not in ("source", "coarse", "fine")))


class SleuthGroup(TyperGroup):
    """Keeps the arguments after the group's own options, so the root callback can find the
    ``--library`` a subcommand was given (its ``sleuth.toml`` supplies defaults) before the
    subcommand parses them."""

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        ctx.meta["sleuth.args"] = [*ctx._protected_args, *ctx.args]
        return rest


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sleuth {__version__}")
        raise typer.Exit()


def root(ctx: typer.Context,
         version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                      help="Print the version and exit."),
         config: Optional[str] = typer.Option(None, "--config", envvar="SLEUTH_CONFIG", metavar="FILE",
                                              help="A sleuth.toml to use instead of ./sleuth.toml and <library>/sleuth.toml.")):
    """sleuth: agentic retrieval over long documents and videos, with located citations.

    Option defaults come from ./sleuth.toml and <library>/sleuth.toml (keys are option names;
    see docs/configuration.md). Environment variables: docs/configuration.md.
    """
    if ctx.resilient_parsing:  # shell completion: no files, no errors
        return
    try:
        default_map, files = load_default_map(config, ctx.meta.get("sleuth.args", []), option_names(ctx.command))
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)  # plain: one line, the file named, nothing wrapped
        raise typer.Exit(2)
    ctx.default_map = default_map
    ctx.meta["sleuth.config_files"] = [str(p) for p in files]


def option_names(group) -> dict[str, dict[str, str]]:
    """{command: {config key: parameter name}}: the key is the long option without its dashes
    (``--top-k`` -> ``top_k``, ``--json`` -> ``json``); arguments have no key."""
    out: dict[str, dict[str, str]] = {}
    for name, cmd in group.commands.items():
        keys: dict[str, str] = {}
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option" or not p.name:
                continue
            longs = [o for o in p.opts if o.startswith("--")]
            if longs and longs[0] not in ("--help",):
                keys[longs[0][2:].replace("-", "_")] = p.name
        out[name] = keys
    return out


def parse_budgets(value: str) -> str:
    """``--budgets 500,1000``: positive integers, checked at parse time."""
    try:
        nums = [int(b) for b in value.split(",") if b.strip()]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected comma-separated token counts such as 500,1000,2000") from None
    if not nums or min(nums) <= 0:
        raise typer.BadParameter(f"{value!r}: expected one or more positive token counts such as 500,1000,2000")
    return value


def parse_agent_budget(value: Optional[str]) -> Optional[str]:
    """``--budget rounds=3,calls=12``: checked by the agent's own parser at parse time."""
    if value is None:
        return None
    from ..agent.budget import AgentError, Budget

    try:
        Budget.parse(value)
    except AgentError as e:
        raise typer.BadParameter(str(e)) from None
    return value


def check_benchmark(value: str) -> str:
    from ..eval.runner import BENCHMARKS

    if value not in BENCHMARKS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(BENCHMARKS)}")
    return value
