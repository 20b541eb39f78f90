"""DREAM: a residual branch, gated by the head's yaw, that maps a profile face's feature towards the frontal one.

Cao et al. (CVPR 2018) observe that a CNN's feature of a profile face
:math:`\\Phi(x_p)` differs from the frontal face's :math:`\\Phi(x_f)` by a smooth
function of the feature and of the pose. The Deep Residual EquivAriant Mapping
block learns it as a residual, switched on by the yaw:

.. math:: \\Phi(x_f) \\approx \\Phi(x_p) + \\mathcal Y(x_p)\\, \\mathcal R(\\Phi(x_p)),

with :math:`\\mathcal R` a small residual branch and :math:`\\mathcal Y \\in [0, 1]`
a soft gate from the yaw angle: 0 for a frontal face (the feature passes through
unchanged), 1 for a full profile. The block sits after any embedding network's
last layer (the "stem"), adds few parameters and FLOPs, and can be trained alone
with the stem frozen.

::

    from scratchface.models import nn4, DreamNetwork
    net = DreamNetwork(nn4(rng=0), rng=1)      # NN4 + DREAM, 128-d
    emb = net.forward(x, yaw=yaw_degrees)      # yaw: (N,) degrees, from a pose estimator
    net.backward(demb)                         # gradients of R's weights (and the stem's)

What we chose (the paper leaves it to the implementation):

- :math:`\\mathcal R` is two fully connected layers ``D -> hidden -> D``, each followed
  by a ReLU, as in the authors' released code (``fc1, relu, fc2, relu``, then
  ``yaw * R + feature``); ``hidden = D`` by default.
- The gate is the paper's soft yaw coefficient (as we read it)
  :math:`\\mathcal Y(\\theta) = \\sigma\\big(10\\,(\\tfrac{4}{\\pi}|\\theta| - 1)\\big)`
  (:func:`yaw_gate`: 0.5 at 45 degrees, about 0 at 0 and 1 at 90 degrees); a
  gate in [0, 1] may also be given directly. The yaw is an input, not trained.
- :class:`DreamNetwork` takes the stem's output (the stem may end with its own L2
  normalisation) and re-normalises the sum to unit length (``normalize=True``),
  so that it can replace the stem in a FaceNet-style pipeline.

References
----------
Cao, Rong, Li, Tang, Loy, "Pose-Robust Face Recognition via Deep Residual Equivariant
Mapping", CVPR 2018, sec. 3; code: github.com/penincillin/DREAM (``src/end2end/ResNet.py``).
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_float_array, check_positive_int
from ..backend import get_array_module
from ..nn import Dense, L2Normalize, Module, ReLU, Sequential

__all__ = ["yaw_gate", "DreamBlock", "DreamNetwork", "attach_dream"]


def yaw_gate(yaw, *, degrees=True):
    """The soft yaw coefficient :math:`\\mathcal Y = \\sigma(10 (4|\\theta|/\\pi - 1)) \\in [0, 1]`.

    Parameters
    ----------
    yaw : float array, shape (N,)
        Head yaw of each face (0 frontal, +-90 degrees full profile); from a pose estimator.
    degrees : bool
        ``yaw`` in degrees (default) or radians.

    Returns
    -------
    array, shape (N,)
        In [0, 1]: 0.5 at 45 degrees; about 4.5e-5 at 0 and 1 - 4.5e-5 at 90 degrees.

    Raises
    ------
    ValueError
        ``yaw`` not 1-D, or NaN / infinity.
    """
    check_float_array(yaw, "yaw", ndim=1)
    xp = get_array_module(yaw)
    theta = xp.abs(yaw) * (np.pi / 180.0 if degrees else 1.0)
    z = 10.0 * (4.0 / np.pi * theta - 1.0)
    return 1.0 / (1.0 + xp.exp(-z))


def _check_gate(gate, n, dtype):
    check_float_array(gate, "gate", ndim=1)
    if gate.shape[0] != n:
        raise ValueError(f"gate (or yaw) must have one value per sample ({n}), got shape {tuple(gate.shape)}")
    if gate.size and (float(gate.min()) < 0.0 or float(gate.max()) > 1.0):
        raise ValueError(f"gate must be in [0, 1], got values from {float(gate.min())} to {float(gate.max())}")
    return gate.astype(dtype, copy=False)


class DreamBlock(Module):
    """``out = x + gate * R(x)``, ``R`` = fc ``D -> hidden``, ReLU, fc ``hidden -> D``, ReLU.

    Parameters
    ----------
    dim : int
        ``D``, the feature size.
    hidden : int, optional
        Width of ``R``'s hidden layer (default ``D``).
    rng, dtype, init
        As the layers of :mod:`scratchface.nn`.

    Notes
    -----
    Forward, with :math:`g_n \\in [0, 1]` the gate of sample ``n``:
    :math:`y_n = x_n + g_n R(x_n)`. Backward (the gate is an input, not differentiated):

    .. math:: \\frac{\\partial L}{\\partial x_n} = \\frac{\\partial L}{\\partial y_n}
              + J_R(x_n)^\\top \\Big(g_n \\frac{\\partial L}{\\partial y_n}\\Big).

    A frontal face (:math:`g = 0`) passes through and gives ``R`` no gradient.
    """

    def __init__(self, dim, hidden=None, *, rng=None, dtype=np.float32, init="he_normal"):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.hidden = self.dim if hidden is None else check_positive_int(hidden, "hidden")
        rng = as_generator(rng, allow_none=True)
        self.residual = Sequential(dict(fc1=Dense(self.dim, self.hidden, rng=rng, dtype=dtype, init=init),
                                        relu1=ReLU(),
                                        fc2=Dense(self.hidden, self.dim, rng=rng, dtype=dtype, init=init),
                                        relu2=ReLU()))

    def forward(self, x, yaw=None, *, gate=None, degrees=True):
        """``x + gate * R(x)`` for ``x`` of shape (N, D); give ``yaw`` (N,) or ``gate`` (N,) in [0, 1]."""
        check_float_array(x, "x", ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"DreamBlock expects input of shape (N, {self.dim}), got {tuple(x.shape)}")
        if (yaw is None) == (gate is None):
            raise ValueError("DreamBlock needs exactly one of yaw= (angles of each face) or gate= (values in [0, 1])")
        g = yaw_gate(yaw, degrees=degrees) if gate is None else gate
        g = _check_gate(g, x.shape[0], x.dtype)[:, None]                # (N, 1)
        r = self.residual.forward(x)
        self._cache = g
        return x + g * r

    def __call__(self, x, yaw=None, *, gate=None, degrees=True):
        return self.forward(x, yaw, gate=gate, degrees=degrees)

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("DreamBlock.backward called before forward")
        g, self._cache = self._cache, None
        return dout + self.residual.backward(g * dout)

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.dim,):
            raise ValueError(f"DreamBlock expects input of shape ({self.dim},), got {tuple(input_shape)}")
        return (self.dim,)

    def child_input_shapes(self, input_shape):
        return [("residual", self.residual, tuple(input_shape))]

    def flops(self, input_shape):
        """``R``'s multiply-adds plus one per feature for ``x + g * r``."""
        return self.residual.flops(tuple(input_shape)) + self.dim

    def extra_repr(self):
        return f"dim={self.dim}, hidden={self.hidden}"


class DreamNetwork(Module):
    """Any embedding network (the stem) followed by a :class:`DreamBlock` (and an L2 normalisation).

    Parameters
    ----------
    stem : Module
        Maps images ``(N, C, H, W)`` to features ``(N, D)``, e.g. :func:`~scratchface.models.nn4`.
        A :class:`~scratchface.models.facenet.FaceNetwork` knows its input shape; for another
        module give ``input_shape``.
    input_shape : (C, H, W), optional
        One input sample (default: ``stem.input_shape``).
    hidden : int, optional
        Width of the residual branch (default ``D``).
    normalize : bool
        L2-normalise the output (default True: a drop-in for a FaceNet embedding).
    rng, dtype, init
        For the DREAM block's layers.

    Notes
    -----
    ``forward(x, yaw=...)`` / ``forward(x, gate=...)``; ``backward(dout)`` returns
    ``dx`` and accumulates the gradients of the block and of the stem (freeze the
    stem by giving the optimiser ``net.dream.parameters()`` only).
    """

    def __init__(self, stem, *, input_shape=None, hidden=None, normalize=True, rng=None, dtype=np.float32,
                 init="he_normal"):
        super().__init__()
        if not isinstance(stem, Module):
            raise TypeError(f"stem must be a scratchface.nn Module, got {type(stem).__name__}")
        if input_shape is None:
            input_shape = getattr(stem, "input_shape", None)
            if input_shape is None:
                raise ValueError("give input_shape=(C, H, W): the stem does not say what input it was built for")
        self.input_shape = tuple(int(s) for s in input_shape)
        out = stem.output_shape(self.input_shape)
        if len(out) != 1:
            raise ValueError(f"the stem must output feature vectors (N, D), it gives {out} per sample: "
                             "end it with Flatten / Dense")
        self.stem = stem
        self.dream = DreamBlock(out[0], hidden, rng=rng, dtype=dtype, init=init)
        self.l2 = L2Normalize() if normalize else None

    def forward(self, x, yaw=None, *, gate=None, degrees=True):
        """Embeddings ``(N, D)`` of images ``x`` with yaws ``yaw`` (N,) (or gates ``gate`` (N,))."""
        features = self.stem.forward(x)
        out = self.dream.forward(features, yaw, gate=gate, degrees=degrees)
        return out if self.l2 is None else self.l2.forward(out)

    def __call__(self, x, yaw=None, *, gate=None, degrees=True):
        return self.forward(x, yaw, gate=gate, degrees=degrees)

    def backward(self, dout):
        if self.l2 is not None:
            dout = self.l2.backward(dout)
        return self.stem.backward(self.dream.backward(dout))

    def output_shape(self, input_shape=None):
        input_shape = self.input_shape if input_shape is None else tuple(input_shape)
        return self.dream.output_shape(self.stem.output_shape(input_shape))

    def child_input_shapes(self, input_shape):
        features = self.stem.output_shape(tuple(input_shape))
        rows = [("stem", self.stem, tuple(input_shape)), ("dream", self.dream, features)]
        if self.l2 is not None:
            rows.append(("l2", self.l2, features))
        return rows

    def flops(self, input_shape=None):
        input_shape = self.input_shape if input_shape is None else tuple(input_shape)
        return self.stem.flops(input_shape) + self.dream.flops(self.stem.output_shape(input_shape))


def attach_dream(stem, **kwargs):
    """``DreamNetwork(stem, **kwargs)``: add a DREAM block to any embedding network."""
    return DreamNetwork(stem, **kwargs)
