"""Ray Data execution of dataset reinforcement: one row per input shard, an actor pool of model holders.

``ray.data.from_items([{input, output}, ...]).map_batches(ShardWorker, batch_size=1, concurrency=N)``: each actor
builds (or unpickles) one copy of the teachers and captioner, pins itself to ``threads_per_worker`` PyTorch threads
and, with GPUs in the cluster, one GPU (``gpus_per_worker``), then calls the same
:func:`quartet.clip.reinforce.reinforce_shard` as the in-process loop, which batches model calls inside the shard.
Ray Data restarts actors that die and retries their shard; the driver consumes results as shards finish and records
them in the checkpoint, so a killed job resumes at shard granularity. Output paths are shared storage paths: on a
cluster, point input and output at a file system every node mounts.

Shard granularity trades latency for simplicity: the unit of work and of resumption is one input shard, so use
many more shards than actors (the reference uses the same design).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from quartet.clip.reinforce import ModelsLike, ReinforceConfig, build_models, reinforce_shard
from quartet.core.progress import get_logger
from quartet.core.ray_setup import init_ray

log = get_logger("quartet.clip.reinforce_ray")


class ShardWorker:
    """Ray Data actor UDF: holds one copy of the models and reinforces the shards it is given."""

    def __init__(self, models: ModelsLike, cfg: ReinforceConfig) -> None:
        import torch

        if cfg.threads_per_worker:
            torch.set_num_threads(cfg.threads_per_worker)
        self.cfg = cfg
        self.models = build_models(models).to(cfg.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        out = []
        for src, dst in zip(batch["input"], batch["output"]):
            out.append(json.dumps(reinforce_shard(Path(str(src)), Path(str(dst)), self.models, self.cfg)))
        return {"stats": out}


def run_ray(todo: list[Path], out: Path, models: ModelsLike, cfg: ReinforceConfig) -> Iterator[dict[str, Any]]:
    """Reinforce ``todo`` shards on a Ray actor pool of ``cfg.num_workers`` actors; yields per-shard stats as they
    finish (in completion order)."""
    if not todo:
        return
    ray = init_ray(cfg.ray_address, num_cpus=cfg.ray_num_cpus)
    from ray import data as ray_data

    gpus = cfg.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    ctx = ray_data.DataContext.get_current()
    ctx.execution_options.preserve_order = False
    rows = [{"input": str(p), "output": str(out / p.name)} for p in todo]
    ds = ray_data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(
        ShardWorker,
        fn_constructor_kwargs={"models": models, "cfg": cfg},
        batch_size=1,
        compute=ray_data.ActorPoolStrategy(size=cfg.num_workers, max_tasks_in_flight_per_actor=1),
        num_cpus=cfg.cpus_per_worker,
        num_gpus=gpus,
    )
    log.info("Ray: %d shards on %d actor(s) (%.1f CPU, %.1f GPU each)", len(rows), cfg.num_workers,
             cfg.cpus_per_worker, gpus)
    for row in ds.iter_rows():
        yield json.loads(row["stats"])
