"""Helpers the service tests import: an Arabic article the project wrote, an environment that
points every task at the tiny bundle with a throw-away model store, in-process clients
on the service's ASGI app (``Akhbar.to_asgi()`` + Starlette's TestClient), and a real server
(``akhbar serve`` on a free port) for the end-to-end and browser tests.

A module, not a conftest.py: a second conftest.py would shadow tests/conftest.py for the
``from conftest import ...`` lines of other test folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from akhbar.models.tasks import TASKS

NO_METRICS = {"services": {"akhbar": {"metrics": {"enabled": False}}}}

# Five story sentences, then a related-articles block and a follow prompt (boilerplate).
STORY = [
    "افتتحت وزارة الثقافة اليوم معرض الكتاب الدولي في العاصمة بمشاركة مئات الناشرين العرب.",
    "وقال وزير الثقافة إن المعرض يستقبل هذا العام أكثر من مليون زائر خلال عشرة أيام.",
    "ويضم البرنامج ندوات عن الرواية العربية والترجمة وصناعة النشر الرقمي.",
    "وأكد الناشرون أن أسعار الكتب بقيت مستقرة رغم ارتفاع تكاليف الورق والطباعة.",
    "ويختتم المعرض أعماله بحفل لتوزيع جوائز الإبداع الأدبي على الفائزين.",
]
BOILERPLATE = ["أخبار ذات صلة", "ارتفاع أسعار الذهب في الأسواق العالمية", "تابعونا على تويتر"]
ARTICLE_TEXT = " ".join(STORY) + "\n" + "\n".join(BOILERPLATE)
CLAIMS = ["المعرض يستقبل أكثر من مليون زائر", "أسعار الكتب ارتفعت بشكل كبير"]
ARTICLE = {
    "id": "a-1",
    "title": "افتتاح معرض الكتاب الدولي",
    "text": ARTICLE_TEXT,
    "claims": CLAIMS,
}
ENGLISH_TEXT = "The central bank kept interest rates unchanged. Analysts expect a cut next year."


def point_at(monkeypatch: pytest.MonkeyPatch, bundle: Path, home: Path, **extra: str) -> None:
    """Every task on ``bundle``, the model store in ``home``, no shipped defaults, ``extra`` set."""
    for key in list(os.environ):
        if key.startswith("AKHBAR_"):
            monkeypatch.delenv(key)
    (home / "no-defaults").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("BENTOML_HOME", str(home / "bentoml"))
    # Prometheus metrics register process-wide: a second in-process app would collide with
    # the first (and in-process /metrics does not answer anyway). The served tests cover them.
    monkeypatch.setenv("BENTOML_CONFIG_OVERRIDES", json.dumps(NO_METRICS))
    monkeypatch.setenv("AKHBAR_DEFAULT_MODELS", str(home / "no-defaults"))
    for task in TASKS:
        monkeypatch.setenv(f"AKHBAR_{task.upper()}_MODEL", str(bundle))
    for key, value in extra.items():
        monkeypatch.setenv(key, value)


@contextmanager
def started(**kwargs) -> Iterator:
    """A TestClient on a freshly started service (start-up reads the environment)."""
    from starlette.testclient import TestClient

    from akhbar.serving.http.service import Akhbar

    with TestClient(Akhbar.to_asgi(), **kwargs) as client:
        yield client


AKHBAR = Path(sys.executable).parent / "akhbar"
START_TIMEOUT_S = 240  # importing torch and loading models on 2 busy cores


@dataclass
class Server:
    """A running ``akhbar serve``: its URL, process, log file and bearer token (or None)."""

    url: str
    process: subprocess.Popen
    log: Path
    token: str | None = None

    def post(self, route: str, body=None, headers=None, **kwargs) -> httpx.Response:
        auth = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.post(
            self.url + route, json=body, headers={**auth, **(headers or {})}, timeout=60, **kwargs
        )


def server_env(bundle: Path, tmp: Path, **settings: str) -> dict[str, str]:
    """This environment without AKHBAR_*/BENTOML_* variables, then ``bundle`` for every task,
    a throw-away model store in ``tmp``, no shipped defaults and the ``settings``."""
    (tmp / "no-defaults").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKHBAR_", "BENTOML_"))}
    env.update(
        {
            "BENTOML_HOME": str(tmp / "bentoml"),
            "AKHBAR_DEFAULT_MODELS": str(tmp / "no-defaults"),
            **{f"AKHBAR_{t.upper()}_MODEL": str(bundle) for t in TASKS},
            **settings,
        }
    )
    return env


@contextmanager
def live_server(bundle: Path, tmp: Path, **settings: str) -> Iterator[Server]:
    """``akhbar serve`` on a free port with ``bundle`` for every task, a throw-away model store
    in ``tmp`` and the ``AKHBAR_*`` ``settings``; waits until /readyz answers 200, then stops it."""
    from tools.localserver import local_server

    # A server that exits or never gets ready raises RuntimeError with the end of its log.
    with local_server(
        server_env(bundle, tmp, **settings),
        tmp / "server.log",
        start_timeout=START_TIMEOUT_S,
        stop_timeout=30,
    ) as server:
        yield Server(server.url, server.process, server.log, settings.get("AKHBAR_API_TOKEN"))
