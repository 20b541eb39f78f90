"""Greedy non-maximum suppression on the GPU: the bitmask algorithm (as in torchvision).

Greedy NMS (:func:`scratchface.detection.nms.nms`) walks the boxes by
decreasing score and drops every later box that overlaps a kept one by more
than the threshold. It is sequential, but most of its work -- the ``n^2 / 2``
overlaps -- is not, so it splits in two steps:

1. ``overlap_mask`` (parallel): boxes sorted by score are cut into blocks of
   64. CUDA block ``(row, col)`` loads the 64 boxes of block ``col`` into
   shared memory; its thread ``t`` compares box ``64*row + t`` with each of
   them and sets bit ``k`` of a 64-bit word when box ``64*col + k`` comes
   later in the order and overlaps it by more than the threshold. So
   ``mask[i, col]`` is the set of boxes of block ``col`` that box ``i`` would
   suppress. Blocks below the diagonal (``row > col``) have nothing to do.
2. ``reduce_mask`` (sequential over boxes, parallel over words): a
   ``removed`` bit set, one bit per box. Box ``i`` is kept when its bit is
   still clear; then ``removed |= mask[i]``. One CUDA block does it: for each
   block of 64 boxes, every thread reads the word of that block once and
   walks its 64 bits in registers, and the threads share the OR into the
   later words. One barrier per 64 boxes.

torchvision's ``nms`` does step 2 on the CPU after copying the mask back
(``reduce='host'`` in :func:`nms_cuda` does the same); the mask
has ``n * ceil(n / 64)`` words (1.25 GB for 100,000 boxes), so the device
reduction avoids that copy.

Overlaps are computed in float64 exactly as the readable reference does
(``inter / denom > threshold``, 0 when ``denom`` is 0), with ``mode`` 0 for
intersection over union and 1 for intersection over the smaller area
(MTCNN's last step).

Host wrapper (CuPy arrays): :func:`nms_cuda`, the CuPy path of
:func:`scratchface.detection.nms.nms`.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float64, uint64

from ..._validation import check_array, check_choice, check_in_range
from ...backend import to_host
from ._launch import array_module, larger, launch, smaller

__all__ = ["overlap_mask", "reduce_mask", "nms_cuda", "BLOCK", "REDUCE_THREADS"]

BLOCK = 64            # boxes per block = bits per mask word
REDUCE_THREADS = 128  # threads of the single reducing block


@cuda.jit(device=True)
def _suppresses(x1, y1, x2, y2, area, bx1, by1, bx2, by2, barea, threshold, mode):
    """True when the two boxes overlap by more than ``threshold`` (the reference's arithmetic)."""
    iw = smaller(x2, bx2) - larger(x1, bx1)
    ih = smaller(y2, by2) - larger(y1, by1)
    if iw <= 0 or ih <= 0:
        return False                                  # inter = 0: overlap 0, never > threshold >= 0
    inter = iw * ih
    denom = smaller(area, barea) if mode == 1 else area + barea - inter
    return denom > 0 and inter / denom > threshold


@cuda.jit(cache=True)
def overlap_mask(boxes, threshold, mode, mask):
    """``mask (n, ceil(n/64))`` uint64 from score-sorted float64 ``boxes (n, 4)``.

    Launch with grid ``(col_blocks, col_blocks)`` and ``BLOCK`` threads. Words
    below the diagonal are left untouched (they are never read).
    """
    n = boxes.shape[0]
    row = cuda.blockIdx.y
    col = cuda.blockIdx.x
    if row > col:
        return
    t = cuda.threadIdx.x
    row_size = smaller(n - row * BLOCK, BLOCK)
    col_size = smaller(n - col * BLOCK, BLOCK)
    shared = cuda.shared.array((BLOCK, 5), dtype=float64)   # x1, y1, x2, y2, area of block col
    if t < col_size:
        j = col * BLOCK + t
        shared[t, 0] = boxes[j, 0]
        shared[t, 1] = boxes[j, 1]
        shared[t, 2] = boxes[j, 2]
        shared[t, 3] = boxes[j, 3]
        shared[t, 4] = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
    cuda.syncthreads()
    if t >= row_size:
        return
    i = row * BLOCK + t
    x1, y1, x2, y2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
    area = (x2 - x1) * (y2 - y1)
    start = t + 1 if row == col else 0                # only boxes later in the order
    bits = uint64(0)
    for k in range(start, col_size):
        if _suppresses(x1, y1, x2, y2, area, shared[k, 0], shared[k, 1], shared[k, 2], shared[k, 3],
                       shared[k, 4], threshold, mode):
            bits |= uint64(1) << uint64(k)
    mask[i, col] = bits


@cuda.jit(cache=True)
def reduce_mask(mask, n, removed, keep):
    """``keep[i] = 1`` for the kept boxes (in sorted order); launch ONE block of ``REDUCE_THREADS``.

    ``removed`` (``ceil(n/64)`` uint64 words, any content) is scratch space.
    """
    t = cuda.threadIdx.x
    col_blocks = mask.shape[1]
    for j in range(t, col_blocks, REDUCE_THREADS):
        removed[j] = 0
    for i in range(t, n, REDUCE_THREADS):
        keep[i] = 0
    cuda.syncthreads()
    for block in range(col_blocks):
        word = removed[block]             # final for this block: earlier blocks are done
        size = smaller(n - block * BLOCK, BLOCK)
        for bit in range(size):
            if (word >> uint64(bit)) & uint64(1):
                continue                  # suppressed by a kept box earlier in the order
            i = block * BLOCK + bit
            if t == 0:
                keep[i] = 1
            word |= mask[i, block]        # later boxes of this block, in registers (every thread)
            for j in range(block + 1 + t, col_blocks, REDUCE_THREADS):
                removed[j] |= mask[i, j]  # later blocks: word j belongs to one thread this round
        cuda.syncthreads()                # the next block's word is complete


# ----------------------------------------------------------------------------- host wrapper

def _reduce_mask_on_host(mask, n):
    """Step 2 of the bitmask NMS on the CPU (torchvision's way): indices into the sorted order."""
    col_blocks = mask.shape[1]
    removed = np.zeros(col_blocks, dtype=np.uint64)
    kept = []
    for block in range(col_blocks):
        word = int(removed[block])
        for bit in range(min(n - 64 * block, 64)):
            if (word >> bit) & 1:
                continue
            i = 64 * block + bit
            kept.append(i)
            word |= int(mask[i, block])
            removed[block + 1:] |= mask[i, block + 1:]
    return np.asarray(kept, dtype=np.int64)


def nms_cuda(boxes, scores, iou_threshold=0.5, mode="union", *, reduce="device"):
    """Greedy non-maximum suppression on the GPU, by the bitmask algorithm: the kept indices.

    Same result as :func:`scratchface.detection.nms.nms` (kept indices by
    decreasing score, ties in score to the lower index).

    Parameters
    ----------
    boxes : CuPy array, shape (n, 4)
        Rows ``(x1, y1, x2, y2)`` with ``x2 >= x1``, ``y2 >= y1`` (not checked here).
    scores : CuPy array, shape (n,)
    iou_threshold : float in [0, 1]
    mode : {'union', 'min'}
        Intersection over union, or over the smaller area (MTCNN).
    reduce : {'device', 'host'}
        Where step 2 runs: one CUDA block on the GPU (default), or a loop on the
        CPU after copying the ``n x ceil(n/64)`` mask back (torchvision's
        classic way; slow for many boxes, kept for comparison and teaching).

    Returns
    -------
    keep : int64 CuPy array, shape (k,)

    Notes
    -----
    The mask takes ``8 n ceil(n/64)`` bytes of GPU memory (1.25 GB for 100,000
    boxes), as in torchvision.
    """
    check_array(boxes, "boxes", ndim=2, dtype_kind="fiu")
    check_array(scores, "scores", ndim=1, dtype_kind="fiu")
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) with rows (x1, y1, x2, y2), got {tuple(boxes.shape)}")
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have one score per box ({boxes.shape[0]}), got {scores.shape[0]}")
    threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(mode, "mode", ("union", "min"))
    check_choice(reduce, "reduce", ("device", "host"))
    xp = array_module(boxes, scores)
    n = boxes.shape[0]
    if n == 0:
        return xp.empty(0, dtype=np.int64)
    order = xp.argsort(-scores.astype(np.float64), kind="stable")
    ordered = xp.ascontiguousarray(boxes[order], dtype=np.float64)
    col_blocks = (n + BLOCK - 1) // BLOCK
    mask = xp.empty((n, col_blocks), dtype=np.uint64)
    launch(overlap_mask, (col_blocks, col_blocks), BLOCK, ordered, threshold, int(mode == "min"), mask)
    if reduce == "host":
        kept = xp.asarray(_reduce_mask_on_host(to_host(mask), n))
    else:
        removed = xp.empty(col_blocks, dtype=np.uint64)
        keep = xp.empty(n, dtype=np.uint8)
        launch(reduce_mask, 1, REDUCE_THREADS, mask, n, removed, keep)
        kept = xp.flatnonzero(keep)
    return order[kept].astype(np.int64)
