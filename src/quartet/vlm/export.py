"""``quartet vlm export``: the reparameterised vision encoder as ONNX, checked against PyTorch with onnxruntime.

The exported graph maps ``pixel_values (B, 3, R, R)`` in [0, 1] to ``image_tokens (B, N, C)`` (FastViTHD: C = 3072,
N = ceil(R/64)^2). The encoder is fused first (single convs instead of train-time branches), so the ONNX model
runs the inference form. Parity: max abs difference against the fused PyTorch encoder, reported and enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from quartet.core.errors import QuartetError
from quartet.core.io import atomic_path
from quartet.vlm.encoder import VisionEncoder, build_encoder


def export_onnx(encoder: VisionEncoder, path: str | Path, resolution: int, batch: int = 1,
                opset: int = 18) -> Path:
    """Write ``encoder`` (fused in place first) as ONNX with a fixed input size ``resolution``."""
    encoder.reparameterize().eval()
    x = torch.rand(batch, 3, resolution, resolution)
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(encoder, (x,), str(tmp), input_names=["pixel_values"], output_names=["image_tokens"],
                          opset_version=opset, dynamo=False)
    return path


def check_parity(encoder: VisionEncoder, path: str | Path, resolution: int, seed: int = 0,
                 batch: int = 1) -> float:
    """Max abs difference between onnxruntime and PyTorch on a random image batch."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, resolution, resolution, generator=g)
    with torch.no_grad():
        ref = encoder.eval()(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["image_tokens"], {"pixel_values": x.numpy()})[0]
    if got.shape != ref.shape:
        raise QuartetError(f"ONNX output shape {got.shape} differs from PyTorch {ref.shape}")
    return float(np.abs(got - ref).max())


@dataclass
class ExportConfig:
    """Export a vision encoder preset (or a checkpoint's encoder) to ONNX."""

    encoder: str = "fastvithd"
    ckpt: str | None = None  # take the encoder (weights and preset) from a VLM checkpoint
    weights: str | None = None  # or load encoder weights from a local timm/MobileCLIP checkpoint
    resolution: int = 1024
    out: str = "fastvithd.onnx"
    opset: int = 18
    tolerance: float = 1e-4  # max abs difference allowed between onnxruntime and PyTorch


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli

    cfg = parse_cli(ExportConfig, argv, prog="quartet vlm export")
    if cfg.ckpt:
        from quartet.vlm.model import load_vlm

        enc = load_vlm(cfg.ckpt).encoder
    else:
        enc = build_encoder(cfg.encoder, cfg.resolution)
        if cfg.weights:
            enc.load_weights(cfg.weights)
    path = export_onnx(enc, cfg.out, cfg.resolution, opset=cfg.opset)
    err = check_parity(enc, path, cfg.resolution)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), {enc.num_tokens(cfg.resolution)} tokens x "
          f"{enc.out_dim} at {cfg.resolution} px; onnxruntime vs PyTorch max abs diff {err:.2e}")
    if err > cfg.tolerance:
        raise QuartetError(f"ONNX parity failed: max abs diff {err:.2e} > {cfg.tolerance:.0e}")
    return 0
