"""Noise schedule and samplers (DDPM ancestral, DDIM / probability-flow) with SPELL hooks.

The samplers follow the discrete variance-preserving process of DDPM [1]_,
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``, with the "leading" timestep spacing of
diffusers, so that they reproduce ``diffusers.DDPMScheduler`` / ``DDIMScheduler`` step for step.
At every step the model's output is turned into an estimate ``x0_hat`` of the final sample
(Tweedie's formula), the repellency (SPELL [3]_ or any callable with the same signature) maps it
to a corrected estimate, and the update uses the corrected estimate with ``x_t`` fixed, which is
the same as adding ``sqrt(abar_t) lambda Delta / (1 - abar_t)`` to the score [3]_.

References
----------
.. [1] J. Ho, A. Jain, P. Abbeel. "Denoising Diffusion Probabilistic Models". NeurIPS 2020.
.. [2] J. Song, C. Meng, S. Ermon. "Denoising Diffusion Implicit Models". ICLR 2021.
.. [3] M. Kirchhof et al. "Shielded Diffusion: Generating Novel and Diverse Images using Sparse
   Repellency". ICML 2025, arXiv:2410.06025.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..._validation import check_in_range, check_int, check_option, check_positive

__all__ = ["NoiseSchedule", "ddpm_sample", "ddim_sample"]

_PREDICTIONS = ("epsilon", "sample", "v_prediction")


class NoiseSchedule:
    """Discrete variance-preserving noise schedule.

    Parameters
    ----------
    n_train_steps : int, default=1000
        Number of diffusion steps ``T`` used in training.
    beta_start, beta_end : float, default=1e-4, 0.02
        End points of the linear ``beta`` schedule of (Ho et al., 2020).
    kind : {'linear', 'cosine'}, default='linear'
        ``'cosine'`` is the schedule of Nichol & Dhariwal (2021), betas clipped at 0.999.

    Attributes
    ----------
    betas : torch.Tensor of float64, shape (T,)
    alphas_cumprod : torch.Tensor of float64, shape (T,)
        ``abar_t = prod_{s<=t} (1 - beta_s)``.
    """

    def __init__(self, n_train_steps=1000, beta_start=1e-4, beta_end=0.02, kind="linear"):
        self.n_train_steps = check_int(n_train_steps, "n_train_steps", min_value=2)
        self.beta_start = check_in_range(beta_start, "beta_start", 0.0, 1.0, closed="neither")
        self.beta_end = check_in_range(beta_end, "beta_end", 0.0, 1.0, closed="neither")
        self.kind = check_option(kind, "kind", ("linear", "cosine"))
        if self.kind == "linear" and self.beta_end < self.beta_start:
            raise ValueError(f"beta_end ({beta_end}) must be >= beta_start ({beta_start}): "
                             "the noise level grows with t")
        if kind == "linear":
            # float32 linspace like diffusers, so that both reproduce each other exactly
            betas = torch.linspace(self.beta_start, self.beta_end, self.n_train_steps,
                                   dtype=torch.float32).double()
        else:
            s = 0.008
            steps = torch.arange(self.n_train_steps + 1, dtype=torch.float64) / self.n_train_steps
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = torch.clamp(1 - f[1:] / f[:-1], max=0.999)
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    def timesteps(self, n_steps):
        """Inference timesteps, decreasing ("leading" spacing: ``arange(n) * (T // n)``).

        Parameters
        ----------
        n_steps : int
            Number of sampling steps, at most ``T``.

        Returns
        -------
        timesteps : ndarray of int64, shape (n_steps,)
        """
        n_steps = check_int(n_steps, "n_steps", min_value=1, max_value=self.n_train_steps)
        ratio = self.n_train_steps // n_steps
        return (np.arange(n_steps, dtype=np.int64) * ratio)[::-1].copy()

    def add_noise(self, x0, noise, t):
        """Forward process ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

        Parameters
        ----------
        x0, noise : torch.Tensor, shape (batch, ...)
        t : torch.Tensor of int64, shape (batch,)

        Returns
        -------
        x_t : torch.Tensor, shape (batch, ...)
        """
        for name, a in (("x0", x0), ("noise", noise)):
            if not isinstance(a, torch.Tensor) or not a.is_floating_point() or a.ndim < 1:
                raise TypeError(f"{name} must be a floating torch.Tensor of shape (batch, ...), "
                                f"got {getattr(a, 'dtype', type(a).__name__)}")
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got "
                             f"{tuple(noise.shape)}")
        t = torch.as_tensor(t, device=x0.device)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool \
                or t.shape not in ((), (x0.shape[0],)):
            raise ValueError(f"t must be integer timesteps of shape ({x0.shape[0]},), got "
                             f"{t.dtype} of shape {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.n_train_steps):
            raise ValueError(f"t must lie in [0, n_train_steps={self.n_train_steps}), got "
                             f"values in [{int(t.min())}, {int(t.max())}]")
        ab = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
        ab = ab.reshape((-1,) + (1,) * (x0.ndim - 1))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def __repr__(self):
        return f"NoiseSchedule(n_train_steps={self.n_train_steps}, kind={self.kind!r})"


def _model_output(model, x, t):
    tt = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
    out = model(x, tt)
    out = getattr(out, "sample", out)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise ValueError(
            f"model must return a tensor of the input's shape {tuple(x.shape)} (or an object "
            f"with such a .sample), got {getattr(out, 'shape', type(out).__name__)}"
        )
    if not torch.isfinite(out).all():
        raise FloatingPointError(f"model returned NaN or infinite values at timestep {int(t)}")
    return out


def to_x0_eps(out, x, ab, prediction):
    """Turn a model output into ``(x0_hat, eps_hat)`` at ``abar_t = ab`` (Tweedie's formula)."""
    sa, sb = math.sqrt(ab), math.sqrt(1.0 - ab)
    if prediction == "epsilon":
        return (x - sb * out) / sa, out
    if prediction == "sample":
        return out, (x - sa * out) / sb
    x0 = sa * x - sb * out  # v-prediction (Salimans & Ho, 2022)
    return x0, sa * out + sb * x


def _check_common(model, shape, schedule, n_steps, prediction, clip, dtype):
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    if isinstance(shape, int) or not all(isinstance(s, (int, np.integer)) for s in shape):
        raise TypeError(f"shape must be a tuple of ints (batch, ...), got {shape!r}")
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be (batch, ...) with positive sizes, got {tuple(shape)}")
    schedule = NoiseSchedule() if schedule is None else schedule
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    n_steps = schedule.n_train_steps if n_steps is None else n_steps
    timesteps = schedule.timesteps(n_steps)
    check_option(prediction, "prediction", _PREDICTIONS)
    if clip is not None:
        if not isinstance(clip, (tuple, list)) or len(clip) != 2 or not all(
                isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool)
                for c in clip):
            raise TypeError(f"clip must be None or a pair of numbers (low, high), got {clip!r}")
        if not clip[0] < clip[1]:
            raise ValueError(f"clip must be None or a pair (low, high) with low < high, got {clip}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    return schedule, timesteps


def _noise(shape, generator, device, dtype):
    gdev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gdev, dtype=dtype).to(device)


class _Recorder:
    def __init__(self, n_steps, batch, keep_trajectory):
        self.active = torch.zeros(n_steps, batch, dtype=torch.bool)
        self.correction_norm = torch.zeros(n_steps, batch, dtype=torch.float64)
        self.score_ratio = torch.zeros(n_steps, batch, dtype=torch.float64)
        self.keep = keep_trajectory
        self.x0_hat = []

    def step(self, i, x0, x0c, eps, ab):
        if self.keep:
            self.x0_hat.append(x0c.detach().cpu())
        if x0c is x0:
            return
        b = x0.shape[0]
        dn = (x0c - x0).reshape(b, -1).double().norm(dim=1).cpu()
        self.correction_norm[i] = dn
        self.active[i] = dn > 0
        # ||delta score|| / ||score|| with score = -eps / sqrt(1 - ab) and
        # delta score = sqrt(ab) (x0c - x0) / (1 - ab)
        en = eps.reshape(b, -1).double().norm(dim=1).cpu()
        self.score_ratio[i] = math.sqrt(ab / (1.0 - ab)) * dn / en.clamp_min(1e-300)

    def info(self, timesteps, schedule):
        out = {
            "timesteps": torch.as_tensor(timesteps),
            "t": torch.as_tensor(timesteps, dtype=torch.float64) / schedule.n_train_steps,
            "active": self.active,
            "correction_norm": self.correction_norm,
            "score_ratio": self.score_ratio,
        }
        if self.keep:
            out["x0_hat"] = torch.stack(self.x0_hat)
        return out


@torch.no_grad()
def _sample(model, shape, schedule, *, n_steps, prediction, repellency, clip, generator,
            device, dtype, return_info, return_trajectory, eta, ancestral, x_T):
    schedule, timesteps = _check_common(model, shape, schedule, n_steps, prediction, clip, dtype)
    if repellency is not None and not callable(repellency):
        raise TypeError("repellency must be None or callable as repellency(x0_hat, t=...), got "
                        f"{type(repellency).__name__}")
    if device is None:
        device = next((p.device for p in getattr(model, "parameters", list)()), None)
        device = torch.device("cpu") if device is None else device
    shape = tuple(int(s) for s in shape)
    abar = schedule.alphas_cumprod.tolist()
    ratio = schedule.n_train_steps // len(timesteps)
    if x_T is None:
        x = _noise(shape, generator, device, dtype)
    else:
        if not isinstance(x_T, torch.Tensor):
            raise TypeError(f"x_T must be a torch.Tensor, got {type(x_T).__name__}")
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T must have shape {shape}, got {tuple(x_T.shape)}")
        if x_T.is_complex() or not torch.isfinite(x_T).all():
            raise ValueError("x_T must hold finite real values")
        x = x_T.to(device=device, dtype=dtype)
    rec = _Recorder(len(timesteps), shape[0], return_trajectory)
    for i, t in enumerate(timesteps):
        t = int(t)
        prev = t - ratio
        ab = abar[t]
        ab_prev = abar[prev] if prev >= 0 else 1.0
        out = _model_output(model, x, t).to(dtype)
        x0, eps = to_x0_eps(out, x, ab, prediction)
        if clip is not None:
            x0 = x0.clamp(clip[0], clip[1])
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
        x0c = x0
        if repellency is not None:
            x0c = repellency(x0, t=t / schedule.n_train_steps)
            # same score shift: eps' = eps - sqrt(ab / (1 - ab)) (x0c - x0); exact when x0c == x0
            eps = eps - math.sqrt(ab / (1.0 - ab)) * (x0c - x0)
        rec.step(i, x0, x0c, eps, ab)
        alpha = ab / ab_prev
        if ancestral:
            beta = 1.0 - alpha
            c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
            ct = math.sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)
            x = c0 * x0c + ct * x
            if t > 0:
                var = max((1.0 - ab_prev) / (1.0 - ab) * beta, 1e-20)
                x = x + math.sqrt(var) * _noise(shape, generator, device, dtype)
        else:
            var = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - alpha)
            std = eta * math.sqrt(max(var, 0.0))
            x = math.sqrt(ab_prev) * x0c + math.sqrt(max(1.0 - ab_prev - std**2, 0.0)) * eps
            if eta > 0:
                x = x + std * _noise(shape, generator, device, dtype)
    end = getattr(repellency, "end_batch", None)
    if end is not None:
        end(x)
    if return_info:
        return x, rec.info(timesteps, schedule)
    return x


_SAMPLER_DOC = """
    Parameters
    ----------
    model : callable
        ``model(x_t, t)`` with ``x_t`` of shape ``shape`` and ``t`` an int64 tensor of shape
        (batch,) (training timesteps); returns a tensor of ``x_t``'s shape, or an object with
        such a ``.sample`` (diffusers' ``UNet2DModel``).
    shape : tuple of int
        ``(batch, *sample_shape)``.
    schedule : NoiseSchedule, optional
        The training noise schedule (default: linear, 1000 steps).
    n_steps : int, optional
        Number of sampling steps (default: the number of training steps).
    prediction : {'epsilon', 'sample', 'v_prediction'}, default='epsilon'
        What the model predicts: the noise, the clean sample, or ``v``.
    repellency : callable, optional
        ``repellency(x0_hat, t=...) -> x0_corrected``, e.g. :class:`SparseRepellency` or
        :class:`DenseRepulsion`, applied to the x0 estimate at every step.
    clip : (float, float), optional
        Clamp the x0 estimate to this range before the repellency.
    generator : torch.Generator, optional
        Source of all the noise (initial and per-step), drawn on the generator's device.
    device : torch.device or str, optional
        Device of the samples (default: the model's, else CPU).
    dtype : torch.dtype, default=torch.float32
    return_info : bool, default=False
        Also return a dict with ``timesteps`` (n_steps,), ``t`` (n_steps,) in [0, 1),
        ``active`` (n_steps, batch) bool, ``correction_norm`` (n_steps, batch), ``score_ratio``
        (n_steps, batch): norm of the repellency's change of the score over the score's norm.
    return_trajectory : bool, default=False
        With ``return_info``, also keep the corrected x0 estimates (``x0_hat``, shape
        (n_steps, \\*shape), on the CPU).
    x_T : torch.Tensor, optional
        Initial noise (else drawn from ``generator``).{extra}

    Returns
    -------
    samples : torch.Tensor, shape ``shape``
    info : dict
        Only with ``return_info``.
"""


def ddpm_sample(model, shape, schedule=None, *, n_steps=None, prediction="epsilon",
                repellency=None, clip=None, generator=None, device=None, dtype=torch.float32,
                return_info=False, return_trajectory=False, x_T=None):
    """DDPM ancestral sampling with an optional repellency of the x0 estimate.

    Ho et al. (2020); the repellency is SPELL's (Kirchhof et al., 2025).

    ``x_{t'} = c_0 x0_corrected + c_t x_t + sigma_t z`` with the posterior coefficients of
    (Ho et al., 2020) (eq. 7) and ``sigma_t^2`` the posterior variance; identical to
    ``diffusers.DDPMScheduler`` (``variance_type='fixed_small'``, ``clip_sample=False``).
    The last step returns the corrected x0 estimate itself.
    """
    return _sample(model, shape, schedule, n_steps=n_steps, prediction=prediction,
                   repellency=repellency, clip=clip, generator=generator, device=device,
                   dtype=dtype, return_info=return_info, return_trajectory=return_trajectory,
                   eta=1.0, ancestral=True, x_T=x_T)


def ddim_sample(model, shape, schedule=None, *, n_steps=50, eta=0.0, prediction="epsilon",
                repellency=None, clip=None, generator=None, device=None, dtype=torch.float32,
                return_info=False, return_trajectory=False, x_T=None):
    """DDIM sampling (Song et al., 2021); ``eta=0`` is the deterministic probability-flow sampler.

    ``x_{t'} = sqrt(abar_{t'}) x0_corrected + sqrt(1 - abar_{t'} - s^2) eps' + s z`` with
    ``s = eta * sqrt((1 - abar_{t'}) / (1 - abar_t) (1 - abar_t / abar_{t'}))`` and ``eps'``
    the noise consistent with the corrected estimate; with ``eta=0`` it is an Euler step of the
    probability-flow ODE in the variables ``(x / sqrt(abar), sqrt((1 - abar) / abar))``
    (Song et al., 2021).
    Identical to ``diffusers.DDIMScheduler`` (``clip_sample=False``, ``set_alpha_to_one``).
    SPELL's guarantee is weaker here than for ancestral sampling (Kirchhof et al., 2025).
    """
    eta = check_positive(eta, "eta", strict=False)
    return _sample(model, shape, schedule, n_steps=n_steps, prediction=prediction,
                   repellency=repellency, clip=clip, generator=generator, device=device,
                   dtype=dtype, return_info=return_info, return_trajectory=return_trajectory,
                   eta=eta, ancestral=False, x_T=x_T)


ddpm_sample.__doc__ += _SAMPLER_DOC.replace("{extra}", "")
ddim_sample.__doc__ += _SAMPLER_DOC.replace(
    "{extra}",
    "\n    eta : float, default=0.0\n        Stochasticity (0: deterministic DDIM; 1: "
    "DDPM-like variance)."
)
