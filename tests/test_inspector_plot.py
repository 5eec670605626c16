"""numtorch.inspector.plot: one row per module, three panels, every axis with data labelled."""

import pytest
from test_inspector_report import inspected

pytest.importorskip("matplotlib")

from numtorch.inspector.plot import draw, plot  # noqa: E402


def test_every_panel_with_data_has_labelled_axes_and_rows_follow_the_modules():
    inspector = inspected(4)
    report = inspector.report()
    figure = draw(report)
    axes = figure.axes
    assert len(axes) == 3 * len(report["modules"])
    for row, meta in enumerate(report["modules"]):
        for panel in axes[3 * row:3 * row + 3]:
            assert panel.get_title(loc="left").startswith(f"{meta['name']}: ")
            if panel.has_data():
                assert panel.get_xlabel() == "step" and panel.get_ylabel()
    gradients, updates = axes[4], axes[5]  # (1) ReLU: a gradient, no parameters
    assert gradients.get_yscale() == "log" and not updates.has_data()
    guide = [line for line in axes[2].get_lines() if line.get_label() == "1e-3 guide"]
    assert guide and list(guide[0].get_ydata()) == [1e-3, 1e-3]


def test_a_warned_module_is_drawn_in_red_and_the_png_is_written(tmp_path):
    inspector = inspected(2)
    report = inspector.report()
    report["warnings"] = [{"key": ["dead", "(1) ReLU"], "step": 2, "text": "..."}]
    figure = draw(report)
    # Titles are drawn at the left; matplotlib keeps that title in _left_title.
    assert figure.axes[3]._left_title.get_color() == "tab:red"
    assert figure.axes[0]._left_title.get_color() == "black"
    plot(report, tmp_path / "inspect.png")
    assert (tmp_path / "inspect.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_draw_is_an_error():
    report = inspected(1).report()
    report["records"] = []
    with pytest.raises(ValueError, match="nothing to draw: expected at least one module and one record"):
        draw(report)
