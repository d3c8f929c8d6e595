#!/usr/bin/python3
"""config-man.py TEMPLATE CONFIG_MD OUT: writes pushpipe.json(5) from its hand-written template
(man/pushpipe.json.5.in), replacing the line @KEYS@ with docs/config.md's key tables turned
into man(7) text, so the page and the document never disagree. ASCII output only."""
import re, sys

template, config_md, out = sys.argv[1:4]
ESC = {"±": "\\(+-", "–": "\\(en", "—": "\\(em", "×": "\\(mu", "…": "...", "→": "\\(->", "≤": "\\(<=", "≥": "\\(>=",
       "§": "\\(sc", "≈": "\\(~~", "’": "'", "“": "\\(lq", "”": "\\(rq"}


def inline(s):
    s = s.replace("\\", "\\e")
    s = re.sub(r" \((?:[a-z-]+\.md )?§[0-9.]+\)", "", s)  # section references of the design notes
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)  # links: their text
    s = re.sub(r"`([^`]*)`", lambda m: "\\fB" + m.group(1) + "\\fR", s)
    s = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", s)
    for k, v in ESC.items():
        s = s.replace(k, v)
    s = s.replace('"', "\\(dq")
    if s[:1] in (".", "'"):
        s = "\\&" + s
    bad = sorted({c for c in s if ord(c) > 127})
    if bad:
        sys.exit(f"config-man.py: no troff escape for {bad} in: {s}")
    return s


out_lines, cur = [], None
for line in open(config_md, encoding="utf-8").read().splitlines():
    m = re.match(r"## `([a-z_ ]+)`", line)
    if m:
        cur = m.group(1)
        out_lines.append(".SS " + ("Top level" if cur == "top level" else cur))
        continue
    if cur is None or line.startswith("#"):
        continue
    m = re.match(r"\| `([a-z0-9_]+)` \| ([^|]*) \| ([^|]*) \| (.*) \|$", line)
    if m:
        key, typ, dflt, meaning = (x.strip() for x in m.groups())
        out_lines += [".TP", f'.BR {key} " ({inline(typ)}, default {inline(dflt)})"', inline(meaning) if meaning else "As above."]
    elif line.strip() and not line.startswith("|"):
        out_lines.append(inline(line))
    elif not line.strip() and out_lines and out_lines[-1] not in (".PP",) and not out_lines[-1].startswith(".SS"):
        out_lines.append(".PP")
text = open(template, encoding="utf-8").read()
if "@KEYS@" not in text:
    sys.exit("config-man.py: the template has no @KEYS@ line")
with open(out, "w", encoding="ascii") as f:
    f.write(text.replace("@KEYS@", "\n".join(out_lines)))
