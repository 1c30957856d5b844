"""SPELL: sparse repellency for diffusion sampling, samplers, a small DDPM and diffusers glue.

See the user guide (doc/guide/diffusion.rst) and Kirchhof et al., "Shielded Diffusion:
Generating Novel and Diverse Images using Sparse Repellency", ICML 2025 (arXiv:2410.06025).
"""

from ._ddpm import DDPMResult, DenoiserConfig, MLPDenoiser, load_digits_images, train_ddpm
from ._diffusers import SpellScheduler, diffusers_sample
from ._metrics import knn_precision_recall, nearest_distance, shield_share, vendi_score
from ._repellency import DenseRepulsion, SparseRepellency, sparse_repellency_delta
from ._samplers import NoiseSchedule, ddim_sample, ddpm_sample

__all__ = [
    "SparseRepellency",
    "DenseRepulsion",
    "sparse_repellency_delta",
    "NoiseSchedule",
    "ddpm_sample",
    "ddim_sample",
    "SpellScheduler",
    "diffusers_sample",
    "load_digits_images",
    "DenoiserConfig",
    "MLPDenoiser",
    "DDPMResult",
    "train_ddpm",
    "vendi_score",
    "knn_precision_recall",
    "shield_share",
    "nearest_distance",
]
