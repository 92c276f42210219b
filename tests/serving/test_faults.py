"""Faults: the batch scorer killed at random points and starved of disk, the
service given broken models, flooded beyond its queue, probed for ways around its token,
and stopped with SIGTERM while it works.

The batch tests run ``akhbar score`` in child processes (real SIGKILLs, a real file-size
limit) on the tiny random-weight bundle; the service tests start ``akhbar serve``.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ARABIC_SENTENCES, wait_for
from serving_support import AKHBAR, STORY, live_server, point_at, server_env

from akhbar.models.tasks import TASKS
from akhbar.serving.batch import outputs as batch_io
from akhbar.serving.batch import score as batch
from akhbar.serving.core.analyzer import Analyzer
from tools.localserver import free_port

pytestmark = pytest.mark.slow

SENTENCES = ARABIC_SENTENCES + STORY


def article(i: int) -> dict:
    n = 1 + i % 3
    record = {
        "id": f"k{i}",
        "text": " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(n)),
    }
    if i % 2:
        record["claims"] = [SENTENCES[(i * 3) % len(SENTENCES)][:40]]
    return record


GOOD = [article(i) for i in range(160)]
BAD = [
    '{"id": "bad-json", "text": ',
    json.dumps({"id": "no-text"}),
    json.dumps({"id": "long", "text": "كلمة " * 200}),
    json.dumps({"id": "k7", "text": STORY[0]}),
]  # the last: a duplicate id


def write_input(path: Path) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in GOOD]
    for n, bad in enumerate(BAD):
        lines.insert(30 * (n + 1), bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def whole_lines(path: Path) -> tuple[list[dict], bytes]:
    """The results in ``path`` and its torn tail (b"" when it ends with a newline)."""
    data = path.read_bytes() if path.exists() else b""
    body, _, tail = data.rpartition(b"\n")
    return [json.loads(line) for line in body.split(b"\n") if line], tail


def assert_exactly_once(out: Path, rejects_expected: int = len(BAD)) -> None:
    data = out.read_bytes()
    assert data.endswith(b"\n"), "a torn last line"
    results, _ = whole_lines(out)  # every line parses
    ids = [r["id"] for r in results]
    assert sorted(ids) == sorted(r["id"] for r in GOOD), "every good id exactly once"
    rejects = (out.parent / (out.name + ".rejects.jsonl")).read_text(encoding="utf-8").splitlines()
    assert len(rejects) == rejects_expected
    assert not (out.parent / (out.name + ".ids.sqlite")).exists()


@pytest.fixture()
def env(monkeypatch, tiny_bundle, tmp_path):
    point_at(monkeypatch, tiny_bundle, tmp_path / "home", AKHBAR_MAX_TEXT_CHARS="600")
    return tmp_path


# ---------------------------------------------------------------------------------------
# Batch: SIGKILL at random points, at least 5 times, each followed by --resume

# batch.main in a child, scoring with a stand-in for the models: crash safety is the writer's
# business, and a child that need not import torch starts in a tenth of a second, so many
# kills fit in a few seconds (tests/serving/test_batch.py kills a job with the real models).
# SLOW: seconds each chunk takes. TEAR_AT=n: the n-th results write hands the kernel
# TEAR_FRACTION of its bytes, touches FLAG and hangs there, so the kill lands mid-write.
CHILD = textwrap.dedent("""
    import os, sys, time
    from akhbar.serving.batch import score as batch
    from akhbar.serving.batch import outputs as batch_io

    class StandIn:
        def analyze(self, articles, tasks=None):
            time.sleep(float(os.environ.get("SLOW", "0")))
            return [{"id": a.id,
                     "topic": {"label": "culture", "scores": {"culture": 1.0},
                               "low_confidence": False},
                     "summary": {"sentences": [a.text[:400]], "indices": [0],
                                 "offsets": [[0, 400]]},
                     "warnings": [], "model_versions": {"topic": "stand-in"}} for a in articles]

    batch.load_analyzer = lambda job, config, runtime: StandIn()
    if os.environ.get("TEAR_AT"):
        real, calls = batch_io._write_all, []
        def torn(fd, data):
            calls.append(1)
            if len(calls) < int(os.environ["TEAR_AT"]):
                return real(fd, data)
            os.write(fd, data[: max(1, int(len(data) * float(os.environ["TEAR_FRACTION"])))])
            open(os.environ["FLAG"], "w").close()
            time.sleep(600)
        batch_io._write_all = torn
    if __name__ == "__main__":
        sys.exit(batch.main(sys.argv[1:]))
""")


def test_sigkill_at_random_points_eight_times_then_resume_gives_every_id_once(env, monkeypatch):
    rng = random.Random(2026)
    source = write_input(env / "in.jsonl")
    out = env / "out.jsonl"
    args = ["--input", str(source), "--output", str(out), "--batch-size", "8", "--resume"]
    script = env / "child.py"
    script.write_text(CHILD, encoding="utf-8")

    def lines() -> int:
        return out.read_bytes().count(b"\n") if out.exists() else 0

    kinds = ["startup", "lines", "tear", "after-output", "tear", "lines", "tear", "after-output"]
    torn_tails = 0
    for round_, kind in enumerate(kinds):
        extra = {"SLOW": "0.05"}
        flag = env / f"torn-{round_}.flag"
        if kind == "tear":
            extra.update(
                TEAR_AT=str(rng.randint(1, 3)),
                TEAR_FRACTION=f"{rng.uniform(0.05, 0.95):.3f}",
                FLAG=str(flag),
            )
        before = lines()
        proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**os.environ, **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if kind == "startup":  # anywhere from the interpreter's start to the first chunks
            time.sleep(rng.uniform(0.05, 0.6))
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        elif kind == "lines":
            target = before + rng.randint(1, 12)
            wait_for(lambda target=target: lines() >= target, proc)
        elif kind == "after-output":
            wait_for(lambda before=before: lines() > before, proc)
            time.sleep(rng.uniform(0.0, 0.08))
        else:
            wait_for(flag.exists, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        results, tail = whole_lines(out)  # whole lines parse; at most the last one is torn
        torn_tails += bool(tail)
        print(
            f"kill {round_ + 1} ({kind}): {before} -> {len(results)} results, torn tail of "
            f"{len(tail)} bytes"
        )
        if kind == "tear":
            assert tail, "a kill in the middle of a write leaves a torn last line"
        assert len(results) < len(GOOD)  # the job was not over: each kill interrupted it

    assert torn_tails >= 3
    monkeypatch.setattr(batch, "load_analyzer", batch.load_analyzer)  # put back after the test
    monkeypatch.syspath_prepend(str(env))
    import child  # noqa: F401 - the same stand-in, in process, for the last --resume

    monkeypatch.delitem(sys.modules, "child")
    assert batch.main(args) == 0  # the last --resume runs to the end
    assert_exactly_once(out)


# ---------------------------------------------------------------------------------------
# Batch: a full disk or a file-size limit


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(
            signal.SIGXFSZ, signal.SIG_IGN
        )  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_file_size_limit_is_a_clear_error_and_the_output_stays_valid_and_resumable(env):
    source = write_input(env / "in.jsonl")
    out = env / "out.jsonl"
    args = ["--input", str(source), "--output", str(out), "--batch-size", "8"]
    limit = 20_000
    proc = subprocess.run(
        [sys.executable, "-m", "akhbar.serving.batch.score", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size(limit),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"akhbar score: cannot write {out}: File too large"), proc.stderr[-2000:]
    assert "--resume" in last and "Traceback" not in proc.stderr
    results, tail = whole_lines(out)
    assert tail == b"" and 0 < len(results) < len(
        GOOD
    )  # whole lines only: the failed chunk was cut back
    assert out.stat().st_size <= limit

    assert batch.main([*args, "--resume"]) == 0  # room again: resume
    assert_exactly_once(out)


@pytest.fixture(scope="module")
def analyzer(tiny_bundle):
    return Analyzer.from_bundles({t: tiny_bundle for t in TASKS})


def test_a_full_disk_is_a_clear_error_and_the_output_stays_valid_and_resumable(
    env, analyzer, monkeypatch, capsys
):
    source = write_input(env / "in.jsonl")
    out = env / "out.jsonl"
    real, calls = batch_io._write_all, []

    def full(fd, data):
        calls.append(1)
        if len(calls) == 3:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(batch_io, "_write_all", full)
    job = batch.Job(str(source), out, batch_size=8, progress=False)
    with pytest.raises(batch.BatchError, match="No space left on device.*--resume"):
        batch.score_file(job, analyzer)
    results, tail = whole_lines(out)
    assert tail == b"" and len(results) == 16  # two whole chunks; the third's half was cut back
    monkeypatch.setattr(batch_io, "_write_all", real)
    batch.score_file(
        batch.Job(str(source), out, batch_size=8, resume=True, progress=False), analyzer
    )
    assert_exactly_once(out)


# ---------------------------------------------------------------------------------------
# Bad models at start-up: the service refuses to start, in one line naming the model


def _broken_copies(bundle: Path, tmp: Path) -> dict[str, Path]:
    import shutil

    truncated, relabelled = tmp / "truncated", tmp / "relabelled"
    shutil.copytree(bundle, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    shutil.copytree(bundle, relabelled)
    settings = json.loads((relabelled / "akhbar.json").read_text())
    settings["tasks"]["topic"]["labels"] = settings["tasks"]["topic"]["labels"][
        :-1
    ]  # one label short
    (relabelled / "akhbar.json").write_text(json.dumps(settings))
    return {"missing": tmp / "no-such-bundle", "truncated": truncated, "labels": relabelled}


def test_a_missing_truncated_or_mislabelled_model_stops_start_up_in_one_line(tiny_bundle, tmp_path):
    started, procs, outputs = time.monotonic(), {}, {}
    for case, path in _broken_copies(tiny_bundle, tmp_path).items():
        env = server_env(tiny_bundle, tmp_path / case, AKHBAR_TOPIC_MODEL=str(path))
        procs[case] = (
            path,
            subprocess.Popen(
                [str(AKHBAR), "serve", "--port", str(free_port())],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            ),
        )
    for case, (path, proc) in procs.items():
        try:
            output, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{case}: still running after 240 s") from None
        assert proc.returncode == 1, (case, output[-2000:])
        mine = [line for line in output.splitlines() if line.startswith("akhbar serve:")]
        assert len(mine) == 1, (case, output[-2000:])
        assert f"topic model {path}" in mine[0] or f"AKHBAR_TOPIC_MODEL {path}" in mine[0], mine
        assert "Traceback" not in output, (case, output[-3000:])
        outputs[case] = mine[0]
    assert "neither a bundle directory nor in the store" in outputs["missing"]
    assert "model.safetensors cannot be read" in outputs["truncated"]
    assert "lists 5 label(s) but its head has 6 output(s)" in outputs["labels"]
    print(f"three refusals in {time.monotonic() - started:.0f} s")


def test_a_worker_that_keeps_dying_stops_the_server_with_one_sentence_naming_the_cause(
    tiny_bundle, tmp_path
):
    """SIGBUS, as a model store on a full disk gave (issue 20, row 6): BentoML restarts the
    worker for ever, and the port stays open; akhbar serve stops it after the third death.
    Each worker is killed once it answers, as a crash in service would."""
    import psutil

    from akhbar.serving.http.supervision import DEATHS

    def ready_worker(root: int, old: set[int]) -> int:
        """The worker answering now, once a new one is ready."""
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, "no worker came back"
            try:
                ready = httpx.get(server.url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            fresh = set()
            for p in psutil.Process(root).children(recursive=True):
                try:
                    if p.pid not in old and "_bentoml_impl.worker" in " ".join(p.cmdline()):
                        fresh.add(p.pid)
                except psutil.Error:  # a dead worker not yet reaped
                    pass
            if ready and fresh:
                return next(iter(fresh))
            time.sleep(0.2)

    with live_server(tiny_bundle, tmp_path) as server:
        port, killed = int(server.url.rsplit(":", 1)[1]), set()
        for _ in range(DEATHS):
            worker = ready_worker(server.process.pid, killed)
            os.kill(worker, signal.SIGBUS)
            killed.add(worker)
        server.process.wait(timeout=60)
        assert server.process.returncode == 1
        log = server.log.read_text(encoding="utf-8", errors="replace")
        mine = [line for line in log.splitlines() if line.startswith("akhbar serve:")]
        assert len(mine) == 1, log[-3000:]
        assert f"died {DEATHS} times" in mine[0] and "Bus error: SIGBUS" in mine[0], mine
        with pytest.raises(OSError):  # nothing is left holding the port
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _listening(root: int, port: int) -> set[str]:
    """The addresses that process ``root`` and its children listen on at TCP ``port``."""
    import psutil

    found = set()
    for p in [psutil.Process(root), *psutil.Process(root).children(recursive=True)]:
        try:
            found |= {
                c.laddr.ip
                for c in p.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }
        except psutil.Error:
            pass
    return found


def _other_address() -> str | None:
    """An IPv4 address of this machine that is not a loopback one, if it has one."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def test_plain_bentoml_serve_logs_its_real_address_and_cuts_off_at_the_grace(tiny_bundle, tmp_path):
    """What a container runs (issue 20, row 10): plain ``bentoml serve`` without ``--host``
    binds 0.0.0.0 while BentoML's own line says localhost; the service's line names the
    address it really binds, and warns that it has no token. And with no
    ``--timeout-graceful-shutdown`` flag, a request still running after
    AKHBAR_SHUTDOWN_GRACE gets a JSON 503 and the server ends."""
    from tools.localserver import local_server

    grace, port, log = 2, free_port(), tmp_path / "server.log"
    env = server_env(
        tiny_bundle, tmp_path, AKHBAR_SHUTDOWN_GRACE=str(grace), AKHBAR_BODY_TIMEOUT="120"
    )
    command = [sys.executable, "-m", "bentoml", "serve", "akhbar.serving.http.service:Akhbar"]
    with local_server(env, log, port=port, command=command, bind=False) as server:
        process = server.process
        text = log.read_text(encoding="utf-8", errors="replace")
        assert _listening(process.pid, port) == {"0.0.0.0"}  # what it really binds
        assert f"akhbar: listening on http://0.0.0.0:{port} (every interface, and no " in text
        assert "AKHBAR_API_TOKEN: anyone who can reach it can use it" in text
        assert "akhbar: listening on http://127.0.0.1" not in text
        if other := _other_address():  # reachable beyond loopback, as the line says
            assert httpx.get(f"http://{other}:{port}/livez", timeout=10).status_code == 200
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            b"POST /analyze HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"articles"'
        )  # a body that stops arriving: the request is in flight until the grace ends
        time.sleep(1)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stalled.settimeout(grace + 30)
        answer = b""
        while chunk := stalled.recv(65536):
            answer += chunk
        answered = time.monotonic() - started
        process.wait(timeout=grace + 60)
        exited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
    assert b"retry-after: " in answer and b"AKHBAR_SHUTDOWN_GRACE" in answer
    assert answered < grace + 10 and exited < grace + 30, (answered, exited)


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``) mounted at ``path``, unmounted afterwards. Fails,
    naming what is missing, where it cannot be mounted: mounting needs root (CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.fail("this test mounts a small tmpfs to fill it, and there is no mount command")
    if mounted.returncode != 0:
        pytest.fail(
            f"this test mounts a small tmpfs to fill it and could not ({mounted.stderr.strip()}): "
            "it needs root (CAP_SYS_ADMIN), as on the CI machine"
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # busy: detach it now


def fill(path: Path) -> None:
    """Write a file in ``path`` until its file system says ENOSPC."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 20, 4096, 1):
            with pytest.raises(OSError) as full:
                while True:
                    os.write(fd, b"\0" * block)
            assert full.value.errno == errno.ENOSPC, full.value
    finally:
        os.close(fd)
    assert os.statvfs(path).f_bavail == 0


def test_akhbar_serve_with_its_model_store_on_a_full_disk_exits_in_one_sentence(
    tiny_bundle, tmp_path
):
    """Issue 20, row 6, end to end: BENTOML_HOME on a real full file system (a 2 MiB tmpfs
    written to ENOSPC), not a faked free-space figure. ``akhbar serve`` exits 1 before it
    starts a server, with one sentence naming the disk, and nothing holds the port."""
    env = server_env(tiny_bundle, tmp_path)
    home = Path(env["BENTOML_HOME"])
    port = free_port()
    with small_filesystem(home, "2m"):
        fill(home)
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(AKHBAR), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # a server it started too, before unmounting
            proc.wait()
            raise AssertionError("akhbar serve still running after 120 s") from None
        took = time.monotonic() - started
    assert proc.returncode == 1, output[-3000:]
    mine = [line for line in output.splitlines() if line.startswith("akhbar serve:")]
    assert len(mine) == 1, output[-3000:]
    assert f"the disk of the model store {home} has 0 MiB free" in mine[0], mine
    assert "set BENTOML_HOME to another disk" in mine[0], mine
    assert "Traceback" not in output, output[-3000:]
    with pytest.raises(OSError):  # no server was left behind on the port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print(f"refused in {took:.1f} s")


def test_a_model_store_disk_that_fills_while_serving_stops_akhbar_serve_in_one_sentence(
    tiny_bundle, tmp_path
):
    """Issue 20, row 6, as it happened: the disk of BENTOML_HOME fills after start (a tmpfs
    just over the start-up minimum, written to ENOSPC while the server runs). BentoML's
    metrics are memory-mapped sparse files there; a GET to an unknown path adds a metric
    and the worker dies of SIGBUS, and so does each restarted one. ``akhbar serve`` stops
    after the third death, exits 1 with one sentence naming SIGBUS and BENTOML_HOME, and
    nothing holds the port."""
    from akhbar.serving.http.supervision import DEATHS, MIN_FREE_BYTES

    home = tmp_path / "bentoml"  # live_server's BENTOML_HOME
    size = f"{MIN_FREE_BYTES // (1024 * 1024) + 8}m"
    with small_filesystem(home, size), live_server(tiny_bundle, tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        fill(home)
        filled, outcomes = time.monotonic(), []
        while server.process.poll() is None:
            assert time.monotonic() - filled < 180, f"still running: {outcomes}"
            try:
                answer = httpx.get(f"{server.url}/no-such-path-{len(outcomes)}", timeout=2)
                outcomes.append(answer.status_code)
            except httpx.HTTPError as exc:  # the worker died under it, or is restarting
                outcomes.append(type(exc).__name__)
            time.sleep(0.5)
        stopped = time.monotonic() - filled
        assert server.process.returncode == 1, server.log_tail()
        log = server.log.read_text(encoding="utf-8", errors="replace")
    mine = [line for line in log.splitlines() if line.startswith("akhbar serve:")]
    assert len(mine) == 1, log[-3000:]
    assert f"died {DEATHS} times" in mine[0] and "Bus error: SIGBUS" in mine[0], mine
    assert "the model store (BENTOML_HOME)" in mine[0], mine
    with pytest.raises(OSError):  # nothing is left holding the port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print(f"stopped {stopped:.0f} s after the disk filled; answers meanwhile: {outcomes}")


def test_a_model_store_on_a_full_disk_is_refused_before_start(tmp_path, monkeypatch):
    from akhbar.serving.http import supervision

    assert supervision.store_space_problem(tmp_path / "not-yet" / "bentoml") is None
    monkeypatch.setattr(
        supervision.shutil, "disk_usage", lambda _: type("U", (), {"free": 5 * 1024 * 1024})()
    )
    problem = supervision.store_space_problem(tmp_path / "not-yet" / "bentoml")
    assert "has 5 MiB free" in problem and "BENTOML_HOME" in problem


# ---------------------------------------------------------------------------------------
# The live service: token on every route, overload, SIGTERM

TOKEN = "faults-token"
GRACE_S = 5
QUEUE = 4


def _big_body() -> dict:
    text = " ".join(SENTENCES * 4)[:2000]
    claims = [s[:60] for s in SENTENCES[:4]]
    return {"articles": [{"text": text, "title": SENTENCES[0], "claims": claims}] * 4}


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    settings = {
        "AKHBAR_API_TOKEN": TOKEN,
        "AKHBAR_MAX_QUEUE": str(QUEUE),
        "AKHBAR_SHUTDOWN_GRACE": str(GRACE_S),
        "AKHBAR_MAX_TEXT_CHARS": "2000",
        "AKHBAR_MAX_CLAIMS": "4",
        "AKHBAR_MAX_ARTICLES": "4",
    }
    with live_server(tiny_bundle, tmp_path_factory.mktemp("faults"), **settings) as server:
        yield server


def _raw(
    port: int, request: bytes, responses: int = 1, timeout: float = 30
) -> list[tuple[int, bytes]]:
    """Send raw bytes on one connection; the (status, rest) of each response read back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    parts = data.split(b"HTTP/1.1 ")[1:]
    assert len(parts) == responses, data[:500]
    return [(int(p[:3]), p) for p in parts]


def _post(path: str, body: bytes, token: str | None = None, close: bool = True) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: "
        f"{len(body)}\r\n".encode()
        + auth
        + (b"Connection: close\r\n" if close else b"")
        + b"\r\n"
        + body
    )


def test_every_route_but_health_needs_the_token_even_by_way_of_odd_paths(server):
    port = int(server.url.rsplit(":", 1)[1])
    body = json.dumps({"articles": [{"text": STORY[0], "claims": ["ادعاء"]}]}).encode()
    paths = [
        p
        for p, ops in httpx.get(server.url + "/docs.json", timeout=10).json()["paths"].items()
        if "post" in ops
    ]
    assert set(paths) == {"/analyze", "/topic", "/summarize", "/stance"}
    for path in paths:
        assert httpx.post(server.url + path, content=body, timeout=30).status_code == 401, path
        assert (
            httpx.post(
                server.url + path,
                content=body,
                timeout=30,
                headers={"authorization": "Bearer " + TOKEN[:-1] + "x"},
            ).status_code
            == 401
        ), path
    # Paths that could be normalised into an API route, or that start like the open page.
    odd = [
        "/ui/../analyze",
        "/ui/%2e%2e/analyze",
        "/ui/..%2Fanalyze",
        "//analyze",
        "/analyze/",
        "/ANALYZE",
        "/ui/page.json/../../topic",
        "/./analyze",
        "/analyze%00",
        "/livez/../analyze",
    ]
    for path in odd:
        [(status, answer)] = _raw(port, _post(path, body))
        print(path, status)
        assert status in (401, 404), (path, status, answer[:300])
        assert b'"results"' not in answer, path
    # Pipelined requests on one connection: the second gets its own check (it once did not).
    answers = _raw(
        port, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n" + _post("/topic", body), responses=2
    )
    assert [status for status, _ in answers] == [200, 401]
    answers = _raw(
        port, _post("/topic", body, TOKEN, close=False) + _post("/analyze", body), responses=2
    )
    assert [status for status, _ in answers] == [200, 401]
    # Health, metrics, the document and the reading page stay open.
    for path in ("/livez", "/readyz", "/metrics", "/docs.json", "/ui", "/ui/ui.js"):
        assert httpx.get(server.url + path, timeout=10).status_code == 200, path


def test_early_refusals_are_json_and_readable_by_clients_that_send_the_whole_body_first(server):
    """Python's urllib sends all of a body before it reads: a 413 or 401 sent while 30 MB are
    unread used to reach it as a connection reset (issue 20, row 11)."""
    import urllib.error
    import urllib.request

    body = b'{"articles": [' + b" " * (30 * 1024 * 1024) + b"]}"
    for token, status in ((TOKEN, 413), (None, 401)):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(server.url + "/analyze", data=body, headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == status
        assert "error" in json.loads(refused.value.read())
    # A header h11 cannot parse gets the service's JSON shape, not uvicorn's plain text.
    port = int(server.url.rsplit(":", 1)[1])
    [(status, answer)] = _raw(
        port, b"POST /analyze HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\n{}   "
    )
    assert status == 400 and b"application/json" in answer
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]


def test_beyond_its_queue_the_service_sheds_load_with_503_and_retry_after(server):
    body = _big_body()

    def call(_):
        try:
            return server.post("/analyze", body)
        except httpx.HTTPError as exc:
            return exc

    with ThreadPoolExecutor(6 * QUEUE) as pool:
        answers = list(pool.map(call, range(6 * QUEUE)))
    statuses = sorted(
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )
    print(
        f"{len(answers)} at once, queue {QUEUE}: {statuses.count(200)} x 200, "
        f"{statuses.count(503)} x 503"
    )
    assert set(statuses) <= {200, 503}, statuses  # no hang, no error, nothing else
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["retry-after"]) > 0
            assert "AKHBAR_MAX_QUEUE" in answer.json()["error"]
    # Still up and serving.
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
    assert server.post("/topic", {"articles": [{"text": STORY[0]}]}).status_code == 200


def _analyze_in_progress(url: str) -> float:
    """BentoML's gauge of /analyze requests in progress, from /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if "request_in_progress{" in line and 'endpoint="/analyze"' in line
    )


def test_sigterm_during_requests_finishes_or_fails_them_cleanly_and_exits_within_the_grace(server):
    import threading

    import psutil

    commands = [
        " ".join(p.cmdline()) for p in psutil.Process(server.process.pid).children(recursive=True)
    ]
    assert any(f"--timeout-graceful-shutdown {GRACE_S}" in c for c in commands), commands
    body, outcomes, signalled = _big_body(), [], threading.Event()

    def client() -> None:  # requests back to back until the server is gone (at most 50)
        for _ in range(50):
            try:
                answer = server.post("/analyze", body)
            except httpx.HTTPError as exc:
                answer = exc
            outcomes.append((answer, signalled.is_set()))
            if not isinstance(answer, httpx.Response):
                return

    threads = [threading.Thread(target=client) for _ in range(QUEUE)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while _analyze_in_progress(server.url) < 1:  # SIGTERM while requests are being scored
        assert time.monotonic() < deadline, "no request in progress"
        time.sleep(0.01)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    signalled.set()
    server.process.wait(timeout=GRACE_S + 60)
    exited = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    names = sorted(
        str(a.status_code) if isinstance(a, httpx.Response) else type(a).__name__
        for a, _ in outcomes
    )
    print(f"exited {exited:.1f} s after SIGTERM; answers: {names}")
    clean = (
        httpx.ConnectError,
        httpx.RemoteProtocolError,
        httpx.ReadError,
    )  # refused, or closed unanswered
    for answer, _ in outcomes:
        if isinstance(answer, httpx.Response):
            assert answer.status_code in (200, 503), answer.text[:300]
            if answer.status_code == 200:
                assert len(answer.json()["results"]) == 4
        else:
            assert isinstance(answer, clean), repr(answer)  # never a hang (a timeout)
    # The request being scored when SIGTERM came was answered, during the grace period.
    assert any(
        isinstance(a, httpx.Response) and a.status_code == 200 and after for a, after in outcomes
    ), names
    assert exited < GRACE_S + 15, f"exited {exited:.1f} s after SIGTERM"
    assert server.process.returncode == 0
    assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")
