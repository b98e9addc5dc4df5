"""ONNX export of the reparameterised encoders matches PyTorch under onnxruntime."""

from __future__ import annotations

import pytest
import torch

from quartet.clip.export import export_onnx, verify
from quartet.clip.models import create_model


def test_onnx_encoders_match_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    b = create_model("MCi-nano", image_size=32)
    b.model.eval()
    paths = export_onnx(b, tmp_path)
    assert paths["image"].stat().st_size > 10_000 and paths["text"].stat().st_size > 10_000
    diff = verify(b, paths)
    assert diff["image_max_abs_diff"] < 1e-4, diff
    assert diff["text_max_abs_diff"] < 1e-4, diff
