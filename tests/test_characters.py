"""`aituber init`: what it writes (every key, commented, loadable), that it never overwrites, and the
questions; the TOML writing against tomllib for any text."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from aituber.characters import (
    CharacterExistsError,
    CharacterSpec,
    ask_spec,
    create_character,
    display_width,
    example_exchanges,
    id_from_folder,
    render_character_toml,
    split_endings,
    toml_multiline,
    toml_string,
)
from aituber.config import Character, load_character
from aituber.errors import ConfigError
from training.dataset import load_comments, load_dataset
from training.settings import TrainSettings, load_training_character

SORA = CharacterSpec(id="sora", name="空野ソラ", first_person="ソラ", sentence_endings=("だよ", "なの"))


def test_every_key_of_the_character_file_is_written():
    text = render_character_toml(SORA)
    tomllib.loads(text)
    for name, field in Character.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert re.search(rf"^\[{name}\]", text, re.M), f"[{name}] missing"
            for key in annotation.model_fields:
                assert re.search(rf"^(# )?{key} =", text, re.M), f"{name}.{key} missing"
        elif name not in ("outputs", "training"):
            assert re.search(rf"^{name} =", text, re.M), f"{name} missing"
    for key in TrainSettings.__dataclass_fields__:
        assert re.search(rf"^{key} =", text, re.M), f"training.{key} missing"


def test_the_written_file_means_the_answers_and_the_defaults(tmp_path):
    (tmp_path / "character.toml").write_text(render_character_toml(SORA), encoding="utf-8")
    character = load_character(tmp_path).character
    assert (character.id, character.name, character.first_person) == ("sora", "空野ソラ", "ソラ")
    assert character.sentence_endings == ["だよ", "なの"]
    assert "「空野ソラ」" in character.persona and "「ソラ」" in character.persona
    defaults = Character(id="sora", name="空野ソラ")
    for table in ("generation", "prompt", "moderation", "queue", "idle", "obs"):
        assert getattr(character, table) == getattr(defaults, table), table
    _, training = load_training_character(tmp_path)
    assert training == TrainSettings()


def test_commented_examples_load_once_uncommented(tmp_path):
    """A streamer uncomments a line to use it: every commented key (but [voice], for versions without
    it) must then be valid."""
    lines = []
    in_voice = False
    for line in render_character_toml(SORA).splitlines():
        if line.startswith(("[", "# [")):
            in_voice = "[voice]" in line
        if not in_voice and re.match(r"# \w+ = ", line):
            line = line[2:]
        lines.append(line)
    (tmp_path / "character.toml").write_text("\n".join(lines), encoding="utf-8")
    character = load_character(tmp_path).character
    assert character.idle.after_s == 45.0 and character.obs.paused_scene == "BRB"
    assert character.model.adapter == "adapter"


def test_voice_table_matches_what_this_version_knows(tmp_path):
    spec = replace(SORA, voice_engine="voicevox", voice_speaker="3")
    text = render_character_toml(spec)
    if "voice" in Character.model_fields:
        assert re.search(r'^\[voice\]', text, re.M) and re.search(r'^engine = "voicevox"', text, re.M)
    else:  # written for later, commented out
        assert re.search(r'^# \[voice\]', text, re.M) and re.search(r'^# engine = "voicevox"', text, re.M)
        assert re.search(r"^# speaker = 3\b", text, re.M)
    (tmp_path / "character.toml").write_text(text, encoding="utf-8")
    load_character(tmp_path)


def test_the_example_dataset_is_valid_training_data(tmp_path):
    files = create_character(tmp_path / "sora", SORA)
    folder = tmp_path / "sora"
    assert {p.relative_to(folder).as_posix() for p in files} == {
        "character.toml", "dataset/train.jsonl", "dataset/eval.jsonl", "README.md"}
    examples = load_dataset(folder / "dataset" / "train.jsonl")
    assert len(examples) == len(example_exchanges(SORA)) and any(len(e.turns) == 2 for e in examples)
    markers = ("ソラ", "だよ", "なの")  # the first person and the endings: what eval counts as in character
    assert all(any(m in t.output for m in markers) for e in examples for t in e.turns)
    train_comments = {t.instruction for e in examples for t in e.turns}
    held_out = [c.instruction for _, c in load_comments(folder / "dataset" / "eval.jsonl")]
    assert held_out and not set(held_out) & train_comments
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "aituber train" in readme and str(folder) in readme
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_an_existing_folder_is_never_overwritten(tmp_path):
    folder = tmp_path / "sora"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CharacterExistsError, match="already exists"):
        create_character(folder, SORA)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CharacterExistsError):
        create_character(empty, SORA)
    assert not any(empty.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "sora"]


@pytest.mark.parametrize(("spec", "message"), [
    (replace(SORA, id="空野"), "letters, digits"),
    (replace(SORA, name="  "), "must not be empty"),
    (replace(SORA, template="alpaca"), "known: instruction"),
    (replace(SORA, voice_engine="espeak"), "known: none"),
])
def test_unusable_answers_are_config_errors(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message):
        create_character(tmp_path / "x", spec)
    assert not list(tmp_path.iterdir())


def test_questions_take_answers_keep_defaults_and_ask_again():
    answers = iter(["ソラ・アオイ", "", "だよ、なのだ", "alpaca", "", "chat", "", "voicevox", "ずんだもん"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    spec = ask_spec(SORA, ask)
    assert spec.name == "ソラ・アオイ" and spec.first_person == "ソラ"
    assert spec.sentence_endings == ("だよ", "なのだ")
    assert spec.template == "chat" and spec.persona == ""
    assert spec.voice_engine == "voicevox" and spec.voice_speaker == "ずんだもん"
    assert any("one of instruction" in p for p in prompts)  # alpaca was refused, then asked again
    assert "[ソラ]" in prompts[1]


def test_questions_skip_what_the_flags_gave():
    asked: list[str] = []
    spec = ask_spec(SORA, lambda p: asked.append(p) or "",
                    skip=frozenset({"name", "first_person", "sentence_endings", "template", "persona"}))
    assert spec == SORA and len(asked) == 1 and asked[0].startswith("voice engine")


def test_small_helpers():
    assert split_endings("だよ, だね、かな　よ〜") == ("だよ", "だね", "かな", "よ〜")
    assert id_from_folder(__import__("pathlib").Path("characters/sora")) == "sora"
    assert id_from_folder(__import__("pathlib").Path("characters/空野")) is None
    assert display_width("ソラab") == 6


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_survives_toml(text):
    assert tomllib.loads(f"a = {toml_string(text)}")["a"] == text
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert tomllib.loads(f"a = {toml_multiline(text)}")["a"] == expected


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1).filter(str.strip), first=st.text(), persona=st.text(),
       endings=st.lists(st.text(min_size=1), max_size=4))
def test_any_answers_load_back(name, first, persona, endings):
    # NUL cannot be in a character's text (check() refuses it); everything else must round-trip.
    if "\x00" in name + first + persona + "".join(endings):
        return
    spec = CharacterSpec(id="x", name=name, first_person=first, persona=persona, sentence_endings=tuple(endings))
    character = Character.model_validate(tomllib.loads(render_character_toml(spec)))
    assert character.name == name and character.first_person == first
    assert character.sentence_endings == list(endings)
    if persona.strip():
        assert character.persona == persona.replace("\r\n", "\n").replace("\r", "\n").strip()


def test_example_lines_are_json_lines(tmp_path):
    create_character(tmp_path / "sora", SORA)
    for line in (tmp_path / "sora" / "dataset" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        assert isinstance(json.loads(line), dict)
