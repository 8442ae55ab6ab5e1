"""The Responses API's WebSocket mode as Protogate serves it (`GET /v1/responses`
upgraded), checked against OpenAI's Python SDK: driven by the SDK's own client
(`AsyncOpenAI().responses.connect()`) and by the `websockets` client as a page would
(with an `Origin`), every server event validated by the SDK's pydantic models, both as a
Responses stream event (`ResponseStreamEvent`) and as a WebSocket server event
(`ResponsesServerEvent`).

Usage: responses_ws.py WS_URL ORIGIN, the gateway's default provider being the mock
OpenAI upstream (`tests/common/mock_openai.rs`). Prints a JSON report; fails on any
mismatch.
"""

import asyncio
import json
import sys

from openai import AsyncOpenAI
from openai.types.responses import ResponseStreamEvent
from openai.types.responses.responses_server_event import ResponsesServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
SERVER_EVENT = TypeAdapter(ResponsesServerEvent)
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


def validate(raw):
    """One server event, strictly, as both of the SDK's types."""
    data = json.loads(raw)
    event = SERVER_EVENT.validate_python(data)
    STREAM_EVENT.validate_python(data)
    return event


async def read_response(recv):
    """Events up to the response's last one (a refusal is one `error` event, alone)."""
    events = []
    while True:
        event = validate(await asyncio.wait_for(recv(), 10))
        events.append(event)
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
    ids = {e.response.id for e in events if hasattr(e, "response")}
    assert len(ids) == 1, ids


async def with_the_sdk(ws_url, report):
    """OpenAI's own client: two responses, the second continuing the first."""
    base_url = ws_url.replace("ws://", "http://", 1).removesuffix("/responses")
    client = AsyncOpenAI(base_url=base_url, api_key="not-needed-on-loopback")
    async with client.responses.connect() as connection:
        await connection.response.create(model="mock/gpt-test", input="Say hello")
        first = await read_response(connection.recv_bytes)
        check_stream(first)
        assert first[-1].response.output_text == "Hello world", first[-1].response
        report["texts"].append(text(first))
        report["kinds"] = [e.type for e in first]

        await connection.response.create(
            model="mock/gpt-test",
            previous_response_id=first[0].response.id,
            input=[{"role": "user", "content": "And again?"}],
        )
        second = await read_response(connection.recv_bytes)
        check_stream(second)
        report["texts"].append(text(second))
        return first[0].response.id


async def as_a_page(ws_url, origin, stale_id):
    """The `websockets` client with a page's `Origin`: a tool call, the lane echoed,
    refusals as `error` events, and the socket serving on after them."""
    async with connect(ws_url, origin=origin) as ws:
        async def create(**body):
            await ws.send(json.dumps({"type": "response.create", **body}))
            return await read_response(ws.recv)

        call = await create(model="mock/tool-call", input="Weather in Paris?", tools=[WEATHER],
                            stream_id="lane-1")
        check_stream(call)
        assert all(e.stream_id == "lane-1" for e in call), call
        item = call[-1].response.output[0]
        assert item.type == "function_call" and item.name == "get_weather", item
        assert json.loads(item.arguments) == {"location": "Paris, France"}, item.arguments

        lost = await create(model="mock/gpt-test", previous_response_id=stale_id, input="x")
        assert lost[0].type == "error" and lost[0].error.code == "previous_response_not_found", lost
        assert lost[0].status == 400, lost
        bad = await create(model="mock/gpt-test")
        assert bad[0].type == "error" and "input" in bad[0].error.message, bad
        failed = await create(model="mock/in-stream-error", input="hi")
        assert [e.type for e in failed][-2:] == ["error", "response.failed"], failed
        again = await create(model="mock/gpt-test", input="Still there?")
        check_stream(again)


async def main(ws_url, origin):
    report = {"texts": [], "kinds": []}
    first_id = await with_the_sdk(ws_url, report)
    await as_a_page(ws_url, origin, first_id)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
