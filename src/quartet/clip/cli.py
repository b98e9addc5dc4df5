"""CLI verbs of ``quartet clip``: dataset reinforcement (implemented in ``cli_reinforce``) and training/evaluation
(listed in ``cli_train``). This module stays import-light so ``quartet --help`` does not load PyTorch."""

from __future__ import annotations

from quartet.clip.cli_train import COMMANDS as _TRAIN

COMMANDS: dict[str, tuple[str, str]] = {
    "shards": ("quartet.clip.cli_reinforce:shards_main",
               "write image-text WebDataset shards from a quartet.data source, a folder or a CSV"),
    "reinforce": ("quartet.clip.cli_reinforce:reinforce_main",
                  "store teacher embeddings, augmentations and synthetic captions beside each pair (Ray)"),
    "inspect": ("quartet.clip.cli_reinforce:inspect_main",
                "validate reinforced or image-text shards: counts, dims, bytes/sample, every sample checked"),
    **_TRAIN,
}
