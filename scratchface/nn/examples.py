"""End to end on real images: a small CNN that tells faces from non-faces (scikit-image's ``lfw_subset``).

``skimage.data.lfw_subset()`` ships with scikit-image: 200 grey 25x25 images,
the first 100 faces from Labeled Faces in the Wild, the last 100 non-face
patches. :func:`train_lfw_subset_cnn` splits them with a seeded generator
(70 + 70 for training, 30 + 30 held out), builds::

    conv 3x3 1->8 (pad 1) - ReLU - max pool 2x2      25x25 -> 12x12
    conv 3x3 8->16 (pad 1) - ReLU - max pool 2x2     12x12 -> 6x6
    flatten - dense 576 -> 2

from :mod:`scratchface.nn` modules and trains it with Adam and softmax
cross-entropy; how well and how fast: ``docs/results.md``, section Recognition.
"""
from __future__ import annotations

import time

import numpy as np

from .._validation import as_generator
from .blocks import Sequential
from .layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from .optim import Adam
from .schedules import CosineSchedule
from .summary import print_summary
from .train import evaluate, fit

__all__ = ["load_lfw_subset", "lfw_subset_cnn", "train_lfw_subset_cnn"]


def load_lfw_subset(seed=0, n_test_per_class=30, dtype=np.float32):
    """The ``lfw_subset`` images and labels, split into training and held-out sets.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seeds the split.
    n_test_per_class : int
        Held out from each class (30 -> 140 training / 60 held-out images).
    dtype : float dtype

    Returns
    -------
    x_train : array, shape (N_train, 1, 25, 25)
        Standardised with the training set's mean and standard deviation.
    y_train : int64 array, shape (N_train,)
        1 for a face, 0 for a non-face.
    x_test, y_test : arrays, shapes (N_test, 1, 25, 25) and (N_test,)
    """
    from skimage.data import lfw_subset  # heavy: scikit-image, only when the images are loaded
    images = lfw_subset()                                     # (200, 25, 25) in [0, 1]
    labels = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]
    rng = as_generator(seed, allow_none=True)
    test = np.concatenate([rng.permutation(100)[:n_test_per_class],
                           100 + rng.permutation(100)[:n_test_per_class]])
    is_test = np.zeros(200, bool)
    is_test[test] = True
    x = images[:, None].astype(np.float64)
    mean, std = x[~is_test].mean(), x[~is_test].std()
    x = ((x - mean) / std).astype(dtype)
    return x[~is_test], labels[~is_test], x[is_test], labels[is_test]


def lfw_subset_cnn(seed=0, dtype=np.float32):
    """The two-conv CNN of this module, initialised from ``seed``."""
    rng = as_generator(seed, allow_none=True)
    return Sequential({
        "conv1": Conv2d(1, 8, 3, padding=1, rng=rng, dtype=dtype), "relu1": ReLU(), "pool1": MaxPool2d(2),
        "conv2": Conv2d(8, 16, 3, padding=1, rng=rng, dtype=dtype), "relu2": ReLU(), "pool2": MaxPool2d(2),
        "flatten": Flatten(), "fc": Dense(16 * 6 * 6, 2, init="xavier_normal", rng=rng, dtype=dtype),
    })


def train_lfw_subset_cnn(seed=0, epochs=8, batch_size=16, lr=3e-3, verbose=True):
    """Train :func:`lfw_subset_cnn` on the ``lfw_subset`` faces / non-faces; report held-out accuracy.

    Parameters
    ----------
    seed : int
        Seeds the split, the initial weights and the batch order.
    epochs, batch_size : int
    lr : float
        Adam's learning rate, annealed to 0 by a cosine schedule over the epochs.
    verbose : bool
        Print the model summary, a progress bar and per-epoch metrics.

    Returns
    -------
    model : Sequential
        Trained, in eval mode.
    history : dict
        As returned by :func:`scratchface.nn.fit` (``'val_accuracy'`` is the held-out accuracy per epoch),
        plus ``'seconds'``, the total training time.
    test_accuracy : float
        Held-out accuracy after the last epoch.
    """
    x_train, y_train, x_test, y_test = load_lfw_subset(seed)
    model = lfw_subset_cnn(seed)
    optimizer = Adam(model.parameters(), lr=lr)
    schedule = CosineSchedule(optimizer, total_steps=epochs)
    if verbose:
        print_summary(model, x_train.shape[1:])

    def log(epoch, m):
        print(f"epoch {epoch:2d}  loss {m['loss']:.4f}  train acc {m['accuracy']:.3f}  "
              f"held-out acc {m['val_accuracy']:.3f}  ({m['time']:.2f} s)")

    start = time.perf_counter()
    history = fit(model, optimizer, x_train, y_train, epochs=epochs, batch_size=batch_size, rng=seed,
                  x_val=x_test, y_val=y_test, schedule=schedule, progress=verbose, log=log if verbose else None)
    history["seconds"] = time.perf_counter() - start
    _, test_accuracy = evaluate(model, x_test, y_test)
    if verbose:
        print(f"held-out accuracy {test_accuracy:.3f} on {len(y_test)} images; "
              f"trained on {len(y_train)} in {history['seconds']:.1f} s")
    return model, history, test_accuracy
