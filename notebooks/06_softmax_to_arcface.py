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
# # 06 — From softmax to ArcFace
#
# Train a classifier over the training identities and throw the last layer away: the features
# before it are the embedding. The plain softmax separates the classes but does not make them
# *compact*; the margin losses (SphereFace 2017, CosFace 2018, ArcFace 2019) make the target class
# harder to win, so each identity gathers in a narrow cone with empty space around it.
#
# Write the logit of class $j$ as $W_j^\top x = \lVert W_j\rVert\,\lVert x\rVert \cos\theta_j$. The
# losses normalise $W_j$ (and $x$, rescaled to $s$) and change only the target logit, class $y$:
#
# | loss | target logit | other logits |
# |---|---|---|
# | softmax | $W_y^\top x + b_y$ | $W_j^\top x + b_j$ |
# | SphereFace | $\lVert x\rVert\,\psi(\theta_y)$, $\psi(\theta) = (-1)^k\cos(m\theta) - 2k$ | $\lVert x\rVert \cos\theta_j$ |
# | CosFace | $s(\cos\theta_y - m)$ | $s\cos\theta_j$ |
# | ArcFace | $s\cos(\theta_y + m)$, or $s(\cos\theta_y - m\sin m)$ where $\theta_y + m > \pi$ | $s\cos\theta_j$ |
#
# then the usual cross-entropy $L = -\log\big(e^{z_y} / \sum_j e^{z_j}\big)$.
# `scratchface.losses.margin` has each as a forward/backward pair; `scratchface.losses.toy` trains the
# lecture's 8-identity picture.

# %%

import matplotlib.pyplot as plt
import numpy as np

from scratchface.data import find_data_dir
from scratchface.losses.margin import (
    arcface_loss_forward,
    cosface_loss_forward,
    softmax_loss_forward,
    sphereface_loss_forward,
    sphereface_psi,
)
from scratchface.losses.toy import (
    load_orl_people,
    plot_toy_features,
    train_toy_features,
)


DATA = find_data_dir()   # $SCRATCHFACE_DATA, else ../shared/data beside the repository

# %% [markdown]
# ## 1. The target logit as a function of the angle
#
# All margin losses push the target curve down (the class is harder to win), each in its own way:
# SphereFace multiplies the angle ($m\theta$), ArcFace adds to it ($\theta + m$), CosFace subtracts from
# the cosine. ArcFace's margin is a constant **geodesic** distance on the sphere.
#
# Past $\theta = \pi - m$ the curve $\cos(\theta + m)$ would turn back **up** (a worse angle, a
# larger logit: the gradient would pull the feature the wrong way). There ArcFace (insightface,
# `easy_margin=False`), `scratchface.losses.margin` and assignment 7 switch to the straight line
# $\cos\theta - m\sin m$: it starts a little lower ($-\cos m - m\sin m \approx -1.12$ instead of
# $-1$ at $\pi - m$, for $m = 0.5$) and keeps decreasing. (Clamping the angle at $\pi$ instead, $\cos(\min(\theta + m, \pi)) = -1$, would be flat:
# no gradient at all for the worst features.) The dotted line marks $\pi - m$.

# %%
def arcface_curve(angle, margin=0.5):
    """ArcFace's target logit / s: cos(angle + m), and cos(angle) - m sin(m) past pi - m (as the library)."""
    return np.where(angle + margin <= np.pi, np.cos(angle + margin), np.cos(angle) - margin * np.sin(margin))


theta = np.linspace(0, np.pi, 400)
psi, _ = sphereface_psi(np.cos(theta), margin=4)
curves = {
    "softmax (normalised): cos θ": np.cos(theta),
    "SphereFace m=4: ψ(θ)": psi,
    "CosFace m=0.35: cos θ − m": np.cos(theta) - 0.35,
    "ArcFace m=0.5: cos(θ + m), then cos θ − m sin m": arcface_curve(theta),
}
fig, ax = plt.subplots(figsize=(6, 4))
for name, curve in curves.items():
    ax.plot(np.degrees(theta), curve, label=name)
ax.set_xlabel("angle θ between feature and its class weight (degrees)")
ax.set_ylabel("target logit / s")
ax.axvline(np.degrees(np.pi - 0.5), color="grey", linestyle=":", linewidth=1)
ax.set_ylim(-2.2, 1.1)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. Decision margins in angle space
#
# Two classes, a feature at angles $\theta_1, \theta_2$ from their weights. Class 1 wins when its
# (modified) logit beats class 2's plain one:
#
# * softmax: $\cos\theta_1 > \cos\theta_2 \iff \theta_1 < \theta_2$ — one line, no margin;
# * SphereFace: $\cos(m\theta_1) > \cos\theta_2 \iff m\theta_1 < \theta_2$;
# * CosFace: $\cos\theta_1 - m > \cos\theta_2$;
# * ArcFace: $\cos(\theta_1 + m) > \cos\theta_2 \iff \theta_1 + m < \theta_2$ — a band of constant width.
#
# Between the two boundaries (class 1's and class 2's) is the margin, where neither class wins.

# %%
t1, t2 = np.meshgrid(np.linspace(0, np.pi / 2, 300), np.linspace(0, np.pi / 2, 300), indexing="xy")
rules = {
    "softmax": lambda a, b: np.cos(a) > np.cos(b),
    "SphereFace (m=4)": lambda a, b: sphereface_psi(np.cos(a), margin=4)[0] > np.cos(b),
    "CosFace (m=0.35)": lambda a, b: np.cos(a) - 0.35 > np.cos(b),
    "ArcFace (m=0.5)": lambda a, b: arcface_curve(a) > np.cos(b),
}
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for ax, (name, wins) in zip(axes, rules.items()):
    region = wins(t1, t2).astype(float) - wins(t2, t1).astype(float)   # +1 class 1, -1 class 2, 0 the margin
    ax.imshow(region, origin="lower", extent=[0, 90, 0, 90], cmap="coolwarm_r", vmin=-1.5, vmax=1.5)
    ax.set_title(name)
    ax.set_xlabel("θ1 (degrees)")
    ax.set_ylabel("θ2 (degrees)")
fig.suptitle("blue: class 1 wins, red: class 2 wins, grey: the margin (nobody wins)")
plt.show()

# %% [markdown]
# ## 3. The library computes exactly this
#
# One feature, three class weights: the ArcFace loss by hand, $-\log \frac{e^{s\cos(\theta_y + m)}}
# {e^{s\cos(\theta_y + m)} + \sum_{j \ne y} e^{s\cos\theta_j}}$, against `arcface_loss_forward`.

# %%
rng = np.random.default_rng(0)
feature, weights, label = rng.standard_normal((1, 2)), rng.standard_normal((2, 3)), 1
cos = (feature / np.linalg.norm(feature)) @ (weights / np.linalg.norm(weights, axis=0))
logits = 64.0 * cos[0]
logits[label] = 64.0 * arcface_curve(np.arccos(cos[0, label]))
by_hand = -logits[label] + np.log(np.sum(np.exp(logits - logits.max()))) + logits.max()
library, _ = arcface_loss_forward(feature, weights, labels=np.array([label]), scale=64.0, margin=0.5)
print(f"angles to the three classes (deg): {np.degrees(np.arccos(cos[0])).round(1)}")
print(f"ArcFace loss by hand {by_hand:.10f}, arcface_loss_forward {float(library):.10f}")
for name, forward, kwargs in [("softmax", softmax_loss_forward, {}),
                              ("SphereFace", sphereface_loss_forward, {"margin": 4}),
                              ("CosFace", cosface_loss_forward, {"scale": 64.0, "margin": 0.35})]:
    args = (feature, weights, np.zeros(3)) if name == "softmax" else (feature, weights)
    print(f"{name:10s} loss {float(forward(*args, labels=np.array([label]), **kwargs)[0]):.4f}")
for scale in (1.0, 8.0, 64.0):
    loss = float(arcface_loss_forward(feature, weights, labels=np.array([label]), scale=scale, margin=0.5)[0])
    print(f"ArcFace with s = {scale:4.0f}: loss {loss:.4f}")

# %% [markdown]
# **Why 1.16 against 80?** The softmax's logits are $W_j^\top x$ with this feature's own norm
# ($\lVert x \rVert \approx 0.18$): all three are close to 0 and the loss is close to $\log 3 \approx
# 1.1$ whatever the angles. The normalised losses throw the norms away and multiply the cosines by
# $s = 64$ instead. This feature is on the wrong side (its own class is at 132 degrees, another class
# at 76), so the target logit is far below the best one and the loss grows about linearly with $s$:
# $L \approx s\,(\max_{j \ne y}\cos\theta_j - t_y)$. With $s = 1$ the same ArcFace loss is 1.66. Why
# not $s = 1$, then? Because with cosines in $[-1, 1]$ the softmax could never become confident:
# even a perfect sample would keep a loss near $\log C$. $s$ sets how sharp the softmax is on the
# sphere (ArcFace uses 64; the loss values of different $s$ are not comparable with each other).

# %% [markdown]
# ## 4. The lecture's picture: 8 identities, 2-D features
#
# A small network (pixels → dense 64 → ReLU → dense 2) trained on 8 people of the ORL set with each
# loss (`train_toy_features`). With the softmax the classes fan out radially; any gap between two
# of them is left over from training on few images — nothing in the loss asks for it, and the
# boundary between two classes has no width (section 2). With the margins each identity packs into
# a narrower sector, and the gaps are what the loss asks for. (Dashed lines: the class
# weight directions. For the normalised losses features are drawn on the unit circle.)

# %%
if DATA is not None:
    x, labels = load_orl_people(DATA / "orl_faces", people=8, block=8)
    print(f"ORL people 1-8: {x.shape[0]} images of {x.shape[1]} pixels (8x8 block means)")
else:
    print("face data not found: 8 synthetic 'identities' (Gaussian clusters in 300-d) stand in for ORL")
    rng_data = np.random.default_rng(1)
    labels = np.repeat(np.arange(8), 10)
    x = rng_data.standard_normal((8, 300))[labels] + 0.7 * rng_data.standard_normal((80, 300))
results = [train_toy_features(x, labels, loss=loss, iterations=300, rng=np.random.default_rng(0))
           for loss in ("softmax", "sphereface", "cosface", "arcface")]
fig = plot_toy_features(results, figsize=(16, 4))
plt.show()

# %% [markdown]
# Training accuracy is the same for all four (the identities are easy to tell apart); what the
# margins buy is the **gap** between identities, which is what lets an embedding recognise people
# it was not trained on (next notebook: verification with a distance threshold).

# %% [markdown]
# ## Exercises
#
# 1. **The fallback.** For $m = 0.5$, at which angle does ArcFace switch to $\cos\theta - m \sin m$,
#    and how far below $-1$ does the straight line start there?
# 2. **The scale.** Two classes; a sample's target cosine (after the margin) is 0.2 below the other
#    class's cosine. What is its loss with $s = 64$, and with $s = 1$? And when the target is 0.2
#    *above*?
# 3. **Margins compared.** At $\theta_y = 60°$, what are CosFace's ($m = 0.35$) and ArcFace's
#    ($m = 0.5$) target logits (divided by $s$)? At which angles are the two margins equal?

# %%
### BEGIN SOLUTION
# 1. pi - m = 151.4 degrees; there cos(theta) - m sin(m) = -cos(m) - m sin(m).
m = 0.5
print(f"1. fallback from {np.degrees(np.pi - m):.1f} degrees; the line starts at "
      f"{-np.cos(m) - m * np.sin(m):.3f} (0.117 below -1)")
# 2. Two classes: L = log(1 + exp(s * (other - target))).
for s_exercise in (64.0, 1.0):
    print(f"2. s = {s_exercise:>4}: loss {np.log1p(np.exp(s_exercise * 0.2)):.3f} when 0.2 below, "
          f"{np.log1p(np.exp(-s_exercise * 0.2)):.2e} when 0.2 above")
# 3. CosFace subtracts 0.35 from the cosine, ArcFace adds 0.5 rad to the angle, which costs
#    cos(t) - cos(t + 0.5) in cosine: 0.12 at t = 0, growing to 2 sin(0.25) = 0.49 at t = 90 - 14 degrees,
#    then shrinking. The two margins are equal where that cost is 0.35, once on each side.
angle = np.radians(60)
print(f"3. at 60 degrees: CosFace {np.cos(angle) - 0.35:.3f}, ArcFace {np.cos(angle + 0.5):.3f}")
grid = np.linspace(0, np.pi - 0.5, 100001)
cost = np.cos(grid) - np.cos(grid + 0.5) - 0.35
crossings = np.degrees(grid[np.flatnonzero(np.diff(np.sign(cost)))])
print(f"   equal at {crossings.round(1).tolist()} degrees: ArcFace's margin is larger in between")
### END SOLUTION
