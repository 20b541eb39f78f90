"""A scale-friendly face detector network: one shared backbone, one branch per range of face sizes.

Yang, Xiong, Loy and Tang (2017) observe that one network head cannot serve faces
of 10 and of 200 pixels equally well: a small face has vanished from a deep,
coarse feature map, while a large face needs the receptive field and the
context that only deep layers have. Their *ScaleFace* detector therefore taps a
shared backbone at several depths and gives each tap a **scale-variant
branch**, trained only with faces of its own size range:

- the **shallow branch** reads early, high-resolution features (stride 4 here)
  and finds the small faces;
- deeper branches read coarser, more abstract features (stride 16, 32) and find
  the medium and the large faces.

Each branch is a small Faster R-CNN: a **proposal head** (a region proposal
network: for every feature-map cell and every anchor box, a face / background
score and four box offsets) and an **ROI-pooled classifier** (each proposal's
features are cut out of the branch's feature map by ROI align or ROI max
pooling into a fixed ``roi_size x roi_size`` grid, then dense layers say face /
not face and refine the box). The branches' detections are merged with NMS;
the image is seen once, at a single scale (no image pyramid).

Architecture (channels with the default ``channels=(8, 16, 16, 32, 32, 48, 48)``)::

    image 3 x H x W  (H, W multiples of 32; (pixel - 127.5) / 128)
    stem    conv3x3/2 8, ReLU, maxpool 2, conv3x3 16, ReLU, conv3x3 16, ReLU  -> C=16, stride 4   [small]
    middle  maxpool 2, conv3x3 32, ReLU, maxpool 2, conv3x3 32, ReLU         -> C=32, stride 16  [medium]
    deep    maxpool 2, conv3x3 48, ReLU, conv3x3 48, ReLU                    -> C=48, stride 32  [large]
    branch  proposal head: conv3x3 32, ReLU, 1x1 conv -> 2A scores, 1x1 conv -> 4A offsets
            ROI classifier: ROI align (roi_size^2 cells) -> dense ``hidden``, ReLU -> dense 2, dense 4

(receptive fields 21, 81 and 225 pixels at the three taps: a little under the
largest face of each branch's band, 30, 120 and 240.)

What is simplified against the paper: a seven-layer plain ConvNet instead of a
ResNet-50 tapped at several of its stages; three branches at strides 4 / 16 / 32;
small channel counts for a 2-core CPU; square anchors
(three sizes per branch); no batch normalisation; no multi-scale training.

References
----------
S. Yang, Y. Xiong, C. C. Loy, X. Tang, "Face Detection through Scale-Friendly
Deep Convolutional Networks", arXiv:1706.02863, 2017 (sec. 3: scale-variant
branches, each trained on faces of its size range).
S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN: Towards Real-Time Object
Detection with Region Proposal Networks", NeurIPS 2015 (anchors, the region
proposal network, ROI pooling; sec. 3.1).
K. He, G. Gkioxari, P. Dollar, R. Girshick, "Mask R-CNN", ICCV 2017 (ROI align).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_array, check_choice, check_positive_int
from ..layers.roi import (
    roi_align_backward,
    roi_align_forward,
    roi_max_pool_backward,
    roi_max_pool_forward,
)
from ..nn.blocks import Sequential
from ..nn.layers import Conv2d, Dense, MaxPool2d, ReLU
from ..nn.module import Module

__all__ = ["DEFAULT_BRANCHES", "INPUT_MULTIPLE", "BranchSpec", "ScaleBranch", "ScaleFriendlyNet"]

#: Input heights and widths must be multiples of this (the deepest stride): then every
#: pooling divides exactly and feature cell ``j`` covers pixels ``[s j, s (j + 1))``.
INPUT_MULTIPLE = 32


class BranchSpec(NamedTuple):
    """One scale-variant branch: where it taps the backbone and which faces it owns.

    name : str
        ``'small'``, ``'medium'``, ``'large'``.
    stride : int
        Pixels per feature-map cell at the tap (4, 16, 32).
    anchor_sizes : tuple of float
        Side lengths (pixels) of the square anchors centred on every cell.
    face_sizes : (low, high)
        The face heights (pixels, WIDER FACE's size measure) this branch is trained on.
    """
    name: str
    stride: int
    anchor_sizes: tuple
    face_sizes: tuple


#: The three branches for 256 x 256 scenes with faces of 10-30, 30-120 and 120-240 pixels
#: (WIDER FACE's hard / medium / easy in spirit). Anchor sizes are spread geometrically over
#: each band, so that every face of the band overlaps some anchor by IoU >= 0.5 in size.
DEFAULT_BRANCHES = (
    BranchSpec("small", 4, (12.0, 18.0, 26.0), (0.0, 30.0)),
    BranchSpec("medium", 16, (38.0, 60.0, 95.0), (30.0, 120.0)),
    BranchSpec("large", 32, (135.0, 175.0, 225.0), (120.0, np.inf)),
)

_TAP_STRIDES = (4, 16, 32)


class ScaleBranch(Module):
    """Proposal head and ROI-pooled classifier of one branch (Faster R-CNN on one feature map).

    Parameters
    ----------
    spec : BranchSpec
    in_channels : int
        Channels of the backbone tap it reads.
    head_channels : int
        Channels of the proposal head's 3x3 convolution.
    roi_size : int
        ROI pooling output is ``roi_size x roi_size`` cells.
    hidden : int
        Units of the classifier's hidden dense layer.
    roi_pool : {'align', 'max'}
        ROI align (bilinear samples, Mask R-CNN) or ROI max pooling (Fast R-CNN).
    rng : numpy.random.Generator
    dtype : float dtype

    Notes
    -----
    Proposal outputs are laid out per anchor in the order (row, column, anchor):
    anchor ``k = (i W + j) A + a`` is anchor size ``a`` centred on cell ``(i, j)``.
    The score convolution's channel ``2 a + c`` is class ``c`` (0 background,
    1 face) of anchor ``a``; the offset convolution's channel ``4 a + k`` is
    offset ``k`` (``t_x, t_y, t_w, t_h``).
    """

    def __init__(self, spec, in_channels, *, head_channels=32, roi_size=4, hidden=64, roi_pool="align",
                 rng=None, dtype=np.float32):
        super().__init__()
        rng = as_generator(rng, allow_none=True)
        self.spec = spec
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_anchors = len(spec.anchor_sizes)
        self.roi_size = check_positive_int(roi_size, "roi_size")
        self.roi_pool = check_choice(roi_pool, "roi_pool", ("align", "max"))
        a = self.num_anchors
        self.rpn_conv = Sequential(Conv2d(in_channels, head_channels, 3, padding=1, rng=rng, dtype=dtype), ReLU())
        self.rpn_score = Conv2d(head_channels, 2 * a, 1, init="xavier_normal", rng=rng, dtype=dtype)
        self.rpn_offset = Conv2d(head_channels, 4 * a, 1, init="xavier_normal", rng=rng, dtype=dtype)
        self.roi_hidden = Sequential(Dense(in_channels * self.roi_size ** 2, hidden, rng=rng, dtype=dtype), ReLU())
        self.roi_score = Dense(hidden, 2, init="xavier_normal", rng=rng, dtype=dtype)
        self.roi_offset = Dense(hidden, 4, init="xavier_normal", rng=rng, dtype=dtype)
        self.roi_offset.weight.data *= 0.1     # start near "keep the proposal's box"
        self.rpn_offset.weight.data *= 0.1
        self._rpn_shape = None
        self._roi_cache = None

    # ------------------------------------------------------------------ proposal head
    def propose(self, features):
        """Anchor scores and offsets for every cell of the branch's feature map.

        Parameters
        ----------
        features : array, shape (N, C, H, W)

        Returns
        -------
        logits : array, shape (N, H W A, 2)
            Background / face scores before the softmax.
        offsets : array, shape (N, H W A, 4)
            ``(t_x, t_y, t_w, t_h)`` of each anchor (Faster R-CNN eq. 2).
        """
        hidden = self.rpn_conv.forward(features)
        scores = self.rpn_score.forward(hidden)
        offsets = self.rpn_offset.forward(hidden)
        n, _, h, w = scores.shape
        self._rpn_shape = (n, h, w)
        return (scores.transpose(0, 2, 3, 1).reshape(n, h * w * self.num_anchors, 2),
                offsets.transpose(0, 2, 3, 1).reshape(n, h * w * self.num_anchors, 4))

    def propose_backward(self, dlogits, doffsets):
        """Gradients of :meth:`propose`'s outputs -> gradient of ``features`` (parameters accumulate)."""
        if self._rpn_shape is None:
            raise RuntimeError("ScaleBranch.propose_backward called before propose")
        n, h, w = self._rpn_shape
        self._rpn_shape = None
        dscores = dlogits.reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        doff = doffsets.reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        dhidden = self.rpn_score.backward(np.ascontiguousarray(dscores))
        dhidden += self.rpn_offset.backward(np.ascontiguousarray(doff))
        return self.rpn_conv.backward(dhidden)

    # ------------------------------------------------------------------ ROI classifier
    def classify(self, features, rois):
        """Face scores and box refinements of regions of interest.

        Parameters
        ----------
        features : array, shape (N, C, H, W)
            The branch's feature map (the one :meth:`propose` read).
        rois : array, shape (R, 5)
            ``(batch_index, x1, y1, x2, y2)`` in input-image pixels.

        Returns
        -------
        logits : array, shape (R, 2)
        offsets : array, shape (R, 4)
            Refinement of each ROI's box, in the same parametrisation as the anchors'.
        """
        rois = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
        kwargs = {"rois": rois, "output_size": (self.roi_size, self.roi_size), "spatial_scale": 1.0 / self.spec.stride}
        pool_forward = roi_align_forward if self.roi_pool == "align" else roi_max_pool_forward
        pooled, roi_cache = pool_forward(features, **kwargs)
        hidden = self.roi_hidden.forward(np.ascontiguousarray(pooled.reshape(len(rois), -1)))
        self._roi_cache = (roi_cache, pooled.shape)
        return self.roi_score.forward(hidden), self.roi_offset.forward(hidden)

    def classify_backward(self, dlogits, doffsets):
        """Gradients of :meth:`classify`'s outputs -> gradient of ``features`` (through ROI pooling)."""
        if self._roi_cache is None:
            raise RuntimeError("ScaleBranch.classify_backward called before classify")
        (roi_cache, pooled_shape), self._roi_cache = self._roi_cache, None
        dhidden = self.roi_score.backward(dlogits) + self.roi_offset.backward(doffsets)
        dpooled = self.roi_hidden.backward(dhidden).reshape(pooled_shape)
        pool_backward = roi_align_backward if self.roi_pool == "align" else roi_max_pool_backward
        return pool_backward(dpooled, roi_cache)

    def forward(self, x):
        raise TypeError("a ScaleBranch has two heads: call propose(features) or classify(features, rois)")


class ScaleFriendlyNet(Module):
    """Shared backbone with three scale-variant branches (see the module docstring).

    Parameters
    ----------
    branches : sequence of three BranchSpec
        Anchor sizes and face-size bands of the small, medium and large branch
        (taps at strides 4, 16, 32 in this order).
    channels : seven ints
        Output channels of the seven backbone convolutions.
    head_channels, roi_size, hidden : int
        Per branch, see :class:`ScaleBranch`.
    roi_pool : {'align', 'max'}
    rng : numpy.random.Generator or int
        Seeds the initialisation.
    dtype : float dtype

    Examples
    --------
    >>> import numpy as np
    >>> net = ScaleFriendlyNet(rng=0)
    >>> feats = net.forward(np.zeros((1, 3, 64, 96), np.float32))
    >>> [f.shape for f in feats]
    [(1, 16, 16, 24), (1, 32, 4, 6), (1, 48, 2, 3)]
    """

    def __init__(self, *, branches=DEFAULT_BRANCHES, channels=(8, 16, 16, 32, 32, 48, 48), head_channels=32,
                 roi_size=4, hidden=64, roi_pool="align", rng=0, dtype=np.float32):
        super().__init__()
        rng = as_generator(rng, allow_none=True)
        branches = tuple(BranchSpec(*b) for b in branches)
        if len(branches) != 3 or tuple(b.stride for b in branches) != _TAP_STRIDES:
            raise ValueError(f"branches must be three BranchSpec with strides {_TAP_STRIDES} (small, medium, "
                             f"large), got {[b.stride for b in branches]}")
        if len(channels) != 7:
            raise ValueError(f"channels must be seven positive ints, got {channels!r}")
        c = [check_positive_int(v, "channels") for v in channels]
        self.branches = branches
        self.channels = tuple(c)

        def conv(cin, cout, **kw):
            return Conv2d(cin, cout, 3, padding=1, rng=rng, dtype=dtype, **kw)

        self.stem = Sequential({"conv1": conv(3, c[0], stride=2), "relu1": ReLU(), "pool1": MaxPool2d(2),
                                "conv2": conv(c[0], c[1]), "relu2": ReLU(),
                                "conv3": conv(c[1], c[2]), "relu3": ReLU()})
        self.middle = Sequential({"pool3": MaxPool2d(2), "conv4": conv(c[2], c[3]), "relu4": ReLU(),
                                  "pool4": MaxPool2d(2), "conv5": conv(c[3], c[4]), "relu5": ReLU()})
        self.deep = Sequential({"pool5": MaxPool2d(2), "conv6": conv(c[4], c[5]), "relu6": ReLU(),
                                "conv7": conv(c[5], c[6]), "relu7": ReLU()})
        kw = {"head_channels": head_channels, "roi_size": roi_size, "hidden": hidden, "roi_pool": roi_pool,
              "rng": rng, "dtype": dtype}
        self.small = ScaleBranch(branches[0], c[2], **kw)
        self.medium = ScaleBranch(branches[1], c[4], **kw)
        self.large = ScaleBranch(branches[2], c[6], **kw)

    @property
    def branch_modules(self):
        """The three :class:`ScaleBranch` modules, small to large."""
        return (self.small, self.medium, self.large)

    def forward(self, x):
        """Backbone features at the three taps.

        Parameters
        ----------
        x : float array, shape (N, 3, H, W)
            ``H`` and ``W`` multiples of :data:`INPUT_MULTIPLE` (32).

        Returns
        -------
        features : tuple of three arrays
            ``(N, C_s, H/4, W/4)``, ``(N, C_m, H/16, W/16)``, ``(N, C_l, H/32, W/32)``.
        """
        check_array(x, "x", ndim=4, dtype_kind="f")
        if x.shape[1] != 3 or x.shape[2] % INPUT_MULTIPLE or x.shape[3] % INPUT_MULTIPLE or x.shape[2] == 0 \
                or x.shape[3] == 0:
            raise ValueError(f"x must have shape (N, 3, H, W) with H and W positive multiples of {INPUT_MULTIPLE} "
                             f"(pad the image), got {tuple(x.shape)}")
        small = self.stem.forward(x)
        medium = self.middle.forward(small)
        large = self.deep.forward(medium)
        return small, medium, large

    def backward(self, dfeatures):
        """Gradients of the three taps' features -> ``dx``; the backbone's parameter gradients accumulate.

        A tap's gradient joins the gradient flowing down from the deeper layers
        (the tap feeds both its branch and the next stage): ``d small = d branch + d middle``.
        """
        dsmall, dmedium, dlarge = dfeatures
        dmedium = dmedium + self.deep.backward(dlarge)
        dsmall = dsmall + self.middle.backward(dmedium)
        return self.stem.backward(dsmall)
