"""Issue 15, spec side (torch-free): `each` on groups, `require`, explore / test splits, unknown words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel, WordPiece
from tokenizers.pre_tokenizers import BertPreTokenizer, WhitespaceSplit
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import claim_split, default_split, row_split, select_rows, split_sizes
from circuitspec.spec.vocabulary import check_vocabulary
from circuitspec.stats.gates import apply_requirements
from circuitspec.stats.outcome import ClaimOutcome, Interval
from circuitspec.tokenizer import TextTokenizer

HEAD = """\
name: gates
model: {name: gpt2}
data:
  rows:
    - {s_ori: Positive, s_con: Negative, w_ori: good, w_con: bad}
    - {s_ori: Negative, s_con: Positive, w_ori: bad, w_con: good}
  corrupt: {set: {s_con: "{s_ori}"}}
  templates:
    - id: sub
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"
      undesired: " {w_ori}"
      tags: [substitution]
nodes:
  movers: [L10H1, L10H4, L9H7]
"""
GATE = """\
  - id: does_task
    kind: behaviour
    expect: success_rate >= 0.9
"""


def _load(tmp_path: Path, claims: str, head: str = HEAD) -> tuple[Path, object]:
    path = tmp_path / "h.yaml"
    path.write_text(head + "claims:\n" + claims, encoding="utf-8")
    return path, load_hypothesis(path)


def _error_at(tmp_path: Path, claims: str, marker: str, head: str = HEAD) -> str:
    """The one-line error, checked to point at the line holding ``marker``."""
    path = tmp_path / "h.yaml"
    text = head + "claims:\n" + claims
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CircuitSpecError) as info:
        load_hypothesis(path)
    message = str(info.value)
    assert "\n" not in message
    line = next(i for i, content in enumerate(text.splitlines(), start=1) if marker in content)
    assert re.match(rf"^{re.escape(str(path))}:{line}:\d+: ", message), message
    return message


# ------------------------------------------------------------------------------ each on a group


def test_each_on_a_group_yields_one_claim_per_member(tmp_path):
    _, loaded = _load(
        tmp_path,
        "  - id: movers_read\n    kind: attribution\n    targets: [movers, L7H5]\n    each: true\n"
        "    expect: mean > 0\n",
    )
    ids = [c.id for c in loaded.claims]
    assert ids == ["movers_read[L10H1]", "movers_read[L10H4]", "movers_read[L9H7]", "movers_read[L7H5]"]
    assert [c.targets for c in loaded.claims] == [["L10H1"], ["L10H4"], ["L9H7"], ["L7H5"]]
    # a member's errors point at the group name in the claim's targets (index 0), L7H5 at index 1
    assert loaded.claim_loc("movers_read[L9H7]", "targets", 0) == ("claims", 0, "targets", 0)
    assert loaded.claim_loc("movers_read[L7H5]", "targets", 0) == ("claims", 0, "targets", 1)


def test_a_group_without_each_stays_one_joint_claim(tmp_path):
    _, loaded = _load(tmp_path, "  - {id: joint, kind: attribution, targets: movers, expect: mean > 0}\n")
    assert [(c.id, c.targets) for c in loaded.claims] == [("joint", ["movers"])]


# ------------------------------------------------------------------------------ require


def test_require_resolves_each_expansions(tmp_path):
    claims = (
        "  - {id: movers_read, kind: attribution, targets: movers, each: true, expect: mean > 0}\n"
        "  - {id: later, kind: attribution, targets: L7H5, expect: mean > 0, require: movers_read}\n"
    )
    _, loaded = _load(tmp_path, claims)
    later = next(c for c in loaded.claims if c.id == "later")
    assert later.require == ["movers_read[L10H1]", "movers_read[L10H4]", "movers_read[L9H7]"]


@pytest.mark.parametrize(
    ("claims", "marker", "fragment"),
    [
        (
            GATE + "  - {id: a, kind: attribution, targets: L7H5, expect: mean > 0, require: [does_tsk]}\n",
            "does_tsk",
            "require names unknown claim 'does_tsk' (valid: does_task, a)",
        ),
        (
            "  - {id: a, kind: attribution, targets: L7H5, expect: mean > 0, require: [b]}\n"
            "  - {id: b, kind: attribution, targets: L7H5, expect: mean > 0, require: [a]}\n",
            "id: a,",
            "require forms a cycle",
        ),
        (
            "  - {id: a, kind: attribution, targets: L7H5, expect: mean > 0, require: [a]}\n",
            "id: a,",
            "claim 'a' requires itself",
        ),
    ],
    ids=["unknown id", "cycle", "itself"],
)
def test_bad_require_is_one_located_line(tmp_path, claims, marker, fragment):
    assert fragment in _error_at(tmp_path, claims, marker)


def test_behaviour_claims_take_no_targets(tmp_path):
    from circuitspec.graph.compile import compile_hypothesis

    _, loaded = _load(tmp_path, "  - {id: b, kind: behaviour, targets: L7H5, expect: mean > 0}\n")
    with pytest.raises(CircuitSpecError, match="a behaviour claim has no targets"):
        compile_hypothesis(loaded)


def _outcome(claim_id: str, verdict: str) -> ClaimOutcome:
    return ClaimOutcome(
        claim_id, "attribution", "mean > 0", "mean", 1.5, Interval(1.0, 2.0, 0.95, "Student t"), verdict,
        f"{verdict} on its own", 64,
    )  # fmt: skip


class _Claims:
    def __init__(self, requires: dict[str, list[str]]):
        self.claims = [type("C", (), {"id": i, "require": r})() for i, r in requires.items()]


def test_failed_gate_makes_dependents_inconclusive_transitively():
    outcomes = [_outcome("gate", "fail"), _outcome("mech", "pass"), _outcome("on_mech", "fail")]
    outcomes.append(_outcome("free", "pass"))
    changed = apply_requirements(
        outcomes, _Claims({"gate": [], "mech": ["gate"], "on_mech": ["mech"], "free": []})
    )
    by_id = {o.claim_id: o for o in outcomes}
    assert changed == ["mech", "on_mech"]
    assert by_id["gate"].verdict == "fail" and by_id["free"].verdict == "pass"
    assert by_id["mech"].verdict == "inconclusive"
    assert by_id["mech"].reason == (
        "requires 'gate', which did not pass: the model does not do the task here"
    )
    assert by_id["mech"].details["without_requirement"] == {"verdict": "pass", "reason": "pass on its own"}
    assert by_id["mech"].estimate == 1.5 and by_id["mech"].ci is not None  # the numbers stay
    assert by_id["on_mech"].verdict == "inconclusive" and "requires 'mech'" in by_id["on_mech"].reason


def test_passed_gate_changes_nothing_and_errors_stay_errors():
    outcomes = [_outcome("gate", "pass"), _outcome("mech", "fail"), _outcome("broken", "error")]
    assert apply_requirements(outcomes, _Claims({"gate": [], "mech": ["gate"], "broken": ["gate"]})) == []
    assert [o.verdict for o in outcomes] == ["pass", "fail", "error"]
    outcomes[0].verdict = "error"
    apply_requirements(outcomes, _Claims({"gate": [], "mech": ["gate"], "broken": ["gate"]}))
    assert outcomes[1].reason == "requires 'gate', which could not be measured"
    assert outcomes[2].verdict == "error"


# ------------------------------------------------------------------------------ splits


SPLIT_HEAD = HEAD.replace("  corrupt:", "  split: {test_fraction: 0.5, seed: 3}\n  corrupt:")


def test_rows_split_by_their_own_content_only():
    from circuitspec.spec.schema import SplitSpec

    spec = SplitSpec(test_fraction=0.3, seed=1)
    rows = [{"w": f"word{i}", "n": str(i % 7)} for i in range(2000)]
    splits = [row_split(row, spec) for row in rows]
    assert set(splits) == {"explore", "test"}
    assert abs(splits.count("test") / len(rows) - 0.3) < 0.04  # binomial sd is 0.010
    # adding and reordering rows never moves a row across: the test rows of a grown file are a superset
    grown = [*rows[::-1], *({"w": f"new{i}", "n": "0"} for i in range(300))]
    test_rows = {json.dumps(r, sort_keys=True) for r in rows if row_split(r, spec) == "test"}
    grown_test = {json.dumps(r, sort_keys=True) for r in grown if row_split(r, spec) == "test"}
    assert test_rows < grown_test
    assert [row_split(row, SplitSpec(test_fraction=0.3, seed=2)) for row in rows] != splits


def test_select_rows_and_the_split_each_claim_uses(tmp_path):
    head = SPLIT_HEAD.replace("name: gates", "name: gates\nthresholds_set_on: explore")
    claims = GATE + "  - {id: peek, kind: attribution, targets: L7H5, expect: mean > 0, split: explore}\n"
    _, loaded = _load(tmp_path, claims, head)
    spec = loaded.spec
    rows = load_rows(spec.data, loaded.base_dir, hypothesis=loaded)
    sizes = split_sizes(rows, spec.data)
    assert sizes["all"] == 2 and sizes["explore"] + sizes["test"] == 2
    for name in ("explore", "test"):
        if sizes[name]:
            assert all(row_split(r, spec.data.split) == name for r in select_rows(rows, spec.data, name))
        else:
            with pytest.raises(CircuitSpecError, match=f"split '{name}' has no rows"):
                select_rows(rows, spec.data, name)
    gate, peek = loaded.claims
    assert default_split(spec) == "test"
    assert claim_split(gate, spec) == "test" and claim_split(peek, spec) == "explore"
    assert claim_split(peek, spec, "test") == "test"  # verify --split decides for the whole run


@pytest.mark.parametrize(
    ("head", "claims", "marker"),
    [
        (HEAD.replace("name: gates", "name: gates\nthresholds_set_on: explore"), GATE, "thresholds_set_on"),
        (HEAD, GATE.replace("    expect:", "    split: test\n    expect:"), "split: test"),
    ],
    ids=["thresholds_set_on", "claim split"],
)
def test_splits_need_data_split(tmp_path, head, claims, marker):
    assert "needs 'data.split'" in _error_at(tmp_path, claims, marker, head)


# ------------------------------------------------------------------------------ unknown words


def _word_tokenizer(words: list[str]) -> TextTokenizer:
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", *words])}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return TextTokenizer(backend=backend, bos_id=None, pad_id=1)


def test_unknown_word_names_word_template_and_jsonl_line(tmp_path):
    data = tmp_path / "rows.jsonl"
    rows = [{"a": "good", "b": "bad"}, {"a": "good", "b": "bad"}, {"a": "zebra", "b": "bad"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    head = (
        "name: unk\nmodel: {name: gpt2}\ndata:\n  file: rows.jsonl\n  templates:\n"
        '    - {id: t, text: "it is {a} .", desired: " {b}", undesired: " {a}"}\n'
    )
    _, loaded = _load(tmp_path, "  - {id: c, kind: behaviour, expect: mean > 0}\n", head)
    rows_read = load_rows(loaded.spec.data, loaded.base_dir)
    tokenizer = _word_tokenizer(["it", "is", ".", "good", "bad"])
    assert tokenizer.unknown_words("it is zebra .") == ["zebra"]
    with pytest.raises(CircuitSpecError) as info:
        check_vocabulary(loaded.spec.data, rows_read, tokenizer.unknown_words)
    assert str(info.value) == (
        f"{data}:3:1: word 'zebra' is not in the tokenizer's vocabulary (it would become the unknown "
        "token): this row, template 't', prompt 'it is zebra .'"
    )
    check_vocabulary(loaded.spec.data, rows_read[:2], tokenizer.unknown_words)  # known words pass


def test_byte_level_tokenizers_have_no_unknown_words():
    from tokenizers.models import BPE

    backend = Tokenizer(BPE(vocab={"a": 0}, merges=[]))  # no unk_token: unknown bytes are dropped or split
    assert TextTokenizer(backend=backend, bos_id=None, pad_id=0).unknown_words("zebra") == []


def _bert_dir(tmp_path: Path) -> Path:
    """A model directory as `validate` sees it: a BERT config.json and a WordPiece tokenizer.json."""
    words = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "i", "bought", "a", "red", "car", "what", "colour", "is",
             "the", "?", "old", "."]  # fmt: skip
    backend = Tokenizer(WordPiece(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = BertPreTokenizer()
    model = tmp_path / "bert"
    model.mkdir()
    backend.save(str(model / "tokenizer.json"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "num_hidden_layers": 2,
        "num_attention_heads": 2, "hidden_size": 8, "intermediate_size": 16, "vocab_size": len(words),
        "max_position_embeddings": 32,
    }  # fmt: skip
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return model


def _validate_refuses_zeppelin(path, text, known):
    """``validate`` on ``text`` stops at the row holding 'zeppelin' in one line, exit 2, and passes once
    that word is replaced by ``known``; returns the error line."""
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "zeppelin" in row)
    assert result.output.startswith(f"{path}:{line}:"), result.output
    assert result.output.count("\n") == 1, result.output
    path.write_text(text.replace("zeppelin", known), encoding="utf-8")
    result_after = CliRunner().invoke(app, ["validate", str(path)])
    assert result_after.exit_code == 0, result_after.output
    return result.output


def test_validate_refuses_an_unknown_word_without_loading_the_model(tmp_path):
    _bert_dir(tmp_path)
    text = (
        "name: enc\nmodel: {path: bert}\ndata:\n  rows:\n    - {colour: red, filler: old, noun: car}\n"
        "    - {colour: red, filler: old, noun: zeppelin}\n  corrupt: {set: {colour: '{filler}'}}\n"
        "  templates:\n    - id: bought\n      text: 'i bought a {colour} {noun} .'\n"
        "      reference: 'what colour is the {noun} ?'\n"
        "claims:\n  - {id: c, kind: attention, targets: L1H0, source: noun, destination: colour, "
        "expect: mean > 0}\n"
    )
    output = _validate_refuses_zeppelin(tmp_path / "enc.yaml", text, known="car")
    assert "word 'zeppelin' is not in the tokenizer's vocabulary" in output
    assert "template 'bought'" in output


def test_validate_refuses_an_unknown_word_of_the_bundled_toy_model(tmp_path):
    text = (
        "name: toy\nmodel: {bundled: toy_sentiment}\ndata:\n  rows:\n"
        "    - {s_ori: Positive, s_con: Negative, w_ori: good, w_con: bad}\n"
        "    - {s_ori: Positive, s_con: Negative, w_ori: zeppelin, w_con: bad}\n"
        "  templates:\n    - id: sub\n      text: '{s_ori}: {w_ori}. {s_con}:'\n"
        "      desired: ' {w_con}'\n      undesired: ' {w_ori}'\n"
        "claims:\n  - {id: c, kind: attribution, targets: L1H0, expect: mean > 0}\n"
    )
    assert "'zeppelin'" in _validate_refuses_zeppelin(tmp_path / "toy.yaml", text, known="good")
