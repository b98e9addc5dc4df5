"""Vision encoders for FastVLM (arXiv 2412.13303): FastViTHD, scaled-down presets, and comparators.

FastViTHD is timm's ``fastvit_mci3`` (the same network as apple/ml-fastvlm's ``mci.py``, weight for weight after the
``conv_exp -> final_conv`` rename that timm's checkpoint filter applies). We reuse timm's ``FastVit`` class and its
blocks; nothing here re-implements a layer. The VLM reads the conv_exp (``final_conv``) map ``(B, 2*C5, R/64, R/64)``
flattened to ``(B, N, 2*C5)`` tokens; timm's pooled classifier head is never used.

Presets are only numbers (timm convention):

- ``fastvithd``: 5 stages (2,12,24,4,2) x (96..1536), attention + RepCPE in stages 4-5, total stride 64,
  3072-d tokens, 122.71M params fused body (122.88M train-time). ``ceil(R/64)^2`` tokens: 16 at 256, 256 at 1024.
- ``fastvithd_small`` / ``fastvithd_tiny``: the same 5-stage stride-64 design, fewer blocks and narrower, for
  CPU-sized training (5.2M / 1.24M params train-time).
- ``fastvithd_s32`` (4 stages, stride 32: 4x more tokens at equal resolution) and timm's ``fastvit_mci2``
  (FastViT-MCi2, stride 32; 35.2M body here, the spec quotes 35.7M) as stride-32 comparators;
  ``fastvithd_s32_tiny`` for tests.
- ``vit_l14_336``: timm ``vit_large_patch14_clip_336`` shaped, randomly initialised (303.5M, 576 tokens at 336 and
  5,329 at 1024, attention quadratic in tokens); ``convnext_large`` (196.2M, stride 32); tiny versions for tests.

Reparameterisation (:meth:`VisionEncoder.reparameterize`) calls timm's ``reparameterize_model``: BN folds into
convs and RepMixer/RepCPE become single depthwise convs, with max abs output change < 1e-5 (tested). On this 2-core
CPU it gains only ~1.1-1.2x at 1024 px: a profile shows ~70-78% of the time in convolutions that reparameterisation
does not touch (the 1x1 ConvFFN layers) and ~12% in the BatchNorm/add passes it removes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from quartet.core.errors import QuartetError


@dataclass(frozen=True)
class EncoderConfig:
    """One vision-encoder preset: a timm architecture plus (for FastViT) its stage numbers."""

    name: str
    family: Literal["fastvit", "vit", "convnext"]
    timm_name: str
    stride: int
    layers: tuple[int, ...] = ()
    embed_dims: tuple[int, ...] = ()
    attention_stages: tuple[int, ...] = ()  # 0-based stage indices that use MHSA + RepCPE
    mlp_ratio: float = 4.0
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra timm kwargs (vit/convnext shapes)


def _fastvit(name: str, layers: tuple[int, ...], dims: tuple[int, ...], attn: tuple[int, ...]) -> EncoderConfig:
    return EncoderConfig(name=name, family="fastvit", timm_name="fastvit_mci3", stride=2 ** (len(layers) + 1),
                         layers=layers, embed_dims=dims, attention_stages=attn)


ENCODERS: dict[str, EncoderConfig] = {
    "fastvithd": _fastvit("fastvithd", (2, 12, 24, 4, 2), (96, 192, 384, 768, 1536), (3, 4)),
    "fastvithd_small": _fastvit("fastvithd_small", (1, 2, 4, 1, 1), (32, 64, 128, 256, 512), (3, 4)),
    "fastvithd_tiny": _fastvit("fastvithd_tiny", (1, 1, 1, 1, 1), (16, 32, 64, 128, 256), (3, 4)),
    "fastvithd_s32": _fastvit("fastvithd_s32", (2, 12, 24, 4), (96, 192, 384, 768), (3,)),
    "fastvithd_s32_tiny": _fastvit("fastvithd_s32_tiny", (1, 1, 1, 1), (16, 32, 64, 128), (3,)),
    "fastvit_mci2": EncoderConfig("fastvit_mci2", "fastvit", "fastvit_mci2", 32),
    "vit_l14_336": EncoderConfig("vit_l14_336", "vit", "vit_large_patch14_clip_336", 14),
    "vit_tiny": EncoderConfig("vit_tiny", "vit", "vit_large_patch14_clip_336", 14,
                              kwargs=dict(embed_dim=64, depth=2, num_heads=2)),
    "convnext_large": EncoderConfig("convnext_large", "convnext", "convnext_large", 32),
    "convnext_tiny_test": EncoderConfig("convnext_tiny_test", "convnext", "convnext_large", 32,
                                        kwargs=dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))),
}


def get_encoder_config(name: str) -> EncoderConfig:
    if name not in ENCODERS:
        raise QuartetError(f"unknown encoder preset {name!r}; choose from {sorted(ENCODERS)}")
    return ENCODERS[name]


def _timm_kwargs(cfg: EncoderConfig, resolution: int) -> dict[str, Any]:
    from timm.layers import LayerNorm2d
    from timm.models.fastvit import RepConditionalPosEnc

    kw: dict[str, Any] = dict(num_classes=0)
    if cfg.family == "fastvit" and cfg.layers:
        n = len(cfg.layers)
        kw.update(
            layers=cfg.layers, embed_dims=cfg.embed_dims, mlp_ratios=(cfg.mlp_ratio,) * n,
            se_downsamples=(False,) * n, downsamples=(False,) + (True,) * (n - 1),
            pos_embs=tuple(partial(RepConditionalPosEnc, spatial_shape=(7, 7)) if i in cfg.attention_stages
                           else None for i in range(n)),
            token_mixers=tuple("attention" if i in cfg.attention_stages else "repmixer" for i in range(n)),
            lkc_use_act=True, norm_layer=partial(LayerNorm2d, eps=1e-5), stem_use_scale_branch=False,
        )
    elif cfg.family == "vit":
        kw.update(img_size=resolution, dynamic_img_size=False, **cfg.kwargs)
    else:
        kw.update(cfg.kwargs)
    return kw


class VisionEncoder(nn.Module):
    """A timm backbone that returns image tokens ``(B, N, out_dim)``.

    FastViT/ConvNeXt: the last feature map (FastViT: after conv_exp) flattened row-major; ViT: the patch tokens
    (class token dropped). ``reparameterize()`` fuses train-time branches for inference (in place)."""

    def __init__(self, cfg: EncoderConfig | str, resolution: int = 1024, device: torch.device | str | None = None):
        super().__init__()
        import timm

        self.cfg = get_encoder_config(cfg) if isinstance(cfg, str) else cfg
        self.resolution = int(resolution)
        self.model = timm.create_model(self.cfg.timm_name, pretrained=False, device=device,
                                       **_timm_kwargs(self.cfg, self.resolution))
        self.out_dim = int(self.model.num_features)
        self.fused = False
        # Conv towers take NHWC input under no_grad on CPU/CUDA: oneDNN's channels-last kernels run FastViTHD@1024
        # ~1.15-1.3x faster on this CPU (same outputs); ViTs are token-major and unaffected. Training puts the
        # weights in NHWC instead (core.device.channels_last_for_training) and the layout follows from the stem.
        self.channels_last = self.cfg.family != "vit"

    @property
    def name(self) -> str:
        return self.cfg.name

    def num_tokens(self, resolution: int | None = None) -> int:
        """Tokens emitted for a square ``resolution`` input: ``ceil(R/stride)^2`` (ViT: ``floor(R/14)^2``)."""
        r = self.resolution if resolution is None else int(resolution)
        side = r // self.cfg.stride if self.cfg.family == "vit" else math.ceil(r / self.cfg.stride)
        return side * side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last and not torch.is_grad_enabled() and images.device.type in ("cpu", "cuda"):
            images = images.contiguous(memory_format=torch.channels_last)
        feats = self.model.forward_features(images)
        if self.cfg.family == "vit":
            return feats[:, self.model.num_prefix_tokens:]
        return feats.flatten(2).transpose(1, 2)

    def reparameterize(self) -> VisionEncoder:
        """Fuse BN and parallel branches into single convs (timm ``reparameterize_model``), in place."""
        from timm.utils import reparameterize_model

        if self.cfg.family == "fastvit" and not self.fused:
            self.model = reparameterize_model(self.model.eval(), inplace=True)
            self.fused = True
        return self

    def load_weights(self, path: str) -> None:
        """Load a local timm/MobileCLIP/ml-fastvlm checkpoint (safetensors, or a ``.pt`` read weights-only).

        Keys are mapped with timm's own FastViT checkpoint filter (``conv_exp`` -> ``final_conv``); the CLIP head is
        dropped. Shapes that do not fit this preset raise a clear error."""
        from pathlib import Path

        p = Path(path)
        if not p.is_file():
            raise QuartetError(f"encoder weights {p} not found")
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
            sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        prefixes = ("model.vision_tower.vision_tower.model.", "vision_tower.vision_tower.model.", "visual.trunk.",
                    "image_encoder.model.", "model.")
        clean = {}
        for k, v in sd.items():
            for pre in prefixes:
                if k.startswith(pre):
                    k = k[len(pre):]
                    break
            clean[k] = v
        if self.cfg.family == "fastvit":
            from timm.models.fastvit import checkpoint_filter_fn

            clean = checkpoint_filter_fn(clean, self.model)
        clean = {k: v for k, v in clean.items() if not k.startswith("head")}
        own = self.model.state_dict()
        bad = [k for k, v in clean.items() if k in own and own[k].shape != v.shape]
        if bad:
            raise QuartetError(f"encoder weights {p} do not fit preset {self.name!r}: {len(bad)} tensors differ in "
                               f"shape (first: {bad[0]} {tuple(clean[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
        missing, _unexpected = self.model.load_state_dict(clean, strict=False)
        missing = [k for k in missing if not k.startswith("head")]
        if missing:
            raise QuartetError(f"encoder weights {p} miss {len(missing)} tensors of preset {self.name!r} "
                               f"(first: {missing[0]}); is it a {self.cfg.timm_name} checkpoint?")


def count_params(module: nn.Module, exclude_prefixes: tuple[str, ...] = ("head",)) -> int:
    """Parameters of ``module`` whose names do not start with one of ``exclude_prefixes``."""
    return sum(p.numel() for n, p in module.named_parameters() if not n.startswith(exclude_prefixes))


def build_encoder(name: str, resolution: int = 1024, fused: bool = False,
                  device: torch.device | str | None = None) -> VisionEncoder:
    """A :class:`VisionEncoder` in eval mode, reparameterised when ``fused``."""
    enc = VisionEncoder(name, resolution=resolution, device=device).eval()
    return enc.reparameterize() if fused else enc
