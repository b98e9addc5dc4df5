from __future__ import annotations

import io
import tarfile

import pytest

from quartet.core.errors import DataCorruptError, SourceMissingError
from quartet.data import gpt2
from quartet.data.bpe import load_bpe, save_bpe, train_bpe


def test_gpt2_ids(installed) -> None:
    installed("gpt2")
    enc = gpt2.gpt2_encoding()
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.n_vocab == 50257
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert enc.decode(enc.encode("naïve café 東京")) == "naïve café 東京"


def test_gpt2_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(gpt2, "VOCAB_PATH", tmp_path / "gpt2.tiktoken")
    with pytest.raises(SourceMissingError, match="openai-whisper"):
        gpt2.gpt2_encoding()


def test_gpt2_extract_reads_only_the_member(tmp_path) -> None:
    sdist = tmp_path / "openai_whisper-20250625.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in [("x/../../evil", b"no"), ("openai_whisper-20250625/whisper/assets/gpt2.tiktoken", b"ok")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert gpt2.extract_vocab(sdist) == b"ok"
    assert not (tmp_path.parent / "evil").exists()
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(DataCorruptError):
        gpt2.extract_vocab(empty)


def test_bpe_roundtrip(tmp_path) -> None:
    corpus = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs", "ünïcödé text ✓"] * 20
    tok = train_bpe(corpus, vocab_size=300)
    assert 257 < tok.get_vocab_size() <= 300
    assert tok.token_to_id("<|endoftext|>") == 0
    for text in ["the cat sat", "unseen words ✓ 東京"]:
        assert tok.decode(tok.encode(text).ids) == text
    path = save_bpe(tok, tmp_path / "tok.json")
    again = load_bpe(path)
    assert again.encode("the dog sat on the mat").ids == tok.encode("the dog sat on the mat").ids
    assert len(tok.encode("the cat sat on the mat").ids) < len("the cat sat on the mat")
