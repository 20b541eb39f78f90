"""Clustering at scale: time and peak memory of ``cluster_faces`` at 1k / 10k / 100k embeddings, dlib beside it.

Usage::

    python benchmarks/bench_clustering.py                      # 1,000 / 10,000 / 100,000 faces
    python benchmarks/bench_clustering.py --sizes 1000 10000   # skip 100k
    python benchmarks/bench_clustering.py --no-memory          # time only

The embeddings are synthetic 128-d unit vectors drawn like a photo collection
(:func:`synthetic_collection`): 20 % of the faces are people seen once, the
others people with 2 to 10 photos. Person centres and photo noise are Gaussian
with a decaying spectrum (variance of component ``k`` proportional to ``1/k``,
in a random basis), scaled so that the Euclidean distances look like dlib's
descriptors on ORL (same person about 0.3, different people about 0.75, with
a spread of about 0.1; the benchmark prints those of its vectors).

For each size and method (average linkage, single linkage at the default
threshold 0.45) it prints the wall time (one run, after a warm-up on 1,000 faces
that compiles the Numba kernel), the peak memory traced by ``tracemalloc``
(NumPy's buffers included: a second run, since tracing slows Python loops down),
the neighbour pairs found, the largest connected group of the graph, and the
pairwise precision / recall against the drawn identities. dlib's
``chinese_whispers_clustering`` (the peer, ``pip install dlib-bin``) runs on the
same embeddings at 1k and 10k when installed.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from scratchface.recognition.clustering import DEFAULT_THRESHOLD, cluster_faces, neighbour_pairs
from scratchface.recognition.clustering_scores import pairwise_precision_recall


def synthetic_collection(n, rng=0, *, singletons=0.2, dim=128, spread_people=0.6, spread_photos=0.28):
    """``(embeddings, identities)``: ``n`` unit vectors, people with 2-10 photos plus people seen once.

    The noise of each person and of each photo is scaled by a log-normal factor
    (sigma 0.2), so that some people vary more than others (lighting, age).
    """
    rng = np.random.default_rng(rng)
    sizes = []
    n_alone = int(round(singletons * n))
    while sum(sizes) < n - n_alone:
        sizes.append(int(rng.integers(2, 11)))
    sizes[-1] -= sum(sizes) - (n - n_alone)
    sizes = [s for s in sizes if s > 0] + [1] * n_alone
    labels = np.repeat(np.arange(len(sizes)), sizes)
    spectrum = np.arange(1, dim + 1) ** -0.5
    spectrum /= np.linalg.norm(spectrum)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mean = rng.standard_normal(dim)
    mean /= np.linalg.norm(mean)
    centres = mean + (spread_people * rng.standard_normal((len(sizes), dim)) * spectrum) @ basis
    scale = spread_photos * np.exp(0.2 * rng.standard_normal(len(sizes)))[labels] * np.exp(0.2 * rng.standard_normal(n))
    x = centres[labels] + (scale[:, None] * rng.standard_normal((n, dim)) * spectrum) @ basis
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = rng.permutation(n)
    return x[order].astype(np.float32), labels[order]


def distance_summary(n=1000, rng=0):
    """Mean and standard deviation of same-person and different-person distances of a drawn collection."""
    e, who = synthetic_collection(n, rng=rng)
    i, j = np.triu_indices(n, k=1)
    d = np.linalg.norm(e[i].astype(np.float64) - e[j], axis=1)
    same = who[i] == who[j]
    return d[same].mean(), d[same].std(), d[~same].mean(), d[~same].std()


def _timed(f):
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def _peak(f):
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _largest_group(n, first, second):
    from scipy.sparse import coo_matrix  # noqa: PLC0415  (SciPy's graph search, only for the printout)
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    _, labels = connected_components(coo_matrix((np.ones(first.size), (first, second)), shape=(n, n)),
                                     directed=False)
    return int(np.bincount(labels).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--dlib-max", type=int, default=10_000, help="largest size dlib is run at (default 10000)")
    args = parser.parse_args(argv)
    try:
        import dlib  # noqa: PLC0415  (the peer, benchmark only)
    except ImportError:
        dlib = None
    cluster_faces(synthetic_collection(1000, rng=99)[0])  # warm-up: Numba compiles (or loads its cache)
    print(f"threshold {args.threshold:g}; synthetic 128-d unit vectors (20 % people seen once, the others 2-10 "
          "photos); distances of 1,000 of them: same person {:.2f} +- {:.2f}, different people {:.2f} +- {:.2f}\n"
          .format(*distance_summary()))
    print("| faces | people | neighbour pairs | largest group | method | time (s) | peak memory (MB) | pairwise P "
          "| pairwise R |\n|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        e, identities = synthetic_collection(n, rng=n)
        first, second, _ = neighbour_pairs(e, args.threshold)
        group = _largest_group(n, first, second)
        runs = [("average linkage", lambda: cluster_faces(e, method="average", threshold=args.threshold)),
                ("single linkage", lambda: cluster_faces(e, method="single", threshold=args.threshold))]
        if dlib is not None and n <= args.dlib_max:
            vectors = [dlib.vector(v.tolist()) for v in e.astype(np.float64)]  # conversion not timed
            runs.append(("dlib chinese_whispers", lambda: np.asarray(
                dlib.chinese_whispers_clustering(vectors, args.threshold))))
        for name, run in runs:
            seconds, labels = _timed(run)
            peak = "-" if args.no_memory else f"{_peak(run) / 2**20:.0f}"
            if name.startswith("dlib"):
                peak = "(C++, not traced)"
            scores = pairwise_precision_recall(identities, labels)
            print(f"| {n:,} | {identities.max() + 1:,} | {first.size:,} | {group:,} | {name} | {seconds:.2f} | {peak} "
                  f"| {scores.precision:.3f} | {scores.recall:.3f} |", flush=True)
    if dlib is None:
        print("\ndlib is not installed: its chinese_whispers_clustering is left out (pip install dlib-bin)")


if __name__ == "__main__":
    main()
