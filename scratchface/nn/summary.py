"""``summary(model, input_shape)``: a table of layers, output sizes, parameters and FLOPs.

Like FaceNet's tables 1-2: one row per layer with the output size, the number
of parameters and the multiply-adds for one input sample; nested modules
(inception branches, residual bodies) are indented under their parent, whose
row gives their totals. Nothing is run: shapes and counts come from each
module's ``output_shape``, ``num_params`` and ``flops``.
"""
from __future__ import annotations

from .module import Module

__all__ = ["summary", "summary_rows", "print_summary", "human"]


def human(n: float) -> str:
    """``163696 -> '163.7K'``, ``128332800 -> '128.3M'`` (FaceNet's tables round these to 164K, 128M)."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(int(n))


def _shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def summary_rows(model, input_shape, *, max_depth=None) -> list:
    """The rows of :func:`summary` as dicts.

    Returns
    -------
    list of dict
        Keys ``depth``, ``name``, ``type``, ``input_shape``, ``output_shape``,
        ``params``, ``flops``; the first row is ``model`` itself.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a scratchface.nn Module, got {type(model).__name__}")
    if not (isinstance(input_shape, (tuple, list)) and all(isinstance(s, int) and s > 0 for s in input_shape)):
        raise ValueError(f"input_shape must be the shape of one sample without the batch axis, e.g. (3, 96, 96), "
                         f"got {input_shape!r}")
    rows = []

    def visit(name, module, shape, depth):
        rows.append({"depth": depth, "name": name, "type": type(module).__name__, "input_shape": tuple(shape),
                     "output_shape": tuple(module.output_shape(shape)), "params": module.num_params,
                     "flops": module.flops(shape)})
        if max_depth is None or depth < max_depth:
            for child_name, child, child_shape in module.child_input_shapes(shape):
                visit(child_name, child, child_shape, depth + 1)

    visit("model", model, tuple(input_shape), 0)
    return rows


def summary(model, input_shape, *, max_depth=None) -> str:
    """A text table of ``model``'s layers for one input sample of ``input_shape``.

    Parameters
    ----------
    model : Module
    input_shape : tuple of int
        One sample without the batch axis: ``(C, H, W)`` or ``(D,)``.
    max_depth : int, optional
        Hide modules nested deeper than this (0: only the model's total).

    Returns
    -------
    str
        Columns: layer (nested modules indented), type, output size, parameters,
        FLOPs (multiply-adds, per sample); the first row is the whole model.

    Examples
    --------
    >>> from scratchface.nn import Sequential, Conv2d, ReLU, summary
    >>> print(summary(Sequential(Conv2d(3, 64, 7, stride=2, padding=3, rng=0), ReLU()), (3, 224, 224)))
    ... # doctest: +SKIP
    """
    rows = summary_rows(model, input_shape, max_depth=max_depth)
    table = [("layer", "type", "output", "params", "FLOPs")]
    for r in rows[1:]:
        table.append(("  " * (r["depth"] - 1) + r["name"], r["type"], _shape(r["output_shape"]),
                      f"{r['params']:,}", human(r["flops"])))
    total = rows[0]
    table.append(("total", total["type"], _shape(total["output_shape"]), f"{total['params']:,}",
                  human(total["flops"])))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    align = ("<", "<", "<", ">", ">")

    def fmt(row):
        return "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()

    rule = "-" * len(fmt(table[0]).ljust(sum(widths) + 8))
    lines = [f"input {_shape(tuple(input_shape))} (one sample; FLOPs = multiply-adds)", rule, fmt(table[0]), rule]
    lines += [fmt(row) for row in table[1:-1]]
    lines += [rule, fmt(table[-1])]
    return "\n".join(lines)


def print_summary(model, input_shape, *, max_depth=None) -> None:
    """Print :func:`summary`."""
    print(summary(model, input_shape, max_depth=max_depth))
