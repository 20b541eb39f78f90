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
# # Assignment 8 — verification metrics: VAL at FAR and the 10-fold accuracy
#
# *Verification* answers "are these two faces the same person?" from the distance between their
# embeddings: **same** when the distance is at most a threshold $t$. A test set is a list of $P$
# labelled pairs — distances $d_k$ and `same[k]` — and two ways of scoring it are standard:
#
# * FaceNet (section 4) reports the **validation rate at a false accept rate**, e.g. VAL at
#   FAR $= 10^{-3}$: how many same-person pairs are accepted when at most one in a thousand
#   different-person pairs is;
# * LFW's protocol reports the **10-fold accuracy**: the threshold is chosen on nine folds and the
#   accuracy measured on the tenth, ten times.
#
# You write, with the names of `scratchface.recognition.verification`:
#
# 1. `val_far(distances, same, threshold) -> (val, far)`
# 2. `val_at_far(distances, same, far=1e-3) -> (val, achieved_far, threshold)`
# 3. `fit_threshold(distances, same) -> (threshold, accuracy)`
# 4. `kfold_accuracy(distances, same, *, folds) -> (accuracies, thresholds)`, one entry per fold
#
# `distances` is a float array $(P,)$, `same` a boolean array $(P,)$, `folds` an integer array
# $(P,)$ giving each pair's fold. The checker counts by brute force over every candidate threshold.

# %%
import numpy as np

from scratchface.check import check

# %% [markdown]
# ## 1. VAL and FAR at one threshold
#
# With $P_{same}$ the same-person pairs and $P_{diff}$ the different-person pairs, the true accepts
# $TA(t) = \{k \in P_{same} : d_k \le t\}$ and false accepts $FA(t) = \{k \in P_{diff} : d_k \le t\}$:
#
# $$ VAL(t) = \frac{|TA(t)|}{|P_{same}|}, \qquad FAR(t) = \frac{|FA(t)|}{|P_{diff}|} . $$
#
# Each is a fraction of *its own* kind of pair — FAR is not a fraction of all pairs.

# %%
def val_far(distances, same, threshold):
    """Validation rate and false accept rate at one threshold (accept when distance <= threshold)."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(val_far)

# %% [markdown]
# ## 2. VAL at a target FAR
#
# As $t$ grows both rates grow. VAL at FAR $= f$ is VAL at the **largest** threshold whose FAR is
# still at most $f$. Only the distances themselves (and $-\infty$, nothing accepted) need to be
# tried: in between nothing changes. Try $-\infty$ and every distinct distance in increasing
# order and keep the last one with $FAR(t) \le f$; return its VAL, its FAR and the threshold.
#
# Note the resolution: with 100 different pairs, FAR moves in steps of $1/100$, so a target of
# $10^{-3}$ means FAR $= 0$. (FaceNet measured on many more pairs.)

# %%
def val_at_far(distances, same, far=1e-3):
    """VAL at the largest threshold whose FAR is at most ``far``.

    Returns
    -------
    val, achieved_far : float
    threshold : float, -inf when even the smallest distance gives FAR > far
    """
    # TODO: your code here
    raise NotImplementedError


# %%
check(val_at_far)

# %% [markdown]
# ## 3. The best threshold on labelled pairs
#
# The accuracy of a threshold is the fraction of pairs it classifies right,
# $\frac{1}{P} \sum_k [\, (d_k \le t) = same_k \,]$. Candidates: $-\infty$ (everything *different*),
# the **midpoints** between consecutive distinct distances (a new pair's distance is as likely to
# fall a little above as a little below), and $+\infty$ (everything *same*). Return the best
# candidate — the smallest one when several are equally good — and its accuracy.

# %%
def fit_threshold(distances, same):
    """Threshold with the best accuracy on these pairs, and that accuracy."""
    # TODO: your code here
    raise NotImplementedError


# %%
check(fit_threshold)

# %% [markdown]
# ## 4. The 10-fold protocol
#
# For each fold $k$ (in increasing order of the fold labels, `np.unique(folds)`):
#
# 1. choose the threshold with `fit_threshold` on the pairs of the **other** folds;
# 2. measure the accuracy of that threshold on fold $k$.
#
# Choosing the threshold on the test fold itself would report an optimistic number: the
# threshold would have seen the answers. Return both arrays; a paper reports
# `accuracies.mean()` ± `accuracies.std()`.

# %%
def kfold_accuracy(distances, same, *, folds):
    """Accuracy of each held-out fold with the threshold fitted on the others.

    Returns
    -------
    accuracies, thresholds : float arrays, shape (n_folds,)
    """
    # TODO: your code here
    raise NotImplementedError


# %%
check(kfold_accuracy)

# %% [markdown]
# ## 5. Try it
#
# Twenty made-up people, six 16-D unit-length "embeddings" each, scattered around a centre per
# person; every same-person pair and as many different-person pairs, in 10 folds
# (`scratchface.data.pairs.make_pairs`), scored with your functions.

# %%
if check(kfold_accuracy, verbose=False) and check(val_at_far, verbose=False):
    from scratchface.data.pairs import make_pairs, pair_distances

    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(20), 6)
    centres = rng.standard_normal((20, 16))
    emb = centres[people] + 0.6 * rng.standard_normal((len(people), 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    pairs = make_pairs(people, n_folds=10, rng=0)
    d = pair_distances(emb, pairs)
    accuracies, _ = kfold_accuracy(d, pairs.same, folds=pairs.fold)
    val, achieved, t = val_at_far(d, pairs.same, far=0.01)
    print(f"{len(d)} pairs: 10-fold accuracy {accuracies.mean():.3f} +- {accuracies.std():.3f}; "
          f"VAL {val:.3f} at FAR {achieved:.4f} (threshold {t:.3f})")

# %% [markdown]
# ## 6. Compare with the library, and your ROC curve
#
# Your functions against `scratchface.recognition.verification` on the same pairs (the numbers should
# agree to the last digit), then the ROC curve drawn from **your** `val_far` at every distinct
# distance: VAL (same pairs accepted) against FAR (different pairs accepted). The point your
# `val_at_far` picks for FAR $\le 0.01$ is marked.

# %%
try:
    import matplotlib.pyplot as plt

    from scratchface.recognition import verification as library

    rng = np.random.default_rng(9)
    same = rng.random(400) < 0.5
    distances = rng.normal(0.8, 0.25, 400) + np.where(same, 0.0, 0.5)
    folds = rng.permutation(np.arange(400) % 10)
    mine = val_at_far(distances, same, far=0.01)
    print("val_at_far     yours:", np.round(mine, 6), " library:",
          np.round(library.val_at_far(distances, same, 0.01), 6))
    print("fit_threshold  yours:", np.round(fit_threshold(distances, same), 6), " library:",
          np.round(library.fit_threshold(distances, same), 6))
    print("10-fold mean   yours:", round(float(kfold_accuracy(distances, same, folds=folds)[0].mean()), 6),
          " library:", round(library.kfold_accuracy(distances, same, folds=folds).mean, 6))
    curve = np.array([val_far(distances, same, t) for t in np.unique(distances)])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve[:, 1], curve[:, 0], label="your val_far at every distance")
    ax.plot(mine[1], mine[0], "o", color="red", label="your val_at_far, far=0.01")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("FAR (different pairs accepted)")
    ax.set_ylabel("VAL (same pairs accepted)")
    ax.legend(fontsize=8)
    plt.show()
except NotImplementedError:
    print("finish the four functions first")
