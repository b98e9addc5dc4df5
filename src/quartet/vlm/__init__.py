"""FastVLM: FastViTHD vision encoding for LLaVA-style VLMs (arXiv 2412.13303)."""
