"""The training loss chart, drawn as inline SVG (no script: the CSP forbids inline ones)."""

import math

from django import template
from django.conf import settings

register = template.Library()

# The chart's drawing box (viewBox units) and the plot inside it, room left for the labels.
WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 34
SMOOTHING = 0.9  # the moving average's weight on the past, as TensorBoard's slider
X_TICKS = 4


@register.filter
def loss_points(points, size="300x100") -> str:
    """SVG polyline points for a loss curve: [[step, loss], ...] scaled into width x height."""
    width, height = (int(v) for v in size.split("x"))
    if not points or len(points) < 2:
        return ""
    steps = [p[0] for p in points]
    values = [p[1] for p in points]
    low, high = min(values), max(values)
    span_x = (max(steps) - min(steps)) or 1
    span_y = (high - low) or 1
    return " ".join(
        f"{(s - min(steps)) / span_x * width:.1f},{height - (v - low) / span_y * height:.1f}"
        for s, v in zip(steps, values, strict=True)
    )


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """An exponential moving average, debiased so it starts at the first value rather than 0.
    A short run is smoothed less, so its line still follows the points."""
    weight = min(weight, max(0.0, 1 - 2 / len(values))) if values else weight
    average, out = 0.0, []
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**count) if weight else value)
    return out


def nice_ticks(low: int, high: int, count: int = X_TICKS) -> list[int]:
    """About `count` round steps (1, 2 or 5 times a power of ten), low and high kept."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    interval = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.7)
    ticks = [low] + [
        t for t in range(math.ceil(low / interval) * interval, high, interval) if t > low
    ]
    # A tick crowding the last one gives way, so the labels don't overlap.
    if len(ticks) > 1 and high - ticks[-1] < interval / 2:
        ticks.pop()
    return [*ticks, high]


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 0.001 or value == 0 else f"{value:.1e}"


@register.filter
def loss_chart(points) -> dict | None:
    """What the SVG needs for [[step, loss], ...]: the raw line, its moving average, axes and
    their labels. None for fewer than two points."""
    if not points or len(points) < 2:
        return None
    steps = [int(p[0]) for p in points]
    values = [float(p[1]) for p in points]
    first, last = min(steps), max(steps)
    low, high = min(values), max(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h

    def x(step):
        return LEFT + (step - first) / ((last - first) or 1) * plot_w

    def y(value):
        return bottom - (value - low) / ((high - low) or 1) * plot_h

    def line(vals):
        return " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, vals, strict=True))

    return {
        "viewbox": f"0 0 {WIDTH} {HEIGHT}",
        "raw": line(values),
        "smooth": line(smoothed(values)),
        "axis": f"M{LEFT},{TOP} V{bottom} H{LEFT + plot_w}",
        "left": LEFT,
        "top": TOP,
        "bottom": bottom,
        "x_ticks": [{"x": round(x(t), 1), "label": t} for t in nice_ticks(first, last)],
        "tick_label_y": bottom + 13,
        "x_title": {"x": LEFT + plot_w / 2, "y": HEIGHT - 4},
        "y_max": {"y": TOP + 4, "label": _label(high)},
        "y_min": {"y": bottom, "label": _label(low)},
        "y_title": {"x": 12, "y": TOP + plot_h / 2},
        "label_x": LEFT - 4,
        "points": len(points),
        "first": first,
        "last": last,
    }


@register.simple_tag
def face_match_threshold() -> float:
    """The face distance under which two faces count as the same person (see the samples)."""
    return settings.FACE_MATCH_THRESHOLD
