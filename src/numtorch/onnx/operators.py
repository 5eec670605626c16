"""ONNX operators as numtorch modules: ``OPERATORS`` maps an op type to the function that reads it.

Each function reads ``reader.node`` and returns the value of the node's first
output (see ``numtorch.onnx.reader`` for the kinds of values). What exporters
write for one layer is recognised as that layer: a bias added after
``MatMul`` or a bias-free ``Conv`` becomes their bias; a per-channel
``Mul``/``Add`` a ``ChannelwiseScaling`` (consecutive ones fold into one);
``Reshape`` to (N, -1), with a constant or computed shape, and ``Flatten`` a
``Flatten``; ``GlobalAveragePool`` or ``ReduceMean`` over H and W, then a
flatten, a ``GlobalAvgPool2d``; ``BatchNormalization`` a
``BatchNormalization`` plus a ``ChannelwiseScaling`` for its scale and bias;
``Where(x > 20, x, Softplus(x))`` a ``SoftPlus``. An attribute or input that
would make numtorch compute anything else is refused, naming the node.
"""

from math import prod

import numpy as np
import onnx

from numtorch.layers import (
    ELU,
    AvgPool2d,
    BatchNormalization,
    CAddTable,
    ChannelwiseScaling,
    CMulTable,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    JoinTable,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.onnx.reader import BATCH, PROBE_LIMIT, Condition, Tensor, describe_shape, kind_of, tensor_array


def op_identity(r):
    return r.input_value(0)


def op_constant(r):
    a = r.attributes(value=None, value_float=None, value_floats=None, value_int=None, value_ints=None)
    given = [name for name, value in a.items() if value is not None]
    if len(given) != 1:
        r.fail(f"expected one value attribute, got {given}")
    value = a[given[0]]
    if given[0] == "value":
        return tensor_array(r.path, value, f"{r.where()}: value")
    dtype = np.float32 if "float" in given[0] else np.int64
    return np.array(value, dtype=dtype)


def op_cast(r):
    a = r.attributes(to=None, saturate=1)
    value = r.input_value(0)
    target = onnx.helper.tensor_dtype_to_np_dtype(a["to"])
    if isinstance(value, Tensor):
        if target != np.float32:
            r.fail(f"cast of a computed tensor to {target}: numtorch computes in float32")
        return value
    if not isinstance(value, np.ndarray):
        r.fail(f"cannot cast {kind_of(value)}")
    return value if value.dtype == object else value.astype(target)


def shape_input(r, i):
    """Input ``i`` of a shape computation: a constant or a shape vector."""
    value = r.input_value(i)
    if not isinstance(value, np.ndarray):
        r.fail(f"input {i} must be a constant or a shape, got {kind_of(value)}")
    return value


def op_shape(r):
    a = r.attributes(start=0, end=None)
    value = r.input_value(0)
    if isinstance(value, Tensor):
        shape = np.array([BATCH, *value.shape], dtype=object)
    elif isinstance(value, np.ndarray):
        shape = np.array(value.shape, dtype=np.int64)
    else:
        r.fail(f"shape of {kind_of(value)}")
    return shape[a["start"]:a["end"]]


def op_gather(r):
    a = r.attributes(axis=0)
    indices = r.constant(1)
    if indices.dtype.kind not in "iu":
        r.fail(f"indices must be integers, got {indices.dtype}")
    data = shape_input(r, 0)
    try:
        return np.asarray(np.take(data, indices, axis=a["axis"]), dtype=data.dtype)
    except IndexError as error:
        r.fail(str(error))


def axes_argument(r, a, input_index):
    """Axes given as an attribute (opsets before 13 or 18) or as a constant input."""
    if a.get("axes") is not None:
        return [int(axis) for axis in a["axes"]]
    axes = r.constant(input_index, optional=True)
    return None if axes is None else [int(axis) for axis in axes.ravel()]


def op_unsqueeze(r):
    data = shape_input(r, 0)
    axes = axes_argument(r, r.attributes(), 1)
    if axes is None:
        r.fail("axes missing")
    rank = data.ndim + len(axes)
    try:
        return np.expand_dims(data, tuple(sorted(axis % rank for axis in axes)))
    except (ValueError, IndexError) as error:
        r.fail(str(error))


def op_squeeze(r):
    value = r.input_value(0)
    axes = axes_argument(r, r.attributes(), 1)
    if isinstance(value, Tensor):
        rank = 1 + len(value.shape)
        to_features = (len(value.shape) == 3 and value.shape[1:] == (1, 1)
                       and (axes is None or sorted(axis % rank for axis in axes) == [2, 3]))
        if not to_features:
            r.fail(f"squeezing {describe_shape(value.shape)} on axes {axes}: numtorch squeezes only "
                   "(N, C, 1, 1) to (N, C)")
        return flattened(r, r.tensor(0, raw=True))
    data = shape_input(r, 0)
    try:
        return np.squeeze(data, None if axes is None else tuple(axes))
    except (ValueError, IndexError) as error:
        r.fail(str(error))


def op_slice(r):
    data = shape_input(r, 0)
    starts, ends = r.constant(1), r.constant(2)
    axes = r.constant(3, optional=True)
    steps = r.constant(4, optional=True)
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return data[tuple(index)]


def op_concat(r):
    a = r.attributes(axis=None)
    values = [r.values[name] for name in r.node.input]
    if all(isinstance(value, Tensor) for value in values):
        tensors = [r.tensor(i) for i in range(len(values))]
        if len(tensors) == 1:
            return tensors[0]
        return r.make(JoinTable(int(a["axis"])), tensors)
    if all(isinstance(value, np.ndarray) for value in values):
        return np.concatenate(values, axis=a["axis"])
    r.fail("joins computed tensors with constants, which numtorch does not compute")


def flattened(r, tensor):
    """``tensor`` as (N, -1): a ``Flatten``, or the tensor itself where numtorch already holds it so."""
    size = prod(tensor.shape)
    if tensor.sample.shape[1:] == (size,):
        return Tensor(tensor.key, tensor.sample)
    return r.make(Flatten(), [tensor])


def op_flatten(r):
    a = r.attributes(axis=1)
    if a["axis"] != 1:
        r.fail(f"axis={a['axis']}: numtorch flattens to (N, -1) only (axis=1)")
    return flattened(r, r.tensor(0, raw=True))


def op_reshape(r):
    a = r.attributes(allowzero=0)
    tensor = r.tensor(0, raw=True)
    target = shape_input(r, 1)
    size = prod(tensor.shape)
    if target.dtype.kind not in "iuO":
        r.fail(f"the shape must hold integers, got {target.dtype}")
    dims = [d if d is BATCH else int(d) for d in target.ravel()]
    batch_words = {BATCH, r.batch} - {None}
    first_is_batch = len(dims) == 2 and (any(dims[0] is word or dims[0] == word for word in batch_words)
                                         or (dims[0] == 0 and not a["allowzero"]))
    flat = len(dims) == 2 and ((first_is_batch and (dims[1] == -1 or dims[1] == size))
                               or (dims[0] == -1 and dims[1] == size))
    if target.ndim != 1 or not flat:
        r.fail(f"reshape of {describe_shape(tensor.shape)} to {dims}: numtorch reshapes only to (N, -1)")
    return flattened(r, tensor)


def op_gemm(r):
    a = r.attributes(alpha=1.0, beta=1.0, transA=0, transB=0)
    if a["transA"]:
        r.fail("transA=1 is not supported (the input must be (N, features))")
    tensor = r.tensor(0)
    weight = r.floats(1)
    if weight.ndim != 2:
        r.fail(f"B must be a matrix, got shape {weight.shape}")
    weight = weight if a["transB"] else weight.T
    n_out, n_in = weight.shape
    bias = r.floats(2, optional=True)
    module = Linear(n_in, n_out, bias=bias is not None)
    module.W[...] = weight * np.float32(a["alpha"])
    if bias is not None:
        if bias.size not in (1, n_out) or bias.ndim > 2 or (bias.ndim == 2 and bias.shape[0] != 1):
            r.fail(f"C of shape {bias.shape} does not broadcast to (N, {n_out}) as one bias per output")
        module.b[...] = np.broadcast_to(bias.reshape(-1), (n_out,)) * np.float32(a["beta"])
    return r.make(module, [tensor])


def op_matmul(r):
    r.attributes()
    tensor = r.tensor(0)
    weight = r.floats(1)
    if weight.ndim != 2 or len(tensor.shape) != 1:
        r.fail(f"numtorch multiplies (N, features) by a constant matrix, got {describe_shape(tensor.shape)} "
               f"by {weight.shape}")
    module = Linear(weight.shape[0], weight.shape[1], bias=False)
    module.W[...] = weight.T
    return r.make(module, [tensor])


def window(r, a, kernel_shape, tensor, channels):
    """``(kernel, stride, padding)`` of a 2-D Conv/pool node reading ``tensor`` and giving ``channels``
    channels, refusing what numtorch does not compute."""
    if len(kernel_shape) != 2 or len(tensor.shape) != 3:
        r.fail(f"kernel_shape {list(kernel_shape)} on {describe_shape(tensor.shape)}: numtorch convolves "
               "and pools (N, C, H, W) images with 2-D kernels only")
    if a["auto_pad"] not in ("NOTSET", "VALID"):
        r.fail(f"auto_pad={a['auto_pad']}: give the padding explicitly in pads")
    if any(d != 1 for d in a.get("dilations") or ()):
        r.fail(f"dilations={list(a['dilations'])}: numtorch has no dilation")
    if a.get("ceil_mode"):
        r.fail("ceil_mode=1: numtorch rounds output sizes down")
    pads = [0, 0, 0, 0] if a["auto_pad"] == "VALID" else list(a["pads"] or [0, 0, 0, 0])
    if len(pads) != 4 or pads[:2] != pads[2:] or min(pads) < 0:
        r.fail(f"pads={pads}: numtorch pads both sides of an axis alike")
    strides = list(a["strides"] or [1, 1])
    if len(strides) != 2 or min(strides) < 1:
        r.fail(f"strides={strides}: expected two positive strides")
    kernel, stride, padding = (tuple(int(v) for v in values) for values in (kernel_shape, strides, pads[:2]))
    c, h, w = tensor.shape
    padded = (h + 2 * padding[0]) * (w + 2 * padding[1])
    outputs = prod((s + 2 * p - k) // st + 1 for s, k, st, p in zip((h, w), kernel, stride, padding))
    if max(padded * c, outputs * channels, outputs * kernel[0] * kernel[1] * c) > PROBE_LIMIT:
        r.fail(f"kernel {kernel}, stride {stride}, padding {padding} on {describe_shape(tensor.shape)} "
               f"needs more than {PROBE_LIMIT} values for one sample")
    return kernel, stride, padding


def op_conv(r):
    a = r.attributes(auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None)
    tensor = r.tensor(0)
    weight = r.floats(1)
    if weight.ndim != 4:
        r.fail(f"weight of shape {weight.shape}: numtorch convolves 2-D images only")
    if a["group"] != 1:
        r.fail(f"group={a['group']}: numtorch has no grouped convolution")
    kernel_shape = a["kernel_shape"] or weight.shape[2:]
    if tuple(kernel_shape) != weight.shape[2:]:
        r.fail(f"kernel_shape {list(kernel_shape)} does not match the weight's {weight.shape}")
    kernel, stride, padding = window(r, a, kernel_shape, tensor, weight.shape[0])
    bias = r.floats(2, (weight.shape[0],), optional=True)
    try:
        module = Conv2d(weight.shape[1], weight.shape[0], kernel, stride, padding, bias=bias is not None)
    except (ValueError, TypeError) as error:
        r.fail(str(error))
    module.W[...] = weight
    if bias is not None:
        module.b[...] = bias
    return r.make(module, [tensor])


def pool(r, cls, a):
    tensor = r.tensor(0)
    if a["kernel_shape"] is None:
        r.fail("kernel_shape missing")
    kernel, stride, padding = window(r, a, a["kernel_shape"], tensor, tensor.shape[0])
    try:
        module = cls(kernel, stride, padding)
    except (ValueError, TypeError) as error:
        r.fail(str(error))
    return r.make(module, [tensor])


def op_maxpool(r):
    a = r.attributes(auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
                     storage_order=0, strides=None)
    return pool(r, MaxPool2d, a)


def op_averagepool(r):
    a = r.attributes(auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None, kernel_shape=None,
                     pads=None, strides=None)
    if not a["count_include_pad"] and any(a["pads"] or ()):
        r.fail("count_include_pad=0 with padding: numtorch's AvgPool2d divides by the whole window, "
               "padding included (count_include_pad=1, PyTorch's default)")
    return pool(r, AvgPool2d, a)


def global_pool(r, keepdims):
    tensor = r.tensor(0)
    if len(tensor.shape) != 3:
        r.fail(f"numtorch pools (N, C, H, W) images globally, got {describe_shape(tensor.shape)}")
    shape = (tensor.shape[0], 1, 1) if keepdims else None
    return r.make(GlobalAvgPool2d(), [tensor], shape=shape)


def op_globalaveragepool(r):
    r.attributes()
    return global_pool(r, keepdims=True)


def op_reducemean(r):
    a = r.attributes(axes=None, keepdims=1, noop_with_empty_axes=0)
    tensor = r.tensor(0)
    axes = axes_argument(r, a, 1)
    if axes is None or sorted(axis % 4 for axis in axes) != [2, 3] or len(tensor.shape) != 3:
        r.fail(f"mean over axes {axes} of {describe_shape(tensor.shape)}: numtorch averages (N, C, H, W) "
               "over H and W only (GlobalAvgPool2d)")
    return global_pool(r, keepdims=bool(a["keepdims"]))


def op_batchnormalization(r):
    a = r.attributes(epsilon=1e-5, momentum=0.9, training_mode=0)
    if a["training_mode"]:
        r.fail("training_mode=1: numtorch reads inference graphs (export the model in evaluation mode)")
    tensor = r.tensor(0)
    channels = tensor.shape[0] if tensor.shape else 0
    scale, bias, mean, variance = (r.floats(i, (channels,)) for i in range(1, 5))
    if not np.all(variance.astype(np.float64) + float(a["epsilon"]) > 0):
        r.fail(f"variance + epsilon must be positive, got values down to "
               f"{np.min(variance.astype(np.float64) + float(a['epsilon'])):g}")
    module = BatchNormalization(alpha=float(a["momentum"]), n_features=channels)
    module.moving_mean[...] = mean
    # numtorch's epsilon is BatchNormalization.EPS: another epsilon moves into the variance, which
    # gives the same sqrt(variance + epsilon) that inference divides by.
    module.moving_variance[...] = variance.astype(np.float64) + (float(a["epsilon"]) - module.EPS)
    normalized = r.make(module, [tensor], key=(r.node.output[0], "normalized"))
    if np.all(scale == 1) and np.all(bias == 0):
        return normalized
    scaling = ChannelwiseScaling(channels)
    scaling.gamma[...], scaling.beta[...] = scale, bias
    return r.make(scaling, [normalized])


def op_dropout(r):
    a = r.attributes(ratio=0.5, seed=None)
    tensor = r.tensor(0)
    ratio = r.constant(1, optional=True)
    training = r.constant(2, optional=True)
    if training is not None and bool(training):
        r.fail("training_mode=True: numtorch reads inference graphs")
    p = a["ratio"] if ratio is None else float(ratio)
    try:
        return r.make(Dropout(p), [tensor])
    except (ValueError, TypeError) as error:
        r.fail(str(error))


def activation(cls, **attributes):
    """An element-wise operator: ``cls(**{argument: attribute value})`` on its one input."""

    def convert(r):
        a = r.attributes(**{name: default for name, (_, default) in attributes.items()})
        tensor = r.tensor(0)
        try:
            module = cls(**{argument: float(a[name]) for name, (argument, _) in attributes.items()})
        except (ValueError, TypeError) as error:
            r.fail(str(error))
        return r.make(module, [tensor])

    return convert


def softmax(cls):
    def convert(r):
        a = r.attributes(axis=-1)
        tensor = r.tensor(0)
        if len(tensor.shape) != 1 or a["axis"] not in (1, -1):
            r.fail(f"axis={a['axis']} on {describe_shape(tensor.shape)}: numtorch's {cls.__name__} "
                   "normalizes (N, C) over C")
        return r.make(cls(), [tensor])

    return convert


def channel_vector(r, tensor, array):
    """A constant that broadcasts against ``tensor`` (N, C, ...) as one value per channel, as (C,)."""
    rank = 1 + len(tensor.shape)
    shape = (1,) * (rank - array.ndim) + array.shape
    channels = tensor.shape[0] if tensor.shape else None
    if (array.ndim > rank or channels is None or shape[0] != 1 or shape[1] not in (1, channels)
            or any(d != 1 for d in shape[2:])):
        r.fail(f"a constant of shape {array.shape} against {describe_shape(tensor.shape)}: numtorch adds "
               "and multiplies constants per channel (shape (C,), (C, 1, 1) or a scalar)")
    return np.broadcast_to(array.reshape(-1) if shape[1] == channels else array.reshape(()),
                           (channels,)).astype(np.float32)


def operands(r):
    """The two inputs of a binary operator as ``(tensors, constants)``."""
    values = [r.input_value(i) for i in range(2)]
    tensors = [r.tensor(i) for i, v in enumerate(values) if isinstance(v, Tensor)]
    constants = [r.floats(i) for i, v in enumerate(values) if not isinstance(v, Tensor)]
    return tensors, constants


def same_shapes(r, tensors):
    if any(t.shape != tensors[0].shape for t in tensors):
        r.fail(f"inputs of shapes {[describe_shape(t.shape) for t in tensors]}: numtorch combines "
               "computed tensors of one shape (no broadcasting)")


def op_add(r):
    r.attributes()
    tensors, constants = operands(r)
    if not tensors:
        return constants[0] + constants[1]
    if len(tensors) == 2:
        same_shapes(r, tensors)
        return r.make(CAddTable(), tensors)
    tensor, bias = tensors[0], channel_vector(r, tensors[0], constants[0])
    producer = r.producer(tensor)
    if isinstance(producer, (Linear, Conv2d)) and producer.b is None:
        with_bias = type(producer)(**{**producer.config(), "bias": True})
        with_bias.W[...] = producer.W
        with_bias.b[...] = bias
        r.producers[tensor.key] = (with_bias, r.producers[tensor.key][1])
        return Tensor(tensor.key, tensor.sample, tensor.shape)
    if isinstance(producer, ChannelwiseScaling):
        producer.beta += bias
        return Tensor(tensor.key, tensor.sample, tensor.shape)
    scaling = ChannelwiseScaling(len(bias))
    scaling.beta[...] = bias
    return r.make(scaling, [tensor])


def op_mul(r):
    r.attributes()
    tensors, constants = operands(r)
    if not tensors:
        return constants[0] * constants[1]
    if len(tensors) == 2:
        same_shapes(r, tensors)
        return r.make(CMulTable(), tensors)
    tensor, scale = tensors[0], channel_vector(r, tensors[0], constants[0])
    producer = r.producer(tensor)
    if isinstance(producer, ChannelwiseScaling):
        producer.gamma *= scale
        producer.beta *= scale
        return Tensor(tensor.key, tensor.sample, tensor.shape)
    scaling = ChannelwiseScaling(len(scale))
    scaling.gamma[...] = scale
    return r.make(scaling, [tensor])


def op_sum(r):
    r.attributes()
    tensors = [r.tensor(i) for i in range(len(r.node.input))]
    same_shapes(r, tensors)
    return tensors[0] if len(tensors) == 1 else r.make(CAddTable(), tensors)


def op_greater(r):
    r.attributes()
    tensor = r.tensor(0)
    threshold = r.constant(1)
    if threshold.size != 1:
        r.fail(f"numtorch compares with one number (Softplus's threshold), got shape {threshold.shape}")
    return Condition(tensor, float(threshold.reshape(())))


def op_where(r):
    r.attributes()
    condition, chosen, other = (r.input_value(i) for i in range(3))
    producer = r.producers.get(other.key, (None,))[0] if isinstance(other, Tensor) else None
    if not (isinstance(condition, Condition) and isinstance(chosen, Tensor) and isinstance(producer, SoftPlus)
            and chosen.key == condition.tensor.key == r.producers[other.key][1][0]
            and condition.threshold == SoftPlus.THRESHOLD):
        r.fail("numtorch reads Where only as Softplus's threshold, Where(x > 20, x, Softplus(x)) "
               "(PyTorch's Softplus with beta 1, threshold 20)")
    return other


OPERATORS = {
    "Add": op_add,
    "AveragePool": op_averagepool,
    "BatchNormalization": op_batchnormalization,
    "Cast": op_cast,
    "Concat": op_concat,
    "Constant": op_constant,
    "Conv": op_conv,
    "Dropout": op_dropout,
    "Elu": activation(ELU, alpha=("alpha", 1.0)),
    "Flatten": op_flatten,
    "Gather": op_gather,
    "Gemm": op_gemm,
    "GlobalAveragePool": op_globalaveragepool,
    "Greater": op_greater,
    "Identity": op_identity,
    "LeakyRelu": activation(LeakyReLU, alpha=("slope", 0.01)),
    "LogSoftmax": softmax(LogSoftMax),
    "MatMul": op_matmul,
    "MaxPool": op_maxpool,
    "Mul": op_mul,
    "ReduceMean": op_reducemean,
    "Relu": activation(ReLU),
    "Reshape": op_reshape,
    "Shape": op_shape,
    "Sigmoid": activation(Sigmoid),
    "Slice": op_slice,
    "Softmax": softmax(SoftMax),
    "Softplus": activation(SoftPlus),
    "Squeeze": op_squeeze,
    "Sum": op_sum,
    "Tanh": activation(Tanh),
    "Unsqueeze": op_unsqueeze,
    "Where": op_where,
}
