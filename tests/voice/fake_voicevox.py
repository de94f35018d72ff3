"""A VOICEVOX-compatible engine for the tests, backed by pyopenjtalk so that the audio is real.

It implements what aituber uses, as the VOICEVOX engine documents it: `GET /version`, `GET /speakers`
(speakers with talk styles; one style id as large as AivisSpeech's), `POST /audio_query?text=&speaker=`
(an AudioQuery: accent phrases of moras built from OpenJTalk's analysis, the scales, the silences,
outputSamplingRate 24000, outputStereo false, kana) and `POST /synthesis?speaker=` (an AudioQuery in,
a 16-bit WAV out; speedScale, pitchScale, volumeScale and the silences are applied). A missing
parameter or AudioQuery field is a 422, as FastAPI answers.

Faults for the tests: `--delay-s` (every synthesis waits first), `--fail-text MARK` (a synthesis whose
moras spell MARK answers 500). Every request is logged as a JSON line to `--log`.

Run: python -m tests.voice.fake_voicevox --port 0 --log FILE  (prints "READY <port>" once listening)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):
    import pyopenjtalk

SPEAKERS = [
    {"name": "ミカ", "speaker_uuid": "00000000-0000-4000-8000-000000000001", "version": "fake",
     "styles": [{"name": "ノーマル", "id": 3, "type": "talk"}, {"name": "あまあま", "id": 1, "type": "talk"}]},
    {"name": "アイビス", "speaker_uuid": "00000000-0000-4000-8000-000000000002", "version": "fake",
     "styles": [{"name": "ノーマル", "id": 888753760, "type": "talk"},
                {"name": "うた", "id": 3000, "type": "frame_decode"}]},
]
STYLE_IDS = {st["id"] for sp in SPEAKERS for st in sp["styles"] if st["type"] == "talk"}
QUERY_FIELDS = ("accent_phrases", "speedScale", "pitchScale", "intonationScale", "volumeScale",
                "prePhonemeLength", "postPhonemeLength", "outputSamplingRate", "outputStereo")
SEMITONE = math.log(2) / 12
VOWELS = set("aiueoAIUEO") | {"N", "cl"}
SMALL = set("ァィゥェォャュョヮ")
_lock = threading.Lock()  # pyopenjtalk's global engine: one synthesis at a time


def split_moras(kana: str) -> list[str]:
    moras: list[str] = []
    for ch in kana:
        if ch in SMALL and moras:
            moras[-1] += ch
        elif ch == "’" or ch == "'":
            continue
        else:
            moras.append(ch)
    return moras


def mora(text: str, previous_vowel: str) -> dict[str, Any]:
    if text == "ー":
        consonant, vowel = None, previous_vowel
    else:
        phonemes = pyopenjtalk.g2p(text).split()
        if not phonemes:
            consonant, vowel = None, previous_vowel
        elif len(phonemes) == 1:
            consonant, vowel = None, phonemes[0]
        else:
            consonant, vowel = "".join(phonemes[:-1]), phonemes[-1]
    return {"text": text, "consonant": consonant, "consonant_length": 0.05 if consonant else None,
            "vowel": vowel, "vowel_length": 0.1, "pitch": 5.6}


def accent_phrases(text: str) -> list[dict[str, Any]]:
    phrases: list[dict[str, Any]] = []
    vowel = "a"
    for feature in pyopenjtalk.run_frontend(text):
        pron = str(feature.get("pron", ""))
        if feature.get("pos") == "記号" or not pron.strip("、。？！’"):
            if phrases and phrases[-1]["pause_mora"] is None:
                phrases[-1]["pause_mora"] = {"text": "、", "consonant": None, "consonant_length": None,
                                             "vowel": "pau", "vowel_length": 0.3, "pitch": 0.0}
            if "？" in str(feature.get("string", "")) and phrases:
                phrases[-1]["is_interrogative"] = True
            continue
        moras = []
        for m in split_moras(pron):
            moras.append(mora(m, vowel))
            if moras[-1]["vowel"] in VOWELS - {"N", "cl"}:
                vowel = moras[-1]["vowel"]
        if not moras:
            continue
        if feature.get("chain_flag") == 1 and phrases and phrases[-1]["pause_mora"] is None:
            phrases[-1]["moras"] += moras
        else:
            phrases.append({"moras": moras, "accent": int(feature.get("acc") or 0), "pause_mora": None,
                            "is_interrogative": False})
    for phrase in phrases:
        phrase["accent"] = min(max(phrase["accent"], 1), len(phrase["moras"]))
    return phrases


def audio_query(text: str) -> dict[str, Any]:
    phrases = accent_phrases(text)
    kana = "/".join("".join(m["text"] for m in p["moras"]) for p in phrases)
    return {"accent_phrases": phrases, "speedScale": 1.0, "pitchScale": 0.0, "intonationScale": 1.0,
            "volumeScale": 1.0, "prePhonemeLength": 0.1, "postPhonemeLength": 0.1, "pauseLength": None,
            "pauseLengthScale": 1.0, "outputSamplingRate": 24000, "outputStereo": False, "kana": kana}


def spoken_text(query: dict[str, Any]) -> str:
    parts = []
    for phrase in query["accent_phrases"]:
        parts.append("".join(m["text"] for m in phrase["moras"]))
        if phrase.get("pause_mora"):
            parts.append("、")
    return "".join(parts)


def synthesize(query: dict[str, Any]) -> bytes:
    text = spoken_text(query)
    with _lock:
        samples, rate = pyopenjtalk.tts(text, speed=float(query["speedScale"]),
                                        half_tone=float(query["pitchScale"]) / SEMITONE) if text else (np.zeros(0), 48000)
    samples = np.asarray(samples, dtype=np.float64) * float(query["volumeScale"])
    out_rate = int(query["outputSamplingRate"])
    if out_rate != rate and len(samples):
        positions = np.arange(0, len(samples), rate / out_rate)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    pre = np.zeros(int(float(query["prePhonemeLength"]) * out_rate))
    post = np.zeros(int(float(query["postPhonemeLength"]) * out_rate))
    pcm = np.clip(np.concatenate([pre, samples, post]), -32768, 32767).astype("<i2")
    channels = 2 if query["outputStereo"] else 1
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(out_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


class Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode())

    def _missing(self, where: str, name: str) -> None:
        self._json(422, {"detail": [{"type": "missing", "loc": [where, name], "msg": "Field required"}]})

    def _record(self, **entry: Any) -> None:
        if self.server.log_path:
            with self.server.log_lock, open(self.server.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": time.time(), **entry}, ensure_ascii=False) + "\n")

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self._record(method="GET", path=path)
        if path == "/version":
            self._json(200, "0.0.0-fake")
        elif path == "/speakers":
            self._json(200, SPEAKERS)
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "speaker" not in query:
            self._missing("query", "speaker")
            return
        try:
            style = int(query["speaker"])
        except ValueError:
            self._json(422, {"detail": [{"type": "int_parsing", "loc": ["query", "speaker"]}]})
            return
        if style not in STYLE_IDS:
            self._json(422, {"detail": "指定されたスタイルが見つかりませんでした。"})
            return
        if url.path == "/audio_query":
            if "text" not in query:
                self._missing("query", "text")
                return
            self._record(method="POST", path=url.path, text=query["text"], speaker=style)
            self._json(200, audio_query(query["text"]))
        elif url.path == "/synthesis":
            try:
                aq = json.loads(body)
            except ValueError:
                self._json(422, {"detail": [{"type": "json_invalid", "loc": ["body"]}]})
                return
            for name in QUERY_FIELDS:
                if not isinstance(aq, dict) or name not in aq:
                    self._missing("body", name)
                    return
            text = spoken_text(aq)
            self._record(method="POST", path=url.path, speaker=style, moras=text,
                         **{k: aq[k] for k in QUERY_FIELDS if k != "accent_phrases"})
            if self.server.delay_s:
                time.sleep(self.server.delay_s)
            if self.server.fail_text and self.server.fail_text in text:
                self._json(500, {"detail": "Internal Server Error"})
                return
            self._send(200, synthesize(aq), "audio/wav")
        else:
            self._json(404, {"detail": "Not Found"})


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, log_path: str | None, delay_s: float, fail_text: str | None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.delay_s = delay_s
        self.fail_text = fail_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--fail-text")
    args = parser.parse_args(argv)
    pyopenjtalk.tts("あ")  # load before saying READY
    server = FakeServer(args.port, args.log, args.delay_s, args.fail_text)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
