"""The one sequence every kind of host goes through once it is prepared: write, probe, open.

A kind of host (a ticket host, a password host, ...) only says what is its own: how it is
prepared, how it is reached (the HostEntry), which host keys to pin, and what must happen once it
is written before rdev's key gets in (a password host installs the key). Everything after that is
here, the same for all: the config, known_hosts and registry written together, the editor's
settings, the old master connection closed when the host is now reached differently, the real
ssh tried, and the editor opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from client_side import inputs
from client_side.editors import editor, settings as editor_settings
from client_side.kinds import time_left
from client_side.local import registry, store
from client_side.local.locking import changing_files, setting_up
from client_side.local.registry import HostEntry
from client_side.ssh import bridge, keys, probe


@dataclass(frozen=True)
class Prepared:
    """A host ready to be written: what a kind's `prepare` returns."""

    entry: HostEntry
    host_keys: tuple[str, ...] | None  # the keys to pin; None keeps what is pinned
    # Runs once the host is written and before the probe, e.g. a password login that installs rdev's key. When it
    # logged in with rdev's key itself, it answers with the remote home, and that login stands for the probe.
    admit: Callable[[], str | None] | None = None
    done: str = "ssh works"  # how the success line starts
    failures: probe.Failures = ()  # the kind's own reading of ssh's errors, before ssh's own
    # Undoes what preparing started when the host cannot be set up after all (a job it submitted).
    on_failure: Callable[[], None] | None = None
    # The host fetches the editor's server before the editor opens (a ticket's runtime did it already).
    prefetch: bool = False
    # Runs once ssh works, with the host as written (a lab container's notices before its end are started there).
    after: Callable[[HostEntry], None] | None = None


@dataclass(frozen=True)
class Opening:
    """What the user asked of the editor, checked before anything is written."""

    open: bool
    editor: editor.Editor | None  # the one to open (None: none found, the command is printed instead)
    editor_name: str | None  # --editor as given, remembered for the host
    folder: str | None  # --path, else the host's own folder


def opening(*, open_editor: bool, editor_name: str | None, path: str | None, remembered: HostEntry | None) -> Opening:
    """Check --editor and --path first: a wrong one must stop rdev before it writes anything."""
    folder = inputs.folder(path) if path else None
    # A named editor is checked even with --no-open: it is remembered for the next connect.
    chosen = editor.choose(editor_name, remembered.editor if remembered else None) if open_editor or editor_name else None
    return Opening(open=open_editor, editor=chosen, editor_name=editor_name, folder=folder)


def establish(prepared: Prepared, how: Opening, say: Callable[[str], None]) -> None:
    """Write the prepared host, close a master that now answers for the wrong server, let rdev's key
    in, check ssh, and open the editor."""
    try:
        _establish(prepared, how, say)
    except BaseException:
        if prepared.on_failure:
            prepared.on_failure()
        raise


def _establish(prepared: Prepared, how: Opening, say: Callable[[str], None]) -> None:
    entry = prepared.entry
    if how.editor_name:
        entry = replace(entry, editor=editor.remembered_value(how.editor_name))
    keys.public_key()
    with setting_up(entry.name):
        if store.reaches_differently(entry, prepared.host_keys):
            # The master to the old endpoint (and its ProxyCommand) would otherwise answer for the new one.
            probe.close_master(entry.name)
        store.put(entry, prepared.host_keys)
        with changing_files():
            editor_settings.add(entry.name, tunnel=entry.tunnel, kinds=editor.settings_kinds(how.editor), say=say)
        admitted = prepared.admit() if prepared.admit else None

        def login(reached: HostEntry) -> str:
            if reached is entry:
                return probe.check(reached.name, prepared.failures)
            store.put(reached)  # now through the bridge, kept only if it gets in
            try:
                return probe.check(reached.name, prepared.failures)
            except BaseException:
                store.put(entry)
                raise

        if admitted is None:
            entry, home = bridge.through(entry, login, say)
        else:
            home = admitted
    say(f"{entry.name}: {prepared.done} ({entry.user}@{entry.host}:{entry.port}). Try: ssh {entry.name}")
    written = registry.load().get(entry.name) or entry  # as admit left it: a new reservation starts a new lifetime
    ending = time_left.sentence(written)
    if ending:
        say(ending)
    if prepared.after:
        prepared.after(written)
    if how.open and prepared.prefetch:
        from client_side.editors import server as editor_server  # only a connect that opens the editor fetches
        from client_side.ssh import shipped

        fetched = editor_server.fetch_on(entry.name, how.editor, shipped.python_word(entry.python))
        if fetched:
            say(fetched)
    if how.open:
        say(editor.open_folder(entry.name, folder=_folder(how.folder or entry.workdir, home), editor=how.editor))


def _folder(folder: str, home: str) -> str:
    """The folder with `~` made the remote home: the editor would open `~` as the folder `/~`."""
    if not home or not (folder == "~" or folder.startswith("~/")):
        return folder
    return home if folder == "~" else home.rstrip("/") + folder[1:]
