"""scratchface: face detection and recognition from scratch, for teaching.

Importing scratchface is fast: it imports NumPy and nothing heavy. Numba
kernels compile the first time they run (and are cached on disk); CuPy, SciPy,
scikit-image and matplotlib are imported by the functions that need them.

Subpackages follow the lectures:

- ``scratchface.layers``   readable forward / backward pairs, one concept a module
- ``scratchface.kernels``  the fast (Numba, CUDA) versions of the hot layers
- ``scratchface.nn``       modules, optimisers, schedules, training, summary tables
- ``scratchface.losses``   triplet, margin (SphereFace, CosFace, ArcFace), contrastive...
- ``scratchface.models``   FaceNet NN1/NN2, VGG-Face, DeepFace, the MTCNN nets
- ``scratchface.detection``  HOG, SVM, NMS, sliding windows, MTCNN
- ``scratchface.recognition`` distances, verification, identification, clustering
- ``scratchface.gradcheck`` finite-difference checks shared by tests and students
- ``scratchface.backend``  NumPy or CuPy
"""
__version__ = "0.1.0"

from . import backend  # noqa: F401  (light: NumPy only)
