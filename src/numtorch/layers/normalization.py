"""Batch normalization and the per-channel affine map that usually follows it.

Both take (N, C) or (N, C, H, W) input; on 4-D input everything is per
channel, over the batch and the spatial positions (as BatchNorm2d).
"""

import numpy as np

from numtorch._checks import check_number, check_positive_int
from numtorch.module import Module, matching


def channel_axes(owner, input, channels=None):
    """The axes statistics run over, and the shape a (C,) vector broadcasts as."""
    if input.ndim not in (2, 4) or (channels is not None and input.shape[1] != channels):
        c = "C" if channels is None else str(channels)
        raise ValueError(f"{owner!r}: expected input (N, {c}) or (N, {c}, H, W), got {input.shape}")
    if input.ndim == 2:
        return (0,), (1, input.shape[1])
    return (0, 2, 3), (1, input.shape[1], 1, 1)


class BatchNormalization(Module):
    """Normalizes each channel to zero mean and unit variance: ``y = (x - mean) / sqrt(var + EPS)``.

    Training: ``mean`` and ``var`` (biased) of the batch, per channel; the
    moving statistics follow ``moving = alpha * moving + (1 - alpha) * batch``,
    with the unbiased batch variance. Evaluation: ``moving_mean`` and
    ``moving_variance`` instead. No affine part (``ChannelwiseScaling`` adds it).
    ``moving_mean`` starts at 0 and ``moving_variance`` at 1 (as PyTorch; the
    BatchNorm1d/2d ``momentum`` is ``1 - alpha``).

    ``n_features`` is optional: given, the moving statistics exist from
    construction and the channel count is checked; omitted (the notebook's
    form), they are created at the first forward from the input's channels.
    Shape: (N, C) -> (N, C), or (N, C, H, W) -> (N, C, H, W).
    Backward (training): ``gradInput = (g - mean(g) - y * mean(g * y)) / sqrt(var + EPS)``.
    """

    EPS = 1e-5
    _buffers = ("moving_mean", "moving_variance")

    def __init__(self, alpha=0.9, n_features=None):
        super().__init__()
        name = type(self).__name__
        self.alpha = check_number(name, alpha, "alpha", low=0, high=1)
        self.statistics_dtype = np.dtype(np.float32)
        self.moving_mean = self.moving_variance = None
        if n_features is not None:
            self._create_statistics(check_positive_int(name, n_features, "n_features"))
        self.inv_std = None
        self.used_batch_statistics = None

    @property
    def n_features(self):
        """The channel count: the length of the moving statistics, ``None`` before they exist."""
        return None if self.moving_mean is None else len(self.moving_mean)

    def config(self):
        return {"alpha": self.alpha, "n_features": self.n_features}

    @staticmethod
    def array_shapes(alpha=0.9, n_features=None):
        if n_features is None:
            return {"moving_mean": None, "moving_variance": None}
        n_features = check_positive_int("BatchNormalization", n_features, "n_features")
        return {"moving_mean": (n_features,), "moving_variance": (n_features,)}

    def _create_statistics(self, channels):
        self.moving_mean = np.zeros(channels, dtype=self.statistics_dtype)
        self.moving_variance = np.ones(channels, dtype=self.statistics_dtype)

    def updateOutput(self, input):
        axes, shape = channel_axes(self, input, self.n_features)
        if self.training:
            mean, variance, count = self.batch_statistics(input, axes)
            if count < 2:
                raise ValueError(
                    f"{self!r}: expected more than one value per channel in training, got "
                    f"{input.shape} (use a larger batch, or evaluate())"
                )
        if self.n_features is None:
            self._create_statistics(input.shape[1])
        if self.training:
            self.moving_mean *= self.alpha
            self.moving_mean += (1 - self.alpha) * mean
            self.moving_variance *= self.alpha
            self.moving_variance += (1 - self.alpha) * variance * (count / (count - 1))
        else:
            mean = matching(self.moving_mean, input.dtype)
            variance = matching(self.moving_variance, input.dtype)
        self.used_batch_statistics = self.training
        self.inv_std = (1 / np.sqrt(variance + input.dtype.type(self.EPS))).reshape(shape)
        self.output = (input - mean.reshape(shape)) * self.inv_std
        return self.output

    def updateGradInput(self, input, gradOutput):
        # Backward follows the mode of the last forward, even if train()/evaluate() came since.
        if not self.used_batch_statistics:
            self.gradInput = gradOutput * self.inv_std
            return self.gradInput
        axes, _ = channel_axes(self, input)
        normalized = self.output
        mean_grad, mean_grad_normalized = self.gradient_means(gradOutput, normalized, axes)
        self.gradInput = (gradOutput - mean_grad - normalized * mean_grad_normalized) * self.inv_std
        return self.gradInput

    def batch_statistics(self, input, axes):
        """``(mean, biased variance, count)`` per channel of the training batch."""
        return input.mean(axis=axes), input.var(axis=axes), input.size // input.shape[1]

    def gradient_means(self, gradOutput, normalized, axes):
        """``mean(g)`` and ``mean(g * y)`` over the batch, per channel (kept as broadcastable axes)."""
        return (gradOutput.mean(axis=axes, keepdims=True),
                (gradOutput * normalized).mean(axis=axes, keepdims=True))

    def astype(self, dtype):
        super().astype(dtype)
        # Statistics created lazily after this call get the dtype too.
        self.statistics_dtype = np.dtype(dtype)
        return self

    def __repr__(self):
        features = "" if self.n_features is None else f", n_features={self.n_features}"
        return f"BatchNormalization(alpha={self.alpha:g}{features})"


class ChannelwiseScaling(Module):
    """Per-channel affine map ``y = gamma * x + beta`` (gamma starts at 1, beta at 0).

    Shape: (N, n) -> (N, n), or (N, n, H, W) -> (N, n, H, W).
    Backward: ``gradInput = gamma * g``, ``gradGamma += sum(g * x)``,
    ``gradBeta += sum(g)``, the sums over every axis but the channel one.
    """

    _parameters = ("gamma", "beta")
    _gradients = ("gradGamma", "gradBeta")

    def __init__(self, n):
        super().__init__()
        self.n = check_positive_int("ChannelwiseScaling", n, "n")
        self.gamma = np.ones(self.n, dtype=np.float32)
        self.beta = np.zeros(self.n, dtype=np.float32)
        self.gradGamma = np.zeros_like(self.gamma)
        self.gradBeta = np.zeros_like(self.beta)

    def config(self):
        return {"n": self.n}

    @staticmethod
    def array_shapes(n):
        n = check_positive_int("ChannelwiseScaling", n, "n")
        return {"gamma": (n,), "beta": (n,)}

    def updateOutput(self, input):
        _, shape = channel_axes(self, input, self.n)
        gamma, beta = matching(self.gamma, input.dtype), matching(self.beta, input.dtype)
        self.output = input * gamma.reshape(shape) + beta.reshape(shape)
        return self.output

    def updateGradInput(self, input, gradOutput):
        _, shape = channel_axes(self, input, self.n)
        self.gradInput = gradOutput * matching(self.gamma, gradOutput.dtype).reshape(shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        axes, _ = channel_axes(self, input, self.n)
        self.gradGamma += (gradOutput * input).sum(axis=axes)
        self.gradBeta += gradOutput.sum(axis=axes)

    def __repr__(self):
        return f"ChannelwiseScaling({self.n})"
