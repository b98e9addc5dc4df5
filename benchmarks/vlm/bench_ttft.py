"""TTFT benchmark of FastVLM (FastViTHD vs ViT-L/14 vs a stride-32 encoder; Qwen2-0.5B/1.5B-shaped prefill).

    python benchmarks/vlm/bench_ttft.py            # --quick: the arms the targets need, ~5 min on 2 CPU cores
    python benchmarks/vlm/bench_ttft.py --full     # 4 resolutions x 2 LLMs, ViT-L up to 1024 px (tens of minutes)

Same as ``quartet vlm ttft``; every ratio is measured in one run with interleaved arms (median of repeats).
"""

from __future__ import annotations

import sys

from quartet.vlm.ttft import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--full" in args:
        args.remove("--full")
    elif "--quick" not in args:
        args.insert(0, "--quick")
    raise SystemExit(main(args))
