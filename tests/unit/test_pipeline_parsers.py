"""Pipelines are parsed by libyaml under our guarded composer, and PyYAML's pure parser words
the errors: both must read every document into the same tree, positions included."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.pipeline import PipelineError, load_pipeline, parse

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yml"))
TRICKY = [
    "a: 'single ''quoted'''\nb: \"double \\t escaped\"\nc: |\n  block\n  text\nd: >-\n  folded\n",
    "anchors: &base {x: 1, y: [2, 3]}\ncopy: *base\n",
    "k: ~\nn: 12\nf: 1.5\nb: yes\nt: 2026-12-02\nempty:\n",
    "# comment\n---\nlist:\n- one\n-   two: 2\n    three: 3\n...\n",
    'unicode: "caf\u00e9 \u2615"\nwide: \u00e9t\u00e9\n',
]


def _shape(node: Node) -> object:
    where = (node.tag, node.start_mark.line, node.start_mark.column, node.end_mark.line)
    if isinstance(node, ScalarNode):
        return (*where, node.value)
    if isinstance(node, SequenceNode):
        return (*where, [_shape(item) for item in node.value])
    assert isinstance(node, MappingNode)
    return (*where, [(_shape(key), _shape(value)) for key, value in node.value])


def _pure(text: str) -> Node:
    loader = parse._GuardedLoader(text)
    try:
        node = loader.get_single_node()
        assert node is not None
        return node
    finally:
        loader.dispose()


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    # PyPI's PyYAML wheels carry libyaml; without it pipelines parse at a third of the speed.
    assert yaml.__with_libyaml__, "this PyYAML was built without libyaml"
    assert parse._FastLoader is not None


@pytest.mark.parametrize("text", [p.read_text() for p in EXAMPLES] + TRICKY)
def test_both_parsers_read_the_same_tree(text: str) -> None:
    assert _shape(parse._compose_single(text)) == _shape(_pure(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name: x\njobs:\n  a:\n    steps:\n      - run: echo "FAIL: x"\n', "quoted, or"),
        ("name: [x\n", "while parsing a flow sequence"),
        ("a: b\n\tc: d\n", "found character '\\t' that cannot start any token"),
    ],
)
def test_errors_keep_pyyamls_words_and_positions(text: str, expected: str) -> None:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(text)
    (issue,) = caught.value.issues
    assert expected in issue.message
    assert issue.line is not None
