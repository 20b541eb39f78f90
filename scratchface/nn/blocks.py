"""Containers that build networks out of modules: a chain, parallel branches, a residual block.

- :class:`Sequential`: ``m_k(...m_2(m_1(x)))``; backward runs the chain in reverse.
- :class:`Concat`: every branch sees the same input; the outputs are concatenated
  along the channels (an inception module is four such branches). Backward
  splits ``dout`` by channels, runs each branch backward and **adds** their
  ``dx`` (the input was used by every branch).
- :class:`Residual`: ``body(x) + shortcut(x)`` (``shortcut`` is the identity by
  default); backward adds the two paths' ``dx``.

These three are enough to write any DAG that the FaceNet, VGG-Face and ResNet
models need without a general graph engine; each one's backward is a few lines a
student can follow.
"""
from __future__ import annotations

from ..layers.shape import add_backward, add_forward, concat_backward, concat_forward
from .module import Module

__all__ = ["Sequential", "Concat", "Residual", "Identity"]


def _check_module(m, where):
    if not isinstance(m, Module):
        raise TypeError(f"{where} must be a scratchface.nn Module, got {type(m).__name__} "
                        f"(wrap functions in a Module; a list of modules goes in as Sequential(*modules))")
    return m


class _Container(Module):
    """Children stored by name (``'0'``, ``'1'``... or the names given) in order."""

    def _add_children(self, modules, where):
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        if not items:
            raise ValueError(f"{where} needs at least one module")
        for name, m in items:
            if not isinstance(name, str) or not name.isidentifier() and not name.isdigit():
                raise ValueError(f"{where} module names must be identifiers, got {name!r}")
            if name in self._modules or hasattr(self, name):
                raise ValueError(f"{where} module name {name!r} is used twice or clashes with an attribute")
            setattr(self, name, _check_module(m, f"{where} item {name!r}"))

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        if isinstance(index, str):
            return self._modules[index]
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Container):
    """A chain of modules: ``out = m_k(...(m_2(m_1(x))))``.

    Parameters
    ----------
    *modules : Module
        In order; or a single ``dict`` of ``{name: module}`` to name them
        (the names show in ``summary`` and in the saved weights).

    Examples
    --------
    >>> from scratchface.nn import Sequential, Conv2d, ReLU, MaxPool2d
    >>> net = Sequential(Conv2d(1, 8, 3, padding=1, rng=0), ReLU(), MaxPool2d(2))
    >>> net.output_shape((1, 25, 25))
    (8, 12, 12)
    """

    def __init__(self, *modules):
        super().__init__()
        self._add_children(modules, "Sequential")

    def forward(self, x):
        for m in self._modules.values():
            x = m.forward(x)
        return x

    def backward(self, dout):
        for m in reversed(list(self._modules.values())):
            dout = m.backward(dout)
        return dout

    def child_input_shapes(self, input_shape):
        """``(name, child, its input shape)`` for each child (used by ``summary``)."""
        shapes, shape = [], tuple(input_shape)
        for name, m in self._modules.items():
            shapes.append((name, m, shape))
            shape = m.output_shape(shape)
        return shapes

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for m in self._modules.values():
            shape = m.output_shape(shape)
        return shape

    def flops(self, input_shape):
        return sum(m.flops(s) for _, m, s in self.child_input_shapes(input_shape))


class Concat(_Container):
    """Parallel branches on the same input, concatenated along the channels (axis 1).

    Parameters
    ----------
    *branches : Module
        Each maps ``(N, C, H, W)`` to ``(N, C_k, H', W')`` with the same ``H', W'``;
        or a single ``dict`` of named branches.

    Notes
    -----
    Forward: :math:`y = [b_1(x), \\ldots, b_K(x)]` along the channels. Backward:
    ``dout`` is split into the branches' channel blocks :math:`g_k` and

    .. math:: \\frac{\\partial L}{\\partial x} = \\sum_k J_{b_k}(x)^\\top g_k ,

    the sum because ``x`` feeds every branch.

    References
    ----------
    Szegedy et al., "Going deeper with convolutions", CVPR 2015, fig. 2 (the
    inception module); FaceNet table 2.
    """

    def __init__(self, *branches):
        super().__init__()
        self._add_children(branches, "Concat")

    def forward(self, x):
        outs = [b.forward(x) for b in self._modules.values()]
        out, self._cache = concat_forward(*outs, axis=1)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("Concat.backward called before forward")
        douts = concat_backward(dout, self._cache)
        self._cache = None
        dx, owned = None, False
        for b, g in zip(self._modules.values(), douts):
            d = b.backward(g)
            if dx is None:
                dx = d                      # a branch may hand back a view of dout (Identity): not ours to add into
            elif owned:
                dx += d
            else:
                dx, owned = dx + d, True    # our own array from here on: the other branches added in place
        return dx

    def child_input_shapes(self, input_shape):
        return [(name, b, tuple(input_shape)) for name, b in self._modules.items()]

    def output_shape(self, input_shape):
        shapes = [b.output_shape(tuple(input_shape)) for b in self._modules.values()]
        rest = {s[1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"Concat branches give outputs of different sizes {shapes} for input "
                             f"{tuple(input_shape)}: every branch must keep the same H x W")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def flops(self, input_shape):
        return sum(b.flops(tuple(input_shape)) for b in self._modules.values())


class Identity(Module):
    """``out = x`` (the default shortcut of :class:`Residual`)."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class Residual(Module):
    """A residual block: ``out = body(x) + shortcut(x)``.

    Parameters
    ----------
    body : Module
    shortcut : Module, optional
        Identity when ``None``; a 1x1 convolution (with stride) when the body
        changes the shape.

    Notes
    -----
    .. math:: y = F(x) + S(x), \\qquad
              \\frac{\\partial L}{\\partial x} = J_F^\\top g + J_S^\\top g \\quad (g = \\partial L / \\partial y).

    References
    ----------
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, eq. 1-2.
    """

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = _check_module(body, "Residual body")
        self.shortcut = Identity() if shortcut is None else _check_module(shortcut, "Residual shortcut")

    def forward(self, x):
        fx = self.body.forward(x)
        sx = self.shortcut.forward(x)
        if fx.shape != sx.shape:
            raise ValueError(f"Residual body output {tuple(fx.shape)} and shortcut output {tuple(sx.shape)} "
                             "differ: give a shortcut (e.g. a 1x1 Conv2d) that matches the body")
        out, self._cache = add_forward(fx, sx)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("Residual.backward called before forward")
        dfx, dsx = add_backward(dout, self._cache)
        self._cache = None
        return self.body.backward(dfx) + self.shortcut.backward(dsx)

    def child_input_shapes(self, input_shape):
        return [("body", self.body, tuple(input_shape)), ("shortcut", self.shortcut, tuple(input_shape))]

    def output_shape(self, input_shape):
        a = self.body.output_shape(tuple(input_shape))
        b = self.shortcut.output_shape(tuple(input_shape))
        if a != b:
            raise ValueError(f"Residual body gives {a} and shortcut gives {b} for input {tuple(input_shape)}")
        return a

    def flops(self, input_shape):
        return self.body.flops(tuple(input_shape)) + self.shortcut.flops(tuple(input_shape))
