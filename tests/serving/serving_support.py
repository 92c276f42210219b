"""Helpers the service tests import: an Arabic article the project wrote, an environment that
points every task at the tiny bundle with a throw-away model store, and in-process clients
on the service's ASGI app (``Akhbar.to_asgi()`` + Starlette's TestClient).

A module, not a conftest.py: a second conftest.py would shadow tests/conftest.py for the
``from conftest import ...`` lines of other test folders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TASKS = ("topic", "summary", "stance")
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
ARTICLE = {"id": "a-1", "title": "افتتاح معرض الكتاب الدولي", "text": ARTICLE_TEXT, "claims": CLAIMS}
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

    from akhbar.serving.service import Akhbar

    with TestClient(Akhbar.to_asgi(), **kwargs) as client:
        yield client
