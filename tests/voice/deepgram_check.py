"""Checks the tests' Deepgram mock against Deepgram's own Python SDK (PyPI deepgram-sdk):
the SDK, pointed at the mock, sends a recording and must read the answer, validated
strictly against its response model, and must read the mock's errors as Deepgram's.
Prints what it read, as JSON.

    deepgram_check.py MOCK_URL KEY FILE
"""

import json
import sys

from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.types.listen_v1response import ListenV1Response


def main():
    url, key, path = sys.argv[1:4]
    ws = url.replace("http://", "ws://")
    environment = DeepgramClientEnvironment(base=url, production=ws, agent=ws, agent_rest=url)
    client = DeepgramClient(api_key=key, environment=environment)
    with open(path, "rb") as f:
        audio = f.read()
    response = client.listen.v1.media.transcribe_file(request=audio, model="nova-3", smart_format=True, detect_language=True)
    # The SDK builds its answer without validating; validate it as the model says.
    strict = ListenV1Response.model_validate(response.model_dump(by_alias=True))
    channel = strict.results.channels[0]
    out = {
        "transcript": channel.alternatives[0].transcript,
        "words": len(channel.alternatives[0].words or []),
        "duration": strict.metadata.duration,
        "detected_language": channel.detected_language,
        "request_id": strict.metadata.request_id,
    }
    errors = {}
    for model in ("reject-key", "rate-limited", "error500"):
        try:
            client.listen.v1.media.transcribe_file(request=audio, model=model)
            errors[model] = "no error"
        except ApiError as e:
            errors[model] = {"status": e.status_code, "body": e.body}
    out["errors"] = errors
    print(json.dumps(out))


if __name__ == "__main__":
    main()
