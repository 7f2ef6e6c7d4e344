#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The public API of libvio, read from the installed headers.

The headers under include/vio/ (and the generated vio/version.h) are the
single source of truth for what libvio.so exports: this script lists the
functions and extern objects they declare and writes

  --version-script FILE  a linker version script: those names global,
                         everything else local;
  --export-header FILE   a header the library's sources are compiled with
                         (-include): every public header under
                         "#pragma GCC visibility push(default)", so that the
                         rest can be built with -fvisibility=hidden;
  --depfile FILE         for ninja: the headers read and their directory
                         (a header added or removed reruns the script);
  --list                 the names, one a line, on stdout.

What counts as declared: a file-scope declaration that is not a typedef,
not static (static inline helpers are the caller's code) and not a
definition.  Attribute macros (all-caps names such as VIO_MUST_CHECK) and
__attribute__((...)) are ignored.  The parser cross-checks itself: any
vio_* name written as a call or declarator, vio_name(, that it could not
classify as declared, static, a typedef or a macro stops the build, so a
declaration style it does not understand cannot silently drop a symbol.
"""
import argparse
import os
import re
import sys

_LEX = re.compile(
    r'"(?:\\.|[^"\\\n])*"'  # string literal
    r"|'(?:\\.|[^'\\\n])*'"  # character literal
    r"|/\*.*?\*/"  # block comment
    r"|//[^\n]*"  # line comment
    r"|[^\"'/]+|/",  # anything else
    re.S)
_IDENT = re.compile(r"[A-Za-z_]\w*")


def _strip(text):
    """Comments gone (as a space), preprocessor lines gone."""
    out = []
    for m in _LEX.finditer(text):
        tok = m.group(0)
        if tok.startswith("/*") or tok.startswith("//"):
            # keep line structure: a directive after a comment still starts
            # its own line
            out.append(" " + "\n" * tok.count("\n"))
        elif tok[0] == '"' and tok != '"C"':
            out.append('""')  # a vio_name( in a string is not code
        else:
            out.append(tok)
    text = "".join(out).replace("\\\n", " ")
    lines = [ln for ln in text.split("\n") if not ln.lstrip().startswith("#")]
    return "\n".join(lines)


def _drop_balanced(text, opener):
    """Remove every `opener(...)` group (balanced parentheses)."""
    while True:
        i = text.find(opener)
        if i < 0:
            return text
        j = i + len(opener)
        while j < len(text) and text[j].isspace():
            j += 1
        if j >= len(text) or text[j] != "(":
            raise ValueError("%s without its parentheses" % opener)
        depth = 0
        for k in range(j, len(text)):
            if text[k] == "(":
                depth += 1
            elif text[k] == ")":
                depth -= 1
                if depth == 0:
                    break
        else:
            raise ValueError("unbalanced %s(...)" % opener)
        text = text[:i] + " " + text[k + 1:]


def _drop_braces(text):
    """Remove {...} groups (struct, enum and function bodies)."""
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _statements(text):
    """File-scope statements: (text, is_definition)."""
    stmts, cur, depth, body = [], [], 0, False
    for ch in text:
        if ch == "{":
            if depth == 0:
                prev = "".join(cur).rstrip()
                body = prev.endswith(")")
            depth += 1
            cur.append(ch)
        elif ch == "}":
            depth -= 1
            if depth < 0:  # the "}" closing extern "C"
                depth = 0
                continue
            cur.append(ch)
            if depth == 0 and body:
                stmts.append(("".join(cur), True))
                cur, body = [], False
        elif ch == ";" and depth == 0:
            stmts.append(("".join(cur), False))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        raise ValueError("text after the last declaration: %r" %
                         "".join(cur).strip()[:80])
    return stmts


def _split_top(text, sep):
    parts, cur, depth = [], [], 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _declarator_name(decl):
    """(name, is_function) of one declarator; name None if there is none."""
    decl = _split_top(decl, "=")[0]
    i = decl.find("(")
    m = re.compile(r"\(\s*\*\s*([A-Za-z_]\w*)\s*([()])").match(decl, max(i, 0))
    if i >= 0 and m:
        # (*name)(...): a pointer to a function, an object;
        # (*name(...))(...): a function returning one
        return m.group(1), m.group(2) == "("
    if i >= 0:
        names = _IDENT.findall(decl[:i])
        return (names[-1] if names else None), True
    decl = re.sub(r"\[[^\]]*\]", " ", decl)
    names = _IDENT.findall(decl)
    return (names[-1] if names else None), False


_KEYWORDS = {"struct", "union", "enum", "const", "volatile", "extern",
             "restrict", "inline", "signed", "unsigned", "void", "char",
             "short", "int", "long", "float", "double", "_Bool", "bool"}


def parse_header(text, path="<header>"):
    """(declared functions, declared objects, other vio_ names) of one
    header; other = static, inline, typedef names."""
    funcs, objs, other = set(), set(), set()
    clean = _strip(text)
    clean = re.sub(r'\bextern\s+"C"\s*\{', " ", clean)
    clean = _drop_balanced(clean, "__attribute__")
    clean = re.sub(r"\b[A-Z][A-Z0-9_]*\b(?!\s*\()", " ", clean)
    for stmt, is_def in _statements(clean):
        words = _IDENT.findall(stmt)
        if not words:
            continue
        flat = _drop_braces(stmt)
        head = _IDENT.findall(flat.split("(")[0])
        if is_def or words[0] == "typedef" or "static" in head:
            for part in _split_top(flat, ","):
                name, _ = _declarator_name(part)
                if name:
                    other.add(name)
            continue
        if not flat.strip():
            continue
        # struct/union/enum definitions and forward declarations
        toks = _IDENT.findall(flat)
        if (toks and toks[0] in ("struct", "union", "enum")
                and "(" not in flat and len(toks) <= 2):
            continue
        for part in _split_top(flat, ","):
            name, is_fn = _declarator_name(part)
            if name is None or name in _KEYWORDS:
                raise ValueError("%s: cannot read the declaration %r" %
                                 (path, " ".join(flat.split())[:120]))
            (funcs if is_fn else objs).add(name)
    # self-check: every vio_name( must be accounted for
    seen = set(re.findall(r"\b(vio_\w+)\s*\(", clean))
    lost = seen - funcs - objs - other
    if lost:
        raise ValueError("%s: cannot classify %s" %
                         (path, ", ".join(sorted(lost))))
    return funcs, objs, other


def public_headers(include_dir, extra=()):
    """The installed headers: every *.h of include_dir, plus extra files."""
    names = sorted(f for f in os.listdir(include_dir) if f.endswith(".h"))
    paths = [os.path.join(include_dir, f) for f in names]
    return paths + [p for p in extra if os.path.basename(p) not in names]


def public_api(headers):
    """{name: header} for every function and object the headers declare,
    and the set of names that are objects."""
    api, objs = {}, set()
    for path in headers:
        with open(path, encoding="utf-8") as f:
            fn, ob, _ = parse_header(f.read(), path)
        for name in fn | ob:
            api.setdefault(name, os.path.basename(path))
        objs |= ob
    return api, objs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--include", required=True,
                    help="the directory of the public headers (include/vio)")
    ap.add_argument("--extra", action="append", default=[],
                    help="a generated public header (vio/version.h)")
    ap.add_argument("--version-script")
    ap.add_argument("--export-header")
    ap.add_argument("--depfile")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)

    headers = public_headers(args.include, args.extra)
    try:
        api, _ = public_api(headers)
    except ValueError as e:
        print("vio_api.py: %s" % e, file=sys.stderr)
        return 1
    if args.version_script:
        with open(args.version_script, "w", encoding="utf-8") as f:
            f.write("/* generated by scripts/vio_api.py from the public "
                    "headers: do not edit */\n{\nglobal:\n")
            for name in sorted(api):
                f.write("\t%s;\n" % name)
            f.write("local:\n\t*;\n};\n")
    if args.export_header:
        with open(args.export_header, "w", encoding="utf-8") as f:
            f.write("/* generated by scripts/vio_api.py: the public "
                    "declarations have default\n * visibility; the "
                    "library is built with -fvisibility=hidden. */\n"
                    "#pragma GCC visibility push(default)\n")
            for path in headers:
                f.write("#include <vio/%s>\n" % os.path.basename(path))
            f.write("#pragma GCC visibility pop\n")
    if args.depfile:
        first = args.version_script or args.export_header
        deps = headers + [args.include]
        with open(args.depfile, "w", encoding="utf-8") as f:
            f.write("%s: %s\n" % (first.replace(" ", "\\ "), " ".join(
                d.replace(" ", "\\ ") for d in deps)))
    if args.list:
        for name in sorted(api):
            print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
