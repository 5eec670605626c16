"""What an MPI launcher tells this process, read from the environment before NumPy loads.

``numtorch/__init__.py`` imports this module first, and importing it runs
``limit_blas_threads()``: under ``mpiexec`` each process limits its BLAS
thread pool before NumPy and SciPy load OpenBLAS (which sizes its pool once,
when it loads). No NumPy here.

The rules (the README's "Several machines" section states them for users):

- MPI is used when a launcher set one of ``LAUNCHER_VARIABLES`` (``mpiexec``
  of Open MPI, MPICH or Intel MPI, ``srun``); ``NUMTORCH_MPI=1`` forces it,
  ``NUMTORCH_MPI=0`` turns it off. Otherwise numtorch is one process and never
  imports mpi4py.
- Under MPI each process gets ``cores // ranks on this machine`` BLAS threads
  (at least 1; fewer if the launcher bound it to fewer cores), written to
  ``BLAS_VARIABLES``. ``NUMTORCH_BLAS_THREADS=k`` sets ``k`` instead; values the user set
  in any of ``BLAS_VARIABLES`` are kept.
"""

import os
import sys

LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK")
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def launched_by_mpi(environ=os.environ):
    """Whether this process is one of an MPI job (see the rules above)."""
    choice = environ.get("NUMTORCH_MPI", "")
    if choice in ("0", "1"):
        return choice == "1"
    if choice:
        raise ValueError(f"NUMTORCH_MPI: expected 0 or 1, got {choice!r}")
    return any(name in environ for name in LAUNCHER_VARIABLES)


def positive_int_variable(environ, name):
    text = environ[name]
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{name}: expected a positive integer, got {text!r}")
    return int(text)


def share_of_cores(environ=os.environ):
    """This process's share of the machine's cores: ``cores // local ranks``, within its binding."""
    local = next((name for name in LOCAL_SIZE_VARIABLES if name in environ), None)
    ranks_here = positive_int_variable(environ, local) if local else 1
    bound = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(bound, (os.cpu_count() or 1) // ranks_here))


def blas_threads(environ=os.environ):
    """The BLAS threads this process should use under MPI (the rules above); ``None``: leave them."""
    if not launched_by_mpi(environ):
        return None
    if "NUMTORCH_BLAS_THREADS" in environ:
        return positive_int_variable(environ, "NUMTORCH_BLAS_THREADS")
    if any(name in environ for name in BLAS_VARIABLES):
        return None
    return share_of_cores(environ)


def limit_blas_threads():
    """Apply ``blas_threads()`` to this process's environment; returns the count, or None.

    If NumPy is already loaded the environment comes too late, so the pools
    that are loaded are limited through threadpoolctl (part of
    ``numtorch[mpi]``) instead.
    """
    threads = blas_threads()
    if threads is None:
        return None
    for name in BLAS_VARIABLES:
        os.environ[name] = str(threads)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            import warnings

            warnings.warn(f"numtorch: NumPy was imported before numtorch, so its BLAS threads cannot be "
                          f"limited to {threads} per MPI process: import numtorch first, set "
                          "OMP_NUM_THREADS, or pip install threadpoolctl", stacklevel=3)
        else:
            threadpool_limits(threads, user_api="blas")
    return threads


limit_blas_threads()
