"""Output safety: every file or store dse writes goes through here.

- :func:`atomic` / :func:`atomic_write` (:func:`write_text`, :func:`write_netcdf`): write under a temporary name in the same directory and rename into place
  when complete; the temporary is removed on any failure, Ctrl-C included (a ``kill -9`` leaves it behind, under a
  ``.tmp`` name that :func:`dse.open_results` refuses and the next write to the same path removes).
- :func:`check_owned`: never replace or delete anything dse did not write. NetCDF and Zarr outputs carry the
  attribute :data:`MARK_ATTR` (and ``dse_version``), in the HDF5 root or the Zarr group's metadata.
  Anything else at an output path is refused in one line naming ``output.overwrite``.
- :func:`lock`: one writer per output path (an ``flock`` on a hidden lock file beside it).
- :func:`check_space`: free space and the file-size limit (``ulimit -f``) checked before writing.
- :func:`os_error`: ENOSPC / EFBIG / EDQUOT / EACCES while writing become one-line errors.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from pathlib import Path

from dse.errors import DseError

MARK_ATTR = "dse_output"
MARKER_FILE = ".dse-output"
_FULL = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "file too large (ulimit -f?)",
         errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied", errno.EROFS: "read-only file system"}


# ------------------------------------------------------------------------------------------------ ownership
def is_dse_output(path: Path) -> bool:
    """True for a NetCDF file or Zarr store (finished or partial) that dse wrote."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        if (path / MARKER_FILE).is_file():
            return True
        for meta in ("zarr.json", ".zattrs"):
            try:
                attrs = json.loads((path / meta).read_text())
            except (OSError, ValueError):
                continue
            attrs = attrs.get("attributes", attrs) if isinstance(attrs, dict) else {}
            if isinstance(attrs, dict) and (MARK_ATTR in attrs or "dse_version" in attrs):
                return True
        return False
    if path.is_file():
        try:
            import h5py

            with h5py.File(path, "r") as f:
                return MARK_ATTR in f.attrs or "dse_version" in f.attrs
        except Exception:  # noqa: BLE001 - not HDF5 (or unreadable): not ours
            return False
    return False


def check_owned(path: Path, key: str = "output.path", overwrite: bool = False,
                flag: str = "output.overwrite=true") -> None:
    """Refuse (one line) when ``path`` or its partial / old siblings exist and dse did not write them."""
    path = Path(path)
    for p in (path, path.with_name(path.name + ".partial"), path.with_name(path.name + ".old")):
        if (p.exists() or p.is_symlink()) and not overwrite and not is_dse_output(p):
            what = "a directory" if p.is_dir() else "a file"
            raise DseError(f"{key}={str(path)!r}: {str(p)!r} is {what} dse did not write; refusing to replace it "
                           f"(move it away, or set {flag})")


def check_target(path: Path, fmt: str, key: str = "output.path", overwrite: bool = False,
                 flag: str = "output.overwrite=true") -> None:
    """Everything about an output path that can be checked before any work: directory, kind, ownership."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise DseError(f"{key}={str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DseError(f"{key}={str(path)!r}: directory {str(parent)!r} is not writable")
    if fmt == "netcdf" and path.is_dir():
        raise DseError(f"{key}={str(path)!r} is a directory; a NetCDF result is a file")
    if fmt == "zarr" and path.exists() and not path.is_dir():
        raise DseError(f"{key}={str(path)!r} is a file; a Zarr result is a directory")
    check_owned(path, key, overwrite, flag)


# ------------------------------------------------------------------------------------------------ space
def check_space(path: Path, nbytes: float, largest_file: float | None = None, key: str = "output.path") -> None:
    """Refuse before writing when ``nbytes`` do not fit the free space, or one file exceeds ``ulimit -f``."""
    import resource

    parent = Path(path).parent
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if nbytes > free:
        raise DseError(f"{key}={str(path)!r}: about {nbytes / 1e9:.3g} GB to write, only {free / 1e9:.3g} GB free "
                       f"in {str(parent)!r}")
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    biggest = nbytes if largest_file is None else largest_file
    if soft != resource.RLIM_INFINITY and biggest > soft:
        raise DseError(f"{key}={str(path)!r}: a file of about {biggest / 1e6:.3g} MB exceeds the file-size limit "
                       f"(ulimit -f) of {soft / 1e6:.3g} MB")


def os_error(err: BaseException, path: Path, key: str = "output.path") -> DseError:
    """A one-line error for a failed write (the causes that are the user's to fix are named)."""
    code = getattr(err, "errno", None)
    text = str(err)
    m = re.search(r"errno = (\d+)", text)          # HDF5 wraps the OS error in its own message
    if code is None and m:
        code = int(m.group(1))
    reason = _FULL.get(code) or (text.strip().splitlines() or [type(err).__name__])[0][:160]
    return DseError(f"{key}={str(path)!r}: writing failed ({reason}); nothing was written under that name")


# ------------------------------------------------------------------------------------------------ atomic
def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale(path: Path) -> None:
    """Temporaries of ``path`` left by processes that no longer run (killed with SIGKILL, say)."""
    path = Path(path)
    for p in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        m = re.fullmatch(rf"\.{re.escape(path.name)}\.(\d+)\.tmp", p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            _remove(p)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def replace(src: Path, dst: Path) -> None:
    """Move a finished file or directory into place (an older result there is removed once the new one is in)."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir() and not dst.is_symlink():
        old = dst.with_name(dst.name + ".old")
        if old.exists() or old.is_symlink():
            _remove(old)
        os.replace(dst, old)
        os.replace(src, dst)
        _remove(old)
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def atomic(path: Path, key: str = "output.path"):
    """``with atomic(path) as tmp:`` write ``tmp`` (a file or a directory); it is renamed to ``path`` when the
    block completes, and removed when it fails or is interrupted. Full disks become one-line errors."""
    path = Path(path)
    remove_stale(path)
    tmp = _tmp_name(path)
    _remove(tmp)
    try:
        yield tmp
        replace(tmp, path)
    except OSError as err:
        raise os_error(err, path, key) from None
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def atomic_write(path: Path, write, key: str = "output.path") -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place (see :func:`atomic`)."""
    with atomic(path, key) as tmp:
        write(tmp)
        if tmp.is_file():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    return Path(path)


def write_text(path: Path, text: str, key: str = "output.path") -> Path:
    """A text file, written atomically."""
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text), key)


def write_netcdf(ds, path: Path, key: str = "output.path") -> Path:
    """A dataset as NetCDF-4 (h5netcdf), written atomically."""
    return atomic_write(Path(path), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"), key)


# ------------------------------------------------------------------------------------------------ lock
@contextlib.contextmanager
def lock(path: Path, key: str = "output.path"):
    """Hold an exclusive lock on ``path`` for the duration: a second writer is refused in one line."""
    import fcntl

    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise os_error(err, lock_path, key) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DseError(f"{key}={str(path)!r}: another dse process is writing it now; wait for it to finish "
                           "or choose another path") from None
        try:   # the lock file may have been removed by the previous holder between our open and flock
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)
