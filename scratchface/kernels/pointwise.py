r"""1x1 convolutions (stride 1, no padding) as matrix products, without columns (#16).

A 1x1 convolution mixes channels pixel by pixel: with the input as a matrix ``X (C, pixels)``,

.. math:: \mathrm{out} = W X + b\,\mathbf 1^T, \qquad dW = dY\, X^T, \qquad dX = W^T dY,
          \qquad db = dY\,\mathbf 1

(``W (F, C)``, ``dY (F, pixels)``). Two layouts give these matrices, chosen by
``scratchface.kernels.conv``:

* **per image** (``per_image_forward`` / ``per_image_backward``): NCHW as it is, ``X = x[b] (C, H*W)``, one
  product per image and task: nothing copied, but each product is only ``H*W`` wide, so only from
  ``POINTWISE_MIN_PIXELS`` pixels and ``POINTWISE_MIN_IMAGES`` images (NN2's 1x1 layers at 24x24 and
  12x12);
* **channel major** (``channel_major_forward`` / ``channel_major_backward``): the whole batch as one
  ``X (C, N*H*W)`` (a transposing copy, one parallel pass, none for one image), so the products are as
  wide as the batch: NN2's 1x1 layers at 6x6 and 3x3 (36 and 9 pixels per image) and P-Net's heads. The
  products are cut into row blocks, one task and one BLAS call (on its thread) each; the blocks depend on
  the shapes only, so the bits do not depend on the number of threads.

Measured (``python benchmarks/compare_conv_versions.py``, 2 threads, forward + backward, against the channels-last
columns path of bfdd696): see ``docs/benchmark_tables/compare_conv_versions.txt``.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .activations import prelu

__all__ = ["per_image_backward", "per_image_forward"]


@numba.njit(cache=True, parallel=True)
def per_image_forward(x, wmat, bias, alpha, has_alpha, out):
    """``out[b] = W (F, C) @ x[b] (C, H*W)`` per image, bias and PReLU in place."""
    n, f = out.shape[0], out.shape[1]
    for b in prange(n):
        res = out[b]
        np.dot(wmat, x[b], res)                                     # BLAS on this thread, into out
        _epilogue(res, bias, alpha, has_alpha)


@numba.njit(cache=True, parallel=True)
def per_image_backward(dout, x, wmat, dx, dw_parts, db_parts):
    """Part ``t`` of the images: ``dW_t += dout[b] @ x[b].T``, ``db_t += dout[b]`` summed over pixels,
    ``dx[b] = W.T @ dout[b]``."""
    n, f = dout.shape[0], dout.shape[1]
    parts = dw_parts.shape[0]
    for t in prange(parts):
        for b in range(t * n // parts, (t + 1) * n // parts):
            dw_parts[t] += np.dot(dout[b], x[b].T)
            np.dot(wmat.T, dout[b], dx[b])
            for k in range(f):
                total = 0.0
                for v in dout[b, k]:
                    total += v
                db_parts[t, k] += total


@numba.njit(cache=True, inline="always")
def _epilogue(res, bias, alpha, has_alpha):
    """``res[k] += bias[k]``, through PReLU with slope ``alpha[k]`` when ``has_alpha``, for each row ``k``."""
    for k in range(res.shape[0]):
        add, slope, row = bias[k], alpha[k], res[k]
        for q in range(row.shape[0]):
            v = row[q] + add
            if has_alpha:
                v = prelu(v, slope)
            row[q] = v
