"""Stage ``batch``: ``akhbar score``'s local engine over the same articles, articles/s.

The batch path has no HTTP: :func:`akhbar.serving.batch.score.score_file` calls the
in-process Analyzer on ``BATCH_SIZE`` articles at a time (the command's default), with the
scoring runtime the service's settings give (precision, torch threads, k) and the models the
service would load, and writes every result to a JSON Lines file as a real job does. So its
rate is what one process scores without the service around it, beside the service's own in
the same run. Model loading and a warm-up job over the first ``WARMUP_ARTICLES`` articles are
timed apart; articles/s counts scoring and writing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_json, service_settings, stage_args, write_json  # noqa: E402

from akhbar.serving.batch.job import Job  # noqa: E402
from akhbar.serving.batch.score import load_analyzer, score_file  # noqa: E402

BATCH_SIZE = 32  # akhbar score --batch-size's default
WARMUP_ARTICLES = 16  # scored first, untimed, as the service stage's 16 warm-up requests


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    scoring = service_settings(config.get("server_env", {})).scoring
    runtime = scoring.runtime()  # one process, every usable core, as akhbar score runs
    runtime.apply()
    work, articles = Path(config["work"]), Path(config["articles"])
    first = articles.read_text(encoding="utf-8").splitlines(keepends=True)[:WARMUP_ARTICLES]
    (work / "batch-warmup.jsonl").write_text("".join(first), encoding="utf-8")
    warmup = Job(
        str(work / "batch-warmup.jsonl"),
        work / "batch-warmup-results.jsonl",
        batch_size=BATCH_SIZE,
        progress=False,
    )
    job = Job(str(articles), work / "batch-results.jsonl", batch_size=BATCH_SIZE, progress=False)
    for done in (warmup, job):
        Path(done.output).unlink(missing_ok=True)  # a job never overwrites its output
    started = time.monotonic()
    analyzer = load_analyzer(job, scoring, runtime)
    load_s = time.monotonic() - started
    score_file(warmup, analyzer)  # untimed, as the service's warm-up requests are
    started = time.monotonic()
    report = score_file(job, analyzer)
    seconds = time.monotonic() - started
    write_json(
        args.out,
        {
            "articles": report.scored,
            "rejected": report.rejected,
            "batch_size": BATCH_SIZE,
            "precision": runtime.precision,
            "load_s": round(load_s, 2),
            "wall_s": round(seconds, 2),
            "articles_per_s": round(report.scored / seconds, 2) if seconds else None,
        },
    )
    return 0 if report.scored and not report.rejected else 1


if __name__ == "__main__":
    sys.exit(main())
