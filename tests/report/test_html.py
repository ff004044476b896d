import re
import shutil
import subprocess

import numpy as np
import pytest
from report_builders import large_report, vlm_report
from report_png import read_png

from scratchcheck.report import svg
from scratchcheck.report.html import render_html, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_is_self_contained():
    html = render_html(vlm_report())
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", html, re.I)
    assert "http://" not in html and "https://" not in html


def test_report_shows_verdicts_heatmaps_profiles_and_method():
    html = render_html(vlm_report())
    vision = html[html.index('id="c-vision"') : html.index('id="c-projector"')]
    assert ">derived<" in vision and "fine-tuned" in vision
    assert vision.count('<svg class="heatmap"') == 2 and 'class="layer-map"' in vision
    assert vision.count('<svg class="profile"') == 2
    lm = html[html.index('id="c-language-model"') :]
    assert ">independent<" in lm
    for section in ('id="warnings"', 'id="metadata"', 'id="method"', 'id="coverage"'):
        assert section in html
    assert "qwen2_5_vl_32b_visual_fa2" in html  # the metadata channel's strong observation
    assert "coordinate-shuffle" in html and "Null:" in html


def test_raw_cosine_is_beside_pearson_and_marked_uninformative():
    html = render_html(vlm_report())
    rows = [row for row in html.split("<tr>") if "input_layernorm" in row and "uninformative" in row]
    assert rows, "norm-gain rows must mark their raw cosine uninformative"
    cells = re.findall(r'<td class="n">(.*?)</td>', rows[0], re.S)
    assert cells[1] == "0.0120"  # Pearson first ...
    assert "0.9850" in cells[2] and "uninformative" in cells[2]  # ... then the raw cosine, struck out


def test_names_are_escaped():
    from dataclasses import replace

    report = vlm_report()
    report = replace(report, warnings=["<img src=x onerror=alert(1)>"])
    html = render_html(report)
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_a_report_with_no_optional_parts_renders():
    from dataclasses import replace

    bare = replace(vlm_report(), tensors=[], metadata=None, coverage=[], shares={})
    bare = replace(
        bare, components=[replace(c, layer_matrices=[], tests=[], power=None) for c in bare.components]
    )
    html = render_html(bare)
    assert '<svg class="heatmap"' not in html and 'id="metadata"' not in html


def test_an_80_layer_report_stays_under_2_mb(tmp_path):
    path = write_html(large_report(layers=80), tmp_path / "big.html")
    size = path.stat().st_size
    assert size < 2_000_000, size
    html = path.read_text()
    assert html.count('<svg class="heatmap"') == 15  # 6 vision roles + 9 language-model roles
    assert "least similar shown" in html  # the per-tensor table is capped; the JSON has every row


def test_heatmap_png_holds_the_matrix_colours():
    matrix = vlm_report().components[0].layer_matrices[0]
    figure = svg.heatmap(matrix)
    data = re.search(r"base64,([A-Za-z0-9+/=]+)", figure).group(1)
    import base64

    pixels = read_png(base64.b64decode(data))
    assert pixels.shape == (8, 8, 3)
    assert tuple(pixels[3, 3]) == svg.colour(matrix.values[3][3])
    assert pixels[3, 3].sum() < pixels[3, 4].sum()  # the diagonal is darker than its neighbours
    assert figure.count("<title>suspect") == 2 * 8  # every mapped pair marked (halo and line)


def test_colour_scale_ends_and_missing():
    assert svg.colour(1.0) == (103, 0, 31) and svg.colour(-1.0) == (5, 48, 97)
    assert svg.colour(0.0) == (247, 247, 247) and svg.colour(2.0) == svg.colour(1.0)
    assert svg.colour(None) == svg.colour(float("nan")) == (209, 213, 219)


def test_write_html_leaves_nothing_behind_on_error(tmp_path, monkeypatch):
    import scratchcheck.report.html as html_module

    def boom(report):
        raise RuntimeError("render failed")

    target = tmp_path / "r.html"
    target.write_text("old")
    monkeypatch.setattr(html_module, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_html(vlm_report(), target)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def screenshot(html_path, png_path, tmp_path, height=2000):
    """Render ``html_path`` in headless Chromium (no network, no profile) and return the pixels."""
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png_path}",
            f"--window-size=1280,{height}", html_path.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return read_png(png_path.read_bytes())


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); .ci/run installs it"
)
def test_chromium_renders_the_report_not_blank(tmp_path):
    html = write_html(vlm_report(), tmp_path / "report.html")
    pixels = screenshot(html, tmp_path / "shot.png", tmp_path)[..., :3].astype(int)
    assert pixels.shape[:2] == (2000, 1280)
    flat = pixels.reshape(-1, 3)
    background = np.all(flat == flat[0], axis=1).mean()
    assert background < 0.97, "the screenshot is (nearly) one colour"
    assert len(np.unique(flat[::7], axis=0)) > 50
    # The vision tower's diagonal: dark-red heatmap cells near the top of the scale are on screen.
    dark_red = (np.abs(flat - np.array(svg.colour(0.98))).sum(axis=1) < 30).sum()
    assert dark_red > 2000, dark_red
