"""Exact top-k neighbours against faiss's ``IndexFlatL2``; distance matrix against NumPy BLAS.

Usage::

    python benchmarks/bench_distances.py                    # 10,000 x 100,000 x 128 float32, k=5
    python benchmarks/bench_distances.py --queries 2000 --gallery 20000 --repeat 3 --threads 1

Top-k: scratchface's ``nearest_neighbors`` (impl 'numba') and faiss-cpu's
``IndexFlatL2.search`` (exact L2: blocks of queries x blocks of database, one
sgemm per block pair, a per-query heap) on the same data at the same number of
threads, interleaved, best of ``--repeat``. faiss-cpu is the ``bench`` extra
(``pip install faiss-cpu``); without it the faiss rows are skipped with a message.
The neighbours are compared with faiss's and with a naive float64 computation
(SciPy's ``cdist``, stable sort) on a sample of queries. The extra memory the
search holds is measured as the rise of the process's peak resident size
(``VmHWM``, reset through ``/proc/self/clear_refs``), Linux only.

Distance matrix: ``squared_euclidean_distances`` against the NumPy expression
``np.maximum(a2[:, None] + b2[None, :] - 2 * a @ b.T, 0)`` on ``--matrix`` x
``--matrix`` rows. Numba compile time is reported apart (the first calls).
"""
from __future__ import annotations

import argparse
import multiprocessing
import time

import numba
import numpy as np
from scipy.spatial.distance import cdist

from scratchface.distances import nearest_neighbors, squared_euclidean_distances
from _timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)

try:
    import faiss
except ImportError:  # the bench extra is not installed
    faiss = None




def numpy_sq_euclidean(a, b):
    a2 = (a * a).sum(1)
    b2 = (b * b).sum(1)
    return np.maximum(a2[:, None] + b2[None, :] - 2 * (a @ b.T), 0)


def _vm_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _data(queries, gallery, d):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((queries, d), dtype=np.float32),
            rng.standard_normal((gallery, d), dtype=np.float32))


def _peak_extra_child(which, queries, gallery, d, k, threads):
    """In a fresh process: MiB by which the peak resident size rises while one search runs (Linux)."""
    if threads:
        numba.set_num_threads(threads)
    q, g = _data(queries, gallery, d)
    if which == "faiss":
        index = faiss.IndexFlatL2(d)
        index.add(g)
        index.search(q[:2], k)
        run = lambda: index.search(q, k)
    else:
        nearest_neighbors(q[:2], g[:3], k=1, impl="numba")
        run = lambda: nearest_neighbors(q, g, k=k, impl="numba")
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current VmRSS
        before = _vm_kib("VmRSS")
        run()
        return (_vm_kib("VmHWM") - before) / 1024
    except (OSError, RuntimeError):
        return float("nan")


def peak_extra_mib(which, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_peak_extra_child, (which, *args))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000, help="query rows (default 10000)")
    parser.add_argument("--gallery", type=int, default=100_000, help="gallery rows (default 100000)")
    parser.add_argument("--d", type=int, default=128, help="embedding size (default 128)")
    parser.add_argument("--k", type=int, default=5, help="neighbours (default 5)")
    parser.add_argument("--matrix", type=int, default=10_000, help="rows of each set for the distance matrix")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: all cores)")
    parser.add_argument("--check", type=int, default=200, help="queries checked against naive float64")
    args = parser.parse_args(argv)

    if args.threads:
        numba.set_num_threads(args.threads)
        if faiss is not None:
            faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    q, g = _data(args.queries, args.gallery, args.d)

    t = time.perf_counter()
    nearest_neighbors(q[:2], g[:3], k=1, impl="numba")
    squared_euclidean_distances(q[:2], g[:3], impl="numba")
    compile_s = time.perf_counter() - t

    print(f"exact top-{args.k}: {args.queries} queries x {args.gallery} gallery x {args.d} float32, "
          f"best of {args.repeat}, {numba.get_num_threads()} threads")
    print(f"Numba compile / cache load (first calls, excluded below): {compile_s:.2f} s")
    ours_t, faiss_t = [], []
    index = None
    if faiss is None:
        print("faiss-cpu not installed (pip install faiss-cpu, the 'bench' extra): faiss rows skipped")
    else:
        index = faiss.IndexFlatL2(args.d)
        index.add(g)
    for _ in range(args.repeat):  # interleaved, so that both see the same machine load
        if index is not None:
            t = time.perf_counter()
            _, faiss_i = index.search(q, args.k)
            faiss_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours_i, _ = nearest_neighbors(q, g, k=args.k, impl="numba")
        ours_t.append(time.perf_counter() - t)
    print(f"{'':<36}{'time (s)':>10}{'faiss time / ours':>20}")
    print(f"{'scratchface nearest_neighbors':<36}{min(ours_t):>10.3f}")
    if index is not None:
        print(f"{'faiss-cpu ' + faiss.__version__ + ' IndexFlatL2.search':<36}{min(faiss_t):>10.3f}"
              f"{min(faiss_t) / min(ours_t):>19.2f}x")
        print(f"neighbours equal to faiss's: {np.mean(faiss_i == ours_i):.5%} of entries")
    sample = rng.choice(args.queries, size=min(args.check, args.queries), replace=False)
    d64 = cdist(q[sample].astype(np.float64), g.astype(np.float64), "sqeuclidean")
    naive = np.argsort(d64, axis=1, kind="stable")[:, : args.k]
    print(f"neighbours equal to naive float64 (cdist + stable sort), {len(sample)} queries: "
          f"{np.mean(naive == ours_i[sample]):.5%}" + (f" (faiss: {np.mean(naive == faiss_i[sample]):.5%})"
                                                      if index is not None else ""))
    shape = (args.queries, args.gallery, args.d, args.k, args.threads)
    print(f"peak extra memory of one search (fresh process, rise of VmHWM): scratchface "
          f"{peak_extra_mib('ours', *shape):.1f} MiB" + (f", faiss {peak_extra_mib('faiss', *shape):.1f} MiB"
                                                      if index is not None else "")
          + f" (queries {q.nbytes / 2**20:.0f} MiB, gallery {g.nbytes / 2**20:.0f} MiB)")

    a, b = q[: args.matrix], g[: args.matrix]
    t_np, d_np = best_of(lambda: numpy_sq_euclidean(a, b), args.repeat)
    t_sf, d_sf = best_of(lambda: squared_euclidean_distances(a, b, impl="numba"), args.repeat)
    err = float(np.abs(d_np - d_sf).max()) / float(np.abs(d_np).max())
    print(f"\ndistance matrix {len(a)} x {len(b)} x {args.d}: NumPy {t_np:.3f} s, scratchface {t_sf:.3f} s, "
          f"speed-up {t_np / t_sf:.2f}x; max |difference| / max distance {err:.1e}")


if __name__ == "__main__":
    main()
