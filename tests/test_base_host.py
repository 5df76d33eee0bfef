"""sdk.base.host: what benchmark reports record of the host (the CPU's name, package
versions), one reader for every benchmark."""

from __future__ import annotations

import numpy as np

from sdk.base.host import cpu_name, package_versions


def test_package_versions_name_each_package_once_absent_ones_too() -> None:
    got = package_versions(["numpy", "edgesdk-no-such-distribution"])
    assert got == {"numpy": np.__version__, "edgesdk-no-such-distribution": "absent"}
    assert cpu_name()
