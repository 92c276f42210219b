"""Locust users for ``make loadtest``: :mod:`tools.loadtest` runs locust on this file
in a process of its own, against a server it started on 127.0.0.1.

Each user posts one article at a time to ``POST /analyze`` (with its claims), picked at
random from the articles the runner wrote to ``$AKHBAR_LOADTEST_ARTICLES``, then waits
``$AKHBAR_LOADTEST_WAIT`` seconds (default 0: the next request as soon as the answer is in).
A 503 with ``Retry-After`` is shedding doing its job: it is counted apart, under the name
:data:`tools.loadtest.SHED`, as a success, and the user waits the seconds it says, as a
well-behaved client does; any other non-2xx answer or a timeout is a failure.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, task

from tools.loadtest import SHED
from tools.localserver import bearer

ARTICLES = json.loads(Path(os.environ["AKHBAR_LOADTEST_ARTICLES"]).read_text(encoding="utf-8"))
TOKEN = os.environ.get("AKHBAR_API_TOKEN") or None
TIMEOUT_S = float(os.environ.get("AKHBAR_LOADTEST_TIMEOUT", "120"))


class Newsroom(FastHttpUser):
    """An editor's tool sending article after article (locust's geventhttpclient user: the
    load generator shares the server's cores, and ``requests`` cost it several times more CPU
    per request)."""

    wait_time = constant(float(os.environ.get("AKHBAR_LOADTEST_WAIT", "0")))
    network_timeout = connection_timeout = TIMEOUT_S

    @task
    def analyze(self) -> None:
        headers = bearer(TOKEN)
        with self.client.post(
            "/analyze",
            json={"articles": [random.choice(ARTICLES)]},
            headers=headers,
            name="/analyze",
            catch_response=True,
        ) as response:
            retry_after = response.headers.get("retry-after")
            if response.status_code == 503 and retry_after:
                response.request_meta["name"] = SHED
                response.success()
        if response.status_code == 503 and retry_after:
            gevent.sleep(float(retry_after))
