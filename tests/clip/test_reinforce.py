"""Dataset reinforcement end to end: replay equals what the teachers saw, determinism, exactly-once resume after a
crash or a kill, storage dtypes, and every kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from reinforce_fixtures import (
    CROP,
    make_shards,
    png_bytes,
    rewrite_tar,
    small_cfg,
    tiny_captioner,
    tiny_ensemble,
    tiny_teacher,
)

from quartet.clip.augment import replay
from quartet.clip.reinforce import reinforce
from quartet.clip.reinforced_data import iter_reinforced, load_reinforced, load_reinforced_metadata, read_manifest
from quartet.clip.shards import iter_shard, list_shards
from quartet.clip.teachers import TeacherEnsemble, views_to_uint8
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import sha256_bytes

REPO = Path(__file__).resolve().parents[2]


class Recording:
    """A teacher wrapper that keeps every batch of views it is shown (as uint8 [B, 3, H, W])."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seen = inner, []
        self.name, self.embed_dim, self.image_size = inner.name, inner.embed_dim, inner.image_size
        self.logit_scale = inner.logit_scale

    def encode_images(self, views: Any) -> torch.Tensor:
        self.seen.append(views_to_uint8(views).clone())
        return self.inner.encode_images(views)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.inner.encode_texts(texts)


class NaNOn:
    """A teacher that returns NaN image embeddings for views whose mean pixel value is below ``dark``."""

    def __init__(self, inner: Any, dark: float) -> None:
        self.inner, self.dark = inner, dark
        self.name, self.embed_dim, self.image_size = inner.name, inner.embed_dim, inner.image_size
        self.logit_scale = inner.logit_scale

    def encode_images(self, views: Any) -> torch.Tensor:
        z = self.inner.encode_images(views)
        px = views_to_uint8(views).float().mean(dim=(1, 2, 3))
        z[px < self.dark] = float("nan")
        return z

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.inner.encode_texts(texts)


def _shard_hashes(out: Path) -> dict[str, str]:
    return {r["name"]: r["sha256"] for r in read_manifest(out)}


def test_stored_views_replay_bit_exactly_and_embeddings_match_the_teachers(tmp_path: Path) -> None:
    inp = make_shards(tmp_path / "in", n=5, per_shard=2)
    ens = tiny_ensemble()
    rec = Recording(ens.teachers[0])
    recording = TeacherEnsemble([rec, ens.teachers[1]])
    cap = tiny_captioner()
    summary = reinforce(inp, tmp_path / "out", recording, cap, small_cfg(n_aug=3, n_syn=2))
    assert summary["num_samples"] == 5 and summary["num_shards"] == 3

    seen = torch.cat(rec.seen)  # every view teacher 0 saw, in processing order
    samples = list(iter_reinforced(tmp_path / "out"))
    assert [s.uid for s in samples] == [s.uid for p in list_shards(inp) for s in iter_shard(p)]
    k = 0
    for s in samples:
        assert s.image_emb.shape == (3, 40) and s.text_emb.shape == (1, 40) and s.syn_text_emb.shape == (2, 40)
        assert len(s.syn_texts) == 2 and len(s.param_aug) == 3 and s.sha256 == sha256_bytes(s.image_bytes)
        views = [replay(s.image_bytes, r, CROP, expected_sha256=s.sha256) for r in s.param_aug]
        replayed = views_to_uint8(views)
        assert torch.equal(replayed, seen[k:k + 3])  # bit-exact: what the teacher saw
        k += 3
        np.testing.assert_allclose(s.image_emb, ens.encode_images(views).numpy(), atol=1e-5)
        np.testing.assert_allclose(s.text_emb, ens.encode_texts([s.caption]).numpy(), atol=1e-5)
        np.testing.assert_allclose(s.syn_text_emb, ens.encode_texts(s.syn_texts).numpy(), atol=1e-5)
    assert k == len(seen)

    meta = load_reinforced_metadata(tmp_path / "out")
    assert meta["teachers"]["names"] == ["ta", "tb"] and meta["teachers"]["dims"] == [16, 24]
    assert meta["teachers"]["scales"] == pytest.approx([1 / 0.07, 1 / 0.07], rel=1e-4)
    assert meta["aug"]["crop_size"] == CROP and meta["n_aug"] == 3 and meta["n_syn"] == 2
    assert meta["captioner"]["name"] == "coca"
    arrays = load_reinforced(tmp_path / "out")
    assert arrays.image_emb.shape == (5, 3, 40) and arrays.syn_text_emb.shape == (5, 2, 40)
    # rank split: disjoint, complete, sizes differ by at most one
    parts = [[s.uid for s in iter_reinforced(tmp_path / "out", rank=r, world_size=2)] for r in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(arrays.uids) and abs(len(parts[0]) - len(parts[1])) <= 1
    shuffled = [s.uid for s in iter_reinforced(tmp_path / "out", shuffle=True, seed=1, shuffle_buffer=2)]
    assert sorted(shuffled) == sorted(arrays.uids)


def test_runs_are_deterministic_and_a_crashed_run_resumes_exactly_once(tmp_path: Path) -> None:
    inp = make_shards(tmp_path / "in", n=6, per_shard=2)
    ens, cap = tiny_ensemble(), tiny_captioner()
    full = reinforce(inp, tmp_path / "a", ens, cap, small_cfg())
    assert full["num_samples"] == 6

    class Crash(Exception):
        pass

    def crash_after_first(stats: dict[str, Any]) -> None:
        raise Crash(stats["name"])

    with pytest.raises(Crash):
        reinforce(inp, tmp_path / "b", ens, cap, small_cfg(), _after_shard=crash_after_first)
    assert not (tmp_path / "b" / "manifest.jsonl").exists()
    again = reinforce(inp, tmp_path / "b", ens, cap, small_cfg())
    assert again["resumed_shards"] == 1 and again["new_samples"] == 4 and again["num_samples"] == 6
    assert _shard_hashes(tmp_path / "b") == _shard_hashes(tmp_path / "a")  # same bytes as an uninterrupted run
    uids = [s.uid for s in iter_reinforced(tmp_path / "b")]
    assert len(uids) == len(set(uids)) == 6
    # a finished job re-run is a no-op; an input shard that changed since is redone
    assert reinforce(inp, tmp_path / "b", ens, cap, small_cfg())["new_samples"] == 0
    st = (inp / "shard-00001.tar").stat()
    os.utime(inp / "shard-00001.tar", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    redo = reinforce(inp, tmp_path / "b", ens, cap, small_cfg())
    assert redo["new_samples"] == 2 and _shard_hashes(tmp_path / "b") == _shard_hashes(tmp_path / "a")


def test_resume_with_other_teachers_is_refused(tmp_path: Path) -> None:
    inp = make_shards(tmp_path / "in", n=2, per_shard=2)
    reinforce(inp, tmp_path / "out", tiny_ensemble(), None, small_cfg(n_syn=0))
    other = TeacherEnsemble([tiny_teacher("ta", 8, 32, 0), tiny_teacher("tb", 24, 24, 1)])
    with pytest.raises(QuartetError, match="dims"):
        reinforce(inp, tmp_path / "out", other, None, small_cfg(n_syn=0))
    with pytest.raises(QuartetError, match="n_aug"):
        reinforce(inp, tmp_path / "out", tiny_ensemble(), None, small_cfg(n_syn=0, n_aug=3))
    out = reinforce(inp, tmp_path / "out", other, None, small_cfg(n_syn=0, overwrite=True))
    assert load_reinforced_metadata(tmp_path / "out")["teachers"]["dims"] == [8, 24] and out["num_samples"] == 2


def test_storage_dtypes_round_trip_and_shrink(tmp_path: Path) -> None:
    inp = make_shards(tmp_path / "in", n=2, per_shard=2)
    ens = tiny_ensemble()
    got = {}
    for dtype in ("fp32", "fp16", "bf16"):
        reinforce(inp, tmp_path / dtype, ens, None, small_cfg(n_syn=0, dtype=dtype))
        got[dtype] = load_reinforced(tmp_path / dtype)
        assert got[dtype].image_emb.dtype == np.float32
    ref = got["fp32"].image_emb
    assert np.abs(got["fp16"].image_emb - ref).max() < 1e-3
    assert np.abs(got["bf16"].image_emb - ref).max() < 1e-2
    sizes = {d: (tmp_path / d / "shard-00000.tar").stat().st_size for d in got}
    assert sizes["fp16"] <= sizes["fp32"] and sizes["bf16"] == sizes["fp16"]


def _edit_sample(shard: Path, key: str, image: bytes | None = None, caption: str | None = None) -> None:
    edit: dict[str, bytes | None] = {}
    if image is not None:
        edit[f"{key}.png"] = image
        edit[f"{key}.json"] = json.dumps({"uid": f"edited-{key}", "sha256": sha256_bytes(image)}).encode()
    if caption is not None:
        edit[f"{key}.txt"] = caption.encode()
    rewrite_tar(shard, edit)


@pytest.mark.parametrize(("case", "match"), [
    ("undecodable", "cannot decode"),
    ("empty_caption", "empty caption"),
    ("long_caption", "over-long caption"),
    ("sha_mismatch", "sha256"),
    ("truncated_tar", "corrupt or truncated"),
    ("nan_teacher", "non-finite"),
])
def test_bad_input_is_a_clear_error_or_a_counted_skip(tmp_path: Path, case: str, match: str) -> None:
    inp = make_shards(tmp_path / "in", n=4, per_shard=4)
    shard = inp / "shard-00000.tar"
    ens = tiny_ensemble()
    cfg_kw: dict[str, Any] = {"n_syn": 0}
    if case == "undecodable":
        _edit_sample(shard, "000000001", image=b"\x89PNG\r\n\x1a\n broken")
    elif case == "empty_caption":
        _edit_sample(shard, "000000001", caption="  ")
    elif case == "long_caption":
        _edit_sample(shard, "000000001", caption="word " * 50)
        cfg_kw["max_caption_chars"] = 100
    elif case == "sha_mismatch":
        rewrite_tar(shard, {"000000001.png": png_bytes((1, 2, 3), (40, 36))})
    elif case == "truncated_tar":
        data = shard.read_bytes()
        shard.write_bytes(data[: int(len(data) * 0.7)])
    elif case == "nan_teacher":
        _edit_sample(shard, "000000001", image=png_bytes((0, 0, 0), (40, 36)))
        ens = TeacherEnsemble([NaNOn(ens.teachers[0], dark=1.0), ens.teachers[1]])
    with pytest.raises(DataCorruptError, match=match) as err:
        reinforce(inp, tmp_path / "raise", ens, None, small_cfg(**cfg_kw))
    assert "shard-00000.tar" in str(err.value)
    assert not list((tmp_path / "raise").glob("shard-*.tar"))  # nothing partial under a final name
    out = reinforce(inp, tmp_path / "skip", ens, None, small_cfg(on_error="skip", **cfg_kw))
    assert sum(out["skipped"].values()) == 1 and out["num_samples"] == (2 if case == "truncated_tar" else 3)
    assert read_manifest(tmp_path / "skip")[0]["skipped"] == out["skipped"]


def test_teacher_larger_than_the_crop_is_refused(tmp_path: Path) -> None:
    inp = make_shards(tmp_path / "in", n=2, per_shard=2)
    ens = TeacherEnsemble([tiny_teacher("big", 16, 48, 0)])
    with pytest.raises(QuartetError, match="larger than the crop size 32"):
        reinforce(inp, tmp_path / "out", ens, None, small_cfg())


def _cli(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QUARTET_PROGRESS": "0", "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "quartet", "clip", "reinforce", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_after_first_shard(proc: subprocess.Popen[bytes], out: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    ckpt = out / "checkpoint.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if ckpt.is_file() and json.loads(ckpt.read_text())["done"]:
                break
        except (json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and every process it started (Ray included)
    proc.wait()


def _kill_and_resume(tmp_path: Path, workers: int) -> None:
    from quartet.clip.cli_reinforce import make_stand_ins, reinforce_main

    inp = make_shards(tmp_path / "in", n=16, per_shard=2)
    make_stand_ins(tmp_path / "models", crop_size=CROP)
    out = tmp_path / "out"

    def cli_args(output: Path, n_workers: int) -> list[str]:
        return ["--input", str(inp), "--output", str(output), "--stand-ins", str(tmp_path / "models"), "--n-aug",
                "2", "--n-syn", "1", "--batch-size", "2", "--aug.crop-size", str(CROP), "--num-workers",
                str(n_workers), "--ray-num-cpus", "2"]

    args = cli_args(out, workers)
    proc = _cli(args)
    _kill_after_first_shard(proc, out, timeout_s=240)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
    done = json.loads((out / "checkpoint.json").read_text())["done"]
    assert 1 <= len(done) < 8 and not (out / "manifest.jsonl").exists()
    assert all((out / v["name"]).is_file() for v in done.values())
    assert reinforce_main(args) == 0
    uids = [s.uid for s in iter_reinforced(out)]
    expected = [s.uid for p in list_shards(inp) for s in iter_shard(p)]
    assert sorted(uids) == sorted(expected) and len(set(uids)) == len(uids) == 16
    assert not list(out.glob(".*.tmp"))
    from quartet.clip.inspect_shards import inspect_reinforced

    assert inspect_reinforced(out).ok
    if workers:  # the Ray actors wrote the same bytes as the in-process loop does
        ref = tmp_path / "ref"
        assert reinforce_main(cli_args(ref, 0)) == 0
        assert _shard_hashes(out) == _shard_hashes(ref)


def test_killed_cli_run_resumes_exactly_once(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, workers=0)


@pytest.mark.slow
def test_killed_ray_run_resumes_exactly_once(tmp_path: Path) -> None:
    try:
        _kill_and_resume(tmp_path, workers=2)
    finally:
        from quartet.core.ray_setup import shutdown_ray

        shutdown_ray()
