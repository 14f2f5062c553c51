"""Provider adapters by channel kind."""

from relay.providers.anthropic import AnthropicAdapter
from relay.providers.azure import AzureAdapter
from relay.providers.base import Adapter
from relay.providers.demo import DemoAdapter
from relay.providers.gemini import GeminiAdapter
from relay.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "azure": AzureAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
    "demo": DemoAdapter(),
}


def adapter_for(kind: str) -> Adapter:
    return ADAPTERS[kind]
