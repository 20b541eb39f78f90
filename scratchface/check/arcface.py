"""Checkers for assignment 7: the ArcFace loss (additive angular margin).

The student writes (the signatures of :mod:`scratchface.losses.margin`)::

    arcface_target(cos_theta, *, margin=0.5)                          -> (target, dtarget_dcos)
    arcface_loss_forward(features, weights, *, labels, scale=64.0, margin=0.5) -> (loss, cache)
    arcface_loss_backward(dloss, cache)                               -> (dfeatures, dweights)

The target logit of sample :math:`i` is :math:`s\\cos(\\theta_{y_i} + m)`, the others
:math:`s\\cos\\theta_j`, on L2-normalised features (rows) and weight columns; where
:math:`\\theta + m > \\pi` the target is :math:`\\cos\\theta - m\\sin m` (insightface); cosines are
clipped before ``arccos``. References: :func:`scratchface.losses.margin.arcface_loss_forward` for the
loss, finite differences of it for the gradients, the formula written out below for the target
function. Mistakes are named by re-running a plain implementation with one of them planted
(:func:`arcface_target_variant`, :func:`arcface_loss_variant`, :func:`arcface_grads_variant`).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ._core import CheckResult, compare, register
from ._library import margin_module as _margin
from ._library import numerical_gradient
from ._variants import (
    compare_scalar,
    run_backward,
    run_student,
    split_forward,
    variant_hint,
)

__all__ = ["arcface_target_variant", "arcface_loss_variant", "arcface_grads_variant",
           "check_arcface_target", "check_arcface_loss_forward", "check_arcface_loss_backward"]

_CLIP = _margin.COS_CLIP


# ----------------------------------------------------------------------------- plain implementation

def arcface_target_variant(c, m, *, where="angle", fallback="linear", derivative="right"):
    """ArcFace's target function of the target cosine, plainly, with switches that plant one mistake.

    where : 'angle' :math:`\\cos(\\theta+m)` (right), 'cos_minus' :math:`\\cos\\theta - m` (CosFace),
    'cos_plus' :math:`\\cos\\theta + m`, 'angle_minus' :math:`\\cos(\\theta - m)`;
    fallback : 'linear' :math:`\\cos\\theta - m\\sin m` where :math:`\\theta + m > \\pi` (right), 'none',
    'cosface' :math:`\\cos\\theta - m`, 'easy' (insightface's easy_margin: the margin only where
    :math:`\\cos\\theta > 0`); derivative : 'right' :math:`\\sin(\\theta+m)/\\sin\\theta`, 'no_chain'
    :math:`-\\sin(\\theta+m)` (the :math:`d\\theta/d\\cos\\theta` forgotten), 'one'.

    Returns ``(t, dt)``; ``dt`` is 0 where the clip is active, as in the library.
    """
    c = np.asarray(c, dtype=np.float64)
    cc = np.clip(c, -1 + _CLIP, 1 - _CLIP)
    inside = (c >= -1 + _CLIP) & (c <= 1 - _CLIP)
    theta = np.arccos(cc)
    if where == "cos_minus":
        return c - m, np.ones_like(c)
    if where == "cos_plus":
        return c + m, np.ones_like(c)
    phase = theta - m if where == "angle_minus" else theta + m
    t = np.cos(phase)
    # d cos(theta +- m) / d cos(theta) = -sin(theta +- m) * d theta / d cos = sin(theta +- m) / sin(theta)
    dt = {"right": np.sin(phase) / np.sin(theta), "no_chain": -np.sin(phase),
          "one": np.ones_like(c)}[derivative]
    dt = np.where(inside, dt, 0.0)
    if fallback == "none":
        return t, dt
    if fallback == "easy":
        use = c > 0
        return np.where(use, t, c), np.where(use, dt, 1.0)
    use = phase <= math.pi
    other = c - m * math.sin(m) if fallback == "linear" else c - m
    return np.where(use, t, other), np.where(use, dt, 1.0)


def _unit(v, axis):
    return v / np.sqrt((v * v).sum(axis=axis, keepdims=True))


def _forward_parts(x, w, labels, s, m, *, margin_on="target", target_kw=None, use_scale=True, axis=1,
                   norm_w="columns", norm_x=True, scale_target_only=False):
    target_kw = target_kw or {}
    xh = _unit(x, 1) if norm_x else x
    wh = {"columns": lambda: _unit(w, 0), "rows": lambda: _unit(w, 1), "none": lambda: w}[norm_w]()
    cos = xh @ wh
    rows = np.arange(len(labels))
    if margin_on == "all":
        g, _ = arcface_target_variant(cos, m, **target_kw)
        dt = None
    else:
        g = cos.copy()
        g[rows, labels], dt = arcface_target_variant(cos[rows, labels], m, **target_kw)
    if not use_scale:
        logits = g
    elif scale_target_only:
        logits = g.copy()
        logits[rows, labels] *= s
    else:
        logits = s * g
    shifted = logits - logits.max(axis=axis, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return xh, wh, logp, dt, rows


def arcface_loss_variant(x, w, labels, s, m, *, reduction="mean", **kw):
    """The ArcFace loss written plainly; keyword switches plant one mistake each.

    margin_on : 'target' (right) or 'all' classes; target_kw : switches of
    :func:`arcface_target_variant`; use_scale : multiply by s; axis : the softmax axis (1 right);
    norm_w : 'columns' (right), 'rows', 'none'; norm_x : normalise the features;
    scale_target_only : s on the target logit only; reduction : 'mean' (right) or 'sum'.
    """
    _, _, logp, _, rows = _forward_parts(x, w, labels, s, m, **kw)
    per = -logp[rows, labels]
    return float(per.sum() if reduction == "sum" else per.mean())


def arcface_grads_variant(x, w, labels, s, m, dloss, *, dtarget="right", use_scale=True, norm_backward=True,
                          mean=True, use_dloss=True, transpose_dw=False):
    """``(dfeatures, dweights)`` written plainly, with switches that plant one mistake each.

    dtarget : 'right', 'one' (the margin's derivative forgotten), 'no_chain'; use_scale : the s in
    backward; norm_backward : back through the two normalisations; mean : the 1/N; use_dloss : the
    upstream gradient; transpose_dw : dweights returned as (C, D).
    """
    xh, wh, logp, dt, rows = _forward_parts(x, w, labels, s, m)
    if dtarget != "right":
        _, dt = arcface_target_variant((xh @ wh)[rows, labels], m, derivative=dtarget)
    p = np.exp(logp)
    p[rows, labels] -= 1.0
    dlogits = p * ((dloss if use_dloss else 1.0) / (len(labels) if mean else 1.0))
    dcos = dlogits * (s if use_scale else 1.0)
    dcos[rows, labels] *= dt
    dxh, dwh = dcos @ wh.T, xh.T @ dcos
    if norm_backward:
        dx = (dxh - xh * (dxh * xh).sum(axis=1, keepdims=True)) / np.sqrt((x * x).sum(axis=1, keepdims=True))
        dw = (dwh - wh * (dwh * wh).sum(axis=0, keepdims=True)) / np.sqrt((w * w).sum(axis=0, keepdims=True))
    else:
        dx, dw = dxh, dwh
    return dx, (dw.T if transpose_dw else dw)


# ----------------------------------------------------------------------------- cases

def _problem(rng, n, d, c, angles, scale, margin):
    """Features at the given angles from their class's weight column, with varied norms."""
    w = rng.standard_normal((d, c)) * rng.uniform(0.5, 2.0, size=c)
    labels = rng.integers(0, c, size=n)
    x = _margin._features_near(w, labels, angles, rng) * rng.uniform(0.5, 3.0, size=(n, 1))
    return x, w, labels, scale, margin


@functools.cache
def _loss_cases():
    rng = np.random.default_rng(7)
    x4, w4, l4, _, _ = _problem(rng, 3, 4, 4, [0.5, 1.0, 2.0], 8.0, 0.5)
    x4[0] = 2.5 * w4[:, l4[0]]                 # cos = 1 (up to rounding)
    x4[1] = -0.7 * w4[:, l4[1]]                # cos = -1: theta + m > pi
    return (
        ("6 samples, 5 classes, target angles 0.3 to 3.0 rad (the last two past pi - m), s=8, m=0.5",
         *_problem(rng, 6, 4, 5, [0.3, 0.9, 1.5, 2.2, 2.8, 3.0], 8.0, 0.5)),
        ("4 samples, 7 classes, s=30, m=0.3", *_problem(rng, 4, 6, 7, [0.4, 1.1, 1.7, 2.5], 30.0, 0.3)),
        ("5 samples, 3 classes, scale and margin left at their defaults (64, 0.5)",
         *_problem(rng, 5, 3, 3, [0.2, 0.7, 1.2, 1.9, 2.9], None, None)),
        ("a feature along its class's weight (cos = 1) and one opposite (cos = -1): clip before arccos",
         x4, w4, l4, 8.0, 0.5),
    )


def _kwargs(scale, margin):
    return {k: v for k, v in (("scale", scale), ("margin", margin)) if v is not None}


def _reference_loss(x, w, labels, scale, margin):
    loss, _ = _margin.arcface_loss_forward(x, w, labels=labels, **_kwargs(scale, margin))
    return float(loss)


# ----------------------------------------------------------------------------- target function

@register("arcface_target")
def check_arcface_target(student_fn, namespace) -> CheckResult:
    """``(t, dt)`` against the formula, on cosines across (-1, 1), past the fallback and at +-1."""
    result = CheckResult("arcface_target")
    interior = np.concatenate([np.linspace(-0.99, 0.99, 23), [-0.95, -0.9, 0.3]])
    cases = [("23 cosines from -0.99 to 0.99, margin=0.5", interior, 0.5, True),
             ("the same cosines, margin=0.3", interior, 0.3, True),
             ("cosines left at the default margin (0.5)", interior[::3], None, True),
             ("cosines at and a hair past +-1 (rounding: 1 + 1e-12): clip before arccos",
              np.array([1.0, 1 + 1e-12, -1.0, -1 - 1e-12]), 0.5, False)]
    for case, c, m, exact in cases:
        result.n_cases += 1
        kwargs = {} if m is None else {"margin": m}
        m = 0.5 if m is None else m
        raised, out = run_student(result, student_fn, c.copy(), case=case, **kwargs)
        if raised == "not implemented":
            break
        if raised:
            continue
        if not (isinstance(out, tuple) and len(out) == 2):
            result.add(f"arcface_target must return (target, dtarget); got {type(out).__name__}", case)
            continue
        t_exp, dt_exp = arcface_target_variant(c, m)
        got_t, got_dt = (np.asarray(v, dtype=np.float64) for v in out)
        if not exact:  # clipping conventions differ a little: ask for finite values near the limits
            if got_t.shape != c.shape or not np.all(np.isfinite(got_t)) or not np.all(np.isfinite(got_dt)):
                result.add(f"target or dtarget is not finite at cosines {c.tolist()}: got {got_t.tolist()} "
                           f"and {np.asarray(got_dt).tolist()}", case,
                           "np.arccos is NaN outside [-1, 1] and 1/sin(theta) infinite at +-1: clip the cosine "
                           "to [-1 + 1e-7, 1 - 1e-7] first")
                continue
            compare(result, got_t, t_exp, what="target", case=case, rtol=0, atol=2e-3)
            continue

        def v(**kw):
            return lambda: arcface_target_variant(c, m, **kw)[0]

        compare(result, got_t, t_exp, what="target", case=case, hint=variant_hint([
            ("no fallback where theta + m > pi: there cos(theta + m) turns back up; use cos(theta) - m sin(m)",
             v(fallback="none")),
            ("the fallback is cos(theta) - m (CosFace's); ArcFace's (insightface) is cos(theta) - m sin(m)",
             v(fallback="cosface")),
            ("that is insightface's easy_margin (margin only where cos > 0); use the pi - m fallback",
             v(fallback="easy")),
            ("the margin is subtracted from the cosine (that is CosFace); ArcFace adds it to the angle: "
             "cos(theta + m)", v(where="cos_minus")),
            ("the margin is added to the cosine; ArcFace adds it to the angle: cos(theta + m)", v(where="cos_plus")),
            ("the margin is subtracted from the angle; ArcFace adds it (theta + m makes the target harder)",
             v(where="angle_minus")),
        ]))

        def dv(**kw):
            return lambda: arcface_target_variant(c, m, **kw)[1]

        compare(result, got_dt, dt_exp, what="dtarget", case=case, hint=variant_hint([
            ("forgot d theta / d cos = -1 / sin(theta): d cos(theta + m) / d cos = sin(theta + m) / sin(theta)",
             dv(derivative="no_chain")),
            ("dtarget = 1 everywhere: that is only right in the fallback region", dv(derivative="one")),
            ("dtarget of the fallback region must be 1 (d/dc of cos(theta) - m sin(m))", dv(fallback="none")),
        ]))
    return result


# ----------------------------------------------------------------------------- the loss

def _loss_hint(x, w, labels, s, m):
    s = 64.0 if s is None else s
    m = 0.5 if m is None else m

    def v(**kw):
        return lambda: arcface_loss_variant(x, w, labels, s, m, **kw)
    return variant_hint([
        ("the margin is added to every class; only the target class gets cos(theta_y + m)", v(margin_on="all")),
        ("the margin is subtracted from the cosine (that is CosFace); ArcFace adds it to the angle",
         v(target_kw={"where": "cos_minus"})),
        ("the margin is added to the cosine; ArcFace adds it to the angle", v(target_kw={"where": "cos_plus"})),
        ("the margin is subtracted from the angle; ArcFace adds it", v(target_kw={"where": "angle_minus"})),
        ("missing the scale s: logits are s * cos", v(use_scale=False)),
        ("only the target logit is multiplied by s; every logit is", v(scale_target_only=True)),
        ("no fallback where theta + m > pi (cos(theta + m) turns back up); use cos(theta) - m sin(m)",
         v(target_kw={"fallback": "none"})),
        ("the fallback is cos(theta) - m; ArcFace's is cos(theta) - m sin(m)", v(target_kw={"fallback": "cosface"})),
        ("that is the easy_margin variant (margin only where cos > 0)", v(target_kw={"fallback": "easy"})),
        ("softmax over the wrong axis: normalise over the classes (axis 1), not the batch", v(axis=0)),
        ("the weights are normalised per row; each class is a COLUMN of weights (D, C): normalise axis 0",
         v(norm_w="rows")),
        ("the weight columns are not L2-normalised", v(norm_w="none")),
        ("the features are not L2-normalised", v(norm_x=False)),
        ("summed over the batch; the loss is the mean", v(reduction="sum")),
    ])


@register("arcface_loss_forward")
def check_arcface_loss_forward(student_fn, namespace) -> CheckResult:
    """The loss against :func:`scratchface.losses.margin.arcface_loss_forward`."""
    result = CheckResult("arcface_loss_forward")
    for case, x, w, labels, scale, margin in _loss_cases():
        result.n_cases += 1
        raised, out = run_student(result, student_fn, x.copy(), w.copy(), labels=labels.copy(), case=case,
                                  **_kwargs(scale, margin))
        if raised == "not implemented":
            break
        if raised or split_forward(result, out, "arcface_loss_forward", case) is None:
            continue
        expected = _reference_loss(x, w, labels, scale, margin)
        if not np.all(np.isfinite(np.asarray(out[0], dtype=np.float64))):
            result.add(f"the loss is {out[0]}, expected {expected:.6g}", case,
                       "np.arccos of a cosine a hair above 1 (rounding) is NaN: clip the cosine first")
            continue
        near_limit = "cos = 1" in case  # clipping conventions move the value a little there
        compare_scalar(result, out[0], expected, what="loss", case=case, rtol=1e-2 if near_limit else 1e-6,
                       hint=_loss_hint(x, w, labels, scale, margin))
    return result


@functools.cache
def _numerical_grads(case_index, dloss):
    """Finite differences of ``dloss *`` the reference loss on loss case ``case_index`` (computed once)."""
    _, x, w, labels, scale, margin = _loss_cases()[case_index]
    x, w = x.copy(), w.copy()

    def loss():
        return dloss * _reference_loss(x, w, labels, scale, margin)
    return numerical_gradient(loss, x), numerical_gradient(loss, w)


@register("arcface_loss_backward")
def check_arcface_loss_backward(student_fn, namespace) -> CheckResult:
    """``(dfeatures, dweights)`` against finite differences of the reference loss.

    The cache comes from the student's own ``arcface_loss_forward`` (found in ``namespace``).
    """
    result = CheckResult("arcface_loss_backward")
    for index, dloss in ((0, 1.0), (1, 0.6), (2, 1.7)):
        case, x, w, labels, scale, margin = _loss_cases()[index]
        case = f"{case}, dloss={dloss}"
        result.n_cases += 1
        stop, grads = run_backward(result, student_fn, namespace, "arcface_loss_forward", (x.copy(), w.copy()),
                                   {"labels": labels.copy(), **_kwargs(scale, margin)}, dloss=dloss,
                                   reference_loss=_reference_loss(x, w, labels, scale, margin),
                                   names=("dfeatures", "dweights"), case=case)
        if stop:
            break
        if grads is None:
            continue
        s = 64.0 if scale is None else scale
        m = 0.5 if margin is None else margin
        for k, (name, got, exp) in enumerate(zip(("dfeatures", "dweights"), grads, _numerical_grads(index, dloss))):
            def v(**kw):
                return lambda: arcface_grads_variant(x, w, labels, s, m, dloss, **kw)[k]
            compare(result, got, exp, what=name, case=case, rtol=1e-5, atol=1e-8, hint=variant_hint([
                ("the margin's derivative is missing: dcos_y gets the factor dtarget = sin(theta + m) / sin(theta)",
                 v(dtarget="one")),
                ("dtarget lacks d theta / d cos = -1 / sin(theta)", v(dtarget="no_chain")),
                ("missing the scale s in backward (dlogits -> dcos multiplies by s)", v(use_scale=False)),
                ("not back-propagated through the L2 normalisation of features and weight columns",
                 v(norm_backward=False)),
                ("missing the 1/N of the mean", v(mean=False)),
                ("dloss (the upstream gradient) is not multiplied in", v(use_dloss=False)),
                ("dweights is transposed: it has the shape of weights, (D, C)", v(transpose_dw=True)),
            ], rtol=1e-5, atol=1e-8))
    return result
