"""CLI verbs of ``quartet vlm`` (targets are imported only when a verb runs)."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "build-data": ("quartet.vlm.build_data:main", "build an image-question-answer set (text-in-image, emoji, ...)"),
    "train": ("quartet.vlm.train:main", "train stage 1 (projector), 1.5 (resolution scaling) or 2 (everything / LoRA)"),
    "eval": ("quartet.vlm.evaluate:main", "exact-match accuracy and TTFT of a checkpoint at given resolutions"),
    "chat": ("quartet.vlm.chat:main", "answer a prompt about an image and print the time to first token"),
    "ttft": ("quartet.vlm.ttft:main", "TTFT benchmark: encoder/projector/prefill over resolutions x LLM sizes"),
    "export": ("quartet.vlm.export:main", "export the reparameterised vision encoder to ONNX (parity-checked)"),
    "info": ("quartet.vlm.info:main", "parameter and token counts of the encoder presets"),
}
