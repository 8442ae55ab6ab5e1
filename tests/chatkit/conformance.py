"""ChatKit conformance: one whole session against Protogate's /api/chatkit, every
answer parsed strictly with the openai-chatkit SDK's own models, and the same requests
run against the SDK's reference ChatKitServer (an in-memory store, a fixed answer) to
compare event types, their order and the shapes of items.

    python conformance.py BASE_URL ORIGIN FAILING_MODEL IMAGE_MODEL

FAILING_MODEL names a provider that cuts its answer; IMAGE_MODEL one that reads the image.

Prints one JSON object (what the Rust test asserts on) and exits 1 with the reason
when Protogate's answers differ from what the SDK accepts or emits.
"""

import asyncio
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime

from pydantic import TypeAdapter

from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ImageAttachment,
    Page,
    Thread,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)

EVENT = TypeAdapter(ThreadStreamEvent)
THREAD = TypeAdapter(Thread)
THREAD_PAGE = TypeAdapter(Page[Thread])
ITEM_PAGE = TypeAdapter(Page[ThreadItem])
ATTACHMENT = TypeAdapter(ImageAttachment)

PROBLEMS = []
# Each event as it was on the wire, by the parsed event's id(): shapes are compared on
# what was sent, not on what the models fill in by default.
RAW = {}


def problem(text):
    PROBLEMS.append(text)


# ---- Protogate over HTTP --------------------------------------------------------------


class Gateway:
    def __init__(self, base, origin):
        self.base = base
        self.origin = origin

    def call(self, body):
        request = urllib.request.Request(
            self.base + "/api/chatkit",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Origin": self.origin},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                kind = response.headers.get("content-type", "")
                raw = response.read().decode()
                return response.status, kind, raw
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("content-type", ""), e.read().decode()

    def stream(self, body):
        status, kind, raw = self.call(body)
        if status != 200 or not kind.startswith("text/event-stream"):
            problem(f"{body['type']}: expected an event stream, got {status} {kind}: {raw}")
            return []
        events = []
        for block in raw.split("\n\n"):
            if not block.strip():
                continue
            if not block.startswith("data: "):
                problem(f"{body['type']}: not an SSE data line: {block!r}")
                continue
            raw_event = block[len("data: "):]
            event = EVENT.validate_json(raw_event, strict=True)
            RAW[id(event)] = json.loads(raw_event)
            events.append(event)
        return events

    def json(self, body, adapter=None):
        status, kind, raw = self.call(body)
        if status != 200 or not kind.startswith("application/json"):
            problem(f"{body['type']}: expected JSON, got {status} {kind}: {raw}")
            return None
        if adapter is None:
            return json.loads(raw)
        return adapter.validate_json(raw, strict=True)

    def upload(self, name, mime, data):
        boundary = "protogate" + uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            self.base + "/api/chatkit/upload",
            data=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Origin": self.origin,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


# ---- The SDK's reference server ----------------------------------------------------------


def page(records, after, limit):
    """The records after the one named `after`, at most `limit`; `after` of the page is
    the cursor for the next one."""
    start = 0
    if after:
        start = next(i for i, r in enumerate(records) if r.id == after) + 1
    chosen = records[start : start + limit]
    has_more = start + len(chosen) < len(records)
    return Page(data=chosen, has_more=has_more, after=chosen[-1].id if has_more else None)


class MemoryStore(Store[dict]):
    def __init__(self):
        self.threads = {}
        self.items = {}

    async def load_thread(self, thread_id, context):
        if thread_id not in self.threads:
            raise NotFoundError(thread_id)
        return self.threads[thread_id].model_copy(deep=True)

    async def save_thread(self, thread, context):
        self.threads[thread.id] = ThreadMetadata(**thread.model_dump())
        self.items.setdefault(thread.id, [])

    async def load_thread_items(self, thread_id, after, limit, order, context):
        items = list(self.items.get(thread_id, []))
        return page(items[::-1] if order == "desc" else items, after, limit)

    async def save_attachment(self, attachment, context):
        raise NotImplementedError()

    async def load_attachment(self, attachment_id, context):
        raise NotImplementedError()

    async def delete_attachment(self, attachment_id, context):
        raise NotImplementedError()

    async def load_threads(self, limit, after, order, context):
        threads = sorted(self.threads.values(), key=lambda t: t.created_at, reverse=order == "desc")
        return page(threads, after, limit)

    async def add_thread_item(self, thread_id, item, context):
        self.items.setdefault(thread_id, []).append(item)

    async def save_item(self, thread_id, item, context):
        items = self.items[thread_id]
        for i, old in enumerate(items):
            if old.id == item.id:
                items[i] = item
                return
        items.append(item)

    async def load_item(self, thread_id, item_id, context):
        return next(i for i in self.items[thread_id] if i.id == item_id)

    async def delete_thread(self, thread_id, context):
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(self, thread_id, item_id, context):
        self.items[thread_id] = [i for i in self.items[thread_id] if i.id != item_id]


class Reference(ChatKitServer[dict]):
    """Answers "Hello there" in two deltas; a message naming the failing model fails
    after its first delta, as a provider cut mid-answer does."""

    def __init__(self, failing_model):
        super().__init__(MemoryStore())
        self.failing_model = failing_model

    async def respond(self, thread, input_user_message, context):
        item = AssistantMessageItem(
            id=self.store.generate_item_id("message", thread, context),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=[],
        )
        yield ThreadItemAddedEvent(item=item)
        yield ThreadItemUpdatedEvent(
            item_id=item.id,
            update=AssistantMessageContentPartAdded(
                content_index=0, content=AssistantMessageContent(text="")
            ),
        )
        model = input_user_message.inference_options.model if input_user_message else None
        for delta in ["Hello", " there"]:
            yield ThreadItemUpdatedEvent(
                item_id=item.id,
                update=AssistantMessageContentPartTextDelta(content_index=0, delta=delta),
            )
            if model == self.failing_model:
                raise RuntimeError("the provider went away")
        done = AssistantMessageContent(text="Hello there")
        yield ThreadItemUpdatedEvent(
            item_id=item.id,
            update=AssistantMessageContentPartDone(content_index=0, content=done),
        )
        item.content = [done]
        yield ThreadItemDoneEvent(item=item)
        if thread.title is None:
            thread.title = "Hello"


class InProcess:
    def __init__(self, server):
        self.server = server

    def run(self, body):
        return asyncio.run(self._run(body))

    async def _run(self, body):
        result = await self.server.process(json.dumps(body), {})
        if isinstance(result, StreamingResult):
            events = []
            async for chunk in result:
                for block in chunk.decode().split("\n\n"):
                    if block.strip():
                        event = EVENT.validate_json(block[len("data: "):])
                        RAW[id(event)] = json.loads(block[len("data: "):])
                        events.append(event)
            return events
        return json.loads(result.json)

    def stream(self, body):
        return self.run(body)

    def json(self, body, adapter=None):
        raw = json.dumps(self.run(body))
        return json.loads(raw) if adapter is None else adapter.validate_json(raw)


# ---- The session -------------------------------------------------------------------------


def message(text, model=None, attachments=()):
    options = {} if model is None else {"model": model}
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": list(attachments),
        "inference_options": options,
    }


def shape(event):
    """What must match between the two servers: the event type, the update type, the
    item type and the item's keys (values differ: ids, times, texts)."""
    data = RAW[id(event)]
    label = data["type"]
    if "update" in data:
        label += ":" + data["update"]["type"]
    if "item" in data:
        label += ":" + data["item"]["type"] + ":" + ",".join(sorted(data["item"]))
    if "thread" in data:
        label += ":" + ",".join(sorted(data["thread"]))
    return label


def squeeze(labels):
    """Consecutive text deltas count once: the number of deltas is the provider's."""
    out = []
    for label in labels:
        if not (out and out[-1] == label and "text_delta" in label):
            out.append(label)
    return out


def session(client, failing_model, image=None, image_model=None):
    """Runs the session; returns each streamed request's event shapes and what the
    non-streaming answers held."""
    streamed = {}
    seen = {}

    events = client.stream({"type": "threads.create", "params": {"input": message("Hello")}})
    streamed["threads.create"] = squeeze(shape(e) for e in events)
    thread_id = next(e.thread.id for e in events if e.type == "thread.created")
    seen["title"] = next((e.thread.title for e in events if e.type == "thread.updated"), None)
    seen["first_answer"] = next(
        (e.item.content[0].text for e in events if e.type == "thread.item.done" and e.item.type == "assistant_message"),
        None,
    )
    for n, text in enumerate(["Second", "Third"]):
        events = client.stream(
            {"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": message(text)}}
        )
        streamed[f"threads.add_user_message#{n + 2}"] = squeeze(shape(e) for e in events)

    threads = client.json({"type": "threads.list", "params": {}}, THREAD_PAGE)
    seen["threads"] = [t.id for t in threads.data]
    first = client.json({"type": "items.list", "params": {"thread_id": thread_id, "limit": 4, "order": "asc"}}, ITEM_PAGE)
    rest = client.json(
        {"type": "items.list", "params": {"thread_id": thread_id, "limit": 4, "order": "asc", "after": first.after}},
        ITEM_PAGE,
    )
    newest = client.json({"type": "items.list", "params": {"thread_id": thread_id, "limit": 2, "order": "desc"}}, ITEM_PAGE)
    seen["paging"] = {
        "asc": [i.type for i in first.data] + [i.type for i in rest.data],
        "first_has_more": first.has_more,
        "rest_has_more": rest.has_more,
        "desc_first": [i.type for i in newest.data],
        "desc_matches_asc_tail": [i.id for i in newest.data] == [i.id for i in reversed((first.data + rest.data)[-2:])],
    }
    renamed = client.json({"type": "threads.update", "params": {"thread_id": thread_id, "title": "Renamed"}}, THREAD)
    seen["renamed"] = renamed.title
    whole = client.json({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}, THREAD)
    seen["items"] = [i.type for i in whole.items.data]
    last_user = [i for i in whole.items.data if i.type == "user_message"][-1]
    events = client.stream(
        {"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": last_user.id}}
    )
    streamed["threads.retry_after_item"] = squeeze(shape(e) for e in events)
    answers = [i for i in whole.items.data if i.type == "assistant_message"]
    seen["feedback"] = client.json(
        {"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": [answers[0].id], "kind": "positive"}}
    )
    events = client.stream(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": message("This one fails", model=failing_model)},
        }
    )
    streamed["provider failure"] = squeeze(shape(e) for e in events)
    seen["failure_message"] = next((e.message for e in events if e.type == "error"), None)
    after_failure = client.json({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}, THREAD)
    seen["items_after_failure"] = [i.type for i in after_failure.items.data]

    if image is not None:
        status, raw = client.upload("pixel.png", "image/png", image)
        seen["upload_status"] = status
        if status == 200:
            attachment = ATTACHMENT.validate_json(raw, strict=True)
            events = client.stream(
                {
                    "type": "threads.add_user_message",
                    "params": {"thread_id": thread_id, "input": message("What is in it?", model=image_model, attachments=[attachment.id])},
                }
            )
            user = next(e.item for e in events if e.type == "thread.item.done" and e.item.type == "user_message")
            seen["attached"] = [a.id for a in user.attachments] == [attachment.id]
            seen["attachment_answer"] = next(
                (e.item.content[0].text for e in events if e.type == "thread.item.done" and e.item.type == "assistant_message"),
                None,
            )
        status, raw = client.upload("notes.pdf", "application/pdf", b"%PDF-1.4")
        seen["pdf_upload"] = {"status": status, "body": raw}

    client.json({"type": "threads.delete", "params": {"thread_id": thread_id}})
    status = getattr(client, "call", None) and client.call({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})[0]
    seen["after_delete_status"] = status
    seen["thread_id"] = thread_id
    return streamed, seen


# A 1x1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201e2219bc2"
    "0000000049454e44ae426082"
)


def main():
    base, origin, failing_model, image_model = sys.argv[1:5]
    ours, seen = session(Gateway(base, origin), failing_model, image=PIXEL, image_model=image_model)
    theirs, reference_seen = session(InProcess(Reference(failing_model)), failing_model)
    for request, labels in theirs.items():
        if ours.get(request) != labels:
            problem(
                f"{request}: events differ from the SDK's server\n  protogate: {ours.get(request)}\n"
                f"  reference: {labels}"
            )
    for key in ["paging", "items", "items_after_failure", "renamed", "feedback"]:
        if seen[key] != reference_seen[key]:
            problem(f"{key}: protogate {seen[key]!r}, reference {reference_seen[key]!r}")
    print(json.dumps({"seen": seen, "events": ours, "problems": PROBLEMS}, indent=1))
    sys.exit(1 if PROBLEMS else 0)


if __name__ == "__main__":
    main()
