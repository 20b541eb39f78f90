"""scratchface: face detection and recognition from scratch, for teaching.

Importing scratchface is fast: it imports NumPy and nothing heavy. Numba
kernels compile the first time they run (and are cached on disk); CuPy, SciPy,
scikit-image and matplotlib are imported by the functions that need them.
Each subpackage exports its public names (``from scratchface.detection import
detect_faces, nms``), importing a module the first time one of its names is used.

The layers of the package, lowest first; a module imports from its own layer and the ones
below it, never from above (``tests/test_layout.py`` checks it):

- ``_validation``, ``backend``, ``image``   argument checks and seeds; NumPy or CuPy; reading images
- ``kernels``      the fast paths: Numba (CPU) and CUDA kernels with their host wrappers, by operation
- ``gradcheck``    finite-difference checks shared by tests, the CLI and students
- ``layers``       readable forward / backward pairs, one concept a module; ``distances`` (pairwise, top-k);
                   ``data`` (face sets, weight files, the atomic writer)
- ``nn``           modules, optimisers, schedules, training, summary tables
- ``losses``       every differentiable loss (triplet, margin, MTCNN...)
- ``models``       FaceNet NN1/NN2, VGG-Face, DeepFace, the MTCNN, Faceness, ORL and dlib ResNet nets
- ``detection``    HOG, SVM, pyramid, NMS, MTCNN, DDFD, Faceness, scale-friendly; ``Detections``
- ``recognition``  the pipeline, verification, identification, clustering, the ORL embeddings
- ``viz``          pictures (matplotlib, imported when one is drawn)
- ``check``, ``cli``   the assignment checker and grader; the ``scratchface`` command

Training runs and the commands that print a paper's table live outside the
package, in the repository's ``experiments/``; the figures are in ``docs/results.md``.
"""
__version__ = "0.1.0"

from . import backend  # noqa: F401  (light: NumPy only)
