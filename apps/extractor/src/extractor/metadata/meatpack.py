"""MeatPack decoding, as libbgcode's ``MeatPack::unbinarize`` reads GCode blocks.

MeatPack (https://github.com/scottmudge/OctoPrint-MeatPack) packs the 15
most frequent G-code characters into 4 bits, two per byte, low nibble first:
``0``-``9`` (0b0000-0b1001), ``.`` (0b1010), ``E`` (0b1011: binary G-code
always uses the "omit whitespace" variant, where this slot is ``E``), ``\\n``
(0b1100), ``G`` (0b1101), ``X`` (0b1110). A nibble 0b1111 means "the next
byte is a full character". ``0xFF 0xFF <cmd>`` switches packing on (0xFB)
and off (0xFA, reset 0xF9). A packed byte whose first character is ``\\n``
carries no second character.

libbgcode writes encoding 1 (MeatPack, comments removed) and 2 (MeatPack
keeping comments); both decode the same way. Spaces the encoder omitted
are not restored here: the text is used to count layer-change comment
lines, which keep their characters (comments are stored as full-width
characters).

No library on PyPI decodes MeatPack, so this is the one small piece of
own code for binary G-code.
"""

from __future__ import annotations

MEATPACK = 1
MEATPACK_COMMENTS = 2

_SIGNAL = 0xFF
_ENABLE = 0xFB
_DISABLE = 0xFA
_RESET = 0xF9
_CHARS = b"0123456789.E\nGX"


def unpack(data: bytes) -> bytes:
    """The G-code text of a MeatPack-encoded block (see the module docstring)."""
    out = bytearray()
    packing = False
    signals = 0
    command_next = False
    full_queue = 0
    pending = -1  # a packed second character waiting behind a full-width first one

    def receive(byte: int) -> None:
        nonlocal full_queue, pending
        if not packing:
            out.append(byte)
            return
        if full_queue:
            out.append(byte)
            if pending >= 0:
                out.append(pending)
                pending = -1
            full_queue -= 1
            return
        low, high = byte & 0x0F, byte >> 4
        if low == 0x0F:
            full_queue += 1
            if high == 0x0F:
                full_queue += 1
            else:
                pending = _CHARS[high]
            return
        first = _CHARS[low]
        out.append(first)
        if first != 0x0A:
            if high == 0x0F:
                full_queue += 1
            else:
                out.append(_CHARS[high])

    for byte in data:
        if byte == _SIGNAL:
            if signals:
                command_next = True
                signals = 0
            else:
                signals += 1
            continue
        if command_next:
            command_next = False
            if byte == _ENABLE:
                packing = True
            elif byte in (_DISABLE, _RESET):
                packing = False
            continue
        if signals:
            receive(_SIGNAL)
            signals = 0
        receive(byte)
    return bytes(out)
