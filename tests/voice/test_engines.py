"""The two voices with real audio: OpenJTalk (pyopenjtalk-plus) in process, and the VOICEVOX client
against a VOICEVOX-compatible engine (tests.voice.fake_voicevox, backed by pyopenjtalk) on loopback."""

from __future__ import annotations

import asyncio

import pytest

from aituber.errors import ConfigError
from aituber.voice.base import VoiceError, VoiceSettings, VoiceUnavailable
from aituber.voice.openjtalk import OpenJTalkVoice
from aituber.voice.voicevox import VoicevoxVoice, resolve_style
from aituber.voice.wav import concat_wavs, decode_wav, rms
from tests.voice.conftest import free_port
from tests.voice.fake_voicevox import SPEAKERS

SENTENCE = "こんにちは、ミカだよ。"


def assert_speech(wav: bytes, text: str, min_rate: int = 16000) -> float:
    """A plausible recording of `text`: duration in Japanese speaking range, not silence."""
    samples, rate, channels = decode_wav(wav)
    duration = len(samples) / channels / rate
    assert rate >= min_rate
    assert 0.06 * len(text) < duration < 0.4 * len(text) + 0.5, duration  # ~5-15 morae per second
    assert rms(samples) > 300, "silence"
    loud = abs(samples.astype(int)) > 1000
    assert loud.mean() > 0.1, "mostly silence"
    return duration


async def test_openjtalk_speaks_japanese():
    voice = OpenJTalkVoice(VoiceSettings())
    try:
        await voice.start()
        audio = await voice.synthesize(SENTENCE)
        duration = assert_speech(audio.wav, SENTENCE)
        assert audio.sample_rate == 48000 and audio.duration_s == pytest.approx(duration)
        # Speed, volume and silences change the sound as asked.
        fast = OpenJTalkVoice(VoiceSettings(speed=1.5, volume=0.5, pre_silence_s=0.2, post_silence_s=0.3))
        quick = fast.synthesize_blocking(SENTENCE)
        samples, rate, _ = decode_wav(quick.wav)
        assert quick.duration_s < duration
        assert not samples[: int(0.2 * rate)].any() and not samples[-int(0.3 * rate):].any()
        assert rms(samples) < rms(decode_wav(audio.wav)[0])
        await fast.close()
    finally:
        await voice.close()


async def test_openjtalk_does_not_hold_up_the_event_loop():
    voice = OpenJTalkVoice(VoiceSettings())
    await voice.start()
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    job = asyncio.ensure_future(voice.synthesize("今日はとってもいい天気だから、みんなでお散歩に行きたいな。" * 3))
    while not job.done():
        before = loop.time()
        await asyncio.sleep(0.001)
        lags.append(loop.time() - before)
    await job
    await voice.close()
    assert len(lags) > 10  # the loop kept ticking while the worker thread synthesised


def test_resolve_style_by_name_id_and_default():
    assert resolve_style(SPEAKERS, None, None) == (3, "ミカ/ノーマル")
    assert resolve_style(SPEAKERS, "ミカ", "あまあま") == (1, "ミカ/あまあま")
    assert resolve_style(SPEAKERS, 888753760, None) == (888753760, "アイビス/ノーマル")
    assert resolve_style(SPEAKERS, "888753760", None)[0] == 888753760
    with pytest.raises(ConfigError, match=r"no such speaker.*ミカ \(ノーマル 3, あまあま 1\)"):
        resolve_style(SPEAKERS, "ずんだもん", None)
    with pytest.raises(ConfigError, match="has no such style; it has: ノーマル, あまあま"):
        resolve_style(SPEAKERS, "ミカ", "ささやき")
    with pytest.raises(ConfigError, match="no style with that id"):
        resolve_style(SPEAKERS, 3000, None)  # a singing style is not a talk style
    with pytest.raises(VoiceError):
        resolve_style([], None, None)


@pytest.mark.slow
async def test_voicevox_client_uses_the_documented_api(voicevox_factory):
    engine = voicevox_factory()
    settings = VoiceSettings(engine="voicevox", url=engine.url, speaker="アイビス", speed=1.2, pitch=0.05,
                             intonation=1.3, volume=0.8, pre_silence_s=0.2, post_silence_s=0.05)
    voice = VoicevoxVoice(settings)
    try:
        await voice.start()
        assert voice.style_id == 888753760 and "アイビス/ノーマル" in voice.label
        audio = await voice.synthesize(SENTENCE)
        assert_speech(audio.wav, SENTENCE)
        assert audio.sample_rate == 24000  # the engine's outputSamplingRate, kept
        queries = engine.requests("/audio_query")
        assert queries[-1]["text"] == SENTENCE and queries[-1]["speaker"] == 888753760
        synthesis = engine.requests("/synthesis")[-1]
        assert synthesis["speaker"] == 888753760 and synthesis["moras"].startswith("コンニチワ")
        assert (synthesis["speedScale"], synthesis["pitchScale"], synthesis["intonationScale"],
                synthesis["volumeScale"], synthesis["prePhonemeLength"], synthesis["postPhonemeLength"]) == (
            1.2, 0.05, 1.3, 0.8, 0.2, 0.05)
        # Unset silences keep the engine's own (0.1 s in an AudioQuery).
        plain = VoicevoxVoice(VoiceSettings(engine="voicevox", url=engine.url, speaker=1))
        await plain.start()
        both = concat_wavs([(await plain.synthesize("はい。")).wav, (await plain.synthesize("いいえ。")).wav])
        assert engine.requests("/synthesis")[-1]["prePhonemeLength"] == 0.1
        assert decode_wav(both)[1] == 24000
        await plain.close()
    finally:
        await voice.close()


@pytest.mark.slow
async def test_voicevox_faults_are_errors_of_the_right_kind(voicevox_factory):
    down = VoicevoxVoice(VoiceSettings(engine="voicevox", url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(VoiceUnavailable):
        await down.start()
    await down.close()

    engine = voicevox_factory(fail_text="エラー")
    voice = VoicevoxVoice(VoiceSettings(engine="voicevox", url=engine.url, speaker="ミカ"))
    await voice.start()
    with pytest.raises(VoiceError, match="500") as failed:
        await voice.synthesize("これはエラーです。")
    assert not isinstance(failed.value, VoiceUnavailable)
    assert_speech((await voice.synthesize("これは大丈夫。")).wav, "これは大丈夫。")
    engine.kill()
    with pytest.raises(VoiceUnavailable):
        await voice.synthesize("もしもし？")
    await voice.close()

    unknown = VoicevoxVoice(VoiceSettings(engine="voicevox", url=engine.url, speaker="だれか"))
    engine.start()
    with pytest.raises(ConfigError, match="だれか"):
        await unknown.start()
    await unknown.close()


@pytest.mark.slow
def test_say_writes_a_wav_of_the_character_voice(tmp_path, sample_character):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    out = tmp_path / "x.wav"
    result = subprocess.run([sys.executable, "-m", "aituber", "say", "こんにちは、ミカだよ。", "--character",
                             str(sample_character), "--out", str(out)], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert_speech(out.read_bytes(), "こんにちは、ミカだよ。")
    assert "wrote" in result.stdout and "ONNX" not in result.stdout  # the library's import notice is kept out
    bad = subprocess.run([sys.executable, "-m", "aituber", "say", "やあ", "--character", str(sample_character),
                          "--voice", "voicevox", "--voice-url", f"http://127.0.0.1:{free_port()}", "--out",
                          str(tmp_path / "y.wav")], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert bad.returncode == 2 and "cannot be reached" in bad.stderr and bad.stderr.count("\n") == 1
    assert not (tmp_path / "y.wav").exists()


def test_voice_settings_are_checked_with_the_key_named(tmp_path):
    from aituber.config import load_character

    for body, key in [('[voice]\nengine = "espeak"\n', "voice.engine"), ("[voice]\nspeed = 5.0\n", "voice.speed"),
                      ('[voice]\nurl = "localhost"\n', "voice.url"), ("[voice]\nspeeed = 1.0\n", "voice.speeed"),
                      ("[voice]\nclause_min_chars = 20\nclause_max_chars = 10\n", "voice.clause_max_chars")]:
        (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n' + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_character(tmp_path)
    (tmp_path / "character.toml").write_text('id = "x"\nname = "X"\n[voice]\nengine = "voicevox"\nspeaker = 2\n'
                                             'url = "http://127.0.0.1:10101"\n', encoding="utf-8")
    voice = load_character(tmp_path).character.voice
    assert voice.speaker == 2 and voice.url.endswith("10101")
