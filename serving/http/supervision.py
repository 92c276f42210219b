"""``akhbar serve`` watching its server: a worker that keeps dying stops the server with one
sentence naming why, instead of a crash loop behind an open port.

BentoML's process manager restarts a dead worker for ever. A worker killed by a signal leaves
no log line, so with the model store on a full disk (SIGBUS on a memory-mapped file) the
service crash-looped every 10 s while its port stayed open and callers hung (issue 20). So:

* each worker records fatal signals with :mod:`faulthandler` in a file ``akhbar serve`` names
  (:data:`CRASH_FILE_ENV`), which gives the cause ("Bus error", "Segmentation fault");
* each worker writes its process id there when it starts, and ``akhbar serve`` checks those
  processes every second; :data:`DEATHS` worker deaths within :data:`WINDOW_S` seconds stop
  the server, and it exits 1 after one sentence;
* before starting, it refuses a model store whose disk has less than :data:`MIN_FREE_BYTES`
  free (BentoML keeps its metrics there as memory-mapped files).
"""

from __future__ import annotations

import faulthandler
import os
import re
import shutil
import time
from pathlib import Path
from typing import IO

CRASH_FILE_ENV = "AKHBAR_CRASH_FILE"  # workers append fatal-signal reports here
DEATHS = 3
WINDOW_S = 300.0
MIN_FREE_BYTES = 64 * 1024 * 1024
_STARTED = re.compile(r"akhbar worker started: (\d+)")
_FATAL = re.compile(r"Fatal Python error: (.+)")
_CAUSES = {
    "Bus error": "SIGBUS: a memory-mapped file lost its backing, as when the disk of the model "
    "store (BENTOML_HOME) or of the temporary directory is full",
    "Segmentation fault": "SIGSEGV",
}
_crash_file: IO[str] | None = None  # kept open for faulthandler, for the life of the worker


def record_crashes() -> None:
    """In a server worker: say it started, and report fatal signals, in the file that
    ``akhbar serve`` watches."""
    global _crash_file
    if (path := os.environ.get(CRASH_FILE_ENV)) and _crash_file is None:
        _crash_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open until exit
        _crash_file.write(f"akhbar worker started: {os.getpid()}\n")
        _crash_file.flush()
        faulthandler.enable(file=_crash_file)


def store_space_problem(home: Path) -> str | None:
    """Why the model store's disk cannot host a server, or None."""
    existing = next(p for p in (home, *home.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free >= MIN_FREE_BYTES:
        return None
    return (
        f"the disk of the model store {home} has {free // (1024 * 1024)} MiB free; the service "
        f"needs at least {MIN_FREE_BYTES // (1024 * 1024)} MiB there for its metrics files: free "
        "space or set BENTOML_HOME to another disk"
    )


class WorkerWatch:
    """Counts the deaths of the server's workers, which list themselves in ``crash_file``."""

    def __init__(self, crash_file: Path):
        self.crash_file = crash_file
        self.died: dict[int, float] = {}  # worker pid -> when its death was noticed

    def _text(self) -> str:
        try:
            return self.crash_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def check(self) -> str | None:
        """Look once; the one-sentence reason to stop the server, or None."""
        import psutil

        now = time.monotonic()
        for pid in map(int, _STARTED.findall(self._text())):
            if pid not in self.died:
                try:
                    if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                        continue
                except psutil.NoSuchProcess:
                    pass
                self.died[pid] = now
        recent = sorted(t for t in self.died.values() if now - t <= WINDOW_S)
        if len(recent) < DEATHS:
            return None
        return (
            f"the server's worker died {len(recent)} times in {now - recent[0]:.0f} s "
            f"({self.cause()}); stopped instead of restarting it again"
        )

    def cause(self) -> str:
        """The last fatal error the workers recorded, explained where we know it."""
        errors = _FATAL.findall(self._text())
        if not errors:
            return "it recorded no Python error: killed from outside, e.g. out of memory"
        error = errors[-1].strip()
        return f"{error}: {_CAUSES[error]}" if error in _CAUSES else error
