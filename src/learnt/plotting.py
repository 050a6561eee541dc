"""Plots without pyplot: figures that never touch matplotlib's global backend or figure list.

Library code used to call ``matplotlib.use("Agg")``, which changes the backend of the user's
whole process (a notebook's inline plots, a GUI). ``plt.subplots`` / ``plt.close`` here build
``matplotlib.figure.Figure`` objects directly; ``fig.savefig`` renders them with Agg.
"""
from __future__ import annotations

_FIGURE_KEYS = ("figsize", "dpi", "layout", "constrained_layout", "tight_layout", "facecolor")


class _Pyplotless:
    @staticmethod
    def subplots(*args, **kw):
        from matplotlib.figure import Figure
        fig = Figure(**{k: kw.pop(k) for k in _FIGURE_KEYS if k in kw})
        return fig, fig.subplots(*args, **kw)

    @staticmethod
    def figure(**kw):
        from matplotlib.figure import Figure
        return Figure(**kw)

    @staticmethod
    def close(fig=None) -> None:   # nothing global to release
        return None


plt = _Pyplotless()
