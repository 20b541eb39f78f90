"""``Parameter`` and ``Module``: the bookkeeping that turns forward/backward pairs into networks.

A layer in :mod:`scratchface.layers` is a pair of functions
``out, cache = f_forward(x, w, ...)`` / ``dx, dw, ... = f_backward(dout, cache)``.
A :class:`Module` wraps one pair and keeps what the functions leave to the
caller:

- its **parameters** (each a :class:`Parameter`: the array ``data`` and its
  gradient ``grad``, same shape and dtype);
- the **cache** of the last forward pass, which ``backward`` consumes;
- **buffers**: arrays that are state but not trained (batch-norm running
  statistics), saved and loaded with the parameters;
- the **mode**, ``train()`` or ``eval()`` (dropout and batch norm differ).

``backward(dout)`` returns ``dx`` and *adds* each parameter's gradient to
``param.grad`` (``+=``, as micrograd does), so gradients from several
backward passes accumulate until ``zero_grad()``. Optimisers update
``param.data`` in place, which is why every array keeps its identity:
``load_state_dict`` copies into the existing arrays instead of replacing them.

Composite modules (:class:`~scratchface.nn.blocks.Sequential`,
:class:`~scratchface.nn.blocks.Concat`, ...) hold child modules as
attributes; ``named_parameters`` walks them and names each parameter by its
path, e.g. ``'branch3x3.0.weight'``.

Shapes given to ``output_shape``, ``flops`` and ``summary`` are the shape of
**one sample, without the batch axis**: ``(C, H, W)`` for images, ``(D,)`` for
vectors, which is how the FaceNet tables count (FLOPs per image).

A module instance keeps one cache: use each instance once per forward pass
(share weights by sharing ``Parameter`` objects, not by calling a module twice).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_float_array
from ..backend import get_array_module, to_device, to_host

__all__ = ["Parameter", "Module", "check_input_shape"]


class Parameter:
    """A trainable array and its gradient.

    Parameters
    ----------
    data : float array
        The value; updated in place by the optimisers.

    Attributes
    ----------
    data : array
    grad : array, same shape and dtype as ``data``
        Accumulated gradient of the loss; ``zero_grad()`` resets it to 0.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        if not (hasattr(data, "shape") and hasattr(data, "dtype")):
            raise TypeError(f"Parameter data must be an array, got {type(data).__name__}")
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter data must have a floating point dtype, got {data.dtype}")
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return int(self.data.size)

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


def check_input_shape(x, module_name: str, expected: tuple):
    """Raise a ``ValueError`` naming the shape ``module_name`` expects.

    ``expected`` is the shape of one sample with ``None`` for "any size",
    e.g. ``(3, None, None)`` for a convolution over 3 channels; the batch axis
    is added in front. The values (NaN, infinity) are the layer function's to check:
    checked here as well, an inception block's input was scanned nine times a forward
    (5 % of NN2's training step, ninth #16 pass).
    """
    want = "(N, " + ", ".join("*" if e is None else str(e) for e in expected) + ")"
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        raise TypeError(f"{module_name} expects an array of shape {want}, got {type(x).__name__}")
    if x.ndim != len(expected) + 1 or any(e is not None and s != e for s, e in zip(x.shape[1:], expected)):
        raise ValueError(f"{module_name} expects input of shape {want}, got {tuple(x.shape)}")
    check_float_array(x, "x", finite=False)


class Module:
    """Base class: parameters, buffers, child modules, cache and train/eval mode.

    Subclasses set parameters and children as attributes (``self.weight =
    Parameter(w)``, ``self.body = Sequential(...)``; they are registered
    automatically, in order) and implement:

    - ``forward(x) -> out``, storing what backward needs in ``self._cache``;
    - ``backward(dout) -> dx``, adding parameter gradients with ``+=``;
    - ``output_shape(input_shape)`` and, when it does arithmetic,
      ``_own_flops(input_shape)`` (multiply-adds per sample).
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_cache", None)

    # -------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before setting attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array):
        """Keep ``array`` as non-trainable state (saved, loaded, converted by ``astype``)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    # -------------------------------------------------------------- traversal
    def children(self):
        """The direct child modules, in the order they were set."""
        return list(self._modules.values())

    def named_modules(self, prefix: str = ""):
        """``(path, module)`` for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = ""):
        """``(path, Parameter)`` for every parameter of this module and its descendants."""
        for path, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{path}.{name}" if path else name), p

    def parameters(self):
        """All ``Parameter`` objects (what an optimiser is given)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for path, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                yield (f"{path}.{name}" if path else name), b

    @property
    def num_params(self) -> int:
        """Number of trainable scalars (weights and biases), this module and its children."""
        return sum(p.size for p in self.parameters())

    # -------------------------------------------------------------- modes, gradients
    def train(self, mode: bool = True):
        """Training mode (dropout active, batch norm uses batch statistics); returns self."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off, batch norm uses running statistics); returns self."""
        return self.train(False)

    def set_impl(self, impl: str):
        """Choose the layer functions' implementation in every module that has one; returns self.

        ``'auto'`` (default: the fast Numba kernels for NumPy arrays), ``'reference'``
        (the readable NumPy code of :mod:`scratchface.layers`) or ``'numba'``.
        """
        if impl not in ("auto", "reference", "numba"):
            raise ValueError(f"impl must be one of ('auto', 'reference', 'numba'), got {impl!r}")
        for _, module in self.named_modules():
            if getattr(module, "impl", None) is not None:
                object.__setattr__(module, "impl", impl)
        return self

    def zero_grad(self):
        """Set every parameter's gradient to 0 (in place)."""
        for p in self.parameters():
            p.grad[...] = 0

    def astype(self, dtype):
        """Convert every parameter and buffer to ``dtype`` (e.g. ``np.float64`` for gradchecks); returns self.

        The arrays are replaced: build optimisers after converting.
        """
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating point type, got {dtype}")
        for _, module in self.named_modules():
            for p in module._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = p.grad.astype(dtype)
            for name, b in list(module._buffers.items()):
                if b is not None and hasattr(b, "dtype") and b.dtype.kind == "f":
                    module.register_buffer(name, b.astype(dtype))
        return self

    def to(self, device: str):
        """Move every parameter, gradient and buffer to ``'cpu'`` (NumPy) or ``'gpu'`` (CuPy); returns self.

        The layer functions follow their inputs' device (``impl='auto'`` runs the
        readable reference with CuPy on the GPU). Build optimisers after moving.
        """
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        move = to_host if device == "cpu" else to_device
        for _, module in self.named_modules():
            for p in module._parameters.values():
                p.data, p.grad = move(p.data), move(p.grad)
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module.register_buffer(name, move(b))
        return self

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """``{path: array}`` of every parameter and buffer (the arrays themselves, not copies)."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update({name: b for name, b in self.named_buffers() if b is not None})
        return state

    def load_state_dict(self, state: dict, strict: bool = True):
        """Copy arrays from ``state`` into this module's parameters and buffers (in place).

        Parameters
        ----------
        state : dict of str to array
            As returned by ``state_dict`` (or read by :func:`scratchface.nn.load`).
        strict : bool
            Refuse keys that are missing from ``state`` or unknown to the module.

        Raises
        ------
        KeyError
            Missing or unexpected keys (``strict``), listing them.
        ValueError
            An array whose shape differs from the module's.
        """
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(f"state does not match {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for name, target in own.items():
            if name not in state:
                continue
            value = state[name]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"shape mismatch for {name!r}: the module has {tuple(target.shape)}, "
                                 f"the state has {tuple(value.shape)}")
            xp = get_array_module(target)
            target[...] = xp.asarray(value, dtype=target.dtype)
        return self

    # -------------------------------------------------------------- computation
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one output sample for one input sample of ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def child_input_shapes(self, input_shape: tuple) -> list:
        """``(name, child, child's input shape)`` per child, for ``summary``; containers override it."""
        return []

    def _own_flops(self, input_shape: tuple) -> int:
        """Multiply-adds of this module itself (not its children) for one sample."""
        return 0

    def flops(self, input_shape: tuple) -> int:
        """Multiply-adds for one sample, the way the FaceNet tables count them.

        Convolutions and dense layers count one multiply-add per weight per
        output position, plus one per output for the bias; pooling,
        activations and normalisation count 0. Composite modules sum their
        children (they override this).
        """
        return int(self._own_flops(tuple(input_shape)))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_lines = repr(child).splitlines()
                lines.append(f"  ({name}): " + child_lines[0])
                lines.extend("  " + line for line in child_lines[1:])
            lines.append(")")
            return "\n".join(lines)
        return lines[0] + ")"
