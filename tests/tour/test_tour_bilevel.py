"""The registered demo runs, saves its figure and reports the paper's slopes."""

import pytest


@pytest.mark.slow
def test_demo(tmp_path):
    from sciml_toolbox.tour import get_demos

    demos = {d.name: d for d in get_demos()}
    out = demos["bilevel"].func(tmp_path, "cpu")
    assert (tmp_path / "bilevel.png").exists()
    assert abs(out["slope_ift"] - 1) < 0.15 and abs(out["slope_newton"] - 2) < 0.25
    assert out["bilevel_val_mse"] <= out["ridgecv_val_mse"]
