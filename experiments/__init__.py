"""Experiments: the training runs and the commands that print a paper's table.

Nothing in the library (``scratchface/``) imports from here. Each module is a
script with a ``main()`` run from the repository root, for example::

    python -m experiments.orl_embedding --loss arcface

It trains with the library's pieces (layers, losses, samplers, data loaders),
writes weights through the library's writers, and prints the figures that
``docs/results.md`` quotes, with the command that reproduces each.
"""
