"""Clustering faces by identity: single linkage, average linkage and Chinese whispers.

"Which photos show the same person?" without any labels. Every method here
starts from the same graph: faces are nodes, and two faces are joined when
their embeddings are at most ``threshold`` apart (Euclidean distance, the
units of :func:`scratchface.recognition.pipeline.verify`). The methods differ
in what they do with it:

* **single linkage** (:func:`single_linkage`): every connected group of the
  graph is a person. One close pair between two people is enough to chain
  them, and chains grow with the collection: at dlib's verification threshold
  0.6, whole groups of people end up in one cluster.
* **average linkage** (:func:`average_linkage`, the default): start with every
  face alone and repeatedly merge the two clusters whose *mean* pairwise
  distance is smallest, while it is at most ``threshold``:

  .. math::

      d(A, B) = \\frac{1}{|A|\\,|B|} \\sum_{a \\in A} \\sum_{b \\in B} \\lVert e_a - e_b \\rVert .

  A merge needs the two groups to be close on the whole, not through one
  pair, so it does not chain. Since :math:`d(A, B) \\le t` implies that some
  pair of :math:`A \\times B` is within :math:`t`, an average-linkage cluster
  never spans two connected groups of the graph: average linkage is run
  exactly inside each group, and the ``n x n`` matrix of the whole
  collection is never formed (the graph comes from a blocked search, one
  block of rows of distances at a time; a group too large for its own
  matrix is merged from its edges, :func:`average_linkage`).
* **Chinese whispers** (:func:`chinese_whispers`; Biemann 2006, the method of
  dlib's ``chinese_whispers_clustering``): every face starts as its own label;
  in random order, each face takes the label most common among its
  neighbours, for a number of sweeps.

Singletons stay alone with every method (a face with no neighbour within the
threshold is never merged). Faces that are not faces (low detection scores)
are best left out before clustering: :func:`cluster_faces` does so with
``min_score``.

The default threshold was chosen after looking at every collection of the
comparison (Yale, ORL, the dlib photos, mixes): 0.45 is the value of the 0.01
grid where average linkage meets pairwise precision >= 0.95 and recall >= 0.90
on all of them. A development-set rule alone (best pairwise F on ORL 1-20 +
Yale 1-7) picks 0.51, which fails on Yale. The tables are in
``docs/results.md`` (``python -m experiments.clustering``).

References
----------
Otto, Wang, Jain, "Clustering millions of faces by identity", TPAMI 2018.
Biemann, "Chinese whispers: an efficient graph clustering algorithm", TextGraphs 2006.
King, dlib ``chinese_whispers`` (dlib/clustering/chinese_whispers.h).
"""
from __future__ import annotations

import heapq
import numbers

import numpy as np

from .._validation import check_array, check_choice, check_float_array, check_positive_int
from ..distances import pairwise_distances, squared_euclidean_distances

__all__ = ["DEFAULT_THRESHOLD", "DENSE_GROUP_MAX", "METHODS", "NEIGHBOUR_BLOCK_ELEMENTS", "connected_components",
           "threshold_clustering", "neighbour_pairs",
           "single_linkage", "average_linkage", "average_linkage_reference", "chinese_whispers", "cluster_faces"]

#: Euclidean distance between two dlib descriptors below which faces may share a cluster.
#: Chosen after looking at all the collections of docs/results.md (not on a held-out set): see the module docstring.
DEFAULT_THRESHOLD = 0.45
METHODS = ("average", "single", "chinese_whispers")


def _check_embeddings(embeddings):
    check_float_array(embeddings, "embeddings", ndim=2)
    return np.asarray(embeddings, dtype=np.float64)


def _check_threshold(threshold):
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not np.isfinite(threshold) \
            or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0 (a Euclidean distance), got {threshold!r}")
    return float(threshold)


def _first_appearance(labels):
    """Renumber labels 0, 1, ... in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return order[inverse].astype(np.int64)


# ----------------------------------------------------------------------------- the graph

def connected_components(adjacent):
    """Connected components of an undirected graph given by a boolean adjacency matrix.

    Union-find with path halving: every edge ``(i, j)`` joins the sets of ``i``
    and ``j``.

    Parameters
    ----------
    adjacent : bool array, shape (n, n), symmetric

    Returns
    -------
    labels : int64 array, shape (n,)
        Component numbers 0, 1, ... in order of each component's first node.
    """
    check_array(adjacent, "adjacent", ndim=2, dtype_kind="b")
    n = adjacent.shape[0]
    if adjacent.shape[1] != n:
        raise ValueError(f"adjacent must be square, got shape {adjacent.shape}")
    first, second = np.nonzero(np.triu(adjacent, k=1) | np.triu(adjacent.T, k=1))
    return _components(n, first, second)


def _components(n, first, second):
    """Union-find over the edge list ``(first[e], second[e])``: labels in order of each component's first node."""
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    for i, j in zip(first.tolist(), second.tolist()):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)  # roots are each component's smallest node
    return labels.astype(np.int64)


def _graph_components(n, first, second):
    """The same labels as :func:`_components`, by SciPy's compiled graph search (for large edge lists)."""
    from scipy.sparse import coo_matrix  # noqa: PLC0415  (SciPy is imported only where used)
    from scipy.sparse.csgraph import connected_components as scipy_components  # noqa: PLC0415

    graph = coo_matrix((np.ones(first.size, dtype=np.int8), (first, second)), shape=(n, n))
    _, labels = scipy_components(graph, directed=False)
    return _first_appearance(labels)


#: Distances held at once by :func:`neighbour_pairs` when ``block_size`` is not given (float32: 32 MB).
NEIGHBOUR_BLOCK_ELEMENTS = 1 << 23


def neighbour_pairs(embeddings, threshold, *, block_size=None):
    """Every pair of faces at most ``threshold`` apart, found one block of rows at a time.

    Each block of rows is screened against the later rows with
    :func:`~scratchface.distances.squared_euclidean_distances`
    (float32, the BLAS product plus the Numba finishing kernel), keeping the
    pairs within the threshold plus a margin that covers float32 rounding; the
    few pairs kept are then measured exactly, :math:`\\sqrt{\\sum_k (e_{ik} - e_{jk})^2}`
    in float64, and those at most ``threshold`` returned. The result is the
    brute-force answer, whatever the block size.

    Parameters
    ----------
    embeddings : float array, shape (n, D)
    threshold : float
        Euclidean distance.
    block_size : int, optional
        Rows of the distance matrix held at once (default: about
        :data:`NEIGHBOUR_BLOCK_ELEMENTS` distances per block). Memory is
        ``block_size x n`` distances plus the pairs found, never ``n x n``.

    Returns
    -------
    first, second : int64 arrays, shape (p,)
        ``first < second``, in row-major order.
    distances : float64 array, shape (p,)
    """
    e = _check_embeddings(embeddings)
    threshold = _check_threshold(threshold)
    n = e.shape[0]
    if block_size is None:
        block_size = max(1, min(n, NEIGHBOUR_BLOCK_ELEMENTS // max(n, 1)))
    block_size = check_positive_int(block_size, "block_size")
    e32 = e.astype(np.float32)
    sq_norms = np.einsum("ij,ij->i", e, e)
    # float32 error of |a|^2 + |b|^2 - 2ab is a few eps32 * (|a|^2 + |b|^2): screen with a margin of 1e-5 of that
    screen = threshold ** 2 + 1e-5 * (2 * float(sq_norms.max(initial=0.0)) + 1.0)
    firsts, seconds, dists = [], [], []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        d2 = squared_euclidean_distances(e32[start:stop], e32[start:], impl="numba")  # rows start.. vs columns start..
        rows, cols = np.nonzero(d2 <= screen)
        keep = cols > rows  # column index is relative to start: the upper triangle only
        i, j = rows[keep] + start, cols[keep] + start
        exact = np.concatenate([np.sqrt(((e[i[k:k + 65536]] - e[j[k:k + 65536]]) ** 2).sum(axis=1))
                                for k in range(0, i.size, 65536)] or [np.zeros(0)])  # 65536 pairs at a time
        ok = exact <= threshold
        firsts.append(i[ok])
        seconds.append(j[ok])
        dists.append(exact[ok])
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return (np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64),
            np.concatenate(dists).astype(np.float64))


# ----------------------------------------------------------------------------- single linkage

def single_linkage(embeddings, threshold=DEFAULT_THRESHOLD, *, block_size=None):
    """Single-linkage clusters: faces chained by Euclidean distances ``<= threshold`` share a label.

    The connected components of the :func:`neighbour_pairs` graph; equals
    SciPy's ``fcluster(linkage(x, 'single'), threshold, 'distance')`` up to the
    numbering.

    Returns
    -------
    labels : int64 array, shape (n,)
        Cluster numbers 0, 1, ... in order of first appearance.
    """
    e = _check_embeddings(embeddings)
    first, second, _ = neighbour_pairs(e, threshold, block_size=block_size)
    return _graph_components(e.shape[0], first, second)


def threshold_clustering(embeddings, threshold, *, metric="sqeuclidean", impl="auto"):
    """Single linkage with the threshold in the units of ``metric`` (squared Euclidean by default).

    The form the verification lecture uses (its threshold comes from
    :func:`scratchface.recognition.verification.fit_threshold`, in squared
    units); the full ``n x n`` distance matrix is formed, fine for a few thousand
    faces. :func:`single_linkage` is the same with Euclidean units and bounded memory.
    """
    check_float_array(embeddings, "embeddings", ndim=2)
    check_choice(metric, "metric", ("sqeuclidean", "cosine"))
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if embeddings.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    d = pairwise_distances(embeddings, metric=metric, impl=impl)
    return connected_components(np.asarray(d) <= threshold)


# ----------------------------------------------------------------------------- average linkage

def average_linkage_reference(embeddings, threshold=DEFAULT_THRESHOLD):
    """Average linkage, exactly as defined: merge the closest two clusters while their mean distance is small.

    The readable version (``O(n^3)``: for a lecture and the tests). Ties go to
    the pair of clusters that comes first (lowest first members).

    Returns
    -------
    labels : int64 array, shape (n,)
        Cluster numbers in order of first appearance.
    """
    e = _check_embeddings(embeddings)
    threshold = _check_threshold(threshold)
    d = np.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1))
    clusters = [[i] for i in range(len(e))]
    while len(clusters) > 1:
        best, pair = np.inf, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                mean = d[np.ix_(clusters[a], clusters[b])].mean()  # d(A, B) of the module docstring
                if mean < best:
                    best, pair = mean, (a, b)
        if best > threshold:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters.pop(b)
    labels = np.empty(len(e), dtype=np.int64)
    for k, members in enumerate(clusters):
        labels[members] = k
    return _first_appearance(labels)


#: Groups of the neighbour graph up to this size are merged by SciPy on their full distance matrix
#: (``m (m - 1) / 2`` float64: 16 MB at 2000); larger ones by ``_average_linkage_sparse``.
DENSE_GROUP_MAX = 2000


def _cut(z, m, threshold):
    """Flat clusters of a monotone SciPy linkage ``z`` of ``m`` points: the merges at heights <= threshold.

    The same partition as ``fcluster(z, threshold, 'distance')`` (without its checks of ``z``, which
    cost more than the merging itself for the many small groups of a photo collection).
    """
    rows = np.flatnonzero(z[:, 2] <= threshold)
    node = np.concatenate([z[rows, 0], z[rows, 1]]).astype(np.int64)
    merged = np.concatenate([rows, rows]) + m  # row r of z makes cluster m + r
    return _components(2 * m - 1, node, merged)[:m] if rows.size else np.arange(m)


def _average_linkage_sparse(e, threshold, first, second, dist):
    """Exact average linkage cut at ``threshold`` without the ``m x m`` matrix: for a large group.

    The classic loop (merge the two closest clusters while their mean distance is
    at most ``threshold``), over the pairs of clusters joined by at least one edge
    of the graph (others have every distance above the threshold, so their mean is
    too). For each such pair we know the sum ``S`` and number ``c`` of its edges;
    every other pair of members is farther than ``threshold``, so

    .. math::  d(A, B) \\ge L(A, B) = \\frac{S + t\\,(|A||B| - c)}{|A||B|}.

    A heap holds these lower bounds. When a bound comes out on top, the exact mean
    is computed from the embeddings (``|A||B|`` distances) and pushed back; when an
    exact value comes out on top it is the smallest of all, and the pair merges.

    Returns
    -------
    labels : int64 array, shape (len(e),)
    """
    members = {i: [i] for i in range(e.shape[0])}
    edges = {i: {} for i in range(e.shape[0])}  # edges[a][b] = [S, c]
    for i, j, d in zip(first.tolist(), second.tolist(), dist.tolist()):
        edges[i][j] = [d, 1]
        edges[j][i] = [d, 1]
    heap = [(d, True, i, j) for i, j, d in zip(first.tolist(), second.tolist(), dist.tolist())]  # 1 x 1: exact
    heapq.heapify(heap)
    next_id = e.shape[0]
    while heap:
        key, exact, a, b = heapq.heappop(heap)
        if key > threshold:
            break
        if a not in members or b not in members:
            continue  # one of them has merged since: stale
        if not exact:
            mean = np.sqrt(((e[members[a]][:, None, :] - e[members[b]][None, :, :]) ** 2).sum(-1)).mean()
            heapq.heappush(heap, (mean, True, a, b))
            continue
        c = next_id
        next_id += 1
        members[c] = members.pop(a) + members.pop(b)
        joined = {}
        for old in (a, b):
            for x, (total, count) in edges.pop(old).items():
                if x in (a, b):
                    continue
                entry = joined.setdefault(x, [0.0, 0])
                entry[0] += total
                entry[1] += count
                del edges[x][old]
        edges[c] = joined
        for x, (total, count) in joined.items():
            edges[x][c] = [total, count]
            size = len(members[c]) * len(members[x])
            heapq.heappush(heap, ((total + threshold * (size - count)) / size, count == size, min(c, x), max(c, x)))
    labels = np.empty(e.shape[0], dtype=np.int64)
    for k, group in enumerate(members.values()):
        labels[group] = k
    return _first_appearance(labels)


def average_linkage(embeddings, threshold=DEFAULT_THRESHOLD, *, block_size=None, dense_max=DENSE_GROUP_MAX):
    """Average linkage cut at ``threshold``, one connected group of the neighbour graph at a time.

    Exact (see the module docstring): equal to :func:`average_linkage_reference`
    and to SciPy's ``fcluster(linkage(x, 'average'), threshold, 'distance')`` up to
    the numbering (and to ties). Two faces joined by an edge form their own group.
    Groups of up to ``dense_max`` faces are merged by SciPy's ``linkage`` on their
    distance matrix; larger ones (a big collection whose graph percolates) by
    ``_average_linkage_sparse``, whose memory is that of the graph's edges.

    Returns
    -------
    labels : int64 array, shape (n,)
        Cluster numbers 0, 1, ... in order of first appearance.
    """
    from scipy.cluster.hierarchy import linkage  # noqa: PLC0415  (SciPy is imported only where used)
    from scipy.spatial.distance import pdist  # noqa: PLC0415

    e = _check_embeddings(embeddings)
    threshold = _check_threshold(threshold)
    dense_max = check_positive_int(dense_max, "dense_max")
    first, second, dist = neighbour_pairs(e, threshold, block_size=block_size)
    groups = _graph_components(e.shape[0], first, second)
    order = np.argsort(groups, kind="stable")
    edge_group = groups[first]
    labels = np.empty(e.shape[0], dtype=np.int64)
    next_label = 0
    for members in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):
        if members.size <= 2:
            sub = np.zeros(members.size, dtype=np.int64)  # alone, or two faces within the threshold
        elif members.size <= dense_max:
            sub = _cut(linkage(pdist(e[members]), "average"), members.size, threshold)
        else:
            local = np.full(e.shape[0], -1, dtype=np.int64)
            local[members] = np.arange(members.size)
            inside = edge_group == groups[members[0]]
            sub = _average_linkage_sparse(e[members], threshold, local[first[inside]], local[second[inside]],
                                          dist[inside])
        if members.size:
            labels[members] = sub + next_label
            next_label += sub.max() + 1
    return _first_appearance(labels)


# ----------------------------------------------------------------------------- Chinese whispers

def chinese_whispers(embeddings, threshold=DEFAULT_THRESHOLD, *, iterations=100, rng=0, block_size=None):
    """Chinese whispers on the neighbour graph (Biemann 2006; dlib's ``chinese_whispers_clustering``).

    Every face starts with a label of its own. Each sweep visits the faces in a
    random order; a face with neighbours takes the label that is most common
    among them (edges of weight 1, as dlib's face-clustering example builds them;
    a tie is broken at random, and a face whose label is among the most common
    keeps it), so labels spread through dense regions and stop at sparse ones.
    The sweeps end early once one changes nothing.

    Parameters
    ----------
    embeddings : float array, shape (n, D)
    threshold : float
        Euclidean distance that makes an edge.
    iterations : int
        Sweeps over all faces (dlib: 100).
    rng : int or numpy.random.Generator
        Seeds the visiting order: the result is reproducible.

    Returns
    -------
    labels : int64 array, shape (n,)
        Cluster numbers in order of first appearance.
    """
    e = _check_embeddings(embeddings)
    iterations = check_positive_int(iterations, "iterations")
    if not isinstance(rng, np.random.Generator):
        if not isinstance(rng, numbers.Integral) or isinstance(rng, bool):
            raise TypeError(f"rng must be an int seed or a numpy.random.Generator, got {type(rng).__name__}")
        rng = np.random.default_rng(int(rng))
    n = e.shape[0]
    first, second, _ = neighbour_pairs(e, threshold, block_size=block_size)
    neighbours = [[] for _ in range(n)]
    for i, j in zip(first.tolist(), second.tolist()):
        neighbours[i].append(j)
        neighbours[j].append(i)
    labels = np.arange(n)
    for _ in range(iterations):
        changed = False
        for i in rng.permutation(n):
            if not neighbours[i]:
                continue
            values, counts = np.unique(labels[neighbours[i]], return_counts=True)
            best = values[counts == counts.max()]
            if labels[i] in best:
                continue  # already a most common label: keep it (a sweep without change ends the loop)
            new = best[0] if best.size == 1 else rng.choice(best)  # ties: a random one (Biemann)
            changed = True
            labels[i] = new
        if not changed:
            break
    return _first_appearance(labels)


# ----------------------------------------------------------------------------- one entry point

def cluster_faces(embeddings, *, method="average", threshold=DEFAULT_THRESHOLD, scores=None, min_score=None,
                  rng=0):
    """Group face embeddings by identity with one of :data:`~scratchface.recognition.clustering.METHODS` (what ``scratchface cluster`` runs).

    Parameters
    ----------
    embeddings : float array, shape (n, D)
    method : {'average', 'single', 'chinese_whispers'}
    threshold : float
        Euclidean distance (default :data:`DEFAULT_THRESHOLD`).
    scores, min_score : float array, shape (n,), and float, optional
        Detection scores: faces scoring below ``min_score`` are left out of the
        clustering (label -1), so that a false detection cannot join two people.
    rng : int or Generator
        Only for Chinese whispers.

    Returns
    -------
    labels : int64 array, shape (n,)
        0, 1, ... in order of first appearance; -1 for faces left out.
    """
    e = _check_embeddings(embeddings)
    check_choice(method, "method", METHODS)
    threshold = _check_threshold(threshold)
    keep = np.ones(e.shape[0], dtype=bool)
    if (scores is None) != (min_score is None):
        raise ValueError("scores and min_score go together: give both or neither")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (e.shape[0],):
            raise ValueError(f"scores must have shape ({e.shape[0]},) (one per embedding), got {scores.shape}")
        keep = scores >= float(min_score)
    labels = np.full(e.shape[0], -1, dtype=np.int64)
    if keep.any():
        if method == "average":
            labels[keep] = average_linkage(e[keep], threshold)
        elif method == "single":
            labels[keep] = single_linkage(e[keep], threshold)
        else:
            labels[keep] = chinese_whispers(e[keep], threshold, rng=rng)
    return labels

