"""Eigenfaces: principal component analysis of face images, written out (the baseline of face recognition).

Each image of ``H x W`` pixels is a point :math:`x_i \\in \\mathbb{R}^{HW}`.
With the mean face :math:`\\mu` and the centred data matrix
:math:`X = [x_1 - \\mu, \\ldots, x_N - \\mu]^\\top` (``N x HW``), the
principal axes are the eigenvectors of the covariance
:math:`C = X^\\top X / (N - 1)`. They are obtained here from the thin SVD
:math:`X = U \\Sigma V^\\top`: the rows of :math:`V^\\top` are the
eigenvectors ("eigenfaces") and :math:`\\lambda_k = \\sigma_k^2 / (N - 1)`
their eigenvalues. Neither forms the ``HW x HW`` covariance (10,304 x 10,304
for ORL). When there are fewer images than pixels, Turk and Pentland's trick
is faster still (``method='gram'``, the default then): diagonalise the small
``N x N`` Gram matrix :math:`X X^\\top = U \\Sigma^2 U^\\top`; each of its
eigenvectors :math:`u_k` gives an eigenface :math:`v_k = X^\\top u_k / \\sigma_k`.

A face is described by its coordinates on the first ``k`` eigenfaces,
:math:`y = V_k^\\top (x - \\mu)`, optionally whitened (divided by
:math:`\\sqrt{\\lambda_k}`); faces are compared by the distance between those
coordinates.

References
----------
Turk and Pentland, "Eigenfaces for recognition", Journal of Cognitive
Neuroscience 3(1), 1991.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_choice, check_positive_int

__all__ = ["PCA", "fit_pca", "pca_transform", "pca_reconstruct", "Eigenfaces"]


class PCA(NamedTuple):
    """A fitted principal component analysis."""
    mean: np.ndarray                #: (D,) the mean sample
    components: np.ndarray          #: (k, D) orthonormal principal axes, largest variance first
    explained_variance: np.ndarray  #: (k,) eigenvalues of the covariance (``ddof=1``), descending
    total_variance: float           #: trace of the covariance (sum of all eigenvalues)

    @property
    def explained_variance_ratio(self):
        """(k,) fraction of the total variance along each axis."""
        return self.explained_variance / self.total_variance


def _as_matrix(x, name):
    check_array(x, name, dtype_kind="fiu", finite=True)
    if x.ndim < 2:
        raise ValueError(f"{name} must be (N, D) vectors or (N, H, W) images, got shape {tuple(x.shape)}")
    return np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)


def fit_pca(x, n_components, *, method="auto"):
    """Principal axes of the rows of ``x``.

    Parameters
    ----------
    x : array, shape (N, D) or (N, H, W)
        Samples (images are flattened row by row).
    n_components : int
        ``k <= min(N, D)``.
    method : {'auto', 'svd', 'gram'}
        ``'svd'``: thin SVD of the centred data; ``'gram'``: eigen-decomposition
        of the ``N x N`` Gram matrix (Turk and Pentland); ``'auto'``: ``'gram'``
        when ``D > N``, else ``'svd'``. Both give the same axes (up to
        rounding); for the axes of tiny eigenvalues the SVD is more accurate.

    Returns
    -------
    PCA

    Notes
    -----
    Each axis's sign is fixed so that its largest-magnitude entry is positive
    (an SVD leaves the sign free; this makes results reproducible).
    """
    x = _as_matrix(x, "x")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"fit_pca needs at least 2 samples, got {n}")
    k = check_positive_int(n_components, "n_components")
    if k > min(n, d):
        raise ValueError(f"n_components must be at most min(N, D) = {min(n, d)}, got {k}")
    check_choice(method, "method", ("auto", "svd", "gram"))
    if method == "auto":
        method = "gram" if d > n else "svd"
    mean = x.mean(axis=0)
    centred = x - mean
    if method == "svd":
        _, sigma, vt = np.linalg.svd(centred, full_matrices=False)
        vt = vt[:k]
    else:
        evals, u = np.linalg.eigh(centred @ centred.T)        # ascending
        evals, u = np.maximum(evals[::-1], 0), u[:, ::-1]
        sigma = np.sqrt(evals)
        vt = (centred.T @ u[:, :k]).T / np.maximum(sigma[:k], np.finfo(np.float64).tiny)[:, None]
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt), axis=1)])
    vt = vt * signs[:, None]
    variance = sigma ** 2 / (n - 1)
    return PCA(mean, vt, variance[:k], float(variance.sum()))


def pca_transform(pca, x, *, whiten=False):
    """Coordinates :math:`y = V_k^\\top (x - \\mu)` of each row (divided by :math:`\\sqrt{\\lambda}` with ``whiten``).

    Returns
    -------
    y : float64 array, shape (N, k)
    """
    x = _as_matrix(x, "x")
    if x.shape[1] != pca.mean.shape[0]:
        raise ValueError(f"x has {x.shape[1]} values per sample, the PCA was fitted on {pca.mean.shape[0]}")
    y = (x - pca.mean) @ pca.components.T
    if whiten:
        y = y / np.sqrt(np.maximum(pca.explained_variance, np.finfo(np.float64).tiny))
    return y


def pca_reconstruct(pca, y, *, whiten=False):
    """Back from coordinates to samples: :math:`\\hat x = \\mu + V_k y`; shape (N, D)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != pca.components.shape[0]:
        raise ValueError(f"y must have shape (N, {pca.components.shape[0]}), got {y.shape}")
    if whiten:
        y = y * np.sqrt(pca.explained_variance)
    return pca.mean + y @ pca.components


class Eigenfaces:
    """The eigenfaces face descriptor: fit on training faces, embed any face.

    Parameters
    ----------
    n_components : int
        Number of eigenfaces kept.
    whiten : bool
        Divide each coordinate by the square root of its eigenvalue (every
        axis then counts alike in the distance; often better for
        verification, and the first few axes, which mostly carry lighting,
        lose their weight).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> faces = rng.random((20, 8, 6))
    >>> model = Eigenfaces(5).fit(faces)
    >>> model.embed(faces[:3]).shape
    (3, 5)
    """

    def __init__(self, n_components, *, whiten=False):
        self.n_components = check_positive_int(n_components, "n_components")
        self.whiten = bool(whiten)
        self.pca = None
        self.image_shape = None

    def fit(self, images):
        """Fit the PCA on ``images`` (N, H, W) or (N, D); returns self."""
        self.pca = fit_pca(images, self.n_components)
        self.image_shape = tuple(images.shape[1:])
        return self

    def _check_fitted(self):
        if self.pca is None:
            raise RuntimeError("Eigenfaces is not fitted: call fit(training_images) first")

    def embed(self, images):
        """Coordinates on the eigenfaces, shape (N, n_components), float64."""
        self._check_fitted()
        return pca_transform(self.pca, images, whiten=self.whiten)

    @property
    def eigenfaces(self):
        """The principal axes as images, shape (n_components, H, W) (or (k, D) for vectors)."""
        self._check_fitted()
        return self.pca.components.reshape((-1,) + self.image_shape)

    @property
    def mean_face(self):
        """The mean training image, shape (H, W)."""
        self._check_fitted()
        return self.pca.mean.reshape(self.image_shape)
