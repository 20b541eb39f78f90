"""Face identification against a gallery: rank-1, the CMC curve, open-set identification.

A **gallery** holds enrolled embeddings with their identities; a **probe** is
a face to name. Closed-set identification assumes every probe's person is
enrolled and asks at which rank the right identity comes: the **CMC curve**
(cumulative match characteristic) gives, for each rank ``r``, the fraction of
probes whose identity is among the ``r`` nearest identities; its first value
is the **rank-1 accuracy**. Identities are ranked by their *nearest* gallery
image (several images per person are allowed).

**Open-set** identification adds an "unknown" answer: the nearest identity is
returned only when its distance is at most a threshold. It is measured by the
detection-and-identification rate (known probes named right *and* accepted)
and the false alarm rate (unknown probes accepted as someone).

References
----------
Grother, Micheals, Phillips, "Face Recognition Vendor Test 2002 performance
metrics", AVBPA 2003 (CMC; open-set DIR and FAR).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_float_array, check_positive_int
from ..distances import pairwise_distances

__all__ = ["identity_distances", "correct_ranks", "cmc_curve", "rank_one_accuracy", "identify",
           "OpenSetResult", "open_set_identification", "UNKNOWN"]

UNKNOWN = -1  #: the label :func:`identify` gives a probe farther than the threshold from everyone


class OpenSetResult(NamedTuple):
    """Open-set identification at one threshold."""
    detection_identification_rate: float  #: known probes named right with distance <= threshold
    false_alarm_rate: float               #: unknown probes whose nearest distance is <= threshold
    n_known: int                          #: probes whose identity is enrolled
    n_unknown: int                        #: probes whose identity is not


def _labels(labels, name, n):
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    check_array(labels, name, ndim=1, dtype_kind="iu")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must have one label per embedding ({n}), got {labels.shape[0]}")
    return np.asarray(labels, dtype=np.int64)


def identity_distances(probes, gallery, gallery_labels, *, metric="sqeuclidean", impl="auto"):
    """Distance from every probe to every enrolled identity (its nearest gallery image).

    Parameters
    ----------
    probes : float array, shape (n, D)
    gallery : float array, shape (m, D)
    gallery_labels : int array, shape (m,)
    metric : {'sqeuclidean', 'cosine'}
    impl : {'auto', 'reference', 'numba'}
        Passed to :func:`scratchface.distances.pairwise_distances`.

    Returns
    -------
    identities : int64 array, shape (K,)
        The distinct gallery labels, ascending.
    distances : float array, shape (n, K)
        ``distances[i, k] = min over gallery images j of identity k of d(probe_i, gallery_j)``.
    """
    check_float_array(probes, "probes", ndim=2)
    check_float_array(gallery, "gallery", ndim=2)
    gallery_labels = _labels(gallery_labels, "gallery_labels", gallery.shape[0])
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty: enrol at least one face")
    d = pairwise_distances(probes, gallery, metric=metric, impl=impl)
    identities, column = np.unique(gallery_labels, return_inverse=True)
    out = np.full((d.shape[0], identities.size), np.inf, dtype=d.dtype)
    for k in range(identities.size):
        out[:, k] = d[:, column == k].min(axis=1)
    return identities, out


def correct_ranks(probes, probe_labels, gallery, gallery_labels, *, metric="sqeuclidean", impl="auto"):
    """The rank (1 = nearest) at which each probe's own identity comes.

    Rank = 1 + the number of *other* identities strictly nearer than the
    probe's own (ties are resolved in the probe's favour).

    Returns
    -------
    ranks : int64 array, shape (n,)

    Raises
    ------
    ValueError
        A probe whose identity is not in the gallery (closed set: use
        :func:`open_set_identification` for those).
    """
    check_float_array(probes, "probes", ndim=2)
    probe_labels = _labels(probe_labels, "probe_labels", probes.shape[0])
    identities, d = identity_distances(probes, gallery, gallery_labels, metric=metric, impl=impl)
    missing = np.setdiff1d(probe_labels, identities)
    if missing.size:
        raise ValueError(f"probe identities {missing.tolist()[:10]} are not in the gallery: closed-set "
                         "identification needs every probe enrolled (see open_set_identification)")
    own = np.searchsorted(identities, probe_labels)
    own_d = d[np.arange(d.shape[0]), own]
    return (1 + (d < own_d[:, None]).sum(axis=1)).astype(np.int64)


def cmc_curve(probes, probe_labels, gallery, gallery_labels, *, max_rank=None, metric="sqeuclidean",
              impl="auto"):
    """Cumulative match characteristic.

    Parameters
    ----------
    probes : float array, shape (n, D)
    probe_labels : int array, shape (n,)
    gallery : float array, shape (m, D)
    gallery_labels : int array, shape (m,)
    max_rank : int, optional
        Length of the curve (default: the number of identities).
    metric : {'sqeuclidean', 'cosine'}

    Returns
    -------
    cmc : float64 array, shape (max_rank,)
        ``cmc[r - 1]`` = fraction of probes whose identity is within the ``r``
        nearest identities; non-decreasing, ``cmc[-1] == 1`` at the full rank.
    """
    ranks = correct_ranks(probes, probe_labels, gallery, gallery_labels, metric=metric, impl=impl)
    n_ids = np.unique(np.asarray(gallery_labels)).size
    max_rank = n_ids if max_rank is None else check_positive_int(max_rank, "max_rank")
    if ranks.size == 0:
        raise ValueError("cmc_curve needs at least one probe")
    return np.array([np.mean(ranks <= r) for r in range(1, max_rank + 1)])


def rank_one_accuracy(probes, probe_labels, gallery, gallery_labels, *, metric="sqeuclidean", impl="auto"):
    """Fraction of probes whose nearest identity is their own (the CMC's first value)."""
    return float(cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=1, metric=metric,
                           impl=impl)[0])


def identify(probes, gallery, gallery_labels, *, threshold=None, metric="sqeuclidean", impl="auto"):
    """Name each probe by its nearest identity, or :data:`UNKNOWN` when that is too far.

    Parameters
    ----------
    probes : float array, shape (n, D)
    gallery : float array, shape (m, D)
    gallery_labels : int array, shape (m,)
    threshold : float, optional
        Largest distance still accepted; ``None``: always answer (closed set).

    Returns
    -------
    labels : int64 array, shape (n,)
        The nearest identity, or ``-1`` (:data:`UNKNOWN`).
    distances : float array, shape (n,)
        Distance to that nearest identity (also for the unknowns).
    """
    identities, d = identity_distances(probes, gallery, gallery_labels, metric=metric, impl=impl)
    nearest = np.argmin(d, axis=1)
    dist = d[np.arange(d.shape[0]), nearest]
    labels = identities[nearest].astype(np.int64)
    if threshold is not None:
        labels = np.where(dist <= float(threshold), labels, UNKNOWN)
    return labels, dist


def open_set_identification(probes, probe_labels, gallery, gallery_labels, *, threshold,
                            metric="sqeuclidean", impl="auto"):
    """Detection-and-identification rate and false alarm rate at one threshold.

    Probes whose label is not in ``gallery_labels`` are the unknowns (impostors).

    Returns
    -------
    OpenSetResult
        ``detection_identification_rate``: among known probes, the fraction
        whose nearest identity is right and within ``threshold`` (NaN without
        known probes); ``false_alarm_rate``: among unknown probes, the fraction
        whose nearest identity is within ``threshold`` (NaN without unknowns).
    """
    check_float_array(probes, "probes", ndim=2)
    probe_labels = _labels(probe_labels, "probe_labels", probes.shape[0])
    predicted, _ = identify(probes, gallery, gallery_labels, threshold=threshold, metric=metric, impl=impl)
    known = np.isin(probe_labels, np.asarray(gallery_labels))
    dir_ = float(np.mean(predicted[known] == probe_labels[known])) if known.any() else float("nan")
    far = float(np.mean(predicted[~known] != UNKNOWN)) if (~known).any() else float("nan")
    return OpenSetResult(dir_, far, int(known.sum()), int((~known).sum()))
