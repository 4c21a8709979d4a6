"""The stand-in's HTTP face: aiohttp routes that only translate requests into workspace calls.

Routes mirror where Slack serves each thing, all under one loopback origin:

    /api/{method}                    Web API (query string, form or JSON body; Bearer token or token arg)
    /upload/v1/{key}                 upload URL from files.getUploadURLExternal (raw bytes, no auth)
    /files/{file_id}/{name}          url_private of a completed upload (Bearer token)
    /commands/... and /actions/...   response_url of a slash command or a click
"""

from __future__ import annotations

from aiohttp import web

from bot.slack_standin_faults import Reply
from bot.slack_standin_interactions import Interactions
from bot.slack_standin_model import JsonDict
from bot.slack_standin_webapi import WebApi

FORM = "application/x-www-form-urlencoded"


def _to_response(reply: Reply) -> web.Response:
    if isinstance(reply.body, dict):
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)
    return web.Response(text=reply.body, status=reply.status, headers=reply.headers)


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() or None if auth.startswith("Bearer ") else None


def build_app(api: WebApi, interactions: Interactions) -> web.Application:
    ws = api.ws

    async def handle_api(request: web.Request) -> web.Response:
        args: JsonDict = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    return _to_response(Reply.error("invalid_json"))
                args.update(body)
            elif request.content_type in (FORM, "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = _bearer(request) or (str(args["token"]) if args.get("token") else None)
        return _to_response(api.call(request.match_info["method"], args, token))

    async def handle_upload(request: web.Request) -> web.Response:
        return _to_response(api.receive_upload(request.match_info["key"], await request.read()))

    async def handle_file(request: web.Request) -> web.Response:
        if _bearer(request) != ws.bot_token:
            return web.Response(status=403, text="forbidden")
        file = ws.files.get(request.match_info["file_id"])
        if file is None or file.name != request.match_info["name"]:
            return web.Response(status=404, text="file not found")
        return web.Response(body=file.content, content_type="text/plain")

    async def handle_response_url(request: web.Request) -> web.Response:
        return _to_response(interactions.respond(request.match_info["path"], await request.read()))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(
        [
            web.route("*", "/api/{method}", handle_api),
            web.post("/upload/v1/{key}", handle_upload),
            web.get("/files/{file_id}/{name}", handle_file),
            web.post(r"/{path:(commands|actions)/.+}", handle_response_url),
        ]
    )
    return app
