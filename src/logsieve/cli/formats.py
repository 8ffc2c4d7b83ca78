"""``logsieve formats``: the built-in log formats."""

from __future__ import annotations

from logsieve.cli._common import Json, app, echo_json


@app.command()
def formats(as_json: Json = False) -> None:
    """List the built-in log formats."""
    from logsieve.formats import list_formats

    rows = [
        {
            "name": f.name,
            "pattern": f.pattern,
            "labels": f.label_field or "",
            "description": f.description,
        }
        for f in list_formats()
    ]
    if as_json:
        echo_json(rows)
        return
    from logsieve.cli.ui import print_table

    print_table("Built-in formats (--format NAME, or a custom format string)", rows)
