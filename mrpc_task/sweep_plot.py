"""results.png of a sweep: each point's mean score with its seed-to-seed std, per data."""

import math
from typing import Any, Dict, List, Optional

from mrpc_task import report
from mrpc_task import sweep

_COLORS = {'selection': 'tab:blue', 'dev': 'tab:orange'}


def results_png(rows: List[Dict[str, Any]]) -> Optional[bytes]:
  """Horizontal bars of (accuracy + F1) / 2, mean ± std over seeds; None if nothing is done."""
  rows = [row for row in rows if row['seeds']]
  if not rows:
    return None
  pyplot, figure = report.new_figure('tfm sweep')
  figure.set_size_inches(8, max(3.0, 1.0 + 0.45 * len(rows) * len(sweep.DATA)))
  axes = figure.add_subplot(1, 1, 1)
  height = 0.8 / len(sweep.DATA)
  for index, data in enumerate(sweep.DATA):
    means = [row[f'{data}_mean'] for row in rows]
    stds = [row[f'{data}_mean_std'] for row in rows]
    positions = [i + index * height for i in range(len(rows))]
    shown = [(p, m, s) for p, m, s in zip(positions, means, stds) if not math.isnan(m)]
    if shown:
      axes.barh([p for p, _, _ in shown], [m for _, m, _ in shown], height=height,
                xerr=[s for _, _, s in shown], color=_COLORS[data], label=data, capsize=3)
  axes.set_yticks([i + height * (len(sweep.DATA) - 1) / 2 for i in range(len(rows))])
  axes.set_yticklabels([f'{row["point"]} (n={row["seeds"]})' for row in rows], fontsize=7)
  axes.invert_yaxis()
  values = [row[f'{d}_mean'] for row in rows for d in sweep.DATA
            if not math.isnan(row[f'{d}_mean'])]
  axes.set_xlim(max(0.0, min(values) - 5), min(100.0, max(values) + 3))
  axes.set_xlabel('(accuracy + F1) / 2, %: mean ± std over seeds')
  axes.legend(loc='lower right')
  axes.grid(axis='x', alpha=0.3)
  return report.png_bytes(pyplot, figure)
