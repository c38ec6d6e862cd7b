"""CPU seconds and memory of the processes in a benchmark, read from /proc (Linux), so a
table can say where the machine's cores and memory went: the system under test or the load
around it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of one process so far (0 where it is unknown or gone)."""
    stat = _stat(pid) if pid is not None else None
    return stat[1] if stat is not None else 0.0


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_of(pid: int) -> tuple[float, float]:
    """(resident MB, proportional MB) of a live process. The proportional set size splits
    pages shared between processes (forked workers, shared libraries) among them, so the
    proportional sizes of a process tree add up to what it really occupies."""
    return (_kib(Path(f"/proc/{pid}/status"), "VmRSS") / 1024,
            _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss") / 1024)



_PAGE = os.sysconf("SC_PAGE_SIZE")
_PRESENT = np.uint64(1 << 63)
_PFN_MASK = np.uint64((1 << 55) - 1)


def distinct_resident_mb(pids: list[int]) -> float | None:
    """The physical memory a group of processes occupies, each resident page counted once
    however many of them map it (a shared library, a forked parent's pages): what summing
    their resident sizes overstates. Read from /proc/PID/pagemap, whose page frame numbers
    only root may see; None otherwise."""
    frames: set[int] = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
            pagemap = open(f"/proc/{pid}/pagemap", "rb")  # noqa: SIM115 (closed below)
        except OSError:
            continue  # the process is gone
        with pagemap:
            for line in maps:
                start, end = (int(a, 16) for a in line.split()[0].split("-"))
                try:
                    pagemap.seek(start // _PAGE * 8)
                    raw = pagemap.read((end - start) // _PAGE * 8)
                except OSError:
                    continue  # a mapping the kernel does not report ([vsyscall])
                entries = np.frombuffer(raw, dtype=np.uint64)
                frames.update((entries[(entries & _PRESENT) != 0] & _PFN_MASK).tolist())
    frames.discard(0)  # unprivileged readers see every frame number as 0
    return len(frames) * _PAGE / 2**20 if frames else None


def processes_by_role(roots: dict[str, int], roles_of_children: dict[str, str]
                      ) -> list[tuple[str, int]]:
    """Every live process of the roots' trees as (role, pid): each root under its own name,
    each descendant under the role whose marker (a piece of its command line) it matches,
    else under its root's name."""
    stats = {pid: s for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
             if (s := _stat(pid)) is not None}
    root_of = {pid: name for name, pid in roots.items()}
    found = []
    for pid in sorted(stats):
        ancestor, name = pid, None
        while ancestor in stats and name is None:
            name = root_of.get(ancestor)
            ancestor = stats[ancestor][0]
        if name is None:
            continue
        if pid != roots[name]:
            command = _command(pid)
            name = next((role for marker, role in roles_of_children.items()
                         if marker in command), name)
        found.append((name, pid))
    return found


def cpu_by_role(roots: dict[str, int], roles_of_children: dict[str, str]) -> dict[str, float]:
    """CPU seconds so far per role: each root process under its own name, and each of its
    descendants under the role whose marker (a piece of its command line) it matches, else
    under its root's name."""
    totals: dict[str, float] = dict.fromkeys(roots, 0.0)
    for role, pid in processes_by_role(roots, roles_of_children):
        totals[role] = totals.get(role, 0.0) + process_cpu_s(pid)
    return totals
