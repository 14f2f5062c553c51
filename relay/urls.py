"""
The /v1 routes, served by config.asgi through config.api_handler (not
Django's URL resolver): one dict lookup per request.
"""

import re

from relay import views

ROUTES = {
    "/v1/chat/completions": views.chat_completions,
    "/v1/completions": views.completions,
    "/v1/embeddings": views.embeddings,
    "/v1/images/generations": views.images_generations,
    "/v1/messages": views.messages,
    "/v1/messages/count_tokens": views.count_tokens,
    "/v1/responses": views.responses,
    "/v1/models": views.models,
}
STORED_RESPONSE = re.compile(
    r"/v1/responses/(?P<response_id>[^/]+)(?P<suffix>/cancel|/input_items)?"
)


def resolve(path: str) -> tuple:
    """Return the view serving `path` and its keyword arguments."""
    view = ROUTES.get(path)
    if view is not None:
        return view, {}
    found = STORED_RESPONSE.fullmatch(path)
    if found is not None:
        return views.response_resource, {
            "response_id": found["response_id"],
            "suffix": found["suffix"] or "",
        }
    return views.unknown_endpoint, {}
