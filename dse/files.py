"""Output safety: every file or store dse writes goes through here.

- :func:`atomic` / :func:`atomic_write` (:func:`write_text`, :func:`write_netcdf`): write under a temporary name in the same directory and rename into place
  when complete; the temporary is removed on any failure, Ctrl-C included (a ``kill -9`` leaves it behind, under a
  ``.tmp`` name that :func:`dse.open_results` refuses and the next write to the same path removes).
- :func:`check_owned`: the one ownership rule, applied to every file dse writes (datasets, figures, CSV tables,
  search outputs, traces) by :func:`atomic` itself and, before any work, by each command for every path it will
  write (:func:`check_free`). A path may be replaced only when dse wrote what is there now: a NetCDF or Zarr output
  carries the attribute :data:`MARK_ATTR` (and ``dse_version``), in the HDF5 root or the Zarr group's metadata;
  any other file dse writes is recorded, when it is renamed into place, in the directory's :data:`MANIFEST` (its
  name, size, modification time and inode), and counts as dse's only while all four still match. Anything else is
  refused in one line naming the switch that allows it (``output.overwrite=true``, say).
- :func:`confined`: a name chosen by the user (``search.name``, ``output=``) stays inside its output directory.
- :func:`lock`: one writer per output path (an ``flock`` on a hidden lock file beside it).
- :func:`check_space`: free space and the file-size limit (``ulimit -f``) checked before writing.
- :func:`os_error`: ENOSPC / EFBIG / EDQUOT / EACCES while writing become one-line errors.

And the one reader of a file the user names (:func:`read_user_text`: a config.json, a trace), refused in one line
when it is missing, not a regular file, too large or not UTF-8 text.
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
#: Append-only record, per directory, of the plain files dse wrote there: ``name<TAB>fingerprint`` lines.
MANIFEST = ".dse-written"
MANIFEST_COMPACT_BYTES = 256 * 1024   # rewritten with the live entries only when it grows past this
FULL_REASONS = _FULL = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "file too large (ulimit -f?)",
         errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied", errno.EROFS: "read-only file system"}


# ------------------------------------------------------------------------------------------------ ownership
def _fingerprint(path: Path) -> str:
    st = os.stat(path, follow_symlinks=False)
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _manifest(directory: Path) -> dict[str, str]:
    """{name: fingerprint} of the directory's manifest (the last record of each name; a torn line is ignored)."""
    try:
        text = (Path(directory) / MANIFEST).read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.split("\n")[:-1]:
        name, _, fp = line.partition("\t")
        if name and fp:
            out[name] = fp
    return out


def record(path: Path) -> None:
    """Record a plain file dse has just renamed into place in its directory's manifest (best effort: a file that
    could not be recorded is treated as foreign later, which only ever refuses)."""
    path = Path(path)
    manifest = path.parent / MANIFEST
    try:
        line = f"{path.name}\t{_fingerprint(path)}\n"
        if manifest.is_file() and manifest.stat().st_size > MANIFEST_COMPACT_BYTES:
            live = {n: fp for n, fp in _manifest(path.parent).items() if _matches(path.parent / n, fp)}
            tmp = _tmp_name(manifest)
            tmp.write_text("".join(f"{n}\t{fp}\n" for n, fp in live.items()))
            os.replace(tmp, manifest)
        fd = os.open(manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _matches(path: Path, fp: str) -> bool:
    try:
        return _fingerprint(path) == fp
    except OSError:
        return False


def is_dse_output(path: Path) -> bool:
    """True for a NetCDF file or Zarr store (finished or partial) that dse wrote, or a file dse wrote and
    recorded in its directory's manifest, unchanged since."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_file() and path.name in (recorded := _manifest(path.parent)) and _matches(path, recorded[path.name]):
        return True
    return _marked(path)


def _marked(path: Path) -> bool:
    """A NetCDF file or Zarr store carrying dse's mark."""
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


def check_free(paths, key: str, overwrite: bool = False, flag: str = "output.overwrite=true") -> None:
    """:func:`check_owned` for every path a command will write, before any work."""
    for p in paths:
        check_owned(Path(p), key, overwrite, flag)


def confined(name, key: str) -> str:
    """``name`` as one plain file or directory name (no separator, not ``.`` / ``..``, no control character)."""
    text = str(name)
    if (not text or text in (".", "..") or "/" in text or "\\" in text or os.sep in text
            or any(ord(ch) < 32 for ch in text) or len(text.encode()) > 200):
        raise DseError(f"{key}={text!r}: allowed a plain name (letters, digits, '-', '_', '.'; no '/' and not "
                       "'.' or '..'; at most 200 bytes): it names a file or directory inside the output directory")
    return text


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


#: NetCDF files up to this size are rendered in memory and written with plain file I/O (:func:`write_netcdf`): a
#: full disk is then an ordinary OSError, never one inside HDF5 (whose failed file crashes the process on close).
MEMORY_IMAGE_BYTES = 512 * 2**20
#: Disk reserved beyond an HDF5 file's end before it is written piece by piece (:func:`reserve`): its estimated size
#: times this, plus RESERVE_EXTRA_BYTES for the metadata (chunk index, attributes).
RESERVE_FACTOR, RESERVE_EXTRA_BYTES = 1.1, 2**20


def reserve(path: Path, nbytes: float) -> None:
    """Allocate disk blocks for ``nbytes`` beyond the end of the open-able file ``path`` (``fallocate`` with
    FALLOC_FL_KEEP_SIZE: the file's size is unchanged, HDF5 later writes into blocks it already has). A full disk
    is then an OSError here (a one-line error from :func:`atomic`), before HDF5 writes anything big. Where the file
    system cannot reserve, the free space is compared instead."""
    import ctypes
    import ctypes.util

    want = int(nbytes * RESERVE_FACTOR + RESERVE_EXTRA_BYTES)
    path = Path(path)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fallocate = libc.fallocate
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    except (OSError, AttributeError):
        fallocate = None
    fd = os.open(path, os.O_RDWR)
    try:
        if fallocate is not None:
            if fallocate(fd, 1, os.fstat(fd).st_size, want) == 0:   # 1: FALLOC_FL_KEEP_SIZE
                return
            code = ctypes.get_errno()
            if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise OSError(code, os.strerror(code))       # atomic() names the final path
        if shutil.disk_usage(path.parent).free < want:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    finally:
        os.close(fd)


def os_error(err: BaseException, path: Path, key: str = "output.path") -> DseError:
    """A one-line error for a failed write (the causes that are the user's to fix are named)."""
    code = getattr(err, "errno", None)
    text = str(err)
    m = re.search(r"errno = (\d+)", text)          # HDF5 wraps the OS error in its own message
    if code is None and m:
        code = int(m.group(1))
    reason = _FULL.get(code) or (text.strip().splitlines() or [type(err).__name__])[0][:160]
    return DseError(f"{key}={str(path)!r}: writing failed ({reason}); nothing was written under that name")


def read_user_text(path, what: str, max_bytes: int) -> str:
    """The text of a file the user names (``what``: "config.json", "trace file"), read whole: refused in one line
    naming the path when it is missing, a directory, a FIFO, socket or device (never opened: it could block), over
    ``max_bytes`` (checked before and while reading: it may grow) or not UTF-8."""
    import stat

    def cannot(err: OSError) -> DseError:
        if isinstance(err, FileNotFoundError):
            return DseError(f"{path}: no such {what}")
        return DseError(f"{path}: cannot read ({err.strerror or type(err).__name__})")

    try:
        st = os.stat(path)
    except OSError as err:
        raise cannot(err) from None
    if stat.S_ISDIR(st.st_mode):
        raise DseError(f"{path}: is a directory; give the path of a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise DseError(f"{path}: not a regular file (a FIFO, socket or device?); give the path of a {what}")
    over = f"over the {max_bytes:,} bytes a {what} may have"
    if st.st_size > max_bytes:
        raise DseError(f"{path}: {st.st_size:,} bytes, {over}")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise cannot(err) from None
    if len(data) > max_bytes:
        raise DseError(f"{path}: {over}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DseError(f"{path}: not a UTF-8 text file (expected a {what})") from None


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
def atomic(path: Path, key: str = "output.path", overwrite: bool = False, flag: str = "output.overwrite=true"):
    """``with atomic(path) as tmp:`` write ``tmp`` (a file or a directory); it is renamed to ``path`` when the
    block completes, and removed when it fails or is interrupted. Full disks become one-line errors. What is at
    ``path`` is replaced only when dse wrote it (:func:`check_owned`; ``overwrite`` waives it), and a plain file
    written is recorded as dse's (:func:`record`)."""
    path = Path(path)
    check_owned(path, key, overwrite, flag)
    remove_stale(path)
    tmp = _tmp_name(path)
    _remove(tmp)
    try:
        yield tmp
        is_file = tmp.is_file() and not tmp.is_symlink()
        replace(tmp, path)
        if is_file and not _marked(path):      # a dataset carries its own mark
            record(path)
    except OSError as err:
        raise os_error(err, path, key) from None
    except RuntimeError as err:         # HDF5's own report of a failed write ("... errno = 28 ...")
        if re.search(r"errno = \d+", str(err)):
            raise os_error(err, path, key) from None
        raise
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def atomic_write(path: Path, write, key: str = "output.path", overwrite: bool = False,
                 flag: str = "output.overwrite=true") -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place (see :func:`atomic`)."""
    with atomic(path, key, overwrite, flag) as tmp:
        write(tmp)
        if tmp.is_file():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    return Path(path)


def write_text(path: Path, text: str, key: str = "output.path", overwrite: bool = False,
               flag: str = "output.overwrite=true") -> Path:
    """A text file, written atomically."""
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text), key, overwrite, flag)


def write_netcdf(ds, path: Path, key: str = "output.path", overwrite: bool = False,
                 flag: str = "output.overwrite=true") -> Path:
    """A dataset as NetCDF-4 (h5netcdf), written atomically. Up to :data:`MEMORY_IMAGE_BYTES` the file is
    rendered in memory and written with plain file I/O, so a full disk is a one-line error and no HDF5 file is left
    half-written (HDF5 crashes the process when such a file is closed); a larger one gets its disk reserved first
    (:func:`reserve`)."""
    if ds.nbytes <= MEMORY_IMAGE_BYTES:
        image = ds.to_netcdf(engine="h5netcdf")
        return atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(bytes(image)), key, overwrite, flag)

    return atomic_write(Path(path), lambda tmp: write_reserved(ds, tmp), key, overwrite, flag)


def write_reserved(ds, tmp: Path, **to_netcdf) -> None:
    """``ds.to_netcdf(tmp)`` (h5netcdf) into a file whose disk was reserved first (:func:`reserve`): an empty
    NetCDF file is written, its space reserved, then the dataset appended to it."""
    import xarray as xr

    xr.Dataset().to_netcdf(tmp, engine="h5netcdf")
    reserve(tmp, ds.nbytes)
    ds.to_netcdf(tmp, mode="a", engine="h5netcdf", **to_netcdf)


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
