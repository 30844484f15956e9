"""``circuitspec data derive-words`` (paper §5) on the bundled toy model, which has learnt antonyms."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from circuitspec.cli.data_commands import pair_rows, register

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


def test_pair_rows_pairs_every_word_in_both_directions():
    rows = pair_rows(["good", "great"], ["bad", "awful", "poor"], ("Positive", "Negative"))
    assert len(rows) == 12
    assert rows[0] == {"s_ori": "Positive", "s_con": "Negative", "w_ori": "good", "w_con": "bad"}
    assert rows[-1] == {"s_ori": "Negative", "s_con": "Positive", "w_ori": "poor", "w_con": "great"}


def test_derive_words_cli_on_the_toy_model(tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command so typer keeps subcommand names
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(
        app, ["data", "derive-words", "--hypothesis", str(TOY), "--out", str(out), "--k", "3"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 18  # 3 × 3 pairs per direction
    positive = {r["w_ori"] for r in rows if r["s_ori"] == "Positive"}
    negative = {r["w_con"] for r in rows if r["s_ori"] == "Positive"}
    assert not positive & negative
    # the trained toy model answers a "Negative: ... bad. Positive: ..." prompt with "good" first
    assert "good" in positive and "bad" in negative


def test_missing_adjective_list_is_one_line_error(tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    args = ["data", "derive-words", "--hypothesis", str(TOY), "--out", str(tmp_path / "x.jsonl")]
    result = CliRunner().invoke(app, [*args, "--adjectives", str(tmp_path / "none.txt")])
    assert result.exit_code == 2
    assert "no adjective list at" in result.output and len(result.output.strip().splitlines()) == 1
