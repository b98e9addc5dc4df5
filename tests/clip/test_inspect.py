"""``quartet clip inspect``: counts, dims, bytes per sample; every kind of corruption is named and exits non-zero."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from reinforce_fixtures import make_shards, png_bytes, rewrite_tar, small_cfg, tiny_captioner, tiny_ensemble

from quartet.clip.cli_reinforce import inspect_main
from quartet.clip.inspect_shards import inspect_reinforced
from quartet.clip.reinforce import reinforce
from quartet.core.errors import DataCorruptError


@pytest.fixture(scope="module")
def reinforced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insp")
    inp = make_shards(root / "in", n=4, per_shard=2)
    reinforce(inp, root / "out", tiny_ensemble(), tiny_captioner(), small_cfg(dtype="fp16"))
    return root / "out"


@pytest.fixture
def copy(reinforced: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(reinforced, tmp_path / "out"))


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_valid_dataset_reports_counts_dims_and_bytes(reinforced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep = inspect_reinforced(reinforced)
    assert rep.ok and rep.num_samples == 4 and rep.num_shards == 2 and rep.dims == [16, 24]
    assert rep.n_aug == 2 and rep.n_syn == 2 and rep.emb_dtype == "fp16"
    assert 0 < rep.emb_bytes / 4 < rep.total_bytes / 4
    assert inspect_main([str(reinforced)]) == 0
    out = capsys.readouterr().out
    assert "4 samples in 2 shards" in out and "bytes/sample" in out and "OK" in out
    assert inspect_reinforced(reinforced.parent / "in").ok  # plain image-text shards too


def _break(root: Path, case: str) -> str:
    shard = root / "shard-00001.tar"
    key = "000000003"
    if case == "image_bytes":
        rewrite_tar(shard, {f"{key}.png": png_bytes((5, 5, 5), (40, 36))})
        return "sha256"
    if case == "nan":
        arrays = {"image_emb": np.full((2, 40), np.nan, np.float16), "text_emb": np.zeros((1, 40), np.float16),
                  "syn_text_emb": np.zeros((2, 40), np.float16)}
        rewrite_tar(shard, {f"{key}.npz": _npz(arrays)})
        return "non-finite"
    if case == "shape":
        arrays = {"image_emb": np.ones((1, 40), np.float16), "text_emb": np.ones((1, 40), np.float16),
                  "syn_text_emb": np.ones((2, 40), np.float16)}
        rewrite_tar(shard, {f"{key}.npz": _npz(arrays)})
        return "shape"
    if case == "not_unit_norm":
        arrays = {"image_emb": np.ones((2, 40), np.float16), "text_emb": np.ones((1, 40), np.float16),
                  "syn_text_emb": np.ones((2, 40), np.float16)}
        rewrite_tar(shard, {f"{key}.npz": _npz(arrays)})
        return "unit-norm"
    if case == "missing_member":
        rewrite_tar(shard, {f"{key}.paug.json": None})
        return "missing member"
    if case == "bad_record":
        rewrite_tar(shard, {f"{key}.paug.json": b'{"param_aug": [[[0,0,500,500],[]],[[0,0,4,4],[]]]}'})
        return "outside"
    if case == "truncated":
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
        return "truncated"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["image_bytes", "nan", "shape", "not_unit_norm", "missing_member", "bad_record",
                                  "truncated"])
def test_corruption_is_named_and_exits_non_zero(copy: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    match = _break(copy, case)
    rep = inspect_reinforced(copy)
    assert not rep.ok
    assert any(match in p for p in rep.problems), rep.problems
    assert any("shard-00001.tar" in p for p in rep.problems)
    if case not in ("truncated",):
        assert any("000000003" in p for p in rep.problems), rep.problems
    assert inspect_main([str(copy)]) == 1
    assert "shard-00001.tar" in capsys.readouterr().out
    with pytest.raises(DataCorruptError, match="shard-00001.tar"):
        inspect_reinforced(copy, strict=True)


def test_unfinished_run_is_reported(copy: Path) -> None:
    (copy / "manifest.jsonl").unlink()
    from quartet.core.errors import QuartetError

    with pytest.raises(QuartetError, match="not finished"):
        inspect_reinforced(copy)
