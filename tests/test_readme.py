"""The README against the code it describes.

* Configuration: every `DAYTONA_*` variable the Rust code reads, and every variable the two
  configuration modules read (`daemon/src/config.rs`, `computer-use/src/config.rs`), is a row of
  a table in the README's "Configuration" section; and every variable named in those rows is
  read by the code. The tables' first column is what counts, not a mention anywhere else.
* Quick start: the two commands (start the daemon, run the tests) stand verbatim in one fenced
  block of the "Quick start" section, and the test command is the one `.ci/run` runs.

Reads are found in the non-test Rust sources of every crate and in the build scripts:
`std::env::var("X")`, `var_os("X")`, the same through a `const X: &str = "..."`,
`option_env!("X")`/`env!("X")`, `EnvFilter::try_from_env("X")`, and the configuration modules'
readers (`get("X")`, `bool_var(get, "X", …)`, `non_empty("X")`, …). As a net under those
patterns, every string literal in that source that is exactly a `DAYTONA_*` name must be one of
the reads or one of the few names in `NOT_READ`, so a variable read some new way fails here
instead of going unnoticed.

Reads files only: needs no daemon, binary or SDK.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# The commands a newcomer runs; CI runs the second through .ci/run.
START_COMMAND = "DAYTONA_SANDBOX_ID=local cargo run --release -p daytona-daemon"
TEST_COMMAND = "tests/run"

CONFIG_MODULES = [REPO / "daemon/src/config.rs", REPO / "computer-use/src/config.rs"]

# `DAYTONA_*` literals in the code that are not environment variables read by it.
NOT_READ = {
    # The `source` of every error envelope the clients parse.
    "DAYTONA_DAEMON": "error envelope source",
    # Put by the agent into the environment of each desktop process and looked for in
    # /proc/<pid>/environ; the binaries never read it from their own environment.
    "DAYTONA_DESKTOP_TAG": "marker on desktop processes",
    # The query parameter browsers and the SDKs send the token in (the auth layer reads it from
    # the URL, never from the environment).
    "DAYTONA_SANDBOX_AUTH_KEY": "token query parameter",
}

NAME = r"[A-Z][A-Z0-9_]*"

# A raw string, a string, or a char literal ('x', '\n', '\u{1F600}'; lifetimes are not).
LITERAL = re.compile(r'r(#*)".*?"\1|"(?:\\.|[^"\\])*"|\'(?:\\(?:u\{[0-9a-fA-F]+\}|.)|[^\'\\])\'', re.S)


def strip_comments(source: str) -> str:
    """Rust source without comments, string and char literals kept as they are."""
    token = re.compile(LITERAL.pattern + r"|//[^\n]*|/\*.*?\*/", re.S)
    return token.sub(lambda m: " " if m.group(0).startswith("/") else m.group(0), source)


TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*([;{])")


def block_end(source: str, brace: int) -> int:
    """Index just past the `}` closing the `{` at `brace` (braces in literals not counted)."""
    depth, i = 0, brace
    while i < len(source):
        lit = LITERAL.match(source, i)
        if lit:
            i = lit.end()
            continue
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        i += 1
        if depth == 0:
            return i
    return len(source)


# An item compiled for tests only, with a body: `#[cfg(test)] mod tests {`, `… impl X {`, `… fn f() {`.
TEST_ITEM = re.compile(
    r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?(?:async\s+)?(?:mod|impl|fn|struct|enum|trait)\b[^;{]*\{"
)


def strip_tests(source: str) -> str:
    """Source without the items compiled for tests only (their attribute through their `}`)."""
    while m := TEST_ITEM.search(source):
        source = source[: m.start()] + source[block_end(source, m.end() - 1) :]
    return source


def cfg_test_files(path: Path, source: str) -> list[Path]:
    """Files of the modules `path` declares under `#[cfg(test)]` (`#[cfg(test)] mod tests;`)."""
    base = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
    out = []
    for name, kind in TEST_MOD.findall(source):
        if kind == ";":
            out += [base / f"{name}.rs", base / name]
    return out


def rust_sources() -> dict[Path, str]:
    """Every crate's non-test sources and build script, comments and test modules removed."""
    files = []
    for manifest in sorted(REPO.glob("*/Cargo.toml")):
        crate = manifest.parent
        files += sorted((crate / "src").rglob("*.rs"))
        if (crate / "build.rs").is_file():
            files.append(crate / "build.rs")
    texts = {f: strip_comments(f.read_text()) for f in files}
    # Files (and folders) of modules declared under #[cfg(test)]: `mod tests;`, `mod testing;`.
    test_only = [p for f, text in texts.items() for p in cfg_test_files(f, text)]
    out = {}
    for f, text in texts.items():
        if any(f == p or p in f.parents for p in test_only):
            continue
        out[f] = strip_tests(text)
    assert out, "no Rust sources found"
    return out


def string_constants(sources: dict[Path, str]) -> dict[str, str]:
    """`const NAME: &str = "value";` anywhere, by name."""
    consts: dict[str, str] = {}
    for text in sources.values():
        pattern = rf'\bconst\s+({NAME})\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"'
        for name, value in re.findall(pattern, text):
            consts[name] = value
    return consts


def reads_in(text: str, consts: dict[str, str], config_module: bool) -> set[str]:
    """Environment variable names `text` reads."""
    names = set(re.findall(rf'\benv::var(?:_os)?\(\s*"({NAME})"\s*\)', text))
    names |= set(re.findall(rf'\b(?:option_env|env)!\(\s*"({NAME})"\s*\)', text))
    names |= set(re.findall(rf'\b(?:try_)?from_env\(\s*"({NAME})"\s*\)', text))
    # A map lookup with a literal name: the process environment snapshot or the child
    # environment (`env.get("HOME")`, config.rs's `get("DAYTONA_SANDBOX_ID")`).
    names |= set(re.findall(rf'\bget\(\s*"({NAME})"\s*\)', text))
    for const in re.findall(rf'\benv::var(?:_os)?\(\s*(?:\w+::)*({NAME})\s*\)', text):
        assert const in consts, f"env::var({const}): no string constant {const} found"
        names.add(consts[const])
    if config_module:
        # The readers of the configuration modules take the name as their first string argument.
        names |= set(
            re.findall(
                rf'\b(?:int_at_least_one|bool_var|duration_var|non_empty|port)\(\s*(?:get\s*,\s*)?"({NAME})"',
                text,
            )
        )
    return names


def code_reads() -> tuple[set[str], set[str]]:
    """(every variable read anywhere, the variables the configuration modules read)."""
    sources = rust_sources()
    consts = string_constants(sources)
    everywhere: set[str] = set()
    config: set[str] = set()
    for path, text in sources.items():
        found = reads_in(text, consts, path in CONFIG_MODULES)
        everywhere |= found
        if path in CONFIG_MODULES:
            config |= found
    # The net: a DAYTONA_* literal that is neither a known read nor explained above.
    literals = set()
    for text in sources.values():
        literals |= set(re.findall(r'"(DAYTONA_[A-Z0-9_]+)"', text))
    unexplained = literals - everywhere - set(NOT_READ)
    assert not unexplained, (
        f"DAYTONA_* names in the code that this test cannot see being read: {sorted(unexplained)}; "
        "teach reads_in() the way they are read, or add them to NOT_READ saying why"
    )
    return everywhere, config


def section(markdown: str, title: str) -> str:
    """The body of the `## title` section, up to the next `## ` heading."""
    m = re.search(rf"(?m)^## {re.escape(title)}\s*$", markdown)
    assert m, f"the README has no '## {title}' section"
    rest = markdown[m.end() :]
    nxt = re.search(r"(?m)^## ", rest)
    return rest[: nxt.start()] if nxt else rest


def table_variables(text: str) -> list[str]:
    """The variable names in the first column of every table row in `text` (header and
    separator rows skipped). Names must be written out in full, each in backticks."""
    lines = text.splitlines()
    names = []
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        if re.match(r"^\|[\s:|-]+\|\s*$", line):
            continue  # separator
        if i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|\s*$", lines[i + 1]):
            continue  # header
        first = line.split("|")[1]
        cell = re.findall(r"`([^`]+)`", first)
        assert cell, f"a configuration row without a variable in backticks: {line}"
        for name in cell:
            assert re.fullmatch(NAME, name), (
                f"{name!r} in the configuration table: write each variable's full name in backticks"
            )
            names.append(name)
    return names


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


@pytest.fixture(scope="module")
def documented(readme) -> set[str]:
    names = table_variables(section(readme, "Configuration"))
    assert len(names) >= 20, f"too few variables in the Configuration tables: {names}"
    return set(names)


@pytest.fixture(scope="module")
def reads() -> tuple[set[str], set[str]]:
    return code_reads()


def test_the_scan_finds_the_variables_we_know_of(reads):
    # Guards the scanner itself: if a pattern broke, the comparisons below could pass vacuously.
    everywhere, config = reads
    for known in ("DAYTONA_SANDBOX_ID", "DAYTONA_DAEMON_LOG_COMPRESS", "DAYTONA_LSP_SERVERS", "LOG_LEVEL"):
        assert known in config, known
    for known in ("DAYTONA_COMPUTER_USE_BIN", "DAYTONA_COMPUTER_USE_DESKTOP_TAG", "VNC_PORT", "VERSION"):
        assert known in everywhere, known
    assert len({n for n in everywhere if n.startswith("DAYTONA_")}) >= 30


def test_every_variable_the_code_reads_is_in_the_configuration_table(reads, documented):
    everywhere, config = reads
    required = {n for n in everywhere if n.startswith("DAYTONA_")} | config
    missing = sorted(required - documented)
    assert not missing, f"read by the code but not in the README's Configuration tables: {missing}"


def test_every_variable_in_the_configuration_table_is_read_by_the_code(reads, documented):
    everywhere, _ = reads
    stale = sorted(documented - everywhere)
    assert not stale, f"in the README's Configuration tables but read nowhere in the code: {stale}"


def fenced_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"(?ms)^```[a-z]*\n(.*?)^```", text)]


def test_quick_start_has_the_two_commands_verbatim_in_one_block(readme):
    quick = section(readme, "Quick start")
    blocks = [[line.strip() for line in b] for b in fenced_blocks(quick)]
    together = [b for b in blocks if START_COMMAND in b and TEST_COMMAND in b]
    assert together, (
        f"the Quick start section needs one fenced block with the lines {START_COMMAND!r} and "
        f"{TEST_COMMAND!r}"
    )


def test_ci_runs_the_readmes_test_command():
    lines = [line.split("#", 1)[0].strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    commands = [re.sub(r"^exec\s+", "", line) for line in lines if line]
    assert commands and commands[-1] == TEST_COMMAND, f".ci/run ends with {commands[-1:]}, not {TEST_COMMAND}"
    assert (REPO / TEST_COMMAND).stat().st_mode & 0o111, f"{TEST_COMMAND} is not executable"


def test_the_start_command_names_what_exists():
    manifest = (REPO / "daemon/Cargo.toml").read_text()
    package = re.search(r'(?m)^name\s*=\s*"([^"]+)"', manifest).group(1)
    assert f"-p {package}" in START_COMMAND
    # DAYTONA_SANDBOX_ID has no default (the daemon exits 2 without it): the command sets it.
    config = (REPO / "daemon/src/config.rs").read_text()
    assert re.search(r'err\("DAYTONA_SANDBOX_ID", "is required"\)', config)
    assert START_COMMAND.startswith("DAYTONA_SANDBOX_ID=")


def test_the_readme_states_the_rust_version_cargo_requires(readme):
    version = re.search(r'(?m)^rust-version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text()).group(1)
    assert f"Rust {version} or newer" in section(readme, "Quick start")
