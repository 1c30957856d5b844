"""API tests of sciml_toolbox.nn.diffusion: namespaces, validation, statistics, diffusers glue."""

import numpy as np
import pytest
import torch

from sciml_toolbox._array_api import get_namespace, namespace_name, to_numpy
from sciml_toolbox.nn.diffusion import (
    DenoiserConfig,
    DenseRepulsion,
    MLPDenoiser,
    NoiseSchedule,
    SparseRepellency,
    ddim_sample,
    ddpm_sample,
    knn_precision_recall,
    load_digits_images,
    nearest_distance,
    shield_share,
    sparse_repellency_delta,
    train_ddpm,
    vendi_score,
)


def _zero_model(x, t):
    return torch.zeros_like(x)


# ------------------------------------------------------------------------------------------
# SparseRepellency: namespaces, dtype, no in-place change, statistics
# ------------------------------------------------------------------------------------------
def test_output_in_caller_namespace_and_dtype(xp, np_rng):
    z = xp.asarray(np_rng.normal(size=(10, 4)))
    q = xp.asarray(np_rng.normal(size=(6, 2, 2)))
    spell = SparseRepellency(z, radius=1.0)
    out = spell(q)
    assert namespace_name(get_namespace(out)) == namespace_name(xp)
    assert out.shape == q.shape and out.dtype == q.dtype


def test_reference_moved_to_query_namespace(np_rng):
    z = np_rng.normal(size=(10, 4))
    q = torch.as_tensor(np_rng.normal(size=(6, 4)), dtype=torch.float32)
    out = SparseRepellency(z, radius=1.5)(q)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32


def test_input_not_modified(np_rng):
    z = np_rng.normal(size=(10, 4))
    q = np_rng.normal(size=(6, 4))
    z0, q0 = z.copy(), q.copy()
    SparseRepellency(z, radius=2.0, dynamic=True)(q)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(q, q0)


def test_activity_statistics(np_rng):
    z = np.zeros((1, 2))
    spell = SparseRepellency(z, radius=1.0, overcompensation=1.0)
    q = np.array([[0.5, 0.0], [0.0, 0.25], [3.0, 0.0], [0.0, 4.0]])
    spell(q, t=0.7)
    spell(q[2:], t=0.3)
    act = spell.activity()
    np.testing.assert_allclose(act["t"], [0.7, 0.3])
    np.testing.assert_allclose(act["active_fraction"], [0.5, 0.0])
    # corrections of norm 0.5 and 0.75
    np.testing.assert_allclose(act["mean_norm"], [0.625, 0.0])
    np.testing.assert_allclose(act["max_norm"], [0.75, 0.0])
    np.testing.assert_allclose(act["relative_norm"][0], (0.5 / 0.5 + 0.75 / 0.25) / 2)
    spell.reset_stats()
    assert spell.activity()["t"].shape == (0,)
    quiet = SparseRepellency(z, radius=1.0, record_stats=False)
    quiet(q)
    assert quiet.activity()["t"].shape == (0,)


def test_remember_adds_batches_to_reference():
    spell = SparseRepellency(None, radius=0.5, dynamic=True, remember=True)
    assert spell.n_reference_ == 0
    x = ddpm_sample(_zero_model, (4, 3), n_steps=5, repellency=spell,
                    generator=torch.Generator().manual_seed(0))
    assert spell.n_reference_ == 4
    # the remembered samples now repel a new query sitting on one of them
    d = spell.correction(x[:1] + 0.1)
    assert float(d.norm()) > 0
    ddpm_sample(_zero_model, (4, 3), n_steps=5, repellency=spell,
                generator=torch.Generator().manual_seed(1))
    assert spell.n_reference_ == 8


def test_add_reference_faiss_matches_exact(np_rng):
    pytest.importorskip("faiss")
    z = np_rng.normal(size=(100, 6)).astype(np.float32)
    extra = np_rng.normal(size=(50, 6)).astype(np.float32)
    q = np_rng.normal(size=(20, 6)).astype(np.float32)
    fa = SparseRepellency(z, radius=2.0, index="faiss")
    fa.correction(q)  # builds the index
    fa.add_reference(extra)
    ex = SparseRepellency(np.concatenate([z, extra]), radius=2.0)
    np.testing.assert_allclose(fa.correction(q), ex.correction(q), rtol=1e-4, atol=1e-5)


def test_faiss_approximate_index_runs(np_rng):
    pytest.importorskip("faiss")
    z = np_rng.normal(size=(2000, 8)).astype(np.float32)
    q = z[:30] + 0.05
    fa = SparseRepellency(z, radius=0.5, index="faiss", faiss_factory="IVF16,Flat",
                          faiss_nprobe=16)  # visiting every list: exact
    np.testing.assert_allclose(fa.correction(q), SparseRepellency(z, radius=0.5).correction(q),
                               rtol=1e-4, atol=1e-5)


def test_sparse_repellency_delta_counts(np_rng):
    z = np.array([[0.0, 0.0], [0.5, 0.0]])
    q = np.array([[0.25, 0.0], [5.0, 5.0]])
    delta, counts = sparse_repellency_delta(q, z, 1.0)
    np.testing.assert_array_equal(counts, [2, 0])
    np.testing.assert_array_equal(delta[1], [0.0, 0.0])


def test_dynamic_single_sample_is_untouched():
    spell = SparseRepellency(None, radius=1.0, dynamic=True)
    q = np.ones((1, 3))
    np.testing.assert_array_equal(spell(q), q)


def test_exact_duplicate_gets_no_correction_and_no_nan():
    spell = SparseRepellency(np.zeros((1, 2)), radius=1.0)
    out = spell(np.zeros((1, 2)))
    assert np.all(np.isfinite(out))


def test_repr():
    assert "radius=1" in repr(SparseRepellency(np.zeros((2, 2)), radius=1.0))
    assert "DenseRepulsion" in repr(DenseRepulsion())


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("radius", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_radius(radius):
    with pytest.raises(ValueError, match="radius"):
        SparseRepellency(np.zeros((2, 3)), radius=radius)


def test_radius_wrong_type():
    with pytest.raises(TypeError, match="radius"):
        SparseRepellency(np.zeros((2, 3)), radius="1")


def test_bad_overcompensation():
    with pytest.raises(ValueError, match="overcompensation"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, overcompensation=0.0)


def test_dimension_mismatch():
    spell = SparseRepellency(np.zeros((2, 3)), radius=1.0)
    with pytest.raises(ValueError, match="dimension"):
        spell(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dimension"):
        spell.add_reference(np.zeros((1, 4)))


def test_empty_reference():
    with pytest.raises(ValueError, match="reference"):
        SparseRepellency(np.zeros((0, 3)), radius=1.0)


def test_missing_reference():
    with pytest.raises(ValueError, match="reference"):
        SparseRepellency(None, radius=1.0)


def test_reference_1d():
    with pytest.raises(ValueError, match="reference"):
        SparseRepellency(np.zeros(3), radius=1.0)


def test_nan_reference():
    z = np.zeros((2, 3))
    z[0, 1] = np.nan
    with pytest.raises(ValueError, match="reference"):
        SparseRepellency(z, radius=1.0)


def test_nan_query():
    q = np.zeros((2, 3))
    q[1, 2] = np.nan
    with pytest.raises(ValueError, match="x0_hat"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0)(q)


def test_query_without_batch_axis():
    with pytest.raises(ValueError, match="x0_hat"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0)(np.zeros(3))


def test_bad_index():
    with pytest.raises(ValueError, match="index"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, index="annoy")


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, chunk_size=2.5)


def test_bad_n_cells():
    with pytest.raises(ValueError, match="n_cells"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, n_cells=0)
    with pytest.raises(TypeError, match="n_cells"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, n_cells="many")


def test_bad_dynamic_flag():
    with pytest.raises(TypeError, match="dynamic"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, dynamic="yes")


def test_dense_repulsion_bad_input():
    with pytest.raises(ValueError, match="strength"):
        DenseRepulsion(strength=-1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        DenseRepulsion(bandwidth=0.0)


def test_dense_repulsion_median_bandwidth_pushes_apart(np_rng):
    x = torch.as_tensor(np_rng.normal(size=(16, 4)))
    out = DenseRepulsion(strength=0.1)(x)
    d_in = torch.pdist(x).min()
    d_out = torch.pdist(out).min()
    assert d_out > d_in
    assert DenseRepulsion().activity()["active_fraction"].shape == (0,)


# ------------------------------------------------------------------------------------------
# samplers and schedule
# ------------------------------------------------------------------------------------------
def test_schedule_values():
    s = NoiseSchedule(n_train_steps=10, beta_start=0.1, beta_end=0.2)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(),
                               np.cumprod(1 - np.linspace(0.1, 0.2, 10)), rtol=1e-6)
    c = NoiseSchedule(n_train_steps=50, kind="cosine")
    assert torch.all(torch.diff(c.alphas_cumprod) < 0)
    np.testing.assert_array_equal(s.timesteps(5), [8, 6, 4, 2, 0])
    x0 = torch.ones(3, 2)
    noise = torch.zeros(3, 2)
    t = torch.tensor([0, 4, 9])
    np.testing.assert_allclose(s.add_noise(x0, noise, t)[:, 0].numpy(),
                               s.alphas_cumprod[t].sqrt().numpy(), rtol=1e-6)


def test_schedule_bad_input():
    with pytest.raises(ValueError, match="n_train_steps"):
        NoiseSchedule(n_train_steps=1)
    with pytest.raises(ValueError, match="kind"):
        NoiseSchedule(kind="sigmoid")
    with pytest.raises(ValueError, match="beta_end"):
        NoiseSchedule(beta_end=1.5)
    with pytest.raises(ValueError, match="n_steps"):
        NoiseSchedule(n_train_steps=10).timesteps(11)


@pytest.mark.parametrize("sampler", [ddpm_sample, ddim_sample])
def test_sampler_bad_input(sampler):
    s = NoiseSchedule(n_train_steps=20)
    with pytest.raises(ValueError, match="prediction"):
        sampler(_zero_model, (2, 3), s, n_steps=5, prediction="score")
    with pytest.raises(TypeError, match="shape"):
        sampler(_zero_model, 3, s, n_steps=5)
    with pytest.raises(ValueError, match="shape"):
        sampler(_zero_model, (2,), s, n_steps=5)
    with pytest.raises(ValueError, match="n_steps"):
        sampler(_zero_model, (2, 3), s, n_steps=50)
    with pytest.raises(ValueError, match="clip"):
        sampler(_zero_model, (2, 3), s, n_steps=5, clip=(1.0, -1.0))
    with pytest.raises(TypeError, match="model"):
        sampler("model", (2, 3), s, n_steps=5)
    with pytest.raises(TypeError, match="repellency"):
        sampler(_zero_model, (2, 3), s, n_steps=5, repellency=3)
    with pytest.raises(TypeError, match="schedule"):
        sampler(_zero_model, (2, 3), "linear", n_steps=5)
    with pytest.raises(TypeError, match="dtype"):
        sampler(_zero_model, (2, 3), s, n_steps=5, dtype=torch.int64)
    with pytest.raises(ValueError, match="model"):
        sampler(lambda x, t: x[:, :1], (2, 3), s, n_steps=5)
    with pytest.raises(ValueError, match="x_T"):
        sampler(_zero_model, (2, 3), s, n_steps=5, x_T=torch.zeros(2, 4))


def test_ddim_bad_eta():
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(_zero_model, (2, 3), n_steps=5, eta=-0.1)


def test_sampler_info_and_trajectory():
    s = NoiseSchedule(n_train_steps=100)
    spell = SparseRepellency(torch.zeros(1, 3), radius=0.5)
    x, info = ddpm_sample(_zero_model, (4, 3), s, n_steps=10, repellency=spell,
                          return_info=True, return_trajectory=True,
                          generator=torch.Generator().manual_seed(0))
    assert info["active"].shape == (10, 4) and info["correction_norm"].shape == (10, 4)
    assert info["x0_hat"].shape == (10, 4, 3)
    np.testing.assert_array_equal(info["timesteps"].numpy(), s.timesteps(10))
    # a zero noise predictor gives x0_hat = x_t / sqrt(abar): the last step is in the ball
    assert bool(info["active"][-1].any()) or bool((x.norm(dim=1) >= 0.5).all())
    assert bool((x.norm(dim=1) >= 0.5 - 1e-6).all())


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_prediction_types_give_same_samples(prediction):
    # a Gaussian N(0, s^2) data set has closed-form eps, x0 and v predictors
    s2 = 0.25
    sched = NoiseSchedule(n_train_steps=200)
    abar = sched.alphas_cumprod

    def model(x, t):
        ab = abar[t].to(x.dtype)[:, None]
        x0 = ab.sqrt() * s2 / (ab * s2 + 1 - ab) * x
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        if prediction == "epsilon":
            return eps
        if prediction == "sample":
            return x0
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0

    outs = {}
    for sampler in (ddpm_sample, ddim_sample):
        outs[sampler.__name__] = sampler(model, (64, 2), sched, n_steps=50,
                                         prediction=prediction, dtype=torch.float64,
                                         generator=torch.Generator().manual_seed(0))
    # the result of each sampler has about the data variance
    for x in outs.values():
        assert abs(float(x.var()) - s2) < 0.12


def test_clip_range_respected():
    x = ddpm_sample(lambda x, t: -10 * torch.ones_like(x), (3, 2), n_steps=10,
                    clip=(-1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert float(x.abs().max()) <= 1.0 + 1e-6


# ------------------------------------------------------------------------------------------
# model and training
# ------------------------------------------------------------------------------------------
def test_load_digits_images():
    x, y = load_digits_images(50, random_state=1)
    assert x.shape == (50, 1, 8, 8) and y.shape == (50,)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    with pytest.raises(ValueError, match="n_images"):
        load_digits_images(5000)


def test_mlp_denoiser_shapes():
    m = MLPDenoiser(DenoiserConfig(sample_shape=(2, 3), hidden=16, n_blocks=1, time_dim=8))
    out = m(torch.randn(5, 2, 3), torch.arange(5))
    assert out.shape == (5, 2, 3)


def test_train_ddpm_tiny_run_reduces_loss():
    cfg = DenoiserConfig(hidden=64, n_blocks=1, time_dim=16)
    res = train_ddpm(n_images=64, n_iter=60, batch_size=32, config=cfg, random_state=0)
    loss = np.asarray(res.history["loss"])
    assert loss.shape == (60,) and np.all(np.isfinite(loss))
    assert loss[-20:].mean() < loss[:10].mean()
    assert res.images.shape == (64, 1, 8, 8)
    x = ddpm_sample(res.model, (3, 1, 8, 8), res.schedule, n_steps=5)
    assert x.shape == (3, 1, 8, 8)


def test_train_ddpm_bad_input():
    with pytest.raises(ValueError, match="n_iter"):
        train_ddpm(n_iter=0)
    with pytest.raises(ValueError, match="lr"):
        train_ddpm(lr=-1.0)
    with pytest.raises(TypeError, match="images"):
        train_ddpm(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        train_ddpm(torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="sample_shape"):
        train_ddpm(torch.zeros(4, 2), config=DenoiserConfig(sample_shape=(3,)))


# ------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------
def test_metrics_namespaces(xp, np_rng):
    a = xp.asarray(np_rng.normal(size=(30, 4)))
    b = xp.asarray(np_rng.normal(size=(20, 4)))
    assert 1.0 <= vendi_score(a) <= 30.0
    p, r = knn_precision_recall(a, b, k=2)
    assert 0 <= p <= 1 and 0 <= r <= 1
    d, idx = nearest_distance(b, a, chunk_size=7)
    dn = np.linalg.norm(to_numpy(b)[:, None] - to_numpy(a)[None], axis=-1)
    np.testing.assert_allclose(to_numpy(d), dn.min(1), rtol=1e-10)
    np.testing.assert_array_equal(to_numpy(idx), dn.argmin(1))
    assert shield_share(b, a, 1e-9) == 0.0
    assert shield_share(b, a, 100.0) == 1.0


def test_metrics_bad_input(np_rng):
    a = np_rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="k"):
        knn_precision_recall(a, a, k=10)
    with pytest.raises(ValueError, match="dimension"):
        knn_precision_recall(a, np_rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="dimension"):
        nearest_distance(a, np_rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="kernel"):
        vendi_score(a, kernel="laplace")
    with pytest.raises(ValueError, match="bandwidth"):
        vendi_score(a, kernel="rbf", bandwidth=-1.0)
    with pytest.raises(ValueError, match="x"):
        vendi_score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="radius"):
        shield_share(a, a, 0.0)
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="real"):
        knn_precision_recall(bad, a)


# ------------------------------------------------------------------------------------------
# diffusers integration (tiny random UNet, nothing downloaded)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_unet():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    ).eval()


@pytest.mark.parametrize("scheduler_name", ["DDPMScheduler", "DDIMScheduler"])
def test_diffusers_sample_with_spell(tiny_unet, scheduler_name):
    import diffusers

    from sciml_toolbox.nn.diffusion import SpellScheduler, diffusers_sample

    sched_cls = getattr(diffusers, scheduler_name)
    plain, _ = diffusers_sample(tiny_unet, sched_cls(clip_sample=False), (6, 1, 8, 8),
                                n_steps=6, generator=torch.Generator().manual_seed(0))
    ref = plain[:3] + 0.05  # protect points next to half the unshielded samples
    spell = SparseRepellency(ref, radius=1.0)
    shielded, sched = diffusers_sample(tiny_unet, sched_cls(clip_sample=False), (6, 1, 8, 8),
                                       n_steps=6, repellency=spell,
                                       generator=torch.Generator().manual_seed(0))
    assert isinstance(sched, SpellScheduler) and len(sched.history_) == 6
    assert shielded.shape == (6, 1, 8, 8)
    d_plain = torch.cdist(plain[:3].reshape(3, -1), ref.reshape(3, -1)).diagonal()
    d_shield = torch.cdist(shielded[:3].reshape(3, -1), ref.reshape(3, -1)).diagonal()
    assert bool((d_plain < 1.0).all())
    assert bool((d_shield > d_plain).all())
    if scheduler_name == "DDPMScheduler":  # ancestral: the last step leaves the balls
        assert shield_share(shielded, ref, 1.0) == 0.0


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_spell_scheduler_pred_original_is_corrected(prediction):
    diffusers = pytest.importorskip("diffusers")
    from sciml_toolbox.nn.diffusion import SpellScheduler

    ref = torch.zeros(1, 4)
    spell = SparseRepellency(ref, radius=1.0, overcompensation=1.0)
    base = diffusers.DDIMScheduler(prediction_type=prediction, clip_sample=False)
    base.set_timesteps(10)
    wrapped = SpellScheduler(base, spell)
    t = base.timesteps[3]
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    out = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)) * 0.1
    plain_x0 = base.step(out, t, x).pred_original_sample
    x0 = wrapped.step(out, t, x).pred_original_sample
    np.testing.assert_allclose(x0.numpy(), spell(plain_x0).numpy(), rtol=1e-4, atol=1e-5)
    # attribute access and assignment go to the wrapped scheduler
    assert wrapped.config is base.config
    wrapped.custom_flag = 3
    assert base.custom_flag == 3


def test_spell_scheduler_in_a_diffusers_pipeline(tiny_unet):
    diffusers = pytest.importorskip("diffusers")
    from sciml_toolbox.nn.diffusion import SpellScheduler

    spell = SparseRepellency(torch.zeros(1, 1, 8, 8), radius=3.0)
    pipe = diffusers.DDPMPipeline(unet=tiny_unet, scheduler=diffusers.DDPMScheduler())
    pipe.scheduler = SpellScheduler(pipe.scheduler, spell)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, num_inference_steps=4, output_type="np",
               generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (2, 8, 8, 1)
    assert len(pipe.scheduler.history_) == 4


def test_spell_scheduler_bad_input():
    diffusers = pytest.importorskip("diffusers")
    from sciml_toolbox.nn.diffusion import SpellScheduler

    spell = SparseRepellency(torch.zeros(1, 4), radius=1.0)
    with pytest.raises(ValueError, match="scheduler"):
        SpellScheduler(diffusers.EulerDiscreteScheduler(), spell)
    with pytest.raises(TypeError, match="scheduler"):
        SpellScheduler(object(), spell)
    with pytest.raises(TypeError, match="repellency"):
        SpellScheduler(diffusers.DDPMScheduler(), 3)


def test_bad_n_passes():
    with pytest.raises(ValueError, match="n_passes"):
        SparseRepellency(np.zeros((2, 3)), radius=1.0, n_passes=0)


# ------------------------------------------------------------------------------------------
# the digits DDPM end to end (trained once per session, a few CPU minutes: slow)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def memorising_ddpm():
    return train_ddpm(n_images=64, n_iter=2500, random_state=0)


@pytest.mark.slow
def test_digits_ddpm_memorises_and_spell_shields(memorising_ddpm):
    ddpm = memorising_ddpm
    r = 1.5
    all_digits, _ = load_digits_images()
    d_heldout = nearest_distance(all_digits, ddpm.images)[0]
    heldout_share = float((d_heldout[d_heldout > 0] < r).float().mean())
    kw = dict(n_steps=100)
    plain = ddpm_sample(ddpm.model, (256, 1, 8, 8), ddpm.schedule,
                        generator=torch.Generator().manual_seed(1), **kw)
    share_plain = shield_share(plain, ddpm.images, r)
    # it memorises: far more samples than held-out digits sit next to a training image
    assert share_plain > 0.3 and share_plain > 10 * heldout_share
    spell = SparseRepellency(ddpm.images, radius=r)
    shielded = ddpm_sample(ddpm.model, (256, 1, 8, 8), ddpm.schedule, repellency=spell,
                           generator=torch.Generator().manual_seed(1), **kw)
    assert shield_share(shielded, ddpm.images, r) <= share_plain / 5
    spell5 = SparseRepellency(ddpm.images, radius=r, n_passes=5)
    shielded5 = ddpm_sample(ddpm.model, (256, 1, 8, 8), ddpm.schedule, repellency=spell5,
                            generator=torch.Generator().manual_seed(1), **kw)
    assert shield_share(shielded5, ddpm.images, r) <= 0.02
    # SPELL acts late in sampling, on a part of the batch at a time
    act = spell.activity()
    assert act["active_fraction"][: len(act["t"]) // 2].max() < 0.1
    assert 0 < act["active_fraction"].max() < 1
