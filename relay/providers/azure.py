"""
Azure OpenAI: OpenAI's wire format behind deployment URLs. The deployment is
the channel's upstream model name; the key goes in `api-key`. The Responses
API is one resource for the whole Azure resource (the deployment travels as
`model` in the body), not one per deployment.
"""

from urllib.parse import quote

import httpx

from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.providers.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        if endpoint.name == "responses":
            return self.resource_url(channel, "/responses", [])
        deployment = quote(str(payload.get("model", "")), safe="")
        return httpx.URL(
            f"{channel.base_url}/openai/deployments/{deployment}{endpoint.path}",
            params={"api-version": channel.api_version},
        )

    def resource_url(
        self, channel: ChannelInfo, path: str, params: list[tuple[str, str]]
    ) -> httpx.URL:
        return httpx.URL(
            f"{channel.base_url}/openai{path}",
            params=[*params, ("api-version", channel.api_version)],
        )

    def auth_headers(self, channel: ChannelInfo) -> dict:
        return {"api-key": channel.api_key}
