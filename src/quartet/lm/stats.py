"""Sequence statistics of the paper's App. F: bucket token shares, dropped tokens, average sequence length and
average context length for DD, concat-and-chunk (C&C-n) and best-fit packing (Pack-n).

Average context length counts, for every token, how many earlier tokens *of its own document* it can see in its
training sequence: ``sum l(l-1)/2 / sum l`` over the document segments of all sequences (the paper's definition:
RefinedWeb Baseline-8k 930, Pack-8k 1064, DD>=256 1344). A DD mixture's effective attention length is
``2 * avgctx + 1``. For C&C the segments are documents cut at chunk boundaries; for Pack-n they are documents cut
into chunks of at most ``n``; for DD they are the power-of-two pieces.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def avg_context(segment_lengths: np.ndarray) -> float:
    """``sum l(l-1)/2 / sum l`` (0 for no tokens)."""
    seg = np.asarray(segment_lengths, dtype=np.float64)
    tot = seg.sum()
    return float((seg * (seg - 1) / 2).sum() / tot) if tot else 0.0


def cc_segments(doc_lengths: np.ndarray, n: int) -> np.ndarray:
    """Lengths of the document segments inside concat-and-chunk sequences of length ``n`` (last partial chunk
    dropped, as in training)."""
    ends = np.cumsum(np.asarray(doc_lengths, dtype=np.int64))
    total = int(ends[-1]) if ends.size else 0
    usable = total - total % n
    cuts = np.union1d(ends[ends < usable], np.arange(n, usable + 1, n, dtype=np.int64))
    seg = np.diff(np.concatenate([[0], cuts]))
    return seg[seg > 0]


def pack_segments(doc_lengths: np.ndarray, n: int) -> np.ndarray:
    """Lengths of the document chunks (at most ``n``) that Pack-n places into sequences."""
    lens = np.asarray(doc_lengths, dtype=np.int64)
    full = lens // n
    rem = lens % n
    return np.concatenate([np.full(int(full.sum()), n, dtype=np.int64), rem[rem > 0]])


def table(doc_lengths: np.ndarray, bucket_tokens: dict[int, int], dropped: int, n: int) -> dict[str, Any]:
    """The App. F numbers for one corpus: per-bucket shares and the DD / C&C-n / Pack-n comparison."""
    total_dd = sum(bucket_tokens.values())
    seg_dd = np.concatenate([np.full(t >> k, 1 << k, dtype=np.int64) for k, t in bucket_tokens.items() if t]
                            ) if total_dd else np.zeros(0, np.int64)
    lens = np.asarray(doc_lengths, dtype=np.int64)
    total = int(lens.sum())
    ctx_dd = avg_context(seg_dd)
    rows = [{"bucket": f"D{k} ({1 << k})", "sequences": t >> k, "tokens": t,
             "share %": 100.0 * t / total_dd if total_dd else 0.0} for k, t in sorted(bucket_tokens.items())]
    return {
        "documents": int(lens.size), "tokens": total, "dd_tokens": total_dd, "dropped_tokens": int(dropped),
        "dropped %": 100.0 * dropped / total if total else 0.0,
        "buckets": rows,
        "methods": [
            {"method": "DD", "avg seq len": float(seg_dd.mean()) if seg_dd.size else 0.0, "avg context": ctx_dd,
             "effective attention len": 2 * ctx_dd + 1},
            {"method": f"C&C-{n}", "avg seq len": float(n), "avg context": avg_context(cc_segments(lens, n)),
             "effective attention len": float(n)},
            {"method": f"Pack-{n}", "avg seq len": float(n), "avg context": avg_context(pack_segments(lens, n)),
             "effective attention len": float(n)},
        ],
    }


def format_table(stats: dict[str, Any]) -> str:
    """The statistics as plain text (what ``prepare`` and ``stats`` print)."""
    lines = [f"documents {stats['documents']:,}  tokens {stats['tokens']:,}  in buckets {stats['dd_tokens']:,}  "
             f"dropped {stats['dropped_tokens']:,} ({stats['dropped %']:.2f}%)",
             f"{'bucket':<14}{'sequences':>12}{'tokens':>14}{'share %':>10}"]
    for r in stats["buckets"]:
        lines.append(f"{r['bucket']:<14}{r['sequences']:>12,}{r['tokens']:>14,}{r['share %']:>10.1f}")
    lines.append(f"{'method':<14}{'avg seq len':>12}{'avg context':>14}{'eff. attn len':>15}")
    for m in stats["methods"]:
        lines.append(f"{m['method']:<14}{m['avg seq len']:>12.1f}{m['avg context']:>14.1f}"
                     f"{m['effective attention len']:>15.1f}")
    return "\n".join(lines)
