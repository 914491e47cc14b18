"""Plotly figures for the UI: training curves, run comparison, document lengths, fill-mask answers.

Titles, axis titles and trace names are in the language of the browser tab being served (i18n.t); a
figure is drawn by the handler that returns it, so it follows the tab's language from its next drawing."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .i18n import t
from .quality import ACCURACY_PREFIX, PROBE_PREFIX

MAX_POINTS = 2000  # per series; longer series are thinned so a redraw costs the same at any step
LIVE_POINTS = 1000  # per live series: a plot some 1,000 pixels wide shows no more, and the redraw stays cheap


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    """Keep at most `limit` points, evenly spaced, always keeping the newest."""
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    kept = [points[int(i * stride)] for i in range(limit - 1)]
    return kept + [points[-1]]


def _extremes(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The lowest and the highest point by value, in the order they came (one point when they are the same)."""
    low = high = 0
    for i, (_, value) in enumerate(points):
        if value < points[low][1]:
            low = i
        if value > points[high][1]:
            high = i
    return [points[low]] if low == high else [points[min(low, high)], points[max(low, high)]]


class LiveSeries:
    """A metric series that grows a point at a time but never holds more than `limit` points.

    The series is cut into buckets of `width` consecutive points, and each bucket keeps only its lowest and
    highest point (in the order they came), so spikes and the band of a noisy loss stay visible. When the
    buckets would hold more than `limit` points, neighbours are merged and `width` doubles. The first and
    the latest point are always kept. An append costs O(1) amortised and memory stays bounded, so the live
    monitor's state and redraw cost the same at step 50,000 as at step 50.
    """

    def __init__(self, limit: int = LIVE_POINTS):
        self.limit = max(limit, 8)
        self.width = 1  # points per closed bucket
        self.first: tuple[int, float] | None = None
        self.latest: tuple[int, float] | None = None
        self._buckets: list[list[tuple[int, float]]] = []  # closed buckets: their extremes
        self._flat: list[tuple[int, float]] = []  # the closed buckets' points, in order
        self._open: list[tuple[int, float]] = []  # extremes of the bucket being filled
        self._open_count = 0

    def append(self, step: int, value: float) -> None:
        point = (step, value)
        if self.first is None:
            self.first = point
        self.latest = point
        self._open = _extremes(self._open + [point])
        self._open_count += 1
        if self._open_count == self.width:
            self._buckets.append(self._open)
            self._flat.extend(self._open)
            self._open, self._open_count = [], 0
        if 2 * len(self._buckets) + 4 > self.limit:  # + first, the open bucket's two and the latest
            self._merge()

    def _merge(self) -> None:
        pairs = self._buckets
        self._buckets = [_extremes(pairs[i] + pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)]
        if len(pairs) % 2:  # the odd one out is half a bucket of the new width: it becomes the open one
            self._open, self._open_count = _extremes(pairs[-1] + self._open), self.width + self._open_count
        self.width *= 2
        self._flat = [p for bucket in self._buckets for p in bucket]

    def points(self) -> list[tuple[int, float]]:
        """At most `limit` points in the order they came, the first and the latest included."""
        if self.first is None:
            return []
        kept = self._flat + self._open
        if kept[0] is not self.first:
            kept.insert(0, self.first)
        if kept[-1] is not self.latest:
            kept.append(self.latest)
        return kept


def _xy(points: list[tuple[int, float]]) -> dict:
    """x and y of a trace as plain lists. Not numpy arrays: plotly would send those as typed binary data, and
    the browser then spends about twice the CPU on the live plot (0.45 of a core against 0.33 on a 2-core
    machine, measured with a run training beside it), which the training pays for."""
    return {"x": [p[0] for p in points], "y": [p[1] for p in points]}


COMPARE_POINTS = 1000  # per run in the compare chart: 5 runs x 2,000 steps draw as 5 x 1,000 points
COMPARE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#bcbd22", "#7f7f7f"]


def ema(values: list[float], smoothing: float) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing: the first points are not pulled toward 0."""
    if smoothing <= 0 or not values:
        return list(values)
    out, last, weight = [], 0.0, 0.0
    for value in values:
        last = smoothing * last + (1 - smoothing) * value
        weight = smoothing * weight + (1 - smoothing)
        out.append(last / weight)
    return out


def compare_figure(curves: dict[str, list[tuple[int, float]]], metric: str, smoothing: float = 0.0,
                   log_y: bool = False, no_context: dict[str, float] | None = None) -> go.Figure:
    """One metric of several runs overlaid (one trace per run, labelled by run). With smoothing, the EMA is
    drawn over the faint raw curve; long series are thinned after smoothing, so the shape is kept.
    `no_context`: {label: a pretraining run's no-context loss}, drawn as a dashed line in the run's colour."""
    fig = go.Figure()
    for i, (label, points) in enumerate(curves.items()):
        line = (no_context or {}).get(label)
        if line is not None and points:
            steps = [p[0] for p in points]
            fig.add_trace(_level(line, min(steps), max(steps), f"{label} · {t('plot.no_context')}",
                                 color=COMPARE_COLOURS[i % len(COMPARE_COLOURS)], width=1))
        colour = COMPARE_COLOURS[i % len(COMPARE_COLOURS)]
        points = sorted(points)
        steps, values = [p[0] for p in points], [p[1] for p in points]
        mode = "lines+markers" if len(points) <= 60 else "lines"
        if smoothing > 0:
            raw = thin(points, COMPARE_POINTS)
            fig.add_trace(go.Scatter(x=[p[0] for p in raw], y=[p[1] for p in raw], name=f"{label} (raw)",
                                     legendgroup=label, showlegend=False, mode="lines", opacity=0.25,
                                     line={"color": colour}, hoverinfo="skip"))
            values = ema(values, smoothing)
        shown = thin(list(zip(steps, values)), COMPARE_POINTS)
        fig.add_trace(go.Scatter(x=[p[0] for p in shown], y=[p[1] for p in shown], name=label, legendgroup=label,
                                 mode=mode, line={"color": colour}))
    title = metric + (f" · EMA {smoothing:g}" if smoothing > 0 else "")
    if not curves:
        title += t("plot.choose_runs")
    fig.update_layout(title=title, height=440, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.15}, hovermode="x unified",
                      # Kept zoom across redraws where plotly can (same runs, metric and scale).
                      uirevision=f"{metric}|{log_y}|{'|'.join(curves)}")
    fig.update_xaxes(title_text=t("plot.step"))
    fig.update_yaxes(title_text=metric, type="log" if log_y else "linear")
    return fig


def _level(value: float, first: int, last: int, name: str, **line) -> go.Scatter:
    """A horizontal line at `value` from step `first` to `last`, as a trace (so it has a legend entry)."""
    return go.Scatter(x=[first, max(last, first + 1)], y=[value, value], name=name, mode="lines",
                      line={"dash": "dash", **line}, hoverinfo="name+y")


def loss_figure(series: dict[str, list[tuple[int, float]]], title: str = "",
                no_context: float | None = None) -> go.Figure:
    """Train and eval loss against step, learning rate on a second axis; `no_context` (a pretraining run's
    info["no_context_loss"]) is drawn as a dashed line: the loss of guessing each masked token from its training
    frequency alone, which the eval loss must go below. Other series (the downstream checks, throughput) are not
    drawn here."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styles = {"train_loss": (t("metric.train_loss"), "#1f77b4", "lines"),
              "eval_loss": (t("metric.eval_loss"), "#d62728", "lines+markers")}
    drawn_steps = []
    for name, (label, colour, mode) in styles.items():
        points = thin(series.get(name, []))
        if points:
            fig.add_trace(go.Scatter(**_xy(points), name=label, mode=mode, line={"color": colour}),
                          secondary_y=False)
            drawn_steps += [points[0][0], points[-1][0]]
    if no_context is not None and drawn_steps:
        fig.add_trace(_level(no_context, min(drawn_steps), max(drawn_steps), t("plot.no_context"), color="#444444"),
                      secondary_y=False)
    # Fine-tuning: accuracy and macro-F1 share the right axis (0..1); pretraining puts the learning rate there.
    scores = [(name, label, colour) for name, label, colour in
              (("eval_accuracy", t("metric.eval_accuracy"), "#2ca02c"), ("eval_f1", t("metric.eval_f1"), "#9467bd"))
              if series.get(name) and "perplexity" not in series]
    for name, label, colour in scores:
        points = thin(series[name])
        fig.add_trace(go.Scatter(**_xy(points), name=label, mode="lines+markers", line={"color": colour}),
                      secondary_y=True)
    lr = thin(series.get("learning_rate", [])) if not scores else []
    if lr:
        fig.add_trace(go.Scatter(**_xy(lr), name=t("metric.learning_rate"), mode="lines",
                                 line={"color": "#7f7f7f", "dash": "dot"}), secondary_y=True)
    fig.update_layout(title=title or None, height=380, margin={"l": 50, "r": 50, "t": 40 if title else 20, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, uirevision="keep")
    fig.update_xaxes(title_text=t("plot.step"))
    fig.update_yaxes(title_text=t("plot.loss"), secondary_y=False)
    fig.update_yaxes(title_text=t("plot.accuracy_f1") if scores else t("metric.learning_rate"), secondary_y=True,
                     showgrid=False,
                     range=[0, 1] if scores else None)
    return fig


def downstream_figure(series: dict[str, list[tuple[int, float]]], start_label: str,
                      names: dict[str, str] | None = None, title: str = "") -> go.Figure:
    """The downstream checks of a pretraining run (training/downstream.py): per dataset, the briefly fine-tuned
    copy's validation accuracy and the linear probe's against step, and the step-0 accuracy as a dashed line
    (`start_label`: no pretraining, or the base model) that the later checks must beat."""
    names = names or {}
    fig = go.Figure()
    ids = sorted(name[len(ACCURACY_PREFIX):] for name, points in series.items()
                 if name.startswith(ACCURACY_PREFIX) and points)
    for i, dataset_id in enumerate(ids):
        colour = COMPARE_COLOURS[i % len(COMPARE_COLOURS)]
        dataset = names.get(dataset_id, dataset_id)
        accuracy = sorted(series[ACCURACY_PREFIX + dataset_id])
        fig.add_trace(go.Scatter(**_xy(accuracy), name=t("plot.downstream_accuracy", dataset=dataset),
                                 mode="lines+markers", legendgroup=dataset_id, line={"color": colour}))
        probe = sorted(series.get(PROBE_PREFIX + dataset_id, []))
        if probe:
            fig.add_trace(go.Scatter(**_xy(probe), name=t("plot.downstream_probe", dataset=dataset),
                                     mode="lines+markers", legendgroup=dataset_id,
                                     line={"color": colour, "dash": "dot"}, opacity=0.6))
        if accuracy[0][0] == 0:
            label = start_label if len(ids) == 1 else f"{start_label} · {dataset}"
            fig.add_trace(_level(accuracy[0][1], 0, accuracy[-1][0], label, color=colour, width=1))
    fig.update_layout(title=title or t("plot.downstream_title"), height=380,
                      margin={"l": 50, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.2},
                      uirevision="keep")
    fig.update_xaxes(title_text=t("plot.step"))
    fig.update_yaxes(title_text=t("plot.validation_accuracy"), range=[0, 1])
    return fig


def length_histogram_figure(histogram: dict) -> go.Figure:
    edges, counts = histogram.get("edges", []), histogram.get("counts", [])
    labels = [f"{int(edges[i])}–{int(edges[i + 1])}" for i in range(len(counts))] if len(edges) > len(counts) else []
    fig = go.Figure(go.Bar(x=labels or list(range(len(counts))), y=counts, marker_color="#1f77b4"))
    fig.update_layout(height=280, margin={"l": 40, "r": 20, "t": 30, "b": 60}, title=t("plot.length_title"),
                      xaxis_title=t("plot.words"), yaxis_title=t("plot.documents"))
    return fig


def topk_figure(answers: list[dict], title: str = "") -> go.Figure:
    ordered = list(reversed(answers))  # best on top in a horizontal bar chart
    fig = go.Figure(go.Bar(x=[a["score"] for a in ordered], y=[a["token"] for a in ordered], orientation="h",
                           marker_color="#2ca02c"))
    fig.update_layout(height=120 + 28 * len(answers), margin={"l": 100, "r": 20, "t": 30, "b": 30}, title=title or None,
                      xaxis_title=t("plot.probability"), xaxis_range=[0, 1])
    return fig


def label_distribution_figure(counts: dict[str, dict[str, int]]) -> go.Figure:
    """Grouped bars: examples per label, one colour per split."""
    fig = go.Figure()
    for split, per_label in counts.items():
        fig.add_trace(go.Bar(name=split, x=list(per_label), y=list(per_label.values())))
    fig.update_layout(barmode="group", height=300, margin={"l": 40, "r": 20, "t": 30, "b": 60},
                      title=t("plot.examples_per_label"), yaxis_title=t("plot.examples"))
    return fig


def confusion_figure(matrix: list[list[int]], labels: list[str], title: str = "") -> go.Figure:
    """Heatmap with true labels down and predicted labels across, counts written in the cells."""
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hovertemplate=t("plot.confusion_hover") + "<extra></extra>"))
    fig.update_layout(height=200 + 40 * len(labels), margin={"l": 80, "r": 20, "t": 40, "b": 60},
                      title=title or t("plot.confusion_title"), xaxis_title=t("plot.predicted"),
                      yaxis_title=t("plot.true"), yaxis_autorange="reversed")
    return fig


def probabilities_figure(scores: dict[str, float]) -> go.Figure:
    ordered = sorted(scores.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in ordered], y=[k for k, _ in ordered], orientation="h",
                           marker_color="#1f77b4"))
    fig.update_layout(height=120 + 30 * len(scores), margin={"l": 100, "r": 20, "t": 30, "b": 30},
                      title=t("plot.label_probabilities"), xaxis_title=t("plot.probability"), xaxis_range=[0, 1])
    return fig
