"""Optimisers: SGD (momentum, Nesterov, weight decay), Adam, AdaGrad.

An optimiser is given the model's :class:`~scratchface.nn.module.Parameter`
objects and, at ``step()``, updates each ``p.data`` in place from ``p.grad``.
The per-parameter state (velocity, moments, accumulated squares) lives in the
optimiser, in a list parallel to ``params``. The update rules are PyTorch's
(``torch.optim.SGD``, ``Adam``, ``Adagrad``), so that a run can be compared
with PyTorch step by step; the tests do so in float64.

Weight decay here is the L2 penalty :math:`\\tfrac{\\lambda}{2}\\|\\theta\\|^2`
added to the loss, i.e. :math:`\\lambda\\theta` added to the gradient before
the update (PyTorch's ``weight_decay``; AdamW's decoupled decay is not this).

A training step::

    model.zero_grad()
    out = model.forward(x)
    loss, cache = softmax_cross_entropy_forward(out, labels=y)
    model.backward(softmax_cross_entropy_backward(1.0, cache))
    optimiser.step()

The learning rate is the attribute ``lr``; schedules
(:mod:`scratchface.nn.schedules`) set it.
"""
from __future__ import annotations

from .._validation import check_in_range, check_positive_float
from ..backend import get_array_module
from .module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdaGrad"]


class Optimizer:
    """Base class: holds the parameters, the learning rate and the step count.

    Parameters
    ----------
    params : iterable of Parameter
        Usually ``model.parameters()``.
    lr : float
        Learning rate, > 0.
    weight_decay : float
        L2 penalty coefficient :math:`\\lambda \\ge 0`.
    """

    def __init__(self, params, lr, weight_decay=0.0):
        params = list(params)
        if not params:
            raise ValueError("params is empty: give the optimiser model.parameters()")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a Parameter (from model.parameters()), "
                                f"got {type(p).__name__}")
        self.params = params
        self.lr = check_positive_float(lr, "lr")
        self.weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)
        self.step_count = 0

    def zero_grad(self):
        """Set every parameter's gradient to 0 (same as ``model.zero_grad()``)."""
        for p in self.params:
            p.grad[...] = 0

    def _grad(self, p):
        """The gradient with the L2 penalty's term added: :math:`g + \\lambda \\theta`."""
        if self.weight_decay:
            return p.grad + self.weight_decay * p.data
        return p.grad

    def step(self):
        """Update every parameter once."""
        self.step_count += 1
        for i, p in enumerate(self.params):
            self._update(i, p, self._grad(p))

    def _update(self, i, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float
        Learning rate :math:`\\eta > 0`.
    momentum : float
        :math:`\\mu \\in [0, 1)`; 0 is plain SGD.
    nesterov : bool
        Nesterov's look-ahead form (needs ``momentum > 0``).
    weight_decay : float
        L2 penalty :math:`\\lambda \\ge 0`.

    Notes
    -----
    With :math:`g_t = \\nabla L(\\theta_{t-1}) + \\lambda \\theta_{t-1}` and
    :math:`v_0 = 0` (PyTorch's convention: the first step sets :math:`v_1 = g_1`):

    .. math::
        v_t = \\mu v_{t-1} + g_t, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta\\, d_t, \\qquad
        d_t = \\begin{cases} g_t + \\mu v_t & \\text{Nesterov} \\\\ v_t & \\text{otherwise.} \\end{cases}

    Without momentum, :math:`\\theta_t = \\theta_{t-1} - \\eta g_t`.

    References
    ----------
    Sutskever et al., "On the importance of initialization and momentum in deep
    learning", ICML 2013 (momentum and Nesterov's form).
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = check_in_range(momentum, "momentum", 0.0, 1.0, inclusive=(True, False))
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.velocity = [None] * len(self.params)

    def _update(self, i, p, g):
        if self.momentum:
            if self.velocity[i] is None:
                self.velocity[i] = g.copy()                      # v_1 = g_1
            else:
                self.velocity[i] *= self.momentum
                self.velocity[i] += g                            # v_t = mu v_{t-1} + g_t
            g = g + self.momentum * self.velocity[i] if self.nesterov else self.velocity[i]
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam: per-parameter steps from bias-corrected first and second moments.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float
        :math:`\\eta > 0` (1e-3 is the paper's default).
    betas : (float, float)
        :math:`(\\beta_1, \\beta_2)`, each in ``[0, 1)``.
    eps : float
        :math:`\\epsilon > 0`, added to :math:`\\sqrt{\\hat v}`.
    weight_decay : float
        L2 penalty :math:`\\lambda \\ge 0` (added to the gradient, as in PyTorch's ``Adam``).

    Notes
    -----
    With :math:`g_t = \\nabla L(\\theta_{t-1}) + \\lambda \\theta_{t-1}`, :math:`m_0 = v_0 = 0`:

    .. math::
        m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\qquad
        v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2,

    .. math::
        \\hat m_t = \\frac{m_t}{1 - \\beta_1^t}, \\qquad \\hat v_t = \\frac{v_t}{1 - \\beta_2^t}, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta \\frac{\\hat m_t}{\\sqrt{\\hat v_t} + \\epsilon}.

    References
    ----------
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, algorithm 1.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_in_range(betas[0], "betas[0]", 0.0, 1.0, inclusive=(True, False)),
                      check_in_range(betas[1], "betas[1]", 0.0, 1.0, inclusive=(True, False)))
        self.eps = check_positive_float(eps, "eps")
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)

    def _update(self, i, p, g):
        xp = get_array_module(p.data)
        b1, b2 = self.betas
        t = self.step_count
        if self.m[i] is None:
            self.m[i] = xp.zeros_like(p.data)
            self.v[i] = xp.zeros_like(p.data)
        m, v = self.m[i], self.v[i]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)


class AdaGrad(Optimizer):
    """AdaGrad: each parameter's step shrinks with the sum of its past squared gradients.

    FaceNet trained its networks with AdaGrad (SGD with AdaGrad, initial
    learning rate 0.05, FaceNet sec. 3.3).

    Parameters
    ----------
    params : iterable of Parameter
    lr : float
        :math:`\\eta > 0`.
    eps : float
        :math:`\\epsilon > 0` (PyTorch's default 1e-10).
    initial_accumulator_value : float
        :math:`s_0 \\ge 0`.
    weight_decay : float
        L2 penalty :math:`\\lambda \\ge 0`.

    Notes
    -----
    With :math:`g_t = \\nabla L(\\theta_{t-1}) + \\lambda \\theta_{t-1}`:

    .. math::
        s_t = s_{t-1} + g_t^2, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta \\frac{g_t}{\\sqrt{s_t} + \\epsilon}.

    References
    ----------
    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 2011 (diagonal form); FaceNet sec. 3.3.
    """

    def __init__(self, params, lr=1e-2, eps=1e-10, initial_accumulator_value=0.0, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = check_positive_float(eps, "eps")
        self.initial_accumulator_value = check_positive_float(
            initial_accumulator_value, "initial_accumulator_value", allow_zero=True)
        self.sum_sq = [None] * len(self.params)

    def _update(self, i, p, g):
        xp = get_array_module(p.data)
        if self.sum_sq[i] is None:
            self.sum_sq[i] = xp.full_like(p.data, self.initial_accumulator_value)
        s = self.sum_sq[i]
        s += g * g
        p.data -= self.lr * g / (xp.sqrt(s) + self.eps)
