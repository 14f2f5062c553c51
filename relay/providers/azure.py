"""
Azure OpenAI: OpenAI's wire format behind deployment URLs. The deployment is
the channel's upstream model name; the key goes in `api-key`.
"""

from urllib.parse import quote

import httpx

from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.providers.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        deployment = quote(str(payload.get("model", "")), safe="")
        return httpx.URL(
            f"{channel.base_url}/openai/deployments/{deployment}{endpoint.path}",
            params={"api-version": channel.api_version},
        )

    def auth_headers(self, channel: ChannelInfo) -> dict:
        return {"api-key": channel.api_key}
