"""Where bytes live: local paths and fsspec URLs behind one small API; the only module that sees either.

A *spec* is a local path, a ``file://`` URL (treated as the local path) or a URL of another store:
``s3://bucket/key``, ``gs://…``, ``az://…`` / ``abfs://…``, ``memory://…`` or any protocol fsspec knows;
``http(s)://`` is read-only. fsspec is imported only for such ``proto://`` specs.

* Local writes are atomic: a temporary file in the same folder, then a rename
  (:func:`autoinpaint.imaging.image_io.write_atomic`).
* Object stores (S3, GCS, Azure Blob, ...) publish an object only when its upload completes, so a write
  is one upload: a reader never finds a partial object under the final name. Other remote file systems
  (sftp, webdav, ...) get a temporary name in the same folder and a move.
* Credentials and endpoints come from each store's usual environment variables and config files
  (``AWS_ACCESS_KEY_ID`` / ``AWS_PROFILE`` / ``~/.aws``, ``AWS_ENDPOINT_URL`` for S3-compatible stores,
  ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``), never from arguments: a URL carrying
  ``user:secret@`` is refused.

Failures are :class:`~autoinpaint.errors.InputError` (missing object, no permission, read-only store:
bad input, exit 2) or :class:`~autoinpaint.errors.StorageError` (the store failed, exit 1).

* **Transient failures are retried** with exponential backoff, in two layers: the store's client
  (for S3: botocore's ``standard`` retry mode, ``$AUTOINPAINT_S3_ATTEMPTS`` attempts, default 5, and
  s3fs's own loop cut to one retry, so that the two do not multiply:
  503 SlowDown, 5xx, throttling, reset or refused connections, timeouts), then around each of our
  calls (``$AUTOINPAINT_STORAGE_RETRIES`` more tries, default 3; 0.5 s, 1 s, 2 s, ... with jitter)
  for what the client gave up on. Every call retried is idempotent: a read, a listing, or a write
  of a whole object (never an append). :data:`RETRIES` counts the retries of this process.
"""
from __future__ import annotations

import os
import posixpath
import random
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, TypeVar, Union

from ..errors import InputError, StorageError
from .image_io import write_atomic

Spec = Union[str, os.PathLike]
T = TypeVar("T")

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]+)://")
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "memory"}
READ_ONLY = {"http", "https"}
_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"  # write_atomic's temporary names: .NAME.XXXX.tmp
RETRIES = 0  # our own retries of store calls in this process (the client's own are not counted)
_NOT_TRANSIENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError,
                  InputError)


# ------------------------------------------------------------------------------------------------ specs
def protocol(spec: Spec) -> str | None:
    """``s3`` for ``s3://b/k``; None for a local path (``file://`` URLs are local paths)."""
    m = _URL.match(str(spec))
    if not m or m.group(1).lower() == "file":
        return None
    return m.group(1).lower()


def is_remote(spec: Spec) -> bool:
    return protocol(spec) is not None


def local_path(spec: Spec) -> str:
    """A local spec as a path string (``file:///a/b`` → ``/a/b``, ``~`` expanded)."""
    s = os.fspath(spec)
    if s[:7].lower() == "file://":
        s = s[7:]
    return os.path.expanduser(s)



def _split(spec: str) -> tuple[str, str]:
    """``s3://b/k`` → (``s3://``, ``b/k``)."""
    m = _URL.match(spec)
    return spec[:m.end()], spec[m.end():]


def _fs(spec: Spec) -> tuple[Any, str]:
    """The fsspec file system and the path inside it for a remote spec."""
    s = str(spec)
    netloc = _split(s)[1].split("/", 1)[0]
    if "@" in netloc and ":" in netloc.split("@", 1)[0]:
        raise InputError(f"{_redact(s)}: credentials in a URL are not accepted; use the store's environment "
                         f"variables or config file (e.g. AWS_PROFILE, ~/.aws/credentials)")
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{s}: reading and writing URLs needs fsspec and the store's package: "
                         f"pip install 'autoinpaint[s3]' (or gcsfs, adlfs)") from None
    try:
        fs, path = fsspec.core.url_to_fs(s, **_client_options(s))
    except ImportError as exc:
        raise InputError(f"{s}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{s}: {exc}") from None
    if hasattr(fs, "retries") and protocol(s) in ("s3", "s3a"):
        # s3fs's own loop (5 tries by default) would multiply botocore's: one retry, for what botocore
        # does not cover (a read cut mid-stream); none when $AUTOINPAINT_S3_ATTEMPTS is 1
        fs.retries = 1 if _s3_attempts() == 1 else 2
    return fs, path


def _s3_attempts() -> int:
    return max(1, int(os.environ.get("AUTOINPAINT_S3_ATTEMPTS") or 5))


def _client_options(spec: str) -> dict:
    """The store client's own retry settings (S3: botocore's standard mode with backoff and jitter)."""
    if protocol(spec) in ("s3", "s3a"):
        return {"config_kwargs": {"retries": {"max_attempts": _s3_attempts(), "mode": "standard"}}}
    return {}


def _transient(exc: BaseException) -> bool:
    """Whether a store's failure may go away on a retry: a dropped connection, a timeout, a 5xx or
    throttling answer; not a missing object, a denied permission or bad input."""
    if isinstance(exc, _NOT_TRANSIENT):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
                "ClientOSError", "ServerDisconnectedError", "ClientPayloadError", "IncompleteRead",
                "ProtocolError", "HTTPClientError"}:
        return True
    response = getattr(exc, "response", None)  # botocore's ClientError
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                    "ServiceUnavailable") or (isinstance(status, int) and status >= 500):
            return True
    # s3fs and gcsfs turn what the client gave up on into a bare OSError (errno EIO or none)
    return type(exc) is OSError


def _redact(spec: str) -> str:
    head, rest = _split(spec)
    netloc, sep, path = rest.partition("/")
    return head + "***@" + netloc.split("@", 1)[1] + sep + path if "@" in netloc else spec


def _failed(spec: str, what: str, exc: BaseException) -> Exception:
    """Map an exception of a store to our errors: missing / forbidden / not a file → InputError."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{spec}: no such file" if what == "read" else f"cannot {what} {spec}: {msg}")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{spec}: not a file")
    if isinstance(exc, PermissionError):
        return InputError(f"cannot {what} {spec}: permission denied ({msg})")
    return StorageError(f"cannot {what} {spec}: {type(exc).__name__}: {msg}")


def _remote(spec: str, what: str, call: Callable[[Any, str], T]) -> T:
    """``call(fs, path)`` on the store of ``spec``, retried with backoff while it fails transiently
    (``call`` must be idempotent); its exceptions become ours (:func:`_failed`)."""
    global RETRIES
    fs, path = _fs(spec)
    tries = max(0, int(os.environ.get("AUTOINPAINT_STORAGE_RETRIES") or 3))
    for attempt in range(tries + 1):
        try:
            return call(fs, path)
        except Exception as exc:  # noqa: BLE001 - every store has its own exceptions; _failed sorts them
            if attempt == tries or not _transient(exc):
                raise _failed(spec, what, exc) from None
            RETRIES += 1
            fs.invalidate_cache()  # a listing cached before the failure may be stale
            time.sleep(min(8.0, 0.5 * 2 ** attempt) * random.uniform(0.75, 1.25))
    raise AssertionError("unreachable")


def join(base: Spec, *parts: str) -> str:
    """``parts`` under ``base``; a part that is a URL or an absolute local path replaces what is before it."""
    out = os.fspath(base)
    for part in parts:
        part = os.fspath(part)
        if _URL.match(part) or os.path.isabs(part):
            out = part
        elif is_remote(out):
            head, path = _split(out)
            out = head + posixpath.normpath(posixpath.join(path, part))
        else:
            out = str(Path(out) / part)
    return out


def parent(spec: Spec) -> str:
    s = os.fspath(spec)
    if is_remote(s):
        head, path = _split(s.rstrip("/"))
        return head + posixpath.dirname(path)
    return str(Path(s).parent)


def name(spec: Spec) -> str:
    """The last component: ``photo.jpg`` for ``s3://b/shots/photo.jpg`` (and for
    ``https://host/photo.jpg?signature=…``)."""
    s = os.fspath(spec)
    if not is_remote(s):
        return Path(s).name
    if protocol(s) in READ_ONLY:
        s = s.split("#", 1)[0].split("?", 1)[0]
    return posixpath.basename(s.rstrip("/"))


def suffix(spec: Spec) -> str:
    return posixpath.splitext(name(spec))[1]


def is_absolute(spec: Spec) -> bool:
    s = os.fspath(spec)
    return bool(_URL.match(s)) or os.path.isabs(os.path.expanduser(s))


def absolute(spec: Spec) -> str:
    """A spec that means the same from any working directory (the key of hashes and manifests)."""
    s = os.fspath(spec)
    return s if is_remote(s) else os.path.abspath(local_path(s))


def canonical(spec: Spec) -> str:
    """One spelling per file or folder: the resolved absolute path (symlinks resolved), or the URL
    without a trailing ``/``."""
    s = os.fspath(spec)
    return s.rstrip("/") if is_remote(s) else str(Path(local_path(s)).resolve())


def same(a: Spec, b: Spec) -> bool:
    """Whether two specs name the same file (symlinks resolved for local paths)."""
    if is_remote(a) or is_remote(b):
        return is_remote(a) and is_remote(b) and os.fspath(a).rstrip("/") == os.fspath(b).rstrip("/")
    try:
        return Path(local_path(a)).resolve() == Path(local_path(b)).resolve()
    except (OSError, ValueError):
        return False


def relative(spec: Spec, folder: Spec) -> str:
    """``spec`` as a link relative to ``folder`` (``../in/a.jpg``) when both are on one local disk or in
    one bucket; else ``spec`` itself."""
    s, f = os.fspath(spec), os.fspath(folder)
    if not is_remote(s) and not is_remote(f):
        try:
            return os.path.relpath(local_path(s), local_path(f))
        except ValueError:  # another drive
            return s
    if is_remote(s) and is_remote(f):
        (head, path), (fhead, fpath) = _split(s), _split(f.rstrip("/"))
        root, froot = path.split("/", 1)[0], fpath.split("/", 1)[0]
        if head == fhead and root == froot:
            return posixpath.relpath(path, fpath)
    return s


def has_magic(pattern: Spec) -> bool:
    """Whether ``pattern`` is a glob (``*``, ``?`` or ``[``; a URL's query string aside)."""
    s = os.fspath(pattern)
    if is_remote(s):
        s = _split(s)[1]
        if protocol(pattern) in READ_ONLY:
            s = s.split("?", 1)[0]
    return bool(re.search(r"[*?\[]", s))


# ---------------------------------------------------------------------------------------------- reading
def read_bytes(spec: Spec) -> bytes:
    """The whole file or object. InputError when it is missing, a folder or not readable."""
    s = os.fspath(spec)
    if not is_remote(s):
        path = Path(local_path(s))
        try:
            if not path.exists():
                raise InputError(f"{path}: no such file")
            if not path.is_file():
                raise InputError(f"{path}: not a file")
            return path.read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return _remote(s, "read", lambda fs, path: fs.cat_file(path))


@contextmanager
def open_binary(spec: Spec) -> Iterator[IO[bytes]]:
    """The file or object as a binary stream, read block by block (a recipe, a manifest)."""
    s = os.fspath(spec)
    if not is_remote(s):
        with open(local_path(s), "rb") as fh:
            yield fh
        return
    with _remote(s, "read", lambda fs, path: fs.open(path, "rb")) as fh:
        yield fh


def _info(spec: str) -> dict | None:
    def info(fs, path):
        try:
            return fs.info(path)
        except FileNotFoundError:
            return None

    return _remote(spec, "read", info)


def exists(spec: Spec) -> bool:
    s = os.fspath(spec)
    return os.path.exists(local_path(s)) if not is_remote(s) else _info(s) is not None


def is_file(spec: Spec) -> bool:
    s = os.fspath(spec)
    if not is_remote(s):
        return os.path.isfile(local_path(s))
    info = _info(s)
    return info is not None and info.get("type") == "file"


def is_dir(spec: Spec) -> bool:
    s = os.fspath(spec)
    if not is_remote(s):
        return os.path.isdir(local_path(s))
    return _remote(s, "read", lambda fs, path: fs.isdir(path))


def size(spec: Spec) -> int | None:
    """Bytes of the file or object, or None when there is none."""
    s = os.fspath(spec)
    if not is_remote(s):
        try:
            return os.path.getsize(local_path(s))
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            return None
    info = _info(s)
    return None if info is None or info.get("type") != "file" else int(info.get("size") or 0)


def identity(spec: Spec | None) -> dict | None:
    """What changes when the content changes, without reading it (for resume hashes): size and
    modification time (ns) of a local file; size and ETag / generation / modification time of an object."""
    if not spec:
        return None
    s = os.fspath(spec)
    if not is_remote(s):
        try:
            st = os.stat(local_path(s))
        except (OSError, ValueError):
            return None
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    info = _info(s)
    if info is None:
        return None
    tag = next((info[k] for k in ("ETag", "etag", "generation", "VersionId", "version_id", "md5Hash")
                if info.get(k)), None)
    mtime = next((info[k] for k in ("LastModified", "last_modified", "updated", "mtime", "modified")
                  if info.get(k)), None)
    return {"size": info.get("size"), "tag": str(tag) if tag else None, "mtime": str(mtime) if mtime else None}


def glob(pattern: Spec) -> list[str]:
    """Files matching ``pattern`` (``*``, ``?``, ``[..]``, ``**``), sorted; URLs stay URLs."""
    s = os.fspath(pattern)
    if not is_remote(s):
        import glob as globlib

        return sorted(m for m in globlib.iglob(local_path(s), recursive=True) if os.path.isfile(m))
    if protocol(s) in READ_ONLY:
        raise InputError(f"{s}: globs are not supported for {protocol(s)}:// URLs; list the files")
    found = _remote(s, "list", lambda fs, path: fs.glob(path, detail=True))
    return sorted(_url(s, p) for p, info in found.items() if info.get("type") == "file")


def list_files(folder: Spec) -> list[str]:
    """The files directly inside ``folder`` (hidden names skipped), sorted by name."""
    s = os.fspath(folder)
    if not is_remote(s):
        local = local_path(s)
        names = sorted(e.name for e in os.scandir(local) if e.is_file() and not e.name.startswith("."))
        return [str(Path(s) / n) for n in names]
    entries = _remote(s, "list", lambda fs, path: fs.ls(path, detail=True))
    files = [e["name"] for e in entries if e.get("type") == "file"]
    return [_url(s, p) for p in sorted(files, key=posixpath.basename) if not posixpath.basename(p).startswith(".")]


def _url(spec: str, path: str) -> str:
    """A path the file system of ``spec`` returned, as a URL spelled like ``spec``."""
    head, rest = _split(spec)
    return head + (path if rest.startswith("/") else path.lstrip("/"))


# ---------------------------------------------------------------------------------------------- writing
def write_bytes(spec: Spec, data: bytes) -> None:
    """Write ``data`` so that no reader ever sees part of it under ``spec`` (see the module notes).
    InputError when the folder, bucket or permission is missing or the store is read-only."""
    s = os.fspath(spec)
    if not is_remote(s):
        write_atomic(local_path(s), data)
    else:
        _put(s, lambda fs, path: fs.pipe_file(path, data))


def write_file(spec: Spec, source: str | os.PathLike) -> None:
    """Upload the local file ``source`` to the store URL ``spec`` like :func:`write_bytes` (streamed)."""
    _put(os.fspath(spec), lambda fs, path: fs.put_file(os.fspath(source), path))


def _put(spec: str, upload) -> None:
    """``upload(fs, path)`` to the final name on an object store (an object appears only when its upload
    completes), through a temporary name and a move elsewhere."""
    proto = protocol(spec)
    if proto in READ_ONLY:
        raise InputError(f"cannot write {spec}: {proto}:// is read-only")

    def put(fs, path):
        if proto in OBJECT_STORES:
            upload(fs, path)
            return
        folder, base = posixpath.split(path)
        tmp = posixpath.join(folder, f"{_TEMP_PREFIX}{base}.{uuid.uuid4().hex[:8]}{_TEMP_SUFFIX}")
        upload(fs, tmp)
        try:
            fs.mv(tmp, path)
        except BaseException:
            fs.rm(tmp)
            raise

    _remote(spec, "write", put)


def delete(spec: Spec) -> None:
    """Remove a file or object if it exists."""
    s = os.fspath(spec)
    if not is_remote(s):
        Path(local_path(s)).unlink(missing_ok=True)
        return
    def rm(fs, path):
        try:
            fs.rm(path)
        except FileNotFoundError:
            pass

    _remote(s, "delete", rm)


def make_parents(spec: Spec) -> None:
    """Create the folders above a local file (object stores have none to create)."""
    s = os.fspath(spec)
    if not is_remote(s):
        Path(local_path(s)).parent.mkdir(parents=True, exist_ok=True)


def ensure_folder(spec: Spec) -> None:
    """Make an output folder usable: created locally; for a store, the bucket must exist and be
    writable (checked now, not at every row)."""
    s = os.fspath(spec)
    if not is_remote(s):
        path = Path(local_path(s))
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder {path}: {exc.strerror or exc}") from None
        return
    proto = protocol(s)
    if proto in READ_ONLY:
        raise InputError(f"cannot write to {s}: {proto}:// is read-only")
    root = _fs(s)[1].strip("/").split("/", 1)[0]
    for pause in (0.25, 0.5, None):  # fs.exists says False when its probes failed: look again
        if _remote(s, "write", lambda fs, path: fs.exists(root)):
            return
        if pause is not None:
            _fs(s)[0].invalidate_cache()
            time.sleep(pause)
    raise InputError(f"{_split(s)[0]}{root}: no such bucket or container")


def remove_stale_temp_files(folder: Spec) -> None:
    """Delete ``.NAME.XXXX.tmp`` files that a killed run left between writing and renaming them
    (finished files never have this form). Object stores never hold such leftovers."""
    s = os.fspath(folder)
    if is_remote(s):
        return
    try:
        entries = list(os.scandir(local_path(s)))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(_TEMP_PREFIX) and e.name.endswith(_TEMP_SUFFIX) and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
            except OSError:
                pass
