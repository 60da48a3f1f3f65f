"""Drive an Optuna study: open the storage, ask a batch, evaluate it in one vectorized call, tell the results.

Storage: ``None`` -> ``sqlite:///<run dir>/study.db`` (embedded, nothing to start); any SQLAlchemy URL
(``postgresql://...``, ``mysql+pymysql://...``, ``sqlite:///...``); or ``journal:<path>`` (an append-only
journal file, safe for several processes). Several processes on one storage and study name share the study;
running again adds trials to it (resume). A study remembers a digest of its question (space, objectives,
constraints, base config) and refuses to mix in trials of a different one.
"""
from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from dse.errors import DseError
from dse.search import points
from .local import LocalSearch
from .offspring import OrdinalOffspring
from .space import Space

DIGEST_KEY = "dse_digest"
MAX_PROPOSALS = 5


STORAGE_ENV = "DSE_SEARCH_STORAGE"


def storage_url(url: str | None, run_dir: Path) -> str:
    """``search.storage``, else the environment variable DSE_SEARCH_STORAGE (keeps a password out of Hydra's
    logs and .hydra/*.yaml), else the SQLite file of the run directory."""
    return url or os.environ.get(STORAGE_ENV) or f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


#: Query parameters of a storage URL whose values are secrets (``?password=...``), matched case-insensitively.
SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "pass", "secret", "token", "api_key", "apikey", "key",
                     "sslpassword", "access_token", "auth")
_QUERY_SECRET = re.compile(r"([?&;](?:%s)=)([^&;#\s'\"]*)" % "|".join(SECRET_QUERY_KEYS), re.IGNORECASE)


def secrets(url: str | None) -> list[str]:
    """Every secret in a storage URL: the password of its user info (everything between the first ``:`` after
    ``://`` and the *last* ``@`` before the host, so a raw ``@`` or ``/`` inside a password is part of it) and the
    values of secret query parameters (:data:`SECRET_QUERY_KEYS`). Longest first (so masking never leaves a tail)."""
    if not url or str(url).startswith("journal:"):
        return []
    from urllib.parse import unquote

    url = str(url)
    found = []
    rest = url.split("://", 1)[1] if "://" in url else ""
    at = rest.rfind("@")
    query = rest.find("?", at + 1 if at >= 0 else 0)
    if at >= 0 and (query < 0 or at < query):
        user, sep, pw = rest[:at].partition(":")
        if sep and pw:
            found.append(pw)
    found += [m.group(2) for m in _QUERY_SECRET.finditer(url) if m.group(2)]
    found += [unquote(f) for f in found]
    return sorted({f for f in found if f}, key=len, reverse=True)


def password(url: str | None) -> str | None:
    """The (first, longest) secret in a storage URL, if any (:func:`secrets`)."""
    found = secrets(url)
    return found[0] if found else None


def mask(text: str, url: str | None = None) -> str:
    """``text`` with every secret of the storage URL (:func:`secrets`, raw and percent-encoded) replaced by ***,
    and any other ``user:password@`` or secret query value in it too."""
    from urllib.parse import quote

    text = str(text)
    for secret in secrets(url):
        text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    text = _QUERY_SECRET.sub(r"\1***", text)
    return re.sub(r"(://[^/:@\s'\"]*:)[^\s'\"]*@", r"\1***@", text)


def check_storage(url: str | None, run_dir: Path) -> str:
    """``search.storage`` checked without connecting (whatever the method, before any work): a ``journal:`` or
    SQLite file in an existing directory, or a URL SQLAlchemy parses for a dialect it has. Returns the URL used."""
    url = storage_url(url, run_dir)
    if not isinstance(url, str):
        raise DseError(f"search.storage={url!r}: allowed null, a SQLAlchemy URL or journal:<path>")
    key = f"search.storage={mask(url, url)!r}"
    pw = next(iter(secrets(url.split("?", 1)[0])), "")
    if any(ch in pw for ch in "@/?#"):
        raise DseError(f"{key}: the password holds a raw '@', '/', '?' or '#'; percent-encode it (%40, %2F, %3F, "
                       f"%23), or set the URL in the environment variable {STORAGE_ENV}")
    if url.startswith("journal:") or url.startswith("sqlite:///"):
        path = Path(url.split(":///", 1)[1] if url.startswith("sqlite:///") else url[len("journal:"):]).expanduser()
        if not str(path) or not path.parent.is_dir():
            raise DseError(f"{key}: directory {str(path.parent)!r} does not exist")
        if path.is_dir():
            raise DseError(f"{key}: {str(path)!r} is a directory; give a file")
        return url
    try:
        from sqlalchemy.engine import make_url

        make_url(url).get_dialect()
    except Exception as e:  # noqa: BLE001 - not a URL, or a dialect / driver SQLAlchemy does not have
        raise DseError(f"{key}: not a storage dse can open ({type(e).__name__}: "
                       f"{mask((str(e).strip().splitlines() or [''])[0][:120], url)}); allowed null (SQLite in the "
                       "run directory), journal:<path>, sqlite:///<path>, postgresql://..., mysql+pymysql://..."
                       ) from None
    return url


def open_storage(url: str | None, run_dir: Path):
    """An Optuna storage for ``url`` (see module doc); any failure -> one-line DseError, before any trial.
    Passwords never appear in messages."""
    url = check_storage(url, run_dir)
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url[len("journal:"):]).expanduser()
            if not path.parent.is_dir():
                raise DseError(f"search.storage={mask(url, url)!r}: directory {str(path.parent)!r} does not exist")
            check_journal(path, f"search.storage={mask(url, url)!r}")
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
            if not path.parent.is_dir():
                raise DseError(f"search.storage={mask(url, url)!r}: directory {str(path.parent)!r} does not exist")
            engine_kwargs = {"connect_args": {"timeout": 120}}     # wait for another process's write lock
        elif url.split(":", 1)[0].split("+")[0] in ("postgresql", "mysql"):
            engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
        else:
            engine_kwargs = {}
        for attempt in range(8):
            try:
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
                storage.get_all_studies()   # touch it: an unreachable server fails here
                return storage
            except Exception as e:  # noqa: BLE001
                # several processes creating the same fresh database race on its schema: wait and retry
                racing = type(e).__name__ == "IntegrityError" or "locked" in str(e) or "already exists" in str(e)
                if not racing or attempt == 7:
                    raise
                time.sleep(0.25 * (attempt + 1))
    except DseError:
        raise
    except Exception as e:  # noqa: BLE001 - any driver / network / URL error becomes one line
        reason = mask((str(e).strip().splitlines() or [""])[0][:200], url)
        raise DseError(f"search.storage={mask(url, url)!r}: cannot open ({type(e).__name__}: {reason})") from None


def check_journal(path: Path, key: str) -> None:
    """Before anything is appended to a journal: every record must be whole. A torn last record (a process killed
    or a disk filled mid-write) is repaired under the journal's own lock with nothing lost: a complete JSON record
    that only lacks its newline gets it; an incomplete one is moved to ``<journal>.torn`` (it was never part of the
    study) and cut off. A bad record before the last one is refused in one line (appending after it would make the
    study unreadable)."""
    import json
    import logging

    from optuna.storages.journal import JournalFileSymlinkLock

    if not path.is_file() or path.stat().st_size == 0:
        return
    lock = JournalFileSymlinkLock(str(path))
    while not lock.acquire():
        time.sleep(0.01)
    try:
        with open(path, "r+b") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            tail = data[end:]
            for number, line in enumerate(data[:end].splitlines(), start=1):
                try:
                    json.loads(line)
                except ValueError:
                    raise DseError(f"{key}: record {number} of the journal {str(path)!r} is not valid JSON (a "
                                   "damaged file); nothing was appended. Restore it from a copy, or use another "
                                   "journal") from None
            if not tail:
                return
            try:
                whole = isinstance(json.loads(tail), dict)
            except ValueError:
                whole = False
            if whole:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
                what = "completed its last record's line"
            else:
                with open(str(path) + ".torn", "ab") as aside:
                    aside.write(tail + b"\n")
                    aside.flush()
                    os.fsync(aside.fileno())
                f.truncate(end)
                what = f"moved a torn last record ({len(tail)} bytes) to {str(path)}.torn"
            f.flush()
            os.fsync(f.fileno())
        logging.getLogger("dse").warning("%s: the journal was repaired: %s", key, what)
    except OSError as err:
        raise DseError(f"{key}: cannot check the journal {str(path)!r} ({err.strerror or err}); nothing was "
                       "appended (free some space, then re-run)") from None
    finally:
        lock.release()


def make_sampler(name: str, seed: int, batch_size: int):
    if name == "nsga2":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # child_generation_strategy is marked experimental
            return optuna.samplers.NSGAIISampler(population_size=batch_size, seed=seed,
                                                 child_generation_strategy=OrdinalOffspring(seed))
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                              n_startup_trials=batch_size)
    return optuna.samplers.RandomSampler(seed=seed)


class Claims:
    """Design points claimed by any worker of a study, so that no two workers evaluate and store the same point.

    On an SQL storage (SQLite, PostgreSQL, MySQL) the claims are rows of a table ``dse_claims`` in the same
    database, keyed by (study, point): an insert that finds the key already there loses the claim (the database's
    primary key decides a race). On a journal storage they are lines of ``<journal>.claims``, appended under an
    exclusive ``flock``. Other storages (in-memory) have one worker, whose own memory already deduplicates.

    The exact guarantee: every trial stored is a point no worker had claimed before; a point is claimed once, so
    it is evaluated and stored at most once across all workers. A worker killed mid-batch leaves its claimed
    points unstored (they are not proposed again); every trial it did store is complete.
    """

    TABLE = "dse_claims"

    def __init__(self, storage, study_name: str):
        self.study, self.engine, self.path = study_name, None, None
        engine, file_path, obj = None, None, storage
        for _ in range(3):      # optuna wraps storages (_CachedStorage -> RDBStorage, JournalStorage -> backend)
            engine = engine or getattr(obj, "engine", None)
            file_path = file_path or getattr(obj, "_file_path", None)
            obj = getattr(obj, "_backend", None)
        if engine is not None:
            from sqlalchemy import text

            for attempt in range(8):
                try:
                    with engine.begin() as c:
                        c.execute(text(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (study VARCHAR(512) NOT NULL, "
                                       "point VARCHAR(64) NOT NULL, PRIMARY KEY (study, point))"))
                    break
                except Exception:  # noqa: BLE001 - two workers creating it at once: one wins, retry sees it
                    if attempt == 7:
                        raise
                    time.sleep(0.2 * (attempt + 1))
            self.engine = engine
        if engine is None and file_path:
            self.path = Path(str(file_path) + ".claims")

    @staticmethod
    def point(params: dict) -> str:
        import hashlib
        import json

        norm = {k: (round(v, 12) if isinstance(v, float) else v) for k, v in sorted(params.items())}
        return hashlib.sha256(json.dumps(norm, sort_keys=True, default=str).encode()).hexdigest()

    def claim(self, params: dict) -> bool:
        """True when this call claimed the point (no worker had); False when another worker has it."""
        key = self.point(params)
        if self.engine is not None:
            from sqlalchemy import text

            with self.engine.begin() as c:
                r = c.execute(text(f"INSERT INTO {self.TABLE} (study, point) VALUES (:s, :p) "
                                   "ON CONFLICT DO NOTHING"), {"s": self.study, "p": key})
                return r.rowcount == 1
        if self.path is not None:
            import fcntl

            with open(self.path, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                lines = f.readlines()
                if f"{self.study}\t{key}\n" in set(lines):
                    return False
                torn = bool(lines) and not lines[-1].endswith("\n")     # a write cut short: start a new line
                f.write(f"{chr(10) if torn else ''}{self.study}\t{key}\n")
                f.flush()
                return True
        return True


class Study:
    """A persistent Optuna study driven through an in-memory mirror.

    The sampler works on the mirror (fast: no database round trip per suggested value); each batch first
    pulls the completed trials other processes have written since, and finally pushes its own completed
    trials (params, objectives, constraints, sampler attributes) in one write per trial. Trials of a batch
    that fails are never written, so the storage never holds half-finished trials.
    """

    WORKER = "dse:worker"

    def __init__(self, persistent: optuna.Study, sampler, n_before: int = 0):
        self.persistent = persistent
        self.n_before = n_before             # trials in the study when this process opened it
        self.name = persistent.study_name
        self.mirror = optuna.create_study(directions=persistent.directions, sampler=sampler)
        self.worker = uuid.uuid4().hex       # tags this process's trials (never enters any result)
        self._seen: set[int] = set()
        self.claims = Claims(persistent._storage, self.name)

    def pull(self) -> int:
        new = []
        for t in self.persistent.get_trials(deepcopy=False, states=[TrialState.COMPLETE]):
            if t.number in self._seen:
                continue
            self._seen.add(t.number)
            if t.system_attrs.get(self.WORKER) != self.worker:
                new.append(t)
        self.mirror.add_trials(new)
        return len(new)

    def push(self, trials: list) -> None:
        self.persistent.add_trials([
            optuna.trial.create_trial(state=TrialState.COMPLETE, values=t.values, params=t.params,
                                      distributions=t.distributions, user_attrs=t.user_attrs,
                                      system_attrs={**t.system_attrs, self.WORKER: self.worker})
            for t in trials])


def open_study(search: dict, space: Space, base: dict, run_dir: Path) -> Study:
    """Create or load the study; refuse one that was created for a different question."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(search.get("storage"), run_dir)
    name = str(search["name"])
    digest = space.digest(base)
    try:
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    except Exception as e:  # noqa: BLE001
        raise DseError(f"search.storage: cannot list studies ({type(e).__name__})") from None
    n_before = existing[name].n_trials if name in existing else 0
    if name in existing:
        old = existing[name].user_attrs.get(DIGEST_KEY)
        if old is not None and old != digest:
            raise DseError(f"search.name={name!r}: the study in this storage asks a different question "
                           f"(digest {old} vs {digest}); pick a new search.name or storage")
        if len(existing[name].directions) != len(space.objectives):
            raise DseError(f"search.name={name!r}: the stored study has {len(existing[name].directions)} "
                           f"objectives, this search {len(space.objectives)}")
    persistent = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                     directions=["minimize"] * len(space.objectives))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # experimental in some Optuna versions
        persistent.set_metric_names(list(space.objectives))   # named objectives in optuna-dashboard
    persistent.set_user_attr(DIGEST_KEY, digest)
    persistent.set_user_attr("objectives", list(space.objectives))
    persistent.set_user_attr("constraints", {k: list(v) for k, v in space.constraints.items()})
    persistent.set_user_attr("constraint_names", [*space.constraints, "fits"])   # the order of each trial's list
    with warnings.catch_warnings():   # the objectives' names on the dashboard's axes (experimental in Optuna)
        warnings.simplefilter("ignore")
        persistent.set_metric_names(list(space.objectives))
    sampler = make_sampler(search.get("sampler", "nsga2"), int(search.get("seed", 0)) + n_before,
                           int(search["batch_size"]))
    return Study(persistent, sampler, n_before)


#: The system attribute Optuna keeps a trial's constraint values under (optuna.samplers._base._CONSTRAINTS_KEY):
#: a list, each value <= 0 where that constraint holds. optuna-dashboard reads it to mark infeasible trials.
CONSTRAINTS_KEY = "constraints"
#: Trial user attributes: each trial's metrics by name, to filter and sort by in optuna-dashboard.
USER_ATTRS = ("energy_per_token", "capacity_cost_usd", "step_latency", "tokens_per_s", "hbm_fill", "offload_fill",
              "warm_fill", "energy_per_output_token", "ttft", "tpot")


def trial_attrs(ds, space) -> dict:
    """{name: one float per trial} of the objectives, constrained variables and :data:`USER_ATTRS` a batch has."""
    import xarray as xr

    names = list(dict.fromkeys([*space.objectives, *space.constraints, *(n for n in USER_ATTRS if n in ds)]))
    template = sum(xr.zeros_like(ds[v], dtype=float) for v in [*space.objectives, *space.constraints])
    if "trial" not in template.dims:
        template = template.expand_dims(trial=ds.sizes["trial"])
    template = template.transpose("trial", ...)
    out = {}
    for name in names:
        v = np.asarray(ds[name].broadcast_like(template).transpose("trial", ...).values, float)
        out[name] = [float(x) for x in v.reshape(v.shape[0], -1)[:, 0]]
    return out


def constraint_values(trial, names: list[str]) -> list[float]:
    """A stored trial's constraint values in the order ``names``: Optuna's list (dse's format), or by name (studies
    written by an earlier dse, which stored ``constraints:<name>``)."""
    listed = trial.system_attrs.get(CONSTRAINTS_KEY)
    if isinstance(listed, (list, tuple)) and len(listed) == len(names):
        return [float(v) for v in listed]
    return [float(trial.constraints.get(n, 0.0)) for n in names]


def feasible_points(trials) -> tuple[list[dict], np.ndarray]:
    """Params and objectives of the feasible trials (every constraint, ``fits`` included, <= 0)."""
    feasible = [t for t in trials if all(v <= 0 for v in t.constraints.values())]
    n_objectives = len(trials[0].values) if trials else 0
    F = np.array([t.values for t in feasible], dtype=float).reshape(len(feasible), n_objectives)
    return [t.params for t in feasible], F


def optimize(study: Study, space: Space, base: dict, n_trials: int, batch_size: int,
             progress: bool = True, local_share: float = 0.0, random_share: float = 0.0, seed: int = 0) -> dict:
    """Add ``n_trials`` new design points to ``study`` in batches; each batch is one vectorized evaluation.

    ``local_share`` of each batch goes to untried neighbours of the current front (:mod:`.local`),
    ``random_share`` to untried points drawn uniformly (so that no region is left unvisited once the sampler
    has converged elsewhere); the rest comes from the sampler. A sampler proposal that repeats a point already
    tried is dropped (marked failed in the in-memory mirror, never stored) and the sampler is asked again, so
    every stored trial is a new design point; when ``MAX_PROPOSALS`` x the batch size proposals bring nothing new,
    untried points are drawn uniformly instead. Stops early only when (nearly) every point has been tried.
    """
    from tqdm.auto import tqdm

    memory = LocalSearch(space.distributions, seed)
    n = dict(local=0, random=0, dropped=0)
    done, t0, eval_s, stalled = 0, time.perf_counter(), 0.0, 0
    with tqdm(total=n_trials, disable=not progress, desc=f"dse-search {study.name}", unit="trial") as bar:
        while done < n_trials:
            study.pull()
            size = min(batch_size, n_trials - done)
            _enqueue_extra(study, memory, space, size, local_share, random_share, n)
            trials = _new_trials(study, memory, space, size, n)
            if not trials:
                if len(memory.tried) < (space.size() or float("inf")) and stalled < MAX_PROPOSALS:
                    stalled += 1               # other workers claimed everything proposed: try again
                    continue
                break   # (nearly) every point has been tried
            stalled = 0
            eval_s += _evaluate_and_tell(study, space, base, trials)
            done += len(trials)
            bar.update(len(trials))
    wall = time.perf_counter() - t0
    return dict(trials_added=done, local_search_trials=n["local"], random_trials=n["random"],
                repeated_proposals_dropped=n["dropped"],
                wall_s=wall, trials_per_s=done / wall if wall > 0 else float("inf"), evaluate_s=eval_s)


def _enqueue_extra(study: Study, memory: LocalSearch, space: Space, size: int, local_share: float,
                   random_share: float, n: dict) -> None:
    """Remember every completed point; queue the batch's share of front neighbours and of uniform random points."""
    history = study.mirror.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    for t in history:
        memory.mark(t.params)
    if local_share > 0:
        for p in memory.proposals(*feasible_points(history), int(round(local_share * size))):
            study.mirror.enqueue_trial(p, skip_if_exists=False)
            n["local"] += 1
    for p in memory.random_untried(int(round(random_share * size))):
        study.mirror.enqueue_trial(p, skip_if_exists=False)
        n["random"] += 1


def _new_trials(study: Study, memory: LocalSearch, space: Space, size: int, n: dict) -> list:
    """Up to ``size`` trials at points nobody has tried or claimed: the sampler's proposals, then uniform draws."""
    trials, asked = [], 0
    while len(trials) < size and asked < MAX_PROPOSALS * size:
        t = study.mirror.ask(space.distributions)
        asked += 1
        if memory.is_tried(t.params) or not study.claims.claim(t.params):
            memory.mark(t.params)          # tried here, or claimed by another worker
            study.mirror.tell(t, state=TrialState.FAIL)
            n["dropped"] += 1
            continue
        memory.mark(t.params)
        trials.append(t)
    for p in memory.random_untried(size - len(trials)):   # the sampler only repeats itself
        memory.mark(p)
        if not study.claims.claim(p):
            n["dropped"] += 1
            continue
        study.mirror.enqueue_trial(p, skip_if_exists=False)
        trials.append(study.mirror.ask(space.distributions))
    return trials


def _evaluate_and_tell(study: Study, space: Space, base: dict, trials: list) -> float:
    """One vectorized evaluation of the batch; objectives and constraints told, the completed ones stored.
    Returns the evaluation's seconds."""
    params = {name: [t.params[name] for t in trials] for name in space.distributions}
    t1 = time.perf_counter()
    ds = points.evaluate_trials(base, space, params)
    F, C, names = points.metrics(ds, space, ["trial"])
    attrs = trial_attrs(ds, space)
    seconds = time.perf_counter() - t1
    told = []
    storage = study.mirror._storage
    for i, (t, f, c) in enumerate(zip(trials, F, C)):
        # Optuna's own format (what a sampler's constraints_func stores, and what optuna-dashboard reads to tell
        # feasible trials from infeasible ones): one list under the system attribute "constraints", in the order
        # of the study's user attribute "constraint_names"
        storage.set_trial_system_attr(t._trial_id, CONSTRAINTS_KEY, [float(v) for v in c])
        for name, values in attrs.items():   # what a reader filters by (dashboard: user attributes)
            t.set_user_attr(name, values[i])
        t.set_user_attr("feasible", bool(np.all(c <= 0)))
        ok = bool(np.all(np.isfinite(f)))
        told.append(study.mirror.tell(t, f.tolist() if ok else None,
                                      state=TrialState.COMPLETE if ok else TrialState.FAIL))
    study.push([t for t in told if t.state == TrialState.COMPLETE])
    return seconds


def completed(study: Study, space: Space):
    """Completed trials of the persistent study (all processes): numbers, params, objectives, constraints."""
    trials = study.persistent.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    trials = [t for t in trials if all(n in t.params for n in space.distributions)]
    numbers = np.array([t.number for t in trials], dtype=int)
    params = {n: [t.params[n] for t in trials] for n in space.distributions}
    F = np.array([t.values for t in trials], dtype=float).reshape(len(trials), len(space.objectives))
    names = [*space.constraints, "fits"]  # "fits": every configuration must fit its capacity (points.metrics)
    C = np.array([constraint_values(t, names) for t in trials], dtype=float).reshape(len(trials), len(names))
    return numbers, params, F, C
