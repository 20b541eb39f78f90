"""Fully connected (dense, affine) layer: ``out = x @ w + b``.

One matrix product. ``impl='reference'`` is ``x @ w`` as written (NumPy's or CuPy's BLAS, on all
cores); ``'numba'`` (``'auto'`` for NumPy arrays) runs the same products on Numba's threads with BLAS
on one thread each (:mod:`scratchface.kernels.dense`): NumPy's multi-threaded BLAS leaves a worker
thread spinning for about 0.1 s after each call, which slowed the convolutions that follow (the start
of a network's backward pass) by up to 1.8x.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_float_array
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import check_dout, check_impl

__all__ = ["dense_forward", "dense_backward", "DenseCache", "gradcheck_cases"]


class DenseCache(NamedTuple):
    """What ``dense_backward`` needs from the forward pass."""
    x: object        # (N, D)
    w: object        # (D, M)
    has_bias: bool
    impl: str = "reference"   # the backward's products run as the forward's did


def dense_forward(x, w, b=None, *, impl="auto"):
    """Fully connected layer.

    Parameters
    ----------
    x : float array, shape (N, D)
        A batch of ``N`` vectors (flatten NCHW feature maps first, e.g. with
        ``x.reshape(len(x), -1)``).
    w : float array, shape (D, M)
        Weights, same dtype as ``x``.
    b : float array, shape (M,), optional
        Bias; ``None`` for none.
    impl : {'auto', 'reference', 'numba'}
        'reference': ``x @ w``; 'numba': the same products in blocks of rows or columns on Numba's
        threads, BLAS on one thread each (no spinning BLAS workers afterwards); 'auto': 'numba' for NumPy arrays,
        'reference' for CuPy arrays.

    Returns
    -------
    out : array, shape (N, M)
    cache : DenseCache

    Raises
    ------
    TypeError
        Non-float arrays or mixed dtypes.
    ValueError
        Wrong ranks, ``w.shape[0] != D``, ``b`` not of length ``M``, NaN/inf.

    Notes
    -----
    .. math:: \\mathrm{out}[n, m] = b_m + \\sum_d x[n, d]\\, w[d, m]

    References
    ----------
    FaceNet (Schroff et al. 2015) table 1, fc layers; DeepFace F7/F8.
    """
    check_float_array(x, "x", ndim=2)
    check_float_array(w, "w", ndim=2)
    if w.dtype != x.dtype:
        raise TypeError(f"w must have the dtype of x ({x.dtype}), got {w.dtype}")
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"w must have shape (D, M) with D = {x.shape[1]} (x is (N, D) = {tuple(x.shape)}), "
                         f"got {tuple(w.shape)}")
    if b is not None:
        check_float_array(b, "b", ndim=1)
        if b.dtype != x.dtype:
            raise TypeError(f"b must have the dtype of x ({x.dtype}), got {b.dtype}")
        if b.shape[0] != w.shape[1]:
            raise ValueError(f"b must have shape ({w.shape[1]},) (one per output), got {tuple(b.shape)}")
    get_array_module(x, w, b)  # refuses a NumPy / CuPy mix
    impl = check_impl(impl, x)
    if impl == "numba":  # the same products, in blocks on Numba's threads
        from ..kernels.dense import dense_output_numba  # noqa: PLC0415  (imports Numba: lazily)
        return dense_output_numba(x, w, b), DenseCache(x, w, b is not None, impl)
    out = x @ w
    if b is not None:
        out += b
    return out, DenseCache(x, w, b is not None, impl)


def dense_backward(dout, cache):
    """Gradients of ``dense_forward``.

    Parameters
    ----------
    dout : float array, shape (N, M)
    cache : DenseCache

    Returns
    -------
    dx : array, shape (N, D)
    dw : array, shape (D, M)
    db : array, shape (M,), or None without bias

    Notes
    -----
    .. math:: \\frac{\\partial L}{\\partial x} = \\mathrm{dout}\\, w^\\top, \\qquad
              \\frac{\\partial L}{\\partial w} = x^\\top \\mathrm{dout}, \\qquad
              \\frac{\\partial L}{\\partial b} = \\textstyle\\sum_n \\mathrm{dout}[n, :]
    """
    if not isinstance(cache, DenseCache):
        raise TypeError(f"cache must be the DenseCache returned by dense_forward, got {type(cache).__name__}")
    x, w = cache.x, cache.w
    dout = check_dout(dout, (x.shape[0], w.shape[1]), x.dtype)
    if cache.impl == "numba":
        from ..kernels.dense import dense_grads_numba  # noqa: PLC0415  (imports Numba: lazily)
        dx, dw = dense_grads_numba(dout, x, w)
    else:
        dx = dout @ w.T
        dw = x.T @ dout
    db = dout.sum(axis=0) if cache.has_bias else None
    return dx, dw, db


def gradcheck_cases(rng):
    """Small dense layers for ``scratchface gradcheck``."""
    return [
        GradcheckCase("dense 7->5", dense_forward, dense_backward,
                      {"x": rng.standard_normal((4, 7)), "w": rng.standard_normal((7, 5)),
                       "b": rng.standard_normal(5)}),
        GradcheckCase("dense 1->3", dense_forward, dense_backward,
                      {"x": rng.standard_normal((2, 1)), "w": rng.standard_normal((1, 3)),
                       "b": rng.standard_normal(3)}),
    ]
