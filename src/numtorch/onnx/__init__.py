"""ONNX export and import (needs the ``onnx`` package: ``pip install 'numtorch[onnx]'``).

- ``export(model, path, input_shape)``: the model's evaluation-mode forward as
  an ONNX model, opset 17, float32, with a symbolic batch axis and the
  weights as initializers (``numtorch.onnx.exporter`` lists what each layer
  becomes);
- ``load(path)`` / ``load_with_input_shape(path)``: an ONNX model built from
  the operators numtorch's layers compute, as numtorch modules, in evaluation
  mode. This reads what PyTorch's exporters write for those layers
  (``torch.onnx.export``, ``dynamo=True`` or ``False``), patterns included:
  BatchNorm folded into Conv/Gemm, flatten as a Reshape with a constant or
  computed shape, Softplus's threshold as ``Softplus`` + ``Greater`` +
  ``Where``, branches joined by ``Add``/``Mul``/``Concat``, which become
  ``ConcatTable``/``CAddTable``/``Concat`` (``numtorch.onnx.importer`` and
  ``numtorch.onnx.series_parallel`` say how).

``import numtorch`` does not import this package (nor onnx).
"""

try:
    import onnx  # noqa: F401
except ImportError:
    raise ImportError("numtorch.onnx needs the onnx package: pip install 'numtorch[onnx]'") from None

from numtorch.onnx.exporter import OPSET, export
from numtorch.onnx.importer import load, load_with_input_shape

__all__ = ["OPSET", "export", "load", "load_with_input_shape"]
