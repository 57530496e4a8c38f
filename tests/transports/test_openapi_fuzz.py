"""Schemathesis against a real `tidings serve`, through the OpenAPI document the server publishes.

Every operation of `/schema/openapi.json` gets generated inputs (schema-valid and schema-invalid
ones). Most cases carry the real app id / API key, so they reach the handlers; the rest keep the
generated ones and must answer 2002. The wire contract (BACKENDLESS.md, Errors) must hold for all
of them: never a 5xx, and every error is JSON `{"code": <int>, "message": <str>}` with the HTTP
status BACKENDLESS.md gives its code.

Bounded and reproducible: a fresh data dir and one server per module, `derandomize=True`, no
example database, MAX_EXAMPLES cases per operation.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from tests.transports.live_server import API_KEY, APP_ID, LiveServer, live_server

MAX_EXAMPLES = 60
TIMEOUT = 10  # seconds per request

# BACKENDLESS.md, Errors: the HTTP statuses each code may answer with. A code not listed there is
# a bare HTTP error (404 Not Found, 405 Method Not Allowed, ...) whose code is its status.
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


def contract_violation(response: requests.Response) -> str | None:
    """What is wrong with an answer under BACKENDLESS.md, Errors; None if nothing."""
    status = response.status_code
    if status >= 500:
        return f"answered HTTP {status}"
    if status < 400:
        return None
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return f"error {status} is {content_type or 'without a Content-Type'}, not JSON"
    try:
        body = response.json()
    except ValueError:
        return f"error {status} says application/json but its body is not JSON"
    if not (
        isinstance(body, dict)
        and type(body.get("code")) is int
        and isinstance(body.get("message"), str)
    ):
        return f'error {status} is not {{"code": <int>, "message": <str>}}'
    fitting = STATUS_OF_CODE.get(body["code"], frozenset({body["code"]}))
    if status not in fitting:
        return f"code {body['code']} answered HTTP {status}, not {sorted(fitting)}"
    return None


def describe(response: requests.Response) -> str:
    request = response.request
    body = request.body
    if isinstance(body, bytes) and len(body) > 300:
        body = body[:300] + b"..."
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "user-token")}
    return (
        f"{request.method} {request.url}\n    headers: {headers}\n    body: {body!r}\n"
        f"    -> {response.status_code} {response.headers.get('content-type')}: "
        f"{response.text[:300]}"
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


class UserTokens:
    """A valid user-token, logging in again once a fuzzed logout spent it."""

    def __init__(self, server: LiveServer, session: requests.Session) -> None:
        self._server, self._session = server, session
        self._token: str | None = None
        answer = session.post(
            f"{server.api}/users/register",
            json={"login": "fuzz-user", "password": "fuzz-password"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text

    def valid(self) -> str:
        if self._token is None:
            answer = self._session.post(
                f"{self._server.api}/users/login",
                json={"login": "fuzz-user", "password": "fuzz-password"},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 200, answer.text
            self._token = answer.json()["user-token"]
        return self._token

    def spent(self, token: str | None) -> None:
        if token is not None and token == self._token:
            self._token = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fuzz") / "data") as running:
        yield running
        assert running.stop() == 0


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture(scope="module")
def document(server: LiveServer, session: requests.Session) -> dict[str, Any]:
    answer = session.get(f"{server.origin}/schema/openapi.json", timeout=TIMEOUT)
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


def test_generated_requests_keep_the_error_contract(
    server: LiveServer, session: requests.Session, api_schema: schemathesis.BaseSchema
) -> None:
    tokens = UserTokens(server, session)
    failures: dict[str, list[str]] = {}
    statuses: dict[str, Counter[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        seen = statuses.setdefault(operation.label, Counter())
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
        @given(case=cases, credentials=st.sampled_from(CREDENTIALS), user=st.sampled_from(USER_TOKENS))
        def call(case: Case, credentials: str, user: str | None) -> None:
            if credentials == "real" and "app_id" in (case.path_parameters or {}):
                case.path_parameters = {**case.path_parameters, "app_id": APP_ID, "api_key": API_KEY}
            token = {"valid": tokens.valid(), "bogus": "not-a-user-token"}.get(user or "")
            if token is not None:
                case.headers = {**(case.headers or {}), "user-token": token}
            response = case.call(base_url=server.origin, session=session, timeout=TIMEOUT)
            seen[response.status_code] += 1
            if operation.path.endswith("/users/logout") and response.status_code == 200:
                tokens.spent(token)
            problem = contract_violation(response)
            assert problem is None, f"{problem}\n    {describe(response)}"

        try:
            call()
        except (AssertionError, ExceptionGroup) as exc:
            leaves = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
            failures[operation.label] = [str(leaf) for leaf in leaves]

    report = "\n".join(
        f"{label}:\n  " + "\n  ".join(problems) for label, problems in failures.items()
    )
    assert not failures, f"the error contract broke:\n{report}"
    # The credentials override works: every app-scoped operation got past authentication.
    stuck = [label for label, seen in statuses.items() if seen and set(seen) <= {401}]
    assert not stuck, f"only 401 answers: {stuck} ({statuses})"


# Bodies a generator from the document never sends: not JSON, not UTF-8, not application/json.
JSON = "application/json"
RAW_BODIES = {
    "truncated": (b'{"message": ', JSON),
    "empty": (b"", JSON),
    "not-json": (b"message=1", JSON),
    "not-utf-8": (b'{"message": "\xff"}', JSON),
    "lone-surrogate": (b'{"message": "\\ud800"}', JSON),
    "nan": (b'{"message": NaN}', JSON),
    "number-out-of-range": (b'{"message": 1e999}', JSON),
    "deeply-nested": (b'{"message": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", JSON),
    "scalar": (b"1", JSON),
    "null": (b"null", JSON),
    "text-plain": (b'{"message": 1}', "text/plain"),
    "no-content-type": (b'{"message": 1}', None),
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_malformed_bodies_keep_the_error_contract(
    server: LiveServer, session: requests.Session, document: dict[str, Any], name: str
) -> None:
    body, content_type = RAW_BODIES[name]
    headers = {} if content_type is None else {"content-type": content_type}
    posts = [path for path, operations in document["paths"].items() if "post" in operations]
    assert posts
    problems = []
    for template in posts:
        path = template.replace("{app_id}", APP_ID).replace("{api_key}", API_KEY)
        path = path.replace("{", "").replace("}", "")  # other parameters: their own names
        response = session.post(server.origin + path, data=body, headers=headers, timeout=TIMEOUT)
        problem = contract_violation(response)
        if problem is not None:
            problems.append(f"{problem}\n    {describe(response)}")
    assert not problems, "\n".join(problems)
