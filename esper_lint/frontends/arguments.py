"""The command line's parser (argparse): every option of every command, its help and its checks.

Only a command line with options, or a command other than `check`, loads this module: the plain
`esper-lint check FILE...` that pre-commit runs is read by `options.plain_check_arguments`, which
argparse is the oracle of (tests/test_cli_arguments.py), and never pays for importing argparse
and building the parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from esper_lint import __version__
from esper_lint.frontends.options import CHECK_DEFAULTS, COMMANDS, EXIT_USAGE, OUTPUT_FORMATS, Arguments
from esper_lint.frontends.output import REPORTERS
from esper_lint.frontends.paths import normalized
from esper_lint.frontends.runner import CACHE_DIR_NAME

__all__ = ["build_parser", "parse_arguments"]


def parse_arguments(arguments: Sequence[str]) -> Arguments:
    """The command line read by argparse (exits 2 with a usage message when it is wrong)."""
    command = arguments[0] if arguments and arguments[0] in COMMANDS else None
    return build_parser(command).parse_args(arguments, namespace=Arguments())


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal's width: its own asks `shutil`, whose import
    (with bz2, lzma and fnmatch) costs a start-up more than all the parsing it does."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80 if sys.__stdout__ is not None else 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse's own exit code for usage errors is 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"esper-lint: error: {message}\n")


def _codes(value: str) -> list[str]:
    codes = [code.strip() for code in value.split(",") if code.strip()]
    for code in codes:
        if not (code == "ALL" or (code.startswith("ESP") and code[3:].isdigit() and len(code) <= 6) or code == "ESP"):
            raise argparse.ArgumentTypeError(f"{code!r} is not an esper-lint code or prefix (e.g. ESP101, ESP1, ALL)")
    return codes


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; given a `command`, only that subcommand's parser (a run builds its own)."""
    parser = _Parser(prog="esper-lint", description="Lint private PyTorch API use against the documented-fallback contract.")
    parser.add_argument("--version", action="version", version=f"esper-lint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name, add in _COMMANDS.items():
        if command in (None, name):
            add(commands)
    return parser


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="lint Python files for private torch API use")
    check.add_argument("paths", nargs="*", type=normalized, metavar="PATH", help="files or folders (default: .); - reads stdin")
    check.add_argument(
        "--output-format", "--format", dest="format", choices=OUTPUT_FORMATS,
        help="output format (default: text, which is concise: path:line:col: CODE message; full adds the source line and a caret)",
    )
    check.add_argument("--select", type=_codes, help="comma-separated codes or prefixes to enable (replaces the configured select)")
    check.add_argument("--extend-select", type=_codes, help="comma-separated codes or prefixes to enable as well")
    check.add_argument("--ignore", type=_codes, help="comma-separated codes or prefixes to disable (added to the configured ignore)")
    check.add_argument("--config", type=Path, help="use this configuration file for every file, instead of the nearest one")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument(
        "--fix", action="store_true", help="apply the safe fixes in place (ESP301, ESP101, ESP103), then report what remains"
    )
    fixing.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff and change nothing (exit 1 when there is something to fix)"
    )
    check.add_argument(
        "--unsafe-fixes", action="store_true", help="also apply the unsafe fixes (ESP103: stale blocks; swaps not proven for your range)"
    )
    check.add_argument(
        "--add-templates",
        action="store_true",
        help="with --fix or --diff: insert a documentation template to fill in where no complete block is known",
    )
    check.add_argument(
        "--show-fixes", action="store_true", help="list every fix found, applied or not, and mark fixable findings [*]"
    )
    check.add_argument("--write-baseline", type=Path, metavar="FILE", help="record today's findings in FILE and exit 0")
    check.add_argument("--baseline", type=Path, metavar="FILE", help="report only findings that are not in FILE")
    check.add_argument("-j", "--jobs", type=_positive, help="worker processes (default: all cores)")
    check.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    check.add_argument("--cache-dir", type=Path, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")
    check.add_argument("--statistics", action="store_true", help="print the number of findings per code instead of the findings")
    check.add_argument("-q", "--quiet", action="store_true", help="print the findings only: no summary line")
    check.add_argument("--show-settings", action="store_true", help="print the configuration each PATH uses, and where it came from")
    check.add_argument("--show-files", action="store_true", help="print the files a run would check, and check nothing")
    check.add_argument(
        "--no-respect-gitignore", dest="respect_gitignore", action="store_false", help="also check files that .gitignore lists"
    )
    check.add_argument("--stdin-filename", type=Path, metavar="NAME", help="the name of the file read from stdin (with PATH -)")
    check.set_defaults(**CHECK_DEFAULTS)  # the one list of check's defaults, which the plain reading shares


def _add_verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="prove the private torch names in use exist in the installed torch (ESP203)"
    )
    verify.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .)")
    verify.add_argument("--format", choices=sorted(REPORTERS), default="text", help="output format (default: text)")
    verify.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching upward")
    verify.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    verify.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    verify.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")
    verify.set_defaults(select=None, ignore=None, exit_zero=False)


def _add_inventory(commands: Any) -> None:
    inventory = commands.add_parser("inventory", help="every private torch name in use, its uses and what the index knows")
    inventory.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .)")
    inventory.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format (default: text)")
    inventory.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching upward")
    inventory.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    inventory.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    inventory.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")


def _add_explain(commands: Any) -> None:
    explain = commands.add_parser("explain", help="what the torch index knows about a name (releases, replacement)")
    explain.add_argument("name", help="a dotted torch name, e.g. torch._foreach_norm")
    explain.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def _add_rule(commands: Any) -> None:
    rule = commands.add_parser("rule", help="print the documentation of a rule, or the table of all codes")
    rule.add_argument("code", nargs="?", help="e.g. ESP101")
    rule.add_argument("--table", action="store_true", help="print the README's markdown table of codes, made from rules/")
    rule.add_argument("--all", action="store_true", help="print the documentation of every rule")


def _add_server(commands: Any) -> None:
    server = commands.add_parser("server", help="run the language server on stdin/stdout (needs the `lsp` extra)")
    # Some LSP clients append --stdio to the command they are given; stdio is the only transport.
    server.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport)")


_COMMANDS = {  # in the order of options.COMMANDS
    "check": _add_check,
    "verify": _add_verify,
    "inventory": _add_inventory,
    "explain": _add_explain,
    "rule": _add_rule,
    "server": _add_server,
}


