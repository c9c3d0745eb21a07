"""The field encoding of tests/dmarc/dmarc_runner's lines: '\\', '"' and
octets outside 0x21-0x7e as \\xHH, "" for the empty string, "-" for
absent (None)."""


def esc(value):
    if value is None:
        return "-"
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not value:
        return '""'
    return "".join(chr(b) if 0x20 < b < 0x7F and b not in (0x5C, 0x22) else "\\x%02x" % b
                   for b in value)


def unesc(field):
    if field == '""':
        return ""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i] == "\\":
            out.append(int(field[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(ord(field[i]))
            i += 1
    return out.decode("utf-8")
