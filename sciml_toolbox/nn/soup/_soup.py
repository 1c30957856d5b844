"""Soup-of-Experts: shared parameters plus a bank of experts mixed by a router.

Reference: P. Ablin, A. Katharopoulos, S. Seto, D. Grangier, "Soup-of-Experts: Pretraining
Specialist Models via Parameters Averaging", ICML 2025.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..._validation import check_int, check_option, check_positive, check_simplex

__all__ = ["SoupOfExperts", "save_model", "load_model"]


_FLAT = "_flat_full_experts"


def _key(name):
    return name.replace(".", "__")


def _tinylm_factory(config):
    from ..lm import TinyLM

    return lambda: TinyLM(config)


class SoupOfExperts(nn.Module):
    """Shared parameters plus a bank of expert parameters, mixed by an MLP router.

    For domain weights ``h`` on the simplex (a histogram over ``n_domains`` training domains),
    the router gives coefficients ``phi(h)`` in R^n_experts and the instantiated model has the
    parameters

        theta(h) = S + sum_j phi(h)_j E_j,

    where ``S`` are the shared parameters (the base model's own) and ``E_j`` the experts, each of
    the same shapes as ``S`` (Ablin et al., 2025). With ``rank=r`` every matrix-shaped expert is
    low rank, ``E_j = U_j V_j`` with ``U_j`` (out, r) and ``V_j`` (r, in); vectors stay full.
    Instantiating a specialist costs one weighted sum of the bank and no training.

    Training calls :meth:`forward` with the batch and its ``h``: the model is evaluated through
    :func:`torch.func.functional_call` on ``theta(h)``, so gradients reach the shared
    parameters, the bank and the router.

    Parameters
    ----------
    base : TinyLMConfig or callable
        The base architecture: a :class:`~sciml_toolbox.nn.lm.TinyLMConfig`, or a factory
        ``base() -> nn.Module`` building the base model (called once here and once per
        :meth:`instantiate` only for its structure).
    n_experts : int
        Number of experts in the bank.
    n_domains : int
        Length of the domain-weight vectors ``h``.
    router_hidden : int, default=64
        Hidden width of the router MLP ``n_domains -> router_hidden -> n_experts`` (GELU).
    rank : int, optional
        Low-rank experts for 2-D parameters (``None``: full experts).
    coefficients : {'linear', 'softmax'}, default='linear'
        Output map of the router. The paper's exact normalisation of ``phi`` is not public:
        ``'linear'`` leaves the router output free (the experts set their own scale);
        ``'softmax'`` makes ``theta(h)`` the shared part plus a convex combination of experts.
    top_k : int, optional
        Sparse routing: keep only the ``top_k`` coefficients of largest magnitude (for
        ``'softmax'``: the softmax over the ``top_k`` largest router outputs) and zero the rest,
        in training and at instantiation alike. Instantiation then reads ``top_k`` experts of
        the bank instead of all of them, which is what makes it fast on memory-bound hardware:
        a dense weighted sum must read the whole bank (``n_experts`` times the model). ``None``
        (default): dense coefficients, as in the paper.
    expert_init_std : float, default=1e-3
        Standard deviation of the experts' initialisation (small, so ``theta(h)`` starts near
        the shared parameters for every ``h``).
    random_state : int, default=0
        Seed of the initialisation (the base model's, the bank's and the router's).

    Attributes
    ----------
    shared : nn.Module
        The base model holding the shared parameters ``S``.
    bank : nn.ParameterDict
        The experts. Full experts of every parameter are stored together in one
        (n_experts, n_full_params) matrix (see :meth:`expert` for one parameter's view);
        low-rank factors as ``<name>__U`` (n_experts, out, rank) and ``<name>__V``
        (n_experts, rank, in), with dots in names replaced by ``__``.
    router : nn.Sequential
        The MLP ``h -> phi(h)``.
    param_names : list of str
        Names of the base model's (distinct) parameters, in order.

    Examples
    --------
    >>> from sciml_toolbox.nn.lm import TinyLMConfig
    >>> soup = SoupOfExperts(TinyLMConfig(d_model=32, n_layers=1, n_heads=2), n_experts=4,
    ...                      n_domains=3)
    >>> model = soup.instantiate([0.2, 0.3, 0.5])   # a plain TinyLM
    >>> sum(p.numel() for p in model.parameters()) == soup.base_num_parameters()
    True
    """

    def __init__(self, base, n_experts, n_domains, *, router_hidden=64, rank=None,
                 coefficients="linear", top_k=None, expert_init_std=1e-3, random_state=0):
        super().__init__()
        self.n_experts = check_int(n_experts, "n_experts", min_value=1)
        self.n_domains = check_int(n_domains, "n_domains", min_value=1)
        self.router_hidden = check_int(router_hidden, "router_hidden", min_value=1)
        self.rank = check_int(rank, "rank", min_value=1, allow_none=True)
        self.coefficient_map = check_option(coefficients, "coefficients", ("linear", "softmax"))
        self.top_k = check_int(top_k, "top_k", min_value=1, allow_none=True)
        if self.top_k is not None and self.top_k > self.n_experts:
            raise ValueError(f"top_k={self.top_k} exceeds n_experts={self.n_experts}")
        self.expert_init_std = check_positive(expert_init_std, "expert_init_std", strict=False)
        self.random_state = random_state
        self._base_config = None
        if isinstance(base, nn.Module):
            raise TypeError("base must be a TinyLMConfig or a factory returning a fresh "
                            f"nn.Module (e.g. lambda: {type(base).__name__}(...)), got an "
                            f"{type(base).__name__} instance")
        if callable(base) and not hasattr(base, "d_model"):
            factory = base
        elif hasattr(base, "d_model") and hasattr(base, "n_layers"):
            self._base_config = base
            factory = _tinylm_factory(base)
        else:
            raise TypeError("base must be a TinyLMConfig or a callable returning an nn.Module, "
                            f"got {type(base).__name__}")
        self._factory = factory
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(int(random_state))
        try:
            shared = factory()
            if not isinstance(shared, nn.Module):
                raise TypeError(f"base() must return an nn.Module, got {type(shared).__name__}")
            self.shared = shared
            self.param_names = [n for n, _ in shared.named_parameters()]
            self._low_rank = set()
            self._full = []  # (name, offset, numel, shape) of experts kept in the flat bank
            bank = {}
            offset = 0
            full_dtype = None
            for name, p in shared.named_parameters():
                if self.rank is not None and p.ndim == 2:
                    out_dim, in_dim = p.shape
                    std = float(np.sqrt(self.expert_init_std)) if self.expert_init_std else 0.0
                    bank[_key(name) + "__U"] = nn.Parameter(
                        torch.randn(self.n_experts, out_dim, self.rank, dtype=p.dtype) * std)
                    bank[_key(name) + "__V"] = nn.Parameter(
                        torch.randn(self.n_experts, self.rank, in_dim, dtype=p.dtype) * std
                        / np.sqrt(self.rank))
                    self._low_rank.add(name)
                else:
                    self._full.append((name, offset, p.numel(), tuple(p.shape)))
                    offset += p.numel()
                    full_dtype = p.dtype
            if self._full:
                # all full experts in one (n_experts, n_full) matrix: instantiation is then a
                # single vector-matrix product over the bank, the memory-bound optimum
                bank[_FLAT] = nn.Parameter(torch.randn(self.n_experts, offset, dtype=full_dtype)
                                           * self.expert_init_std)
            self.bank = nn.ParameterDict(bank)
            self.router = nn.Sequential(
                nn.Linear(self.n_domains, self.router_hidden),
                nn.GELU(),
                nn.Linear(self.router_hidden, self.n_experts),
            )
        finally:
            torch.random.set_rng_state(gen_state)

    # ------------------------------------------------------------------ sizes
    def base_num_parameters(self):
        """Parameter count of one instantiated (deployed) model."""
        return sum(p.numel() for p in self.shared.parameters())

    def num_parameters(self):
        """Parameter count of the whole soup (shared + bank + router)."""
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ mixing
    def _check_h(self, h):
        if isinstance(h, torch.Tensor):
            if h.ndim != 1 or h.shape[0] != self.n_domains:
                raise ValueError(f"h must have shape ({self.n_domains},), got {tuple(h.shape)}")
            hn = h.detach().to("cpu", torch.float64).numpy()
            check_simplex(hn, "h", length=self.n_domains, atol=1e-4)
            return h
        hn = np.asarray(h, dtype=np.float64) if not isinstance(h, np.ndarray) else h
        hn = check_simplex(hn, "h", length=self.n_domains, atol=1e-4)
        p = next(self.router.parameters())
        return torch.as_tensor(hn, dtype=p.dtype, device=p.device)

    def coefficients(self, h):
        """Expert coefficients ``phi(h)``.

        Parameters
        ----------
        h : array_like or Tensor, shape (n_domains,)
            Domain weights on the simplex.

        Returns
        -------
        phi : Tensor, shape (n_experts,)
            With ``top_k``, all but ``top_k`` entries are exactly zero.
        """
        h = self._check_h(h)
        p = next(self.router.parameters())
        out = self.router(h.to(device=p.device, dtype=p.dtype))
        if self.top_k is None or self.top_k == self.n_experts:
            return torch.softmax(out, dim=-1) if self.coefficient_map == "softmax" else out
        if self.coefficient_map == "softmax":
            idx = torch.topk(out, self.top_k).indices
            return torch.zeros_like(out).index_put((idx,), torch.softmax(out[idx], dim=-1))
        idx = torch.topk(out.abs(), self.top_k).indices
        return torch.zeros_like(out).index_put((idx,), out[idx])

    def merged_parameters(self, h):
        """The parameters ``theta(h) = S + sum_j phi(h)_j E_j`` (differentiable).

        Parameters
        ----------
        h : array_like or Tensor, shape (n_domains,)

        Returns
        -------
        params : dict of str to Tensor
            One tensor per base parameter name, of the base parameter's shape.
        """
        return self._merge(self.coefficients(h))

    def _merge(self, phi, out=None):
        """``S + sum_j phi_j E_j`` per parameter; without autograd, written into ``out``
        (a dict of name to tensor) when given, else into one fresh flat buffer."""
        params = {}
        shared = dict(self.shared.named_parameters())
        grad = torch.is_grad_enabled()
        sel = None
        if self.top_k is not None and self.top_k < self.n_experts:
            sel = torch.nonzero(phi.detach()).flatten().tolist()  # at most top_k experts
        if self._full:
            flat_bank = self.bank[_FLAT]
            if grad:
                # one vector-matrix product over the bank (sparse: over the chosen rows)
                flat = (phi.to(flat_bank.dtype) @ flat_bank if sel is None else
                        phi[sel].to(flat_bank.dtype) @ flat_bank[sel])
                for name, off, n, shape in self._full:
                    params[name] = shared[name] + flat[off:off + n].view(shape)
            else:
                coef = phi.to(flat_bank.dtype)
                dense = sel is None
                flat = None
                if dense:  # memory-bound: one pass over the whole bank
                    flat = torch.mv(flat_bank.t(), coef)
                elif out is None:
                    flat = torch.empty(flat_bank.shape[1], dtype=flat_bank.dtype,
                                       device=flat_bank.device)
                for name, off, n, shape in self._full:
                    dst = out[name] if out is not None else flat[off:off + n].view(shape)
                    if dense:
                        if out is None:
                            dst.add_(shared[name])
                        else:
                            torch.add(flat[off:off + n].view(shape), shared[name], out=dst)
                    elif not sel:  # every coefficient is zero (e.g. a zero-initialised router)
                        dst.copy_(shared[name])
                    else:
                        # S + phi_j0 E_j0 in one pass, then the other chosen experts
                        rows = flat_bank[:, off:off + n]
                        torch.add(shared[name], rows[sel[0]].view(shape),
                                  alpha=float(coef[sel[0]]), out=dst)
                        for j in sel[1:]:
                            dst.add_(rows[j].view(shape), alpha=float(coef[j]))
                    params[name] = dst
        for name in self._low_rank:
            delta = self._low_rank_delta(name, phi, sel)
            if out is not None and not grad:
                params[name] = torch.add(shared[name], delta, out=out[name])
            else:
                params[name] = shared[name] + delta
        return params

    def _low_rank_delta(self, name, phi, sel=None):
        """``sum_j phi_j U_j V_j`` as one product of inner dimension n_experts * rank (or
        top_k * rank over the chosen experts ``sel``)."""
        u = self.bank[_key(name) + "__U"]  # (e, out, r)
        v = self.bank[_key(name) + "__V"]  # (e, r, in)
        if sel is not None:
            u, v, phi = u[sel], v[sel], phi[sel]
        e, o, r = u.shape
        uw = (u * phi.to(u.dtype)[:, None, None]).permute(1, 0, 2).reshape(o, e * r)
        return uw @ v.reshape(e * r, v.shape[-1])

    def expert(self, name):
        """The experts of one base parameter, stacked: shape (n_experts, \\*param_shape).

        Parameters
        ----------
        name : str
            A base parameter name (see :attr:`param_names`).

        Returns
        -------
        experts : Tensor
            A view into the bank for full experts; ``U_j @ V_j`` for low-rank ones.
        """
        if name in self._low_rank:
            return self.bank[_key(name) + "__U"] @ self.bank[_key(name) + "__V"]
        for n, off, k, shape in self._full:
            if n == name:
                return self.bank[_FLAT][:, off:off + k].view(self.n_experts, *shape)
        raise KeyError(f"{name!r} is not a parameter of the base model; known: "
                       f"{self.param_names}")

    def forward(self, x, h, *args, **kwargs):
        """Run the model with parameters ``theta(h)`` on ``x`` (gradients reach every part).

        Parameters
        ----------
        x : Tensor
            The base model's input, e.g. token ids of shape (batch, seq_len) for TinyLM.
        h : array_like or Tensor, shape (n_domains,)
            Domain weights of the batch.
        *args, **kwargs
            Passed to the base model's forward.

        Returns
        -------
        out
            The base model's output (TinyLM: logits of shape (batch, seq_len, vocab)).
        """
        return functional_call(self.shared, self.merged_parameters(h), (x, *args), kwargs,
                               tie_weights=True)

    @torch.no_grad()
    def instantiate(self, h, out=None):
        """A plain base model with parameters ``theta(h)``: the specialist for ``h``.

        The returned module has exactly the base model's parameters (same names, shapes,
        count and weight tying), detached from the soup; it can be fine-tuned or saved on
        its own.

        Parameters
        ----------
        h : array_like or Tensor, shape (n_domains,)
            Domain weights on the simplex.
        out : nn.Module, optional
            A model of the base architecture (for example an earlier result of this method)
            whose parameters are overwritten in place with ``theta(h)`` and which is
            returned: switching specialists then allocates nothing.

        Returns
        -------
        model : nn.Module
            A new copy of the base model (for a TinyLMConfig base: a TinyLM), or ``out``.
        """
        phi = self.coefficients(h)
        if out is not None:
            dst = dict(out.named_parameters())
            ref = dict(self.shared.named_parameters())
            missing = [n for n in self.param_names if n not in dst]
            wrong = [n for n in self.param_names if n in dst and dst[n].shape != ref[n].shape]
            if missing or wrong or len(dst) != len(self.param_names):
                raise ValueError("out must be a model of the soup's base architecture "
                                 f"(missing parameters {missing}, wrong shapes {wrong})")
            self._merge(phi, out={n: dst[n].data for n in self.param_names})
            return out
        merged = self._merge(phi)  # no_grad: fresh tensors
        return _clone_with_parameters(self.shared, {
            n: nn.Parameter(merged[n], requires_grad=q.requires_grad)
            for n, q in self.shared.named_parameters()})

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Save the soup (constructor arguments and all parameters) to ``path``.

        A soup built from a factory can be loaded only by passing the same factory to
        :meth:`load`; one built from a ``TinyLMConfig`` is rebuilt from the file alone.
        """
        torch.save({
            "format": "sciml_toolbox.SoupOfExperts/1",
            "config": None if self._base_config is None else self._base_config.to_dict(),
            "kwargs": {"n_experts": self.n_experts, "n_domains": self.n_domains,
                       "router_hidden": self.router_hidden, "rank": self.rank,
                       "coefficients": self.coefficient_map, "top_k": self.top_k,
                       "expert_init_std": self.expert_init_std,
                       "random_state": self.random_state},
            "state_dict": self.state_dict(),
        }, Path(path))

    @classmethod
    def load(cls, path, base=None, map_location="cpu"):
        """Load a soup saved by :meth:`save`.

        Parameters
        ----------
        path : str or Path
        base : TinyLMConfig or callable, optional
            Required when the soup was built from a factory.
        map_location : str or torch.device, default='cpu'

        Returns
        -------
        soup : SoupOfExperts
        """
        ck = _load_file(path, map_location)
        if ck.get("format") != "sciml_toolbox.SoupOfExperts/1":
            raise ValueError(f"{path} is not a file written by SoupOfExperts.save")
        if base is None:
            if ck["config"] is None:
                raise ValueError("this soup was built from a factory: pass it as base=")
            from ..lm import TinyLMConfig

            base = TinyLMConfig(**ck["config"])
        soup = cls(base, **ck["kwargs"])
        soup.load_state_dict(ck["state_dict"])
        return soup


def _clone_with_parameters(module, params, prefix="", memo=None):
    """A structural copy of ``module`` with parameters taken from ``params`` (name -> Parameter)
    and buffers cloned; submodules and parameters shared inside ``module`` stay shared.

    ``copy.deepcopy`` with a memo does the same generically but walks every attribute; this
    walks the module tree only (modules hold their state in ``_parameters``, ``_buffers`` and
    ``_modules``), which is about ten times faster for a transformer.
    """
    if memo is None:
        memo = {}
    if id(module) in memo:
        return memo[id(module)]
    new = module.__class__.__new__(module.__class__)
    memo[id(module)] = new
    new.__dict__ = {k: (v.copy() if type(v) in (dict, OrderedDict, set) else v)
                    for k, v in module.__dict__.items()}
    for name, p in module._parameters.items():
        if p is None:
            continue
        key = id(p)
        if key not in memo:
            memo[key] = params[prefix + name]
        new._parameters[name] = memo[key]
    for name, b in module._buffers.items():
        if b is not None:
            if id(b) not in memo:
                memo[id(b)] = b.clone()
            new._buffers[name] = memo[id(b)]
    for name, child in module._modules.items():
        if child is not None:
            new._modules[name] = _clone_with_parameters(child, params, f"{prefix}{name}.", memo)
    return new


def _load_file(path, map_location):
    """``torch.load`` of a file written by this module, with errors that name the file."""
    import pickle
    import struct

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, struct.error, ValueError,
            KeyError, IndexError) as exc:
        raise ValueError(f"path {str(path)!r} is not a readable torch file "
                         f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict):
        raise ValueError(f"path {str(path)!r} does not hold a saved model")
    return ck


def save_model(model, path):
    """Save an instantiated TinyLM (its config and parameters) to ``path``.

    Parameters
    ----------
    model : TinyLM
    path : str or Path
    """
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "to_dict"):
        raise TypeError("model must be a TinyLM (with a .config); save other modules with "
                        "torch.save(model.state_dict(), path)")
    torch.save({"format": "sciml_toolbox.TinyLM/1", "config": cfg.to_dict(),
                "state_dict": model.state_dict()}, Path(path))


def load_model(path, map_location="cpu"):
    """Load a TinyLM saved by :func:`save_model`.

    Returns
    -------
    model : TinyLM
    """
    from ..lm import TinyLM, TinyLMConfig

    ck = _load_file(path, map_location)
    if ck.get("format") != "sciml_toolbox.TinyLM/1":
        raise ValueError(f"{path} is not a file written by save_model")
    model = TinyLM(TinyLMConfig(**ck["config"]))
    model.load_state_dict(ck["state_dict"])
    return model
