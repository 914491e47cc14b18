"""Plotly figures for the UI: training curves, document lengths, fill-mask answers."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 2000  # per series; longer series are thinned so a redraw costs the same at any step


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    """Keep at most `limit` points, evenly spaced, always keeping the newest."""
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    kept = [points[int(i * stride)] for i in range(limit - 1)]
    return kept + [points[-1]]


def loss_figure(series: dict[str, list[tuple[int, float]]], title: str = "") -> go.Figure:
    """Train and eval loss against step, learning rate on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styles = {"train_loss": ("train loss", "#1f77b4", "lines"),
              "eval_loss": ("eval loss", "#d62728", "lines+markers")}
    for name, (label, colour, mode) in styles.items():
        points = thin(series.get(name, []))
        if points:
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=label,
                                     mode=mode, line={"color": colour}), secondary_y=False)
    lr = thin(series.get("learning_rate", []))
    if lr:
        fig.add_trace(go.Scatter(x=[p[0] for p in lr], y=[p[1] for p in lr], name="learning rate", mode="lines",
                                 line={"color": "#7f7f7f", "dash": "dot"}), secondary_y=True)
    fig.update_layout(title=title or None, height=380, margin={"l": 50, "r": 50, "t": 40 if title else 20, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, uirevision="keep")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="learning rate", secondary_y=True, showgrid=False)
    return fig


def length_histogram_figure(histogram: dict) -> go.Figure:
    edges, counts = histogram.get("edges", []), histogram.get("counts", [])
    labels = [f"{int(edges[i])}–{int(edges[i + 1])}" for i in range(len(counts))] if len(edges) > len(counts) else []
    fig = go.Figure(go.Bar(x=labels or list(range(len(counts))), y=counts, marker_color="#1f77b4"))
    fig.update_layout(height=280, margin={"l": 40, "r": 20, "t": 30, "b": 60}, title="document length (words)",
                      xaxis_title="words", yaxis_title="documents")
    return fig


def topk_figure(answers: list[dict], title: str = "") -> go.Figure:
    ordered = list(reversed(answers))  # best on top in a horizontal bar chart
    fig = go.Figure(go.Bar(x=[a["score"] for a in ordered], y=[a["token"] for a in ordered], orientation="h",
                           marker_color="#2ca02c"))
    fig.update_layout(height=60 + 28 * len(answers), margin={"l": 100, "r": 20, "t": 30, "b": 30}, title=title or None,
                      xaxis_title="probability", xaxis_range=[0, 1])
    return fig
