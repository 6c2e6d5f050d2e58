"""A small renderer for the subset of Helm's templates (Go text/template plus Sprig) that the
chart in packaging/helm/sluice uses, since Debian has no helm binary. Anything outside the
subset is an error, not a guess, so a template that needs real Helm fails the test here.

Supported: {{ }} actions with {{- and -}} trimming, {{/* comments */}}; define / include,
if / else / end, range $k, $v := MAP (sorted keys, as Helm) and range LIST; values .Values.a.b,
.Release.Name, .Release.Namespace, .Chart.Name/Version/AppVersion, $ and $var, "strings" and
numbers; functions and pipes: quote, toYaml, nindent, indent, default, not, include.

  /usr/bin/python3 tests/packaging/helm_render.py packaging/helm/sluice [--set a.b=c] [--release NAME]
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


class TemplateError(Exception):
    pass


def tokenize(text: str, name: str) -> list[tuple[str, str]]:
    """[('text', s) | ('action', s)], with Go's trim markers applied."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if m.group(1):
            chunk = chunk.rstrip(" \t\r\n")
        tokens.append(("text", chunk))
        body = m.group(2)
        if not (body.startswith("/*") and body.endswith("*/")):
            tokens.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    chunk = text[pos:]
    tokens.append(("text", chunk.lstrip(" \t\r\n") if trim_next else chunk))
    if "{{" in "".join(t for k, t in tokens if k == "text"):
        raise TemplateError(f"{name}: an unterminated {{{{")
    return tokens


def parse(tokens, name: str, defines: dict):
    """A tree: lists of ('text', s), ('expr', s), ('if', cond, then, else), ('range', spec, body)."""
    def block(i, enders):
        out = []
        while i < len(tokens):
            kind, s = tokens[i]
            if kind == "text":
                out.append(("text", s))
                i += 1
                continue
            word = s.split(None, 1)[0] if s else ""
            if word in enders:
                return out, i
            if word == "if":
                then, i = block(i + 1, ("else", "end"))
                other = []
                if tokens[i][1] == "else":
                    other, i = block(i + 1, ("end",))
                out.append(("if", s[2:].strip(), then, other))
                i += 1
            elif word == "range":
                body, i = block(i + 1, ("end",))
                out.append(("range", s[5:].strip(), body))
                i += 1
            elif word == "define":
                body, i = block(i + 1, ("end",))
                defines[shlex.split(s)[1]] = body
                i += 1
            elif word in ("with", "template", "block", "tpl", "else", "end"):
                raise TemplateError(f"{name}: '{word}' is outside the supported subset")
            else:
                out.append(("expr", s))
                i += 1
        if enders:
            raise TemplateError(f"{name}: missing {{{{ end }}}}")
        return out, i
    tree, _ = block(0, ())
    return tree


def to_yaml(value) -> str:
    if value is None:
        return "null"
    if value == {} or value == []:
        return "{}" if value == {} else "[]"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def quote(value) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def truthy(value) -> bool:
    return bool(value) and value != "false"


class Renderer:
    def __init__(self, chart_dir: Path, values: dict, release: str, namespace: str):
        self.chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
        self.root = {
            "Values": values,
            "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
            "Chart": {"Name": self.chart["name"], "Version": self.chart["version"],
                      "AppVersion": self.chart.get("appVersion", "")},
        }
        self.defines: dict = {}
        self.templates = {}
        for path in sorted((chart_dir / "templates").iterdir()):
            tree = parse(tokenize(path.read_text(), path.name), path.name, self.defines)
            if not path.name.startswith("_"):
                self.templates[path.name] = tree

    # -- expressions ------------------------------------------------------------------------

    def value(self, word: str, dot, scope: dict):
        if word.startswith('"'):
            return word[1:-1].encode().decode("unicode_escape")
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word in ("true", "false"):
            return word == "true"
        if word == ".":
            return dot
        if word.startswith("$"):
            head, _, rest = word.partition(".")
            base = self.root if head == "$" else scope[head]
            return self.lookup(base, rest, word)
        if word.startswith("."):
            return self.lookup(dot, word[1:], word)
        raise TemplateError(f"cannot read '{word}'")

    @staticmethod
    def lookup(base, path: str, word: str):
        for part in filter(None, path.split(".")):
            if not isinstance(base, dict):
                raise TemplateError(f"{word}: not a mapping at {part}")
            base = base.get(part)
        return base

    def call(self, words: list[str], dot, scope, piped=None, has_piped=False):
        fn, args = words[0], words[1:]
        if fn not in FUNCTIONS and fn != "include":
            if len(words) != 1 or has_piped:
                raise TemplateError(f"unknown function '{fn}'")
            return self.value(fn, dot, scope)
        values = [self.arg(a, dot, scope) for a in args]
        if has_piped:
            values.append(piped)
        if fn == "include":
            name, context = values
            return self.render_tree(self.defines[name], context, {})
        return FUNCTIONS[fn](*values)

    def arg(self, word: str, dot, scope):
        if word.startswith("(") and word.endswith(")"):
            return self.pipeline(word[1:-1], dot, scope)
        return self.value(word, dot, scope)

    def pipeline(self, text: str, dot, scope):
        stages = [s.strip() for s in split_outside(text, "|")]
        result, has = None, False
        for stage in stages:
            result = self.call(split_words(stage), dot, scope, result, has)
            has = True
        return result

    # -- rendering --------------------------------------------------------------------------

    def render_tree(self, tree, dot, scope) -> str:
        out = []
        for node in tree:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "expr":
                value = self.pipeline(node[1], dot, scope)
                out.append("" if value is None else str(value).lower()
                           if isinstance(value, bool) else str(value))
            elif kind == "if":
                branch = node[2] if truthy(self.pipeline(node[1], dot, scope)) else node[3]
                out.append(self.render_tree(branch, dot, scope))
            elif kind == "range":
                m = re.fullmatch(r"(?:(\$\w+)\s*,\s*(\$\w+)\s*:=\s*)?(.+)", node[1])
                items = self.pipeline(m.group(3), dot, scope) or {}
                pairs = sorted(items.items()) if isinstance(items, dict) else list(enumerate(items))
                for key, item in pairs:
                    inner = dict(scope)
                    if m.group(1):
                        inner[m.group(1)], inner[m.group(2)] = key, item
                    out.append(self.render_tree(node[2], item, inner))
        return "".join(out)

    def render(self) -> dict[str, str]:
        return {name: self.render_tree(tree, self.root, {}) for name, tree in self.templates.items()}

    def documents(self) -> list[dict]:
        docs = []
        for name, text in self.render().items():
            for doc in yaml.safe_load_all(text):
                if doc:
                    docs.append(doc)
        return docs


def split_outside(text: str, sep: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, ""
    for c in text:
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        if c == sep and not quoted and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    return parts + [current]


def split_words(text: str) -> list[str]:
    return [w for w in split_outside(text.strip(), " ") if w]


FUNCTIONS = {
    "quote": quote,
    "toYaml": to_yaml,
    "nindent": lambda n, s: "\n" + "\n".join(" " * n + l if l else l for l in str(s).split("\n")),
    "indent": lambda n, s: "\n".join(" " * n + l if l else l for l in str(s).split("\n")),
    "default": lambda d, v=None: v if truthy(v) else d,
    "not": lambda v: not truthy(v),
}


def set_value(values: dict, assignment: str) -> None:
    """--set a.b=c, as Helm reads it for plain scalars."""
    path, _, raw = assignment.partition("=")
    value = yaml.safe_load(raw) if raw else ""
    *parents, last = path.split(".")
    for p in parents:
        values = values.setdefault(p, {})
    values[last] = value


def render_chart(chart_dir: Path, sets=(), release: str = "sluice",
                 namespace: str = "default") -> Renderer:
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for s in sets:
        set_value(values, s)
    return Renderer(chart_dir, values, release, namespace)


if __name__ == "__main__":
    args = sys.argv[1:]
    sets, release = [], "sluice"
    while len(args) > 1:
        if args[-2] == "--set":
            sets.append(args.pop())
            args.pop()
        elif args[-2] == "--release":
            release = args.pop()
            args.pop()
        else:
            break
    r = render_chart(Path(args[0]), sets, release)
    for name, text in r.render().items():
        if text.strip():
            print(f"---\n# Source: sluice/templates/{name}\n{text.strip()}")
