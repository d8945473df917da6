"""The report as a reader sees it: rendered by headless Chromium, plots loaded, the page within
1400 px, and the sentences a reader needs visible.

Chromium comes from the Debian package ``chromium``. Without it these tests are skipped, unless
LLEM_REQUIRE_CHROMIUM=1 (set by CI after installing it), which makes a missing or broken
install fail. With LLEM_SCREENSHOTS_DIR set, the screenshots are copied there (that is how
docs/screenshots/*.png are made).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llem.report import build_report
from tests.report.test_report import NO_ENERGY_REASON, _all_outputs, host_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("LLEM_REQUIRE_CHROMIUM") != "1",
        reason="chromium is not installed (apt-get install chromium)",
    ),
]

PAGE_WIDTH_PX = 1400

#: Measures the page once loaded and writes the numbers into the DOM for --dump-dom.
_PROBE = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const heads = Array.from(document.querySelectorAll('th'));
  const last = heads[heads.length - 1];
  const out = {
    images: imgs.map(i => ({complete: i.complete, width: i.naturalWidth})),
    scroll_width: document.documentElement.scrollWidth,
    last_header_right: last ? last.getBoundingClientRect().right : null,
    last_header: last ? last.innerText : null,
    text: document.body.innerText,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "chromium is not installed (apt-get install chromium)"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={PAGE_WIDTH_PX},1000", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _probe(page: Path) -> dict:
    """What Chromium renders of ``page``: images, widths and the visible text."""
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    done = _chromium("--dump-dom", probe.as_uri())
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", done.stdout, flags=re.DOTALL)
    assert found, f"chromium rendered no probe: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _screenshot(page: Path, name: str) -> Path:
    """A screenshot of the page's first screen; checked not blank, kept where asked."""
    import matplotlib.image

    shot = page.with_name(f"{name}.png")
    done = _chromium("--force-device-scale-factor=0.5", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.02  # not one colour: something was drawn
    keep = os.environ.get("LLEM_SCREENSHOTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / shot.name)
    return shot


def _check_page(seen: dict, images: int) -> None:
    assert len(seen["images"]) == images
    assert all(i["complete"] and i["width"] > 0 for i in seen["images"]), seen["images"]
    assert seen["scroll_width"] <= PAGE_WIDTH_PX
    # the last column (warnings) is on the page, not cut off
    assert seen["last_header"] == "warnings"
    assert seen["last_header_right"] <= PAGE_WIDTH_PX


def test_the_report_of_a_gpu_less_host_in_a_browser(tmp_path: Path) -> None:
    paths = [host_result(tmp_path, f"bs{b}", b, None) for b in (1, 2, 4)]
    out = tmp_path / "report"
    build_report(paths, _all_outputs(out))
    page = out / "experiments.html"
    seen = _probe(page)
    _check_page(seen, images=1)  # throughput and latency; no empty energy figures
    text = seen["text"]
    assert f"No experiment has a measured J per output token: {NO_ENERGY_REASON}." in text
    assert "time series disabled (timeseries.enabled: false)" in text
    assert "Throughput and latency against batch size" in text
    assert "random weights" in text
    _screenshot(page, "report-gpu-less-host")


def test_the_report_of_an_estimate_in_a_browser(tmp_path: Path) -> None:
    paths = [host_result(tmp_path, f"bs{b}", b, 10.0 * b, source="estimate") for b in (1, 4)]
    out = tmp_path / "report"
    build_report(paths, _all_outputs(out))
    page = out / "experiments.html"
    seen = _probe(page)
    _check_page(seen, images=3)
    assert "estimate" in seen["text"]
    _screenshot(page, "report-estimate")


def test_the_report_of_a_measured_run_with_time_series_in_a_browser(tmp_path: Path) -> None:
    from tests.report.test_report import _result

    paths = [_result(tmp_path, f"bs{b}", b, 100.0 * b, with_series=True) for b in (1, 4)]
    out = tmp_path / "report"
    build_report(paths, _all_outputs(out))
    page = out / "experiments.html"
    seen = _probe(page)
    _check_page(seen, images=5)  # three campaign plots, two time series
    assert "Power and temperature over time" in seen["text"]
    assert "measured window" not in seen["text"]  # in the image, not as stray text
    _screenshot(page, "report-measured")
