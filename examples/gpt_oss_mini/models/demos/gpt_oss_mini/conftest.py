"""Model-level fixtures (tt-metal's models/demos/gpt_oss/conftest.py): PCC thresholds per module and mode."""

import json
from pathlib import Path

import pytest

from models.demos.gpt_oss_mini.reference.model import MODEL_NAME

THRESHOLDS_FILE = Path(__file__).resolve().parent / "unit_test_thresholds.json"


@pytest.fixture
def test_thresholds():
    """{"decode"|"prefill": {module: minimum PCC}} for this model."""
    return json.loads(THRESHOLDS_FILE.read_text())[MODEL_NAME]
