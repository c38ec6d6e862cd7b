"""The serving benchmark's count of an agent's resident pages, each page once: two processes
that load the same libraries hold fewer distinct pages than their resident sizes add up to,
and at least as many as the larger of the two."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.cpu_usage import distinct_resident_mb, memory_of


def test_shared_pages_are_counted_once() -> None:
    children = [subprocess.Popen([sys.executable, "-c",
                                  "import numpy, sys; print(flush=True); sys.stdin.read()"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                for _ in range(2)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline()  # numpy loaded
        time.sleep(0.2)
        pids = [child.pid for child in children]
        distinct = distinct_resident_mb(pids)
        if distinct is None:
            pytest.skip("page frame numbers are readable by root only")
        resident = [memory_of(pid)[0] for pid in pids]
        assert max(resident) <= distinct < sum(resident) * 0.9
    finally:
        for child in children:
            child.kill()
            child.wait()
