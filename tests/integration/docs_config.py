"""Keeps docs/config.md true: every key of common/config.c's table must have a row in the
section of the same name, and every row must name a real key."""
import os, re, sys
from lib.harness import TOP, Checks

t = Checks()
src = open(os.path.join(TOP, "common", "config.c")).read()
keys = re.findall(r'\{(NULL|"[a-z_]+"), "([a-z0-9_]+)", C_', src)
# Rows a macro writes for each section it is given (the keys every provider sender shares):
# #define NAME(sec, ...) with rows {sec, "key", C_...} and other such macros, then NAME("section", ...).
macros = {}
for name, body in re.findall(r'#define ([A-Z_]+)\(sec,[^)]*\)((?:[^\n]*\\\n)*[^\n]*)', src):
    macros[name] = (re.findall(r'\{sec, "([a-z0-9_]+)", C_', body), re.findall(r'\b([A-Z_]+)\(sec,', body))
def macro_keys(name):
    own, nested = macros[name]
    return own + [k for n in nested for k in macro_keys(n)]
for name, sec in re.findall(r'^\s*([A-Z_]+)\(("[a-z_]+"),', src, re.M):
    if name in macros:
        keys += [(sec, k) for k in macro_keys(name)]
doc = open(os.path.join(TOP, "docs", "config.md")).read()
sections, cur = {}, None
for line in doc.splitlines():
    m = re.match(r"## `([a-z_ ]+)`", line)
    if m:
        cur = "top level" if m.group(1) == "top level" else m.group(1)
        sections[cur] = set()
    m = re.match(r"\| `([a-z0-9_]+)` \|", line)
    if m and cur:
        sections[cur].add(m.group(1))
code = {}
for sec, name in keys:
    code.setdefault("top level" if sec == "NULL" else sec.strip('"'), set()).add(name)
t.check(len(keys) > 60, f"{len(keys)} keys read from common/config.c")
for sec, names in sorted(code.items()):
    missing = sorted(names - sections.get(sec, set()))
    t.check(not missing, f"[{sec}] every key documented" + (f": missing {missing}" if missing else ""))
    extra = sorted(sections.get(sec, set()) - names)
    t.check(not extra, f"[{sec}] no documented key that the code does not accept" + (f": {extra}" if extra else ""))
sys.exit(t.done())
