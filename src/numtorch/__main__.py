"""``python -m numtorch``: the command line (see ``numtorch.cli``)."""

from numtorch.cli import main

raise SystemExit(main())
