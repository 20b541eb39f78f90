"""Layer modules: thin wrappers around the ``*_forward`` / ``*_backward`` pairs of :mod:`scratchface.layers`.

Each module owns its parameters (initialised from a seeded generator, float32
by default), checks the input's shape against what it was built for (so the
error names the layer and the expected ``(N, C, H, W)``), calls the layer
function (fast kernels, ``impl='auto'``) and keeps its cache for ``backward``.
Modules with a fast kernel (convolution, locally connected, pooling) take
``impl='auto' | 'reference' | 'numba'``; ``model.set_impl('reference')`` switches
a whole network to the readable NumPy code (what a lecture shows).
The arithmetic lives in :mod:`scratchface.layers` only.

FLOPs are multiply-adds per sample, the way the FaceNet tables count them: a
convolution costs ``OH * OW * F * (C * KH * KW + 1)`` (the ``+ 1`` is the bias
add, counted as one multiply-add: with it every conv row of FaceNet's tables
1-2 is reproduced, e.g. NN2's conv1 ``112*112*64*148 = 118.8M`` -> "119M",
where ``C*KH*KW`` alone gives 118.0M), a dense layer ``M * (D + 1)``; pooling,
activations and normalisation 0.
"""
from __future__ import annotations

import numpy as np

from .._validation import (
    as_generator,
    check_choice,
    check_in_range,
    check_int_pair,
    check_padding,
    check_positive_int,
)
from ..layers.activations import (
    maxout_backward,
    maxout_forward,
    prelu_backward,
    prelu_forward,
    relu_backward,
    relu_forward,
)
from ..layers.conv import conv2d_backward, conv2d_forward, conv_output_size
from ..layers.dense import dense_backward, dense_forward
from ..layers.dropout import dropout_backward, dropout_forward
from ..layers.locally_connected import locally_connected2d_backward, locally_connected2d_forward
from ..layers.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_output_size,
)
from ..layers.shape import flatten_backward, flatten_forward
from ..layers.softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward
from .init import get_initialiser, zeros
from .module import Module, Parameter, check_input_shape

__all__ = ["Layer", "Conv2d", "LocallyConnected2d", "Dense", "FullyConnected", "MaxPool2d", "AvgPool2d", "L2Pool2d",
           "ReLU", "PReLU", "Maxout", "Dropout", "Flatten", "Softmax", "LogSoftmax"]


IMPLS = ("auto", "reference", "numba")


class Layer(Module):
    """Base of the layer modules: the cache check and the dtype check against the parameters."""

    impl = None      # 'auto' | 'reference' | 'numba' on modules with a fast kernel

    def _check_dtype(self, x):
        params = self.parameters()
        if params and x.dtype != params[0].data.dtype:
            raise TypeError(f"{type(self).__name__} has {params[0].data.dtype} parameters but x is {x.dtype}: "
                            f"convert x with x.astype(np.{params[0].data.dtype}) or the model with "
                            f"model.astype(np.{x.dtype})")

    def _pop_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        cache, self._cache = self._cache, None
        return cache


# ---------------------------------------------------------------- convolution, dense
class Conv2d(Layer):
    """2-D convolution module (:func:`scratchface.layers.conv.conv2d_forward`).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``F``.
    kernel_size : int or (KH, KW)
    stride : int or (sh, sw)
    padding : int, (ph, pw) or (top, bottom, left, right)
    bias : bool
    init : str or callable
        Weight initialiser (:mod:`scratchface.nn.init`), default He normal.
    rng : numpy.random.Generator or int, optional
        Seeds the initialiser (``None``: a fresh unseeded generator).
    dtype : float dtype
        Of the parameters (float32 by default; float64 for gradchecks).
    impl : {'auto', 'reference', 'numba'}
        Passed to the layer function: ``'auto'`` is the fast kernel for NumPy arrays.

    Attributes
    ----------
    weight : Parameter, shape (F, C, KH, KW)
    bias : Parameter, shape (F,), or None
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, bias=True,
                 init="he_normal", rng=None, dtype=np.float32, impl="auto"):
        super().__init__()
        self.impl = check_choice(impl, "impl", IMPLS)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = check_int_pair(kernel_size, "kernel_size")
        self.stride = check_int_pair(stride, "stride")
        self.padding = check_padding(padding, "padding")
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(get_initialiser(init)(shape, as_generator(rng, allow_none=True), dtype=dtype))
        self.bias = Parameter(zeros(self.out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input_shape(x, "Conv2d", (self.in_channels, None, None))
        self._check_dtype(x)
        out, self._cache = conv2d_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                          stride=self.stride, padding=self.padding, impl=self.impl)
        return out

    def backward(self, dout):
        dx, dw, db = conv2d_backward(dout, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        c, h, w = input_shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} input channels, got input shape {input_shape}")
        (kh, kw), (sh, sw), (top, bottom, left, right) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_output_size(h, kh, sh, top, bottom), conv_output_size(w, kw, sw, left, right))

    def _own_flops(self, input_shape):
        f, oh, ow = self.output_shape(input_shape)
        kh, kw = self.kernel_size
        return oh * ow * f * (self.in_channels * kh * kw + (self.bias is not None))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class Dense(Layer):
    """Fully connected module, ``out = x @ w + b`` (:func:`scratchface.layers.dense.dense_forward`).

    Parameters
    ----------
    in_features, out_features : int
        ``D`` and ``M``.
    bias : bool
    init : str or callable
        Weight initialiser, default He normal (``fan_in = D``).
    rng : numpy.random.Generator or int, optional
    dtype : float dtype
    impl : {'auto', 'reference', 'numba'}
        Passed to the layer functions (``'numba'``: the products on Numba's threads).

    Attributes
    ----------
    weight : Parameter, shape (D, M)
    bias : Parameter, shape (M,), or None
    """

    def __init__(self, in_features, out_features, *, bias=True, init="he_normal", rng=None, dtype=np.float32,
                 impl="auto"):
        super().__init__()
        self.impl = check_choice(impl, "impl", IMPLS)
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        shape = (self.in_features, self.out_features)
        self.weight = Parameter(get_initialiser(init)(shape, as_generator(rng, allow_none=True), dtype=dtype))
        self.bias = Parameter(zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input_shape(x, "Dense", (self.in_features,))
        self._check_dtype(x)
        out, self._cache = dense_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                         impl=self.impl)
        return out

    def backward(self, dout):
        dx, dw, db = dense_backward(dout, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense expects input of shape ({self.in_features},), got {tuple(input_shape)}: "
                             "put a Flatten before it")
        return (self.out_features,)

    def _own_flops(self, input_shape):
        self.output_shape(input_shape)
        return self.out_features * (self.in_features + (self.bias is not None))

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


FullyConnected = Dense


class LocallyConnected2d(Layer):
    """Locally connected module: untied filters at every output pixel (DeepFace L4-L6).

    Wraps :func:`scratchface.layers.locally_connected.locally_connected2d_forward`.
    The weights depend on the output size, so the input size is fixed at construction.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``F``.
    kernel_size : int or (KH, KW)
    input_size : (H, W)
        The spatial size of the input this layer is built for.
    stride, padding, bias, init, rng, dtype, impl
        As :class:`Conv2d`.

    Attributes
    ----------
    weight : Parameter, shape (OH, OW, F, C, KH, KW)
    bias : Parameter, shape (F, OH, OW), or None
    """

    def __init__(self, in_channels, out_channels, kernel_size, input_size, *, stride=1, padding=0, bias=True,
                 init="he_normal", rng=None, dtype=np.float32, impl="auto"):
        super().__init__()
        self.impl = check_choice(impl, "impl", IMPLS)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = check_int_pair(kernel_size, "kernel_size")
        self.input_size = check_int_pair(input_size, "input_size")
        self.stride = check_int_pair(stride, "stride")
        self.padding = check_padding(padding, "padding")
        (kh, kw), (sh, sw), (top, bottom, left, right) = self.kernel_size, self.stride, self.padding
        self.out_size = (conv_output_size(self.input_size[0], kh, sh, top, bottom),
                         conv_output_size(self.input_size[1], kw, sw, left, right))
        shape = self.out_size + (self.out_channels, self.in_channels, kh, kw)
        self.weight = Parameter(get_initialiser(init)(shape, as_generator(rng, allow_none=True), dtype=dtype))
        self.bias = Parameter(zeros((self.out_channels,) + self.out_size, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input_shape(x, "LocallyConnected2d", (self.in_channels,) + self.input_size)
        self._check_dtype(x)
        out, self._cache = locally_connected2d_forward(
            x, self.weight.data, None if self.bias is None else self.bias.data, stride=self.stride,
            padding=self.padding, impl=self.impl)
        return out

    def backward(self, dout):
        dx, dw, db = locally_connected2d_backward(dout, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_channels,) + self.input_size:
            raise ValueError(f"LocallyConnected2d expects input of shape {(self.in_channels,) + self.input_size}, "
                             f"got {tuple(input_shape)}")
        return (self.out_channels,) + self.out_size

    def _own_flops(self, input_shape):
        f, oh, ow = self.output_shape(input_shape)
        kh, kw = self.kernel_size
        return oh * ow * f * (self.in_channels * kh * kw + (self.bias is not None))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"input_size={self.input_size}, stride={self.stride}, padding={self.padding}")


# ---------------------------------------------------------------- activations
class ReLU(Layer):
    """``max(x, 0)`` elementwise (:func:`scratchface.layers.activations.relu_forward`); any shape.

    ``impl`` ('auto', 'reference', 'numba') is passed to the layer functions."""

    def __init__(self, *, impl="auto"):
        super().__init__()
        self.impl = check_choice(impl, "impl", IMPLS)

    def forward(self, x):
        out, self._cache = relu_forward(x, impl=self.impl)
        return out

    def backward(self, dout):
        return relu_backward(dout, self._pop_cache(), impl=self.impl)


class PReLU(Layer):
    """Parametric ReLU, one learnt slope per channel (MTCNN; :func:`~scratchface.layers.activations.prelu_forward`).

    Parameters
    ----------
    num_channels : int
        ``C`` (axis 1 of the input).
    init : float
        Initial slope, 0.25 as in He et al. 2015 and ``torch.nn.PReLU``.
    dtype : float dtype

    Attributes
    ----------
    alpha : Parameter, shape (C,)
    """

    def __init__(self, num_channels, *, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_channels = check_positive_int(num_channels, "num_channels")
        self.alpha = Parameter(np.full(self.num_channels, init, dtype=dtype))

    def forward(self, x):
        if not (hasattr(x, "ndim") and x.ndim >= 2 and x.shape[1] == self.num_channels):
            raise ValueError(f"PReLU expects input of shape (N, {self.num_channels}, ...), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        self._check_dtype(x)
        out, self._cache = prelu_forward(x, self.alpha.data)
        return out

    def backward(self, dout):
        dx, dalpha = prelu_backward(dout, self._pop_cache())
        self.alpha.grad += dalpha
        return dx

    def output_shape(self, input_shape):
        if input_shape[0] != self.num_channels:
            raise ValueError(f"PReLU expects {self.num_channels} channels, got input shape {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        return str(self.num_channels)


class Maxout(Layer):
    """Maxout over groups of ``pieces`` consecutive channels (FaceNet NN1 fc, p = 2).

    Wraps :func:`scratchface.layers.activations.maxout_forward`; ``(N, M * p, ...) -> (N, M, ...)``.
    """

    def __init__(self, pieces):
        super().__init__()
        self.pieces = check_positive_int(pieces, "pieces")

    def forward(self, x):
        out, self._cache = maxout_forward(x, pieces=self.pieces)
        return out

    def backward(self, dout):
        return maxout_backward(dout, self._pop_cache())

    def output_shape(self, input_shape):
        if input_shape[0] % self.pieces:
            raise ValueError(f"Maxout(pieces={self.pieces}) needs a channel count divisible by {self.pieces}, "
                             f"got input shape {tuple(input_shape)}")
        return (input_shape[0] // self.pieces,) + tuple(input_shape[1:])

    def extra_repr(self):
        return f"pieces={self.pieces}"


# ---------------------------------------------------------------- pooling
class _Pool2d(Layer):
    """Shared by the three pools: hyper-parameters, shape rule (PyTorch's), no parameters, 0 FLOPs."""

    _forward = _backward = None
    _name = ""

    def __init__(self, kernel_size, *, stride=None, padding=0, ceil_mode=False, impl="auto"):
        super().__init__()
        self.impl = check_choice(impl, "impl", IMPLS)
        self.kernel_size = check_int_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else check_int_pair(stride, "stride")
        self.padding = check_padding(padding, "padding")
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)

    def _kwargs(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    impl=self.impl)

    def forward(self, x):
        check_input_shape(x, self._name, (None, None, None))
        out, self._cache = type(self)._forward(x, **self._kwargs())
        return out

    def backward(self, dout):
        return type(self)._backward(dout, self._pop_cache())

    def output_shape(self, input_shape):
        c, h, w = input_shape
        (kh, kw), (sh, sw), (top, bottom, left, right) = self.kernel_size, self.stride, self.padding
        return (c, pool_output_size(h, kh, sh, top, bottom, self.ceil_mode),
                pool_output_size(w, kw, sw, left, right, self.ceil_mode))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, " \
               f"ceil_mode={self.ceil_mode}"


class MaxPool2d(_Pool2d):
    """Max pooling module (:func:`scratchface.layers.pooling.max_pool2d_forward`); torch.nn.MaxPool2d's sizes."""
    _forward, _backward, _name = staticmethod(max_pool2d_forward), staticmethod(max_pool2d_backward), "MaxPool2d"


class AvgPool2d(_Pool2d):
    """Average pooling module (:func:`scratchface.layers.pooling.avg_pool2d_forward`)."""
    _forward, _backward, _name = staticmethod(avg_pool2d_forward), staticmethod(avg_pool2d_backward), "AvgPool2d"

    def __init__(self, kernel_size, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True, impl="auto"):
        super().__init__(kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, impl=impl)
        self.count_include_pad = bool(count_include_pad)

    def _kwargs(self):
        return dict(super()._kwargs(), count_include_pad=self.count_include_pad)


class L2Pool2d(_Pool2d):
    """L2 pooling module, :math:`\\sqrt{\\sum x^2}` per window (FaceNet NN2).

    Wraps :func:`scratchface.layers.pooling.l2_pool2d_forward`.
    """
    _forward, _backward, _name = staticmethod(l2_pool2d_forward), staticmethod(l2_pool2d_backward), "L2Pool2d"



# ---------------------------------------------------------------- regularisation
class Dropout(Layer):
    """Inverted dropout (:func:`scratchface.layers.dropout.dropout_forward`): active in ``train()`` mode only.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of dropping a unit.
    rng : numpy.random.Generator or int, optional
        Where the masks come from; the generator advances with every forward
        pass, so a seeded model trains the same way every run.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        self.p = check_in_range(p, "p", 0.0, 1.0, inclusive=(True, False))
        self.rng = as_generator(rng, allow_none=True)

    def forward(self, x):
        out, self._cache = dropout_forward(x, p=self.p, training=self.training, rng=self.rng)
        return out

    def backward(self, dout):
        return dropout_backward(dout, self._pop_cache())

    def extra_repr(self):
        return f"p={self.p}"


# ---------------------------------------------------------------- shape, output
class Flatten(Layer):
    """``(N, C, H, W) -> (N, C*H*W)`` (:func:`scratchface.layers.shape.flatten_forward`), before a Dense layer."""

    def forward(self, x):
        out, self._cache = flatten_forward(x)
        return out

    def backward(self, dout):
        return flatten_backward(dout, self._pop_cache())

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Softmax(Layer):
    """Softmax along ``axis`` (:func:`scratchface.layers.softmax.softmax_forward`).

    For training a classifier, leave it out and give the logits to
    ``softmax_cross_entropy_forward`` (more stable); use it to read probabilities.
    """

    def __init__(self, *, axis=1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        out, self._cache = softmax_forward(x, axis=self.axis)
        return out

    def backward(self, dout):
        return softmax_backward(dout, self._pop_cache())

    def extra_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """Log-softmax along ``axis`` (:func:`scratchface.layers.softmax.log_softmax_forward`)."""

    def forward(self, x):
        out, self._cache = log_softmax_forward(x, axis=self.axis)
        return out

    def backward(self, dout):
        return log_softmax_backward(dout, self._pop_cache())
