"""The end-to-end path shared by the demo and the reproduction: teachers -> captioner -> reinforced shards.

Every stage is cached under ``cache_dir("clip", ...)`` and keyed by its configuration: trained checkpoints by
:class:`~quartet.clip.train_teacher.TeacherConfig`, shards of the emoji training split by size, reinforced datasets
by (teachers, captioner, reinforcement config). A second run with the same settings skips straight to student
training; an interrupted reinforcement resumes (``quartet.clip.reinforce`` records finished shards).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quartet.clip.train_teacher import TeacherConfig, as_captioner, as_teacher, load_teacher, train_teacher
from quartet.core.config import to_dict
from quartet.core.paths import cache_dir
from quartet.core.progress import get_logger

log = get_logger("quartet.clip.pipeline")


def emoji_train_shards(size: int = 64, limit: int | None = None, samples_per_shard: int = 256) -> Path:
    """Image-text shards of the emoji training split (the held-out split is never written)."""
    from quartet import data
    from quartet.clip.evaluate import heldout_split
    from quartet.clip.shards import MANIFEST, write_image_text_shards

    out = cache_dir("clip", "shards", f"emoji-train-{size}px-{limit or 'all'}")
    if (out / MANIFEST).exists():
        return out
    ds = data.load("emoji", size=size)
    idx = heldout_split(len(ds))[0]
    ds = ds.subset(idx[:limit] if limit else idx)
    write_image_text_shards(ds, out, samples_per_shard=samples_per_shard, size=size)
    return out


def build_models(teacher_cfgs: Sequence[TeacherConfig], captioner_cfg: TeacherConfig | None,
                 pairs: Any = None) -> tuple[Any, Any, list[Path]]:
    """Train (or load cached) teachers and captioner; returns ``(TeacherEnsemble, captioner, checkpoint paths)``."""
    from quartet.clip.teachers import TeacherEnsemble

    paths, teachers = [], []
    for k, c in enumerate(teacher_cfgs):
        p = train_teacher(c, pairs=pairs)
        paths.append(p)
        if c.model.startswith("lit:"):
            from quartet.clip.lit import load_lit_teacher

            teachers.append(load_lit_teacher(p, name=f"t{k}-{c.model.replace(':', '-')}"))
        else:
            teachers.append(as_teacher(load_teacher(p), name=f"t{k}-{c.model}"))
    captioner = None
    if captioner_cfg is not None:
        p = train_teacher(captioner_cfg, pairs=pairs)
        paths.append(p)
        captioner = as_captioner(load_teacher(p))
    return TeacherEnsemble(teachers), captioner, paths


def _reinforced_dir(shards: Path, rcfg: Any, model_paths: Sequence[Path]) -> Path:
    key_src = {"shards": str(shards), "models": [p.name for p in model_paths], "cfg": to_dict(rcfg)}
    key_src["cfg"].pop("num_workers", None)
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_dir("clip", "reinforced", key)


def reinforced_dataset(shards: Path, ensemble: Any, captioner: Any, rcfg: Any, model_paths: Sequence[Path]) -> Path:
    """Reinforce ``shards`` into a cache folder keyed by the models and the reinforcement config; reuse it when
    complete, resume it when interrupted."""
    from quartet.clip.reinforce import reinforce
    from quartet.clip.reinforced_data import MANIFEST

    out = _reinforced_dir(shards, rcfg, model_paths)
    if (out / MANIFEST).exists():
        log.info("reusing reinforced dataset %s", out)
        return out
    summary = reinforce(shards, out, ensemble, captioner, rcfg)
    log.info("reinforced %s samples -> %s", summary.get("num_samples"), out)
    return out


def finished_shards(folder: Path) -> list[Path]:
    """Output shards an unfinished reinforcement run has completed (from its ``checkpoint.json``)."""
    from quartet.clip.reinforced_data import CHECKPOINT
    from quartet.core.io import read_json

    ck = folder / CHECKPOINT
    if not ck.exists():
        return []
    return sorted(folder / name for name in read_json(ck).get("done", {}) if (folder / name).exists())


def reinforced_for(preset: dict[str, Any], train_missing: bool = True) -> tuple[Any, list[Path]] | None:
    """The reinforced dataset of a reproduce preset (teachers, captioner and shards included). With
    ``train_missing=False`` nothing is trained: returns None unless the teachers are cached and the dataset (or,
    of an interrupted run, its finished shards) exists."""
    from quartet.clip.augment import AugConfig
    from quartet.clip.reinforce import ReinforceConfig
    from quartet.clip.reinforced_data import MANIFEST
    from quartet.clip.train_teacher import checkpoint_path

    cfgs = [*preset["teachers"], preset["captioner"]]
    if not train_missing and not all(checkpoint_path(c).exists() for c in cfgs):
        return None
    rcfg = ReinforceConfig(n_aug=preset["n_aug"], n_syn=preset["n_syn"], dtype="fp32",
                           aug=AugConfig(crop_size=preset["crop_size"]), seed=0)
    if not train_missing:
        paths = [checkpoint_path(c) for c in cfgs]
        key_dir = _reinforced_dir(emoji_train_shards(size=preset["crop_size"], limit=preset["limit"]), rcfg, paths)
        if (key_dir / MANIFEST).exists():
            return key_dir, paths
        done = finished_shards(key_dir)
        return (done, paths) if done else None
    shards = emoji_train_shards(size=preset["crop_size"], limit=preset["limit"])
    ensemble, captioner, paths = build_models(preset["teachers"], preset["captioner"])
    return reinforced_dataset(shards, ensemble, captioner, rcfg, paths), paths
