"""Training/evaluation verbs of ``quartet clip`` (merged into ``quartet.clip.cli.COMMANDS``); no heavy imports."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("quartet.clip.train:main", "train a student on reinforced shards (modes: reinforced, plain, online)"),
    "train-teacher": ("quartet.clip.train_teacher:main",
                      "train a CLIP teacher (plain CLIP loss) or a CoCa-* caption generator on image-text data"),
    "eval": ("quartet.clip.evaluate:main", "zero-shot top-1/top-5 and retrieval R@1/R@5 of a checkpoint"),
    "reproduce": ("quartet.clip.reproduce:main", "the paper's ablations at small scale, written to a report"),
    "export": ("quartet.clip.export:main", "reparameterised ONNX image/text encoders, checked with onnxruntime"),
}
