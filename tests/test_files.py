"""atomic_write: complete new file or the old one untouched; links followed, special files kept."""

import io
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from bpgraph.errors import BpgraphError
from bpgraph.files import OutputError, atomic_write


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


# --- what the target is decides how it is written -------------------------------------------------

def test_a_new_regular_file_is_created_and_the_path_returned(tmp_path):
    target = tmp_path / "new.svg"
    assert atomic_write(str(target), "<svg/>") == target
    assert stat.S_ISREG(target.lstat().st_mode)
    assert target.read_text() == "<svg/>"
    assert [p.name for p in tmp_path.iterdir()] == ["new.svg"]


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "graph.json"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["graph.json"]


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.svg"
    real.write_text("old")
    real.chmod(0o640)
    middle = tmp_path / "middle.svg"
    middle.symlink_to(real)
    link = tmp_path / "link.svg"
    link.symlink_to("middle.svg")  # relative, and a chain of two
    assert atomic_write(link, "new") == link
    assert link.is_symlink() and os.readlink(link) == "middle.svg"
    assert middle.is_symlink() and os.readlink(middle) == str(real)
    assert real.read_text() == "new" and not real.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "middle.svg", "real.svg"]


def test_a_dangling_symlink_writes_the_path_it_names(tmp_path):
    link = tmp_path / "link.svg"
    link.symlink_to(tmp_path / "later.svg")
    atomic_write(link, "made")
    assert link.is_symlink()
    assert (tmp_path / "later.svg").read_text() == "made"
    elsewhere = tmp_path / "dangling.svg"
    elsewhere.symlink_to(tmp_path / "nowhere" / "x.svg")
    with pytest.raises(BpgraphError, match=r"dangling\.svg.*nowhere does not exist"):
        atomic_write(elsewhere, "x")


def test_a_symlink_loop_is_a_clear_error(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OutputError, match=r"cannot write .*a: its symlinks cannot be followed"):
        atomic_write(tmp_path / "a", "x")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_a_fifo_gets_exactly_the_bytes_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    payload = b"\x00fifo\xff" * 50_000  # more than a pipe buffer holds
    atomic_write(fifo, payload)
    reader.join(timeout=10)
    assert received == [payload]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod of a device needs root")
def test_a_character_device_is_written_in_place(tmp_path):
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    atomic_write(device, "discarded")
    info = device.lstat()
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]


@pytest.mark.skipif(not (os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)),
                    reason="no /dev/null character device here")
def test_dev_null_stays_a_character_device(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to replace or create a file next to /dev/null")

    for name in ("os.replace", "os.rename", "os.unlink", "tempfile.mkstemp"):
        monkeypatch.setattr(name, refuse)  # a broken atomic_write must not replace the real one
    assert atomic_write("/dev/null", b"discarded") == Path("/dev/null")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_read_only_file_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "locked.svg"
    target.write_text("old")
    target.chmod(0o444)
    with pytest.raises(BpgraphError, match=r"locked\.svg is read-only; .*overwrite=True") as caught:
        atomic_write(target, "new")
    assert isinstance(caught.value, PermissionError) and "\n" not in str(caught.value)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["locked.svg"]
    atomic_write(target, "new", overwrite=True)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o444


def test_a_read_only_symlink_target_is_refused_naming_both(tmp_path):
    real = tmp_path / "real.svg"
    real.write_text("old")
    real.chmod(0o444)
    link = tmp_path / "link.svg"
    link.symlink_to(real)
    with pytest.raises(OutputError, match=r"link\.svg \(-> .*real\.svg\) is read-only"):
        atomic_write(link, "new")
    assert real.read_text() == "old"


def test_dash_writes_bytes_and_text_to_stdout(capfdbinary):
    assert atomic_write("-", b"\x89PNG\x00") == Path("-")
    atomic_write("-", "héllo\n")
    assert capfdbinary.readouterr().out == b"\x89PNG\x00" + "héllo\n".encode("utf-8")


def test_dash_uses_the_buffer_of_a_replaced_stdout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    fake = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", fake)
    fake.write("before ")  # still in the text layer: must come out first
    atomic_write("-", b"bytes")
    assert fake.buffer.getvalue() == b"before bytes"
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_dash_on_a_text_only_stdout_gets_text_or_a_clear_error(monkeypatch):
    text = io.StringIO()
    monkeypatch.setattr(sys, "stdout", text)
    atomic_write("-", "héllo".encode("utf-8"))
    assert text.getvalue() == "héllo"
    with pytest.raises(OutputError, match="only text"):
        atomic_write("-", b"\x89PNG\xff")


def test_path_errors_are_one_line_bpgraph_errors_naming_the_path(tmp_path):
    cases = [(tmp_path, IsADirectoryError, str(tmp_path)),
             (tmp_path / "nowhere" / "out.svg", FileNotFoundError, "nowhere"),
             (tmp_path / "afile" / "out.svg", NotADirectoryError, "afile")]
    (tmp_path / "afile").write_text("x")
    for path, kind, named in cases:
        with pytest.raises(BpgraphError) as caught:
            atomic_write(path, "x")
        assert isinstance(caught.value, kind) and isinstance(caught.value, OSError)
        message = str(caught.value)
        assert str(path) in message and named in message and "\n" not in message
        assert "Errno" not in message
