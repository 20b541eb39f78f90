"""Layers as readable ``*_forward(...) -> (out, cache)`` / ``*_backward(dout, cache)`` pairs (NCHW).

One concept a module. Every module also has ``gradcheck_cases(rng)``, the
cases the ``scratchface gradcheck`` command and the tests check.
"""
