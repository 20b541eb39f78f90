"""The lecture's recognition figures: ROC curve, same / different distance histograms, per-person
spread around the mean embedding, a gallery of nearest neighbours.

Every function returns a ``matplotlib.figure.Figure`` (built without
``pyplot``, so no window and no global state; save it with
``fig.savefig('roc.png')``) or draws into the ``ax`` it is given. Matplotlib is
imported only when a figure is made.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_array, check_float_array
from .verification import auc, check_pairs, equal_error_rate, roc_curve

__all__ = ["distance_to_mean", "plot_roc", "plot_distance_histograms", "plot_distance_to_mean",
           "plot_nearest_neighbors"]


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure  # noqa: PLC0415  heavy, optional: only when a figure is drawn

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def distance_to_mean(embeddings, labels):
    """Squared Euclidean distance of each embedding to its person's mean embedding.

    Parameters
    ----------
    embeddings : float array, shape (N, D)
    labels : int array, shape (N,)

    Returns
    -------
    people : int64 array, shape (K,)
        The distinct labels, ascending.
    distances : list of K float64 arrays
        ``distances[k][i] = ||e_i - mean_k||^2`` for the images of person ``people[k]``.
    """
    check_float_array(embeddings, "embeddings", ndim=2)
    labels = np.asarray(labels)
    check_array(labels, "labels", ndim=1, dtype_kind="iu")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels must have one entry per embedding ({embeddings.shape[0]}), got {labels.shape[0]}")
    e = np.asarray(embeddings, dtype=np.float64)
    people = np.unique(labels).astype(np.int64)
    out = []
    for person in people:
        mine = e[labels == person]
        out.append(((mine - mine.mean(axis=0)) ** 2).sum(axis=1))
    return people, out


def plot_roc(distances, same, *, label=None, ax=None, log_far=False):
    """The ROC curve (TAR against FAR) with its AUC and the equal-error point.

    Parameters
    ----------
    distances : float array, shape (P,)
    same : bool array, shape (P,)
    label : str, optional
        Legend entry (the AUC is appended).
    ax : matplotlib Axes, optional
    log_far : bool
        Logarithmic FAR axis (to read VAL at FAR = 1e-3).

    Returns
    -------
    matplotlib.figure.Figure
    """

    roc = roc_curve(distances, same)
    eer, _ = equal_error_rate(distances, same)
    fig, ax = _axes(ax, (4.5, 4.5))
    text = f"AUC = {auc(roc.far, roc.tar):.4f}"
    ax.plot(roc.far, roc.tar, drawstyle="steps-post", label=f"{label}: {text}" if label else text)
    ax.plot([eer], [1 - eer], "o", color="C3", label=f"EER = {100 * eer:.2f}%")
    if log_far:
        ax.set_xscale("log")
    else:
        ax.plot([0, 1], [0, 1], ":", color="gray", linewidth=1)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR, VAL)")
    ax.set_title("ROC: same person if distance <= threshold")
    ax.legend(loc="lower right")
    return fig


def plot_distance_histograms(distances, same, *, threshold=None, bins=40, ax=None):
    """Histograms of the pair distances, same-person pairs against different-person pairs.

    The overlap of the two is what no threshold can separate; ``threshold``
    draws the chosen one as a vertical line.
    """

    d, s = check_pairs(distances, same)
    fig, ax = _axes(ax, (6, 3.5))
    edges = np.histogram_bin_edges(d, bins=bins)
    ax.hist(d[s], bins=edges, alpha=0.6, label=f"same person ({int(s.sum())} pairs)", color="C2")
    ax.hist(d[~s], bins=edges, alpha=0.6, label=f"different people ({int((~s).sum())} pairs)", color="C3")
    if threshold is not None:
        ax.axvline(float(threshold), color="k", linestyle="--", label=f"threshold {float(threshold):.3f}")
    ax.set_xlabel("distance between the two embeddings")
    ax.set_ylabel("pairs")
    ax.legend()
    return fig


def plot_distance_to_mean(embeddings, labels, *, ax=None):
    """Per person, the distances of their embeddings to their mean embedding (one box per person).

    A tight box means the network maps that person's photos close together.
    """
    people, dists = distance_to_mean(embeddings, labels)
    fig, ax = _axes(ax, (max(4.0, 0.45 * len(people) + 1.5), 3.5))
    ax.boxplot(dists, showfliers=True)
    ax.set_xticks(np.arange(1, len(people) + 1), [str(p) for p in people])
    ax.set_xlabel("person")
    ax.set_ylabel("squared distance to the person's mean")
    return fig


def plot_nearest_neighbors(query_images, gallery_images, indices, *, distances=None, query_labels=None,
                           gallery_labels=None, figsize_per_image=1.3):
    """A grid: each row one query, then its nearest gallery images, nearest first.

    Parameters
    ----------
    query_images : array, shape (Q, H, W) or (Q, H, W, 3)
    gallery_images : array, shape (M, H, W) or (M, H, W, 3)
    indices : int array, shape (Q, k)
        Gallery rows per query, e.g. from
        :func:`scratchface.distances.nearest_neighbors`.
    distances : array, shape (Q, k), optional
        Written under each neighbour.
    query_labels, gallery_labels : int arrays, optional
        When given, a neighbour's frame is green if it is the query's person, red if not.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # noqa: PLC0415  heavy, optional: only when a figure is drawn

    indices = np.asarray(indices)
    check_array(indices, "indices", ndim=2, dtype_kind="iu")
    q, k = indices.shape
    if len(query_images) != q:
        raise ValueError(f"query_images must have one image per row of indices ({q}), got {len(query_images)}")
    if indices.size and (indices.min() < 0 or indices.max() >= len(gallery_images)):
        raise ValueError(f"indices must be in [0, {len(gallery_images)}), the gallery's rows")
    fig = Figure(figsize=(figsize_per_image * (k + 1), figsize_per_image * 1.25 * max(q, 1)), layout="constrained")
    axes = fig.subplots(max(q, 1), k + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for i in range(q):
        axes[i, 0].imshow(query_images[i], cmap="gray")
        axes[i, 0].set_title("query" if query_labels is None else f"query ({query_labels[i]})", fontsize=8)
        for j in range(k):
            ax = axes[i, j + 1]
            g = int(indices[i, j])
            ax.imshow(gallery_images[g], cmap="gray")
            parts = [] if gallery_labels is None else [str(gallery_labels[g])]
            if distances is not None:
                parts.append(f"{float(distances[i][j]):.3f}")
            ax.set_title(" ".join(parts), fontsize=8)
            if query_labels is not None and gallery_labels is not None:
                colour = "green" if gallery_labels[g] == query_labels[i] else "red"
                for spine in ax.spines.values():
                    spine.set_edgecolor(colour)
                    spine.set_linewidth(3)
    return fig
