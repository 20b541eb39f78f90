# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Assignment 6 — the triplet loss and semi-hard mining
#
# FaceNet (Schroff, Kalenichenko, Philbin, CVPR 2015) learns an embedding $f(x)$ on the unit
# sphere in which the squared distance between two photos says whether they show one person.
# It trains on **triplets**: an anchor $a$, a positive $p$ (another photo of the same person) and
# a negative $n$ (someone else), and wants (eq. 1)
#
# $$ \lVert f(a) - f(p) \rVert^2 + \alpha < \lVert f(a) - f(n) \rVert^2 . $$
#
# You write, with the names of `scratchface.losses.triplet` and `scratchface.losses.mining`:
#
# 1. `triplet_loss_forward(anchor, positive, negative, *, alpha=0.2) -> (loss, cache)`
# 2. `triplet_loss_backward(dloss, cache) -> (danchor, dpositive, dnegative)`
# 3. `pairwise_squared_distances(embeddings) -> (B, B)`
# 4. `semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2)` — the indices of the
#    semi-hard negatives of one anchor–positive pair
# 5. `semi_hard_triplets(embeddings, labels, *, alpha=0.2) -> (a, p, n)` — FaceNet's online selection
#
# `check(...)` after each compares with the reference (finite differences for the gradients,
# brute-force loops for the mining) and names the likely mistake.

# %%
import numpy as np

from scratchface.check import check

# %% [markdown]
# ## 1. The loss
#
# Write $d^+_i = \lVert a_i - p_i \rVert^2$ and $d^-_i = \lVert a_i - n_i \rVert^2$ for the
# $i$-th of $N$ triplets (rows of three `(N, D)` arrays). The loss of one triplet is the **hinge**
# of the violation, zero once the margin is met; this assignment averages over the triplets
# (FaceNet's eq. 3 writes the sum; the mean keeps the step size independent of the batch size):
#
# $$ L = \frac{1}{N} \sum_{i=1}^{N} \big[\, d^+_i - d^-_i + \alpha \,\big]_+ , \qquad [z]_+ = \max(0, z). $$
#
# Use the rows as they are (in FaceNet they are already L2-normalised; the library's
# `triplet_loss_forward` can do that for you with `normalize=True`). The cache keeps whatever
# the backward pass will need.

# %%
def triplet_loss_forward(anchor, positive, negative, *, alpha=0.2):
    """Mean triplet loss over N triplets.

    Parameters
    ----------
    anchor, positive, negative : arrays, shape (N, D)
    alpha : float > 0, the margin

    Returns
    -------
    loss : float (or a 0-d array)
    cache : whatever triplet_loss_backward needs
    """
    ### BEGIN SOLUTION
    d_pos = ((anchor - positive) ** 2).sum(axis=1)
    d_neg = ((anchor - negative) ** 2).sum(axis=1)
    z = d_pos - d_neg + alpha
    loss = np.maximum(z, 0).mean()
    cache = (anchor, positive, negative, z > 0)
    return loss, cache
    ### END SOLUTION


# %%
check(triplet_loss_forward)

# %% [markdown]
# ## 2. The gradients
#
# For an *active* triplet ($z_i = d^+_i - d^-_i + \alpha > 0$), with $\partial \lVert u \rVert^2 / \partial u = 2u$:
#
# $$ \frac{\partial z_i}{\partial a_i} = 2(a_i - p_i) - 2(a_i - n_i) = 2(n_i - p_i), \qquad
#    \frac{\partial z_i}{\partial p_i} = 2(p_i - a_i), \qquad
#    \frac{\partial z_i}{\partial n_i} = 2(a_i - n_i), $$
#
# and an inactive triplet contributes nothing (the hinge is flat there). Multiply by
# $\partial L / \partial \ell_i = 1/N$ (the mean) and by the upstream gradient `dloss`. The checker
# compares your gradients with fourth-order finite differences of the reference loss, on triplets
# drawn away from the kink $z_i = 0$.

# %%
def triplet_loss_backward(dloss, cache):
    """Gradients of the mean triplet loss.

    Parameters
    ----------
    dloss : float, the upstream gradient dL_total / dL
    cache : from triplet_loss_forward

    Returns
    -------
    danchor, dpositive, dnegative : arrays, shape (N, D)
    """
    ### BEGIN SOLUTION
    anchor, positive, negative, active = cache
    g = (2.0 * dloss * active / len(anchor))[:, None]
    return g * (negative - positive), g * (positive - anchor), g * (anchor - negative)
    ### END SOLUTION


# %%
check(triplet_loss_backward)

# %% [markdown]
# ## 3. All squared distances of a batch
#
# Mining looks at every pair of a batch of $B$ embeddings $e_i$. Without a Python loop:
#
# $$ d_{ij} = \lVert e_i - e_j \rVert^2 = \lVert e_i \rVert^2 + \lVert e_j \rVert^2 - 2\, e_i^\top e_j , $$
#
# one matrix product `e @ e.T` for the last term. Rounding can make this a tiny negative number
# where $e_i = e_j$: clamp at 0 (a `sqrt` of it later would be NaN).

# %%
def pairwise_squared_distances(embeddings):
    """Squared Euclidean distances between the rows of a (B, D) array: shape (B, B)."""
    ### BEGIN SOLUTION
    sq = (embeddings * embeddings).sum(axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.T
    return np.maximum(d, 0.0)
    ### END SOLUTION


# %%
check(pairwise_squared_distances)

# %% [markdown]
# ## 4. Semi-hard negatives
#
# With 2 people × 10 photos in a batch there are $2 \times 10 \times 9 \times 10 = 1800$ triplets,
# and most already satisfy the margin: they teach nothing. The *hardest* negative (the nearest
# one) is the most informative but FaceNet found it leads to collapsed models early in training.
# It uses **semi-hard** negatives instead: farther than the positive, but still inside the margin,
#
# $$ d(a, p) < d(a, n) < d(a, p) + \alpha , $$
#
# both inequalities strict, $n$ a different person from $a$. Return their indices in increasing
# order (an empty integer array when there is none).

# %%
def semi_hard_negatives(distances, labels, anchor, positive, *, alpha=0.2):
    """Indices of the semi-hard negatives of the pair (anchor, positive).

    Parameters
    ----------
    distances : array, shape (B, B), squared distances
    labels : int array, shape (B,), the person of each embedding
    anchor, positive : int, row indices (same person)
    alpha : float > 0

    Returns
    -------
    int64 array, ascending
    """
    ### BEGIN SOLUTION
    d_ap = distances[anchor, positive]
    d_an = distances[anchor]
    window = (labels != labels[anchor]) & (d_an > d_ap) & (d_an < d_ap + alpha)
    return np.flatnonzero(window).astype(np.int64)
    ### END SOLUTION


# %%
check(semi_hard_negatives)

# %% [markdown]
# ## 5. Online triplet selection
#
# For every anchor–positive pair $(a, p)$, $a \ne p$, same person, in row-major order (by anchor,
# then positive), take the **nearest** semi-hard negative (the smallest $d(a, n)$ in the window;
# ties: the lower index). A pair without any semi-hard negative is skipped. Return three `int64`
# arrays `(a, p, n)` of one length — empty ones (shape `(0,)`) when nothing is found, never `None`.
# (The library's `semi_hard_triplets` can also draw the negative at random and fall back to another
# negative; this is its `choose='hardest', fallback='skip'`.)

# %%
def semi_hard_triplets(embeddings, labels, *, alpha=0.2):
    """FaceNet's semi-hard triplets of a batch.

    Returns
    -------
    a, p, n : int64 arrays, shape (T,)
    """
    ### BEGIN SOLUTION
    labels = np.asarray(labels)
    d = pairwise_squared_distances(embeddings)
    triplets = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            negatives = semi_hard_negatives(d, labels, a, p, alpha=alpha)
            if negatives.size:
                triplets.append((a, p, negatives[np.argmin(d[a, negatives])]))
    if not triplets:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(3))
    return tuple(np.asarray(column, dtype=np.int64) for column in zip(*triplets))
    ### END SOLUTION


# %%
check(semi_hard_triplets)

# %% [markdown]
# ## 6. Try it
#
# Once the miner passes: two people with ten 2-D "embeddings" each. How many of the 1800 possible
# triplets are semi-hard, and what does the loss say about them?

# %%
if check(semi_hard_triplets, verbose=False) and check(triplet_loss_forward, verbose=False):
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal([0.0, 0.0], 0.3, (10, 2)), rng.normal([0.5, 0.2], 0.3, (10, 2))])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    people = np.repeat([0, 1], 10)
    a, p, n = semi_hard_triplets(emb, people, alpha=0.2)
    loss, _ = triplet_loss_forward(emb[a], emb[p], emb[n], alpha=0.2)
    print(f"{len(a)} of the 180 anchor-positive pairs have a semi-hard negative; mean loss {float(loss):.4f}")

# %% [markdown]
# ## 7. Your own gradient check
#
# Finite differences of your loss against your backward, for each of the three inputs
# (`numerical_gradient`, and `rel_error` = the largest $|a - b| / (|a| + |b|)$): about $10^{-9}$ or
# less when right. The hinge is a kink too: a triplet whose $d(a, p) - d(a, n) + \alpha$ is within
# $h$ of 0 would disagree, so the embeddings below keep away from it.

# %%
try:
    from scratchface.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(6)
    anchor, positive, negative = (rng.standard_normal((8, 5)) for _ in range(3))
    loss, cache = triplet_loss_forward(anchor, positive, negative, alpha=0.2)
    grads = triplet_loss_backward(1.0, cache)

    def loss_value():
        return float(triplet_loss_forward(anchor, positive, negative, alpha=0.2)[0])

    for name, mine, value in zip(("d anchor", "d positive", "d negative"), grads, (anchor, positive, negative)):
        print(f"{name:10s}: relative error {rel_error(mine, numerical_gradient(loss_value, value)):.1e}")
except NotImplementedError:
    print("finish triplet_loss_forward and triplet_loss_backward first")

# %% [markdown]
# ## 8. Your triplets, drawn
#
# Three people, 2-D unit-length "embeddings". For a few anchors: the positive your miner paired it
# with (green) and the semi-hard negative it chose (red) — farther than the positive, but by less than
# the margin.

# %%
try:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(7)
    angles = np.repeat([0.3, 1.2, 2.1], 8) + rng.normal(0, 0.35, 24)
    emb = np.column_stack([np.cos(angles), np.sin(angles)])
    people = np.repeat([0, 1, 2], 8)
    a, p, n = semi_hard_triplets(emb, people, alpha=0.4)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(*emb.T, c=people, cmap="tab10", vmin=0, vmax=9, zorder=3)
    for k in range(0, len(a), max(1, len(a) // 6)):
        ax.plot(*emb[[a[k], p[k]]].T, color="green", lw=2)
        ax.plot(*emb[[a[k], n[k]]].T, color="red", lw=1, ls="--")
    ax.set_aspect("equal")
    ax.set_title(f"{len(a)} semi-hard triplets from your miner (a few drawn)")
    plt.show()
except NotImplementedError:
    print("finish the miner first")
