"""Benchmark: dataset-reinforcement throughput, in-process loop vs a Ray Data actor pool of 1 and 2 workers, on the
same shards and the same teachers, in one run (arms interleaved, medians, ratios against the in-process loop);
then bytes per sample for each embedding storage dtype.

    python benchmarks/clip/reinforce.py                 # emoji shards, 2 stand-in teachers + tiny CoCa
    python benchmarks/clip/reinforce.py --samples 512 --repeats 3 --n-syn 0

Each arm is a whole job (``reinforce()`` into a fresh folder), so the end-to-end numbers of the Ray arms include
starting their actors and loading one model copy per actor: the fixed cost a small job pays (tens of seconds on a
loaded 2-core machine). The steady-state numbers use the shards' own start/finish times (first shard started -> last
shard finished) and exclude it. Ray itself is started once, before timing. The teachers are UNTRAINED stand-ins
(random init); their compute, not their knowledge, is what is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _source(samples: int, size: int) -> object:
    from quartet.data import emoji

    if emoji.is_installed():
        return emoji.load_emoji(size=size, limit=samples)
    from quartet.clip.shards import encode_png

    rng = np.random.default_rng(0)
    print("emoji data not installed: using random images")
    return [(encode_png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), f"random image {i}", f"r{i}")
            for i in range(samples)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=192)
    ap.add_argument("--per-shard", type=int, default=16)
    ap.add_argument("--size", type=int, default=64, help="source image side (pixels)")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--n-aug", type=int, default=4)
    ap.add_argument("--n-syn", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)

    import torch

    from quartet.clip.augment import AugConfig
    from quartet.clip.cli_reinforce import ModelSpecs, make_stand_ins
    from quartet.clip.inspect_shards import inspect_reinforced
    from quartet.clip.reinforce import ReinforceConfig, reinforce
    from quartet.clip.shards import write_image_text_shards
    from quartet.core.bench import interleaved
    from quartet.core.ray_setup import init_ray, shutdown_ray

    torch.set_num_threads(1)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="reinforce-bench-"))
    shards = work / "shards"
    if not (shards / "manifest.json").is_file():
        write_image_text_shards(_source(a.samples, a.size), shards, samples_per_shard=a.per_shard)
    teachers, captioner = make_stand_ins(work / "models", crop_size=a.crop)
    specs = ModelSpecs(teachers, captioner if a.n_syn else None)
    models = specs()  # in-process copy; Ray actors load their own from the same files
    base = {"n_aug": a.n_aug, "n_syn": a.n_syn, "aug": AugConfig(crop_size=a.crop), "batch_size": a.batch_size,
            "threads_per_worker": 1, "overwrite": True, "dtype": "fp16"}

    spans: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def job(workers: int) -> None:
        out = work / f"out-{workers}"
        cfg = ReinforceConfig(num_workers=workers, **base)  # type: ignore[arg-type]
        s = reinforce(shards, out, models if workers == 0 else specs, None, cfg)
        assert s["num_samples"] == a.samples, s
        done = json.loads((out / "checkpoint.json").read_text())["done"].values()
        spans[workers].append(max(d["finished"] for d in done) - min(d["started"] for d in done))

    init_ray(num_cpus=2)
    arms = {"in-process": lambda: job(0), "ray 1 worker": lambda: job(1), "ray 2 workers": lambda: job(2)}
    res = interleaved(arms, repeats=a.repeats, warmup=1, work={k: float(a.samples) for k in arms})
    shutdown_ray()
    print(f"\nreinforcement of {a.samples} samples ({a.samples // a.per_shard} shards), n_aug={a.n_aug}, "
          f"n_syn={a.n_syn}, crop {a.crop}px, teachers {models.ensemble.names} dims {models.ensemble.dims}")
    print(res.table(baseline="in-process", unit="samples"))
    ratios = {k: round(res.ratio(k, "in-process"), 3) for k in arms}
    ratios["ray 2 / ray 1"] = round(res.ratio("ray 2 workers", "ray 1 worker"), 3)
    print("end-to-end throughput ratios (whole job: actor start-up + model loading + work):", json.dumps(ratios))
    steady = {k: a.samples / float(np.median(v[1:] if len(v) > 1 else v)) for k, v in spans.items()}
    names = dict(zip((0, 1, 2), arms))
    print("steady-state samples/s (first shard started -> last shard finished, excludes start-up):")
    for k, v in steady.items():
        print(f"  {names[k]:<16} {v:8.2f} samples/s   x in-process {v / steady[0]:.3f}")
    ratios.update({f"steady {names[k]}": round(v / steady[0], 3) for k, v in steady.items()})

    sizes = {}
    for dtype in ("fp32", "fp16", "bf16"):
        out = work / f"dtype-{dtype}"
        cfg = ReinforceConfig(**{**base, "dtype": dtype, "n_syn": 0})  # type: ignore[arg-type]
        reinforce(shards, out, models, None, cfg)
        rep = inspect_reinforced(out)
        assert rep.ok, rep.problems
        sizes[dtype] = {"embedding_bytes_per_sample": round(rep.emb_bytes / rep.num_samples),
                        "shard_bytes_per_sample": round(rep.total_bytes / rep.num_samples)}
    print(f"bytes per sample (D={sum(models.ensemble.dims)}, n_aug={a.n_aug}, n_syn=0):")
    for dtype, v in sizes.items():
        print(f"  {dtype}: embeddings {v['embedding_bytes_per_sample']:>7,} B   whole sample on disk "
              f"{v['shard_bytes_per_sample']:>7,} B")
    if a.json:
        a.json.write_text(json.dumps({"throughput": {k: res.throughput(k) for k in arms}, "ratios": ratios,
                                      "bytes": sizes, "args": {k: str(v) for k, v in vars(a).items()}}, indent=2))
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
