"""The ``scratchface`` command line.

Exit codes: 0 success, 1 the job ran and found a failure (e.g. a gradient
check failed), 2 bad usage or bad input.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import numpy as np

__all__ = ["main", "collect_gradcheck_cases"]

_CASE_PACKAGES = ("scratchface.layers", "scratchface.losses")
_CASE_MODULES = ("scratchface.recognition.deepid2",)


def _case_modules():
    for package_name in _CASE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                yield f"{package_name}.{info.name}"
    yield from _CASE_MODULES


def collect_gradcheck_cases(seed: int = 0):
    """Every ``gradcheck_cases(rng)`` of the layer, loss and training-loss modules, in module order."""
    cases = []
    for name in _case_modules():
        make = getattr(importlib.import_module(name), "gradcheck_cases", None)
        if make is not None:
            cases.extend(make(np.random.default_rng(seed)))
    return cases


def _cmd_gradcheck(args) -> int:
    from .gradcheck import PASS_THRESHOLD

    cases = collect_gradcheck_cases(args.seed)
    if args.only:
        cases = [c for c in cases if any(s in c.name for s in args.only)]
        if not cases:
            print(f"no gradcheck case matches {args.only}", file=sys.stderr)
            return 2
    width = max(len(c.name) for c in cases) + 2
    header = f"{'layer':<{width}}{'input shape':<22}{'max rel. error':>15}  result"
    print(header)
    print("-" * len(header))
    failed = 0
    for case in cases:
        result = case.run(seed=args.seed)
        failed += not result.passed
        shape = "x".join(str(s) for s in result.shape)
        print(f"{case.name:<{width}}{shape:<22}{result.max_error:>15.2e}  "
              f"{'pass' if result.passed else 'FAIL'}", flush=True)
    print("-" * len(header))
    print(f"{len(cases) - failed} passed, {failed} failed (pass: max relative error < {PASS_THRESHOLD:g}, "
          "float64, fourth-order central differences)")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchface", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("gradcheck", help="check every layer's backward pass against finite differences",
                       description="Check every layer's and loss's backward pass against "
                                   "fourth-order central differences in float64 and print a table.")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only the cases whose name contains NAME")
    p.set_defaults(func=_cmd_gradcheck)
    from .recognition.commands import add_subparsers  # detect, verify, identify, cluster, demo
    add_subparsers(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
