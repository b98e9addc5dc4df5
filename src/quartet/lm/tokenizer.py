"""Tokenizers for LM data: GPT-2 BPE (built offline from ``quartet.data``) or a byte-level BPE trained on the corpus
with Hugging Face ``tokenizers``, or a saved ``tokenizer.json``.

Specs: ``gpt2`` | ``bpe:<vocab>`` (train on the training documents; saved beside the data as ``tokenizer.json``) |
``file:<path/to/tokenizer.json>``. Every tokenizer has an end-of-text id appended to each document. A small trained
vocabulary (e.g. 8,192) keeps the output layer of a CPU-sized model from dominating its cost (GPT-2's 50,257-way
softmax is ~12 MFLOP per token at d=128, more than four transformer layers at length 1024).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from quartet.core.errors import QuartetError, SourceMissingError

EOT = "<|endoftext|>"


class Tokenizer(Protocol):
    spec: str
    vocab_size: int
    eos_id: int

    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...

    def decode(self, ids: list[int]) -> str: ...


class HFTokenizer:
    """A Hugging Face ``tokenizers`` tokenizer from a ``tokenizer.json`` file."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer as _T

        p = Path(path)
        if not p.is_file():
            raise QuartetError(f"tokenizer file {p} not found; prepare the data again or pass --tokenizer gpt2")
        self._tok = _T.from_file(str(p))
        self.spec = f"file:{p.resolve()}"
        self.vocab_size = int(self._tok.get_vocab_size())
        eos = self._tok.token_to_id(EOT)
        if eos is None:
            raise QuartetError(f"tokenizer {p} has no {EOT} token; train it with that special token")
        self.eos_id = int(eos)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids))


class TiktokenTokenizer:
    """GPT-2 BPE through ``tiktoken`` (an ``Encoding`` built offline)."""

    def __init__(self, enc: Any):
        self._enc = enc
        self.spec = "gpt2"
        self.vocab_size = int(enc.n_vocab)
        self.eos_id = int(enc.eot_token)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(texts, num_threads=1)

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode(list(ids))


def _gpt2() -> Any:
    """The offline GPT-2 ``tiktoken`` encoding built by ``quartet.data.gpt2``."""
    try:
        from quartet.data.gpt2 import gpt2_encoding
    except ModuleNotFoundError as e:
        raise SourceMissingError("the GPT-2 BPE tokenizer needs quartet.data.gpt2; use --tokenizer bpe:8192") from e
    return gpt2_encoding()


def train_bpe(texts: list[str], vocab_size: int, path: str | Path) -> HFTokenizer:
    """Train a byte-level BPE on ``texts`` (``quartet.data.bpe``, Hugging Face ``tokenizers``) and save it."""
    from quartet.data.bpe import save_bpe
    from quartet.data.bpe import train_bpe as _train

    if vocab_size < 300:
        raise QuartetError(f"BPE vocabulary {vocab_size} is too small; use at least 300 (256 bytes + merges)")
    save_bpe(_train(texts, vocab_size=vocab_size), path)
    return HFTokenizer(path)


def load_tokenizer(spec: str) -> Tokenizer:
    """A tokenizer from a spec (``gpt2`` or ``file:<tokenizer.json>``); ``bpe:N`` must be trained first."""
    if spec == "gpt2":
        return TiktokenTokenizer(_gpt2())
    if spec.startswith("file:"):
        return HFTokenizer(spec[5:])
    raise QuartetError(f"tokenizer spec {spec!r} not understood; use gpt2, bpe:<vocab> or file:<tokenizer.json>")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab <= 65,536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def encode_documents(tok: Tokenizer, texts: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Token stream (each document followed by EOS) and per-document lengths (EOS included)."""
    ids = tok.encode_batch(texts)
    lens = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
    flat = np.empty(int(lens.sum()), dtype=dtype)
    pos = 0
    for x in ids:
        n = len(x)
        flat[pos:pos + n] = x
        flat[pos + n] = tok.eos_id
        pos += n + 1
    if flat.size and dtype == np.uint16 and max(tok.vocab_size, 0) > 1 << 16:
        raise QuartetError("vocabulary does not fit uint16")
    return flat, lens
