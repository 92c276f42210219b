"""Stage ``pretrain``: non-padding tokens/s of ``akhbar pretrain`` against a stock MLM loop.

Both train the shipped base's config (``models/default/base/config.json``: layers, hidden,
heads, vocabulary) on the same texts (the first ``pretrain_texts`` articles of SaudiNewsNet),
in the arithmetic ``akhbar pretrain`` chooses by default (bf16 autocast with fp32 master weights
where the CPU computes bf16 natively, else fp32), AdamW and 32 × 128 token slots per batch:

* ``akhbar``: the real command, ``akhbar pretrain --corpus ... --init_from BASE`` with the
  shipped objective (``electra``: packed blocks, masked-only generator logits, replaced-token
  detection) and its defaults (``--compile true``: the encoder stacks are compiled during the
  first step, whose seconds the row reports as ``first_step_s``), for ``20 + pretrain_steps``
  steps. Its own throughput callback averages the wall time of the steps after the first
  logged 20 (warm-up; data loading, optimizer and logging included), and every packed token is
  a real token;
* ``stock``: a plain loop over ``transformers.BertForMaskedLM`` (vocabulary-wide logits at
  every position), one text per sequence truncated to 128 tokens and padded to the batch's
  longest (no packing), ``DataCollatorForLanguageModeling``, gradient clipping 1.0; three
  untimed steps, then ``pretrain_steps`` timed (collation included, as the Trainer's wall
  time includes its data loading). Only non-padding tokens count.

``pretrain_objectives`` may add ``mlm`` (akhbar's masked-only MLM with packing) as a second
akhbar row. Each run is a process of its own.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, log, read_json, write_json  # noqa: E402

from akhbar.models.precision import native_bf16  # noqa: E402

# Both ways compute as `akhbar pretrain` does by default: emulated bf16 is tens of times slower.
BF16 = native_bf16()

UNLABELLED = "pretrain_unlabelled/saudinewsnet/saudinewsnet.jsonl.gz"
BATCH, SEQ_LEN = 32, 128
LOG_EVERY = 20  # akhbar pretrain logs (and measures tokens/s) every 20 steps
STOCK_WARMUP = 3


def write_corpus(target: Path, n: int) -> int:
    from akhbar.models.reader import data_root

    written = 0
    with (
        gzip.open(data_root() / UNLABELLED, "rt", encoding="utf-8") as source,
        target.open("w", encoding="utf-8") as out,
    ):
        for line in source:
            text = json.loads(line).get("text")
            if text and text.strip():
                out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                written += 1
                if written == n:
                    break
    return written


def run_akhbar(objective: str, corpus: Path, base: str, steps: int, work: Path) -> dict:
    command = [
        str(Path(sys.executable).parent / "akhbar"),
        "pretrain",
        "--corpus",
        str(corpus),
        "--init_from",
        base,
        "--objective",
        objective,
        "--max_steps",
        str(LOG_EVERY + steps),
        "--batch_size",
        str(BATCH),
        "--seq_len",
        str(SEQ_LEN),
        "--warmup_steps",
        "10",
        # Every step trains the whole model, as the stock loop's do (a continued base would
        # otherwise stay frozen for the first 100 steps while fresh heads warm up).
        "--head_warmup_steps",
        "0",
        "--save_steps",
        "1000000",
        "--work_dir",
        str(work / objective),
        "--output_dir",
        str(work / objective / "out"),
    ]
    (work / objective).mkdir(
        parents=True
    )  # with --corpus, akhbar pretrain does not create --work_dir
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pretrain: akhbar pretrain ({objective}) failed:\n{done.stderr[-3000:]}")
    report = json.loads((work / objective / "out" / "pretrain_report.json").read_text())
    return {
        "way": f"akhbar pretrain --objective {objective}",
        "tokens_per_s": report["tokens_per_second"],
        "steps_measured": steps,
        "steps_total": report["steps"],
        "padding_share": 0.0,
        "compiled": report.get("compiled", False),
        "first_step_s": report.get("first_step_seconds"),
        "wall_s_process": round(time.perf_counter() - started, 1),
    }


def run_stock(corpus: Path, base: str, steps: int) -> dict:
    """The stock loop, in this process."""
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
    )

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = BertForMaskedLM(BertConfig.from_pretrained(base)).train()
    texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8")]
    needed = (STOCK_WARMUP + steps) * BATCH
    if len(texts) < needed:
        raise SystemExit(
            f"pretrain: {len(texts)} texts, the stock loop needs {needed}; raise pretrain_texts"
        )
    encoded = tokenizer(texts[:needed], truncation=True, max_length=SEQ_LEN)["input_ids"]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    real = slots = 0
    seconds = 0.0
    for step in range(STOCK_WARMUP + steps):
        start = time.perf_counter()  # collation included, as in the Trainer's wall time
        batch = collator([{"input_ids": ids} for ids in encoded[step * BATCH : (step + 1) * BATCH]])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= STOCK_WARMUP:
            seconds += time.perf_counter() - start
            real += int(batch["attention_mask"].sum())
            slots += batch["input_ids"].numel()
    return {
        "way": "stock BertForMaskedLM loop (full-vocabulary logits, no packing)",
        "tokens_per_s": round(real / seconds, 1),
        "steps_measured": steps,
        "padding_share": round(1 - real / slots, 4),
        "seconds_measured": round(seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--stock", action="store_true", help=argparse.SUPPRESS
    )  # child: the stock loop only
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = read_json(args.config)
    base = (
        str((REPO / config["pretrain_base"]).resolve())
        if not Path(config["pretrain_base"]).is_absolute()
        else config["pretrain_base"]
    )
    steps = config["pretrain_steps"]
    if args.stock:
        write_json(args.out, run_stock(Path(args.corpus), base, steps))
        return 0
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-pretrain-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        n = write_corpus(
            corpus, max(config.get("pretrain_texts", 1000), (STOCK_WARMUP + steps) * BATCH)
        )
        rows = {}
        for objective in config["pretrain_objectives"]:
            rows[objective] = run_akhbar(objective, corpus, base, steps, work)
            log("pretrain", f"akhbar {objective}: {rows[objective]['tokens_per_s']} tokens/s")
        stock_out = work / "stock.json"
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--config",
                args.config,
                "--out",
                str(stock_out),
                "--stock",
                "--corpus",
                str(corpus),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"pretrain: the stock loop failed:\n{done.stderr[-3000:]}")
        rows["stock"] = read_json(stock_out)
        log("pretrain", f"stock: {rows['stock']['tokens_per_s']} tokens/s")
    first = config["pretrain_objectives"][0]
    write_json(
        args.out,
        {
            "base": config["pretrain_base"],
            "texts": n,
            "batch": BATCH,
            "seq_len": SEQ_LEN,
            "precision": "bf16 autocast" if BF16 else "fp32",
            "rows": rows,
            "shipped_objective": first,
            "ratio": round(rows[first]["tokens_per_s"] / rows["stock"]["tokens_per_s"], 2)
            if rows[first]["tokens_per_s"] and rows["stock"]["tokens_per_s"]
            else None,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
