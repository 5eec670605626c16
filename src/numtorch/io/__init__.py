"""Saving and loading: models, checkpoints, and the pieces they are made of.

- ``numtorch.io.archive``: defensive ``.npz`` reading (headers checked before
  data) and atomic writes, also used by ``numtorch.data``;
- ``numtorch.io.architecture``: a model described from its modules'
  ``config()`` as JSON, and rebuilt from it;
- ``numtorch.io.model``: ``save``, ``load``, ``load_weights``, ``read``, ``read_header``;
- ``numtorch.io.checkpoint``: ``save_checkpoint``, ``load_checkpoint``.
"""

from numtorch.io.architecture import architecture
from numtorch.io.checkpoint import load_checkpoint, save_checkpoint
from numtorch.io.model import load, load_weights, load_with_metadata, read, read_header, save

__all__ = ["architecture", "load", "load_checkpoint", "load_weights", "load_with_metadata", "read",
           "read_header", "save", "save_checkpoint"]
