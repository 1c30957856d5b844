"""cca_closed_form and cca_subspace_correlation against an independent generalized eigenproblem."""

import numpy as np
import pytest
import scipy.linalg as sl

from sciml_toolbox.stiefel import cca_closed_form, cca_subspace_correlation, make_cca_data


def _reference_correlations(X, Y, reg):
    """Canonical correlations as the top eigenvalues of the symmetric pencil
    [[0, Sxy], [Syx, 0]] v = rho blockdiag(Sxx + reg I, Syy + reg I) v."""
    n, dx = X.shape
    Z = np.hstack([X - X.mean(0), Y - Y.mean(0)])
    C = Z.T @ Z / n
    A = np.zeros_like(C)
    A[:dx, dx:] = C[:dx, dx:]
    A[dx:, :dx] = C[dx:, :dx]
    B = sl.block_diag(C[:dx, :dx], C[dx:, dx:]) + reg * np.eye(C.shape[0])
    return sl.eigh(A, B, eigvals_only=True)[::-1]


@pytest.mark.parametrize("reg", [0.0, 1e-2])
def test_closed_form_matches_the_pencil_and_its_constraints(reg):
    X, Y = make_cca_data(500, 6, 3, random_state=0)
    Y = Y[:, :4]
    res = cca_closed_form(X, Y, 3, reg=reg)
    np.testing.assert_allclose(res.correlations, _reference_correlations(X, Y, reg)[:3],
                               rtol=1e-10)
    Sxx, Syy, Sxy = res.covariances
    np.testing.assert_allclose(res.weights_x.T @ Sxx @ res.weights_x, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(res.weights_y.T @ Syy @ res.weights_y, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(res.weights_x.T @ Sxy @ res.weights_y, np.diag(res.correlations),
                               atol=1e-10)
    assert cca_closed_form(X, Y, reg=reg).correlations.shape == (4,)


def test_subspace_correlation_sees_only_the_subspaces():
    X, Y = make_cca_data(400, 5, 2, random_state=1)
    res = cca_closed_form(X, Y, 2, reg=1e-3)
    rng = np.random.default_rng(0)
    R, Q = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))  # invertible, not orthogonal
    total = cca_subspace_correlation(res.weights_x @ R, res.weights_y @ Q, res.covariances)
    assert total == pytest.approx(res.correlations.sum(), rel=1e-10)
    # other subspaces reach less
    worse = cca_subspace_correlation(rng.normal(size=(5, 2)), rng.normal(size=(5, 2)),
                                     res.covariances)
    assert worse < total


def test_closed_form_bad_input():
    X, Y = make_cca_data(50, 4, 2, random_state=0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cca_closed_form(X, Y[:-1])
    with pytest.raises(ValueError, match="reg"):
        cca_closed_form(X, Y, reg=-1.0)
    with pytest.raises(ValueError, match="n_components"):
        cca_closed_form(X, Y, 5)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        cca_closed_form(X_nan, Y)
    with pytest.raises(ValueError, match="singular"):
        cca_closed_form(np.hstack([X, X[:, :1]]), Y)
    res = cca_closed_form(X, Y, 2)
    with pytest.raises(ValueError, match="rows"):
        cca_subspace_correlation(np.ones((3, 2)), res.weights_y, res.covariances)
    assert np.isfinite(X).all()  # inputs untouched
