"""Soup-of-Experts against independent computations of theta(h) = S + sum_j phi(h)_j E_j."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sciml_toolbox.nn.lm import TinyLM, TinyLMConfig
from sciml_toolbox.nn.soup import SoupOfExperts

CFG = TinyLMConfig(d_model=32, n_layers=2, n_heads=2, max_seq_len=32)


def _router_by_hand(soup, h):
    """phi(h) from the router's weights, written out: W2 gelu(W1 h + b1) + b2."""
    lin1, _, lin2 = soup.router
    h = torch.as_tensor(h, dtype=torch.float32)
    hidden = lin1.weight @ h + lin1.bias
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / np.sqrt(2)))  # exact GELU
    out = lin2.weight @ hidden + lin2.bias
    return torch.softmax(out, 0) if soup.coefficient_map == "softmax" else out


@pytest.mark.parametrize("coefficients", ["linear", "softmax"])
def test_instantiate_equals_weighted_sum(coefficients):
    soup = SoupOfExperts(CFG, n_experts=5, n_domains=4, coefficients=coefficients,
                         expert_init_std=0.05, random_state=1)
    h = np.array([0.1, 0.0, 0.6, 0.3])
    phi = _router_by_hand(soup, h).detach()
    model = soup.instantiate(h)
    shared = dict(soup.shared.named_parameters())
    for name, p in model.named_parameters():
        bank = soup.expert(name).detach()
        expected = shared[name].detach().clone()
        for j in range(soup.n_experts):  # the sum written as a loop over experts
            expected += phi[j] * bank[j]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6)


def test_low_rank_experts_equal_products():
    soup = SoupOfExperts(CFG, n_experts=3, n_domains=2, rank=2, expert_init_std=0.05)
    h = [0.25, 0.75]
    phi = _router_by_hand(soup, h).detach()
    model = soup.instantiate(h)
    shared = dict(soup.shared.named_parameters())
    n_low = 0
    for name, p in model.named_parameters():
        key = name.replace(".", "__")
        expected = shared[name].detach().clone()
        if key + "__U" in soup.bank:
            n_low += 1
            u, v = soup.bank[key + "__U"].detach(), soup.bank[key + "__V"].detach()
            assert u.shape[-1] == 2 and v.shape[1] == 2
            for j in range(3):
                expected += phi[j] * (u[j] @ v[j])
        else:
            assert p.ndim == 1
            for j in range(3):
                expected += phi[j] * soup.expert(name)[j].detach()
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6)
    assert n_low > 0


def test_expert_views_and_unknown_name():
    soup = SoupOfExperts(CFG, n_experts=3, n_domains=2)
    shared = dict(soup.shared.named_parameters())
    total = 0
    for name in soup.param_names:
        e = soup.expert(name)
        assert e.shape == (3, *shared[name].shape)
        total += e[0].numel()
    assert total == soup.base_num_parameters()
    with pytest.raises(KeyError, match="not a parameter of the base model"):
        soup.expert("nope")


def test_forward_equals_instantiated_model():
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=3, expert_init_std=0.05)
    h = [0.5, 0.2, 0.3]
    x = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        a = soup(x, h)
        b = soup.instantiate(h)(x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_gradients_reach_shared_bank_and_router():
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=3, expert_init_std=0.05)
    x = torch.randint(0, 256, (2, 16))
    logits = soup(x, torch.tensor([0.2, 0.3, 0.5]))
    F.cross_entropy(logits.reshape(-1, 256), x.reshape(-1)).backward()
    for part in (soup.shared, soup.bank, soup.router):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_router_gradient_matches_finite_differences():
    soup = SoupOfExperts(CFG, n_experts=3, n_domains=2, expert_init_std=0.05).double()
    x = torch.randint(0, 256, (1, 8))
    h = torch.tensor([0.3, 0.7], dtype=torch.float64)

    def loss():
        logits = soup(x, h)
        return F.cross_entropy(logits.reshape(-1, 256), x.reshape(-1))

    loss().backward()
    b = soup.router[2].bias
    g = b.grad[0].item()
    eps = 1e-6
    with torch.no_grad():
        b[0] += eps
        up = loss().item()
        b[0] -= 2 * eps
        down = loss().item()
        b[0] += eps
    assert abs((up - down) / (2 * eps) - g) < 1e-6 * max(1.0, abs(g))


def test_instantiated_model_is_a_plain_base_model():
    soup = SoupOfExperts(CFG, n_experts=8, n_domains=3)
    model = soup.instantiate([1 / 3] * 3)
    base = TinyLM(CFG)
    assert type(model) is TinyLM
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in base.parameters())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in base.named_parameters()]
    assert model.head.weight is model.embed.weight  # weight tying preserved
    # detached from the soup: changing it leaves the soup untouched
    before = soup.shared.embed.weight.detach().clone()
    with torch.no_grad():
        model.embed.weight.add_(1.0)
    torch.testing.assert_close(soup.shared.embed.weight.detach(), before)
    assert soup.num_parameters() > 8 * soup.base_num_parameters()


def _top_k_by_hand(out, k, coefficients):
    """Keep the k router outputs of largest magnitude (softmax: largest values, renormalised)."""
    out = out.detach().numpy().astype(np.float64)
    phi = np.zeros_like(out)
    if coefficients == "softmax":
        keep = np.argsort(out)[-k:]
        e = np.exp(out[keep] - out[keep].max())
        phi[keep] = e / e.sum()
    else:
        keep = np.argsort(np.abs(out))[-k:]
        phi[keep] = out[keep]
    return phi


@pytest.mark.parametrize("coefficients", ["linear", "softmax"])
@pytest.mark.parametrize("rank", [None, 2])
def test_top_k_instantiate_equals_sparse_weighted_sum(coefficients, rank):
    soup = SoupOfExperts(CFG, n_experts=6, n_domains=4, coefficients=coefficients, top_k=2,
                         rank=rank, expert_init_std=0.05, random_state=2)
    h = np.array([0.4, 0.1, 0.2, 0.3])
    lin1, _, lin2 = soup.router
    hidden = F.gelu(lin1(torch.as_tensor(h, dtype=torch.float32)))
    phi = _top_k_by_hand(lin2(hidden), 2, coefficients)
    assert np.count_nonzero(phi) == 2
    np.testing.assert_allclose(soup.coefficients(h).detach().numpy(), phi, rtol=1e-6,
                               atol=1e-7)
    model = soup.instantiate(h)
    shared = dict(soup.shared.named_parameters())
    for name, p in model.named_parameters():
        expected = shared[name].detach().double().clone()
        bank = soup.expert(name).detach().double()
        for j in np.flatnonzero(phi):
            expected += phi[j] * bank[j]
        torch.testing.assert_close(p.detach().double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top_k", [None, 2])
def test_instantiate_into_existing_model_equals_fresh(top_k):
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=3, top_k=top_k, expert_init_std=0.05)
    fresh = soup.instantiate([0.2, 0.3, 0.5])
    target = soup.instantiate([1.0, 0.0, 0.0])
    before = {n: p for n, p in target.named_parameters()}
    got = soup.instantiate([0.2, 0.3, 0.5], out=target)
    assert got is target
    for (n, p), (m, q) in zip(fresh.named_parameters(), got.named_parameters(), strict=True):
        assert n == m and q is before[n]  # same Parameter objects, new values
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    x = torch.randint(0, 256, (2, 16))
    torch.testing.assert_close(fresh(x), got(x))
    # the soup itself is untouched and the tied embedding stays tied
    assert got.head.weight is got.embed.weight and fresh.head.weight is fresh.embed.weight
    with pytest.raises(ValueError, match="base architecture"):
        soup.instantiate([0.2, 0.3, 0.5], out=TinyLM(TinyLMConfig(d_model=16, n_layers=1,
                                                                  n_heads=2)))


def test_top_k_gradients_reach_only_chosen_experts():
    soup = SoupOfExperts(CFG, n_experts=5, n_domains=3, top_k=2, expert_init_std=0.05)
    h = [0.3, 0.3, 0.4]
    x = torch.randint(0, 256, (2, 16))
    soup(x, h).logsumexp(-1).mean().backward()
    chosen = np.flatnonzero(soup.coefficients(h).detach().numpy())
    g = soup.bank["_flat_full_experts"].grad
    assert torch.all(g[chosen].abs().sum(1) > 0)
    others = np.setdiff1d(np.arange(5), chosen)
    assert torch.all(g[others] == 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in soup.router.parameters())
    with pytest.raises(ValueError, match="top_k"):
        SoupOfExperts(CFG, n_experts=3, n_domains=2, top_k=4)


@pytest.mark.parametrize("rank", [None, 2])
def test_top_k_with_all_zero_coefficients_gives_the_shared_model(rank):
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=2, top_k=2, rank=rank, random_state=5)
    with torch.no_grad():
        soup.router[2].weight.zero_()
        soup.router[2].bias.zero_()
    assert torch.count_nonzero(soup.coefficients([0.5, 0.5])) == 0
    model = soup.instantiate([0.5, 0.5])
    for (n, p), (m, q) in zip(model.named_parameters(), soup.shared.named_parameters(),
                              strict=True):
        assert n == m
        torch.testing.assert_close(p, q, rtol=0, atol=0)
