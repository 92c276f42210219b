"""Locust users for ``make loadtest``: :mod:`tools.loadtest` runs locust on this file
in a process of its own, against a server it started on 127.0.0.1.

Each user posts one article at a time to ``POST /analyze`` (with its claims), picked at
random from the articles the runner wrote to ``$AKHBAR_LOADTEST_ARTICLES``, then waits
``$AKHBAR_LOADTEST_WAIT`` seconds (default 0: the next request as soon as the answer is in).
A non-2xx answer or a timeout counts as a failure.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from locust import HttpUser, constant, task

ARTICLES = json.loads(Path(os.environ["AKHBAR_LOADTEST_ARTICLES"]).read_text(encoding="utf-8"))
TOKEN = os.environ.get("AKHBAR_API_TOKEN") or None
TIMEOUT_S = float(os.environ.get("AKHBAR_LOADTEST_TIMEOUT", "120"))


class Newsroom(HttpUser):
    """An editor's tool sending article after article."""

    wait_time = constant(float(os.environ.get("AKHBAR_LOADTEST_WAIT", "0")))

    @task
    def analyze(self) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"} if TOKEN else {}
        self.client.post(
            "/analyze",
            json={"articles": [random.choice(ARTICLES)]},
            headers=headers,
            timeout=TIMEOUT_S,
            name="/analyze",
        )
