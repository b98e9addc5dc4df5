"""``quartet vlm info``: parameters (train-time and fused) and tokens per resolution of the encoder presets.

Counts need no forward pass. FastViTHD: 122.88M train-time, 122.71M fused body; ViT-L/14-336: 303.5M.
"""

from __future__ import annotations

from dataclasses import dataclass

from quartet.core.report import markdown_table
from quartet.vlm.encoder import ENCODERS, build_encoder, count_params


@dataclass
class InfoConfig:
    """Encoder presets to describe."""

    encoders: tuple[str, ...] = ("fastvithd", "fastvithd_small", "fastvithd_tiny", "fastvithd_s32", "fastvit_mci2",
                                 "vit_l14_336", "convnext_large")
    resolutions: tuple[int, ...] = (256, 336, 512, 768, 1024, 1536)


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli

    cfg = parse_cli(InfoConfig, argv, prog="quartet vlm info")
    rows = []
    for name in cfg.encoders:
        if name not in ENCODERS:
            from quartet.core.errors import QuartetError

            raise QuartetError(f"unknown encoder {name!r}; choose from {sorted(ENCODERS)}")
        enc = build_encoder(name, resolution=336)
        row = {"encoder": name, "params M (train)": count_params(enc.model) / 1e6}
        enc.reparameterize()
        row["params M (fused)"] = count_params(enc.model) / 1e6
        row["dim"] = enc.out_dim
        row.update({f"tokens@{r}": enc.num_tokens(r) for r in cfg.resolutions})
        rows.append(row)
        print(f"{name}: done", flush=True)
    print(markdown_table(rows, floatfmt=".3f"))
    return 0
