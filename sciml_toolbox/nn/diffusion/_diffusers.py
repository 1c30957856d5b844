"""SPELL for diffusers: a scheduler wrapper usable in any pipeline, and a sampling loop.

diffusers is an optional dependency (``pip install 'sciml-toolbox[diffusion]'``); nothing here
imports it at module level. The wrapper intercepts ``scheduler.step``: it converts the model
output into the x0 estimate (Tweedie's formula for the scheduler's ``prediction_type``), applies
the repellency, and hands the scheduler the model output that corresponds to the corrected
estimate with ``x_t`` fixed, i.e. the score shifted as in SPELL [1]_. Every other attribute is
the wrapped scheduler's, so ``pipe.scheduler = SpellScheduler(pipe.scheduler, spell)`` works for
pipelines whose scheduler lives in the variance-preserving ``x_t`` space (DDPM, DDIM, PNDM,
DPM-Solver, UniPC, ...).

References
----------
.. [1] M. Kirchhof et al. "Shielded Diffusion: Generating Novel and Diverse Images using Sparse
   Repellency". ICML 2025, arXiv:2410.06025.
"""

from __future__ import annotations

import inspect
import math

import torch

from ..._validation import check_int
from ._samplers import _check_common, _noise, to_x0_eps

__all__ = ["SpellScheduler", "diffusers_sample"]


class SpellScheduler:
    """Wrap a diffusers scheduler so that each ``step`` applies a repellency to x0.

    Parameters
    ----------
    scheduler : diffusers scheduler
        A scheduler with ``alphas_cumprod``, ``config.prediction_type`` and ``step(model_output,
        timestep, sample, ...)`` working on variance-preserving samples (``init_noise_sigma ==
        1``): ``DDPMScheduler``, ``DDIMScheduler``, ...
    repellency : callable
        ``repellency(x0_hat, t=...) -> x0_corrected``, e.g. :class:`SparseRepellency`
        (reference in the model's sample space: pixels, or VAE latents for latent diffusion).

    Attributes
    ----------
    history_ : list of dict
        One entry per step: ``timestep`` (int), ``active`` (bool tensor of shape (batch,)),
        ``correction_norm`` (tensor of shape (batch,)).

    Notes
    -----
    With ``clip_sample=True`` (diffusers' default for ``DDPMScheduler``) the scheduler clamps
    the corrected estimate again, which can pull it back into a ball: use
    ``clip_sample=False`` for the full guarantee, or a repellency radius measured on clipped
    data. Schedulers that scale the sample by ``sigma`` (Euler, Heun, EDM) are not supported.
    """

    def __init__(self, scheduler, repellency):
        if not hasattr(scheduler, "step") or not hasattr(scheduler, "alphas_cumprod"):
            raise TypeError("scheduler must be a diffusers scheduler with alphas_cumprod and "
                            f"step(), got {type(scheduler).__name__}")
        sigma0 = float(getattr(scheduler, "init_noise_sigma", 1.0))
        if abs(sigma0 - 1.0) > 1e-6:
            raise ValueError(
                f"scheduler must work in variance-preserving x_t space (init_noise_sigma == 1); "
                f"{type(scheduler).__name__} has init_noise_sigma={sigma0:g}"
            )
        pred = scheduler.config.prediction_type
        if pred not in ("epsilon", "sample", "v_prediction"):
            raise ValueError(f"scheduler.config.prediction_type {pred!r} is not supported")
        if not callable(repellency):
            raise TypeError("repellency must be callable as repellency(x0_hat, t=...), got "
                            f"{type(repellency).__name__}")
        self.__dict__["scheduler"] = scheduler
        self.__dict__["repellency"] = repellency
        self.__dict__["history_"] = []

    def __getattr__(self, name):
        # only called when normal lookup fails: everything else is the wrapped scheduler's
        if name in ("scheduler", "repellency", "history_"):
            raise AttributeError(name)
        return getattr(self.__dict__["scheduler"], name)

    def __setattr__(self, name, value):
        if name in ("scheduler", "repellency", "history_"):
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["scheduler"], name, value)

    def step(self, model_output, timestep, sample, *args, **kwargs):
        """Correct the x0 estimate of ``model_output``, then call the wrapped ``step``.

        Parameters
        ----------
        model_output : torch.Tensor, shape (batch, ...)
            The model's prediction (noise, sample or v, per the scheduler's config).
        timestep : int or torch.Tensor
            Current training timestep.
        sample : torch.Tensor, shape (batch, ...)
            Current ``x_t``.
        *args, **kwargs
            Passed on to the wrapped scheduler's ``step``.

        Returns
        -------
        output
            What the wrapped scheduler returns.
        """
        sched = self.scheduler
        t = int(timestep)
        ab = float(sched.alphas_cumprod[t])
        pred = sched.config.prediction_type
        x0, _ = to_x0_eps(model_output, sample, ab, pred)
        x0c = self.repellency(x0, t=t / sched.config.num_train_timesteps)
        change = x0c - x0
        if pred == "epsilon":
            out = model_output - math.sqrt(ab / (1.0 - ab)) * change
        elif pred == "sample":
            out = model_output + change
        else:  # x0 = sqrt(ab) x - sqrt(1 - ab) v
            out = model_output - change / math.sqrt(1.0 - ab)
        norm = change.reshape(change.shape[0], -1).double().norm(dim=1).cpu()
        self.history_.append({"timestep": t, "active": norm > 0, "correction_norm": norm})
        return sched.step(out, timestep, sample, *args, **kwargs)

    def __repr__(self):
        return f"SpellScheduler({type(self.scheduler).__name__}, {self.repellency!r})"


@torch.no_grad()
def diffusers_sample(unet, scheduler, shape, *, repellency=None, n_steps=50, generator=None,
                     device=None, dtype=torch.float32, **step_kwargs):
    """Sample with a diffusers UNet and scheduler, optionally shielded by a repellency.

    The loop of diffusers' unconditional ``DDPMPipeline`` / ``DDIMPipeline``, with the
    scheduler wrapped in :class:`SpellScheduler` when a repellency is given.

    Parameters
    ----------
    unet : callable
        ``unet(x, t)`` returning a tensor or an object with ``.sample`` (``UNet2DModel``).
    scheduler : diffusers scheduler
        e.g. ``DDPMScheduler`` or ``DDIMScheduler``; ``set_timesteps`` is called here.
    shape : tuple of int
        ``(batch, channels, height, width)``.
    repellency : callable, optional
        e.g. :class:`SparseRepellency`.
    n_steps : int, default=50
        Number of inference steps.
    generator : torch.Generator, optional
        Source of all the noise.
    device : torch.device or str, optional
        Default: the UNet's device.
    dtype : torch.dtype, default=torch.float32
    **step_kwargs
        Passed to ``scheduler.step`` (e.g. ``eta`` for DDIM).

    Returns
    -------
    samples : torch.Tensor, shape ``shape``
    scheduler : SpellScheduler or the given scheduler
        The scheduler used (its ``history_`` holds the repellency's activity).
    """
    if not callable(unet):
        raise TypeError(f"unet must be callable as unet(x, t), got {type(unet).__name__}")
    if not all(hasattr(scheduler, a) for a in ("set_timesteps", "step", "scale_model_input")):
        raise TypeError("scheduler must be a diffusers scheduler with set_timesteps(), "
                        f"scale_model_input() and step(), got {type(scheduler).__name__}")
    _check_common(unet, shape, None, 1, "epsilon", None, dtype)  # shape and dtype
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    if repellency is not None:
        scheduler = SpellScheduler(scheduler, repellency)
    if device is None:
        device = next((p.device for p in getattr(unet, "parameters", list)()), "cpu")
    scheduler.set_timesteps(n_steps, device=device)
    x = _noise(tuple(shape), generator, device, dtype) * scheduler.init_noise_sigma
    base = scheduler.scheduler if isinstance(scheduler, SpellScheduler) else scheduler
    accepts_generator = "generator" in inspect.signature(base.step).parameters
    for t in scheduler.timesteps:
        inp = scheduler.scale_model_input(x, t)
        out = unet(inp, t)
        out = getattr(out, "sample", out)
        kwargs = dict(step_kwargs)
        if generator is not None and accepts_generator:
            kwargs.setdefault("generator", generator)
        x = scheduler.step(out, t, x, **kwargs).prev_sample
    return x, scheduler
