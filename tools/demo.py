"""``make demo``: start the service, score the sample article, print the result, stop.

Run: ``python -m tools.demo [--port N]``. Uses the same models ``akhbar serve``
would (the ``AKHBAR_*`` settings, else the promoted or shipped defaults); with
``AKHBAR_API_TOKEN`` set it sends the token. The call itself is the one a Python client
makes: ``bentoml.SyncHTTPClient(url, token=...).analyze(articles=[...])``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import httpx

from akhbar.serving.core.articles import SAMPLE_ARTICLE

READY_TIMEOUT_S = 300


def wait_ready(url: str, server: subprocess.Popen, timeout: float = READY_TIMEOUT_S) -> bool:
    """Poll /readyz until 200; False when the server exits first or time runs out.

    While BentoML loads the models the port accepts connections but does not answer, so
    each probe has its own short timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def show(result: dict) -> str:
    """A readable rendering of one /analyze result."""
    topic = result["topic"]
    lines = [
        f"Article {result['id']}",
        f"  topic: {topic['label']} (p = {topic['scores'][topic['label']]:.2f}"
        f"{', low confidence' if topic['low_confidence'] else ''})",
        "  summary:",
    ]
    for sentence, (start, end) in zip(
        result["summary"]["sentences"], result["summary"]["offsets"], strict=True
    ):
        lines.append(f"    [{start}-{end}] {sentence}")
    for stance in result["stances"]:
        lines.append(f"  claim: {stance['claim']}")
        lines.append(
            f"    stance: {stance['label']} (p = {stance['scores'][stance['label']]:.2f}"
            f"{', low confidence' if stance['low_confidence'] else ''})"
        )
        for ev in stance["evidence"][:2]:
            lines.append(f"    evidence [{ev['start']}-{ev['end']}]: {ev['text']}")
    lines.append(f"  warnings: {', '.join(result['warnings']) or 'none'}")
    lines.append("  models: " + ", ".join(f"{t}={v}" for t, v in result["model_versions"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--port", type=int, default=3000, help="Port for the demo server (default 3000)."
    )
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}"
    print(
        f"demo: starting the service on {url} (model loading takes a few seconds) ...", flush=True
    )
    server = subprocess.Popen([sys.executable, "-m", "akhbar", "serve", "--port", str(args.port)])
    try:
        if not wait_ready(url, server):
            print(
                "demo: the service did not become ready; see its messages above.", file=sys.stderr
            )
            return 1
        import bentoml

        with bentoml.SyncHTTPClient(
            url, token=os.environ.get("AKHBAR_API_TOKEN") or None, timeout=120
        ) as client:
            answer = client.analyze(articles=[SAMPLE_ARTICLE])
        print()
        print(SAMPLE_ARTICLE["title"])
        print(SAMPLE_ARTICLE["text"])
        print()
        for result in answer["results"]:
            print(show(result))
        return 0
    finally:
        print("demo: stopping the service", flush=True)
        stop(server)


if __name__ == "__main__":
    sys.exit(main())
