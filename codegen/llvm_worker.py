"""A compile worker: reads LLVM IR texts on stdin, writes their object code on stdout.

Run as a module (`python -m flowjit.codegen.llvm_worker`); `flowjit` and
`flowjit.codegen` load their parts lazily, so it imports only llvmlite and
`llvm_target` and starts in a fraction of the time the whole package takes. Each request
is a header `<IIQ` (opt level, feature-string bytes, text bytes), the LLVM feature string
to build for and the UTF-8 text; each reply is `<BQ` (0 ok / 1 failed, bytes) and the
object code (or the error). It exits when stdin closes (its parent is gone).
"""
import struct
import sys
import traceback

from flowjit.codegen import llvm_target

REQUEST = struct.Struct("<IIQ")
REPLY = struct.Struct("<BQ")


def _read(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def main() -> None:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    llvm_target.initialize()
    while True:
        try:
            opt_level, features_size, size = REQUEST.unpack(_read(source, REQUEST.size))
            features = _read(source, features_size).decode()
            text = _read(source, size).decode()
        except EOFError:
            return
        try:
            status, payload = 0, llvm_target.object_code(text, opt_level, features=features)
        except Exception:
            status, payload = 1, traceback.format_exc().encode()
        sink.write(REPLY.pack(status, len(payload)) + payload)
        sink.flush()


if __name__ == "__main__":
    main()
