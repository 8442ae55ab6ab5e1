"""The Responses API's WebSocket mode as Protogate serves it (`GET /v1/responses`
upgraded), checked against OpenAI's Python SDK: every server event must validate as the
SDK's `ResponseStreamEvent` (its pydantic models), read with the `websockets` client.

Usage: responses_ws.py WS_URL ORIGIN. The gateway's default provider is the mock OpenAI
upstream (`tests/common/mock_openai.rs`). Prints a JSON report; fails on any mismatch.
"""

import asyncio
import json
import sys

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect

EVENTS = TypeAdapter(ResponseStreamEvent)
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather at a place",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


async def response(ws, **body):
    """Sends one `response.create`; its events, validated, up to the last one."""
    await ws.send(json.dumps({"type": "response.create", **body}))
    events = []
    while True:
        raw = json.loads(await asyncio.wait_for(ws.recv(), 10))
        event = EVENTS.validate_python(raw)
        events.append(event)
        # A request refused before it starts is one `error` event, alone.
        if event.type in TERMINAL or (event.type == "error" and len(events) == 1):
            return events


def text(events):
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def check_stream(events):
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] == "response.completed", kinds
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events))), numbers
    ids = {e.response.id for e in events if e.type.startswith("response.") and hasattr(e, "response")}
    assert len(ids) == 1, ids


async def main(url, origin):
    report = {"texts": [], "kinds": []}
    async with connect(url, origin=origin) as ws:
        # A function call, its arguments streamed, as the SDK types it.
        call = await response(ws, model="mock/tool-call", input="Weather in Paris?", tools=[WEATHER])
        check_stream(call)
        item = call[-1].response.output[0]
        assert item.type == "function_call" and item.name == "get_weather", item
        assert json.loads(item.arguments) == {"location": "Paris, France"}, item.arguments

        # Then text, on the same socket.
        first = await response(ws, model="mock/gpt-test", input="Say hello")
        check_stream(first)
        report["texts"].append(text(first))
        report["kinds"] = [e.type for e in first]
        assert first[-1].response.output_text == "Hello world", first[-1].response
        assert first[-1].response.usage.output_tokens >= 0

        # Continued from the socket's last response, with only the new input.
        second = await response(
            ws,
            model="mock/gpt-test",
            previous_response_id=first[0].response.id,
            input=[{"role": "user", "content": "And again?"}],
        )
        check_stream(second)
        report["texts"].append(text(second))

        # An id that is not the socket's last response.
        lost = await response(ws, model="mock/gpt-test", previous_response_id=first[0].response.id, input="x")
        assert lost[0].type == "error" and lost[0].code == "previous_response_not_found", lost
        # A body the API refuses: one `error` event that says why, and the socket lives on.
        bad = await response(ws, model="mock/gpt-test")
        assert bad[0].type == "error" and "input" in bad[0].message, bad
        again = await response(ws, model="mock/gpt-test", input="Still there?")
        check_stream(again)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
