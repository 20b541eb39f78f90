"""Modules, containers, optimisers, schedules, initialisers, save/load, summary tables, training.

Build a network from modules, train it, read its table::

    from scratchface import nn
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Dense(8 * 12 * 12, 2, rng=1))
    nn.print_summary(net, (1, 25, 25))
    history = nn.fit(net, nn.Adam(net.parameters(), lr=1e-3), x, y, epochs=10, rng=0)
    nn.save(net, "net.npz")

Each module wraps a ``*_forward`` / ``*_backward`` pair of :mod:`scratchface.layers`;
``module.backward(dout)`` returns ``dx`` and accumulates the parameters' gradients.
"""
from .blocks import Concat, Identity, Residual, Sequential
from .checkpoint import load_checkpoint, save_checkpoint
from .gradcheck import check_module
from .inception import NN2_INCEPTION, Inception
from .init import he_normal, he_uniform, xavier_normal, xavier_uniform, zeros
from .io import load, load_state, save
from .layers import (
    AvgPool2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    FullyConnected,
    L2Pool2d,
    Layer,
    LocallyConnected2d,
    LogSoftmax,
    Maxout,
    MaxPool2d,
    PReLU,
    ReLU,
    Softmax,
)
from .module import Module, Parameter
from .normalization import LRN, BatchNorm, L2Normalize
from .optim import SGD, AdaGrad, Adam, Optimizer
from .schedules import CosineSchedule, Schedule, StepSchedule
from .summary import print_summary, summary, summary_rows
from .train import evaluate, fit, iterate_minibatches, predict, train_epoch

__all__ = [
    "Module", "Parameter", "Layer", "Sequential", "Concat", "Residual", "Identity", "Inception", "NN2_INCEPTION",
    "Conv2d", "LocallyConnected2d", "Dense", "FullyConnected", "MaxPool2d", "AvgPool2d", "L2Pool2d", "ReLU",
    "PReLU", "Maxout", "LRN", "BatchNorm", "Dropout", "Flatten", "L2Normalize", "Softmax", "LogSoftmax",
    "SGD", "Adam", "AdaGrad", "Optimizer", "StepSchedule", "CosineSchedule", "Schedule",
    "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "zeros",
    "save", "load", "load_state", "summary", "summary_rows", "print_summary", "check_module",
    "fit", "evaluate", "predict", "train_epoch", "iterate_minibatches", "save_checkpoint", "load_checkpoint",
]
