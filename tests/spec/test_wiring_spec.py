"""The wiring spec's own integration test (seeds/001, "Integration Tests"), as it stands
there, run against a real Protogate. `tests/wiring_spec.rs` starts the gateway with a
mock upstream of every provider kind and runs this file once per configured provider
id, given as PROTOGATE_PROVIDER; `client` is a small stand-in for the spec's test
client (FastAPI's TestClient) over plain HTTP, from Python's standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request


class Response:
    def __init__(self, status_code, body):
        self.status_code = status_code
        self._body = body

    def json(self):
        return json.loads(self._body)


class Client:
    """What the spec's test calls: `client.post(path, json=...)` against a base URL."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def post(self, path, json=None):
        data = globals()["json"].dumps(json).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return Response(r.status, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read())


client = Client(os.environ["PROTOGATE_URL"])
PROVIDER = os.environ.get("PROTOGATE_PROVIDER", "openai")


# From the spec, with only the provider id taken from the environment.
def test_chat_endpoint():
    response = client.post("/api/chat", json={
        "message": "Hello",
        "provider": PROVIDER
    })
    assert response.status_code == 200
    assert "response" in response.json()


if __name__ == "__main__":
    test_chat_endpoint()
    body = client.post("/api/chat", json={"message": "Hello", "provider": PROVIDER}).json()
    # What the Rust side checks: the answer and who gave it.
    print(json.dumps({"response": body["response"], "provider": body["provider"]}))
    sys.exit(0)
