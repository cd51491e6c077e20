"""What a command line means, without argparse: the names of the commands, the output formats, the
defaults of `check`'s options, and the reading of the command line pre-commit runs on every commit.

pre-commit calls `esper-lint check FILE...`: no option, only paths. `plain_check_arguments` reads
that line alone and answers None for anything else, which `arguments.parse_arguments` (argparse)
then reads. Importing argparse and building the parser cost such a run more than the byte pre-check
of its files. argparse is the oracle: for a plain line both give the same arguments
(tests/test_cli_arguments.py), and `check`'s defaults are written once, here, and given to argparse
with `set_defaults`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from esper_lint.frontends.paths import normalized

__all__ = [
    "CHECK_DEFAULTS",
    "COMMANDS",
    "EXIT_USAGE",
    "HUMAN_FORMATS",
    "OUTPUT_FORMATS",
    "Arguments",
    "plain_check_arguments",
]

EXIT_USAGE = 2  # argparse's own exit code for a wrong command line, and esper-lint's for usage errors

COMMANDS = ("check", "verify", "inventory", "explain", "rule", "server")

# The human formats (findings for people; the summary on stderr) and the machine ones (exact bytes).
HUMAN_FORMATS = ("concise", "full", "text")
OUTPUT_FORMATS = ("concise", "full", "text", "json", "sarif", "github")


class Arguments(SimpleNamespace):
    """A parsed command line: one attribute per option (argparse fills it in, as its namespace)."""


# Every option of `check` (by its attribute name) with the value it has when not given.
CHECK_DEFAULTS: dict[str, object] = {
    "format": "text",
    "select": None,
    "extend_select": [],
    "ignore": None,
    "config": None,
    "exit_zero": False,
    "fix": False,
    "diff": False,
    "unsafe_fixes": False,
    "add_templates": False,
    "show_fixes": False,
    "write_baseline": None,
    "baseline": None,
    "jobs": None,
    "no_cache": False,
    "cache_dir": None,
    "statistics": False,
    "quiet": False,
    "show_settings": False,
    "show_files": False,
    "respect_gitignore": True,
    "stdin_filename": None,
}


def plain_check_arguments(arguments: Sequence[str]) -> Arguments | None:
    """`check` followed by paths only, read as argparse reads it; None for any other command line
    (an option, `-` for stdin, `--`, an empty path): argparse reads those."""
    if not arguments or arguments[0] != "check":
        return None
    paths = arguments[1:]
    if any(not path or path.startswith("-") for path in paths):
        return None
    defaults = {name: list(value) if isinstance(value, list) else value for name, value in CHECK_DEFAULTS.items()}
    # the paths as pathlib spells them (`./a.py` is `a.py`), kept strings: see frontends/paths.py
    return Arguments(command="check", paths=[normalized(path) for path in paths], **defaults)
