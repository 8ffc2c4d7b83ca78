"""``logsieve models``: every detector (:func:`logsieve.detectors.registry.describe_detectors`)."""

from __future__ import annotations

from logsieve.cli._common import Json, app, echo_json


@app.command()
def models(as_json: Json = False) -> None:
    """List every detector: input kind, whether it needs labels, paper."""
    from logsieve.detectors.registry import describe_detectors

    rows = describe_detectors()
    if as_json:
        echo_json(rows)
        return
    from logsieve.cli.ui import print_table

    print_table(
        "Detectors (logsieve train --model NAME)",
        [
            {
                "name": r["name"],
                "input": r["input_kind"],
                "labels": "yes" if r["requires_labels"] else "no",
                "description": r["description"],
            }
            for r in rows
        ],
    )
