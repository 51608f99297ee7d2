from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def touch() -> Callable[[Path], Path]:
    """Indexing never decodes media, so an empty file stands in for a video or an image."""
    return _touch


@pytest.fixture
def fixtures() -> Path:
    """Real metadata files of the public benchmarks, copied byte for byte from their distributions."""
    return FIXTURES
