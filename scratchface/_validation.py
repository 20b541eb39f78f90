"""Argument checks shared by every public function: validate first, in one place.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right
kind, wrong value) with a message that names the argument and says what was
expected, so that a user never meets a NumPy broadcasting accident or a crash
deep inside a kernel.
"""
from __future__ import annotations

import numbers

import numpy as np

from .backend import get_array_module

__all__ = [
    "check_array", "check_float_array", "check_finite", "check_positive_int",
    "check_nonnegative_int", "check_int_pair", "check_padding", "check_same_shape",
    "check_in_range", "check_choice", "check_labels", "check_positive_float", "as_generator",
]


def _describe(x) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:80]


def check_array(x, name: str, *, ndim=None, dtype_kind=None, finite=False):
    """Check that ``x`` is an ndarray (NumPy or CuPy) with the given rank and dtype kind.

    Parameters
    ----------
    x : array
    name : str
        The argument's name, used in the message.
    ndim : int or tuple of int, optional
        Allowed ranks.
    dtype_kind : str, optional
        Allowed ``dtype.kind`` letters: ``'f'`` floats, ``'iu'`` integers,
        ``'fiu'`` any real number, ``'b'`` booleans.
    finite : bool
        Refuse NaN and infinity.

    Returns
    -------
    x : the same array (never copied).
    """
    if type(x) is not np.ndarray and not (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "ndim")):
        raise TypeError(f"{name} must be an array (numpy.ndarray or cupy.ndarray), got {_describe(x)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must be a {want}-D array, got shape {tuple(x.shape)}")
    if dtype_kind is not None and x.dtype.kind not in dtype_kind:
        kinds = {"f": "floating point", "i": "signed integer", "u": "unsigned integer",
                 "b": "boolean", "c": "complex"}
        want = " or ".join(kinds.get(k, k) for k in dtype_kind)
        raise TypeError(f"{name} must have a {want} dtype, got {x.dtype}"
                        + (" (convert with x.astype(np.float32) or np.float64)" if "f" == dtype_kind else ""))
    if finite:
        check_finite(x, name)
    return x


def check_float_array(x, name: str, *, ndim=None, finite=True):
    """``check_array`` for float inputs to layers: float dtype, no NaN / inf by default."""
    return check_array(x, name, ndim=ndim, dtype_kind="f", finite=finite)


_FINITE_CHUNK = 1 << 18  # elements per step of check_finite on large NumPy arrays


def check_finite(x, name: str):
    """Raise ``ValueError`` if ``x`` holds NaN or infinity."""
    xp = np if type(x) is np.ndarray else get_array_module(x)
    if x.dtype.kind not in "fc" or not x.size:
        return x
    if xp is np and x.size > _FINITE_CHUNK and x.flags.c_contiguous:
        # chunk by chunk: the boolean temporary stays small (and in cache) however large x is
        flat = x.reshape(-1)
        finite = all(np.isfinite(flat[i:i + _FINITE_CHUNK]).all() for i in range(0, flat.size, _FINITE_CHUNK))
    else:
        finite = bool(xp.isfinite(x).all())
    if not finite:
        raise nonfinite_error(name)
    return x


def nonfinite_error(name: str) -> ValueError:
    """The error for NaN or infinity in ``name`` (``check_finite``'s, and the kernels' that check in their pass)."""
    return ValueError(f"{name} contains NaN or infinity")


def check_positive_int(value, name: str) -> int:
    """An integer > 0 (``bool`` refused)."""
    if type(value) is int and value > 0:    # the common case, first (layer calls check their ints each time)
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {_describe(value)}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_nonnegative_int(value, name: str) -> int:
    """An integer >= 0 (``bool`` refused)."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {_describe(value)}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def check_positive_float(value, name: str, *, allow_zero=False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {want} number, got {value}")
    return value


def check_int_pair(value, name: str, *, allow_zero=False):
    """An int or a pair of ints, returned as a ``(rows, cols)`` tuple of positive ints."""
    check = check_nonnegative_int if allow_zero else check_positive_int
    if type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))):
        return (check(value, name),) * 2
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (check(value[0], name), check(value[1], name))
    kind = "non-negative" if allow_zero else "positive"
    raise TypeError(f"{name} must be a {kind} int or a pair of them (rows, cols), got {_describe(value)}")


def check_padding(value, name: str = "padding"):
    """Zero padding as ``(top, bottom, left, right)``.

    Accepts an int (all sides), a pair ``(rows, cols)`` (symmetric) or four ints
    ``(top, bottom, left, right)`` (asymmetric, e.g. TensorFlow's 'same' with an
    even kernel).
    """
    if type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))):
        return (check_nonnegative_int(value, name),) * 4
    if isinstance(value, (tuple, list)):
        if len(value) == 2:
            r, c = (check_nonnegative_int(v, name) for v in value)
            return (r, r, c, c)
        if len(value) == 4:
            return tuple(check_nonnegative_int(v, name) for v in value)
    raise TypeError(f"{name} must be an int, a pair (rows, cols) or four ints "
                    f"(top, bottom, left, right), got {_describe(value)}")


def check_same_shape(a, b, name_a: str, name_b: str):
    """Raise ``ValueError`` unless ``a.shape == b.shape`` (e.g. ``dout`` against the forward output)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} must have the shape of {name_b} {tuple(b.shape)}, got {tuple(a.shape)}")


def check_in_range(value, name: str, low, high, *, inclusive=(True, True)) -> float:
    """A real number in ``[low, high]`` (ends open or closed by ``inclusive``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    lo_ok = value >= low if inclusive[0] else value > low
    hi_ok = value <= high if inclusive[1] else value < high
    if not (np.isfinite(value) and lo_ok and hi_ok):
        br = ("[" if inclusive[0] else "(") + f"{low}, {high}" + ("]" if inclusive[1] else ")")
        raise ValueError(f"{name} must be in {br}, got {value}")
    return value


def check_choice(value, name: str, choices):
    """One of a fixed set of option strings (unknown options are never silently accepted)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_labels(labels, name: str, n: int, num_classes=None):
    """Integer class labels: 1-D, length ``n``, in ``[0, num_classes)`` when given."""
    check_array(labels, name, ndim=1, dtype_kind="iu")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must have one label per sample ({n}), got {labels.shape[0]}")
    if num_classes is not None and labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name} must be in [0, {num_classes}), got values from {lo} to {hi}")
    return labels


def as_generator(rng, name: str = "rng", *, allow_none: bool = False) -> np.random.Generator:
    """The one rule for seeds: a ``numpy.random.Generator`` from a Generator or an int seed.

    A Generator is used as it is (its state advances: pass the same one on to draw
    a different stream); an int (not a bool) seeds a new one. ``None`` is refused,
    so that no result depends on a hidden global state, except where the caller
    allows it (``allow_none=True``: weight initialisation, where ``None`` means a
    fresh unseeded stream, as PyTorch's modules draw from its global one).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    if rng is None and allow_none:
        return np.random.default_rng()
    raise TypeError(f"{name} must be a numpy.random.Generator or an int seed, got {_describe(rng)} "
                    f"(results here are seeded: pass {name}=0 or np.random.default_rng(0))")
