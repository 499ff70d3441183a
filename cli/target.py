"""Where a command's signed events go, and what the log holds already, read the same way, so that
an operation that already holds is named and nothing is signed:

- a registry directory (`--dir DIR`): the ledger in this process, a first write waiting
  CLI_WRITER_LOCK_WAIT_S for a running server's writer lock; a checkpoint after the writes;
- a running server (`--server URL --trust FILE`): service.client.RegistryClient, every answer's
  receipt checked against the trust file obtained out of band;
- a file (`--sign-only FILE`): the signed events, one spec section 2 submission a line, for an admin
  whose key never meets the registry to carry to `puhui submit`. The state is read from `--dir`
  or `--server` when one is given too, and not at all otherwise (the registry then judges at
  `puhui submit`).
"""

from __future__ import annotations

import abc
import functools
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, NamedTuple, Optional

import typer

from cli.terminal import CLI_WRITER_LOCK_WAIT_S, cannot_run, console, fail
from keys import Ed25519Key, load_key, passphrase_for_role, passphrase_from_env_or_prompt, read_key_info
from ledger.canonical import jcs
from ledger.errors import CODES, Rejected
from ledger.events import TYPES
from ledger.note import parse_verifier_key
from ledger.queries import Queries
from ledger.registry import Registry, sign_event
from ledger.schema import ID_FIELD
from ledger.state import Methodology, ReviewTarget
from service.actors import Actor
from service.registry_dir import INIT_LOG_FORMAT, RegistryDir, refuse_if_another_writer

MAX_TRUST_FILE_BYTES = 1 << 20
REQUEST_ID_PREFIX = "puhui-cli"
# A server's methodology list is read in pages of this many (the API's most).
METHODOLOGY_PAGE = 1000

# The options every signing command takes, in this shape (each command's help lists them).
DirOption = typer.Option(None, "--dir", metavar="DIR", help="the registry's directory: append the events there (waiting 2 s for a "
                                             "running server's writer lock)")
ServerOption = typer.Option(None, "--server", metavar="URL", help="a running registry's URL (`puhui serve`): submit there; "
                                                   "needs --trust")
TrustOption = typer.Option(None, "--trust", metavar="FILE", help="the registry's trust file, obtained out of band: each receipt "
                                                 "from --server is checked against it; --sign-only takes the origin "
                                                 "from it")
SignOnlyOption = typer.Option(None, "--sign-only", metavar="FILE", help="write the signed events to this new file (one a line) "
                                                        "instead of submitting them; post it later with `puhui submit`")
OriginOption = typer.Option(None, "--origin", metavar="ORIGIN", help="the registry's origin, which every signature covers: for "
                                                   "--sign-only without --trust, --dir or --server")
LogFormatOption = typer.Option(None, "--log-format", min=1, max=2, metavar="N", help=(
    "the registry log's format (1 or 2; `puhui status` shows it), which decides the signature's prefix: for "
    f"--sign-only without --dir or --server (default {INIT_LOG_FORMAT}, the format `puhui init` writes)"))
# Who signs the events of most commands, as --signer-key's help says it; the others name their signer.
ADMIN_SIGNER = "an admin's, or the root key where the spec asks for one (default: DIR/keys/admin.key)"


def _signer_key_option(signer: str) -> Any:
    return typer.Option(None, "--signer-key", metavar="FILE", help=(
        f"the key file that signs: {signer}. Passphrase: the variable of the file's role (PUHUI_ADMIN_KEY_PASSPHRASE, "
        f"PUHUI_ROOT_KEY_PASSPHRASE, ...), else PUHUI_KEY_PASSPHRASE, else a prompt"))
DatabaseOption = typer.Option(None, "--database-url", metavar="URL", help="with --dir: override the directory's database URL")

WHERE_HELP = ("Where: --dir DIR (the registry's directory), or --server URL --trust FILE (a running registry), or "
              "--sign-only FILE [--origin ORIGIN | --trust FILE] (a file for `puhui submit`); signed with "
              "--signer-key FILE.")


@dataclass(frozen=True, slots=True)
class LoggedKey:
    key_id: str
    roles: frozenset[str]
    label: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class LoggedAccount:
    account_id: str
    kind: str
    name: str
    region: str
    platform: str | None
    controllers: frozenset[str]


@dataclass(frozen=True, slots=True)
class LoggedReview:
    """An accepted review (format 2): who signed which verdict on a target."""
    review_id: str
    seq: int
    signer: str  # key_id
    approved: bool


@dataclass(slots=True)
class SignerKey:
    """The signing key, unlocked on first use: the file given, else the directory's admin key."""
    path: Path | None
    directory: Path | None
    _key: Ed25519Key | None = None

    def key(self) -> Ed25519Key:
        if self._key is None:
            self._key = self._load()
        return self._key

    def _load(self) -> Ed25519Key:
        if self.path is None:
            if self.directory is None:
                cannot_run("--signer-key FILE: the key file that signs (the command's --help says whose)")
            return RegistryDir(self.directory).admin_key()
        role = read_key_info(self.path).role
        purpose = f"the key {self.path}"
        passphrase = (passphrase_for_role(role, purpose) if role.replace("_", "").isalnum()
                      else passphrase_from_env_or_prompt(purpose))
        return load_key(self.path, passphrase)


class Delivered(NamedTuple):
    seq: int | None   # None: written to the --sign-only file, not submitted
    duplicate: bool   # the log held this very event already: nothing new was written


class Target(abc.ABC):
    """What the log holds (None where this target cannot read it) and where signed events go."""
    origin: str
    log_format: int  # the log's format (spec "Formats"): it decides the signature's prefix
    readable: bool = True

    @abc.abstractmethod
    def key(self, key_id: str) -> LoggedKey | None: ...

    @abc.abstractmethod
    def account(self, account_id: str) -> LoggedAccount | None: ...

    @abc.abstractmethod
    def methodologies(self) -> dict[str, Methodology]: ...

    @abc.abstractmethod
    def methodology(self, methodology_id: str) -> Methodology | None: ...

    @abc.abstractmethod
    def logged(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        """The body of the event of this type that introduced this id (ledger.schema.ID_FIELD), or None."""

    @abc.abstractmethod
    def batch_platform(self, batch_id: str) -> str | None:
        """The platform account of an accepted batch; None if no batch has that id."""

    @abc.abstractmethod
    def reviews(self, kind: str, target_id: str, version: int | None) -> list[LoggedReview]:
        """The accepted reviews of a target (format 2), in log order."""

    @abc.abstractmethod
    def review_quorum(self, kind: str) -> int | None:
        """The approvals an issuance or an eligibility needs under the rules in force (None: format 1)."""

    @abc.abstractmethod
    def open_cases(self, account_id: str) -> frozenset[str]:
        """The cases open on an account (format 2 holds): held while there is one."""

    @abc.abstractmethod
    def deliver(self, event: dict[str, Any]) -> Delivered: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def done(self, delivered: Delivered) -> str:
        """Where one event went, as a person reads it after "registered X"."""
        return f"at seq {delivered.seq}" + (" (the log held this very event already)" if delivered.duplicate else "")

    def sign(self, signer: Ed25519Key, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "request_id": Actor(signer, REQUEST_ID_PREFIX).next_request_id()}
        return sign_event(signer, self.origin, event_type, body, log_format=self.log_format)


class DirTarget(Target):
    def __init__(self, place: RegistryDir, *, writes: bool, database_url: str | None):
        if writes:  # a running server is named before a passphrase is asked for that could not help
            refuse_if_another_writer(place.database_url(database_url), CLI_WRITER_LOCK_WAIT_S)
        self.registry: Registry = place.open(with_log_key=writes, database_url=database_url,
                                             writer_lock_wait_s=CLI_WRITER_LOCK_WAIT_S if writes else None)
        self.origin = self.registry.origin
        self.log_format = self.registry.log_format
        self.written = 0

    def key(self, key_id: str) -> LoggedKey | None:
        key = self.registry.state.keys.get(key_id)
        return None if key is None else LoggedKey(key.key_id, key.roles, key.label, key.revoked)

    def account(self, account_id: str) -> LoggedAccount | None:
        a = self.registry.state.accounts.get(account_id)
        return None if a is None else LoggedAccount(a.account_id, a.kind, a.name, a.region, a.platform,
                                                    frozenset(a.controllers))

    def methodologies(self) -> dict[str, Methodology]:
        return dict(self.registry.state.methodologies)

    def methodology(self, methodology_id: str) -> Methodology | None:
        return self.registry.state.methodologies.get(methodology_id)

    def logged(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        # The state knows the ids in use; only a used one costs a look at the events.
        if event_id not in getattr(self.registry.state, TYPES[event_type].new_id.table):
            return None
        return Queries(self.registry.store).introduced_by(event_type, event_id)

    def batch_platform(self, batch_id: str) -> str | None:
        batch = self.registry.state.batches.get(batch_id)
        return None if batch is None else batch.platform

    def reviews(self, kind: str, target_id: str, version: int | None) -> list[LoggedReview]:
        return [LoggedReview(r.review_id, r.seq, r.signer, r.approved)
                for r in self.registry.state.reviews_of.get(ReviewTarget(kind, target_id, version), ())]

    def review_quorum(self, kind: str) -> int | None:
        rules = self.registry.state.rules
        return None if rules is None or "review_quorum" not in rules else rules["review_quorum"][kind]

    def open_cases(self, account_id: str) -> frozenset[str]:
        return frozenset(self.registry.state.open_cases.get(account_id, ()))

    def deliver(self, event: dict[str, Any]) -> Delivered:
        appended = self.registry.append(event)
        self.written += not appended.duplicate
        return Delivered(appended.seq, appended.duplicate)

    def close(self) -> None:
        try:
            if self.written:
                self.registry.checkpoint()
        finally:
            self.registry.close()


def read_trust(path: Path) -> dict[str, Any]:
    """A trust file (spec section 8), or a one-line reason it is none."""
    try:
        with open(path, "rb") as handle:
            trust = json.loads(handle.read(MAX_TRUST_FILE_BYTES))
    except OSError as exc:
        cannot_run(f"--trust {path}: {exc.strerror}")
    except ValueError:
        cannot_run(f"--trust {path} is not JSON: expected the registry's trust.json")
    if not isinstance(trust, dict) or not isinstance(trust.get("origin"), str) or "log_key" not in trust:
        cannot_run(f"--trust {path} is no trust file (it needs origin and log_key): expected the registry's trust.json")
    try:
        parse_verifier_key(trust["log_key"])
    except ValueError as exc:
        cannot_run(f"--trust {path}: its log_key is no verifier key ({exc})")
    return trust


class ServerTarget(Target):
    """A running registry through its API; what it answers is proven against the trust file."""

    def __init__(self, url: str, trust_path: Path):
        import httpx
        from service.client import RegistryClient, RegistryError
        from ledger.receipts import ReceiptInvalid
        self._transport_error, self._registry_error, self._receipt_invalid = (
            httpx.HTTPError, RegistryError, ReceiptInvalid)
        self.url, self.trust_path = url, trust_path
        self.client = RegistryClient(url, trust=read_trust(trust_path))
        self.origin = self.client.origin
        self._check_registry_root()
        self.log_format = self._ask(lambda: self.client.log_format)

    def _check_registry_root(self) -> None:
        """Stop with the cause when the URL is no Puhui server's root (one ending in /v1, another
        site's): every read would answer a bare 404, read as "UNKNOWN_REF: Not Found"."""
        response = self._ask(lambda: self.client.http.get("/v1/status"))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 200 and isinstance(answer, dict) and "committed_size" in answer:
            return
        if isinstance(answer, dict) and response.status_code in (429, 503):
            return  # a registry, busy: the requests that follow say so
        how = ("give the server's root, without /v1" if self.url.rstrip("/").endswith("/v1")
               else "give the server's root URL, as `puhui serve` prints it")
        cannot_run(f"no Puhui registry at {self.url}: GET /v1/status answered {response.status_code}; {how} "
                   "(e.g. http://127.0.0.1:8000)")

    def _ask(self, call: Callable[[], Any], *, absent_ok: bool = False) -> Any:
        """call(), its refusals as the registry's codes (Rejected), an unreachable server in one line;
        None for 404 when absent_ok."""
        try:
            return call()
        except self._registry_error as exc:
            if absent_ok and exc.status == 404:
                return None
            if exc.code in CODES:
                raise Rejected(exc.code, exc.message) from None
            cannot_run(f"{self.url} answered {exc.status} {exc.code}: {exc.message or 'no message'}")
        except self._receipt_invalid as exc:
            fail(f"{self.url}: the receipt does not check against --trust {self.trust_path} ({exc}): is it this "
                 f"registry's trust file?")
        except self._transport_error as exc:
            cannot_run(f"cannot reach {self.url}: {exc.__class__.__name__}: {str(exc) or 'no answer'}")

    def key(self, key_id: str) -> LoggedKey | None:
        # The API has no read of keys: the key's events are found in the log, page by page.
        found: LoggedKey | None = None
        for leaf in self._leaves(("key.register", "key.revoke"), lambda body: body.get("key_id") == key_id):
            body = leaf["body"]
            if leaf["type"] == "key.register":
                found = LoggedKey(key_id, frozenset(body["roles"]), body["label"], revoked=False)
            elif found is not None:
                found = LoggedKey(key_id, found.roles, found.label, revoked=True)
        return found

    def _leaves(self, types: tuple[str, ...], match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The log's leaves of these types whose body matches, read page by page (the API has no
        read of keys, reviews, holds or batches by id)."""
        return self._ask(lambda: [leaf for leaf in self.client.leaves()
                                  if leaf["type"] in types and match(leaf["body"])])

    def batch_platform(self, batch_id: str) -> str | None:
        # A batch the registry accepted is in the log (a refused one never is).
        found = self._leaves(("activity.batch",), lambda body: body.get("batch_id") == batch_id)
        return found[0]["body"]["platform"] if found else None

    def reviews(self, kind: str, target_id: str, version: int | None) -> list[LoggedReview]:
        wanted = {"kind": kind, "id": target_id, "version": version}
        return [LoggedReview(leaf["body"]["review_id"], leaf["seq"], leaf["auth"]["key"],
                             leaf["body"]["verdict"] == "approved")
                for leaf in self._leaves(("review",), lambda body: body.get("target") == wanted)]

    def review_quorum(self, kind: str) -> int | None:
        rules = self._leaves(("registry.genesis", "registry.rules"), lambda body: True)[-1]["body"]["rules"]
        return rules["review_quorum"][kind] if "review_quorum" in rules else None

    def open_cases(self, account_id: str) -> frozenset[str]:
        cases: set[str] = set()
        for leaf in self._leaves(("account.hold",), lambda body: body.get("account_id") == account_id):
            (cases.add if leaf["body"]["held"] else cases.discard)(leaf["body"]["case_id"])
        return frozenset(cases)

    def account(self, account_id: str) -> LoggedAccount | None:
        a = self._ask(lambda: self.client.account(account_id), absent_ok=True)
        return None if a is None else LoggedAccount(a["account_id"], a["kind"], a["name"], a["region"], a["platform"],
                                                    frozenset(a["controllers"]))

    def methodologies(self) -> dict[str, Methodology]:
        found: dict[str, Methodology] = {}
        after: int | None = -1
        while after is not None:
            page = self._ask(lambda: self.client.get("/v1/methodologies", after=after, limit=METHODOLOGY_PAGE))
            for item in page["items"]:
                found[item["methodology_id"]] = _methodology(item)
            after = page["next_after"]
        return found

    def methodology(self, methodology_id: str) -> Methodology | None:
        item = self._ask(lambda: self.client.get(f"/v1/methodologies/{methodology_id}"), absent_ok=True)
        return None if item is None else _methodology(item)

    def logged(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        id_field = ID_FIELD[event_type]
        found = self._leaves((event_type,), lambda body: body.get(id_field) == event_id)
        return found[0]["body"] if found else None

    def deliver(self, event: dict[str, Any]) -> Delivered:
        accepted = self._ask(lambda: self.client.submit_signed(event))
        return Delivered(accepted.seq, accepted.resent)

    def close(self) -> None:
        self.client.close()


def _methodology(item: dict[str, Any]) -> Methodology:
    """The API's methodology (every version under `versions`) as the ledger's state holds it."""
    versions = {v["version"]: {k: v[k] for k in ("title", "sector", "params", "offset_eligible", "seq")}
                for v in item["versions"]}
    return Methodology(item["methodology_id"], versions, item["offset_eligible"])


class SignOnlyTarget(Target):
    """Signed events written to a new file, one a line; the state read through `reader` if any."""

    def __init__(self, out: Path, origin: str, log_format: int, reader: Target | None):
        self.out, self.origin, self.log_format, self.reader = out, origin, log_format, reader
        self.readable = reader is not None
        self._file: IO[bytes] | None = None

    def key(self, key_id: str) -> LoggedKey | None:
        return None if self.reader is None else self.reader.key(key_id)

    def account(self, account_id: str) -> LoggedAccount | None:
        return None if self.reader is None else self.reader.account(account_id)

    def methodologies(self) -> dict[str, Methodology]:
        return {} if self.reader is None else self.reader.methodologies()

    def methodology(self, methodology_id: str) -> Methodology | None:
        return None if self.reader is None else self.reader.methodology(methodology_id)

    def logged(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        return None if self.reader is None else self.reader.logged(event_type, event_id)

    def batch_platform(self, batch_id: str) -> str | None:
        return None if self.reader is None else self.reader.batch_platform(batch_id)

    def reviews(self, kind: str, target_id: str, version: int | None) -> list[LoggedReview]:
        return [] if self.reader is None else self.reader.reviews(kind, target_id, version)

    def review_quorum(self, kind: str) -> int | None:
        return None if self.reader is None else self.reader.review_quorum(kind)

    def open_cases(self, account_id: str) -> frozenset[str]:
        return frozenset() if self.reader is None else self.reader.open_cases(account_id)

    def deliver(self, event: dict[str, Any]) -> Delivered:
        if self._file is None:
            try:
                self._file = open(self.out, "xb")
            except OSError as exc:
                cannot_run(f"--sign-only {self.out}: {exc.strerror}")
        self._file.write(jcs(event) + b"\n")
        return Delivered(None, False)

    def done(self, delivered: Delivered) -> str:
        return f"signed into {self.out}, not submitted yet"

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
                console.print(f"post it with `puhui submit {self.out} --server URL --trust FILE` (or --dir DIR)")
        finally:
            if self.reader is not None:
                self.reader.close()


@dataclass(frozen=True, slots=True)
class Where:
    """Where the options say the events go (module docstring)."""
    directory: Path | None
    server: str | None
    trust: Path | None
    sign_only: Path | None = None
    origin: str | None = None
    log_format: int | None = None
    database_url: str | None = None
    signer_key: Path | None = None

    def signer(self) -> SignerKey:
        return SignerKey(self.signer_key, self.directory)

    def open(self, *, writes: bool = True) -> Target:
        """The target, or a one-line reason the options name none; writes=False for a command
        that only reads (no log key, no writer lock)."""
        if self.directory is not None and self.server is not None:
            cannot_run("--dir or --server: one registry, not both")
        if self.server is not None and self.trust is None:
            cannot_run("--server needs --trust FILE, the registry's trust file obtained out of band")
        if self.database_url is not None and self.directory is None:
            cannot_run("--database-url goes with --dir")
        out = self.sign_only
        if out is not None and (out.exists() or out.is_symlink()):
            cannot_run(f"--sign-only {out} exists: the signed events go to a new file")
        if out is None and self.directory is None and self.server is None:
            if not writes:
                cannot_run("say which registry to read: --dir DIR, or --server URL --trust FILE")
            cannot_run("say where the events go: --dir DIR, --server URL --trust FILE, or --sign-only FILE")
        reader: Target | None = None
        if self.directory is not None:
            reader = DirTarget(RegistryDir(self.directory), writes=writes and out is None,
                               database_url=self.database_url)
        elif self.server is not None and self.trust is not None:  # --server without --trust was refused above
            reader = ServerTarget(self.server, self.trust)
        if reader is not None:
            _same_origin(reader, self.origin)
        if out is None:
            assert reader is not None
            return reader
        origin = reader.origin if reader is not None else (
            read_trust(self.trust)["origin"] if self.trust is not None else self.origin)
        if origin is None:
            cannot_run("--sign-only needs the registry's origin, which the signature covers: --origin ORIGIN or "
                       "--trust FILE")
        if self.origin is not None and self.origin != origin:
            cannot_run(f"--origin {self.origin} is not the origin of --trust ({origin})")
        log_format = reader.log_format if reader is not None else (self.log_format or INIT_LOG_FORMAT)
        if self.log_format is not None and self.log_format != log_format:
            cannot_run(f"--log-format {self.log_format} is not this registry's log format ({log_format})")
        return SignOnlyTarget(out, origin, log_format, reader)


# The options of where_options, each with its parameter name and type, in the order of the help
# (--signer-key's option is made for each command, which names its signer).
_WHERE_OPTIONS = (("directory", Optional[Path], DirOption), ("server", Optional[str], ServerOption),
                  ("trust", Optional[Path], TrustOption), ("sign_only", Optional[Path], SignOnlyOption),
                  ("origin", Optional[str], OriginOption), ("log_format", Optional[int], LogFormatOption),
                  ("signer_key", Optional[Path], None),
                  ("database_url", Optional[str], DatabaseOption))


def where_options(command: Callable[..., Any] | None = None, *,
                  signer: str = ADMIN_SIGNER) -> Callable[..., Any]:
    """command(..., where: Where) as a typer command taking the options of Where (the same for every
    signing command, named in its help by WHERE_HELP) instead of `where`; `@where_options(signer=...)`
    for a command whose events someone other than an admin signs, as --signer-key's help says."""
    if command is None:
        return functools.partial(where_options, signer=signer)
    signature = inspect.signature(command)
    kept = [p for name, p in signature.parameters.items() if name != "where"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                               default=_signer_key_option(signer) if option is None else option)
             for name, annotation, option in _WHERE_OPTIONS]

    @functools.wraps(command)
    def with_where(*args: Any, **kwargs: Any) -> Any:
        where = Where(**{name: kwargs.pop(name) for name, _, _ in _WHERE_OPTIONS})
        return command(*args, **kwargs, where=where)

    setattr(with_where, "__signature__", signature.replace(parameters=kept + added))  # what typer reads
    with_where.__annotations__ = {**{k: v for k, v in command.__annotations__.items() if k != "where"},
                                  **{name: annotation for name, annotation, _ in _WHERE_OPTIONS}}
    return with_where


def _same_origin(reader: Target, origin: str | None) -> None:
    if origin is not None and origin != reader.origin:
        reader.close()
        cannot_run(f"--origin {origin} is not this registry's origin ({reader.origin})")
