"""Bad-input probes of sciml_toolbox.nn.diffusion: every public name, each case a clear error
(or, for results, checked against an independent computation)."""

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.diffusion import (
    DDPMResult,
    DenoiserConfig,
    DenseRepulsion,
    MLPDenoiser,
    NoiseSchedule,
    SparseRepellency,
    SpellScheduler,
    ddim_sample,
    ddpm_sample,
    diffusers_sample,
    knn_precision_recall,
    load_digits_images,
    nearest_distance,
    shield_share,
    sparse_repellency_delta,
    train_ddpm,
    vendi_score,
)

PROBED = {"sciml_toolbox.nn.diffusion": {
    "SparseRepellency", "DenseRepulsion", "sparse_repellency_delta", "NoiseSchedule",
    "ddpm_sample", "ddim_sample", "SpellScheduler", "diffusers_sample", "load_digits_images",
    "DenoiserConfig", "MLPDenoiser", "DDPMResult", "train_ddpm", "vendi_score",
    "knn_precision_recall", "shield_share", "nearest_distance"}}

NAN, INF = float("nan"), float("inf")


def _zero_model(x, t):
    return torch.zeros_like(x)


# -------------------------------------------------------------------------- sparse_repellency_delta
@pytest.mark.parametrize("radius", [NAN, 0.0, -1.0, INF, "1"])
def test_delta_bad_radius(radius):
    with pytest.raises((ValueError, TypeError), match="radius"):
        sparse_repellency_delta(np.zeros((2, 3)), np.full((4, 3), 0.1), radius)


@pytest.mark.parametrize("name", ["x", "reference"])
def test_delta_nan_input(name):
    x, z = np.zeros((2, 3)), np.full((4, 3), 0.1)
    arrays = {"x": x, "reference": z}
    arrays[name] = arrays[name].copy()
    arrays[name][0, 0] = NAN
    with pytest.raises(ValueError, match=name):
        sparse_repellency_delta(arrays["x"], arrays["reference"], 1.0)


@pytest.mark.parametrize("x, z, match", [
    (np.zeros(3), np.ones((2, 3)), "x"), (np.zeros((2, 3)), np.ones((2, 2)), "reference"),
    (np.zeros((2, 3), dtype=np.float32), np.ones((2, 3)), "reference"),
    (np.zeros((2, 3), dtype=complex), np.ones((2, 3)), "x"),
])
def test_delta_bad_shapes_and_dtypes(x, z, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sparse_repellency_delta(x, z, 1.0)


def test_delta_bad_chunk_and_sqnorm():
    x, z = np.zeros((2, 3)), np.full((4, 3), 0.1)
    with pytest.raises(ValueError, match="chunk_size"):
        sparse_repellency_delta(x, z, 1.0, chunk_size=0)
    with pytest.raises(ValueError, match="reference_sqnorm"):
        sparse_repellency_delta(x, z, 1.0, reference_sqnorm=np.ones(3))


def test_delta_one_query_matches_formula_and_empty_is_zero():
    # closed form: relu(r / ||x - z|| - 1) (x - z) summed over the balls containing x
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(1, 3)), rng.normal(size=(6, 3))
    r = 2.0
    diff = x - z
    dist = np.linalg.norm(diff, axis=1)
    expected = (np.maximum(r / dist - 1.0, 0.0)[:, None] * diff).sum(axis=0)
    delta, counts = sparse_repellency_delta(x, z, r)
    np.testing.assert_allclose(delta[0], expected, rtol=1e-10, atol=1e-12)
    assert counts[0] == (dist < r).sum()
    d0, c0 = sparse_repellency_delta(np.zeros((0, 3)), z, r)
    assert d0.shape == (0, 3) and c0.shape == (0,)


# -------------------------------------------------------------------------- SPELL and dense
@pytest.mark.parametrize("kw, match", [
    (dict(radius=NAN), "radius"), (dict(radius=0.0), "radius"),
    (dict(radius=1.0, overcompensation=0.0), "overcompensation"),
    (dict(radius=1.0, n_cells=0), "n_cells"), (dict(radius=1.0, index="foo"), "index"),
    (dict(radius=1.0, dynamic="yes"), "dynamic"),
])
def test_spell_bad_hyperparameters(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SparseRepellency(torch.randn(5, 4), **kw)


@pytest.mark.parametrize("ref, match", [(torch.full((3, 4), NAN), "reference"),
                                        (torch.ones(4), "reference"),
                                        (torch.ones(3, 4, dtype=torch.complex64), "reference")])
def test_spell_bad_reference(ref, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SparseRepellency(ref, 1.0)


@pytest.mark.parametrize("q", [torch.ones(2, 3), torch.full((2, 4), NAN), torch.ones(4)])
def test_spell_bad_query(q):
    with pytest.raises(ValueError, match="x0_hat"):
        SparseRepellency(torch.randn(5, 4), 1.0).correction(q)


@pytest.mark.parametrize("kw, match", [(dict(strength=NAN), "strength"),
                                       (dict(bandwidth=-1.0), "bandwidth")])
def test_dense_bad_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        DenseRepulsion(**kw)


def test_dense_bad_query():
    with pytest.raises(ValueError, match="x0_hat"):
        DenseRepulsion().correction(torch.full((2, 4), NAN))


# -------------------------------------------------------------------------- schedule and samplers
@pytest.mark.parametrize("args, kw, match", [
    ((0,), {}, "n_train_steps"), ((10, 0.1, 0.01), {}, "beta_end"),
    ((10, 0.1, 1.5), {}, "beta_end"), ((10, NAN, 0.02), {}, "beta_start"),
    ((10,), dict(kind="foo"), "kind"),
])
def test_noise_schedule_bad_input(args, kw, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(*args, **kw)


@pytest.mark.parametrize("sampler", [ddpm_sample, ddim_sample])
@pytest.mark.parametrize("shape, kw, match", [
    ((0, 4), {}, "shape"), ("ab", {}, "shape"), ((2, 4), dict(n_steps=0), "n_steps"),
    ((2, 4), dict(n_steps=20), "n_steps"), ((2, 4), dict(prediction="foo"), "prediction"),
    ((2, 4), dict(clip=-1.0), "clip"), ((2, 4), dict(clip=(1.0, -1.0)), "clip"),
    ((2, 4), dict(x_T=torch.ones(3, 4)), "x_T"), ((2, 4), dict(x_T=torch.full((2, 4), NAN)),
                                                  "x_T"),
    ((2, 4), dict(dtype=torch.int64), "dtype"), ((2, 4), dict(repellency=3), "repellency"),
])
def test_sampler_bad_input(sampler, shape, kw, match):
    kw = dict(kw)
    kw.setdefault("n_steps", 5)
    with pytest.raises((ValueError, TypeError), match=match):
        sampler(_zero_model, shape, NoiseSchedule(10), **kw)


@pytest.mark.parametrize("sampler", [ddpm_sample, ddim_sample])
def test_sampler_model_nan_and_bad_schedule(sampler):
    with pytest.raises(FloatingPointError, match="model"):
        sampler(lambda x, t: x * NAN, (2, 4), NoiseSchedule(10), n_steps=2)
    with pytest.raises(ValueError, match="model"):
        sampler(lambda x, t: x[:, :2], (2, 4), NoiseSchedule(10), n_steps=2)
    with pytest.raises(TypeError, match="schedule"):
        sampler(_zero_model, (2, 4), "foo", n_steps=2)


def test_ddim_bad_eta():
    for eta, match in [(-1.0, "eta"), (NAN, "eta")]:
        with pytest.raises(ValueError, match=match):
            ddim_sample(_zero_model, (2, 4), NoiseSchedule(10), n_steps=2, eta=eta)


def test_ddim_one_sample_deterministic_matches_closed_form():
    # a zero noise predictor makes x0_hat = x_t / sqrt(abar_t) and the DDIM (eta = 0) update
    # x_prev = sqrt(abar_prev) x0_hat: after the last step x_0 = x_T / sqrt(abar_T)
    s = NoiseSchedule(10)
    x_T = torch.randn(1, 3, dtype=torch.float64)
    out = ddim_sample(_zero_model, (1, 3), s, n_steps=10, x_T=x_T, dtype=torch.float64)
    expected = x_T / s.alphas_cumprod.double()[-1].sqrt()
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------- diffusers glue
def test_spell_scheduler_and_diffusers_sample_bad_scheduler():
    with pytest.raises(TypeError, match="scheduler"):
        SpellScheduler(None, None)
    with pytest.raises(TypeError, match="scheduler"):
        diffusers_sample(_zero_model, None, (2, 4))


# -------------------------------------------------------------------------- the small DDPM
@pytest.mark.parametrize("kw, match", [(dict(n_images=0), "n_images"),
                                       (dict(n_images=10 ** 9), "n_images"),
                                       (dict(dtype=torch.int64), "dtype")])
def test_load_digits_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load_digits_images(**kw)


@pytest.mark.parametrize("kw, match", [
    (dict(hidden=0), "hidden"), (dict(sample_shape=(0, 8)), "sample_shape"),
    (dict(sample_shape=8), "sample_shape"), (dict(time_dim=7), "time_dim"),
    (dict(n_blocks=-1), "n_blocks"),
])
def test_denoiser_config_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DenoiserConfig(**kw)


def test_mlp_denoiser_bad_input():
    with pytest.raises(TypeError, match="config"):
        MLPDenoiser("x")
    m = MLPDenoiser(DenoiserConfig(sample_shape=(4,), hidden=8, n_blocks=1, time_dim=4))
    with pytest.raises(ValueError, match="x"):
        m(torch.ones(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="t"):
        m(torch.ones(2, 4), torch.zeros(3))


@pytest.mark.parametrize("images, kw, match", [
    (torch.ones(4, 1, 2, 2), dict(n_iter=0), "n_iter"),
    (torch.full((4, 1, 2, 2), NAN), {}, "images"),
    (torch.ones(4, 1, 2, 2), dict(lr=-1.0), "lr"),
    (torch.ones(4, 1, 2, 2), dict(batch_size=0), "batch_size"),
    (torch.ones(0, 1, 2, 2), {}, "images"),
    (torch.ones(4, 2, dtype=torch.complex64), {}, "images"),
    (torch.ones(4, 1, 2, 2), dict(schedule="linear"), "schedule"),
    (torch.ones(4, 1, 2, 2), dict(config=DenoiserConfig(sample_shape=(1, 3, 3))), "sample_shape"),
    (np.ones((4, 1, 2, 2)), {}, "images"),
])
def test_train_ddpm_bad_input(images, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        train_ddpm(images, **dict(dict(n_iter=1), **kw))


def test_train_ddpm_one_image_returns_result():
    cfg = DenoiserConfig(sample_shape=(1, 2, 2), hidden=8, n_blocks=1, time_dim=4)
    img = torch.zeros(1, 1, 2, 2)
    res = train_ddpm(img, n_iter=2, batch_size=2, config=cfg, schedule=NoiseSchedule(10))
    assert isinstance(res, DDPMResult)
    assert torch.equal(res.images, img) and len(res.history["loss"]) == 2


# -------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("x, kw, match", [
    (torch.full((3, 4), NAN), {}, "x"), (torch.ones(4), {}, "x"), (torch.ones(0, 4), {}, "x"),
    (torch.ones(3, 4), dict(kernel="foo"), "kernel"),
    (torch.ones(3, 4), dict(kernel="rbf", bandwidth=-1.0), "bandwidth"),
    (torch.zeros(3, 4), {}, "x"),
])
def test_vendi_bad_input(x, kw, match):
    with pytest.raises(ValueError, match=match):
        vendi_score(x, **kw)


def test_vendi_one_sample_and_identical_samples():
    # one sample, or n identical samples: one effective sample (Friedman & Dieng, 2023)
    assert vendi_score(torch.ones(1, 4)) == pytest.approx(1.0)
    assert vendi_score(torch.ones(5, 4)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("real, fake, kw, match", [
    (torch.ones(5, 2), torch.ones(5, 2), dict(k=0), "k"),
    (torch.randn(3, 2), torch.randn(3, 2), dict(k=5), "k"),
    (torch.ones(5, 2), torch.ones(5, 3), {}, "fake"),
    (torch.full((5, 2), NAN), torch.ones(5, 2), {}, "real"),
])
def test_knn_bad_input(real, fake, kw, match):
    with pytest.raises(ValueError, match=match):
        knn_precision_recall(real, fake, **kw)


def test_shield_share_and_nearest_distance_bad_input():
    with pytest.raises(ValueError, match="radius"):
        shield_share(torch.ones(3, 2), torch.ones(3, 2), 0.0)
    with pytest.raises(ValueError, match="reference"):
        shield_share(torch.ones(3, 2), torch.ones(3, 3), 1.0)
    with pytest.raises(ValueError, match="reference"):
        nearest_distance(torch.ones(3, 2), torch.ones(0, 2))
    with pytest.raises(ValueError, match="reference"):
        nearest_distance(torch.ones(3, 2), torch.full((2, 2), NAN))
    with pytest.raises(ValueError, match="chunk_size"):
        nearest_distance(torch.ones(3, 2), torch.ones(2, 2), chunk_size=0)


def test_nearest_distance_one_sample_matches_cdist():
    x, z = torch.randn(1, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    dist, index = nearest_distance(x, z)
    ref = torch.cdist(x, z).min(dim=1)
    torch.testing.assert_close(dist, ref.values)
    assert torch.equal(index, ref.indices)


def test_diffusers_sample_bad_input_with_a_real_scheduler():
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DDIMScheduler(num_train_timesteps=10, clip_sample=False)
    with pytest.raises(TypeError, match="unet"):
        diffusers_sample(3, sched, (2, 4))
    with pytest.raises(ValueError, match="shape"):
        diffusers_sample(_zero_model, sched, (0, 4))
    with pytest.raises(ValueError, match="n_steps"):
        diffusers_sample(_zero_model, sched, (2, 4), n_steps=0)
    with pytest.raises(TypeError, match="dtype"):
        diffusers_sample(_zero_model, sched, (2, 4), dtype=torch.int64)
    with pytest.raises(TypeError, match="repellency"):
        diffusers_sample(_zero_model, sched, (2, 4), repellency=3)


def test_repellency_call_and_flags_bad_input():
    s = SparseRepellency(torch.randn(5, 4), 1.0)
    with pytest.raises(TypeError, match="t"):
        s(torch.ones(2, 4), t="x")
    with pytest.raises(ValueError, match="t"):
        s(torch.ones(2, 4), t=NAN)
    s(torch.ones(2, 4), t=torch.tensor(0.5))  # a 0-d tensor is a time
    assert s.stats_["t"][-1] == 0.5
    for kw in (dict(remember="yes"), dict(record_stats="yes")):
        with pytest.raises(TypeError, match=next(iter(kw))):
            SparseRepellency(torch.randn(5, 4), 1.0, **kw)
    with pytest.raises(TypeError, match="record_stats"):
        DenseRepulsion(record_stats="x")
    with pytest.raises(ValueError, match="t"):
        DenseRepulsion()(torch.randn(3, 4), t=float("inf"))


def test_add_noise_bad_input_and_closed_form():
    s = NoiseSchedule(10)
    x0, noise = torch.ones(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="noise"):
        s.add_noise(x0, torch.ones(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="t"):
        s.add_noise(x0, noise, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="t"):
        s.add_noise(x0, noise, torch.tensor([0.5, 1.0]))
    with pytest.raises(TypeError, match="x0"):
        s.add_noise(torch.ones(2, 3, dtype=torch.long), noise, torch.tensor([0, 1]))
    out = s.add_noise(x0, noise, torch.tensor([0, 9]))
    torch.testing.assert_close(out[:, 0], s.alphas_cumprod[[0, 9]].float().sqrt())
