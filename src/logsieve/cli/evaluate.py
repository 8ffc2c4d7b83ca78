"""``logsieve evaluate``: metrics of a detect output
(:func:`logsieve.evaluation.scores.evaluate_scores`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logsieve.cli._common import Json, app, emit


@app.command()
def evaluate(
    scores: Annotated[Path, typer.Argument(help="Scores from `logsieve detect` (with labels).")],
    as_json: Json = False,
) -> None:
    """Precision, recall, specificity, F1, ROC-AUC, PR-AUC of a detect output."""
    from logsieve.evaluation.scores import evaluate_scores

    emit(evaluate_scores(scores), as_json, False, "evaluate")
