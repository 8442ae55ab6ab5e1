"""Transcribes a file through Protogate with OpenAI's Python SDK, as a prototype's backend
would: `client.audio.transcriptions.create`. Prints what the SDK returned, as JSON.

    sdk_transcribe.py BASE_URL FILE MODEL [RESPONSE_FORMAT] [--stream]
"""

import json
import sys

import openai
from openai import OpenAI


def main():
    args = [a for a in sys.argv[1:] if a != "--stream"]
    base_url, path, model = args[:3]
    response_format = args[3] if len(args) > 3 else "json"
    client = OpenAI(base_url=base_url, api_key="not-a-protogate-secret", max_retries=0)
    try:
        with open(path, "rb") as f:
            if "--stream" in sys.argv:
                events = client.audio.transcriptions.create(file=f, model=model, stream=True)
                out = {"deltas": [], "done": None}
                for event in events:
                    if event.type == "transcript.text.delta":
                        out["deltas"].append(event.delta)
                    elif event.type == "transcript.text.done":
                        out["done"] = event.text
            else:
                result = client.audio.transcriptions.create(file=f, model=model, response_format=response_format)
                if isinstance(result, str):
                    out = {"body": result}
                else:
                    out = {"type": type(result).__name__, "text": result.text}
                    for field in ("duration", "language"):
                        if getattr(result, field, None) is not None:
                            out[field] = getattr(result, field)
                    if getattr(result, "segments", None) is not None:
                        out["segments"] = [{"start": s.start, "end": s.end, "text": s.text} for s in result.segments]
    except openai.APIStatusError as e:
        out = {"status": e.status_code, "message": e.message}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
