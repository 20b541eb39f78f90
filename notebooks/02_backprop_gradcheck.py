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
# # 02 — Backpropagation by hand, and the gradient check
#
# Every layer of scratchface is a pair (the CS231n convention):
#
# ```python
# out, cache = layer_forward(x, w, b, *, hyper_parameters)
# dx, dw, db = layer_backward(dout, cache)
# ```
#
# where `dout` is $\partial L / \partial \mathrm{out}$ coming from the layers above, and the backward
# pass returns $\partial L / \partial x$, $\partial L / \partial w$, ... by the chain rule
#
# $$\frac{\partial L}{\partial x_i} = \sum_k \frac{\partial L}{\partial \mathrm{out}_k}\,
#   \frac{\partial \mathrm{out}_k}{\partial x_i} .$$
#
# We derive three backward passes by hand — dense, convolution, pooling — check that the library's
# code computes exactly them, and then check everything against finite differences.

# %%
import matplotlib.pyplot as plt
import numpy as np

from scratchface.gradcheck import (
    PASS_THRESHOLD,
    check_layer,
    collect_gradcheck_cases,
    numerical_gradient,
    rel_error,
)
from scratchface.layers.conv import conv2d_backward, conv2d_forward
from scratchface.layers.dense import dense_backward, dense_forward
from scratchface.layers.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

rng = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Dense layer
#
# $\mathrm{out} = x W + b$ with $x \in \mathbb{R}^{N \times D}$, $W \in \mathbb{R}^{D \times M}$.
# Since $\mathrm{out}_{nm} = \sum_d x_{nd} W_{dm} + b_m$:
#
# $$\frac{\partial L}{\partial x} = \mathrm{dout}\, W^\top, \qquad
#   \frac{\partial L}{\partial W} = x^\top \mathrm{dout}, \qquad
#   \frac{\partial L}{\partial b} = \sum_n \mathrm{dout}_{n,:} .$$
#
# Shapes are the best check while deriving: $\partial L/\partial W$ must be $D \times M$, and
# $x^\top \mathrm{dout}$ is the only product of the two arrays with that shape.

# %%
x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
out, cache = dense_forward(x, w, b)
dout = rng.standard_normal(out.shape)
dx, dw, db = dense_backward(dout, cache)
print("relative error, dx vs dout W^T :", rel_error(dx, dout @ w.T))
print("relative error, dW vs x^T dout :", rel_error(dw, x.T @ dout))
print("relative error, db vs sum dout :", rel_error(db, dout.sum(axis=0)))

# %% [markdown]
# ## 2. Convolution
#
# $\mathrm{out}[n, f, h, w] = b_f + \sum_{c, i, j} W[f, c, i, j]\; x_p[n, c, s h + i, s w + j]$
# ($x_p$ the zero-padded input, $s$ the stride). Each weight meets many input pixels, so its gradient
# is a sum — a correlation of the input with `dout`:
#
# $$\frac{\partial L}{\partial W[f, c, i, j]} = \sum_{n, h, w} \mathrm{dout}[n, f, h, w]\; x_p[n, c, s h + i, s w + j],
#   \qquad \frac{\partial L}{\partial b_f} = \sum_{n, h, w} \mathrm{dout}[n, f, h, w] .$$
#
# Each input pixel reaches every output whose window covers it, so for stride 1 and no padding
# $\partial L / \partial x$ is the *full* convolution of `dout` with the kernel **flipped** in both
# axes and with input and output channels swapped:
#
# $$\frac{\partial L}{\partial x} = \mathrm{conv}\big(\mathrm{pad}_{K-1}(\mathrm{dout}),\;
#   W^{\top_{fc}}[:, :, ::-1, ::-1]\big) .$$
#
# Both identities can be checked with the library's own forward convolution:

# %%
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 2))
b = rng.standard_normal(4)
out, cache = conv2d_forward(x, w, b)
dout = rng.standard_normal(out.shape)
dx, dw, db = conv2d_backward(dout, cache)

flipped = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])           # (C, F, KH, KW)
dx_full_conv, _ = conv2d_forward(dout, flipped, padding=(2, 2, 1, 1))             # pad K-1 on each side
dw_corr, _ = conv2d_forward(np.ascontiguousarray(x.transpose(1, 0, 2, 3)),         # "batch" = channels c
                            np.ascontiguousarray(dout.transpose(1, 0, 2, 3)))      # "filters" = f, sum over n
print("rel. error, dx vs full conv of dout with the flipped kernel:", rel_error(dx, dx_full_conv))
print("rel. error, dW vs correlation of x with dout              :",
      rel_error(dw, dw_corr.transpose(1, 0, 2, 3)))
print("rel. error, db vs sum of dout                             :", rel_error(db, dout.sum(axis=(0, 2, 3))))

# %% [markdown]
# With stride $s > 1$ the same holds after spreading `dout` out with $s - 1$ zeros between its
# entries; with padding, the gradient of the padded border is dropped. Forgetting either is the
# classic bug — the gradient check below catches both.
#
# ## 3. Pooling
#
# * **max**: $y = \max_{k \in \text{window}} x_k$ — the gradient goes entirely to the winner,
#   $\partial y / \partial x_k = [k = \arg\max]$;
# * **average**: $y = \frac{1}{K} \sum_k x_k$ — every pixel gets $\mathrm{dout}/K$;
# * **L2** (FaceNet NN2): $y = \sqrt{\sum_k x_k^2}$ — $\partial y / \partial x_k = x_k / y$.

# %%
x = np.array([[1., 5., 2., 0.],
              [3., 4., 8., 1.],
              [0., 2., 1., 6.],
              [7., 1., 3., 2.]])[None, None]
dout = np.array([[1., 10.], [100., 1000.]])[None, None]
for name, forward, backward in [("max", max_pool2d_forward, max_pool2d_backward),
                                ("average", avg_pool2d_forward, avg_pool2d_backward),
                                ("L2", l2_pool2d_forward, l2_pool2d_backward)]:
    y, cache = forward(x, kernel_size=2)
    dx = backward(dout, cache)
    print(f"{name} pool 2x2: out = {y[0, 0].round(2).tolist()}\n  dx =\n{dx[0, 0].round(2)}")

# %% [markdown]
# In the max pool each `dout` entry lands on one pixel (5, 8, 7, 6); in the average pool it is
# spread as $\mathrm{dout}/4$; in the L2 pool each pixel gets $\mathrm{dout} \cdot x_k / y$.
#
# ## 4. The gradient check
#
# A backward pass is checked against the derivative of the scalar
# $L(x) = \sum_k \mathrm{out}_k(x)\, \mathrm{dout}_k$ (a fixed random `dout`), taken numerically
# element by element with the fourth-order central difference
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{-L(x + 2he_i) + 8L(x + he_i) - 8L(x - he_i) + L(x - 2he_i)}{12h},$$
#
# whose error is $O(h^4)$ (the two-point formula's is $O(h^2)$), in float64. The comparison is the
# largest relative error
#
# $$\mathrm{rel}(a, b) = \max_i \frac{|a_i - b_i|}{|a_i| + |b_i|} ,$$
#
# and a backward pass passes below $10^{-7}$. Here is why the fourth-order formula and float64 matter:

# %%
x0 = np.array([0.7])
exact = np.cos(0.7) * np.exp(np.sin(0.7))          # d/dx exp(sin x)
steps = np.logspace(-10, -1, 19)
two_point = [abs((np.exp(np.sin(0.7 + h)) - np.exp(np.sin(0.7 - h))) / (2 * h) - exact) / exact for h in steps]
four_point = []
for h in steps:
    point = x0.copy()                               # numerical_gradient perturbs it in place
    numeric = numerical_gradient(lambda point=point: np.exp(np.sin(point[0])), point, h)[0]
    four_point.append(abs(numeric - exact) / exact)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(steps, two_point, "o-", label="two-point, O(h²)")
ax.loglog(steps, np.maximum(four_point, 1e-17), "s-", label="four-point, O(h⁴)")
ax.axhline(PASS_THRESHOLD, color="gray", ls="--", label="pass threshold 1e-7")
ax.set_xlabel("step h")
ax.set_ylabel("relative error")
ax.legend()
ax.set_title("truncation (right) vs rounding (left)")
plt.show()

# %% [markdown]
# `check_layer(forward, backward, inputs, kwargs)` does this for every input of a layer. A correct
# backward pass:

# %%
x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
result = check_layer(conv2d_forward, conv2d_backward, {"x": x, "w": w, "b": b}, {"stride": 2, "padding": 1})
print(result.errors, "passed:", result.passed)

# %% [markdown]
# and three wrong ones, with the mistakes students make: a gradient averaged over the batch that
# the forward pass summed, the kernel not flipped in the backward pass, the max-pool gradient sent to
# every pixel of the window.

# %%
def dense_backward_averaged(dout, cache):
    dx, dw, db = dense_backward(dout, cache)
    return dx, dw / len(dout), db                         # "missing 1/N" the other way round


def conv_backward_unflipped(dout, cache):
    _, dw, db = conv2d_backward(dout, cache)
    kh, kw = cache.w.shape[2:]
    unflipped = np.ascontiguousarray(cache.w.transpose(1, 0, 2, 3))               # swapped, but not flipped
    dx, _ = conv2d_forward(dout, unflipped, padding=(kh - 1, kh - 1, kw - 1, kw - 1))
    return dx, dw, db


def max_pool_backward_everywhere(dout, cache):
    return avg_pool2d_backward(dout, avg_pool2d_forward(cache.x, kernel_size=2)[1]) * 4


x2 = rng.standard_normal((3, 5))
bugs = [
    ("dense, dW / N", check_layer(dense_forward, dense_backward_averaged,
                                  {"x": x2, "w": rng.standard_normal((5, 2)), "b": rng.standard_normal(2)})),
    ("conv, kernel not flipped", check_layer(conv2d_forward, conv_backward_unflipped,
                                             {"x": x, "w": w, "b": b})),
    ("max pool, gradient to all", check_layer(max_pool2d_forward, max_pool_backward_everywhere,
                                              {"x": rng.standard_normal((1, 2, 4, 4))}, {"kernel_size": 2})),
]
for name, r in bugs:
    print(f"{name:28s}", {k: f"{v:.1e}" for k, v in r.errors.items()}, "passed:", r.passed)

# %% [markdown]
# The errors are of order 1, not $10^{-8}$: the check names the input whose gradient is wrong
# (`w` for the first, `x` for the others).
#
# ## 5. Every layer of the lecture
#
# Each layer module ships `gradcheck_cases(rng)`: small representative inputs (odd sizes, stride 2,
# padding, `ceil_mode`). The `scratchface gradcheck` command runs all of them; here are the ones of
# this lecture:

# %%
wanted = ("dense", "conv2d", "max_pool", "avg_pool", "l2_pool", "relu", "prelu", "softmax")
rows = [(case.name, case.run()) for case in collect_gradcheck_cases(seed=0) if case.name.startswith(wanted)]
print(f"{'case':34s} {'input shape':>16s}  {'largest rel. error':>18s}  pass")
for name, r in rows:
    print(f"{name:34s} {r.shape!s:>16s}  {r.max_error:18.1e}  {'yes' if r.passed else 'NO'}")
assert all(r.passed for _, r in rows)

# %% [markdown]
# ## Exercises
#
# 1. **Why central differences?** For $f(x) = \sin x$ at $x = 1$ with $h = 10^{-4}$, compare the
#    error of the forward difference $(f(x + h) - f(x)) / h$ with that of the central one
#    $(f(x + h) - f(x - h)) / 2h$. How does each error scale with $h$?
# 2. **Why float64?** Repeat the central difference in float32. What is the smallest error you can
#    get by choosing $h$, and why?
# 3. **Accumulate, do not assign.** $y = x \cdot x$ uses $x$ twice. A backward that *assigns* each
#    path's gradient to `dx` instead of adding it gives what, for $x = 3$? Check against
#    `numerical_gradient`.

# %%
### BEGIN SOLUTION
# 1. Forward: error ~ h/2 |f''| (first order); central: ~ h^2/6 |f'''| (second order).
x0, h = 1.0, 1e-4
forward_error = abs((np.sin(x0 + h) - np.sin(x0)) / h - np.cos(x0))
central_error = abs((np.sin(x0 + h) - np.sin(x0 - h)) / (2 * h) - np.cos(x0))
print(f"1. forward difference error {forward_error:.1e}, central {central_error:.1e}")
# 2. float32 keeps ~7 digits: the difference f(x + h) - f(x - h) loses digits as h shrinks (error
#    ~ eps / h) while the truncation error grows as h^2: the best h is near eps^(1/3) ~ 5e-3, and the
#    error stays at a few 1e-6 at best; useless for telling a right gradient (1e-8) from a slightly wrong one.
errors32 = {}
for h32 in (1e-1, 1e-2, 5e-3, 1e-3, 1e-4):
    x32, step = np.float32(x0), np.float32(h32)
    estimate = (np.sin(x32 + step) - np.sin(x32 - step)) / (2 * step)
    errors32[h32] = abs(float(estimate) - np.cos(x0))
print("2. float32 central-difference errors:", {k: f"{v:.1e}" for k, v in errors32.items()})
# 3. y = x * x: each factor's path contributes x, so dy/dx = x + x = 2x = 6. Assigning keeps only
#    the last path: 3.
x_twice = np.array([3.0])
print("3. assigned:", x_twice[0], " accumulated:", 2 * x_twice[0], " finite differences:",
      numerical_gradient(lambda: float(x_twice[0] * x_twice[0]), x_twice)[0])
### END SOLUTION
