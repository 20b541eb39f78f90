"""Training checkpoints: everything a seeded run needs to continue bit for bit after being killed.

A checkpoint written after epoch ``k`` holds

- the model's parameters and buffers (``model.state_dict()``, as :func:`scratchface.nn.save`);
- the optimiser's state: learning rate, step count and its per-parameter slots (SGD's velocity,
  Adam's first and second moments ``m``, ``v``, AdaGrad's sums of squares);
- the learning-rate schedule's step;
- the state of every random generator the run draws from: the batch order's generator and the
  generators held by modules (Dropout's masks), as ``bit_generator.state``;
- the history so far and ``k``.

Resuming restores all of it, so epochs ``k+1 ...`` draw the same batches and masks and take the
same steps as the uninterrupted run: the final weights are equal bit for bit. The file is an
``.npz`` (the generator states and history as JSON text, nothing pickled) written atomically
(:mod:`scratchface.data.atomic`): a run killed while checkpointing leaves the previous checkpoint.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..backend import to_host
from ..data.atomic import savez_atomic

__all__ = ["save_checkpoint", "load_checkpoint"]

_SLOTS = ("velocity", "m", "v", "sum_sq")  #: per-parameter lists of the optimisers in nn.optim


def _generators(model, rng):
    """``{key: Generator}``: the batch order's and every module attribute that is a Generator."""
    found = {"rng": rng}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                found[f"{name or '<root>'}.{attr}"] = value
    return found


def save_checkpoint(path, model, optimizer, *, epoch, rng, history, schedule=None, extra=None) -> str:
    """Write a checkpoint after ``epoch`` epochs (atomically); returns the path (``.npz`` appended).

    ``extra``: ``{name: array}`` trained outside ``model`` (e.g. ArcFace's class centres).
    """
    arrays = {f"model/{k}": to_host(v) for k, v in model.state_dict().items()}
    arrays.update({f"extra/{k}": to_host(v) for k, v in (extra or {}).items()})
    for slot in _SLOTS:
        for i, value in enumerate(getattr(optimizer, slot, None) or []):
            if value is not None:
                arrays[f"optim/{slot}/{i}"] = to_host(value)
    meta = {"epoch": int(epoch), "lr": float(optimizer.lr), "step_count": int(optimizer.step_count),
            "schedule_step": None if schedule is None else int(schedule.last_step),
            "generators": {k: g.bit_generator.state for k, g in _generators(model, rng).items()},
            "history": history}
    arrays["meta"] = np.array(json.dumps(meta))
    return savez_atomic(path, **arrays)


def load_checkpoint(path, model, optimizer, *, rng, schedule=None, extra=None) -> tuple:
    """Restore a checkpoint into ``model``, ``optimizer``, ``rng`` (and ``schedule``, ``extra``) in place.

    Returns
    -------
    epoch, history
        The epochs done and the history recorded so far.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ValueError(f"{path} is not a training checkpoint written by scratchface: {exc}") from None
    model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
    optimizer.lr, optimizer.step_count = meta["lr"], meta["step_count"]
    for slot in _SLOTS:
        values = getattr(optimizer, slot, None)
        if values is not None:
            for i in range(len(values)):
                key = f"optim/{slot}/{i}"
                values[i] = arrays[key].copy() if key in arrays else None
    for key, array in (extra or {}).items():
        array[...] = arrays[f"extra/{key}"]
    if schedule is not None and meta["schedule_step"] is not None:
        schedule.last_step = meta["schedule_step"]
    generators = _generators(model, rng)
    if set(generators) != set(meta["generators"]):
        raise ValueError(f"{path}: the checkpoint's random generators {sorted(meta['generators'])} are not the "
                         f"model's {sorted(generators)}: another architecture?")
    for key, generator in generators.items():
        generator.bit_generator.state = meta["generators"][key]
    return meta["epoch"], meta["history"]
