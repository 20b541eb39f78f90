"""A minimal training loop: seeded mini-batches, forward, loss, backward, optimiser step, metrics.

Everything a training loop does is visible in :func:`train_epoch`::

    for idx in iterate_minibatches(len(x), batch_size, rng):
        model.zero_grad()
        logits = model.forward(x[idx])
        loss, cache = loss_forward(logits, labels=y[idx])
        model.backward(loss_backward(1.0, cache))
        optimizer.step()

:func:`fit` repeats it for some epochs, evaluates on held-out data, steps a
learning-rate schedule and records the history. The default loss is softmax
cross-entropy (:mod:`scratchface.layers.softmax`); any pair
``loss_forward(out, labels=y) -> (scalar, cache)`` /
``loss_backward(dloss, cache) -> dout`` works.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .._validation import as_generator, check_array, check_labels, check_positive_int
from ..backend import to_host
from ..layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .checkpoint import load_checkpoint, save_checkpoint
from .module import Module
from .optim import Optimizer
from .schedules import Schedule

__all__ = ["iterate_minibatches", "predict", "evaluate", "train_epoch", "fit"]


def iterate_minibatches(n, batch_size, rng=None, *, shuffle=True, drop_last=False):
    """Index arrays of the mini-batches of one epoch.

    Parameters
    ----------
    n : int
        Number of samples.
    batch_size : int
    rng : numpy.random.Generator or int, optional
        Shuffles the order (seeded: the same seed, the same batches).
    shuffle : bool
    drop_last : bool
        Skip a last batch smaller than ``batch_size``.

    Yields
    ------
    idx : int array, shape (B,)
    """
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    order = as_generator(rng, allow_none=True).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        yield idx


def predict(model, x, *, batch_size=256):
    """``model.forward`` on ``x`` in eval mode, in batches; returns the concatenated outputs."""
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(x[idx]) for idx in iterate_minibatches(len(x), batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return np.concatenate([to_host(o) for o in outs])


def evaluate(model, x, y, *, batch_size=256, loss_forward=softmax_cross_entropy_forward):
    """Mean loss and accuracy (argmax of the outputs against ``y``) in eval mode.

    Returns
    -------
    loss : float
    accuracy : float in [0, 1]
    """
    logits = predict(model, x, batch_size=batch_size)
    loss, _ = loss_forward(logits, labels=np.asarray(to_host(y)))
    accuracy = float(np.mean(logits.argmax(axis=1) == to_host(y)))
    return float(loss), accuracy


def _check_data(model, x, y):
    if not isinstance(model, Module):
        raise TypeError(f"model must be a scratchface.nn Module, got {type(model).__name__}")
    check_array(x, "x", dtype_kind="f")
    check_labels(y, "y", len(x))


def train_epoch(model, optimizer, x, y, *, batch_size=32, rng=None, loss_forward=softmax_cross_entropy_forward,
                loss_backward=softmax_cross_entropy_backward, schedule=None, progress=None):
    """One pass over ``(x, y)`` in shuffled mini-batches; returns ``(mean loss, accuracy)`` over the batches.

    ``schedule``, when given, is stepped once per batch; ``progress`` is an
    optional tqdm bar to advance.
    """
    model.train()
    total_loss = correct = seen = 0
    for idx in iterate_minibatches(len(x), batch_size, rng):
        xb, yb = x[idx], y[idx]
        model.zero_grad()
        logits = model.forward(xb)
        loss, cache = loss_forward(logits, labels=yb)
        model.backward(loss_backward(1.0, cache))
        optimizer.step()
        if schedule is not None:
            schedule.step()
        total_loss += float(loss) * len(idx)
        correct += int((to_host(logits).argmax(axis=1) == to_host(yb)).sum())
        seen += len(idx)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
    return total_loss / seen, correct / seen


def fit(model, optimizer, x, y, *, epochs, batch_size=32, rng=None, x_val=None, y_val=None, schedule=None,
        schedule_per="epoch", loss_forward=softmax_cross_entropy_forward,
        loss_backward=softmax_cross_entropy_backward, progress=True, log=None, checkpoint=None, resume=False):
    """Train ``model`` for ``epochs`` epochs and record the metrics.

    Parameters
    ----------
    model : Module
        Its output for a batch is the loss's input (logits for the default loss).
    optimizer : Optimizer
        Built on ``model.parameters()``.
    x : float array, shape (N, ...)
    y : int array, shape (N,)
        Class labels.
    epochs : int
    batch_size : int
    rng : numpy.random.Generator or int, optional
        Seeds the batch order.
    x_val, y_val : arrays, optional
        Held-out data evaluated after every epoch.
    schedule : Schedule, optional
        Stepped once per epoch (``schedule_per='epoch'``) or per batch (``'batch'``).
    loss_forward, loss_backward : callables
        The loss pair (default softmax cross-entropy).
    progress : bool
        Show a tqdm progress bar (one per epoch).
    log : callable, optional
        Called as ``log(epoch, metrics_dict)`` after every epoch (e.g. ``print``-like).
    checkpoint : path, optional
        Write a checkpoint there after every epoch, atomically
        (:mod:`scratchface.nn.checkpoint`: weights, optimiser, schedule, every RNG state, history).
    resume : bool
        Continue from ``checkpoint`` when the file exists (else start afresh): the
        final weights equal those of an uninterrupted run with the same seeds, bit for bit.

    Returns
    -------
    history : dict of str to list
        ``'loss'``, ``'accuracy'`` (training, averaged over the epoch's batches),
        ``'val_loss'``, ``'val_accuracy'`` (when validation data is given),
        ``'lr'`` (the rate at the start of each epoch) and ``'time'`` (seconds per epoch).
        The model is left in eval mode.
    """
    _check_data(model, x, y)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a scratchface.nn Optimizer, got {type(optimizer).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if schedule is not None and not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a scratchface.nn Schedule, got {type(schedule).__name__}")
    if schedule_per not in ("epoch", "batch"):
        raise ValueError(f"schedule_per must be 'epoch' or 'batch', got {schedule_per!r}")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        _check_data(model, x_val, y_val)
    rng = as_generator(rng, allow_none=True)
    history = {"loss": [], "accuracy": [], "lr": [], "time": []}
    if x_val is not None:
        history.update(val_loss=[], val_accuracy=[])
    n_batches = -(-len(x) // batch_size)
    done = 0
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path")
    if resume and os.path.exists(checkpoint):
        done, history = load_checkpoint(checkpoint, model, optimizer, rng=rng, schedule=schedule)
    for epoch in range(done, epochs):
        start, lr = time.perf_counter(), optimizer.lr
        bar = None
        if progress:
            from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter widgets, only when a bar is shown
            bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        try:
            loss, acc = train_epoch(model, optimizer, x, y, batch_size=batch_size, rng=rng,
                                    loss_forward=loss_forward, loss_backward=loss_backward,
                                    schedule=schedule if schedule_per == "batch" else None, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        if schedule is not None and schedule_per == "epoch":
            schedule.step()
        history["loss"].append(loss)
        history["accuracy"].append(acc)
        history["lr"].append(lr)
        if x_val is not None:
            val_loss, val_acc = evaluate(model, x_val, y_val, loss_forward=loss_forward)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_acc)
        history["time"].append(time.perf_counter() - start)
        if log is not None:
            log(epoch + 1, {k: v[-1] for k, v in history.items()})
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch=epoch + 1, rng=rng, history=history,
                            schedule=schedule)
    model.eval()
    return history
