"""CLI verbs for dataset reinforcement: ``quartet clip shards | reinforce | inspect``.

Teacher specs (``--teachers``, any number, concatenated in the given order)::

    [NAME=]FOLDER                 an open_clip local-dir folder (open_clip_config.json + weights)
    [NAME=]MODEL@CHECKPOINT       a built-in open_clip config name (ViT-L-14, MobileCLIP2-S0...) + a local file
    [NAME=]CONFIG.json@CHECKPOINT an open_clip model-config JSON + a local checkpoint file
    [NAME=]lit:CHECKPOINT         a LiT teacher from ``quartet clip train-teacher --model lit:<preset>``

Captioner spec (``--captioner``): ``coca:SPEC`` (SPEC as above) or ``hf:FOLDER`` (a Hugging Face image-to-text
model saved with ``save_pretrained``). Models load from local files only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from quartet.clip.reinforce import Models, ReinforceConfig
from quartet.core.errors import QuartetError

# ----------------------------------------------------------------------------------------------------------------
# Model specs (picklable: Ray actors load their own copy from files)


def _split_spec(spec: str) -> tuple[str | None, str, str | None]:
    name = None
    head, sep, rest = spec.partition("=")
    if sep and "/" not in head and ":" not in head:
        name, spec = head, rest
    source, _, ckpt = spec.partition("@")
    return name, source, ckpt or None


@dataclass(frozen=True)
class ModelSpecs:
    """Teacher and captioner specs; calling it loads the models (what each Ray actor does)."""

    teachers: tuple[str, ...]
    captioner: str | None = None
    device: str = "cpu"
    precision: str = "fp32"

    def __call__(self) -> Models:
        from quartet.clip.captioners import CoCaCaptioner, HFCaptioner
        from quartet.clip.teachers import OpenClipTeacher, TeacherEnsemble

        if not self.teachers:
            raise QuartetError("give at least one teacher with --teachers")
        teachers = []
        for spec in self.teachers:
            name, source, ckpt = _split_spec(spec)
            if source.startswith("lit:"):
                from quartet.clip.lit import load_lit_teacher

                teachers.append(load_lit_teacher(source[4:], name=name, device=self.device))
                continue
            teachers.append(OpenClipTeacher.from_checkpoint(source, ckpt, name=name, device=self.device,
                                                            precision=self.precision))
        cap = None
        if self.captioner:
            kind, _, rest = self.captioner.partition(":")
            if kind == "coca":
                name, source, ckpt = _split_spec(rest)
                kw: dict[str, Any] = {"name": name} if name else {}
                cap = CoCaCaptioner.from_checkpoint(source, ckpt, device=self.device, **kw)
            elif kind == "hf":
                cap = HFCaptioner.from_pretrained(rest, device=self.device)
            else:
                raise QuartetError(f"captioner spec {self.captioner!r}: use coca:SPEC or hf:FOLDER")
        return Models(TeacherEnsemble(teachers), cap)


def make_stand_ins(out_dir: str | Path, seed: int = 0, crop_size: int = 64) -> tuple[tuple[str, ...], str]:
    """Write UNTRAINED, randomly initialised stand-in models in open_clip local-dir folders: two CLIP teachers of
    different sizes (``t32``: 32 px, 32-d; ``t48``: 48 px, 48-d) and a tiny CoCa captioner. They exercise the whole
    pipeline (shapes, storage, replay, resume) but their embeddings and captions carry no knowledge; real runs use
    trained teachers. Returns ``(teacher specs, captioner spec)``; existing folders are reused."""
    import torch

    from quartet.clip.captioners import tiny_coca_config
    from quartet.clip.teachers import open_clip_from_config, save_open_clip_dir, tiny_clip_config

    out = Path(out_dir)
    cfgs = {"t32": tiny_clip_config(embed_dim=32, image_size=min(32, crop_size)),
            "t48": tiny_clip_config(embed_dim=48, image_size=min(48, crop_size), width=48),
            "coca": tiny_coca_config(image_size=min(32, crop_size))}
    for k, (name, cfg) in enumerate(cfgs.items()):
        if not (out / name / "open_clip_config.json").is_file():
            torch.manual_seed(seed * 100 + k)
            save_open_clip_dir(open_clip_from_config(cfg), out / name, cfg)
    return (f"t32={out / 't32'}", f"t48={out / 't48'}"), f"coca:{out / 'coca'}"


# ----------------------------------------------------------------------------------------------------------------
# shards


@dataclass
class ShardsArgs:
    """Write image-text WebDataset shards (image bytes, caption, uid, sha256) and a manifest."""

    source: str = "emoji"
    """A quartet.data image-text dataset name (emoji, openclipart, openmoji), a folder of images with same-stem
    .txt captions, or a CSV with columns image,caption[,uid]."""
    out: Path = Path("runs/clip/shards")
    samples_per_shard: int = 256
    limit: int | None = None
    size: int = 64
    """Image side in pixels for quartet.data sources."""
    on_error: Literal["raise", "skip"] = "raise"
    max_caption_chars: int = 2000


def shards_main(argv: list[str]) -> int:
    from quartet.clip.shards import write_image_text_shards
    from quartet.core.config import parse_cli

    a = parse_cli(ShardsArgs, argv, prog="quartet clip shards")
    m = write_image_text_shards(a.source, a.out, a.samples_per_shard, limit=a.limit, size=a.size,
                                on_error=a.on_error, max_caption_chars=a.max_caption_chars)
    print(f"wrote {m['num_samples']} samples in {m['num_shards']} shards to {a.out} (manifest.json)"
          + (f"; skipped {m['skipped']}" if m["skipped"] else ""))
    return 0


# ----------------------------------------------------------------------------------------------------------------
# reinforce


@dataclass
class ReinforceArgs(ReinforceConfig):
    """Reinforce image-text shards with teacher embeddings, augmentation records and synthetic captions."""

    num_workers: int = 1
    """Ray Data actors (one model copy each; a local Ray unless --ray-address); 0: the in-process loop."""
    input: Path = Path("runs/clip/shards")
    output: Path = Path("runs/clip/reinforced")
    teachers: tuple[str, ...] = ()
    """Teacher specs, concatenated in this order: [NAME=]FOLDER, [NAME=]MODEL@CKPT or [NAME=]CONFIG.json@CKPT."""
    captioner: str | None = None
    """coca:SPEC or hf:FOLDER (none: no synthetic captions)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Teacher compute precision: bf16 autocast on GPUs (stored embeddings are then bf16-accurate); CPUs use fp32."""
    stand_ins: Path | None = None
    """Write UNTRAINED random-init stand-in teachers (2) and a CoCa captioner into this folder and use them
    (pipeline checks only; the embeddings carry no knowledge). Excludes --teachers/--captioner."""

    def config(self) -> ReinforceConfig:
        base = {f.name: getattr(self, f.name) for f in fields(ReinforceConfig)}
        return ReinforceConfig(**base)


def reinforce_main(argv: list[str]) -> int:
    from quartet.clip.reinforce import reinforce
    from quartet.core.config import parse_cli

    a = parse_cli(ReinforceArgs, argv, prog="quartet clip reinforce")
    teachers, captioner = tuple(a.teachers), a.captioner
    if a.stand_ins is not None:
        if teachers or captioner:
            raise QuartetError("--stand-ins replaces --teachers/--captioner; give one or the other")
        teachers, captioner = make_stand_ins(a.stand_ins, seed=a.seed, crop_size=a.aug.crop_size)
        print(f"using UNTRAINED stand-in models from {a.stand_ins}: {', '.join(teachers)}, {captioner}")
    specs = ModelSpecs(teachers, captioner, device="cpu", precision=a.precision)
    summary = reinforce(a.input, a.output, specs, None, a.config())
    print(json.dumps(summary, indent=2))
    print(f"reinforced shards in {a.output} (metadata.json, manifest.jsonl); check them with "
          f"`quartet clip inspect {a.output}`")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# inspect


@dataclass
class InspectArgs:
    """Validate shards: counts, dims, bytes per sample; every sample checked (sha256, shapes, finite values)."""

    path: Path = Path("runs/clip/reinforced")
    """A reinforced folder, an image-text shard folder, or one shard file."""
    strict: bool = False
    """Stop at the first bad sample."""


def inspect_main(argv: list[str]) -> int:
    from quartet.clip.inspect_shards import inspect_reinforced
    from quartet.core.config import parse_cli

    if argv and not argv[0].startswith("-"):
        argv = ["--path", *argv]
    a = parse_cli(InspectArgs, argv, prog="quartet clip inspect")
    rep = inspect_reinforced(a.path, strict=a.strict)
    print(rep.summary())
    return 0 if rep.ok else 1
