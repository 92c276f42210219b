"""Copy a base model directory or a bundle to where it ships (``models/default/``), in fp16.

Shipped weights live in git, so they are halved to fp16 (akhbar's loaders cast them back
to fp32), and ``config.json`` says so (``dtype: float16``), so that ``AutoModel.from_pretrained``
elsewhere loads what is stored. Everything else (tokenizer, settings, card, metrics) is copied
as is; pickle-format files are left behind. ``make models`` ships the base and the task bundle::

    python -m akhbar.training.ship_fp16 SRC DEST
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
USAGE = "usage: python -m akhbar.training.ship_fp16 SRC DEST"


def ship_fp16(src: Path, dest: Path) -> Path:
    """Write ``src`` to ``dest`` with fp16 weights;
    ``dest`` is replaced only once the copy is complete."""
    if not (src / WEIGHTS).is_file():
        raise FileNotFoundError(f"{src} has no {WEIGHTS} to ship")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name != WEIGHTS and f.suffix not in (".bin", ".pt", ".pkl"):
            shutil.copy2(f, tmp / f.name)
    state = {
        k: v.to(torch.float16) if v.is_floating_point() else v
        for k, v in load_file(str(src / WEIGHTS)).items()
    }
    save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
    if (tmp / CONFIG).is_file():
        config = json.loads((tmp / CONFIG).read_text())
        (tmp / CONFIG).write_text(json.dumps(config | {"dtype": "float16"}, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    print(ship_fp16(Path(args[0]), Path(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
