"""``quartet clip export``: reparameterised image and text encoders as ONNX, checked against PyTorch.

The image encoder is exported after :func:`quartet.clip.models.reparameterize` (MobileOne/RepMixer branches fused,
as MobileCLIP deploys its MCi towers), so the graph holds one conv per fused block. Both encoders output
L2-normalised embeddings; the batch dimension is dynamic. ``verify`` runs onnxruntime on random inputs and reports
the largest absolute difference from the PyTorch model (the export test requires < 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quartet.clip.models import ClipBundle, load_checkpoint, reparameterize
from quartet.core.progress import get_logger

log = get_logger("quartet.clip.export")


class ImageEncoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels), dim=-1)


class TextEncoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def _export(module: nn.Module, example: torch.Tensor, path: Path, in_name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(module, (example,), str(path), input_names=[in_name], output_names=[f"{in_name}_embedding"],
                      dynamic_shapes={"pixels" if in_name == "pixels" else "tokens": {0: batch}}, dynamo=True,
                      external_data=False, verbose=False)


def _export_child(checkpoint: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    export_onnx(load_checkpoint(checkpoint), out_dir, isolate=False)


def export_onnx(bundle: ClipBundle, out_dir: str | Path, isolate: bool = True) -> dict[str, Path]:
    """Write ``image_encoder.onnx`` and ``text_encoder.onnx`` (reparameterised, eval mode) to ``out_dir``.

    ``isolate`` runs the exporter in a fresh process: ``torch.onnx.export(dynamo=True)`` leaves global tracing
    state behind that made a later CoCa training step in the same process return NaN."""
    out = Path(out_dir)
    if isolate:
        import multiprocessing as mp
        import tempfile

        from quartet.clip.models import save_checkpoint
        from quartet.core.errors import QuartetError

        with tempfile.TemporaryDirectory() as tmp:
            ckpt = save_checkpoint(bundle, Path(tmp) / "model.safetensors")
            proc = mp.get_context("spawn").Process(target=_export_child, args=(str(ckpt), str(out)))
            proc.start()
            proc.join()
        if proc.exitcode != 0:
            raise QuartetError(f"ONNX export of {bundle.name} failed (exit code {proc.exitcode}); see the log above")
        return {"image": out / "image_encoder.onnx", "text": out / "text_encoder.onnx"}
    fused = reparameterize(bundle.model)
    img = torch.zeros(2, 3, bundle.image_size, bundle.image_size)
    tok = bundle.tokenize(["a photo", "an emoji of a cat"])
    paths = {"image": out / "image_encoder.onnx", "text": out / "text_encoder.onnx"}
    with torch.no_grad():
        _export(ImageEncoder(fused).eval(), img, paths["image"], "pixels")
        _export(TextEncoder(fused).eval(), tok, paths["text"], "tokens")
    return paths


def verify(bundle: ClipBundle, paths: dict[str, Path], batch: int = 3, seed: int = 0) -> dict[str, float]:
    """Max |onnxruntime - PyTorch| of each encoder on random pixels / real tokens (unfused PyTorch model)."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, bundle.image_size, bundle.image_size, generator=g)
    t = bundle.tokenize(["a grinning face", "red heart", "a cat with tears of joy"][:batch] * (batch // 3 + 1))[:batch]
    model = bundle.model.eval()
    with torch.no_grad():
        want_i = F.normalize(model.encode_image(x), dim=-1).numpy()
        want_t = F.normalize(model.encode_text(t), dim=-1).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    si = ort.InferenceSession(str(paths["image"]), opts, providers=["CPUExecutionProvider"])
    st = ort.InferenceSession(str(paths["text"]), opts, providers=["CPUExecutionProvider"])
    got_i = si.run(None, {si.get_inputs()[0].name: x.numpy()})[0]
    got_t = st.run(None, {st.get_inputs()[0].name: t.numpy().astype(np.int64)})[0]
    return {"image_max_abs_diff": float(np.abs(got_i - want_i).max()),
            "text_max_abs_diff": float(np.abs(got_t - want_t).max())}


@dataclass
class ExportConfig:
    """``quartet clip export``: ONNX encoders of a trained checkpoint."""

    checkpoint: str = ""  # .safetensors written by `quartet clip train` / `train-teacher`
    out: str = "onnx"
    check: bool = True


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli
    from quartet.core.errors import QuartetError

    cfg = parse_cli(ExportConfig, argv, prog="quartet clip export")
    if not cfg.checkpoint:
        raise QuartetError("pass --checkpoint path/to/model.safetensors")
    bundle = load_checkpoint(cfg.checkpoint)
    paths = export_onnx(bundle, cfg.out)
    info: dict[str, Any] = {k: str(v) for k, v in paths.items()}
    if cfg.check:
        info.update(verify(bundle, paths))
    for k, v in info.items():
        print(f"{k}: {v}")
    return 0
