"""Tavily's own Python client (tavily-python, pinned in tests/chatkit/requirements.txt)
against the mock Tavily of tests/common/mock_tavily.rs, so that the mock's shapes are
the ones the vendor's client sends and reads: a search with the parameters Protogate
uses, and each documented error, which the client must turn into its own exception with
the mock's message.

Usage: tavily_client.py BASE_URL KEY. Prints a JSON report; exits non-zero on a mismatch.
"""

import json
import sys

import tavily
from tavily import TavilyClient


def main() -> int:
    base, key = sys.argv[1], sys.argv[2]
    client = TavilyClient(api_key=key, api_base_url=base)
    answer = client.search(
        "who is Leo Messi?",
        search_depth="basic",
        max_results=3,
        include_answer=True,
        topic="general",
    )
    problems = []
    if not isinstance(answer.get("answer"), str):
        problems.append(f"no answer string: {answer!r}")
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != 3:
        problems.append(f"not 3 results: {results!r}")
    for r in results or []:
        for field, kind in (("title", str), ("url", str), ("content", str), ("score", float)):
            if not isinstance(r.get(field), kind):
                problems.append(f"result field {field} is not {kind.__name__}: {r!r}")

    # Each documented error becomes the client's own exception, carrying Tavily's words.
    errors = {}
    cases = [
        ("401", TavilyClient(api_key="tvly-wrong", api_base_url=base), "q", {}, tavily.InvalidAPIKeyError),
        ("429", client, "rate-limited", {}, tavily.UsageLimitExceededError),
        ("432", client, "plan-limit", {}, tavily.errors.ForbiddenError),
        ("400", client, "q", {"search_depth": "deepest"}, tavily.BadRequestError),
    ]
    for status, c, query, extra, expected in cases:
        try:
            c.search(query, **extra)
            problems.append(f"{status}: no error raised")
        except expected as e:
            errors[status] = f"{type(e).__name__}: {e}"
            if not str(e):
                problems.append(f"{status}: {type(e).__name__} without the message")
        except Exception as e:  # noqa: BLE001 - any other exception is the mismatch
            problems.append(f"{status}: {type(e).__name__} instead of {expected.__name__}: {e}")
    try:
        client.search("server-error")
        problems.append("500: no error raised")
    except Exception as e:  # requests' HTTPError: the client raises for status
        errors["500"] = type(e).__name__

    print(json.dumps({"answer": answer, "errors": errors, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
