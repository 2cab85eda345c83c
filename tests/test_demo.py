"""`kerasll demo` at its smallest: every artifact is written and listed."""

import numpy as np
import pytest
from click.testing import CliRunner

from kerasll_cli.demo import DEMO_STRATEGIES, demo_config
from kerasll.active.picks_figure import plot_picks
from kerasll_cli import demo, main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_writes_and_lists_every_artifact(tmp_path):
    out = tmp_path / "demo-output"
    result = CliRunner().invoke(
        main,
        ["demo", "--out", str(out), "--cycles", "2", "--epochs", "1"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    for strategy in DEMO_STRATEGIES:
        assert f"| {strategy} |" in result.output
    for name in ("results.csv", "summary.md", "curves.png", "picks.png"):
        assert str(out / name) in result.output
    assert (out / "picks.png").read_bytes()[:8] == PNG
    assert (out / "models" / "learning_loss-trial0.keras").exists()
    assert "Demo finished in" in result.output
    assert (out / "learning_loss.onnx").exists()
    assert "Top 10 by predicted loss (agreement with Keras" in result.output


def test_demo_protocol_fits_the_digits_pool():
    config = demo_config()
    config.check_pool(1437)
    assert config.strategies == DEMO_STRATEGIES and config.trials == 1


def test_picks_grid_shows_both_selections(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, 30)
    path = plot_picks(
        images,
        labels,
        ["a", "b", "c"],
        [5, 2, 9],
        [2.5, 1.0, 0.5],
        [0, 1, 3, 4],
        tmp_path / "picks.png",
        count=3,
        columns=2,
    )
    assert path.read_bytes()[:8] == PNG


def test_top_indices_is_the_one_top_k_of_export_and_demo():
    from kerasll_serving import topk

    from kerasll.export import verify

    assert verify.top_indices is topk.top_indices
    assert demo.top_indices is topk.top_indices
