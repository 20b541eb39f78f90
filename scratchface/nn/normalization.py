"""Normalisation modules: local response normalisation, batch normalisation, L2 normalisation.

Thin wrappers, like :mod:`scratchface.nn.layers`, around the ``*_forward`` / ``*_backward`` pairs of
:mod:`scratchface.layers.normalization` (the arithmetic lives there).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_in_range, check_positive_float, check_positive_int
from ..layers.normalization import (
    batch_norm_backward,
    batch_norm_forward,
    l2_normalize_backward,
    l2_normalize_forward,
    lrn_backward,
    lrn_forward,
)
from .layers import Layer
from .module import Parameter

__all__ = ["LRN", "BatchNorm", "L2Normalize"]


class LRN(Layer):
    """Local response normalisation across channels (FaceNet "norm"/"rnorm"; torch.nn.LocalResponseNorm).

    Wraps :func:`scratchface.layers.normalization.lrn_forward`; no parameters.
    """

    def __init__(self, size, *, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = check_positive_int(size, "size")
        self.alpha = check_positive_float(alpha, "alpha", allow_zero=True)
        self.beta = check_positive_float(beta, "beta", allow_zero=True)
        self.k = check_positive_float(k, "k")

    def forward(self, x):
        out, self._cache = lrn_forward(x, size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)
        return out

    def backward(self, dout):
        return lrn_backward(dout, self._pop_cache())

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class BatchNorm(Layer):
    """Batch normalisation per channel (axis 1), for ``(N, C)`` or ``(N, C, H, W)`` inputs.

    Wraps :func:`scratchface.layers.normalization.batch_norm_forward`. In
    training mode it normalises with the batch's statistics and updates the
    running ones; in eval mode it uses the running ones.

    Parameters
    ----------
    num_channels : int
    momentum : float in [0, 1]
        PyTorch's convention: ``running = (1 - momentum) * running + momentum * batch``.
    eps : float
    dtype : float dtype

    Attributes
    ----------
    gamma, beta : Parameter, shape (C,)
        Scale (initialised to 1) and shift (0).
    running_mean, running_var : buffers, shape (C,)
        Start at 0 and 1; saved and loaded with the parameters.
    """

    def __init__(self, num_channels, *, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.num_channels = check_positive_int(num_channels, "num_channels")
        self.momentum = check_in_range(momentum, "momentum", 0.0, 1.0)
        self.eps = check_positive_float(eps, "eps")
        self.gamma = Parameter(np.ones(self.num_channels, dtype=dtype))
        self.beta = Parameter(np.zeros(self.num_channels, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(self.num_channels, dtype=dtype))
        self.register_buffer("running_var", np.ones(self.num_channels, dtype=dtype))

    def forward(self, x):
        if not (hasattr(x, "ndim") and x.ndim >= 2 and x.shape[1] == self.num_channels):
            raise ValueError(f"BatchNorm expects input of shape (N, {self.num_channels}) or "
                             f"(N, {self.num_channels}, H, W), got {tuple(getattr(x, 'shape', ()))}")
        self._check_dtype(x)
        out, self._cache = batch_norm_forward(x, self.gamma.data, self.beta.data, running_mean=self.running_mean,
                                              running_var=self.running_var, training=self.training,
                                              momentum=self.momentum, eps=self.eps)
        if self.training:       # keep the updated statistics (copied in place: the arrays keep their identity)
            self.running_mean[...] = self._cache.running_mean
            self.running_var[...] = self._cache.running_var
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = batch_norm_backward(dout, self._pop_cache())
        self.gamma.grad += dgamma
        self.beta.grad += dbeta
        return dx

    def output_shape(self, input_shape):
        if input_shape[0] != self.num_channels:
            raise ValueError(f"BatchNorm expects {self.num_channels} channels, got input shape {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return f"{self.num_channels}, momentum={self.momentum}, eps={self.eps}"


class L2Normalize(Layer):
    """Scale each sample to unit L2 norm along ``axis`` (FaceNet's embedding layer, :math:`\\|f(x)\\|_2 = 1`).

    Wraps :func:`scratchface.layers.normalization.l2_normalize_forward`.
    """

    def __init__(self, *, axis=1, eps=1e-10):
        super().__init__()
        self.axis = axis
        self.eps = check_positive_float(eps, "eps")

    def forward(self, x):
        out, self._cache = l2_normalize_forward(x, axis=self.axis, eps=self.eps)
        return out

    def backward(self, dout):
        return l2_normalize_backward(dout, self._pop_cache())

    def extra_repr(self):
        return f"axis={self.axis}"
