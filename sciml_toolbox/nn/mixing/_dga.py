"""Online data mixing by gradient alignment (DGA), its DoGE-style variant and fixed baselines.

References
----------
S. Fan, D. Grangier, P. Ablin, "Dynamic Gradient Alignment for Online Data Mixing", 2024.
S. Fan, M. Pagliardini, M. Jaggi, "DoGE: Domain Reweighting with Generalization Estimation",
ICML 2024.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..._validation import (
    check_array,
    check_in_range,
    check_int,
    check_option,
    check_positive,
    check_simplex,
)
from ..lm import Callback, default_loss, per_sequence_loss

__all__ = [
    "MixingMethod",
    "UniformMixture",
    "ImportanceSampling",
    "DGA",
    "DoGE",
    "exponentiated_gradient_step",
]


def exponentiated_gradient_step(weights, scores, step_size):
    """One mirror-descent (exponentiated-gradient) step on the simplex.

    ``w_new = softmax(log w + step_size * scores)``: weights move towards the entries with the
    largest scores, multiplicatively, and stay on the simplex.

    Parameters
    ----------
    weights : array_like, shape (k,)
        Current weights on the simplex (zeros stay zero).
    scores : array_like, shape (k,)
        Alignment scores (larger is better).
    step_size : float
        Mirror-descent step size (>= 0).

    Returns
    -------
    new_weights : ndarray, shape (k,)
    """
    w = np.asarray(check_simplex(np.asarray(weights, dtype=np.float64), "weights"),
                   dtype=np.float64)
    s = np.asarray(check_array(np.asarray(scores, dtype=np.float64), "scores", ndim=1),
                   dtype=np.float64)
    if s.shape != w.shape:
        raise ValueError(f"scores must have the shape of weights {w.shape}, got {s.shape}")
    step_size = check_positive(step_size, "step_size", strict=False)
    with np.errstate(divide="ignore"):
        logits = np.log(w) + step_size * s
    logits -= logits.max()
    e = np.exp(logits)
    return e / e.sum()


class MixingMethod(Callback):
    """Base class: a training mixture over the *generic* domains of a corpus.

    A mixing method is passed as the ``mixture`` of :func:`sciml_toolbox.nn.lm.train`: the
    trainer calls it every step for the domain weights and, since it is a
    :class:`~sciml_toolbox.nn.lm.Callback`, registers it as a hook and checkpoints its state.
    The weights cover ``generic_domains`` of the corpus; every other corpus domain (for
    example the specific set) gets weight 0.

    Parameters
    ----------
    n_domains : int
        Number of generic domains (the length of the weights).
    generic_domains : list of (str or int), optional
        The corpus domains the weights refer to, in order. Default: every corpus domain except
        ``specific`` (a method that has one).

    Attributes
    ----------
    weights_ : ndarray, shape (n_domains,)
        Weights over the generic domains used for training now.
    history_ : dict
        ``'step'`` and ``'weights'`` (one row per recorded step).
    """

    specific = None

    def __init__(self, n_domains, *, generic_domains=None):
        self.n_domains = check_int(n_domains, "n_domains", min_value=1)
        self.generic_domains = None if generic_domains is None else list(generic_domains)
        self.weights_ = np.full(self.n_domains, 1.0 / self.n_domains)
        self.history_ = {"step": [], "weights": []}
        self._generic_idx = None

    # ------------------------------------------------------------------ corpus binding
    def bind(self, corpus):
        """Resolve domain names against ``corpus`` (called by the trainer's first hook)."""
        spec = None
        if self.specific is not None and not _is_tokens(self.specific):
            spec = corpus.domain_index(self.specific)
        if self.generic_domains is None:
            idx = [i for i in range(corpus.n_domains) if i != spec]
        else:
            idx = [corpus.domain_index(d) for d in self.generic_domains]
        if len(idx) != self.n_domains:
            raise ValueError(f"n_domains={self.n_domains} but {len(idx)} generic domains were "
                             f"found in the corpus ({[corpus.names[i] for i in idx]})")
        if spec is not None and spec in idx:
            raise ValueError(f"the specific domain {corpus.names[spec]!r} is also listed among "
                             "generic_domains")
        self._corpus = corpus
        self._generic_idx = np.asarray(idx)
        return self

    def expand(self, weights):
        """Weights over the generic domains as weights over every corpus domain."""
        full = np.zeros(self._corpus.n_domains)
        full[self._generic_idx] = weights
        return full

    def on_train_begin(self, state):
        self.bind(state.corpus)

    def __call__(self, step):
        if self._generic_idx is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a corpus: pass it as "
                               "the mixture of sciml_toolbox.nn.lm.train")
        return self.expand(self.weights_)

    def on_step_end(self, state):
        self.history_["step"].append(state.step + 1)
        self.history_["weights"].append(self.weights_.copy())

    def state_dict(self):
        return {"weights": self.weights_.copy(),
                "history": {k: list(v) for k, v in self.history_.items()}}

    def load_state_dict(self, state):
        w = np.asarray(state["weights"], dtype=np.float64)
        if w.shape != self.weights_.shape:
            raise ValueError(f"state['weights'] has shape {w.shape}, this "
                             f"{type(self).__name__} has {self.weights_.shape[0]} domains")
        self.weights_ = w
        self.history_ = {k: list(v) for k, v in state["history"].items()}


def _is_tokens(obj):
    return isinstance(obj, (np.ndarray, torch.Tensor, list, tuple))


class UniformMixture(MixingMethod):
    """The uniform mixture of the generic domains (the default of generic pretraining).

    Parameters
    ----------
    n_domains : int
    generic_domains : list of (str or int), optional
    """


class ImportanceSampling(MixingMethod):
    """A fixed mixture: the specific set's histogram over the generic domains.

    This is the importance-sampling baseline of DGA (CRISP-style: weight each generic domain
    or cluster by how much of the specific set falls into it). With little generic data per
    domain it repeats the few domains it favours, which is where it overfits.

    Parameters
    ----------
    histogram : array_like, shape (n_domains,)
        On the simplex.
    generic_domains : list of (str or int), optional
    specific : str or int, optional
        The specific domain of the corpus, excluded from the default generic domains.
    """

    def __init__(self, histogram, *, generic_domains=None, specific=None):
        h = np.asarray(check_simplex(np.asarray(histogram, dtype=float), "histogram"),
                       dtype=float)
        super().__init__(h.shape[0], generic_domains=generic_domains)
        self.specific = specific
        self.weights_ = h / h.sum()

    @classmethod
    def from_classifier(cls, classifier, specific_tokens, **kwargs):
        """Estimate the histogram with a fitted domain classifier.

        Parameters
        ----------
        classifier : sciml_toolbox.nn.soup.DomainClassifier
            Fitted on the generic domains.
        specific_tokens : array_like of int
            The specific set (a stream or windows).
        **kwargs
            Passed to the constructor.
        """
        from ..soup import estimate_histogram

        return cls(estimate_histogram(classifier, specific_tokens, hard=True), **kwargs)


class DGA(MixingMethod):
    """Dynamic Gradient Alignment: online domain weights that follow the specific gradient.

    Every ``update_every`` steps the training batch is drawn stratified, ``batch_size / p``
    sequences from each of the ``p`` basis distributions (by default the generic domains
    themselves), and the training loss of that step is ``sum_j w_j L_j`` with ``L_j`` the mean
    loss of stratum ``j``: an unbiased estimate of the mixture's loss. One extra backward pass on
    a batch of the specific set gives ``g_spe``, and the weights take an exponentiated-gradient
    step on the alignments ``a_j = <g_j, g_spe>_P`` of the basis gradients ``g_j = grad L_j``::

        w <- softmax(log w + step_size * a)
        w_used <- ema * w_used + (1 - ema) * w

    (Fan, Grangier, Ablin, 2024; the exact update is reconstructed from the paper's summary:
    mirror descent on the simplex with an EMA of the weights). ``P`` is the identity, or the
    optimizer's Adam second-moment preconditioner with ``preconditioning='adam'`` (the
    alignment the Adam update itself sees). The training mixture is
    ``alpha = w_used @ bases``.

    The alignments never need the ``p`` basis gradients themselves: ``a_j`` is the mean over
    stratum ``j`` of the directional derivatives ``<grad l_s, v>`` of the per-sequence losses
    along ``v = P^{-1} g_spe``. ``alignment='finite_difference'`` (default) gets all of them
    from one extra forward pass without autograd, ``l_s(theta + eps v) - l_s(theta)`` over
    ``eps``, reusing the training forward for ``l_s(theta)``; ``'forward_ad'`` computes them
    exactly with forward-mode autodiff (a few forwards' cost; the model's operations must
    support it); ``'backward'`` forms every ``g_j`` with one batched backward pass (exact, and
    costs about ``p`` backward passes). An update step therefore costs one training step plus
    the specific gradient plus one forward pass.

    The distribution-reweighting variant passes ``bases``: rows are distributions over the
    generic domains (for example histograms of many fine-grained domains over k-means
    clusters); the weights then live on the ``p`` bases and the cost scales with ``p``, not
    with the number of domains.

    Parameters
    ----------
    n_domains : int
        Number of generic domains.
    specific : str, int or array_like of int
        The specific set: a domain of the corpus (name or index), or its tokens (a 1-D stream).
    update_every : int, default=10
        Steps between weight updates (T_r in the paper).
    step_size : float, default=1.0
        Mirror-descent step size on the alignments (>= 0).
    ema : float in [0, 1), default=0.5
        Weight of the previous training weights in their exponential moving average.
    preconditioning : {'none', 'adam'}, default='none'
    bases : array_like, shape (n_bases, n_domains), optional
        Basis distributions (rows on the simplex). Default: the identity.
    specific_batch_size : int, optional
        Sequences of the specific batch (default: the training batch size).
    generic_domains : list of (str or int), optional
    init : array_like, shape (n_bases,), optional
        Initial weights over the bases (default uniform).
    eps : float, default=1e-8
        Added to the preconditioner's denominator.
    alignment : {'finite_difference', 'forward_ad', 'backward'}, default='finite_difference'
        How the alignments are computed (see above). The finite difference needs a
        deterministic forward pass (no active dropout): with dropout, ``l_s(theta)`` is
        re-evaluated in eval mode with one more forward pass.
    smoothing : float in [0, 1), default=0.0
        After every mirror-descent step the iterate is mixed with the uniform distribution,
        ``w <- (1 - smoothing) w + smoothing / p`` (the smoothing of DoReMi, Xie et al., 2023):
        no basis weight falls below ``smoothing / p``, so a basis that the weights left can
        come back when its alignment recovers instead of staying locked out.
    fd_step : float, default=1e-4
        Relative finite-difference step: the perturbation ``eps v`` has norm
        ``fd_step * max(||theta||, 1)``.
    normalize : {'none', 'std'}, default='none'
        ``'std'`` standardises the alignments of every update across the bases,
        ``a <- (a - mean(a)) / std(a)`` (zeros when they are all equal), before the
        mirror-descent step. Raw alignments are products of gradients, which shrink as the loss
        falls, so a fixed ``step_size`` that suits late training can saturate the weights at
        the first updates;
        standardised, ``step_size`` is the log-weight gap per update between a basis one
        standard deviation above the mean and an average one, whatever the model and stage.

    Attributes
    ----------
    weights_ : ndarray, shape (n_domains,)
        Training weights over the generic domains.
    basis_weights_ : ndarray, shape (n_bases,)
        ``w_used``: the EMA of the mirror-descent iterates.
    raw_weights_ : ndarray, shape (n_bases,)
        ``w``: the mirror-descent iterate.
    alignment_history_ : list of ndarray
        The scores of every update as the mirror-descent step used them: the alignments,
        standardised with ``normalize='std'``.
    n_updates_ : int

    Examples
    --------
    >>> from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train
    >>> corpus = DomainCorpus.synthetic(n_domains=3, n_tokens=20_000, seq_len=16)
    >>> dga = DGA(2, specific="markov2", update_every=2)
    >>> hist = train(TinyLM(TinyLMConfig(d_model=16, n_layers=1, n_heads=2)), corpus, dga,
    ...              4, **dga.train_kwargs(batch_size=4))
    >>> dga.n_updates_
    2
    """

    def __init__(self, n_domains, *, specific, update_every=10, step_size=1.0, ema=0.5,
                 preconditioning="none", bases=None, specific_batch_size=None,
                 generic_domains=None, init=None, eps=1e-8, alignment="finite_difference",
                 fd_step=1e-4, smoothing=0.0, normalize="none"):
        super().__init__(n_domains, generic_domains=generic_domains)
        self.normalize = check_option(normalize, "normalize", ("none", "std"))
        self.smoothing = check_in_range(smoothing, "smoothing", 0.0, 1.0, closed="left")
        self.alignment = check_option(alignment, "alignment",
                                      ("finite_difference", "forward_ad", "backward"))
        self.fd_step = check_positive(fd_step, "fd_step")
        self.update_every = check_int(update_every, "update_every", min_value=1)
        self.step_size = check_positive(step_size, "step_size", strict=False)
        self.ema = check_in_range(ema, "ema", 0.0, 1.0, closed="left")
        self.preconditioning = check_option(preconditioning, "preconditioning",
                                            ("none", "adam"))
        self.specific_batch_size = check_int(specific_batch_size, "specific_batch_size",
                                             min_value=1, allow_none=True)
        self.eps = check_positive(eps, "eps")
        if specific is None:
            raise ValueError("specific (the specific set) must be given")
        if _is_tokens(specific):
            t = np.asarray(specific.cpu() if isinstance(specific, torch.Tensor) else specific)
            if t.size == 0:
                raise ValueError("specific (the specific set) is empty")
            if t.ndim != 1:
                raise ValueError(f"specific tokens must be a 1-D stream, got shape {t.shape}")
            if not np.issubdtype(t.dtype, np.integer):
                raise TypeError(f"specific tokens must be integers, got dtype {t.dtype}")
            if t.min() < 0:
                raise ValueError(f"specific tokens must be >= 0, got {t.min()}")
            specific = torch.as_tensor(t.astype(np.int64))
        self.specific = specific
        if bases is None:
            bases = np.eye(self.n_domains)
        bases = np.asarray(check_array(np.asarray(bases, dtype=float), "bases", ndim=2))
        if bases.shape[1] != self.n_domains:
            raise ValueError(f"bases must have shape (n_bases, {self.n_domains}), got "
                             f"{bases.shape}")
        for j, row in enumerate(bases):
            check_simplex(row, f"bases[{j}]")
        self.bases = bases / bases.sum(axis=1, keepdims=True)
        p = self.bases.shape[0]
        if init is None:
            init = np.full(p, 1.0 / p)
        init = np.asarray(check_simplex(np.asarray(init, dtype=float), "init", length=p),
                          dtype=float)
        self.raw_weights_ = init.copy()
        self.basis_weights_ = init.copy()
        self.weights_ = self.basis_weights_ @ self.bases
        self.alignment_history_ = []
        self.n_updates_ = 0
        self._strata = None
        self._batch_size = None
        self._last_norm = 1.0

    # ------------------------------------------------------------------ trainer wiring
    def train_kwargs(self, batch_size=16):
        """Keyword arguments wiring DGA into :func:`sciml_toolbox.nn.lm.train`.

        Parameters
        ----------
        batch_size : int, default=16
            Global batch size of training (also the default specific batch size).

        Returns
        -------
        kwargs : dict
            ``batch_size``, ``batch_fn`` (stratified batches on update steps) and ``loss_fn``
            (basis gradients and the weight update on update steps).
        """
        self._batch_size = check_int(batch_size, "batch_size", min_value=1)
        return {"batch_size": self._batch_size, "batch_fn": self.batch_fn,
                "loss_fn": self.loss_fn}

    def bind(self, corpus):
        super().bind(corpus)
        if _is_tokens(self.specific):
            if self.specific.numel() < corpus.seq_len + 1:
                raise ValueError(f"specific has {self.specific.numel()} tokens, fewer than one "
                                 f"window of seq_len + 1 = {corpus.seq_len + 1}")
            hi = int(self.specific.max())
            if hi >= corpus.vocab_size:
                raise ValueError(f"specific has token ids up to {hi}, outside the corpus's "
                                 f"vocabulary [0, {corpus.vocab_size})")
        return self

    def on_train_begin(self, state):
        """Bind to the corpus and check that the trainer uses DGA's batches and loss."""
        super().on_train_begin(state)
        uses_batches = getattr(state, "batch_fn", self.batch_fn) == self.batch_fn
        uses_loss = getattr(state, "loss_fn", self.loss_fn) == self.loss_fn
        if not (uses_batches and uses_loss):
            other = " and ".join(n for n, ok in (("batch_fn", uses_batches),
                                                 ("loss_fn", uses_loss)) if not ok)
            raise ValueError(
                f"{type(self).__name__} updates its weights from the batches and loss it builds "
                f"itself, but train uses another {other}: call "
                "train(model, corpus, dga, steps) without batch_fn/loss_fn, or with "
                "**dga.train_kwargs(batch_size)")
        size = getattr(state, "batch_size", None)
        if size is not None and self._batch_size is not None and size != self._batch_size:
            raise ValueError(f"batch_size={size} of train differs from the batch_size="
                             f"{self._batch_size} given to train_kwargs")

    def _is_update_step(self, step):
        return (step + 1) % self.update_every == 0

    def batch_fn(self, state):
        """The step's global batch: stratified by basis on update steps, else ``sample``."""
        corpus, b = state.corpus, self._batch_size
        if b is None:
            raise RuntimeError("call train(..., **dga.train_kwargs(batch_size)) so that DGA "
                               "builds the batches")
        if not self._is_update_step(state.step):
            self._strata = None
            return corpus.sample(state.mixture, b)
        p = self.bases.shape[0]
        counts = np.full(p, b // p)
        counts[: b % p] += 1
        xs, ys, ds, ids = [], [], [], []
        for j in range(p):
            if counts[j] == 0:
                continue
            x, y, d = corpus.sample(self.expand(self.bases[j]), int(counts[j]))
            xs.append(x)
            ys.append(y)
            ds.append(d)
            ids.append(torch.full((int(counts[j]),), j, dtype=torch.int64))
        self._strata = torch.cat(ids)
        return torch.cat(xs), torch.cat(ys), torch.cat(ds)

    def _specific_batch(self, state, size):
        corpus = state.corpus
        if not _is_tokens(self.specific):
            x, y, _ = corpus.domain_batch(self.specific, size)
            return x, y
        t = self.specific
        gen = torch.Generator().manual_seed(int(self.n_updates_) + 12345)
        off = torch.randint(0, t.numel() - corpus.seq_len, (size,), generator=gen)
        idx = off[:, None] + torch.arange(corpus.seq_len + 1)
        seqs = t[idx]
        return seqs[:, :-1], seqs[:, 1:]

    def _preconditioner(self, state, params):
        if self.preconditioning == "none":
            return None
        out = []
        opt = state.optimizer
        for p in params:
            st = opt.state.get(p, {})
            v = st.get("exp_avg_sq")
            if v is None:
                return None  # before the first optimizer step: no second moments yet
            step = st.get("step", 1)
            step = float(step.item() if torch.is_tensor(step) else step)
            beta2 = next(g for g in opt.param_groups if any(q is p for q in g["params"])
                         )["betas"][1]
            vhat = v / (1 - beta2 ** max(step, 1.0))
            out.append((vhat.sqrt() + self.eps).reshape(-1))
        return torch.cat(out)

    def loss_fn(self, model, x, y, state):
        """Training loss; on update steps also computes the alignments and updates."""
        if state.mode != "train" or self._strata is None:
            return default_loss(model, x, y, state)
        if self.alignment == "backward":
            return self._loss_backward(model, x, y, state)
        rank, world = state.rank, state.world_size
        logits = model(x)  # the DDP wrapper under torchrun: its hooks reduce the gradient
        per_seq = per_sequence_loss(logits, y)
        onehot, counts, loss_sums = self._strata_stats(per_seq, rank, x.shape[0], world)
        w_used = torch.as_tensor(self.basis_weights_, dtype=torch.float32,
                                 device=per_seq.device)
        per_stratum = w_used / counts.clamp_min(1.0)  # weight of one sequence of stratum j
        # DDP averages the ranks' gradients: scale by world so that the sum is the mixture's
        loss = (per_stratum @ (onehot @ per_seq.float())) * world
        v = self._specific_direction(state, rank, world)
        deriv = self._directional_derivatives(state, x, y, per_seq.detach(), v)
        sums = onehot.float() @ deriv.float()
        if world > 1:
            dist.all_reduce(sums)
        scores = self._finish_scores((sums / counts.clamp_min(1.0)).double().cpu().numpy(),
                                     counts)
        self._update(scores, state)
        value = (w_used @ (loss_sums / counts.clamp_min(1.0))).to(per_seq.dtype)
        return value + (loss - loss.detach()).to(per_seq.dtype)

    def _strata_stats(self, per_seq, rank, n_local, world):
        """One-hot strata of the local rows, and the global stratum counts and loss sums."""
        ids = self._strata[rank * n_local:(rank + 1) * n_local].to(per_seq.device)
        p = self.bases.shape[0]
        onehot = (ids[None, :] == torch.arange(p, device=ids.device)[:, None]).to(
            per_seq.dtype)  # (p, n_local)
        counts = onehot.sum(dim=1).float()
        loss_sums = (onehot @ per_seq.detach()).float()
        if world > 1:
            dist.all_reduce(counts)
            dist.all_reduce(loss_sums)
        return onehot, counts, loss_sums

    def _specific_direction(self, state, rank, world):
        """``v = P^{-1} g_spe``: the preconditioned gradient of a specific batch (flat)."""
        size = self.specific_batch_size or self._batch_size
        xs, ys = self._specific_batch(state, size)
        if world > 1:
            xs = xs[rank * (size // world):(rank + 1) * (size // world)]
            ys = ys[rank * (size // world):(rank + 1) * (size // world)]
        g_spe = state.gradient(xs, ys).float()
        pre = self._preconditioner(state, state.parameters())
        return g_spe if pre is None else g_spe / pre

    @staticmethod
    def _finish_scores(scores, counts):
        scores[counts.cpu().numpy() == 0] = 0.0  # a basis without sequences: no information
        return scores

    def _directional_derivatives(self, state, x, y, per_seq, v):
        """``<grad l_s(theta), v>`` for every local sequence ``s``, shape (n_local,)."""
        net = state.model
        named = [(n, q) for n, q in net.named_parameters() if q.requires_grad]
        vs = [t.view_as(q) for t, (_, q) in zip(v.split([q.numel() for _, q in named]), named,
                                                strict=True)]
        if self.alignment == "forward_ad":
            import torch.autograd.forward_ad as fwad
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with torch.no_grad(), fwad.dual_level(), sdpa_kernel(SDPBackend.MATH):
                duals = {n: fwad.make_dual(q.detach(), t.to(q.dtype))
                         for (n, q), t in zip(named, vs, strict=True)}
                out = per_sequence_loss(torch.func.functional_call(net, duals, (x,)), y)
                return fwad.unpack_dual(out).tangent.float()
        with torch.no_grad():
            vnorm = float(v.norm())
            if vnorm == 0.0:
                return torch.zeros_like(per_seq, dtype=torch.float32)
            tnorm = float(torch.sqrt(sum((q.float() ** 2).sum() for _, q in named)))
            eps = self.fd_step * max(tnorm, 1.0) / vnorm
            was_training = net.training
            if was_training and _has_active_dropout(net):
                net.eval()  # a deterministic pair of evaluations
                per_seq = per_sequence_loss(net(x), y)
            try:
                moved = {n: q + eps * t.to(q.dtype) for (n, q), t in zip(named, vs, strict=True)}
                plus = per_sequence_loss(torch.func.functional_call(net, moved, (x,)), y)
            finally:
                net.train(was_training)
            return ((plus.double() - per_seq.double()) / eps).float()

    def _loss_backward(self, model, x, y, state):
        """Update step with every basis gradient formed by one batched backward pass."""
        net = state.model  # per-stratum gradients are reduced by hand, not by DDP hooks
        params = state.parameters()
        per_seq = per_sequence_loss(net(x), y)
        rank, world = state.rank, state.world_size
        onehot, counts, loss_sums = self._strata_stats(per_seq, rank, x.shape[0], world)
        sums = self._stratum_gradient_sums(per_seq, onehot, params)
        if world > 1:
            dist.all_reduce(sums)
        g = sums / counts.clamp_min(1.0)[:, None]
        self._last_norm = float(g.norm(dim=1)[counts > 0].mean())
        v = self._specific_direction(state, rank, world)
        scores = self._finish_scores((g @ v).double().cpu().numpy(), counts)
        w_used = self.basis_weights_.copy()
        train_grad = (torch.as_tensor(w_used, dtype=g.dtype, device=g.device) @ g)
        self._update(scores, state)
        # a surrogate whose value is the mixture loss and whose gradient is sum_j w_j g_j
        surrogate = sum((q * gq.view_as(q).to(q.dtype)).sum() for q, gq in
                        zip(params, train_grad.split([q.numel() for q in params]),
                            strict=True))
        # the mixture loss of the whole (global) batch: the same number on every rank
        value = (torch.as_tensor(w_used, dtype=torch.float32, device=per_seq.device)
                 @ (loss_sums / counts.clamp_min(1.0))).to(per_seq.dtype)
        return value + surrogate - surrogate.detach()

    @staticmethod
    def _stratum_gradient_sums(per_seq, onehot, params):
        """Rows ``sum_{s in stratum j} grad loss_s``, shape (p, n_params): one vectorised
        backward over the strata (``is_grads_batched``), or one backward per stratum where
        the model has an operation without a batching rule."""
        p = onehot.shape[0]
        try:
            grads = torch.autograd.grad(per_seq, params, grad_outputs=onehot,
                                        is_grads_batched=True, retain_graph=True,
                                        allow_unused=True)
            return _flat(grads, params, p)
        except RuntimeError:
            return torch.cat([_flat(torch.autograd.grad(per_seq @ onehot[j], params,
                                                        retain_graph=True, allow_unused=True),
                                    params, None)[None] for j in range(p)])

    def _scores_transform(self, scores, state):
        if self.normalize == "std":
            sd = float(scores.std())
            return (scores - scores.mean()) / sd if sd > 0.0 else np.zeros_like(scores)
        return scores

    def _update(self, scores, state):
        scores = self._scores_transform(np.asarray(scores, dtype=np.float64), state)
        self.alignment_history_.append(scores.copy())
        self.raw_weights_ = exponentiated_gradient_step(self.raw_weights_, scores,
                                                        self.step_size)
        if self.smoothing:
            p = self.raw_weights_.shape[0]
            self.raw_weights_ = (1 - self.smoothing) * self.raw_weights_ + self.smoothing / p
        self.basis_weights_ = self.ema * self.basis_weights_ + (1 - self.ema) * self.raw_weights_
        self.basis_weights_ /= self.basis_weights_.sum()
        self.weights_ = self.basis_weights_ @ self.bases
        self.n_updates_ += 1

    def state_dict(self):
        sd = super().state_dict()
        sd.update(raw=self.raw_weights_.copy(), basis=self.basis_weights_.copy(),
                  n_updates=self.n_updates_,
                  alignments=[a.copy() for a in self.alignment_history_])
        return sd

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.raw_weights_ = np.asarray(state["raw"], dtype=np.float64)
        self.basis_weights_ = np.asarray(state["basis"], dtype=np.float64)
        self.n_updates_ = int(state["n_updates"])
        self.alignment_history_ = [np.asarray(a) for a in state["alignments"]]


def _has_active_dropout(module):
    return any(m.training and m.p > 0 for m in module.modules()
               if isinstance(m, torch.nn.modules.dropout._DropoutNd))


def _flat(grads, params, batch):
    """Concatenate per-parameter gradients (None: zeros) into rows of length n_params."""
    lead = () if batch is None else (batch,)
    return torch.cat([torch.zeros(*lead, q.numel(), device=q.device) if g is None
                      else g.reshape(*lead, -1).float()
                      for g, q in zip(grads, params, strict=True)], dim=-1)


class DoGE(DGA):
    """DoGE-style per-step reweighting (Fan, Pagliardini, Jaggi, ICML 2024), in DGA's API.

    Weights are updated every step (``update_every=1``) with scores
    ``lr * <g_i, g_spe> / mean_i ||g_i||`` clipped to ``[-clip, clip]``, a mirror-descent step
    ``log w += score / mu`` and no EMA; the time average of the weights is kept in
    ``average_weights_`` (DoGE's output mixture for a later run).

    Parameters
    ----------
    n_domains : int
    specific : str, int or array_like of int
    mu : float, default=0.01
        Inverse step size of the mirror-descent step.
    clip : float, default=1.0
    update_every : int, default=1
    **kwargs
        Other :class:`DGA` parameters (``bases``, ``specific_batch_size``, ...).
        ``alignment`` must stay ``'backward'``: DoGE's scores are normalised by the basis
        gradients' mean norm, which only that mode computes.

    Attributes
    ----------
    average_weights_ : ndarray, shape (n_domains,)
        Time average of the training weights.
    """

    def __init__(self, n_domains, *, specific, mu=0.01, clip=1.0, update_every=1, **kwargs):
        self.mu = check_positive(mu, "mu")
        if kwargs.setdefault("alignment", "backward") != "backward":
            raise ValueError("DoGE needs alignment='backward' (its scores are normalised by "
                             f"the basis gradients' norms), got {kwargs['alignment']!r}")
        self.clip = check_positive(clip, "clip")
        if kwargs.get("normalize", "none") != "none":
            raise ValueError("DoGE normalises its scores itself (by the mean basis gradient "
                             f"norm): normalize must stay 'none', got {kwargs['normalize']!r}")
        kwargs.setdefault("ema", 0.0)
        super().__init__(n_domains, specific=specific, update_every=update_every,
                         step_size=1.0 / self.mu, **kwargs)
        self.average_weights_ = self.weights_.copy()
        self._n_avg = 0

    def _scores_transform(self, scores, state):
        lr = float(state.optimizer.param_groups[0]["lr"])
        return np.clip(lr * scores / max(self._last_norm, 1e-12), -self.clip, self.clip)

    def _update(self, scores, state):
        super()._update(scores, state)
        self._n_avg += 1
        self.average_weights_ += (self.weights_ - self.average_weights_) / self._n_avg
