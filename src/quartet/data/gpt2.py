"""The GPT-2 byte-level BPE tokenizer (50,257 tokens), built offline.

``tiktoken.get_encoding("gpt2")`` downloads its vocabulary at run time, which fails without network. The same ranks
ship inside the ``openai-whisper==20250625`` source distribution on PyPI (``whisper/assets/gpt2.tiktoken``, 50,256
merges). :func:`install` fetches that sdist with ``pip download --no-deps --no-binary :all:`` into the cache and reads
only that one member (no other file of the archive is extracted); :func:`gpt2_encoding` then builds a
``tiktoken.Encoding`` with the GPT-2 split regex and ``<|endoftext|>`` = 50256. "Hello world" -> [15496, 995].
Licence: MIT (OpenAI GPT-2 / Whisper).
"""

from __future__ import annotations

import functools
import sys
import tarfile
from pathlib import Path

import tiktoken

from quartet.core.errors import DataCorruptError, SourceMissingError
from quartet.core.io import atomic_write_bytes, sha256_bytes
from quartet.core.paths import cache_dir
from quartet.data.common import run_command

WHISPER = "openai-whisper==20250625"
SDIST_GLOB = "openai[-_]whisper-20250625.tar.gz"
MEMBER = "whisper/assets/gpt2.tiktoken"
VOCAB_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
N_VOCAB = 50_257
ENDOFTEXT = "<|endoftext|>"
LICENCE = "MIT (OpenAI GPT-2 vocabulary, distributed in openai-whisper)"
INSTALL_HINT = "run `quartet data install gpt2` (pip downloads the openai-whisper==20250625 sdist into the cache)"
VOCAB_PATH: Path | None = None
"""Override for the ``gpt2.tiktoken`` file; ``None`` uses ``<cache>/data/gpt2/gpt2.tiktoken``."""


def vocab_path() -> Path:
    """Where the extracted ``gpt2.tiktoken`` lives."""
    return VOCAB_PATH if VOCAB_PATH is not None else cache_dir("data", "gpt2") / "gpt2.tiktoken"


def is_installed() -> bool:
    """Whether the GPT-2 ranks file is in the cache."""
    return vocab_path().is_file()


def count() -> int:
    """Vocabulary size (50,257)."""
    return N_VOCAB


def extract_vocab(sdist: Path) -> bytes:
    """The bytes of ``<root>/whisper/assets/gpt2.tiktoken`` read directly from the sdist (nothing is extracted)."""
    with tarfile.open(sdist, "r:gz") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) == 2 and parts[1] == MEMBER and m.isfile():
                f = tar.extractfile(m)
                if f is None:
                    break
                return f.read()
    raise DataCorruptError(f"{sdist} has no regular file {MEMBER}")


def install() -> None:
    """Download the whisper sdist into the cache and save its ``gpt2.tiktoken`` (checked against its sha256)."""
    if is_installed():
        return
    folder = cache_dir("data", "gpt2")
    sdists = sorted(folder.glob(SDIST_GLOB))
    if not sdists:
        run_command([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest",
                     str(folder), WHISPER], WHISPER)
        sdists = sorted(folder.glob(SDIST_GLOB))
    if not sdists:
        raise SourceMissingError(f"pip download {WHISPER} left no sdist in {folder}")
    data = extract_vocab(sdists[0])
    if sha256_bytes(data) != VOCAB_SHA256:
        raise DataCorruptError(f"{sdists[0]}:{MEMBER} has sha256 {sha256_bytes(data)}, expected {VOCAB_SHA256}")
    atomic_write_bytes(vocab_path(), data)


@functools.lru_cache(maxsize=2)
def _encoding(path: str) -> tiktoken.Encoding:
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext.openai_public import r50k_pat_str

    ranks = load_tiktoken_bpe(path, expected_hash=VOCAB_SHA256)
    return tiktoken.Encoding(name="gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: N_VOCAB - 1}, explicit_n_vocab=N_VOCAB)


def gpt2_encoding() -> tiktoken.Encoding:
    """The GPT-2 ``tiktoken.Encoding`` (cached per process); raises :class:`SourceMissingError` when not installed."""
    path = vocab_path()
    if not path.is_file():
        raise SourceMissingError(f"{path} not found: {INSTALL_HINT}")
    return _encoding(str(path))
