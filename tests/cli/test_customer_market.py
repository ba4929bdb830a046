"""``genius customer market`` and ``genius customer token`` on a hub database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from genius.cli import main
from hub.http.tokens import verify_token
from hub.store import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"

    async def create() -> None:
        async with Store(path):
            pass

    asyncio.run(create())
    return path


def _market(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["customer", "market", "--db", str(db), "--customer", "alice", "--json", *args]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_market_shows_the_inferred_market_then_a_declared_one_then_inference_again(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _market(db, capsys)
    assert first["source"] == "inferred" and str(first["market"]).startswith("home:") and first["declared"] is None

    declared = _market(db, capsys, "--declare", "travel:leisure", "--for", "3d")
    held = declared["declared"]
    assert (declared["market"], declared["source"], declared["why"]) == ("travel:leisure", "declared",
                                                                         "declared by the customer")
    assert isinstance(held, dict) and held["until"] - held["declared"] == pytest.approx(3 * 86400)
    assert declared["inferred"] == {"market": first["market"], "why": first["why"]}
    assert _market(db, capsys)["market"] == "travel:leisure"  # it is stored

    withdrawn = _market(db, capsys, "--withdraw")
    assert withdrawn["withdrawn"] is True and withdrawn["source"] == "inferred"
    assert _market(db, capsys, "--withdraw")["withdrawn"] is False


def test_market_text_output_says_what_and_why(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["customer", "market", "--db", str(db), "--customer", "alice", "--declare", "hosting",
                 "--until", "2999-01-01T00:00"]) == 0
    out = capsys.readouterr().out
    assert "alice: hosting (declared by the customer)" in out and "until 2999-01-01T00:00:00+00:00" in out
    assert "inferred otherwise: home:" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--declare", "the-moon"], "unknown market 'the-moon'; known markets: home:weekday"),
    (["--declare", "hosting", "--until", "2001-01-01T00:00"], "is not in the future"),
    (["--declare", "hosting", "--for", "soon"], "duration 'soon'"),
    (["--for", "3d"], "--until and --for go with --declare"),
])
def test_market_refuses_bad_declarations_with_a_clear_error_and_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["customer", "market", "--db", str(db), "--customer", "alice", *args]) == 2
    assert message in capsys.readouterr().err
    assert _market(db, capsys)["declared"] is None


def test_market_needs_an_existing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["customer", "market", "--db", str(tmp_path / "none.db"), "--customer", "alice"]) == 2
    assert "no hub database" in capsys.readouterr().err


def test_token_prints_a_customer_token_once_that_the_hub_accepts_for_that_customer_only(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["customer", "token", "--db", str(db), "--customer", "alice", "--name", "phone", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["customer_id"] == "alice" and doc["name"] == "phone" and doc["token"].startswith("gc_")

    async def check() -> None:
        async with Store(db) as store:
            who = await verify_token(store, doc["token"])
            assert who is not None and who.customer_id == "alice" and who.role == "customer" and not who.is_staff
            async with store.db.execute("SELECT secret FROM customer_tokens") as cur:
                (stored,) = await cur.fetchone()  # type: ignore[misc]
            assert doc["token"] not in stored  # only a hash is kept

    asyncio.run(check())
