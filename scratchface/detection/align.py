"""Face alignment: a five-point similarity transform onto a template, then warping.

Recognition networks want every face in the same place: eyes level, at fixed
pixels. Given the five landmarks a detector finds (eyes, nose, mouth corners),
:func:`umeyama` finds the rotation, uniform scale and translation that move
them closest (least squares) to a template's five points; :func:`warp_affine`
then resamples the image through that transform.

The standard template is ArcFace's (insightface) for 112x112 crops
(:data:`ARCFACE_TEMPLATE`); :func:`face_template` rescales it to any square size
with a margin around the face. :func:`landmarks_68_to_5` turns dlib's 68 points
into the detector's five.

Coordinates are ``(x, y)`` = (column, row) with integer values at pixel centres
(the convention of scikit-image's ``warp`` and OpenCV's ``warpAffine``).

References
----------
S. Umeyama, "Least-squares estimation of transformation parameters between
two point patterns", IEEE TPAMI 13(4), 1991 (eqs. 34-43).
J. Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face
Recognition", CVPR 2019 (the 112x112 alignment of insightface).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_array, check_in_range, check_positive_int
from ..image import as_rgb
from .pyramid import area_resize

__all__ = [
    "ARCFACE_TEMPLATE",
    "align_face",
    "align_faces",
    "crop_square",
    "estimate_alignment",
    "face_template",
    "landmarks_68_to_5",
    "umeyama",
    "warp_affine",
    "warp_affine_reference",
]

#: Five points (x, y) of insightface's ArcFace template in a 112x112 crop:
#: left eye, right eye, nose tip, left and right mouth corner (as seen in the image).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
ARCFACE_SIZE = 112


def _check_points(points, name):
    points = np.asarray(points) if isinstance(points, (list, tuple)) else points
    check_array(points, name, ndim=2, dtype_kind="fiu", finite=True)
    if points.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2) with rows (x, y), got {points.shape}")
    return points.astype(np.float64)


def landmarks_68_to_5(points):
    """iBUG 68 points (dlib's) to MTCNN's 5: eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54).

    "Left" is the eye on the left of the image, as in MTCNN's order.

    Parameters
    ----------
    points : array, shape (68, 2) or (n, 68, 2), (x, y)

    Returns
    -------
    array, shape (5, 2) or (n, 5, 2)
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-2:] != (68, 2):
        raise ValueError(f"points must have shape (..., 68, 2), got {p.shape}")
    return np.stack([p[..., 36:42, :].mean(-2), p[..., 42:48, :].mean(-2), p[..., 30, :],
                     p[..., 48, :], p[..., 54, :]], axis=-2)


def umeyama(src, dst, *, estimate_scale=True):
    """Least-squares similarity transform taking points ``src`` to ``dst`` (Umeyama 1991).

    Finds rotation ``R``, scale ``c`` and translation ``t`` minimising
    :math:`\\sum_i \\| dst_i - (c R\\, src_i + t) \\|^2`.

    Parameters
    ----------
    src, dst : arrays, shape (n, 2)
        Corresponding points (x, y), n >= 2.
    estimate_scale : bool
        False fixes ``c = 1`` (a rigid transform).

    Returns
    -------
    matrix : float64 array, shape (3, 3)
        Homogeneous ``[[c R, t], [0, 0, 1]]``: ``dst ~ matrix @ [x, y, 1]``.

    Notes
    -----
    With centred points :math:`\\tilde s_i = s_i - \\mu_s`, :math:`\\tilde d_i = d_i - \\mu_d`,
    the covariance :math:`\\Sigma = \\frac1n \\sum_i \\tilde d_i \\tilde s_i^T = U D V^T` (SVD),
    :math:`S = \\mathrm{diag}(1, \\ldots, 1, \\pm 1)` with -1 when
    :math:`\\det \\Sigma < 0` (no reflections), then

    .. math:: R = U S V^T,\\quad c = \\frac{\\mathrm{tr}(D S)}{\\sigma_s^2},\\quad
              t = \\mu_d - c R \\mu_s,

    :math:`\\sigma_s^2 = \\frac1n \\sum_i \\|\\tilde s_i\\|^2` (Umeyama eqs. 40-42). When
    :math:`\\Sigma` has rank ``dim - 1`` the sign is taken from
    :math:`\\det U \\det V` instead (eq. 43).
    """
    src = _check_points(src, "src")
    dst = _check_points(dst, "dst")
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must have the same shape, got {src.shape} and {dst.shape}")
    n, dim = src.shape
    if n < 2:
        raise ValueError(f"src and dst need at least 2 points for a similarity transform, got {n}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    sigma = dst_c.T @ src_c / n
    u, d, vt = np.linalg.svd(sigma)
    signs = np.ones(dim)
    rank = np.linalg.matrix_rank(sigma)
    if rank == 0:
        raise ValueError("src or dst points are all identical: the transform is undetermined")
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            signs[-1] = -1.0
    elif np.linalg.det(sigma) < 0:
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = (d @ signs) / src_c.var(axis=0).sum() if estimate_scale else 1.0
    matrix = np.eye(dim + 1)
    matrix[:dim, :dim] = scale * rotation
    matrix[:dim, dim] = dst_mean - scale * rotation @ src_mean
    return matrix


def face_template(size=ARCFACE_SIZE, margin=0.0):
    """The ArcFace five-point template for a ``size x size`` crop with a margin.

    Parameters
    ----------
    size : int
        Side of the square output, pixels.
    margin : float in [0, 0.5)
        Fraction of ``size`` left around the 112x112 ArcFace face box on each side:
        ``p = size (margin + (1 - 2 margin) p_112 / 112)``. ``size=112, margin=0``
        gives :data:`ARCFACE_TEMPLATE` exactly.

    Returns
    -------
    template : float64 array, shape (5, 2)
    """
    size = check_positive_int(size, "size")
    margin = check_in_range(margin, "margin", 0.0, 0.5, inclusive=(True, False))
    return size * margin + (size * (1.0 - 2.0 * margin) / ARCFACE_SIZE) * ARCFACE_TEMPLATE


def estimate_alignment(landmarks, size=ARCFACE_SIZE, margin=0.0):
    """The 3x3 similarity matrix taking a face's five landmarks to :func:`face_template`."""
    landmarks = _check_points(landmarks, "landmarks")
    if landmarks.shape != (5, 2):
        raise ValueError(f"landmarks must be five (x, y) points, shape (5, 2), got {landmarks.shape}")
    return umeyama(landmarks, face_template(size, margin))


def _check_matrix(matrix):
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape not in ((2, 3), (3, 3)) or not np.isfinite(matrix).all():
        raise ValueError(f"matrix must be a finite 2x3 or 3x3 affine matrix, got shape {matrix.shape}")
    if matrix.shape == (2, 3):
        matrix = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if abs(np.linalg.det(matrix[:2, :2])) < 1e-12:
        raise ValueError("matrix is singular: it cannot be inverted for warping")
    return matrix


def _source_coordinates(matrix, out_h, out_w):
    """Where each output pixel comes from: inverse-map the output grid (x, y) through ``matrix``."""
    inverse = np.linalg.inv(matrix)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return src_x, src_y


def warp_affine_reference(image, matrix, size, fill=0.0):
    """Bilinear warping, the readable loop over output pixels (see :func:`warp_affine`)."""
    image = np.asarray(image, dtype=np.float64)
    image = image[:, :, None] if image.ndim == 2 else image
    matrix = _check_matrix(matrix)
    out_h, out_w = (size, size) if np.isscalar(size) else size
    inverse = np.linalg.inv(matrix)
    height, width = image.shape[:2]
    out = np.full((out_h, out_w, image.shape[2]), fill, dtype=np.float64)
    for row in range(out_h):
        for col in range(out_w):
            x, y, _ = inverse @ np.array([col, row, 1.0])
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - x0, y - y0
            value = np.zeros(image.shape[2])
            for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                                   (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
                yy, xx = y0 + dy, x0 + dx
                value += weight * (image[yy, xx] if 0 <= yy < height and 0 <= xx < width else fill)
            out[row, col] = value
    return out


def warp_affine(image, matrix, size, fill=0.0):
    """Resample ``image`` through an affine ``matrix`` (input -> output coordinates), bilinear.

    Parameters
    ----------
    image : array, shape (H, W) or (H, W, C)
    matrix : array, shape (3, 3) or (2, 3)
        Maps input pixel (x, y) to output pixel; each output pixel samples the
        input at ``inverse(matrix) @ (x_out, y_out, 1)``.
    size : int or (out_h, out_w)
    fill : float
        Value of pixels that fall outside the input (the four bilinear neighbours
        outside the image count as ``fill``, as scikit-image's ``mode='constant'``).

    Returns
    -------
    out : float32 array, shape (out_h, out_w[, C])
    """
    arr = np.asarray(image)
    check_array(arr, "image", ndim=(2, 3), dtype_kind="buif", finite=True)
    gray = arr.ndim == 2
    arr = arr[:, :, None] if gray else arr
    matrix = _check_matrix(matrix)
    out_h, out_w = (check_positive_int(size, "size"),) * 2 if np.isscalar(size) else (
        check_positive_int(size[0], "size"), check_positive_int(size[1], "size"))
    height, width = arr.shape[:2]
    src_x, src_y = _source_coordinates(matrix, out_h, out_w)
    x0, y0 = np.floor(src_x).astype(np.int64), np.floor(src_y).astype(np.int64)
    fx, fy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    padded = np.pad(arr.astype(np.float64), ((1, 1), (1, 1), (0, 0)), constant_values=fill)

    def pixel(yy, xx):  # neighbours outside the image read the fill value from the padding
        return padded[np.clip(yy + 1, 0, height + 1), np.clip(xx + 1, 0, width + 1)]

    out = ((1 - fy) * ((1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1))
           + fy * ((1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1)))
    out = out.astype(np.float32)
    return out[:, :, 0] if gray else out


def align_face(image, landmarks, size=ARCFACE_SIZE, margin=0.0):
    """Warp one face onto the five-point template: an RGB float32 (size, size, 3) crop, 0..255."""
    matrix = estimate_alignment(landmarks, size, margin)
    return warp_affine(as_rgb(image), matrix, size)


def align_faces(image, landmarks, size=ARCFACE_SIZE, margin=0.0):
    """:func:`align_face` for every face: landmarks (n, 5, 2) -> crops (n, size, size, 3) float32."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must have shape (n, 5, 2), got {landmarks.shape}")
    size = check_positive_int(size, "size")
    rgb = as_rgb(image)
    crops = np.zeros((len(landmarks), size, size, 3), np.float32)
    for k, points in enumerate(landmarks):
        crops[k] = warp_affine(rgb, estimate_alignment(points, size, margin), size)
    return crops


def crop_square(image, box, size=160, margin=0):
    """Cut a detection box plus a margin out of the image and resize it to ``size x size``.

    facenet-pytorch's ``extract_face``: ``margin`` is in pixels *of the output*,
    so the box grows by ``margin * box_side / (size - margin)`` in total; the
    crop is clipped to the image and area-resized (not warped; no rotation).

    Returns
    -------
    face : float32 array, shape (size, size, 3), 0..255
    """
    size = check_positive_int(size, "size")
    if not 0 <= margin < size:
        raise ValueError(f"margin must be in [0, size), got {margin}")
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box}")
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    grow_x = margin * (box[2] - box[0]) / (size - margin)
    grow_y = margin * (box[3] - box[1]) / (size - margin)
    x1, y1 = int(max(box[0] - grow_x / 2, 0)), int(max(box[1] - grow_y / 2, 0))
    x2, y2 = int(min(box[2] + grow_x / 2, width)), int(min(box[3] + grow_y / 2, height))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {box.tolist()} lies outside the {width}x{height} image")
    return area_resize(rgb[y1:y2, x1:x2], (size, size))
