"""
The wire formats clients speak, translated to and from chat completions.

Chat completions is the relay's pivot: every provider adapter speaks it (the
OpenAI-compatible ones natively, Anthropic and Gemini by translation), so an
inbound format that a channel cannot serve natively (the Responses API on an
Anthropic channel, Anthropic's Messages on an OpenAI one...) is rewritten to
a chat completion on the way in and back on the way out. Modules here are
pure data transformations: no I/O, no database.
"""
