"""Shared fixtures of the Python binding tests.

Environment (set by tests/python/CMakeLists.txt): PYTHONPATH holds the built package, CMG_CLI the
crmmigrate CLI, CMG_SOURCE_DIR the source tree (for examples/reference/migration.json).
"""
import json
import os
import pathlib

import pytest

import crmmigrate

SOURCE_DIR = pathlib.Path(os.environ.get("CMG_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
ON_HOLD_ANCHOR = '"2/8": ["partnerships", "partner_contract"]'


def reference_config_text(with_on_hold=False):
    """The reference config, optionally with the "On Hold" stage translation a reviewer adds."""
    text = (SOURCE_DIR / "examples" / "reference" / "migration.json").read_text()
    if with_on_hold:
        assert ON_HOLD_ANCHOR in text
        text = text.replace(ON_HOLD_ANCHOR, ON_HOLD_ANCHOR + ', "2/9": ["partnerships", "partner_paused"]')
    return text


class Reference:
    """A directory with the reference sandboxes seeded and the reference config beside them."""

    def __init__(self, root: pathlib.Path, seed: int = 42):
        self.root = root
        self.manifest = crmmigrate.sandbox.seed_reference(
            str(root / "sandbox" / "source"), str(root / "sandbox" / "destination"), seed)
        self.config = root / "migration.json"
        self.write_config()

    def write_config(self, with_on_hold=False):
        self.config.write_text(reference_config_text(with_on_hold))
        return self.config


@pytest.fixture
def reference(tmp_path):
    return Reference(tmp_path)


# Source object of the reference scenario -> config object name.
REFERENCE_OBJECTS = {"organizations": "companies", "persons": "contacts", "deals": "deals",
                     "notes": "notes", "activities": "activities"}


def check_against_manifest(report, manifest):
    """A run's counts against the generator's own bookkeeping (not against another run)."""
    for src, name in REFERENCE_OBJECTS.items():
        expected = manifest["expected"][src]
        got = report["objects"][name]
        for k in ("source", "written", "merged", "queued", "skipped"):
            assert got[k] == expected[k], (name, k, got, expected)
        assert got["pending"] == 0, (name, got)


def dumps(obj):
    return json.dumps(obj, sort_keys=True, indent=1)
