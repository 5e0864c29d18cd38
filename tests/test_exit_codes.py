"""Every exit code lives in autoinpaint/errors.py: the README's table and the command's help say the same
codes, no module exits with a number of its own, and each code is what the command really returns."""
from __future__ import annotations

import re

from conftest import ROOT

from autoinpaint import errors
from autoinpaint.inpaint import Cancelled
from autoinpaint.server.errors import status_of


def readme_exit_codes() -> list[tuple[int, str]]:
    """The rows of README's "### Exit codes" table, in order: (code, meaning)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return [(int(code), meaning.strip()) for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)]


def test_readme_table_is_errors_table():
    rows = readme_exit_codes()
    assert [code for code, _ in rows] == list(errors.EXIT_CODES)
    for code, meaning in rows:
        assert meaning.startswith(errors.EXIT_CODES[code]), (code, meaning)


def test_help_names_every_code(cli):
    r = cli("--help")
    text = " ".join(r.out.split())
    assert r.code == errors.EXIT_OK
    for code, meaning in errors.EXIT_CODES.items():
        assert f"{code} {meaning.split(':')[0].split()[0]}" in text, (code, text)


def test_every_command_help_uses_the_table(cli):
    for command in ("remove", "replace", "fill", "mask", "background", "batch", "models", "serve"):
        r = cli(command, "--help")
        text = " ".join(r.out.split()).split("Exit codes: ", 1)[1]
        said = [int(code) for code in re.findall(r"(?:^|; )(\d+) ", text)]
        assert said and set(said) <= set(errors.EXIT_CODES), (command, text)
        for code in said:
            assert f"{code} {errors.EXIT_CODES[code]}" in text, (command, code, text)


def test_no_exit_code_outside_errors():
    """``sys.exit(N)``, ``exit_code = N`` and ``Exit(N)`` with a literal number only in errors.py."""
    literal = re.compile(r"(sys\.exit|exceptions\.Exit|ctx\.exit)\(\s*\d|exit_code\s*=\s*\d")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "autoinpaint").rglob("*.py") if p.name != "errors.py"
             or p.parent.name != "autoinpaint" for i, line in enumerate(p.read_text().splitlines(), 1)
             if literal.search(line)]
    assert found == []


def test_codes_reach_the_shell(cli, monkeypatch, tmp_path):
    import autoinpaint.cli as cli_module

    assert cli("remove", tmp_path / "missing.png", "--rect", "1,1,2,2").code == errors.EXIT_INPUT
    assert cli("--no-such-option").code == errors.EXIT_INPUT

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.main, "main", interrupted)
    r = cli("--help")
    assert r.code == errors.EXIT_INTERRUPTED == 130 and r.err.strip() == "Error: interrupted"
    assert Cancelled("stop").exit_code == errors.EXIT_INTERRUPTED
    assert status_of(errors.ModelMissingError("x")) == 503 and status_of(errors.InputError("x")) == 400
