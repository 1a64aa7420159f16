"""atomic_write: complete new file or the old one untouched."""

import pytest

from bpgraph.files import atomic_write


def test_writes_text_and_bytes(tmp_path):
    atomic_write(tmp_path / "a.txt", "héllo")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_failure_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "diagram.svg"
    target.write_text("old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new and complete")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["diagram.svg"]


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, "x")


def test_a_missing_folder_is_named_not_a_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*nowhere does not exist; create it first") as caught:
        atomic_write(tmp_path / "nowhere" / "out.svg", "x")
    assert ".tmp" not in str(caught.value)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"afile is a file, not a folder"):
        atomic_write(tmp_path / "afile" / "out.svg", "x")


def test_new_files_follow_the_umask_and_existing_ones_keep_their_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.svg", "x")
        existing = tmp_path / "shared.svg"
        existing.write_text("old")
        existing.chmod(0o640)
        atomic_write(existing, "new")
    finally:
        os.umask(old)
    assert (tmp_path / "new.svg").stat().st_mode & 0o777 == 0o644  # mkstemp alone gives 0o600
    assert existing.stat().st_mode & 0o777 == 0o640
