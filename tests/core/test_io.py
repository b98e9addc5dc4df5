import io
import os
import tarfile

import pytest

from quartet.core.errors import DataCorruptError
from quartet.core.io import atomic_path, atomic_write_json, atomic_write_text, read_json, safe_extract, sha256_file


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_json(p, {"a": 2})
    assert read_json(p) == {"a": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_crash_mid_write_keeps_old_file_and_no_temp(tmp_path):
    p = tmp_path / "shard.bin"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("simulated crash")
    assert p.read_text() == "old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["shard.bin"]


def test_killed_process_leaves_no_final_file(tmp_path):
    """A process killed inside the writer leaves at most a hidden temp file, never the final name."""
    p = tmp_path / "out.bin"
    pid = os.fork()
    if pid == 0:  # child: start writing, then die without cleanup
        with atomic_path(p) as tmp:
            tmp.write_bytes(b"x" * 1000)
            os._exit(9)
    os.waitpid(pid, 0)
    assert not p.exists()
    assert all(f.name.startswith(".out.bin.") for f in tmp_path.iterdir())


def test_read_json_errors_name_file(tmp_path):
    with pytest.raises(Exception, match="nope.json"):
        read_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataCorruptError, match="bad.json"):
        read_json(bad)


def _tar_with(name: str, data: bytes = b"hi", kind: bytes = tarfile.REGTYPE) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            t.addfile(info)
        else:
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def test_safe_extract_refuses_traversal_and_links(tmp_path):
    with pytest.raises(DataCorruptError, match="outside"):
        safe_extract(_tar_with("../evil.txt"), tmp_path / "x")
    with pytest.raises(DataCorruptError, match="outside"):
        safe_extract(_tar_with("/abs/evil.txt"), tmp_path / "x")
    with pytest.raises(DataCorruptError, match="links"):
        safe_extract(_tar_with("link", kind=tarfile.SYMTYPE), tmp_path / "x")
    out = safe_extract(_tar_with("ok/file.txt", b"data"), tmp_path / "y")
    assert out[0].read_bytes() == b"data"
    assert len(sha256_file(out[0])) == 64
