from django import template

register = template.Library()


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
