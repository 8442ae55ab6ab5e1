"""A real speech recognizer behind OpenAI's transcription API, for Protogate's tests.

`POST /v1/audio/transcriptions` (multipart `file`, `model`, `response_format`,
`language`, `prompt`, `stream`) answered by PocketSphinx's bundled English model, offline.
Free recognition of synthetic speech is poor, so it listens for spoken digits (a small
JSGF grammar), which it hears reliably from espeak-ng. WAV is read here; other formats
(OGG/Opus, WebM, MP3, M4A) are decoded with ffmpeg, as speech servers do.

What the model name asks for, so a test can say what the server does:
- any name: `json`, `text` and `verbose_json` (with duration, language and segments);
  `stream=true` is ignored and the answer is JSON, as whisper-1 does.
- a name containing `stream`: `stream=true` answers `transcript.text.delta` events, one
  per word, then `transcript.text.done`.
- `json-only`: refuses `verbose_json` with a 400 and counts tokens, not seconds, as
  OpenAI's gpt-4o-transcribe does (so its answer has no timings).

`--key KEY` makes it require `Authorization: Bearer KEY` (401 otherwise). Prints
`listening on http://127.0.0.1:PORT` once it serves.
"""

import argparse
import email.parser
import email.policy
import json
import subprocess
import sys
import tempfile
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

from pocketsphinx import Decoder

try:  # Python 3.11 and 3.12 (Debian 12); gone in 3.13, where ffmpeg reads WAV too.
    import audioop
except ImportError:
    audioop = None

RATE = 16000
FRAMES_PER_SECOND = 100
GRAMMAR = """#JSGF V1.0;
grammar digits;
public <digits> = ( zero | oh | one | two | three | four | five | six | seven | eight | nine )+ ;
"""


class Refused(Exception):
    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def pcm16k(data, filename):
    """16 kHz mono 16-bit samples of an audio file."""
    if not data:
        raise Refused(400, "Audio file is empty.", "empty_file")
    if data[:4] == b"RIFF" and audioop is not None:
        try:
            with wave.open(BytesIO(data)) as w:
                width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
                pcm = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as e:
            raise Refused(400, f"Could not decode the WAV file: {e}", "invalid_audio")
        if channels > 1:
            pcm = audioop.tomono(pcm, width, 0.5, 0.5)
        if width != 2:
            pcm = audioop.lin2lin(pcm, width, 2)
        if rate != RATE:
            pcm, _ = audioop.ratecv(pcm, 2, 1, rate, RATE, None)
        return pcm
    with tempfile.NamedTemporaryFile(suffix="-" + filename.replace("/", "_")) as f:
        f.write(data)
        f.flush()
        run = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", f.name, "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
            capture_output=True,
        )
    if run.returncode != 0 or not run.stdout:
        reason = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio"]
        reason = reason[0].replace(f"{f.name}: ", "")
        raise Refused(400, f"Could not decode the audio file {filename}: {reason}", "invalid_audio")
    return run.stdout


def recognize(pcm, grammar_path):
    decoder = Decoder(samprate=RATE, jsgf=grammar_path)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    words = [
        (s.word.split("(")[0], s.start_frame / FRAMES_PER_SECOND, (s.end_frame + 1) / FRAMES_PER_SECOND)
        for s in decoder.seg()
        if not s.word.startswith(("<", "["))
    ]
    return (hyp.hypstr if hyp else ""), words


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    key = None
    grammar = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        try:
            if self.path != "/v1/audio/transcriptions":
                raise Refused(404, f"Invalid URL (POST {self.path})")
            if self.key is not None and self.headers.get("Authorization") != f"Bearer {self.key}":
                raise Refused(401, "Incorrect API key provided.", "invalid_api_key")
            self.transcribe(self.form(body))
        except Refused as e:
            error = {"message": e.message, "type": "invalid_request_error", "param": None, "code": e.code}
            self.send(e.status, "application/json", json.dumps({"error": error}))

    def form(self, body):
        head = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            raise Refused(400, "Expected a multipart/form-data body.")
        fields, file = {}, None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if name == "file":
                file = (part.get_filename() or "audio", data)
            else:
                fields[name] = data.decode()
        if file is None:
            raise Refused(400, "Missing required parameter: 'file'.")
        if not fields.get("model"):
            raise Refused(400, "Missing required parameter: 'model'.")
        return fields, file

    def transcribe(self, form):
        fields, (filename, data) = form
        model, fmt = fields["model"], fields.get("response_format", "json")
        if fmt not in ("json", "text", "verbose_json"):
            raise Refused(400, f"response_format '{fmt}' is not supported by this server.")
        if fmt == "verbose_json" and model == "json-only":
            raise Refused(
                400,
                f"response_format 'verbose_json' is not compatible with model '{model}'. Use 'json' or 'text' instead.",
                "unsupported_value",
            )
        pcm = pcm16k(data, filename)
        duration = len(pcm) / 2 / RATE
        text, words = recognize(pcm, self.grammar)
        if fields.get("stream") == "true" and "stream" in model:
            events = [{"type": "transcript.text.delta", "delta": (" " if i else "") + w} for i, (w, _, _) in enumerate(words)]
            events.append({"type": "transcript.text.done", "text": text})
            self.send(200, "text/event-stream", "".join(f"data: {json.dumps(e)}\n\n" for e in events))
        elif fmt == "text":
            self.send(200, "text/plain", text + "\n")
        elif fmt == "verbose_json":
            segments = []
            if words:
                segments.append({"id": 0, "seek": 0, "start": words[0][1], "end": words[-1][2], "text": " " + text,
                                 "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                                 "compression_ratio": 1.0, "no_speech_prob": 0.0})
            self.send(200, "application/json", json.dumps(
                {"task": "transcribe", "language": "english", "duration": duration, "text": text, "segments": segments}))
        elif model == "json-only":
            usage = {"type": "tokens", "input_tokens": len(pcm) // 3200, "output_tokens": len(words), "total_tokens": len(pcm) // 3200 + len(words)}
            self.send(200, "application/json", json.dumps({"text": text, "usage": usage}))
        else:
            self.send(200, "application/json", json.dumps({"text": text, "usage": {"type": "duration", "seconds": round(duration)}}))

    def send(self, status, content_type, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key")
    args = parser.parse_args()
    grammar = tempfile.NamedTemporaryFile("w", suffix=".jsgf", delete=False)
    grammar.write(GRAMMAR)
    grammar.close()
    Handler.key, Handler.grammar = args.key, grammar.name
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
