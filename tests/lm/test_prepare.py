import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.lm.corpus import load_documents
from quartet.lm.prepare import PrepareConfig, prepare
from quartet.lm.store import PreparedData
from quartet.lm.tokenizer import token_dtype


def test_prepared_data_matches_manifest_and_documents(prepared: Path) -> None:
    d = PreparedData(prepared, verify=True)
    m = d.manifest
    assert d.dtype == np.uint16 and m["tokenizer"]["vocab_size"] <= 320
    total = sum(b["tokens"] for b in m["buckets"].values())
    assert total + m["dropped_tokens"] == m["stream"]["tokens"]  # token accounting
    assert m["stats"]["dd_tokens"] == total
    # every bucket sequence is a contiguous run inside one training document
    text = d.stream.get(0, len(d.stream))
    for k, arr in d.buckets.items():
        seqs = arr.get(np.arange(len(arr)))
        assert seqs.shape[1] == 1 << k
        for s in seqs[:20]:
            hits = np.nonzero(text[: len(text) - len(s) + 1] == s[0])[0]
            assert any(np.array_equal(text[h:h + len(s)], s) for h in hits)
    # documents end with EOS
    assert int(d.stream.document(0)[-1]) == d.eos_id
    assert m["val"]["documents"] > 0


def test_resume_skips_done_parts_and_refuses_other_settings(prepared: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(prepared, out)
    cfg = PrepareConfig(source=str(corpus), out=out, tokenizer="bpe:320", min_log2=3, max_log2=6, engine="local",
                        part_docs=100, stats_len=64, val_fraction=0.1)
    shutil.rmtree(out / "parts" / "p00001")  # an unfinished part
    m = prepare(cfg)
    assert m["run"]["parts_done_now"] == 1
    assert m["buckets"] == json.loads((prepared / "manifest.json").read_text())["buckets"]
    with pytest.raises(QuartetError, match="different settings"):
        prepare(PrepareConfig(**{**cfg.__dict__, "max_log2": 7}))


def test_truncated_shard_and_manifest_mismatch_are_errors(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    shutil.copytree(prepared, out)
    shard = out / "parts" / "p00000" / "bucket_04.npy"
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(DataCorruptError, match="bucket_04"):
        PreparedData(out)
    shutil.copy(prepared / "parts" / "p00000" / "bucket_04.npy", shard)
    m = json.loads((out / "manifest.json").read_text())
    m["buckets"]["5"]["sequences"] += 1
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataCorruptError, match="manifest"):
        PreparedData(out)


def test_bad_documents_are_counted(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(b'{"text": "ok doc"}\n{"text": "  \\n "}\n{"title": "no text"}\n' +
                  b'{"text": "bad \xff byte"}\n')
    docs = load_documents(str(f))
    assert docs.counts() == {"documents": 2, "skipped_empty": 1, "repaired_utf8": 1, "skipped_no_text": 1}
    assert "\ufffd" in docs.texts[1]
    (tmp_path / "y.jsonl").write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(QuartetError, match="y.jsonl:2"):
        load_documents(str(tmp_path / "y.jsonl"))
    with pytest.raises(QuartetError, match="not found"):
        load_documents(str(tmp_path / "missing.jsonl"))


def test_short_documents_are_dropped_and_counted(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join(json.dumps({"id": str(i), "text": "word " * (i + 1)}) for i in range(40)))
    m = prepare(PrepareConfig(source=str(f), out=tmp_path / "o", tokenizer="bpe:300", min_log2=4, max_log2=5,
                              engine="local", val_fraction=0.0, stats_len=32))
    assert m["dropped_documents"] > 0 and m["dropped_tokens"] > 0
    assert m["stats"]["dd_tokens"] + m["dropped_tokens"] == m["stream"]["tokens"]


def test_vocab_size_picks_dtype() -> None:
    assert token_dtype(50257) == np.uint16
    assert token_dtype(65536) == np.uint16
    assert token_dtype(100_277) == np.uint32


@pytest.mark.slow
def test_ray_engine_writes_the_same_buckets(prepared: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    out.mkdir()
    shutil.copy(prepared / "tokenizer.json", out / "tokenizer.json")
    m = prepare(PrepareConfig(source=str(corpus), out=out, tokenizer="bpe:320", min_log2=3, max_log2=6,
                              engine="ray", workers=2, part_docs=100, stats_len=64, val_fraction=0.1))
    ref = json.loads((prepared / "manifest.json").read_text())
    assert [b["sequences"] for b in m["buckets"].values()] == [b["sequences"] for b in ref["buckets"].values()]
    assert [s["sha256"] for b in m["buckets"].values() for s in b["shards"]] == \
        [s["sha256"] for b in ref["buckets"].values() for s in b["shards"]]
