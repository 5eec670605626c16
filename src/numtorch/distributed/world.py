"""The processes of the job: ``MPI.COMM_WORLD`` under an MPI launcher, else one process of size 1.

mpi4py is imported on the first call that needs to know (``init``, ``rank``,
``size``, ...), and only when ``numtorch._launcher.launched_by_mpi()`` says a
launcher started this process, or ``init(use_mpi=True)`` asks.

Faults: in a job of several processes, one that fails must not leave the
others waiting forever in a collective. ``init`` therefore replaces
``sys.excepthook``: an uncaught exception prints its traceback, then
``MPI.COMM_WORLD.Abort(1)`` ends every process of the job (what
``python -m mpi4py`` does). Code that catches an error to report it (the
``numtorch`` command) calls ``abort(status)`` after printing it. A rank
killed by a signal makes ``mpiexec`` end the job. ``sys.exit`` on one rank
is no exception a hook sees: that rank would wait in ``MPI_Finalize`` for
the others, which wait for it; ``python -m mpi4py script.py`` aborts then too.
"""

import sys

from numtorch._launcher import launched_by_mpi

_comm = None
_ready = False
_step_comm = None
_sub_comms = {}


def init(use_mpi=None):
    """Join the MPI job once; returns ``MPI.COMM_WORLD``, or ``None`` for a single process.

    ``use_mpi``: ``None`` decides from the environment (an MPI launcher, or
    ``NUMTORCH_MPI``); ``True`` uses MPI anyway (a job of size 1 without a
    launcher). Later calls return the first call's answer.
    """
    global _comm, _ready, _step_comm
    if _ready:
        return _comm
    if use_mpi is None:
        use_mpi = launched_by_mpi()
    if use_mpi:
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError("numtorch.distributed: this process was started by an MPI launcher "
                              "(mpiexec), which needs mpi4py: pip install 'numtorch[mpi]' "
                              "(or set NUMTORCH_MPI=0 to run as one process)") from None
        _comm = _step_comm = MPI.COMM_WORLD
        if _comm.size > 1:
            sys.excepthook = _abort_after(sys.excepthook)
    _ready = True
    return _comm


def _abort_after(excepthook):
    def hook(kind, error, traceback):
        excepthook(kind, error, traceback)
        print(f"numtorch.distributed: rank {rank()} of {size()} raised {kind.__name__}: ending the whole job",
              file=sys.stderr)
        abort(1)

    return hook


def rank():
    """This process's rank, 0 to ``size() - 1`` (0 in a single process)."""
    comm = init()
    return 0 if comm is None else comm.rank


def size():
    """The number of processes of the job (1 in a single process)."""
    comm = init()
    return 1 if comm is None else comm.size


def is_root():
    """Whether this is rank 0, the process that writes files and shows progress."""
    return rank() == 0


def describe():
    """``" (rank 1 of 3)"`` in a job of several processes, else ``""``: for messages."""
    return f" (rank {rank()} of {size()})" if size() > 1 else ""


def abort(status=1):
    """In a job of several processes, end all of them now with ``status``; else return."""
    if _comm is not None and _comm.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        _comm.Abort(status)


def allgather(value):
    """Every rank's ``value`` (any picklable object), as a list in rank order."""
    return [value] if size() == 1 else _comm.allgather(value)


def broadcast(value, root=0):
    """Rank ``root``'s ``value`` on every rank."""
    return value if size() == 1 else _comm.bcast(value, root=root)


def hold_step(ranks):
    """Declare that ranks ``0 .. ranks - 1`` hold samples in this step (collective: every rank calls it).

    A global batch with fewer samples than processes leaves the last ranks
    with nothing to compute; the collectives inside the network
    (``SyncBatchNormalization``) then run among the ranks that hold samples,
    in a communicator split off once per count and kept.
    """
    global _step_comm
    if size() == 1:
        return
    if ranks >= size():
        _step_comm = _comm
        return
    if ranks not in _sub_comms:
        from mpi4py import MPI

        _sub_comms[ranks] = _comm.Split(0 if rank() < ranks else MPI.UNDEFINED, rank())
    _step_comm = _sub_comms[ranks]


def step_communicator():
    """The communicator of the ranks holding samples in this step; ``None`` in a single process."""
    init()
    return _step_comm
