"""CLIP models by name: the real MobileCLIP2 configs from open_clip and small presets of the same design.

MobileCLIP2 (arXiv 2508.20691) students are open_clip ``CustomTextCLIP`` models whose image tower is a timm MCi
(``fastvit_mci0`` for S0) and whose text tower is a 12-layer transformer without a causal mask. This module adds
presets of the same design sized for a 2-core CPU (``model_configs/*.json``; MCi towers from ``quartet.clip.mci``):

| name | image tower | text tower | role |
|---|---|---|---|
| ``MCi-nano`` | MCi 1/1/2/1, 16-128 wide, 64 px | 2L x 64 | student |
| ``MCi-micro`` | MCi 2/2/4/2, 32-256 wide, 64 px | 3L x 128 | teacher (~8x the student's FLOPs) |
| ``ViT-micro`` | ViT 4L x 192, patch 8, 64 px | 3L x 128 | teacher of a second architecture |
| ``CoCa-micro`` | ViT 3L x 128 + attentional pooler | 2L + 2L decoder | caption generator |

Every open_clip name works too (``MobileCLIP2-S0`` ... ``MobileCLIP2-L-14``); weights only ever come from a local
path (``pretrained=/path/to/open_clip_model.safetensors``), never a hub. ``reparameterize`` fuses the MobileOne /
RepMixer / RepCPE branches for inference (timm's ``reparameterize_model``): outputs are unchanged up to float
rounding and the fused MCi-nano tower runs ~1.5-2x faster on CPU.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image

from quartet.clip import mci  # noqa: F401  (registers the MCi presets with timm)
from quartet.core.errors import QuartetError, SourceMissingError

CONFIG_DIR = Path(__file__).parent / "model_configs"
OUR_PRESETS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
# S0/S2/B and our presets take [0,1] pixels; S3/S4/L-14 use the OpenAI mean/std (as in open_clip's pretrained cfgs).
_UNIT = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
_OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
_OPENAI_NORM = {"MobileCLIP2-S3", "MobileCLIP2-S4", "MobileCLIP2-L-14"}

_registered = False


def register() -> None:
    """Make the presets in ``model_configs/`` known to open_clip (idempotent)."""
    global _registered
    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


def list_models() -> list[str]:
    """Our presets first, then the MobileCLIP/MobileCLIP2 configs open_clip ships."""
    register()
    real = [m for m in open_clip.list_models() if m.startswith("MobileCLIP")]
    return list(OUR_PRESETS) + real


@dataclass
class ClipBundle:
    """A model with what it needs to be fed: tokenizer, input size and pixel normalisation."""

    name: str
    model: torch.nn.Module
    tokenizer: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def context_length(self) -> int:
        return int(self.tokenizer.context_length)

    def images_to_tensor(self, images: list[Image.Image] | np.ndarray, size: int | None = None) -> torch.Tensor:
        return to_tensor(images, size or self.image_size, self.mean, self.std)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts)


def model_config(name: str) -> dict[str, Any]:
    register()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise QuartetError(f"unknown CLIP model {name!r}; choose one of {', '.join(list_models())}")
    return cfg


def create_model(name: str, pretrained: str | Path | None = None, image_size: int | None = None,
                 device: str | torch.device = "cpu", **kwargs: Any) -> ClipBundle:
    """Build ``name`` (random init, or weights from the local file ``pretrained``) and its tokenizer.

    ``image_size`` overrides the config's input size (MCi towers are fully convolutional until the pooled head, so a
    64 px tower also runs at 32 or 96 px). ``pretrained`` must be a local file in open_clip format (safetensors or a
    ``state_dict`` checkpoint); hub tags are refused because nothing here may download weights."""
    cfg = model_config(name)
    if pretrained is not None:
        path = Path(pretrained)
        if not path.is_file():
            raise SourceMissingError(f"checkpoint {path} not found; pass a local open_clip .safetensors/.pt file")
        pretrained = str(path)
    quiet = logging.getLogger()
    level = quiet.level
    if pretrained is None:
        quiet.setLevel(logging.ERROR)  # open_clip warns "no pretrained weights" for every random init
    try:
        model = open_clip.create_model(name, pretrained=pretrained, device=device, force_image_size=image_size,
                                       pretrained_image=False, pretrained_text=False, **kwargs)
    finally:
        quiet.setLevel(level)
    if pretrained is None:
        init_uninitialised(model)
    size = int(image_size or cfg["vision_cfg"].get("image_size", 224))
    mean, std = _OPENAI if name in _OPENAI_NORM else _UNIT
    if name not in OUR_PRESETS and name not in _OPENAI_NORM and "MobileCLIP" not in name:
        pp = open_clip.get_model_preprocess_cfg(model)
        mean, std = tuple(pp.get("mean", _OPENAI[0])), tuple(pp.get("std", _OPENAI[1]))
    tok = CachedTokenizer(open_clip.get_tokenizer(name))
    return ClipBundle(name=name, model=model, tokenizer=tok, image_size=size, mean=mean, std=std)


def init_uninitialised(model: torch.nn.Module) -> torch.nn.Module:
    """Initialise what open_clip leaves as ``torch.empty``: a CoCa's multimodal ``text_decoder.text_projection``
    (its ``init_parameters`` is never called). Left alone, that matrix holds whatever memory it was given -- NaN in
    some runs, so a random-init captioner produced NaN logits depending on what the process had allocated before.
    Uses the initialisation open_clip intends (normal, std = width^-0.5); returns ``model``."""
    dec = getattr(model, "text_decoder", None)
    proj = getattr(dec, "text_projection", None)
    if isinstance(proj, torch.nn.Parameter):
        with torch.no_grad():
            torch.nn.init.normal_(proj, std=int(proj.shape[0]) ** -0.5)
    return model


def to_tensor(images: list[Image.Image] | np.ndarray, size: int, mean: tuple[float, ...] = _UNIT[0],
              std: tuple[float, ...] = _UNIT[1]) -> torch.Tensor:
    """PIL images or uint8 ``[N,H,W,3]``/``[N,H,W]`` arrays -> float ``[N,3,size,size]``, normalised.

    Resizing uses bicubic PIL resampling (as open_clip's eval transform) only when the size differs."""
    if isinstance(images, np.ndarray):
        arr = images if images.ndim == 4 else np.repeat(images[..., None], 3, axis=-1)
        if arr.shape[1] != size or arr.shape[2] != size:
            arr = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC)) for a in arr])
    else:
        arr = np.stack([np.asarray((im if im.size == (size, size) else im.resize((size, size), Image.BICUBIC))
                                   .convert("RGB")) for im in images])
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def reparameterize(model: torch.nn.Module, inplace: bool = False) -> torch.nn.Module:
    """Fuse every reparameterisable branch (MobileOne stem, RepMixer, RepCPE, large-kernel convs) for inference.

    Returns the fused model in eval mode; a copy unless ``inplace``. A model without such blocks is returned
    unchanged (in eval mode)."""
    from timm.utils.model import reparameterize_model

    m = model if inplace else copy.deepcopy(model)
    m.eval()
    return reparameterize_model(m, inplace=True)


class CachedTokenizer:
    """An open_clip tokenizer that remembers the token rows of strings it has seen.

    Training draws the same captions every epoch; open_clip's BPE tokenizer (ftfy + regex + Python merges) costs
    ~0.25 ms per caption, 10-15% of a small student's CPU step. Rows are identical to the wrapped tokenizer's; the
    cache is cleared when it holds ``max_entries`` strings."""

    def __init__(self, tokenizer: Any, max_entries: int = 200_000) -> None:
        self.tokenizer = tokenizer
        self.max_entries = int(max_entries)
        self._rows: dict[str, torch.Tensor] = {}

    def __getattr__(self, name: str) -> Any:  # context_length, vocab_size, decode, ...
        tok = self.__dict__.get("tokenizer")
        if tok is None:
            raise AttributeError(name)
        return getattr(tok, name)

    def __call__(self, texts: str | list[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        if args or kwargs:
            return self.tokenizer(texts, *args, **kwargs)
        texts = [texts] if isinstance(texts, str) else list(texts)
        new = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if new and len(self._rows) + len(new) > self.max_entries:
            self._rows.clear()
            new = list(dict.fromkeys(texts))
        if new:
            for t, row in zip(new, self.tokenizer(new)):
                self._rows[t] = row
        if not texts:
            return self.tokenizer(texts)
        return torch.stack([self._rows[t] for t in texts])


def conv_tower_to_nhwc(visual: torch.nn.Module) -> torch.nn.Module:
    """Train a convolutional image tower (MCi/FastViT) in NHWC on CPU/CUDA (core.device.channels_last_for_training:
    ~25% faster MCi-nano steps on CPU, same maths); ViT towers and MPS are left as they are. In place."""
    from quartet.core.device import channels_last_for_training

    params = list(visual.parameters())
    convs = [m for m in visual.modules() if isinstance(m, torch.nn.Conv2d)]
    if params and params[0].device.type in ("cpu", "cuda") and any(m.groups > 1 for m in convs):
        channels_last_for_training(visual)
    return visual


def save_checkpoint(bundle: ClipBundle, path: str | Path) -> Path:
    """Write the model's weights as open_clip-compatible safetensors (loadable with ``create_model(name, path)``)."""
    from safetensors.torch import save_file

    from quartet.core.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().cpu() for k, v in bundle.model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata={"model": bundle.name, "image_size": str(bundle.image_size)})
    return path


def load_checkpoint(path: str | Path, name: str | None = None, device: str | torch.device = "cpu") -> ClipBundle:
    """Load a safetensors checkpoint written by :func:`save_checkpoint` (the model name is read from its metadata)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SourceMissingError(f"checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    name = name or meta.get("model")
    if not name:
        raise QuartetError(f"{path} does not name its model; pass name=")
    size = int(meta["image_size"]) if "image_size" in meta else None
    return create_model(name, pretrained=path, image_size=size, device=device)


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_per_sample(bundle: ClipBundle, image_size: int | None = None) -> dict[str, float]:
    """Forward FLOPs of one image and one caption (torch's FlopCounterMode; matmuls/convs, 2 FLOPs per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = image_size or bundle.image_size
    model = bundle.model
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        x = torch.zeros(1, 3, size, size)
        with FlopCounterMode(display=False) as fc:
            model.encode_image(x)
        out["image"] = float(fc.get_total_flops())
        t = bundle.tokenize(["a photo of a cat"])
        with FlopCounterMode(display=False) as fc:
            model.encode_text(t)
        out["text"] = float(fc.get_total_flops())
    model.train(was_training)
    out["total"] = out["image"] + out["text"]
    return out
