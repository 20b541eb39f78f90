"""The FaceNet NN2 inception block, configured by the columns of FaceNet's table 2.

Four branches on the same input, concatenated along the channels::

    x --+-- 1x1 conv (#1x1) -------------------------------------------+
        +-- 1x1 conv (#3x3 reduce) -- 3x3 conv (#3x3, stride s) -------+-- concat
        +-- 1x1 conv (#5x5 reduce) -- 5x5 conv (#5x5, stride s) -------+
        +-- 3x3 pool (max or L2, stride s) -- 1x1 conv (pool proj) ----+

every convolution followed by a ReLU, every spatial convolution and the pool
padded to keep the size (``stride=1``) or halve it, rounding up (``stride=2``).
The stride-2 variant (3c, 4e) has no 1x1 branch and passes the pooled input
through without projection, so its depth is ``#3x3 + #5x5 + C_in``.

A ``0`` in a column drops that part: ``n1x1=0`` no 1x1 branch,
``n3x3_reduce=0`` no reduction before the 3x3 conv, ``pool_proj=0`` the pooled
input passes through. The 1x1 reductions always run at stride 1, so the
stride-2 branches reduce at full resolution and subsample in the 3x3 / 5x5 conv
(this is what reproduces the table's FLOPs for 3c and 4e).

``NN2_INCEPTION`` holds the table's rows; ``Inception.from_table('3a')`` builds one.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_choice, check_nonnegative_int, check_positive_int
from .blocks import Concat, Sequential
from .layers import Conv2d, L2Pool2d, MaxPool2d, ReLU
from .module import Module, check_input_shape

__all__ = ["Inception", "NN2_INCEPTION"]

#: FaceNet table 2 (NN2): name -> (in_channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool, pool proj,
#: stride), with the table's output size (C, H, W) at a 224x224 input and its rounded params / FLOPs.
NN2_INCEPTION = {
    "3a": dict(config=(192, 64, 96, 128, 16, 32, "max", 32, 1), output=(256, 28, 28), input_hw=(28, 28),
               params="164K", flops="128M"),
    "3b": dict(config=(256, 64, 96, 128, 32, 64, "l2", 64, 1), output=(320, 28, 28), input_hw=(28, 28),
               params="228K", flops="179M"),
    "3c": dict(config=(320, 0, 128, 256, 32, 64, "max", 0, 2), output=(640, 14, 14), input_hw=(28, 28),
               params="398K", flops="108M"),
    "4a": dict(config=(640, 256, 96, 192, 32, 64, "l2", 128, 1), output=(640, 14, 14), input_hw=(14, 14),
               params="545K", flops="107M"),
    "4b": dict(config=(640, 224, 112, 224, 32, 64, "l2", 128, 1), output=(640, 14, 14), input_hw=(14, 14),
               params="595K", flops="117M"),
    "4c": dict(config=(640, 192, 128, 256, 32, 64, "l2", 128, 1), output=(640, 14, 14), input_hw=(14, 14),
               params="654K", flops="128M"),
    "4d": dict(config=(640, 160, 144, 288, 32, 64, "l2", 128, 1), output=(640, 14, 14), input_hw=(14, 14),
               params="722K", flops="142M"),
    "4e": dict(config=(640, 0, 160, 256, 64, 128, "max", 0, 2), output=(1024, 7, 7), input_hw=(14, 14),
               params="717K", flops="56M"),
    "5a": dict(config=(1024, 384, 192, 384, 48, 128, "l2", 128, 1), output=(1024, 7, 7), input_hw=(7, 7),
               params="1.6M", flops="78M"),
    "5b": dict(config=(1024, 384, 192, 384, 48, 128, "max", 128, 1), output=(1024, 7, 7), input_hw=(7, 7),
               params="1.6M", flops="78M"),
}


class Inception(Module):
    """An inception block with FaceNet table 2's columns.

    Parameters
    ----------
    in_channels : int
        ``C_in``.
    n1x1 : int
        Filters of the 1x1 branch (0: none; must be 0 for ``stride=2``).
    n3x3_reduce, n3x3 : int
        1x1 reduction before the 3x3 conv (0: none) and the 3x3 conv's filters (0: no 3x3 branch).
    n5x5_reduce, n5x5 : int
        The same for the 5x5 branch.
    pool : {'max', 'l2'}
        The 3x3 pooling of the fourth branch.
    pool_proj : int
        Filters of the 1x1 projection after the pool (0: the pooled input passes through;
        must be 0 for ``stride=2``).
    stride : {1, 2}
    init, rng, dtype
        Passed to every :class:`~scratchface.nn.layers.Conv2d` (one generator, drawn in branch order).

    Attributes
    ----------
    branches : Concat
        Named ``'branch1x1'``, ``'branch3x3'``, ``'branch5x5'``, ``'branch_pool'`` (those present).

    Notes
    -----
    Output channels: ``n1x1 + n3x3 + n5x5 + (pool_proj or in_channels)``; output size
    ``ceil(H / stride) x ceil(W / stride)``.

    References
    ----------
    Szegedy et al., "Going deeper with convolutions", CVPR 2015, fig. 2b;
    Schroff et al., "FaceNet", CVPR 2015, table 2 (NN2).
    """

    def __init__(self, in_channels, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool="max", pool_proj=0,
                 stride=1, *, init="he_normal", rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = (
            check_nonnegative_int(v, name) for v, name in (
                (n1x1, "n1x1"), (n3x3_reduce, "n3x3_reduce"), (n3x3, "n3x3"), (n5x5_reduce, "n5x5_reduce"),
                (n5x5, "n5x5"), (pool_proj, "pool_proj")))
        self.pool = check_choice(pool, "pool", ("max", "l2"))
        self.stride = check_choice(stride, "stride", (1, 2))
        if stride == 2 and (n1x1 or pool_proj):
            raise ValueError("the stride-2 inception block (FaceNet 3c, 4e) has no 1x1 branch and no pool "
                             f"projection: give n1x1=0 and pool_proj=0, got n1x1={n1x1}, pool_proj={pool_proj}")
        if n3x3_reduce and not n3x3 or n5x5_reduce and not n5x5:
            raise ValueError("a reduction (n3x3_reduce / n5x5_reduce) needs its conv (n3x3 / n5x5 > 0)")
        self.config = dict(n1x1=n1x1, n3x3_reduce=n3x3_reduce, n3x3=n3x3, n5x5_reduce=n5x5_reduce, n5x5=n5x5,
                           pool=pool, pool_proj=pool_proj, stride=stride)
        rng = as_generator(rng, allow_none=True)

        def conv_relu(c_in, c_out, k, s=1):
            return [Conv2d(c_in, c_out, k, stride=s, padding=k // 2, init=init, rng=rng, dtype=dtype), ReLU()]

        def spatial_branch(reduce, n, k):
            layers = conv_relu(self.in_channels, reduce, 1) if reduce else []
            layers += conv_relu(reduce or self.in_channels, n, k, stride)
            return Sequential(*layers)

        branches = {}
        if n1x1:
            branches["branch1x1"] = Sequential(*conv_relu(self.in_channels, n1x1, 1))
        if n3x3:
            branches["branch3x3"] = spatial_branch(n3x3_reduce, n3x3, 3)
        if n5x5:
            branches["branch5x5"] = spatial_branch(n5x5_reduce, n5x5, 5)
        pool_layer = (MaxPool2d if pool == "max" else L2Pool2d)(3, stride=stride, padding=1)
        proj = conv_relu(self.in_channels, pool_proj, 1) if pool_proj else []
        branches["branch_pool"] = Sequential(pool_layer, *proj)
        self.branches = Concat(branches)
        self.out_channels = n1x1 + n3x3 + n5x5 + (pool_proj or self.in_channels)

    @classmethod
    def from_table(cls, name, *, rng=None, dtype=np.float32):
        """The block ``name`` ('3a' ... '5b') of FaceNet's NN2 (table 2)."""
        if name not in NN2_INCEPTION:
            raise ValueError(f"name must be one of {tuple(NN2_INCEPTION)} (FaceNet table 2), got {name!r}")
        return cls(*NN2_INCEPTION[name]["config"], rng=rng, dtype=dtype)

    def forward(self, x):
        check_input_shape(x, "Inception", (self.in_channels, None, None))
        return self.branches.forward(x)

    def backward(self, dout):
        return self.branches.backward(dout)

    def child_input_shapes(self, input_shape):
        return self.branches.child_input_shapes(input_shape)

    def output_shape(self, input_shape):
        if input_shape[0] != self.in_channels:
            raise ValueError(f"Inception expects {self.in_channels} input channels, got input shape "
                             f"{tuple(input_shape)}")
        return self.branches.output_shape(input_shape)

    def flops(self, input_shape):
        return self.branches.flops(input_shape)

    def extra_repr(self):
        c = self.config
        return (f"{self.in_channels} -> {self.out_channels}: 1x1 {c['n1x1']}, 3x3 {c['n3x3_reduce']}->{c['n3x3']}, "
                f"5x5 {c['n5x5_reduce']}->{c['n5x5']}, {c['pool']} pool proj {c['pool_proj']}, "
                f"stride {c['stride']}")
