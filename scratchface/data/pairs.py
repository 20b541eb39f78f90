"""Splits by person and balanced same / different pairs, seeded: the bookkeeping of a verification test.

A face embedding is judged on **people it never saw**: the identities are split
first (:func:`split_by_person`), never the images, or the test would measure
memory instead of generalisation. On the people held out, verification asks
"same person?" about pairs of images (:func:`make_pairs`): every same-person
pair and as many different-person pairs drawn at random, dealt into ``n_folds``
folds that each hold as many same as different pairs (the shape of LFW's
*View 2*: 10 folds of 300 + 300 pairs). Identification instead enrols a few
images per person in a gallery and searches with the rest
(:func:`gallery_probe_split`). Training with a triplet or pair loss draws
batches of P people x K images each (:func:`pk_batches`), so that every batch holds positives.

Everything random takes an explicit ``numpy.random.Generator`` (or an int
seed): the same seed gives the same split and the same pairs.

References
----------
Huang et al., "Labeled Faces in the Wild", UMass tech. report 07-49, 2007
(View 2: 10 folds, threshold chosen on the other nine).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_array, check_choice, check_float_array, check_positive_int

__all__ = ["Pairs", "split_by_person", "make_pairs", "gallery_probe_split", "pair_distances", "pk_batches"]


class Pairs(NamedTuple):
    """Pairs of samples to verify; row ``k`` is the pair ``(first[k], second[k])``."""
    first: np.ndarray    #: (P,) int64 index of the first image of each pair
    second: np.ndarray   #: (P,) int64 index of the second image (``first < second``)
    same: np.ndarray     #: (P,) bool, True when both images show the same person
    fold: np.ndarray     #: (P,) int64 fold number in ``[0, n_folds)``


def _check_labels(labels):
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    check_array(labels, "labels", ndim=1, dtype_kind="iu")
    return np.asarray(labels, dtype=np.int64)


def split_by_person(labels, *, test_people, rng=0):
    """Split samples into training people and test people, never the same person in both.

    Parameters
    ----------
    labels : int array, shape (N,)
        Identity of each sample.
    test_people : int or array of int
        How many identities to hold out (drawn at random with ``rng``), or
        which ones (label values).
    rng : numpy.random.Generator or int

    Returns
    -------
    train_index, test_index : int64 arrays
        Sample indices, ascending; ``labels[train_index]`` and
        ``labels[test_index]`` share no value.

    Examples
    --------
    >>> labels = np.repeat([1, 2, 3, 4], 2)
    >>> split_by_person(labels, test_people=[3, 4])
    (array([0, 1, 2, 3]), array([4, 5, 6, 7]))
    """
    labels = _check_labels(labels)
    people = np.unique(labels)
    if isinstance(test_people, numbers.Integral) and not isinstance(test_people, bool):
        k = check_positive_int(test_people, "test_people")
        if k >= people.size:
            raise ValueError(f"test_people must leave at least one training person: there are "
                             f"{people.size} people, got test_people={k}")
        held_out = as_generator(rng).choice(people, size=k, replace=False)
    else:
        held_out = np.unique(np.asarray(test_people))
        if held_out.size == 0 or held_out.dtype.kind not in "iu":
            raise ValueError(f"test_people must be a count or a non-empty list of labels, got {test_people!r}")
        unknown = np.setdiff1d(held_out, people)
        if unknown.size:
            raise ValueError(f"test_people names labels that do not occur: {unknown.tolist()}")
    test = np.isin(labels, held_out)
    return np.flatnonzero(~test), np.flatnonzero(test)


def make_pairs(labels, *, n_folds=10, rng=0, max_same_per_person=None):
    """Balanced same / different pairs among the samples, dealt into folds.

    1. Same pairs: every pair ``i < j`` with ``labels[i] == labels[j]`` (at most
       ``max_same_per_person`` per person, drawn at random, when given).
    2. Different pairs: as many, drawn uniformly without replacement from all
       pairs of different people.
    3. Each kind is shuffled and dealt round-robin into ``n_folds`` folds, so
       that every fold holds (within one) as many same as different pairs.

    Parameters
    ----------
    labels : int array, shape (N,)
    n_folds : int
        10 for the LFW protocol.
    rng : numpy.random.Generator or int
    max_same_per_person : int, optional

    Returns
    -------
    Pairs
        Sorted by fold, then same pairs before different ones.

    Raises
    ------
    ValueError
        Fewer than two people, no person with two images, or fewer pairs than folds.

    Notes
    -----
    With ``M`` samples of one person there are :math:`\\binom{M}{2}` same
    pairs: ORL's 10 test people with 10 images each give 10 x 45 = 450 same and
    450 different pairs. Folds are not disjoint in people (with 10 people and
    10 folds they could not be); LFW's folds are.
    """
    labels = _check_labels(labels)
    n_folds = check_positive_int(n_folds, "n_folds")
    rng = as_generator(rng)
    people, counts = np.unique(labels, return_counts=True)
    if people.size < 2:
        raise ValueError(f"make_pairs needs at least two people, got {people.size}")
    if counts.max() < 2:
        raise ValueError("make_pairs needs a person with at least two images (no same pair otherwise)")
    first, second = np.triu_indices(labels.size, k=1)
    is_same = labels[first] == labels[second]
    same_idx = np.flatnonzero(is_same)
    if max_same_per_person is not None:
        cap = check_positive_int(max_same_per_person, "max_same_per_person")
        keep = []
        for person in people:
            mine = same_idx[labels[first[same_idx]] == person]
            keep.append(mine if mine.size <= cap else np.sort(rng.choice(mine, size=cap, replace=False)))
        same_idx = np.concatenate(keep)
    diff_idx = np.flatnonzero(~is_same)
    n = min(same_idx.size, diff_idx.size)
    if 2 * n < n_folds:
        raise ValueError(f"only {2 * n} balanced pairs for n_folds={n_folds}: use fewer folds")
    same_idx = rng.permutation(same_idx)[:n]
    diff_idx = rng.choice(diff_idx, size=n, replace=False)
    fold = np.arange(n) % n_folds  # round-robin: each fold gets its share of both kinds
    chosen = np.concatenate([same_idx, diff_idx])
    folds = np.concatenate([fold, fold])
    same = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    order = np.lexsort((~same, folds))  # by fold, then same pairs first
    return Pairs(first[chosen][order].astype(np.int64), second[chosen][order].astype(np.int64),
                 same[order], folds[order].astype(np.int64))


def gallery_probe_split(labels, *, per_person=1, rng=0):
    """Enrol ``per_person`` images of every person in a gallery; the other images are probes.

    Parameters
    ----------
    labels : int array, shape (N,)
    per_person : int
        Gallery images per person; every person needs at least ``per_person + 1`` images.
    rng : numpy.random.Generator or int

    Returns
    -------
    gallery_index, probe_index : int64 arrays, ascending
    """
    labels = _check_labels(labels)
    per_person = check_positive_int(per_person, "per_person")
    rng = as_generator(rng)
    gallery = []
    for person in np.unique(labels):
        mine = np.flatnonzero(labels == person)
        if mine.size <= per_person:
            raise ValueError(f"person {person} has {mine.size} image(s): per_person={per_person} "
                             "leaves no probe")
        gallery.append(rng.choice(mine, size=per_person, replace=False))
    gallery = np.sort(np.concatenate(gallery)).astype(np.int64)
    probe = np.setdiff1d(np.arange(labels.size), gallery).astype(np.int64)
    return gallery, probe


def pair_distances(embeddings, pairs, *, metric="sqeuclidean"):
    """The distance of every pair: ``d(e[first[k]], e[second[k]])``.

    Parameters
    ----------
    embeddings : float array, shape (N, D)
    pairs : Pairs (or any object with ``first`` and ``second`` index arrays)
    metric : {'sqeuclidean', 'cosine'}

    Returns
    -------
    distances : float64 array, shape (P,)
    """
    check_float_array(embeddings, "embeddings", ndim=2)
    check_choice(metric, "metric", ("sqeuclidean", "cosine"))
    e = np.asarray(embeddings, dtype=np.float64)
    a, b = e[np.asarray(pairs.first)], e[np.asarray(pairs.second)]
    if metric == "sqeuclidean":
        return ((a - b) ** 2).sum(axis=1)
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return np.clip(1.0 - (a * b).sum(axis=1) / (na * nb), 0.0, 2.0)


def pk_batches(labels, people_per_batch, images_per_person, rng):
    """One epoch of P x K batches: people shuffled into groups of P, each person's images into chunks of K.

    The batches a triplet (or pair) loss trains on: every person of a batch
    brings about K images, so that each anchor has positives to mine
    (FaceNet section 3.2; Hermans et al.'s "P x K" batches).

    Parameters
    ----------
    labels : int array, shape (N,)
        The person in each image.
    people_per_batch : int
        P. The last group of an epoch may hold fewer people.
    images_per_person : int
        K. A person's images are split into ``max(1, n_p // K)`` chunks of
        nearly equal size (``numpy.array_split``), so a chunk holds K to 2K - 1
        images; batch ``j`` of a group takes chunk ``j`` of every person who has one.
    rng : numpy.random.Generator
        Shuffles the people, each person's images and the order of the batches.

    Returns
    -------
    list of int64 arrays
        Image indices of each batch, in random order; every image appears exactly once.

    References
    ----------
    Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015, section 3.2.
    Hermans, Beyer, Leibe, "In defense of the triplet loss for person re-identification", 2017.
    """
    labels = np.asarray(labels)
    check_array(labels, "labels", ndim=1, dtype_kind="iu")
    people_per_batch = check_positive_int(people_per_batch, "people_per_batch")
    images_per_person = check_positive_int(images_per_person, "images_per_person")
    rng = as_generator(rng)
    people = rng.permutation(np.unique(labels))
    batches = []
    for start in range(0, len(people), people_per_batch):
        group = people[start:start + people_per_batch]
        chunks = [np.array_split(rng.permutation(np.flatnonzero(labels == p)),
                                 max(1, int(np.sum(labels == p)) // images_per_person)) for p in group]
        for j in range(max(len(c) for c in chunks)):
            batches.append(np.concatenate([c[j] for c in chunks if j < len(c)]))
    return [batches[i] for i in rng.permutation(len(batches))]
