"""VOICEVOX-compatible engines over HTTP: VOICEVOX (port 50021) and AivisSpeech (port 10101, the same API).

As the VOICEVOX engine documents it: `GET /speakers` lists speakers and their styles (a style id is what
`speaker=` takes), `POST /audio_query?text=&speaker=` returns an AudioQuery (accent phrases and the
global scales), `POST /synthesis?speaker=` with that AudioQuery as JSON returns a WAV. The character's
speed, pitch, intonation, volume and silences are written into the AudioQuery's `speedScale`,
`pitchScale`, `intonationScale`, `volumeScale`, `prePhonemeLength` and `postPhonemeLength`.
Every request has a timeout; an engine that cannot be reached raises `VoiceUnavailable`.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from aituber.errors import ConfigError
from aituber.voice.base import Audio, VoiceError, VoiceSettings, VoiceUnavailable
from aituber.voice.wav import audio_from_wav

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError, httpx.PoolTimeout, httpx.CloseError)


def _same(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


def _talk_styles(speaker: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    styles = speaker.get("styles")
    if not isinstance(styles, list):
        return []
    return [s for s in styles if isinstance(s, Mapping) and isinstance(s.get("id"), int)
            and s.get("type", "talk") == "talk"]


def describe_speakers(speakers: Sequence[Mapping[str, Any]], limit: int = 12) -> str:
    """"四国めたん (ノーマル 2, あまあま 0), ..." for an error message."""
    parts = []
    for sp in speakers[:limit]:
        styles = ", ".join(f"{s.get('name', '?')} {s['id']}" for s in _talk_styles(sp))
        parts.append(f"{sp.get('name', '?')} ({styles})")
    more = f", and {len(speakers) - limit} more" if len(speakers) > limit else ""
    return "; ".join(parts) + more


def resolve_style(speakers: Any, speaker: str | int | None, style: str | None) -> tuple[int, str]:
    """(style id, "speaker/style") for the character's `speaker` and `style`, from a `/speakers` answer.
    A speaker is a name or a style id; no speaker means the first one; no style means the speaker's first.
    Raises ConfigError naming what the engine has."""
    if not isinstance(speakers, list) or not speakers:
        raise VoiceError("the engine's /speakers answer lists no speakers")
    speakers = [sp for sp in speakers if isinstance(sp, Mapping) and _talk_styles(sp)]
    if not speakers:
        raise VoiceError("the engine's /speakers answer has no talk styles")
    if isinstance(speaker, str) and speaker.strip().isdigit():
        speaker = int(speaker.strip())
    if isinstance(speaker, int):
        for sp in speakers:
            for st in _talk_styles(sp):
                if st["id"] == speaker:
                    return speaker, f"{sp.get('name', '?')}/{st.get('name', '?')}"
        raise ConfigError(f"[voice] speaker = {speaker}: the engine has no style with that id; it has: "
                          f"{describe_speakers(speakers)}")
    if speaker is None or not speaker.strip():
        chosen = speakers[0]
    else:
        found = [sp for sp in speakers if _same(str(sp.get("name", "")), speaker)]
        if not found:
            raise ConfigError(f"[voice] speaker = {speaker!r}: the engine has no such speaker; it has: "
                              f"{describe_speakers(speakers)}")
        chosen = found[0]
    styles = _talk_styles(chosen)
    if style is None or not style.strip():
        st = styles[0]
    else:
        matching = [s for s in styles if _same(str(s.get("name", "")), style)]
        if not matching:
            names = ", ".join(str(s.get("name", "?")) for s in styles)
            raise ConfigError(f"[voice] style = {style!r}: {chosen.get('name', '?')} has no such style; "
                              f"it has: {names}")
        st = matching[0]
    return int(st["id"]), f"{chosen.get('name', '?')}/{st.get('name', '?')}"


def apply_settings(query: dict[str, Any], settings: VoiceSettings) -> dict[str, Any]:
    """The AudioQuery with the character's scales and silences written in (a new dict)."""
    out = dict(query)
    out["speedScale"] = settings.speed
    out["pitchScale"] = settings.pitch
    out["intonationScale"] = settings.intonation
    out["volumeScale"] = settings.volume
    if settings.pre_silence_s is not None:
        out["prePhonemeLength"] = settings.pre_silence_s
    if settings.post_silence_s is not None:
        out["postPhonemeLength"] = settings.post_silence_s
    return out


class VoicevoxVoice:
    """A client for one engine and one style; see the module docstring."""

    name = "voicevox"

    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.style_id: int | None = None
        self.style_name = ""
        timeout = httpx.Timeout(settings.timeout_s + 1.0, connect=CONNECT_TIMEOUT_S)
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False)

    @property
    def label(self) -> str:
        who = f"{self.style_name} (style {self.style_id})" if self.style_id is not None else "speaker not chosen yet"
        return f"VOICEVOX-compatible engine at {self.url}, {who}"

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kw)
        except _UNREACHABLE as exc:
            raise VoiceUnavailable(f"{self.url} cannot be reached ({type(exc).__name__}: {exc})") from exc
        except httpx.TimeoutException as exc:
            raise VoiceError(f"{self.url}{path} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise VoiceUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise VoiceError(f"{self.url}{path} answered {response.status_code}: {response.text[:200]}")
        return response

    async def start(self) -> None:
        response = await self._request("GET", "/speakers")
        try:
            speakers = response.json()
        except ValueError as exc:
            raise VoiceError(f"{self.url}/speakers did not answer JSON; is this a VOICEVOX-compatible engine?") from exc
        self.style_id, self.style_name = resolve_style(speakers, self.settings.speaker, self.settings.style)

    async def synthesize(self, text: str) -> Audio:
        if self.style_id is None:
            raise VoiceUnavailable(f"{self.url}: not started")
        speaker = str(self.style_id)
        response = await self._request("POST", "/audio_query", params={"text": text, "speaker": speaker})
        try:
            query = response.json()
        except ValueError as exc:
            raise VoiceError(f"{self.url}/audio_query did not answer JSON") from exc
        if not isinstance(query, dict) or "accent_phrases" not in query:
            raise VoiceError(f"{self.url}/audio_query answered something that is not an AudioQuery")
        response = await self._request("POST", "/synthesis", params={"speaker": speaker},
                                       json=apply_settings(query, self.settings))
        return audio_from_wav(response.content)

    async def close(self) -> None:
        await self._client.aclose()


def create_engine(settings: VoiceSettings) -> VoicevoxVoice:
    return VoicevoxVoice(settings)
