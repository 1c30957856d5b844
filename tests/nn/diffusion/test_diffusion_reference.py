"""Independent checks of SPELL (sparse repellency) and its samplers.

Every expected value here comes from something other than the code under test: the closed form of
the correction (Kirchhof et al., 2025, "Shielded diffusion: generating novel and diverse images
using sparse repellency", eq. for Delta), a naive double loop, the exact posterior mean of a
Gaussian mixture (an analytic denoiser, so no learned model is involved), diffusers' own
schedulers, and closed forms of the Vendi score and of k-NN precision / recall.
"""

import numpy as np
import pytest
import torch

from sciml_toolbox._array_api import to_numpy
from sciml_toolbox.nn.diffusion import (
    DenseRepulsion,
    NoiseSchedule,
    SparseRepellency,
    ddim_sample,
    ddpm_sample,
    knn_precision_recall,
    shield_share,
    vendi_score,
)


# ------------------------------------------------------------------------------------------
# naive references written from the formula
# ------------------------------------------------------------------------------------------
def naive_delta(x, z, r):
    """Delta_i = sum_k relu(r / ||x_i - z_k|| - 1) (x_i - z_k), by a double loop in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    out = np.zeros_like(x)
    for i in range(len(x)):
        for k in range(len(z)):
            diff = x[i] - z[k]
            d = np.sqrt(np.sum(diff**2))
            if 0 < d < r:
                out[i] += (r / d - 1.0) * diff
    return out


def gmm_posterior_mean(x_t, abar, means, s):
    """E[x0 | x_t] for x0 ~ (1/K) sum_k N(m_k, s^2 I) and x_t = sqrt(abar) x0 + sqrt(1-abar) eps.

    Per component, x_t | k ~ N(sqrt(abar) m_k, (abar s^2 + 1 - abar) I) and
    E[x0 | x_t, k] = m_k + sqrt(abar) s^2 / (abar s^2 + 1 - abar) (x_t - sqrt(abar) m_k).
    """
    var = abar * s**2 + (1.0 - abar)
    mu = np.sqrt(abar) * means  # (K, D)
    d2 = ((x_t[:, None, :] - mu[None]) ** 2).sum(-1)  # (B, K)
    logw = -0.5 * d2 / var
    logw -= logw.max(1, keepdims=True)
    w = np.exp(logw)
    w /= w.sum(1, keepdims=True)
    cond = means[None] + (np.sqrt(abar) * s**2 / var) * (x_t[:, None, :] - mu[None])
    return (w[..., None] * cond).sum(1)


class AnalyticDenoiser(torch.nn.Module):
    """x0-prediction model: the exact posterior mean of a Gaussian mixture (no learning)."""

    def __init__(self, means, s, alphas_cumprod):
        super().__init__()
        self.means = np.asarray(means, dtype=np.float64)
        self.s = s
        self.abar = np.asarray(alphas_cumprod, dtype=np.float64)

    def forward(self, x, t):
        ab = float(self.abar[int(t[0])])
        assert bool((t == t[0]).all())
        x0 = gmm_posterior_mean(x.detach().double().numpy().reshape(len(x), -1), ab,
                                self.means, self.s)
        return torch.from_numpy(x0).to(x.dtype).reshape(x.shape)


def _ball_points(rng, n_ref, dim, r):
    """References far apart (spacing >> r) so that each query meets at most one ball."""
    z = rng.normal(size=(n_ref, dim)) * 10 * r
    return z


# ------------------------------------------------------------------------------------------
# the correction itself
# ------------------------------------------------------------------------------------------
def test_correction_zero_outside_all_balls(xp, np_rng):
    r = 0.7
    z = _ball_points(np_rng, 20, 5, r)
    # queries at distance between 1.5 r and 3 r from a reference (and far from the others)
    u = np_rng.normal(size=(30, 5))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    q = z[np_rng.integers(0, 20, 30)] + u * np_rng.uniform(1.5 * r, 3 * r, size=(30, 1))
    assert naive_delta(q, z, r).max() == 0.0
    spell = SparseRepellency(xp.asarray(z), radius=r)
    qx = xp.asarray(q)
    delta = spell.correction(qx)
    assert np.all(to_numpy(delta) == 0.0)
    assert np.array_equal(to_numpy(spell(qx)), q)


def test_correction_lands_exactly_on_border(xp, np_rng):
    r = 1.3
    z = _ball_points(np_rng, 15, 6, r)
    k = np_rng.integers(0, 15, 40)
    u = np_rng.normal(size=(40, 6))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    q = z[k] + u * np_rng.uniform(0.01 * r, 0.99 * r, size=(40, 1))
    spell = SparseRepellency(xp.asarray(z), radius=r, overcompensation=1.0)
    out = to_numpy(spell(xp.asarray(q)))
    dist = np.linalg.norm(out - z[k], axis=1)
    np.testing.assert_allclose(dist, r, rtol=1e-12)
    # moved radially: the direction from the centre is unchanged
    np.testing.assert_allclose((out - z[k]) / r, u, atol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_correction_matches_naive_double_loop(xp, np_rng, chunk_size):
    # dense references: many queries lie in several overlapping balls
    z = np_rng.normal(size=(60, 4))
    q = np_rng.normal(size=(25, 4))
    r = 1.0
    expected = naive_delta(q, z, r)
    assert (np.abs(expected).sum(1) > 0).mean() > 0.5  # the test exercises active queries
    spell = SparseRepellency(xp.asarray(z), radius=r, overcompensation=1.6, chunk_size=chunk_size)
    delta = to_numpy(spell.correction(xp.asarray(q)))
    np.testing.assert_allclose(delta, expected, rtol=1e-10, atol=1e-12)
    out = to_numpy(spell(xp.asarray(q)))
    np.testing.assert_allclose(out, q + 1.6 * expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_cells", [1, 5, 40, 400])
def test_cell_pruned_search_matches_naive_double_loop(xp, np_rng, n_cells):
    # clustered references (the cells prune) plus far queries (whole steps skipped)
    z = np.concatenate([np_rng.normal(size=(40, 5)) + 6 * np_rng.normal(size=(1, 5))
                        for _ in range(10)])
    q = z[np_rng.integers(0, len(z), 50)] + 0.3 * np_rng.normal(size=(50, 5))
    q = np.concatenate([q, 30 * np_rng.normal(size=(10, 5))])
    r = 1.0
    expected = naive_delta(q, z, r)
    assert (np.abs(expected).sum(1) > 0).mean() > 0.3
    spell = SparseRepellency(xp.asarray(z), radius=r, n_cells=n_cells, chunk_size=17)
    delta = to_numpy(spell.correction(xp.asarray(q)))
    np.testing.assert_allclose(delta, expected, rtol=1e-10, atol=1e-12)
    # far away queries only: nothing to do, exactly zero
    far = 100.0 + np_rng.normal(size=(5, 5))
    assert np.all(to_numpy(spell.correction(xp.asarray(far))) == 0.0)


def test_cell_pruned_search_float32_large_reference(np_rng):
    # 'auto' cells kick in from 4096 references; float32 expansion margins stay conservative
    z = (np_rng.normal(size=(6000, 16)) * 3).astype(np.float32)
    q = (z[:64] + 0.5 * np_rng.normal(size=(64, 16))).astype(np.float32)
    r = 2.5
    expected = naive_delta(q, z, r)
    spell = SparseRepellency(torch.from_numpy(z), radius=r)
    assert spell._working_reference(torch.from_numpy(q))[2] is not None
    delta = spell.correction(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(delta, expected, rtol=1e-4, atol=1e-4)
    plain = SparseRepellency(torch.from_numpy(z), radius=r, n_cells=None)
    np.testing.assert_allclose(delta, plain.correction(torch.from_numpy(q)).numpy(), rtol=1e-5,
                               atol=1e-5)


def test_correction_float32_torch_images(np_rng):
    # image-shaped input (B, C, H, W) against flat references, float32
    z = np_rng.normal(size=(50, 12)).astype(np.float32)
    q = np_rng.normal(size=(9, 12)).astype(np.float32)
    r = 1.5
    expected = naive_delta(q, z, r)
    spell = SparseRepellency(torch.from_numpy(z), radius=r, chunk_size=16)
    delta = spell.correction(torch.from_numpy(q).reshape(9, 3, 2, 2))
    assert delta.shape == (9, 3, 2, 2) and delta.dtype == torch.float32
    np.testing.assert_allclose(delta.reshape(9, -1).numpy(), expected, rtol=2e-4, atol=2e-5)


def test_several_passes_leave_overlapping_balls():
    # overlapping balls: one pass can stay in (or jump into) a ball; iterating the map fixes
    # most of those (not a guarantee: a point can oscillate in a densely covered region)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3)) * 1.7
    q = rng.normal(size=(200, 3)) * 1.7
    r = 0.9

    def n_inside(x):
        return int((np.linalg.norm(x[:, None] - z[None], axis=-1).min(1) < r).sum())

    n_one = n_inside(SparseRepellency(z, radius=r, overcompensation=1.6)(q))
    n_many = n_inside(SparseRepellency(z, radius=r, overcompensation=1.6, n_passes=20)(q))
    assert n_inside(q) > 50 and n_one > 5
    assert n_many <= n_one / 5
    # pass by pass it is the one-pass map iterated
    x = q
    for _ in range(3):
        x = x + 1.6 * naive_delta(x, z, r)
    np.testing.assert_allclose(SparseRepellency(z, radius=r, n_passes=3)(q), x, rtol=1e-10)


def test_dynamic_correction_is_pairwise_formula(np_rng):
    # in dynamic mode the reference of sample i is every other sample of the batch
    q = np_rng.normal(size=(12, 3)) * 0.6
    r = 0.8
    expected = np.stack([naive_delta(q[i:i + 1], np.delete(q, i, 0), r)[0] for i in range(12)])
    spell = SparseRepellency(None, radius=r, dynamic=True)
    np.testing.assert_allclose(spell.correction(q), expected, rtol=1e-10, atol=1e-12)
    # with a static reference too, both contributions add up
    z = np_rng.normal(size=(20, 3))
    spell = SparseRepellency(z, radius=r, dynamic=True)
    np.testing.assert_allclose(spell.correction(q), expected + naive_delta(q, z, r),
                               rtol=1e-10, atol=1e-12)


def test_faiss_and_exact_search_agree(np_rng):
    pytest.importorskip("faiss")
    z = np_rng.normal(size=(3000, 16)).astype(np.float32)
    q = (z[:64] + 0.3 * np_rng.normal(size=(64, 16))).astype(np.float32)
    r = 2.0
    expected = naive_delta(q, z, r)
    exact = SparseRepellency(torch.from_numpy(z), radius=r, chunk_size=500)
    fa = SparseRepellency(torch.from_numpy(z), radius=r, index="faiss")
    d_exact = exact.correction(torch.from_numpy(q)).numpy()
    d_faiss = fa.correction(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(d_exact, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_faiss, d_exact, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------
# shielding with an analytic denoiser (Gaussian mixture, exact x0 estimate)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(3)
    dim, k = 8, 6
    means = rng.normal(size=(k, dim))
    means *= 4.0 / np.linalg.norm(means, axis=1, keepdims=True)  # on a sphere of radius 4
    schedule = NoiseSchedule(n_train_steps=1000)
    model = AnalyticDenoiser(means, 0.1, schedule.alphas_cumprod.numpy())
    return means, schedule, model


def _share_within(x, z, r):
    d = np.linalg.norm(x[:, None, :] - z[None], axis=-1)
    return float((d.min(1) < r).mean())


def test_analytic_denoiser_shield_ddpm(mixture):
    means, schedule, model = mixture
    protected = means[:3]
    r = 1.0
    gen = torch.Generator().manual_seed(0)
    base = ddpm_sample(model, (300, 8), schedule, n_steps=100, prediction="sample",
                       generator=gen, dtype=torch.float64)
    base = base.numpy()
    share_base = _share_within(base, protected, r)
    assert share_base > 0.3  # the mixture puts half its mass in the protected components
    spell = SparseRepellency(torch.from_numpy(protected), radius=r)
    gen = torch.Generator().manual_seed(0)
    shielded, info = ddpm_sample(model, (300, 8), schedule, n_steps=100, prediction="sample",
                                 generator=gen, repellency=spell, dtype=torch.float64,
                                 return_info=True)
    shielded = shielded.numpy()
    assert _share_within(shielded, protected, r) <= 0.01
    assert shield_share(torch.from_numpy(shielded), torch.from_numpy(protected), r) <= 0.01
    # trajectories that never met the shield are bitwise unchanged
    never = ~info["active"].numpy().any(0)
    assert never.mean() > 0.2
    np.testing.assert_array_equal(shielded[never], base[never])
    # ... and the others did change
    assert np.all(np.abs(shielded[~never] - base[~never]).max(1) > 0)


def test_analytic_denoiser_shield_ddim(mixture):
    means, schedule, model = mixture
    protected = means[:3]
    r = 1.0
    base = ddim_sample(model, (300, 8), schedule, n_steps=50, prediction="sample",
                       generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spell = SparseRepellency(torch.from_numpy(protected), radius=r)
    shielded, info = ddim_sample(model, (300, 8), schedule, n_steps=50, prediction="sample",
                                 generator=torch.Generator().manual_seed(1), repellency=spell,
                                 dtype=torch.float64, return_info=True)
    share_base = _share_within(base.numpy(), protected, r)
    share = _share_within(shielded.numpy(), protected, r)
    assert share_base > 0.3
    assert share <= share_base / 5
    never = ~info["active"].numpy().any(0)
    np.testing.assert_array_equal(shielded.numpy()[never], base.numpy()[never])


def test_dynamic_mode_raises_min_pairwise_distance():
    # a memorising denoiser: the exact posterior mean of 4 training points (s -> 0)
    rng = np.random.default_rng(5)
    train = rng.normal(size=(4, 8)) * 2
    schedule = NoiseSchedule(n_train_steps=1000)
    model = AnalyticDenoiser(train, 1e-3, schedule.alphas_cumprod.numpy())

    def min_pair(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return d[np.triu_indices(len(x), 1)].min()

    kw = dict(n_steps=100, prediction="sample", dtype=torch.float64)
    base = ddpm_sample(model, (16, 8), schedule, generator=torch.Generator().manual_seed(2), **kw)
    spell = SparseRepellency(None, radius=1.0, dynamic=True)
    dyn = ddpm_sample(model, (16, 8), schedule, generator=torch.Generator().manual_seed(2),
                      repellency=spell, **kw)
    assert min_pair(base.numpy()) < 0.05  # 16 samples from 4 points: duplicates
    assert min_pair(dyn.numpy()) > 10 * min_pair(base.numpy())
    assert min_pair(dyn.numpy()) > 0.3


# ------------------------------------------------------------------------------------------
# samplers against diffusers' schedulers
# ------------------------------------------------------------------------------------------
class _Eps(torch.nn.Module):
    """A fixed smooth noise predictor (random linear map + tanh) for sampler comparisons."""

    def __init__(self, dim):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(dim, dim, generator=g) / dim**0.5

    def forward(self, x, t):
        flat = x.reshape(len(x), -1)
        return torch.tanh(flat @ self.w + t[:, None].to(x.dtype) / 1000).reshape(x.shape)


@pytest.mark.parametrize("with_spell", [False, True])
def test_ddpm_sample_matches_diffusers_scheduler(with_spell):
    diffusers = pytest.importorskip("diffusers")
    from sciml_toolbox.nn.diffusion import SpellScheduler

    model = _Eps(12)
    schedule = NoiseSchedule(n_train_steps=1000)
    # protect points next to half of the unshielded samples, so that SPELL does act
    plain = ddpm_sample(model, (8, 3, 2, 2), schedule, n_steps=25,
                        generator=torch.Generator().manual_seed(4))
    ref = plain[:4].reshape(4, 12) + 0.1
    spell = SparseRepellency(ref, radius=1.0) if with_spell else None
    ours, info = ddpm_sample(model, (8, 3, 2, 2), schedule, n_steps=25, repellency=spell,
                             generator=torch.Generator().manual_seed(4), return_info=True)
    assert bool(info["active"].any()) == with_spell
    # the same loop written against diffusers
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    if with_spell:
        sched = SpellScheduler(sched, SparseRepellency(ref, radius=1.0))
    sched.set_timesteps(25)
    g = torch.Generator().manual_seed(4)
    x = torch.randn((8, 3, 2, 2), generator=g)
    for t in sched.timesteps:
        eps = model(x, t.repeat(8))
        x = sched.step(eps, t, x, generator=g).prev_sample
    np.testing.assert_allclose(ours.numpy(), x.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("with_spell", [False, True])
def test_ddim_sample_matches_diffusers_scheduler(with_spell):
    diffusers = pytest.importorskip("diffusers")
    from sciml_toolbox.nn.diffusion import SpellScheduler

    model = _Eps(12)
    schedule = NoiseSchedule(n_train_steps=1000)
    plain = ddim_sample(model, (8, 12), schedule, n_steps=20,
                        generator=torch.Generator().manual_seed(4))
    ref = plain[:4] + 0.1
    spell = SparseRepellency(ref, radius=1.0) if with_spell else None
    ours, info = ddim_sample(model, (8, 12), schedule, n_steps=20, repellency=spell,
                             generator=torch.Generator().manual_seed(4), return_info=True)
    assert bool(info["active"].any()) == with_spell
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False)
    if with_spell:
        sched = SpellScheduler(sched, SparseRepellency(ref, radius=1.0))
    sched.set_timesteps(20)
    x = torch.randn((8, 12), generator=torch.Generator().manual_seed(4))
    for t in sched.timesteps:
        x = sched.step(model(x, t.repeat(8)), t, x).prev_sample
    np.testing.assert_allclose(ours.numpy(), x.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------
# the particle-guidance baseline: gradient of the RBF potential by autograd
# ------------------------------------------------------------------------------------------
def test_dense_repulsion_is_gradient_of_rbf_potential():
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h, strength = 1.7, 0.3
    rep = DenseRepulsion(strength=strength, bandwidth=h)
    xr = x.clone().requires_grad_(True)
    d2 = ((xr[:, None] - xr[None]) ** 2).sum(-1)
    potential = torch.exp(-d2 / h**2).sum() / 2  # sum over pairs i < j
    (grad,) = torch.autograd.grad(potential, xr)
    np.testing.assert_allclose(rep.correction(x).numpy(), (-grad).numpy(), rtol=1e-10)
    np.testing.assert_allclose(rep(x).numpy(), (x - strength * grad).numpy(), rtol=1e-10)


# ------------------------------------------------------------------------------------------
# metrics from their definitions
# ------------------------------------------------------------------------------------------
def test_vendi_score_closed_forms(xp):
    # b groups of identical vectors, orthogonal across groups: VS = b (Friedman & Dieng 2023)
    eye = np.eye(5)
    feats = np.repeat(eye[:4], 6, axis=0)  # 4 groups of 6
    np.testing.assert_allclose(vendi_score(xp.asarray(feats)), 4.0, rtol=1e-10)
    # all identical: 1; all orthogonal: n
    np.testing.assert_allclose(vendi_score(xp.asarray(np.ones((9, 3)))), 1.0, rtol=1e-10)
    np.testing.assert_allclose(vendi_score(xp.asarray(np.eye(7))), 7.0, rtol=1e-10)


def test_vendi_score_matches_eigenvalue_definition(np_rng):
    from scipy.linalg import eigvalsh

    x = np_rng.normal(size=(40, 6))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = eigvalsh(xn @ xn.T / 40)
    lam = lam[lam > 1e-15]
    expected = np.exp(-np.sum(lam * np.log(lam)))
    np.testing.assert_allclose(vendi_score(x), expected, rtol=1e-8)
    # RBF kernel K_ij = exp(-||x_i - x_j||^2 / (2 h^2))
    h = 1.3
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    lam = eigvalsh(np.exp(-d2 / (2 * h**2)) / 40)
    lam = lam[lam > 1e-15]
    np.testing.assert_allclose(vendi_score(x, kernel="rbf", bandwidth=h),
                               np.exp(-np.sum(lam * np.log(lam))), rtol=1e-8)


def naive_prec_recall(real, fake, k):
    def radii(a):
        d = np.linalg.norm(a[:, None] - a[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    rr, rf = radii(real), radii(fake)
    prec = np.mean([any(np.linalg.norm(f - real[j]) <= rr[j] for j in range(len(real)))
                    for f in fake])
    rec = np.mean([any(np.linalg.norm(x - fake[j]) <= rf[j] for j in range(len(fake)))
                   for x in real])
    return prec, rec


def test_knn_precision_recall_matches_naive(xp, np_rng):
    real = np_rng.normal(size=(50, 3))
    fake = np_rng.normal(size=(40, 3)) * 0.7 + 2.0
    p, r = knn_precision_recall(xp.asarray(real), xp.asarray(fake), k=3)
    pe, re = naive_prec_recall(real, fake, 3)
    assert p == pytest.approx(pe) and r == pytest.approx(re)
    assert 0 < p < 1 and 0 < r < 1
    p, r = knn_precision_recall(real, real, k=3)
    assert p == 1.0 and r == 1.0
    p, r = knn_precision_recall(real, real + 100.0, k=3)
    assert p == 0.0 and r == 0.0
