"""The report's plots (per-label scores, errors, confusion) and the training
curves. They need matplotlib (``pip install 'spacy-bert-ner[report]'``),
imported only when a plot is drawn, and are drawn with the Agg backend (no
display, no pyplot global state)."""

import math
from pathlib import Path
from typing import Any, Dict, Sequence, Union

import srsly

from spacy_bert_ner.errors import InputError, require_extra
from spacy_bert_ner.evaluation.errors import ERROR_TYPES

# Distinct, readable colours for displaCy and the plots, assigned to labels in sorted order.
PALETTE = [
    "#7aecec",
    "#feca74",
    "#aa9cfc",
    "#bfeeb7",
    "#ff9561",
    "#e4e7d2",
    "#c887fb",
    "#9cc9cc",
    "#ffeb80",
    "#ff8197",
    "#f0d0ff",
    "#bfe1d9",
]


def label_colors(labels: Sequence[str]) -> Dict[str, str]:
    """A colour per label, in sorted order (the same in the plots and the displaCy page)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(labels))}


def require_matplotlib() -> None:
    """Raise :class:`~spacy_bert_ner.errors.MissingDependency` with the install hint when matplotlib is missing."""
    require_extra("report", ("matplotlib",), "the plots")


def _figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg backend, without pyplot's global state."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_f1(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Per-label precision, recall and F1 as grouped horizontal bars, support in the labels."""
    per_type = analysis["scores"]["ents_per_type"]
    labels = sorted(per_type, key=lambda label: per_type[label]["support"])
    fig = _figure(8, 1.2 + 0.6 * max(1, len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    height = 0.26
    for k, (key, name) in enumerate((("p", "precision"), ("r", "recall"), ("f", "F1"))):
        ys = [j + (k - 1) * height for j in range(len(labels))]
        bars = ax.barh(ys, [100 * per_type[label][key] for label in labels], height=height, label=name)
        if key == "f":
            ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([f"{label} ({per_type[label]['support']})" for label in labels])
    ax.set_xlim(0, 105)
    ax.set_xlabel("%  (label (gold support))")
    overall = 100 * analysis["scores"]["ents_f"]
    ax.axvline(overall, color="#444", linestyle="--", linewidth=1, label=f"overall F1 {overall:.1f}")
    ax.set_title("Per-label scores (exact entity match)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """The entity-level confusion matrix as a heat map with the counts written in."""
    labels = analysis["confusion"]["labels"]
    matrix = analysis["confusion"]["matrix"]
    size = 2.5 + 0.7 * len(labels)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot(1, 1, 1)
    # colour by the share of each gold row, so rare labels are as readable as frequent ones
    shares = [[v / (sum(row) or 1) for v in row] for row in matrix]
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            if value:
                ax.text(c, r, str(value), ha="center", va="center", fontsize=9, color="white" if shares[r][c] > 0.5 else "black")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Entity confusion (overlap-paired; O = no entity)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold row")
    fig.tight_layout()
    return _save(fig, path)


def plot_errors(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Error counts per label, one stacked bar per label."""
    errors = analysis["errors"]
    labels = sorted(errors, key=lambda label: errors[label]["support"])
    fig = _figure(8, 1.2 + 0.5 * max(1, len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    left = [0] * len(labels)
    for k, kind in enumerate(ERROR_TYPES):
        values = [errors[label][kind] for label in labels]
        ax.barh(range(len(labels)), values, left=left, label=kind, color=PALETTE[k])
        left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("errors")
    ax.set_title("Errors per label")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_training(log_path: Union[str, Path], output_path: Union[str, Path]) -> Path:
    """Dev score and the training losses against the step, from a ``train-log.jsonl``.

    The losses are those spaCy reports at each evaluation: summed over the
    steps since the previous evaluation.
    """
    log_path = Path(log_path)
    if not log_path.is_file():
        raise InputError(log_path, None, "file not found")
    records = []
    for line_no, record in enumerate(srsly.read_jsonl(log_path), start=1):
        if not isinstance(record, dict) or "step" not in record:
            raise InputError(log_path, line_no, 'not a training-log record (no "step")')
        records.append(record)
    if not records:
        raise InputError(log_path, None, "no records: has training evaluated yet?")
    fig = _figure(8, 6)
    ax_score, ax_loss = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    scored = [r for r in records if isinstance(r.get("score"), (int, float))]
    steps = [r["step"] for r in scored]
    ax_score.plot(steps, [100 * r["score"] for r in scored], marker="o", label="dev score")
    for key in ("ents_p", "ents_r"):
        values = [(r["step"], r.get("scores", {}).get(key)) for r in scored]
        values = [(s, v) for s, v in values if isinstance(v, (int, float))]
        if values:
            ax_score.plot([s for s, _ in values], [100 * v for _, v in values], linestyle=":", label=f"dev {key}")
    if scored:
        best = max(scored, key=lambda r: r["score"])
        ax_score.annotate(
            f"best {100 * best['score']:.1f} @ {best['step']}",
            (best["step"], 100 * best["score"]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax_score.set_ylabel("dev score (%)")
    ax_score.margins(y=0.15)
    ax_score.set_title(f"Training: {log_path.name}")
    ax_score.grid(alpha=0.3)
    ax_score.legend(fontsize=8, loc="lower right")
    components = sorted({k for r in records for k in (r.get("losses") or {})})
    for name in components:
        points = [(r["step"], (r.get("losses") or {}).get(name)) for r in records]
        points = [(s, v) for s, v in points if isinstance(v, (int, float)) and math.isfinite(v)]
        ax_loss.plot([s for s, _ in points], [v for _, v in points], marker=".", label=f"{name} loss")
    if components and all(v > 0 for r in records for v in (r.get("losses") or {}).values() if isinstance(v, (int, float))):
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (per evaluation interval)")
    ax_loss.grid(alpha=0.3)
    if components:
        ax_loss.legend(fontsize=8)
    ax_score.sharex(ax_loss)
    fig.tight_layout()
    return _save(fig, output_path)
