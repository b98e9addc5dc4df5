"""Dataset reinforcement: run teachers and caption generators once, offline, and store their outputs beside each
image-text pair (MobileCLIP 2311.17049 §3, MobileCLIP2 2508.20691 §3; reference: apple/ml-mobileclip-dr).

Per sample: ``n_aug`` augmentation records drawn from a generator seeded by ``(seed, uid)``, the ensemble's image
embeddings of each view, the ensemble's text embeddings of the real caption and of ``n_syn`` synthetic captions
(sampled from the original image). Shards are processed independently by :func:`reinforce_shard`, the one
per-shard function shared by the in-process loop and the Ray actors (:mod:`quartet.clip.reinforce_ray`).

Exactly-once and resume: output shard ``X.tar`` is the reinforcement of input shard ``X.tar`` (1:1 names, no
global counter), written to a temp file and renamed; the driver records each finished input shard in
``checkpoint.json`` (atomic rewrite). A re-run skips recorded shards and redoes the rest; since every random choice
is seeded by the uid (augmentations) or the batch's first uid (captions), a redone shard has the same content as
an uninterrupted run's, and the 1:1 naming makes duplicates impossible. ``manifest.jsonl`` is written when every
shard is done. Differences from the reference it avoids: ``param_aug`` is always written; batches never straddle
shards (embeddings stay aligned for any shard size); each teacher's scale is recorded separately.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from quartet.clip.augment import AugConfig, apply_record, decode_image, records_to_json, sample_record
from quartet.clip.captioners import Captioner
from quartet.clip.reinforced_data import CHECKPOINT, FORMAT, MANIFEST, METADATA, encode_npz
from quartet.clip.shards import ImageTextSample, add_member, group_members, list_shards, parse_sample
from quartet.clip.teachers import TeacherEnsemble
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_path, atomic_write_json, atomic_write_text, read_json, sha256_file
from quartet.core.progress import get_logger, progress_bar
from quartet.core.seed import numpy_rng

log = get_logger("quartet.clip.reinforce")


@dataclass
class ReinforceConfig:
    """Options of ``quartet clip reinforce`` (the paper: ``n_aug`` 30 at 12M scale, 2-10 at billion scale;
    ``n_syn`` 5; gains saturate near 5 augmentations and 2 captions)."""

    n_aug: int = 10
    n_syn: int = 5
    dtype: Literal["fp16", "bf16", "fp32"] = "fp16"
    aug: AugConfig = field(default_factory=AugConfig)
    batch_size: int = 32
    """Samples per model call; the image teachers see ``batch_size * n_aug`` views per call."""
    num_workers: int = 0
    """0: in-process loop; N >= 1: Ray Data actor pool of N actors (one model copy each)."""
    ray_address: str | None = None
    """None: a local Ray; "auto" or "ray://head:10001": a cluster."""
    ray_num_cpus: int | None = None
    """CPUs of the local Ray (default: what the machine has)."""
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    """None: 1 when the Ray cluster has GPUs, else 0."""
    threads_per_worker: int = 1
    """PyTorch intra-op threads per worker (0 leaves PyTorch's default)."""
    device: str = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    """What a bad sample (undecodable image, empty/over-long caption, sha mismatch, NaN embedding) does: raise a
    clear error, or skip it (logged and counted in checkpoint.json/manifest.jsonl)."""
    max_caption_chars: int = 1000
    seed: int = 0
    overwrite: bool = False
    """Delete an existing output folder's results first (otherwise a run resumes it)."""


# Keys whose change makes existing output shards incompatible with a new run (checked on resume).
_IDENTITY_KEYS = ("teachers", "captioner", "aug", "n_aug", "n_syn", "emb_dtype", "seed", "max_caption_chars")


@dataclass
class Models:
    """What a worker holds: the teacher ensemble and the optional captioner."""

    ensemble: TeacherEnsemble
    captioner: Captioner | None = None

    def to(self, device: str | torch.device) -> Models:
        """Move every model that supports ``.to`` to ``device`` ("auto": CUDA, then MPS, then CPU)."""
        dev = pick_torch_device(str(device))
        for m in [*self.ensemble.teachers, self.captioner]:
            if m is not None and hasattr(m, "to"):
                m.to(dev)
        return self


ModelsLike = Models | Callable[[], Models]


def build_models(models: ModelsLike) -> Models:
    """``models`` itself or the result of calling a zero-argument factory (used by Ray actors to load their own
    copy from files)."""
    out = models() if callable(models) and not isinstance(models, Models) else models
    if not isinstance(out, Models):
        raise QuartetError(f"expected Models or a factory returning Models, got {type(out).__name__}")
    return out


# ----------------------------------------------------------------------------------------------------------------
# One shard


def _uid_seed(uid: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(uid.encode("utf-8")).digest()[:8], "little")


def sample_rng(seed: int, uid: str) -> np.random.Generator:
    """The augmentation generator of sample ``uid`` (independent of shard, position and worker)."""
    return numpy_rng(seed, _uid_seed(uid))


def _check_caption(s: ImageTextSample, cfg: ReinforceConfig, where: str) -> None:
    if not s.caption.strip():
        raise DataCorruptError(f"{where}: empty caption")
    if len(s.caption) > cfg.max_caption_chars:
        raise DataCorruptError(f"{where}: over-long caption ({len(s.caption)} > max_caption_chars="
                               f"{cfg.max_caption_chars})")


def _reason(e: Exception) -> str:
    msg = str(e).split(": ", 1)[-1]
    return msg.split(" (")[0].split(";")[0][:80]


def read_shard_samples(path: Path, cfg: ReinforceConfig, skipped: dict[str, int]
                       ) -> Iterator[tuple[ImageTextSample, Image.Image]]:
    """Decode and check the samples of an input shard; bad ones raise or are counted in ``skipped``."""
    it = group_members(path)
    while True:
        try:
            key, members = next(it)
        except StopIteration:
            return
        except DataCorruptError as e:  # the tar itself is corrupt: nothing after this point is readable
            if cfg.on_error == "raise":
                raise
            log.warning("skipping the rest of %s: %s", path.name, e)
            skipped["corrupt or truncated tar"] = skipped.get("corrupt or truncated tar", 0) + 1
            return
        where = f"{path.name}:{key}"
        try:
            s = parse_sample(path, key, members)
            _check_caption(s, cfg, where)
            img = decode_image(s.image_bytes, where)
        except DataCorruptError as e:
            if cfg.on_error == "raise":
                raise
            log.warning("skipping %s", e)
            skipped[_reason(e)] = skipped.get(_reason(e), 0) + 1
            continue
        yield s, img


def _chunks(it: Iterator[Any], n: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for x in it:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


def reinforce_batch(batch: list[tuple[ImageTextSample, Image.Image]], models: Models, cfg: ReinforceConfig
                    ) -> list[dict[str, Any]]:
    """Reinforce a batch of decoded samples: per sample ``records``, ``image_emb [n_aug, D]``, ``text_emb [1, D]``,
    ``syn_text``, ``syn_text_emb [n_syn, D]`` (float32 numpy)."""
    ens, cap = models.ensemble, models.captioner
    views: list[Image.Image] = []
    records = []
    for s, img in batch:
        rng = sample_rng(cfg.seed, s.uid)
        recs = [sample_record(rng, img.width, img.height, cfg.aug) for _ in range(cfg.n_aug)]
        records.append(recs)
        views += [apply_record(img, r, cfg.aug.crop_size) for r in recs]
    img_emb = ens.encode_images(views).numpy().reshape(len(batch), cfg.n_aug, -1) if cfg.n_aug else \
        np.zeros((len(batch), 0, ens.total_dim), np.float32)
    if cfg.n_syn and cap is not None:
        seed = cfg.seed * 1_000_003 + _uid_seed(batch[0][0].uid)
        syn = cap.generate([img for _, img in batch], cfg.n_syn, seed=seed)
        if len(syn) != len(batch):
            raise QuartetError(f"captioner {cap.name!r} returned caption lists for {len(syn)} of {len(batch)} images")
    else:
        syn = [[] for _ in batch]
    texts = [s.caption for s, _ in batch] + [t for caps in syn for t in caps]
    txt = ens.encode_texts(texts).numpy()
    n = len(batch)
    starts = np.cumsum([n, *(len(c) for c in syn)])  # row of sample k's first synthetic caption
    out = []
    for k in range(len(batch)):
        syn_emb = txt[starts[k]:starts[k + 1]] if syn[k] else np.zeros((0, ens.total_dim), np.float32)
        out.append({"records": records[k], "image_emb": img_emb[k], "text_emb": txt[k:k + 1], "syn_text": syn[k],
                    "syn_text_emb": syn_emb})
    return out


def reinforce_shard(in_path: str | Path, out_path: str | Path, models: Models, cfg: ReinforceConfig
                    ) -> dict[str, Any]:
    """Reinforce one input shard into ``out_path`` (atomic); returns ``{"input", "name", "count", "skipped",
    "sha256", "seconds", "started", "finished"}`` (wall-clock epoch seconds, for throughput accounting)."""
    t0, started = time.perf_counter(), time.time()
    in_path, out_path = Path(in_path), Path(out_path)
    skipped: dict[str, int] = {}
    count = 0
    n_syn = cfg.n_syn if models.captioner is not None else 0
    with atomic_path(out_path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        os.chmod(tmp, 0o644)  # readable by the training jobs (mkstemp creates 0600)
        for batch in _chunks(read_shard_samples(in_path, cfg, skipped), max(1, cfg.batch_size)):
            for (s, _), r in zip(batch, reinforce_batch(batch, models, cfg)):
                where = f"{in_path.name}:{s.key} (uid {s.uid!r})"
                try:
                    bad = [k for k in ("image_emb", "text_emb", "syn_text_emb") if not np.isfinite(r[k]).all()]
                    if bad:
                        raise DataCorruptError(f"{where}: non-finite teacher embeddings in {bad}")
                    if len(r["syn_text"]) != n_syn:
                        raise DataCorruptError(f"{where}: captioner returned {len(r['syn_text'])} of {n_syn} captions")
                except DataCorruptError as e:
                    if cfg.on_error == "raise":
                        raise
                    log.warning("skipping %s", e)
                    skipped[_reason(e)] = skipped.get(_reason(e), 0) + 1
                    continue
                write_sample(tar, s, r, cfg.dtype)
                count += 1
    return {"input": in_path.name, "name": out_path.name, "count": count, "skipped": skipped,
            "sha256": sha256_file(out_path), "seconds": round(time.perf_counter() - t0, 3),
            "started": round(started, 3), "finished": round(time.time(), 3), "input_stamp": _stamp(in_path)}


def write_sample(tar: tarfile.TarFile, s: ImageTextSample, r: dict[str, Any], dtype: str) -> None:
    """Append one reinforced sample's members (DataCompDR names) to ``tar``."""
    k = s.key
    add_member(tar, f"{k}.{s.image_ext}", s.image_bytes)
    add_member(tar, f"{k}.txt", s.caption.encode("utf-8"))
    add_member(tar, f"{k}.syn.json", json.dumps({"syn_text": r["syn_text"]}, ensure_ascii=False).encode("utf-8"))
    add_member(tar, f"{k}.paug.json", ('{"param_aug":' + records_to_json(r["records"]) + "}").encode("utf-8"))
    arrays = {"image_emb": r["image_emb"], "text_emb": r["text_emb"], "syn_text_emb": r["syn_text_emb"]}
    add_member(tar, f"{k}.npz", encode_npz(arrays, dtype))
    add_member(tar, f"{k}.json", json.dumps({"uid": s.uid, "sha256": s.sha256}, ensure_ascii=False).encode("utf-8"))


# ----------------------------------------------------------------------------------------------------------------
# The job


def dataset_metadata(models: Models, cfg: ReinforceConfig, input_dir: Path, n_shards: int) -> dict[str, Any]:
    cap = models.captioner
    cap_info = None
    if cap is not None and cfg.n_syn > 0:
        cap_info = cap.info() if hasattr(cap, "info") else {"name": cap.name}
    return {"format": FORMAT, "version": 1, "teachers": models.ensemble.metadata(), "captioner": cap_info,
            "aug": cfg.aug.to_dict(), "n_aug": cfg.n_aug, "n_syn": cfg.n_syn if cap_info else 0,
            "emb_dtype": cfg.dtype, "seed": cfg.seed, "max_caption_chars": cfg.max_caption_chars,
            "input": {"path": str(input_dir), "num_shards": n_shards},
            "member_names": {"image_emb": "npz", "text_emb": "npz", "syn_text_emb": "npz", "syn_text": "syn.json",
                             "param_aug": "paug.json"}}


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    ident = {k: meta.get(k) for k in _IDENTITY_KEYS}
    t = ident.get("teachers") or {}
    ident["teachers"] = {k: t.get(k) for k in ("names", "dims", "image_sizes")}
    if ident.get("captioner"):
        ident["captioner"] = {"name": ident["captioner"].get("name")}
    return json.loads(json.dumps(ident))


def prepare_output(out: Path, meta: dict[str, Any], overwrite: bool) -> dict[str, dict[str, Any]]:
    """Create/validate the output folder and return the finished shards recorded in its checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for p in [*out.glob("shard-*.tar"), out / CHECKPOINT, out / MANIFEST, out / METADATA]:
            p.unlink(missing_ok=True)
    for tmp in out.glob(".*.tmp"):  # leftovers of a killed run (never under a final name)
        tmp.unlink(missing_ok=True)
    if (out / METADATA).is_file():
        old = read_json(out / METADATA)
        a, b = _identity(old), _identity(meta)
        diff = sorted(k for k in a if a[k] != b.get(k))
        if diff:
            details = "; ".join(f"{k}: stored {a[k]} vs now {b.get(k)}" for k in diff)
            raise QuartetError(f"{out} holds a reinforcement made with other settings ({details}); resume with the "
                               "same teachers/options, use a new output folder, or pass --overwrite")
    atomic_write_json(out / METADATA, meta)
    done = read_json(out / CHECKPOINT).get("done", {}) if (out / CHECKPOINT).is_file() else {}
    return {k: v for k, v in done.items() if (out / v["name"]).is_file()}


class Checkpoint:
    """``checkpoint.json``: finished input shards with their stats (rewritten atomically after each one)."""

    def __init__(self, out: Path, done: dict[str, dict[str, Any]]) -> None:
        self.out, self.done = out, dict(done)

    def add(self, stats: dict[str, Any]) -> None:
        self.done[stats["input"]] = stats
        atomic_write_json(self.out / CHECKPOINT, {"done": self.done}, indent=None)


def finish(out: Path, shards: list[Path], ckpt: Checkpoint) -> dict[str, Any]:
    rows = [ckpt.done[p.name] for p in shards]
    atomic_write_text(out / MANIFEST, "".join(json.dumps({k: r[k] for k in ("name", "count", "skipped", "sha256",
                                                                             "input")}) + "\n" for r in rows))
    skipped: dict[str, int] = {}
    for r in rows:
        for k, v in r["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
    return {"output": str(out), "num_shards": len(rows), "num_samples": sum(r["count"] for r in rows),
            "skipped": skipped}


def _validate_cfg(cfg: ReinforceConfig) -> None:
    if cfg.n_aug < 1:
        raise QuartetError(f"n_aug must be >= 1, got {cfg.n_aug}")
    if cfg.n_syn < 0 or cfg.batch_size < 1 or cfg.num_workers < 0:
        raise QuartetError("n_syn >= 0, batch_size >= 1 and num_workers >= 0 are required")


def reinforce(input_dir: str | Path, output_dir: str | Path, ensemble: TeacherEnsemble | ModelsLike,
              captioner: Captioner | None = None, cfg: ReinforceConfig | None = None,
              _after_shard: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Reinforce every shard of ``input_dir`` into ``output_dir`` and return a summary (``num_samples``,
    ``num_shards``, ``skipped``, ``samples_per_s``, ``resumed_shards``). Re-running after an interruption finishes
    the job. ``ensemble`` may also be a :class:`Models` or a zero-argument factory of one (Ray actors then build
    their own copy instead of receiving a pickled one)."""
    cfg = cfg or ReinforceConfig()
    _validate_cfg(cfg)
    factory: ModelsLike = Models(ensemble, captioner) if isinstance(ensemble, TeacherEnsemble) else ensemble
    models = build_models(factory)
    if models.captioner is None and captioner is not None:
        models.captioner = captioner
    if models.captioner is not None and not isinstance(models.captioner, Captioner):
        raise QuartetError(f"{models.captioner!r} does not implement the Captioner interface (name, generate)")
    models.ensemble.check_crop_size(cfg.aug.crop_size)
    shards = list_shards(input_dir)
    names = [p.name for p in shards]
    if len(set(names)) != len(names):
        raise QuartetError(f"{input_dir}: input shard names must be unique (outputs are named after them)")
    out = Path(output_dir)
    if out.resolve() == Path(input_dir).resolve():
        raise QuartetError("the output folder must differ from the input folder")
    meta = dataset_metadata(models, cfg, Path(input_dir), len(shards))
    done = prepare_output(out, meta, cfg.overwrite)
    stamps = {p.name: _stamp(p) for p in shards}
    changed = [k for k, v in done.items() if k in stamps and v.get("input_stamp") not in (None, stamps[k])]
    if changed:
        log.warning("input shards changed since they were reinforced, redoing them: %s", changed[:5])
    ckpt = Checkpoint(out, {k: v for k, v in done.items() if k not in changed})
    todo = [p for p in shards if p.name not in ckpt.done]
    resumed = len(shards) - len(todo)
    if resumed:
        log.info("resuming: %d of %d shards already done", resumed, len(shards))
    t0 = time.perf_counter()
    n_new = 0
    with progress_bar(total=_expected_samples(Path(input_dir), todo), desc="reinforce", unit="sample") as bar:
        if cfg.num_workers == 0:
            results: Iterator[dict[str, Any]] = _in_process(todo, out, models, cfg)
        else:
            from quartet.clip.reinforce_ray import run_ray

            results = run_ray(todo, out, models if isinstance(factory, Models) else factory, cfg)
        for stats in results:
            ckpt.add(stats)
            n_new += stats["count"]
            bar.update(stats["count"])
            log.debug("%s: %d samples in %.2fs", stats["name"], stats["count"], stats["seconds"])
            if _after_shard is not None:
                _after_shard(stats)
    seconds = time.perf_counter() - t0
    summary = finish(out, shards, ckpt)
    summary.update({"new_samples": n_new, "resumed_shards": resumed, "seconds": round(seconds, 3),
                    "samples_per_s": round(n_new / seconds, 2) if seconds > 0 and n_new else 0.0})
    return summary


def _stamp(path: Path) -> list[int]:
    """``[size, mtime_ns]`` of an input shard: a changed input is redone on resume (cheap, like make)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _expected_samples(input_dir: Path, todo: list[Path]) -> int | None:
    """Samples in the ``todo`` shards according to the input manifest (for the progress bar), if it has counts."""
    from quartet.clip.shards import MANIFEST as INPUT_MANIFEST

    if not input_dir.is_dir() or not (input_dir / INPUT_MANIFEST).is_file():
        return None
    counts = {s["name"]: int(s.get("count", 0)) for s in read_json(input_dir / INPUT_MANIFEST).get("shards", [])}
    return sum(counts.get(p.name, 0) for p in todo)


def _in_process(todo: list[Path], out: Path, models: Models, cfg: ReinforceConfig) -> Iterator[dict[str, Any]]:
    from quartet.core.device import num_threads

    models.to(cfg.device)
    with num_threads(cfg.threads_per_worker or None):
        for p in todo:
            yield reinforce_shard(p, out / p.name, models, cfg)


def pick_torch_device(name: str) -> torch.device:
    from quartet.core.device import pick_device

    return pick_device(None if name == "auto" else name)
