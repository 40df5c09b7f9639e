"""The client reads none of the server's prose and writes no command line by hand: checked
on the source of chatroom/client (its AST), so a new module or a quick fix cannot slip.

**Prose.** A notice's ``text`` and an error's ``message`` are words for people, and the
server may change them; what a program must know travels as codes and facts (``code``,
``fact``, ``id``, ``ids``, ``seconds``...). The AST has no types, so *any* ``.text`` or
``.message`` attribute counts as prose, and so does whatever is made from it inside the
same function: a name assigned from it (``text = event.text``, also by ``:=`` or ``for``),
a slice, a method's result (``event.text.lower()``), a call given it (``name_key(text)``),
a concatenation, ``text or ""``. Prose must not be:

- given to a ``re`` function, or to a compiled pattern's ``search``, ``match``,
  ``fullmatch``, ``findall``, ``finditer``, ``sub``, ``subn`` or ``split``;
- the object of ``startswith``, ``endswith``, ``partition``, ``rpartition``,
  ``removeprefix``, ``removesuffix``, ``find``, ``rfind``, ``index``, ``rindex``,
  ``count``, or of ``split``/``rsplit`` with a separator;
- compared by ``==``, ``!=``, ``in`` or ``not in`` with a string constant: a literal, an
  f-string, a module-level name bound to one (``_LISTED``), or a collection of those;
- the subject of a ``match`` statement;
- given to a function of the client that does one of the above with that parameter
  (found by the same rules, run on every function's parameters, to a fixed point: so
  ``def seconds(text): re.search(..., text)`` called as ``seconds(event.text)`` is caught).

The functions allowed to match a ``.text`` (:data:`MATCHING_ALLOWED`), each given a
person's words, not the server's: ``render.mentions`` looks for our name in a chat
message, ``outgoing.plan_paste`` splits what the user pasted (Textual's ``Paste``
event has a ``.text`` too) at its line breaks, and ``session._as_request`` puts a typed line
starting with ``{`` in a request.

What it cannot see: prose carried through an object's attribute, a container or an effect
and read back elsewhere (``ShowTopic(event.text)`` then ``truncate(effect.text)`` is two
unrelated expressions), and calls made through ``getattr`` or variables. Those would need
types; the rule they would break is the same.

**Command lines.** Every command the client sends is formatted from the shared definition
(``c.format_line(c.Nick(name))``, chatroom/protocol/commands.py). So no string literal in
the client may start a command line: a literal (or an f-string's leading literal) that
starts with ``/`` and then anything but a second ``/`` (``"/who"``, ``f"/nick {name}"``,
``"/%s"``), nor ``"/"`` joined to something with ``+``. ``"/"`` and ``"//"`` alone are fine
(they test what the *user* typed). Docstrings are not code. The exceptions are the tables
and sentences that name commands for people, listed in :data:`NAMING_COMMANDS` by module
and name; each must still exist and still hold such a literal, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "chatroom" / "client"

PROSE_ATTRIBUTES = frozenset({"text", "message"})
REGEX_METHODS = frozenset({"search", "match", "fullmatch", "findall", "finditer", "sub", "subn"})
MATCHING_METHODS = frozenset(
    {
        "startswith",
        "endswith",
        "partition",
        "rpartition",
        "removeprefix",
        "removesuffix",
        "find",
        "rfind",
        "index",
        "rindex",
        "count",
    }
)
SPLITTING_METHODS = frozenset({"split", "rsplit"})  # matching only with a separator
# (module, function): allowed to match a .text (see the docstring for why).
MATCHING_ALLOWED = frozenset(
    {("render.py", "mentions"), ("outgoing.py", "plan_paste"), ("session.py", "_as_request")}
)
# (module, assigned name): tables and sentences that name commands for people.
NAMING_COMMANDS = frozenset(
    {
        ("outgoing.py", "FORMAT_REFUSED"),  # "/format is not available here: ..."
        ("completion.py", "COMPLETABLE_COMMANDS"),  # Tab's candidates: "/" + each command
        ("help.py", "COMMAND_ROWS"),  # /help's table of commands
        ("help.py", "OPERATOR_ROWS"),
    }
)


# --- prose ----------------------------------------------------------------------------------


@dataclass
class Scope:
    """One function (or a module's top level) being read: which names hold prose."""

    constants: set[str]  # module-level names bound to string constants
    matchers: dict[str, set[int | str]]  # function name -> the parameters it matches
    prose: set[str] = field(default_factory=set)
    found: list[tuple[int, str]] = field(default_factory=list)


def _is_prose(node: ast.AST | None, scope: Scope) -> bool:
    match node:
        case ast.Attribute(attr=attr) if attr in PROSE_ATTRIBUTES:
            return True
        case ast.Name(id=name):
            return name in scope.prose
        case ast.Subscript(value=value) | ast.Starred(value=value):
            return _is_prose(value, scope)
        case ast.Call(func=ast.Attribute(value=value)) if _is_prose(value, scope):
            return True  # a method's result: event.text.lower()
        case ast.Call(args=args, keywords=keywords):
            return any(_is_prose(a, scope) for a in [*args, *(k.value for k in keywords)])
        case ast.BinOp(left=left, right=right):
            return _is_prose(left, scope) or _is_prose(right, scope)
        case ast.BoolOp(values=values):
            return any(_is_prose(v, scope) for v in values)
        case ast.IfExp(body=body, orelse=orelse):
            return _is_prose(body, scope) or _is_prose(orelse, scope)
        case ast.JoinedStr(values=values):
            return any(
                isinstance(v, ast.FormattedValue) and _is_prose(v.value, scope) for v in values
            )
        case ast.NamedExpr(value=value):
            return _is_prose(value, scope)
    return False


def _is_constant(node: ast.AST, scope: Scope) -> bool:
    match node:
        case ast.Constant(value=str()) | ast.JoinedStr():
            return True
        case ast.Name(id=name):
            return name in scope.constants
        case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
            return any(_is_constant(e, scope) for e in elts)
    return False


def _targets(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _check_node(node: ast.AST, scope: Scope) -> None:
    """Record in ``scope.found`` what ``node`` itself does with prose (not its children)."""
    says = scope.found.append
    match node:
        case ast.Assign(targets=targets, value=value) if _is_prose(value, scope):
            scope.prose.update(name for target in targets for name in _targets(target))
        case ast.AnnAssign(target=target, value=value) if _is_prose(value, scope):
            scope.prose.update(_targets(target))
        case ast.NamedExpr(target=target, value=value) if _is_prose(value, scope):
            scope.prose.update(_targets(target))
        case (
            ast.For(target=target, iter=iterable) | ast.comprehension(target=target, iter=iterable)
        ) if _is_prose(iterable, scope):
            scope.prose.update(_targets(target))
        case ast.Call(func=ast.Attribute(value=ast.Name(id="re"), attr=attr), args=args) if any(
            _is_prose(a, scope) for a in args
        ):
            says((node.lineno, f"prose given to re.{attr}"))
        case ast.Call(func=ast.Attribute(value=value, attr=attr), args=args) if _is_prose(
            value, scope
        ) and (attr in MATCHING_METHODS or (attr in SPLITTING_METHODS and args)):
            says((node.lineno, f"prose matched with .{attr}()"))
        case ast.Call(func=ast.Attribute(value=value, attr=attr), args=args) if (
            attr in REGEX_METHODS
            and not _is_prose(value, scope)
            and any(_is_prose(a, scope) for a in args)
        ):
            says((node.lineno, f"prose given to a pattern's .{attr}()"))
        case ast.Call(func=func, args=args, keywords=keywords):
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            matched = scope.matchers.get(name or "", set())
            given = {i for i, a in enumerate(args) if _is_prose(a, scope)}
            given |= {k.arg for k in keywords if k.arg and _is_prose(k.value, scope)}
            if given & matched:
                says((node.lineno, f"prose given to {name}(), which matches it"))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            sides = [left, *comparators]
            for op, a, b in zip(ops, sides, sides[1:], strict=False):
                if not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                    continue
                if (_is_prose(a, scope) and _is_constant(b, scope)) or (
                    _is_prose(b, scope) and _is_constant(a, scope)
                ):
                    says((node.lineno, "prose compared with a string constant"))
        case ast.Match(subject=subject) if _is_prose(subject, scope):
            says((node.lineno, "prose is a match statement's subject"))


def _walk_in_order(node: ast.AST):
    """Every node under ``node`` in source order (so an assignment taints the names used
    after it), not entering nested functions: each is read in its own scope."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield child
        yield from _walk_in_order(child)


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = function.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def _module_constants(tree: ast.Module) -> set[str]:
    return {
        name
        for node in tree.body
        if isinstance(node, ast.Assign) and _is_constant(node.value, Scope(set(), {}))
        for target in node.targets
        for name in _targets(target)
    }


def _read(tree: ast.Module, matchers: dict[str, set[int | str]]) -> list[tuple[int, str]]:
    constants = _module_constants(tree)
    found: list[tuple[int, str]] = []
    lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda)]
    for body in [tree, *_functions(tree), *lambdas]:
        scope = Scope(constants, matchers)
        for node in _walk_in_order(body):
            _check_node(node, scope)
        found += scope.found
    return sorted(set(found))


def _matchers(trees: dict[str, ast.Module]) -> dict[str, set[int | str]]:
    """Which parameters each client function matches as prose (to a fixed point)."""
    matchers: dict[str, set[int | str]] = {}
    while True:
        before = {name: set(params) for name, params in matchers.items()}
        for module, tree in trees.items():
            constants = _module_constants(tree)
            for function in _functions(tree):
                if (module, function.name) in MATCHING_ALLOWED:
                    continue
                params = _params(function)
                offset = 1 if params[:1] in (["self"], ["cls"]) else 0
                for index, param in enumerate(params):
                    scope = Scope(constants, before, prose={param})
                    for node in _walk_in_order(function):
                        _check_node(node, scope)
                    if scope.found:
                        matchers.setdefault(function.name, set()).update({index - offset, param})
        if matchers == before:
            return matchers


def prose_matched(sources: dict[str, str]) -> list[str]:
    """``module:line: what`` for every place the sources match prose."""
    trees = {module: ast.parse(source) for module, source in sources.items()}
    matchers = _matchers(trees)
    return [
        f"{module}:{line}: {what}"
        for module, tree in trees.items()
        for line, what in _read(tree, matchers)
    ]


# --- command lines --------------------------------------------------------------------------


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _starts_command(node: ast.AST) -> bool:
    match node:
        case ast.Constant(value=str(text)):
            return text.startswith("/") and not text.startswith("//") and len(text) > 1
        case ast.JoinedStr(values=[ast.Constant(value=str(text)), *_]):
            return text.startswith("/") and not text.startswith("//")
        case ast.BinOp(op=ast.Add(), left=ast.Constant(value="/")):
            return True
    return False


def command_literals(sources: dict[str, str]) -> tuple[list[str], set[tuple[str, str]]]:
    """(``module:line: literal`` for every command line written by hand, the
    :data:`NAMING_COMMANDS` entries that were seen holding one)."""
    found: list[str] = []
    used: set[tuple[str, str]] = set()
    for module, source in sources.items():
        tree = ast.parse(source)
        docstrings = _docstrings(tree)
        exempt: dict[int, tuple[str, str]] = {}  # id of a node -> the table it is part of
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for name in (n for t in targets for n in _targets(t)):
                    if (module, name) in NAMING_COMMANDS and node.value is not None:
                        exempt.update({id(sub): (module, name) for sub in ast.walk(node.value)})
        parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in docstrings or id(node) in parts or not _starts_command(node):
                continue  # (an f-string's parts: the f-string is looked at as a whole)
            if id(node) in exempt:
                used.add(exempt[id(node)])
                continue
            found.append(f"{module}:{node.lineno}: {ast.unparse(node)[:60]}")
    return sorted(set(found)), used


def _client_sources() -> dict[str, str]:
    return {
        str(path.relative_to(CLIENT)): path.read_text(encoding="utf-8")
        for path in sorted(CLIENT.rglob("*.py"))
    }


# --- the client -------------------------------------------------------------------------------


def test_the_client_matches_no_server_prose():
    assert prose_matched(_client_sources()) == []


def test_the_client_writes_no_command_line_by_hand():
    found, used = command_literals(_client_sources())
    assert found == []
    assert used == NAMING_COMMANDS, f"stale exceptions: {NAMING_COMMANDS - used}"


# --- the checks catch what they are for (the client's own code before issue 17) ------------

PROSE_CAUGHT = {
    "a pattern on a name holding the text": """
_IGNORED = re.compile(r"you ignore (\\S+)")
_LISTED = "you ignore: "
def ignore_change(event):
    text = event.text
    if (found := _IGNORED.fullmatch(text)) and found[1]:
        return found[1]
""",
    "startswith on the text": """
def grants_operator(event):
    return event.code is INFO and event.text.startswith("you are now an operator")
""",
    "a module constant as the prefix": """
_LISTED = "you ignore: "
def listed(event):
    text = event.text
    return text.removeprefix(_LISTED).split(", ")
""",
    "equality with a literal": """
def nobody(event):
    return event.text == "you ignore nobody"
""",
    "in against the message": """
def taken(error):
    return "taken" in error.message.lower()
""",
    "a helper's regex, through its parameter": """
def idle_warning_seconds(text: str, default: float = 10.0) -> float:
    found = re.search(r"in (\\d+(?:\\.\\d+)?)\\s*s\\b", text)
    return float(found.group(1)) if found else default
class Screen:
    def _notice(self, event):
        self._start_countdown(idle_warning_seconds(event.text))
""",
    "a helper of a helper": """
def words(line):
    return line.partition(" ")[0]
def first_word(text):
    return words(text)
def read(event):
    return first_word(text=event.text)
""",
    "in a lambda": """
sort = sorted(notices, key=lambda event: event.text.startswith("you"))
""",
    "a match statement": """
def read(event):
    match event.text:
        case "pong":
            return True
""",
}

PROSE_FINE = """
def render(event, line):
    line.append(event.text, style="italic")
    if not event.text:
        return f"{event.by} set the topic: {event.text}"
    return Text(event.text)
def clean(text):
    return " ".join(text.split())
def typed(line):
    return line.startswith("/")  # the user's line, not the server's
def mentions(text, name):
    return re.search(name, text) is not None
def chat(event, name):
    return mentions(event.text, name)  # a chat message's words: allowed, in render.py
"""


@pytest.mark.parametrize("source", PROSE_CAUGHT.values(), ids=PROSE_CAUGHT.keys())
def test_the_prose_check_catches(source):
    assert prose_matched({"old.py": source}) != []


def test_the_prose_check_leaves_alone_showing_text_and_matching_typed_lines():
    assert prose_matched({"render.py": PROSE_FINE}) == []


@pytest.mark.parametrize(
    "source",
    [
        'send("/who")',
        'send(f"/nick {name}")',
        'line = "/" + word',
        'line = "/%s %s" % (word, arg)',
        'self.set_line(f"/msg {name} ")',
        'HELP = "/help shows this"',  # a table, but not one the list names
    ],
)
def test_the_command_check_catches(source):
    assert command_literals({"x.py": source})[0] != []


def test_the_command_check_leaves_alone_user_lines_docstrings_and_named_tables():
    source = '''
"""/who is a command; so is /nick."""
def plan(line):
    """/format is refused."""
    return line.startswith("/") and not line.startswith("//")
COMPLETABLE_COMMANDS = tuple(f"/{word}" for word in WORDS)
'''
    found = command_literals({"completion.py": source})
    assert found == ([], {("completion.py", "COMPLETABLE_COMMANDS")})
