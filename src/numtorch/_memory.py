"""What this machine can hold: the memory available now, and a check that refuses a plan beyond it.

The command line sizes what it is about to allocate (a network's weights and
optimizer state, a confusion matrix, a sample of zeros) and refuses in words
what cannot fit, before allocating: an allocation larger than the memory but
smaller than the address space often succeeds lazily and ends in the
operating system killing the process (no message) or in heavy swapping.
"""

import os
from contextlib import suppress


def available_memory():
    """Bytes of memory available to this process now, or ``None`` where the system does not say.

    Linux: ``MemAvailable`` of ``/proc/meminfo``, and no more than what the
    cgroup (a container's limit) leaves; elsewhere the free physical pages.
    """
    sizes = []
    with suppress(OSError, ValueError, IndexError):  # not Linux, or a file it cannot read
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    sizes.append(int(line.split()[1]) * 1024)
    with suppress(OSError, ValueError):  # no cgroup v2 memory limit here
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as used:
            text = limit.read().strip()
            if text != "max":
                sizes.append(max(0, int(text) - int(used.read())))
    if not sizes:
        try:
            sizes.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(sizes)


def gib(nbytes):
    """``36.4 TiB``, ``37.3 GiB``, ``512 MiB``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes / 2**20:,.0f} MiB"


def check_memory(nbytes, what, advice):
    """Raise ``MemoryError`` saying that ``what`` needs about ``nbytes``, more than is available, and
    ``advice``; nothing where it fits or where the system does not say what is available."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise MemoryError(f"{what} needs about {gib(nbytes)}, more than the {gib(available)} this machine "
                          f"has available: {advice}")
