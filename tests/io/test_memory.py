"""What the machine has: available memory and disk space, and the one-line refusals."""
import shutil

import pytest

from spectools.errors import Hint, SpectoolsError
from spectools.io import memory


def test_available_memory_is_what_the_kernel_reports():
    available = memory.available_memory_bytes()
    if available is None:
        pytest.skip("this system reports no available memory")
    with open("/proc/meminfo") as fh:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
    # no more than the machine has; the control group may lower it
    assert 0 < available <= info["MemTotal"]


def test_check_memory_refuses_in_one_line(monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 3 << 30)
    memory.check_memory(2 << 30, "a small request")
    with pytest.raises(SpectoolsError) as info:
        memory.check_memory(300 << 30, "a 100000-px box", hint=Hint("box", purpose="ask less"))
    assert info.value.reason == "a 100000-px box needs about 300 GB of memory but 3 GB are " \
                                "available"
    assert info.value.hint.option == "box"
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)
    memory.check_memory(1 << 60, "anything")  # nothing known: nothing refused


def test_check_disk_looks_at_the_first_existing_folder(monkeypatch, tmp_path):
    seen = []

    def usage(path):
        seen.append(path)
        return shutil._ntuple_diskusage(100, 90, 10 << 20)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    memory.check_disk(tmp_path / "new" / "deeper", 1 << 20, "a stack")
    assert seen == [tmp_path]
    with pytest.raises(SpectoolsError, match=r"deeper: a stack needs about 1 GB of disk space "
                                             r"but 10 MB are free"):
        memory.check_disk(tmp_path / "new" / "deeper", 1 << 30, "a stack")
    assert not (tmp_path / "new").exists()


def test_sizes_in_messages():
    assert memory.format_bytes(512) == "512 bytes"
    assert memory.format_bytes(1536) == "1.5 KB"
    assert memory.format_bytes(3 << 40) == "3 TB"
