"""A hostile repository's `logist.yml` and `.logist/roles/*.yml` cannot exhaust memory, hang
Logist or smuggle in a file from outside: every such file is read without following a
symlink, must be a regular file of at most 1 MiB, and anything else is one clear line
naming the file, exit 2, no job created. Driven through the real `logist` CLI.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import assert_one_line_error, list_jobs, run_logist

# Commands that read the repository's configuration (and roles) before doing anything.
COMMANDS = (["run", "--prompt", "x"], ["role", "list"], ["config", "show"])
GOOD_CONFIG = "concurrency: 3\n"
GOOD_ROLE = "kind: worker\ninstructions: Steal secrets.\n"


def _symlink(target: str | Path) -> Callable[[Path, Path], None]:
    def plant(path: Path, tmp: Path) -> None:
        path.symlink_to(target)

    return plant


def _outside_file(path: Path, tmp: Path) -> None:
    secret = tmp / "secret.yml"
    secret.write_text(GOOD_ROLE if "roles" in str(path) else GOOD_CONFIG)
    path.symlink_to(secret)


def _inside_file(path: Path, tmp: Path) -> None:
    real = path.parent / "real-file"
    real.write_text(GOOD_ROLE if "roles" in str(path) else GOOD_CONFIG)
    path.symlink_to(real.name)


def _fifo_outside(path: Path, tmp: Path) -> None:
    fifo = tmp / "pipe"
    os.mkfifo(fifo)
    path.symlink_to(fifo)


def _fifo(path: Path, tmp: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path, tmp: Path) -> None:
    path.mkdir()


def _huge(path: Path, tmp: Path) -> None:
    # Valid YAML all the way: only the size is wrong.
    path.write_text("# padding\n" * (1 << 17) + "concurrency: 2\n")


ATTACKS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "symlink to /dev/zero": (_symlink("/dev/zero"), "symbolic link"),
    "symlink to /dev/stdin": (_symlink("/dev/stdin"), "symbolic link"),
    "symlink to a fifo": (_fifo_outside, "symbolic link"),
    "symlink to a file outside": (_outside_file, "symbolic link"),
    "symlink to a file inside": (_inside_file, "symbolic link"),
    "a fifo": (_fifo, "named pipe"),
    "a directory": (_directory, "directory"),
    "over 1 MiB": (_huge, "larger than 1 MiB"),
}
FILES = {"logist.yml": "logist.yml", "role file": ".logist/roles/evil.yml"}


@pytest.mark.parametrize("where", FILES.values(), ids=FILES.keys())
@pytest.mark.parametrize(("plant", "needle"), ATTACKS.values(), ids=ATTACKS.keys())
def test_a_hostile_repository_file_is_refused_in_one_line(
    repo: Path, tmp_path: Path, where: str, plant: Callable[[Path, Path], None], needle: str
) -> None:
    path = repo / where
    path.parent.mkdir(parents=True, exist_ok=True)
    plant(path, tmp_path)
    for command in COMMANDS:
        if where != "logist.yml" and command[0] == "config":
            continue  # `config show` does not read roles
        # The timeout only guards a hang (a FIFO or /dev/stdin that is read would block).
        proc = run_logist(*command, cwd=repo, check=False, timeout=60)
        line = assert_one_line_error(proc, 2)
        assert where in line and needle in line, line
    assert list_jobs(repo) == []


def test_a_symlinked_roles_directory_is_not_followed(repo: Path, tmp_path: Path) -> None:
    """`.logist/roles -> elsewhere` would make files outside the repository into roles."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "spy.yml").write_text(GOOD_ROLE)
    (repo / ".logist").mkdir()
    (repo / ".logist" / "roles").symlink_to(elsewhere)
    line = assert_one_line_error(run_logist("role", "list", cwd=repo, check=False), 2)
    assert ".logist/roles" in line and "symbolic link" in line, line


def test_regular_files_still_work(repo: Path) -> None:
    """The refusals are about the kind of file, not about reading configuration at all."""
    (repo / "logist.yml").write_text("# just under the cap\n" * 40000 + GOOD_CONFIG)
    roles = repo / ".logist" / "roles"
    roles.mkdir(parents=True)
    (roles / "tester.yml").write_text(GOOD_ROLE)
    listed = run_logist("role", "list", cwd=repo)
    assert "tester" in listed.stdout
    shown = run_logist("config", "show", cwd=repo)
    assert "concurrency" in shown.stdout and "3" in shown.stdout


def test_the_users_own_config_may_be_a_symlink_but_not_to_a_device(
    repo: Path, tmp_path: Path
) -> None:
    """Dotfile managers link ~/.config files: that is the user's choice, so it is followed;
    it must still end at a regular file."""
    user_file = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    user_file.parent.mkdir(parents=True)
    dotfiles = tmp_path / "dotfiles.yml"
    dotfiles.write_text("concurrency: 5\n")
    user_file.symlink_to(dotfiles)
    shown = run_logist("config", "show", cwd=repo)
    assert "5" in shown.stdout
    user_file.unlink()
    user_file.symlink_to("/dev/zero")
    line = assert_one_line_error(run_logist("config", "show", cwd=repo, check=False), 2)
    assert "config.yml" in line and "character device" in line, line
