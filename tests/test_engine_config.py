"""The character's `[engine]` table and how the command line overrides it (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aituber.config import engine_settings, load_character, prompt_builder
from aituber.core.prompt import PromptForm
from aituber.engine.base import EngineInfo, EngineSettings
from aituber.engine.openai import RemoteSettings
from aituber.errors import ConfigError

LOCAL = EngineSettings(kind="ctranslate2", model=Path("/models/local"), device="cpu", compute_type="int8")


def character(tmp_path: Path, engine: str = "", template: str = "instruction"):
    (tmp_path / "character.toml").write_text(
        f'id = "bot"\nname = "ボット"\npersona = "あなたはボット。"\ntemplate = "{template}"\n{engine}',
        encoding="utf-8")
    return load_character(tmp_path).character


def no_local() -> EngineSettings:
    raise AssertionError("the local model was prepared without need")


def test_default_is_the_local_engine(tmp_path):
    settings = engine_settings(character(tmp_path), lambda: LOCAL)
    assert settings == LOCAL


def test_engine_table_is_read_and_the_command_line_wins(tmp_path):
    c = character(tmp_path, '[engine]\nkind = "openai"\nurl = "http://gpu.lan:8000/v1"\nmodel = "qwen"\n'
                            'api = "completions"\napi_key_env = "MY_KEY"\nfirst_token_timeout_s = 9\n')
    settings = engine_settings(c, no_local, environ={"MY_KEY": "sk-secret", "AITUBER_ENGINE_API_KEY": "other"})
    remote = RemoteSettings.from_engine_settings(settings)
    assert settings.kind == "openai" and settings.model == "qwen"
    assert remote.url == "http://gpu.lan:8000/v1" and remote.api == "completions" and remote.api_key == "sk-secret"
    assert remote.first_token_timeout_s == 9
    assert "sk-secret" not in repr(settings) and "sk-secret" not in repr(remote)
    over = engine_settings(c, no_local, url="http://127.0.0.1:8080", model="gemma", api="chat", environ={})
    remote = RemoteSettings.from_engine_settings(over)
    assert remote.url == "http://127.0.0.1:8080/v1" and over.model == "gemma" and remote.api == "chat"
    assert remote.api_key is None
    assert engine_settings(c, lambda: LOCAL, kind="ctranslate2") == LOCAL


def test_command_line_alone_selects_the_remote_engine(tmp_path):
    settings = engine_settings(character(tmp_path), no_local, kind="openai", url="127.0.0.1:8080",
                               environ={"AITUBER_ENGINE_API_KEY": "k"})
    remote = RemoteSettings.from_engine_settings(settings)
    assert remote.url == "http://127.0.0.1:8080/v1" and remote.api_key == "k" and remote.model is None
    with pytest.raises(ConfigError, match="--engine-url URL"):
        engine_settings(character(tmp_path), no_local, kind="openai")


def test_fallback_carries_the_local_settings(tmp_path):
    c = character(tmp_path, '[engine]\nkind = "openai"\nurl = "http://gpu.lan:8000"\nfallback = "local"\n')
    settings = engine_settings(c, lambda: LOCAL)
    assert settings.options["fallback"] == LOCAL


@pytest.mark.parametrize("table, expected", [
    ('[engine]\nkind = "openai"\napi_key = "sk-1"\n', "never goes in the character file"),
    ('[engine]\nkind = "gpt5"\n', "unknown engine 'gpt5'"),
    ('[engine]\nurl = "ftp://x"\n', "engine.url"),
    ('[engine]\napi = "responses"\n', "engine.api"),
    ('[engine]\nfallback = "cloud"\n', "engine.fallback"),
    ('[engine]\nread_timeout_s = 0\n', "engine.read_timeout_s"),
    ('[engine]\napi_key_env = "not a name"\n', "engine.api_key_env"),
    ('[engine]\ncolour = 1\n', "engine.colour"),
])
def test_bad_engine_tables_name_the_file_and_key(tmp_path, table, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        character(tmp_path, table)
    assert "character.toml" in str(error.value)


def test_chat_template_with_the_completions_api_is_refused(tmp_path):
    c = character(tmp_path, '[engine]\nkind = "openai"\nurl = "h:1"\napi = "completions"\n', template="chat")
    with pytest.raises(ConfigError, match="template 'chat'"):
        engine_settings(c, no_local)


def test_chat_template_with_a_messages_engine_builds_messages(tmp_path):
    c = character(tmp_path, template="chat")
    info = EngineInfo(name="openai", model="m", prompt_form=PromptForm.MESSAGES)
    prompt = prompt_builder(c, info).build("こんにちは", "たぬき", form=PromptForm.MESSAGES)
    assert prompt.messages == ({"role": "system", "content": "あなたはボット。"},
                               {"role": "user", "content": "たぬき: こんにちは"})
    with pytest.raises(ValueError, match="chat template"):
        prompt_builder(c, EngineInfo(name="ctranslate2", model="m"))  # a local engine still needs it
