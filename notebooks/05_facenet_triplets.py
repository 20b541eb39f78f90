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
# # 05 — FaceNet: triplets, mining, and what an embedding looks like
#
# FaceNet (Schroff, Kalenichenko, Philbin 2015) does not classify faces: it maps each face to a
# point $f(x)$ on the unit sphere of $\mathbb{R}^{128}$ so that photos of one person are close and
# photos of different people far apart. It is trained on **triplets** — an anchor $a$, a positive
# $p$ (same person), a negative $n$ (someone else) — with the loss
#
# $$L = \sum_i \big[\, \lVert f(a_i) - f(p_i)\rVert^2 - \lVert f(a_i) - f(n_i)\rVert^2 + \alpha \,\big]_+ ,
#   \qquad \alpha = 0.2 .$$
#
# Most triplets already satisfy the margin and teach nothing; **which** triplets to use is half the
# method. Here: the three miners of `scratchface.losses.mining` on real embeddings.

# %%

import matplotlib.pyplot as plt
import numpy as np

from scratchface.data import find_data_dir, orl
from scratchface.losses.mining import (
    batch_all_triplets,
    batch_hard_triplets,
    pairwise_squared_distances,
    semi_hard_triplets,
)
from scratchface.losses.triplet import mined_triplet_loss_forward, triplet_loss_forward
from scratchface.models import orl_nets
from scratchface.recognition import orl_embedding as oe
from scratchface.recognition.eigenfaces import fit_pca, pca_transform
from scratchface.recognition.orl_preprocessing import preprocess_orl


DATA = find_data_dir()   # $SCRATCHFACE_DATA, else ../shared/data beside the repository
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Real embeddings
#
# The package ships a small FaceNet-style network trained with this very loss on ORL people 1–30
# (`scratchface.recognition.orl_embedding.load_pretrained('triplet')`; `embed_orl` aligns the faces on MTCNN's five landmarks and
# embeds them). We embed the ten people it has **never seen** (31–40, ten photos each). For
# comparison, the same architecture with random weights (before training).

# %%
if DATA is not None:
    from scratchface.detection.mtcnn import detect_faces

    images, labels = orl.load_orl_faces(DATA / "orl_faces", subjects=orl.TEST_PEOPLE)
    # five landmarks per face (MTCNN) to align the faces as the network was trained
    landmarks = np.stack([detect_faces(image, min_face_size=80).landmarks[0] for image in images])
    trained = oe.embed_orl(images, "triplet", landmarks=landmarks)
    untrained = oe.embed_with_net(orl_nets.build_embedding_net(rng=0).eval(), preprocess_orl(images, landmarks))
    print(f"ORL people {orl.TEST_PEOPLE[0]}-{orl.TEST_PEOPLE[-1]}: embeddings {trained.shape}")
else:
    print("face data not found: ORL replaced by synthetic 128-d embeddings, 10 'people' x 10 (a stand-in)")
    images = None
    labels = np.repeat(np.arange(31, 41), 10)
    centres = rng.standard_normal((10, 128))[labels - 31]
    trained = centres + 1.6 * rng.standard_normal((100, 128))        # people apart, with overlap
    untrained = centres + 4.0 * rng.standard_normal((100, 128))      # people hardly apart
    trained /= np.linalg.norm(trained, axis=1, keepdims=True)
    untrained /= np.linalg.norm(untrained, axis=1, keepdims=True)

# %% [markdown]
# ## 2. One triplet
#
# On the unit sphere $\lVert u - v\rVert^2 = 2 - 2\cos\angle(u, v) \in [0, 4]$, so $\alpha = 0.2$ is a
# fixed angular gap. The loss is zero once the negative is farther than the positive by $\alpha$: below,
# an easy triplet (nearest positive, farthest negative) and the hardest one for the same anchor.

# %%
d = pairwise_squared_distances(trained)
anchor = 1                                            # person 31's second photo
positives = np.flatnonzero((labels == labels[anchor]) & (np.arange(len(labels)) != anchor))
negatives = np.flatnonzero(labels != labels[anchor])
easy = (anchor, positives[np.argmin(d[anchor, positives])], negatives[np.argmax(d[anchor, negatives])])
hard = (anchor, positives[np.argmax(d[anchor, positives])], negatives[np.argmin(d[anchor, negatives])])
for name, (a, p, n) in (("easy", easy), ("hard", hard)):
    loss, _ = triplet_loss_forward(trained[[a]], trained[[p]], trained[[n]], alpha=0.2)
    print(f"{name}: d(a,p) = {d[a, p]:.3f}, d(a,n) = {d[a, n]:.3f}  ->  "
          f"loss = max(d(a,p) - d(a,n) + 0.2, 0) = {float(loss):.3f}")
if images is not None:
    fig, axes = plt.subplots(1, 5, figsize=(10, 2.6))
    for ax, k, name in zip(axes, (anchor, easy[1], easy[2], hard[1], hard[2]),
                           ("anchor", "nearest positive", "farthest negative", "farthest positive",
                            "nearest negative")):
        ax.imshow(images[k], cmap="gray")
        ax.set_title(f"{name}\ns{labels[k]}", fontsize=9)
        ax.set_axis_off()
    plt.show()

# %% [markdown]
# ## 3. A FaceNet batch and its distance matrix
#
# FaceNet mines triplets **online**, inside each mini-batch: $P$ people $\times$ $K$ photos. Here
# $P = 5$, $K = 6$. The distance matrix shows the people as dark diagonal blocks — clearly for the
# trained network, hardly at all before training.

# %%
people = np.unique(labels)[:5]
batch = np.concatenate([np.flatnonzero(labels == person)[:6] for person in people])
batch_labels = labels[batch]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, e) in zip(axes, (("random weights", untrained), ("trained with triplets", trained))):
    shown = ax.imshow(pairwise_squared_distances(e[batch]), cmap="viridis", vmin=0, vmax=2)
    ax.set_title(f"{name}: squared distances")
    ax.set_xticks(np.arange(0, 30, 6), people)
    ax.set_yticks(np.arange(0, 30, 6), people)
fig.colorbar(shown, ax=axes, fraction=0.03)
plt.show()

# %% [markdown]
# ## 4. Three miners
#
# * **batch all**: every valid triplet ($30 \cdot 5 \cdot 24 = 3600$ here), or only those with a positive
#   loss, $d(a,p) - d(a,n) + \alpha > 0$ (then averaged over the active ones);
# * **batch hard** (Hermans et al. 2017): per anchor the farthest positive and the nearest negative;
# * **semi-hard** (FaceNet): every anchor–positive pair, with a negative farther than the positive but
#   inside the margin,
#
# $$d(a, p) < d(a, n) < d(a, p) + \alpha .$$
#
# FaceNet found that the *hardest* negatives early in training lead to collapsed models ($f(x) = 0$);
# semi-hard ones still give a gradient without that risk.

# %%
def describe(e, name):
    e_batch = e[batch]
    dist = pairwise_squared_distances(e_batch)
    miners = {
        "batch all": batch_all_triplets(e_batch, batch_labels),
        "batch all, active": batch_all_triplets(e_batch, batch_labels, alpha=0.2),
        "batch hard": batch_hard_triplets(e_batch, batch_labels),
        "semi-hard": semi_hard_triplets(e_batch, batch_labels, alpha=0.2, rng=np.random.default_rng(0)),
    }
    print(f"--- {name}")
    gaps = {}
    for miner, triplets in miners.items():
        reduction = "mean_active" if miner == "batch all" else "mean"
        loss, _ = mined_triplet_loss_forward(e_batch, triplets=triplets, alpha=0.2, reduction=reduction)
        ta, tp, tn = triplets
        gaps[miner] = dist[ta, tn] - dist[ta, tp]
        print(f"{miner:18s} {len(ta):5d} triplets, loss {float(loss):.4f}")
    return gaps


gaps_untrained = describe(untrained, "random weights")
gaps_trained = describe(trained, "trained")

# %% [markdown]
# Each chosen triplet has a gap $d(a,n) - d(a,p)$. The loss is positive left of $\alpha$; semi-hard
# triplets sit in $(0, \alpha)$ (or, when a pair has none, the least-hard negative below 0);
# batch-hard ones are the extreme left of the distribution. ("batch all" averages over its active
# triplets, hence the same loss as "batch all, active".)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=False)
for ax, (name, gaps) in zip(axes, (("random weights", gaps_untrained), ("trained", gaps_trained))):
    bins = np.linspace(-1.0, 2.0, 61)
    ax.hist(gaps["batch all"], bins=bins, color="lightgray", label="all triplets", density=True)
    for miner in ("semi-hard", "batch hard"):
        if len(gaps[miner]):                       # a miner may find nothing in a well-trained batch
            ax.hist(gaps[miner], bins=bins, histtype="step", lw=2, label=miner, density=True)
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(0.2, color="red", ls="--", lw=1, label="alpha")
    ax.set_xlabel("d(a,n) - d(a,p)")
    ax.set_title(name)
axes[0].legend()
plt.show()

# %% [markdown]
# ## 5. A picture of the embedding
#
# 128 dimensions projected on the two principal axes (PCA, `fit_pca`). After training the ten unseen
# people form tighter, better separated clusters. (ORL's photos are so uniform — same camera, same
# background — that even random convolutional features group some people; the distance matrix above
# shows how little they separate them.)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
cmap = plt.get_cmap("tab10")
for ax, (name, e) in zip(axes, (("random weights", untrained), ("trained with triplets", trained))):
    pca = fit_pca(e, 2)
    xy = pca_transform(pca, e)
    for k, person in enumerate(np.unique(labels)):
        mine = labels == person
        ax.scatter(xy[mine, 0], xy[mine, 1], s=18, color=cmap(k), label=f"s{person}")
    ax.set_title(f"{name} (PCA: {pca.explained_variance_ratio.sum():.0%} of the variance)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
axes[1].legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. **Counting.** A batch holds 3 people with 4 images each. How many (anchor, positive) pairs are
#    there, and how many triplets if every negative is used?
# 2. **Semi-hard.** With margin $\alpha = 0.2$ and $d(a, p) = 0.5$, which of the negatives at squared
#    distances $0.3, 0.55, 0.69, 0.7, 0.9$ are semi-hard ($d(a, p) < d(a, n) < d(a, p) + \alpha$)? Which
#    give a zero loss, and which are "hard"?
# 3. **Unit length.** Show that for unit vectors $\lVert a - b \rVert^2 = 2 - 2 \cos\theta$, so the
#    squared distances of FaceNet's normalised embeddings lie in $[0, 4]$; check with
#    `pairwise_squared_distances`.

# %%
### BEGIN SOLUTION
# 1. Each of the 12 images is an anchor with 3 positives (36 ordered pairs), each pair with 8 negatives.
print("1.", 3 * 4 * 3, "anchor-positive pairs,", 3 * 4 * 3 * 8, "triplets")
# 2. Semi-hard: strictly between 0.5 and 0.7. Below 0.5 is hard (the negative is nearer than the
#    positive); from 0.7 on the hinge is 0 and the triplet teaches nothing.
d_ap, margin = 0.5, 0.2
for d_an in (0.3, 0.55, 0.69, 0.7, 0.9):
    kind = "hard" if d_an <= d_ap else "semi-hard" if d_an < d_ap + margin else "easy (zero loss)"
    print(f"2. d(a, n) = {d_an}: {kind}, loss {max(d_ap - d_an + margin, 0):.2f}")
# 3. |a - b|^2 = |a|^2 + |b|^2 - 2 a.b = 2 - 2 cos(theta), between 0 (same direction) and 4 (opposite).
rng_exercise = np.random.default_rng(0)
unit = rng_exercise.standard_normal((5, 8))
unit /= np.linalg.norm(unit, axis=1, keepdims=True)
print("3. 2 - 2 cos agrees:", np.allclose(pairwise_squared_distances(unit), 2 - 2 * unit @ unit.T))
### END SOLUTION
