"""The layer-name grammar (torch_ext/monitor/names.py): built and parsed in one place."""

from __future__ import annotations

import pytest

from torch_ext.monitor.names import LayerName, functional_name, parse, site_name

CASES = [  # (built by, parts)
    (site_name("act", 0), LayerName("act", None, 0)),
    (site_name("act", 1), LayerName("act", None, 1)),
    (site_name("block.0.relu", 12), LayerName("block.0.relu", None, 12)),
    (functional_name("block.0", "relu", 0), LayerName("block.0", "relu", 0)),
    (functional_name("", "leaky_relu", 3), LayerName("", "leaky_relu", 3)),
]


@pytest.mark.parametrize("name,parts", CASES, ids=[name for name, _ in CASES])
def test_names_parse_back_into_their_parts(name: str, parts: LayerName):
    assert parse(name) == parts


def test_built_names_read_as_the_reports_show_them():
    assert [name for name, _ in CASES] == [
        "act",
        "act#1",
        "block.0.relu#12",
        "block.0:relu#0",
        ":leaky_relu#3",
    ]
