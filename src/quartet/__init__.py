"""quartet: four research systems in one toolkit.

- ``quartet.clip``  multi-modal reinforced training of small CLIP models (MobileCLIP2)
- ``quartet.vlm``   FastViTHD encoder and LLaVA-style VLMs (FastVLM)
- ``quartet.lm``    Dataset Decomposition and variable-sequence-length LM training
- ``quartet.robot`` tactile-shell millirobot: telemetry, calibration, analysis, MuJoCo simulation

``quartet.core`` and ``quartet.data`` hold what the systems share; systems never import each other.
"""

__version__ = "0.1.0"
