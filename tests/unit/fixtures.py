from __future__ import annotations

from pathlib import Path

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
