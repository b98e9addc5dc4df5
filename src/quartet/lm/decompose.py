"""Dataset Decomposition (arXiv 2405.13226, Sec. 2): cut each document into power-of-two pieces.

A document of ``l`` tokens (EOS included) is written in binary, ``l = 2^{i1} + 2^{i2} + ...``, and cut into adjacent
pieces of those lengths, largest first, so every training sequence comes from exactly one document. Pieces longer than
``2^max`` become several ``2^max`` pieces; bits below ``2^min`` are dropped (``l mod 2^min`` tokens per document, or
all of ``l`` when ``l < 2^min``). All of this is vectorised NumPy over a whole batch of documents: one pass builds
a per-token bucket label, then one boolean gather per bucket copies the pieces out in document order (measured in
``benchmarks/lm/prepare.py``: tens of millions of tokens/s on one core, far above the 1M tokens/s target).

The ``random`` variant follows the reference's idea for long documents: each full ``2^max`` chunk is re-split into
``2^(max-k)`` pieces of ``2^k`` with ``k`` drawn uniformly from ``[min, max]``, so the tokens of very long documents
spread evenly over the buckets in expectation (sequence counts ``∝ 2^-k``); the remainder is split exactly.
Checked against the paper's description (Sec. 2.1, App. F); the reference's shard format is WebDataset tars of
``2^k + 1`` tokens, ours is flat ``2^k``-token arrays (the shifted target of the last position is not trained).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_LOG2 = 8
"""The paper's shortest bucket, 2^8 = 256 tokens."""
DEFAULT_MAX_LOG2 = 13
"""The paper's longest bucket, 2^13 = 8192 tokens."""


@dataclass
class Pieces:
    """The decomposition of a batch of documents as a piece table (one row per piece, document order).

    ``doc``: index of the document; ``offset``: first token of the piece inside the batch's token stream;
    ``log2``: the piece length is ``2**log2``. ``dropped``: tokens dropped per document.
    """

    doc: np.ndarray
    offset: np.ndarray
    log2: np.ndarray
    dropped: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.left_shift(1, self.log2.astype(np.int64))


def check_range(min_log2: int, max_log2: int) -> None:
    """Refuse impossible bucket ranges with a message that says what is allowed."""
    if not (0 <= min_log2 <= max_log2 <= 24):
        raise ValueError(f"bucket range 2^{min_log2}..2^{max_log2} is invalid; need 0 <= min <= max <= 24")


def piece_counts(lengths: np.ndarray, min_log2: int, max_log2: int) -> np.ndarray:
    """Pieces per document and bucket for the exact binary decomposition: int64 ``[n_docs, n_buckets]``.

    Column ``j`` is bucket ``2^(max_log2 - j)`` (longest first, the order pieces appear inside a document)."""
    check_range(min_log2, max_log2)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and lengths.min() < 0:
        raise ValueError("document lengths must be >= 0")
    ks = np.arange(max_log2, min_log2 - 1, -1, dtype=np.int64)
    counts = (lengths[:, None] >> ks[None, :]) & 1
    counts[:, 0] = lengths >> max_log2
    return counts


def decompose_lengths(lengths: np.ndarray, min_log2: int = DEFAULT_MIN_LOG2, max_log2: int = DEFAULT_MAX_LOG2,
                      variant: str = "binary", rng: np.random.Generator | None = None) -> Pieces:
    """The piece table for documents of ``lengths`` laid out back to back (document ``i`` starts at
    ``cumsum(lengths)[i-1]``). ``variant`` is ``"binary"`` (exact, the default) or ``"random"`` (see module doc)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = piece_counts(lengths, min_log2, max_log2)
    n_docs, n_b = counts.shape
    ks = np.arange(max_log2, min_log2 - 1, -1, dtype=np.int64)
    if variant == "random":
        if rng is None:
            raise ValueError("the random decomposition variant needs an rng")
        counts = counts.copy()
        big = counts[:, 0]
        n_chunks = int(big.sum())
        # each full 2^max chunk becomes 2^(max-k) pieces of 2^k, k uniform: tokens even across buckets in expectation
        kk = rng.integers(min_log2, max_log2 + 1, size=n_chunks)
        chunk_doc = np.repeat(np.arange(n_docs), big)
        reps = np.left_shift(1, max_log2 - kk)
        # chunk pieces first (longest chunks keep document order), then the exact remainder
        log2_chunks = np.repeat(kk, reps)
        doc_chunks = np.repeat(chunk_doc, reps)
        counts[:, 0] = 0
        rem_doc = np.repeat(np.repeat(np.arange(n_docs), n_b), counts.ravel())
        rem_log2 = np.repeat(np.tile(ks, n_docs), counts.ravel())
        doc = np.concatenate([doc_chunks, rem_doc])
        log2 = np.concatenate([log2_chunks, rem_log2])
        order = np.argsort(doc, kind="stable")
        doc, log2 = doc[order], log2[order]
    elif variant == "binary":
        doc = np.repeat(np.repeat(np.arange(n_docs), n_b), counts.ravel())
        log2 = np.repeat(np.tile(ks, n_docs), counts.ravel())
    else:
        raise ValueError(f"unknown decomposition variant {variant!r}; use 'binary' or 'random'")
    plen = np.left_shift(1, log2)
    starts = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    # offset of a piece = its document's start + lengths of earlier pieces of the same document
    csum = np.cumsum(plen) - plen
    first = np.searchsorted(doc, np.arange(n_docs), side="left")
    base = np.zeros(n_docs, dtype=np.int64)
    has = first < doc.size
    base[has] = csum[first[has]]
    offset = starts[doc] + csum - base[doc] if doc.size else np.zeros(0, dtype=np.int64)
    used = np.bincount(doc, weights=plen, minlength=n_docs).astype(np.int64) if doc.size else np.zeros(n_docs,
                                                                                                          np.int64)
    return Pieces(doc=doc.astype(np.int64), offset=offset.astype(np.int64), log2=log2.astype(np.int8),
                  dropped=lengths - used)


def gather_buckets(tokens: np.ndarray, pieces: Pieces, min_log2: int, max_log2: int) -> dict[int, np.ndarray]:
    """Copy every piece out of ``tokens`` into one flat array per bucket (``{log2: array}``, pieces in document order;
    a bucket array of ``m`` pieces holds ``m * 2**log2`` tokens). Buckets without pieces map to empty arrays."""
    out: dict[int, np.ndarray] = {}
    for k in range(min_log2, max_log2 + 1):
        sel = pieces.log2 == k
        starts = pieces.offset[sel]
        n = 1 << k
        if starts.size == 0:
            out[k] = np.zeros(0, dtype=tokens.dtype)
        elif n >= 256:
            # long pieces: slice copies (memcpy speed) beat a fancy-index gather
            out[k] = np.concatenate([tokens[s:s + n] for s in starts.tolist()])
        else:
            out[k] = tokens[(starts[:, None] + np.arange(n, dtype=np.int64)[None, :]).ravel()]
    return out


def token_label_gather(tokens: np.ndarray, pieces: Pieces, min_log2: int, max_log2: int) -> dict[int, np.ndarray]:
    """The same result as :func:`gather_buckets` via a per-token bucket label and one boolean mask per bucket
    (used as an independent check in the tests)."""
    label = np.full(tokens.shape[0], -1, dtype=np.int8)
    for k in range(min_log2, max_log2 + 1):
        starts = pieces.offset[pieces.log2 == k]
        if starts.size:
            idx = (starts[:, None] + np.arange(1 << k)[None, :]).ravel()
            label[idx] = k
    return {k: tokens[label == k] for k in range(min_log2, max_log2 + 1)}
