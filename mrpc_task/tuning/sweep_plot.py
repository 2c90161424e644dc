"""results.png of a sweep: each point's mean glue_score with its seed-to-seed std, per data."""

import math
from typing import Any, Dict, List, Optional, Sequence

from mrpc_task import configs
from mrpc_task import report

_COLORS = ('tab:blue', 'tab:orange', 'tab:green', 'tab:red')
_SCORE = configs.GLUE_SCORE


def results_png(rows: List[Dict[str, Any]], data: Sequence[str]) -> Optional[bytes]:
  """Horizontal bars of glue_score (the mean of the task's metrics), mean ± std over seeds,
  one bar per data (selection split, evaluation splits); None if nothing is done."""
  rows = [row for row in rows if row['seeds']]
  if not rows:
    return None
  pyplot, figure = report.new_figure('tfm sweep')
  figure.set_size_inches(8, max(3.0, 1.0 + 0.45 * len(rows) * len(data)))
  axes = figure.add_subplot(1, 1, 1)
  height = 0.8 / len(data)
  for index, name in enumerate(data):
    means = [row[f'{name}_{_SCORE}'] for row in rows]
    stds = [row[f'{name}_{_SCORE}_std'] for row in rows]
    positions = [i + index * height for i in range(len(rows))]
    shown = [(p, m, s) for p, m, s in zip(positions, means, stds) if not math.isnan(m)]
    if shown:
      axes.barh([p for p, _, _ in shown], [m for _, m, _ in shown], height=height,
                xerr=[s for _, _, s in shown], color=_COLORS[index % len(_COLORS)],
                label=name, capsize=3)
  axes.set_yticks([i + height * (len(data) - 1) / 2 for i in range(len(rows))])
  axes.set_yticklabels([f'{row["point"]} (n={row["seeds"]})' for row in rows], fontsize=7)
  axes.invert_yaxis()
  values = [row[f'{d}_{_SCORE}'] for row in rows for d in data
            if not math.isnan(row[f'{d}_{_SCORE}'])]
  axes.set_xlim(max(-100.0, min(values) - 5), min(100.0, max(values) + 3))
  axes.set_xlabel('glue_score (mean of the task\'s metrics) x 100: mean ± std over seeds')
  axes.legend(loc='lower right')
  axes.grid(axis='x', alpha=0.3)
  return report.png_bytes(pyplot, figure)
