"""Reports of an experiment run: ``report.md`` and a self-contained ``report.html``.

``logsieve report RUN_DIR`` rebuilds them at any time from the run directory
(:func:`build_report`): ``results.parquet`` (re-collected from the stored cells),
the per-cell test scores (``scores/``) and early-detection lists (``early/``).

Contents:

- the run (config, cells finished / failed / pending, versions);
- **published numbers beside ours** where the setting matches one of the tables of
  Le & Zhang, "Log-based Anomaly Detection with Deep Learning: How Far Are We?"
  (ICSE'22), transcribed in ``published.json`` (:data:`PUBLISHED`) from the
  LogADEmpirical repository's result images (see /work/shared/docs/PEERS.md section
  2.5 for the transcription notes). Our datasets are samples (HDFS 2 %, BGL 20k
  lines) of the full ones the study used, so a match of the *setting* is not a match
  of the data;
- per aspect: a summary table (mean ± std over seeds), PR curves of the test scores
  (first seed), F1 against whatever the aspect varies (window / grouping, class
  ratio, label noise, parsing noise, training fraction, split), early-detection box
  plots;
- time costs (training and detection seconds per model and dataset).

``report.html`` needs no network: the CSS is inline and every plot is a base64 PNG.
The Markdown report links the same PNGs, written to ``plots/``. Plots use Matplotlib's
object API (no pyplot state, Agg renderer).

Modules: :mod:`.published` (the study's numbers), :mod:`.blocks` (content before
rendering, value formats), :mod:`.plots`, :mod:`.sections` (per-aspect summaries, the
comparison with the study), :mod:`.render` (Markdown, HTML) and :mod:`.build`
(:func:`build_report`).
"""

from __future__ import annotations

from logsieve.evaluation.report.blocks import KNOBS as KNOBS
from logsieve.evaluation.report.blocks import METRIC_NAMES as METRIC_NAMES
from logsieve.evaluation.report.blocks import METRICS as METRICS
from logsieve.evaluation.report.build import build_report
from logsieve.evaluation.report.published import PUBLISHED, published_table
from logsieve.evaluation.report.published import STUDY_MODELS as STUDY_MODELS

__all__ = ["PUBLISHED", "build_report", "published_table"]
