"""Synthetic submission: assignment 7: arcface_target without the fallback; the loss calls it."""
import numpy as np

from scratchface.layers.normalization import l2_normalize_backward, l2_normalize_forward
from scratchface.layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward

COS_CLIP = 1e-7


def arcface_target(cos_theta, *, margin=0.5):
    """ArcFace's target logit (before the scale) and its derivative.

    Parameters
    ----------
    cos_theta : array, the target cosines, any shape
    margin : float in (0, pi/2], the angular margin m (radians)

    Returns
    -------
    target : array, cos(theta + m), or cos(theta) - m sin(m) where theta + m > pi
    dtarget : array, d target / d cos_theta (0 where the clip is active)
    """
    inside = (cos_theta >= -1 + COS_CLIP) & (cos_theta <= 1 - COS_CLIP)
    theta = np.arccos(np.clip(cos_theta, -1 + COS_CLIP, 1 - COS_CLIP))
    use_margin = theta + margin <= np.pi
    target = np.cos(theta + margin)
    slope = np.where(inside, np.sin(theta + margin) / np.sin(theta), 0.0)
    dtarget = np.where(use_margin, slope, 1.0)
    return target, dtarget


def arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5):
    """ArcFace loss.

    Parameters
    ----------
    features : (N, D) ; weights : (D, C) ; labels : (N,) int
    scale : float > 0 ; margin : float in (0, pi/2]

    Returns
    -------
    loss : float (or 0-d array) ; cache
    """
    x_hat, x_cache = l2_normalize_forward(features, axis=1)
    w_hat, w_cache = l2_normalize_forward(weights, axis=0)
    cos = x_hat @ w_hat
    rows = np.arange(len(labels))
    target, dtarget = arcface_target(cos[rows, labels], margin=margin)
    logits = scale * cos
    logits[rows, labels] = scale * target
    loss, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    cache = (x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache)
    return loss, cache


def arcface_loss_backward(dloss, cache):
    """Gradients of the ArcFace loss: (dfeatures (N, D), dweights (D, C))."""
    x_hat, x_cache, w_hat, w_cache, dtarget, scale, labels, ce_cache = cache
    rows = np.arange(len(labels))
    dcos = scale * softmax_cross_entropy_backward(dloss, ce_cache)
    dcos[rows, labels] *= dtarget
    dfeatures = l2_normalize_backward(dcos @ w_hat.T, x_cache)
    dweights = l2_normalize_backward(x_hat.T @ dcos, w_cache)
    return dfeatures, dweights
