"""HOG of a 512 x 512 RGB image, default parameters: scratchface (Numba) vs scikit-image and OpenCV.

Usage::

    python benchmarks/bench_hog.py                 # astronaut, 512 x 512 x 3 uint8
    python benchmarks/bench_hog.py --size 1024 --repeat 5 --gray

Both run in the same process on the same image with
``orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
block_norm='L2-Hys'`` (``channel_axis=-1`` for colour); the outputs must agree
to 1e-6. The readable NumPy reference (``impl='reference'``) is timed too. The
first Numba call (compilation, or loading the on-disk cache) is reported apart.

OpenCV's ``cv2.HOGDescriptor`` (``pip install "opencv-python-headless<5"``, the
``bench`` extra; 5.x dropped it), when importable, is timed as the speed peer
with the same cells (8 x 8), blocks (3 x 3 cells, stride one cell), 9 bins and
L2-Hys over the whole image as one window; its descriptor differs in details
(trilinear votes, a Gaussian block window), so only its time is compared.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from scratchface.detection.hog import hog
from _timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)




def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs (default 5)")
    parser.add_argument("--gray", action="store_true", help="gray image instead of RGB")
    args = parser.parse_args(argv)

    from skimage import data, transform
    from skimage.feature import hog as sk_hog

    image = data.astronaut()
    if args.size != 512:
        image = (transform.resize(image, (args.size, args.size)) * 255).astype(np.uint8)
    channel_axis = -1
    if args.gray:
        image = image @ np.array([0.2125, 0.7154, 0.0721])
        channel_axis = None

    t = time.perf_counter()
    hog(image[:64, :64], channel_axis=channel_axis)
    first_call = time.perf_counter() - t

    t_sk, f_sk = best_of(lambda: sk_hog(image, channel_axis=channel_axis), args.repeat)
    t_ref, f_ref = best_of(lambda: hog(image, channel_axis=channel_axis, impl="reference"), max(1, args.repeat // 2))
    t_nb, f_nb = best_of(lambda: hog(image, channel_axis=channel_axis, impl="numba"), args.repeat)
    err = max(np.abs(f_nb - f_sk).max(), np.abs(f_ref - f_sk).max())
    rows = [("skimage.feature.hog", t_sk), ("scratchface reference (NumPy)", t_ref)]
    try:
        import cv2
    except ImportError:
        print("OpenCV not installed (pip install 'opencv-python-headless<5'): no OpenCV row")
    else:
        h, w = image.shape[:2]
        cv_hog = cv2.HOGDescriptor((w // 8 * 8, h // 8 * 8), (24, 24), (8, 8), (8, 8), 9)
        cv_image = np.ascontiguousarray(image[:h // 8 * 8, :w // 8 * 8]).astype(np.uint8)
        t_cv, _ = best_of(lambda: cv_hog.compute(cv_image), args.repeat)
        rows.append((f"OpenCV {cv2.__version__} HOGDescriptor", t_cv))
    if err > 1e-6:
        raise SystemExit(f"outputs differ from scikit-image by {err:.2e}")

    print(f"image {image.shape} {image.dtype}, {f_nb.size} features, max |difference| "
          f"to scikit-image {err:.1e}")
    print(f"Numba first call (compile or cache load): {first_call * 1e3:.1f} ms")
    print(f"{'implementation':34s} {'time (ms)':>10s} {'skimage / this':>15s} {'this / Numba':>13s}")
    for name, t in rows + [("scratchface Numba", t_nb)]:
        print(f"{name:34s} {t * 1e3:10.2f} {t_sk / t:14.1f}x {t / t_nb:12.2f}x")


if __name__ == "__main__":
    main()
