"""Softmax losses with angular margins: softmax -> modified softmax -> SphereFace -> CosFace -> ArcFace.

A classifier's logit for class :math:`j` is
:math:`W_j^\\top x = \\lVert W_j \\rVert \\lVert x \\rVert \\cos\\theta_j`. The margin
losses fix the norms and make the class decision depend on the angle alone,
then make the target class *harder* to win so that each identity's features
gather in a narrow cone:

.. list-table::
   :header-rows: 1

   * - loss
     - target logit (class :math:`y`)
     - other logits
   * - softmax
     - :math:`W_y^\\top x + b_y`
     - :math:`W_j^\\top x + b_j`
   * - modified (normalised)
     - :math:`s \\cos\\theta_y`
     - :math:`s \\cos\\theta_j`
   * - SphereFace (A-Softmax)
     - :math:`\\lVert x\\rVert (\\lambda\\cos\\theta_y + \\psi(\\theta_y))/(1+\\lambda)`
     - :math:`\\lVert x\\rVert\\cos\\theta_j`
   * - CosFace
     - :math:`s (\\cos\\theta_y - m)`
     - :math:`s \\cos\\theta_j`
   * - ArcFace
     - :math:`s \\cos(\\theta_y + m)`
     - :math:`s \\cos\\theta_j`
   * - combined
     - :math:`s (\\cos(m_1\\theta_y + m_2) - m_3)`
     - :math:`s \\cos\\theta_j`

followed by the softmax cross-entropy (the ``softmax_cross_entropy`` layer:
mean over the batch, max-shifted log-sum-exp, so ``s = 64`` is safe in float32).

Shapes: ``features`` (N, D), ``weights`` (D, C) (as the ``dense`` layer,
logits = features @ weights), ``labels`` (N,) ints in [0, C). Features and the
weight columns are always L2-normalised inside (through the ``l2_normalize``
layer), so there is nothing to normalise beforehand; for SphereFace and the
modified softmax with ``scale=None`` the feature norm multiplies the cosines.

Numerics at :math:`\\cos\\theta = \\pm 1`: where the angle itself is needed,
the cosine is clipped to :math:`[-1 + 10^{-7}, 1 - 10^{-7}]` before ``arccos``
and the gradient is taken through the clip (0 outside it), so that
:math:`d\\theta/d\\cos\\theta = -1/\\sin\\theta` is never evaluated at 0: no
NaN or inf in loss or gradient. SphereFace needs no ``arccos`` for its value:
:math:`\\cos(m\\theta) = T_m(\\cos\\theta)`, the Chebyshev polynomial, whose
derivative :math:`m U_{m-1}` is finite everywhere.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_in_range, check_labels, check_positive_float, check_positive_int
from ..backend import get_array_module
from ..gradcheck import GradcheckCase
from ._common import (
    l2_normalize_backward,
    l2_normalize_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)

__all__ = [
    "softmax_loss_forward", "softmax_loss_backward",
    "normalized_softmax_loss_forward", "normalized_softmax_loss_backward",
    "sphereface_loss_forward", "sphereface_loss_backward", "sphereface_psi", "sphereface_lambda",
    "cosface_loss_forward", "cosface_loss_backward",
    "arcface_loss_forward", "arcface_loss_backward",
    "combined_margin_loss_forward", "combined_margin_loss_backward",
    "gradcheck_cases",
]

COS_CLIP = 1e-7  # cosines are clipped to [-1 + COS_CLIP, 1 - COS_CLIP] before arccos


class SoftmaxLossCache(NamedTuple):
    features: object
    weights: object
    has_bias: bool
    ce_cache: object


class MarginLossCache(NamedTuple):
    x_hat: object        # (N, D) unit features
    x_cache: object      # l2_normalize cache of the features
    w_hat: object        # (D, C) unit weight columns
    w_cache: object
    g: object            # (N, C) the cosines with the target entry replaced by the target function
    dtarget: object      # (N,) d target / d cos(theta_y)
    scale: object        # float s, or (N,) feature norms
    scale_is_norm: bool
    labels: object
    ce_cache: object


# ----------------------------------------------------------------------------- validation

def _check_inputs(features, weights, labels):
    check_float_array(features, "features", ndim=2)
    check_float_array(weights, "weights", ndim=2)
    xp = get_array_module(features, weights)
    if weights.shape[0] != features.shape[1]:
        raise ValueError(f"weights must have shape (D, C) = ({features.shape[1]}, num_classes) to match "
                         f"features (N, D) = {tuple(features.shape)}, got {tuple(weights.shape)}")
    labels = xp.asarray(labels) if isinstance(labels, (list, tuple)) else labels
    check_labels(labels, "labels", features.shape[0], num_classes=weights.shape[1])
    return labels


# ----------------------------------------------------------------------------- plain softmax

def softmax_loss_forward(features, weights, bias=None, *, labels):
    """Plain softmax loss: a dense layer then the softmax cross-entropy.

    .. math:: L = -\\frac{1}{N}\\sum_i \\log \\frac{e^{W_{y_i}^\\top x_i + b_{y_i}}}{\\sum_j e^{W_j^\\top x_i + b_j}}

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; bias : (C,) or None ; labels : (N,) int

    Returns
    -------
    loss : scalar ; cache : SoftmaxLossCache
    """
    labels = _check_inputs(features, weights, labels)
    logits = features @ weights
    if bias is not None:
        check_float_array(bias, "bias", ndim=1)
        if bias.shape[0] != weights.shape[1]:
            raise ValueError(f"bias must have shape ({weights.shape[1]},), got {tuple(bias.shape)}")
        logits = logits + bias
    loss, ce = softmax_cross_entropy_forward(logits, labels=labels)
    return loss, SoftmaxLossCache(features, weights, bias is not None, ce)


def softmax_loss_backward(dloss, cache):
    """``(dfeatures, dweights, dbias)``; ``dbias`` is None without a bias."""
    dlogits = softmax_cross_entropy_backward(dloss, cache.ce_cache)
    db = dlogits.sum(axis=0) if cache.has_bias else None
    return dlogits @ cache.weights.T, cache.features.T @ dlogits, db


# ----------------------------------------------------------------------------- shared machinery

def _margin_forward(features, weights, labels, target, scale):
    """Cosines, target function on the target entries, scale, cross-entropy.

    ``target(c) -> (t, dt)`` maps the target cosines (N,) to the target values
    and their derivative; ``scale`` is a float or None (the feature norms).
    """
    xp = get_array_module(features)
    x_hat, x_cache = l2_normalize_forward(features, axis=1)
    w_hat, w_cache = l2_normalize_forward(weights, axis=0)
    cos = x_hat @ w_hat
    rows = xp.arange(features.shape[0])
    t, dt = target(cos[rows, labels])
    g = cos.copy()
    g[rows, labels] = t
    if scale is None:
        s = xp.sqrt((features * features).sum(axis=1))
        logits = s[:, None] * g
    else:
        s = scale
        logits = s * g
    loss, ce = softmax_cross_entropy_forward(logits, labels=labels)
    return loss, MarginLossCache(x_hat, x_cache, w_hat, w_cache, g, dt, s, scale is None, labels, ce)


def _margin_backward(dloss, cache):
    xp = get_array_module(cache.g)
    dlogits = softmax_cross_entropy_backward(dloss, cache.ce_cache)
    rows = xp.arange(dlogits.shape[0])
    if cache.scale_is_norm:
        dg = dlogits * cache.scale[:, None]
        dnorm = (dlogits * cache.g).sum(axis=1)          # d L / d ||x_i||
    else:
        dg = dlogits * cache.scale
    dcos = dg.copy()
    dcos[rows, cache.labels] = dg[rows, cache.labels] * cache.dtarget
    dx = l2_normalize_backward(dcos @ cache.w_hat.T, cache.x_cache)
    dw = l2_normalize_backward(cache.x_hat.T @ dcos, cache.w_cache)
    if cache.scale_is_norm:
        dx = dx + dnorm[:, None] * cache.x_hat             # d ||x|| / dx = x / ||x||
    return dx, dw


def _clipped_angle(c):
    """``theta = arccos(clip(c))`` and ``dtheta/dc`` (0 where the clip is active)."""
    xp = get_array_module(c)
    lo, hi = -1 + COS_CLIP, 1 - COS_CLIP
    inside = (c >= lo) & (c <= hi)
    cc = xp.clip(c, lo, hi)
    theta = xp.arccos(cc)
    dtheta = xp.where(inside, -1 / xp.sqrt(1 - cc * cc), 0).astype(c.dtype)
    return theta, dtheta


def _check_scale(scale):
    return check_positive_float(scale, "scale")


# ----------------------------------------------------------------------------- modified softmax

def normalized_softmax_loss_forward(features, weights, *, labels, scale=None):
    """Modified softmax: unit weight columns, no bias, logits :math:`s \\cos\\theta_j`.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0 or None
        None: :math:`s = \\lVert x_i \\rVert` (SphereFace's "modified softmax");
        a number: fixed :math:`s` on unit features (NormFace).

    Returns
    -------
    loss : scalar ; cache : MarginLossCache

    Notes
    -----
    Backward: :math:`\\partial L/\\partial\\cos\\theta_{ij} = s\\,(p_{ij} - [j = y_i])/N`,
    then through :math:`\\cos = \\hat x^\\top \\hat W` and the two normalisations;
    with ``scale=None`` also :math:`\\partial L/\\partial \\lVert x_i\\rVert = \\sum_j
    \\partial L/\\partial z_{ij} \\cos\\theta_{ij}` times :math:`\\hat x_i`.

    References
    ----------
    Liu et al., "SphereFace", CVPR 2017, sec. 3.1; Wang et al., "NormFace", 2017.
    """
    labels = _check_inputs(features, weights, labels)
    s = None if scale is None else _check_scale(scale)
    return _margin_forward(features, weights, labels, lambda c: (c, np.ones_like(c)), s)


def normalized_softmax_loss_backward(dloss, cache):
    """``(dfeatures, dweights)``."""
    return _margin_backward(dloss, cache)


# ----------------------------------------------------------------------------- SphereFace

def _chebyshev(c, m):
    """``T_m(c)`` and its derivative ``m U_{m-1}(c)`` by the three-term recurrences."""
    xp = get_array_module(c)
    t_prev, t = xp.ones_like(c), c                 # T_0, T_1
    u_prev, u = xp.zeros_like(c), xp.ones_like(c)  # U_{-1}, U_0
    for _ in range(m - 1):
        t_prev, t = t, 2 * c * t - t_prev
        u_prev, u = u, 2 * c * u - u_prev
    return t, m * u


def sphereface_psi(cos_theta, margin=4):
    """SphereFace's monotone target function and its derivative in :math:`\\cos\\theta`.

    .. math:: \\psi(\\theta) = (-1)^k \\cos(m\\theta) - 2k,
              \\quad \\theta \\in [k\\pi/m, (k+1)\\pi/m],\\ k \\in \\{0, \\dots, m-1\\}

    decreasing from 1 at :math:`\\theta = 0` to :math:`1 - 2m` at :math:`\\pi`
    (the plain :math:`\\cos(m\\theta)` is not monotone). :math:`\\cos(m\\theta)` is
    evaluated as the Chebyshev polynomial :math:`T_m(\\cos\\theta)`; only the
    integer :math:`k` needs the angle.

    Returns
    -------
    psi, dpsi_dcos : arrays of the shape of ``cos_theta``
    """
    xp = get_array_module(cos_theta)
    c = xp.clip(cos_theta, -1, 1)
    theta = xp.arccos(c)
    k = xp.minimum(xp.floor(theta * margin / math.pi), margin - 1)
    sign = 1 - 2 * (k % 2)
    t, dt = _chebyshev(c, margin)
    inside = (cos_theta >= -1) & (cos_theta <= 1)
    return sign * t - 2 * k, xp.where(inside, sign * dt, 0).astype(c.dtype)


def sphereface_lambda(iteration, *, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    """The annealing schedule SphereFace trains with.

    .. math:: \\lambda = \\max(\\lambda_{min}, \\; base\\,(1 + \\gamma\\, it)^{-power})

    1000 at the start (almost a plain softmax), then down to 5 (the defaults
    are those of the authors' Caffe prototxt). Pass the result as ``lambda_``.
    """
    it = check_in_range(iteration, "iteration", 0, math.inf, inclusive=(True, False))
    return max(lambda_min, base * (1 + gamma * it) ** (-power))


def sphereface_loss_forward(features, weights, *, labels, margin=4, lambda_=0.0):
    """A-Softmax (SphereFace): angular margin :math:`m` multiplies the target angle.

    Target logit :math:`\\lVert x\\rVert \\frac{\\lambda\\cos\\theta_y + \\psi(\\theta_y)}{1 + \\lambda}`,
    others :math:`\\lVert x\\rVert \\cos\\theta_j`; unit weight columns, no bias.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    margin : int >= 1
        :math:`m` (the paper uses 4; 1 gives the modified softmax).
    lambda_ : float >= 0
        Annealing weight (``sphereface_lambda(iteration)``); 0 is the pure A-Softmax.

    Returns
    -------
    loss : scalar ; cache : MarginLossCache

    Notes
    -----
    :math:`d t/d\\cos\\theta_y = (\\lambda + (-1)^k m U_{m-1}(\\cos\\theta_y))/(1+\\lambda)`;
    the rest as in ``normalized_softmax_loss_forward`` with ``scale=None``.

    References
    ----------
    Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", CVPR 2017, eq. 7.
    """
    labels = _check_inputs(features, weights, labels)
    margin = check_positive_int(margin, "margin")
    lam = check_positive_float(lambda_, "lambda_", allow_zero=True)

    def target(c):
        psi, dpsi = sphereface_psi(c, margin)
        return (lam * c + psi) / (1 + lam), (lam + dpsi) / (1 + lam)

    return _margin_forward(features, weights, labels, target, None)


def sphereface_loss_backward(dloss, cache):
    """``(dfeatures, dweights)``."""
    return _margin_backward(dloss, cache)


# ----------------------------------------------------------------------------- CosFace / ArcFace / combined

def cosface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.35):
    """CosFace (large margin cosine loss): target logit :math:`s(\\cos\\theta_y - m)`.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0 ; margin : float in (0, 2)

    Notes
    -----
    :math:`dt/d\\cos\\theta_y = 1`: no angle, no clipping needed.

    References
    ----------
    Wang et al., "CosFace: Large Margin Cosine Loss", CVPR 2018, eq. 4.
    """
    labels = _check_inputs(features, weights, labels)
    s = _check_scale(scale)
    m = check_in_range(margin, "margin", 0.0, 2.0, inclusive=(False, False))
    return _margin_forward(features, weights, labels, lambda c: (c - m, np.ones_like(c)), s)


def cosface_loss_backward(dloss, cache):
    """``(dfeatures, dweights)``."""
    return _margin_backward(dloss, cache)


def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    """ArcFace (additive angular margin): target logit :math:`s\\cos(\\theta_y + m)`.

    When :math:`\\theta_y + m > \\pi` the cosine would turn back up (a *larger*
    logit for a worse angle); there the target is replaced, as in the authors'
    code, by :math:`\\cos\\theta_y - m \\sin m`.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0 ; margin : float in (0, pi/2]

    Notes
    -----
    :math:`dt/d\\cos\\theta = \\sin(\\theta + m)/\\sin\\theta` (via the clipped
    ``arccos``; 0 within ``COS_CLIP`` of +-1), and 1 in the fallback region.

    References
    ----------
    Deng et al., "ArcFace: Additive Angular Margin Loss", CVPR 2019, eq. 3;
    insightface ``ArcFace`` (``easy_margin=False``).
    """
    labels = _check_inputs(features, weights, labels)
    s = _check_scale(scale)
    m = check_in_range(margin, "margin", 0.0, math.pi / 2, inclusive=(False, True))

    def target(c):
        xp = get_array_module(c)
        theta, dtheta = _clipped_angle(c)
        use_margin = theta + m <= math.pi
        t = xp.where(use_margin, xp.cos(theta + m), c - m * math.sin(m))
        dt = xp.where(use_margin, -xp.sin(theta + m) * dtheta, 1)
        return t.astype(c.dtype), dt.astype(c.dtype)

    return _margin_forward(features, weights, labels, target, s)


def arcface_loss_backward(dloss, cache):
    """``(dfeatures, dweights)``."""
    return _margin_backward(dloss, cache)


def combined_margin_loss_forward(features, weights, *, labels, scale=64.0, m1=1.0, m2=0.5, m3=0.0):
    """The combined margin of insightface: target logit :math:`s(\\cos(m_1\\theta_y + m_2) - m_3)`.

    ``(m1, m2, m3) = (m, 0, 0)`` is SphereFace's multiplicative margin (without
    the annealing), ``(1, m, 0)`` ArcFace, ``(1, 0, m)`` CosFace.

    Beyond :math:`m_1\\theta + m_2 > \\pi` the target is continued with
    SphereFace's monotone construction,
    :math:`(-1)^k \\cos(m_1\\theta + m_2) - 2k - m_3`, :math:`k = \\lfloor (m_1\\theta + m_2)/\\pi \\rfloor`,
    which is continuous and decreasing (ArcFace's own fallback,
    ``arcface_loss_forward``, is instead the linear :math:`\\cos\\theta - m\\sin m`).

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0
    m1 : float >= 1 ; m2 : float in [0, pi) ; m3 : float in [0, 2)

    Notes
    -----
    :math:`dt/d\\cos\\theta = (-1)^k m_1 \\sin(m_1\\theta + m_2)/\\sin\\theta`
    (clipped ``arccos``); with ``m1 == 1`` and ``m2 == 0`` no angle is formed
    and :math:`dt/d\\cos\\theta = 1`.

    References
    ----------
    Deng et al., "ArcFace", CVPR 2019, eq. 4.
    """
    labels = _check_inputs(features, weights, labels)
    s = _check_scale(scale)
    m1 = check_in_range(m1, "m1", 1.0, math.inf, inclusive=(True, False))
    m2 = check_in_range(m2, "m2", 0.0, math.pi, inclusive=(True, False))
    m3 = check_in_range(m3, "m3", 0.0, 2.0, inclusive=(True, False))

    def target(c):
        xp = get_array_module(c)
        if m1 == 1.0 and m2 == 0.0:
            return c - m3, xp.ones_like(c)
        theta, dtheta = _clipped_angle(c)
        phase = m1 * theta + m2
        k = xp.floor(phase / math.pi)
        sign = 1 - 2 * (k % 2)
        t = sign * xp.cos(phase) - 2 * k - m3
        dt = -sign * xp.sin(phase) * m1 * dtheta
        return t.astype(c.dtype), dt.astype(c.dtype)

    return _margin_forward(features, weights, labels, target, s)


def combined_margin_loss_backward(dloss, cache):
    """``(dfeatures, dweights)``."""
    return _margin_backward(dloss, cache)


# ----------------------------------------------------------------------------- gradcheck

def _features_near(weights, labels, angles, rng):
    """Unit features at the given angles from their class's weight column (away from kinks)."""
    w = weights / np.linalg.norm(weights, axis=0)
    x = np.empty((len(labels), weights.shape[0]))
    for i, (y, a) in enumerate(zip(labels, angles)):
        u = w[:, y]
        v = rng.standard_normal(weights.shape[0])
        v -= u * (u @ v)
        v /= np.linalg.norm(v)
        x[i] = np.cos(a) * u + np.sin(a) * v
    return x


def gradcheck_cases(rng):
    """Small float64 cases; target angles chosen on both sides of the ArcFace fallback (pi - m)."""
    d, c = 4, 5
    w = rng.standard_normal((d, c))
    labels = np.array([0, 3, 1])
    x = _features_near(w, labels, [0.4, 1.3, 2.9], rng) * np.array([[1.5], [0.7], [2.0]])
    b = rng.standard_normal(c)
    kw = {"labels": labels}
    inputs = {"features": x, "weights": w}
    return [
        GradcheckCase("softmax_loss", softmax_loss_forward, softmax_loss_backward,
                      {"features": x, "weights": w, "bias": b}, kw),
        GradcheckCase("normalized_softmax_loss", normalized_softmax_loss_forward,
                      normalized_softmax_loss_backward, inputs, kw),
        GradcheckCase("sphereface_loss (m=4, lambda=5)", sphereface_loss_forward, sphereface_loss_backward,
                      inputs, {**kw, "margin": 4, "lambda_": 5.0}),
        GradcheckCase("cosface_loss", cosface_loss_forward, cosface_loss_backward, inputs,
                      {**kw, "scale": 4.0, "margin": 0.35}),
        GradcheckCase("arcface_loss", arcface_loss_forward, arcface_loss_backward, inputs,
                      {**kw, "scale": 4.0, "margin": 0.5}),
        GradcheckCase("combined_margin_loss", combined_margin_loss_forward, combined_margin_loss_backward,
                      inputs, {**kw, "scale": 4.0, "m1": 1.2, "m2": 0.3, "m3": 0.1}),
    ]
