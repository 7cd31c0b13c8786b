"""Text head-end: a line-based ASCII format, one value per line, ending with a CRC-32 line.

Decides: the text layout of the ``text`` vendor's frames (header line, ``path=literal`` lines,
escapes, typed literals, nesting by path) and the CRC-32 that guards them, and rejects any
frame that does not follow the layout exactly, including non-canonical spellings.
Must never: accept a frame whose CRC or structure disagree, or raise anything but
``FrameError`` on a received frame.

A frame is printable ASCII lines, each ended by ``\\n``::

    DCC-TEXT/1 COMMAND "4.1.1" "cmd-42" "0011223344556677"
    execute_at=~
    signature=hex:
    params={2}
    params.register="import"
    params.tiers=[2]
    params.tiers[0]=1
    params.tiers[1]=2.5
    crc=d76233ae

The header line names the kind and carries its identifiers as quoted strings:
``COMMAND service command_id device_id``, ``RESPONSE service command_id device_id status``
(status unquoted: success, rejected, scheduled) or ``ALERT alert_code device_id``. Field lines
follow in a fixed order: a command has ``execute_at``, ``signature``, ``params``; a response
``reason``, ``body``; an alert ``raised_at``, ``data``. The last line is ``crc=`` and the
CRC-32 (zlib) of every byte before that line, as eight lower-case hex digits.

Literals: ``~`` nil; ``true``, ``false``; an int in decimal; a float as Python's shortest
round-trip ``repr`` (always has ``.`` or ``e``); ``"..."`` a string; ``hex:...`` bytes in
lower-case hex; ``[n]`` a list, followed by its ``n`` items on lines ``path[i]=...``; ``{n}``
a map, followed by its ``n`` entries on lines ``path.key=...``, where a key made only of
``A-Z a-z 0-9 _ -`` is written bare and any other key quoted. Inside quotes: ``\\"``, ``\\\\``,
``\\n``, ``\\t``, ``\\xHH`` for other characters below U+0100 that are not printable ASCII,
``\\uHHHH`` up to U+FFFF and ``\\UHHHHHHHH`` beyond (lower-case hex). Every message has exactly
one spelling; the decoder refuses any other (``"\\x41"`` for ``"A"``, ``1e5``, ``-0``, ...).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from typing import Final, NoReturn

from hub.headends import _common as check
from hub.headends.base import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    EncodeError,
    FrameError,
    IntegrityError,
)
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
    Value,
)

NAME: Final = "text"
VERSION_TAG: Final = "DCC-TEXT/1"

_CRC_LINE: Final = re.compile(rb"crc=([0-9a-f]{8})\n")
_CRC_LINE_BYTES: Final = len(b"crc=00000000\n")
_LINE_BYTES: Final = bytes(range(0x20, 0x7F)) + b"\n"
_PLAIN: Final = re.compile(r"[ !#-\[\]-~]*")
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE: Final = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(.))")
_INT: Final = re.compile(r"-?[0-9]{1,19}")
_COUNT: Final = re.compile(r"0|[1-9][0-9]{0,8}")
_MAX_FLOAT_CHARS: Final = 32
_SHORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}
_UNESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_VERBS: Final = ("COMMAND", "RESPONSE", "ALERT")
_STATUSES: Final = {status.value: status for status in CommandStatus}


# --- encoding ---


def _escape(text: str) -> str:
    """``text`` spelled with printable ASCII only, without the surrounding quotes."""
    if _PLAIN.fullmatch(text):
        return text
    out = []
    for char in text:
        short = _SHORT_ESCAPES.get(char)
        if short is not None:
            out.append(short)
            continue
        code = ord(char)
        if 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:
            raise EncodeError(NAME, "a string is not valid Unicode (lone surrogate)")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _quote(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise EncodeError(NAME, f"{what} must be a str, not {type(text).__name__}")
    return f'"{_escape(text)}"'


def _key_segment(key: object) -> str:
    if not isinstance(key, str):
        raise EncodeError(NAME, f"map keys must be str, not {type(key).__name__}")
    return key if _BARE_KEY.fullmatch(key) else f'"{_escape(key)}"'


def _emit(out: list[str], path: str, value: object, depth: int) -> None:
    """Append the lines of ``value`` at ``path``; ``depth`` counts the containers around it."""
    if value is None:
        out.append(f"{path}=~")
    elif value is True:
        out.append(f"{path}=true")
    elif value is False:
        out.append(f"{path}=false")
    elif isinstance(value, str):
        out.append(f'{path}="{_escape(value)}"')
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise check.int_out_of_range(NAME, value)
        out.append(f"{path}={int(value)}")
    elif isinstance(value, float):
        out.append(f"{path}={float(check.finite(NAME, value))!r}")
    elif isinstance(value, bytes):
        out.append(f"{path}=hex:{value.hex()}")
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise check.depth_exceeded(NAME)
        out.append(f"{path}=[{len(value)}]")
        for index, item in enumerate(value):
            _emit(out, f"{path}[{index}]", item, depth + 1)
    elif isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise check.depth_exceeded(NAME)
        out.append(f"{path}={{{len(value)}}}")
        for key, item in value.items():
            _emit(out, f"{path}.{_key_segment(key)}", item, depth + 1)
    else:
        raise check.not_a_value(NAME, value)


def _frame(lines: list[str]) -> bytes:
    content = ("\n".join(lines) + "\n").encode("ascii")
    trailer = b"crc=%08x\n" % zlib.crc32(content)
    return check.sendable(NAME, content + trailer)


# --- decoding ---


def _fail(reason: str) -> NoReturn:
    raise FrameError(NAME, reason)


def _unescape_one(match: re.Match[str]) -> str:
    code_text = match.group(1) or match.group(2) or match.group(3)
    if code_text is None:
        char = _UNESCAPES.get(match.group(4))
        if char is None:
            _fail(f"unknown escape {match.group(0)!r}")
        return char
    code = int(code_text, 16)
    if 0xD800 <= code < 0xE000 or code > 0x10FFFF:
        _fail(f"escape {match.group(0)!r} is not a Unicode scalar value")
    return chr(code)


def _unquote(body: str) -> str:
    """The string spelled by ``body`` (the text between the quotes), checked canonical."""
    if "\\" not in body:
        return body
    text = _ESCAPE.sub(_unescape_one, body)
    if _escape(text) != body:
        _fail(f"non-canonical escapes in {body[:40]!r}")
    return text


def _number(literal: str) -> int | float:
    if _INT.fullmatch(literal):
        number = int(literal)
        if str(number) != literal:
            _fail(f"non-canonical int {literal!r}")
        if not INT64_MIN <= number <= INT64_MAX:
            _fail(f"int {literal} is outside the int64 range")
        return number
    if len(literal) > _MAX_FLOAT_CHARS:
        _fail(f"bad literal {literal[:40]!r}")
    try:
        real = float(literal)
    except ValueError:
        _fail(f"bad literal {literal!r}")
    if not math.isfinite(real) or repr(real) != literal:
        _fail(f"bad or non-canonical float {literal!r}")
    return real


def _count(literal: str) -> int:
    digits = literal[1:-1]
    if not _COUNT.fullmatch(digits):
        _fail(f"bad count {literal[:40]!r}")
    return int(digits)


def _scalar(literal: str) -> Value:
    """A literal that is not a container."""
    first = literal[:1]
    if first == '"':
        match = _QUOTED.fullmatch(literal)
        if match is None:
            _fail(f"bad string {literal[:40]!r}")
        return _unquote(match.group(1))
    if literal == "~":
        return None
    if literal == "true":
        return True
    if literal == "false":
        return False
    if literal.startswith("hex:"):
        digits = literal[4:]
        try:
            octets = bytes.fromhex(digits)
        except ValueError:
            _fail(f"bad hex {literal[:40]!r}")
        if octets.hex() != digits:
            _fail(f"bad hex {literal[:40]!r}: lower-case digits only, no spaces")
        return octets
    return _number(literal)


class _Parser:
    """Reads the lines after the header, in order, each exactly where it is expected."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._next = 1

    def _line(self, what: str) -> str:
        if self._next >= len(self._lines):
            _fail(f"frame ends before {what}")
        line = self._lines[self._next]
        self._next += 1
        return line

    def field(self, name: str) -> str:
        """The literal of the next line, which must be field ``name``."""
        line = self._line(name)
        if not line.startswith(name) or line[len(name) : len(name) + 1] != "=":
            _fail(f"line {self._next}: expected field {name!r}")
        return line[len(name) + 1 :]

    def mapping(self, name: str) -> dict[str, Value]:
        """The message map on field line ``name``."""
        literal = self.field(name)
        if not (literal.startswith("{") and literal.endswith("}")):
            _fail(f"{name} is not a map")
        return self._map(name, _count(literal), 0)

    def _value(self, path: str, literal: str, depth: int) -> Value:
        first = literal[:1]
        if first == "{" and literal.endswith("}"):
            return self._map(path, _count(literal), depth)
        if first == "[" and literal.endswith("]"):
            return self._list(path, _count(literal), depth)
        return _scalar(literal)

    def _check_container(self, path: str, count: int, depth: int) -> None:
        if depth >= MAX_DEPTH:
            _fail(f"{path[:60]}: values nest deeper than {MAX_DEPTH} levels")
        if count > len(self._lines) - self._next:
            _fail(f"{path[:60]}: {count} entries announced, fewer lines left")

    def _list(self, path: str, count: int, depth: int) -> list[Value]:
        self._check_container(path, count, depth)
        items: list[Value] = []
        for index in range(count):
            prefix = f"{path}[{index}]="
            line = self._line(prefix)
            if not line.startswith(prefix):
                _fail(f"line {self._next}: expected {prefix[:60]!r}")
            items.append(self._value(prefix[:-1], line[len(prefix) :], depth + 1))
        return items

    def _map(self, path: str, count: int, depth: int) -> dict[str, Value]:
        self._check_container(path, count, depth)
        entries: dict[str, Value] = {}
        prefix = path + "."
        start = len(prefix)
        for _ in range(count):
            line = self._line(f"an entry of {path[:60]}")
            if not line.startswith(prefix):
                _fail(f"line {self._next}: expected an entry of {path[:60]!r}")
            if line[start : start + 1] == '"':
                match = _QUOTED.match(line, start)
                if match is None:
                    _fail(f"line {self._next}: bad quoted key")
                key = _unquote(match.group(1))
                if _BARE_KEY.fullmatch(key):
                    _fail(f"line {self._next}: key {key!r} must be written bare")
            else:
                match = _BARE_KEY.match(line, start)
                if match is None:
                    _fail(f"line {self._next}: bad key")
                key = match.group(0)
            stop = match.end()
            if line[stop : stop + 1] != "=":
                _fail(f"line {self._next}: expected '=' after the key")
            if key in entries:
                _fail(f"line {self._next}: duplicate key {key!r}")
            entries[key] = self._value(line[:stop], line[stop + 1 :], depth + 1)
        return entries

    def finish(self) -> None:
        """Fail if any line is left over."""
        if self._next != len(self._lines):
            _fail(f"line {self._next + 1}: unexpected line after the last field")


def _header(line: str, verbs: tuple[str, ...]) -> tuple[str, list[str], str]:
    """The verb, the quoted identifiers and the unquoted rest of the header line."""
    version, _, rest = line.partition(" ")
    if version != VERSION_TAG:
        _fail(f"expected {VERSION_TAG!r}, got {version[:20]!r}")
    verb, _, rest = rest.partition(" ")
    if verb not in _VERBS:
        _fail(f"unknown kind {verb[:20]!r}")
    if verb not in verbs:
        _fail(f"a {verb} frame is not expected here")
    expected = {"COMMAND": 3, "RESPONSE": 3, "ALERT": 2}[verb]
    tokens = []
    pos = 0
    for index in range(expected):
        if index and rest[pos : pos + 1] != " ":
            _fail("header: identifiers must be separated by one space")
        match = _QUOTED.match(rest, pos + 1 if index else 0)
        if match is None:
            _fail(f"header: identifier {index + 1} is not a quoted string")
        tokens.append(_unquote(match.group(1)))
        pos = match.end()
    return verb, tokens, rest[pos:]


def _open(frame: object, verbs: tuple[str, ...]) -> tuple[str, list[str], str, _Parser]:
    buf = check.received(NAME, frame)
    if len(buf) <= _CRC_LINE_BYTES:
        _fail(f"truncated: {len(buf)} bytes")
    crc_line = _CRC_LINE.fullmatch(buf, len(buf) - _CRC_LINE_BYTES)
    if crc_line is None:
        _fail("the frame does not end with a crc line")
    content = buf[:-_CRC_LINE_BYTES]
    if zlib.crc32(content) != int(crc_line.group(1), 16):
        raise IntegrityError(NAME, "CRC-32 mismatch")
    stray = content.translate(None, _LINE_BYTES)
    if stray:
        _fail(f"byte {stray[:1]!r} is neither printable ASCII nor a line end")
    text = content.decode("ascii")
    if not text.endswith("\n"):
        _fail("the line before the crc line is not ended")
    lines = text[:-1].split("\n")
    verb, tokens, rest = _header(lines[0], verbs)
    return verb, tokens, rest, _Parser(lines)


class TextHeadEnd:
    """The ``text`` head-end: line-based ASCII frames guarded by CRC-32.

    Stateless; construct with no arguments.
    """

    @property
    def name(self) -> str:
        """``text``."""
        return NAME

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        """A command as a ``text`` frame; ``EncodeError`` if it cannot be expressed."""
        if not isinstance(cmd, DeviceCommand):
            raise EncodeError(NAME, f"not a DeviceCommand: {type(cmd).__name__}")
        ids = (
            _quote(cmd.service, "service"),
            _quote(cmd.command_id, "command_id"),
            _quote(cmd.device_id, "device_id"),
        )
        execute_at = (
            "~"
            if cmd.execute_at is None
            else repr(check.instant(NAME, "execute_at", cmd.execute_at))
        )
        lines = [
            f"{VERSION_TAG} COMMAND {' '.join(ids)}",
            f"execute_at={execute_at}",
            f"signature=hex:{check.octets(NAME, 'signature', cmd.signature).hex()}",
        ]
        _emit(lines, "params", check.message_map(NAME, "params", cmd.params), 0)
        return _frame(lines)

    def decode_command(self, frame: bytes) -> DeviceCommand:
        """The command in a ``text`` frame; ``FrameError`` if the frame is malformed."""
        _, (service, command_id, device_id), rest, parser = _open(frame, ("COMMAND",))
        if rest:
            _fail("header: unexpected text after the identifiers")
        execute_at = _scalar(parser.field("execute_at"))
        if execute_at is not None and type(execute_at) is not float:
            _fail("execute_at is neither ~ nor a float")
        signature = _scalar(parser.field("signature"))
        if type(signature) is not bytes:
            _fail("signature is not hex bytes")
        params = parser.mapping("params")
        parser.finish()
        return DeviceCommand(
            command_id=command_id,
            service=service,
            device_id=device_id,
            params=params,
            execute_at=execute_at,
            signature=signature,
        )

    def encode_uplink(self, msg: Uplink) -> bytes:
        """A response or an alert as a ``text`` frame; ``EncodeError`` if it cannot be."""
        if isinstance(msg, DeviceResponse):
            ids = (
                _quote(msg.service, "service"),
                _quote(msg.command_id, "command_id"),
                _quote(msg.device_id, "device_id"),
            )
            status = check.status(NAME, msg.status).value
            lines = [
                f"{VERSION_TAG} RESPONSE {' '.join(ids)} {status}",
                f"reason={_quote(msg.reason, 'reason')}",
            ]
            _emit(lines, "body", check.message_map(NAME, "body", msg.body), 0)
            return _frame(lines)
        if isinstance(msg, DeviceAlert):
            alert_ids = (_quote(msg.alert_code, "alert_code"), _quote(msg.device_id, "device_id"))
            lines = [
                f"{VERSION_TAG} ALERT {' '.join(alert_ids)}",
                f"raised_at={check.instant(NAME, 'raised_at', msg.raised_at)!r}",
            ]
            _emit(lines, "data", check.message_map(NAME, "data", msg.data), 0)
            return _frame(lines)
        raise EncodeError(NAME, f"not an uplink message: {type(msg).__name__}")

    def decode_uplink(self, frame: bytes) -> Uplink:
        """The response or alert in a ``text`` frame; ``FrameError`` if it is malformed."""
        verb, tokens, rest, parser = _open(frame, ("RESPONSE", "ALERT"))
        if verb == "RESPONSE":
            service, command_id, device_id = tokens
            if rest[:1] != " " or rest[1:] not in _STATUSES:
                _fail(f"header: bad status {rest[:20]!r}")
            reason = _scalar(parser.field("reason"))
            if type(reason) is not str:
                _fail("reason is not a string")
            body = parser.mapping("body")
            parser.finish()
            return DeviceResponse(
                command_id=command_id,
                device_id=device_id,
                service=service,
                status=_STATUSES[rest[1:]],
                body=body,
                reason=reason,
            )
        alert_code, device_id = tokens
        if rest:
            _fail("header: unexpected text after the identifiers")
        raised_at = _scalar(parser.field("raised_at"))
        if type(raised_at) is not float:
            _fail("raised_at is not a float")
        data = parser.mapping("data")
        parser.finish()
        return DeviceAlert(
            device_id=device_id, alert_code=alert_code, raised_at=raised_at, data=data
        )
