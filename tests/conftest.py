"""Shared fixtures: real Mosquitto brokers on free loopback ports, unique topic prefixes."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulations.brokers import Mosquitto, find_mosquitto

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _ensure_mosquitto() -> None:
    """The test setup installs Debian's mosquitto when it is missing (root, as CI is)."""
    if find_mosquitto() is not None:
        return
    if shutil.which("apt-get") is None:
        pytest.exit("mosquitto is missing and apt-get is not available to install it", returncode=3)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "mosquitto"], check=True, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    )


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One Mosquitto for the session (default limits); tests separate by topic prefix."""
    _ensure_mosquitto()
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start extra brokers (a separate hub broker, one to stop and restart …) for one test."""
    _ensure_mosquitto()
    started: list[Mosquitto] = []
    counter = itertools.count()

    def make(**kwargs: object) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{next(counter)}", **kwargs)  # type: ignore[arg-type]
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.kill()


@pytest.fixture
def prefix() -> str:
    """A unique identifier/topic prefix so tests sharing a broker never see each other."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    return SHARED_DATASETS


def dataset_or_skip(*parts: str) -> Path:
    path = SHARED_DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset not present at {path} (../shared/datasets is not part of this checkout)")
    return path
