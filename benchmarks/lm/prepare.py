"""Throughput of Dataset Decomposition's ``prepare`` after tokenization: decomposition + writing the bucket shards
and token streams (atomic writes, sha256), in-process on one core vs Ray Data with 2 workers; plus decomposition
alone in memory. Target: >= 1M tokens/s per core. Arms are interleaved and repeated; ratios are from one run.

    python benchmarks/lm/prepare.py                                   # Debian + Python docs, bpe:2048 tokenizer
    python benchmarks/lm/prepare.py --tokenizer-file runs/lm/data/debian-pydocs/tokenizer.json --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from quartet.core.bench import interleaved
from quartet.lm.corpus import load_documents
from quartet.lm.decompose import decompose_lengths, gather_buckets
from quartet.lm.prepare import write_part
from quartet.lm.tokenizer import HFTokenizer, encode_documents, token_dtype, train_bpe


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="debian,pydocs")
    ap.add_argument("--tokenizer-file", type=Path, default=Path("runs/lm/data/debian-pydocs/tokenizer.json"))
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per source")
    ap.add_argument("--part-docs", type=int, default=4096)
    ap.add_argument("--min-log2", type=int, default=5)
    ap.add_argument("--max-log2", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    docs = load_documents(a.source, a.limit)
    if a.tokenizer_file.is_file():
        tok = HFTokenizer(a.tokenizer_file)
    else:
        tok = train_bpe(docs.texts[::20], 2048, Path(tempfile.mkdtemp()) / "tokenizer.json")
    t0 = time.perf_counter()
    dtype = token_dtype(tok.vocab_size)
    parts = []
    for i in range(0, len(docs.texts), a.part_docs):
        toks, lens = encode_documents(tok, docs.texts[i:i + a.part_docs], dtype)
        parts.append((toks, lens))
    ntok = sum(p[0].size for p in parts)
    print(f"{len(docs.texts):,} documents, {ntok:,} tokens in {len(parts)} parts "
          f"(tokenized in {time.perf_counter() - t0:.1f} s, not timed below)")
    settings = {"min_log2": a.min_log2, "max_log2": a.max_log2, "variant": "binary", "seed": 0, "val_fraction": 0.0,
                "source": a.source, "tokenizer": "bench", "part_docs": a.part_docs, "limit": None, "sample": 1.0}
    empty = (np.zeros(0, dtype), np.zeros(0, np.int64))
    root = Path(tempfile.mkdtemp(prefix="lm-prepare-bench-"))

    def local() -> None:
        out = root / "local"
        shutil.rmtree(out, ignore_errors=True)
        for i, (t, n) in enumerate(parts):
            write_part(i, t, n, *empty, out, settings)

    def decompose_only() -> None:
        for t, n in parts:
            gather_buckets(t, decompose_lengths(n, a.min_log2, a.max_log2), a.min_log2, a.max_log2)

    from quartet.core.ray_setup import init_ray

    ray = init_ray(num_cpus=a.workers)
    refs = [{"part": i, "tokens": t, "lens": n} for i, (t, n) in enumerate(parts)]

    class Writer:
        def __call__(self, row: dict) -> dict:
            d = write_part(int(row["part"]), np.asarray(row["tokens"]), np.asarray(row["lens"]), *empty,
                           Path(row["out"]), settings)
            return {"tokens": d["tokens"]}

    def with_ray() -> None:
        out = root / "ray"
        shutil.rmtree(out, ignore_errors=True)
        rows = [{**r, "out": str(out)} for r in refs]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        n = sum(r["tokens"] for r in ds.map(Writer, compute=ray.data.ActorPoolStrategy(size=a.workers),
                                            num_cpus=1).iter_rows())
        assert n == ntok

    arms = {"decompose only (1 core)": decompose_only, "decompose+write in-process (1 core)": local,
            f"decompose+write Ray ({a.workers} workers)": with_ray}
    res = interleaved(arms, repeats=a.repeats, warmup=1, work={k: float(ntok) for k in arms})
    base = "decompose+write in-process (1 core)"
    print(res.table(baseline=base, unit="tok"))
    per_core = {k: res.throughput(k) / (a.workers if "Ray" in k else 1) for k in arms}
    for k, v in per_core.items():
        print(f"{k:<40} {v:>14,.0f} tokens/s per core  ({'meets' if v >= 1e6 else 'misses'} 1M target)")
    shutil.rmtree(root, ignore_errors=True)
    return {"throughput": {k: res.throughput(k) for k in arms}, "per_core": per_core, "tokens": ntok}


if __name__ == "__main__":
    main()
