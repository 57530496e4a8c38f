"""Schemathesis against a real `tidings serve`, through the OpenAPI document the server publishes.

Every operation of `/schema/openapi.json` gets generated inputs, schema-valid and schema-invalid.
Three cases in four carry the real app id / API key (and admin key), so they reach the handlers;
the others keep the generated ones. Half name things that exist (the channel of a polling
subscription, a scheduled message, a device, a user) instead of generated ids, and a user-token
is absent, valid or bogus. Bodies no generator sends (not UTF-8, nested 10,000 deep, integers
past 64 bits, wrong Content-Type, ...) go to every operation that takes one.

The wire contract (BACKENDLESS.md, Errors) must hold for every answer: never a 5xx, and every
error is JSON `{"code": <int>, "message": <str>}` with the HTTP status BACKENDLESS.md gives its
code. Bounded and reproducible: one server per module on a fresh data dir, MAX_EXAMPLES cases
per operation, `derandomize=True`, no example database.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode

from tests.transports.live_server import API_KEY, APP_ID, LiveServer, live_server

MAX_EXAMPLES = 100
TIMEOUT = 5  # seconds per request
ADMIN_KEY = "test-admin-key"
CONFIG = f"""
[[apps]]
id = "{APP_ID}"
api_keys = ["{API_KEY}"]
admin_key = "{ADMIN_KEY}"
"""
CHANNEL = "fuzz-channel"
DEVICE = "fuzz-device"
LOGIN, PASSWORD = "fuzz-user", "fuzz-password"

# BACKENDLESS.md, Errors: the HTTP statuses each code answers with. Any other code answers 400
# ("400 where none is given"), or is a bare HTTP error (404 Not Found, 405 Method Not Allowed, ...)
# whose code is its status.
STATUS_OF_CODE: dict[int, frozenset[int]] = {
    2002: frozenset({401}),
    3003: frozenset({401}),
    3033: frozenset({400}),
    3064: frozenset({401}),
    5000: frozenset({404}),
    5001: frozenset({404}),
    5002: frozenset({404}),
    5003: frozenset({400}),
    5004: frozenset({400}),
    5005: frozenset({400}),
    5007: frozenset({403}),
    5008: frozenset({403}),
    5010: frozenset({404}),
    5011: frozenset({400}),
    5030: frozenset({400}),
    5031: frozenset({400}),
    5040: frozenset({400}),
    5041: frozenset({400}),
    5044: frozenset({400}),
    5050: frozenset({400}),
    5052: frozenset({413}),
    8002: frozenset({400, 415}),
    999: frozenset({429}),
}

# Request bodies as BACKENDLESS.md describes them, where the generated document is too loose for
# generation to get past the first check (a bare `object`, or `message` not required).
DEVICE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "deviceToken": {"type": "string"},
        "deviceId": {"type": "string"},
        "os": {"enum": ["IOS", "ANDROID", "WP", "OSX", "WEB"]},
        "osVersion": {"type": "string"},
        "channels": {"type": "array", "items": {"type": "string"}},
        "expiration": {"type": "number"},
    },
    "required": ["deviceToken", "deviceId", "os"],
}
USER_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"login": {"type": "string"}, "password": {"type": "string"}},
    "required": ["login", "password"],
}

# Most cases authenticate; sampled_from shrinks towards the first entry.
CREDENTIALS = ("real", "real", "real", "generated")
USER_TOKENS = (None, "valid", "bogus")
PATH_VALUES = ("known", "generated")


def contract_violation(response: schemathesis.Response) -> str | None:
    """What is wrong with an answer under BACKENDLESS.md, Errors; None if nothing."""
    status = response.status_code
    if status >= 500:
        return f"answered HTTP {status}"
    if status < 400:
        return None
    content_type = content_type_of(response)
    if not content_type.startswith("application/json"):
        return f"error {status} is {content_type or 'without a Content-Type'}, not JSON"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"error {status} says application/json but its body is not JSON"
    if not (
        isinstance(body, dict)
        and type(body.get("code")) is int
        and isinstance(body.get("message"), str)
    ):
        return f'error {status} is not {{"code": <int>, "message": <str>}}'
    fitting = STATUS_OF_CODE.get(body["code"], frozenset({400, body["code"]}))
    if status not in fitting:
        return f"code {body['code']} answered HTTP {status}, not {sorted(fitting)}"
    return None


def content_type_of(response: schemathesis.Response) -> str:
    return ", ".join(response.headers.get("content-type", []))


def describe(response: schemathesis.Response) -> str:
    """The request (method, URL, the headers that matter, body) and its answer, for a report."""
    request = response.request
    body = request.body
    if isinstance(body, bytes | str) and len(body) > 120:
        body = body[:120]
    headers = {
        k: v for k, v in request.headers.items() if k.lower() in ("content-type", "user-token")
    }
    text = response.content[:300].decode("utf-8", "replace")
    return (
        f"{request.method} {request.url}\n    headers: {headers}\n    body: {body!r}\n"
        f"    -> {response.status_code} {content_type_of(response)}: {text}"
    )


def with_contract_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The served document with request bodies a generator can get past the first check with.

    - `oneOf` becomes `anyOf`: Litestar writes `int | float` as `oneOf: [integer, number]`,
      which no integer satisfies (it matches both), so integer publishAt or header values
      would never be generated;
    - a publish needs `message` (the handler answers 8002 without it);
    - device and user registrations get the fields BACKENDLESS.md gives them.
    """

    def any_of(node: Any) -> Any:
        if isinstance(node, dict):
            return {("anyOf" if k == "oneOf" else k): any_of(v) for k, v in node.items()}
        if isinstance(node, list):
            return [any_of(item) for item in node]
        return node

    patched: dict[str, Any] = any_of(copy.deepcopy(document))
    publish = patched.get("components", {}).get("schemas", {}).get("PublishBody")
    if publish is not None:
        publish["required"] = sorted({*publish.get("required", []), "message"})
    for path, operations in patched["paths"].items():
        post = operations.get("post", {})
        content = post.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        if path.endswith("/messaging/registrations"):
            content["schema"] = DEVICE_BODY
        elif path.endswith("/users/register"):
            content["schema"] = USER_BODY
    return patched


class Server:
    """The live server: its stdout drained (a full pipe would block it), the errors its log
    file reports, and whether it still answers at all."""

    def __init__(self, live: LiveServer, session: requests.Session) -> None:
        self.origin, self.api, self.session = live.origin, live.api, session
        self.live = live  # its log (stderr) goes to a file
        self.gone: str | None = None
        threading.Thread(target=self._drain, args=(live.process.stdout,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for _ in stream:
            pass

    def errors(self) -> str:
        """The last line of each distinct traceback in the server log."""
        found: list[str] = []
        for line in self.live.stderr().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("error"):
                last = str(event["error"]).strip().splitlines()[-1]
                found += [] if last in found else [last]
        return "\n".join(f"  {line}" for line in found) or "  (none)"

    def answer(self, send: Callable[[], Any], what: str) -> schemathesis.Response:
        """What `send()` got; once a request got no answer, every call fails at once."""
        if self.gone is not None:
            raise AssertionError(self.gone)
        try:
            return schemathesis.Response.from_any(send())
        except requests.RequestException as exc:
            self.gone = f"no answer ({type(exc).__name__}) to {what}; the server is gone"
            raise AssertionError(self.gone) from None


class World:
    """What the fuzzed requests may name: a user (and a valid user-token of theirs, logging in
    again once a fuzzed logout spent it), a polling subscription on CHANNEL with a message
    waiting, a scheduled message, a device registered on CHANNEL."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._token: str | None = None
        user = self._post("users/register", {"login": LOGIN, "password": PASSWORD})
        subscription = self._post(f"messaging/{CHANNEL}/subscribe", {})
        self._post(f"messaging/{CHANNEL}", {"message": "hello", "headers": {"n": 1}})
        in_a_day = (time.time() + 86_400) * 1000
        scheduled = self._post(f"messaging/{CHANNEL}", {"message": "later", "publishAt": in_a_day})
        device = {"deviceId": DEVICE, "deviceToken": "token", "os": "IOS", "channels": [CHANNEL]}
        self._post("messaging/registrations", device)
        self.path_values = {
            "channel": CHANNEL,
            "name": CHANNEL,
            "subscription_id": subscription["subscriptionId"],
            "message_id": scheduled["messageId"],
            "device_id": DEVICE,
            "object_id": user["objectId"],
        }

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._server.api}/{path}"
        answer = self._server.session.post(url, json=body, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def token(self) -> str:
        if self._token is None:
            self._token = self._post("users/login", {"login": LOGIN, "password": PASSWORD})[
                "user-token"
            ]
        return self._token

    def spent(self, token: str | None) -> None:
        if token is not None and token == self._token:
            self._token = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    with live_server(data, config=CONFIG, credentials=False) as running, requests.Session() as http:
        yield Server(running, http)
        assert running.stop() == 0


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    answer = server.session.get(f"{server.origin}/schema/openapi.json", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    served: dict[str, Any] = answer.json()
    return served


@pytest.fixture(scope="module")
def api_schema(document: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(with_contract_bodies(document))


def test_the_document_lists_the_api(document: dict[str, Any]) -> None:
    operations = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    prefix = "/{app_id}/{api_key}"
    for expected in [
        ("POST", f"{prefix}/messaging/{{channel}}"),
        ("POST", f"{prefix}/messaging/registrations"),
        ("POST", f"{prefix}/users/login"),
        ("GET", f"{prefix}/info"),
    ]:
        assert expected in operations


def fuzz(operation: APIOperation, server: Server, world: World) -> tuple[Counter[int], list[str]]:
    """MAX_EXAMPLES generated calls of one operation: the statuses seen, the contract breaks
    (each with its request, shrunk by Hypothesis)."""
    statuses: Counter[int] = Counter()
    if server.gone is not None:  # reported by the operation that saw it go
        return statuses, []
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=cases,
        credentials=st.sampled_from(CREDENTIALS),
        values=st.sampled_from(PATH_VALUES),
        user=st.sampled_from(USER_TOKENS),
    )
    def call(case: Case, credentials: str, values: str, user: str | None) -> None:
        params = dict(case.path_parameters or {})
        if values == "known":
            params.update((k, v) for k, v in world.path_values.items() if k in params)
        if credentials == "real":
            real = {"app_id": APP_ID, "api_key": API_KEY}
            params.update((k, v) for k, v in real.items() if k in params)
            case.headers = {**(case.headers or {}), "admin-key": ADMIN_KEY}
        case.path_parameters = params
        token = {"valid": world.token(), "bogus": "not-a-user-token"}.get(user or "")
        if token is not None:
            case.headers = {**(case.headers or {}), "user-token": token}
        response = server.answer(
            lambda: case.call(base_url=server.origin, session=server.session, timeout=TIMEOUT),
            f"{case.method} {case.formatted_path} {case.body!r:.120}",
        )
        statuses[response.status_code] += 1
        if operation.path.endswith("/users/logout") and response.status_code == 200:
            world.spent(token)
        problem = contract_violation(response)
        assert problem is None, f"{problem}\n    {describe(response)}"

    try:
        call()
    except (AssertionError, ExceptionGroup) as exc:
        leaves = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        return statuses, [str(leaf) for leaf in leaves]
    return statuses, []


def test_generated_requests_keep_the_error_contract(
    server: Server, api_schema: schemathesis.BaseSchema
) -> None:
    world = World(server)
    failures: dict[str, list[str]] = {}
    statuses: dict[str, Counter[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        statuses[operation.label], problems = fuzz(operation, server, world)
        if problems:
            failures[operation.label] = problems
    report = "\n".join(
        f"{label}:\n  " + "\n  ".join(problems) for label, problems in failures.items()
    )
    assert not failures, f"the error contract broke:\n{report}\nserver log:\n{server.errors()}"
    # The credentials override works: every operation got past authentication at times.
    stuck = {label: dict(seen) for label, seen in statuses.items() if set(seen) <= {401}}
    assert not stuck, f"only 401 answers: {stuck}"


# Bodies a generator from the document does not send: not JSON, not UTF-8, not application/json,
# nested past any recursion limit, integers past 64 bits in every field a body may have.
JSON = "application/json"
HUGE = 10**30
EVERY_FIELD = {
    "message": HUGE,
    "publishAt": HUGE,
    "deviceId": "fuzz-huge",
    "deviceToken": "token",
    "os": "IOS",
    "expiration": HUGE,
    "login": "fuzz-huge",
    "password": str(HUGE),
    "roles": ["fuzz-huge"],
}
RAW_BODIES = {
    "truncated": (b'{"message": ', JSON),
    "empty": (b"", JSON),
    "not-json": (b"message=1", JSON),
    "not-utf-8": (b'{"message": "\xff"}', JSON),
    "lone-surrogate": (b'{"message": "\\ud800"}', JSON),
    "nan": (b'{"message": NaN}', JSON),
    "number-out-of-range": (b'{"message": 1e999}', JSON),
    "deeply-nested": (b'{"message": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", JSON),
    "huge-integers": (json.dumps(EVERY_FIELD).encode(), JSON),
    "scalar": (b"1", JSON),
    "null": (b"null", JSON),
    "text-plain": (b'{"message": 1}', "text/plain"),
    "no-content-type": (b'{"message": 1}', None),
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_odd_bodies_keep_the_error_contract(
    server: Server, document: dict[str, Any], name: str
) -> None:
    """Each operation that takes a body, with the real credentials, gets the body as is."""
    body, content_type = RAW_BODIES[name]
    headers = {"admin-key": ADMIN_KEY}
    if content_type is not None:
        headers["content-type"] = content_type
    calls = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert calls
    problems = []
    for method, template in calls:
        path = template.replace("{app_id}", APP_ID).replace("{api_key}", API_KEY)
        path = path.replace("{", "").replace("}", "")  # other parameters: their own names
        send = partial(server.session.request, method, server.origin + path, data=body)
        response = server.answer(
            partial(send, headers=headers, timeout=TIMEOUT), f"{method} {path} {body!r:.120}"
        )
        problem = contract_violation(response)
        if problem is not None:
            problems.append(f"{problem}\n    {describe(response)}")
    assert not problems, "\n".join(problems) + f"\nserver log:\n{server.errors()}"
