#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libvio.so exports exactly what the installed headers declare.

  test_symbols.py LIBVIO_SO INCLUDE_DIR [GENERATED_HEADER...]

Fails, naming each symbol, on
  - a defined dynamic symbol of LIBVIO_SO that no public header declares
    (an internal that leaked: a user could link against it);
  - a function or object a public header declares that LIBVIO_SO does not
    define (a user's program would fail to link);
  - a public header that the umbrella vio/vio.h does not include.
The headers are read by scripts/vio_api.py, the same reader that writes the
library's version script; the symbols by `nm -D --defined-only` ($NM).
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import vio_api  # noqa: E402

# defined by the linker in every shared object, not by vio's code
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def exported(lib):
    nm = os.environ.get("NM", "nm")
    try:
        out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                             capture_output=True, text=True).stdout
    except FileNotFoundError:
        print("SKIP: no %s (binutils)" % nm)
        sys.exit(77)
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[-2], parts[-1].split("@")[0]
        if kind == "A" or name in LINKER_SYMBOLS:
            continue  # version nodes, linker-defined
        syms[name] = kind
    return syms


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    lib, include_dir, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    headers = vio_api.public_headers(include_dir, extra)
    api, _ = vio_api.public_api(headers)
    syms = exported(lib)
    bad = 0

    leaked = sorted(set(syms) - set(api))
    if leaked:
        bad += 1
        print("FAIL: %d symbols exported by %s that no public header "
              "declares:" % (len(leaked), os.path.basename(lib)))
        for name in leaked:
            print("  %s %s" % (syms[name], name))
    missing = sorted(set(api) - set(syms))
    if missing:
        bad += 1
        print("FAIL: %d names declared in the public headers that %s does "
              "not define:" % (len(missing), os.path.basename(lib)))
        for name in missing:
            print("  %s (vio/%s)" % (name, api[name]))

    umbrella = os.path.join(include_dir, "vio.h")
    if os.path.exists(umbrella):
        with open(umbrella, encoding="utf-8") as f:
            included = set(re.findall(r"^\s*#\s*include\s*<vio/([\w.]+)>",
                                      f.read(), re.M))
        want = {os.path.basename(h) for h in headers} - {"vio.h"}
        absent = sorted(want - included)
        if absent:
            bad += 1
            print("FAIL: vio/vio.h does not include: %s" % ", ".join(absent))
    else:
        bad += 1
        print("FAIL: no umbrella header %s" % umbrella)

    print("%d headers, %d declared names, %d exported symbols" %
          (len(headers), len(api), len(syms)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
