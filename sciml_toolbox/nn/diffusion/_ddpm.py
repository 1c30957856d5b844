"""A small DDPM trained in-process on scikit-learn's digits.

No pretrained diffusion weights ship in any pip package, so the demos, tests and benchmarks train
their own model: an MLP noise predictor on the 8x8 images of ``sklearn.datasets.load_digits``
(1,797 images shipped inside scikit-learn). Trained long enough on a small subset it memorises
training images (Somepalli et al., 2023; Gu et al., 2023), which is exactly the failure SPELL
shields against.

References
----------
.. [1] J. Ho, A. Jain, P. Abbeel. "Denoising Diffusion Probabilistic Models". NeurIPS 2020.
.. [2] G. Somepalli, V. Singla, M. Goldblum, J. Geiping, T. Goldstein. "Diffusion Art or Digital
   Forgery? Investigating Data Replication in Diffusion Models". CVPR 2023.
.. [3] X. Gu, C. Du, T. Pang, C. Li, M. Lin, Y. Wang. "On Memorization in Diffusion Models".
   arXiv:2310.02664, 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..._validation import check_int, check_positive
from ._samplers import NoiseSchedule

__all__ = ["load_digits_images", "DenoiserConfig", "MLPDenoiser", "DDPMResult", "train_ddpm"]


def load_digits_images(n_images=None, *, random_state=0, dtype=torch.float32):
    """The 8x8 digit images of scikit-learn, scaled to [-1, 1].

    Parameters
    ----------
    n_images : int, optional
        Number of images, drawn at random without replacement (default: all 1,797).
    random_state : int or None, default=0
        Seed of the subset.
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    images : torch.Tensor, shape (n_images, 1, 8, 8)
        Pixel values ``x / 8 - 1`` (the raw values are integers in [0, 16]).
    labels : torch.Tensor of int64, shape (n_images,)
    """
    from sklearn.datasets import load_digits

    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    data = load_digits()
    x, y = data.images, data.target
    if n_images is not None:
        n_images = check_int(n_images, "n_images", min_value=1, max_value=len(x))
        idx = np.random.default_rng(random_state).choice(len(x), n_images, replace=False)
        x, y = x[idx], y[idx]
    images = torch.as_tensor(x / 8.0 - 1.0, dtype=dtype)[:, None]
    return images, torch.as_tensor(y, dtype=torch.long)


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding of (float) timesteps, shape (batch, dim) (Vaswani et al., 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


@dataclass
class DenoiserConfig:
    """Configuration of :class:`MLPDenoiser`.

    Parameters
    ----------
    sample_shape : tuple of int, default=(1, 8, 8)
        Shape of one sample.
    hidden : int, default=512
        Width of the residual MLP.
    n_blocks : int, default=3
        Number of residual blocks.
    time_dim : int, default=128
        Size of the sinusoidal timestep embedding.
    """

    sample_shape: tuple = field(default=(1, 8, 8))
    hidden: int = 512
    n_blocks: int = 3
    time_dim: int = 128

    def __post_init__(self):
        shape = self.sample_shape
        if isinstance(shape, (int, np.integer)) or not isinstance(shape, (tuple, list)) \
                or len(shape) == 0 \
                or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                           for s in shape):
            raise TypeError(f"sample_shape must be a tuple of ints, got {shape!r}")
        if any(s < 1 for s in shape):
            raise ValueError(f"sample_shape must have positive sizes, got {tuple(shape)}")
        self.sample_shape = tuple(int(s) for s in shape)
        check_int(self.hidden, "hidden", min_value=1)
        check_int(self.n_blocks, "n_blocks", min_value=0)
        check_int(self.time_dim, "time_dim", min_value=2)
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even (cos and sin halves), got {self.time_dim}")


class _Block(nn.Module):
    def __init__(self, hidden, time_dim):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.time = nn.Linear(time_dim, 2 * hidden)
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, h, temb):
        scale, shift = self.time(temb).chunk(2, dim=1)
        z = self.norm(h) * (1 + scale) + shift
        return h + self.lin2(nn.functional.silu(self.lin1(nn.functional.silu(z))))


class MLPDenoiser(nn.Module):
    """Residual MLP noise predictor ``eps_theta(x_t, t)`` for small images.

    Parameters
    ----------
    config : DenoiserConfig, optional

    Notes
    -----
    ``forward(x, t)`` takes ``x`` of shape (batch, \\*sample_shape) and integer or float
    timesteps ``t`` of shape (batch,) and returns the predicted noise, same shape as ``x``.
    """

    def __init__(self, config=None):
        super().__init__()
        if config is not None and not isinstance(config, DenoiserConfig):
            raise TypeError(f"config must be a DenoiserConfig, got {type(config).__name__}")
        self.config = DenoiserConfig() if config is None else config
        c = self.config
        dim = int(np.prod(c.sample_shape))
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, c.time_dim), nn.SiLU(),
                                      nn.Linear(c.time_dim, c.time_dim))
        self.inp = nn.Linear(dim, c.hidden)
        self.blocks = nn.ModuleList(_Block(c.hidden, c.time_dim) for _ in range(c.n_blocks))
        self.out_norm = nn.LayerNorm(c.hidden)
        self.out = nn.Linear(c.hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t):
        """Predicted noise, shape (batch, \\*sample_shape)."""
        shape = self.config.sample_shape
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(f"x must have shape (batch, *{tuple(shape)}), got {tuple(x.shape)}")
        if t.ndim > 1 or t.numel() not in (1, x.shape[0]):
            raise ValueError(f"t must have shape ({x.shape[0]},) (one timestep per sample), got "
                             f"{tuple(t.shape)}")
        t = t.reshape(-1).expand(x.shape[0])
        temb = self.time_mlp(timestep_embedding(t, self.config.time_dim))
        h = self.inp(x.reshape(x.shape[0], -1))
        for block in self.blocks:
            h = block(h, temb)
        return self.out(nn.functional.silu(self.out_norm(h))).reshape(x.shape)


@dataclass
class DDPMResult:
    """What :func:`train_ddpm` returns.

    Attributes
    ----------
    model : MLPDenoiser
        The trained noise predictor (in eval mode).
    schedule : NoiseSchedule
    images : torch.Tensor, shape (n_images, \\*sample_shape)
        The training set (the natural reference set to protect).
    history : dict
        ``loss`` per iteration (list of float).
    """

    model: nn.Module
    schedule: NoiseSchedule
    images: torch.Tensor
    history: dict


def train_ddpm(images=None, *, n_images=None, n_iter=3000, batch_size=128, lr=2e-3,
               config=None, schedule=None, random_state=0, device="cpu", verbose=False):
    """Train a small DDPM noise predictor in-process (epsilon loss of (Ho et al., 2020)).

    Parameters
    ----------
    images : torch.Tensor, shape (n, \\*sample_shape), optional
        Training images scaled to about [-1, 1] (default: the sklearn digits, see
        :func:`load_digits_images`).
    n_images : int, optional
        With ``images=None``: size of the random subset of the digits to train on. A small
        subset (a few hundred images) trained for a few thousand iterations is memorised.
    n_iter : int, default=3000
        Optimisation steps (AdamW with cosine learning-rate decay).
    batch_size : int, default=128
    lr : float, default=2e-3
    config : DenoiserConfig, optional
        Model size (default: 3 blocks of width 512, ~1.9M parameters).
    schedule : NoiseSchedule, optional
        Default: linear betas, 1000 steps.
    random_state : int, default=0
        Seeds the subset, the initialisation and the training noise.
    device : str or torch.device, default='cpu'
    verbose : bool, default=False
        Print the loss every 10% of the iterations.

    Returns
    -------
    result : DDPMResult
        ``model``, ``schedule``, ``images`` (the training set, on ``device``) and ``history``.
    """
    n_iter = check_int(n_iter, "n_iter", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_positive(lr, "lr")
    if images is None:
        images, _ = load_digits_images(n_images, random_state=random_state)
    elif not isinstance(images, torch.Tensor) or images.ndim < 2:
        raise TypeError("images must be a torch.Tensor of shape (n, *sample_shape)")
    if images.is_complex() or images.dtype == torch.bool:
        raise TypeError(f"images must have a real numeric dtype, got {images.dtype}")
    if images.shape[0] == 0 or images[0].numel() == 0:
        raise ValueError(f"images must hold at least one non-empty image, got shape "
                         f"{tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images must contain only finite values")
    schedule = NoiseSchedule() if schedule is None else schedule
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if config is not None and not isinstance(config, DenoiserConfig):
        raise TypeError(f"config must be a DenoiserConfig, got {type(config).__name__}")
    if config is None:
        config = DenoiserConfig(sample_shape=tuple(images.shape[1:]))
    elif tuple(config.sample_shape) != tuple(images.shape[1:]):
        raise ValueError(f"config.sample_shape {tuple(config.sample_shape)} does not match the "
                         f"images' shape {tuple(images.shape[1:])}")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(int(random_state or 0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state or 0))
        model = MLPDenoiser(config).to(device)
    images = images.to(device=device, dtype=torch.float32)
    abar = schedule.alphas_cumprod.to(device=device, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=n_iter,
                                                pct_start=0.05, anneal_strategy="cos")
    n = images.shape[0]
    losses = []
    model.train()
    for it in range(n_iter):
        idx = torch.randint(0, n, (batch_size,), generator=gen).to(device)
        t = torch.randint(0, schedule.n_train_steps, (batch_size,), generator=gen).to(device)
        noise = torch.randn((batch_size,) + tuple(images.shape[1:]), generator=gen).to(device)
        x0 = images[idx]
        ab = abar[t].reshape((-1,) + (1,) * (x0.ndim - 1))
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        loss = nn.functional.mse_loss(model(xt, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if verbose and (it + 1) % max(1, n_iter // 10) == 0:
            print(f"iter {it + 1}/{n_iter}  loss {np.mean(losses[-100:]):.4f}")
    model.eval()
    return DDPMResult(model=model, schedule=schedule, images=images, history={"loss": losses})
