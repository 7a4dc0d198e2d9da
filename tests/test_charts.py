"""The training loss chart (inline SVG with axes and a moving average) and the sample grid."""

import itertools
import re

import pytest
from django.template.loader import render_to_string

from creator.studio.templatetags.charts import loss_chart, nice_ticks, smoothed

NOISY = [[step, 1.0 / step + (0.2 if step % 2 else -0.2) * 0.1] for step in range(1, 41)]


def test_the_moving_average_starts_at_the_first_loss_and_is_calmer_than_the_raw_line():
    values = [p[1] for p in NOISY]
    average = smoothed(values)

    assert len(average) == len(values) and average[0] == pytest.approx(values[0])
    assert min(values) <= min(average) and max(average) <= max(values)
    jumps = [abs(b - a) for a, b in itertools.pairwise(values[10:])]
    calm = [abs(b - a) for a, b in itertools.pairwise(average[10:])]
    assert sum(calm) < sum(jumps) / 3


def test_a_short_run_is_smoothed_less_so_its_line_still_follows_the_points():
    assert smoothed([1.0, 0.5]) == [1.0, 0.5]
    three = smoothed([1.0, 0.5, 0.2])
    assert three[-1] < 0.6


def test_step_ticks_are_round_and_keep_both_ends():
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(1, 4) == [1, 2, 3, 4]
    assert nice_ticks(3, 397) == [3, 100, 200, 300, 397]
    assert nice_ticks(5, 5) == [5]


def test_the_chart_has_axes_labels_and_both_lines():
    chart = loss_chart(NOISY)

    assert chart["x_ticks"][0]["label"] == 1
    assert chart["x_ticks"][-1]["label"] == 40
    assert chart["y_max"]["label"] == "1.02" and chart["y_min"]["label"] == "0.005"
    assert len(chart["raw"].split()) == len(chart["smooth"].split()) == 40
    assert loss_chart([[1, 0.5]]) is None and loss_chart([]) is None


def render(details) -> str:
    return render_to_string("studio/_training_live.html", {"task": {"details": details}})


def test_the_svg_draws_a_faint_raw_line_under_the_smoothed_one_with_labelled_axes():
    svg = render({"loss": NOISY, "model_id": 1, "samples": []})

    assert '<path class="loss-raw"' in svg
    assert svg.count("<polyline") == 1 and 'class="loss-smooth"' in svg
    assert svg.index("loss-raw") < svg.index("loss-smooth")  # the average is drawn on top
    assert ">step</text>" in svg and ">loss</text>" in svg
    assert ">1.02</text>" in svg and ">0.005</text>" in svg
    assert ">1</text>" in svg and ">40</text>" in svg
    assert "<script" not in svg
    assert "moving average" in svg


def test_the_sample_grid_says_what_the_likeness_score_means(settings):
    settings.FACE_MATCH_THRESHOLD = 0.6
    samples = [
        {"step": 3, "name": "a.png", "likeness": 0.41},
        {"step": 6, "name": "b.png", "likeness": 0.93},
        {"step": 9, "name": "c.png", "likeness": None},
    ]

    html = render({"loss": [], "model_id": 1, "samples": samples})

    assert "distance between the face in each sample and the consent selfie" in html
    assert "lower is more alike" in html and "under 0.60 it counts as the same person" in html
    items = re.findall(r"<li>.*?</li>", html, re.S)
    assert "likeness 0.41" in items[0] and "same person" in items[0]
    assert "likeness 0.93" in items[1] and "not alike yet" in items[1]
    assert "no face found" in items[2]
