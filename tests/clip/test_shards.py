"""Image-text WebDataset shards: writing from every source kind, reproducibility, bad input, corrupt tars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from reinforce_fixtures import png_bytes, random_pairs, rewrite_tar

from quartet.clip.shards import iter_shard, list_shards, read_manifest, write_image_text_shards
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import sha256_bytes
from quartet.data.types import ImageTextDataset


def test_iterable_source_round_trips_with_manifest(tmp_path: Path) -> None:
    pairs = random_pairs(5)
    m = write_image_text_shards(pairs, tmp_path / "s", samples_per_shard=2)
    assert [s["count"] for s in m["shards"]] == [2, 2, 1] and m["num_samples"] == 5
    assert read_manifest(tmp_path / "s")["num_shards"] == 3
    got = [s for p in list_shards(tmp_path / "s") for s in iter_shard(p)]
    assert [(s.image_bytes, s.caption, s.uid) for s in got] == pairs
    assert all(s.sha256 == sha256_bytes(s.image_bytes) and s.image_ext == "png" for s in got)
    assert len({s.key for s in got}) == 5


def test_shards_are_reproducible_and_webdataset_readable(tmp_path: Path) -> None:
    import webdataset as wds

    write_image_text_shards(random_pairs(3), tmp_path / "a", samples_per_shard=3)
    write_image_text_shards(random_pairs(3), tmp_path / "b", samples_per_shard=3)
    a, b = (tmp_path / "a" / "shard-00000.tar").read_bytes(), (tmp_path / "b" / "shard-00000.tar").read_bytes()
    assert a == b
    samples = list(wds.WebDataset(str(tmp_path / "a" / "shard-00000.tar"), shardshuffle=False))
    assert len(samples) == 3 and {"png", "txt", "json"} <= set(samples[0])
    assert json.loads(samples[0]["json"])["uid"] == "uid-0-0"


def test_image_text_dataset_folder_and_csv_sources(tmp_path: Path) -> None:
    ds = ImageTextDataset(images=np.zeros((3, 8, 8, 3), np.uint8), captions=["a", "b", "c"],
                          labels=np.zeros(3, np.int64), class_names=["x"], meta={"name": "toy"})
    m = write_image_text_shards(ds, tmp_path / "ds", samples_per_shard=10)
    assert m["num_samples"] == 3
    assert [s.uid for s in iter_shard(tmp_path / "ds" / "shard-00000.tar")] == ["toy-0000000", "toy-0000001",
                                                                               "toy-0000002"]
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "cat.png").write_bytes(png_bytes((255, 0, 0)))
    (folder / "sub" / "cat.txt").write_text("a red cat\n")
    write_image_text_shards(folder, tmp_path / "f")
    (s,) = list(iter_shard(tmp_path / "f" / "shard-00000.tar"))
    assert (s.caption, s.uid) == ("a red cat", "sub/cat")
    (tmp_path / "list.csv").write_text("image,caption\nfolder/sub/cat.png,red\n")
    write_image_text_shards(tmp_path / "list.csv", tmp_path / "c")
    (s,) = list(iter_shard(tmp_path / "c" / "shard-00000.tar"))
    assert s.caption == "red" and s.image_bytes == png_bytes((255, 0, 0))


@pytest.mark.parametrize(("bad", "match"), [
    ((b"not an image", "cap", "u1"), "do not decode"),
    ((png_bytes((1, 2, 3)), "   ", "u1"), "empty caption"),
    ((png_bytes((1, 2, 3)), "x" * 3000, "u1"), "max_caption_chars"),
    ((png_bytes((1, 2, 3)), "dup", "uid-0-0"), "duplicate uid"),
])
def test_bad_samples_raise_or_are_counted(tmp_path: Path, bad: tuple[bytes, str, str], match: str) -> None:
    pairs = [*random_pairs(2), bad]
    with pytest.raises(DataCorruptError, match=match):
        write_image_text_shards(pairs, tmp_path / "r")
    m = write_image_text_shards(pairs, tmp_path / "s", on_error="skip")
    assert m["num_samples"] == 2 and sum(m["skipped"].values()) == 1


def test_corrupt_and_truncated_tars_name_the_shard(tmp_path: Path) -> None:
    write_image_text_shards(random_pairs(4), tmp_path / "s", samples_per_shard=4)
    shard = tmp_path / "s" / "shard-00000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(DataCorruptError, match="shard-00000.tar"):
        list(iter_shard(shard))
    shard.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataCorruptError, match="shard-00000.tar"):
        list(iter_shard(shard))


def test_image_bytes_that_do_not_match_the_stored_sha_are_refused(tmp_path: Path) -> None:
    write_image_text_shards(random_pairs(2), tmp_path / "s")
    shard = tmp_path / "s" / "shard-00000.tar"
    rewrite_tar(shard, {"000000001.png": png_bytes((9, 9, 9))})
    with pytest.raises(DataCorruptError, match="000000001.*sha256"):
        list(iter_shard(shard))


def test_writer_refuses_an_existing_folder_and_empty_sources(tmp_path: Path) -> None:
    write_image_text_shards(random_pairs(1), tmp_path / "s")
    with pytest.raises(QuartetError, match="already holds"):
        write_image_text_shards(random_pairs(1), tmp_path / "s")
    with pytest.raises(QuartetError, match="no usable"):
        write_image_text_shards([], tmp_path / "e")


def test_shards_verb_writes_a_folder_that_inspect_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quartet.clip.cli_reinforce import inspect_main, shards_main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        (folder / f"{i}.png").write_bytes(png_bytes(colour))
        (folder / f"{i}.txt").write_text(f"colour {i}")
    assert shards_main(["--source", str(folder), "--out", str(tmp_path / "s"), "--samples-per-shard", "2"]) == 0
    assert "wrote 3 samples in 2 shards" in capsys.readouterr().out
    assert inspect_main([str(tmp_path / "s")]) == 0
    assert "image-text: 3 samples in 2 shards" in capsys.readouterr().out
