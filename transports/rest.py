"""The Backendless-compatible REST API (BACKENDLESS.md) as a Litestar app.

Thin: each handler checks the caller (app id, API key, user-token, rate
limits, channel permissions), calls the app's broker / accounts / devices and
shapes the answer. Every failure answers `{"code", "message"}` with the
status BACKENDLESS.md gives it, never an HTML page or a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router, delete, get, post, put
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.status_codes import HTTP_200_OK

from broker import (
    BrokerError,
    MessageTooLargeError,
)
from broker.permissions import Permission
from broker.push_templates import PushTemplate, PushTemplates
from transports.publishing import FIELD_CODES, PublishBody, publish_message
from transports.runtime import AppRuntime, Tidings
from transports.wire import (
    ErrorBody,
    PublishAnswer,
    StatusAnswer,
    WireMessage,
    error_body,
    http_status,
    publish_answer,
    wire_message,
)

log = logging.getLogger("tidings.rest")


class SubscribeBody(msgspec.Struct):
    selector: str | None = None
    subtopic: str | None = None


class SubscribeAnswer(msgspec.Struct, rename="camel"):
    subscription_id: str


class PollAnswer(msgspec.Struct):
    messages: list[WireMessage]


class InfoAnswer(msgspec.Struct):
    rt_url: str = msgspec.field(name="rtURL")
    loggers: list[str] = msgspec.field(default_factory=list)


class LoginBody(msgspec.Struct):
    login: str
    password: str


class RegistrationAnswer(msgspec.Struct, rename="camel"):
    registration_id: str


class ResultAnswer(msgspec.Struct):
    result: bool


class Health(msgspec.Struct):
    status: str


# -- the caller ----------------------------------------------------------------------------------


def _tidings(request: Request[Any, Any, Any]) -> Tidings:
    tidings: Tidings = request.app.state.tidings
    return tidings


async def _authenticate(request: Request[Any, Any, Any]) -> None:
    """Before any body is read: the app (2002), rate limits (999), the user (3064), JSON (8002).

    Puts the app and the caller's roles on `request.state.caller`.
    """
    tidings = _tidings(request)
    app_id, api_key = request.path_params["app_id"], request.path_params["api_key"]
    app = tidings.app(app_id, api_key)
    tidings.limit_api_key(api_key)
    roles: tuple[str, ...] = ("NotAuthenticatedUser",)
    token = request.headers.get("user-token")
    if token and not request.url.path.endswith("/users/logout"):
        user = await app.accounts.authenticate(token)
        tidings.limit_user(user.object_id)
        roles = user.roles
    request.state.caller = (app, roles)
    if request.method == "POST" and request.content_type[0] != "application/json":
        raise _ContentTypeError()


def _caller(request: Request[Any, Any, Any]) -> tuple[AppRuntime, tuple[str, ...]]:
    caller: tuple[AppRuntime, tuple[str, ...]] = request.state.caller
    return caller


# -- messaging -------------------------------------------------------------------------------------


@post("/messaging/{channel:str}", status_code=HTTP_200_OK)
async def publish(
    request: Request[Any, Any, Any], app_id: str, api_key: str, channel: str, data: PublishBody
) -> PublishAnswer:
    app, roles = _caller(request)
    answer = await publish_message(app, roles, channel, data)
    _tidings(request).metrics.publishes.inc()
    return answer


@get("/messaging/{message_id:str}")
async def message_status(
    request: Request[Any, Any, Any], app_id: str, api_key: str, message_id: str
) -> StatusAnswer:
    app, _ = _caller(request)
    result = await app.broker.get_status(message_id)
    answer = StatusAnswer(str(result.status), result.message_id, result.error_message)
    if app.outbox is not None:
        report = await app.outbox.report(result.message_id)
        if report is not None:
            answer.push_delivery = report
    return answer


@delete("/messaging/{message_id:str}", status_code=HTTP_200_OK)
async def cancel(
    request: Request[Any, Any, Any], app_id: str, api_key: str, message_id: str
) -> PublishAnswer:
    app, _ = _caller(request)
    result = await app.broker.cancel(message_id)
    return PublishAnswer(str(result.status), result.message_id)


@post("/messaging/{channel:str}/subscribe", status_code=HTTP_200_OK)
async def subscribe(
    request: Request[Any, Any, Any],
    app_id: str,
    api_key: str,
    channel: str,
    data: SubscribeBody | None = None,
) -> SubscribeAnswer:
    app, roles = _caller(request)
    app.permissions.require(channel, roles, Permission.SUBSCRIBE)
    selector = None if data is None else data.selector
    return SubscribeAnswer(await app.polling.subscribe(channel, selector))


@get("/messaging/{channel:str}/{subscription_id:str}")
async def poll(
    request: Request[Any, Any, Any],
    app_id: str,
    api_key: str,
    channel: str,
    subscription_id: str,
) -> PollAnswer:
    app, _ = _caller(request)
    return PollAnswer([wire_message(m) for m in app.polling.poll(channel, subscription_id)])


@delete("/messaging/channels/{name:str}", status_code=HTTP_200_OK)
async def delete_channel(
    request: Request[Any, Any, Any], app_id: str, api_key: str, name: str
) -> ResultAnswer:
    app, roles = _caller(request)
    app.permissions.require(name, roles, Permission.DELETE)
    await app.broker.delete_channel(name)
    return ResultAnswer(True)


# -- push templates --------------------------------------------------------------------------


class TemplateBody(msgspec.Struct, rename="camel"):
    template_values: dict[str, Any] = msgspec.field(default_factory=dict)


class TemplateAnswer(PushTemplate, frozen=True, rename="camel"):
    name: str = ""


def _templates(app: AppRuntime) -> PushTemplates:
    if app.templates is None:
        raise BrokerError(5042, "push templates are not available on this server")
    return app.templates


@post("/messaging/push/{template_name:str}", status_code=HTTP_200_OK)
async def push_template(
    request: Request[Any, Any, Any],
    app_id: str,
    api_key: str,
    template_name: str,
    data: TemplateBody | None = None,
) -> PublishAnswer:
    """Send a stored template to its audience, with `templateValues` substituted."""
    app, roles = _caller(request)
    template = await _templates(app).get(template_name)
    app.permissions.require(template.channel, roles, Permission.PUBLISH)
    message, headers = template.render({} if data is None else data.template_values)
    result = await app.broker.publish(
        template.channel, message, headers=headers, push=template.options()
    )
    return publish_answer(result)


@get("/messaging/pushtemplates/{device_type:str}")
async def list_templates(
    request: Request[Any, Any, Any], app_id: str, api_key: str, device_type: str
) -> list[TemplateAnswer]:
    """The templates whose audience includes devices of `device_type` (IOS, ANDROID, WEB…)."""
    app, _ = _caller(request)
    found = await _templates(app).list(device_type.upper())
    return [_template_answer(name, template) for name, template in found.items()]


def _template_answer(name: str, template: PushTemplate) -> TemplateAnswer:
    return TemplateAnswer(**msgspec.structs.asdict(template), name=name)


# -- device registrations ----------------------------------------------------------------------


@post("/messaging/registrations", status_code=HTTP_200_OK)
async def register_device(
    request: Request[Any, Any, Any], app_id: str, api_key: str, data: dict[str, Any]
) -> RegistrationAnswer:
    app, _ = _caller(request)
    return RegistrationAnswer(await app.devices.register(data))


@get("/messaging/registrations/{device_id:str}")
async def get_device(
    request: Request[Any, Any, Any], app_id: str, api_key: str, device_id: str
) -> Any:
    app, _ = _caller(request)
    return await app.devices.get(device_id)


@delete("/messaging/registrations/{device_id:str}", status_code=HTTP_200_OK)
async def unregister_device(
    request: Request[Any, Any, Any], app_id: str, api_key: str, device_id: str
) -> ResultAnswer:
    app, _ = _caller(request)
    await app.devices.unregister(device_id)
    return ResultAnswer(True)


# -- users -------------------------------------------------------------------------------------


@post("/users/register", status_code=HTTP_200_OK)
async def register_user(
    request: Request[Any, Any, Any], app_id: str, api_key: str, data: dict[str, Any]
) -> dict[str, Any]:
    app, _ = _caller(request)
    return await app.accounts.register(data)


@post("/users/login", status_code=HTTP_200_OK)
async def login(
    request: Request[Any, Any, Any], app_id: str, api_key: str, data: LoginBody
) -> dict[str, Any]:
    app, _ = _caller(request)
    return await app.accounts.login(data.login, data.password)


@get("/users/logout")
async def logout(request: Request[Any, Any, Any], app_id: str, api_key: str) -> None:
    app, _ = _caller(request)
    await app.accounts.logout(request.headers.get("user-token") or "")


@get("/info")
async def info(request: Request[Any, Any, Any], app_id: str, api_key: str) -> InfoAnswer:
    tidings = _tidings(request)
    origin = tidings.public_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
    return InfoAnswer(origin.rstrip("/"))


# -- admin ---------------------------------------------------------------------------------------


class RolesBody(msgspec.Struct):
    roles: list[str]


@put("/admin/{app_id:str}/users/{object_id:str}/roles")
async def set_user_roles(
    request: Request[Any, Any, Any], app_id: str, object_id: str, data: RolesBody
) -> dict[str, Any]:
    """Give a user custom roles (header `admin-key`: the app's admin key from the config)."""
    app = _tidings(request).admin(app_id, request.headers.get("admin-key", ""))
    user = await app.accounts.set_roles(object_id, data.roles)
    return {"objectId": user.object_id, "roles": list(user.roles)}


@get("/admin/{app_id:str}/pushtemplates")
async def admin_list_templates(
    request: Request[Any, Any, Any], app_id: str
) -> list[TemplateAnswer]:
    app = _tidings(request).admin(app_id, request.headers.get("admin-key", ""))
    found = await _templates(app).list()
    return [_template_answer(name, template) for name, template in found.items()]


@put("/admin/{app_id:str}/pushtemplates/{name:str}")
async def admin_put_template(
    request: Request[Any, Any, Any], app_id: str, name: str, data: dict[str, Any]
) -> TemplateAnswer:
    """Create or replace a push template (header `admin-key`)."""
    app = _tidings(request).admin(app_id, request.headers.get("admin-key", ""))
    return _template_answer(name, await _templates(app).put(name, data))


@delete("/admin/{app_id:str}/pushtemplates/{name:str}", status_code=HTTP_200_OK)
async def admin_delete_template(
    request: Request[Any, Any, Any], app_id: str, name: str
) -> ResultAnswer:
    app = _tidings(request).admin(app_id, request.headers.get("admin-key", ""))
    await _templates(app).delete(name)
    return ResultAnswer(True)


# -- the app ---------------------------------------------------------------------------------------


class _Request(Request[Any, Any, Any]):
    """Litestar answers only msgspec.DecodeError as bad JSON; msgspec also raises
    UnicodeDecodeError (a string that is not UTF-8) and RecursionError (nesting too deep)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError) as exc:
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "nested too deeply"
            raise _BadJsonError(f"the request body is not valid JSON: {reason}") from None


@get("/health")
async def health() -> Health:
    return Health("ok")


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, Any]) -> bytes:
    """Prometheus exposition: broker counters per app, REST publishes, request latency."""
    return _tidings(request).metrics.render()


def _error(code: int, message: str, status: int) -> Response[ErrorBody]:
    return Response(ErrorBody(code, message), status_code=status)


def _broker_error(request: Request[Any, Any, Any], exc: BrokerError) -> Response[ErrorBody]:
    return Response(error_body(exc), status_code=http_status(exc))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if status == 413:
        return _broker_error(request, MessageTooLargeError("the request body is too large"))
    if status == 400:  # a body that is not JSON at all
        return _error(8002, f"the request body is not valid JSON: {exc.detail}", 400)
    return _error(status, str(exc.detail), status)


def _validation_error(exc: ValidationException) -> Response[ErrorBody]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    for problem in extra:
        key = str(problem.get("key", "")) if isinstance(problem, dict) else ""
        field = key.split(".")[0]
        if field in FIELD_CODES:
            return _error(FIELD_CODES[field], f"invalid {field}: {problem.get('message')}", 400)
    details = "; ".join(
        f"{p.get('key') or 'body'}: {p.get('message')}" for p in extra if isinstance(p, dict)
    )
    return _error(8002, f"invalid request: {details or exc.detail}", 400)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("request failed", extra={"path": request.url.path})
    return _error(500, "internal error; the server log has the details", 500)


class _BadJsonError(BrokerError):
    def __init__(self, message: str) -> None:
        super().__init__(8002, message)


class _ContentTypeError(BrokerError):
    def __init__(self) -> None:
        super().__init__(8002, "Content-Type must be application/json")


def _content_type_error(request: Request[Any, Any, Any], exc: BrokerError) -> Response[ErrorBody]:
    return Response(error_body(exc), status_code=415)


def create_app(tidings: Tidings) -> Litestar:
    api = Router(
        path="/{app_id:str}/{api_key:str}",
        route_handlers=[
            publish,
            message_status,
            cancel,
            subscribe,
            poll,
            delete_channel,
            push_template,
            list_templates,
            register_device,
            get_device,
            unregister_device,
            register_user,
            login,
            logout,
            info,
        ],
        before_request=_authenticate,
    )
    app = Litestar(
        route_handlers=[
            api,
            health,
            metrics,
            set_user_roles,
            admin_list_templates,
            admin_put_template,
            admin_delete_template,
        ],
        request_class=_Request,
        logging_config=None,
        exception_handlers={
            _ContentTypeError: _content_type_error,
            BrokerError: _broker_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        cors_config=CORSConfig(
            allow_origins=list(tidings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
        ),
        openapi_config=OpenAPIConfig(
            title="Tidings",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=tidings.max_body_size,
        middleware=[tidings.metrics.middleware],
        debug=False,
    )
    app.state.tidings = tidings
    return app
