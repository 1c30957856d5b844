"""LandingGeneralizedStiefel: agreement with the array core, GEVP against SciPy, streaming B,
state_dict round trips, param groups and bad input."""

import copy

import numpy as np
import pytest
import scipy.linalg as sl

torch = pytest.importorskip("torch")

from sciml_toolbox.nn.optim import LandingGeneralizedStiefel  # noqa: E402
from sciml_toolbox.stiefel import landing_step  # noqa: E402


def _spd(n, evals, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * evals) @ Q.T


def _pencil(n=15, seed=0):
    rng = np.random.default_rng(seed)
    A = _spd(n, np.linspace(1.0, 0.01, n), rng)
    B = _spd(n, np.exp(np.log(0.2) * np.linspace(0, 1, n)), rng)
    return A / np.linalg.norm(A), B / np.linalg.norm(B)


def _b_orth(X, B):
    L = np.linalg.cholesky(X.T @ B @ X)
    return np.linalg.solve(L, X.T).T


def _loss_grad(X, A):
    X.grad = None
    loss = -0.5 * torch.trace(X.T @ A @ X)
    loss.backward()
    return loss


def test_one_step_matches_numpy_core():
    A, B = _pencil()
    rng = np.random.default_rng(0)
    X0 = rng.standard_normal((15, 3)) * 0.5
    X = torch.nn.Parameter(torch.tensor(X0))
    opt = LandingGeneralizedStiefel([X], lr=3.0, omega=0.7, epsilon=0.5)
    _loss_grad(X, torch.tensor(A))
    opt.step(B=torch.tensor(B))
    ref, _ = landing_step(X0, -A @ X0, B @ X0, learning_rate=3.0, omega=0.7, B=B, epsilon=0.5)
    np.testing.assert_allclose(X.detach().numpy(), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mode", ["matrix", "callable", "BX", "group"])
def test_gevp_converges_to_scipy(mode):
    n, p = 15, 3
    A, B = _pencil(n)
    _, V = sl.eigh(A, B, subset_by_index=[n - p, n - 1])
    X0 = _b_orth(np.random.default_rng(1).standard_normal((n, p)), B)
    X = torch.nn.Parameter(torch.tensor(X0))
    At, Bt = torch.tensor(A), torch.tensor(B)
    lam_a, lam_b = np.linalg.eigvalsh(A)[-1], np.linalg.eigvalsh(B)[-1]
    lr = 2.0 / (lam_a * lam_b)
    if mode == "group":
        opt = LandingGeneralizedStiefel([{"params": [X], "B": Bt}], lr=lr, omega=0.5 / (lr * lam_b))
    else:
        opt = LandingGeneralizedStiefel([X], lr=lr, omega=0.5 / (lr * lam_b),
                                        lambda_max=lam_b)
    for _ in range(2500):
        _loss_grad(X, At)
        if mode == "matrix":
            opt.step(B=Bt)
        elif mode == "callable":
            opt.step(B=lambda W: Bt @ W)
        elif mode == "BX":
            opt.step(BX=Bt @ X.detach())
        else:
            opt.step()
    Xn = X.detach().numpy()
    Q1, _ = np.linalg.qr(V)
    Q2, _ = np.linalg.qr(Xn)
    assert np.linalg.norm(Q2 - Q1 @ (Q1.T @ Q2), 2) < 1e-6
    np.testing.assert_allclose(Xn.T @ B @ Xn, np.eye(p), atol=1e-8)


def test_streaming_B_from_minibatches_reaches_constraint():
    """Random B_zeta = A_b^T A_b / r: only BX is formed; the constraint for the population B is
    met up to the noise level. (Using one batch for both factors of B_zeta X (X^T B_zeta X - I)
    biases the normal direction by O(1/r), hence the large batch here.)"""
    rng = np.random.default_rng(0)
    d, p, n = 8, 2, 20000
    Z = rng.standard_normal((n, d)) @ (np.diag(np.linspace(0.5, 2.0, d)))
    C = Z.T @ Z / n
    Zt = torch.tensor(Z)
    X = torch.nn.Parameter(torch.tensor(rng.standard_normal((d, p)) * 0.3))
    target = torch.tensor(rng.standard_normal((d, p)))
    opt = LandingGeneralizedStiefel([X], lr=0.05, omega=1.0, lambda_max=10.0)
    viol = []
    for it in range(1000):
        if it == 500:
            opt.param_groups[0]["lr"] *= 0.1
        idx = torch.randint(0, n, (2048,), generator=torch.Generator().manual_seed(it))
        Ab = Zt[idx]
        X.grad = None
        loss = ((X - target) ** 2).sum()
        loss.backward()
        opt.step(BX=Ab.T @ (Ab @ X.detach()) / 2048)
        if it in (499, 999):
            Xn = X.detach().numpy()
            viol.append(np.linalg.norm(Xn.T @ C @ Xn - np.eye(p)))
    assert viol[-1] < 0.02
    assert viol[-1] < viol[0]


def test_state_dict_round_trip_with_momentum():
    A, B = _pencil()
    At, Bt = torch.tensor(A), torch.tensor(B)
    X0 = _b_orth(np.random.default_rng(2).standard_normal((15, 2)), B)

    def run(steps, opt, X):
        for _ in range(steps):
            _loss_grad(X, At)
            opt.step(B=Bt)

    X1 = torch.nn.Parameter(torch.tensor(X0))
    o1 = LandingGeneralizedStiefel([X1], lr=1.0, momentum=0.9)
    run(10, o1, X1)
    sd = copy.deepcopy(o1.state_dict())  # state_dict holds references
    X2 = torch.nn.Parameter(X1.detach().clone())
    o2 = LandingGeneralizedStiefel([X2], lr=1.0, momentum=0.9)
    o2.load_state_dict(sd)
    run(5, o1, X1)
    run(5, o2, X2)
    torch.testing.assert_close(X1.detach(), X2.detach(), rtol=0, atol=0)
    assert "momentum_buffer" in o2.state[X2]


def test_param_groups_and_foreach_agree():
    A, B = _pencil()
    At, Bt = torch.tensor(A), torch.tensor(B)
    rng = np.random.default_rng(3)
    X0s = [_b_orth(rng.standard_normal((15, k)), B) for k in (1, 3)]
    results = []
    for foreach in (False, True):
        Xs = [torch.nn.Parameter(torch.tensor(x)) for x in X0s]
        opt = LandingGeneralizedStiefel(
            [{"params": [Xs[0]], "lr": 0.5}, {"params": [Xs[1]]}], lr=2.0, foreach=foreach
        )
        for _ in range(20):
            for X in Xs:
                _loss_grad(X, At)
            opt.step(B={Xs[0]: Bt, Xs[1]: Bt})
        results.append([x.detach().clone() for x in Xs])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(results[0][0], torch.tensor(X0s[0]))


def test_bad_lr():
    X = torch.nn.Parameter(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="lr"):
        LandingGeneralizedStiefel([X], lr=-1.0)


def test_bad_omega_epsilon_momentum_fused():
    X = torch.nn.Parameter(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="omega"):
        LandingGeneralizedStiefel([X], lr=0.1, omega=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        LandingGeneralizedStiefel([X], lr=0.1, epsilon=0.0)
    with pytest.raises(ValueError, match="momentum"):
        LandingGeneralizedStiefel([X], lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="fused"):
        LandingGeneralizedStiefel([X], lr=0.1, fused=True)


def test_bad_param_shape():
    with pytest.raises(ValueError, match="params must be 2-D"):
        LandingGeneralizedStiefel([torch.nn.Parameter(torch.zeros(4))], lr=0.1)
    with pytest.raises(ValueError, match="params must be 2-D"):
        LandingGeneralizedStiefel([torch.nn.Parameter(torch.zeros(2, 4))], lr=0.1)


def test_bad_missing_B_and_BX_shape():
    X = torch.nn.Parameter(torch.randn(4, 2, dtype=torch.float64))
    opt = LandingGeneralizedStiefel([X], lr=0.1)
    (X**2).sum().backward()
    with pytest.raises(ValueError, match="B or BX"):
        opt.step()
    with pytest.raises(ValueError, match="BX must have the shape"):
        opt.step(BX=torch.zeros(4, 3, dtype=torch.float64))


# ------------------------------------------------------------------ two half-batch estimates
def test_split_step_with_equal_halves_reduces_to_one_estimate_step():
    """step(BX=BX, BX2=BX, grad2=p.grad) is the one-estimate step (up to rounding), with
    momentum, weight decay and the safe step (curvature from B), over several steps."""
    rng = np.random.default_rng(0)
    d, p = 6, 2
    B = torch.tensor(_spd(d, np.linspace(2.0, 0.5, d), rng))
    X0 = torch.tensor(_b_orth(rng.standard_normal((d, p)), B.numpy()))
    grads = [torch.tensor(rng.standard_normal((d, p))) for _ in range(5)]
    Xa = torch.nn.Parameter(X0.clone())
    Xb = torch.nn.Parameter(X0.clone())
    kw = dict(lr=0.3, omega=1.0, momentum=0.9, weight_decay=0.01, epsilon=0.5)
    opt_a = LandingGeneralizedStiefel([Xa], **kw)
    opt_b = LandingGeneralizedStiefel([Xb], **kw)
    for g in grads:
        Xa.grad, Xb.grad = g.clone(), g.clone()
        opt_a.step(B=B, BX=B @ Xa.detach())
        BX = B @ Xb.detach()
        opt_b.step(B=B, BX=BX, BX2=BX.clone(), grad2=(g.clone(),))
        torch.testing.assert_close(Xb.detach(), Xa.detach(), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(opt_b.state[Xb]["momentum_buffer"],
                               opt_a.state[Xa]["momentum_buffer"], rtol=0, atol=0)
    assert not torch.allclose(Xa.detach(), X0)  # the steps did move


def test_split_step_expectation_is_unbiased_monte_carlo():
    """Monte-Carlo over half-batch pairs (r = 2 x 3 rows drawn with replacement from a fixed
    dataset of 300 rows, so the halves are independent) of the optimizer's actual step
    (lr = 1, no safe step, D = X_before - X_after), against the full-data field computed here
    from the full covariance B. A parameter with zero gradient isolates the normal part:
    E[D] = B Y (Y^T B Y - I). A parameter with an ICA-type gradient A^T tanh(A X)/h (taken on
    the rows that also estimate B): sym(X^T B E[D]), the part that moves the constraint,
    equals that of the full-data field. Within 5 standard errors with BX2/grad2 (largest
    entry measured 0.6-2.0 over data seeds 2-5); the one-batch step (BX and grad from all 6
    rows) misses both by more than 10 (measured 16-38)."""
    rng = np.random.default_rng(2)
    N, d, p, h, n_draws, omega = 300, 4, 2, 3, 5000, 1.0
    Z = torch.tensor(rng.standard_normal((N, d)) @ rng.standard_normal((d, d)))
    Bf = Z.T @ Z / N
    X0 = torch.tensor(0.4 * rng.standard_normal((d, p)))
    Y0 = torch.tensor(0.4 * rng.standard_normal((d, p)))
    eye = torch.eye(p, dtype=torch.float64)
    # full-data field, written out: 1/2 (G M - BX G^T BX) + omega BX (X^T BX - I)
    BX0, BY0 = Bf @ X0, Bf @ Y0
    Gf = Z.T @ torch.tanh(Z @ X0) / N
    Dx_full = 0.5 * (Gf @ (BX0.T @ BX0) - BX0 @ (Gf.T @ BX0)) + omega * BX0 @ (X0.T @ BX0 - eye)
    Dy_full = omega * BY0 @ (Y0.T @ BY0 - eye)
    idx = torch.as_tensor(rng.integers(0, N, (n_draws, 2 * h)))
    A = Z[idx]  # (draws, 2h, d)
    A1, A2 = A[:, :h], A[:, h:]

    def prods(Ab, V):
        return Ab.transpose(1, 2) @ (Ab @ V) / Ab.shape[1]

    def grad(Ab, V):
        return Ab.transpose(1, 2) @ torch.tanh(Ab @ V) / Ab.shape[1]

    est = dict(BX1=prods(A1, X0), BX2=prods(A2, X0), BY1=prods(A1, Y0), BY2=prods(A2, Y0),
               G1=grad(A1, X0), G2=grad(A2, X0), BX=prods(A, X0), BY=prods(A, Y0),
               G=grad(A, X0))
    Xp = torch.nn.Parameter(X0.clone())
    Yp = torch.nn.Parameter(Y0.clone())
    opt = LandingGeneralizedStiefel([Xp, Yp], lr=1.0, omega=omega, epsilon=None)
    zero = torch.zeros(d, p, dtype=torch.float64)
    D2x, D2y, D1x, D1y = [], [], [], []
    for k in range(n_draws):
        e = {key: v[k] for key, v in est.items()}
        Xp.data.copy_(X0), Yp.data.copy_(Y0)
        Xp.grad, Yp.grad = e["G1"].clone(), zero.clone()
        opt.step(BX=[e["BX1"], e["BY1"]], BX2=[e["BX2"], e["BY2"]], grad2=[e["G2"], zero])
        D2x.append(X0 - Xp.detach()), D2y.append(Y0 - Yp.detach())
        Xp.data.copy_(X0), Yp.data.copy_(Y0)
        Xp.grad, Yp.grad = e["G"].clone(), zero.clone()
        opt.step(BX=[e["BX"], e["BY"]])
        D1x.append(X0 - Xp.detach()), D1y.append(Y0 - Yp.detach())

    def z(samples, exact):
        s = torch.stack(samples).numpy()
        return np.max(np.abs(s.mean(0) - exact.numpy()) / (s.std(0) / np.sqrt(n_draws)))

    def sym_BX(samples):
        T = [X0.T @ Bf @ D for D in samples]
        return [0.5 * (t + t.T) for t in T]

    sym_full = sym_BX([Dx_full])[0]
    assert z(D2y, Dy_full) < 5
    assert z(sym_BX(D2x), sym_full) < 5
    assert z(D1y, Dy_full) > 10
    assert z(sym_BX(D1x), sym_full) > 10


def test_bad_split_inputs():
    X = torch.nn.Parameter(torch.randn(4, 2, dtype=torch.float64))
    opt = LandingGeneralizedStiefel([X], lr=0.1)
    (X**2).sum().backward()
    BX = X.detach().clone()
    with pytest.raises(ValueError, match="BX2 must have the shape"):
        opt.step(BX=BX, BX2=torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="grad2 .* needs BX2"):
        opt.step(BX=BX, grad2=[torch.zeros(4, 2, dtype=torch.float64)])
    with pytest.raises(ValueError, match="grad2 must have the shape"):
        opt.step(BX=BX, BX2=BX, grad2=[torch.zeros(2, 4, dtype=torch.float64)])
    with pytest.raises(ValueError, match="BX2 .* needs BX"):
        opt.step(B=torch.eye(4, dtype=torch.float64), BX2=BX)
    with pytest.raises(ValueError, match="BX2 has 0 entries"):
        opt.step(BX=BX, BX2=[])
    torch.testing.assert_close(X.detach(), BX)  # nothing was applied
