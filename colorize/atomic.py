"""Writing an output file: whole or not at all, with a plain file's mode, never through a link.

Every file colorize writes (config.json, the metrics.jsonl rewrite, sample grids, plots,
evaluate's results, the `colorize` command's images) goes through `write_bytes`:

* the bytes go to a new file beside the destination, which is then renamed over it: a reader,
  or a process killed mid-write, never sees half a file, and a destination that is a symbolic
  link is replaced by the new file instead of being followed (a link planted in a downloaded
  workdir cannot make us overwrite the file it points to);
* the new file gets the mode `open(path, "w")` would give it, 0o666 less the umask (a
  temporary file from `tempfile` would keep 0o600);
* with `inside`, a destination whose folder leads (through links) out of that folder is
  refused: e.g. `eval/` in a workdir linked to someone else's files.

Paths with a scheme (gs://...) are written with one `epath` call: an object store replaces an
object whole, and has no links.
"""
import os
import secrets

from etils import epath

from colorize.errors import UserError


def _is_local(path: str | os.PathLike) -> bool:
  return "://" not in os.fspath(path)


def check_inside(path: str | os.PathLike, root: str | os.PathLike) -> None:
  """Refuses a destination whose folder resolves (through links) outside `root`.

  Args:
    path: the file to be written (it and its folder need not exist yet).
    root: the folder it must stay in; a link to `root` itself is fine.

  Raises:
    UserError: naming the path, where it leads and the fix.
  """
  if not (_is_local(path) and _is_local(root)):
    return
  folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
  real_root = os.path.realpath(root)
  if os.path.commonpath([folder, real_root]) != real_root:
    raise UserError(f"refusing to write {path}: its folder leads outside {root} (to {folder}) "
                    "through a symbolic link; remove the link")


def write_bytes(path: str | os.PathLike, data: bytes,
                inside: str | os.PathLike | None = None) -> None:
  """Writes `data` to `path` atomically (module docstring), creating its folder.

  Args:
    path: the file to (over)write; a link there is replaced, not followed.
    data: its new content.
    inside: if given, the folder `path` must stay in (`check_inside`).

  Raises:
    UserError: `path` leads outside `inside`.
    OSError: the write failed (nothing is left behind but, at worst, the old file).
  """
  if inside is not None:
    check_inside(path, inside)
  if not _is_local(path):
    epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
    epath.Path(path).write_bytes(data)
    return
  folder, name = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  while True:
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
      # O_EXCL: never an existing file or link; mode 0o666: the kernel applies the umask.
      fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
      break
    except FileExistsError:
      continue
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise
