"""Multi-modal reinforced training of small CLIP models (MobileCLIP2, arXiv 2508.20691; MobileCLIP, 2311.17049)."""
