"""`esper-lint server`: a language server over stdio, so that editors show findings as you type and
offer the fixes `check --fix` would make as code actions. Built on pygls (the `lsp` extra); this
module only checks that it is installed, so that `esper-lint` without it says what to install
instead of failing on an import."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
from types import FrameType

# LSP's rule: exit 0 when the client asked for `shutdown` before `exit`, else 1; 2 as every usage
# error of esper-lint, when the server cannot start.
EXIT_SERVED, EXIT_UNEXPECTED_END, EXIT_MISSING = 0, 1, 2
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

    server = build_server()
    _signals_end_the_server()
    server.start_io()
    return EXIT_SERVED if server.shutdown_requested else EXIT_UNEXPECTED_END


def _signals_end_the_server() -> None:
    """SIGTERM (an editor stopping its server) and SIGINT end the process at once, with the shell's
    exit code (143, 130), as every esper-lint command does. Raising, as `check` does, is not enough
    here: pygls then waits for its thread blocked reading stdin, which the editor may keep open.
    The server holds no files and no workers, and each message is flushed as it is written."""
    if threading.current_thread() is not threading.main_thread():
        return

    def end(signum: int, frame: FrameType | None) -> None:
        try:
            os.write(2, f"esper-lint: server stopped by {signal.Signals(signum).name}\n".encode())
        finally:
            os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, end)
