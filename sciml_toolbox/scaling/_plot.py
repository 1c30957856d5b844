"""Fit and residual plots of scaling laws (matplotlib)."""

from __future__ import annotations

import numpy as np

from .._array_api import to_numpy
from .._validation import check_int

__all__ = ["plot_law_fit", "plot_residuals"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.6))
    return ax


def _check_law_data(law, X, y):
    """A fitted ``law`` and its validated ``X`` (float64 NumPy) and positive losses ``y``."""
    from ._laws import ScalingLaw

    if not isinstance(law, ScalingLaw):
        raise TypeError(f"law must be a fitted ScalingLaw, got {type(law).__name__}")
    law._check_fitted()
    X = law._check_X(X)
    return X, law._check_losses(y, X)


def plot_law_fit(law, X, y, *, x_column=0, group_column=None, ax=None, xlabel=None):
    """Observed losses and the fitted law against one column of ``X`` (log scale).

    Parameters
    ----------
    law : fitted ScalingLaw
    X : array_like, shape (n_points, n_columns)
    y : array_like, shape (n_points,)
    x_column : int, default=0
        Column on the horizontal axis (e.g. 0 for N).
    group_column : int, optional
        Draw one coloured series per distinct value of this column, with the law's prediction
        along ``x_column`` (other columns fixed at the group's median).
    ax : matplotlib Axes, optional
    xlabel : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    X, y = _check_law_data(law, X, y)
    x_column = check_int(x_column, "x_column", min_value=0, max_value=X.shape[1] - 1)
    if group_column is not None:
        group_column = check_int(group_column, "group_column", min_value=0,
                                 max_value=X.shape[1] - 1)
    ax = _axes(ax)
    groups = [None] if group_column is None else np.unique(X[:, group_column])
    cmap = plt.get_cmap("viridis")
    for i, g in enumerate(groups):
        sel = np.ones(len(y), bool) if g is None else X[:, group_column] == g
        color = cmap(i / max(len(groups) - 1, 1))
        label = None if g is None else f"{g:.3g}"
        ax.scatter(X[sel, x_column], y[sel], s=14, color=color, label=label)
        xs = np.geomspace(X[sel, x_column].min(), X[sel, x_column].max(), 100)
        Xg = np.tile(np.median(X[sel], axis=0), (100, 1))
        Xg[:, x_column] = xs
        ax.plot(xs, law.predict(Xg), color=color, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel or f"X[:, {x_column}]")
    ax.set_ylabel("loss")
    if group_column is not None:
        ax.legend(title=f"X[:, {group_column}]", fontsize=7)
    return ax


def plot_residuals(law, X, y, *, ax=None):
    """Log-loss residuals ``log y_hat - log y`` against the predicted loss.

    Parameters
    ----------
    law : fitted ScalingLaw
    X : array_like, shape (n_points, n_columns)
    y : array_like, shape (n_points,)
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    X, y = _check_law_data(law, X, y)
    ax = _axes(ax)
    r = law.residuals(X, y)
    pred = np.asarray(to_numpy(law.predict(np.asarray(to_numpy(X), float))))
    ax.axhline(0.0, color="k", lw=0.8)
    ax.scatter(pred, r, s=12)
    ax.set_xlabel("predicted loss")
    ax.set_ylabel("log residual")
    return ax
