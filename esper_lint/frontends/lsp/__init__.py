"""`esper-lint server`: a language server over stdio, so that editors show findings as you type and
offer the fixes `check --fix` would make as code actions. Built on pygls (the `lsp` extra); this
module only checks that it is installed, so that `esper-lint` without it says what to install
instead of failing on an import."""

from __future__ import annotations

import importlib.util
import sys

EXIT_SERVED, EXIT_MISSING = 0, 2
INSTALL_HINT = "pip install 'esper-lint[lsp]'"


def missing_dependencies() -> list[str]:
    """The server's libraries that this Python cannot import (pygls brings lsprotocol)."""
    return [name for name in ("pygls", "lsprotocol") if importlib.util.find_spec(name) is None]


def serve() -> int:
    """Serve one client on stdin/stdout until it sends `exit` (or closes the pipe)."""
    missing = missing_dependencies()
    if missing:
        print(f"esper-lint: error: `esper-lint server` needs {' and '.join(missing)}: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_MISSING
    from esper_lint.frontends.lsp.server import build_server

    build_server().start_io()
    return EXIT_SERVED
