"""Evaluation of LMs trained on prepared data (:mod:`quartet.lm.store`).

- :func:`heldout_loss`: next-token loss on whole held-out documents (each read from its first token, up to the
  context length), reported overall and by position in the document (log2 position bins), so the benefit of long
  context shows up where it should: late positions.
- :func:`retrieval_eval`: a multi-document retrieval task in the spirit of MDQA (Liu et al., used by the paper):
  ``k`` held-out documents (EOS-separated) fill a context of a given length; the query repeats the first tokens of
  one of them and the model must continue it. Accuracy = the gold next token scores highest among the next tokens of
  all ``k`` documents (chance ``1/k``); the gold document's position is uniform over the context. Corpus-agnostic:
  it needs only token ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from quartet.core.seed import numpy_rng
from quartet.lm.model import LlamaLM
from quartet.lm.sampling import best_fit_decreasing
from quartet.lm.store import Stream

POSITION_EDGES = (0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def eval_rows(val: Stream, max_len: int, n_docs: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out documents (prefixes of at most ``max_len`` tokens) packed into ``[R, max_len]`` rows with a
    segment id per position (-1 = padding). ``n_docs`` = a fixed random sample of documents (``None`` = all)."""
    docs = np.nonzero(val.doc_lens >= 2)[0]
    if n_docs is not None and n_docs < docs.size:
        docs = np.sort(numpy_rng(seed, 7).choice(docs, n_docs, replace=False))
    sizes = np.minimum(val.doc_lens[docs], max_len)
    bins = best_fit_decreasing(sizes, max_len)
    toks = np.zeros((len(bins), max_len), dtype=np.int64)
    segs = np.full((len(bins), max_len), -1, dtype=np.int64)
    for r, b in enumerate(bins):
        pos = 0
        for j, i in enumerate(b):
            n = int(sizes[i])
            s = int(val.doc_starts[docs[i]])
            toks[r, pos:pos + n] = val.get(s, s + n)
            segs[r, pos:pos + n] = j
            pos += n
    return toks, segs


@torch.no_grad()
def heldout_loss(model: LlamaLM, rows: tuple[np.ndarray, np.ndarray], device: torch.device,
                 batch_rows: int = 4) -> dict[str, Any]:
    """Mean next-token loss over the packed held-out rows, and by target position in the document."""
    from quartet.lm.model import segment_positions

    model.eval()
    toks, segs = rows
    edges = np.array(POSITION_EDGES)
    sums = np.zeros(len(edges))
    counts = np.zeros(len(edges))
    for i in range(0, toks.shape[0], batch_rows):
        t = torch.from_numpy(toks[i:i + batch_rows]).to(device)
        s = torch.from_numpy(segs[i:i + batch_rows]).to(device)
        s_attn = torch.where(s < 0, torch.full_like(s, 1 << 30), s)
        logits = model(t, s_attn).float()
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1),
                                               reduction="none").view(t.shape[0], -1)
        valid = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
        pos = segment_positions(s_attn)[:, 1:]
        b = np.searchsorted(edges, pos.cpu().numpy(), side="right") - 1
        v = valid.cpu().numpy()
        c = ce.cpu().numpy()
        np.add.at(sums, b[v], c[v])
        np.add.at(counts, b[v], 1)
    model.train()
    total = counts.sum()
    by_pos = [{"positions": f"{edges[j]}-{edges[j + 1] - 1}" if j + 1 < len(edges) else f">={edges[j]}",
               "loss": float(sums[j] / counts[j]), "targets": int(counts[j])} for j in range(len(edges)) if counts[j]]
    return {"loss": float(sums.sum() / total) if total else float("nan"), "targets": int(total),
            "by_position": by_pos}


@torch.no_grad()
def retrieval_eval(model: LlamaLM, val: Stream, lengths: tuple[int, ...] = (128, 256, 512, 1024),
                   examples: int = 32, prefix: int = 8, seed: int = 0, device: torch.device | None = None
                   ) -> list[dict[str, Any]]:
    """MDQA-like accuracy per context length (see module doc); returns rows with accuracy, chance and docs/context."""
    device = device or torch.device("cpu")
    model.eval()
    lens = val.doc_lens
    pool = np.nonzero((lens >= prefix + 4) & (lens <= 160))[0]
    out = []
    for L in lengths:
        rng = numpy_rng(seed, L)
        correct, ks = 0, []
        done = 0
        tries = 0
        while done < examples and tries < examples * 20 and pool.size:
            tries += 1
            order = rng.permutation(pool)
            ctx: list[np.ndarray] = []
            seen_prefix: set[bytes] = set()
            seen_next: set[int] = set()
            used = 0
            for d in order[:400].tolist():
                doc = val.document(d)
                key, nxt = doc[:prefix].tobytes(), int(doc[prefix])
                if key in seen_prefix or nxt in seen_next:
                    continue
                if used + doc.size + prefix > L:
                    break
                ctx.append(doc)
                seen_prefix.add(key)
                seen_next.add(nxt)
                used += doc.size
            if len(ctx) < 2:
                continue
            g = int(rng.integers(len(ctx)))
            seq = np.concatenate([*ctx, ctx[g][:prefix]])
            logits = model(torch.from_numpy(seq[None]).to(device))[0, -1]
            cands = torch.tensor([int(c[prefix]) for c in ctx], device=device)
            correct += int(int(torch.argmax(logits[cands])) == g)
            ks.append(len(ctx))
            done += 1
        out.append({"context": L, "examples": done, "accuracy": correct / done if done else float("nan"),
                    "docs per context": float(np.mean(ks)) if ks else 0.0,
                    "chance": float(np.mean([1 / k for k in ks])) if ks else float("nan")})
    model.train()
    return out
