"""Stage ``service``: the real HTTP service under load at concurrency 1 and 16.

Starts ``akhbar serve`` (the BentoML server, with the service's default settings and the
run's models) on a free port, waits for ``/readyz``, then runs the load generator
(:mod:`loadgen`, a separate process) once per phase:

* ``warmup``: every article of the c16 set's first ``warmup`` articles at concurrency 16
  (not reported);
* ``c1``: the first ``c1_articles`` articles of the sample, one request at a time;
* ``c1_median``: the median-length test article, ``median_repeats`` times, one at a time;
* ``c16``: every article of the sample at concurrency 16.

Then it starts the server again with ``AKHBAR_WORKERS=2`` and, once both workers have loaded,
runs ``warmup`` and ``c16`` again (reported as ``c16_2_workers``).

Each worker's precision and torch threads are resolved here from the environment the server
gets (:func:`common.service_settings`), with the same code each worker runs at start-up.

Around each phase it reads the service's own series on ``/metrics``
(:mod:`akhbar.serving.http.metrics`) and the CPU time of the server's process tree
(``/proc``), and reports differences over the phase:

* ``batches``: how many articles each batch held (requests that arrived together share one);
* ``requests_per_worker``: the requests each worker served;
* ``time_split``: milliseconds per request in each stage (``http``, ``preprocess``,
  ``encoder``, ``side_models``, ``postprocess``), their sum, the mean latency the load
  generator saw, and the rest of it (``rest_ms``: waiting for a batch to start, the hand-offs
  between the event loop and the scoring thread, BentoML's layers outside the service's
  middleware, the network and the client). A batch's scoring time is shared by its
  requests.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, log, read_json, service_settings, stage_args, write_json  # noqa: E402

from akhbar.models import stages  # noqa: E402
from akhbar.models.tasks import TASKS  # noqa: E402

READY_TIMEOUT_S = 300
METRIC = "akhbar_batch_articles"
REQUESTS_METRIC = "akhbar_requests_total"
STAGES_METRIC = "akhbar_stage_seconds_total"
STAGES = ("http", *stages.STAGES)  # the service adds http to the scoring stages
COMPARED_WORKERS = 2
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these (running) processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12))  # utime, stime (fields 14, 15 of stat)
    return total / ticks


def _workers(server_env: dict[str, str]) -> list[dict]:
    """Each worker's precision and torch threads, resolved from the server's environment."""
    settings = service_settings(server_env)
    runtime = settings.runtime()
    return [
        {"precision": runtime.precision, "torch_threads": runtime.torch_threads}
    ] * settings.workers


def scrape(url: str) -> dict[str, dict[str, float]]:
    """The service's own series on /metrics, each summed over workers unless labelled by
    worker: ``batch`` (cumulative bucket counts, ``sum`` and ``count`` of the batch-size
    histogram), ``requests`` (per worker) and ``stages`` (seconds per stage); empty dicts
    when /metrics does not answer."""
    out: dict[str, dict[str, float]] = {"batch": {}, "requests": {}, "stages": {}}
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, value = match["name"], float(match["value"])
        labels = dict(_LABEL.findall(match["labels"] or ""))
        if name == REQUESTS_METRIC:
            part, key = out["requests"], labels.get("worker")
        elif name == STAGES_METRIC:
            part, key = out["stages"], labels.get("stage")
        elif name.startswith(METRIC):
            suffix = name[len(METRIC) :]
            part = out["batch"]
            key = {"_sum": "sum", "_count": "count"}.get(suffix) or (
                f"le={labels.get('le')}" if suffix == "_bucket" else None
            )
        else:
            continue
        if key:
            part[key] = part.get(key, 0.0) + value
    return out


def per_worker(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Requests each worker served between two readings (by worker index)."""
    return {w: int(round(after[w] - before.get(w, 0))) for w in sorted(after, key=int)}


def time_split(before: dict, after: dict, latency_mean_ms: float | None) -> dict:
    """Milliseconds per request in each stage between two readings (``scrape``), their sum,
    and the rest of the mean latency (``rest_ms``)."""
    requests = sum(per_worker(before["requests"], after["requests"]).values())
    if not requests or not after["stages"]:
        return {"available": False}
    ms = {
        stage: round(
            (after["stages"].get(stage, 0) - before["stages"].get(stage, 0)) * 1000 / requests, 2
        )
        for stage in STAGES
    }
    total = round(sum(ms.values()), 2)
    return {
        "available": True,
        "requests": requests,
        "ms_per_request": ms,
        "stages_ms": total,
        "latency_mean_ms": latency_mean_ms,
        "rest_ms": None if latency_mean_ms is None else round(latency_mean_ms - total, 2),
    }


def batch_sizes(before: dict[str, float], after: dict[str, float]) -> dict:
    """Batches formed between two histogram readings: count, mean size, and how many fell in
    each size range (the histogram's buckets are 1, 2, 4, 8, ...)."""
    if not after:
        return {"available": False}
    count = after.get("count", 0) - before.get("count", 0)
    total = after.get("sum", 0) - before.get("sum", 0)
    edges = sorted((float(k[3:]), k) for k in after if k.startswith("le=") and k[3:] != "+Inf")
    ranges: dict[str, int] = {}
    previous_edge, previous_cum = 0.0, 0.0
    for edge, key in edges:
        cum = after[key] - before.get(key, 0)
        n = int(round(cum - previous_cum))
        if n:
            lo, hi = int(previous_edge) + 1, int(edge)
            ranges[str(hi) if lo == hi else f"{lo}-{hi}"] = n
        previous_edge, previous_cum = edge, cum
    return {
        "available": True,
        "batches": int(count),
        "requests": int(total),
        "mean_batch_size": round(total / count, 2) if count else None,
        "sizes": ranges,
    }


def start_server(
    models: dict, log_path: Path, extra_env: dict[str, str], workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """``akhbar serve`` with ``models``, started and ready: every one of its ``workers`` has
    loaded (``/readyz`` answers for whichever worker took the connection; each worker's
    request count appears on /metrics once it has loaded)."""
    env = dict(os.environ)
    env.update({f"AKHBAR_{t.upper()}_MODEL": models[t]["path"] for t in TASKS})
    env.update(extra_env)
    port = _free_port()
    akhbar = Path(sys.executable).parent / "akhbar"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [str(akhbar), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise SystemExit(
                f"service: the server exited during start-up:\n{log_path.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            stop_server(process)
            raise SystemExit(
                f"service: not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
            )
        try:  # while models load, the port accepts but does not answer: short timeouts
            ready = httpx.get(url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and (workers == 1 or len(scrape(url)["requests"]) >= workers):
            return process, url
        time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # akhbar serve forwards it to bentoml serve
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and its workers
            process.wait()


def run_phase(
    name: str,
    url: str,
    articles: Path,
    concurrency: int,
    work: Path,
    server_pid: int,
    repeat: int = 1,
    server_log: str = "server.log",
) -> dict:
    out = work / f"loadgen-{name}.json"
    before, before_cpu = scrape(url), _cpu_seconds(_tree(server_pid))
    command = [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        "--url",
        url,
        "--articles",
        str(articles),
        "--concurrency",
        str(concurrency),
        "--repeat",
        str(repeat),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"service: the load generator failed in phase {name}:\n{done.stderr[-3000:]}"
        )
    after_cpu, after = _cpu_seconds(_tree(server_pid)), scrape(url)
    result = read_json(out)
    result["batches"] = batch_sizes(before["batch"], after["batch"])
    result["requests_per_worker"] = per_worker(before["requests"], after["requests"])
    result["time_split"] = time_split(before, after, result["latency_ms"].get("mean"))
    result["server_cpu_s"] = round(after_cpu - before_cpu, 2)
    result["server_cpu_cores"] = (
        round((after_cpu - before_cpu) / result["wall_s"], 2) if result["wall_s"] else None
    )
    log(
        "service",
        f"{name}: {result['ok']}/{result['requests']} ok, {result['articles_per_s']} articles/s, "
        f"p50 {result['latency_ms']['p50']} ms, batches {result['batches'].get('mean_batch_size')},"
        f" requests per worker {result['requests_per_worker']}",
    )
    if result["errors"]:  # a rate over the answered part of a phase would flatter the service
        raise SystemExit(
            f"service: phase {name}: {result['requests'] - result['ok']} requests failed "
            f"(by status: {result['errors']}); server log {work / server_log}"
        )
    return result


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    work = Path(config["work"])
    sample = Path(config["articles"])
    c1_file, warm_file = work / "articles-c1.jsonl", work / "articles-warmup.jsonl"
    lines = sample.read_text(encoding="utf-8").splitlines(keepends=True)
    c1_file.write_text("".join(lines[: config["c1_articles"]]), encoding="utf-8")
    warm_file.write_text("".join(lines[: config["warmup_articles"]]), encoding="utf-8")

    log_path = work / "server.log"
    server_env = config.get("server_env", {})
    started = time.monotonic()
    workers = _workers(server_env)
    process, url = start_server(config["models"], log_path, server_env, len(workers))
    startup_s = time.monotonic() - started
    log("service", f"ready at {url} after {startup_s:.1f} s")
    try:
        phases = {}
        run_phase("warmup", url, warm_file, 16, work, process.pid)
        phases["c1"] = run_phase("c1", url, c1_file, 1, work, process.pid)
        phases["c1_median"] = run_phase(
            "c1_median",
            url,
            Path(config["median_article"]),
            1,
            work,
            process.pid,
            repeat=config["median_repeats"],
        )
        phases["c16"] = run_phase("c16", url, sample, 16, work, process.pid)
        metrics_ok = bool(scrape(url)["batch"])
    finally:
        stop_server(process)

    # The same c16 phase with two workers: whether both serve, and what that gives.
    env_2 = {**server_env, "AKHBAR_WORKERS": str(COMPARED_WORKERS)}
    started = time.monotonic()
    log_2 = "server-2-workers.log"
    process, url = start_server(config["models"], work / log_2, env_2, COMPARED_WORKERS)
    startup_2_s = time.monotonic() - started
    log("service", f"{COMPARED_WORKERS} workers ready at {url} after {startup_2_s:.1f} s")
    try:
        run_phase("warmup_2_workers", url, warm_file, 16, work, process.pid, server_log=log_2)
        phases["c16_2_workers"] = run_phase(
            "c16_2_workers", url, sample, 16, work, process.pid, server_log=log_2
        )
        phases["c16_2_workers"]["workers"] = _workers(env_2)
        phases["c16_2_workers"]["startup_s"] = round(startup_2_s, 1)
    finally:
        stop_server(process)
    write_json(
        args.out,
        {
            "url_kind": "akhbar serve (BentoML), one worker process per AKHBAR_WORKERS",
            "startup_s": round(startup_s, 1),
            "workers": workers,
            "metrics_available": metrics_ok,
            "phases": phases,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
