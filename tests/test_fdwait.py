"""Waiting on descriptors above 1024, which `select.select` refuses ("filedescriptor out of range")."""

from __future__ import annotations

import os
import resource

import pytest

from sandbox.fdwait import readable


def test_a_descriptor_above_1024_is_waited_on() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip(f"the descriptor limit here ({hard}) is too low to open descriptor 2000")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 2000)
    try:
        assert readable([high], 0.01) == []
        os.write(write_end, b"x")
        assert readable([high], 1.0) == [high]
    finally:
        os.close(high)
        os.close(read_end)
        os.close(write_end)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_objects_with_fileno_and_a_hang_up_count_as_readable() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader:
        os.close(write_end)  # a closed writer: reading would return at once (end of file)
        assert readable([reader], 0) == [read_end]
