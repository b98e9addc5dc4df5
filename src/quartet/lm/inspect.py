"""``quartet lm stats`` (bucket table and App. F statistics of prepared data, optional checksum verification) and
``quartet lm eval`` (held-out loss by position and MDQA-like retrieval of a saved model)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quartet.core.config import parse_cli
from quartet.core.io import atomic_write_json
from quartet.core.report import markdown_table
from quartet.lm import stats as lmstats


@dataclass
class StatsConfig:
    """Print the bucket table and sequence statistics of a prepared data folder."""

    data: Path = Path("runs/lm/data/debian-pydocs")
    verify: bool = False
    """also check every shard's sha256 against the manifest"""
    n: int | None = None
    """sequence length of the C&C-n / Pack-n rows (default: the one used by prepare)"""


def main(argv: list[str] | None = None) -> int:
    from quartet.lm.store import PreparedData

    cfg = parse_cli(StatsConfig, argv, prog="quartet lm stats")
    d = PreparedData(cfg.data, verify=cfg.verify)
    st = d.manifest["stats"]
    if cfg.n is not None:
        bt = {k: len(a) << k for k, a in d.buckets.items()}
        st = lmstats.table(d.stream.doc_lens, bt, int(d.manifest["dropped_tokens"]), cfg.n)
    print(lmstats.format_table(st))
    tok = d.manifest["tokenizer"]
    print(f"tokenizer {tok['spec']} (vocab {tok['vocab_size']}, {tok['dtype']}); held-out "
          f"{d.manifest['val']['documents']} documents; settings {json.dumps(d.manifest['settings'])}")
    if cfg.verify:
        print("all shards match their sha256 checksums")
    return 0


@dataclass
class EvalConfig:
    """Evaluate a saved model (a run folder or its ``model/``) on held-out documents of prepared data."""

    model: Path = Path("runs/lm/model")
    data: Path = Path("runs/lm/data/debian-pydocs")
    context: int = 1024
    docs: int | None = None
    """held-out documents to score (None = all)"""
    lengths: str = "128,256,512,1024"
    """context lengths of the retrieval task"""
    examples: int = 32
    seed: int = 0
    device: str = "auto"
    threads: int = 1


def eval_main(argv: list[str] | None = None) -> int:
    import torch

    from quartet.core.device import pick_device
    from quartet.lm.evaluate import eval_rows, heldout_loss, retrieval_eval
    from quartet.lm.model import load_hf
    from quartet.lm.store import PreparedData

    cfg = parse_cli(EvalConfig, argv, prog="quartet lm eval")
    torch.set_num_threads(cfg.threads)
    folder = cfg.model / "model" if (cfg.model / "model").is_dir() else cfg.model
    dev = pick_device(cfg.device)
    model = load_hf(folder, dev)
    data = PreparedData(cfg.data)
    held = heldout_loss(model, eval_rows(data.val, cfg.context, cfg.docs, seed=cfg.seed), dev)
    lengths = tuple(int(x) for x in cfg.lengths.split(","))
    ret = retrieval_eval(model, data.val, lengths, cfg.examples, seed=cfg.seed, device=dev)
    print(f"held-out loss {held['loss']:.4f} (perplexity {np.exp(held['loss']):.2f}) over {held['targets']:,} "
          f"targets")
    print(markdown_table(held["by_position"]))
    print(markdown_table(ret))
    out = folder.parent / "eval.json"
    atomic_write_json(out, {"heldout": held, "retrieval": ret, "model": str(folder), "data": str(cfg.data)})
    print(f"wrote {out}")
    return 0
