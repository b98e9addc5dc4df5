"""Dataset Decomposition and variable-sequence-length LM training (arXiv 2405.13226)."""
