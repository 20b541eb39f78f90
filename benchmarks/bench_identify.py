"""Sorting a folder of photos against a 50-person gallery: a gallery built once vs rebuilt on every call.

Usage::

    python benchmarks/bench_identify.py                  # 2,000 unknown photos
    python benchmarks/bench_identify.py --n 300          # fewer (the count is printed)

The folder is synthesised from the face sets in ../shared/data (``--data`` or $SCRATCHFACE_DATA):
the gallery holds 50 people, ORL's 40 (photo 1 of each, 92 x 112 gray) and Yale's subjects 1-10
(``normal``, 320 x 243); the unknowns are ORL photos 2-10 and the other Yale photos of subjects
1-15 (5 of them not enrolled: they should come out "unknown"), 509 distinct photos, repeated
under new names up to ``--n``.

Timed in the same run:

- ``scratchface enroll`` of the 50-person folder (the gallery build), and enrolling it again
  unchanged (only the SHA-256 of each photo is read);
- ``scratchface identify --gallery gallery.npz UNKNOWN_DIR``: the photos streamed in batches;
- the peer: the way the CLI worked before (``identify --gallery DIR IMG``, one photo per call:
  the gallery folder enrolled again on every call), timed on ``--peer-calls`` photos and
  extrapolated to ``--n``. The ratio is printed.

Numba compile time is excluded (one warm-up call first).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time

from scratchface import cli
from scratchface.data import find_data_dir


def synthesise(data, root, n):
    """``root/people/<name>.<ext>`` (50 people) and ``root/unknown/`` (``n`` photos).

    Returns the two folders, the number of distinct photos and ``{unknown file name: true name}``
    (``None`` for Yale subjects 11-15, not enrolled).
    """
    people, unknown = os.path.join(root, "people"), os.path.join(root, "unknown")
    os.makedirs(people)
    os.makedirs(unknown)
    orl, yale = os.path.join(data, "orl_faces"), os.path.join(data, "yalefaces")
    pool, truth = [], {}
    for s in range(1, 41):
        shutil.copy(os.path.join(orl, f"s{s}", "1.pgm"), os.path.join(people, f"orl{s:02d}.pgm"))
        pool.extend(os.path.join(orl, f"s{s}", f"{k}.pgm") for k in range(2, 11))
        truth.update({os.path.join(orl, f"s{s}", f"{k}.pgm"): f"orl{s:02d}" for k in range(2, 11)})
    conditions = ["centerlight", "glasses", "happy", "leftlight", "noglasses", "rightlight", "sad", "sleepy",
                  "surprised", "wink"]
    for s in range(1, 16):
        if s <= 10:
            shutil.copy(os.path.join(yale, f"subject{s:02d}.normal"), os.path.join(people, f"yale{s:02d}.gif"))
        photos = [os.path.join(yale, f"subject{s:02d}.{c}") for c in conditions]
        photos = [p for p in photos if os.path.isfile(p)]  # this copy of Yale lacks subject01.centerlight
        pool.extend(photos)
        truth.update({p: f"yale{s:02d}" if s <= 10 else None for p in photos})
    expected = {}
    for k in range(n):
        source = pool[k % len(pool)]
        name = f"photo{k:05d}" + (".pgm" if source.endswith(".pgm") else ".gif")
        shutil.copy(source, os.path.join(unknown, name))
        expected[name] = truth[source]
    return people, unknown, len(pool), expected


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="unknown photos (default 2000)")
    parser.add_argument("--peer-calls", type=int, default=3, help="one-photo calls timed for the peer (default 3)")
    parser.add_argument("--data", default=None, help="folder with orl_faces/ and yalefaces/")
    args = parser.parse_args()
    data = args.data or find_data_dir()
    if data is None:
        raise SystemExit("face sets not found: pass --data or set SCRATCHFACE_DATA")
    with tempfile.TemporaryDirectory() as root:
        people, unknown, distinct, expected = synthesise(os.fspath(data), root, args.n)
        gallery = os.path.join(root, "gallery.npz")
        warm = os.path.join(root, "warm.npz")
        run_cli(["enroll", people, "--out", warm, "--quiet"])  # Numba compilation, out of the timings

        t = time.perf_counter()
        code, _ = run_cli(["enroll", people, "--out", gallery, "--quiet", "--json"])
        build = time.perf_counter() - t
        t = time.perf_counter()
        run_cli(["enroll", people, "--out", gallery, "--quiet"])
        rebuild = time.perf_counter() - t

        t = time.perf_counter()
        code, out = run_cli(["identify", "--gallery", gallery, unknown, "--quiet", "--csv"])
        identify = time.perf_counter() - t
        rows = [r.split(",") for r in out.splitlines()[1:]]
        named = sum(1 for r in rows if r[2] != "unknown")
        right = sum(1 for r in rows if (None if r[2] == "unknown" else r[2]) == expected[os.path.basename(r[0])])
        without = args.n - len({r[0] for r in rows})

        photos = sorted(os.listdir(unknown))[: args.peer_calls]
        t = time.perf_counter()
        for photo in photos:
            run_cli(["identify", "--gallery", people, os.path.join(unknown, photo), "--quiet"])
        peer_per_photo = (time.perf_counter() - t) / len(photos)

    print(f"{args.n} unknown photos ({distinct} distinct, ORL 92 x 112 and Yale 320 x 243, repeated), "
          f"gallery of 50 people (1 photo each); {os.cpu_count()} CPU cores")
    print(f"{'step':<52}{'seconds':>10}{'per photo (ms)':>16}")
    print(f"{'enroll (gallery build, 50 photos)':<52}{build:>10.2f}{1000 * build / 50:>16.1f}")
    print(f"{'enroll again, nothing changed (hashes only)':<52}{rebuild:>10.2f}{1000 * rebuild / 50:>16.1f}")
    print(f"{'identify --gallery gallery.npz DIR (streamed)':<52}{identify:>10.2f}{1000 * identify / args.n:>16.1f}")
    print(f"{'peer: identify --gallery DIR IMG, one call per photo':<52}{peer_per_photo * args.n:>10.2f}"
          f"{1000 * peer_per_photo:>16.1f}   (timed on {len(photos)} calls, extrapolated)")
    print(f"faces found {len(rows)} ({without} photos without a face), named {named}, unknown {len(rows) - named}; "
          f"right (named correctly, or unknown for Yale subjects 11-15): {right} of {len(rows)}")
    print(f"ratio (peer / gallery built once, whole job incl. the build): "
          f"{peer_per_photo * args.n / (build + identify):.1f}x")


if __name__ == "__main__":
    main()
