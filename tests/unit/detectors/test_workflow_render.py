"""The workflow picture's layout: layers by longest path from START, loops as back edges."""

from __future__ import annotations

import re

import polars as pl

from logsieve.detectors.deeplog_workflow import END, START, build_workflow
from logsieve.detectors.workflow_render import _layers, _order, _wrap, to_svg


def _wf():
    seqs = [["A", "B", "C", "E"], ["A", "C", "B", "E"], ["A", "B", "C", "E"], ["A", "D", "D", "E"]]
    frame = pl.DataFrame({"window_id": [f"w{i}" for i in range(4)], "event_ids": seqs})
    return build_workflow(frame, templates={"A": "open a very long template " * 4})


def test_layers_by_longest_path_and_loops_as_back_edges():
    wf = _wf()
    layer, back = _layers(wf)
    assert layer[START] == 0 and layer["A"] == 1 and layer[END] == max(layer.values())
    assert layer["E"] > max(layer["B"], layer["C"], layer["D"])
    assert len(back & {("B", "C"), ("C", "B")}) == 1  # the B<->C cycle is cut once
    rows, chains = _order(layer, [k for k in wf.edges if k[0] != k[1]])
    assert rows[0] == [START] and rows[-1] == [END]
    assert all(chain[0] == a and chain[-1] == b for (a, b), chain in chains.items())


def test_svg_wraps_labels_and_marks_structure():
    assert all(len(line) <= 34 for line in _wrap("open a very long template " * 4))
    svg = to_svg(_wf(), "t")
    assert 'stroke-width="3"' in svg  # divergence points
    assert "∥ C" in svg and "↻" in svg  # concurrency, self-loop D->D
    assert 'stroke-dasharray="4 3"' in svg
    assert not re.search(r"\x00", svg)  # dummy points are not drawn as nodes
