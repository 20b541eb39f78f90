"""DeepID2's joint identification-verification loss (forward / backward).

Sun et al. (2014) learn a face feature :math:`f = \\mathrm{Conv}(x, \\theta_c)`
(their 160-d "DeepID2 layer") with two supervisory signals at once:

* **identification** (DeepID2 eq. 1): a softmax layer over the ``n`` training
  identities on top of :math:`f`, and its cross-entropy

  .. math:: \\mathrm{Ident}(f, t, \\theta_{id}) = -\\sum_{i=1}^{n} p_i \\log \\hat p_i = -\\log \\hat p_t ,

  which pulls apart the features of different people (inter-personal variation);
* **verification** (DeepID2 eq. 2): the contrastive loss between two features
  :math:`f_i, f_j` with :math:`y_{ij} = 1` for the same person, :math:`-1` otherwise,

  .. math:: \\mathrm{Verif}(f_i, f_j, y_{ij}, \\theta_{ve}) = \\begin{cases}
            \\tfrac12 \\lVert f_i - f_j \\rVert_2^2 & y_{ij} = 1 \\\\
            \\tfrac12 \\max(0,\\, m - \\lVert f_i - f_j \\rVert_2)^2 & y_{ij} = -1
            \\end{cases}

  which pulls together the features of one person (intra-personal variation).

The network's gradient is the sum of the two (the paper's Table 1):
:math:`\\partial L / \\partial f = \\partial \\mathrm{Ident} / \\partial f +
\\lambda\\, \\partial \\mathrm{Verif} / \\partial f`, with :math:`\\lambda` the
weight of the verification signal.

What is done here (:func:`deepid2_loss_forward`; trained by ``python -m experiments.deepid2`` on
:func:`scratchface.models.orl_nets.build_deepid2_net`, a 160-d output followed by a ReLU, the DeepID2
layer, on ORL people 1-30 with batches of 10 people x 5 images): the identification signal
is the mean cross-entropy of the batch, the verification signal the mean
contrastive loss over **every pair in the batch** (45 x 10 same pairs and
1,125 different ones per batch), and

.. math:: L = w_{id}\\, \\overline{\\mathrm{Ident}} + \\lambda\\, \\overline{\\mathrm{Verif}},

with :math:`w_{id} = 1` (identification alone: :math:`\\lambda = 0`; joint: a few
:math:`\\lambda`) or :math:`w_{id} = 0, \\lambda = 1` (verification alone).
Departures from the paper: the contrastive loss compares L2-normalised
features (``normalize=True``, so that the margin ``m = 1`` has a fixed scale
whatever scale the softmax gives the features; the paper fixes ``m`` on raw
features); pairs are all the pairs of a batch rather than random pairs of
the training set; one network on the whole (half-resolution) image instead of
200 networks on patches; no joint Bayesian on top.

Which signal does better on ORL (identification, verification or both): ``docs/results.md``, section Recognition.

References
----------
Y. Sun, Y. Chen, X. Wang, X. Tang, "Deep Learning Face Representation by Joint
Identification-Verification", NIPS 2014 (eq. 1: identification, eq. 2:
verification, Table 1: the training algorithm).
R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an
Invariant Mapping", CVPR 2006 (the contrastive loss).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_float_array, check_labels, check_positive_float
from ..gradcheck import GradcheckCase
from ..layers.dense import dense_backward, dense_forward
from ..layers.normalization import l2_normalize_backward, l2_normalize_forward
from ..layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .contrastive import contrastive_loss_backward, contrastive_loss_forward

__all__ = ["DeepID2Cache", "batch_pairs", "deepid2_loss_backward", "deepid2_loss_forward", "gradcheck_cases"]


class DeepID2Cache(NamedTuple):
    """What :func:`deepid2_loss_backward` needs from the forward pass."""
    dense: object           # DenseCache of the identification layer
    softmax: object         # SoftmaxCrossEntropyCache
    verif: object           # ContrastiveCache, or None when lam == 0
    norm: object            # L2NormalizeCache, or None
    first: np.ndarray       # (P,) first index of each pair
    second: np.ndarray      # (P,) second index
    ident_weight: float
    lam: float
    shape: tuple            # (B, D) of the features
    ident_value: float      # the two signals' batch means, unweighted (for logging)
    verif_value: float


def batch_pairs(labels):
    """Every pair ``i < j`` of a batch and whether it shows one person.

    Parameters
    ----------
    labels : int array, shape (B,)

    Returns
    -------
    first, second : int64 arrays, shape (B (B - 1) / 2,)
    same : bool array, same shape

    Examples
    --------
    >>> batch_pairs(np.array([7, 7, 3]))
    (array([0, 0, 1]), array([1, 2, 2]), array([ True, False, False]))
    """
    labels = np.asarray(labels)
    first, second = np.triu_indices(labels.shape[0], k=1)
    return first.astype(np.int64), second.astype(np.int64), labels[first] == labels[second]


def deepid2_loss_forward(features, weight, bias, *, labels, lam=1.0, margin=1.0, ident_weight=1.0,
                         normalize=True):
    """DeepID2's joint identification-verification loss of a batch, forward.

    Parameters
    ----------
    features : float array, shape (B, D)
        The DeepID2 features :math:`f` of a batch.
    weight : float array, shape (D, n)
        The identification (softmax) layer, :math:`\\theta_{id}`.
    bias : float array, shape (n,)
    labels : int array, shape (B,)
        Identity of each sample, in ``[0, n)``.
    lam : float >= 0
        :math:`\\lambda`, the weight of the verification signal (0: identification only).
    margin : float > 0
        :math:`m` of the contrastive loss.
    ident_weight : float >= 0
        :math:`w_{id}`, the weight of the identification signal (0: verification only).
    normalize : bool
        Compare L2-normalised features in the verification signal (see the module notes).

    Returns
    -------
    loss : scalar
        :math:`w_{id} \\frac1B \\sum_i \\mathrm{Ident}(f_i, t_i) + \\lambda \\frac1P \\sum_{i<j}
        \\mathrm{Verif}(f_i, f_j, y_{ij})` over the :math:`P = B(B-1)/2` pairs of the batch.
    cache : DeepID2Cache

    Notes
    -----
    The backward adds the two signals' gradients (DeepID2 Table 1, step 4):
    :math:`\\partial L/\\partial f_i = w_{id}\\, W (\\hat p_i - e_{t_i}) / B
    + \\lambda \\sum_{j} \\partial \\overline{\\mathrm{Verif}} / \\partial f_i`, the second
    term summed over the pairs that hold :math:`f_i` (as first or second element,
    through the L2 normalisation's Jacobian :math:`(I - \\hat f \\hat f^\\top) / \\lVert f \\rVert`).
    With ``lam == 0`` the verification signal is not computed at all.

    References
    ----------
    Sun, Chen, Wang, Tang, "Deep Learning Face Representation by Joint Identification-Verification",
    NIPS 2014, eq. 1-2 and Table 1.
    """
    check_float_array(features, "features", ndim=2)
    lam = check_positive_float(lam, "lam", allow_zero=True)
    ident_weight = check_positive_float(ident_weight, "ident_weight", allow_zero=True)
    if lam == 0 and ident_weight == 0:
        raise ValueError("lam and ident_weight are both 0: there is no training signal left")
    margin = check_positive_float(margin, "margin")
    labels = np.asarray(labels) if isinstance(labels, (list, tuple)) else labels
    check_labels(labels, "labels", features.shape[0], weight.shape[1] if hasattr(weight, "shape") else None)
    logits, dense_cache = dense_forward(features, weight, bias)
    ident, softmax_cache = softmax_cross_entropy_forward(logits, labels=labels)
    first, second, same = batch_pairs(labels)
    verif, verif_cache, norm_cache = 0.0, None, None
    if lam > 0:
        f = features
        if normalize:
            f, norm_cache = l2_normalize_forward(features, axis=1)
        verif, verif_cache = contrastive_loss_forward(f[first], f[second], same=same, margin=margin)
    loss = ident_weight * ident + lam * verif
    return loss, DeepID2Cache(dense_cache, softmax_cache, verif_cache, norm_cache, first, second,
                              ident_weight, lam, tuple(features.shape), float(ident), float(verif))


def deepid2_loss_backward(dloss, cache):
    """``(dfeatures, dweight, dbias)``: the identification gradient plus lambda times the verification one."""
    dlogits = softmax_cross_entropy_backward(dloss * cache.ident_weight, cache.softmax)
    dfeatures, dweight, dbias = dense_backward(dlogits, cache.dense)
    if cache.verif is not None:
        dfirst, dsecond = contrastive_loss_backward(dloss * cache.lam, cache.verif)
        dpairs = np.zeros(cache.shape, dtype=dfirst.dtype)
        np.add.at(dpairs, cache.first, dfirst)     # a feature is in many pairs: accumulate
        np.add.at(dpairs, cache.second, dsecond)
        if cache.norm is not None:
            dpairs = l2_normalize_backward(dpairs, cache.norm)
        dfeatures = dfeatures + dpairs
    return dfeatures, dweight, dbias


def gradcheck_cases(rng):
    """The joint loss on 6 samples of 3 people (pairs inside and outside the margin)."""
    features = rng.standard_normal((6, 4))
    return [GradcheckCase("deepid2_loss", deepid2_loss_forward, deepid2_loss_backward,
                          {"features": features, "weight": rng.standard_normal((4, 3)),
                           "bias": rng.standard_normal(3)},
                          {"labels": np.array([0, 0, 1, 1, 2, 2]), "lam": 0.7, "margin": 1.2})]
