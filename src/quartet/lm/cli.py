"""CLI verbs of ``quartet lm`` (Dataset Decomposition); targets are imported only when a verb runs."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("quartet.lm.prepare:main", "tokenize a corpus, decompose into power-of-two buckets, write shards"),
    "stats": ("quartet.lm.inspect:main", "print bucket shares and App. F statistics of prepared data (--verify)"),
    "train": ("quartet.lm.train:main", "train with DD (VSL + curriculum) or a baseline (C&C, C&C+DM, Pack+DM)"),
    "eval": ("quartet.lm.inspect:eval_main", "held-out loss by position and MDQA-like retrieval of a saved model"),
    "reproduce": ("quartet.lm.reproduce:main", "all arms at equal tokens on Debian + Python docs; report"),
}
