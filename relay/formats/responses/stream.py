"""
A chat completion stream as Responses API stream events (StreamFromChat).
Chat's `reasoning_content` is streamed as `response.reasoning_text.*`.
"""

import time
from dataclasses import dataclass, field

from billing.pricing import TokenUsage
from relay.formats.responses.answer import (
    BROKEN_MESSAGE,
    INCOMPLETE,
    call_item,
    custom_input,
    new_id,
    reasoning_item,
    reasoning_text,
    response_object,
    text_part,
)
from relay.formats.responses.tools import ToolNames, str_or_none
from relay.formats.usage import Bill, usage_from_openai, with_bill
from relay.streaming import sse


@dataclass
class _Message:
    index: int
    item: dict
    part: dict | None = None


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    index: int | None = None
    item: dict | None = None
    closed: bool = False


class StreamFromChat:
    """
    Turn parsed `chat.completion.chunk` dicts into Responses API stream
    events, as OpenAI frames them (`event:` lines, `sequence_number` from 0).

    Output items follow the order the model produced them in. Text and
    reasoning are closed when a tool call starts (and tool calls when text
    comes after them); tool calls stay open until the upstream finishes,
    since chat interleaves their argument fragments. A custom tool's input
    is JSON-encoded inside its chat arguments, so it is sent whole when its
    call closes.
    """

    def __init__(self, *, request: dict, answer_id: str, model: str):
        self._request = request
        self._id = answer_id
        self._model = model
        self._names = ToolNames.of(request)
        self._created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._ended = False
        self._output: list[dict] = []
        self._message: _Message | None = None
        self._reasoning: _Message | None = None
        self._calls: dict[int, _Call] = {}
        self._call_ids: set[str] = set()
        self._finish_reason: str | None = None
        self._usage: TokenUsage | None = None

    # framing

    def _event(self, kind: str, **fields) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse(payload, kind)

    def _response(self, status: str, **extra) -> dict:
        return response_object(
            self._request,
            response_id=self._id,
            model=self._model,
            status=status,
            output=self._output if status != "in_progress" else [],
            created_at=self._created_at,
            **extra,
        )

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [
            self._event("response.created", response=self._response("in_progress")),
            self._event("response.in_progress", response=self._response("in_progress")),
        ]

    def _add(self, item: dict) -> tuple[int, bytes]:
        self._output.append(item)
        index = len(self._output) - 1
        return index, self._event(
            "response.output_item.added", output_index=index, item=item
        )

    def _done(self, index: int, item: dict) -> bytes:
        return self._event("response.output_item.done", output_index=index, item=item)

    # public

    def feed(self, chunk: dict) -> bytes:
        """Return the events for one chat chunk."""
        if self._ended:
            return b""
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return b"".join(out)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        thought = reasoning_text(delta)
        if thought:
            out += self._delta("reasoning_text", thought)
        for name, kind in (("content", "output_text"), ("refusal", "refusal")):
            if str_or_none(delta.get(name)):
                out += self._delta(kind, delta[name])
        calls = delta.get("tool_calls")
        for position, fragment in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(fragment, dict):
                out += self._call_fragment(position, fragment)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        return b"".join(out)

    def finish(self, usage: TokenUsage | None, bill: Bill | None = None) -> bytes:
        """Return the closing events once the upstream finished: every open
        item's done events, then response.completed (or .incomplete), its
        usage with what `bill` says."""
        if self._ended:
            return b""
        out = self._start()
        self._ended = True
        incomplete = INCOMPLETE.get(self._finish_reason)
        status = "incomplete" if incomplete else "completed"
        for call in self._calls.values():
            if call.item is None and (call.name or call.arguments):
                out += self._open_call(call)
        out += self._close_text(status)
        out += self._close_calls(status)
        kind = "response.incomplete" if incomplete else "response.completed"
        response = self._response(
            status, usage=usage or self._usage, incomplete=incomplete
        )
        response["usage"] = with_bill(response["usage"], bill, stream=True)
        out.append(self._event(kind, response=response))
        return b"".join(out)

    def fail(self, error: dict) -> bytes:
        """Return the terminal response.failed for an upstream error (OpenAI's
        error object: message, type, code, param)."""
        body = {
            "code": str_or_none(error.get("code")) or "server_error",
            "message": (
                str_or_none(error.get("message")) or "The upstream provider failed."
            ),
        }
        for name in ("type", "param"):
            if str_or_none(error.get(name)):
                body[name] = error[name]
        return self._failed(body)

    def broken(self) -> bytes:
        """Return the terminal response.failed for a stream the upstream cut."""
        return self._failed(
            {"code": "upstream_stream_closed", "message": BROKEN_MESSAGE}
        )

    def _failed(self, error: dict) -> bytes:
        if self._ended:
            return b""
        out = self._start()
        self._ended = True
        # The failed response shows what was produced, cut where it stopped.
        for call in self._calls.values():
            if call.item is not None and not call.closed:
                arguments = "".join(call.arguments)
                if call.item["type"] == "custom_tool_call":
                    call.item["input"] = custom_input(arguments)
                else:
                    call.item["arguments"] = arguments
        for item in self._output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        out.append(
            self._event(
                "response.failed", response=self._response("failed", error=error)
            )
        )
        return b"".join(out)

    # text, refusal and reasoning

    def _delta(self, kind: str, text: str) -> list[bytes]:
        """Add `text` to the open part of `kind`: output_text or refusal (in a
        message item) or reasoning_text (in a reasoning item)."""
        out = self._close_calls("completed")
        if kind == "reasoning_text":
            out += self._close_message("completed")
            if self._reasoning is None:
                item = reasoning_item(new_id("rs"), "", "in_progress")
                item["content"] = []
                self._reasoning = self._open(item, out)
            open_item = self._reasoning
        else:
            out += self._close_reasoning("completed")
            if self._message is None:
                item = {
                    "id": new_id("msg"),
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
                self._message = self._open(item, out)
            open_item = self._message
        if open_item.part is None or open_item.part["type"] != kind:
            out += self._close_part(open_item)
            open_item.part = _empty_part(kind)
            open_item.item["content"].append(open_item.part)
            out.append(
                self._event(
                    "response.content_part.added",
                    **self._at(open_item),
                    part=open_item.part,
                )
            )
        key = "refusal" if kind == "refusal" else "text"
        open_item.part[key] += text
        extra = {"logprobs": []} if kind == "output_text" else {}
        out.append(
            self._event(
                f"response.{kind}.delta", **self._at(open_item), delta=text, **extra
            )
        )
        return out

    def _open(self, item: dict, out: list[bytes]) -> _Message:
        index, added = self._add(item)
        out.append(added)
        return _Message(index, item)

    def _at(self, open_item: _Message) -> dict:
        return {
            "item_id": open_item.item["id"],
            "output_index": open_item.index,
            "content_index": len(open_item.item["content"]) - 1,
        }

    def _close_part(self, open_item: _Message) -> list[bytes]:
        part = open_item.part
        if part is None:
            return []
        open_item.part = None
        at = self._at(open_item)
        if part["type"] == "refusal":
            done = self._event("response.refusal.done", **at, refusal=part["refusal"])
        elif part["type"] == "output_text":
            done = self._event(
                "response.output_text.done", **at, text=part["text"], logprobs=[]
            )
        else:
            done = self._event("response.reasoning_text.done", **at, text=part["text"])
        return [done, self._event("response.content_part.done", **at, part=part)]

    def _close_message(self, status: str) -> list[bytes]:
        open_item, self._message = self._message, None
        return self._close_item(open_item, status)

    def _close_reasoning(self, status: str) -> list[bytes]:
        open_item, self._reasoning = self._reasoning, None
        return self._close_item(open_item, status)

    def _close_item(self, open_item: _Message | None, status: str) -> list[bytes]:
        if open_item is None:
            return []
        out = self._close_part(open_item)
        open_item.item["status"] = status
        out.append(self._done(open_item.index, open_item.item))
        return out

    def _close_text(self, status: str) -> list[bytes]:
        return self._close_reasoning(status) + self._close_message(status)

    # tool calls

    def _call_fragment(self, position: int, fragment: dict) -> list[bytes]:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = self._index_of(str_or_none(fragment.get("id")), position)
        call = self._calls.setdefault(index, _Call())
        if call.closed:
            return []
        if str_or_none(fragment.get("id")) and not call.id:
            call.id = fragment["id"]
        function = fragment.get("function")
        function = function if isinstance(function, dict) else {}
        if str_or_none(function.get("name")) and not call.name:
            call.name = function["name"]
        piece = str_or_none(function.get("arguments")) or ""
        if call.item is None:
            if piece:
                call.arguments.append(piece)
            # The item is announced with its name, which chat sends first.
            return self._open_call(call) if call.name else []
        if not piece:
            return []
        call.arguments.append(piece)
        if call.item["type"] != "function_call":
            return []
        return [self._arguments_delta(call, piece)]

    def _index_of(self, call_id: str | None, position: int) -> int:
        """Place a fragment that came without `index` (which some
        OpenAI-compatible servers leave out): by its id, else it continues
        the latest call."""
        if call_id is None:
            return max(self._calls, default=position)
        for index, call in self._calls.items():
            if call.id == call_id:
                return index
        return max(self._calls, default=-1) + 1

    def _arguments_delta(self, call: _Call, piece: str) -> bytes:
        return self._event(
            "response.function_call_arguments.delta",
            item_id=call.item["id"],
            output_index=call.index,
            delta=piece,
        )

    def _open_call(self, call: _Call) -> list[bytes]:
        out = self._close_text("completed")
        call_id, n = call.id or new_id("call"), 1
        # Call ids identify items for clients; some upstreams reuse them.
        while call_id in self._call_ids:
            n += 1
            call_id = f"{call.id}_{n}"
        self._call_ids.add(call_id)
        item = call_item(self._names, call_id, call.name, "", "in_progress")
        if item["type"] == "custom_tool_call":
            item["input"] = ""
        call.item = item
        call.index, added = self._add(item)
        out.append(added)
        if item["type"] == "function_call" and call.arguments:
            out.append(self._arguments_delta(call, "".join(call.arguments)))
        return out

    def _close_calls(self, status: str) -> list[bytes]:
        out = []
        for call in self._calls.values():
            if call.item is None or call.closed:
                continue
            call.closed = True
            item, arguments = call.item, "".join(call.arguments)
            at = {"item_id": item["id"], "output_index": call.index}
            if item["type"] == "custom_tool_call":
                item["input"] = custom_input(arguments)
                if item["input"]:
                    out.append(
                        self._event(
                            "response.custom_tool_call_input.delta",
                            **at,
                            delta=item["input"],
                        )
                    )
                out.append(
                    self._event(
                        "response.custom_tool_call_input.done",
                        **at,
                        input=item["input"],
                    )
                )
            else:
                item["arguments"] = arguments
                item["status"] = status
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        **at,
                        arguments=arguments,
                    )
                )
            out.append(self._done(call.index, item))
        return out


def _empty_part(kind: str) -> dict:
    if kind == "output_text":
        return text_part("")
    if kind == "refusal":
        return {"type": "refusal", "refusal": ""}
    return {"type": "reasoning_text", "text": ""}
