"""Structure-aware mutations per format: header fields, counts, offsets, shapes, dtypes, nesting,
compression and pickle opcodes, plus byte-level damage and links, each drawn from a ``Draw``."""

from __future__ import annotations

import json
import pickletools
import struct
import zipfile
from collections.abc import Callable
from io import BytesIO

from .draw import Draw, chance, interesting
from .seeds import Case

DEEP = 5000  # nesting far beyond any limit a reader may set


# -- bytes -----------------------------------------------------------------------------------------
def damage(data: bytes, draw: Draw) -> bytes:
    """One byte-level change: a flipped bit, a boundary number written over 4 or 8 bytes, a cut, an
    insertion, a deletion or a duplicated stretch."""
    if not data:
        return bytes([draw.integer(0, 255)])
    at = draw.integer(0, len(data) - 1)
    kind = draw.integer(0, 5)
    if kind == 0:
        return data[:at] + bytes([data[at] ^ (1 << draw.integer(0, 7))]) + data[at + 1 :]
    if kind == 1:
        width = draw.choice((4, 8))
        value = interesting(draw) % (1 << (8 * width))
        return data[:at] + value.to_bytes(width, "little") + data[at + width :]
    if kind == 2:
        return data[:at]
    if kind == 3:
        return data[:at] + bytes(draw.integer(0, 255) for _ in range(draw.integer(1, 8))) + data[at:]
    if kind == 4:
        return data[:at] + data[at + draw.integer(1, 64) :]
    end = min(len(data), at + draw.integer(1, 256))
    return data[:end] + data[at:end] + data[end:]


def odd_json_value(draw: Draw) -> object:
    return draw.choice(
        [
            interesting(draw),
            -interesting(draw, 0),
            1.5,
            "7",
            None,
            True,
            [],
            {"a": 1},
            [[1, [2]]],
            "\udc80",
            "F32",
        ]
    )


# -- JSON (safetensors headers, shard indexes) ----------------------------------------------------
def _deepen(text: bytes, draw: Draw) -> bytes:
    depth = draw.choice((10, 60, 70, DEEP))
    return text.replace(b'"__DEEP__"', b"[" * depth + b"]" * depth, 1)


def _mutate_header(header: dict, draw: Draw) -> None:
    names = [k for k in header if k != "__metadata__"]
    name = draw.choice(names) if names else "x"
    entry = header.setdefault(name, {})
    kind = draw.integer(0, 6)
    if kind == 0 and isinstance(entry, dict):
        shape = list(entry.get("shape", [1]))
        if shape and chance(draw, 2):
            shape[draw.integer(0, len(shape) - 1)] = interesting(draw) * draw.choice((1, -1))
        else:
            shape.append(interesting(draw))
        entry["shape"] = odd_json_value(draw) if chance(draw, 4) else shape
    elif kind == 1 and isinstance(entry, dict):
        entry["dtype"] = draw.choice(["F32", "BF16", "F8_E4M3", "I64", "BOOL", "U4", "bogus", 5, None])
    elif kind == 2 and isinstance(entry, dict):
        offsets = list(entry.get("data_offsets", [0, 0]))
        offsets[draw.integer(0, 1)] = interesting(draw)
        entry["data_offsets"] = offsets
    elif kind == 3:
        header[draw.choice([name, "__metadata__", "extra"])] = "__DEEP__"
    elif kind == 4:
        header["__metadata__"] = draw.choice([{"k": odd_json_value(draw)}, odd_json_value(draw)])
    elif kind == 5:
        header[name + draw.choice(["\udc80", "\x00", "\u202e", ".." + "/x"])] = header.pop(name)
    else:
        header[name] = odd_json_value(draw)


def mutate_safetensors_bytes(data: bytes, draw: Draw) -> bytes:
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
    except (struct.error, ValueError):
        return damage(data, draw)
    _mutate_header(header, draw)
    text = _deepen(json.dumps(header).encode(), draw)
    declared = len(text) if not chance(draw, 8) else interesting(draw, 0) % 2**64
    return struct.pack("<Q", declared) + text + data[8 + length :]


def mutate_index(data: bytes, draw: Draw) -> bytes:
    index = json.loads(data)
    weight_map = index["weight_map"]
    kind = draw.integer(0, 3)
    if kind == 0:
        name = draw.choice(sorted(weight_map))
        weight_map[name] = draw.choice(
            ["../outside.safetensors", "/etc/passwd", "missing.safetensors", "", 5, ["a"]]
        )
    elif kind == 1:
        index[draw.choice(["weight_map", "metadata"])] = "__DEEP__"
    elif kind == 2:
        weight_map[draw.choice(sorted(weight_map))] = odd_json_value(draw)
    else:
        index = odd_json_value(draw)
    return _deepen(json.dumps(index).encode(), draw)


# -- pickles ---------------------------------------------------------------------------------------
def _int_opcode(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def pickle_gadget(draw: Draw, canary: str, memo_size: int) -> bytes:
    """A stack-neutral opcode sequence that a careless unpickler would act on."""
    text = "touch " + canary
    utf8 = text.encode()
    gadgets = [
        b"cos\nsystem\nX" + struct.pack("<I", len(utf8)) + utf8 + b"\x85R0",  # run a command
        b"cbuiltins\nexec\nX"
        + struct.pack("<I", len(f"open({canary!r},'w')"))
        + f"open({canary!r},'w')".encode()
        + b"\x85R0",
        b"ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x03\x00\x00\x00I32sb0",  # poison a stand-in
        b"ctorch\nfloat32\n}X\x04\x00\x00\x00nameX\x03\x00\x00\x00I32sb0",
        b"ctorch._utils\n_rebuild_tensor_v2\n}X\x08\x00\x00\x00__code__K\x01sb0",
        b"]r" + struct.pack("<I", interesting(draw, 0, 2**32 - 1)) + b"0",  # a huge memo index
        b"\x8e" + struct.pack("<Q", interesting(draw, 0)) + b"ab0",  # BINBYTES8
        b"\x96" + struct.pack("<Q", interesting(draw, 0)) + b"ab0",  # BYTEARRAY8
        b"\x8d" + struct.pack("<Q", interesting(draw, 0)) + b"ab0",  # BINUNICODE8
        b"\x95" + struct.pack("<Q", interesting(draw, 0)),  # FRAME
        b"]" * DEEP + b"a" * (DEEP - 1) + b"0",  # nesting
        b"]\x94"
        + (b"h" + bytes([memo_size]) if memo_size < 256 else b"j" + struct.pack("<I", memo_size))
        + b"a0",
    ]
    return draw.choice(gadgets)


def mutate_pickle(data: bytes, draw: Draw, canary: str) -> bytes:
    try:
        ops = list(pickletools.genops(data))
    except ValueError:
        return damage(data, draw)
    pos = ops[draw.integer(1, len(ops) - 1)][2]
    kind = draw.integer(0, 3)
    if kind == 0:  # a number in the pickle (storage size, shape, stride, offset) set to a boundary
        numbers = [
            i
            for i, (op, a, _) in enumerate(ops)
            if isinstance(a, int) and "INT" in op.name or op.name == "LONG1"
        ]
        if numbers:
            pos = ops[draw.choice(numbers)][2]
            end = next((p for _, _, p in ops if p > pos), len(data))
            value = interesting(draw) * draw.choice((1, -1))
            return data[:pos] + _int_opcode(value) + data[end:]
    if kind == 1:
        memo = sum(
            1 for op, _, p in ops if p < pos and op.name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE")
        )
        return data[:pos] + pickle_gadget(draw, canary, memo) + data[pos:]
    if kind == 2:  # another opcode in this place
        return data[:pos] + bytes([draw.integer(0, 255)]) + data[pos + 1 :]
    return damage(data, draw)


# -- zip archives (torch zips, npz) ----------------------------------------------------------------
def _members(data: bytes) -> dict[str, tuple[bytes, int]] | None:
    """The members of a zip, or None when an earlier mutation broke it."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return {info.filename: (archive.read(info), info.compress_type) for info in archive.infolist()}
    except Exception:  # noqa: BLE001 - zipfile raises many kinds for a damaged archive
        return None


def _zip(members: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (data, method) in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buffer.getvalue()


def mutate_central_directory(data: bytes, draw: Draw) -> bytes:
    """A field of one central-directory record: flags (encryption), method, sizes, header offset."""
    starts = [i for i in range(len(data) - 46) if data[i : i + 4] == b"PK\x01\x02"]
    if not starts:
        return damage(data, draw)
    start = draw.choice(starts)
    field, width = draw.choice([(8, 2), (10, 2), (20, 4), (24, 4), (42, 4)])
    value = (1 if field == 8 else interesting(draw, 0)) % (1 << (8 * width))
    if field == 8:
        value |= int.from_bytes(data[start + 8 : start + 10], "little")
    at = start + field
    return data[:at] + value.to_bytes(width, "little") + data[at + width :]


def mutate_torch_zip(data: bytes, draw: Draw, canary: str) -> bytes:
    members = _members(data)
    if not members:
        return damage(data, draw)
    pkl = next((name for name in members if name.endswith("data.pkl")), None)
    kind = draw.integer(0, 4)
    if kind <= 1 and pkl:
        members[pkl] = (mutate_pickle(members[pkl][0], draw, canary), members[pkl][1])
    elif kind == 2:
        name = draw.choice(sorted(members))
        members[name] = (members[name][0] + b"\0" * draw.choice((0, 1 << 20, 40 << 20)), zipfile.ZIP_DEFLATED)
    elif kind == 3:
        name = draw.choice(sorted(members))
        if name.endswith("byteorder"):
            members[name] = (draw.choice([b"big", b"", b"x" * 100]), members[name][1])
        elif chance(draw, 2):
            del members[name]
        else:
            members[name] = (damage(members[name][0], draw), members[name][1])
    else:
        return mutate_central_directory(data, draw)
    return _zip(members)


def mutate_torch_legacy(data: bytes, draw: Draw, canary: str) -> bytes:
    """The legacy stream is five pickles then raw storages: mutate one pickle, keep the rest."""
    bounds, position = [], 0
    try:
        for _ in range(5):
            ops = list(pickletools.genops(BytesIO(data[position:])))
            end = position + ops[-1][2] + 1
            bounds.append((position, end))
            position = end
    except (ValueError, IndexError):
        return damage(data, draw)
    start, end = draw.choice(bounds if chance(draw, 4) else bounds[3:])
    return data[:start] + mutate_pickle(data[start:end], draw, canary) + data[end:]


def mutate_npz(data: bytes, draw: Draw) -> bytes:
    import numpy as np

    members = _members(data)
    if not members:
        return damage(data, draw)
    name = draw.choice(sorted(members))
    raw, method = members[name]
    kind = draw.integer(0, 3)
    if kind == 0:
        header = {
            "descr": draw.choice(["<f4", ">f8", "<U4", "|S3", "|V8", "O", "<c8", "|b1", "<f2", "bogus"]),
            "fortran_order": draw.choice([False, True, 1]),
            "shape": draw.choice([(interesting(draw),), (-1, -4), (interesting(draw), 0), (2, 3), ()]),
        }
        buffer = BytesIO()
        try:
            np.lib.format.write_array_header_1_0(buffer, header)
        except (ValueError, TypeError):
            buffer = BytesIO(b"\x93NUMPY\x01\x00" + struct.pack("<H", 30) + repr(header).encode()[:30])
        members[name] = (buffer.getvalue() + raw[128:], method)
    elif kind == 1:
        members[name] = (raw + b"\0" * draw.choice((0, 40 << 20)), zipfile.ZIP_DEFLATED)
    elif kind == 2:
        members[name] = (damage(raw, draw), method)
    else:
        return mutate_central_directory(data, draw)
    return _zip(members)


# -- GGUF ------------------------------------------------------------------------------------------
def _text(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(raw)) + raw


def gguf_gadget(draw: Draw) -> tuple[str, bytes]:
    """A key/value record: nested arrays, counts past the file, odd types, an odd architecture."""
    depth = draw.choice((2, 63, 65, DEEP))
    nested = struct.pack("<I", 4) + struct.pack("<I", 7)
    for _ in range(depth):
        nested = struct.pack("<IIQ", 9, *struct.unpack("<I", nested[:4]), 1) + nested[4:]
    return draw.choice(
        [
            ("test.deep", nested),
            ("test.count", struct.pack("<IIQ", 9, draw.choice((0, 8, 9)), interesting(draw, 0))),
            ("test.big", struct.pack("<IIQ", 9, 0, 1 << 20) + bytes(1 << 20)),
            ("general.architecture", struct.pack("<IIQ", 9, 8, 1) + _text("llama")),
            ("general.alignment", struct.pack("<II", 4, interesting(draw, 0, 2**32 - 1))),
            ("test.type", struct.pack("<I", interesting(draw, 0, 2**32 - 1))),
            ("test.string", struct.pack("<IQ", 8, interesting(draw, 0))),
            ("test.\udc80", struct.pack("<II", 4, 1)),
        ]
    )


def mutate_gguf(data: bytes, draw: Draw) -> bytes:
    kind = draw.integer(0, 3)
    if kind == 0:  # a count or size in the header
        at = draw.choice([8, 16] + [i for i in range(24, min(len(data), 4096), 4)])
        width = draw.choice((4, 8))
        return (
            data[:at]
            + (interesting(draw, 0) % (1 << (8 * width))).to_bytes(width, "little")
            + data[at + width :]
        )
    if kind == 1:
        key, record = gguf_gadget(draw)
        n_kv = struct.unpack("<Q", data[16:24])[0] + 1
        return data[:16] + struct.pack("<Q", n_kv) + _text(key) + record + data[24:]
    if kind == 2:  # a tensor info: rank, a dimension, the type or the offset
        at = data.find(draw.choice([b"token_embd.weight", b"blk.0.attn_q.weight", b"blk.0.ffn_up.weight"]))
        if at > 0:
            name_end = data.index(b"weight", at) + 6
            field = draw.choice([(0, 4), (4, 8), (12, 8), (20, 4), (24, 8)])
            value = interesting(draw, 0) % (1 << (8 * field[1]))
            pos = name_end + field[0]
            return data[:pos] + value.to_bytes(field[1], "little") + data[pos + field[1] :]
    return damage(data, draw)


# -- ONNX ------------------------------------------------------------------------------------------
def mutate_onnx(files: dict[str, bytes], draw: Draw) -> dict[str, bytes]:
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(files["model.onnx"])
    except Exception:  # noqa: BLE001 - a previous damage may have broken it
        return {**files, "model.onnx": damage(files["model.onnx"], draw)}
    graph = model.graph
    kind = draw.integer(0, 5)
    tensors = list(graph.initializer)
    if kind == 0 and tensors:
        tensor = draw.choice(tensors)
        dims = list(tensor.dims) + ([interesting(draw, -(2**63), 2**63 - 1)] if chance(draw, 2) else [])
        if dims:
            dims[draw.integer(0, len(dims) - 1)] = interesting(draw, -(2**63), 2**63 - 1)
        del tensor.dims[:]
        tensor.dims.extend(dims)
    elif kind == 1 and tensors:
        draw.choice(tensors).data_type = draw.integer(0, 26)
    elif kind == 2:
        external = next((t for t in tensors if t.external_data), None)
        if external is not None:
            entry = draw.choice(list(external.external_data))
            entry.value = draw.choice(
                [
                    "",
                    "../outside.data",
                    "/etc/passwd",
                    "a\0b",
                    "loop",
                    "missing.data",
                    "sub/../weights.data",
                    "-5",
                    "abc",
                    str(interesting(draw, 0)),
                ]
            )
            if chance(draw, 3):
                external.external_data.remove(entry)
    elif kind == 3 and graph.sparse_initializer:
        sparse = graph.sparse_initializer[0]
        del sparse.dims[:]
        sparse.dims.extend([draw.choice((2, 60000, 2**31, 2**40)), draw.choice((4, 60000, -1))])
    elif kind == 4 and graph.node:
        node = graph.node[0]
        del node.attribute[:]
        from onnx import helper

        node.attribute.append(helper.make_attribute("axis", draw.choice([1, 0, -1, 99, "1", [1, 0], 1.5])))
        node.attribute.append(helper.make_attribute("block_size", draw.choice([4, 0, 10**12, 2**62, -3])))
    else:
        name = draw.choice(sorted(files))
        return {**files, name: damage(files[name], draw)}
    return {**files, "model.onnx": model.SerializeToString()}


# -- links and dispatch ----------------------------------------------------------------------------
def mutate_links(case: Case, draw: Draw) -> Case:
    """A file of the model replaced by a link: inside the folder, a loop, or out of it."""
    name = draw.choice(sorted(case.files))
    target = draw.choice(["../outside/" + name, "/etc/passwd", name + ".loop", "loop", "."])
    links = {**case.links, name: target}
    if target.endswith("loop"):
        links[target] = target
    files = {n: d for n, d in case.files.items() if n != name}
    return Case(files, links, escapes=target.startswith(("..", "/")), outside={name: case.files[name]})


Mutator = Callable[[Case, Draw, str], Case]


def _per_file(file_mutators: dict[str, Callable[[bytes, Draw], bytes]]) -> Mutator:
    def mutate(case: Case, draw: Draw, canary: str) -> Case:
        name = draw.choice(sorted(case.files))
        mutate_file = next((m for suffix, m in file_mutators.items() if name.endswith(suffix)), None)
        use_structure = mutate_file is not None and draw.integer(0, 3) > 0
        data = mutate_file(case.files[name], draw) if use_structure else damage(case.files[name], draw)
        return Case({**case.files, name: data}, dict(case.links), case.escapes, dict(case.outside))

    return mutate


def _torch(mutate_bytes: Callable[[bytes, Draw, str], bytes]) -> Mutator:
    def mutate(case: Case, draw: Draw, canary: str) -> Case:
        files = dict(case.files)
        name = "pytorch_model.bin" if "pytorch_model.bin" in files else draw.choice(sorted(files))
        files[name] = (
            mutate_bytes(files[name], draw, canary) if draw.integer(0, 3) else damage(files[name], draw)
        )
        return Case(files, dict(case.links), case.escapes, dict(case.outside))

    return mutate


def _onnx(case: Case, draw: Draw, canary: str) -> Case:
    return Case(mutate_onnx(case.files, draw), dict(case.links), case.escapes, dict(case.outside))


MUTATORS: dict[str, Mutator] = {
    "safetensors": _per_file({".safetensors": mutate_safetensors_bytes}),
    "sharded": _per_file({".safetensors": mutate_safetensors_bytes, ".index.json": mutate_index}),
    "torch-zip": _torch(mutate_torch_zip),
    "torch-legacy": _torch(mutate_torch_legacy),
    "gguf": _per_file({".gguf": mutate_gguf}),
    "onnx": _onnx,
    "npz": _per_file({".npz": mutate_npz}),
}


def mutate(fmt: str, seed: Case, draw: Draw, canary: str) -> Case:
    """One to three mutations of ``seed``; now and then a link as well."""
    case = seed
    for _ in range(draw.integer(1, 3)):
        try:
            case = MUTATORS[fmt](case, draw, canary)
        except Exception:  # noqa: BLE001 - an earlier mutation broke the structure this one parses
            name = draw.choice(sorted(case.files))
            case = Case(
                {**case.files, name: damage(case.files[name], draw)}, case.links, case.escapes, case.outside
            )
    return mutate_links(case, draw) if chance(draw, 12) else case
