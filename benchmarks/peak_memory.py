"""A process's own peak memory, for the benchmarks' child processes."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child spawned by the
    benchmark's parent (hundreds of MB, the trained models loaded) would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
