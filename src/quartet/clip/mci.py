"""Small MCi image towers (MobileCLIP's hybrid FastViT design) registered as timm models.

MobileCLIP2 (arXiv 2508.20691) builds its S0/S2 students on MCi0/MCi2 = timm ``fastvit_mci0/2``: a MobileOne stem,
three RepMixer stages (reparameterisable depthwise convs) and a final attention stage with a conditional positional
encoding. The presets below keep exactly that design (same block types, same stage pattern, SE in the last two
downsamplers, ``lkc_use_act``) and only shrink depths and widths so the towers train on a laptop CPU:

| preset | depths | widths | params (trunk) | vs MCi0 |
|---|---|---|---|---|
| ``fastvit_mci_nano`` | 1/1/2/1 | 16/32/64/128 | ~0.32M | ~1/35 |
| ``fastvit_mci_micro`` | 2/2/4/2 | 32/64/128/256 | ~2.0M | ~1/5.5 |
| ``fastvit_mci0`` (timm) | 2/6/10/2 | 64/128/256/512 | 11.4M | 1 |

Importing this module registers the presets with timm, so open_clip configs can name them as ``timm_model_name``.
The towers are built with ``timm.models.fastvit.FastVit`` itself (no re-implementation); ``reparameterize`` in
``quartet.clip.models`` fuses their train-time branches for inference.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import timm
from timm.models import register_model
from timm.models.fastvit import FastVit, RepConditionalPosEnc

# Stage pattern shared by every MCi variant: RepMixer x3, then attention with a conditional positional encoding.
_MCI_PATTERN: dict[str, Any] = dict(
    mlp_ratios=(3, 3, 3, 3),
    se_downsamples=(False, False, True, True),
    pos_embs=(None, None, None, partial(RepConditionalPosEnc, spatial_shape=(7, 7))),
    token_mixers=("repmixer", "repmixer", "repmixer", "attention"),
    lkc_use_act=True,
)

MCI_PRESETS: dict[str, dict[str, tuple[int, ...]]] = {
    "fastvit_mci_nano": dict(layers=(1, 1, 2, 1), embed_dims=(16, 32, 64, 128)),
    "fastvit_mci_micro": dict(layers=(2, 2, 4, 2), embed_dims=(32, 64, 128, 256)),
    "fastvit_mci_mini": dict(layers=(2, 4, 6, 2), embed_dims=(48, 96, 192, 384)),
}


def _build(name: str, pretrained: bool = False, **kwargs: Any) -> FastVit:
    if pretrained:
        raise ValueError(f"{name} has no pretrained weights; load a checkpoint from a local path instead")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    kwargs.pop("cache_dir", None)
    model = FastVit(**{**_MCI_PATTERN, **MCI_PRESETS[name], **kwargs})
    cfg = {"architecture": name, "num_classes": model.num_classes, "input_size": (3, 256, 256),
           "pool_size": (8, 8), "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "first_conv": "stem.0.conv_kxk.0.conv"}
    model.pretrained_cfg = model.default_cfg = cfg
    return model


@register_model
def fastvit_mci_nano(pretrained: bool = False, **kwargs: Any) -> FastVit:
    """MCi-nano: 1/1/2/1 blocks, widths 16-128 (student-sized for CPU runs)."""
    return _build("fastvit_mci_nano", pretrained, **kwargs)


@register_model
def fastvit_mci_micro(pretrained: bool = False, **kwargs: Any) -> FastVit:
    """MCi-micro: 2/2/4/2 blocks, widths 32-256 (teacher-sized for CPU runs)."""
    return _build("fastvit_mci_micro", pretrained, **kwargs)


@register_model
def fastvit_mci_mini(pretrained: bool = False, **kwargs: Any) -> FastVit:
    """MCi-mini: 2/4/6/2 blocks, widths 48-384."""
    return _build("fastvit_mci_mini", pretrained, **kwargs)


def registered() -> list[str]:
    """Every MCi tower timm knows about (the real ``fastvit_mci0..4`` and the small presets above)."""
    return sorted(timm.list_models("fastvit_mci*"))
