"""Step time per token at a fixed token budget per step, across sequence lengths, and the cost of a Dataset
Decomposition mixture against concat-and-chunk at the longest length (arXiv 2405.13226, Sec. 3.2 / Table 2:
b = 16,384 tokens: 1 x 16k = 719 ms vs 16 x 1k = 426 ms on an A100, a 1.69x ratio).

Every arm runs the same model for a full training step (forward, backward, AdamW) on ``tokens_per_step`` tokens,
interleaved (A B C ... A B C ...) so background load hits all arms alike; medians and ratios come from one run.
Arms: one per length ``L`` (``b/L`` sequences of ``L``); ``C&C-max`` and ``C&C-max+DM`` (dense block-diagonal mask,
segments from the real document lengths) and ``DD mixture``: a fixed list of steps whose lengths follow the bucket
token shares of prepared data (``--data``; else the Debian + Python docs shares measured by ``prepare``), run back to
back against the same number of C&C steps at the longest bucket length (``--cc-len``, 1024). The DD/C&C ratio
is the per-token cost of a DD epoch relative to a C&C epoch at equal tokens.

    python benchmarks/lm/step_time.py                      # lengths 64..2048, b = 4096, narrow model
    python benchmarks/lm/step_time.py --data runs/lm/data/debian-pydocs --max-len 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from quartet.core.bench import interleaved
from quartet.lm.model import PRESETS, LlamaLM, lm_loss

DEFAULT_SHARES = {5: 0.132, 6: 0.199, 7: 0.190, 8: 0.142, 9: 0.110, 10: 0.227}
"""Token shares of buckets 2^5..2^10 on Debian + Python docs (bpe:8192), from ``quartet lm prepare``."""


def mixture_steps(shares: dict[int, float], n_steps: int) -> list[int]:
    """``n_steps`` bucket lengths whose counts follow the token shares (largest remainder rounding). A step of any
    bucket holds the same tokens, so step counts are proportional to token shares."""
    ks = sorted(shares)
    w = np.array([shares[k] for k in ks], dtype=np.float64)
    w = w / w.sum() * n_steps
    counts = np.floor(w).astype(int)
    for i in np.argsort(-(w - counts))[: n_steps - counts.sum()]:
        counts[i] += 1
    return [1 << k for k, c in zip(ks, counts, strict=True) for _ in range(c)]


def make_step(model: LlamaLM, opt: torch.optim.Optimizer, B: int, L: int, vocab: int, doc_mask: bool = False,
              seed: int = 0):
    g = torch.Generator().manual_seed(seed + L)
    x = torch.randint(0, vocab, (B, L), generator=g)
    seg = None
    if doc_mask:  # documents of realistic sizes: geometric lengths with mean ~L/8
        lens = np.random.default_rng(seed).geometric(8 / L, size=(B, L)).cumsum(axis=1)
        seg = torch.from_numpy(np.stack([np.searchsorted(r, np.arange(L), side="right") for r in lens]))

    def step() -> None:
        loss, _ = lm_loss(model(x, seg), x, seg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens-per-step", type=int, default=4096)
    ap.add_argument("--min-len", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--model", default="narrow", choices=list(PRESETS))
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--cc-len", type=int, default=1024, help="longest DD bucket = the C&C length compared")
    ap.add_argument("--data", type=Path, default=None, help="prepared data folder for the bucket shares")
    ap.add_argument("--mix-steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b = a.tokens_per_step
    cfg = PRESETS[a.model]
    model = LlamaLM(type(cfg)(**{**cfg.__dict__, "vocab_size": a.vocab, "max_seq_len": a.max_len}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    lengths = [1 << k for k in range(int(math.log2(a.min_len)), int(math.log2(a.max_len)) + 1)]
    steps = {L: make_step(model, opt, b // L, L, a.vocab) for L in lengths}
    kmax = int(math.log2(a.cc_len))
    if a.data is not None:
        m = json.loads((a.data / "manifest.json").read_text())
        shares = {int(k): v["tokens"] for k, v in m["buckets"].items() if int(k) <= kmax}
    else:
        shares = {k: v for k, v in DEFAULT_SHARES.items() if k <= kmax}
    mix = mixture_steps(shares, a.mix_steps)
    for L in set(mix) - set(steps):
        steps[L] = make_step(model, opt, b // L, L, a.vocab)
    n = max(mix)  # C&C at the longest DD bucket: the comparison at equal maximum context
    dm = make_step(model, opt, b // n, n, a.vocab, doc_mask=True)
    arms = {f"L={L}": steps[L] for L in lengths}
    arms[f"C&C-{n}+DM"] = dm
    arms[f"C&C-{n} x{len(mix)}"] = lambda: [steps[n]() for _ in mix]
    arms[f"DD mixture x{len(mix)}"] = lambda: [steps[L]() for L in mix]
    work = {k: float(b) for k in arms}
    work[f"C&C-{n} x{len(mix)}"] = work[f"DD mixture x{len(mix)}"] = float(b * len(mix))
    res = interleaved(arms, repeats=a.repeats, warmup=1, work=work)
    base = f"L={a.max_len}"
    print(f"model {a.model} ({model.num_params():,} params), {b} tokens per step, {a.threads} thread(s)")
    print(res.table(baseline=base, unit="tok"))
    ratio = res.median(f"DD mixture x{len(mix)}") / res.median(f"C&C-{n} x{len(mix)}")
    dm_ratio = res.median(f"C&C-{n}+DM") / res.median(f"L={n}")
    print(f"DD mixture steps: { {int(k): int(c) for k, c in zip(*np.unique(mix, return_counts=True), strict=True)} }")
    print(f"DD epoch cost / C&C-{n} epoch cost at equal tokens: {ratio:.3f} (target <= 0.8)")
    print(f"C&C-{n}+DM (dense mask) / C&C-{n}: {dm_ratio:.3f}")
    print(f"step time L={a.max_len} / L={lengths[0]}: {res.median(base) / res.median(f'L={lengths[0]}'):.3f}")
    out = {"tokens_per_step": b, "model": a.model, "ms_per_step": {k: 1000 * res.median(k) for k in arms},
           "dd_over_cc": ratio, "dm_over_cc": dm_ratio, "mixture": mix, "shares": shares}
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=int))
    return out


if __name__ == "__main__":
    main()
