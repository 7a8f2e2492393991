"""Cache keys: tool versions remembered on disk by the binary's stamp, the hw/ source hash."""

import os

from hw import cache


def test_tool_version_is_asked_once_per_binary(tmp_path, monkeypatch):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    tool = bin_dir / "faketool"
    tool.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'faketool 1.2'\necho 'second line'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("MIXKIT_CACHE", str(tmp_path / "cache"))
    cache.tool_version.cache_clear()
    assert cache.tool_version("faketool", "-V") == "faketool 1.2"
    cache.tool_version.cache_clear()  # a new process: the disk memo answers
    assert cache.tool_version("faketool", "-V") == "faketool 1.2"
    assert calls.read_text().count("x") == 1
    tool.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'faketool 2.0'\n")  # reinstalled: new size and mtime
    os.utime(tool, ns=(1, 1))
    cache.tool_version.cache_clear()
    assert cache.tool_version("faketool", "-V") == "faketool 2.0"
    assert cache.tool_version("missingtool", "-V") == "absent"
    cache.tool_version.cache_clear()


def test_entry_key_and_source_hash():
    assert cache.entry_key({"a": 1, "b": 2}, 10.0) == cache.entry_key({"b": 2, "a": 1}, 10.0)
    assert cache.entry_key({"a": 1}, 10.0) != cache.entry_key({"a": 1}, 5.0)
    assert len(cache.source_hash()) == 16 and cache.source_hash() == cache.source_hash()
    assert cache.package_version("amaranth")[0].isdigit() and cache.package_version("no_such_pkg_x") == "absent"
