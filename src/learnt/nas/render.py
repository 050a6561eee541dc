"""Draw an architecture as boxes and arrows (matplotlib, Agg, PNG)."""
from __future__ import annotations

from pathlib import Path

from learnt.nas.space import Architecture


def render_architecture(arch: Architecture, path: str | Path, *, title: str = "") -> Path:
    """One box per layer (kernel, filters, stride) in a column under the image box, arrows
    for every input (skip arrows curve to the side) and for the concatenated outputs."""
    from learnt.plotting import plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    n = len(arch.layers)
    fig, ax = plt.subplots(figsize=(5.2, 0.9 * (n + 3)), dpi=110)
    ys = {"image": n + 1, **{i: n - i for i in range(n)}, "out": 0}
    x0 = 0.5

    def box(key, text, color):
        y = ys[key]
        ax.add_patch(FancyBboxPatch((x0 - 0.32, y - 0.28), 0.64, 0.56, boxstyle="round,pad=0.02",
                                    fc=color, ec="black", lw=1))
        ax.text(x0, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(a, b, bend):
        ax.add_patch(FancyArrowPatch((x0 + (0.32 if bend else 0), ys[a] - (0 if bend else 0.3)),
                                     (x0 + (0.32 if bend else 0), ys[b] + (0 if bend else 0.3)),
                                     connectionstyle=f"arc3,rad={-0.35 - 0.08 * (ys[a] - ys[b]) if bend else 0}",
                                     arrowstyle="-|>", mutation_scale=10, lw=1, color="0.25" if not bend else "tab:blue"))

    box("image", "image 8x8", "0.9")
    for i, layer in enumerate(arch.layers):
        box(i, f"L{i}: {layer.fh}x{layer.fw} conv, {layer.nf}\nstride {layer.stride}, BN, ReLU", "#cfe3f5")
        srcs = list(layer.inputs) or ["image"]
        for s in srcs:
            adjacent = (s == "image" and i == 0) or s == i - 1
            arrow(s, i, bend=not adjacent)
    box("out", "concat -> classifier", "#f5dccf")
    for i in arch.outputs:
        arrow(i, "out", bend=i != n - 1)
    ax.set_xlim(-0.6, 1.9)
    ax.set_ylim(-0.6, n + 1.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
