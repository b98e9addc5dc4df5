"""Training-batch samplers: the VSL sampler of Dataset Decomposition (arXiv 2405.13226, Algorithm 1) and the
baselines it is compared with, all with a fixed number of token slots per optimizer step.

- :class:`VSLSampler`: each step draws ``b / 2^k`` sequences of length ``2^k`` from ONE bucket. Every bucket is
  split into ``c`` parts (one per cycle); inside a cycle a bucket is picked with probability proportional to its odds
  among buckets whose part is not yet empty, so with Grow-* odds short buckets empty first and the steps move to long
  ones (a length curriculum per cycle). The whole epoch plan comes from ``numpy_rng(seed, epoch)``, so every rank
  computes the same plan (same bucket each step, DDP stays in lock-step) and a run can resume mid-epoch from
  ``{"epoch", "step"}``. The last ``n_k mod (b/2^k)`` sequences of a bucket (a new random set each epoch) are left
  out so that every step holds exactly ``b`` tokens.
- :class:`ConcatChunkSampler`: concat-and-chunk at length ``n`` (C&C-n), optionally with document masking (DM).
- :class:`PackSampler`: documents cut into chunks of at most ``n``, best-fit-decreasing packed into sequences of
  ``n`` (Ding et al. 2024, "Fewer Truncations"), with document masking; the unused slots are padding (loss-masked).

Batches carry ``segments`` (a document id per position) when attention must not cross documents; the model turns them
into a block-diagonal causal mask and per-document positions.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from quartet.core.errors import QuartetError
from quartet.core.seed import numpy_rng
from quartet.lm.store import BucketArray, Stream

CURRICULA = ("uniform", "grow_linear", "grow_p2", "grow_p100")


def curriculum_odds(name: str, ks: list[int]) -> dict[int, float]:
    """Odds per bucket (``{log2: odds}``): ``uniform``, ``grow_linear`` (…,3,2,1), ``grow_p2`` (…,4,2,1),
    ``grow_p100`` (…,100,1) counted from the longest bucket, or ``custom:o1,o2,...`` from shortest to longest."""
    kmax = max(ks)
    if name == "uniform":
        return {k: 1.0 for k in ks}
    if name == "grow_linear":
        return {k: float(kmax - k + 1) for k in ks}
    if name == "grow_p2":
        return {k: 2.0 ** (kmax - k) for k in ks}
    if name == "grow_p100":
        return {k: 100.0 ** (kmax - k) for k in ks}
    if name.startswith("custom:"):
        vals = [float(v) for v in name[7:].split(",")]
        if len(vals) != len(ks) or min(vals) < 0 or max(vals) <= 0:
            raise QuartetError(f"curriculum {name!r}: need {len(ks)} non-negative odds (shortest bucket first), "
                               f"not all zero")
        return dict(zip(sorted(ks), vals, strict=True))
    raise QuartetError(f"unknown curriculum {name!r}; choose from {', '.join(CURRICULA)} or custom:o1,o2,...")


@dataclass
class Batch:
    """One rank's share of one optimizer step: ``tokens`` int64 ``[B, L]``; ``segments`` int64 ``[B, L]`` (document
    id per position, ``None`` = one causal sequence); ``loss_mask`` bool ``[B, L]`` over target positions (``None`` =
    all). ``real_tokens`` counts non-padding tokens."""

    tokens: np.ndarray
    segments: np.ndarray | None = None
    loss_mask: np.ndarray | None = None

    @property
    def seq_len(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def real_tokens(self) -> int:
        return int(self.tokens.size if self.loss_mask is None else self.loss_mask.sum())


class _Sampler:
    """Shared epoch/step bookkeeping: ``next()`` returns this rank's batch and advances; state is two integers."""

    def __init__(self, tokens_per_step: int, seed: int, world_size: int, rank: int):
        if world_size < 1 or not 0 <= rank < world_size:
            raise QuartetError(f"rank {rank} of world size {world_size} is invalid")
        self.b, self.seed, self.world, self.rank = int(tokens_per_step), int(seed), int(world_size), int(rank)
        self.epoch, self.step = 0, 0
        self._plan_epoch: int | None = None
        self._plan: Any = None

    def plan(self, epoch: int) -> Any:
        if self._plan_epoch != epoch:
            self._plan, self._plan_epoch = self._make_plan(epoch), epoch
        return self._plan

    def steps_per_epoch(self) -> int:
        return len(self.plan(self.epoch)[0])

    def next(self) -> Batch:
        plan = self.plan(self.epoch)
        if self.step >= len(plan[0]):
            self.epoch, self.step = self.epoch + 1, 0
            plan = self.plan(self.epoch)
            if len(plan[0]) == 0:
                raise QuartetError("the sampler has no full step of data; lower tokens_per_step or add data")
        batch = self._batch(plan, self.step)
        self.step += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "tokens_per_step": self.b}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["seed"]) != self.seed or int(state["tokens_per_step"]) != self.b:
            raise QuartetError(f"sampler state was saved with seed {state['seed']} and {state['tokens_per_step']} "
                               f"tokens per step, not {self.seed}/{self.b}; resume with the same settings")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def _rank_slice(self, n: int) -> slice:
        if n % self.world:
            raise QuartetError(f"{n} sequences per step do not split over {self.world} ranks; make tokens_per_step "
                               f"a multiple of world_size x the longest sequence length")
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def _make_plan(self, epoch: int) -> Any:
        raise NotImplementedError

    def _batch(self, plan: Any, step: int) -> Batch:
        raise NotImplementedError


class VSLSampler(_Sampler):
    """Algorithm 1 of the paper over ``buckets`` (``{log2: BucketArray}``); see the module docstring."""

    def __init__(self, buckets: dict[int, BucketArray], tokens_per_step: int, curriculum: str = "grow_p2",
                 cycles: int = 1, seed: int = 0, world_size: int = 1, rank: int = 0):
        super().__init__(tokens_per_step, seed, world_size, rank)
        self.buckets = {k: v for k, v in sorted(buckets.items()) if len(v)}
        if not self.buckets:
            raise QuartetError("every bucket is empty; prepare more data or lower --min-log2")
        kmax = max(self.buckets)
        if self.b % (1 << kmax):
            raise QuartetError(f"tokens_per_step {self.b} must be a multiple of the longest bucket 2^{kmax}")
        if cycles < 1:
            raise QuartetError(f"cycles must be >= 1, got {cycles}")
        self.cycles = int(cycles)
        self.odds = curriculum_odds(curriculum, sorted(buckets))
        self.batch_seqs = {k: self.b >> k for k in self.buckets}

    def _make_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        rng = numpy_rng(self.seed, epoch)
        ks = list(self.buckets)
        perms = {k: rng.permutation(len(self.buckets[k])) for k in ks}
        steps = np.array([len(self.buckets[k]) // self.batch_seqs[k] for k in ks], dtype=np.int64)
        parts = np.stack([np.diff(np.linspace(0, s, self.cycles + 1).round().astype(np.int64)) for s in steps])
        odds = np.array([self.odds[k] for k in ks], dtype=np.float64)
        order_k: list[int] = []
        order_j: list[int] = []
        used = np.zeros(len(ks), dtype=np.int64)
        for c in range(self.cycles):
            left = parts[:, c].copy()
            n = int(left.sum())
            u = rng.random(n)
            for t in range(n):
                w = np.where(left > 0, odds, 0.0)
                if w.sum() <= 0:  # only zero-odds buckets left: take them in order
                    w = (left > 0).astype(np.float64)
                i = int(np.searchsorted(np.cumsum(w), u[t] * w.sum(), side="right"))
                i = min(i, len(ks) - 1)
                while left[i] == 0:
                    i -= 1
                order_k.append(ks[i])
                order_j.append(int(used[i]))
                used[i] += 1
                left[i] -= 1
        return np.array(order_k, dtype=np.int64), np.array(order_j, dtype=np.int64), perms

    def _batch(self, plan: Any, step: int) -> Batch:
        ks, js, perms = plan
        k, j = int(ks[step]), int(js[step])
        n = self.batch_seqs[k]
        idx = perms[k][j * n:(j + 1) * n][self._rank_slice(n)]
        return Batch(tokens=self.buckets[k].get(idx))

    def bucket_steps(self) -> dict[int, int]:
        """Steps per epoch drawn from each bucket."""
        return {k: len(v) // self.batch_seqs[k] for k, v in self.buckets.items()}


class ConcatChunkSampler(_Sampler):
    """Concat-and-chunk at length ``n``: the document stream cut into ``n``-token sequences, shuffled per epoch;
    ``doc_mask`` adds per-document attention masks (C&C-n + DM)."""

    def __init__(self, stream: Stream, n: int, tokens_per_step: int, doc_mask: bool = False, seed: int = 0,
                 world_size: int = 1, rank: int = 0):
        super().__init__(tokens_per_step, seed, world_size, rank)
        if self.b % n:
            raise QuartetError(f"tokens_per_step {self.b} must be a multiple of the sequence length {n}")
        self.stream, self.n, self.doc_mask = stream, int(n), doc_mask
        self.seqs = self.b // n
        self.chunks = len(stream) // n

    def _make_plan(self, epoch: int) -> tuple[np.ndarray]:
        perm = numpy_rng(self.seed, epoch).permutation(self.chunks)
        steps = self.chunks // self.seqs
        return (perm[:steps * self.seqs].reshape(steps, self.seqs),)

    def _batch(self, plan: Any, step: int) -> Batch:
        chunks = plan[0][step][self._rank_slice(self.seqs)]
        toks = np.stack([self.stream.get(int(c) * self.n, (int(c) + 1) * self.n) for c in chunks])
        if not self.doc_mask:
            return Batch(tokens=toks)
        segs = np.stack([self.stream.doc_ids(int(c) * self.n, (int(c) + 1) * self.n) for c in chunks])
        return Batch(tokens=toks, segments=segs)


def best_fit_decreasing(sizes: np.ndarray, capacity: int) -> list[list[int]]:
    """Best-fit-decreasing bin packing: items (indices into ``sizes``, each <= ``capacity``) per bin. Each item goes
    to the fullest bin it still fits in; ``O(items log bins)`` plus list inserts."""
    order = np.argsort(-np.asarray(sizes), kind="stable")
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    bins: list[list[int]] = []
    for i in order.tolist():
        s = int(sizes[i])
        if s > capacity:
            raise ValueError(f"item of {s} exceeds bin capacity {capacity}")
        pos = bisect.bisect_left(free, (s, -1))
        if pos < len(free):
            rem, b = free.pop(pos)
            bins[b].append(i)
            rem -= s
        else:
            b, rem = len(bins), capacity - s
            bins.append([i])
        if rem > 0:
            bisect.insort(free, (rem, b))
    return bins


class PackSampler(_Sampler):
    """Pack-n + DM: documents cut into chunks of at most ``n`` tokens, packed best-fit-decreasing into sequences of
    ``n``, document-masked; free slots are padding (EOS tokens, excluded from the loss, their own segment)."""

    def __init__(self, stream: Stream, n: int, tokens_per_step: int, pad_id: int, seed: int = 0,
                 world_size: int = 1, rank: int = 0):
        super().__init__(tokens_per_step, seed, world_size, rank)
        if self.b % n:
            raise QuartetError(f"tokens_per_step {self.b} must be a multiple of the sequence length {n}")
        self.stream, self.n, self.pad_id = stream, int(n), int(pad_id)
        self.seqs = self.b // n
        lens = stream.doc_lens
        full = lens // n
        starts, sizes = [], []
        for d in np.nonzero(lens)[0].tolist():
            s0 = int(stream.doc_starts[d])
            for c in range(int(full[d])):
                starts.append(s0 + c * n)
                sizes.append(n)
            if lens[d] % n:
                starts.append(s0 + int(full[d]) * n)
                sizes.append(int(lens[d] % n))
        self.item_start = np.array(starts, dtype=np.int64)
        self.item_size = np.array(sizes, dtype=np.int64)
        self.bins = best_fit_decreasing(self.item_size, n)

    def padding_fraction(self) -> float:
        return 1.0 - float(self.item_size.sum()) / (len(self.bins) * self.n) if self.bins else 0.0

    def _make_plan(self, epoch: int) -> tuple[np.ndarray]:
        perm = numpy_rng(self.seed, epoch).permutation(len(self.bins))
        steps = len(self.bins) // self.seqs
        return (perm[:steps * self.seqs].reshape(steps, self.seqs),)

    def _batch(self, plan: Any, step: int) -> Batch:
        bins = plan[0][step][self._rank_slice(self.seqs)]
        toks = np.full((len(bins), self.n), self.pad_id, dtype=np.int64)
        segs = np.empty((len(bins), self.n), dtype=np.int64)
        mask = np.zeros((len(bins), self.n), dtype=bool)
        for r, b in enumerate(bins.tolist()):
            pos = 0
            for seg, item in enumerate(self.bins[b]):
                s, m = int(self.item_start[item]), int(self.item_size[item])
                toks[r, pos:pos + m] = self.stream.get(s, s + m)
                segs[r, pos:pos + m] = seg
                mask[r, pos:pos + m] = True
                pos += m
            segs[r, pos:] = len(self.bins[b])  # padding: its own segment
        return Batch(tokens=toks, segments=segs, loss_mask=mask)
