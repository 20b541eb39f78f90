"""DeepID's multi-patch embedding on ORL: one small network per face region and scale, distances averaged.

Sun, Wang and Tang (DeepID, CVPR 2014) do not train one network on the whole
face: they train one ConvNet per **patch** (10 regions x 3 scales x grey/RGB),
each on its own crop, and concatenate the 60 networks' features. One network
overfits its training identities in its own way; networks that look at
different parts of the face at different resolutions make *different* mistakes
on new people, and combining them cancels part of those mistakes (their
single patch: 96.05% on LFW with the joint Bayesian; 60 patches: 97.45%).

Here the members are :func:`scratchface.models.orl_nets.build_patch_net`'s
networks, trained as the whole-face ones (``python -m experiments.patch_ensemble``);
only the crop changes (:data:`PATCHES`, in the ORL image widened to 112 x 96
by repeating its edge columns; ``factor`` is the block average that lowers
the resolution):

=========  ====================  ======  ================================
patch      rows x cols (full)    factor  network input
=========  ====================  ======  ================================
face       0-112 x 0-96          2       56 x 48, the whole image
upper      8-72 x 0-96           2       32 x 48, brows, eyes, nose
lower      48-112 x 16-80        2       32 x 32, nose, mouth, chin
coarse     0-112 x 0-96          4       28 x 24, the whole image, blurred
inner      24-88 x 16-80         1       64 x 64, the inner face at full resolution
=========  ====================  ======  ================================

Every patch is centred left to right, so the mirror image of a patch is the
patch of the mirror image (flip augmentation and test-time flips stay valid).
The five were fixed before any was trained (five more, tried alone afterwards
at the cross-validation of docs/results.md, were all weaker and are not used: the eyes
or the nose at full resolution, the top, middle or centre of the face at
half resolution); an ensemble is all five patches x seeds ``0`` and ``1``
(:data:`SHIPPED`), ten networks.
The embedding (:func:`embed_patch_ensemble`) is each member's L2-normalised
embedding (mirror image added), concatenated and renormalised: the squared
distance between two faces is the mean of the members' squared distances.

Training, the cross-validation that chose the patches and the settings, and
the results (the shipped ArcFace ensemble: 93.1% on people 31-40, and what
looked at those people): ``python -m experiments.patch_ensemble`` and
``docs/results.md``, section Recognition.

References
----------
Sun, Wang and Tang, "Deep learning face representation from predicting 10,000 classes", CVPR 2014 (DeepID).
Sun, Chen, Wang and Tang, "Deep learning face representation by joint identification-verification",
NIPS 2014 (DeepID2: patches chosen greedily from 400).
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from .. import nn
from .._validation import check_choice
from ..data.orl import ORL_TEMPLATE
from ..data.weights import read_verified_npz, resolve_weights_path, write_reproducible_npz
from ..data.yale import load_yale_faces
from ..detection.align import umeyama
from ..models.orl_nets import build_patch_net
from .augment import warp_edge
from ..distances import normalize_rows
from .orl_embedding import embed_with_net
from .orl_preprocessing import orl_landmarks

__all__ = ["FRAME", "PATCHES", "SHIPPED", "crop_patch", "embed_patch_ensemble", "load_patch_ensemble",
           "patch_ensemble_path", "patch_spec", "save_patch_ensemble", "yale_in_orl_frame"]

FRAME = (112, 96)  #: the ORL image (112 x 92) with its first and last columns repeated twice
#: ``name: (top, left, height, width, factor)`` in the :data:`FRAME`; the network sees the
#: region averaged over ``factor x factor`` blocks, standardised per image.
PATCHES = {
    "face": (0, 0, 112, 96, 2),
    "upper": (8, 0, 64, 96, 2),
    "lower": (48, 16, 64, 64, 2),
    "coarse": (0, 0, 112, 96, 4),
    "inner": (24, 16, 64, 64, 1),
}
#: The shipped ensemble (ArcFace; the triplet one did not beat the shipped triplet networks and does
#: not ship): its loss, members and the SHA-256 of ``scratchface/data/orl_patches_arcface.npz``.
SHIPPED = {"loss": "arcface", "patches": tuple(PATCHES), "seeds": (0, 1),
           "sha256": "f9bba26a07f687304b6f75325604f248b7f93bb11f30e814a9ac993ceaa780d2"}
_DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / "data"


def patch_spec(patch):
    """``(top, left, height, width, factor)`` of a patch name or a tuple, checked against the frame."""
    if isinstance(patch, str):
        check_choice(patch, "patch", tuple(PATCHES))
        return PATCHES[patch]
    try:
        top, left, height, width, factor = (int(v) for v in patch)
    except (TypeError, ValueError):
        raise TypeError(f"patch must be a name in {sorted(PATCHES)} or (top, left, height, width, factor), "
                        f"got {patch!r}") from None
    if (min(top, left) < 0 or factor < 1 or height < factor or width < factor or top + height > FRAME[0]
            or left + width > FRAME[1] or height % factor or width % factor):
        raise ValueError(f"patch {patch!r} must lie in the {FRAME[0]} x {FRAME[1]} frame with height and "
                         f"width multiples of factor >= 1")
    return top, left, height, width, factor


def crop_patch(images, patch):
    """One patch of ORL-sized grey images, block-averaged and standardised.

    Parameters
    ----------
    images : uint8 or float array, shape (N, 112, 92)
        uint8 is read as 0..255, floats as 0..1.
    patch : str or (top, left, height, width, factor)
        A name in :data:`PATCHES`, or a region of the 112 x 96 :data:`FRAME`.

    Returns
    -------
    float32 array, shape (N, 1, height / factor, width / factor)
        :math:`x_{ij} = \\frac{1}{f^2} \\sum_{a, b < f} I_{f i + a,\\, f j + b}`
        over the region, then :math:`(x - \\bar x) / \\max(\\sigma, 10^{-3})` per image.
    """
    top, left, height, width, factor = patch_spec(patch)
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (FRAME[0], FRAME[1] - 4):
        raise ValueError(f"images must have shape (N, 112, 92) (ORL), got {images.shape}")
    x = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    x = np.pad(x, ((0, 0), (0, 0), (2, 2)), mode="edge")[:, top:top + height, left:left + width]
    n = len(x)
    x = x.reshape(n, height // factor, factor, width // factor, factor).mean(axis=(2, 4))
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-3)
    return ((x - mean) / std)[:, None].astype(np.float32)


def yale_in_orl_frame(path=None, *, landmarks=None):
    """The Yale faces warped into ORL's 112 x 92 framing: extra training identities (``--add-yale``).

    Each photo (243 x 320) is warped by the similarity transform (Umeyama) that
    takes MTCNN's five points closest to :data:`~scratchface.data.orl.ORL_TEMPLATE`
    (moved 2 pixels left: that template lives in the 112 x 96 frame), so that its eyes,
    nose and mouth sit where ORL's do. Photos where MTCNN finds no face are left out.

    Parameters
    ----------
    path : path-like, optional
        The ``yalefaces`` folder or its parent (default ``$SCRATCHFACE_DATA``).
    landmarks : float array, shape (N, 5, 2), optional
        Precomputed :func:`~scratchface.recognition.orl_preprocessing.orl_landmarks` of the photos.

    Returns
    -------
    images : float32 array, shape (M, 112, 92), 0..1
    labels : int array, shape (M,)
        Yale subject numbers 1..15.
    """
    yale = load_yale_faces(path)
    points = orl_landmarks(yale.images) if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    if points.shape != (len(yale.images), 5, 2):
        raise ValueError(f"landmarks must have shape {(len(yale.images), 5, 2)}, got {points.shape}")
    found = np.flatnonzero(~np.isnan(points).any(axis=(1, 2)))
    template = ORL_TEMPLATE - np.array([(FRAME[1] - 92) / 2, 0.0])
    images = [warp_edge(yale.images[i].astype(np.float32) / 255.0, umeyama(points[i], template),
                            (FRAME[0], FRAME[1] - 4)) for i in found]
    return np.asarray(images, dtype=np.float32), np.asarray(yale.labels)[found]


def embed_patch_ensemble(members, images, *, flip=True):
    """The ensemble's L2-normalised embedding of raw ORL images.

    Each member embeds its own patch (:func:`~scratchface.recognition.orl_embedding.embed_with_net`,
    mirror image added); the unit embeddings :math:`e_k` of the :math:`K` members are
    concatenated and divided by :math:`\\sqrt K`, so that
    :math:`\\lVert e - e' \\rVert^2 = \\frac1K \\sum_k \\lVert e_k - e'_k \\rVert^2`.

    Parameters
    ----------
    members : list of (patch, seed, Module)
        From :func:`load_patch_ensemble` (or trained by ``experiments.patch_ensemble``).
    images : array, shape (N, 112, 92)

    Returns
    -------
    float64 array, shape (N, sum of the members' embedding sizes)
    """
    if not isinstance(members, (list, tuple)) or not members:
        raise TypeError("members must be a non-empty list of (patch, seed, network)")
    parts = []
    for i, member in enumerate(members):
        if not (isinstance(member, tuple) and len(member) == 3 and isinstance(member[2], nn.Module)):
            raise TypeError(f"members[{i}] must be a (patch, seed, network) tuple, got {type(member).__name__}")
        parts.append(embed_with_net(member[2], crop_patch(images, member[0]), flip=flip))
    return normalize_rows(np.concatenate(parts, axis=1))


# ----------------------------------------------------------------------------- shipped weights

def patch_ensemble_path() -> pathlib.Path:
    """``scratchface/data/orl_patches_arcface.npz``: every member of the shipped (ArcFace) ensemble."""
    return _DATA_DIR / f"orl_patches_{SHIPPED['loss']}.npz"


def _key(patch, seed):
    if not isinstance(patch, str):
        raise ValueError("only ensembles of named patches (PATCHES) can be saved")
    return f"{patch}.seed{seed}"


def save_patch_ensemble(members, path):
    """All members' parameters and buffers in one float16 ``.npz`` (keys ``{patch}.seed{s}/{name}``)."""
    state = {f"{_key(p, s)}/{name}": np.asarray(a, dtype=np.float16)
             for p, s, net in members for name, a in net.state_dict().items()}
    path = os.fspath(path)
    write_reproducible_npz(state, path, deflate=True)
    return path


def load_patch_ensemble(path=None, *, patches=None, seeds=None, sha256="default"):
    """The shipped ArcFace patch ensemble (or one saved by :func:`save_patch_ensemble`).

    Parameters
    ----------
    path : path-like, optional
        Default :func:`patch_ensemble_path`, checked against ``SHIPPED['sha256']``.
    patches, seeds : sequences, optional
        The members to read (default ``SHIPPED``'s: all five patches, seeds 0 and 1).
    sha256 : 'default', str or None
        As :func:`~scratchface.recognition.orl_embedding.load_pretrained`.

    Returns
    -------
    list of (patch, seed, Module)
        For :func:`embed_patch_ensemble`.
    """
    patches = SHIPPED["patches"] if patches is None else tuple(patches)
    seeds = SHIPPED["seeds"] if seeds is None else tuple(seeds)
    what = "ORL patch ensemble"
    file, expected = resolve_weights_path(path, str(patch_ensemble_path()), SHIPPED["sha256"], sha256, what)
    state = read_verified_npz(file, expected, what=what, remedy=(
        "Reinstall scratchface, or retrain with 'python -m experiments.patch_ensemble --data DIR "
        "--loss arcface --jobs 2 --out shipped'"))
    members = []
    for patch in patches:
        top, left, height, width, factor = patch_spec(patch)
        for seed in seeds:
            prefix = _key(patch, seed) + "/"
            mine = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not mine:
                raise KeyError(f"{file} holds no member {prefix[:-1]!r}")
            net = build_patch_net((height // factor, width // factor), rng=0)
            net.load_state_dict(mine)
            members.append((patch, seed, net.eval()))
    return members
