"""Atomic writes: a reader never sees a half-written output, a killed run leaves the old file
or directory (or none) in place. And the check every entry point makes of its output locations
before any work starts (check_output_dir, check_output_file).

Every write goes to the temporary sibling `<path>.tmp-<pid>` and is renamed into place; a
directory being replaced is first moved aside as `<path>.old-<pid>`. The pid in both names lets
a later run tell the leftovers of a dead process from those of a live one: once a write to
`path` has put it in place, what dead processes left of `path` is removed
(remove_dead_leftovers)."""
import contextlib
import hashlib
import os
import re
import shutil

from utils.errors import UsageError


def _tmp_name(path):
    return "%s.tmp-%d" % (path, os.getpid())


def remove_quietly(path):
    """Remove a file, or a directory with everything in it; errors are ignored."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass


def process_alive(pid):
    """Is process `pid` running (or a zombie)? A process of another user counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_leftovers(path):
    """Remove `<path>.tmp-<pid>` and `<path>.old-<pid>` of processes no longer running (a
    write killed, by kill -9, before it could clean up). Called once a write has put `path`
    in place: a leftover is then never the only copy of `path` (a process killed between
    atomic_dir's two renames leaves no `path`, and utils.resume brings a checkpoint back from
    its leftovers). Those of live processes, writes under way, are left alone."""
    parent, base = os.path.split(os.path.normpath(os.fspath(path)))
    pattern = re.compile(re.escape(base) + r"\.(?:tmp|old)-(\d+)")
    try:
        names = os.listdir(parent or os.curdir)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(
                int(match.group(1))):
            remove_quietly(os.path.join(parent, name))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling path to write; it replaces `path` only if the block succeeds."""
    tmp = _tmp_name(path)
    parent = os.path.dirname(path)
    if parent:  # a missing folder is made, as the --output_dir of every entry point is
        os.makedirs(parent, exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    remove_dead_leftovers(path)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


@contextlib.contextmanager
def atomic_dir(dest, keep=lambda name: False):
    """Yield a new empty directory `<dest>.tmp-<pid>` to fill; if the block succeeds it becomes
    `dest`, otherwise it is removed and `dest` is left as it was.

    An existing `dest` is swapped out in two renames: `dest` -> `<dest>.old-<pid>`, then the
    new directory -> `dest`, then the old one is removed. Files of the old `dest` that
    `keep(name)` accepts (vocab.txt, notes) are copied into the new one first, unless it has
    them. A process killed between the two renames leaves no `dest` and both copies whole, so
    a later run can bring one back (utils.resume.latest_checkpoint does)."""
    dest = os.path.normpath(os.fspath(dest))
    tmp = _tmp_name(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    remove_quietly(tmp)
    os.mkdir(tmp)
    try:
        yield tmp
        if os.path.isdir(dest):
            for name in os.listdir(dest):
                src, dst = os.path.join(dest, name), os.path.join(tmp, name)
                if keep(name) and os.path.isfile(src) and not os.path.exists(dst):
                    shutil.copy2(src, dst)
            old = "%s.old-%d" % (dest, os.getpid())
            remove_quietly(old)
            os.rename(dest, old)
            try:
                os.rename(tmp, dest)
            except BaseException:
                os.rename(old, dest)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    finally:
        if os.path.lexists(tmp):   # what a failed write left
            remove_quietly(tmp)
    remove_dead_leftovers(dest)


def _nearest_existing(path):
    """`path` itself if it exists, else its nearest ancestor that does ('.' for a bare
    relative name); a dangling symbolic link counts as existing."""
    path = os.path.normpath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path) or os.curdir
        if parent == path:
            break
        path = parent
    return path


def _check_folder(flag, path, folder):
    """`folder` (the target directory `path`, or the folder the file `path` goes in) exists as
    a writable directory or can be made: its nearest existing ancestor is a writable
    directory. Creates nothing."""
    existing = _nearest_existing(folder)
    target = existing == os.path.normpath(path)
    if not os.path.isdir(existing):
        if target:
            raise UsageError("%s: %s is %s, expected a directory" % (
                flag, path, "a file" if os.path.isfile(existing) else "not a directory"))
        raise UsageError("%s: cannot create %s: %s is %s" % (
            flag, path, existing,
            "a file, not a directory" if os.path.isfile(existing) else "not a directory"))
    if not os.access(existing, os.W_OK | os.X_OK):
        if target:
            raise UsageError("%s: %s is not writable" % (flag, path))
        raise UsageError("%s: cannot %s %s: %s is not writable"
                         % (flag, "write" if os.path.lexists(path) else "create", path,
                            existing))


def check_output_dir(flag, path):
    """Before any work: the directory `path` (given by `flag`) exists and is writable, or can
    be created (its nearest existing ancestor is a writable directory). Raises a one-line
    UsageError naming the flag and the path; creates nothing."""
    if not path:
        raise UsageError("%s: an empty path" % flag)
    _check_folder(flag, path, path)


def check_output_file(flag, path):
    """Before any work: the file `path` (given by `flag`) can be written: it is not a directory
    (nor anything but a regular file), is writable if it exists, and its folder exists and is
    writable or can be created (files are written through a temporary sibling and renamed).
    Raises a one-line UsageError naming the flag and the path; creates nothing."""
    if not path:
        raise UsageError("%s: an empty path" % flag)
    if os.path.isdir(path):
        raise UsageError("%s: %s is a directory, expected a file" % (flag, path))
    if path.endswith(("/", os.sep)):
        raise UsageError("%s: %s names a directory (it ends in /), expected a file"
                         % (flag, path))
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise UsageError("%s: %s is not a regular file" % (flag, path))
        if not os.access(path, os.W_OK):
            raise UsageError("%s: %s is not writable" % (flag, path))
    _check_folder(flag, path, os.path.dirname(os.path.normpath(path)) or os.curdir)


def check_output_prefix(flag, prefix):
    """Before any work: files named `<prefix><suffix>` (--test_save) can be written: the
    folder of `prefix` exists and is writable or can be created. Creates nothing."""
    if not prefix:
        raise UsageError("%s: an empty path" % flag)
    _check_folder(flag, prefix, os.path.dirname(prefix) or os.curdir)


def sha256(path):
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
